//! fio (Debian package fio, installed by scripts/install-test-deps.sh) with `verify=crc32c`
//! on the mount: the job files in `tests/fio/` (sequential 1 MiB writes, 4 KiB random writes
//! each followed by fsync, 4 writers at once), each writing its files through the mount and
//! then reading every block back and checking its crc32c (`do_verify=1`, `verify_fatal=1`).
//!
//! A test passes when fio exits 0, every job reports error 0, and each job read back (the
//! verify pass) as many bytes as it wrote, more than zero. fio's terse output (version 3:
//! `;`-separated, field 3 the job name, 5 the error, 6 the KiB read, 47 the KiB written) is
//! parsed; the full output is shown when a test fails.
//!
//! The server is `nfsio serve`'s, in-process, on a local store in a temporary directory
//! (`common::Fixture`, which always unmounts). Without fio the tests skip with one line
//! (fail under CI=true).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;

/// How long one job file may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// One job's figures from fio's terse output.
#[derive(Debug)]
struct JobResult {
    name: String,
    error: i64,
    read_kib: u64,
    written_kib: u64,
}

/// The jobs of fio's terse (version 3) output: one `;`-separated line per job.
fn parse_terse(output: &str) -> Vec<JobResult> {
    output
        .lines()
        .filter(|line| line.starts_with("3;"))
        .map(|line| {
            let fields: Vec<&str> = line.split(';').collect();
            let field = |n: usize| -> &str {
                fields
                    .get(n - 1)
                    .unwrap_or_else(|| panic!("no field {n} in {line:?}"))
            };
            let number = |n: usize| -> u64 {
                field(n)
                    .parse()
                    .unwrap_or_else(|_| panic!("field {n} of {line:?} is not a number"))
            };
            JobResult {
                name: field(3).to_owned(),
                error: field(5)
                    .parse()
                    .unwrap_or_else(|_| panic!("error field of {line:?}")),
                read_kib: number(6),
                written_kib: number(47),
            }
        })
        .collect()
}

/// Runs the job file `tests/fio/JOB.fio` on the mount and checks that it wrote, verified
/// all it wrote, and found no error; `jobs` is how many jobs it has.
fn run_job(job: &str, jobs: usize) {
    if !nfsio_testkit::require_tool("fio") {
        return;
    }
    let Some(fx) = Fixture::local() else { return };
    let job_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fio/{job}.fio"));
    let workdir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let child = Command::new("fio")
        .arg(format!("--directory={}", fx.mnt.display()))
        .args(["--output-format=terse", "--terse-version=3"])
        .arg(&job_file)
        .current_dir(workdir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fio");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + RUN_TIMEOUT;
        while Instant::now() < deadline {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let output = child.wait_with_output().expect("wait for fio");
    let _ = watchdog.join();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = format!("--- fio's stdout ---\n{stdout}\n--- its stderr ---\n{stderr}");
    assert!(
        output.status.success(),
        "fio {job}.fio on the mount: {} (killed after {RUN_TIMEOUT:?} if signal 9)\n{shown}",
        output.status
    );
    let results = parse_terse(&stdout);
    assert_eq!(results.len(), jobs, "one result line per job\n{shown}");
    for result in &results {
        assert_eq!(result.error, 0, "{result:?}\n{shown}");
        assert!(
            result.written_kib > 0,
            "{result:?}: nothing written\n{shown}"
        );
        assert_eq!(
            result.read_kib, result.written_kib,
            "{result:?}: the verify pass read back less than was written\n{shown}"
        );
    }
    let written_kib: u64 = results.iter().map(|r| r.written_kib).sum();
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    eprintln!(
        "measure: fio {job}.fio on the mount: jobs {names:?}, {} MiB written and verified \
         (crc32c), 0 errors, {:.1} s",
        written_kib / 1024,
        elapsed.as_secs_f64()
    );
}

#[test]
fn fio_sequential_1m_writes_verify_crc32c_on_the_mount() {
    run_job("seq-write-1m", 1);
}

#[test]
fn fio_random_4k_writes_with_fsync_verify_crc32c_on_the_mount() {
    run_job("rand-write-4k-fsync", 1);
}

#[test]
fn fio_four_parallel_writers_verify_crc32c_on_the_mount() {
    run_job("parallel-writers-4", 4);
}
