//! The async shell around the sans-IO write-back engine (`nfsio-cache`).
//!
//! The engine decides everything — what is cached, which WRITE, COMMIT, READ or SETATTR to
//! send next, when an `fsync` is done — but performs no I/O and reads no clock. This module
//! gives it both: one engine per [`Client`](crate::Client) behind a mutex, a driver task that
//! sends the calls the engine asks for (each in its own task, so many are in flight) and feeds
//! their replies back, a timer for the engine's deadlines, and one-shot channels for the
//! callers the engine told to wait (a writer at the memory bound, a reader of uncached data, a
//! pending `fsync`, `close` or truncation).
//!
//! Waiters are registered under the same lock as the engine call that told them to wait, and
//! events are dispatched only after that, so no wake-up can be lost between the two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use nfsio_cache::{
    Engine, EngineConfig, Event, FileError, FileId, Op, ReadOutcome, Reply, SyncTicket, Transmit,
    WaitToken, WriteOutcome,
};
use nfsio_proto::nfs3::{Fattr, FileHandle, Nfs3Status, Sattr};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::client::{Client, Inner};
use crate::error::{NfsError, NfsResult};

/// Something a caller waits for: `Ready` now, or a receiver that fires when it may try again
/// (or, for syncs, with the result).
pub(crate) enum Attempt<T, W> {
    /// Done.
    Ready(T),
    /// Wait for this, then try again (writes, reads) or take the result (syncs).
    Wait(oneshot::Receiver<W>),
}

/// The result of an `fsync`, `close` or truncation, as the engine reports it.
pub(crate) type SyncResult = Result<(), FileError>;

/// The engine, the callers waiting on it, and whether the driver still runs.
struct State {
    engine: Engine,
    wakes: HashMap<WaitToken, oneshot::Sender<()>>,
    syncs: HashMap<SyncTicket, oneshot::Sender<SyncResult>>,
}

impl State {
    /// Hands the engine's events to their waiters. Results nobody waits for any more (a
    /// dropped `File`'s close, a cancelled `fsync`) are taken from the engine and logged.
    fn dispatch(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::Wake(token) => {
                    if let Some(tx) = self.wakes.remove(&token) {
                        let _ = tx.send(());
                    }
                }
                Event::SyncDone(ticket) => {
                    let Some(result) = self.engine.poll_sync(ticket) else {
                        // Already taken by the caller that started it.
                        continue;
                    };
                    match self.syncs.remove(&ticket) {
                        Some(tx) => {
                            if let Err(Err(error)) = tx.send(result) {
                                warn!(%error, "write-back error after its caller went away");
                            }
                        }
                        None => {
                            if let Err(error) = result {
                                warn!(%error, "write-back error of a file dropped without close");
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One client's write-back cache: the engine, its waiters, and the driver's doorbell.
pub(crate) struct Cache {
    state: Mutex<State>,
    /// Rung whenever the engine may have calls to send or a new deadline.
    kick: Notify,
    /// The engine's clock starts here (tokio's clock, so paused-time tests and simulations
    /// drive it).
    epoch: Instant,
    /// Set when the client is gone: the driver stops.
    stopped: std::sync::atomic::AtomicBool,
    /// Largest piece an application write is split into (one engine input each), so that
    /// a large write waits at the memory bound piece by piece instead of as a whole.
    piece_bytes: usize,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

/// Maps an engine error to the client's error, naming the operation that reports it.
pub(crate) fn file_error(proc_name: &'static str, error: FileError) -> NfsError {
    match error {
        FileError::Status(status) => NfsError::Status { proc_name, status },
        FileError::NotOpen => NfsError::InvalidArgument("the file is not open".into()),
        FileError::OffsetOverflow {
            offset_bytes,
            len_bytes,
        } => NfsError::Status {
            proc_name,
            status: if offset_bytes == u64::MAX || len_bytes == 0 {
                Nfs3Status::Inval
            } else {
                Nfs3Status::FBig
            },
        },
    }
}

/// The error a waiter sees when the driver stopped under it (the client was dropped, or the
/// engine failed an internal check).
fn stopped() -> NfsError {
    NfsError::WriteBack("the driver stopped".into())
}

impl Cache {
    /// A cache with `config` (already checked by the caller).
    pub(crate) fn new(engine: Engine) -> Arc<Self> {
        let piece_bytes = engine.config().wsize_bytes as usize;
        Arc::new(Self {
            state: Mutex::new(State {
                engine,
                wakes: HashMap::new(),
                syncs: HashMap::new(),
            }),
            kick: Notify::new(),
            epoch: Instant::now(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            piece_bytes,
        })
    }

    /// The engine. A panic while it was held (an engine invariant found broken) poisons it:
    /// from then on every operation fails with EIO rather than trusting a state that could
    /// acknowledge bytes it does not hold (fail-stop).
    fn lock(&self) -> NfsResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| NfsError::WriteBack("failed an internal check; stopped".into()))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Stops the driver (the client is being dropped).
    pub(crate) fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.kick.notify_one();
    }

    /// Starts the driver task for `client`'s cache. It holds the client weakly: it stops
    /// once the client is dropped.
    pub(crate) fn spawn_driver(self: &Arc<Self>, client: Weak<Inner>) {
        let cache = Arc::clone(self);
        tokio::spawn(async move { cache.drive(client).await });
    }

    async fn drive(self: Arc<Self>, client: Weak<Inner>) {
        loop {
            if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let Some(inner) = client.upgrade() else {
                break;
            };
            let client = Client::from_inner(inner);
            let deadline_ms = {
                let Ok(mut state) = self.lock() else {
                    break;
                };
                let now = self.now_ms();
                if state.engine.next_deadline_ms().is_some_and(|at| at <= now) {
                    state.engine.handle_timeout(now);
                }
                while let Some(transmit) = state.engine.poll_transmit(now) {
                    let cache = Arc::clone(&self);
                    let client = client.clone();
                    tokio::spawn(async move {
                        let id = transmit.id;
                        let reply = send(&client, transmit).await;
                        drop(client);
                        if let Ok(mut state) = cache.lock() {
                            let now = cache.now_ms();
                            state.engine.on_reply(id, reply, now);
                            state.dispatch();
                        }
                        cache.kick.notify_one();
                    });
                }
                state.dispatch();
                state.engine.next_deadline_ms()
            };
            drop(client);
            let notified = self.kick.notified();
            match deadline_ms {
                Some(at_ms) => {
                    let at = self.epoch + Duration::from_millis(at_ms);
                    tokio::select! {
                        biased;
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
        debug!("write-back driver stopped");
        // Whoever still waits learns that nothing more will happen.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.wakes.clear();
        state.syncs.clear();
    }

    /// Opens `handle` in the engine with the attributes just fetched (close-to-open).
    pub(crate) fn open(&self, handle: FileHandle, attrs: &Fattr) -> NfsResult<FileId> {
        let mut state = self.lock()?;
        let file = state.engine.open(handle, attrs, self.now_ms());
        state.dispatch();
        Ok(file)
    }

    /// Tries to put `data` at `offset_bytes` into the cache: `Ready(n)` with the bytes taken
    /// (a prefix of at most one piece), or `Wait` at the memory bound.
    pub(crate) fn try_write(
        &self,
        file: FileId,
        offset_bytes: u64,
        data: &[u8],
    ) -> NfsResult<Attempt<usize, ()>> {
        let len = data.len().min(self.piece_bytes);
        let mut state = self.lock()?;
        let outcome = state
            .engine
            .write(file, offset_bytes, &data[..len], self.now_ms());
        let attempt = match outcome {
            Ok(WriteOutcome::Accepted) => Attempt::Ready(len),
            Ok(WriteOutcome::Blocked(token)) => {
                let (tx, rx) = oneshot::channel();
                state.wakes.insert(token, tx);
                Attempt::Wait(rx)
            }
            Err(error) => return Err(file_error("write-back", error)),
        };
        state.dispatch();
        drop(state);
        self.kick.notify_one();
        Ok(attempt)
    }

    /// Writes all of `data` at `offset_bytes` into the cache, waiting at the memory bound.
    pub(crate) async fn write(
        &self,
        file: FileId,
        mut offset_bytes: u64,
        mut data: &[u8],
    ) -> NfsResult<()> {
        while !data.is_empty() {
            match self.try_write(file, offset_bytes, data)? {
                Attempt::Ready(n) => {
                    offset_bytes += n as u64;
                    data = &data[n..];
                }
                Attempt::Wait(rx) => rx.await.map_err(|_| stopped())?,
            }
        }
        Ok(())
    }

    /// Tries to read up to `len_bytes` at `offset_bytes`: `Ready` with the cached prefix
    /// (empty at end of file), or `Wait` while READs fetch it.
    pub(crate) fn try_read(
        &self,
        file: FileId,
        offset_bytes: u64,
        len_bytes: usize,
    ) -> NfsResult<Attempt<Bytes, ()>> {
        let mut state = self.lock()?;
        let outcome = state
            .engine
            .read(file, offset_bytes, len_bytes, self.now_ms());
        let attempt = match outcome {
            Ok(ReadOutcome::Data(data)) => Attempt::Ready(data),
            Ok(ReadOutcome::Wait(token)) => {
                let (tx, rx) = oneshot::channel();
                state.wakes.insert(token, tx);
                Attempt::Wait(rx)
            }
            Err(error) => return Err(file_error("READ", error)),
        };
        state.dispatch();
        drop(state);
        self.kick.notify_one();
        Ok(attempt)
    }

    /// Reads up to `len_bytes` at `offset_bytes`; fewer only at end of file.
    pub(crate) async fn read(
        &self,
        file: FileId,
        offset_bytes: u64,
        len_bytes: usize,
    ) -> NfsResult<Bytes> {
        let mut out: Option<bytes::BytesMut> = None;
        let mut pos = offset_bytes;
        let mut left = len_bytes;
        while left > 0 {
            match self.try_read(file, pos, left)? {
                Attempt::Ready(data) if data.is_empty() => break,
                Attempt::Ready(data) => {
                    if out.is_none() && data.len() == len_bytes {
                        return Ok(data);
                    }
                    pos += data.len() as u64;
                    left -= data.len();
                    out.get_or_insert_with(|| bytes::BytesMut::with_capacity(len_bytes))
                        .extend_from_slice(&data);
                }
                Attempt::Wait(rx) => rx.await.map_err(|_| stopped())?,
            }
        }
        Ok(out.map(bytes::BytesMut::freeze).unwrap_or_default())
    }

    /// Starts an `fsync`, `close` or truncation with `start`; the receiver gets its result.
    pub(crate) fn start_sync(
        &self,
        proc_name: &'static str,
        start: impl FnOnce(&mut Engine, u64) -> Result<SyncTicket, FileError>,
    ) -> NfsResult<Attempt<SyncResult, SyncResult>> {
        let mut state = self.lock()?;
        let ticket =
            start(&mut state.engine, self.now_ms()).map_err(|e| file_error(proc_name, e))?;
        let attempt = match state.engine.poll_sync(ticket) {
            Some(result) => Attempt::Ready(result),
            None => {
                let (tx, rx) = oneshot::channel();
                state.syncs.insert(ticket, tx);
                Attempt::Wait(rx)
            }
        };
        state.dispatch();
        drop(state);
        self.kick.notify_one();
        Ok(attempt)
    }

    /// Runs an `fsync`, `close` or truncation to its end.
    pub(crate) async fn sync(
        &self,
        proc_name: &'static str,
        start: impl FnOnce(&mut Engine, u64) -> Result<SyncTicket, FileError>,
    ) -> NfsResult<()> {
        let result = match self.start_sync(proc_name, start)? {
            Attempt::Ready(result) => result,
            Attempt::Wait(rx) => rx.await.map_err(|_| stopped())?,
        };
        result.map_err(|e| file_error(proc_name, e))
    }

    /// Closes `file` without waiting (a `File` dropped without `close`): its bytes are still
    /// written and committed; an error is logged, as nobody is left to report it to.
    pub(crate) fn close_detached(&self, file: FileId) {
        let Ok(mut state) = self.lock() else {
            return;
        };
        match state.engine.close(file, self.now_ms()) {
            Ok(ticket) => {
                if let Some(Err(error)) = state.engine.poll_sync(ticket) {
                    warn!(%error, "write-back error of a file dropped without close");
                }
            }
            Err(FileError::NotOpen) => {}
            Err(error) => warn!(%error, "closing a dropped file"),
        }
        state.dispatch();
        drop(state);
        self.kick.notify_one();
    }

    /// The size the application sees (the server's, grown by cached writes, set by
    /// truncation).
    pub(crate) fn size_bytes(&self, file: FileId) -> NfsResult<u64> {
        self.lock()?
            .engine
            .size_bytes(file)
            .map_err(|e| file_error("GETATTR", e))
    }

    /// The engine's counters.
    pub(crate) fn stats(&self) -> nfsio_cache::EngineStats {
        self.lock()
            .map(|state| state.engine.stats())
            .unwrap_or_default()
    }
}

/// Builds the engine's configuration for a mount: the server's transfer sizes, the
/// transport's slots, and the client's memory bound.
pub(crate) fn engine_config(
    base: Option<EngineConfig>,
    memory_bound_bytes: u64,
    wsize_bytes: u32,
    rsize_bytes: u32,
    slots: usize,
) -> EngineConfig {
    match base {
        Some(mut config) => {
            config.wsize_bytes = config.wsize_bytes.min(wsize_bytes);
            config.rsize_bytes = config.rsize_bytes.min(rsize_bytes);
            config
        }
        None => {
            let defaults = EngineConfig::default();
            EngineConfig {
                wsize_bytes,
                rsize_bytes,
                // Leave slots for the application's other calls (LOOKUP, GETATTR, ...).
                max_inflight_writes: (slots / 2).clamp(1, defaults.max_inflight_writes),
                max_inflight_reads: (slots / 4).clamp(1, defaults.max_inflight_reads),
                memory_bound_bytes,
                background_flush_bytes: memory_bound_bytes / 4,
                commit_threshold_bytes: memory_bound_bytes / 4,
                ..defaults
            }
        }
    }
}

/// Sends one call the engine asked for and turns the outcome into the engine's [`Reply`].
async fn send(client: &Client, transmit: Transmit) -> Reply {
    let Transmit { handle, op, .. } = transmit;
    let result = match op {
        Op::Write {
            offset_bytes,
            data,
            stable,
        } => client
            .write(&handle, offset_bytes, data, stable)
            .await
            .map(|ok| Reply::Write {
                count_bytes: ok.count,
                committed: ok.committed,
                verf: ok.verf,
                post_op_attrs: ok.file_wcc.after,
            }),
        Op::Commit {
            offset_bytes,
            count_bytes,
        } => client
            .commit(&handle, offset_bytes, count_bytes)
            .await
            .map(|ok| Reply::Commit {
                verf: ok.verf,
                post_op_attrs: ok.file_wcc.after,
            }),
        Op::Read {
            offset_bytes,
            count_bytes,
        } => client
            .read(&handle, offset_bytes, count_bytes)
            .await
            .map(|ok| Reply::Read {
                data: ok.data,
                eof: ok.eof,
                post_op_attrs: ok.file_attributes,
            }),
        Op::Setattr { size_bytes } => client
            .setattr(
                &handle,
                Sattr {
                    size: Some(size_bytes),
                    ..Sattr::default()
                },
                None,
            )
            .await
            .map(|wcc| Reply::Setattr {
                post_op_attrs: wcc.after,
            }),
    };
    match result {
        Ok(reply) => reply,
        Err(NfsError::Status { status, .. }) => Reply::Status(status),
        // The transport gave up (a soft mount's retries ran out, the client is shutting
        // down) or the server broke the protocol: the call may have run or not, and nothing
        // will retry it at this XID. The engine records EIO for the file.
        Err(error) => {
            warn!(%error, "write-back call failed");
            Reply::Status(Nfs3Status::Io)
        }
    }
}
