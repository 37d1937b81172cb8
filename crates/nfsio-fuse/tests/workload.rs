//! A real workload on the mount: a real source tree unpacked, built and put under git.
//!
//! 1. tokio's and heck's published sources (the `.crate` tarballs of the versions in the
//!    workspace's Cargo.lock, from cargo's download cache, which any build of this workspace
//!    fills: no network) are unpacked with `tar` onto the mount and onto local disk, and the
//!    two trees compared: the same entries, types, permission bits, mtimes, symlink targets
//!    and bytes. The unpack's files/s is printed.
//! 2. heck (no dependencies) is built and its tests run with `cargo test --offline`, its
//!    target directory on the mount: rustc writes, links and then executes test binaries
//!    from the mount.
//! 3. `git init`, `add`, `commit` and `fsck --full --strict` in tokio's tree on the mount;
//!    the commit's tree is the one `git write-tree` makes of the local copy (every byte and
//!    mode the same), and `git status` shows nothing changed.
//!
//! The server is `nfsio serve`'s, in-process, on a local store (`common::Fixture`, always
//! unmounted); with `NFSIO_HEAVY=1` the same runs on a mount of nfs-ganesha's export too. Without tar, git or a cached `.crate` the test skips with one line (fails
//! under CI=true).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::Fixture;

/// The crates unpacked: (name, what it is for).
const TREE_CRATE: &str = "tokio";
const BUILD_CRATE: &str = "heck";

/// The version of `name` in the workspace's Cargo.lock.
fn locked_version(name: &str) -> Option<String> {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let text = fs::read_to_string(lock).ok()?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{name}\"") {
            let version = lines.next()?.strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}

/// `NAME-VERSION.crate` in cargo's download cache, for the locked version.
fn cached_crate(name: &str) -> Option<(String, PathBuf)> {
    let version = locked_version(name)?;
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let file = format!("{name}-{version}.crate");
    let found = fs::read_dir(home.join("registry/cache"))
        .ok()?
        .flatten()
        .map(|registry| registry.path().join(&file))
        .find(|p| p.is_file())?;
    Some((format!("{name}-{version}"), found))
}

/// Runs `command`, panicking with its output unless it succeeds.
fn run(what: &str, command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn untar(archive: &Path, into: &Path) {
    run(
        &format!("tar xzf {} in {}", archive.display(), into.display()),
        Command::new("tar")
            .args(["--no-same-owner", "-xzf"])
            .arg(archive)
            .arg("-C")
            .arg(into),
    );
}

/// Every path below `root` (relative, sorted).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let entries =
            fs::read_dir(root.join(&rel)).unwrap_or_else(|e| panic!("list {}: {e}", rel.display()));
        for entry in entries {
            let entry = entry.expect("entry");
            let path = rel.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Panics at the first difference between the trees `local` and `mounted`; returns the
/// number of entries.
fn assert_same_tree(local: &Path, mounted: &Path) -> usize {
    let (a, b) = (walk(local), walk(mounted));
    assert_eq!(a, b, "the same entries on local disk and on the mount");
    for rel in &a {
        let (la, lb) = (local.join(rel), mounted.join(rel));
        let (ma, mb) = (
            fs::symlink_metadata(&la).expect("stat local"),
            fs::symlink_metadata(&lb).expect("stat mount"),
        );
        let show = rel.display();
        assert_eq!(ma.file_type(), mb.file_type(), "{show}: type");
        assert_eq!(
            ma.permissions().mode() & 0o7777,
            mb.permissions().mode() & 0o7777,
            "{show}: mode"
        );
        if ma.is_symlink() {
            assert_eq!(fs::read_link(&la).ok(), fs::read_link(&lb).ok(), "{show}");
        } else if ma.is_file() {
            assert_eq!(ma.mtime(), mb.mtime(), "{show}: mtime");
            assert_eq!(ma.len(), mb.len(), "{show}: size");
            assert!(
                fs::read(&la).expect("read local") == fs::read(&lb).expect("read mount"),
                "{show}: the bytes differ"
            );
        }
    }
    a.len()
}

/// git with no system or user configuration, as a fixed author.
fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=nfsio test", "-c", "user.email=test@nfsio"])
        .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"]);
    command
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The two `.crate` files (name-version and path: the tree's, the build's), or None after
/// one skip line (a failure under CI=true) when a tool or a `.crate` is missing.
fn inputs() -> Option<[(String, PathBuf); 2]> {
    if !nfsio_testkit::require_tool("tar") || !nfsio_testkit::require_tool("git") {
        return None;
    }
    match (cached_crate(TREE_CRATE), cached_crate(BUILD_CRATE)) {
        (Some(tree), Some(build)) => Some([tree, build]),
        _ => {
            nfsio_testkit::skip_or_fail(&format!(
                "{TREE_CRATE} or {BUILD_CRATE} of Cargo.lock is not in cargo's download \
                 cache (a `cargo build` of the workspace puts it there)"
            ));
            None
        }
    }
}

#[test]
fn a_source_tree_unpacks_builds_and_commits_on_the_mount() {
    let Some(inputs) = inputs() else { return };
    let Some(fx) = Fixture::local() else { return };
    run_workload(&fx, inputs, "the mount");
}

/// The same workload on a mount of nfs-ganesha's export (not `nfsio serve`'s).
#[test]
fn heavy_a_source_tree_unpacks_builds_and_commits_on_a_mount_of_ganesha() {
    if !common::heavy() {
        return;
    }
    let Some(inputs) = inputs() else { return };
    let Some(fx) = Fixture::ganesha() else { return };
    run_workload(&fx, inputs, "a mount of nfs-ganesha");
}

/// Unpacks, compares, builds and commits on `fx`'s mount (`what` in the printed figures).
fn run_workload(fx: &Fixture, inputs: [(String, PathBuf); 2], what: &str) {
    let [(tree_name, tree_crate), (build_name, build_crate)] = inputs;
    let local = tempfile::tempdir().expect("tempdir");
    let mounted = fx.path("src");
    fs::create_dir(&mounted).expect("mkdir on the mount");

    // 1. The unpack, timed on the mount; compared with local disk.
    untar(&tree_crate, local.path());
    untar(&build_crate, local.path());
    let started = Instant::now();
    untar(&tree_crate, &mounted);
    let unpack = started.elapsed();
    untar(&build_crate, &mounted);
    let entries = assert_same_tree(local.path(), &mounted);
    let files = walk(&mounted.join(&tree_name))
        .iter()
        .filter(|rel| mounted.join(&tree_name).join(rel).is_file())
        .count();
    eprintln!(
        "measure: tar xzf {tree_name}.crate onto {what}: {files} files in {:.2} s, {:.0} \
         files/s; {entries} entries compared byte for byte with local disk",
        unpack.as_secs_f64(),
        files as f64 / unpack.as_secs_f64()
    );
    assert!(
        files > 300,
        "{tree_name} has hundreds of files, got {files}"
    );

    // 2. A real build and test run, everything on the mount.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let output = run(
        &format!("cargo test --offline in {build_name} on the mount"),
        Command::new(&cargo)
            .args(["test", "--offline", "--quiet"])
            .current_dir(mounted.join(&build_name))
            .env("CARGO_TARGET_DIR", mounted.join("target"))
            .env_remove("RUSTC_WRAPPER")
            .env_remove("CARGO_BUILD_TARGET_DIR"),
    );
    let test_output = String::from_utf8_lossy(&output.stdout);
    assert!(
        test_output.contains("test result: ok"),
        "cargo test printed no passing result:\n{test_output}"
    );
    eprintln!(
        "measure: cargo test --offline of {build_name} on {what}: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 3. git on the mount; the tree must be the local copy's.
    let repo = mounted.join(&tree_name);
    let started = Instant::now();
    let mut steps = Vec::new();
    let mut timed = |what: &'static str, args: &[&str]| {
        let step = Instant::now();
        let output = run(what, git(&repo).args(args));
        steps.push(format!("{what} {:.1} s", step.elapsed().as_secs_f64()));
        output
    };
    timed("init", &["init", "-q"]);
    timed("add", &["add", "-A"]);
    timed("commit", &["commit", "-q", "-m", "import"]);
    timed("fsck", &["fsck", "--full", "--strict"]);
    let status = timed("status", &["status", "--porcelain"]);
    assert_eq!(stdout_of(&status), "", "nothing changed after the commit");
    let on_mount = stdout_of(&run(
        "git rev-parse",
        git(&repo).args(["rev-parse", "HEAD^{tree}"]),
    ));
    let git_time = started.elapsed();
    let local_repo = local.path().join(&tree_name);
    run("local git init", git(&local_repo).args(["init", "-q"]));
    run("local git add", git(&local_repo).args(["add", "-A"]));
    let local_tree = stdout_of(&run("local write-tree", git(&local_repo).arg("write-tree")));
    assert_eq!(
        on_mount, local_tree,
        "the commit's tree is the local copy's"
    );
    eprintln!(
        "measure: git init/add/commit/fsck --full/status of {tree_name} on {what}: {:.1} s \
         ({})",
        git_time.as_secs_f64(),
        steps.join(", ")
    );
}
