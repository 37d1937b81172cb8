//! The client against `nfsio serve` where only the binary can show it (the binary, as a child
//! process on a fresh directory):
//!
//! - `--squash none|root|all` with `--anonuid`/`--anongid` decide who owns created files.
//! - The CLI: `nfsio demo` verifies; `nfsio serve` exits 0 on SIGTERM and SIGINT (with a client
//!   connected) and fails with one line on stderr for a directory it cannot export.
//!
//! Every client operation against `nfsio serve` (errors, honest stability, `--read-only`, a
//! restart on the same directory) is the client contract (tests/client_contract.rs,
//! `serve::*`), run against ganesha and the memory store as well.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{NFSIO, Scratch, Serve};
use nfsio_client::Client;

/// Creates `name` through a client connected with `uid` and `gid` (AUTH_SYS), returns the
/// owner the server's disk shows and the one GETATTR shows.
async fn create_as(server: &Serve, uid: u32, gid: u32, name: &str) -> ((u32, u32), (u32, u32)) {
    use std::os::unix::fs::MetadataExt;
    let url = format!("{}&uid={uid}&gid={gid}", server.url_of(""));
    let client = Client::connect(&url).await.expect("connect");
    let file = client.create_file(name, 0o644).await.expect("create");
    let attributes = file.metadata().await.expect("getattr");
    file.close().await.expect("close");
    let meta = std::fs::metadata(server.export.join(name)).expect("on disk");
    ((meta.uid(), meta.gid()), (attributes.uid, attributes.gid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_squash_flags_map_owners() {
    use std::os::unix::fs::PermissionsExt;
    let open_up = |server: &Serve| {
        std::fs::set_permissions(&server.export, std::fs::Permissions::from_mode(0o777))
            .expect("chmod the export");
    };
    // --squash none (the fixture's default): root stays root.
    let none = Serve::start("squash-none");
    open_up(&none);
    assert_eq!(create_as(&none, 0, 0, "root").await, ((0, 0), (0, 0)));
    assert_eq!(
        create_as(&none, 1000, 100, "user").await,
        ((1000, 100), (1000, 100))
    );
    // --squash root: root becomes the anonymous user (65534 unless --anonuid/--anongid).
    let root = Serve::start_with("squash-root", &["--squash", "root"]);
    open_up(&root);
    assert_eq!(
        create_as(&root, 0, 0, "root").await,
        ((65534, 65534), (65534, 65534))
    );
    assert_eq!(
        create_as(&root, 1000, 100, "user").await,
        ((1000, 100), (1000, 100))
    );
    // --squash all with --anonuid and --anongid: everyone becomes 1234:5678.
    let all = Serve::start_with(
        "squash-all",
        &["--squash", "all", "--anonuid", "1234", "--anongid", "5678"],
    );
    open_up(&all);
    assert_eq!(
        create_as(&all, 0, 0, "root").await,
        ((1234, 5678), (1234, 5678))
    );
    assert_eq!(
        create_as(&all, 1000, 100, "user").await,
        ((1234, 5678), (1234, 5678))
    );
}

#[test]
fn serve_stops_with_status_0_on_sigterm_and_sigint() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    for signal in ["TERM", "INT"] {
        let mut server = Serve::start(&format!("stop-{signal}"));
        // With a mounted client and an open connection.
        let client = runtime
            .block_on(Client::connect(&server.url_of("")))
            .expect("connect");
        runtime.block_on(client.null()).expect("NULL");
        let started = Instant::now();
        let (exit, in_time) = server.stop_with(signal);
        assert!(
            in_time,
            "SIG{signal}: still running after {:?}; stderr:\n{}",
            common::STOP_TIMEOUT,
            server.log_text()
        );
        assert_eq!(
            exit.code(),
            Some(0),
            "SIG{signal}: {exit}; stderr:\n{}",
            server.log_text()
        );
        assert!(started.elapsed() < common::STOP_TIMEOUT);
        // Nothing listens any more.
        let Err(gone) = runtime.block_on(Client::connect(&server.url_of(""))) else {
            panic!("SIG{signal}: connect after the stop succeeded");
        };
        assert_eq!(gone.errno_name(), "ECONNREFUSED", "{gone}");
        drop(client);
    }
}

/// Runs `nfsio ARGS`, killing it after `limit`.
fn run_with_limit(args: &[&std::ffi::OsStr], limit: Duration) -> std::process::Output {
    let child = Command::new(NFSIO)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nfsio");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("wait for nfsio"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
            panic!("nfsio {args:?} still running after {limit:?}");
        }
    }
}

#[test]
fn serve_of_a_missing_directory_fails_with_one_line() {
    let scratch = Scratch::new("missing");
    let missing = scratch.join("does-not-exist");
    let a_file = scratch.join("a-file");
    std::fs::write(&a_file, b"not a directory").expect("file");
    let state = scratch.join("state");
    for dir in [&missing, &a_file] {
        let output = run_with_limit(
            &[
                "serve".as_ref(),
                dir.as_os_str(),
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--state-dir".as_ref(),
                state.as_os_str(),
            ],
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: {stderr}", dir.display());
        assert_eq!(
            stderr.lines().count(),
            1,
            "one line on stderr, got {stderr:?}"
        );
        assert!(
            stderr.contains(&*dir.to_string_lossy()),
            "the line names the directory: {stderr:?}"
        );
        assert!(
            output.stdout.is_empty(),
            "no URL printed: {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn serve_demo_64_mib_verifies() {
    let scratch = Scratch::new("demo");
    let output = run_with_limit(
        &[
            "demo".as_ref(),
            "--size".as_ref(),
            "64M".as_ref(),
            "--quiet".as_ref(),
            "--dir".as_ref(),
            scratch.path.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "nfsio demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stdout.contains("67108864 bytes"), "{stdout}");
    for procedure in ["WRITE", "COMMIT", "READ"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(procedure)),
            "no {procedure} row in:\n{stdout}"
        );
    }
    // Nothing left behind without --keep.
    let left: Vec<_> = std::fs::read_dir(&scratch.path).expect("scratch").collect();
    assert!(left.is_empty(), "demo left {left:?}");
}

/// Reads the export's `big` through `client` in 1 MiB pieces (advised `NoReuse`, as
/// `nfsio cp` reads), each checked against `expected`; returns every fifth piece, held.
async fn read_in_pieces(client: &Client, expected: &[u8]) -> Vec<(usize, bytes::Bytes)> {
    const CHUNK_BYTES: usize = 1 << 20;
    let file = client.open("big").await.expect("open");
    file.advise(nfsio_client::Advice::NoReuse).expect("advise");
    let mut held = Vec::new();
    for offset in (0..expected.len()).step_by(CHUNK_BYTES) {
        let data = file
            .read_bytes_at(offset as u64, CHUNK_BYTES)
            .await
            .expect("read");
        assert!(
            data[..] == expected[offset..offset + CHUNK_BYTES],
            "the MiB at {offset}"
        );
        if (offset / CHUNK_BYTES).is_multiple_of(5) {
            held.push((offset, data));
        }
    }
    file.close().await.expect("close");
    held
}

/// READ replies arrive into receive buffers kept from earlier replies once nothing holds
/// those (issue 15: no fresh megabyte per READ), and a buffer whose bytes a reader still
/// holds is never reused: chunks kept to the end still read as the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_reuse_receive_buffers_and_never_overwrite_held_bytes() {
    const CHUNK_BYTES: usize = 1 << 20;
    let server = Serve::start("receive-buffers");
    let local = server.export.join("big");
    let chunks = 48;
    common::make_file(&local, (chunks * CHUNK_BYTES) as u64, 15);
    let expected = std::fs::read(&local).expect("read the export's file");

    let client = Client::connect(&server.url_of("")).await.expect("connect");
    let held = read_in_pieces(&client, &expected).await;
    for (offset, data) in &held {
        assert!(
            data[..] == expected[*offset..*offset + CHUNK_BYTES],
            "the MiB at {offset}, held since it was read, was overwritten"
        );
    }
    let stats = client.stats();
    let reads = stats
        .proc_stats(
            nfsio_client::proto::nfs3::PROGRAM,
            nfsio_client::proto::nfs3::procs::READ,
        )
        .map_or(0, |p| p.calls);
    assert!(
        stats.receive_buffers_reused * 2 >= reads,
        "{} of {reads} READ replies arrived into a reused buffer",
        stats.receive_buffers_reused
    );

    // A client told to keep none reuses none (and reads the same bytes).
    let url = nfsio_client::NfsUrl::parse(&server.url_of("")).expect("URL");
    let mut options = nfsio_client::ClientOptions::default();
    options.rpc.spare_receive_buffers = Some(0);
    let client = Client::connect_with(&url, options).await.expect("connect");
    read_in_pieces(&client, &expected).await;
    assert_eq!(client.stats().receive_buffers_reused, 0);
}
