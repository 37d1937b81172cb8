//! What a test may expect of its environment, and what it does when that is missing.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

/// Whether we run under CI: the environment variable `CI` is exactly `true`.
///
/// Under CI a missing tool or server is a failure, not a reason to skip.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The name of the running test, as the test harness (libtest or nextest) gives it: the
/// current thread's name, or `"?"` outside a test.
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "?".to_owned(),
    }
}

/// Reports that the running test cannot do its job here because of `reason`.
///
/// Under CI (`CI=true`) this panics with the reason. Otherwise it writes the single line
/// `skipped: <test>: <reason>` to stderr (straight to the process's stderr, so that the test
/// harness's output capture does not swallow it) and returns; the test should then return early.
pub fn skip_or_fail(reason: &str) {
    let test = test_name();
    if is_ci() {
        panic!("{test}: {reason} (CI=true: not skipping)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {reason}");
}

/// Where `name` is found: in `PATH`, else in `/usr/sbin` or `/sbin` (which a non-root `PATH`
/// may lack).
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether the program `name` can be run. If it cannot: panics under CI, else prints one
/// `skipped: <test>: <name> not installed ...` line (see [`skip_or_fail`]) and returns false.
///
/// ```no_run
/// if !nfsio_testkit::require_tool("nfs-cp") { return; }
/// ```
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        return true;
    }
    skip_or_fail(&format!(
        "{name} not installed (run scripts/install-test-deps.sh)"
    ));
    false
}

/// Where the program `name` that `cargo install` put in place is (fsx, pjdfstest): in `PATH`,
/// else in cargo's bin directory (`$CARGO_HOME/bin`, default `~/.cargo/bin`). If it is in
/// neither: panics under CI, else prints one `skipped: ...` line (see [`skip_or_fail`]) and
/// returns None.
pub fn require_cargo_tool(name: &str) -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|dir| dir.join("bin").join(name));
    let found = find_tool(name).or(cargo_bin.filter(|p| is_executable(p)));
    if found.is_none() {
        skip_or_fail(&format!(
            "{name} not installed (run scripts/install-test-deps.sh)"
        ));
    }
    found
}

/// Whether we run as root (needed to capture packets and to run ganesha). If not: panics under
/// CI, else prints one skip line (see [`skip_or_fail`]) and returns false.
pub fn require_root() -> bool {
    if crate::sys::is_root() {
        return true;
    }
    skip_or_fail("needs root");
    false
}

/// A TCP port on 127.0.0.1 that nothing was bound to a moment ago (the kernel's choice for
/// port 0). Another process may take it before the caller binds it: retry on `EADDRINUSE`.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports: all are held at once while they are picked.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local_addr").port())
}
