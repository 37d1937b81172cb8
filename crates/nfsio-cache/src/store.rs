//! The cached files: each file's state, the map from handles to files, the engine-wide
//! extent index, and which files an input touched.
//!
//! A file ("inode", shared by all opens of one handle) owns three sub-states that only their
//! own modules write: its [`ExtentMap`] (changed only through the
//! store, which holds the engine-wide [`ExtentIndex`] every change must update too), its
//! [`FileCalls`] (written by the call table) and its
//! [`FileTimers`] (written by the schedule). Every mutable
//! borrow of a file goes through [`Store::inode_mut`], which records the file as touched, so
//! that the end of an input settles exactly the files it may have changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use nfsio_proto::nfs3::{Fattr, FileHandle, Nfs3Status, NfsTime};

use crate::api::{FileId, RpcId, SyncTicket, WaitToken};
use crate::calls::FileCalls;
use crate::extents::{Extent, ExtentIndex, ExtentMap, Removal, Transition};
use crate::inode_id::InodeId;
use crate::invariants::{InvariantViolation, ensure};
use crate::ranges::{RangeSet, RangeTree};
use crate::schedule::FileTimers;
use crate::stream::StreamTracker;

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
    /// The cached bytes; changed only through the [`Store`].
    pub(crate) extents: ExtentMap,
    /// The calls in flight; changed only by the call table.
    pub(crate) calls: FileCalls,
    /// Back-off and dirty expiry; changed only by the schedule.
    pub(crate) timers: FileTimers,
    /// The size the application sees: the server's as of open, grown by writes, set by
    /// truncation.
    pub(crate) size_bytes: u64,
    pub(crate) seen: AttrStamp,
    pub(crate) opens: BTreeSet<FileId>,
    /// Ranges readers or readahead want and no READ has asked for yet.
    pub(crate) read_wanted: RangeSet,
    pub(crate) read_waiters: Vec<WaitToken>,
    /// A READ failure for the next reader of `[start, end)`.
    pub(crate) read_error: Option<(Nfs3Status, u64, u64)>,
    pub(crate) syncs: VecDeque<PendingSync>,
    pub(crate) truncates: VecDeque<PendingTruncate>,
    /// Successive verifier mismatches.
    pub(crate) mismatches: u32,
    /// Written FILE_SYNC from now on (verifiers never match).
    pub(crate) file_sync: bool,
    /// Ranges the server holds as zeros (or that lie past its end of file) as far as this
    /// engine knows: past the size at first open, past a truncation; every WRITE removes the
    /// range of the dirty bytes it carries, when it is sent (bytes written but not sent are
    /// cached, and only uncached bytes are looked up here). WRITEs may carry zeros there to
    /// join dirty ranges. This assumes close-to-open use (no other client writes the file
    /// while it is open here), the same assumption under which clean cached bytes are
    /// trusted; a change seen at `open` resets it.
    pub(crate) zeros: RangeTree,
    /// The sequential run of writes (whether the file is written as a stream).
    pub(crate) stream: StreamTracker,
    /// Borrowed mutably since the last settling (then listed in [`Store::touched`]).
    touched: bool,
}

impl Inode {
    fn new(ino: InodeId, handle: FileHandle, attrs: &Fattr) -> Self {
        let mut zeros = RangeTree::new();
        zeros.insert(attrs.size, u64::MAX);
        Self {
            handle,
            extents: ExtentMap::default(),
            calls: FileCalls::new(ino),
            timers: FileTimers::default(),
            size_bytes: attrs.size,
            seen: AttrStamp::from(attrs),
            opens: BTreeSet::new(),
            read_wanted: RangeSet::new(),
            read_waiters: Vec::new(),
            read_error: None,
            syncs: VecDeque::new(),
            truncates: VecDeque::new(),
            mismatches: 0,
            file_sync: false,
            zeros,
            stream: StreamTracker::default(),
            touched: false,
        }
    }

    /// The version a flush must reach: the newest pending sync or the expiry kick.
    pub(crate) fn flush_target(&self) -> Option<u64> {
        let sync = self.syncs.back().map(|s| s.version);
        sync.max(self.timers.kick_version())
    }

    /// WRITEs ending past this size wait for the pending truncations.
    pub(crate) fn write_hold_bytes(&self) -> u64 {
        self.truncates
            .iter()
            .map(|t| t.size_bytes)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The file may have work: non-clean bytes, syncs, truncations, wanted reads, a kick.
    pub(crate) fn has_work(&self) -> bool {
        self.extents.bytes().nonclean() > 0
            || !self.syncs.is_empty()
            || !self.truncates.is_empty()
            || !self.read_wanted.is_empty()
            || self.timers.kick_version().is_some()
    }

    /// Nothing cached, nothing pending, nobody has it open: the inode can go.
    pub(crate) fn is_idle(&self) -> bool {
        self.opens.is_empty()
            && self.extents.is_empty()
            && self.calls.is_empty()
            && self.syncs.is_empty()
            && self.truncates.is_empty()
            && self.read_waiters.is_empty()
    }
}

/// Every cached file, by id and by handle, and the indexes over all their extents.
#[derive(Debug)]
pub(crate) struct Store {
    inodes: BTreeMap<InodeId, Inode>,
    by_handle: BTreeMap<FileHandle, InodeId>,
    next_inode: InodeId,
    index: ExtentIndex,
    /// Files borrowed mutably since the last settling, each once.
    touched: Vec<InodeId>,
}

impl Store {
    /// No files; extents never cross a multiple of `chunk_bytes`.
    pub(crate) fn new(chunk_bytes: u64) -> Self {
        Self {
            inodes: BTreeMap::new(),
            by_handle: BTreeMap::new(),
            next_inode: 1,
            index: ExtentIndex::new(chunk_bytes),
            touched: Vec::new(),
        }
    }

    /// The engine-wide extent index (read only: it changes with the extents).
    pub(crate) fn index(&self) -> &ExtentIndex {
        &self.index
    }

    /// A new unstable sequence number (see [`ExtentIndex::new_unstable_seq`]).
    pub(crate) fn new_unstable_seq(&mut self) -> u64 {
        self.index.new_unstable_seq()
    }

    /// The file cached for `handle`.
    pub(crate) fn lookup(&self, handle: &FileHandle) -> Option<InodeId> {
        self.by_handle.get(handle).copied()
    }

    /// Caches a new file for `handle` with the attributes just fetched.
    pub(crate) fn create(&mut self, handle: FileHandle, attrs: &Fattr) -> InodeId {
        let ino = self.next_inode;
        self.next_inode += 1;
        let previous = self.by_handle.insert(handle.clone(), ino);
        assert!(previous.is_none(), "one file per handle");
        self.inodes.insert(ino, Inode::new(ino, handle, attrs));
        ino
    }

    /// Forgets a file (it must be idle).
    pub(crate) fn forget(&mut self, ino: InodeId) -> Option<Inode> {
        let inode = self.inodes.remove(&ino)?;
        assert!(inode.is_idle(), "inode {ino} forgotten with work or data");
        self.by_handle.remove(&inode.handle);
        Some(inode)
    }

    /// The file; it must exist.
    pub(crate) fn inode(&self, ino: InodeId) -> &Inode {
        self.inodes.get(&ino).expect("inode exists")
    }

    /// The file, if cached.
    pub(crate) fn get(&self, ino: InodeId) -> Option<&Inode> {
        self.inodes.get(&ino)
    }

    /// The file, to change it (recorded as touched); it must exist.
    pub(crate) fn inode_mut(&mut self, ino: InodeId) -> &mut Inode {
        self.get_mut(ino).expect("inode exists")
    }

    /// The file, to change it (recorded as touched), if cached.
    pub(crate) fn get_mut(&mut self, ino: InodeId) -> Option<&mut Inode> {
        let inode = self.inodes.get_mut(&ino)?;
        if !inode.touched {
            inode.touched = true;
            self.touched.push(ino);
        }
        Some(inode)
    }

    /// Every file, in id order.
    pub(crate) fn inodes(&self) -> impl Iterator<Item = (InodeId, &Inode)> + '_ {
        self.inodes.iter().map(|(&ino, inode)| (ino, inode))
    }

    /// The files touched since the last settling, in id order (they stay marked, so that
    /// settling them records nothing new, until [`Store::untouch`]).
    pub(crate) fn take_touched(&mut self) -> Vec<InodeId> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched
    }

    /// Settling is done: the files in `touched` and any touched since are unmarked
    /// (`touched`'s room is kept for the next input).
    pub(crate) fn untouch(&mut self, mut touched: Vec<InodeId>) {
        touched.append(&mut self.touched);
        for ino in &touched {
            if let Some(inode) = self.inodes.get_mut(ino) {
                inode.touched = false;
            }
        }
        touched.clear();
        self.touched = touched;
    }

    /// The file's extents and the engine-wide index, to change both in step.
    fn extents_mut(&mut self, ino: InodeId) -> (&mut ExtentMap, &mut ExtentIndex) {
        let inode = self.inodes.get_mut(&ino).expect("inode exists");
        if !inode.touched {
            inode.touched = true;
            self.touched.push(ino);
        }
        (&mut inode.extents, &mut self.index)
    }

    /// See [`ExtentMap::insert_dirty`].
    pub(crate) fn insert_dirty(&mut self, ino: InodeId, start: u64, since: u64, data: BytesMut) {
        let (map, all) = self.extents_mut(ino);
        map.insert_dirty(all, ino, start, since, data);
    }

    /// See [`ExtentMap::insert_clean`].
    pub(crate) fn insert_clean(&mut self, ino: InodeId, start: u64, data: Bytes) {
        let (map, all) = self.extents_mut(ino);
        map.insert_clean(all, ino, start, data);
    }

    /// See [`ExtentMap::append_dirty`].
    pub(crate) fn append_dirty(&mut self, ino: InodeId, start: u64, data: &[u8], since: u64) {
        let (map, all) = self.extents_mut(ino);
        map.append_dirty(all, ino, start, data, since);
    }

    /// See [`ExtentMap::overwrite_dirty`].
    pub(crate) fn overwrite_dirty(&mut self, ino: InodeId, start: u64, at: u64, data: &[u8]) {
        self.extents_mut(ino).0.overwrite_dirty(start, at, data);
    }

    /// See [`ExtentMap::freeze_dirty`].
    pub(crate) fn freeze_dirty(&mut self, ino: InodeId, start: u64) -> Bytes {
        self.extents_mut(ino).0.freeze_dirty(start)
    }

    /// See [`ExtentMap::split_at`].
    pub(crate) fn split_at(&mut self, ino: InodeId, at: u64) {
        let (map, all) = self.extents_mut(ino);
        map.split_at(all, ino, at);
    }

    /// See [`ExtentMap::restate`].
    pub(crate) fn restate(&mut self, ino: InodeId, start: u64, change: Transition) {
        let (map, all) = self.extents_mut(ino);
        map.restate(all, ino, start, change);
    }

    /// See [`ExtentMap::remove`].
    pub(crate) fn remove(&mut self, ino: InodeId, start: u64, why: Removal) -> Extent {
        let (map, all) = self.extents_mut(ino);
        map.remove(all, ino, start, why)
    }

    /// Every file is indexed by its handle, and every handle names its file.
    pub(crate) fn check_handles(&self) -> Result<(), InvariantViolation> {
        for (&ino, inode) in &self.inodes {
            ensure!(
                self.by_handle.get(&inode.handle) == Some(&ino),
                "inode {ino} not indexed by its handle"
            );
        }
        ensure!(
            self.by_handle.len() == self.inodes.len(),
            "a handle names a forgotten inode"
        );
        ensure!(
            self.inodes.keys().all(|&ino| ino < self.next_inode),
            "an inode id never handed out"
        );
        Ok(())
    }
}
