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
//!
//! Each call goes out with the credentials of the caller whose bytes (or read) it carries:
//! `owners.rs` keeps who that is, and makes a writer wait for another caller's pending
//! writes first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nfsio_cache::{
    Advice, Engine, EngineConfig, Event, FileError, FileId, OwnedWrite, ReadOutcome, SyncTicket,
    WaitToken, WriteOutcome,
};
use nfsio_proto::nfs3::{Fattr, FileHandle, Nfs3Status};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::{debug, error};

use crate::error::{NfsError, NfsResult};
use crate::options::ClientOptions;
use crate::owners::{Owners, Sweep};
use crate::procedures::Procedures;
use crate::sender::{self, Started};

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

/// The engine, the callers waiting on it, and what the background work owes nobody in
/// particular (the closes of dropped files and their errors).
struct State {
    engine: Engine,
    /// Whose credentials each call goes out with.
    owners: Owners,
    wakes: HashMap<WaitToken, oneshot::Sender<()>>,
    syncs: HashMap<SyncTicket, oneshot::Sender<SyncResult>>,
    /// The name each open file was opened by (its path), for messages about it.
    labels: HashMap<FileId, Arc<str>>,
    /// The name of every handle the engine may still hold bytes of.
    handle_labels: HashMap<FileHandle, Arc<str>>,
    labels_sweep: Sweep,
    /// Closes of files dropped without `close`, with the file's name.
    detached: HashMap<SyncTicket, Arc<str>>,
    /// The first error that background work met with nobody to report it to, for
    /// [`Cache::shutdown`].
    orphan_error: Option<NfsError>,
}

impl State {
    /// Hands the engine's events to their waiters. Results nobody waits for any more (a
    /// dropped `File`'s close, a cancelled `fsync`) are taken from the engine, logged at error
    /// level with the file's name, and kept for `shutdown`. Returns true when a detached close
    /// finished (`shutdown` may be waiting for it).
    fn dispatch(&mut self) -> bool {
        let mut detached_done = false;
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
                    if self.owners.is_flush(ticket) {
                        self.owners.flush_done(ticket, result);
                        continue;
                    }
                    if let Some(label) = self.detached.remove(&ticket) {
                        detached_done = true;
                        if let Err(error) = result {
                            self.orphan(&label, error, "a file dropped without close");
                        }
                        continue;
                    }
                    if let Some(tx) = self.syncs.remove(&ticket)
                        && let Err(Err(error)) = tx.send(result)
                    {
                        self.orphan("?", error, "a sync whose caller went away");
                    }
                }
            }
        }
        detached_done
    }

    /// Logs a write-back error nobody can be told of, and keeps the first for `shutdown`.
    fn orphan(&mut self, label: &str, error: FileError, whose: &str) {
        error!(path = %label, %error, "write-back of {whose} failed: bytes may be lost");
        self.orphan_error
            .get_or_insert_with(|| file_error(WRITE_BACK, error));
    }

    /// Remembers `label` as the name of `file` and of its handle; forgets the names of
    /// handles the engine no longer holds once there are many.
    fn name(&mut self, file: FileId, handle: FileHandle, label: Arc<str>) {
        if self.labels_sweep.due(self.handle_labels.len()) {
            let engine = &self.engine;
            self.handle_labels.retain(|handle, _| engine.holds(handle));
            self.labels_sweep.swept(self.handle_labels.len());
        }
        self.owners.prune(&self.engine);
        self.handle_labels.insert(handle, Arc::clone(&label));
        self.labels.insert(file, label);
    }

    /// See [`Owners::claim`].
    fn claim(
        &mut self,
        file: FileId,
        now_ms: u64,
    ) -> Result<Option<oneshot::Receiver<()>>, FileError> {
        self.owners.claim(&mut self.engine, file, now_ms)
    }

    /// One line naming every file with bytes not known durable, or None when there is none.
    fn undurable_summary(&self) -> Option<(u64, String)> {
        let files = self.engine.undurable_files();
        if files.is_empty() {
            return None;
        }
        let total_bytes: u64 = files.iter().map(|(_, n)| n).sum();
        let list: Vec<String> = files
            .iter()
            .map(|(handle, bytes)| match self.handle_labels.get(handle) {
                Some(label) => format!("{label} ({bytes} bytes)"),
                None => {
                    let hex: String = handle.0.iter().map(|b| format!("{b:02x}")).collect();
                    format!("handle {hex} ({bytes} bytes)")
                }
            })
            .collect();
        Some((total_bytes, list.join(", ")))
    }
}

/// The name errors of write-back (reported by `sync_all`, `close`, `shutdown`) carry.
pub(crate) const WRITE_BACK: &str = "write-back";

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
    /// Rung when a detached close finishes (for `shutdown`).
    settled: Notify,
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
                owners: Owners::default(),
                wakes: HashMap::new(),
                syncs: HashMap::new(),
                labels: HashMap::new(),
                handle_labels: HashMap::new(),
                labels_sweep: Sweep::default(),
                detached: HashMap::new(),
                orphan_error: None,
            }),
            kick: Notify::new(),
            settled: Notify::new(),
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

    /// Delivers the engine's events (see `State::dispatch`) and wakes `shutdown` when a
    /// detached close finished.
    fn dispatch(&self, state: &mut State) {
        if state.dispatch() {
            self.settled.notify_waiters();
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Stops the driver: the last handle of the client is being dropped. Bytes not yet
    /// durable then are lost; one error-level line names the files and the byte counts (on
    /// stderr when no `tracing` subscriber is installed, so that it cannot go unseen).
    pub(crate) fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.kick.notify_one();
        let summary = match self.state.lock() {
            Ok(state) => state.undurable_summary(),
            Err(_) => None,
        };
        let Some((total_bytes, files)) = summary else {
            return;
        };
        let advice =
            "close files (File::close) or call Client::shutdown before dropping the client";
        let subscribed = tracing::dispatcher::get_default(|dispatch| {
            !dispatch.is::<tracing::subscriber::NoSubscriber>()
        });
        if subscribed {
            error!(
                lost_bytes = total_bytes,
                "nfsio client dropped with {total_bytes} bytes not yet durable, which may be lost: {files}; {advice}"
            );
        } else {
            eprintln!(
                "nfsio-client: error: client dropped with {total_bytes} bytes not yet durable, which may be lost: {files}; {advice}"
            );
        }
    }

    /// Starts the driver task of the cache, sending calls through `nfs`. It runs until
    /// [`Cache::stop`] (the client's last handle is dropped).
    pub(crate) fn spawn_driver(self: &Arc<Self>, nfs: Arc<Procedures>) {
        let cache = Arc::clone(self);
        tokio::spawn(async move { cache.drive(nfs).await });
    }

    async fn drive(self: Arc<Self>, nfs: Arc<Procedures>) {
        loop {
            if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let deadline_ms = {
                let Ok(mut state) = self.lock() else {
                    break;
                };
                let now = self.now_ms();
                if state.engine.next_deadline_ms().is_some_and(|at| at <= now) {
                    state.engine.handle_timeout(now);
                }
                // Each call is started here, in the engine's order, so that its WRITEs go
                // on the wire in that order (see `sender.rs`); its task only waits.
                let mut answered = Vec::new();
                while let Some(transmit) = state.engine.poll_transmit(now) {
                    let nfs = state.owners.sender(&transmit, &nfs);
                    let id = transmit.id;
                    match sender::start(nfs, transmit) {
                        Started::Answered(reply) => answered.push((id, reply)),
                        Started::Waiting(call) => {
                            let cache = Arc::clone(&self);
                            tokio::spawn(async move {
                                let reply = call.await;
                                if let Ok(mut state) = cache.lock() {
                                    let now = cache.now_ms();
                                    state.engine.on_reply(id, reply, now);
                                    cache.dispatch(&mut state);
                                }
                                cache.kick.notify_one();
                            });
                        }
                    }
                }
                let kicked = !answered.is_empty();
                for (id, reply) in answered {
                    state.engine.on_reply(id, reply, now);
                }
                if kicked {
                    self.kick.notify_one();
                }
                self.dispatch(&mut state);
                state.engine.next_deadline_ms()
            };
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

    /// Opens `handle` in the engine with the attributes just fetched (close-to-open) for
    /// the caller `nfs` acts as; `label` names it in messages (its path).
    pub(crate) fn open(
        &self,
        handle: FileHandle,
        attrs: &Fattr,
        label: Arc<str>,
        nfs: Arc<Procedures>,
    ) -> NfsResult<FileId> {
        let mut state = self.lock()?;
        let file = state.engine.open(handle.clone(), attrs, self.now_ms());
        state.name(file, handle.clone(), label);
        state.owners.opened(file, handle, nfs);
        self.dispatch(&mut state);
        Ok(file)
    }

    /// The one body of both writes: claims `file` for its writer (who waits while another
    /// caller's bytes in it are made durable), then runs `write` on the engine. `Err` holds
    /// what to wait for and `retry` (or what `write` gave back) to try again with.
    fn try_put<T>(
        &self,
        file: FileId,
        retry: T,
        write: impl FnOnce(&mut Engine, T, u64) -> Result<Result<(), (WaitToken, T)>, FileError>,
    ) -> NfsResult<Result<(), (oneshot::Receiver<()>, T)>> {
        let mut state = self.lock()?;
        let now_ms = self.now_ms();
        let claimed = state
            .claim(file, now_ms)
            .map_err(|e| file_error(WRITE_BACK, e))?;
        let attempt = match claimed {
            Some(rx) => Err((rx, retry)),
            None => match write(&mut state.engine, retry, now_ms) {
                Ok(Ok(())) => Ok(()),
                Ok(Err((token, back))) => {
                    let (tx, rx) = oneshot::channel();
                    state.wakes.insert(token, tx);
                    Err((rx, back))
                }
                Err(error) => return Err(file_error("write-back", error)),
            },
        };
        self.dispatch(&mut state);
        drop(state);
        self.kick.notify_one();
        Ok(attempt)
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
        let done = self.try_put(file, (), |engine, (), now_ms| {
            Ok(
                match engine.write(file, offset_bytes, &data[..len], now_ms)? {
                    WriteOutcome::Accepted => Ok(()),
                    WriteOutcome::Blocked(token) => Err((token, ())),
                },
            )
        })?;
        Ok(match done {
            Ok(()) => Attempt::Ready(len),
            Err((rx, ())) => Attempt::Wait(rx),
        })
    }

    /// Tries to put the buffer `piece` (at most one piece) at `offset_bytes` into the cache,
    /// which may keep it: `Ok` once taken, or the buffer back with what to wait for.
    fn try_write_owned(
        &self,
        file: FileId,
        offset_bytes: u64,
        piece: BytesMut,
    ) -> NfsResult<Result<(), (oneshot::Receiver<()>, BytesMut)>> {
        self.try_put(file, piece, |engine, piece, now_ms| {
            Ok(
                match engine.write_owned(file, offset_bytes, piece, now_ms)? {
                    OwnedWrite::Accepted => Ok(()),
                    OwnedWrite::Blocked(token, back) => Err((token, back)),
                },
            )
        })
    }

    /// Writes the buffer `data` at `offset_bytes` into the cache, which keeps its pieces
    /// instead of copying them where it can; waits at the memory bound.
    pub(crate) async fn write_owned(
        &self,
        file: FileId,
        mut offset_bytes: u64,
        mut data: BytesMut,
    ) -> NfsResult<()> {
        while !data.is_empty() {
            let mut piece = if data.len() > self.piece_bytes {
                data.split_to(self.piece_bytes)
            } else {
                std::mem::take(&mut data)
            };
            let len = piece.len() as u64;
            loop {
                match self.try_write_owned(file, offset_bytes, piece)? {
                    Ok(()) => break,
                    Err((rx, back)) => {
                        piece = back;
                        rx.await.map_err(|_| stopped())?;
                    }
                }
            }
            offset_bytes += len;
        }
        Ok(())
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
        state.owners.read_by(file);
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
        self.dispatch(&mut state);
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
        let attempt = Self::start_sync_in(&mut state, self.now_ms(), proc_name, start);
        self.dispatch(&mut state);
        drop(state);
        self.kick.notify_one();
        attempt
    }

    /// Starts a sync with `start` under the lock already held (see [`Cache::start_sync`]).
    fn start_sync_in(
        state: &mut State,
        now_ms: u64,
        proc_name: &'static str,
        start: impl FnOnce(&mut Engine, u64) -> Result<SyncTicket, FileError>,
    ) -> NfsResult<Attempt<SyncResult, SyncResult>> {
        let ticket = start(&mut state.engine, now_ms).map_err(|e| file_error(proc_name, e))?;
        Ok(match state.engine.poll_sync(ticket) {
            Some(result) => Attempt::Ready(result),
            None => {
                let (tx, rx) = oneshot::channel();
                state.syncs.insert(ticket, tx);
                Attempt::Wait(rx)
            }
        })
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

    /// Truncates (or extends) `file` to `size_bytes` as the caller that opened it: once no
    /// other caller's writes are pending (see `State::claim`), through the engine, which
    /// orders the SETATTR after the WRITEs in flight. The claim and the truncation are made
    /// under one lock, so no other caller's write can come between them.
    pub(crate) async fn truncate(&self, file: FileId, size_bytes: u64) -> NfsResult<()> {
        const PROC: &str = "SETATTR";
        /// What one attempt at the lock came to.
        enum Step {
            /// Another caller's writes are being made durable: try again when this fires.
            Wait(oneshot::Receiver<()>),
            /// The truncation started (or failed to).
            Started(NfsResult<Attempt<SyncResult, SyncResult>>),
        }
        let started = loop {
            let step = {
                let mut state = self.lock()?;
                let now_ms = self.now_ms();
                let step = match state.claim(file, now_ms) {
                    Ok(Some(rx)) => Step::Wait(rx),
                    Ok(None) => Step::Started(Self::start_sync_in(
                        &mut state,
                        now_ms,
                        PROC,
                        |engine, now| engine.truncate(file, size_bytes, now),
                    )),
                    Err(error) => Step::Started(Err(file_error(PROC, error))),
                };
                self.dispatch(&mut state);
                step
            };
            self.kick.notify_one();
            match step {
                Step::Wait(rx) => rx.await.map_err(|_| stopped())?,
                Step::Started(started) => break started?,
            }
        };
        let result = match started {
            Attempt::Ready(result) => result,
            Attempt::Wait(rx) => rx.await.map_err(|_| stopped())?,
        };
        result.map_err(|e| file_error(PROC, e))
    }

    /// Closes `file` without waiting (a `File` dropped without `close`): its bytes are still
    /// written and committed while the client lives; an error is logged with the file's name,
    /// as nobody is left to report it to, and returned by the next [`Cache::shutdown`].
    pub(crate) fn close_detached(&self, file: FileId) {
        let Ok(mut state) = self.lock() else {
            return;
        };
        let label = state.labels.remove(&file).unwrap_or_else(|| Arc::from("?"));
        state.owners.closed(file);
        match state.engine.close(file, self.now_ms()) {
            Ok(ticket) => match state.engine.poll_sync(ticket) {
                Some(Err(error)) => state.orphan(&label, error, "a file dropped without close"),
                Some(Ok(())) => {}
                None => {
                    state.detached.insert(ticket, label);
                }
            },
            Err(FileError::NotOpen) => {}
            Err(error) => state.orphan(&label, error, "a file dropped without close"),
        }
        self.dispatch(&mut state);
        drop(state);
        self.kick.notify_one();
    }

    /// Forgets the name of a file that `close` closed.
    pub(crate) fn forget(&self, file: FileId) {
        if let Ok(mut state) = self.lock() {
            state.labels.remove(&file);
            state.owners.closed(file);
        }
    }

    /// Makes everything the cache holds durable: every open file is synced, the closes of
    /// dropped files are waited for; returns the first error among them and those that
    /// background work met since the last `shutdown` (each error reported once).
    pub(crate) async fn shutdown(&self) -> NfsResult<()> {
        let mut first_error: Option<NfsError> = None;
        let files = self.lock()?.engine.open_files();
        for file in files {
            let started = self.start_sync(WRITE_BACK, |engine, now_ms| engine.fsync(file, now_ms));
            let result = match started {
                Ok(Attempt::Ready(result)) => result.map_err(|e| file_error(WRITE_BACK, e)),
                Ok(Attempt::Wait(rx)) => match rx.await {
                    Ok(result) => result.map_err(|e| file_error(WRITE_BACK, e)),
                    Err(_) => Err(stopped()),
                },
                // Closed meanwhile: its `close` reports for it.
                Err(NfsError::InvalidArgument(_)) => Ok(()),
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            {
                let mut state = self.lock()?;
                if state.detached.is_empty() {
                    if let Some(error) = state.orphan_error.take() {
                        first_error.get_or_insert(error);
                    }
                    break;
                }
                // Registered before the lock is released: no wake-up is lost.
                notified.as_mut().enable();
            }
            if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
                return Err(stopped());
            }
            notified.await;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The size the application sees (the server's, grown by cached writes, set by
    /// truncation).
    pub(crate) fn size_bytes(&self, file: FileId) -> NfsResult<u64> {
        self.lock()?
            .engine
            .size_bytes(file)
            .map_err(|e| file_error("GETATTR", e))
    }

    /// Revalidates `file` against attributes just fetched (see
    /// [`nfsio_cache::Engine::revalidate_open`]).
    pub(crate) fn revalidate(&self, file: FileId, attrs: &Fattr) -> NfsResult<()> {
        let mut state = self.lock()?;
        let now_ms = self.now_ms();
        state
            .engine
            .revalidate_open(file, attrs, now_ms)
            .map_err(|e| file_error("GETATTR", e))?;
        self.dispatch(&mut state);
        Ok(())
    }

    /// Takes `file`'s reader's advice on what it reads.
    pub(crate) fn advise(&self, file: FileId, advice: Advice) -> NfsResult<()> {
        self.lock()?
            .engine
            .advise(file, advice)
            .map_err(|e| file_error("READ", e))
    }

    /// The engine's counters.
    pub(crate) fn stats(&self) -> nfsio_cache::EngineStats {
        self.lock()
            .map(|state| state.engine.stats())
            .unwrap_or_default()
    }
}

/// Most READs the cache keeps in flight ahead of a sequential reader when the options do not
/// say: 16 READs of 1 MiB keep a 1 Gbit/s link with a few milliseconds of latency busy.
const DEFAULT_MAX_INFLIGHT_READS: usize = 16;

/// READs the cache keeps in flight ahead of a sequential reader: the options', or a quarter
/// of the transport's slots (leaving slots for the application's other calls: LOOKUP,
/// GETATTR, ...), at most [`DEFAULT_MAX_INFLIGHT_READS`].
pub(crate) fn max_inflight_reads(options: &ClientOptions) -> usize {
    let slots = options.rpc.slots;
    match options.max_inflight_reads {
        Some(reads) => reads,
        None => (slots / 4).min(DEFAULT_MAX_INFLIGHT_READS),
    }
    .clamp(1, slots.max(1))
}

/// Builds the engine's configuration for a mount: the server's transfer sizes, the
/// transport's slots, and the client's options (memory bound, READs in flight).
pub(crate) fn engine_config(
    options: &ClientOptions,
    wsize_bytes: u32,
    rsize_bytes: u32,
) -> EngineConfig {
    if let Some(mut config) = options.cache_config.clone() {
        config.wsize_bytes = config.wsize_bytes.min(wsize_bytes);
        config.rsize_bytes = config.rsize_bytes.min(rsize_bytes);
        return config;
    }
    let defaults = EngineConfig::default();
    let slots = options.rpc.slots;
    let memory_bound_bytes = options.cache_bytes;
    let max_inflight_reads = max_inflight_reads(options);
    EngineConfig {
        wsize_bytes,
        rsize_bytes,
        max_inflight_writes: (slots / 2).clamp(1, defaults.max_inflight_writes),
        max_inflight_reads,
        // A sequential reader's window reaches every READ in flight.
        readahead_max_bytes: (max_inflight_reads as u64 * u64::from(rsize_bytes))
            .max(defaults.readahead_initial_bytes),
        memory_bound_bytes,
        background_flush_bytes: memory_bound_bytes / 4,
        commit_threshold_bytes: memory_bound_bytes / 4,
        streaming_window_bytes: defaults.streaming_window_bytes.min(memory_bound_bytes / 2),
        ..defaults
    }
}
