//! Writes of buffers the cache may keep: a whole chunk enters the cache and leaves in its
//! WRITE as the caller's very buffer (no copy); a write the cache cannot take gives the
//! buffer back; anything else is copied and still correct.

mod common;

use bytes::BytesMut;
use common::*;
use nfsio_cache::{EngineConfig, Op, OwnedWrite};

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
            Op::Write { data, .. } => Some(data.to_bytes().as_ptr()),
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

#[test]
fn a_write_that_joins_extents_carries_their_buffers_and_shared_zeros_not_a_copy() {
    // Two owned writes in one chunk of a new file, a known-zero gap between them: one WRITE
    // carries both, as the callers' very buffers with the zeros between.
    let config = EngineConfig {
        bridge_gap_bytes: 1024,
        ..small_config()
    };
    let mut d = Driver::new(config);
    let f = d.open("joined");
    let a = BytesMut::from(&pattern(1, 512)[..]);
    let b = BytesMut::from(&pattern(2, 512)[..]);
    let (at_a, at_b) = (a.as_ptr(), b.as_ptr());
    assert_eq!(
        d.engine.write_owned(f, 0, a, 0).unwrap(),
        OwnedWrite::Accepted
    );
    assert_eq!(
        d.engine.write_owned(f, 1024, b, 0).unwrap(),
        OwnedWrite::Accepted
    );
    let sync = d.engine.fsync(f, 0).unwrap();
    d.poll();
    let writes: Vec<_> = d
        .sent
        .iter()
        .filter_map(|t| match &t.op {
            Op::Write {
                offset_bytes, data, ..
            } => Some((*offset_bytes, data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(writes.len(), 1, "one WRITE joins both extents");
    let (offset, data) = &writes[0];
    assert_eq!((*offset, data.len()), (0, 1536));
    let starts: Vec<*const u8> = data.segments().iter().map(|s| s.as_ptr()).collect();
    assert_eq!(starts.len(), 3, "extent, zeros, extent");
    assert_eq!(
        (starts[0], starts[2]),
        (at_a, at_b),
        "the WRITE carries the extents' own buffers, not a copy of them"
    );
    assert!(data.segments()[1].iter().all(|&byte| byte == 0));
    assert_eq!(d.finish(sync), Ok(()));
    let mut expected = pattern(1, 512);
    expected.extend(vec![0u8; 512]);
    expected.extend(pattern(2, 512));
    assert_eq!(d.durable("joined"), expected);
}
