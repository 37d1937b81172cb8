//! Files written as a stream hold their window, not the cache: full chunks go at once, a
//! COMMIT starts at half the window, the writer waits at the window, committed bytes leave.
//! Random writers still get the whole cache to coalesce in.

mod common;

use common::*;
use nfsio_cache::{EngineConfig, Op, WriteOutcome};

/// 512-byte pages, 2 KiB WRITEs, a 64 KiB bound and a 16 KiB window.
fn config() -> EngineConfig {
    let config = small_config();
    assert_eq!(config.streaming_window_bytes, 16 << 10);
    config
}

/// Writes `total` bytes sequentially in 1 KiB pieces; whenever the engine says wait, serves
/// the oldest call in flight and tries again. Returns the most bytes the engine held at once.
fn stream(d: &mut Driver, f: nfsio_cache::FileId, total: u64) -> u64 {
    let mut offset = 0u64;
    let mut peak = 0u64;
    let mut steps = 0;
    while offset < total {
        let piece = pattern((offset / 1024) as u8, 1024);
        match d.engine.write(f, offset, &piece, d.now_ms).expect("write") {
            WriteOutcome::Accepted => offset += 1024,
            WriteOutcome::Blocked(_) => {
                d.poll();
                assert!(!d.sent.is_empty(), "blocked with nothing in flight");
                let t = d.sent.remove(0);
                d.serve(&t);
            }
        }
        d.poll();
        // The server is slower than the writer: one call answered per two pieces.
        if offset.is_multiple_of(2048) && !d.sent.is_empty() {
            let t = d.sent.remove(0);
            d.serve(&t);
        }
        peak = peak.max(d.engine.stats().total_bytes());
        steps += 1;
        assert!(steps < 1_000_000, "the stream makes no progress");
    }
    peak
}

#[test]
fn a_stream_holds_its_window_and_its_bytes_arrive_whole() {
    let config = config();
    let window = config.streaming_window_bytes;
    let mut d = Driver::new(config);
    let f = d.open("stream");
    let total = 512 << 10;
    let peak = stream(&mut d, f, total);
    let sync = d.engine.fsync(f, d.now_ms).expect("fsync");
    assert_eq!(d.finish(sync), Ok(()));

    let stats = d.engine.stats();
    assert!(
        peak <= window,
        "the stream held {peak} bytes at once, more than its {window}-byte window"
    );
    assert!(
        stats.stream_writes_blocked > 0,
        "the writer waited: {stats:?}"
    );
    assert!(
        stats.commits_sent >= total / window,
        "committed as it went: {stats:?}"
    );
    assert!(
        stats.stream_bytes_dropped >= total - window,
        "committed bytes left the cache: {stats:?}"
    );
    let expected: Vec<u8> = (0..total / 1024)
        .flat_map(|i| pattern(i as u8, 1024))
        .collect();
    assert_eq!(d.durable("stream"), expected);
}

#[test]
fn a_streams_full_chunks_are_sent_before_the_background_threshold() {
    let config = config();
    assert!(config.background_flush_bytes >= 8 << 10);
    let mut d = Driver::new(config);
    let f = d.open("s");
    for i in 0..4u64 {
        write_ok(&mut d, f, i * 1024, &pattern(i as u8, 1024));
    }
    // 4 KiB written in order: a stream (two full WRITEs), far below the 16 KiB threshold.
    let writes: Vec<(u64, usize)> = d
        .sent
        .iter()
        .filter_map(|t| match &t.op {
            Op::Write {
                offset_bytes, data, ..
            } => Some((*offset_bytes, data.len())),
            _ => None,
        })
        .collect();
    assert_eq!(writes, vec![(0, 2048), (2048, 2048)]);
}

#[test]
fn random_writers_keep_the_whole_cache_to_coalesce_in() {
    let config = config();
    let window = config.streaming_window_bytes;
    let mut d = Driver::new(config);
    let f = d.open("random");
    // 40 KiB in 1 KiB pieces, in an order that never continues the previous write.
    let mut accepted = 0u64;
    for i in 0..40u64 {
        let slot = (i * 17) % 40;
        let outcome = d
            .engine
            .write(f, slot * 1024, &pattern(slot as u8, 1024), d.now_ms)
            .expect("write");
        assert_eq!(outcome, WriteOutcome::Accepted, "piece {i} waited");
        accepted += 1024;
    }
    assert!(
        accepted > window,
        "more than a stream's window, without waiting"
    );
    assert_eq!(d.engine.stats().stream_writes_blocked, 0);
}
