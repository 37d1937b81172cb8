//! A file's cached extents and every index over them, with the only code that writes either.
//!
//! An extent is a run of bytes in one state — `Dirty`, `InFlight{rpc}`, `Unstable{verifier,
//! seq}` or `Clean` — holding its bytes and `since`, the oldest application write whose bytes
//! it holds. Bytes not in the map are not cached. No extent crosses a multiple of the chunk
//! size (= wsize), so every WRITE lies in one chunk.
//!
//! An extent comes into being, changes state and goes away only through the methods here,
//! each a named transition checked against the extent's current state where it happens
//! (release builds too): Dirty -> InFlight -> Unstable -> Clean, InFlight -> Clean for a
//! stable WRITE, back to Dirty when a WRITE did not take the bytes or the server's verifier
//! changed; a newer write supersedes bytes in any state. Each change updates, in one place,
//! the file's indexes ([`ExtentMap`]: bytes per state, the `since` multisets that answer "may
//! this fsync complete", the dirty starts, the dirty bytes per chunk, the COMMIT index by
//! sequence number, the verifiers) and the engine-wide ones ([`ExtentIndex`]: totals, the
//! fullest dirty chunks, the clean-eviction order). `check` recomputes them from the extents.

mod check;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, btree_map};
use std::ops::RangeBounds;

use bytes::{Bytes, BytesMut};
use nfsio_proto::nfs3::WriteVerifier;

use crate::api::RpcId;
use crate::buf::Buf;
use crate::inode_id::InodeId;

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
    /// No call carries the bytes and they are not known to the server.
    pub(crate) fn is_dirty(&self) -> bool {
        matches!(self, State::Dirty)
    }

    /// Known durable on the server, or read from it.
    pub(crate) fn is_clean(&self) -> bool {
        matches!(self, State::Clean { .. })
    }
}

/// A change of state an extent may take, named where it happens. Anything else is a bug
/// that could lose data, and panics.
#[derive(Debug, Clone)]
pub(crate) enum Transition {
    /// Dirty -> InFlight: the WRITE `rpc` carries the bytes; `payload` is this extent's slice
    /// of the WRITE's payload (the same bytes), which becomes the extent's buffer.
    Send { rpc: RpcId, payload: Bytes },
    /// InFlight{rpc} -> Unstable: the WRITE was answered UNSTABLE under `verf`.
    WrittenUnstable {
        rpc: RpcId,
        verf: WriteVerifier,
        seq: u64,
    },
    /// InFlight{rpc} -> Clean: the WRITE was answered DATA_SYNC or FILE_SYNC.
    WrittenDurable { rpc: RpcId },
    /// InFlight{rpc} -> Dirty: the WRITE did not take these bytes (short write, JUKEBOX, no
    /// answer, a reply of the wrong kind); they will be sent again.
    NotWritten { rpc: RpcId },
    /// Unstable{verf} -> Clean: a COMMIT answered under the verifier they were written under.
    Committed { verf: WriteVerifier },
    /// Unstable{other} -> Dirty: the server now answers `verf`, not the verifier the bytes
    /// were written under; it may have lost them.
    VerifierChanged { verf: WriteVerifier },
}

impl Transition {
    fn allowed_from(&self, from: &State) -> bool {
        match (from, self) {
            (State::Dirty, Transition::Send { .. }) => true,
            (
                State::InFlight { rpc },
                Transition::WrittenUnstable { rpc: by, .. }
                | Transition::WrittenDurable { rpc: by }
                | Transition::NotWritten { rpc: by },
            ) => rpc == by,
            (State::Unstable { verf, .. }, Transition::Committed { verf: now }) => verf == now,
            (State::Unstable { verf, .. }, Transition::VerifierChanged { verf: now }) => {
                verf != now
            }
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Transition::Send { .. } => "Send",
            Transition::WrittenUnstable { .. } => "WrittenUnstable",
            Transition::WrittenDurable { .. } => "WrittenDurable",
            Transition::NotWritten { .. } => "NotWritten",
            Transition::Committed { .. } => "Committed",
            Transition::VerifierChanged { .. } => "VerifierChanged",
        }
    }
}

/// Why an extent leaves the cache, checked against its state like a [`Transition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// A newer application write replaces the bytes (any state: a call that carried them can
    /// no longer retire them; the new dirty bytes inherit their obligations).
    Superseded,
    /// A truncation discards them (any state; the truncation inherits their obligations).
    Truncated,
    /// Clean bytes make room under the memory bound.
    Evicted,
    /// Clean bytes of a file the server changed behind the cache's back.
    Stale,
    /// The WRITE `rpc` that carried them failed; the error is reported instead.
    WriteFailed { rpc: RpcId },
    /// The COMMIT of these unstable bytes failed; the error is reported instead.
    CommitFailed,
}

impl Removal {
    fn allowed_from(&self, from: &State) -> bool {
        match self {
            Removal::Superseded | Removal::Truncated => true,
            Removal::Evicted | Removal::Stale => from.is_clean(),
            Removal::WriteFailed { rpc } => *from == State::InFlight { rpc: *rpc },
            Removal::CommitFailed => matches!(from, State::Unstable { .. }),
        }
    }
}

/// A run of bytes in one state.
#[derive(Debug)]
pub(crate) struct Extent {
    state: State,
    /// The oldest application write (version) whose bytes this extent holds; 0 when clean.
    since: u64,
    data: Buf,
}

impl Extent {
    /// Length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// The state.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The oldest application write whose bytes this extent holds (0 when clean).
    pub(crate) fn since(&self) -> u64 {
        self.since
    }

    /// Bytes that can be appended without growing the buffer (0 unless it is growable).
    pub(crate) fn spare_capacity(&self) -> usize {
        self.data.spare_capacity()
    }

    /// The bytes.
    pub(crate) fn data(&self) -> &Buf {
        &self.data
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

    /// Bytes not known durable on the server.
    pub(crate) fn nonclean(&self) -> u64 {
        self.dirty + self.inflight + self.unstable
    }
}

/// One file's indexes over its extents.
#[derive(Debug, Default)]
struct FileIndex {
    bytes: StateBytes,
    /// `since` of dirty and in-flight extents (multiset: since -> extents).
    since_pending: BTreeMap<u64, u32>,
    /// `since` of unstable extents.
    since_unstable: BTreeMap<u64, u32>,
    dirty_starts: BTreeSet<u64>,
    /// Dirty bytes per chunk (chunk index -> bytes).
    dirty_chunks: BTreeMap<u64, u64>,
    /// Unstable extents by (seq, start).
    unstable_by_seq: BTreeSet<(u64, u64)>,
    /// Unstable extents per verifier.
    unstable_verfs: BTreeMap<[u8; 8], u32>,
}

/// The engine-wide indexes over every file's extents, and the sequence numbers of the states
/// that carry one.
#[derive(Debug)]
pub(crate) struct ExtentIndex {
    chunk_bytes: u64,
    totals: StateBytes,
    extent_count: u64,
    /// (dirty bytes, reversed, inode, chunk) for every chunk with dirty bytes: fullest
    /// first, and among equally full chunks the lowest inode and offset first, so that a
    /// streaming writer's WRITEs leave in offset order.
    chunks_by_dirty: BTreeSet<DirtyChunkKey>,
    /// (clean seq, inode, start) for every clean extent: eviction order.
    clean_fifo: BTreeSet<(u64, InodeId, u64)>,
    next_clean_seq: u64,
    next_unstable_seq: u64,
}

/// A chunk's place in the background flush order: (dirty bytes, reversed; inode; chunk).
pub(crate) type DirtyChunkKey = (Reverse<u64>, InodeId, u64);

/// A clean extent's place in the eviction order: (seq, inode, start).
pub(crate) type CleanKey = (u64, InodeId, u64);

impl ExtentIndex {
    /// No extents; chunks of `chunk_bytes` (the WRITE size).
    pub(crate) fn new(chunk_bytes: u64) -> Self {
        Self {
            chunk_bytes,
            totals: StateBytes::default(),
            extent_count: 0,
            chunks_by_dirty: BTreeSet::new(),
            clean_fifo: BTreeSet::new(),
            next_clean_seq: 1,
            next_unstable_seq: 1,
        }
    }

    /// The chunk size: no extent and no WRITE crosses a multiple of it.
    pub(crate) fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    /// The end of the chunk holding `offset_bytes`.
    pub(crate) fn chunk_end(&self, offset_bytes: u64) -> u64 {
        (offset_bytes / self.chunk_bytes)
            .saturating_add(1)
            .saturating_mul(self.chunk_bytes)
    }

    /// Bytes per state over all files.
    pub(crate) fn totals(&self) -> StateBytes {
        self.totals
    }

    /// Extents over all files.
    pub(crate) fn extent_count(&self) -> u64 {
        self.extent_count
    }

    /// (dirty bytes, inode, chunk) of every chunk with dirty bytes, fullest first, then in
    /// inode and offset order.
    pub(crate) fn dirty_chunks_fullest_first(
        &self,
    ) -> impl Iterator<Item = (u64, InodeId, u64)> + '_ {
        self.chunks_by_dirty
            .iter()
            .map(|&(Reverse(dirty), ino, chunk)| (dirty, ino, chunk))
    }

    /// The oldest clean extent after `after` in eviction order (from the oldest if `None`).
    pub(crate) fn next_clean(&self, after: Option<CleanKey>) -> Option<CleanKey> {
        match after {
            None => self.clean_fifo.iter().next().copied(),
            Some(key) => self
                .clean_fifo
                .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                .next()
                .copied(),
        }
    }

    /// A new unstable sequence number: the bytes one WRITE reply makes unstable share it.
    pub(crate) fn new_unstable_seq(&mut self) -> u64 {
        let seq = self.next_unstable_seq;
        self.next_unstable_seq += 1;
        seq
    }

    /// The newest unstable sequence number handed out (0: none yet): a COMMIT sent now covers
    /// every unstable extent up to it.
    pub(crate) fn last_unstable_seq(&self) -> u64 {
        self.next_unstable_seq - 1
    }

    fn new_clean_seq(&mut self) -> u64 {
        let seq = self.next_clean_seq;
        self.next_clean_seq += 1;
        seq
    }
}

/// One file's extents by start offset, and its indexes over them.
#[derive(Debug, Default)]
pub(crate) struct ExtentMap {
    extents: BTreeMap<u64, Extent>,
    index: FileIndex,
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

/// Adds or removes one extent's contribution to every index, the file's and the engine's.
fn account(
    file: &mut FileIndex,
    all: &mut ExtentIndex,
    ino: InodeId,
    start: u64,
    ext: &Extent,
    add: bool,
) {
    account_but_pending_since(file, all, ino, start, ext, add);
    if matches!(ext.state, State::Dirty | State::InFlight { .. }) {
        adjust_multiset(&mut file.since_pending, ext.since, add);
    }
}

/// [`account`] without the `since_pending` entry, for a change between two pending states
/// (dirty, in flight) that keeps `since`, where taking the entry out and putting it back
/// would be wasted work.
fn account_but_pending_since(
    file: &mut FileIndex,
    all: &mut ExtentIndex,
    ino: InodeId,
    start: u64,
    ext: &Extent,
    add: bool,
) {
    let len = ext.len();
    adjust(file.bytes.slot(&ext.state), len, add);
    adjust(all.totals.slot(&ext.state), len, add);
    adjust(&mut all.extent_count, 1, add);
    match ext.state {
        State::Dirty => {
            adjust_set(&mut file.dirty_starts, start, add);
            account_dirty_chunk(file, all, ino, start / all.chunk_bytes, len, add);
        }
        State::InFlight { .. } => {}
        State::Unstable { verf, seq } => {
            adjust_multiset(&mut file.since_unstable, ext.since, add);
            adjust_set(&mut file.unstable_by_seq, (seq, start), add);
            adjust_multiset(&mut file.unstable_verfs, verf.0, add);
        }
        State::Clean { seq } => adjust_set(&mut all.clean_fifo, (seq, ino, start), add),
    }
}

/// Adds or removes `len_bytes` dirty bytes of `chunk` in the per-chunk counts and the flush
/// order (one lookup of the chunk's count).
fn account_dirty_chunk(
    file: &mut FileIndex,
    all: &mut ExtentIndex,
    ino: InodeId,
    chunk: u64,
    len_bytes: u64,
    add: bool,
) {
    let entry = file.dirty_chunks.entry(chunk);
    let old = match &entry {
        btree_map::Entry::Occupied(e) => *e.get(),
        btree_map::Entry::Vacant(_) => 0,
    };
    let mut new = old;
    adjust(&mut new, len_bytes, add);
    if new > 0 {
        // The new key goes in before the old one goes out: a set of one chunk never
        // empties (which frees its node, to be allocated again at once).
        all.chunks_by_dirty.insert((Reverse(new), ino, chunk));
        *entry.or_insert(0) = new;
    } else if let btree_map::Entry::Occupied(e) = entry {
        e.remove();
    }
    if old > 0 {
        all.chunks_by_dirty.remove(&(Reverse(old), ino, chunk));
    }
}

/// What [`account`] out and back in would change when the dirty extent at `start` grows by
/// `added_bytes` and its `since` goes from `old_since` to `new_since`: only the byte counts,
/// its chunk's place in the flush order and, if it changed, the `since` entry (its start,
/// state and extent count stay), at a third of the index updates.
fn grow_dirty(
    file: &mut FileIndex,
    all: &mut ExtentIndex,
    ino: InodeId,
    start: u64,
    old_since: u64,
    new_since: u64,
    added_bytes: u64,
) {
    file.bytes.dirty += added_bytes;
    all.totals.dirty += added_bytes;
    if new_since != old_since {
        adjust_multiset(&mut file.since_pending, old_since, false);
        adjust_multiset(&mut file.since_pending, new_since, true);
    }
    assert!(
        file.dirty_chunks.contains_key(&(start / all.chunk_bytes)),
        "a dirty extent's chunk has dirty bytes"
    );
    account_dirty_chunk(file, all, ino, start / all.chunk_bytes, added_bytes, true);
}

/// Changes of the map: each keeps every index in step and checks what it changes.
impl ExtentMap {
    /// Puts an extent in the map. It must not be empty, overlap another or cross a chunk.
    fn insert(&mut self, all: &mut ExtentIndex, ino: InodeId, start: u64, ext: Extent) {
        let len = ext.len();
        assert!(len > 0, "empty extent");
        let end = start + len;
        assert!(
            end <= all.chunk_end(start),
            "extent [{start}, {end}) crosses a chunk boundary"
        );
        if let Some((&s, e)) = self.extents.range(..end).next_back() {
            assert!(
                s + e.len() <= start,
                "extent [{start}, {end}) overlaps [{s}, ..)"
            );
        }
        account(&mut self.index, all, ino, start, &ext, true);
        self.extents.insert(start, ext);
    }

    /// Uncached -> Dirty: an application write's new bytes at `start`, owing `since`.
    pub(crate) fn insert_dirty(
        &mut self,
        all: &mut ExtentIndex,
        ino: InodeId,
        start: u64,
        since: u64,
        data: BytesMut,
    ) {
        assert!(since >= 1, "dirty bytes belong to an application write");
        let ext = Extent {
            state: State::Dirty,
            since,
            data: Buf::Mut(data),
        };
        self.insert(all, ino, start, ext);
    }

    /// Uncached -> Clean: bytes the server holds (a READ's, or zeros past its end of file).
    pub(crate) fn insert_clean(
        &mut self,
        all: &mut ExtentIndex,
        ino: InodeId,
        start: u64,
        data: Bytes,
    ) {
        let seq = all.new_clean_seq();
        let ext = Extent {
            state: State::Clean { seq },
            since: 0,
            data: Buf::Shared(data),
        };
        self.insert(all, ino, start, ext);
    }

    /// Dirty -> Dirty, longer: appends `data` to the dirty extent at `start` (which must end
    /// where nothing is cached, in the same chunk); it now also owes `since`.
    pub(crate) fn append_dirty(
        &mut self,
        all: &mut ExtentIndex,
        ino: InodeId,
        start: u64,
        data: &[u8],
        since: u64,
    ) {
        let ext = self.extents.get_mut(&start).expect("extent exists");
        assert!(ext.state.is_dirty(), "append to a {:?} extent", ext.state);
        let end = start + ext.len() + data.len() as u64;
        assert!(
            end <= all.chunk_end(start),
            "append at {start} crosses a chunk"
        );
        let old_since = ext.since;
        ext.data.make_mut().extend_from_slice(data);
        ext.since = ext.since.min(since);
        grow_dirty(
            &mut self.index,
            all,
            ino,
            start,
            old_since,
            ext.since,
            data.len() as u64,
        );
        if let Some((&next, _)) = self.extents.range(start + 1..).next() {
            assert!(
                next >= end,
                "append at {start} overlaps the extent at {next}"
            );
        }
    }

    /// Dirty, in place: copies `data` over the dirty extent at `start` from `at` (no index
    /// changes: the extent's length, state and `since` stay; `since` is already older than the
    /// write's).
    pub(crate) fn overwrite_dirty(&mut self, start: u64, at: u64, data: &[u8]) {
        let ext = self.extents.get_mut(&start).expect("extent exists");
        assert!(
            ext.state.is_dirty(),
            "overwrite of a {:?} extent",
            ext.state
        );
        let from = (at - start) as usize;
        let buf = ext.data.make_mut();
        buf[from..from + data.len()].copy_from_slice(data);
    }

    /// Dirty, frozen: makes the dirty extent at `start` immutable in place (no copy) and
    /// returns its bytes, to become a WRITE's whole payload.
    pub(crate) fn freeze_dirty(&mut self, start: u64) -> Bytes {
        let ext = self.extents.get_mut(&start).expect("extent exists");
        assert!(ext.state.is_dirty(), "freeze of a {:?} extent", ext.state);
        ext.data.freeze()
    }

    /// Makes `at` an extent boundary (splitting the extent that straddles it, if any; both
    /// halves keep its state and `since`).
    pub(crate) fn split_at(&mut self, all: &mut ExtentIndex, ino: InodeId, at: u64) {
        let Some(start) = self.straddling(at) else {
            return;
        };
        let left = self.extents.get_mut(&start).expect("extent exists");
        account(&mut self.index, all, ino, start, left, false);
        let right = Extent {
            state: left.state,
            since: left.since,
            data: left.data.split_off((at - start) as usize),
        };
        account(&mut self.index, all, ino, start, left, true);
        self.insert(all, ino, at, right);
    }

    /// Changes the state of the extent at `start`, if `change` is allowed from its state.
    pub(crate) fn restate(
        &mut self,
        all: &mut ExtentIndex,
        ino: InodeId,
        start: u64,
        change: Transition,
    ) {
        let ext = self.extents.get_mut(&start).expect("extent exists");
        assert!(
            change.allowed_from(&ext.state),
            "inode {ino}: extent at {start} is {:?}: {} is not allowed from there",
            ext.state,
            change.name()
        );
        // Between the two pending states `since` stays, and so does its index entry.
        let pending_to_pending = matches!(
            change,
            Transition::Send { .. } | Transition::NotWritten { .. }
        );
        if pending_to_pending {
            account_but_pending_since(&mut self.index, all, ino, start, ext, false);
        } else {
            account(&mut self.index, all, ino, start, ext, false);
        }
        match change {
            Transition::Send { rpc, payload } => {
                assert_eq!(
                    payload.len(),
                    ext.data.len(),
                    "a WRITE carries whole extents"
                );
                debug_assert_eq!(&payload[..], ext.data.as_slice(), "the WRITE's bytes");
                ext.state = State::InFlight { rpc };
                ext.data = Buf::Shared(payload);
            }
            Transition::WrittenUnstable { verf, seq, .. } => {
                ext.state = State::Unstable { verf, seq };
            }
            Transition::WrittenDurable { .. } | Transition::Committed { .. } => {
                ext.state = State::Clean {
                    seq: all.new_clean_seq(),
                };
                ext.since = 0;
            }
            Transition::NotWritten { .. } | Transition::VerifierChanged { .. } => {
                ext.state = State::Dirty;
            }
        }
        if pending_to_pending {
            account_but_pending_since(&mut self.index, all, ino, start, ext, true);
        } else {
            account(&mut self.index, all, ino, start, ext, true);
        }
    }

    /// Takes the extent at `start` out of the cache, if `why` is allowed from its state.
    pub(crate) fn remove(
        &mut self,
        all: &mut ExtentIndex,
        ino: InodeId,
        start: u64,
        why: Removal,
    ) -> Extent {
        let ext = self.extents.remove(&start).expect("extent exists");
        assert!(
            why.allowed_from(&ext.state),
            "inode {ino}: extent at {start} is {:?}: {why:?} is not allowed from there",
            ext.state
        );
        account(&mut self.index, all, ino, start, &ext, false);
        ext
    }
}

/// Questions about the map, answered from the extents or the indexes.
impl ExtentMap {
    /// No extent cached.
    pub(crate) fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// The extent at `start`; it must exist.
    pub(crate) fn at(&self, start: u64) -> &Extent {
        self.extents.get(&start).expect("extent exists")
    }

    /// Every extent, in order.
    pub(crate) fn iter(&self) -> btree_map::Iter<'_, u64, Extent> {
        self.extents.iter()
    }

    /// The extents whose start lies in `starts`, in order.
    pub(crate) fn range<R: RangeBounds<u64>>(
        &self,
        starts: R,
    ) -> btree_map::Range<'_, u64, Extent> {
        self.extents.range(starts)
    }

    /// The start of the extent that holds `at` and starts before it.
    pub(crate) fn straddling(&self, at: u64) -> Option<u64> {
        self.extents
            .range(..at)
            .next_back()
            .filter(|(s, e)| **s + e.len() > at)
            .map(|(s, _)| *s)
    }

    /// Starts of the extents that intersect `[start, end)`, in order.
    pub(crate) fn starts_in(&self, start: u64, end: u64) -> Vec<u64> {
        let mut out = Vec::new();
        out.extend(self.straddling(start));
        out.extend(self.extents.range(start..end).map(|(s, _)| *s));
        out
    }

    /// The uncached parts of `[start, end)`.
    pub(crate) fn gaps(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut pos = start;
        let first = self.straddling(start).unwrap_or(start);
        for (&s, e) in self.extents.range(first..end) {
            if s > pos {
                out.push((pos, s));
            }
            pos = pos.max(s + e.len());
            if pos >= end {
                break;
            }
        }
        if pos < end {
            out.push((pos, end));
        }
        out
    }

    /// The cached bytes `[start, end)` (all cached): a slice when one shared extent holds
    /// them, else a copy.
    pub(crate) fn assemble(&self, start: u64, end: u64) -> Bytes {
        let starts = self.starts_in(start, end);
        if let [only] = starts.as_slice() {
            let ext = self.at(*only);
            return ext
                .data
                .bytes_range((start - only) as usize, (end - only) as usize);
        }
        let mut out = BytesMut::with_capacity((end - start) as usize);
        for s in starts {
            let ext = self.at(s);
            let a = start.max(s) - s;
            let b = end.min(s + ext.len()) - s;
            out.extend_from_slice(&ext.data.as_slice()[a as usize..b as usize]);
        }
        out.freeze()
    }

    /// Starts of the extents still `InFlight{rpc}` that start within `[start, end)`.
    pub(crate) fn in_flight_in(&self, rpc: RpcId, start: u64, end: u64) -> Vec<u64> {
        self.extents
            .range(start..end)
            .filter(|(_, e)| e.state == State::InFlight { rpc })
            .map(|(s, _)| *s)
            .collect()
    }

    /// Bytes per state.
    pub(crate) fn bytes(&self) -> StateBytes {
        self.index.bytes
    }

    /// The oldest `since` of any dirty or in-flight extent.
    pub(crate) fn min_pending_since(&self) -> Option<u64> {
        self.index.since_pending.keys().next().copied()
    }

    /// The oldest `since` of any unstable extent.
    pub(crate) fn min_unstable_since(&self) -> Option<u64> {
        self.index.since_unstable.keys().next().copied()
    }

    /// The oldest `since` of any non-clean extent.
    pub(crate) fn min_nonclean_since(&self) -> Option<u64> {
        match (self.min_pending_since(), self.min_unstable_since()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Asserts (release builds too) that the `since` indexes agree with the byte counts, so
    /// that "no pending `since` at or below v" really means "no such bytes": O(1).
    pub(crate) fn assert_since_indexes_agree(&self) {
        let bytes = &self.index.bytes;
        assert_eq!(
            self.index.since_pending.is_empty(),
            bytes.dirty + bytes.inflight == 0,
            "pending since index out of step with the dirty and in-flight bytes"
        );
        assert_eq!(
            self.index.since_unstable.is_empty(),
            bytes.unstable == 0,
            "unstable since index out of step with the unstable bytes"
        );
    }

    /// Starts of the dirty extents.
    pub(crate) fn dirty_starts(&self) -> &BTreeSet<u64> {
        &self.index.dirty_starts
    }

    /// Starts of the unstable extents with `seq <= upto_seq`: a COMMIT's snapshot.
    pub(crate) fn unstable_upto(&self, upto_seq: u64) -> Vec<u64> {
        self.index
            .unstable_by_seq
            .range(..=(upto_seq, u64::MAX))
            .map(|&(_, start)| start)
            .collect()
    }

    /// The smallest range `[lo, hi)` holding every unstable extent (`(u64::MAX, 0)` if none).
    pub(crate) fn unstable_span(&self) -> (u64, u64) {
        let mut lo = u64::MAX;
        let mut hi = 0;
        for &(_, start) in &self.index.unstable_by_seq {
            lo = lo.min(start);
            hi = hi.max(start + self.at(start).len());
        }
        (lo, hi)
    }

    /// Starts of the unstable extents written under a verifier other than `verf`, by seq.
    pub(crate) fn unstable_not_under(&self, verf: WriteVerifier) -> Vec<u64> {
        if self.index.unstable_verfs.keys().all(|k| *k == verf.0) {
            return Vec::new();
        }
        self.index
            .unstable_by_seq
            .iter()
            .map(|&(_, start)| start)
            .filter(|start| {
                matches!(self.at(*start).state, State::Unstable { verf: v, .. } if v != verf)
            })
            .collect()
    }
}
