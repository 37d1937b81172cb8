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
//!
//! Heavier variants run only with `NFSIO_HEAVY=1` (else one skip line each): 1,000,000
//! operations (ten seeds of 100,000, one test each, so that each stays under nextest's
//! 10-minute limit on a busy machine), and the four seeds of 25,000 against nfs-ganesha's
//! export (`Fixture::ganesha`) instead of `nfsio serve`'s. A failed run keeps its fsx output
//! and operation log in a directory the failure names.

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
/// The heavy variant's seeds and operations per seed (1,000,000 in all). Each completes
/// A-OK on local ext4 too: fsx-rs 0.3.2 sometimes asks posix_fallocate for 0 bytes, which
/// every Linux file system refuses (EINVAL), and then fails with "Test file system does not
/// support posix_fallocate" — seed 4 does at operation 55,767 on local disk as on the mount,
/// so 7 replaces it.
const HEAVY_SEEDS: [u64; 10] = [2, 3, 7, 5, 6, 15, 2027, 31338, 65537, 1_000_003];
const HEAVY_OPS: u64 = 100_000;
/// How long one heavy seed may take (152,000 operations took 433 s here, loaded).
const HEAVY_RUN_TIMEOUT: Duration = Duration::from_secs(570);

/// fsx's report of what went wrong: its first 40 `ERROR` lines (the bad bytes and the
/// operations before them come first, then its log dump).
fn errors(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    lines[..lines.len().min(40)].join("\n")
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How one fsx run goes.
struct Run {
    seed: u64,
    ops: u64,
    timeout: Duration,
    /// `-v`: every operation logged (the output's tail says where fsx stopped); off for
    /// the heavy runs, whose operation log (`FILE.fsxlog`) still has the tail.
    verbose: bool,
}

impl Run {
    fn standard(seed: u64) -> Run {
        Run {
            seed,
            ops: OPS,
            timeout: RUN_TIMEOUT,
            verbose: true,
        }
    }
}

/// Runs `fsx -N ops -S seed` on `file`, killing it after the run's timeout; returns its
/// exit status (None when it was killed) and its output (stdout and stderr, interleaved).
fn run_fsx(fsx: &Path, run: &Run, file: &Path, artifacts: &Path) -> (Option<ExitStatus>, String) {
    let seed = run.seed;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fsx.toml");
    let log_path = artifacts.join(format!("fsx-{seed}.out"));
    let log = File::create(&log_path).expect("fsx output file");
    let mut command = Command::new(fsx);
    command
        .arg("-f")
        .arg(&config)
        .args(["-N", &run.ops.to_string(), "-S", &seed.to_string()])
        .arg("-P")
        .arg(artifacts);
    if run.verbose {
        command.arg("-v");
    }
    let mut child = command
        .arg(file)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawn fsx");
    let deadline = Instant::now() + run.timeout;
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

/// Runs each of `runs` on a file of its own in `fx`'s mount; panics with fsx's output at
/// the first that is not A-OK. `what` names the setup in the printed figures.
fn run_seeds(fsx: &Path, fx: &Fixture, runs: &[Run], what: &str) {
    let artifacts = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    for run in runs {
        let (seed, ops) = (run.seed, run.ops);
        let file = fx.path(&format!("fsx-{seed}.bin"));
        let seed_started = Instant::now();
        let (status, output) = run_fsx(fsx, run, &file, artifacts.path());
        let oplog =
            std::fs::read_to_string(artifacts.path().join(format!("fsx-{seed}.bin.fsxlog")))
                .unwrap_or_default();
        let ok =
            status.is_some_and(|s| s.success()) && output.contains("All operations completed A-OK");
        if !ok {
            let kept = artifacts.keep();
            panic!(
                "fsx -N {ops} -S {seed} on {what}: {} (its output and log kept in {})\n--- \
                 fsx's first error lines ---\n{}\n--- its last output ---\n{}\n--- its \
                 operation log's tail ---\n{}",
                match status {
                    Some(status) => format!("exited with {status}"),
                    None => format!("killed after {:?}", run.timeout),
                },
                kept.display(),
                errors(&output),
                tail(&output, 30),
                tail(&oplog, 40),
            );
        }
        eprintln!(
            "fsx seed {seed}: {ops} ops A-OK in {:.1} s",
            seed_started.elapsed().as_secs_f64()
        );
    }
    let seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    eprintln!(
        "measure: fsx on {what}: seeds {seeds:?}, {} ops, {:.1} s, A-OK",
        runs.iter().map(|r| r.ops).sum::<u64>(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn fsx_seeds_complete_a_ok_on_the_mount() {
    let Some(fsx) = nfsio_testkit::require_cargo_tool("fsx") else {
        return;
    };
    let Some(fx) = Fixture::local() else { return };
    let runs: Vec<Run> = SEEDS.into_iter().map(Run::standard).collect();
    run_seeds(&fsx, &fx, &runs, "the mount");
}

/// One of the heavy variant's four seeds of 250,000 operations on `nfsio serve`'s export.
fn heavy_seed(index: usize) {
    if !common::heavy() {
        return;
    }
    let Some(fsx) = nfsio_testkit::require_cargo_tool("fsx") else {
        return;
    };
    let Some(fx) = Fixture::local() else { return };
    let run = Run {
        seed: HEAVY_SEEDS[index],
        ops: HEAVY_OPS,
        timeout: HEAVY_RUN_TIMEOUT,
        verbose: false,
    };
    run_seeds(&fsx, &fx, &[run], "the mount (heavy)");
}

/// One test per heavy seed (`heavy_fsx_1m_ops_part_N`), so that nextest runs them in
/// parallel and times each on its own.
macro_rules! heavy_parts {
    ($($name:ident = $index:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                heavy_seed($index);
            }
        )*
    };
}

heavy_parts!(
    heavy_fsx_1m_ops_part_01_on_the_mount = 0,
    heavy_fsx_1m_ops_part_02_on_the_mount = 1,
    heavy_fsx_1m_ops_part_03_on_the_mount = 2,
    heavy_fsx_1m_ops_part_04_on_the_mount = 3,
    heavy_fsx_1m_ops_part_05_on_the_mount = 4,
    heavy_fsx_1m_ops_part_06_on_the_mount = 5,
    heavy_fsx_1m_ops_part_07_on_the_mount = 6,
    heavy_fsx_1m_ops_part_08_on_the_mount = 7,
    heavy_fsx_1m_ops_part_09_on_the_mount = 8,
    heavy_fsx_1m_ops_part_10_on_the_mount = 9,
);

/// The standard seeds on a mount of nfs-ganesha's export (not `nfsio serve`'s).
#[test]
fn heavy_fsx_seeds_complete_a_ok_on_a_mount_of_ganesha() {
    if !common::heavy() {
        return;
    }
    let Some(fsx) = nfsio_testkit::require_cargo_tool("fsx") else {
        return;
    };
    let Some(fx) = Fixture::ganesha() else { return };
    let runs: Vec<Run> = SEEDS.into_iter().map(Run::standard).collect();
    run_seeds(&fsx, &fx, &runs, "a mount of nfs-ganesha");
}
