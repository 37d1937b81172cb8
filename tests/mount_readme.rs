//! The README's `nfsio mount` example, run as written: its first shell block (the server)
//! in the background, and once the server's URL line is out its second block (mount, use,
//! umount), which must succeed; as root, and as an ordinary user (uid 65534 through
//! `setpriv`). Only the directories and the port are replaced by the test's own.
//!
//! The server is stopped by PID and the mountpoint detached by a guard, also when the test
//! fails. Needs root (to become the other user and to clean up), /dev/fuse, setpriv and
//! fusermount3: skipped with one line otherwise, a failure under CI=true.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{NFSIO, STOP_TIMEOUT, Scratch};

/// The example's directories and port, as the README writes them.
const EXPORT: &str = "/tmp/nfsio-export";
const MNT: &str = "/tmp/nfsio-mnt";
const PORT: &str = "12049";

/// The shell blocks of the README's `nfsio mount` section, in order.
fn mount_blocks() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n### `nfsio mount`")
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("an `nfsio mount` section in README.md");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut current, line.trim_start().starts_with("```")) {
            (None, true) => current = Some(Vec::new()),
            (Some(_), true) => blocks.extend(current.take()),
            (Some(block), false) => block.push(line.to_owned()),
            (None, false) => {}
        }
    }
    blocks
}

/// Stops the server (SIGKILL, reaped) and detaches the mountpoint when dropped.
struct Cleanup {
    server: Option<Child>,
    mnt: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let path = std::ffi::CString::new(self.mnt.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that lives across the call.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Runs the example as `ids` (None: as we are) in `scratch`; returns the export directory.
fn run_example(scratch: &Scratch, ids: Option<(u32, u32)>) -> PathBuf {
    let blocks = mount_blocks();
    assert_eq!(blocks.len(), 2, "the server block and the mount block");
    let [export, mnt, home] = ["export", "mnt", "home"].map(|d| scratch.join(d));
    std::fs::create_dir_all(&home).unwrap();
    if let Some((uid, gid)) = ids {
        for dir in [&scratch.path, &home] {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        }
    }
    let port = nfsio_testkit::free_port().to_string();
    let local = |line: &String| {
        line.replace(EXPORT, &export.display().to_string())
            .replace(MNT, &mnt.display().to_string())
            .replace(PORT, &port)
    };
    let bin_dir = Path::new(NFSIO).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |script: &str| {
        let mut command = match ids {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={gid}"),
                    "--clear-groups",
                    "bash",
                ]);
                c
            }
            None => Command::new("bash"),
        };
        command
            .args(["-ec", script])
            .current_dir(&home)
            .env("PATH", &path)
            .env("HOME", &home)
            .env_remove("XDG_STATE_HOME")
            .stdin(Stdio::null());
        command
    };
    let (setup, serve) = blocks[0].split_at(blocks[0].len() - 1);
    let setup: Vec<String> = setup.iter().map(local).collect();
    assert!(
        shell(&setup.join("\n")).status().unwrap().success(),
        "{setup:?}"
    );
    let mut cleanup = Cleanup {
        server: None,
        mnt: mnt.clone(),
    };
    let server_log = scratch.join("serve.log");
    let mut server = shell(&format!("exec {}", local(&serve[0])))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&server_log).unwrap())
        .spawn()
        .expect("serve");
    let stdout = server.stdout.take().expect("stdout");
    cleanup.server = Some(server);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("URL line");
    assert_eq!(line.trim(), format!("nfs://127.0.0.1:{port}/export"));

    let script: Vec<String> = blocks[1].iter().map(local).collect();
    let output = shell(&script.join("\n")).output().expect("the mount block");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the mount example as {ids:?}: {}\n{stdout}\nserver: {}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&server_log).unwrap_or_default()
    );
    assert!(stdout.contains("mounted on"), "{stdout}");
    assert!(stdout.contains("hello.txt"), "ls: {stdout}");
    assert!(stdout.trim_end().ends_with("hello"), "cat: {stdout}");
    assert!(!mounted(&mnt), "unmounted by the example");
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);

    let mut server = cleanup.server.take().expect("server");
    let _ = Command::new("kill")
        .args(["-s", "TERM", &server.id().to_string()])
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            break server.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut log = String::new();
    let _ = std::fs::File::open(&server_log).map(|mut f| f.read_to_string(&mut log));
    assert_eq!(status.code(), Some(0), "{log}");
    assert_eq!(std::fs::read(export.join("hello.txt")).unwrap(), b"hello\n");
    export
}

fn mounted(mnt: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let mnt = mnt.to_string_lossy();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(&*mnt))
}

#[test]
fn readme_mount_example_works_as_root_and_as_an_ordinary_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !Path::new("/dev/fuse").exists() {
        nfsio_testkit::skip_or_fail("/dev/fuse is missing");
        return;
    }
    if !nfsio_testkit::require_root()
        || !nfsio_testkit::require_tool("setpriv")
        || !nfsio_testkit::require_tool("fusermount3")
    {
        return;
    }
    let scratch = Scratch::new("readme-mount-root");
    let export = run_example(&scratch, None);
    assert_eq!(
        std::fs::metadata(export.join("hello.txt")).unwrap().uid(),
        0
    );

    let mode = std::fs::metadata("/dev/fuse").map_or(0, |m| m.permissions().mode());
    if mode & 0o006 != 0o006 {
        nfsio_testkit::skip_or_fail(&format!(
            "/dev/fuse is {:o}, not the kernel's 0666: no mount as an ordinary user \
             (run scripts/install-test-deps.sh)",
            mode & 0o777
        ));
        return;
    }
    let scratch = Scratch::new("readme-mount-user");
    std::fs::set_permissions(&scratch.path, PermissionsExt::from_mode(0o755)).unwrap();
    let export = run_example(&scratch, Some((65534, 65534)));
    assert_eq!(
        std::fs::metadata(export.join("hello.txt")).unwrap().uid(),
        65534
    );
}
