//! MKNOD of character and block devices: refused unless the server allows devices
//! (`nfsio serve --devices`), and then made as the caller, so that the kernel's CAP_MKNOD
//! check decides: root (not squashed) makes them, an ordinary uid gets NFS3ERR_PERM.
//! Needs a root server (it switches to each caller's identity); skipped otherwise.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::stores::{Local, Store};
use common::*;
use nfsio_proto::nfs3::*;

fn device(major: u32, minor: u32) -> DeviceData {
    DeviceData {
        dev_attributes: Sattr {
            mode: Some(0o640),
            ..Sattr::default()
        },
        spec: SpecData { major, minor },
    }
}

async fn mknod(c: &mut TestClient, dir: &FileHandle, name: &str, what: MknodData) -> Nfs3Status {
    match c
        .nfs(Nfs3Call::Mknod(MknodArgs {
            where_: dir_op(dir, name),
            what,
        }))
        .await
    {
        Nfs3Reply::Mknod(res) => res.status(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn devices_are_made_only_when_allowed_and_only_for_root() {
    if !nfsio_testkit::require_root() {
        return;
    }
    // Without --devices: NOTSUPP for everyone, nothing made.
    let store = Local::start().await;
    let mut c = store.server().client().await;
    let root = c.root().await;
    let status = mknod(&mut c, &root, "null", MknodData::Char(device(1, 3))).await;
    assert_eq!(status, Nfs3Status::NotSupp);
    assert!(!store.view().exists("null"));
    store.stop().await;

    let store = Local::start_with(|config| config.devices = true).await;
    let mut c = store.server().client().await;
    let root = c.root().await;
    assert_eq!(
        mknod(&mut c, &root, "null", MknodData::Char(device(1, 3))).await,
        Nfs3Status::Ok
    );
    assert_eq!(
        mknod(&mut c, &root, "loop", MknodData::Block(device(7, 200))).await,
        Nfs3Status::Ok
    );
    let on_disk = |name: &str| std::fs::symlink_metadata(store_path(&store, name)).unwrap();
    let null = on_disk("null");
    assert!(null.file_type().is_char_device());
    assert_eq!((libc_major(null.rdev()), libc_minor(null.rdev())), (1, 3));
    assert_eq!(null.mode() & 0o7777, 0o640);
    let blk = on_disk("loop");
    assert!(blk.file_type().is_block_device());
    assert_eq!((libc_major(blk.rdev()), libc_minor(blk.rdev())), (7, 200));
    // The attributes in replies carry the device numbers.
    let looked = match c.lookup(&root, "null").await {
        NfsRes::Ok(ok) => ok.obj_attributes.expect("attributes"),
        NfsRes::Fail { status, .. } => panic!("LOOKUP: {status}"),
    };
    assert_eq!(looked.file_type, FileType::Character);
    assert_eq!((looked.rdev.major, looked.rdev.minor), (1, 3));

    // An ordinary caller who may write the directory: the kernel refuses (EPERM), nothing
    // made.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(store.export_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    c.cred = sys_cred(1001, 1001);
    let status = mknod(&mut c, &root, "mine", MknodData::Char(device(1, 3))).await;
    assert_eq!(status, Nfs3Status::Perm);
    assert!(!store.view().exists("mine"));
    store.stop().await;
}

fn store_path(store: &Local, name: &str) -> std::path::PathBuf {
    store.export_dir().join(name)
}

fn libc_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32
}

fn libc_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32
}
