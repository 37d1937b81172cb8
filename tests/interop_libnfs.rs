//! The `nfsio` CLI against ganesha, judged by libnfs's tools and Wireshark's dissectors.
//!
//! - A 256 MiB file written by `nfsio cp` reads back byte-exact with `nfs-cat`; one written by
//!   `nfs-cp` reads back byte-exact with `nfsio cat` and `nfsio cp` to a local file.
//! - `nfsio ls` lists what `nfs-ls` lists.
//! - User errors print one line with the path, the NFS status and the errno, and exit non-zero.
//! - The wire check: a capture of an interop run decodes in tshark with no malformed frame and
//!   no expert error, and shows nfsio's WRITEs as UNSTABLE followed by a COMMIT.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod common;

use common::{assert_same_file, make_file};
use nfsio_testkit::{Capture, Ganesha, StableHow, require_tool, wire_check};

const NFSIO: &str = env!("CARGO_BIN_EXE_nfsio");

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> Output {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nfsio-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn ganesha_cp_256_mib_both_ways_with_libnfs() {
    if !require_tool("nfs-cat") || !require_tool("nfs-cp") {
        return;
    }
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let dir = scratch("cp");
    let source = dir.join("source.bin");
    make_file(&source, 256 << 20, 42);

    // nfsio cp local -> ganesha, read back with nfs-cat.
    let url = ganesha.url("big.bin");
    run_ok(
        NFSIO,
        &["cp", "--quiet", source.to_str().unwrap_or_default(), &url],
    );
    let via_libnfs = dir.join("via-nfs-cat.bin");
    let output = Command::new("nfs-cat")
        .arg(&url)
        .stdout(std::fs::File::create(&via_libnfs).expect("out"))
        .status()
        .expect("nfs-cat");
    assert!(output.success(), "nfs-cat failed");
    assert_same_file(&source, &via_libnfs);
    assert_same_file(&source, &ganesha.export_dir.join("big.bin"));

    // nfs-cp local -> ganesha, read back with nfsio cat and nfsio cp.
    let url2 = ganesha.url("from-libnfs.bin");
    run_ok("nfs-cp", &[source.to_str().unwrap_or_default(), &url2]);
    let via_cat = dir.join("via-nfsio-cat.bin");
    let status = Command::new(NFSIO)
        .args(["cat", &url2])
        .stdout(std::fs::File::create(&via_cat).expect("out"))
        .status()
        .expect("nfsio cat");
    assert!(status.success());
    assert_same_file(&source, &via_cat);
    let via_cp = dir.join("via-nfsio-cp.bin");
    run_ok(
        NFSIO,
        &["cp", "-q", &url2, via_cp.to_str().unwrap_or_default()],
    );
    assert_same_file(&source, &via_cp);

    // --stats reports the calls that were made.
    let output = run_ok(
        NFSIO,
        &[
            "cp",
            "-q",
            "--stats",
            &url2,
            &ganesha.url("copy-of-copy.bin"),
        ],
    );
    let stats = String::from_utf8_lossy(&output.stdout);
    for procedure in ["READ", "WRITE", "COMMIT"] {
        assert!(
            stats.lines().any(|l| l.trim_start().starts_with(procedure)),
            "no {procedure} row in:\n{stats}"
        );
    }
    assert_same_file(&source, &ganesha.export_dir.join("copy-of-copy.bin"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names `nfs-ls` prints for a directory, without `.` and `..`.
fn nfs_ls_names(url: &str) -> Vec<String> {
    let output = run_ok("nfs-ls", &[url]);
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().last().map(str::to_owned))
        .filter(|name| name != "." && name != "..")
        .collect();
    names.sort();
    names
}

#[test]
fn ganesha_ls_agrees_with_nfs_ls() {
    if !require_tool("nfs-ls") {
        return;
    }
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let export = &ganesha.export_dir;
    std::fs::create_dir_all(export.join("sub/deeper")).expect("dirs");
    for i in 0..40 {
        std::fs::write(export.join(format!("sub/file-{i:02}")), vec![b'x'; i * 100]).expect("file");
    }
    std::os::unix::fs::symlink("file-01", export.join("sub/link")).expect("symlink");
    let url = ganesha.url("sub");
    let ours = run_ok(NFSIO, &["ls", &url]);
    let ours: Vec<String> = String::from_utf8_lossy(&ours.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ours.len(), 42);
    assert_eq!(ours, nfs_ls_names(&url));
    // The long form shows the same sizes as the server's disk.
    let long = run_ok(NFSIO, &["ls", "-l", &url]);
    let long = String::from_utf8_lossy(&long.stdout);
    let line = long
        .lines()
        .find(|l| l.ends_with(" file-07"))
        .expect("file-07 in ls -l");
    assert!(line.starts_with("-rw"), "{line}");
    assert!(
        line.split_whitespace().any(|field| field == "700"),
        "{line}"
    );
    assert!(
        long.lines()
            .any(|l| l.starts_with('d') && l.ends_with(" deeper"))
    );
    assert!(
        long.lines()
            .any(|l| l.starts_with('l') && l.ends_with(" link -> file-01"))
    );
}

#[test]
fn ganesha_cli_errors_are_one_line_with_status_and_errno() {
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    std::fs::create_dir(ganesha.export_dir.join("full")).expect("dir");
    std::fs::write(ganesha.export_dir.join("full/x"), b"x").expect("file");
    let cases: [(&[&str], &str, &str); 5] = [
        (&["cat", &ganesha.url("missing")], "NFS3ERR_NOENT", "ENOENT"),
        (&["rm", &ganesha.url("missing")], "NFS3ERR_NOENT", "ENOENT"),
        (&["mkdir", &ganesha.url("full")], "NFS3ERR_EXIST", "EEXIST"),
        (&["cat", &ganesha.url("full")], "NFS3ERR_ISDIR", "EISDIR"),
        (
            &["stat", &ganesha.url("full/x/y")],
            "NFS3ERR_NOTDIR",
            "ENOTDIR",
        ),
    ];
    for (args, status, errno) in cases {
        let output = run(NFSIO, args);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?} printed {stderr:?}");
        assert!(
            lines[0].contains(status) && lines[0].contains(errno),
            "{args:?}: {stderr}"
        );
        assert!(
            lines[0].contains(args[1].split('?').next().unwrap_or_default()),
            "{args:?}: {stderr}"
        );
    }
    // mkdir -p of an existing directory succeeds, and creates missing parents.
    run_ok(NFSIO, &["mkdir", "-p", &ganesha.url("full")]);
    run_ok(NFSIO, &["mkdir", "-p", &ganesha.url("a/b/c")]);
    assert!(ganesha.export_dir.join("a/b/c").is_dir());
    run_ok(
        NFSIO,
        &["mv", &ganesha.url("full/x"), &ganesha.url("a/b/c/y")],
    );
    assert_eq!(
        std::fs::read(ganesha.export_dir.join("a/b/c/y")).expect("moved"),
        b"x"
    );
    run_ok(NFSIO, &["rm", &ganesha.url("a/b/c/y")]);
    assert!(!ganesha.export_dir.join("a/b/c/y").exists());
    // A bad URL is a one-line error too.
    let output = run(NFSIO, &["ls", "nfs://127.0.0.1/export?version=4"]);
    assert!(!output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
}

#[test]
fn ganesha_wire_check_with_tshark() {
    if !require_tool("tshark") || !require_tool("nfs-ls") {
        return;
    }
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let dir = scratch("wire");
    let source = dir.join("small.bin");
    make_file(&source, 13 << 20, 7);
    let pcap = dir.join("interop.pcapng");
    let Some(capture) = Capture::start(&[ganesha.nfs_port, ganesha.mnt_port], &pcap) else {
        return;
    };
    let url = ganesha.url("wire.bin");
    run_ok(
        NFSIO,
        &["cp", "-q", source.to_str().unwrap_or_default(), &url],
    );
    run_ok(NFSIO, &["ls", "-l", &ganesha.url("")]);
    run_ok(NFSIO, &["stat", &url]);
    let back = dir.join("back.bin");
    run_ok(
        NFSIO,
        &["cp", "-q", &url, back.to_str().unwrap_or_default()],
    );
    run_ok(NFSIO, &["mkdir", &ganesha.url("wire-dir")]);
    run_ok(
        NFSIO,
        &["mv", &ganesha.url("wire-dir"), &ganesha.url("wire-dir2")],
    );
    run_ok(NFSIO, &["rm", &url]);
    let _ = run("nfs-ls", &[&ganesha.url("")]);
    capture.stop();
    assert_same_file(&source, &back);

    let report = wire_check(&pcap);
    assert!(
        report.nfs_frames > 20,
        "too few NFS frames decoded: {report:?}"
    );
    assert!(report.mount_frames >= 2, "MOUNT not decoded: {report:?}");
    assert!(
        report.is_clean(),
        "the dissectors found problems:\n{report}"
    );
    let calls = nfsio_testkit::nfs_calls(&pcap);
    let writes: Vec<_> = calls.iter().filter(|c| c.name() == "WRITE").collect();
    assert!(writes.len() >= 3, "{calls:?}");
    assert!(
        writes.iter().all(|w| w.stable == Some(StableHow::Unstable)),
        "{writes:?}"
    );
    assert!(
        calls.iter().any(|c| c.name() == "COMMIT"),
        "no COMMIT: {calls:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
