//! The local store keeps files open between calls (a stream of WRITEs opens its file once);
//! a file no call uses any more is closed, so that one unlinked on the server's disk gives its
//! blocks back instead of holding them until the server stops.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::stores::{Local, Store};
use nfsio_proto::nfs3::*;

/// Descriptors of this process (the in-process server's among them) open on a file under
/// `dir` that has been unlinked.
fn deleted_files_held_open(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with(&dir) && target.ends_with("(deleted)"))
        .collect()
}

#[tokio::test]
async fn a_file_unlinked_on_the_servers_disk_is_not_held_open() {
    let store = Local::start_with(|config| config.service.limits.open_file_idle_ms = 200).await;
    let export = store.export_dir().to_path_buf();
    let mut c = store.server().client().await;
    let root = c.root().await;
    let file = c.create_file(&root, "big").await;
    match c.write(&file, 0, &[7u8; 65536], StableHow::Unstable).await {
        NfsRes::Ok(_) => {}
        NfsRes::Fail { status, .. } => panic!("WRITE: {status}"),
    }
    // Someone on the server removes the file; the store still has it open from the WRITE.
    std::fs::remove_file(export.join("big")).unwrap();
    let held = deleted_files_held_open(&export);
    assert_eq!(held.len(), 1, "the WRITE's descriptor is kept: {held:?}");
    // Unused for 200 ms, it is closed at a sweep (once a second).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !deleted_files_held_open(&export).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still held open after 5 s: {:?}",
            deleted_files_held_open(&export)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.stop().await;
}
