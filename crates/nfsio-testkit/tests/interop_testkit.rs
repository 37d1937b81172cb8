//! The testkit against the real programs it drives: nfs-ganesha, libnfs's nfs-* tools, tshark.
//!
//! Each test skips (one `skipped:` line on stderr) when a program is missing or we are not
//! root, and fails instead under `CI=true`.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nfsio_testkit::{
    Capture, Ganesha, GaneshaOptions, StableHow, free_port, nfs_calls, require_root, require_tool,
    wire_check,
};

fn run(prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
}

fn run_ok(prog: &str, args: &[&str]) -> Vec<u8> {
    let out = run(prog, args);
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A scratch directory of this test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("nfsio-testkit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes that are not all alike, so that misplaced data shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn have_nfs_tools() -> bool {
    require_tool("nfs-cat") && require_tool("nfs-cp") && require_tool("nfs-ls")
}

/// Writes a file into the export directory and reads it back through NFS.
fn check_serves_a_file(g: &Ganesha, name: &str, seed: u32) {
    let data = pattern(200_000, seed);
    std::fs::write(g.export_dir.join(name), &data).unwrap();
    let got = run_ok("nfs-cat", &[&g.url(name)]);
    assert!(
        got == data,
        "nfs-cat {} gave {} bytes, not the {} written",
        g.url(name),
        got.len(),
        data.len()
    );
    let listing = String::from_utf8(run_ok("nfs-ls", &[&g.url("")])).unwrap();
    assert!(listing.contains(name), "nfs-ls {}: {listing}", g.url(""));
}

#[test]
fn ganesha_serves_a_file() {
    if !have_nfs_tools() {
        return;
    }
    let Some(mut g) = Ganesha::start() else {
        return;
    };
    assert_ne!(g.nfs_port, g.mnt_port);
    assert!(g.export_dir.starts_with(&g.state_dir));
    assert_eq!(
        g.url("dir/a.txt"),
        format!(
            "nfs://127.0.0.1/export/dir/a.txt?version=3&nfsport={}&mountport={}",
            g.nfs_port, g.mnt_port
        )
    );
    check_serves_a_file(&g, "hello.bin", 1);

    // A restart keeps ports and export, and gives a new process.
    let (ports, old_pid) = ((g.nfs_port, g.mnt_port), g.pid());
    g.restart();
    assert_eq!((g.nfs_port, g.mnt_port), ports);
    assert_ne!(g.pid(), old_pid);
    assert!(!is_running(old_pid));
    check_serves_a_file(&g, "again.bin", 2);

    // Dropping stops ganesha and removes its state.
    let (state, pid) = (g.state_dir.clone(), g.pid());
    drop(g);
    assert!(!state.exists(), "{} still there", state.display());
    assert!(!is_running(pid), "ganesha {pid} still runs");
}

#[test]
fn ganesha_two_at_once() {
    if !have_nfs_tools() {
        return;
    }
    let servers: Vec<Option<Ganesha>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(Ganesha::start)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let Some(servers) = servers.into_iter().collect::<Option<Vec<Ganesha>>>() else {
        return;
    };
    assert_ne!(servers[0].nfs_port, servers[1].nfs_port);
    assert_ne!(servers[0].pid(), servers[1].pid());
    std::thread::scope(|s| {
        for (i, g) in servers.iter().enumerate() {
            s.spawn(move || check_serves_a_file(g, &format!("f{i}.bin"), 10 + i as u32));
        }
    });
    // Each serves its own directory.
    let listing = String::from_utf8(run_ok("nfs-ls", &[&servers[0].url("")])).unwrap();
    assert!(
        listing.contains("f0.bin") && !listing.contains("f1.bin"),
        "{listing}"
    );
}

#[test]
fn ganesha_capture_of_nfs_cp_is_clean() {
    if !have_nfs_tools() || !require_tool("tshark") || !require_root() {
        return;
    }
    let Some(g) = Ganesha::start() else { return };
    let scratch = Scratch::new("capture");
    let src = scratch.path("src.bin");
    let data = pattern(2 * 1024 * 1024 + 12345, 7);
    std::fs::write(&src, &data).unwrap();

    let Some(cap) = Capture::start(&[g.nfs_port, g.mnt_port], &scratch.path("cp.pcapng")) else {
        return;
    };
    run_ok("nfs-ls", &[&g.url("")]);
    run_ok("nfs-cp", &[src.to_str().unwrap(), &g.url("copy.bin")]);
    let pcap = cap.stop();

    assert!(
        std::fs::read(g.export_dir.join("copy.bin")).unwrap() == data,
        "copy differs"
    );

    let report = wire_check(&pcap);
    eprintln!("{report}");
    assert!(report.malformed.is_empty(), "malformed frames:\n{report}");
    assert!(report.errors.is_empty(), "expert errors:\n{report}");
    assert!(
        report.nfs_frames > 0 && report.mount_frames > 0,
        "no NFS or MOUNT decoded:\n{report}"
    );
    assert!(report.rpc_frames >= report.nfs_frames + report.mount_frames);

    let calls = nfs_calls(&pcap);
    for c in &calls {
        eprintln!("{c}");
    }
    let writes: Vec<_> = calls.iter().filter(|c| c.name() == "WRITE").collect();
    assert_eq!(writes.len(), 3, "nfs-cp writes 1 MiB at a time: {calls:#?}");
    assert!(
        writes
            .iter()
            .all(|w| w.stable == Some(StableHow::Unstable) && w.status == Some(0))
    );
    assert!(writes.iter().all(|w| w.committed.is_some()));
    let mut offsets: Vec<u64> = writes.iter().map(|w| w.offset.unwrap()).collect();
    offsets.sort();
    assert_eq!(offsets, [0, 1 << 20, 2 << 20]);
    let total: u64 = writes.iter().map(|w| u64::from(w.count.unwrap())).sum();
    assert_eq!(total, data.len() as u64);
    let commits: Vec<_> = calls.iter().filter(|c| c.name() == "COMMIT").collect();
    assert!(!commits.is_empty(), "no COMMIT: {calls:#?}");
    assert!(commits.iter().all(|c| c.status == Some(0)));
    assert!(calls.iter().all(|c| c.reply_frame > c.call_frame));
}

#[test]
fn ganesha_read_only_export_refuses_writes() {
    if !have_nfs_tools() {
        return;
    }
    let opts = GaneshaOptions {
        read_only: true,
        ..GaneshaOptions::default()
    };
    let Some(g) = Ganesha::start_with(opts) else {
        return;
    };
    check_serves_a_file(&g, "present.bin", 3);

    let scratch = Scratch::new("ro");
    let src = scratch.path("src.bin");
    std::fs::write(&src, b"must not arrive").unwrap();
    let out = run("nfs-cp", &[src.to_str().unwrap(), &g.url("new.bin")]);
    assert!(
        !out.status.success(),
        "nfs-cp to a read-only export succeeded"
    );
    assert!(!g.export_dir.join("new.bin").exists());
}

#[test]
fn ganesha_keep_rpcbind_answers_portmapper_lookups() {
    if !require_tool("rpcinfo") {
        return;
    }
    let opts = GaneshaOptions {
        keep_rpcbind: true,
        ..GaneshaOptions::default()
    };
    let Some(g) = Ganesha::start_with(opts) else {
        return;
    };
    let rpcinfo = if Path::new("/usr/sbin/rpcinfo").exists() {
        "/usr/sbin/rpcinfo"
    } else {
        "rpcinfo"
    };
    let table = String::from_utf8(run_ok(rpcinfo, &["-p", "127.0.0.1"])).unwrap();
    let has = |prog: &str, port: u16| {
        table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4 && f[0] == prog && f[1] == "3" && f[2] == "tcp" && f[3] == port.to_string()
        })
    };
    assert!(
        has("100003", g.nfs_port) && has("100005", g.mnt_port),
        "rpcinfo -p:\n{table}"
    );
    // rpcbind was started (and is then stopped) by us only if no portmapper answered before.
    let (ganesha_pid, rpcbind_pid) = (g.pid(), g.rpcbind_pid());
    drop(g);
    assert!(!is_running(ganesha_pid));
    if let Some(pid) = rpcbind_pid {
        assert!(!is_running(pid), "rpcbind {pid} still runs");
    }
}

/// Whether process `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    !stat.is_empty() && state != "Z" && state != "X"
}

/// Not an NFS server at all: a crafted, truncated NFSv3 WRITE call to a plain listener must
/// come out of wire_check as malformed, or wire_check would prove nothing.
#[test]
fn wire_check_reports_a_truncated_call_as_malformed() {
    if !require_tool("tshark") || !require_root() {
        return;
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_ne!(port, free_port());
    let scratch = Scratch::new("malformed");
    let Some(cap) = Capture::start(&[port], &scratch.path("bad.pcapng")) else {
        return;
    };

    let mut body = Vec::new();
    for word in [0x1234_5678u32, 0, 2, 100_003, 3, 7, 0, 0, 0, 0] {
        body.extend_from_slice(&word.to_be_bytes()); // xid, CALL, RPC v2, NFS v3 WRITE, null auth
    }
    body.extend_from_slice(&32u32.to_be_bytes()); // file handle of 32 bytes ...
    body.extend_from_slice(&[0xab; 8]); // ... of which 8 are there
    let mut record = (0x8000_0000u32 | body.len() as u32).to_be_bytes().to_vec();
    record.extend_from_slice(&body);

    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.write_all(&record).unwrap();
    client.flush().unwrap();
    drop(client);
    drop(server);
    let pcap = cap.stop();

    let report = wire_check(&pcap);
    eprintln!("{report}");
    assert!(
        report.rpc_frames >= 1 && report.nfs_frames >= 1,
        "RPC not found heuristically:\n{report}"
    );
    assert!(
        !report.malformed.is_empty(),
        "truncated call not reported malformed:\n{report}"
    );
    assert!(!report.errors.is_empty() && !report.is_clean());
    assert!(nfs_calls(&pcap).is_empty());
}

/// RPC to or from a port registered to another protocol (here the server's, as a libnfs client
/// on a reserved port like 639 would be) is still decoded as RPC, not taken for MSDP & co.
#[test]
fn wire_check_decodes_rpc_on_a_port_registered_to_another_protocol() {
    if !require_tool("tshark") || !require_root() {
        return;
    }
    // MSDP, RTSP, IPP, LDP: any one that is free.
    let Some(listener) = [639u16, 554, 631, 646]
        .iter()
        .find_map(|&p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).ok())
    else {
        panic!("ports 639, 554, 631 and 646 are all taken");
    };
    let port = listener.local_addr().unwrap().port();
    let scratch = Scratch::new("registered-port");
    let Some(cap) = Capture::start(&[port], &scratch.path("null.pcapng")) else {
        return;
    };

    let record = |words: &[u32]| {
        let mut r = (0x8000_0000u32 | (4 * words.len()) as u32)
            .to_be_bytes()
            .to_vec();
        words
            .iter()
            .for_each(|w| r.extend_from_slice(&w.to_be_bytes()));
        r
    };
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    // NFSv3 NULL call (AUTH_NONE) and an accepted, successful reply.
    client
        .write_all(&record(&[0x4242, 0, 2, 100_003, 3, 0, 0, 0, 0, 0]))
        .unwrap();
    let mut call = [0u8; 44];
    std::io::Read::read_exact(&mut server, &mut call).unwrap();
    server.write_all(&record(&[0x4242, 1, 0, 0, 0, 0])).unwrap();
    let mut reply = [0u8; 28];
    std::io::Read::read_exact(&mut client, &mut reply).unwrap();
    drop(client);
    drop(server);
    let pcap = cap.stop();

    let report = wire_check(&pcap);
    eprintln!("{report}");
    assert!(report.is_clean(), "port {port}:\n{report}");
    assert_eq!(
        (report.rpc_frames, report.nfs_frames),
        (2, 2),
        "port {port}:\n{report}"
    );
    let calls = nfs_calls(&pcap);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!((calls[0].name(), calls[0].xid), ("NULL", 0x4242));
}

/// A 4 MiB WRITE (a record just over tshark's default 4 MiB RPC reassembly limit) is decoded,
/// not left as undissected "Continuation" data that no check would look at.
#[test]
fn wire_check_reassembles_4_mib_writes() {
    if !require_tool("tshark") || !require_root() {
        return;
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let scratch = Scratch::new("big-write");
    let Some(cap) = Capture::start(&[port], &scratch.path("big.pcapng")) else {
        return;
    };

    let words = |ws: &[u32]| ws.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
    let record = |body: Vec<u8>| {
        let mut r = (0x8000_0000u32 | body.len() as u32).to_be_bytes().to_vec();
        r.extend_from_slice(&body);
        r
    };
    let len = 4u32 << 20;
    // WRITE call: xid, CALL, RPC v2, NFS v3 WRITE, AUTH_NONE x2; fh<8>, offset, count,
    // UNSTABLE, data<len>.
    let mut call = words(&[
        0x77, 0, 2, 100_003, 3, 7, 0, 0, 0, 0, 8, 1, 2, 0, 4096, len, 0, len,
    ]);
    call.extend(pattern(len as usize, 5));
    // Reply: xid, REPLY, accepted, AUTH_NONE, SUCCESS; NFS3_OK, no wcc attrs, count,
    // FILE_SYNC, verifier.
    let reply = words(&[0x77, 1, 0, 0, 0, 0, 0, 0, 0, len, 2, 9, 9]);

    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let sender = std::thread::spawn(move || {
        client.write_all(&record(call)).unwrap();
        client
    });
    let mut got = vec![0u8; 4 + 72 + len as usize];
    std::io::Read::read_exact(&mut server, &mut got).unwrap();
    let mut client = sender.join().unwrap();
    server.write_all(&record(reply)).unwrap();
    let mut back = [0u8; 4 + 52];
    std::io::Read::read_exact(&mut client, &mut back).unwrap();
    drop((client, server));
    let pcap = cap.stop();

    let report = wire_check(&pcap);
    eprintln!("{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.nfs_frames, 2, "{report}");
    let calls = nfs_calls(&pcap);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let w = &calls[0];
    assert_eq!(
        (w.name(), w.offset, w.count),
        ("WRITE", Some(4096), Some(len))
    );
    assert_eq!(
        (w.stable, w.committed, w.status),
        (
            Some(StableHow::Unstable),
            Some(StableHow::FileSync),
            Some(0)
        )
    );
}
