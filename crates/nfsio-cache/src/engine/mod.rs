//! The engine: the owner of the sub-states, and the bookkeeping every input ends with.
//!
//! The state is cut into owned parts, each the only writer of what it keeps: the
//! [`Store`] (files and their extent maps, with the extent indexes), the
//! [`CallTable`] (calls in flight and their counts), the
//! [`Schedule`] (active files and their deadlines) and the
//! [`Outbox`] (events, results, blocked writers). The engine's
//! methods decide; the parts keep their books.
//!
//! The inputs are spread by kind: `write` (open, write, truncate, fsync, close), `read`,
//! `transmit` (which call next), `reply` (applying answers), `inspect` (queries and time),
//! `check` (the whole-state check). Every input ends with [`Engine::after_input`]: evict to
//! the bound, settle the files the input touched (complete syncs, track the age of non-clean
//! bytes, drop idle files), wake writers.

mod check;
mod inspect;
mod read;
mod reply;
mod transmit;
mod write;

use std::collections::BTreeMap;

use nfsio_proto::nfs3::Nfs3Status;

use crate::api::{Advice, EngineStats, FileError, FileId};
use crate::calls::CallTable;
use crate::config::{ConfigError, EngineConfig};
use crate::extents::Removal;
use crate::inode_id::InodeId;
use crate::outbox::Outbox;
use crate::schedule::Schedule;
use crate::store::{Inode, Store};

/// One `open` of a file.
#[derive(Debug)]
struct OpenFile {
    ino: InodeId,
    /// The first error since the last report, reported by the next `fsync` or `close`.
    error: Option<Nfs3Status>,
    /// Writes are refused with this until `error` has been reported (ENOSPC, EDQUOT, EFBIG).
    refuse: Option<Nfs3Status>,
    closing: bool,
    /// Where the next sequential read starts.
    ra_next_bytes: u64,
    /// Offset of the last read (a read retried after `Wait` is not a new access).
    ra_last_bytes: Option<u64>,
    ra_window_bytes: u64,
    /// The range this open's last read waits for: its clean bytes are not evicted until the
    /// open reads again (or closes), so that a reader woken up finds its data.
    pin: Option<(u64, u64)>,
    /// How the reader uses what it reads.
    advice: Advice,
}

impl OpenFile {
    fn new(ino: InodeId) -> Self {
        Self {
            ino,
            error: None,
            refuse: None,
            closing: false,
            ra_next_bytes: 0,
            ra_last_bytes: None,
            ra_window_bytes: 0,
            pin: None,
            advice: Advice::Normal,
        }
    }
}

/// The sans-IO write-back engine. See the [crate documentation](crate) for how to drive it.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    store: Store,
    calls: CallTable,
    schedule: Schedule,
    opens: BTreeMap<FileId, OpenFile>,
    outbox: Outbox,
    now_ms: u64,
    /// The next application write's version (versions start at 1).
    next_version: u64,
    next_file: u64,
    stats: EngineStats,
    /// The round robin's order of files, kept between polls so that a poll allocates nothing.
    rotation: Vec<InodeId>,
    #[cfg(debug_assertions)]
    inputs: u64,
}

impl Engine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            store: Store::new(u64::from(config.wsize_bytes)),
            calls: CallTable::new(),
            schedule: Schedule::new(config.dirty_expire_ms, config.backoff()),
            config,
            opens: BTreeMap::new(),
            outbox: Outbox::new(),
            now_ms: 0,
            next_version: 1,
            next_file: 1,
            stats: EngineStats::default(),
            rotation: Vec::new(),
            #[cfg(debug_assertions)]
            inputs: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn open_file(&self, file: FileId) -> Result<&OpenFile, FileError> {
        match self.opens.get(&file) {
            Some(open) if !open.closing => Ok(open),
            _ => Err(FileError::NotOpen),
        }
    }

    /// A new application write's version.
    fn new_version(&mut self) -> u64 {
        let version = self.next_version;
        self.next_version += 1;
        version
    }

    /// Bytes of WRITE payloads in flight that are not in flight in the cache (overwritten,
    /// truncated, or bridging bytes the server already had).
    fn orphan_bytes(&self) -> u64 {
        let inflight = self.store.index().totals().inflight;
        self.calls
            .write_payload_bytes()
            .checked_sub(inflight)
            .expect("every byte in flight is in a WRITE's payload")
    }

    /// Bytes not known durable, and overwritten snapshots still in flight.
    fn nonclean_bytes(&self) -> u64 {
        self.store.index().totals().nonclean() + self.orphan_bytes()
    }

    /// Every byte the engine holds.
    fn total_bytes(&self) -> u64 {
        self.nonclean_bytes() + self.store.index().totals().clean
    }

    /// The file may have work: it is scheduled (and settled at the end of this input).
    fn activate(&mut self, ino: InodeId) {
        let inode = self.store.inode_mut(ino);
        self.schedule.activate(ino, &inode.timers);
    }

    /// Moves the clock (never backwards) and fires the timers due: back-offs that ended are
    /// cleared; files whose non-clean bytes are older than `dirty_expire_ms` get a flush
    /// target.
    fn advance(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now_ms = self.now_ms;
        let last_version = self.next_version - 1;
        while let Some((timer, ino)) = self.schedule.due(now_ms) {
            let inode = self.store.inode_mut(ino);
            self.schedule
                .fire(timer, ino, &mut inode.timers, now_ms, last_version);
        }
    }

    /// Holds the file's calls for a back-off that doubles.
    fn backoff(&mut self, ino: InodeId) {
        let inode = self.store.inode_mut(ino);
        self.schedule.back_off(ino, &mut inode.timers, self.now_ms);
    }

    fn reset_backoff(&mut self, ino: InodeId) {
        let inode = self.store.inode_mut(ino);
        self.schedule.reset_backoff(ino, &mut inode.timers);
    }

    /// Records a failed WRITE, COMMIT or SETATTR for every open of the file: each reports it
    /// once, at its next `fsync` or `close`. The first error since the last report wins.
    fn record_error(&mut self, ino: InodeId, status: Nfs3Status) {
        tracing::warn!(
            ?status,
            "write-back failed; reporting at the next fsync or close"
        );
        let sticky = matches!(
            status,
            Nfs3Status::NoSpc | Nfs3Status::DQuot | Nfs3Status::FBig
        );
        for file in &self.store.inode(ino).opens {
            if let Some(open) = self.opens.get_mut(file) {
                open.error.get_or_insert(status);
                if sticky {
                    open.refuse.get_or_insert(status);
                }
            }
        }
    }

    fn wake_readers(&mut self, ino: InodeId) {
        let waiters = std::mem::take(&mut self.store.inode_mut(ino).read_waiters);
        self.outbox.wake(waiters);
    }

    /// READs in flight must not fill `[start, end)` any more: their data is older.
    fn taint_reads(&mut self, ino: InodeId, start: u64, end: u64) {
        self.calls
            .taint_reads(&self.store.inode(ino).calls, start, end);
    }

    /// Completes the syncs whose writes are all durable, tracks the age of non-clean bytes
    /// (clearing a satisfied kick), unschedules a file without work and forgets an idle one.
    fn settle(&mut self, ino: InodeId) {
        let now_ms = self.now_ms;
        let inode = self.store.inode_mut(ino);
        let min_nonclean = inode.extents.min_nonclean_since();
        let min_truncate = inode.truncates.iter().map(|t| t.wait_version).min();
        let mut done = Vec::new();
        while let Some(sync) = inode.syncs.front() {
            let waiting = min_nonclean.is_some_and(|v| v <= sync.version)
                || min_truncate.is_some_and(|v| v <= sync.version);
            if waiting {
                break;
            }
            done.extend(inode.syncs.pop_front());
        }
        self.schedule
            .track_nonclean(ino, &mut inode.timers, min_nonclean, now_ms);
        for sync in done {
            assert_durable_through(inode, sync.version);
            let error = self.opens.get_mut(&sync.file).and_then(|open| {
                open.refuse = None;
                open.error.take()
            });
            if sync.close {
                self.opens.remove(&sync.file);
                inode.opens.remove(&sync.file);
            }
            self.outbox.complete(
                sync.ticket,
                error.map_or(Ok(()), |s| Err(FileError::Status(s))),
            );
        }
        if !inode.has_work() {
            self.schedule.deactivate(ino, &inode.timers);
        }
        if inode.is_idle() {
            self.forget_inode(ino);
        }
    }

    fn forget_inode(&mut self, ino: InodeId) {
        if let Some(inode) = self.store.forget(ino) {
            self.schedule.deactivate(ino, &inode.timers);
        }
    }

    /// Evicts the oldest clean extents until the cache is within its bound, sparing the
    /// ranges readers were told to wait for.
    fn evict_to_bound(&mut self) {
        if self.total_bytes() <= self.config.memory_bound_bytes {
            return;
        }
        let pins: Vec<(InodeId, u64, u64)> = self
            .opens
            .values()
            .filter_map(|open| open.pin.map(|(start, end)| (open.ino, start, end)))
            .collect();
        let mut after = None;
        while self.total_bytes() > self.config.memory_bound_bytes {
            let Some(key) = self.store.index().next_clean(after) else {
                break;
            };
            let (_, ino, start) = key;
            let end = start + self.store.inode(ino).extents.at(start).len();
            if pins
                .iter()
                .any(|&(i, a, b)| i == ino && a < end && start < b)
            {
                after = Some(key);
                continue;
            }
            self.store.remove(ino, start, Removal::Evicted);
            if self.store.inode(ino).is_idle() {
                self.forget_inode(ino);
            }
        }
    }

    /// Wakes the blocked writers whose write now fits under the write limit (exactly the
    /// negation of the condition that blocked them, so a woken writer is accepted unless
    /// someone else filled the room first).
    fn wake_writers(&mut self) {
        let limit = self.config.write_limit_bytes();
        let nonclean = self.nonclean_bytes();
        let window = self.config.streaming_window_bytes;
        let store = &self.store;
        self.outbox.wake_writers(|len_bytes, stream| match stream {
            None => nonclean == 0 || nonclean + len_bytes <= limit,
            Some(ino) => store.get(ino).is_none_or(|inode| {
                let held = inode.extents.bytes().nonclean();
                held == 0 || held + len_bytes <= window
            }),
        });
    }

    /// True when `ino` is written as a stream (see `stream.rs`) and streams have a window
    /// smaller than the write limit.
    fn is_stream(&self, ino: InodeId) -> bool {
        self.config.streaming_window_bytes < self.config.write_limit_bytes()
            && self
                .store
                .inode(ino)
                .stream
                .is_streaming(self.config.stream_run_bytes())
    }

    /// A stream's bytes that just became clean leave the cache (drop-behind), unless a reader
    /// waits for them.
    fn drop_committed(&mut self, ino: InodeId, start: u64) {
        if !self.is_stream(ino) {
            return;
        }
        let end = start + self.store.inode(ino).extents.at(start).len();
        let pinned = self
            .opens
            .values()
            .any(|open| open.ino == ino && open.pin.is_some_and(|(a, b)| a < end && start < b));
        if !pinned && self.store.inode(ino).extents.at(start).state().is_clean() {
            self.store.remove(ino, start, Removal::Evicted);
            self.stats.stream_bytes_dropped += end - start;
        }
    }

    /// What every input ends with. Only the files the input touched are settled: settling
    /// is a function of a file's own state, so an untouched file would settle to itself.
    fn after_input(&mut self) {
        self.evict_to_bound();
        let touched = self.store.take_touched();
        for &ino in &touched {
            if self.schedule.is_active(ino) {
                self.settle(ino);
            }
        }
        self.store.untouch(touched);
        self.wake_writers();
        #[cfg(debug_assertions)]
        {
            self.inputs += 1;
            if self.store.index().extent_count() <= 4096 || self.inputs.is_multiple_of(1024) {
                if let Err(violation) = self.check_invariants() {
                    panic!("nfsio-cache: {violation}");
                }
            }
        }
    }
}

/// The postcondition of a completed `fsync` or `close` (release builds too, O(truncations)):
/// no byte written up to `version` is dirty, in flight or awaiting COMMIT, and no truncation
/// it waits for is pending — else the application would be told "durable" for bytes a crash
/// could still lose.
fn assert_durable_through(inode: &Inode, version: u64) {
    inode.extents.assert_since_indexes_agree();
    assert!(
        inode
            .extents
            .min_nonclean_since()
            .is_none_or(|since| since > version),
        "a sync of version {version} completes while older bytes are not durable"
    );
    assert!(
        inode.truncates.iter().all(|t| t.wait_version > version),
        "a sync of version {version} completes while a truncation it waits for is pending"
    );
}
