//! Writes of buffers the cache may keep: a whole chunk enters the cache and leaves in its
//! WRITE as the caller's very buffer (no copy); a write the cache cannot take gives the
//! buffer back; anything else is copied and still correct.

mod common;

use bytes::BytesMut;
use common::*;
use nfsio_cache::{Op, OwnedWrite};

#[test]
fn a_whole_chunk_is_sent_in_the_callers_own_buffer() {
    let config = small_config();
    let wsize = config.wsize_bytes as usize;
    let mut d = Driver::new(config);
    let f = d.open("owned");
    let buf = BytesMut::from(&pattern(5, wsize)[..]);
    let at = buf.as_ptr();
    let outcome = d.engine.write_owned(f, wsize as u64, buf, 0).unwrap();
    assert_eq!(outcome, OwnedWrite::Accepted);
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let sent = d
        .sent
        .iter()
        .find_map(|t| match &t.op {
            Op::Write { data, .. } => Some(data.as_ptr()),
            _ => None,
        })
        .expect("a WRITE");
    assert_eq!(
        sent, at,
        "the WRITE carries the caller's buffer, not a copy"
    );
    assert_eq!(d.finish(sync), Ok(()));
    let mut expected = vec![0u8; wsize];
    expected.extend(pattern(5, wsize));
    assert_eq!(d.durable("owned"), expected);
}

#[test]
fn owned_writes_across_chunks_and_into_dirty_bytes_are_copied_and_correct() {
    let config = small_config();
    let wsize = config.wsize_bytes as usize;
    let mut d = Driver::new(config);
    let f = d.open("mixed");
    let mut model = vec![0u8; 3 * wsize];
    // Across a chunk boundary, then into the middle of what is dirty.
    let spans = [(wsize / 2, 2 * wsize, 1u8), (wsize, 100, 2), (0, 10, 3)];
    for (start, len, seed) in spans {
        let data = pattern(seed, len);
        let outcome = d
            .engine
            .write_owned(f, start as u64, BytesMut::from(&data[..]), 0)
            .unwrap();
        assert_eq!(outcome, OwnedWrite::Accepted);
        model[start..start + len].copy_from_slice(&data);
    }
    let sync = d.engine.fsync(f, 0).unwrap();
    assert_eq!(d.finish(sync), Ok(()));
    assert_eq!(d.durable("mixed"), model[..wsize / 2 + 2 * wsize].to_vec());
}

#[test]
fn a_write_the_cache_cannot_take_gives_its_buffer_back() {
    let mut config = small_config();
    config.memory_bound_bytes = 16 << 10;
    config.background_flush_bytes = 16 << 10;
    config.commit_threshold_bytes = 1 << 30;
    let mut d = Driver::new(config);
    let f = d.open("full");
    let mut offset = 0u64;
    loop {
        // Far apart: not a stream, so only the memory bound stops the writer.
        let buf = BytesMut::from(&pattern(offset as u8, 1024)[..]);
        let at = buf.as_ptr();
        match d.engine.write_owned(f, offset * 7, buf, 0).unwrap() {
            OwnedWrite::Accepted => offset += 1024,
            OwnedWrite::Blocked(_, back) => {
                assert_eq!(back.as_ptr(), at, "the very buffer comes back");
                assert_eq!(&back[..], &pattern(offset as u8, 1024)[..]);
                break;
            }
        }
        assert!(offset < 1 << 20, "never blocked");
    }
}
