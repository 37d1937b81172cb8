//! `nfsio mount` and `nfsio umount` as a user runs them, against `nfsio serve` (a child
//! process on a loopback port): the ready line is true when printed, `umount` ends the
//! mount process, SIGTERM of a foreground mount makes what is still open durable and
//! unmounts, a stale mount left by a killed mount process is cleared at start, `-o
//! allow_other` lets other users in as themselves, and fsx finishes A-OK on a mount whose
//! server is killed with SIGKILL and restarted twice; and the same life as an ordinary user
//! (uid 65534 through `setpriv`, fusermount3 underneath).
//!
//! Every mount is detached by a guard's drop (and its processes killed by PID), also when a
//! test fails. Needs root and /dev/fuse (the ordinary user's tests also setpriv, fusermount3
//! and /dev/fuse at 0666): skipped with one line otherwise, a failure under CI=true.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{MountGuard, NFSIO, Run, STOP_TIMEOUT, Scratch, Serve, alive, can_mount, is_root};

fn mounted(mnt: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let mnt = mnt.to_string_lossy();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(&*mnt))
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The kernel's readahead of the mount on `mnt`, in KiB (its device from mountinfo).
fn readahead_kib(mnt: &Path) -> u32 {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mnt = mnt.to_string_lossy();
    let device = info
        .lines()
        .rev()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields.get(4) == Some(&&*mnt)).then(|| fields[2].to_owned())
        })
        .expect("the mount in mountinfo");
    let text = std::fs::read_to_string(format!("/sys/class/bdi/{device}/read_ahead_kb"))
        .expect("read_ahead_kb");
    text.trim().parse().expect("a number")
}

/// The PID at the end of a background mount's ready line.
fn ready_pid(line: &str) -> u32 {
    line.trim_end()
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once("(pid "))
        .and_then(|(_, pid)| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// `nfsio mount -f URL MNT`, started and read up to its ready line; its stderr goes to
/// `log`.
fn foreground(url: &str, mnt: &Path, log: &Path) -> (Child, String) {
    let log = std::fs::File::create(log).expect("log");
    let mut child = Command::new(NFSIO)
        .args(["mount", "-f", url])
        .arg(mnt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    (child, line)
}

#[test]
fn mount_returns_once_the_mount_answers_and_umount_ends_it() {
    if !can_mount() {
        return;
    }
    let serve = Serve::start("mount-cli");
    let scratch = Scratch::new("mount-cli-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    let mut guard = MountGuard {
        mnt: mnt.clone(),
        pids: Vec::new(),
    };
    let url = serve.short_url_of("");
    let output = Run::nfsio(&["mount", url.as_str(), mnt.to_str().expect("utf-8 path")]).output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    guard.pids.push(ready_pid(&stdout));
    assert!(
        stdout.starts_with(&format!("nfsio mount: {url} mounted on")),
        "{stdout}"
    );
    // True when printed: the mount answers at once.
    std::fs::write(mnt.join("hello.txt"), b"hello\n").expect("write through the mount");
    assert_eq!(
        std::fs::read(serve.export.join("hello.txt")).expect("on the server"),
        b"hello\n"
    );
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    assert!(
        mounts.contains(&format!("{url} {} fuse.nfsio ", mnt.display())),
        "FSName is the URL, type fuse.nfsio: {mounts}"
    );
    if is_root() {
        assert_eq!(
            readahead_kib(&mnt),
            1024,
            "root's mount raises its readahead"
        );
    }

    let output = Run::nfsio(&["umount", mnt.to_str().expect("utf-8 path")]).output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!mounted(&mnt));
    wait_for("the mount process to end", || !alive(guard.pids[0]));
}

/// A mount that ends never unmounts the mount made on its directory after it. fuser's own
/// mount guard unmounted by path when the session ended (its check that the connection was
/// still up answered yes after an unmount): a file held open on the old mount keeps its
/// session alive past `nfsio umount` (a lazy detach), a new mount is made on the same
/// directory, and closing the file ends the old process, which took the new mount with it.
#[test]
fn a_mount_that_ends_leaves_the_next_mount_on_its_directory_alone() {
    if !can_mount() {
        return;
    }
    let serve = Serve::start("mount-remount");
    let scratch = Scratch::new("mount-remount-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    std::fs::write(serve.export.join("here"), b"on the export").expect("a file on the export");
    let mut guard = MountGuard {
        mnt: mnt.clone(),
        pids: Vec::new(),
    };
    let url = serve.short_url_of("");
    let mnt_arg = mnt.to_str().expect("utf-8 path");
    let mount = |guard: &mut MountGuard| {
        let output = Run::nfsio(&["mount", url.as_str(), mnt_arg]).output();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pid = ready_pid(&stdout);
        guard.pids.push(pid);
        pid
    };
    let mut old = mount(&mut guard);
    for round in 0..3 {
        let held = std::fs::File::open(mnt.join("here")).expect("open on the old mount");
        let output = Run::nfsio(&["umount", mnt_arg]).output();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let new = mount(&mut guard);
        drop(held);
        wait_for("the old mount process to end", || !alive(old));
        assert!(
            mounted(&mnt) && alive(new),
            "round {round}: the old mount's end took the new mount away"
        );
        assert_eq!(
            std::fs::read(mnt.join("here")).expect("through the new mount"),
            b"on the export"
        );
        old = new;
    }
    let output = Run::nfsio(&["umount", mnt_arg]).output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for("the last mount process to end", || !alive(old));
}

#[test]
fn sigterm_makes_open_files_durable_and_unmounts() {
    if !can_mount() {
        return;
    }
    let serve = Serve::start("mount-term");
    let scratch = Scratch::new("mount-term-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    let (mut child, line) = foreground(&serve.short_url_of(""), &mnt, &scratch.join("log"));
    let _guard = MountGuard {
        mnt: mnt.clone(),
        pids: vec![child.id()],
    };
    assert!(line.contains("mounted on"), "{line:?}");
    let data: Vec<u8> = (0..(4 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let mut open = std::fs::File::create(mnt.join("open.bin")).expect("create");
    open.write_all(&data).expect("write");
    // Still open: the bytes are in nfsio's cache, perhaps not yet on the server.
    let status = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + STOP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the mount did not stop");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::read(serve.export.join("open.bin")).expect("on the server"),
        data
    );
    assert!(!mounted(&mnt), "unmounted (lazily: a file is still open)");
    drop(open);
}

#[test]
fn a_stale_mount_is_cleared_at_start_with_one_line() {
    if !can_mount() {
        return;
    }
    let serve = Serve::start("mount-stale");
    let scratch = Scratch::new("mount-stale-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    let url = serve.short_url_of("");
    let (mut child, _line) = foreground(&url, &mnt, &scratch.join("first.log"));
    let mut guard = MountGuard {
        mnt: mnt.clone(),
        pids: vec![child.id()],
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // The kernel may answer a stat from its attribute cache for a moment; a listing asks.
    wait_for("the dead mount to answer ENOTCONN", || {
        std::fs::read_dir(&mnt).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
    });

    let log = scratch.join("second.log");
    let (child, line) = foreground(&url, &mnt, &log);
    guard.pids.push(child.id());
    assert!(line.contains("mounted on"), "{line:?}");
    let said = std::fs::read_to_string(&log).expect("log");
    let cleared: Vec<&str> = said.lines().filter(|l| l.contains("stale mount")).collect();
    assert_eq!(cleared.len(), 1, "one line about the stale mount: {said}");
    assert!(
        cleared[0].contains("transport endpoint is not connected"),
        "{said}"
    );
    std::fs::write(mnt.join("after.txt"), b"ok").expect("write");
    assert_eq!(
        std::fs::read(serve.export.join("after.txt")).expect("on the server"),
        b"ok"
    );
    let output = Run::nfsio(&["umount", mnt.to_str().expect("utf-8 path")]).output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for("the mount process to end", || !alive(child.id()));
}

/// Runs `sh -c SCRIPT` as uid and gid `id` with no supplementary groups.
fn shell_as(id: u32, script: &str) -> std::process::Output {
    let id = id.to_string();
    Command::new("setpriv")
        .args([format!("--reuid={id}"), format!("--regid={id}")])
        .args(["--clear-groups", "sh", "-c", script])
        .output()
        .expect("run setpriv")
}

/// `-o allow_other` lets other users into a root mount, each acting as themselves on the
/// server: a file made by uid 1001 is 1001's on the server's disk, and its 0600 is kept
/// from uid 1002.
#[test]
fn allow_other_lets_each_user_in_as_themselves() {
    if !can_mount() || !nfsio_testkit::require_tool("setpriv") {
        return;
    }
    let serve = Serve::start("mount-allow-other");
    let shared = serve.export.join("shared");
    std::fs::create_dir(&shared).expect("shared dir");
    std::fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod");
    let scratch = Scratch::new("mount-allow-other-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    let mut guard = MountGuard {
        mnt: mnt.clone(),
        pids: Vec::new(),
    };
    let url = serve.short_url_of("");
    let mnt_text = mnt.to_str().expect("utf-8 path");
    let output = Run::nfsio(&["mount", url.as_str(), mnt_text, "-o", "allow_other"]).output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    guard.pids.push(ready_pid(&stdout));
    let file = format!("{mnt_text}/shared/mine");
    let made = shell_as(1001, &format!("umask 077 && echo mine > {file}"));
    assert!(made.status.success(), "{made:?}");
    let meta = std::fs::metadata(shared.join("mine")).expect("on the server");
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&meta),
            std::os::unix::fs::MetadataExt::mode(&meta) & 0o777
        ),
        (1001, 0o600)
    );
    let read = shell_as(1002, &format!("cat {file}"));
    assert!(!read.status.success(), "uid 1002 read a 0600 file of 1001");
    let stderr = String::from_utf8_lossy(&read.stderr);
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let own = shell_as(1001, &format!("cat {file}"));
    assert_eq!(own.stdout, b"mine\n", "{own:?}");
    let output = Run::nfsio(&["umount", mnt_text]).output();
    assert!(output.status.success(), "{output:?}");
    wait_for("the mount process to end", || !alive(guard.pids[0]));
}

/// fsx (fsx-rs 0.3.2, the op mix of `crates/nfsio-fuse/tests/fsx.toml`) on a foreground
/// mount while `nfsio serve` is killed with SIGKILL and restarted on the same directory and
/// ports, twice: the mount is hard, so fsx only waits and must finish A-OK, and once the
/// mount is gone the server's file is what fsx last read through it.
#[test]
fn fsx_finishes_a_ok_while_serve_is_killed_and_restarted_twice() {
    const SEED: u64 = 7;
    const OPS: u64 = 25_000;
    /// The steps after which the server is killed (fsx logs one line per step with -v).
    const KILL_AFTER: [usize; 2] = [6_000, 14_000];
    if !can_mount() {
        return;
    }
    let Some(fsx) = nfsio_testkit::require_cargo_tool("fsx") else {
        return;
    };
    let mut serve = Serve::start("mount-fsx-kill");
    let scratch = Scratch::new("mount-fsx-kill-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    let (child, line) = foreground(&serve.short_url_of(""), &mnt, &scratch.join("mount.log"));
    let _guard = MountGuard {
        mnt: mnt.clone(),
        pids: vec![child.id()],
    };
    assert!(line.contains("mounted on"), "{line:?}");

    let started = Instant::now();
    let out_path = scratch.join("fsx.out");
    let out = std::fs::File::create(&out_path).expect("fsx output");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/nfsio-fuse/tests/fsx.toml");
    let mut run = Command::new(&fsx)
        .arg("-f")
        .arg(&config)
        .args(["-N", &OPS.to_string(), "-S", &SEED.to_string(), "-v", "-P"])
        .arg(scratch.join(""))
        .arg(mnt.join("fsx.bin"))
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("spawn fsx");
    let mut fsx_guard = KillOnDrop(Some(run.id()));
    let steps = || {
        std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("[INFO"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    for after in KILL_AFTER {
        while steps() < after {
            assert!(
                run.try_wait().expect("wait for fsx").is_none(),
                "fsx ended before step {after}:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
            assert!(Instant::now() < deadline, "fsx made no progress");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (status, _) = serve.stop_with("KILL");
        assert!(!status.success(), "nfsio serve was killed: {status}");
        // The kill fell in the middle of the run, not after it.
        assert!(
            run.try_wait().expect("wait for fsx").is_none(),
            "fsx ended as the server was killed after step {after}"
        );
        serve.respawn();
    }
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait for fsx") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "fsx did not finish after the restarts"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    fsx_guard.0 = None;
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let tail: Vec<&str> = output.lines().rev().take(30).collect();
    assert!(
        status.success() && output.contains("All operations completed A-OK"),
        "fsx -N {OPS} -S {SEED} across two SIGKILLs of nfsio serve: {status}\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let elapsed = started.elapsed();

    let through_mount = std::fs::read(mnt.join("fsx.bin")).expect("read through the mount");
    let output = Run::nfsio(&["umount", mnt.to_str().expect("utf-8 path")]).output();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for("the mount process to end", || !alive(child.id()));
    assert!(
        std::fs::read(serve.export.join("fsx.bin")).expect("on the server") == through_mount,
        "the server's fsx.bin differs from what the mount read"
    );
    eprintln!(
        "measure: fsx across 2 SIGKILLs of nfsio serve: seed {SEED}, {OPS} ops, {:.1} s, A-OK",
        elapsed.as_secs_f64()
    );
}

/// Kills process `.0` (with SIGKILL) when dropped, unless it was taken.
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0
            && alive(pid)
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// The ordinary user the unprivileged tests run as (nobody), and `setpriv`'s arguments to
/// become it.
const USER: u32 = 65534;
const AS_USER: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// `COMMAND...` run as [`USER`] with `HOME` at `home`.
fn as_user(home: &Path, command: &[&str]) -> Command {
    let mut c = Command::new(AS_USER[0]);
    c.args(&AS_USER[1..])
        .args(command)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .stdin(Stdio::null());
    c
}

/// A child process killed (SIGKILL) and reaped when dropped.
struct ReapOnDrop(Child);

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `nfsio serve` run as [`USER`] on `export`: its URL and the process.
fn serve_as_user(home: &Path, export: &Path, state: &Path, log: &Path) -> (String, ReapOnDrop) {
    let log = std::fs::File::create(log).expect("log");
    let mut child = ReapOnDrop(
        as_user(
            home,
            &[NFSIO, "serve", export.to_str().expect("utf-8"), "--listen"],
        )
        .args(["127.0.0.1:0", "--state-dir"])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn nfsio serve"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("URL line");
    assert!(line.starts_with("nfs://127.0.0.1:"), "{line:?}");
    (line.trim().to_owned(), child)
}

/// Whether the tools the unprivileged mount needs are here (skip line, or failure under
/// CI=true, if not).
fn can_mount_as_user() -> bool {
    if !(can_mount()
        && nfsio_testkit::require_tool("setpriv")
        && nfsio_testkit::require_tool("fusermount3"))
    {
        return false;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata("/dev/fuse").map_or(0, |m| m.permissions().mode());
    if mode & 0o006 != 0o006 {
        nfsio_testkit::skip_or_fail(&format!(
            "/dev/fuse is {:o}, not 0666 as the kernel makes it: fusermount3 cannot open it \
             for an ordinary user (run scripts/install-test-deps.sh)",
            mode & 0o777
        ));
        return false;
    }
    true
}

/// The /proc/mounts line of the mount on `mnt`.
fn mounts_line(mnt: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let mnt = mnt.to_string_lossy();
    mounts
        .lines()
        .find(|line| line.split(' ').nth(1) == Some(&*mnt))
        .map(str::to_owned)
}

/// As an ordinary user (uid 65534, on directories it owns, against an `nfsio serve` of its
/// own): `nfsio mount` goes through fusermount3, the ready line is true when printed (a file
/// written and read back through the mount at once), /proc/mounts shows the URL and type
/// `fuse.nfsio`; a stale mount left by a killed mount process is cleared at the next mount
/// with one line; `nfsio umount` unmounts and the mountpoint is empty again.
#[test]
fn an_ordinary_user_mounts_through_fusermount3_and_unmounts() {
    if !can_mount_as_user() {
        return;
    }
    let scratch = Scratch::new("mount-user");
    let [home, export, state, mnt] = ["home", "export", "state", "mnt"].map(|d| scratch.join(d));
    for dir in [&scratch.path, &home, &export, &state, &mnt] {
        std::fs::create_dir_all(dir).expect("dir");
        std::os::unix::fs::chown(dir, Some(USER), Some(USER)).expect("chown");
    }
    let (url, _serve) = serve_as_user(&home, &export, &state, &scratch.join("serve.log"));
    let mut guard = MountGuard {
        mnt: mnt.clone(),
        pids: Vec::new(),
    };
    let mnt_s = mnt.to_str().expect("utf-8 path");
    let mount = |guard: &mut MountGuard| {
        let output = as_user(&home, &[NFSIO, "mount", &url, mnt_s])
            .output()
            .expect("nfsio mount");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stdout} {stderr}");
        guard.pids.push(ready_pid(&stdout));
        assert!(
            stdout.starts_with(&format!("nfsio mount: {url} mounted on")),
            "{stdout}"
        );
        stderr
    };
    mount(&mut guard);
    // True when printed: the mount answers at once, as the user.
    let script = format!("echo hello > {mnt_s}/hello.txt && cat {mnt_s}/hello.txt");
    let output = as_user(&home, &["sh", "-ec", &script])
        .output()
        .expect("sh");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read(export.join("hello.txt")).expect("on the server"),
        b"hello\n"
    );
    let line = mounts_line(&mnt).expect("in /proc/mounts");
    assert!(
        line.starts_with(&format!("{url} {mnt_s} fuse.nfsio ")),
        "{line}"
    );

    // A stale mount: the mount process killed, then cleared by the next mount.
    let first = guard.pids[0];
    let _ = Command::new("kill")
        .args(["-9", &first.to_string()])
        .status();
    wait_for("the dead mount to answer ENOTCONN", || {
        let output = as_user(&home, &["ls", mnt_s]).output().expect("ls");
        String::from_utf8_lossy(&output.stderr).contains("not connected")
    });
    let said = mount(&mut guard);
    let cleared: Vec<&str> = said.lines().filter(|l| l.contains("stale mount")).collect();
    assert_eq!(cleared.len(), 1, "one line about the stale mount: {said}");
    let output = as_user(&home, &["cat", &format!("{mnt_s}/hello.txt")])
        .output()
        .expect("cat");
    assert_eq!(output.stdout, b"hello\n");

    let output = as_user(&home, &[NFSIO, "umount", mnt_s])
        .output()
        .expect("umount");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!mounted(&mnt));
    wait_for("the mount process to end", || !alive(guard.pids[1]));
    assert_eq!(std::fs::read_dir(&mnt).expect("mountpoint").count(), 0);
}

/// `-o allow_other` as an ordinary user without `user_allow_other` in /etc/fuse.conf: one
/// line saying so, nothing mounted.
#[test]
fn allow_other_as_an_ordinary_user_needs_user_allow_other() {
    if !can_mount_as_user() {
        return;
    }
    if nfsio_fuse::user_allow_other() {
        eprintln!("skipped: /etc/fuse.conf has user_allow_other");
        return;
    }
    let scratch = Scratch::new("mount-user-allow-other");
    let mnt = scratch.join("mnt");
    for dir in [&scratch.path, &mnt] {
        std::fs::create_dir_all(dir).expect("dir");
        std::os::unix::fs::chown(dir, Some(USER), Some(USER)).expect("chown");
    }
    let output = as_user(
        &scratch.path,
        &[
            NFSIO,
            "mount",
            "nfs://127.0.0.1:9/export",
            mnt.to_str().expect("utf-8"),
        ],
    )
    .args(["-o", "allow_other"])
    .output()
    .expect("nfsio mount");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("user_allow_other in /etc/fuse.conf"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!mounted(&mnt));
}
