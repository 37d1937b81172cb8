//! `nfsio mount -o soft,timeo=N,retrans=M` against `nfsio serve` (a child process on a
//! loopback port): with the server stopped (SIGSTOP), a stat through the mount fails with
//! EIO once the tries ran out instead of hanging as a hard mount would; after SIGCONT the
//! mount answers again. Each call gives up after timeo × (retrans + 1); a stat of a name
//! whose entry expired is at most two calls (the kernel revalidates the entry, then looks
//! it up afresh), so the bound is twice that plus a margin for this busy machine.
//!
//! The mount is detached by a guard's drop and its process killed by PID; the server is
//! continued (SIGCONT) by another guard, also when the test fails. Needs root and
//! /dev/fuse: skipped with one line otherwise, a failure under CI=true.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{MountGuard, NFSIO, Scratch, Serve, can_mount};

/// One try's timeout in tenths of a second (`timeo=`), and the retransmissions.
const TIMEO_DS: u64 = 10;
const RETRANS: u64 = 1;
/// What the loaded machine may add to the tries before the EIO arrives.
const MARGIN: Duration = Duration::from_secs(8);

/// Continues the stopped server when dropped.
struct Continue(u32);

impl Drop for Continue {
    fn drop(&mut self) {
        signal("CONT", self.0);
    }
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -s {name} {pid}");
}

/// stat(2) of `path` from a thread of its own: its result and how long it took, or None
/// if it has not returned within `limit` (the thread is left behind, blocked).
fn timed_stat(path: &Path, limit: Duration) -> Option<(std::io::Result<()>, Duration)> {
    let path = path.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let result = std::fs::metadata(&path).map(drop);
        let _ = tx.send((result, start.elapsed()));
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn a_soft_mount_fails_with_eio_when_the_server_stops_answering() {
    if !can_mount() {
        return;
    }
    let serve = Serve::start("mount-soft");
    std::fs::write(serve.export.join("file.txt"), b"here").expect("seed");
    std::fs::write(serve.export.join("unseen.txt"), b"there").expect("seed");
    let scratch = Scratch::new("mount-soft-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    let options = format!("soft,timeo={TIMEO_DS},retrans={RETRANS},actimeo=0");
    let log = std::fs::File::create(scratch.join("mount.log")).expect("log");
    let mut child = Command::new(NFSIO)
        .args(["mount", "-f", &serve.short_url_of(""), "-o", &options])
        .arg(&mnt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn nfsio mount");
    let _guard = MountGuard {
        mnt: mnt.clone(),
        pids: vec![child.id()],
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.starts_with("nfsio mount: "), "{line:?}");
    let file = mnt.join("file.txt");
    std::fs::metadata(&file).expect("stat while the server answers");

    signal("STOP", serve.pid());
    let resume = Continue(serve.pid());
    let tries = Duration::from_millis(TIMEO_DS * 100 * (RETRANS + 1));
    // A name the mount has never looked up: its LOOKUP must reach the server. (A stat of
    // `file` could be answered by the kernel from attributes given with a zero lifetime
    // while the jiffy they arrived in lasts: seen once, 0.15 s into a loaded run.)
    let unseen = mnt.join("unseen.txt");
    let (result, took) = timed_stat(&unseen, 2 * tries + MARGIN)
        .expect("the stat returned: the soft mount did not hang");
    let error = result.expect_err("no answer from a stopped server");
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "{error}");
    assert!(
        took >= tries / 2,
        "failed after {took:?}, before the tries ran out"
    );
    eprintln!("measure: soft mount, server stopped: EIO after {took:?} (tries {tries:?})");

    drop(resume);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&file).is_err() {
        assert!(
            Instant::now() < deadline,
            "the mount answers again after SIGCONT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("TERM", child.id());
    let status = child.wait().expect("mount process");
    assert!(status.success(), "nfsio mount ended with {status}");
}
