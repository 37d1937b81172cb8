//! Ways out of the export and ways around its handles: symbolic links, `..`, other mounts
//! inside the export, forged handles, handles of another export, and the handle of a removed
//! file on a file system that records no birth time (ext4 with 128-byte inodes), whose inode
//! number a new file takes.

use std::path::{Path, PathBuf};
use std::process::Command;

use nfsio_proto::nfs3::*;

use crate::common::{Scratch, Serve};
use crate::harness::*;

/// A mount made by the test, unmounted on drop whatever happens.
struct Mounted(PathBuf);

impl Mounted {
    fn new(args: &[&str], target: &Path) -> Option<Mounted> {
        let status = Command::new("mount").args(args).arg(target).status().ok()?;
        status.success().then(|| Mounted(target.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_way_out_of_the_export() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let server = Serve::start_with("escapes", &["--squash", "auto"]);
    let outside = server.scratch("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("host-secret"), b"not for clients").unwrap();
    std::os::unix::fs::symlink(&outside, server.export.join("link-out")).unwrap();
    std::fs::create_dir(server.export.join("inside")).unwrap();
    let mut c = client(&server, cred(0, 0, &[])).await;
    let root = c.root().await;

    // A symbolic link is returned, never followed.
    let (link, attr) = lookup(&mut c, &root, "link-out").await;
    assert_eq!(attr.file_type, FileType::Symlink);
    assert_eq!(
        c.lookup(&link, "host-secret").await.status(),
        Nfs3Status::NotDir
    );
    assert_eq!(c.read(&link, 0, 10).await.status(), Nfs3Status::Inval);
    // `..` of the root is the root.
    let (up, _) = lookup(&mut c, &root, "..").await;
    assert_eq!(up, root);
    let (inside, _) = lookup(&mut c, &root, "inside").await;
    let (up, _) = lookup(&mut c, &inside, "..").await;
    assert_eq!(up, root);

    // A bind mount of an outside directory (same file system) inside the export is not
    // served (knfsd does not cross mounts without crossmnt).
    let bind = server.export.join("bound");
    std::fs::create_dir(&bind).unwrap();
    let outside_text = outside.display().to_string();
    let Some(_mounted) = Mounted::new(&["--bind", &outside_text], &bind) else {
        panic!("mount --bind failed");
    };
    assert_eq!(c.lookup(&root, "bound").await.status(), Nfs3Status::Acces);
    // ... nor listed with a handle.
    let listing = match c
        .nfs(Nfs3Call::Readdirplus(ReaddirplusArgs {
            dir: root.clone(),
            cookie: 0,
            cookieverf: CookieVerifier::default(),
            dircount: 8192,
            maxcount: 65536,
        }))
        .await
    {
        Nfs3Reply::Readdirplus(res) => ok(res),
        other => panic!("{other:?}"),
    };
    let bound = listing
        .entries
        .iter()
        .find(|e| &e.name[..] == b"bound")
        .expect("the mount point is listed");
    assert!(bound.name_handle.is_none(), "no handle into another mount");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_handles_are_refused() {
    let server = Serve::start("forged");
    std::fs::write(server.export.join("f"), b"data").unwrap();
    let mut c = client(&server, cred(0, 0, &[])).await;
    let root = c.root().await;
    let (f, _) = lookup(&mut c, &root, "f").await;
    // Every single-bit change of a real handle, and handles of other lengths.
    for bit in 0..f.len() * 8 {
        let mut bytes = f.as_bytes().to_vec();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let status = c.getattr(&FileHandle::from(bytes)).await.status();
        assert_eq!(status, Nfs3Status::BadHandle, "bit {bit}");
    }
    for len in [0usize, 1, 28, 43, 63, 64] {
        let status = c.getattr(&FileHandle::from(vec![0x6e; len])).await.status();
        assert_eq!(status, Nfs3Status::BadHandle, "length {len}");
    }
    // The handle of another server's export (its own key).
    let other = Serve::start("forged-other");
    let mut o = client(&other, cred(0, 0, &[])).await;
    let other_root = o.root().await;
    assert_eq!(c.getattr(&other_root).await.status(), Nfs3Status::BadHandle);
}

/// An ext4 file system with 128-byte inodes (no birth times), mounted in `scratch`.
fn small_inode_ext4(scratch: &Scratch) -> Option<(PathBuf, Mounted)> {
    let image = scratch.join("ext4-128.img");
    let dir = scratch.join("ext4-128");
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::File::create(&image).ok()?.set_len(32 << 20).ok()?;
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-I", "128"])
        .arg(&image)
        .output()
        .ok()?;
    if !made.status.success() {
        return None;
    }
    let image_text = image.display().to_string();
    let mounted = Mounted::new(&["-o", "loop", &image_text], &dir)?;
    Some((dir, mounted))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_of_a_removed_file_never_reaches_the_next_one_at_its_inode() {
    if !nfsio_testkit::require_root() || !nfsio_testkit::require_tool("mkfs.ext4") {
        return;
    }
    let scratch = Scratch::new("reuse");
    let Some((fs, _mounted)) = small_inode_ext4(&scratch) else {
        nfsio_testkit::skip_or_fail("cannot make and loop-mount an ext4 image");
        return;
    };
    let export = fs.join("export");
    std::fs::create_dir(&export).unwrap();
    let server = Serve::start_on("reuse-serve", &export, &[]);
    let mut c = client(&server, cred(0, 0, &[])).await;
    let root = c.root().await;
    let old = c.create_file(&root, "old").await;
    let old_ino = ok(c.getattr(&old).await).obj_attributes.fileid;
    ok(c.remove(&root, "old").await);
    // New files until one gets the old inode number.
    let mut reused = None;
    for i in 0..64 {
        let name = format!("new-{i}");
        let new = c.create_file(&root, &name).await;
        if ok(c.getattr(&new).await).obj_attributes.fileid == old_ino {
            reused = Some(name);
            break;
        }
    }
    let name = reused.expect("ext4 reuses a freed inode number");
    assert_eq!(c.getattr(&old).await.status(), Nfs3Status::Stale);
    assert_eq!(
        c.write(&old, 0, b"through a stale handle", StableHow::FileSync)
            .await
            .status(),
        Nfs3Status::Stale
    );
    assert_eq!(std::fs::read(export.join(&name)).unwrap(), b"");
}
