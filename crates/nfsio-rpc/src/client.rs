//! The RPC client transport: many calls in flight on one TCP connection, matched by XID,
//! retransmitted on timeout and carried over reconnections.
//!
//! An NFS mount is one long-lived connection carrying dozens of concurrent calls. This module
//! owns that connection so the layers above only ever say "call procedure P with these
//! arguments and give me the results". It knows nothing of NFS.
//!
//! # How it works
//!
//! - A call takes one of `slots` permits (a semaphore: at most `slots` calls outstanding, a
//!   caller waits for a free slot), picks the next XID, encodes the request once, and
//!   registers it in the *pending map* (XID → reply channel + encoded request).
//! - One background task per client owns the connection. Within it a writer drains the
//!   queue of requests to send — all of them at once — and writes them with one vectored
//!   write; a reader reads records, decodes the reply header, and hands the reply to the
//!   caller whose XID it carries, in whatever order replies come.
//! - The queue to the writer holds XIDs of pending calls, each at most once, so it is
//!   bounded by `slots` like everything else: there is no unbounded queue anywhere.
//! - When the connection is lost (end of stream, reset, write error, a record that is not a
//!   valid RPC reply), the task reconnects with exponential backoff and retransmits every
//!   outstanding call under its original XID, in the order the calls were made, so the
//!   server's duplicate request cache can recognise them.
//!
//! # Timeouts
//!
//! Each try of a call waits `timeout_ms`. When it expires, the call is retransmitted with the
//! same XID — forever under [`RetryPolicy::Hard`], up to `max_tries` tries under
//! [`RetryPolicy::Soft`] (then [`RpcError::TimedOut`]).
//!
//! Over TCP a request cannot be lost in transit, so a timeout means the server or the
//! connection is stuck. Like the Linux client, this transport then treats the connection as
//! suspect: if the call was sent on the *current* connection, that connection is closed and a
//! new one made, and all outstanding calls are retransmitted on it. If the connection has
//! already been replaced since the call was sent (another call's timeout, a reset), nothing
//! more is done: the call is already being retransmitted on the new one. This check (a
//! connection generation number) keeps a burst of timeouts from causing a burst of reconnects.
//!
//! # Reconnect backoff
//!
//! After losing a connection that delivered at least one reply, the first reconnection
//! attempt is immediate. Otherwise (connection refused, or a server that accepts and then
//! hangs up without answering) attempts are spaced by a delay starting at
//! `reconnect_backoff_initial_ms` and doubling up to `reconnect_backoff_max_ms`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use nfsio_proto::rpc::{CallHeader, MessageHeader, OpaqueAuth, ReplyStatus};
use nfsio_proto::xdr::DEFAULT_MAX_DATA_BYTES;
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::error::RpcError;
use crate::record::{MAX_FRAGMENT_BYTES, RecordError, RecordReader, write_records};
use crate::stats::{StatsRecorder, TransportStats};

/// Opens connections to the server: the seam where a simulated network can replace TCP.
pub trait Connector: Send + Sync + 'static {
    /// The byte stream of one connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Connects over TCP to a fixed address, with `TCP_NODELAY` set (RPC requests are complete
/// messages; Nagle's algorithm would only delay them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConnector {
    addr: SocketAddr,
}

impl TcpConnector {
    /// A connector to `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Connector for TcpConnector {
    type Stream = TcpStream;

    fn connect(&self) -> impl Future<Output = io::Result<TcpStream>> + Send {
        let addr = self.addr;
        async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }
    }
}

/// What to do when a call gets no reply in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    /// Retransmit forever, until a reply comes or the caller drops the call (an NFS "hard"
    /// mount: no application ever sees a spurious I/O error).
    #[default]
    Hard,
    /// Give up with [`RpcError::TimedOut`] after `max_tries` tries (at least one).
    Soft {
        /// Tries before giving up, the first transmission included.
        max_tries: u32,
    },
}

/// Transport settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Most calls outstanding at once on the connection (at least 1; default 64).
    pub slots: usize,
    /// How long one try waits for its reply (default 60 000 ms).
    pub timeout_ms: u64,
    /// What happens after a try times out (default [`RetryPolicy::Hard`]).
    pub retry: RetryPolicy,
    /// Longest reply record accepted (default 4 MiB + 64 KiB: a 4 MiB READ and its header).
    pub max_record_bytes: u32,
    /// Longest fragment written; longer requests are split (default 2^31 - 1: one fragment).
    pub max_fragment_bytes: u32,
    /// How long one connection attempt may take (default 10 000 ms).
    pub connect_timeout_ms: u64,
    /// First delay between failed reconnection attempts (default 100 ms).
    pub reconnect_backoff_initial_ms: u64,
    /// Largest delay between failed reconnection attempts (default 30 000 ms).
    pub reconnect_backoff_max_ms: u64,
    /// First XID to use; `None` derives one from the time and the process id, so that a
    /// restarted client does not reuse the XIDs its predecessor left in the server's
    /// duplicate request cache.
    pub xid_seed: Option<u32>,
    /// Bound on READ/WRITE payloads given to every reply decoder (see
    /// [`XdrDecoder::with_max_data_bytes`]); [`RpcClient::call_with_max_data`] overrides it.
    pub max_data_bytes: u32,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            slots: 64,
            timeout_ms: 60_000,
            retry: RetryPolicy::Hard,
            max_record_bytes: 4 * 1024 * 1024 + 64 * 1024,
            max_fragment_bytes: MAX_FRAGMENT_BYTES,
            connect_timeout_ms: 10_000,
            reconnect_backoff_initial_ms: 100,
            reconnect_backoff_max_ms: 30_000,
            xid_seed: None,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
        }
    }
}

/// A handle to an RPC transport: cheap to clone, all clones share one connection.
///
/// The background task that owns the connection ends when [`RpcClient::shutdown`] is called
/// or the last handle is dropped.
#[derive(Debug, Clone)]
pub struct RpcClient {
    inner: Arc<ClientInner>,
}

/// Owned by the handles only: dropping it (with the last handle) closes `shutdown_tx`, which
/// tells the background task to stop.
#[derive(Debug)]
struct ClientInner {
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    driver: Mutex<Option<JoinHandle<()>>>,
}

/// State shared between the callers and the background task.
#[derive(Debug)]
struct Shared {
    config: RpcConfig,
    state: Mutex<State>,
    slots: Semaphore,
    /// Wakes the writer when a request is queued.
    writer_wake: Notify,
    /// Wakes the connection task when a timeout asks for a reconnection.
    kill_wake: Notify,
    next_xid: AtomicU32,
    stats: StatsRecorder,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<u32, Pending>,
    /// XIDs of pending calls to (re)transmit on the current connection, each at most once.
    queue: VecDeque<u32>,
    connected: bool,
    /// Generation of the current (or last) connection; 0 before the first.
    conn_gen: u64,
    /// A timeout asked to drop the connection of this generation.
    kill_gen: Option<u64>,
    shutdown: bool,
    /// Orders calls, so that retransmissions after a reconnection go out in call order.
    next_seq: u64,
}

/// An outstanding call.
#[derive(Debug)]
struct Pending {
    seq: u64,
    prog: u32,
    proc_num: u32,
    request: Arc<[Bytes]>,
    request_len_bytes: u64,
    /// Where the reply goes — or the error that ends the call (a soft call whose connections
    /// kept failing).
    reply_tx: oneshot::Sender<Result<Reply, RpcError>>,
    /// In [`State::queue`].
    queued: bool,
    /// Generation of the connection it was last written to.
    sent_gen: Option<u64>,
    transmissions: u32,
    last_sent: Option<Instant>,
}

/// A reply whose header has been decoded; `results` is positioned after it.
#[derive(Debug)]
struct Reply {
    status: ReplyStatus,
    results: XdrDecoder,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Mixes bits (the splitmix64 finaliser).
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A first XID that differs between processes, runs, and clients of one process.
fn initial_xid(seed: Option<u32>) -> u32 {
    static CLIENTS: AtomicU64 = AtomicU64::new(0);
    seed.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let pid = u64::from(std::process::id());
        let nth = CLIENTS.fetch_add(1, Ordering::Relaxed);
        (mix64(nanos ^ pid.rotate_left(32) ^ mix64(nth)) >> 32) as u32
    })
}

/// Opens the first connection and starts the transport.
///
/// The first connection is made before returning, and a failure is reported at once whatever
/// the retry policy (a refused connection usually means a wrong address or port): only
/// connections lost later are retried.
pub async fn connect<C: Connector>(connector: C, config: RpcConfig) -> Result<RpcClient, RpcError> {
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    let stream = match tokio::time::timeout(connect_timeout, connector.connect()).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return Err(RpcError::Connect(err)),
        Err(_) => {
            return Err(RpcError::ConnectTimedOut {
                timeout_ms: config.connect_timeout_ms,
            });
        }
    };
    let mut config = config;
    config.slots = config.slots.max(1);
    let shared = Arc::new(Shared {
        slots: Semaphore::new(config.slots),
        next_xid: AtomicU32::new(initial_xid(config.xid_seed)),
        config,
        state: Mutex::new(State::default()),
        writer_wake: Notify::new(),
        kill_wake: Notify::new(),
        stats: StatsRecorder::default(),
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let driver = tokio::spawn(drive(shared.clone(), connector, stream, shutdown_rx));
    Ok(RpcClient {
        inner: Arc::new(ClientInner {
            shared,
            shutdown_tx,
            driver: Mutex::new(Some(driver)),
        }),
    })
}

/// Removes a call from the pending map when its future is dropped before completion.
struct PendingGuard<'a> {
    shared: &'a Shared,
    xid: u32,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.shared.lock();
        if let Some(pending) = state.pending.remove(&self.xid) {
            if pending.queued {
                let xid = self.xid;
                state.queue.retain(|&queued| queued != xid);
            }
            debug!(xid = self.xid, "call abandoned");
        }
    }
}

impl RpcClient {
    /// Calls procedure `proc_num` of program `prog` version `vers` with credentials `cred`
    /// and an AUTH_NONE verifier.
    ///
    /// Returns a decoder positioned at the procedure's results once an accepted, successful
    /// reply arrives; any other reply status becomes the matching [`RpcError`]. Waits for a
    /// free slot first. Dropping the returned future abandons the call.
    pub async fn call<A: XdrEncode + ?Sized>(
        &self,
        prog: u32,
        vers: u32,
        proc_num: u32,
        cred: &OpaqueAuth,
        args: &A,
    ) -> Result<XdrDecoder, RpcError> {
        let max_data_bytes = self.inner.shared.config.max_data_bytes;
        self.call_with_max_data(prog, vers, proc_num, cred, args, max_data_bytes)
            .await
    }

    /// Like [`RpcClient::call`], with the returned decoder bounding READ/WRITE payloads to
    /// `max_data_bytes` (the negotiated transfer size).
    pub async fn call_with_max_data<A: XdrEncode + ?Sized>(
        &self,
        prog: u32,
        vers: u32,
        proc_num: u32,
        cred: &OpaqueAuth,
        args: &A,
        max_data_bytes: u32,
    ) -> Result<XdrDecoder, RpcError> {
        let shared = &*self.inner.shared;
        let _permit = shared
            .slots
            .acquire()
            .await
            .map_err(|_| RpcError::Shutdown)?;

        let (xid, mut reply_rx) = loop {
            let xid = shared.next_xid.fetch_add(1, Ordering::Relaxed);
            let header = CallHeader {
                xid,
                prog,
                vers,
                proc_num,
                cred: cred.clone(),
                verf: OpaqueAuth::none(),
            };
            let mut enc = XdrEncoder::new();
            header.encode(&mut enc);
            args.encode(&mut enc);
            let request_len_bytes = enc.len_bytes() as u64;
            let request: Arc<[Bytes]> = enc.finish().into();

            let mut state = shared.lock();
            if state.shutdown {
                return Err(RpcError::Shutdown);
            }
            if state.pending.contains_key(&xid) {
                // The XID counter wrapped onto a call still outstanding: take the next one.
                continue;
            }
            let (reply_tx, reply_rx) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            let queued = state.connected;
            state.pending.insert(
                xid,
                Pending {
                    seq,
                    prog,
                    proc_num,
                    request,
                    request_len_bytes,
                    reply_tx,
                    queued,
                    sent_gen: None,
                    transmissions: 0,
                    last_sent: None,
                },
            );
            if queued {
                state.queue.push_back(xid);
            }
            drop(state);
            if queued {
                shared.writer_wake.notify_one();
            }
            break (xid, reply_rx);
        };
        let mut guard = PendingGuard {
            shared,
            xid,
            armed: true,
        };

        let timeout = Duration::from_millis(shared.config.timeout_ms);
        let mut tries: u32 = 0;
        let reply = loop {
            tries = tries.saturating_add(1);
            match tokio::time::timeout(timeout, &mut reply_rx).await {
                Ok(Ok(Ok(reply))) => break reply,
                Ok(Ok(Err(error))) => return Err(error),
                Ok(Err(_)) => return Err(RpcError::Shutdown),
                Err(_elapsed) => {
                    match reply_rx.try_recv() {
                        Ok(Ok(reply)) => break reply,
                        Ok(Err(error)) => return Err(error),
                        Err(oneshot::error::TryRecvError::Closed) => {
                            return Err(RpcError::Shutdown);
                        }
                        Err(oneshot::error::TryRecvError::Empty) => {}
                    }
                    shared.stats.timed_out(prog, proc_num);
                    if let RetryPolicy::Soft { max_tries } = shared.config.retry {
                        if tries >= max_tries.max(1) {
                            debug!(xid, tries, "call timed out, giving up");
                            return Err(RpcError::TimedOut { tries });
                        }
                    }
                    debug!(xid, tries, "call timed out, retransmitting");
                    shared.on_timeout(xid);
                }
            }
        };
        // The reader removed the call from the pending map when it delivered the reply.
        guard.armed = false;
        match RpcError::from_reply_status(&reply.status) {
            None => Ok(reply.results.with_max_data_bytes(max_data_bytes)),
            Some(err) => Err(err),
        }
    }

    /// A snapshot of the transport's statistics.
    pub fn stats(&self) -> TransportStats {
        let shared = &self.inner.shared;
        let pending_calls = shared.lock().pending.len();
        shared.stats.snapshot(pending_calls)
    }

    /// The configuration in force (with `slots` at least 1).
    pub fn config(&self) -> &RpcConfig {
        &self.inner.shared.config
    }

    /// Stops the transport: outstanding and later calls fail with [`RpcError::Shutdown`], the
    /// connection is closed, and the background task has ended when this returns.
    pub async fn shutdown(&self) {
        let shared = &self.inner.shared;
        shared.lock().shutdown = true;
        shared.slots.close();
        self.inner.shutdown_tx.send_replace(true);
        let driver = self
            .inner
            .driver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(driver) = driver {
            if let Err(err) = driver.await {
                if err.is_panic() {
                    warn!("RPC connection task panicked");
                }
            }
        }
    }
}

impl Shared {
    /// A try of call `xid` timed out: if it was sent on the current connection, ask for that
    /// connection to be replaced (which retransmits every outstanding call).
    fn on_timeout(&self, xid: u32) {
        let kill = {
            let mut state = self.lock();
            let sent_on_current = state
                .pending
                .get(&xid)
                .is_some_and(|p| p.sent_gen == Some(state.conn_gen));
            if state.connected && sent_on_current {
                state.kill_gen = Some(state.conn_gen);
                true
            } else {
                false
            }
        };
        if kill {
            self.kill_wake.notify_one();
        }
    }

    /// Moves every queued request not yet sent on connection `conn_gen` into `batch`.
    fn take_batch(&self, conn_gen: u64, batch: &mut Vec<Arc<[Bytes]>>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let now = Instant::now();
        while let Some(xid) = state.queue.pop_front() {
            let Some(pending) = state.pending.get_mut(&xid) else {
                continue;
            };
            pending.queued = false;
            if pending.sent_gen == Some(conn_gen) {
                continue;
            }
            let retransmission = pending.transmissions > 0;
            pending.transmissions = pending.transmissions.saturating_add(1);
            pending.sent_gen = Some(conn_gen);
            pending.last_sent = Some(now);
            if retransmission {
                debug!(xid, transmission = pending.transmissions, "retransmitting");
            }
            self.stats.sent(
                pending.prog,
                pending.proc_num,
                pending.request_len_bytes,
                retransmission,
            );
            batch.push(pending.request.clone());
        }
    }

    /// Routes one received record to its caller. An error means the record is not a valid
    /// RPC reply and the connection must be dropped.
    fn dispatch(&self, record: Bytes) -> Result<(), RpcError> {
        let len_bytes = record.len() as u64;
        let mut dec = XdrDecoder::new(record).with_max_data_bytes(self.config.max_data_bytes);
        let reply = match MessageHeader::decode(&mut dec)? {
            MessageHeader::Reply(reply) => reply,
            MessageHeader::Call(call) => {
                return Err(RpcError::Xdr(nfsio_proto::XdrError::InvalidValue {
                    what: "msg_type (a call where a reply was expected)",
                    value: call.xid,
                }));
            }
        };
        let pending = {
            let mut state = self.lock();
            let pending = state.pending.remove(&reply.xid);
            if let Some(p) = &pending {
                if p.queued {
                    state.queue.retain(|&queued| queued != reply.xid);
                }
            }
            pending
        };
        match pending {
            Some(pending) => {
                let rtt = pending.last_sent.map(|sent| sent.elapsed());
                self.stats
                    .replied(pending.prog, pending.proc_num, len_bytes, rtt);
                // The caller may have gone in the meantime; then nobody wants the reply.
                let _ = pending.reply_tx.send(Ok(Reply {
                    status: reply.status,
                    results: dec,
                }));
            }
            None => {
                debug!(xid = reply.xid, "reply with unknown XID dropped");
                StatsRecorder::bump(&self.stats.unknown_xid_replies);
            }
        }
        Ok(())
    }

    /// Marks connection `conn_gen` as current and queues every outstanding call on it.
    fn connection_up(&self) -> u64 {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.conn_gen += 1;
        state.connected = true;
        state.kill_gen = None;
        let mut order: Vec<(u64, u32)> = state
            .pending
            .iter_mut()
            .map(|(&xid, p)| {
                p.queued = true;
                (p.seq, xid)
            })
            .collect();
        order.sort_unstable();
        state.queue.clear();
        state.queue.extend(order.into_iter().map(|(_, xid)| xid));
        state.conn_gen
    }

    /// Marks the connection as gone: nothing is queued until the next one. Under
    /// [`RetryPolicy::Soft`], a lost connection counts as a failed try: a call already sent
    /// `max_tries` times ends with [`RpcError::ConnectionLost`] instead of being sent again
    /// (a server that drops every connection must not hang a soft call).
    fn connection_down(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.connected = false;
        state.queue.clear();
        for pending in state.pending.values_mut() {
            pending.queued = false;
        }
        if let RetryPolicy::Soft { max_tries } = self.config.retry {
            let exhausted: Vec<u32> = state
                .pending
                .iter()
                .filter(|(_, p)| p.transmissions >= max_tries.max(1))
                .map(|(&xid, _)| xid)
                .collect();
            for xid in exhausted {
                if let Some(pending) = state.pending.remove(&xid) {
                    debug!(
                        xid,
                        tries = pending.transmissions,
                        "connection lost, giving up"
                    );
                    let _ = pending.reply_tx.send(Err(RpcError::ConnectionLost {
                        tries: pending.transmissions,
                    }));
                }
            }
        }
    }

    /// Fails every outstanding and waiting call: the transport is shutting down.
    fn fail_all(&self) {
        let pending = {
            let mut state = self.lock();
            state.shutdown = true;
            state.connected = false;
            state.queue.clear();
            std::mem::take(&mut state.pending)
        };
        // Dropping the reply senders makes the callers return `RpcError::Shutdown`.
        drop(pending);
        self.slots.close();
    }

    fn next_backoff_ms(&self, backoff_ms: u64) -> u64 {
        let max_ms = self.config.reconnect_backoff_max_ms.max(1);
        if backoff_ms == 0 {
            self.config.reconnect_backoff_initial_ms.clamp(1, max_ms)
        } else {
            backoff_ms.saturating_mul(2).min(max_ms)
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum ConnectionEnd {
    /// Lost (or dropped on purpose); reconnect.
    Lost {
        /// It delivered at least one valid reply (so it is worth reconnecting at once).
        delivered_reply: bool,
    },
    /// The transport is shutting down.
    Shutdown,
}

/// Waits until the transport is told to shut down (or its last handle is dropped).
async fn shutdown_signal(shutdown_rx: &mut watch::Receiver<bool>) {
    while !*shutdown_rx.borrow_and_update() {
        if shutdown_rx.changed().await.is_err() {
            return;
        }
    }
}

/// The background task: owns the connection, reconnects, and fails everything at the end.
async fn drive<C: Connector>(
    shared: Arc<Shared>,
    connector: C,
    first: C::Stream,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let mut next_stream = Some(first);
    let mut backoff_ms: u64 = 0;
    let mut connections: u64 = 0;
    loop {
        let stream = match next_stream.take() {
            Some(stream) => stream,
            None => match reconnect(&shared, &connector, &mut backoff_ms, &mut shutdown_rx).await {
                Some(stream) => stream,
                None => break,
            },
        };
        connections += 1;
        StatsRecorder::bump(&shared.stats.connects);
        if connections > 1 {
            StatsRecorder::bump(&shared.stats.reconnects);
            info!(connection = connections, "reconnected");
        }
        match run_connection(&shared, stream, &mut shutdown_rx).await {
            ConnectionEnd::Shutdown => break,
            ConnectionEnd::Lost { delivered_reply } => {
                backoff_ms = if delivered_reply {
                    0
                } else {
                    shared.next_backoff_ms(backoff_ms)
                };
            }
        }
    }
    shared.fail_all();
    debug!("RPC connection task ended");
}

/// Makes a new connection, waiting `backoff_ms` before each attempt and growing it after each
/// failure. `None` when the transport shuts down meanwhile.
async fn reconnect<C: Connector>(
    shared: &Shared,
    connector: &C,
    backoff_ms: &mut u64,
    shutdown_rx: &mut watch::Receiver<bool>,
) -> Option<C::Stream> {
    let connect_timeout = Duration::from_millis(shared.config.connect_timeout_ms);
    loop {
        if *backoff_ms > 0 {
            tokio::select! {
                biased;
                () = tokio::time::sleep(Duration::from_millis(*backoff_ms)) => {}
                () = shutdown_signal(shutdown_rx) => return None,
            }
        }
        let attempt = tokio::select! {
            biased;
            attempt = tokio::time::timeout(connect_timeout, connector.connect()) => attempt,
            () = shutdown_signal(shutdown_rx) => return None,
        };
        match attempt {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(err)) => warn!(error = %err, "reconnection failed"),
            Err(_) => warn!(
                timeout_ms = shared.config.connect_timeout_ms,
                "reconnection timed out"
            ),
        }
        StatsRecorder::bump(&shared.stats.connect_failures);
        *backoff_ms = shared.next_backoff_ms(*backoff_ms);
    }
}

/// Runs one connection until it is lost, replaced after a timeout, or shut down.
async fn run_connection<S: AsyncRead + AsyncWrite + Unpin + Send>(
    shared: &Shared,
    stream: S,
    shutdown_rx: &mut watch::Receiver<bool>,
) -> ConnectionEnd {
    let (read_half, mut write_half) = tokio::io::split(stream);
    let mut reader = RecordReader::new(read_half, shared.config.max_record_bytes);
    let conn_gen = shared.connection_up();
    shared.writer_wake.notify_one();
    let mut delivered_reply = false;
    let end = tokio::select! {
        biased;
        () = read_loop(shared, &mut reader, &mut delivered_reply) => None,
        () = write_loop(shared, &mut write_half, conn_gen) => None,
        () = wait_kill(shared, conn_gen) => None,
        () = shutdown_signal(shutdown_rx) => Some(ConnectionEnd::Shutdown),
    };
    shared.connection_down();
    end.unwrap_or(ConnectionEnd::Lost { delivered_reply })
}

/// Reads and dispatches replies until the connection fails or misbehaves.
async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Shared,
    reader: &mut RecordReader<R>,
    delivered_reply: &mut bool,
) {
    loop {
        let record = match reader.read_record().await {
            Ok(Some(record)) => record,
            Ok(None) => {
                info!("server closed the connection");
                return;
            }
            Err(RecordError::Io(err)) => {
                warn!(error = %err, "connection lost");
                return;
            }
            Err(err) => {
                warn!(error = %err, "bad record from server, dropping the connection");
                StatsRecorder::bump(&shared.stats.protocol_errors);
                return;
            }
        };
        if let Err(err) = shared.dispatch(record) {
            warn!(error = %err, "malformed reply from server, dropping the connection");
            StatsRecorder::bump(&shared.stats.protocol_errors);
            return;
        }
        *delivered_reply = true;
    }
}

/// Writes queued requests, a whole batch per vectored write, until a write fails.
async fn write_loop<W: AsyncWrite + Unpin>(shared: &Shared, writer: &mut W, conn_gen: u64) {
    let mut batch: Vec<Arc<[Bytes]>> = Vec::new();
    loop {
        batch.clear();
        shared.take_batch(conn_gen, &mut batch);
        if batch.is_empty() {
            shared.writer_wake.notified().await;
            continue;
        }
        let written = async {
            write_records(writer, &batch, shared.config.max_fragment_bytes).await?;
            writer.flush().await
        };
        if let Err(err) = written.await {
            warn!(error = %err, "write failed, dropping the connection");
            return;
        }
    }
}

/// Completes when a timeout asks for connection `conn_gen` to be replaced.
async fn wait_kill(shared: &Shared, conn_gen: u64) {
    loop {
        shared.kill_wake.notified().await;
        if shared.lock().kill_gen == Some(conn_gen) {
            info!("a call timed out, replacing the connection");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_seed_is_injectable_and_otherwise_varies() {
        assert_eq!(initial_xid(Some(77)), 77);
        let seeds: std::collections::HashSet<u32> = (0..8).map(|_| initial_xid(None)).collect();
        assert_eq!(
            seeds.len(),
            8,
            "clients of one process start at different XIDs"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let shared = Shared {
            config: RpcConfig {
                reconnect_backoff_initial_ms: 100,
                reconnect_backoff_max_ms: 1_000,
                ..RpcConfig::default()
            },
            state: Mutex::new(State::default()),
            slots: Semaphore::new(1),
            writer_wake: Notify::new(),
            kill_wake: Notify::new(),
            next_xid: AtomicU32::new(0),
            stats: StatsRecorder::default(),
        };
        let mut backoff_ms = 0;
        let mut seen = Vec::new();
        for _ in 0..6 {
            backoff_ms = shared.next_backoff_ms(backoff_ms);
            seen.push(backoff_ms);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
    }
}
