//! The cache's state: per-file maps of extents, the calls in flight, and the indexes that make
//! every policy question a logarithmic lookup.
//!
//! Each file ("inode", shared by all opens of one handle) maps start offsets to extents. An
//! extent is a run of bytes in one state — `Dirty`, `InFlight{rpc}`, `Unstable{verifier, seq}`
//! or `Clean` — holding its bytes and `since`, the oldest application write whose bytes it
//! holds. Bytes not in the map are not cached. No extent crosses a multiple of the chunk size
//! (= wsize), so every WRITE lies in one chunk.
//!
//! Every change to an extent goes through [`Store::insert`] and [`Store::remove`], which keep
//! all counters and indexes in step (bytes per state, the `since` multisets that answer
//! "may this fsync complete", the dirty bytes per chunk that pick the fullest chunk to flush,
//! the COMMIT index by sequence number, the clean-eviction order, each WRITE's live bytes).
//! `check_invariants` recomputes all of them from the extents.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use nfsio_proto::nfs3::{Fattr, FileHandle, Nfs3Status, NfsTime, StableHow, WriteVerifier};

use crate::api::{FileId, RpcId, SyncTicket, WaitToken};
use crate::ranges::{RangeSet, RangeTree};

/// Internal identity of a cached file (one per file handle).
pub(crate) type InodeId = u64;

/// The state of an extent's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Written by the application; no call carries these bytes.
    Dirty,
    /// Carried, exactly as they are, by this WRITE (the extent's bytes are a slice of the
    /// WRITE's payload).
    InFlight { rpc: RpcId },
    /// Written UNSTABLE under `verf`; `seq` orders the moments bytes became unstable, so a
    /// COMMIT's snapshot is "every unstable extent with `seq` <= the COMMIT's".
    Unstable { verf: WriteVerifier, seq: u64 },
    /// Durable on the server or read from it; `seq` orders eviction (oldest first).
    Clean { seq: u64 },
}

impl State {
    pub(crate) fn is_dirty(&self) -> bool {
        matches!(self, State::Dirty)
    }

    pub(crate) fn is_clean(&self) -> bool {
        matches!(self, State::Clean { .. })
    }
}

/// An extent's bytes: growable while dirty (appends and overwrites in place), shared and
/// immutable once a WRITE carries them or they came from a READ.
#[derive(Debug)]
pub(crate) enum Buf {
    Mut(BytesMut),
    Shared(Bytes),
}

impl Buf {
    pub(crate) fn len(&self) -> usize {
        match self {
            Buf::Mut(buf) => buf.len(),
            Buf::Shared(bytes) => bytes.len(),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Buf::Mut(buf) => buf,
            Buf::Shared(bytes) => bytes,
        }
    }

    /// Splits off the bytes from `at`, keeping `[0, at)` (no copy).
    pub(crate) fn split_off(&mut self, at: usize) -> Buf {
        match self {
            Buf::Mut(buf) => Buf::Mut(buf.split_off(at)),
            Buf::Shared(bytes) => Buf::Shared(bytes.split_off(at)),
        }
    }

    /// The bytes as an immutable buffer (no copy).
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Buf::Mut(buf) => buf.freeze(),
            Buf::Shared(bytes) => bytes,
        }
    }

    /// `[start, end)` as an immutable buffer: a slice when shared, a copy when mutable.
    pub(crate) fn bytes_range(&self, start: usize, end: usize) -> Bytes {
        match self {
            Buf::Mut(buf) => Bytes::copy_from_slice(&buf[start..end]),
            Buf::Shared(bytes) => bytes.slice(start..end),
        }
    }

    /// The bytes as a mutable buffer, copying them once if they are shared.
    pub(crate) fn make_mut(&mut self) -> &mut BytesMut {
        if let Buf::Shared(bytes) = self {
            let owned = std::mem::take(bytes);
            let buf = match owned.try_into_mut() {
                Ok(buf) => buf,
                Err(shared) => BytesMut::from(&shared[..]),
            };
            *self = Buf::Mut(buf);
        }
        match self {
            Buf::Mut(buf) => buf,
            Buf::Shared(_) => unreachable!("converted above"),
        }
    }

    /// True when these are the very bytes of `payload` at `offset` (same memory), which is how
    /// an in-flight extent proves it is the WRITE's snapshot.
    pub(crate) fn is_slice_of(&self, payload: &Bytes, offset: usize) -> bool {
        match self {
            Buf::Mut(_) => false,
            Buf::Shared(bytes) => {
                offset + bytes.len() <= payload.len()
                    && std::ptr::eq(bytes.as_ptr(), payload[offset..].as_ptr())
            }
        }
    }
}

/// A run of bytes in one state.
#[derive(Debug)]
pub(crate) struct Extent {
    pub(crate) state: State,
    /// The oldest application write (version) whose bytes this extent holds; 0 when clean.
    pub(crate) since: u64,
    pub(crate) data: Buf,
}

impl Extent {
    pub(crate) fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// Bytes per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StateBytes {
    pub(crate) dirty: u64,
    pub(crate) inflight: u64,
    pub(crate) unstable: u64,
    pub(crate) clean: u64,
}

impl StateBytes {
    fn slot(&mut self, state: &State) -> &mut u64 {
        match state {
            State::Dirty => &mut self.dirty,
            State::InFlight { .. } => &mut self.inflight,
            State::Unstable { .. } => &mut self.unstable,
            State::Clean { .. } => &mut self.clean,
        }
    }

    pub(crate) fn nonclean(&self) -> u64 {
        self.dirty + self.inflight + self.unstable
    }
}

/// A `fsync` or `close` waiting for every byte written up to `version`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingSync {
    pub(crate) ticket: SyncTicket,
    pub(crate) version: u64,
    pub(crate) file: FileId,
    pub(crate) close: bool,
}

/// A truncation whose SETATTR is not answered yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingTruncate {
    pub(crate) ticket: SyncTicket,
    pub(crate) size_bytes: u64,
    pub(crate) version: u64,
    /// Syncs at or after this version wait for the truncation: its own version, or older if
    /// it discarded non-clean bytes a sync was waiting for (the SETATTR is now how those
    /// bytes reach their final state on the server).
    pub(crate) wait_version: u64,
    pub(crate) rpc: Option<RpcId>,
}

/// The attributes the cache last saw, for close-to-open revalidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttrStamp {
    pub(crate) size_bytes: u64,
    pub(crate) mtime: NfsTime,
    pub(crate) ctime: NfsTime,
}

impl From<&Fattr> for AttrStamp {
    fn from(attrs: &Fattr) -> Self {
        Self {
            size_bytes: attrs.size,
            mtime: attrs.mtime,
            ctime: attrs.ctime,
        }
    }
}

/// A cached file.
#[derive(Debug)]
pub(crate) struct Inode {
    pub(crate) handle: FileHandle,
    pub(crate) extents: BTreeMap<u64, Extent>,
    /// The size the application sees: the server's as of open, grown by writes, set by
    /// truncation.
    pub(crate) size_bytes: u64,
    pub(crate) seen: AttrStamp,
    pub(crate) opens: BTreeSet<FileId>,
    pub(crate) bytes: StateBytes,
    /// `since` of dirty and in-flight extents (multiset: since -> extents).
    pub(crate) since_pending: BTreeMap<u64, u32>,
    /// `since` of unstable extents.
    pub(crate) since_unstable: BTreeMap<u64, u32>,
    pub(crate) dirty_starts: BTreeSet<u64>,
    /// Dirty bytes per chunk (chunk index -> bytes).
    pub(crate) dirty_chunks: BTreeMap<u64, u64>,
    /// Unstable extents by (seq, start).
    pub(crate) unstable_by_seq: BTreeSet<(u64, u64)>,
    /// Unstable extents per verifier.
    pub(crate) unstable_verfs: BTreeMap<[u8; 8], u32>,
    /// WRITEs in flight: offset -> (end, rpc). They never overlap.
    pub(crate) inflight_writes: BTreeMap<u64, (u64, RpcId)>,
    pub(crate) commit_in_flight: Option<RpcId>,
    pub(crate) reads_in_flight: BTreeSet<RpcId>,
    /// Ranges readers or readahead want and no READ has asked for yet.
    pub(crate) read_wanted: RangeSet,
    pub(crate) read_waiters: Vec<WaitToken>,
    /// A READ failure for the next reader of `[start, end)`.
    pub(crate) read_error: Option<(Nfs3Status, u64, u64)>,
    pub(crate) syncs: VecDeque<PendingSync>,
    pub(crate) truncates: VecDeque<PendingTruncate>,
    /// An internal flush target (dirty expiry): like a `fsync` without a ticket.
    pub(crate) kick_version: Option<u64>,
    pub(crate) nonclean_since_ms: Option<u64>,
    pub(crate) retry_at_ms: Option<u64>,
    pub(crate) backoff_ms: u64,
    /// Successive verifier mismatches.
    pub(crate) mismatches: u32,
    /// Written FILE_SYNC from now on (verifiers never match).
    pub(crate) file_sync: bool,
    pub(crate) flush_cursor: u64,
    /// Calls in flight for this file.
    pub(crate) rpcs_out: usize,
    /// Ranges the server holds as zeros (or that lie past its end of file) as far as this
    /// engine knows: past the size at first open, past a truncation; every application write
    /// removes its range. WRITEs may carry zeros there to join dirty ranges. This assumes
    /// close-to-open use (no other client writes the file while it is open here), the same
    /// assumption under which clean cached bytes are trusted; a change seen at `open` resets it.
    pub(crate) zeros: RangeTree,
}

impl Inode {
    pub(crate) fn new(handle: FileHandle, attrs: &Fattr) -> Self {
        Self {
            handle,
            extents: BTreeMap::new(),
            size_bytes: attrs.size,
            seen: AttrStamp::from(attrs),
            opens: BTreeSet::new(),
            bytes: StateBytes::default(),
            since_pending: BTreeMap::new(),
            since_unstable: BTreeMap::new(),
            dirty_starts: BTreeSet::new(),
            dirty_chunks: BTreeMap::new(),
            unstable_by_seq: BTreeSet::new(),
            unstable_verfs: BTreeMap::new(),
            inflight_writes: BTreeMap::new(),
            commit_in_flight: None,
            reads_in_flight: BTreeSet::new(),
            read_wanted: RangeSet::new(),
            read_waiters: Vec::new(),
            read_error: None,
            syncs: VecDeque::new(),
            truncates: VecDeque::new(),
            kick_version: None,
            nonclean_since_ms: None,
            retry_at_ms: None,
            backoff_ms: 0,
            mismatches: 0,
            file_sync: false,
            flush_cursor: 0,
            rpcs_out: 0,
            zeros: {
                let mut zeros = RangeTree::new();
                zeros.insert(attrs.size, u64::MAX);
                zeros
            },
        }
    }

    /// The oldest `since` of any dirty or in-flight extent.
    pub(crate) fn min_pending_since(&self) -> Option<u64> {
        self.since_pending.keys().next().copied()
    }

    /// The oldest `since` of any unstable extent.
    pub(crate) fn min_unstable_since(&self) -> Option<u64> {
        self.since_unstable.keys().next().copied()
    }

    /// The oldest `since` of any non-clean extent.
    pub(crate) fn min_nonclean_since(&self) -> Option<u64> {
        match (self.min_pending_since(), self.min_unstable_since()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The version a flush must reach: the newest pending sync or the expiry kick.
    pub(crate) fn flush_target(&self) -> Option<u64> {
        let sync = self.syncs.back().map(|s| s.version);
        sync.max(self.kick_version)
    }

    /// WRITEs ending past this size wait for the pending truncations.
    pub(crate) fn write_hold_bytes(&self) -> u64 {
        self.truncates
            .iter()
            .map(|t| t.size_bytes)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// True when a WRITE in flight overlaps `[start, end)`; returns its end.
    pub(crate) fn inflight_write_overlapping(&self, start: u64, end: u64) -> Option<u64> {
        let (_, &(write_end, _)) = self.inflight_writes.range(..end).next_back()?;
        (write_end > start).then_some(write_end)
    }

    /// True when a WRITE in flight reaches past `size`.
    pub(crate) fn inflight_write_past(&self, size: u64) -> bool {
        self.inflight_writes.range(size..).next().is_some()
            || self
                .inflight_writes
                .range(..size)
                .next_back()
                .is_some_and(|(_, &(end, _))| end > size)
    }

    pub(crate) fn in_backoff(&self, now_ms: u64) -> bool {
        self.retry_at_ms.is_some_and(|at| at > now_ms)
    }

    /// Nothing cached, nothing pending, nobody has it open: the inode can go.
    pub(crate) fn is_idle(&self) -> bool {
        self.opens.is_empty()
            && self.extents.is_empty()
            && self.rpcs_out == 0
            && self.syncs.is_empty()
            && self.truncates.is_empty()
            && self.read_waiters.is_empty()
    }
}

/// A call in flight.
#[derive(Debug)]
pub(crate) enum Outstanding {
    Write {
        ino: InodeId,
        offset: u64,
        data: Bytes,
        stable: StableHow,
        /// Bytes of `data` still `InFlight{this}` in the cache.
        live_bytes: u64,
    },
    Commit {
        ino: InodeId,
        /// Every unstable extent with `seq <= upto_seq` is in this COMMIT's snapshot.
        upto_seq: u64,
    },
    Read {
        ino: InodeId,
        offset: u64,
        count: u64,
        /// Bytes the reply may fill: uncached when the READ was sent and not written or
        /// truncated since.
        fillable: RangeSet,
        /// A truncation happened since: the reply says nothing about the size.
        truncated: bool,
    },
    Setattr {
        ino: InodeId,
    },
}

impl Outstanding {
    pub(crate) fn ino(&self) -> InodeId {
        match self {
            Outstanding::Write { ino, .. }
            | Outstanding::Commit { ino, .. }
            | Outstanding::Read { ino, .. }
            | Outstanding::Setattr { ino } => *ino,
        }
    }

    pub(crate) fn is_read(&self) -> bool {
        matches!(self, Outstanding::Read { .. })
    }
}

/// All cached files, all calls in flight, and the engine-wide indexes.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) chunk_bytes: u64,
    pub(crate) inodes: BTreeMap<InodeId, Inode>,
    pub(crate) rpcs: BTreeMap<RpcId, Outstanding>,
    pub(crate) totals: StateBytes,
    /// Bytes of WRITE payloads in flight that are no longer `InFlight` in the cache.
    pub(crate) orphan_bytes: u64,
    pub(crate) extent_count: u64,
    /// (dirty bytes, inode, chunk) for every chunk with dirty bytes.
    pub(crate) chunks_by_dirty: BTreeSet<(u64, InodeId, u64)>,
    /// (clean seq, inode, start) for every clean extent: eviction order.
    pub(crate) clean_fifo: BTreeSet<(u64, InodeId, u64)>,
}

fn adjust(counter: &mut u64, by: u64, add: bool) {
    if add {
        *counter += by;
    } else {
        assert!(*counter >= by, "accounting underflow");
        *counter -= by;
    }
}

fn adjust_multiset<K: Ord>(set: &mut BTreeMap<K, u32>, key: K, add: bool) {
    if add {
        *set.entry(key).or_insert(0) += 1;
    } else {
        let count = set.get_mut(&key).expect("multiset entry exists");
        *count -= 1;
        if *count == 0 {
            set.remove(&key);
        }
    }
}

fn adjust_set<K: Ord>(set: &mut BTreeSet<K>, key: K, add: bool) {
    let changed = if add {
        set.insert(key)
    } else {
        set.remove(&key)
    };
    assert!(changed, "index out of step with the extents");
}

impl Store {
    pub(crate) fn new(chunk_bytes: u64) -> Self {
        Self {
            chunk_bytes,
            inodes: BTreeMap::new(),
            rpcs: BTreeMap::new(),
            totals: StateBytes::default(),
            orphan_bytes: 0,
            extent_count: 0,
            chunks_by_dirty: BTreeSet::new(),
            clean_fifo: BTreeSet::new(),
        }
    }

    pub(crate) fn inode(&self, ino: InodeId) -> &Inode {
        self.inodes.get(&ino).expect("inode exists")
    }

    pub(crate) fn inode_mut(&mut self, ino: InodeId) -> &mut Inode {
        self.inodes.get_mut(&ino).expect("inode exists")
    }

    /// Bytes not known durable, and overwritten snapshots still in flight.
    pub(crate) fn nonclean_bytes(&self) -> u64 {
        self.totals.nonclean() + self.orphan_bytes
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        self.nonclean_bytes() + self.totals.clean
    }

    pub(crate) fn chunk_end(&self, offset: u64) -> u64 {
        (offset / self.chunk_bytes)
            .saturating_add(1)
            .saturating_mul(self.chunk_bytes)
    }

    /// Adds or removes one extent's contribution to every counter and index.
    fn account(&mut self, ino: InodeId, start: u64, ext: &Extent, add: bool) {
        let len = ext.len();
        let inode = self.inodes.get_mut(&ino).expect("inode exists");
        adjust(inode.bytes.slot(&ext.state), len, add);
        adjust(self.totals.slot(&ext.state), len, add);
        adjust(&mut self.extent_count, 1, add);
        match ext.state {
            State::Dirty => {
                adjust_multiset(&mut inode.since_pending, ext.since, add);
                adjust_set(&mut inode.dirty_starts, start, add);
                let chunk = start / self.chunk_bytes;
                let old = inode.dirty_chunks.get(&chunk).copied().unwrap_or(0);
                let mut new = old;
                adjust(&mut new, len, add);
                if old > 0 {
                    self.chunks_by_dirty.remove(&(old, ino, chunk));
                }
                if new > 0 {
                    inode.dirty_chunks.insert(chunk, new);
                    self.chunks_by_dirty.insert((new, ino, chunk));
                } else {
                    inode.dirty_chunks.remove(&chunk);
                }
            }
            State::InFlight { rpc } => {
                adjust_multiset(&mut inode.since_pending, ext.since, add);
                match self.rpcs.get_mut(&rpc) {
                    Some(Outstanding::Write { live_bytes, .. }) => {
                        adjust(live_bytes, len, add);
                        // Live bytes of a WRITE are counted as in flight, the rest as orphans.
                        adjust(&mut self.orphan_bytes, len, !add);
                    }
                    _ => panic!("in-flight extent without its WRITE {rpc:?}"),
                }
            }
            State::Unstable { verf, seq } => {
                adjust_multiset(&mut inode.since_unstable, ext.since, add);
                adjust_set(&mut inode.unstable_by_seq, (seq, start), add);
                adjust_multiset(&mut inode.unstable_verfs, verf.0, add);
            }
            State::Clean { seq } => {
                adjust_set(&mut self.clean_fifo, (seq, ino, start), add);
            }
        }
    }

    /// Puts an extent in the cache. It must not overlap another or cross a chunk boundary.
    pub(crate) fn insert(&mut self, ino: InodeId, start: u64, ext: Extent) {
        let len = ext.len();
        assert!(len > 0, "empty extent");
        let end = start + len;
        assert!(
            end <= self.chunk_end(start),
            "extent [{start}, {end}) crosses a chunk boundary"
        );
        {
            let inode = self.inode(ino);
            if let Some((&s, e)) = inode.extents.range(..end).next_back() {
                assert!(
                    s + e.len() <= start,
                    "extent [{start}, {end}) overlaps [{s}, ..)"
                );
            }
        }
        self.account(ino, start, &ext, true);
        self.inode_mut(ino).extents.insert(start, ext);
    }

    /// Takes an extent out of the cache.
    pub(crate) fn remove(&mut self, ino: InodeId, start: u64) -> Extent {
        let ext = self
            .inode_mut(ino)
            .extents
            .remove(&start)
            .expect("extent exists");
        self.account(ino, start, &ext, false);
        ext
    }

    /// Makes `at` an extent boundary (splitting the extent that straddles it, if any).
    pub(crate) fn split_at(&mut self, ino: InodeId, at: u64) {
        let straddling = self
            .inode(ino)
            .extents
            .range(..at)
            .next_back()
            .filter(|(s, e)| **s + e.len() > at)
            .map(|(s, _)| *s);
        if let Some(start) = straddling {
            let mut left = self.remove(ino, start);
            let right_data = left.data.split_off((at - start) as usize);
            let right = Extent {
                state: left.state,
                since: left.since,
                data: right_data,
            };
            self.insert(ino, start, left);
            self.insert(ino, at, right);
        }
    }

    /// Starts of the extents that intersect `[start, end)`, in order.
    pub(crate) fn starts_in(&self, ino: InodeId, start: u64, end: u64) -> Vec<u64> {
        let inode = self.inode(ino);
        let mut out = Vec::new();
        let straddling = inode
            .extents
            .range(..start)
            .next_back()
            .filter(|(s, e)| **s + e.len() > start);
        if let Some((&s, _)) = straddling {
            out.push(s);
        }
        out.extend(inode.extents.range(start..end).map(|(s, _)| *s));
        out
    }

    /// Registers a call in flight (a WRITE's payload counts as orphaned until its extents
    /// are inserted).
    pub(crate) fn add_rpc(&mut self, id: RpcId, out: Outstanding) {
        if let Outstanding::Write { data, .. } = &out {
            self.orphan_bytes += data.len() as u64;
        }
        self.inode_mut(out.ino()).rpcs_out += 1;
        let previous = self.rpcs.insert(id, out);
        assert!(previous.is_none(), "rpc id reused");
    }

    /// Forgets a call in flight. A WRITE must have no live extents left.
    pub(crate) fn remove_rpc(&mut self, id: RpcId) -> Outstanding {
        let out = self.rpcs.remove(&id).expect("rpc exists");
        if let Outstanding::Write {
            data, live_bytes, ..
        } = &out
        {
            assert_eq!(*live_bytes, 0, "WRITE retired with live extents");
            adjust(&mut self.orphan_bytes, data.len() as u64, false);
        }
        let inode = self.inode_mut(out.ino());
        inode.rpcs_out -= 1;
        out
    }
}
