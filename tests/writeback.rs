//! The write-back cache beneath `File`, end to end: the real client (engine, async shell,
//! transport) against the real server over its in-memory store, whose durable content and
//! crash model let a test check what a successful `sync_all` or `close` promised.
//!
//! The engine's own regression and property tests (crates/nfsio-cache) explore the
//! interleavings; these check that the shell drives it right: coalescing, read-your-writes,
//! backpressure at the memory bound, errors reported once, data resent after a server crash
//! changed the verifier, truncation, close-to-open consistency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nfsio_client::cache::EngineConfig;
use nfsio_client::{Client, ClientOptions, NfsError, NfsUrl};
use nfsio_proto::nfs3::{self, Nfs3Status};
use nfsio_server::{Fault, HandleSecret, MemOptions, MemStore};
use nfsio_testkit::TestServer;

/// How long any step may take before the test fails.
const STEP: Duration = Duration::from_secs(30);

/// The handle key of every test server: a restarted server must accept the old handles.
const SECRET_SEED: u64 = 7;

/// Serves `store` in-process on `addr` (port 0: any) with write verifiers from
/// `instance_seed`.
async fn serve(store: &Arc<MemStore>, addr: SocketAddr, instance_seed: u64) -> TestServer {
    let mut config = nfsio_testkit::server::config();
    config.listen = addr;
    config.service.instance_seed = Some(instance_seed);
    TestServer::start(store.clone(), &config, HandleSecret::from_seed(SECRET_SEED)).await
}

/// A new memory store served on any port.
async fn serve_new(instance_seed: u64) -> (Arc<MemStore>, TestServer) {
    let store = Arc::new(MemStore::new());
    let server = serve(&store, "127.0.0.1:0".parse().unwrap(), instance_seed).await;
    (store, server)
}

/// What would survive a crash of `store` now, of the file at `path`.
fn durable(store: &MemStore, path: &str) -> Vec<u8> {
    let id = store.lookup_path(path).expect("file exists");
    store.durable_content(id).expect("a file")
}

async fn client(url: &str, config: Option<EngineConfig>) -> Client {
    let options = ClientOptions {
        cache_config: config,
        ..ClientOptions::default()
    };
    Client::connect_with(&NfsUrl::parse(url).expect("url"), options)
        .await
        .expect("mount")
}

/// A small cache: 4 MiB bound with 1 MiB WRITEs, flushing from 1 MiB dirty.
fn small_cache() -> EngineConfig {
    EngineConfig {
        memory_bound_bytes: 4 << 20,
        background_flush_bytes: 1 << 20,
        commit_threshold_bytes: 2 << 20,
        ..EngineConfig::default()
    }
}

/// Deterministic bytes: `len` of them, different for each `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn count(client: &Client, proc_num: u32) -> u64 {
    client
        .stats()
        .proc_stats(nfs3::PROGRAM, proc_num)
        .map_or(0, |p| p.calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_sequential_writes_coalesce_and_read_back_before_sync() {
    let (store, server) = serve_new(1).await;
    let client = client(&server.url, None).await;
    let file = client.create_file("seq.bin", 0o644).await.expect("create");
    let data = pattern(1, 2 << 20);
    for (i, piece) in data.chunks(1000).enumerate() {
        file.write_at(piece, (i * 1000) as u64)
            .await
            .expect("write");
    }
    // Read-your-writes, whatever has or has not reached the server yet.
    let back = file.read_bytes_at(12_345, 100_000).await.expect("read");
    assert_eq!(&back[..], &data[12_345..112_345]);
    assert_eq!(file.size_bytes().expect("size"), data.len() as u64);
    file.sync_all().await.expect("sync");
    assert_eq!(durable(&store, "seq.bin"), data, "durable after sync_all");
    let writes = count(&client, nfs3::procs::WRITE);
    let app_writes = data.len().div_ceil(1000) as u64;
    assert!(
        writes <= 4,
        "{app_writes} application writes of 1000 bytes went out as {writes} WRITEs"
    );
    file.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_small_writes_are_byte_exact_with_far_fewer_writes() {
    let (store, server) = serve_new(2).await;
    let client = client(&server.url, None).await;
    let file = client
        .create_file("random.bin", 0o644)
        .await
        .expect("create");
    let size = 8usize << 20;
    file.set_len(size as u64).await.expect("set_len");
    let mut reference = vec![0u8; size];
    let offsets = pattern(3, 4000);
    let block = pattern(4, 4096 * 64);
    for i in 0..2000 {
        let page =
            u16::from_le_bytes([offsets[2 * i], offsets[2 * i + 1]]) as usize % (size / 4096);
        let data = &block[(i % 64) * 4096..(i % 64 + 1) * 4096];
        file.write_at(data, (page * 4096) as u64)
            .await
            .expect("write");
        reference[page * 4096..(page + 1) * 4096].copy_from_slice(data);
    }
    file.sync_all().await.expect("sync");
    assert!(
        durable(&store, "random.bin") == reference,
        "durable content differs"
    );
    let writes = count(&client, nfs3::procs::WRITE);
    assert!(
        writes < 100,
        "2000 random 4 KiB writes went out as {writes} WRITEs"
    );
    file.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_wait_at_the_memory_bound() {
    let (store, server) = serve_new(3).await;
    let config = small_cache();
    let bound = config.memory_bound_bytes;
    let client = client(&server.url, Some(config)).await;
    let file = client.create_file("big.bin", 0o644).await.expect("create");
    let data = pattern(5, 48 << 20);
    let mut peak = 0;
    for (i, piece) in data.chunks(256 << 10).enumerate() {
        file.write_at(piece, (i * (256 << 10)) as u64)
            .await
            .expect("write");
        peak = peak.max(client.cache_stats().total_bytes());
    }
    file.close().await.expect("close");
    assert!(
        peak <= bound,
        "the cache held {peak} bytes over its bound of {bound}"
    );
    let stats = client.cache_stats();
    assert!(
        stats.app_writes_blocked > 0,
        "no writer ever waited: {stats:?}"
    );
    assert!(
        stats.commits_sent >= 2,
        "COMMITs overlap the writing: {stats:?}"
    );
    assert!(
        durable(&store, "big.bin") == data,
        "durable content differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_space_is_reported_once_and_later_writes_fail_until_then() {
    let store = Arc::new(MemStore::with_options(MemOptions {
        capacity_bytes: 4 << 20,
        ..MemOptions::default()
    }));
    let server = serve(&store, "127.0.0.1:0".parse().unwrap(), 4).await;
    let client = client(&server.url, Some(small_cache())).await;
    let filler = client
        .create_file("filler.bin", 0o644)
        .await
        .expect("create");
    filler
        .write_at(&pattern(6, 3 << 20), 0)
        .await
        .expect("write");
    filler.close().await.expect("the first 3 MiB fit");
    let file = client.create_file("full.bin", 0o644).await.expect("create");
    // 2 MiB more than fits in the 1 MiB left: some WRITE fails with NOSPC, here or in the
    // background; once it has, writes are refused until the error has been reported.
    let data = pattern(7, 2 << 20);
    let mut refused = None;
    for (i, piece) in data.chunks(64 << 10).enumerate() {
        if let Err(error) = file.write_at(piece, (i * (64 << 10)) as u64).await {
            refused = Some(error);
            break;
        }
    }
    let error = file.sync_all().await.expect_err("sync_all reports NOSPC");
    assert!(
        matches!(
            error,
            NfsError::Status {
                status: Nfs3Status::NoSpc,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.errno_name(), "ENOSPC");
    if let Some(refused) = refused {
        assert_eq!(refused.errno_name(), "ENOSPC", "{refused}");
    }
    // Reported: not again, and writes are accepted again.
    file.write_at(b"x", 0)
        .await
        .expect("writes work after the report");
    file.close()
        .await
        .expect("the error was reported once, by sync_all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_crash_before_commit_makes_the_client_resend() {
    let store = Arc::new(MemStore::new());
    let server = serve(&store, "127.0.0.1:0".parse().unwrap(), 5).await;
    let config = EngineConfig {
        background_flush_bytes: 1 << 20,
        // No COMMIT before sync_all.
        commit_threshold_bytes: 1 << 40,
        streaming_window_bytes: 1 << 40,
        ..EngineConfig::default()
    };
    let client = client(&server.url, Some(config)).await;
    let file = client
        .create_file("crash.bin", 0o644)
        .await
        .expect("create");
    let data = pattern(7, 16 << 20);
    file.write_at(&data, 0).await.expect("write");
    // Wait until every byte was written UNSTABLE and none committed.
    tokio::time::timeout(STEP, async {
        loop {
            let stats = client.cache_stats();
            if stats.dirty_bytes == 0 && stats.inflight_bytes == 0 && stats.unstable_bytes > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the background flush sends everything");
    assert_eq!(
        store
            .content(store.lookup_path("crash.bin").unwrap())
            .unwrap(),
        data
    );
    let addr = server.addr;
    server.stop().await;
    store.crash();
    assert!(
        store
            .durable_content(store.lookup_path("crash.bin").unwrap())
            .unwrap()
            .len()
            < data.len(),
        "the crash lost the unstable bytes"
    );
    // The same port, a new instance: a new write verifier; the handles still work.
    let _server = serve(&store, addr, 6).await;
    file.sync_all().await.expect("sync after the restart");
    assert!(durable(&store, "crash.bin") == data, "resent and committed");
    let stats = client.cache_stats();
    assert!(stats.verifier_mismatches >= 1, "{stats:?}");
    file.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_reported_once() {
    let store = Arc::new(MemStore::new());
    let server = serve(&store, "127.0.0.1:0".parse().unwrap(), 8).await;
    let client = client(&server.url, None).await;
    let file = client
        .create_file("commit.bin", 0o644)
        .await
        .expect("create");
    let data = pattern(8, 4 << 20);
    file.write_at(&data, 0).await.expect("write");
    store.inject(Fault::SyncError(Nfs3Status::Io));
    let error = file.sync_all().await.expect_err("the COMMIT failed");
    assert_eq!(error.errno_name(), "EIO", "{error}");
    assert!(
        durable(&store, "commit.bin") != data,
        "the server lost the data, as the error said"
    );
    // Reported once (as Linux and the engine's documentation say: the failed bytes are
    // dropped, not retried forever); what is written afterwards is durable again.
    file.sync_all().await.expect("nothing new to report");
    file.write_at(&data, 0).await.expect("write again");
    file.close().await.expect("close");
    assert!(
        durable(&store, "commit.bin") == data,
        "rewritten and committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_drops_cached_bytes_past_the_new_end() {
    let (store, server) = serve_new(9).await;
    let client = client(&server.url, None).await;
    let file = client
        .create_file("trunc.bin", 0o644)
        .await
        .expect("create");
    let data = pattern(9, 3 << 20);
    file.write_at(&data, 0).await.expect("write");
    file.set_len(1000).await.expect("truncate");
    assert_eq!(file.size_bytes().expect("size"), 1000);
    let back = file.read_bytes_at(0, 1 << 20).await.expect("read");
    assert_eq!(&back[..], &data[..1000]);
    file.write_at(b"tail", 5000)
        .await
        .expect("write past the end");
    file.close().await.expect("close");
    let mut expected = data[..1000].to_vec();
    expected.resize(5000, 0);
    expected.extend_from_slice(b"tail");
    assert!(
        durable(&store, "trunc.bin") == expected,
        "no old bytes past the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_to_open_sees_another_clients_writes() {
    let (_store, server) = serve_new(10).await;
    let alice = client(&server.url, None).await;
    let bob = client(&server.url, None).await;
    let first = pattern(10, 300_000);
    let file = alice
        .create_file("shared.bin", 0o644)
        .await
        .expect("create");
    file.write_at(&first, 0).await.expect("write");
    // Alice's cache keeps the bytes (clean after close).
    file.close().await.expect("close");
    let file = bob.open("shared.bin").await.expect("open");
    assert_eq!(
        &file.read_bytes_at(0, first.len()).await.expect("read")[..],
        &first[..]
    );
    let second = pattern(11, 200_000);
    file.write_at(&second, 0).await.expect("write");
    file.close().await.expect("close");
    let file = alice.open("shared.bin").await.expect("reopen");
    let back = file.read_bytes_at(0, first.len()).await.expect("read");
    let mut expected = first.clone();
    expected[..second.len()].copy_from_slice(&second);
    assert!(back[..] == expected[..], "open revalidated the cache");
    file.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_adapters_go_through_the_cache() {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let (store, server) = serve_new(11).await;
    let client = client(&server.url, Some(small_cache())).await;
    let mut file = client
        .create_file("stream.bin", 0o644)
        .await
        .expect("create");
    let data = pattern(12, 9 << 20);
    let mut source = &data[..];
    let copied = tokio::io::copy(&mut source, &mut file).await.expect("copy");
    assert_eq!(copied, data.len() as u64);
    file.shutdown().await.expect("shutdown syncs");
    assert!(
        durable(&store, "stream.bin") == data,
        "durable after shutdown"
    );
    assert_eq!(
        file.seek(std::io::SeekFrom::End(-10)).await.expect("seek"),
        data.len() as u64 - 10
    );
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).await.expect("read");
    assert_eq!(&tail[..], &data[data.len() - 10..]);
    file.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_file_is_written_back_and_shutdown_waits_for_it() {
    let (store, server) = serve_new(31).await;
    let client = client(&server.url, None).await;
    let dropped = pattern(31, (24 << 20) + 4321);
    let file = client.create_file("dropped.bin", 0o644).await.unwrap();
    file.write_at(&dropped, 0).await.unwrap();
    // Dropped without close, as a tokio::fs::File may be: the client writes it back.
    drop(file);
    let kept = pattern(32, (3 << 20) + 5);
    let open = client.create_file("open.bin", 0o644).await.unwrap();
    open.write_at(&kept, 0).await.unwrap();
    tokio::time::timeout(STEP, client.shutdown())
        .await
        .expect("shutdown finishes")
        .expect("shutdown");
    assert!(
        durable(&store, "dropped.bin") == dropped,
        "the dropped file"
    );
    assert!(durable(&store, "open.bin") == kept, "the open file");
    open.close().await.expect("close after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_the_error_of_a_dropped_file_once() {
    let store = Arc::new(MemStore::new());
    let server = serve(&store, "127.0.0.1:0".parse().unwrap(), 33).await;
    let client = client(&server.url, None).await;
    let file = client.create_file("full.bin", 0o644).await.unwrap();
    store.inject(Fault::WriteError(Nfs3Status::NoSpc));
    file.write_at(&pattern(33, 100_000), 0).await.unwrap();
    drop(file);
    let error = tokio::time::timeout(STEP, client.shutdown())
        .await
        .expect("shutdown finishes")
        .expect_err("the WRITE failed");
    assert_eq!(error.status(), Some(Nfs3Status::NoSpc), "{error}");
    tokio::time::timeout(STEP, client.shutdown())
        .await
        .expect("shutdown finishes")
        .expect("reported once");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_client_handle_with_bytes_not_durable_logs_them() {
    let (_store, server) = serve_new(35).await;
    // Nothing is sent before the drop (no stream window, no background flush), so the line
    // comes from the drop itself, on this thread.
    let config = EngineConfig {
        streaming_window_bytes: 1 << 40,
        ..EngineConfig::default()
    };
    let client = client(&server.url, Some(config)).await;
    let file = client.create_file("lost.bin", 0o644).await.unwrap();
    file.write_at(&pattern(35, 8 << 20), 0).await.unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        // No close, no shutdown: the program "returns from main".
        drop(file);
        drop(client);
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("not yet durable"))
        .unwrap_or_else(|| panic!("no line about the loss in:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("lost.bin (8388608 bytes)"), "{line}");
    assert!(line.contains("Client::shutdown"), "{line}");
}

/// NFS3ERR_JUKEBOX on a write-back WRITE reaches the engine, whose back-off is the client's
/// one JUKEBOX policy: it sends the WRITE again itself (no retry hides beneath it, so every
/// WRITE on the wire is one the engine sent), the bytes end up durable and no error is
/// reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jukebox_on_a_write_back_write_is_retried_by_the_engine() {
    let (store, server) = serve_new(12).await;
    let config = EngineConfig {
        retry_initial_ms: 5,
        ..EngineConfig::default()
    };
    let client = client(&server.url, Some(config)).await;
    let file = client
        .create_file("jukebox.bin", 0o644)
        .await
        .expect("create");
    let data = pattern(12, 256 << 10);
    file.write_at(&data, 0).await.expect("write");
    store.inject(Fault::WriteError(Nfs3Status::Jukebox));
    tokio::time::timeout(STEP, file.close())
        .await
        .expect("close returns")
        .expect("JUKEBOX is not an error");
    assert!(
        durable(&store, "jukebox.bin") == data,
        "sent again and committed"
    );
    let on_the_wire = count(&client, nfs3::procs::WRITE);
    assert!(
        on_the_wire >= 2,
        "the JUKEBOX WRITE was sent again: {on_the_wire}"
    );
    assert_eq!(
        client.cache_stats().writes_sent,
        on_the_wire,
        "every WRITE on the wire was one the engine sent"
    );
}

/// The WRITEs of a streaming writer leave in ascending offset order, the file's short tail
/// last, as Linux sends a flush's WRITEs (servers' sequential detection, allocation and
/// readahead expect it, and some refuse a WRITE that starts past their end of file). Checked
/// on the wire: a tshark capture of the connection, WRITE offsets in call order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_writers_writes_leave_in_offset_order() {
    let (store, server) = serve_new(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("order.pcapng");
    let Some(capture) = nfsio_testkit::Capture::start(&[server.addr.port()], &pcap) else {
        return;
    };
    let client = client(&server.url, None).await;
    let file = client
        .create_file("order.bin", 0o644)
        .await
        .expect("create");
    let data = pattern(5, (16 << 20) + 1);
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        file.write_at(piece, (i << 20) as u64).await.expect("write");
    }
    file.close().await.expect("close");
    assert_eq!(durable(&store, "order.bin"), data);
    let pcap = capture.stop();
    let offsets: Vec<u64> = nfsio_testkit::nfs_calls(&pcap)
        .iter()
        .filter(|call| call.proc == nfs3::procs::WRITE)
        .filter_map(|call| call.offset)
        .collect();
    assert!(offsets.len() >= 17, "WRITEs seen: {offsets:?}");
    assert!(
        offsets.windows(2).all(|pair| pair[0] < pair[1]),
        "WRITE offsets in call order: {offsets:?}"
    );
    assert_eq!(offsets.last(), Some(&(16 << 20)), "the tail goes last");
}
