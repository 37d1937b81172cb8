//! Real clients against this server: nfsio's own client crate, and libnfs's `nfs-cp` and
//! `nfs-ls` (a peer written by others, from Debian's libnfs-utils).
//!
//! The libnfs tests need the `nfs-cp` program: without it they print one `skipped:` line, or
//! fail when `CI=true` (CI must not pass by skipping; `scripts/install-test-deps.sh` installs
//! it).

mod common;

use std::process::Command;

use common::*;

fn have_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: {tool} is missing (run scripts/install-test-deps.sh)");
        }
        eprintln!("skipped: {test}: {tool} is not installed");
    }
    found
}

/// Runs a program on a blocking thread (the server keeps running on the runtime).
async fn run(program: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut command = Command::new(program);
    command.args(args);
    tokio::time::timeout(
        TIMEOUT,
        tokio::task::spawn_blocking(move || command.output().expect("runs")),
    )
    .await
    .expect("finishes in time")
    .expect("joined")
}

/// `nfs://127.0.0.1/export/NAME?version=3&nfsport=..&mountport=..`
fn file_url(server_url: &str, name: &str) -> String {
    let (base, query) = server_url.split_once('?').expect("a query");
    format!("{base}/{name}?version=3&{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfsio_client_writes_syncs_and_reads_back() {
    let dirs = Dirs::new();
    let server = TestServer::bind(dirs.config()).await;
    let client = nfsio_client::Client::connect(&server.url)
        .await
        .expect("mount");
    let file = client
        .create_file("hello.bin", 0o644)
        .await
        .expect("create");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    file.write_at(&data, 0).await.expect("write");
    file.sync_all().await.expect("sync");
    let mut back = vec![0u8; data.len()];
    let mut done = 0;
    while done < back.len() {
        let n = file
            .read_at(&mut back[done..], done as u64)
            .await
            .expect("read");
        assert!(n > 0);
        done += n;
    }
    assert!(back == data);
    file.close().await.expect("close");
    assert!(std::fs::read(dirs.export.path().join("hello.bin")).unwrap() == data);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libnfs_nfs_cp_and_nfs_ls() {
    if !have_tool("nfs-cp", "libnfs_nfs_cp_and_nfs_ls") {
        return;
    }
    let dirs = Dirs::new();
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("source.bin");
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&source, &data).unwrap();
    let server = TestServer::bind(dirs.config()).await;
    let url = file_url(&server.libnfs_url, "copied.bin");

    let up = run("nfs-cp", &[source.as_os_str(), url.as_ref()]).await;
    assert!(
        up.status.success(),
        "nfs-cp up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(std::fs::read(dirs.export.path().join("copied.bin")).unwrap() == data);

    let back = scratch.path().join("back.bin");
    let down = run("nfs-cp", &[url.as_ref(), back.as_os_str()]).await;
    assert!(
        down.status.success(),
        "nfs-cp down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(std::fs::read(&back).unwrap() == data);

    std::fs::create_dir(dirs.export.path().join("sub")).unwrap();
    let listing = run("nfs-ls", &[file_url(&server.libnfs_url, "").as_ref()]).await;
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("copied.bin") && listing.contains("5000000"),
        "{listing}"
    );
    assert!(listing.contains("sub"), "{listing}");
    server.stop().await;
}
