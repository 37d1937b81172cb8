//! Clients that try to make the server hold too much: idle connections at the cap, deep
//! trees, replies nobody reads, records stopped halfway, the descriptor limit, floods of
//! stale handles. Each test asserts a bound (the server's peak RSS, a neighbour's latency, a
//! call that must still succeed) and prints a `measure:` line.

use std::time::{Duration, Instant};

use nfsio_proto::XdrEncode;
use nfsio_proto::nfs3::*;
use nfsio_testkit::raw::TestClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::Serve;
use crate::harness::*;

/// How long a neighbour may wait for any answer during an attack.
const NEIGHBOUR_BOUND: Duration = Duration::from_secs(2);

fn assert_neighbour_served(seen: Seen) {
    assert!(seen.calls > 0, "the neighbour got no answer at all");
    assert!(
        seen.slowest_null < NEIGHBOUR_BOUND && seen.slowest_read < NEIGHBOUR_BOUND,
        "the neighbour waited: {seen:?}"
    );
}

/// A 4 KiB file for the neighbour to read, and its handle.
async fn neighbour_file(server: &Serve) -> FileHandle {
    std::fs::write(server.export.join("neighbour.bin"), vec![7u8; 4096]).unwrap();
    let mut c = client(server, cred(0, 0, &[])).await;
    let root = c.root().await;
    lookup(&mut c, &root, "neighbour.bin").await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_at_the_cap_lock_nobody_out() {
    let server = Serve::start_with("idle-cap", &["--idle-timeout", "3"]);
    let cap = 1024;
    let before = rss_bytes(server.pid()).0;
    // More idle connections than the cap allows, holding nothing.
    let mut idle = Vec::new();
    for _ in 0..cap + 76 {
        idle.push(
            tokio::net::TcpStream::connect(addr(&server))
                .await
                .expect("connect"),
        );
    }
    let file = neighbour_file(&server).await;
    let started = Instant::now();
    let neighbour = Neighbour::start(&server, file).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = neighbour.finish().await;
    report(
        "1100 idle connections at a cap of 1024",
        server.pid(),
        before,
        seen,
    );
    assert_neighbour_served(seen);
    assert!(started.elapsed() < Duration::from_secs(10));
    // And idle connections are closed after the idle timeout (3 s here): the server ends
    // them; a read sees the end.
    let mut last = idle.pop().expect("a connection");
    let mut byte = [0u8; 1];
    let ended = tokio::time::timeout(Duration::from_secs(15), last.read(&mut byte)).await;
    assert!(
        matches!(ended, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection was not closed: {ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_tree_costs_memory_in_proportion_and_resolves_fast_after_a_restart() {
    let depth = if long() { 4_000 } else { 1_500 };
    let mut server = Serve::start("deep");
    let before = rss_bytes(server.pid()).0;
    let mut c = client(&server, cred(0, 0, &[])).await;
    let mut dir = c.root().await;
    let name = "d".repeat(255);
    for _ in 0..depth {
        ok(mkdir(&mut c, &dir, &name, 0o755).await);
        dir = lookup(&mut c, &dir, &name).await.0;
    }
    let (now, peak) = rss_bytes(server.pid());
    eprintln!(
        "measure: {depth} nested directories of 255-byte names: server RSS before {:.1} MiB, \
         peak {:.1} MiB, now {:.1} MiB",
        mib(before),
        mib(peak),
        mib(now)
    );
    assert!(
        peak < before + (48 << 20),
        "{depth} levels took the server from {:.1} to {:.1} MiB",
        mib(before),
        mib(peak)
    );
    // After a restart the deepest handle resolves at once (no walk of the export).
    drop(c);
    server.restart();
    let mut c = client(&server, cred(0, 0, &[])).await;
    let started = Instant::now();
    ok(c.getattr(&dir).await);
    let took = started.elapsed();
    eprintln!("measure: GETATTR of a handle {depth} levels deep after a restart: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// A client with a tiny receive window that pipelines `count` 1 MiB READs of `file` and
/// never reads a reply.
async fn greedy_reader(server: &Serve, file: &FileHandle, count: u32) -> TestClient {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(addr(server)).await.expect("connect");
    let mut greedy = TestClient::from_stream(stream);
    for i in 0..count {
        let read = ReadArgs {
            file: file.clone(),
            offset: u64::from(i % 4) << 20,
            count: 1 << 20,
        };
        let record = greedy.build(1000 + i, PROGRAM, VERSION, procs::READ, &|enc| {
            read.encode(enc)
        });
        greedy.send_record(&record).await;
    }
    greedy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_their_replies_stay_within_the_memory_bound() {
    let clients = if long() { 400 } else { 60 };
    let server = Serve::start_with("no-readers", &["--memory-bound", "128M"]);
    std::fs::write(server.export.join("big.bin"), vec![1u8; 4 << 20]).unwrap();
    let mut c = client(&server, cred(0, 0, &[])).await;
    let root = c.root().await;
    let (big, _) = lookup(&mut c, &root, "big.bin").await;
    let file = neighbour_file(&server).await;
    let before = rss_bytes(server.pid()).0;
    let neighbour = Neighbour::start(&server, file).await;
    let mut greedy = Vec::new();
    for _ in 0..clients {
        greedy.push(greedy_reader(&server, &big, 24).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = neighbour.finish().await;
    let peak = rss_bytes(server.pid()).1;
    report(
        &format!("{clients} clients x 24 pipelined 1 MiB READs never read, bound 128 MiB"),
        server.pid(),
        before,
        seen,
    );
    assert_neighbour_served(seen);
    // The bound, and a little for the server's own pools.
    assert!(
        peak < before + (128 << 20) + (32 << 20),
        "peak RSS {:.1} MiB",
        mib(peak)
    );
    // The clients leave: the memory goes back.
    drop(greedy);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = rss_bytes(server.pid()).0;
        if now < before + (48 << 20) {
            eprintln!("measure: after the readers left: RSS {:.1} MiB", mib(now));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS stayed at {:.1} MiB after the clients left",
            mib(now)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_stopped_halfway_stay_within_the_memory_bound() {
    let clients = if long() { 1000 } else { 300 };
    let server = Serve::start_with("half-records", &["--memory-bound", "128M"]);
    let file = neighbour_file(&server).await;
    let before = rss_bytes(server.pid()).0;
    let neighbour = Neighbour::start(&server, file).await;
    let mut stalled = Vec::new();
    let almost = vec![0u8; 1000 << 10];
    for _ in 0..clients {
        let mut stream = tokio::net::TcpStream::connect(addr(&server))
            .await
            .expect("connect");
        // A 1 MiB record announced, 1000 KiB of it sent, then nothing.
        let mark = (0x8000_0000u32 | (1 << 20)).to_be_bytes();
        let _ = stream.write_all(&mark).await;
        let _ = tokio::time::timeout(Duration::from_millis(50), stream.write_all(&almost)).await;
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = neighbour.finish().await;
    let peak = rss_bytes(server.pid()).1;
    report(
        &format!("{clients} records of 1 MiB stopped after 1000 KiB, bound 128 MiB"),
        server.pid(),
        before,
        seen,
    );
    assert_neighbour_served(seen);
    // The bound, what each connection reads ahead before it is charged (64 KiB), and a
    // little for the server's own pools.
    let read_ahead = clients as u64 * (64 << 10);
    assert!(
        peak < before + (128 << 20) + read_ahead + (32 << 20),
        "peak RSS {:.1} MiB",
        mib(peak)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_descriptor_limit_existing_clients_still_read_and_create() {
    if !nfsio_testkit::require_tool("prlimit") {
        return;
    }
    // systemd's default soft limit, made hard too, so the server cannot raise it.
    let server = Serve::start_wrapped("fd-limit", &["prlimit", "--nofile=1024:1024", "--"], &[]);
    std::fs::write(server.export.join("f"), b"contents").unwrap();
    // An existing client: nfsio's own, which reconnects like any NFS client when the server
    // closes its connection (as it may, for an idle one, at the connection cap).
    let existing = nfsio_client::Client::connect(&server.short_url_of(""))
        .await
        .expect("connect");
    let file = existing.open("f").await.expect("open");
    let before = rss_bytes(server.pid()).0;
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match tokio::net::TcpStream::connect(addr(&server)).await {
            Ok(stream) => idle.push(stream),
            Err(err) => panic!("connect: {err}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for i in 0..20 {
        let data = existing
            .read(file.handle(), 0, 100)
            .await
            .unwrap_or_else(|e| panic!("READ {i}: {e}"));
        assert_eq!(&data.data[..], b"contents");
        let created = existing
            .create_file(&format!("new-{i}"), 0o644)
            .await
            .unwrap_or_else(|e| panic!("CREATE {i}: {e}"));
        created.close().await.expect("close");
    }
    let took = started.elapsed();
    eprintln!(
        "measure: 1100 idle connections at RLIMIT_NOFILE 1024: 20 READ + CREATE in {took:?}, \
         server RSS {:.1} MiB (before {:.1})",
        mib(rss_bytes(server.pid()).0),
        mib(before)
    );
    file.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_stale_handles_costs_little_each() {
    let entries = if long() { 100_000 } else { 20_000 };
    let stale = 5_000;
    let server = Serve::start("stale-flood");
    // A big export to walk, were the server to walk it.
    let many = server.export.join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..entries {
        std::fs::write(many.join(format!("{i}")), b"").unwrap();
    }
    let mut c = client(&server, cred(0, 0, &[])).await;
    let root = c.root().await;
    std::fs::create_dir(server.export.join("gone")).unwrap();
    let (gone, _) = lookup(&mut c, &root, "gone").await;
    let mut handles = Vec::with_capacity(stale);
    for i in 0..stale {
        handles.push(c.create_file(&gone, &format!("{i}")).await);
    }
    std::fs::remove_dir_all(server.export.join("gone")).unwrap();
    let file = neighbour_file(&server).await;
    let before = rss_bytes(server.pid()).0;
    let neighbour = Neighbour::start(&server, file).await;
    let started = Instant::now();
    for handle in &handles {
        assert_eq!(c.getattr(handle).await.status(), Nfs3Status::Stale);
    }
    let took = started.elapsed();
    let seen = neighbour.finish().await;
    report(
        &format!("{stale} stale handles on a {entries}-entry export"),
        server.pid(),
        before,
        seen,
    );
    eprintln!("measure: {stale} stale GETATTRs in {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "{stale} stale handles took {took:?}"
    );
    assert_neighbour_served(seen);
}
