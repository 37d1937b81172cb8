//! The memory store's own tests: the crash model (what survives a crash, what a failed sync
//! loses, injected faults), inode reuse, and READDIR cookies. Its NFS behaviour is also
//! checked by the storage contract (the crate's `tests/`, `memory::*`).

use bytes::Bytes;
use nfsio_proto::nfs3::{CookieVerifier, Nfs3Status, Sattr, StableHow};

use super::{Fault, MemStore};
use crate::storage::{Caller, CreateMode, FileId, Storage};

fn root() -> Caller {
    Caller::root()
}

fn new_file(store: &MemStore, name: &str) -> FileId {
    store
        .create(
            &root(),
            store.root(),
            name.as_bytes(),
            CreateMode::Guarded(&Sattr::default()),
        )
        .unwrap()
        .id
}

#[test]
fn crash_drops_unstable_data_and_keeps_committed_data() {
    let store = MemStore::new();
    let a = new_file(&store, "a");
    let b = new_file(&store, "b");
    let c = new_file(&store, "c");
    let w = |id, off, data: &'static [u8], how| {
        store
            .write(&root(), id, off, &Bytes::from_static(data), how)
            .unwrap()
    };
    assert_eq!(
        w(a, 0, b"committed", StableHow::Unstable).committed,
        StableHow::Unstable
    );
    store.commit(&root(), a, 0, 0).unwrap();
    w(a, 0, b"COMMITTED-but-then-overwritten", StableHow::Unstable);
    assert_eq!(
        w(b, 0, b"file-sync", StableHow::FileSync).committed,
        StableHow::FileSync
    );
    w(c, 0, b"never committed", StableHow::Unstable);
    assert_eq!(store.content(c).unwrap(), b"never committed");

    store.crash();

    assert_eq!(store.content(a).unwrap(), b"committed");
    assert_eq!(store.content(b).unwrap(), b"file-sync");
    assert_eq!(store.content(c).unwrap(), b"");
    // Namespace operations are synchronous: all three files still exist.
    assert!(store.lookup_path("/c").is_ok());
}

#[test]
fn sync_error_loses_unstable_data_and_says_so() {
    let store = MemStore::new();
    let a = new_file(&store, "a");
    store
        .write(
            &root(),
            a,
            0,
            &Bytes::from_static(b"unstable"),
            StableHow::Unstable,
        )
        .unwrap();
    store.inject(Fault::SyncError(Nfs3Status::Io));
    let e = store.commit(&root(), a, 0, 0).unwrap_err();
    assert_eq!(e.status, Nfs3Status::Io);
    assert!(e.lost_unstable_data);
    assert_eq!(store.content(a).unwrap(), b"");
    // The fault was one-shot.
    store.commit(&root(), a, 0, 0).unwrap();
}

#[test]
fn write_faults_and_short_writes() {
    let store = MemStore::new();
    let a = new_file(&store, "a");
    store.inject(Fault::WriteError(Nfs3Status::NoSpc));
    let e = store
        .write(
            &root(),
            a,
            0,
            &Bytes::from_static(b"xyz"),
            StableHow::Unstable,
        )
        .unwrap_err();
    assert_eq!(e.status, Nfs3Status::NoSpc);
    assert!(e.lost_unstable_data);
    store.inject(Fault::ShortWrite(2));
    let out = store
        .write(
            &root(),
            a,
            0,
            &Bytes::from_static(b"xyz"),
            StableHow::FileSync,
        )
        .unwrap();
    assert_eq!(out.count, 2);
    assert_eq!(store.durable_content(a).unwrap(), b"xy");
}

#[test]
fn reused_inode_numbers_get_new_generations() {
    let store = MemStore::new();
    let a = new_file(&store, "a");
    store.remove(&root(), store.root(), b"a").unwrap();
    let b = new_file(&store, "b");
    assert_eq!(a.ino, b.ino, "the inode number is reused");
    assert_ne!(a.generation, b.generation);
    assert_eq!(store.getattr(a).unwrap_err().status, Nfs3Status::Stale);
    assert!(store.getattr(b).is_ok());
}

#[test]
fn readdir_cookies_survive_changes() {
    let store = MemStore::new();
    for name in ["a", "b", "c", "d"] {
        new_file(&store, name);
    }
    let root = store.root();
    let page = store
        .readdir(
            &Caller::root(),
            root,
            0,
            CookieVerifier::default(),
            4,
            false,
        )
        .unwrap();
    let names: Vec<&[u8]> = page.entries.iter().map(|e| &e.name[..]).collect();
    assert_eq!(names, [&b"."[..], b"..", b"a", b"b"]);
    assert!(!page.eof);
    store.remove(&Caller::root(), root, b"a").unwrap();
    let next = store
        .readdir(
            &Caller::root(),
            root,
            page.entries[3].cookie,
            page.verifier,
            10,
            true,
        )
        .unwrap();
    let names: Vec<&[u8]> = next.entries.iter().map(|e| &e.name[..]).collect();
    assert_eq!(names, [&b"c"[..], b"d"]);
    assert!(next.eof);
    assert!(next.entries.iter().all(|e| e.plus.is_some()));
}

#[test]
fn the_largest_cookie_lists_nothing() {
    // Found by fuzzing: `cookie + 1` overflowed.
    let store = MemStore::new();
    new_file(&store, "a");
    let page = store
        .readdir(
            &root(),
            store.root(),
            u64::MAX,
            CookieVerifier::default(),
            10,
            false,
        )
        .unwrap();
    assert!(page.entries.is_empty());
    assert!(page.eof);
}

#[test]
fn dotdot_of_root_is_root() {
    let store = MemStore::new();
    let (id, _) = store.lookup(&root(), store.root(), b"..").unwrap();
    assert_eq!(id, store.root());
}
