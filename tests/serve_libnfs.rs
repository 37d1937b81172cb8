//! libnfs (`nfs-cp`, `nfs-cat`, `nfs-ls`, from Debian's libnfs-utils) against `nfsio serve`,
//! judged by the server's disk and by Wireshark's dissectors.
//!
//! - A file of `NFSIO_INTEROP_MIB` MiB (default 256; 1024 for the issue's manual 1 GiB run)
//!   goes up with `nfs-cp` and lands byte-exact on the server's disk; it comes back byte-exact
//!   with `nfs-cat` and with `nfs-cp`.
//! - `nfs-ls` lists what is on the server's disk: names, types and sizes.
//! - SIGTERM in the middle of an `nfs-cp` upload stops the server within 5 s with status 0.
//! - A capture of `nfs-cp` runs into two instances of the server (one restart on the same port)
//!   decodes cleanly in tshark; every UNSTABLE WRITE is answered UNSTABLE; the WRITE and COMMIT
//!   replies of one instance carry one verifier, and the two instances differ.
//!
//! Without the tools each test prints one `skipped:` line (and fails when `CI=true`).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Serve, assert_same_file, make_file};
use nfsio_testkit::{Capture, StableHow, nfs_calls, require_tool, wire_check};

fn run_ok(program: &str, args: &[&std::ffi::OsStr]) -> Output {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `nfs-cat URL > path`.
fn nfs_cat_to(url: &str, path: &Path) {
    let status = Command::new("nfs-cat")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(path).expect("output file"))
        .status()
        .expect("run nfs-cat");
    assert!(status.success(), "nfs-cat {url} failed: {status}");
}

/// The size of the big file, in MiB: `NFSIO_INTEROP_MIB`, default 256.
fn interop_mib() -> u64 {
    match std::env::var("NFSIO_INTEROP_MIB") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("NFSIO_INTEROP_MIB={text:?} is not a number of MiB")),
        Err(_) => 256,
    }
}

#[test]
fn serve_libnfs_cp_and_cat_byte_exact_both_ways() {
    if !require_tool("nfs-cp") || !require_tool("nfs-cat") {
        return;
    }
    let server = Serve::start("libnfs-cp");
    let source = server.scratch("source.bin");
    make_file(&source, interop_mib() << 20, 1813);

    // Up: nfs-cp local -> nfsio serve; the server's disk has the same bytes.
    let url = server.url_of("big.bin");
    run_ok("nfs-cp", &[source.as_os_str(), url.as_ref()]);
    assert_same_file(&source, &server.export.join("big.bin"));

    // Down: nfs-cat and nfs-cp nfsio serve -> local.
    let via_cat = server.scratch("via-nfs-cat.bin");
    nfs_cat_to(&url, &via_cat);
    assert_same_file(&source, &via_cat);
    std::fs::remove_file(&via_cat).expect("rm");
    let via_cp = server.scratch("via-nfs-cp.bin");
    run_ok("nfs-cp", &[url.as_ref(), via_cp.as_os_str()]);
    assert_same_file(&source, &via_cp);
    std::fs::remove_file(&via_cp).expect("rm");

    // nfs-cp creates GUARDED (as against ganesha): an existing file is refused with EXIST and
    // left as it was.
    let small = server.scratch("small.bin");
    make_file(&small, 3 << 20, 7);
    let refused = Command::new("nfs-cp")
        .args([small.as_os_str(), url.as_ref()])
        .stdin(Stdio::null())
        .output()
        .expect("run nfs-cp");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("NFS3ERR_EXIST"),
        "nfs-cp onto an existing file: {}: {stderr}",
        refused.status
    );
    assert_same_file(&source, &server.export.join("big.bin"));
}

#[test]
fn serve_stops_with_status_0_on_sigterm_during_an_nfs_cp_upload() {
    if !require_tool("nfs-cp") {
        return;
    }
    let mut server = Serve::start("stop-mid-copy");
    // A sparse 1 GiB source: quick to make, and the upload is long enough to interrupt.
    let source = server.scratch("sparse.bin");
    std::fs::File::create(&source)
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse source");
    let target = server.export.join("partial.bin");
    let mut nfs_cp = Command::new("nfs-cp")
        .arg(&source)
        .arg(server.url_of("partial.bin"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run nfs-cp");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&target).map_or(0, |m| m.len()) < 32 << 20 {
        assert!(Instant::now() < deadline, "nfs-cp wrote nothing in 30 s");
        assert!(
            nfs_cp.try_wait().expect("nfs-cp").is_none(),
            "nfs-cp finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let started = Instant::now();
    let (exit, in_time) = server.stop_with("TERM");
    let took = started.elapsed();
    // libnfs keeps reconnecting to a server that went away: stop it.
    let _ = nfs_cp.kill();
    let _ = nfs_cp.wait();
    assert!(
        in_time && exit.code() == Some(0),
        "SIGTERM during an upload: {exit} after {took:?}; stderr:\n{}",
        server.log_text()
    );
}

/// `nfs-ls URL` as name -> (type letter, size), without `.` and `..`.
fn nfs_ls(url: &str) -> BTreeMap<String, (char, u64)> {
    let output = run_ok("nfs-ls", &[url.as_ref()]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            // "-rw-r--r--  1     0     0          200 f2"
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [mode, _nlink, _uid, _gid, size, name] = fields[..] else {
                panic!("unexpected nfs-ls line {line:?}");
            };
            let kind = mode.chars().next()?;
            let size = size.parse().unwrap_or_else(|_| panic!("size in {line:?}"));
            (name != "." && name != "..").then(|| (name.to_owned(), (kind, size)))
        })
        .collect()
}

/// What `ls -l` would show for the entries of `dir`: name -> (type letter, size).
fn on_disk(dir: &Path) -> BTreeMap<String, (char, u64)> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| {
            let entry = entry.expect("entry");
            let meta = std::fs::symlink_metadata(entry.path()).expect("lstat");
            let kind = match meta.file_type() {
                t if t.is_dir() => 'd',
                t if t.is_symlink() => 'l',
                t if t.is_fifo() => 'p',
                _ => '-',
            };
            (
                entry.file_name().to_string_lossy().into_owned(),
                (kind, meta.len()),
            )
        })
        .collect()
}

#[test]
fn serve_libnfs_ls_lists_what_is_on_disk() {
    if !require_tool("nfs-ls") {
        return;
    }
    let server = Serve::start("libnfs-ls");
    let export = &server.export;
    std::fs::create_dir_all(export.join("sub/deeper")).expect("dirs");
    for i in 0..150 {
        std::fs::write(export.join(format!("sub/file-{i:03}")), vec![b'x'; i * 100]).expect("file");
    }
    std::os::unix::fs::symlink("file-001", export.join("sub/link")).expect("symlink");
    std::os::unix::fs::symlink("../../outside", export.join("sub/escape")).expect("symlink");
    let listed = nfs_ls(&server.url_of("sub"));
    assert_eq!(listed.len(), 153, "{listed:?}");
    assert_eq!(listed, on_disk(&export.join("sub")));
    // The export root: what nfs-cp and friends left there, too.
    std::fs::write(export.join("top"), b"top").expect("file");
    assert_eq!(nfs_ls(&server.url_of("")), on_disk(export));
}

/// `(frame, verifier)` of every NFSv3 reply that carries a write verifier (WRITE and COMMIT),
/// in frame order; a frame with several such replies gives several pairs.
///
/// `nfs_calls` does not expose the verifier, so this asks tshark for the `nfs.verifier` field
/// itself (READDIR replies carry their cookie verifier in the same field, hence the filter), with the same reading options as nfsio-testkit (heuristic dissectors first, RPC
/// records up to 64 MiB).
fn reply_verifiers(pcap: &Path) -> Vec<(u64, String)> {
    let output = Command::new("tshark")
        .args([
            "-n",
            "-o",
            "tcp.try_heuristic_first:TRUE",
            "-o",
            "rpc.max_tcp_pdu_size:67108864",
            "-r",
        ])
        .arg(pcap)
        .args([
            "-Y",
            "rpc.msgtyp == 1 && (nfs.procedure_v3 == 7 || nfs.procedure_v3 == 21) && nfs.verifier",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "frame.number",
            "-e",
            "nfs.verifier",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run tshark");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .flat_map(|line| {
            let (frame, verifiers) = line.split_once('\t').unwrap_or((line, ""));
            let frame: u64 = frame.trim().parse().expect("frame number");
            verifiers
                .split(',')
                .filter(|v| !v.is_empty())
                .map(move |v| (frame, v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Pins every thread of process `pid` to CPU 0.
///
/// On loopback, a segment is captured on the CPU that transmits it; when a TCP sender's segments
/// leave from two CPUs at once (the writer, and the softirq that handles the peer's ACKs),
/// dumpcap may record them out of order, and tshark (without `tcp.reassemble_out_of_order`)
/// then leaves the RPC records after the gap undissected. With the server and `nfs-cp` on one
/// CPU, the capture has the segments in sending order.
fn pin_to_one_cpu(pid: u32) {
    run_ok(
        "taskset",
        &[
            "-a".as_ref(),
            "-p".as_ref(),
            "-c".as_ref(),
            "0".as_ref(),
            pid.to_string().as_ref(),
        ],
    );
}

/// `nfs-cp` from `source` to `url`, on CPU 0 (see [`pin_to_one_cpu`]).
fn nfs_cp_on_cpu_0(source: &Path, url: &str) {
    let args = [
        "-c".as_ref(),
        "0".as_ref(),
        "nfs-cp".as_ref(),
        source.as_os_str(),
        url.as_ref(),
    ];
    run_ok("taskset", &args);
}

#[test]
fn serve_libnfs_wire_unstable_writes_and_one_verifier_per_instance() {
    if !require_tool("tshark")
        || !require_tool("nfs-cp")
        || !require_tool("nfs-ls")
        || !require_tool("taskset")
    {
        return;
    }
    let mut server = Serve::start("libnfs-wire");
    let source = server.scratch("wire.bin");
    make_file(&source, 24 << 20, 99);
    let pcap = server.scratch("serve.pcapng");
    let mut ports = vec![server.nfs_port, server.mount_port];
    ports.dedup();
    let Some(capture) = Capture::start(&ports, &pcap) else {
        return;
    };

    // Instance 1: nfs-cp up, nfs-ls. Instance 2 (restarted on the same port): nfs-cp up again.
    pin_to_one_cpu(server.pid());
    nfs_cp_on_cpu_0(&source, &server.url_of("one.bin"));
    run_ok("nfs-ls", &[server.url_of("").as_ref()]);
    server.restart();
    pin_to_one_cpu(server.pid());
    nfs_cp_on_cpu_0(&source, &server.url_of("two.bin"));
    let pcap = capture.stop();
    assert_same_file(&source, &server.export.join("one.bin"));
    assert_same_file(&source, &server.export.join("two.bin"));

    // Kept when a check fails (the scratch directory goes away with the server).
    let kept = std::env::temp_dir().join(format!("nfsio-serve-wire-{}.pcapng", std::process::id()));
    let _ = std::fs::copy(&pcap, &kept);
    let report = wire_check(&pcap);
    assert!(report.nfs_frames > 40, "too few NFS frames: {report:?}");
    assert!(report.mount_frames >= 4, "MOUNT not decoded: {report:?}");
    assert!(
        report.is_clean(),
        "the dissectors found problems in {}:\n{report}",
        kept.display()
    );

    let calls = nfs_calls(&pcap);
    assert!(
        calls
            .iter()
            .all(|c| c.name() == "NULL" || c.status == Some(0)),
        "a call failed:\n{}",
        calls
            .iter()
            .filter(|c| c.name() != "NULL" && c.status != Some(0))
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let writes: Vec<_> = calls.iter().filter(|c| c.name() == "WRITE").collect();
    let written: u64 = writes.iter().map(|w| u64::from(w.count.unwrap_or(0))).sum();
    assert_eq!(written, 2 * (24 << 20), "every byte written once");
    let unstable = writes
        .iter()
        .filter(|w| w.stable == Some(StableHow::Unstable))
        .count();
    assert!(unstable >= 2, "nfs-cp sent no UNSTABLE WRITE: {writes:#?}");
    for w in &writes {
        if w.stable == Some(StableHow::Unstable) {
            assert_eq!(
                w.committed,
                Some(StableHow::Unstable),
                "an UNSTABLE WRITE answered otherwise: {w}"
            );
        } else {
            assert_eq!(w.committed, w.stable, "{w}");
        }
    }
    let commits = calls.iter().filter(|c| c.name() == "COMMIT").count();
    assert!(commits >= 2, "a COMMIT per nfs-cp: {calls:#?}");

    // One verifier per instance, on every WRITE and COMMIT reply; a new one after the restart.
    let verifiers = reply_verifiers(&pcap);
    assert_eq!(
        verifiers.len(),
        writes.len() + commits,
        "a verifier in every WRITE and COMMIT reply: {verifiers:?}"
    );
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for (_, verifier) in &verifiers {
        match runs.last_mut() {
            Some((v, n)) if *v == verifier.as_str() => *n += 1,
            _ => runs.push((verifier.as_str(), 1)),
        }
    }
    assert_eq!(
        runs.len(),
        2,
        "one verifier for each of the two instances, in order: {runs:?}"
    );
    assert_ne!(runs[0].0, runs[1].0);
    assert!(
        runs[0].0.len() == 16 || runs[0].0.len() == 23,
        "8 bytes: {runs:?}"
    );
    let _ = std::fs::remove_file(&kept);
}
