//! kill -9 durability of the mount: a workload on a foreground `nfsio mount` writes files
//! of many sizes, some fsync'd, some only closed, while `nfsio serve` (a child process on a
//! loopback port) is killed with SIGKILL and restarted on the same directory and ports;
//! every version whose fsync or close succeeded must be byte-exact in the export directory
//! when that call returns and after a last SIGKILL.
//!
//! The mount helpers are the ones tests/mount_cli.rs has (copied: that file is near its
//! size limit). The mount is detached by a guard's drop (its process killed by PID), also
//! when the test fails. Needs root and /dev/fuse: skipped with one line otherwise, a
//! failure under CI=true.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{MountGuard, NFSIO, Scratch, Serve, can_mount};

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

/// The sizes the durability workload's files cycle through: empty, around a page, around
/// the mount's and the server's chunk sizes, several MiB.
const DURABLE_SIZES: [usize; 10] = [
    0,
    1,
    4095,
    4096,
    4097,
    65_536,
    200_003,
    1 << 20,
    (2 << 20) + 5,
    777,
];

/// Reproducible bytes for `seed` (xorshift).
fn seeded_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes `data` to `path` (created or truncated) in 64 KiB writes, fsyncs it when `fsync`,
/// and closes it with close(2) so that close's error is seen. Ok once the last of
/// fsync and close that it called succeeded.
fn write_acknowledged(path: &Path, data: &[u8], fsync: bool) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    let mut file = std::fs::File::create(path)?;
    for chunk in data.chunks(64 << 10) {
        file.write_all(chunk)?;
    }
    if fsync {
        file.sync_all()?;
    }
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just released by the File and is closed exactly once.
    if unsafe { libc::close(fd) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What the durability workload had acknowledged: per file, the latest version's length
/// and seed, and how many server kills had happened when its fsync or close returned.
#[derive(Default)]
struct Acknowledged {
    files: std::collections::BTreeMap<String, (usize, u64, usize)>,
    /// Writes whose fsync or close failed.
    failures: Vec<String>,
    /// Acknowledged versions that were not in the export directory when acknowledged.
    not_on_disk: Vec<String>,
}

/// The durability workload: `files` steps, each writing a new file (every third fsync'd,
/// the rest only closed) or, every seventh step, rewriting an earlier one with new bytes
/// and length; each acknowledged version recorded in `acked` with the kill count `kills`,
/// and checked in the server's directory `export` at once.
fn durability_workload(
    dir: &Path,
    export: &Path,
    files: usize,
    done: &std::sync::atomic::AtomicUsize,
    kills: &std::sync::atomic::AtomicUsize,
    acked: &std::sync::Mutex<Acknowledged>,
) {
    use std::sync::atomic::Ordering;
    for step in 0..files {
        let target = if step % 7 == 6 { step / 2 } else { step };
        let name = format!("f{target:04}.bin");
        let len = DURABLE_SIZES[(step * 3 + target) % DURABLE_SIZES.len()];
        let seed = step as u64 + 1;
        let data = seeded_bytes(len, seed);
        let result = write_acknowledged(&dir.join(&name), &data, step % 3 == 0);
        let mut acked = acked.lock().expect("lock");
        match result {
            Ok(()) => {
                let kills = kills.load(Ordering::SeqCst);
                // Acknowledged means on the server's disk now, not later.
                if std::fs::read(export.join(&name)).ok().as_ref() != Some(&data) {
                    acked
                        .not_on_disk
                        .push(format!("step {step}, {name}, {len} bytes"));
                }
                acked.files.insert(name, (len, seed, kills));
            }
            Err(error) => {
                // Not acknowledged: nothing is promised about this file any more.
                acked.files.remove(&name);
                acked.failures.push(format!("step {step}, {name}: {error}"));
            }
        }
        done.store(step + 1, Ordering::SeqCst);
    }
}

/// A workload on a foreground mount writes files of many sizes, some fsync'd, some only
/// closed, while `nfsio serve` is killed with SIGKILL and restarted on the same directory
/// and ports twice. Each version whose fsync or close succeeded must be byte-exact in the
/// export directory (read directly, not through any server) as soon as that call returns,
/// and, after the server is killed once more when the workload is done, still.
#[test]
fn what_fsync_and_close_acknowledged_survives_kill_9_of_serve() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    const FILES: usize = 240;
    /// The steps after which the server is killed.
    const KILL_AFTER: [usize; 2] = [60, 150];
    if !can_mount() {
        return;
    }
    let mut serve = Serve::start("mount-durable");
    let scratch = Scratch::new("mount-durable-mnt");
    let mnt = scratch.join("mnt");
    std::fs::create_dir(&mnt).expect("mountpoint");
    let (child, line) = foreground(&serve.short_url_of(""), &mnt, &scratch.join("mount.log"));
    let _guard = MountGuard {
        mnt: mnt.clone(),
        pids: vec![child.id()],
    };
    assert!(line.contains("mounted on"), "{line:?}");

    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let kills = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let workload = {
        let (dir, export, done, kills, acked) = (
            mnt.clone(),
            serve.export.clone(),
            Arc::clone(&done),
            Arc::clone(&kills),
            Arc::clone(&acked),
        );
        std::thread::spawn(move || durability_workload(&dir, &export, FILES, &done, &kills, &acked))
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    for after in KILL_AFTER {
        while done.load(Ordering::SeqCst) < after {
            assert!(!workload.is_finished(), "the workload ended early");
            assert!(Instant::now() < deadline, "the workload made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (status, _) = serve.stop_with("KILL");
        assert!(!status.success(), "nfsio serve was killed: {status}");
        kills.fetch_add(1, Ordering::SeqCst);
        assert!(
            done.load(Ordering::SeqCst) < FILES,
            "the kill after step {after} fell in the middle of the workload"
        );
        serve.respawn();
    }
    while !workload.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the workload did not finish after the restarts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    workload.join().expect("the workload thread");
    let elapsed = started.elapsed();
    // Killed once more: what a clean stop might still write out does not count.
    let (status, _) = serve.stop_with("KILL");
    assert!(!status.success(), "nfsio serve was killed: {status}");

    let acked = acked.lock().expect("lock");
    // A hard mount: every call waits for the server, none fails.
    assert!(
        acked.failures.is_empty(),
        "{} writes failed on a hard mount: {:?}",
        acked.failures.len(),
        acked.failures
    );
    assert!(
        acked.not_on_disk.is_empty(),
        "{} acknowledged versions were not on the server's disk when fsync or close \
         returned: {:?}",
        acked.not_on_disk.len(),
        acked.not_on_disk
    );
    let mut before_kill = [0usize; 3];
    let mut bytes = 0u64;
    for (name, &(len, seed, kills_then)) in &acked.files {
        let on_disk = std::fs::read(serve.export.join(name))
            .unwrap_or_else(|e| panic!("{name} (acknowledged): not on the server's disk: {e}"));
        let want = seeded_bytes(len, seed);
        if on_disk != want {
            let at = on_disk
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(on_disk.len().min(want.len()));
            panic!(
                "{name} (acknowledged before kill {}): {} bytes on the server's disk, {len} \
                 acknowledged; first difference at byte {at}",
                kills_then + 1,
                on_disk.len()
            );
        }
        before_kill[kills_then.min(2)] += 1;
        bytes += len as u64;
    }
    assert!(
        before_kill[0] > 0 && before_kill[1] > 0,
        "files were acknowledged before each kill: {before_kill:?}"
    );
    eprintln!(
        "measure: kill -9 durability: {FILES} steps, {} files ({} MiB) acknowledged, all \
         byte-exact on the server's disk (acknowledged before kill 1/2/3: {before_kill:?}), \
         3 SIGKILLs of nfsio serve, {:.1} s",
        acked.files.len(),
        bytes >> 20,
        elapsed.as_secs_f64()
    );
}
