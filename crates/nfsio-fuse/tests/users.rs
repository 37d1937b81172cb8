//! Two users on one root mount shared with `allow_other`: each request acts as its caller,
//! so each user can do exactly what the server's permissions allow them, and root on the
//! mount is what the server's squash rules make it.
//!
//! `nfsio serve`'s local store (in-process, run as root, `--squash root`) exports a
//! temporary directory holding a sticky directory everyone may write; commands run as uid
//! 1001 and 1002 through `setpriv`. The kernel lets other users into a FUSE mount only with
//! `allow_other`, which a mount made with mount(2) needs root for: skipped with one line
//! without root, /dev/fuse or setpriv (a failure under CI=true).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nfsio_client::Client;
use nfsio_fuse::{MountOptions, Mounted};
use nfsio_testkit::TestServer;

use common::TIMEOUT;

/// The anonymous identity root is squashed to.
const ANON: u32 = 65534;

/// The group of the group-writable file: neither user's primary group.
const SHARED_GROUP: u32 = 2000;

/// A root server on a temporary export and a mount of it with `allow_other`; dropped in
/// order: the mount is unmounted first, the server stopped, the directories removed.
struct Shared {
    mounted: Option<Mounted>,
    server: Option<TestServer>,
    export: PathBuf,
    mnt: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
    rt: tokio::runtime::Runtime,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(mounted) = self.mounted.take()
            && let Err(error) = mounted.unmount(TIMEOUT)
        {
            eprintln!("unmount: {error}");
        }
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Shared {
    fn start() -> Option<Shared> {
        if !Path::new("/dev/fuse").exists() {
            nfsio_testkit::skip_or_fail("/dev/fuse is missing");
            return None;
        }
        if !nfsio_testkit::require_root() || !nfsio_testkit::require_tool("setpriv") {
            return None;
        }
        let dirs: Vec<tempfile::TempDir> = (0..3)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        // Other users must reach the export (the server acts as them) and the mountpoint.
        for dir in &dirs {
            chmod(dir.path(), 0o755);
        }
        let export = dirs[0].path().to_path_buf();
        let shared = export.join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        chmod(&shared, 0o1777);
        let mut config = nfsio_testkit::server::config();
        config.export_dir = export.clone();
        config.state_dir = dirs[1].path().to_path_buf();
        config.service.squash = nfsio_server::Squash::Root;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(TestServer::bind(config));
        let client = rt.block_on(Client::connect(&server.url)).expect("connect");
        let mnt = dirs[2].path().to_path_buf();
        let options = MountOptions {
            allow_other: true,
            ..MountOptions::new(server.url.clone())
        };
        let mounted = nfsio_fuse::mount(client, rt.handle().clone(), &mnt, options);
        let shared = Shared {
            mounted: Some(mounted.expect("mount")),
            server: Some(server),
            export,
            mnt,
            _dirs: dirs,
            rt,
        };
        let mounted = shared.mounted.as_ref().expect("mounted");
        mounted.wait_ready(TIMEOUT).expect("the mount answers");
        Some(shared)
    }

    /// `name` in the shared directory, through the mount.
    fn path(&self, name: &str) -> String {
        let path = self.mnt.join("shared").join(name);
        path.to_str().expect("utf-8 path").to_owned()
    }

    /// `name` in the shared directory, on the server's disk.
    fn on_server(&self, name: &str) -> PathBuf {
        self.export.join("shared").join(name)
    }
}

/// Runs `sh -c SCRIPT` as uid and gid `id`, with only the supplementary `groups`.
fn as_user(id: u32, groups: &[u32], script: &str) -> Output {
    let groups_arg = match groups {
        [] => "--clear-groups".to_owned(),
        groups => {
            let list: Vec<String> = groups.iter().map(u32::to_string).collect();
            format!("--groups={}", list.join(","))
        }
    };
    Command::new("setpriv")
        .args([format!("--reuid={id}"), format!("--regid={id}"), groups_arg])
        .args(["sh", "-c", script])
        .output()
        .expect("run setpriv")
}

/// Asserts that `output` failed with `message` (the shell's strerror).
fn assert_refused(output: &Output, message: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{what}: succeeded");
    assert!(stderr.contains(message), "{what}: {stderr}");
}

fn assert_ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {output:?}");
}

fn owner_and_mode(path: &Path) -> (u32, u32) {
    let meta = std::fs::metadata(path).expect("stat on the server");
    (meta.uid(), meta.mode() & 0o7777)
}

#[test]
fn two_users_on_one_mount_each_have_exactly_their_own_rights() {
    let Some(fx) = Shared::start() else {
        return;
    };
    let (one, two) = (1001, 1002);
    let made = as_user(
        one,
        &[],
        &format!("umask 077 && echo one > {}", fx.path("one.private")),
    );
    assert_ok(&made, "1001 creates a 0600 file");
    let made = as_user(
        one,
        &[],
        &format!("umask 022 && echo pub > {}", fx.path("one.public")),
    );
    assert_ok(&made, "1001 creates a 0644 file");
    let made = as_user(
        two,
        &[],
        &format!("umask 077 && echo two > {}", fx.path("two.private")),
    );
    assert_ok(&made, "1002 creates a 0600 file");
    // The server made them as their callers.
    assert_eq!(owner_and_mode(&fx.on_server("one.private")), (one, 0o600));
    assert_eq!(owner_and_mode(&fx.on_server("one.public")), (one, 0o644));
    assert_eq!(owner_and_mode(&fx.on_server("two.private")), (two, 0o600));

    let read = |id: u32, name: &str| as_user(id, &[], &format!("cat {}", fx.path(name)));
    assert_refused(
        &read(two, "one.private"),
        "Permission denied",
        "1002 reads 1001's",
    );
    assert_refused(
        &read(one, "two.private"),
        "Permission denied",
        "1001 reads 1002's",
    );
    assert_eq!(read(one, "one.private").stdout, b"one\n");
    assert_eq!(
        read(two, "one.public").stdout,
        b"pub\n",
        "a 0644 file is readable"
    );
    let append = as_user(two, &[], &format!("echo more >> {}", fx.path("one.public")));
    assert_refused(&append, "Permission denied", "1002 writes 1001's 0644 file");

    // The sticky directory: only the owner removes a file.
    let remove = as_user(two, &[], &format!("rm -f {}", fx.path("one.public")));
    assert_refused(
        &remove,
        "Operation not permitted",
        "1002 removes 1001's file",
    );
    assert!(fx.on_server("one.public").exists());

    // A group-writable file: writable by a member through a supplementary group only.
    let group_file = fx.on_server("group.txt");
    std::fs::write(&group_file, b"").expect("write on the server");
    std::os::unix::fs::chown(&group_file, Some(one), Some(SHARED_GROUP)).expect("chown");
    chmod(&group_file, 0o660);
    let script = format!("echo member >> {}", fx.path("group.txt"));
    assert_ok(
        &as_user(two, &[SHARED_GROUP], &script),
        "a member of the group writes",
    );
    let outsider = as_user(
        two,
        &[],
        &format!("echo outsider >> {}", fx.path("group.txt")),
    );
    assert_refused(
        &outsider,
        "Permission denied",
        "1002 outside the group writes",
    );
    assert_eq!(std::fs::read(&group_file).expect("read"), b"member\n");

    // Root on the mount is squashed by the server (`--squash root`): anonymous, so it may
    // not read a user's 0600 file, and what it makes is the anonymous user's.
    let root_read = std::fs::read(fx.mnt.join("shared").join("one.private"));
    let error = root_read.expect_err("squashed root reads 1001's 0600 file");
    assert_eq!(error.raw_os_error(), Some(libc::EACCES), "{error}");
    std::fs::write(fx.mnt.join("shared").join("root.txt"), b"root\n").expect("root writes");
    assert_eq!(owner_and_mode(&fx.on_server("root.txt")).0, ANON);
}

/// Names in the shared directory on the server's disk that a silly rename left.
fn hidden_names(fx: &Shared) -> Vec<String> {
    std::fs::read_dir(fx.export.join("shared"))
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with(".nfs"))
        .collect()
}

#[test]
fn an_unlinked_open_file_is_removed_as_the_user_who_unlinked_it() {
    let Some(fx) = Shared::start() else {
        return;
    };
    // 1001 unlinks its own file while it holds it open, reads it through the open
    // descriptor, and closes it: the hidden name's REMOVE acts as 1001 (squashed root may
    // not remove 1001's file from the sticky directory).
    let file = fx.path("held.txt");
    let script = format!("echo held > {file} && exec 3< {file} && rm {file} && cat <&3");
    let held = as_user(1001, &[], &script);
    assert_ok(&held, "1001 unlinks an open file");
    assert_eq!(held.stdout, b"held\n");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !hidden_names(&fx).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "hidden names left: {:?}",
            hidden_names(&fx)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!fx.on_server("held.txt").exists());
}
