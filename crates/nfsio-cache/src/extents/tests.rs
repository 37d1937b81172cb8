//! The extent map alone: every allowed transition keeps the indexes in step, and every other
//! change of state panics where it is attempted.

use bytes::{Bytes, BytesMut};
use nfsio_proto::nfs3::WriteVerifier;

use super::{ExtentIndex, ExtentMap, Removal, State, Transition};
use crate::api::RpcId;

const INO: u64 = 1;
const CHUNK_BYTES: u64 = 1 << 16;
const VERF: WriteVerifier = WriteVerifier([1; 8]);
const OTHER_VERF: WriteVerifier = WriteVerifier([2; 8]);

/// A map holding one dirty extent of `len_bytes` at 0.
fn dirty(len_bytes: usize) -> (ExtentMap, ExtentIndex) {
    let mut all = ExtentIndex::new(CHUNK_BYTES);
    let mut map = ExtentMap::default();
    map.insert_dirty(
        &mut all,
        INO,
        0,
        1,
        BytesMut::from(&vec![7u8; len_bytes][..]),
    );
    check(&map, &all);
    (map, all)
}

fn check(map: &ExtentMap, all: &ExtentIndex) {
    map.check_layout(INO, CHUNK_BYTES, u64::MAX)
        .expect("layout");
    map.check_versions(INO, 2, all).expect("versions");
    map.check_file_index(INO, CHUNK_BYTES).expect("file index");
    all.check([(INO, map)].into_iter()).expect("engine index");
}

fn send(map: &mut ExtentMap, all: &mut ExtentIndex, rpc: RpcId) {
    let payload = map.freeze_dirty(0);
    map.restate(all, INO, 0, Transition::Send { rpc, payload });
    check(map, all);
}

#[test]
fn dirty_in_flight_unstable_clean() {
    let (mut map, mut all) = dirty(100);
    let rpc = RpcId(1);
    send(&mut map, &mut all, rpc);
    assert_eq!(map.at(0).state(), State::InFlight { rpc });
    assert_eq!(map.bytes().inflight, 100);
    let seq = all.new_unstable_seq();
    map.restate(
        &mut all,
        INO,
        0,
        Transition::WrittenUnstable {
            rpc,
            verf: VERF,
            seq,
        },
    );
    check(&map, &all);
    assert_eq!(map.unstable_upto(seq), vec![0]);
    assert_eq!(map.min_unstable_since(), Some(1));
    map.restate(&mut all, INO, 0, Transition::Committed { verf: VERF });
    check(&map, &all);
    assert!(map.at(0).state().is_clean());
    assert_eq!(map.at(0).since(), 0);
    assert_eq!(map.min_nonclean_since(), None);
    assert_eq!(all.next_clean(None), Some((1, INO, 0)));
}

#[test]
fn back_to_dirty_on_a_changed_verifier_or_an_unsent_write() {
    let (mut map, mut all) = dirty(100);
    send(&mut map, &mut all, RpcId(1));
    map.restate(&mut all, INO, 0, Transition::NotWritten { rpc: RpcId(1) });
    check(&map, &all);
    assert!(map.at(0).state().is_dirty());
    send(&mut map, &mut all, RpcId(2));
    let seq = all.new_unstable_seq();
    let written = Transition::WrittenUnstable {
        rpc: RpcId(2),
        verf: VERF,
        seq,
    };
    map.restate(&mut all, INO, 0, written);
    assert_eq!(map.unstable_not_under(OTHER_VERF), vec![0]);
    assert!(map.unstable_not_under(VERF).is_empty());
    map.restate(
        &mut all,
        INO,
        0,
        Transition::VerifierChanged { verf: OTHER_VERF },
    );
    check(&map, &all);
    assert!(map.at(0).state().is_dirty());
    assert_eq!(map.min_pending_since(), Some(1));
}

#[test]
fn split_and_append_keep_the_indexes() {
    let (mut map, mut all) = dirty(100);
    map.split_at(&mut all, INO, 40);
    check(&map, &all);
    assert_eq!(map.starts_in(0, 100), vec![0, 40]);
    map.append_dirty(&mut all, INO, 40, &[9; 20], 1);
    check(&map, &all);
    assert_eq!(map.at(40).len(), 80);
    assert_eq!(map.gaps(0, 200), vec![(120, 200)]);
    map.insert_clean(&mut all, INO, 120, Bytes::from_static(&[0; 10]));
    check(&map, &all);
    assert_eq!(map.assemble(115, 125).len(), 10);
    map.remove(&mut all, INO, 120, Removal::Evicted);
    map.remove(&mut all, INO, 0, Removal::Superseded);
    map.remove(&mut all, INO, 40, Removal::Truncated);
    check(&map, &all);
    assert!(map.is_empty());
    assert_eq!(all.extent_count(), 0);
}

#[test]
#[should_panic(expected = "not allowed")]
fn a_reply_cannot_retire_bytes_another_write_carries() {
    let (mut map, mut all) = dirty(100);
    send(&mut map, &mut all, RpcId(1));
    map.restate(
        &mut all,
        INO,
        0,
        Transition::WrittenDurable { rpc: RpcId(2) },
    );
}

#[test]
#[should_panic(expected = "not allowed")]
fn dirty_bytes_cannot_become_clean_without_a_write() {
    let (mut map, mut all) = dirty(100);
    map.restate(&mut all, INO, 0, Transition::Committed { verf: VERF });
}

#[test]
#[should_panic(expected = "not allowed")]
fn a_commit_under_another_verifier_cannot_clean() {
    let (mut map, mut all) = dirty(100);
    send(&mut map, &mut all, RpcId(1));
    let seq = all.new_unstable_seq();
    let written = Transition::WrittenUnstable {
        rpc: RpcId(1),
        verf: VERF,
        seq,
    };
    map.restate(&mut all, INO, 0, written);
    map.restate(&mut all, INO, 0, Transition::Committed { verf: OTHER_VERF });
}

#[test]
#[should_panic(expected = "not allowed")]
fn non_clean_bytes_are_never_evicted() {
    let (mut map, mut all) = dirty(100);
    map.remove(&mut all, INO, 0, Removal::Evicted);
}

#[test]
#[should_panic(expected = "not allowed")]
fn a_failed_write_drops_only_its_own_bytes() {
    let (mut map, mut all) = dirty(100);
    send(&mut map, &mut all, RpcId(1));
    map.remove(&mut all, INO, 0, Removal::WriteFailed { rpc: RpcId(2) });
}
