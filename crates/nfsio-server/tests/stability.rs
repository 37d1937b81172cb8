//! Honest stability: what WRITE and COMMIT answer, and the write verifier.
//!
//! What every store must do is part of the storage contract (see procedures.rs), run over the
//! local store (`local::*`) and the memory store (`memory::*`). Faults (write and sync errors,
//! short writes) and crashes are the memory store's alone: no local file system can be made to
//! fail on cue, so those cases run over it only.

mod common;

use std::sync::Arc;

use common::stores::{Store, store_contract};
use common::*;
use nfsio_proto::nfs3::*;
use nfsio_server::{Fault, MemStore};

fn ok<T: std::fmt::Debug, F: std::fmt::Debug>(res: NfsRes<T, F>) -> T {
    match res {
        NfsRes::Ok(ok) => ok,
        NfsRes::Fail { status, fail } => panic!("{status}: {fail:?}"),
    }
}

store_contract!(
    each_stability_level_is_answered_as_asked_and_verifiers_match,
    verifier_changes_across_restart_and_old_handles_still_work,
    large_writes_and_reads_round_trip,
);

async fn each_stability_level_is_answered_as_asked_and_verifiers_match<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let file = c.create_file(&root, "f").await;

    let unstable = ok(c.write(&file, 0, b"hello", StableHow::Unstable).await);
    assert_eq!(unstable.committed, StableHow::Unstable);
    assert_eq!(unstable.count, 5);
    let data_sync = ok(c.write(&file, 5, b" big", StableHow::DataSync).await);
    assert_eq!(data_sync.committed, StableHow::DataSync);
    let file_sync = ok(c.write(&file, 9, b" world", StableHow::FileSync).await);
    assert_eq!(file_sync.committed, StableHow::FileSync);
    let commit = ok(c.commit(&file).await);

    assert_eq!(unstable.verf, data_sync.verf);
    assert_eq!(unstable.verf, file_sync.verf);
    assert_eq!(unstable.verf, commit.verf);
    assert_eq!(server.service.write_verifier(), commit.verf);
    // Weak cache consistency: the size before and after the write.
    assert_eq!(file_sync.file_wcc.before.unwrap().size, 9);
    assert_eq!(file_sync.file_wcc.after.unwrap().size, 15);
    assert_eq!(store.view().content("f").unwrap(), b"hello big world");
    let read = ok(c.read(&file, 0, 100).await);
    assert_eq!(&read.data[..], b"hello big world");
    assert!(read.eof);
    store.stop().await;
}

async fn verifier_changes_across_restart_and_old_handles_still_work<S: Store>() {
    let mut store = S::start().await;
    let mut c = store.server().client().await;
    let root = c.root().await;
    let sub = match c
        .nfs(Nfs3Call::Mkdir(MkdirArgs {
            where_: dir_op(&root, "sub"),
            attributes: Sattr::default(),
        }))
        .await
    {
        Nfs3Reply::Mkdir(res) => ok(res).obj.unwrap(),
        other => panic!("{other:?}"),
    };
    let file = c.create_file(&sub, "f").await;
    let before = ok(c.write(&file, 0, b"abc", StableHow::Unstable).await).verf;
    assert_eq!(ok(c.commit(&file).await).verf, before);
    drop(c);

    // A new instance on the same store and handle key (for the local store: the same export
    // and state directory).
    store.restart().await;
    let mut c = store.server().client().await;
    assert_eq!(c.root().await, root, "the root handle survives the restart");
    // The handle of a file deep in the export works before any LOOKUP (the server has to find
    // the inode again).
    let attr = ok(c.getattr(&file).await).obj_attributes;
    assert_eq!(attr.size, 3);
    let after = ok(c.write(&file, 3, b"def", StableHow::Unstable).await).verf;
    assert_ne!(before, after, "a new instance has a new verifier");
    assert_eq!(ok(c.commit(&file).await).verf, after);
    assert_eq!(&ok(c.read(&file, 0, 10).await).data[..], b"abcdef");
    store.stop().await;
}

#[tokio::test]
async fn verifier_changes_after_a_write_error_and_after_a_sync_error() {
    let store = Arc::new(MemStore::new());
    let server = TestServer::memory(store.clone(), 1).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let file = c.create_file(&root, "f").await;

    let v1 = ok(c.write(&file, 0, b"one", StableHow::Unstable).await).verf;
    assert_eq!(ok(c.commit(&file).await).verf, v1);

    store.inject(Fault::WriteError(Nfs3Status::Io));
    let failed = c.write(&file, 3, b"two", StableHow::Unstable).await;
    assert_eq!(failed.status(), Nfs3Status::Io);
    let v2 = ok(c.write(&file, 3, b"two", StableHow::Unstable).await).verf;
    assert_ne!(v1, v2, "a write error changes the verifier");
    assert_eq!(ok(c.commit(&file).await).verf, v2);

    // An unstable write, then a failing sync: the data is lost, and the verifier says so.
    let v = ok(c.write(&file, 6, b"three", StableHow::Unstable).await).verf;
    assert_eq!(v, v2);
    store.inject(Fault::SyncError(Nfs3Status::Io));
    assert_eq!(c.commit(&file).await.status(), Nfs3Status::Io);
    let v3 = ok(c.commit(&file).await).verf;
    assert_ne!(
        v3, v2,
        "the client must see that its unstable write may be lost"
    );
    assert_eq!(server.service.verifier_resets(), 2);

    // ENOSPC on a FILE_SYNC write: an error, never a FILE_SYNC answer.
    store.inject(Fault::WriteError(Nfs3Status::NoSpc));
    assert_eq!(
        c.write(&file, 0, b"x", StableHow::FileSync).await.status(),
        Nfs3Status::NoSpc
    );
    server.stop().await;
}

#[tokio::test]
async fn short_writes_answer_the_bytes_written() {
    let store = Arc::new(MemStore::new());
    let server = TestServer::memory(store.clone(), 2).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let file = c.create_file(&root, "f").await;
    store.inject(Fault::ShortWrite(2));
    let res = ok(c.write(&file, 0, b"abcdef", StableHow::FileSync).await);
    assert_eq!(res.count, 2);
    assert_eq!(res.committed, StableHow::FileSync);
    let id = store.lookup_path("/f").unwrap();
    assert_eq!(store.durable_content(id).unwrap(), b"ab");
    server.stop().await;
}

#[tokio::test]
async fn memory_store_crash_drops_unstable_and_keeps_committed_data_over_the_wire() {
    let store = Arc::new(MemStore::new());
    let server = TestServer::memory(store.clone(), 3).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let committed = c.create_file(&root, "committed").await;
    let synced = c.create_file(&root, "synced").await;
    let lost = c.create_file(&root, "lost").await;
    ok(
        c.write(&committed, 0, b"kept by commit", StableHow::Unstable)
            .await,
    );
    ok(c.commit(&committed).await);
    ok(
        c.write(&synced, 0, b"kept by file_sync", StableHow::FileSync)
            .await,
    );
    ok(c.write(&lost, 0, b"gone", StableHow::Unstable).await);
    ok(c.write(&committed, 0, b"KEPT", StableHow::Unstable).await);
    assert_eq!(&ok(c.read(&lost, 0, 100).await).data[..], b"gone");

    store.crash();

    assert_eq!(
        &ok(c.read(&committed, 0, 100).await).data[..],
        b"kept by commit"
    );
    assert_eq!(
        &ok(c.read(&synced, 0, 100).await).data[..],
        b"kept by file_sync"
    );
    assert_eq!(&ok(c.read(&lost, 0, 100).await).data[..], b"");
    server.stop().await;
}

async fn large_writes_and_reads_round_trip<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let file = c.create_file(&root, "big").await;
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..4u64 {
        let res = ok(c.write(&file, i << 20, &data, StableHow::Unstable).await);
        assert_eq!(res.count, 1 << 20);
    }
    ok(c.commit(&file).await);
    let read = ok(c.read(&file, 3 << 20, 1 << 20).await);
    assert_eq!(read.data.len(), 1 << 20);
    assert!(read.data[..] == data[..]);
    assert!(read.eof);
    // A READ larger than rtmax is clamped, not refused.
    let read = ok(c.read(&file, 0, 8 << 20).await);
    assert_eq!(read.count, 1 << 20);
    assert!(!read.eof);
    store.stop().await;
}
