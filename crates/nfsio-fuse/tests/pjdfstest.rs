//! pjdfstest (the Rust port, 0.2.2, installed by scripts/install-test-deps.sh) as root on
//! the mount: every test runs, and each that fails must be listed in
//! `tests/pjdfstest/exclusions.txt` with its reason (what NFSv3, FUSE or `nfsio serve` does
//! not do). A failure that is not listed fails this test, with pjdfstest's message for it;
//! a listed test that now passes is printed (its exclusion can go).
//!
//! The configuration is `tests/pjdfstest/pjdfstest.toml` (its users are Debian's own:
//! nobody, daemon, bin). The mount has allow_other, so that the tests that switch users
//! reach the mount (each request acts as its caller); the server is `nfsio serve`'s,
//! in-process, making device nodes (`--devices`), on a local store in a temporary directory (`common::Fixture`, always unmounted). Without pjdfstest the test
//! skips with one line (fails under CI=true).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;

/// How long the whole suite may take (about 6 s here) before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pjdfstest")
}

/// One exclusion: a test name (or a pattern with one `*`) and why.
struct Exclusion {
    pattern: String,
    reason: String,
}

impl Exclusion {
    fn matches(&self, name: &str) -> bool {
        match self.pattern.split_once('*') {
            Some((prefix, suffix)) => {
                name.len() >= prefix.len() + suffix.len()
                    && name.starts_with(prefix)
                    && name.ends_with(suffix)
            }
            None => self.pattern == name,
        }
    }
}

/// `exclusions.txt`: `NAME-OR-PATTERN  # CATEGORY: reason` lines; `#` lines are comments.
fn exclusions() -> Vec<Exclusion> {
    let text = std::fs::read_to_string(dir().join("exclusions.txt")).expect("exclusions.txt");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (pattern, reason) = line
                .split_once('#')
                .unwrap_or_else(|| panic!("exclusion without a reason: {line:?}"));
            Exclusion {
                pattern: pattern.trim().to_owned(),
                reason: reason.trim().to_owned(),
            }
        })
        .collect()
}

/// pjdfstest's verdicts: test name to `ok`, `skipped` or `FAILED` plus its first message
/// line.
fn verdicts(output: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, verdict] = words[..] else { continue };
        if !name.contains("::") || !["ok", "skipped", "FAILED"].contains(&verdict) {
            continue;
        }
        let message = match (verdict, lines.peek()) {
            ("FAILED", Some(next)) if next.starts_with('\t') => next.trim().to_owned(),
            _ => String::new(),
        };
        out.insert(name.to_owned(), (verdict.to_owned(), message));
    }
    out
}

/// Runs pjdfstest on `mnt`, killed after [`RUN_TIMEOUT`]; returns its output.
fn run_pjdfstest(pjdfstest: &Path, mnt: &Path) -> String {
    let workdir = tempfile::tempdir().expect("tempdir");
    let log_path = workdir.path().join("pjdfstest.out");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(pjdfstest)
        .arg("-c")
        .arg(dir().join("pjdfstest.toml"))
        .arg("-p")
        .arg(mnt)
        .current_dir(workdir.path())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawn pjdfstest");
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pjdfstest still running after {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(&log_path).unwrap_or_default()
}

#[test]
fn pjdfstest_passes_on_the_mount_but_for_the_listed_exclusions() {
    let Some(pjdfstest) = nfsio_testkit::require_cargo_tool("pjdfstest") else {
        return;
    };
    let Some(fx) = Fixture::local_allow_other() else {
        return;
    };
    let exclusions = exclusions();
    let started = Instant::now();
    let output = run_pjdfstest(&pjdfstest, &fx.mnt);
    let elapsed = started.elapsed();
    let verdicts = verdicts(&output);
    assert!(
        verdicts.len() > 300,
        "pjdfstest ran {} tests:\n{output}",
        verdicts.len()
    );
    let excluded = |name: &str| exclusions.iter().find(|e| e.matches(name));
    let mut unexpected = Vec::new();
    let mut excluded_by: BTreeMap<String, usize> = BTreeMap::new();
    let mut now_passing = Vec::new();
    let count = |verdict: &str| verdicts.values().filter(|(v, _)| v == verdict).count();
    for (name, (verdict, message)) in &verdicts {
        match (verdict.as_str(), excluded(name)) {
            ("FAILED", None) => unexpected.push(format!("{name}: {message}")),
            ("FAILED", Some(exclusion)) => {
                let category = exclusion.reason.split(':').next().unwrap_or("").to_owned();
                *excluded_by.entry(category).or_default() += 1;
            }
            ("ok", Some(exclusion)) => {
                now_passing.push(format!("{name} (excluded: {})", exclusion.reason));
            }
            _ => {}
        }
    }
    for line in &now_passing {
        eprintln!("pjdfstest: now passes, its exclusion can go: {line}");
    }
    assert!(
        unexpected.is_empty(),
        "{} pjdfstest tests failed on the mount and are not in tests/pjdfstest/exclusions.txt:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    eprintln!(
        "measure: pjdfstest 0.2.2 on the mount: {} tests, {} passed, {} failed as excluded \
         {excluded_by:?}, {} skipped, {:.1} s",
        verdicts.len(),
        count("ok"),
        count("FAILED"),
        count("skipped"),
        elapsed.as_secs_f64()
    );
}
