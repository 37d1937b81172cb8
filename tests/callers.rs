//! Calls made as callers other than the client's own (`Client::as_caller`), against
//! `nfsio serve`'s local store run as root, which acts as each caller on its disk: files
//! are made as their callers, each caller's write-back (background WRITEs, COMMIT, the
//! resend after a verifier change) goes out as the caller that wrote the bytes, and a write
//! by one caller to a file holding another's bytes not yet durable never sends those bytes
//! as the second caller.
//!
//! The client itself connects as uid 1003, which may write none of the files: a write-back
//! sent with the client's own credentials, or with another caller's, fails with EACCES.
//! Needs root (the server switches identities): skipped with one line otherwise.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nfsio_client::cache::EngineConfig;
use nfsio_client::{Caller, Client, ClientOptions, NfsUrl};
use nfsio_proto::nfs3::Nfs3Status;
use nfsio_testkit::TestServer;

use common::Scratch;

/// The client's own identity: may write none of the test's files.
const NOBODY_HERE: u32 = 1003;

/// A root server on `scratch/export` (mode 0777: every caller may make files in it) on
/// `listen`, with write verifiers from `instance_seed`.
async fn serve(scratch: &Scratch, listen: &str, instance_seed: u64) -> TestServer {
    let export = scratch.join("export");
    let state = scratch.join("state");
    for dir in [&export, &state] {
        std::fs::create_dir_all(dir).expect("dir");
    }
    std::fs::set_permissions(&export, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let mut config = nfsio_testkit::server::config();
    config.export_dir = export;
    config.state_dir = state;
    config.listen = listen.parse().expect("address");
    config.service.instance_seed = Some(instance_seed);
    TestServer::bind(config).await
}

/// A client of `server` acting as uid and gid 1003, with a cache that sends WRITEs from
/// 256 KiB dirty on but COMMITs only when asked (so that bytes stay unstable until `close`).
async fn client(server: &TestServer) -> Client {
    let options = ClientOptions {
        uid: Some(NOBODY_HERE),
        gid: Some(NOBODY_HERE),
        cache_config: Some(EngineConfig {
            background_flush_bytes: 256 << 10,
            commit_threshold_bytes: 1 << 30,
            streaming_window_bytes: 1 << 30,
            ..EngineConfig::default()
        }),
        ..ClientOptions::default()
    };
    let url = NfsUrl::parse(&server.url).expect("url");
    Client::connect_with(&url, options).await.expect("mount")
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).expect("stat on the server");
    (meta.uid(), meta.mode() & 0o777)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_callers_write_back_carries_their_credentials() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let scratch = Scratch::new("callers-write-back");
    let server = serve(&scratch, "127.0.0.1:0", 1).await;
    let client = client(&server).await;
    let a = client.as_caller(&Caller::new(1001, 1001));
    let b = client.as_caller(&Caller::new(1002, 1002).with_groups(vec![1002]));
    assert_eq!(b.caller(), Caller::new(1002, 1002).with_groups(vec![1002]));
    let data_a = vec![b'a'; 3 << 20];
    let data_b = vec![b'b'; 3 << 20];
    let file_a = a.create_file("a.bin", 0o600).await.expect("create as 1001");
    let file_b = b.create_file("b.bin", 0o600).await.expect("create as 1002");
    file_a.write_at(&data_a, 0).await.expect("write");
    file_b.write_at(&data_b, 0).await.expect("write");
    // Closed: sent and COMMITted as their writers.
    file_a.close().await.expect("1001's write-back");
    // Dropped without close: the background write-back, after the file is gone.
    drop(file_b);
    client
        .shutdown()
        .await
        .expect("1002's background write-back");
    let export = scratch.join("export");
    assert_eq!(owner(&export.join("a.bin")), (1001, 0o600));
    assert_eq!(owner(&export.join("b.bin")), (1002, 0o600));
    assert_eq!(std::fs::read(export.join("a.bin")).expect("read"), data_a);
    assert_eq!(std::fs::read(export.join("b.bin")).expect("read"), data_b);

    // The control: 1002's bytes in 1001's file are refused, sent as 1002.
    let intruder = b
        .open("a.bin")
        .await
        .expect("open (no permission check in NFSv3)");
    intruder.write_at(b"intruder", 0).await.expect("cached");
    let error = intruder
        .close()
        .await
        .expect_err("1002 may not write a.bin");
    assert_eq!(error.status(), Some(Nfs3Status::Acces), "{error}");
    assert_eq!(std::fs::read(export.join("a.bin")).expect("read"), data_a);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_callers_write_first_makes_the_owners_bytes_durable_as_the_owner() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let scratch = Scratch::new("callers-incompatible");
    let server = serve(&scratch, "127.0.0.1:0", 1).await;
    let client = client(&server).await;
    let a = client.as_caller(&Caller::new(1001, 1001));
    let b = client.as_caller(&Caller::new(1002, 1002));
    let made = a.create_file("shared.txt", 0o600).await.expect("create");
    made.close().await.expect("close");
    let file_a = a.open("shared.txt").await.expect("open as 1001");
    let file_b = b.open("shared.txt").await.expect("open as 1002");
    file_a.write_at(b"AAAA", 0).await.expect("write");
    // 1002 writes to the file holding 1001's bytes: those are made durable first, as 1001,
    // before 1002's write is taken.
    file_b.write_at(b"BBBB", 4).await.expect("write");
    let on_disk = scratch.join("export").join("shared.txt");
    assert_eq!(std::fs::read(&on_disk).expect("read"), b"AAAA");
    let error = file_b.close().await.expect_err("1002's bytes are refused");
    assert_eq!(error.status(), Some(Nfs3Status::Acces), "{error}");
    // 1001's open learns of the failed write-back of the file too (every open of a file
    // does, as on Linux); what matters is whose bytes reached the disk.
    let _ = file_a.close().await;
    let on_disk = std::fs::read(&on_disk).expect("read");
    assert_eq!(
        on_disk, b"AAAA",
        "1001's bytes only; none sent as the other caller"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resend_after_a_verifier_change_carries_the_owners_credentials() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let scratch = Scratch::new("callers-verifier");
    let server = serve(&scratch, "127.0.0.1:0", 1).await;
    let addr = server.addr;
    let client = client(&server).await;
    let a = client.as_caller(&Caller::new(1001, 1001));
    let file = a.create_file("unstable.bin", 0o600).await.expect("create");
    let data = vec![7u8; 1 << 20];
    file.write_at(&data, 0).await.expect("write");
    // Wait until the WRITE was answered UNSTABLE (no COMMIT is sent before `close`).
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.cache_stats().unstable_bytes < data.len() as u64
        || client.cache_stats().dirty_bytes > 0
    {
        assert!(Instant::now() < deadline, "{:?}", client.cache_stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop().await;
    // The same port, a new write verifier: the bytes are sent again, as 1001.
    let server = serve(&scratch, &addr.to_string(), 2).await;
    file.close().await.expect("resent and committed as 1001");
    assert!(client.cache_stats().verifier_mismatches >= 1);
    let on_disk = std::fs::read(scratch.join("export").join("unstable.bin")).expect("read");
    assert_eq!(on_disk, data);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_callers_truncation_goes_out_as_them_after_the_owners_bytes() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let scratch = Scratch::new("callers-truncate");
    let server = serve(&scratch, "127.0.0.1:0", 1).await;
    let client = client(&server).await;
    let a = client.as_caller(&Caller::new(1001, 1001));
    let b = client.as_caller(&Caller::new(1002, 1002));
    let file_a = a.create_file("kept.txt", 0o600).await.expect("create");
    file_a.write_at(b"AAAA", 0).await.expect("write");
    let file_b = b.open("kept.txt").await.expect("open as 1002");
    // 1002 may not truncate 1001's file: its SETATTR is refused, sent as 1002, once
    // 1001's bytes are durable (as 1001).
    let error = file_b.set_len(0).await.expect_err("1002 may not truncate");
    assert_eq!(error.status(), Some(Nfs3Status::Acces), "{error}");
    let on_disk = std::fs::read(scratch.join("export").join("kept.txt")).expect("read");
    assert_eq!(on_disk, b"AAAA");
    drop(file_b);
    let _ = file_a.close().await;
    server.stop().await;
}
