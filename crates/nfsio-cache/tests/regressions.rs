//! One deterministic test per interleaving that lost data in Linux or that the issue names.
//! Each drives the engine by hand against the model server and checks, at the end, that what
//! the server holds durably is what the application wrote.

mod common;

use common::*;
use nfsio_cache::{ExtentState, FileError, Op, Reply, WriteOutcome};
use nfsio_proto::nfs3::{Nfs3Status, StableHow};

fn is_write_at(offset: u64) -> impl Fn(&nfsio_cache::Transmit) -> bool {
    move |t| matches!(t.op, Op::Write { offset_bytes, .. } if offset_bytes == offset)
}

/// Expected file content from a list of writes.
fn image(writes: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (offset, data) in writes {
        let end = *offset as usize + data.len();
        if out.len() < end {
            out.resize(end, 0);
        }
        out[*offset as usize..end].copy_from_slice(data);
    }
    out
}

fn states(d: &Driver, file: nfsio_cache::FileId) -> Vec<(u64, u64, ExtentState)> {
    d.engine
        .extents(file)
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.offset_bytes,
                e.offset_bytes + e.data.len() as u64,
                e.state,
            )
        })
        .collect()
}

/// The seeds' race: bytes written into a page whose earlier bytes await COMMIT must not be
/// retired by that COMMIT; the next fsync must send and commit them.
#[test]
fn seeds_race_new_bytes_in_page_awaiting_commit() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    let a = pattern(1, 100);
    let b = pattern(2, 100);
    write_ok(&mut d, f, 0, &a);
    write_ok(&mut d, f, 600, &b);
    let first = d.engine.fsync(f, 0).unwrap();
    d.poll();
    // Two WRITEs (not contiguous), UNSTABLE.
    let w1 = d.take(is_write_at(0));
    let w2 = d.take(is_write_at(600));
    assert!(matches!(
        w1.op,
        Op::Write {
            stable: StableHow::Unstable,
            ..
        }
    ));
    d.serve(&w1);
    d.serve(&w2);
    let commit = d.take_commit();
    // The application writes into page 0 while its earlier bytes await the COMMIT: new bytes
    // after them, and new bytes over part of them.
    let c = pattern(3, 100);
    let e = pattern(4, 100);
    write_ok(&mut d, f, 100, &c);
    write_ok(&mut d, f, 50, &e);
    d.serve(&commit);
    // Only [0, 50) was retired by the COMMIT; [50, 200) is new, not durable, and being sent.
    let st = states(&d, f);
    assert!(st.contains(&(0, 50, ExtentState::Clean)), "{st:?}");
    assert!(
        st.iter()
            .filter(|(s, _, _)| *s >= 50 && *s < 200)
            .all(|(_, _, state)| matches!(state, ExtentState::Dirty | ExtentState::InFlight(_))),
        "{st:?}"
    );
    assert_eq!(
        st.iter()
            .filter(|(s, _, _)| *s >= 50 && *s < 200)
            .map(|(s, e, _)| e - s)
            .sum::<u64>(),
        150
    );
    // [50, 100) rewrote bytes the first fsync waited for: it now waits for the new bytes.
    assert_eq!(d.sync_result(first), None);
    let second = d.engine.fsync(f, 0).unwrap();
    assert_eq!(
        d.sync_result(second),
        None,
        "the new bytes are not durable yet"
    );
    assert_eq!(d.finish(second), Ok(()));
    assert_eq!(d.finish(first), Ok(()));
    let expected = image(&[(0, &a), (600, &b), (100, &c), (50, &e)]);
    assert_eq!(d.durable("a"), expected);
}

/// An append to a page while that page's FILE_SYNC WRITE is in flight (the append also
/// rewrites the last bytes that WRITE carries, so it must wait for it): the WRITE's
/// completion retires only the bytes it carried and that were not rewritten.
#[test]
fn append_while_file_sync_write_completes() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    let a = pattern(1, 100);
    write_ok(&mut d, f, 0, &a);
    let first = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w = d.take_write();
    assert!(
        matches!(
            w.op,
            Op::Write {
                stable: StableHow::FileSync,
                ..
            }
        ),
        "a flush that fits in one WRITE goes FILE_SYNC"
    );
    let b = pattern(2, 110);
    write_ok(&mut d, f, 90, &b);
    assert!(
        !d.has_write(),
        "the append overlaps the WRITE in flight: it waits"
    );
    d.serve(&w);
    assert!(!d.has_commit(), "FILE_SYNC needs no COMMIT");
    let st = states(&d, f);
    assert_eq!(
        st[0],
        (0, 90, ExtentState::Clean),
        "only what the WRITE carried is retired"
    );
    assert_eq!((st[1].0, st[1].1), (90, 200));
    assert!(
        matches!(st[1].2, ExtentState::Dirty | ExtentState::InFlight(_)),
        "{st:?}"
    );
    // The append rewrote bytes the fsync waited for: it waits for the append too.
    assert_eq!(d.sync_result(first), None);
    let second = d.engine.fsync(f, 0).unwrap();
    assert_eq!(d.sync_result(second), None);
    assert_eq!(d.finish(second), Ok(()));
    assert_eq!(d.finish(first), Ok(()));
    assert_eq!(d.durable("a"), image(&[(0, &a), (90, &b)]));
}

/// One part of a multi-page WRITE is short-written while another part is rewritten: the
/// remainder goes back to dirty at its old version, the rewritten part stays at the new one,
/// and both are sent again in one WRITE.
#[test]
fn short_write_of_multi_page_write_while_part_is_rewritten() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    let a = pattern(1, 2048);
    write_ok(&mut d, f, 0, &a);
    let first = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w = d.take_write();
    let Op::Write { data, stable, .. } = &w.op else {
        unreachable!()
    };
    assert_eq!(data.len(), 2048, "four pages in one WRITE");
    let b = pattern(2, 200);
    write_ok(&mut d, f, 1000, &b);
    // The server takes only the first 700 bytes.
    d.server.apply_write(
        &w.handle,
        0,
        &data.to_bytes()[..700],
        *stable != StableHow::Unstable,
    );
    d.reply(
        &w,
        Reply::Write {
            count_bytes: 700,
            committed: *stable,
            verf: d.server.write_verf(),
            post_op_attrs: None,
        },
    );
    // The remainder (old version) and the rewritten bytes (new version) are contiguous: they
    // are sent again at once (the fsync is pending) in one WRITE.
    let again = d.take_write();
    let st = states(&d, f);
    assert_eq!(st[0].0..st[0].1, 0..700);
    assert!(
        st[1..]
            .iter()
            .all(|s| s.2 == ExtentState::InFlight(again.id)),
        "{st:?}"
    );
    assert_eq!(
        d.sync_result(first),
        None,
        "the remainder is not written yet"
    );
    assert!(
        matches!(&again.op, Op::Write { offset_bytes: 700, data, .. } if data.len() == 2048 - 700),
        "{again:?}"
    );
    d.serve(&again);
    assert_eq!(d.finish(first), Ok(()));
    assert_eq!(d.durable("a"), image(&[(0, &a), (1000, &b)]));
}

/// The server restarts between two WRITEs of one file: the second reply's verifier differs
/// from the one the first WRITE's bytes were written under, so those go back to dirty and are
/// written again — before any COMMIT.
#[test]
fn verifier_change_between_two_writes() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    let a = pattern(1, 512);
    let b = pattern(2, 512);
    write_ok(&mut d, f, 0, &a);
    write_ok(&mut d, f, 1024, &b);
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w1 = d.take(is_write_at(0));
    let w2 = d.take(is_write_at(1024));
    d.serve(&w1);
    d.server.crash();
    d.serve(&w2);
    assert_eq!(
        states(&d, f)[0].2,
        ExtentState::InFlight(d.sent[0].id),
        "the bytes written under the old verifier are being written again"
    );
    assert!(
        !d.has_commit(),
        "no COMMIT while lost bytes are being rewritten"
    );
    assert_eq!(d.finish(sync), Ok(()));
    assert_eq!(d.durable("a"), image(&[(0, &a), (1024, &b)]));
    assert_eq!(d.engine.stats().verifier_mismatches, 1);
}

/// The server restarts between the WRITEs and the COMMIT: the COMMIT's verifier differs, the
/// bytes go back to dirty and are written and committed again.
#[test]
fn verifier_change_reported_by_commit() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    let a = pattern(1, 512);
    let b = pattern(2, 512);
    write_ok(&mut d, f, 0, &a);
    write_ok(&mut d, f, 1024, &b);
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w1 = d.take(is_write_at(0));
    let w2 = d.take(is_write_at(1024));
    d.serve(&w1);
    d.serve(&w2);
    let commit = d.take_commit();
    d.server.crash();
    d.serve(&commit);
    assert_eq!(
        d.sync_result(sync),
        None,
        "the COMMIT did not make them durable"
    );
    assert!(
        d.has(is_write_at(0)) && d.has(is_write_at(1024)),
        "{:?}",
        d.sent
    );
    assert_eq!(d.finish(sync), Ok(()));
    assert_eq!(d.durable("a"), image(&[(0, &a), (1024, &b)]));
}

/// A server whose COMMIT verifier never matches its WRITE verifier: after three successive
/// mismatches the file is written FILE_SYNC, and the fsync completes.
#[test]
fn write_and_commit_verifiers_never_match() {
    let mut d = Driver::new(small_config());
    d.server.commit_verf_never_matches = true;
    let f = d.open("a");
    let a = pattern(1, 512);
    let b = pattern(2, 512);
    write_ok(&mut d, f, 0, &a);
    write_ok(&mut d, f, 1024, &b);
    let sync = d.engine.fsync(f, 0).unwrap();
    assert_eq!(d.finish(sync), Ok(()));
    assert!(d.engine.is_file_sync(f).unwrap());
    assert_eq!(d.engine.stats().verifier_mismatches, 3);
    assert_eq!(d.durable("a"), image(&[(0, &a), (1024, &b)]));
    // From now on, writes go FILE_SYNC and need no COMMIT.
    write_ok(&mut d, f, 3000, &a);
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w = d.take_write();
    assert!(matches!(
        w.op,
        Op::Write {
            stable: StableHow::FileSync,
            ..
        }
    ));
    d.serve(&w);
    assert_eq!(d.sync_result(sync), Some(Ok(())));
}

/// A fsync when the only unfinished business is a COMMIT already in flight (sent because the
/// unstable bytes passed the threshold): it waits for that COMMIT, sends no other, and
/// completes with it.
#[test]
fn fsync_when_only_a_commit_is_pending() {
    let mut config = small_config();
    config.background_flush_bytes = 2048;
    config.commit_threshold_bytes = 4096;
    let mut d = Driver::new(config);
    let f = d.open("a");
    let a = pattern(1, 4096);
    write_ok(&mut d, f, 0, &a);
    // Background flushing sends the two full chunks.
    let w1 = d.take(is_write_at(0));
    let w2 = d.take(is_write_at(2048));
    d.serve(&w1);
    d.serve(&w2);
    let commit = d.take_commit();
    assert!(d.sent.is_empty());
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    assert_eq!(d.sync_result(sync), None, "the bytes await the COMMIT");
    assert!(d.sent.is_empty(), "no second COMMIT while one is in flight");
    d.serve(&commit);
    assert_eq!(d.sync_result(sync), Some(Ok(())));
    assert_eq!(d.durable("a"), a);
}

/// Truncation while the tail WRITE is in flight: the SETATTR waits for that WRITE, and bytes
/// written past the new size after the truncation wait for the SETATTR; nothing reappears
/// past the end of the file.
#[test]
fn truncate_during_inflight_tail_write() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    let a = pattern(1, 4096);
    write_ok(&mut d, f, 0, &a);
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let head = d.take(is_write_at(0));
    let tail = d.take(is_write_at(2048));
    let truncate = d.engine.truncate(f, 3000, 0).unwrap();
    let after = pattern(2, 100);
    write_ok(&mut d, f, 3500, &after);
    let sync2 = d.engine.fsync(f, 0).unwrap();
    d.poll();
    assert!(
        !d.has(|t| matches!(t.op, Op::Setattr { .. })),
        "SETATTR must wait for the WRITE that reaches past the new size"
    );
    assert!(
        !d.has(is_write_at(3500)),
        "bytes past the new size wait for the SETATTR"
    );
    d.serve(&head);
    assert!(!d.has(|t| matches!(t.op, Op::Setattr { .. })));
    d.serve(&tail);
    let setattr = d.take(|t| matches!(t.op, Op::Setattr { size_bytes: 3000 }));
    assert!(
        !d.has(is_write_at(3500)),
        "bytes past the new size wait for the SETATTR"
    );
    d.serve(&setattr);
    assert_eq!(d.sync_result(truncate), Some(Ok(())));
    assert_eq!(d.finish(sync), Ok(()));
    assert_eq!(d.finish(sync2), Ok(()));
    let mut expected = a[..3000].to_vec();
    expected.resize(3500, 0);
    expected.extend_from_slice(&after);
    assert_eq!(d.durable("a"), expected);
    assert_eq!(d.volatile("a"), expected);
    assert_eq!(d.read_all(f, 0, 10_000), expected);
}

/// ENOSPC on a WRITE (sent by the dirty-expiry flush, before any fsync): later writes fail
/// promptly; the next fsync reports it; close does not report it again; after the report,
/// writes are accepted again.
#[test]
fn enospc_on_write_reported_once_by_fsync_then_close() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 300));
    assert_eq!(d.engine.next_deadline_ms(), Some(30_000));
    d.now_ms = 30_000;
    d.engine.handle_timeout(d.now_ms);
    d.poll();
    let w = d.take_write();
    d.reply(&w, Reply::Status(Nfs3Status::NoSpc));
    assert_eq!(
        d.engine.write(f, 300, b"more", d.now_ms),
        Err(FileError::Status(Nfs3Status::NoSpc)),
        "writes fail promptly after ENOSPC"
    );
    let sync = d.engine.fsync(f, d.now_ms).unwrap();
    assert_eq!(d.finish(sync), Err(FileError::Status(Nfs3Status::NoSpc)));
    assert_eq!(
        d.engine.write(f, 0, b"again", d.now_ms),
        Ok(WriteOutcome::Accepted),
        "reported: writes are accepted again"
    );
    let close = d.engine.close(f, d.now_ms).unwrap();
    assert_eq!(d.finish(close), Ok(()), "reported once, not again at close");
    assert_eq!(&d.durable("a")[..5], b"again");
}

/// ENOSPC while a fsync is pending: that fsync reports it, close does not.
#[test]
fn enospc_during_fsync_reported_once() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 300));
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w = d.take_write();
    d.reply(&w, Reply::Status(Nfs3Status::NoSpc));
    assert_eq!(
        d.sync_result(sync),
        Some(Err(FileError::Status(Nfs3Status::NoSpc)))
    );
    assert!(
        d.engine.extents(f).unwrap().is_empty(),
        "failed bytes are dropped"
    );
    let close = d.engine.close(f, 0).unwrap();
    assert_eq!(d.finish(close), Ok(()));
}

/// A COMMIT fails with a real error: reported once (fsync), the bytes are dropped, close is
/// clean; a JUKEBOX COMMIT is retried after a back-off instead.
#[test]
fn error_on_commit() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 512));
    write_ok(&mut d, f, 1024, &pattern(2, 512));
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w1 = d.take_write();
    let w2 = d.take_write();
    d.serve(&w1);
    d.serve(&w2);
    let commit = d.take_commit();
    d.reply(&commit, Reply::Status(Nfs3Status::Io));
    assert_eq!(
        d.sync_result(sync),
        Some(Err(FileError::Status(Nfs3Status::Io)))
    );
    assert_eq!(d.engine.stats().unstable_bytes, 0);
    let close = d.engine.close(f, 0).unwrap();
    assert_eq!(d.finish(close), Ok(()));

    // JUKEBOX: retried with back-off, not an error.
    let f = d.open("b");
    let a = pattern(3, 512);
    let b = pattern(4, 512);
    write_ok(&mut d, f, 0, &a);
    write_ok(&mut d, f, 1024, &b);
    let sync = d.engine.fsync(f, d.now_ms).unwrap();
    d.poll();
    let w1 = d.take_write();
    let w2 = d.take_write();
    d.serve(&w1);
    d.serve(&w2);
    let commit = d.take_commit();
    d.reply(&commit, Reply::Status(Nfs3Status::Jukebox));
    assert!(d.sent.is_empty(), "backing off");
    assert_eq!(d.engine.next_deadline_ms(), Some(d.now_ms + 100));
    d.now_ms += 100;
    d.engine.handle_timeout(d.now_ms);
    d.poll();
    let commit = d.take_commit();
    d.serve(&commit);
    assert_eq!(d.sync_result(sync), Some(Ok(())));
    assert_eq!(d.durable("b"), image(&[(0, &a), (1024, &b)]));
}

/// A rewrite of bytes in flight waits for that WRITE before it is sent: two overlapping
/// WRITEs with different data are never in flight together.
#[test]
fn rewrite_of_inflight_bytes_waits_for_the_write() {
    let mut d = Driver::new(small_config());
    let f = d.open("a");
    write_ok(&mut d, f, 0, &pattern(1, 512));
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let w1 = d.take_write();
    let b = pattern(2, 512);
    write_ok(&mut d, f, 0, &b);
    let sync2 = d.engine.fsync(f, 0).unwrap();
    d.poll();
    assert!(!d.has_write(), "the rewrite waits for the WRITE in flight");
    d.serve(&w1);
    assert!(d.has_write(), "now the rewrite goes");
    assert_eq!(
        d.sync_result(sync),
        None,
        "the rewrite inherited the first fsync's wait"
    );
    assert_eq!(d.finish(sync2), Ok(()));
    assert_eq!(d.finish(sync), Ok(()));
    assert_eq!(d.durable("a"), b);
}

/// A READ that was in flight when the application wrote must not overwrite the newer bytes.
#[test]
fn read_reply_never_overwrites_newer_local_bytes() {
    let mut d = Driver::new(small_config());
    let fh = handle("a");
    d.server.apply_write(&fh, 0, &pattern(9, 1024), true);
    let f = d.open("a");
    let got = d.engine.read(f, 0, 1024, 0).unwrap();
    assert!(matches!(got, nfsio_cache::ReadOutcome::Wait(_)));
    d.poll();
    let read = d.take(|t| matches!(t.op, Op::Read { .. }));
    let mine = pattern(1, 100);
    write_ok(&mut d, f, 200, &mine);
    d.serve(&read);
    let nfsio_cache::ReadOutcome::Data(data) = d.engine.read(f, 0, 1024, 0).unwrap() else {
        panic!("cached");
    };
    let mut expected = pattern(9, 1024);
    expected[200..300].copy_from_slice(&mine);
    assert_eq!(&data[..], &expected[..]);
}
