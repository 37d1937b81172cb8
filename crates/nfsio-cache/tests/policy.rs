//! Unit tests of the engine's policies: coalescing, readahead, the memory bound and
//! backpressure, background flushing, the commit threshold, expiry, back-off, revalidation.

mod common;

use common::*;
use nfsio_cache::{Advice, Event, FileId, Op, ReadOutcome, Reply, Transmit, WriteOutcome};
use nfsio_proto::nfs3::{Nfs3Status, StableHow};

fn write_range(t: &Transmit) -> Option<(u64, u64)> {
    match &t.op {
        Op::Write {
            offset_bytes, data, ..
        } => Some((*offset_bytes, offset_bytes + data.len() as u64)),
        _ => None,
    }
}

/// Serves everything, returning every WRITE's range in the order sent.
fn serve_all_writes(d: &mut Driver) -> Vec<(u64, u64)> {
    let mut writes = Vec::new();
    d.poll();
    while !d.sent.is_empty() {
        let t = d.sent.remove(0);
        writes.extend(write_range(&t));
        d.serve(&t);
    }
    writes
}

#[test]
fn coalescing_never_exceeds_wsize_never_bridges_gaps() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    // Contiguous 100-byte writes over [0, 5000) and [5100, 9000), a 10-byte write at 9500.
    let mut written = Vec::new();
    for start in (0..5000).step_by(100).chain((5100..9000).step_by(100)) {
        write_ok(&mut d, f, start, &pattern(start as u8, 100));
        written.push((start, start + 100));
    }
    write_ok(&mut d, f, 9500, &pattern(7, 10));
    let sync = d.engine.fsync(f, 0).unwrap();
    let mut writes = serve_all_writes(&mut d);
    assert_eq!(d.finish(sync), Ok(()));
    writes.sort();
    assert_eq!(
        writes,
        vec![
            (0, 2048),
            (2048, 4096),
            (4096, 5000),
            (5100, 6144),
            (6144, 8192),
            (8192, 9000),
            (9500, 9510),
        ],
        "aligned WRITEs of at most wsize, one per contiguous run per chunk, only written bytes"
    );
    for (start, end) in &writes {
        assert!(end - start <= 2048);
        assert_eq!(
            start / 2048,
            (end - 1) / 2048,
            "never across a wsize boundary"
        );
    }
}

#[test]
fn gaps_of_known_zeros_are_bridged_unknown_bytes_never() {
    let config = nfsio_cache::EngineConfig {
        bridge_gap_bytes: 512,
        ..small_config()
    };
    // A new file: everything the application did not write reads as zeros.
    let mut d = Driver::new(config.clone());
    let f = d.open("new");
    let mut model = vec![0u8; 9510];
    for start in (0..5000).step_by(100).chain((5100..9000).step_by(100)) {
        let data = pattern(start as u8, 100);
        write_ok(&mut d, f, start, &data);
        model[start as usize..start as usize + 100].copy_from_slice(&data);
    }
    let tail = pattern(7, 10);
    write_ok(&mut d, f, 9500, &tail);
    model[9500..].copy_from_slice(&tail);
    let sync = d.engine.fsync(f, 0).unwrap();
    let mut writes = serve_all_writes(&mut d);
    assert_eq!(d.finish(sync), Ok(()));
    writes.sort();
    assert_eq!(
        writes,
        vec![
            (0, 2048),
            (2048, 4096),
            (4096, 6144),
            (6144, 8192),
            (8192, 9510)
        ],
        "the 100- and 500-byte gaps of zeros are carried, within the chunk"
    );
    assert_eq!(d.durable("new"), model);

    // A file with content the cache has not read: its gaps are unknown, never bridged; once
    // read (clean in the cache), they are.
    let mut d = Driver::new(config);
    let old = pattern(9, 6000);
    d.server.file(&handle("old")).volatile = old.clone();
    d.server.file(&handle("old")).durable = old.clone();
    let f = d.open("old");
    let mut model = old.clone();
    for start in [0u64, 1000] {
        let data = pattern(start as u8 + 1, 500);
        write_ok(&mut d, f, start, &data);
        model[start as usize..start as usize + 500].copy_from_slice(&data);
    }
    let sync = d.engine.fsync(f, 0).unwrap();
    let mut writes = serve_all_writes(&mut d);
    assert_eq!(d.finish(sync), Ok(()));
    writes.sort();
    assert_eq!(
        writes,
        vec![(0, 500), (1000, 1500)],
        "no bridge over unknown bytes"
    );
    assert_eq!(d.read_all(f, 4096, 1904), old[4096..6000].to_vec());
    for start in [4096u64, 4600] {
        let data = pattern(start as u8 + 2, 100);
        write_ok(&mut d, f, start, &data);
        model[start as usize..start as usize + 100].copy_from_slice(&data);
    }
    let sync = d.engine.fsync(f, 0).unwrap();
    let writes = serve_all_writes(&mut d);
    assert_eq!(d.finish(sync), Ok(()));
    assert_eq!(
        writes,
        vec![(4096, 4700)],
        "bridged over clean cached bytes"
    );
    assert_eq!(d.durable("old"), model);
}

#[test]
fn unaligned_run_is_split_at_wsize_boundaries() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    write_ok(&mut d, f, 1000, &pattern(1, 5000));
    let sync = d.engine.fsync(f, 0).unwrap();
    let mut writes = serve_all_writes(&mut d);
    assert_eq!(d.finish(sync), Ok(()));
    writes.sort();
    assert_eq!(writes, vec![(1000, 2048), (2048, 4096), (4096, 6000)]);
}

#[test]
fn writes_in_flight_up_to_the_limit() {
    let mut config = small_config();
    config.max_inflight_writes = 3;
    let mut d = Driver::new(config);
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 10 * 2048));
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    assert_eq!(d.sent.len(), 3, "three WRITEs in flight at once");
    let t = d.sent.remove(0);
    d.serve(&t);
    assert_eq!(d.sent.len(), 3, "a reply frees a slot for the next WRITE");
    assert_eq!(d.finish(sync), Ok(()));
    assert_eq!(d.durable("a"), pattern(1, 10 * 2048));
}

#[test]
fn readahead_window_doubles_up_to_the_max() {
    let mut config = small_config();
    config.max_inflight_reads = 16;
    let mut d = Driver::new(config);
    let content = pattern(3, 64 << 10);
    d.server.apply_write(&handle("a"), 0, &content, true);
    let f = d.open("a");
    let mut furthest = 0u64;
    let mut ahead = Vec::new();
    for i in 0..12u64 {
        let offset = i * 512;
        let data = loop {
            match d.engine.read(f, offset, 512, 0).unwrap() {
                ReadOutcome::Data(data) => break data,
                ReadOutcome::Wait(_) => furthest = furthest.max(serve_reads(&mut d)),
            }
        };
        assert_eq!(&data[..], &content[offset as usize..offset as usize + 512]);
        furthest = furthest.max(serve_reads(&mut d));
        ahead.push(furthest - (offset + 512));
    }
    // 1 KiB, 2 KiB, 4 KiB, then capped at 8 KiB ahead of the reader.
    assert_eq!(&ahead[..4], &[1024, 2048, 4096, 8192], "{ahead:?}");
    assert!(ahead.iter().all(|a| *a <= 8192), "{ahead:?}");
    assert!(ahead[4..].iter().all(|a| *a >= 4096), "{ahead:?}");
}

/// A reader that asks for whole transfers and takes what is cached (a short answer when its
/// range is only partly read ahead, as `File::read_bytes_at` gives) is still sequential: the
/// next read starts where the data it got ended, and its window keeps growing. Without that,
/// every short answer reset the window and left one READ in flight.
#[test]
fn a_reader_of_short_answers_keeps_its_readahead() {
    let mut config = small_config();
    config.max_inflight_reads = 16;
    let mut d = Driver::new(config);
    let content = pattern(4, 64 << 10);
    d.server.apply_write(&handle("a"), 0, &content, true);
    let f = d.open("a");
    let mut position = 0u64;
    let mut furthest = 0u64;
    let mut most_ahead = 0u64;
    while position < 32 << 10 {
        let data = loop {
            match d.engine.read(f, position, 2048, 0).unwrap() {
                ReadOutcome::Data(data) => break data,
                ReadOutcome::Wait(_) => furthest = furthest.max(serve_reads(&mut d)),
            }
        };
        assert!(!data.is_empty());
        assert_eq!(
            &data[..],
            &content[position as usize..position as usize + data.len()]
        );
        position += data.len() as u64;
        furthest = furthest.max(serve_reads(&mut d));
        most_ahead = most_ahead.max(furthest.saturating_sub(position));
    }
    assert!(
        most_ahead >= 6 << 10,
        "read ahead at most {most_ahead} bytes past the reader (window max 8 KiB)"
    );
}

/// Sends and answers every READ the engine asks for; returns the furthest byte they reached.
fn serve_reads(d: &mut Driver) -> u64 {
    let mut furthest = 0;
    d.poll();
    while !d.sent.is_empty() {
        let t = d.sent.remove(0);
        if let Op::Read {
            offset_bytes,
            count_bytes,
        } = t.op
        {
            furthest = furthest.max(offset_bytes + u64::from(count_bytes));
        }
        d.serve(&t);
        d.poll();
    }
    furthest
}

#[test]
fn random_reads_get_no_readahead() {
    let mut d = Driver::new(small_config());
    d.server
        .apply_write(&handle("a"), 0, &pattern(3, 64 << 10), true);
    let f = d.open("a");
    for offset in [30_000u64, 10_000, 50_000] {
        assert!(matches!(
            d.engine.read(f, offset, 100, 0).unwrap(),
            ReadOutcome::Wait(_) | ReadOutcome::Data(_)
        ));
        d.poll();
        for t in &d.sent {
            let Op::Read {
                offset_bytes,
                count_bytes,
            } = t.op
            else {
                panic!()
            };
            if offset != 30_000 {
                // Only the page holding the bytes asked for.
                assert_eq!(count_bytes, 512, "{offset_bytes}");
            }
        }
        d.run();
    }
}

#[test]
fn read_returns_the_cached_prefix() {
    let mut d = Driver::new(small_config());
    d.server
        .apply_write(&handle("a"), 0, &pattern(3, 4096), true);
    let f = d.open("a");
    write_ok(&mut d, f, 0, b"local");
    // [0, 5) cached (dirty), [5, 100) not: the prefix now, the rest after a READ.
    assert_eq!(
        d.engine.read(f, 0, 100, 0).unwrap(),
        ReadOutcome::Data(bytes::Bytes::from_static(b"local"))
    );
    let rest = d.read_all(f, 5, 95);
    assert_eq!(rest, &pattern(3, 4096)[5..100]);
}

#[test]
fn memory_bound_blocks_writers_and_wakes_them() {
    let mut config = small_config();
    config.memory_bound_bytes = 16 << 10;
    config.background_flush_bytes = 16 << 10;
    config.commit_threshold_bytes = 1 << 30;
    let limit = config.write_limit_bytes();
    let mut d = Driver::new(config);
    let f = d.open("a");
    let mut offset = 0u64;
    let token = loop {
        match d.engine.write(f, offset, &pattern(1, 1024), 0).unwrap() {
            WriteOutcome::Accepted => offset += 1024,
            WriteOutcome::Blocked(token) => break token,
        }
    };
    assert!(
        offset <= limit && offset + 1024 > limit,
        "blocked at the write limit"
    );
    let stats = d.engine.stats();
    assert!(stats.total_bytes() <= 16 << 10);
    // Blocked writers are memory pressure: everything is flushed and committed.
    d.poll();
    assert!(d.has_write());
    let mut woken = false;
    while !d.sent.is_empty() {
        let t = d.sent.remove(0);
        d.serve(&t);
        if d.events.contains(&Event::Wake(token)) {
            woken = true;
            break;
        }
    }
    assert!(woken, "the blocked writer is woken once its write fits");
    assert_eq!(
        d.engine.write(f, offset, &pattern(1, 1024), 0).unwrap(),
        WriteOutcome::Accepted
    );
}

#[test]
fn clean_bytes_are_evicted_not_blocking_writers() {
    let mut config = small_config();
    config.memory_bound_bytes = 16 << 10;
    let mut d = Driver::new(config);
    d.server
        .apply_write(&handle("a"), 0, &pattern(3, 32 << 10), true);
    let f = d.open("a");
    let data = d.read_all(f, 0, 12 << 10);
    assert_eq!(data, &pattern(3, 32 << 10)[..12 << 10]);
    let data = d.read_all(f, 12 << 10, 12 << 10);
    assert_eq!(data, &pattern(3, 32 << 10)[12 << 10..24 << 10]);
    assert!(
        d.engine.stats().total_bytes() <= 16 << 10,
        "clean bytes evicted at the bound"
    );
    for i in 0..8 {
        assert_eq!(
            d.engine.write(f, i * 1024, &pattern(1, 1024), 0).unwrap(),
            WriteOutcome::Accepted,
            "clean bytes never block a writer"
        );
    }
    assert!(d.engine.stats().total_bytes() <= 16 << 10);
}

#[test]
fn background_flush_starts_at_the_threshold() {
    let mut config = small_config();
    config.background_flush_bytes = 4096;
    let mut d = Driver::new(config);
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 2048));
    write_ok(&mut d, f, 4096, &pattern(1, 1000));
    assert!(d.sent.is_empty(), "below the threshold nothing is sent");
    write_ok(&mut d, f, 2048, &pattern(2, 2048));
    // 5096 dirty bytes: full chunks go, fullest first, until dirty is below the threshold
    // again; the partial chunk stays.
    let writes: Vec<_> = d.sent.iter().filter_map(write_range).collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].1 - writes[0].0, 2048, "a full chunk");
    assert!(writes[0].1 <= 4096);
    assert!(d.sent.iter().all(|t| matches!(
        t.op,
        Op::Write {
            stable: StableHow::Unstable,
            ..
        }
    )));
    assert!(d.engine.stats().dirty_bytes < 4096);
}

#[test]
fn commit_threshold_commits_while_writing() {
    let mut config = small_config();
    config.background_flush_bytes = 2048;
    config.commit_threshold_bytes = 4096;
    let mut d = Driver::new(config);
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 3 * 2048));
    let w1 = d.take_write();
    let w2 = d.take_write();
    d.serve(&w1);
    assert!(!d.has_commit(), "2 KiB unstable: below the threshold");
    d.serve(&w2);
    assert!(
        d.has_commit(),
        "4 KiB unstable: COMMIT while the last WRITE is in flight"
    );
    assert!(d.has_write());
}

#[test]
fn dirty_bytes_expire_without_fsync() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    d.now_ms = 1_000;
    write_ok(&mut d, f, 0, &pattern(1, 100));
    write_ok(&mut d, f, 5000, &pattern(2, 100));
    assert!(d.sent.is_empty());
    assert_eq!(d.engine.next_deadline_ms(), Some(31_000));
    d.now_ms = 31_000;
    d.engine.handle_timeout(d.now_ms);
    d.run();
    assert_eq!(
        d.engine.stats().nonclean_bytes(),
        0,
        "written and committed"
    );
    assert_eq!(d.server.writes.len(), 2);
    assert_eq!(&d.durable("a")[5000..5100], &pattern(2, 100)[..]);
}

#[test]
fn jukebox_backs_off_doubling_and_resets() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 100));
    let sync = d.engine.fsync(f, 0).unwrap();
    for expected in [100, 200, 400, 800, 1000, 1000] {
        d.poll();
        let w = d.take_write();
        d.reply(&w, Reply::Status(Nfs3Status::Jukebox));
        assert!(d.sent.is_empty());
        assert_eq!(d.engine.next_deadline_ms(), Some(d.now_ms + expected));
        d.now_ms += expected;
        d.engine.handle_timeout(d.now_ms);
    }
    assert_eq!(d.finish(sync), Ok(()));
}

#[test]
fn reopen_drops_clean_bytes_only_when_the_file_changed() {
    let mut d = Driver::new(small_config());
    let fh = handle("a");
    d.server.apply_write(&fh, 0, &pattern(1, 1024), true);
    let f = d.open("a");
    assert_eq!(d.read_all(f, 0, 1024), pattern(1, 1024));
    let close = d.engine.close(f, 0).unwrap();
    assert_eq!(d.finish(close), Ok(()));
    // Unchanged: served from the cache, no READ.
    let f = d.open("a");
    assert_eq!(
        d.engine.read(f, 0, 1024, 0).unwrap(),
        ReadOutcome::Data(pattern(1, 1024).into())
    );
    let close = d.engine.close(f, 0).unwrap();
    assert_eq!(d.finish(close), Ok(()));
    // Another client changes it: the new attributes drop the clean bytes.
    d.server.apply_write(&fh, 0, &pattern(2, 1024), true);
    let f = d.open("a");
    assert!(matches!(
        d.engine.read(f, 0, 1024, 0).unwrap(),
        ReadOutcome::Wait(_)
    ));
    assert_eq!(d.read_all(f, 0, 1024), pattern(2, 1024));
}

#[test]
fn extending_writes_grow_the_size_and_holes_read_as_zeros() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    write_ok(&mut d, f, 1000, b"tail");
    assert_eq!(d.engine.size_bytes(f), Ok(1004));
    let mut expected = vec![0u8; 1000];
    expected.extend_from_slice(b"tail");
    // The hole comes back from the server as zeros (the server's file is empty: EOF).
    assert_eq!(d.read_all(f, 0, 2000), expected);
}

#[test]
fn config_is_validated() {
    let mut config = small_config();
    config.wsize_bytes = 0;
    assert!(nfsio_cache::Engine::new(config).is_err());
    let mut config = small_config();
    config.memory_bound_bytes = 4096;
    assert!(nfsio_cache::Engine::new(config).is_err());
    assert!(nfsio_cache::Engine::new(nfsio_cache::EngineConfig::default()).is_ok());
}

/// Reads all of `f` in 1 KiB pieces, checking each against `content`; returns the most clean
/// bytes the cache held after any piece.
fn read_sequentially(d: &mut Driver, f: FileId, content: &[u8]) -> u64 {
    let mut most_clean_bytes = 0;
    for offset in (0..content.len()).step_by(1024) {
        let data = d.read_all(f, offset as u64, 1024);
        assert_eq!(&data[..], &content[offset..offset + 1024], "at {offset}");
        most_clean_bytes = most_clean_bytes.max(d.engine.stats().clean_bytes);
    }
    most_clean_bytes
}

#[test]
fn a_no_reuse_reader_holds_its_readahead_window_not_the_file() {
    let content = pattern(21, 48 << 10);
    let mut normal = Driver::new(small_config());
    normal.server.apply_write(&handle("a"), 0, &content, true);
    let f = normal.open("a");
    let kept = read_sequentially(&mut normal, f, &content);
    // Within the 64 KiB bound, a normal reader's bytes stay cached.
    assert!(kept >= 40 << 10, "normal reader kept {kept} bytes");

    let mut once = Driver::new(small_config());
    once.server.apply_write(&handle("a"), 0, &content, true);
    let f = once.open("a");
    once.engine.advise(f, Advice::NoReuse).expect("advise");
    let most = read_sequentially(&mut once, f, &content);
    // The 8 KiB readahead window, the READ of 2 KiB that straddles the reader and its piece.
    assert!(most <= 12 << 10, "no-reuse reader held {most} clean bytes");
}

#[test]
fn a_no_reuse_reader_never_drops_bytes_not_yet_durable() {
    let content = pattern(22, 32 << 10);
    let mut d = Driver::new(small_config());
    d.server.apply_write(&handle("a"), 0, &content, true);
    let f = d.open("a");
    d.engine.advise(f, Advice::NoReuse).expect("advise");
    let mut expected = content.clone();
    let written = pattern(23, 4 << 10);
    expected[4096..8192].copy_from_slice(&written);
    let outcome = d.engine.write(f, 4096, &written, d.now_ms).expect("write");
    assert_eq!(outcome, nfsio_cache::WriteOutcome::Accepted);
    // Read past the dirty bytes before anything is sent: they must survive the drop-behind.
    read_sequentially(&mut d, f, &expected);
    let ticket = d.engine.fsync(f, d.now_ms).expect("fsync");
    d.finish(ticket).expect("fsync");
    assert!(
        d.durable("a") == expected,
        "the written bytes reached the server"
    );
}
