//! fsx (the Rust port, fsx-rs 0.3.2, installed by scripts/install-test-deps.sh) on the mount:
//! a fixed set of seeds, 25,000 operations each, on one file in the mount, every read
//! checked against fsx's own copy of the bytes. The mix (`tests/fsx.toml`; counted from `-v`
//! on 5,000 ops): about 26% pread, 26% pwrite, 13% mmap writes (msync'd), 12% mmap reads, 5%
//! truncates, and 2-3% each of fsync, fdatasync, close and reopen, posix_fallocate, msync
//! MS_INVALIDATE, posix_fadvise, sendfile and copy_file_range.
//!
//! Off is only punch_hole: the mount answers fallocate(2) with EOPNOTSUPP (posix_fallocate
//! passes through glibc's fallback, which writes the range). The server is `nfsio serve`'s,
//! in-process, on a local store in a temporary directory (`common::Fixture`, which always
//! unmounts).
//!
//! Without fsx the test skips with one line (fails under CI=true). A failure shows fsx's
//! last output lines and the tail of its operation log (`FILE.fsxlog`).

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;

/// The seeds, fixed so that a failure reproduces: `fsx -N 25000 -S SEED`.
const SEEDS: [u64; 4] = [1, 14, 2026, 31337];
/// Operations per seed (100,000 in all).
const OPS: u64 = 25_000;
/// How long one seed's run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `fsx -N OPS -S seed` on `file`, killing it after [`RUN_TIMEOUT`]; returns its exit
/// status (None when it was killed) and its output (stdout and stderr, interleaved).
fn run_fsx(fsx: &Path, seed: u64, file: &Path, artifacts: &Path) -> (Option<ExitStatus>, String) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fsx.toml");
    let log_path = artifacts.join(format!("fsx-{seed}.out"));
    let log = File::create(&log_path).expect("fsx output file");
    let mut child = Command::new(fsx)
        .arg("-f")
        .arg(&config)
        .args(["-N", &OPS.to_string(), "-S", &seed.to_string()])
        .arg("-P")
        .arg(artifacts)
        // -v logs every operation, so that the output's tail says where fsx stopped.
        .arg("-v")
        .arg(file)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawn fsx");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for fsx") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    (status, output)
}

#[test]
fn fsx_seeds_complete_a_ok_on_the_mount() {
    let Some(fsx) = nfsio_testkit::require_cargo_tool("fsx") else {
        return;
    };
    let Some(fx) = Fixture::local() else { return };
    let artifacts = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    for seed in SEEDS {
        let file = fx.path(&format!("fsx-{seed}.bin"));
        let seed_started = Instant::now();
        let (status, output) = run_fsx(&fsx, seed, &file, artifacts.path());
        let oplog =
            std::fs::read_to_string(artifacts.path().join(format!("fsx-{seed}.bin.fsxlog")))
                .unwrap_or_default();
        let ok =
            status.is_some_and(|s| s.success()) && output.contains("All operations completed A-OK");
        assert!(
            ok,
            "fsx -N {OPS} -S {seed} on the mount: {}\n--- fsx's last output ---\n{}\n--- its \
             operation log's tail ---\n{}",
            match status {
                Some(status) => format!("exited with {status}"),
                None => format!("killed after {RUN_TIMEOUT:?}"),
            },
            tail(&output, 30),
            tail(&oplog, 40),
        );
        eprintln!(
            "fsx seed {seed}: {OPS} ops A-OK in {:.1} s",
            seed_started.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "measure: fsx on the mount: seeds {SEEDS:?}, {} ops, {:.1} s, A-OK",
        OPS * SEEDS.len() as u64,
        started.elapsed().as_secs_f64()
    );
}
