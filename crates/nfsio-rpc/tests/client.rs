//! The client transport against a fake server: XID matching, slots, retransmission,
//! reconnection, cancellation, reply errors, statistics. Everything runs on tokio's paused
//! clock over in-memory pipes (except the real-TCP tests at the end), so time-outs are exact
//! and nothing depends on the machine's speed.

mod common;

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{PROG, VERS, client_and_server, network, test_config};
use nfsio_proto::rpc::{AcceptError, AuthStat, OpaqueAuth, ReplyStatus};
use nfsio_proto::xdr::to_bytes;
use nfsio_rpc::record::{read_record, record_mark, write_record};
use nfsio_rpc::{Connector, RetryPolicy, RpcClient, RpcConfig, RpcError, TcpConnector};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::time::{Instant, timeout};

/// Calls procedure `proc_num` with a `u32` argument and decodes a `u32` result.
async fn call_u32(client: &RpcClient, proc_num: u32, arg: u32) -> Result<u32, RpcError> {
    let mut dec = client
        .call(PROG, VERS, proc_num, &OpaqueAuth::none(), &arg)
        .await?;
    let value = dec.get_u32()?;
    dec.finish()?;
    Ok(value)
}

fn spawn_call(
    client: &RpcClient,
    proc_num: u32,
    arg: u32,
) -> tokio::task::JoinHandle<Result<u32, RpcError>> {
    let client = client.clone();
    tokio::spawn(async move { call_u32(&client, proc_num, arg).await })
}

#[tokio::test(start_paused = true)]
async fn replies_in_reverse_order_are_matched_by_xid() {
    const CALLS: u32 = 100;
    let config = RpcConfig {
        slots: CALLS as usize,
        ..test_config()
    };
    let (client, _listener, mut conn) = client_and_server(config).await;
    let tasks: Vec<_> = (0..CALLS).map(|i| spawn_call(&client, 1, i)).collect();

    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let mut call = conn.expect_call().await;
        let arg = call.arg_u32();
        calls.push((call.header.xid, arg));
    }
    let xids: HashSet<u32> = calls.iter().map(|c| c.0).collect();
    assert_eq!(xids.len(), CALLS as usize, "XIDs are unique");
    assert!(
        xids.iter().all(|x| (1000..1000 + CALLS).contains(x)),
        "XIDs count up from the seed"
    );
    for &(xid, arg) in calls.iter().rev() {
        conn.reply_ok(xid, &(arg * 3 + 1)).await;
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), i as u32 * 3 + 1);
    }
    let stats = client.stats();
    assert_eq!(stats.proc_stats(PROG, 1).unwrap().calls, u64::from(CALLS));
    assert_eq!(stats.pending_calls, 0);
    assert_eq!(stats.total_retransmissions(), 0);
}

#[tokio::test(start_paused = true)]
async fn never_more_calls_outstanding_than_slots() {
    let config = RpcConfig {
        slots: 4,
        ..test_config()
    };
    let (client, _listener, mut conn) = client_and_server(config).await;
    let tasks: Vec<_> = (0..22).map(|i| spawn_call(&client, 1, i)).collect();

    let mut answered = 0;
    let mut max_outstanding = 0;
    while answered < 22 {
        // Take everything the client sends until it has nothing more to send (the paused
        // clock only advances once every task is idle).
        let mut outstanding = vec![conn.expect_call().await];
        while let Ok(call) = timeout(Duration::from_millis(100), conn.recv()).await {
            outstanding.push(call.expect("connection open"));
        }
        max_outstanding = max_outstanding.max(outstanding.len());
        assert!(
            outstanding.len() <= 4,
            "{} calls outstanding",
            outstanding.len()
        );
        for mut call in outstanding {
            let arg = call.arg_u32();
            conn.reply_ok(call.header.xid, &arg).await;
            answered += 1;
        }
    }
    assert_eq!(max_outstanding, 4, "the slots were used");
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), i as u32);
    }
}

#[tokio::test(start_paused = true)]
async fn lost_connection_retransmits_the_same_xids() {
    let (client, mut listener, mut conn) = client_and_server(test_config()).await;
    let tasks: Vec<_> = (0..3).map(|i| spawn_call(&client, 1, i)).collect();
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(conn.expect_call().await.header.xid);
    }
    drop(conn);

    let mut conn = listener.accept().await;
    let mut second = Vec::new();
    for _ in 0..3 {
        let mut call = conn.expect_call().await;
        second.push(call.header.xid);
        let arg = call.arg_u32();
        conn.reply_ok(call.header.xid, &(arg + 100)).await;
    }
    assert_eq!(first, second, "same XIDs, in call order");
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), i as u32 + 100);
    }
    let stats = client.stats();
    assert_eq!((stats.connects, stats.reconnects), (2, 1));
    assert_eq!(stats.total_retransmissions(), 3);
    assert_eq!(stats.total_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn timeout_replaces_the_connection_and_retransmits_the_same_xid() {
    let (client, mut listener, mut conn1) = client_and_server(test_config()).await;
    let start = Instant::now();
    let task = spawn_call(&client, 7, 42);
    let xid = conn1.expect_call().await.header.xid;

    // No reply: after timeout_ms the client gives up on this connection...
    assert!(
        conn1.recv().await.is_none(),
        "the suspect connection is closed"
    );
    assert!(start.elapsed() >= Duration::from_millis(1000));
    // ... and sends the call again, under the same XID, on a new one.
    let mut conn2 = listener.accept().await;
    let mut call = conn2.expect_call().await;
    assert_eq!(call.header.xid, xid);
    assert_eq!(call.arg_u32(), 42);
    conn2.reply_ok(xid, &43u32).await;
    assert_eq!(task.await.unwrap().unwrap(), 43);

    let stats = client.stats();
    let proc_stats = stats.proc_stats(PROG, 7).unwrap();
    assert_eq!(proc_stats.retransmissions, 1);
    assert_eq!(proc_stats.timeouts, 1);
    assert_eq!(proc_stats.calls, 1);
    assert_eq!(stats.reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn soft_policy_counts_lost_connections_as_tries() {
    let config = RpcConfig {
        retry: RetryPolicy::Soft { max_tries: 3 },
        ..test_config()
    };
    let (client, mut listener, conn) = client_and_server(config).await;
    // A server that reads each call and hangs up without answering (as one does for a
    // client it refuses): the soft call must fail, not reconnect forever.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_server = seen.clone();
    tokio::spawn(async move {
        let mut conn = conn;
        loop {
            if let Some(call) = conn.recv().await {
                seen_by_server.lock().unwrap().push(call.header.xid);
            }
            drop(conn);
            conn = listener.accept().await;
        }
    });
    let result = call_u32(&client, 1, 5).await;
    assert!(
        matches!(result, Err(RpcError::ConnectionLost { tries: 3 })),
        "{result:?}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "sent once per connection, three times"
    );
    assert_eq!(client.stats().pending_calls, 0);
}

#[tokio::test(start_paused = true)]
async fn soft_policy_gives_up_after_max_tries() {
    let config = RpcConfig {
        retry: RetryPolicy::Soft { max_tries: 3 },
        ..test_config()
    };
    let (client, mut listener, conn) = client_and_server(config).await;
    // A server that reads everything and answers nothing.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_server = seen.clone();
    tokio::spawn(async move {
        let mut conns = vec![conn];
        loop {
            let mut conn = conns.pop().expect("a connection");
            while let Some(call) = conn.recv().await {
                seen_by_server.lock().unwrap().push(call.header.xid);
            }
            conns.push(listener.accept().await);
        }
    });

    let start = Instant::now();
    let result = call_u32(&client, 1, 5).await;
    assert!(
        matches!(result, Err(RpcError::TimedOut { tries: 3 })),
        "{result:?}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(3000),
        "three tries of 1000 ms"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![1000, 1000, 1000], "three transmissions, one XID");
    let stats = client.stats();
    assert_eq!(stats.pending_calls, 0);
    let proc_stats = stats.proc_stats(PROG, 1).unwrap();
    assert_eq!(
        (
            proc_stats.calls,
            proc_stats.timeouts,
            proc_stats.retransmissions
        ),
        (0, 3, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn cancelled_call_is_removed_and_its_late_reply_dropped() {
    let config = RpcConfig {
        slots: 1,
        ..test_config()
    };
    let (client, _listener, mut conn) = client_and_server(config).await;
    let task = spawn_call(&client, 1, 1);
    let cancelled_xid = conn.expect_call().await.header.xid;
    assert_eq!(client.stats().pending_calls, 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        client.stats().pending_calls,
        0,
        "the dropped call left the pending map"
    );

    // The late reply matches nothing; the next call gets the only slot and its own reply.
    conn.reply_ok(cancelled_xid, &99u32).await;
    let task = spawn_call(&client, 1, 2);
    let mut call = conn.expect_call().await;
    assert_ne!(call.header.xid, cancelled_xid);
    let arg = call.arg_u32();
    conn.reply_ok(call.header.xid, &arg).await;
    assert_eq!(task.await.unwrap().unwrap(), 2);
    let stats = client.stats();
    assert_eq!(stats.unknown_xid_replies, 1);
    assert_eq!(stats.total_calls(), 1);
    assert_eq!(
        stats.reconnects, 0,
        "an unknown XID is not a protocol error"
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_replies_drop_the_connection() {
    enum Garbage {
        BadReplyStat,
        TooLarge,
        NotAReply,
        Truncated,
    }
    for garbage in [
        Garbage::BadReplyStat,
        Garbage::TooLarge,
        Garbage::NotAReply,
        Garbage::Truncated,
    ] {
        let config = RpcConfig {
            max_record_bytes: 1024,
            ..test_config()
        };
        let (client, mut listener, mut conn) = client_and_server(config).await;
        let task = spawn_call(&client, 1, 8);
        let xid = conn.expect_call().await.header.xid;
        match garbage {
            Garbage::BadReplyStat => {
                let words = [xid, 1, 7].map(u32::to_be_bytes).concat();
                conn.send_record(&[Bytes::from(words)]).await;
            }
            Garbage::TooLarge => conn.send_raw(&record_mark(1025, true)).await,
            Garbage::NotAReply => {
                let words = [xid, 0, 2, PROG, VERS, 1, 0, 0, 0, 0]
                    .map(u32::to_be_bytes)
                    .concat();
                conn.send_record(&[Bytes::from(words)]).await;
            }
            Garbage::Truncated => conn.send_record(&[Bytes::from_static(&[0, 0, 3])]).await,
        }
        assert!(conn.recv().await.is_none(), "the client hangs up");
        let mut conn = listener.accept().await;
        let mut call = conn.expect_call().await;
        assert_eq!(call.header.xid, xid, "retransmitted under the same XID");
        let arg = call.arg_u32();
        conn.reply_ok(xid, &arg).await;
        assert_eq!(task.await.unwrap().unwrap(), 8);
        let stats = client.stats();
        assert_eq!((stats.protocol_errors, stats.reconnects), (1, 1));
    }
}

#[tokio::test(start_paused = true)]
async fn reply_errors_map_to_typed_errors() {
    let (client, _listener, mut conn) = client_and_server(test_config()).await;
    let accept = |error| ReplyStatus::AcceptError {
        verf: OpaqueAuth::none(),
        error,
    };
    type IsExpected = fn(&RpcError) -> bool;
    let cases: Vec<(ReplyStatus, IsExpected)> = vec![
        (accept(AcceptError::ProgUnavail), |e| {
            matches!(e, RpcError::ProgUnavail)
        }),
        (accept(AcceptError::ProgMismatch { low: 2, high: 3 }), |e| {
            matches!(e, RpcError::ProgMismatch { low: 2, high: 3 })
        }),
        (accept(AcceptError::ProcUnavail), |e| {
            matches!(e, RpcError::ProcUnavail)
        }),
        (accept(AcceptError::GarbageArgs), |e| {
            matches!(e, RpcError::GarbageArgs)
        }),
        (accept(AcceptError::SystemErr), |e| {
            matches!(e, RpcError::SystemErr)
        }),
        (ReplyStatus::RpcMismatch { low: 2, high: 2 }, |e| {
            matches!(e, RpcError::RpcMismatch { low: 2, high: 2 })
        }),
        (ReplyStatus::AuthError(AuthStat::TooWeak), |e| {
            matches!(e, RpcError::AuthError(AuthStat::TooWeak))
        }),
        (ReplyStatus::AuthError(AuthStat::Other(13)), |e| {
            matches!(e, RpcError::AuthError(AuthStat::Other(13)))
        }),
    ];
    for (status, is_expected) in cases {
        let task = spawn_call(&client, 2, 0);
        let xid = conn.expect_call().await.header.xid;
        conn.reply(xid, status.clone(), &()).await;
        let err = task.await.unwrap().unwrap_err();
        assert!(is_expected(&err), "{status:?} gave {err:?}");
        assert!(!err.is_transient());
    }
    let stats = client.stats();
    assert_eq!(stats.protocol_errors, 0);
    assert_eq!(stats.reconnects, 0);
}

#[tokio::test(start_paused = true)]
async fn stats_count_calls_bytes_and_round_trips() {
    let (client, _listener, mut conn) = client_and_server(test_config()).await;
    for (proc_num, count) in [(1u32, 5u32), (2, 2)] {
        for i in 0..count {
            let task = spawn_call(&client, proc_num, i);
            let xid = conn.expect_call().await.header.xid;
            tokio::time::sleep(Duration::from_millis(10)).await;
            conn.reply_ok(xid, &i).await;
            assert_eq!(task.await.unwrap().unwrap(), i);
        }
    }
    let stats = client.stats();
    // A call: 6 header words, two empty AUTH_NONE fields (2 words each), one argument word.
    let call_bytes = (6 + 4 + 1) * 4;
    // A reply: xid, REPLY, MSG_ACCEPTED, empty verifier (2 words), SUCCESS, one result word.
    let reply_bytes = 7 * 4;
    let p1 = stats.proc_stats(PROG, 1).unwrap();
    assert_eq!(p1.calls, 5);
    assert_eq!(p1.bytes_sent, 5 * call_bytes);
    assert_eq!(p1.bytes_received, 5 * reply_bytes);
    assert_eq!(p1.mean_rtt_us(), Some(10_000));
    assert_eq!(
        p1.rtt_histogram[13], 5,
        "10 ms is in the 8.2..16.4 ms bucket"
    );
    assert_eq!(p1.rtt_percentile_us(0.99), Some(16_383));
    let p2 = stats.proc_stats(PROG, 2).unwrap();
    assert_eq!(
        (p2.calls, p2.bytes_sent, p2.retransmissions),
        (2, 2 * call_bytes, 0)
    );
    assert_eq!(stats.total_calls(), 7);
    assert_eq!(
        (stats.connects, stats.reconnects, stats.connect_failures),
        (1, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn calls_wait_while_disconnected_and_reconnection_backs_off() {
    let config = RpcConfig {
        timeout_ms: 60_000,
        ..test_config()
    };
    let (connector, mut listener) = network();
    let refuse = connector.refuse.clone();
    let client = nfsio_rpc::connect(connector, config).await.unwrap();
    let start = Instant::now();
    refuse.store(3, Ordering::SeqCst);
    drop(listener.accept().await);

    let task = spawn_call(&client, 1, 11);
    let mut conn = listener.accept().await;
    // Lost without a reply: waits 100 ms, then 3 refusals at 100, 300 and 700 ms, then 1500.
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    let mut call = conn.expect_call().await;
    assert_eq!(call.arg_u32(), 11);
    conn.reply_ok(call.header.xid, &12u32).await;
    assert_eq!(task.await.unwrap().unwrap(), 12);
    let stats = client.stats();
    assert_eq!(
        (stats.connects, stats.reconnects, stats.connect_failures),
        (2, 1, 3)
    );

    // A connection that delivered replies is re-established at once.
    let reconnected_at = Instant::now();
    drop(conn);
    let task = spawn_call(&client, 1, 13);
    let mut conn = listener.accept().await;
    assert_eq!(reconnected_at.elapsed(), Duration::ZERO);
    let mut call = conn.expect_call().await;
    let arg = call.arg_u32();
    conn.reply_ok(call.header.xid, &arg).await;
    assert_eq!(task.await.unwrap().unwrap(), 13);
}

#[tokio::test(start_paused = true)]
async fn shutdown_fails_outstanding_and_later_calls() {
    let (client, _listener, mut conn) = client_and_server(test_config()).await;
    let task = spawn_call(&client, 1, 1);
    conn.expect_call().await;
    client.shutdown().await;
    assert!(matches!(task.await.unwrap(), Err(RpcError::Shutdown)));
    assert!(matches!(
        call_u32(&client, 1, 2).await,
        Err(RpcError::Shutdown)
    ));
    assert!(conn.recv().await.is_none(), "connection closed");
    client.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_the_connection() {
    let (client, _listener, mut conn) = client_and_server(test_config()).await;
    let clone = client.clone();
    drop(client);
    call_u32_answered(&clone, &mut conn).await;
    drop(clone);
    let closed = timeout(Duration::from_secs(10), conn.recv()).await;
    assert!(matches!(closed, Ok(None)), "the background task ended");
}

async fn call_u32_answered(client: &RpcClient, conn: &mut common::ServerConn) {
    let task = spawn_call(client, 1, 5);
    let mut call = conn.expect_call().await;
    let arg = call.arg_u32();
    conn.reply_ok(call.header.xid, &arg).await;
    assert_eq!(task.await.unwrap().unwrap(), 5);
}

#[tokio::test(start_paused = true)]
async fn large_requests_in_small_fragments_arrive_whole() {
    let config = RpcConfig {
        max_fragment_bytes: 1000,
        ..test_config()
    };
    let (client, _listener, mut conn) = client_and_server(config).await;
    let payload = Bytes::from(vec![0xab; 10_000]);
    struct Write(Bytes);
    impl nfsio_proto::XdrEncode for Write {
        fn encode(&self, enc: &mut nfsio_proto::XdrEncoder) {
            enc.put_opaque_shared(&self.0);
        }
    }
    let call_client = client.clone();
    let call_payload = payload.clone();
    let task = tokio::spawn(async move {
        let mut dec = call_client
            .call(PROG, VERS, 3, &OpaqueAuth::none(), &Write(call_payload))
            .await?;
        Ok::<_, RpcError>(dec.get_u32()?)
    });
    let mut call = conn.expect_call().await;
    let got = call.args.get_opaque("data", 1 << 20).unwrap();
    assert_eq!(got, payload);
    conn.reply_ok(call.header.xid, &(got.len() as u32)).await;
    assert_eq!(task.await.unwrap().unwrap(), 10_000);
}

/// Wraps a stream and counts its write calls.
struct CountingStream {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct CountingConnector {
    inner: common::DuplexConnector,
    writes: Arc<AtomicUsize>,
}

impl Connector for CountingConnector {
    type Stream = CountingStream;

    fn connect(&self) -> impl Future<Output = std::io::Result<CountingStream>> + Send {
        let connect = self.inner.connect();
        let writes = self.writes.clone();
        async move {
            Ok(CountingStream {
                inner: connect.await?,
                writes,
            })
        }
    }
}

#[tokio::test(start_paused = true)]
async fn queued_requests_are_written_together() {
    let (inner, mut listener) = network();
    let writes = Arc::new(AtomicUsize::new(0));
    let connector = CountingConnector {
        inner,
        writes: writes.clone(),
    };
    let client = nfsio_rpc::connect(connector, test_config()).await.unwrap();
    let mut conn = listener.accept().await;
    // All 32 calls are queued before the connection task next runs.
    let tasks: Vec<_> = (0..32).map(|i| spawn_call(&client, 1, i)).collect();
    for _ in 0..32 {
        let mut call = conn.expect_call().await;
        let arg = call.arg_u32();
        conn.reply_ok(call.header.xid, &arg).await;
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), i as u32);
    }
    let writes = writes.load(Ordering::SeqCst);
    assert!(writes <= 2, "32 requests took {writes} writes");
}

#[tokio::test(start_paused = true)]
async fn call_with_max_data_bounds_the_decoder() {
    let config = RpcConfig {
        max_data_bytes: 777,
        ..test_config()
    };
    let (client, _listener, mut conn) = client_and_server(config).await;
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let call = conn.expect_call().await;
            conn.reply_ok(call.header.xid, &()).await;
        }
    });
    let cred = OpaqueAuth::none();
    let dec = client.call(PROG, VERS, 0, &cred, &()).await.unwrap();
    assert_eq!(dec.max_data_bytes(), 777);
    let dec = client
        .call_with_max_data(PROG, VERS, 0, &cred, &(), 4096)
        .await
        .unwrap();
    assert_eq!(dec.max_data_bytes(), 4096);
    assert_eq!(dec.remaining(), 0);
    server.await.unwrap();
}

/// A server that never answers the connection attempt.
struct BlackHole;

impl Connector for BlackHole {
    type Stream = DuplexStream;

    fn connect(&self) -> impl Future<Output = std::io::Result<DuplexStream>> + Send {
        std::future::pending()
    }
}

#[tokio::test(start_paused = true)]
async fn initial_connect_times_out() {
    let config = RpcConfig {
        connect_timeout_ms: 2_500,
        ..RpcConfig::default()
    };
    let start = Instant::now();
    let result = nfsio_rpc::connect(BlackHole, config).await;
    assert!(matches!(
        result,
        Err(RpcError::ConnectTimedOut { timeout_ms: 2_500 })
    ));
    assert_eq!(start.elapsed(), Duration::from_millis(2_500));
}

#[tokio::test]
async fn refused_initial_connection_is_reported_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let result = nfsio_rpc::connect(TcpConnector::new(addr), RpcConfig::default()).await;
    match result {
        Err(RpcError::Connect(err)) => {
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }

    let (connector, _listener) = network();
    connector.refuse.store(1, Ordering::SeqCst);
    let result = nfsio_rpc::connect(connector, RpcConfig::default()).await;
    assert!(matches!(result, Err(RpcError::Connect(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = stream.into_split();
        let mut served = 0u32;
        while let Some(record) = read_record(&mut r, 1 << 20).await.unwrap() {
            let mut dec = nfsio_proto::XdrDecoder::new(record);
            let header: nfsio_proto::rpc::MessageHeader =
                nfsio_proto::XdrDecode::decode(&mut dec).unwrap();
            let arg = dec.get_u32().unwrap();
            let reply = nfsio_proto::rpc::ReplyHeader {
                xid: header.xid(),
                status: ReplyStatus::Success {
                    verf: OpaqueAuth::none(),
                },
            };
            let segments = [to_bytes(&reply), to_bytes(&(arg * 2))];
            write_record(&mut w, &segments, u32::MAX).await.unwrap();
            served += 1;
        }
        served
    });
    let client = nfsio_rpc::connect(TcpConnector::new(addr), RpcConfig::default())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..500).map(|i| spawn_call(&client, 1, i)).collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), i as u32 * 2);
    }
    let stats = client.stats();
    assert_eq!((stats.total_calls(), stats.pending_calls), (500, 0));
    client.shutdown().await;
    assert_eq!(server.await.unwrap(), 500);
}
