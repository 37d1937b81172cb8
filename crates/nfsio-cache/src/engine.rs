//! The engine: the application-facing inputs (open, write, read, fsync, close, truncate), the
//! bookkeeping every input ends with (settling syncs, evicting, waking), and time.
//!
//! The outputs live next door: [`transmit`](crate::transmit) decides which call to send next,
//! [`reply`](crate::reply) applies answers, [`invariants`](crate::invariants) checks the whole
//! state after every input in debug builds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use nfsio_proto::nfs3::{Fattr, FileHandle, Nfs3Status};

use crate::api::{
    EngineStats, Event, ExtentInfo, ExtentState, FileError, FileId, ReadOutcome, RpcId, SyncTicket,
    WaitToken, WriteOutcome,
};
use crate::config::{ConfigError, EngineConfig};
use crate::store::{
    AttrStamp, Buf, Extent, Inode, InodeId, Outstanding, PendingSync, PendingTruncate, State, Store,
};

/// One `open` of a file.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub(crate) ino: InodeId,
    /// The first error since the last report, reported by the next `fsync` or `close`.
    pub(crate) error: Option<Nfs3Status>,
    /// Writes are refused with this until `error` has been reported (ENOSPC, EDQUOT, EFBIG).
    pub(crate) refuse: Option<Nfs3Status>,
    pub(crate) closing: bool,
    /// Where the next sequential read starts.
    pub(crate) ra_next_bytes: u64,
    /// Offset of the last read (a read retried after `Wait` is not a new access).
    pub(crate) ra_last_bytes: Option<u64>,
    pub(crate) ra_window_bytes: u64,
    /// The range this open's last read waits for: its clean bytes are not evicted until the
    /// open reads again (or closes), so that a reader woken up finds its data.
    pub(crate) pin: Option<(u64, u64)>,
}

/// The sans-IO write-back engine. See the [crate documentation](crate) for how to drive it.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) store: Store,
    pub(crate) opens: BTreeMap<FileId, OpenFile>,
    pub(crate) by_handle: BTreeMap<FileHandle, InodeId>,
    /// Inodes that may have work: non-clean bytes, syncs, truncations, wanted reads, a kick.
    pub(crate) active: BTreeSet<InodeId>,
    /// Writers told to wait, with the bytes they want to write.
    pub(crate) blocked_writers: Vec<(WaitToken, u64)>,
    pub(crate) completed: BTreeMap<SyncTicket, Result<(), FileError>>,
    pub(crate) events: VecDeque<Event>,
    /// WRITE, COMMIT and SETATTR calls in flight.
    pub(crate) writes_in_flight: usize,
    pub(crate) reads_in_flight: usize,
    pub(crate) now_ms: u64,
    pub(crate) next_inode: u64,
    pub(crate) next_file: u64,
    /// The next application write's version (versions start at 1).
    pub(crate) next_version: u64,
    pub(crate) next_rpc: u64,
    pub(crate) next_unstable_seq: u64,
    pub(crate) next_clean_seq: u64,
    pub(crate) next_token: u64,
    pub(crate) next_ticket: u64,
    /// Where the round-robin over inodes resumes.
    pub(crate) rr_cursor: InodeId,
    pub(crate) stats: EngineStats,
    #[cfg(debug_assertions)]
    pub(crate) inputs: u64,
}

impl Engine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let chunk_bytes = u64::from(config.wsize_bytes);
        Ok(Self {
            config,
            store: Store::new(chunk_bytes),
            opens: BTreeMap::new(),
            by_handle: BTreeMap::new(),
            active: BTreeSet::new(),
            blocked_writers: Vec::new(),
            completed: BTreeMap::new(),
            events: VecDeque::new(),
            writes_in_flight: 0,
            reads_in_flight: 0,
            now_ms: 0,
            next_inode: 1,
            next_file: 1,
            next_version: 1,
            next_rpc: 1,
            next_unstable_seq: 1,
            next_clean_seq: 1,
            next_token: 1,
            next_ticket: 1,
            rr_cursor: 0,
            stats: EngineStats::default(),
            #[cfg(debug_assertions)]
            inputs: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Opens a file with the attributes just fetched from the server (close-to-open: if the
    /// cache holds the file and its size, mtime or ctime changed since the cache last saw
    /// them, its clean bytes are dropped).
    pub fn open(&mut self, handle: FileHandle, attrs: &Fattr, now_ms: u64) -> FileId {
        self.advance(now_ms);
        let ino = match self.by_handle.get(&handle) {
            Some(&ino) => {
                self.revalidate(ino, attrs);
                ino
            }
            None => {
                let ino = self.next_inode;
                self.next_inode += 1;
                self.store
                    .inodes
                    .insert(ino, Inode::new(handle.clone(), attrs));
                self.by_handle.insert(handle, ino);
                ino
            }
        };
        let file = FileId(self.next_file);
        self.next_file += 1;
        self.opens.insert(
            file,
            OpenFile {
                ino,
                error: None,
                refuse: None,
                closing: false,
                ra_next_bytes: 0,
                ra_last_bytes: None,
                ra_window_bytes: 0,
                pin: None,
            },
        );
        self.store.inode_mut(ino).opens.insert(file);
        self.after_input();
        file
    }

    /// Drops clean bytes if the server's attributes changed behind the cache's back.
    fn revalidate(&mut self, ino: InodeId, attrs: &Fattr) {
        let stamp = AttrStamp::from(attrs);
        let inode = self.store.inode(ino);
        if inode.seen == stamp {
            return;
        }
        let clean: Vec<u64> = inode
            .extents
            .iter()
            .filter(|(_, e)| e.state.is_clean())
            .map(|(s, _)| *s)
            .collect();
        for start in clean {
            self.store.remove(ino, start);
        }
        let inode = self.store.inode_mut(ino);
        // With writes or truncations of ours pending, our size is the truth (as Linux keeps
        // i_size while writebacks are pending); else the server's.
        if inode.bytes.nonclean() == 0 && inode.truncates.is_empty() && inode.rpcs_out == 0 {
            inode.size_bytes = attrs.size;
        }
        // Someone else changed the file: only what lies past both sizes is known zero.
        inode.zeros.clear();
        inode
            .zeros
            .insert(attrs.size.max(inode.size_bytes), u64::MAX);
        inode.seen = stamp;
    }

    fn open_file(&self, file: FileId) -> Result<&OpenFile, FileError> {
        match self.opens.get(&file) {
            Some(open) if !open.closing => Ok(open),
            _ => Err(FileError::NotOpen),
        }
    }

    /// Writes `data` at `offset_bytes` into the cache. `Accepted` means reads see the bytes
    /// and a later `fsync` makes them durable (or reports why not). `Blocked` means nothing
    /// was written: the cache is at its bound; retry after the token's [`Event::Wake`].
    /// After `NFS3ERR_NOSPC`, `NFS3ERR_DQUOT` or `NFS3ERR_FBIG` on this file, writes fail
    /// with that status until a `fsync` or `close` has reported it.
    pub fn write(
        &mut self,
        file: FileId,
        offset_bytes: u64,
        data: &[u8],
        now_ms: u64,
    ) -> Result<WriteOutcome, FileError> {
        self.advance(now_ms);
        let open = self.open_file(file)?;
        if let Some(status) = open.refuse {
            return Err(FileError::Status(status));
        }
        let ino = open.ino;
        let len_bytes = data.len() as u64;
        let end = offset_bytes
            .checked_add(len_bytes)
            .ok_or(FileError::OffsetOverflow {
                offset_bytes,
                len_bytes,
            })?;
        if data.is_empty() {
            return Ok(WriteOutcome::Accepted);
        }
        let nonclean = self.store.nonclean_bytes();
        if nonclean > 0 && nonclean + len_bytes > self.config.write_limit_bytes() {
            let token = self.token();
            self.blocked_writers.push((token, len_bytes));
            self.stats.app_writes_blocked += 1;
            self.after_input();
            return Ok(WriteOutcome::Blocked(token));
        }
        let version = self.next_version;
        self.next_version += 1;
        let mut pos = offset_bytes;
        let mut rest = data;
        while !rest.is_empty() {
            let piece_end = end.min(self.store.chunk_end(pos));
            let (piece, tail) = rest.split_at((piece_end - pos) as usize);
            self.write_piece(ino, pos, piece, version);
            pos = piece_end;
            rest = tail;
        }
        self.taint_reads(ino, offset_bytes, end);
        let inode = self.store.inode_mut(ino);
        inode.zeros.remove(offset_bytes, end);
        inode.size_bytes = inode.size_bytes.max(end);
        self.stats.app_writes += 1;
        self.active.insert(ino);
        self.after_input();
        Ok(WriteOutcome::Accepted)
    }

    /// Writes one piece that lies within a chunk: the new bytes become a dirty extent of their
    /// own, whatever state the bytes they replace were in, so a WRITE or COMMIT that carried
    /// the old bytes can no longer retire them. Its `since` is `version`, or older if it
    /// replaces non-clean bytes (it inherits their obligations).
    fn write_piece(&mut self, ino: InodeId, start: u64, data: &[u8], version: u64) {
        let end = start + data.len() as u64;
        // Inside one dirty extent: overwrite in place. Its `since` is older than `version`
        // and stays (min).
        let inode = self.store.inode_mut(ino);
        let containing = inode
            .extents
            .range_mut(..=start)
            .next_back()
            .filter(|(s, ext)| ext.state.is_dirty() && **s + ext.len() >= end);
        if let Some((&s, ext)) = containing {
            let buf = ext.data.make_mut();
            buf[(start - s) as usize..(end - s) as usize].copy_from_slice(data);
            return;
        }
        self.store.split_at(ino, start);
        self.store.split_at(ino, end);
        // The new bytes take over the obligations of the non-clean bytes they replace: a
        // `fsync` that was waiting for those waits for these (else the file's size, or its
        // state as of the `fsync`, could be lost with the superseded WRITE).
        let mut since = version;
        for s in self.store.starts_in(ino, start, end) {
            let old = self.store.remove(ino, s);
            if !old.state.is_clean() {
                since = since.min(old.since);
            }
        }
        // Append to a dirty extent that ends here (same chunk: `start` is not a boundary).
        let left = self
            .store
            .inode(ino)
            .extents
            .range(..start)
            .next_back()
            .filter(|(s, e)| **s + e.len() == start && e.state.is_dirty())
            .map(|(s, _)| *s)
            .filter(|_| !start.is_multiple_of(self.store.chunk_bytes));
        match left {
            Some(left_start) => {
                let mut ext = self.store.remove(ino, left_start);
                ext.data.make_mut().extend_from_slice(data);
                ext.since = ext.since.min(since);
                self.store.insert(ino, left_start, ext);
            }
            None => self.store.insert(
                ino,
                start,
                Extent {
                    state: State::Dirty,
                    since,
                    data: Buf::Mut(BytesMut::from(data)),
                },
            ),
        }
    }

    /// READs in flight must not fill `[start, end)` any more: their data is older.
    pub(crate) fn taint_reads(&mut self, ino: InodeId, start: u64, end: u64) {
        let reads: Vec<RpcId> = self
            .store
            .inode(ino)
            .reads_in_flight
            .iter()
            .copied()
            .collect();
        for rpc in reads {
            if let Some(Outstanding::Read { fillable, .. }) = self.store.rpcs.get_mut(&rpc) {
                fillable.remove(start, end);
            }
        }
    }

    /// Reads up to `len_bytes` at `offset_bytes` from the cache (the application's own writes
    /// included). `Data` is the longest cached prefix of the range: empty only at or past the
    /// end of the file, shorter than asked when the file ends or the rest is not cached yet
    /// (call again for the rest). `Wait` when the first byte is not cached: READs fetch the
    /// range, and its bytes stay cached for this open until it reads again. Sequential readers
    /// get readahead that doubles up to `readahead_max_bytes`.
    pub fn read(
        &mut self,
        file: FileId,
        offset_bytes: u64,
        len_bytes: usize,
        now_ms: u64,
    ) -> Result<ReadOutcome, FileError> {
        self.advance(now_ms);
        let ino = self.open_file(file)?.ino;
        let req_end =
            offset_bytes
                .checked_add(len_bytes as u64)
                .ok_or(FileError::OffsetOverflow {
                    offset_bytes,
                    len_bytes: len_bytes as u64,
                })?;
        let window = self.update_readahead(file, offset_bytes, req_end);
        if let Some(open) = self.opens.get_mut(&file) {
            open.pin = None;
        }
        let size = self.store.inode(ino).size_bytes;
        let end = req_end.min(size);
        if offset_bytes >= end {
            self.after_input();
            return Ok(ReadOutcome::Data(Bytes::new()));
        }
        let gaps = self.gaps(ino, offset_bytes, end);
        if window > 0 {
            self.want(ino, end, end.saturating_add(window).min(size));
        }
        let cached_end = match gaps.first() {
            None => end,
            Some(&(gap_start, _)) => gap_start,
        };
        for &(start, stop) in &gaps {
            self.want(ino, start, stop);
        }
        if cached_end > offset_bytes {
            let data = self.assemble(ino, offset_bytes, cached_end);
            self.after_input();
            return Ok(ReadOutcome::Data(data));
        }
        let inode = self.store.inode_mut(ino);
        let failed = inode
            .read_error
            .filter(|&(_, start, stop)| start < end && offset_bytes < stop);
        if let Some((status, _, _)) = failed {
            inode.read_error = None;
            self.after_input();
            return Err(FileError::Status(status));
        }
        let token = self.token();
        self.store.inode_mut(ino).read_waiters.push(token);
        if let Some(open) = self.opens.get_mut(&file) {
            open.pin = Some((offset_bytes, end));
        }
        self.active.insert(ino);
        self.after_input();
        Ok(ReadOutcome::Wait(token))
    }

    /// Updates the open's readahead state; returns the window to read ahead (0: none).
    fn update_readahead(&mut self, file: FileId, offset_bytes: u64, req_end: u64) -> u64 {
        let initial = self.config.readahead_initial_bytes;
        let max = self.config.readahead_max_bytes;
        let Some(open) = self.opens.get_mut(&file) else {
            return 0;
        };
        if open.ra_last_bytes == Some(offset_bytes) {
            // The same read again (after `Wait`): not a new access.
        } else if offset_bytes == open.ra_next_bytes {
            open.ra_window_bytes = if open.ra_window_bytes == 0 {
                initial
            } else {
                open.ra_window_bytes.saturating_mul(2)
            }
            .min(max);
        } else {
            open.ra_window_bytes = 0;
        }
        open.ra_last_bytes = Some(offset_bytes);
        open.ra_next_bytes = req_end;
        open.ra_window_bytes
    }

    /// The uncached parts of `[start, end)`.
    pub(crate) fn gaps(&self, ino: InodeId, start: u64, end: u64) -> Vec<(u64, u64)> {
        let inode = self.store.inode(ino);
        let mut out = Vec::new();
        let mut pos = start;
        let first = inode
            .extents
            .range(..start)
            .next_back()
            .filter(|(s, e)| **s + e.len() > start)
            .map(|(s, _)| *s)
            .unwrap_or(start);
        for (&s, e) in inode.extents.range(first..end) {
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
    fn assemble(&self, ino: InodeId, start: u64, end: u64) -> Bytes {
        let inode = self.store.inode(ino);
        let starts = self.store.starts_in(ino, start, end);
        if let [only] = starts.as_slice() {
            let ext = &inode.extents[only];
            return ext
                .data
                .bytes_range((start - only) as usize, (end - only) as usize);
        }
        let mut out = BytesMut::with_capacity((end - start) as usize);
        for s in starts {
            let ext = &inode.extents[&s];
            let a = start.max(s) - s;
            let b = end.min(s + ext.len()) - s;
            out.extend_from_slice(&ext.data.as_slice()[a as usize..b as usize]);
        }
        out.freeze()
    }

    /// Asks for `[start, end)` to be read (in whole pages), less what is cached or already
    /// being read.
    pub(crate) fn want(&mut self, ino: InodeId, start: u64, end: u64) {
        let page = u64::from(self.config.page_bytes);
        let size = self.store.inode(ino).size_bytes;
        let start = start / page * page;
        let end = end.div_ceil(page).saturating_mul(page).min(size);
        if start >= end {
            return;
        }
        let in_flight = self.read_ranges_in_flight(ino);
        let mut wanted = Vec::new();
        for (a, b) in self.gaps(ino, start, end) {
            let mut pieces = crate::ranges::RangeSet::new();
            pieces.insert(a, b);
            for &(ra, rb) in &in_flight {
                pieces.remove(ra, rb);
            }
            wanted.extend(pieces.iter());
        }
        let inode = self.store.inode_mut(ino);
        for (a, b) in wanted {
            inode.read_wanted.insert(a, b);
        }
        if !inode.read_wanted.is_empty() {
            self.active.insert(ino);
        }
    }

    /// The ranges READs in flight for `ino` asked for.
    pub(crate) fn read_ranges_in_flight(&self, ino: InodeId) -> Vec<(u64, u64)> {
        self.store
            .inode(ino)
            .reads_in_flight
            .iter()
            .filter_map(|rpc| match self.store.rpcs.get(rpc) {
                Some(Outstanding::Read { offset, count, .. }) => Some((*offset, offset + count)),
                _ => None,
            })
            .collect()
    }

    /// Starts a `fsync` of the file (all opens of its handle): the ticket completes when no
    /// byte written before this call is dirty, in flight or awaiting COMMIT and earlier
    /// truncations are done, with the error recorded for this open file since its last report
    /// (each error is reported once). Bytes rewritten after this call inherit the wait for the
    /// bytes they replaced, and a later truncation that discards such bytes is waited for, so
    /// the file as of this call — its size included — is durable, possibly with newer content.
    /// While it is pending, the engine sends the file's dirty bytes, then a COMMIT.
    pub fn fsync(&mut self, file: FileId, now_ms: u64) -> Result<SyncTicket, FileError> {
        self.advance(now_ms);
        let ino = self.open_file(file)?.ino;
        let ticket = self.sync(ino, file, false);
        Ok(ticket)
    }

    /// Starts a `close`: like `fsync` (close-to-open: flush and commit), then the file is
    /// closed. Its result reports any error not reported yet. The `FileId` is invalid for
    /// every other call from now on.
    pub fn close(&mut self, file: FileId, now_ms: u64) -> Result<SyncTicket, FileError> {
        self.advance(now_ms);
        let ino = self.open_file(file)?.ino;
        if let Some(open) = self.opens.get_mut(&file) {
            open.closing = true;
            open.pin = None;
        }
        let ticket = self.sync(ino, file, true);
        Ok(ticket)
    }

    fn sync(&mut self, ino: InodeId, file: FileId, close: bool) -> SyncTicket {
        let ticket = self.ticket();
        let version = self.next_version - 1;
        self.store.inode_mut(ino).syncs.push_back(PendingSync {
            ticket,
            version,
            file,
            close,
        });
        self.active.insert(ino);
        self.after_input();
        ticket
    }

    /// Truncates (or extends) the file to `size_bytes`. The cache drops what lies past the
    /// new size at once (reads see the new size); the SETATTR is sent only once no WRITE in
    /// flight reaches past it, and WRITEs past it wait for the SETATTR, so no data reappears
    /// past the end of the file. The ticket completes with the SETATTR's result.
    pub fn truncate(
        &mut self,
        file: FileId,
        size_bytes: u64,
        now_ms: u64,
    ) -> Result<SyncTicket, FileError> {
        self.advance(now_ms);
        let ino = self.open_file(file)?.ino;
        let version = self.next_version;
        self.next_version += 1;
        let ticket = self.ticket();
        let old_size = self.store.inode(ino).size_bytes;
        self.store.split_at(ino, size_bytes);
        let mut wait_version = version;
        for s in self.store.starts_in(ino, size_bytes, u64::MAX) {
            let ext = self.store.remove(ino, s);
            if !ext.state.is_clean() {
                wait_version = wait_version.min(ext.since);
            }
        }
        let changed_from = size_bytes.min(old_size);
        self.taint_reads(ino, changed_from, u64::MAX);
        let reads: Vec<RpcId> = self
            .store
            .inode(ino)
            .reads_in_flight
            .iter()
            .copied()
            .collect();
        for rpc in reads {
            if let Some(Outstanding::Read { truncated, .. }) = self.store.rpcs.get_mut(&rpc) {
                *truncated = true;
            }
        }
        let inode = self.store.inode_mut(ino);
        inode.read_wanted.remove(changed_from, u64::MAX);
        inode.size_bytes = size_bytes;
        // Past the new size the file reads as zeros once the SETATTR is done, and no WRITE
        // reaches past it before then.
        inode.zeros.insert(size_bytes, u64::MAX);
        inode.truncates.push_back(PendingTruncate {
            ticket,
            size_bytes,
            version,
            wait_version,
            rpc: None,
        });
        self.active.insert(ino);
        self.after_input();
        Ok(ticket)
    }

    /// The result of a `fsync`, `close` or `truncate`, once (`None` while pending, and after
    /// it has been taken).
    pub fn poll_sync(&mut self, ticket: SyncTicket) -> Option<Result<(), FileError>> {
        self.completed.remove(&ticket)
    }

    /// The size the application sees (the server's, grown by cached writes, set by
    /// truncation).
    pub fn size_bytes(&self, file: FileId) -> Result<u64, FileError> {
        let open = self.opens.get(&file).ok_or(FileError::NotOpen)?;
        Ok(self.store.inode(open.ino).size_bytes)
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the engine next wants [`Engine::handle_timeout`] (a back-off ending, dirty bytes
    /// expiring), in the same clock as the `now_ms` arguments.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let expire = self.config.dirty_expire_ms;
        self.active
            .iter()
            .filter_map(|ino| {
                let inode = self.store.inode(*ino);
                let retry = inode.retry_at_ms;
                let expiry = match (inode.kick_version, inode.nonclean_since_ms) {
                    (None, Some(since)) => Some(since.saturating_add(expire)),
                    _ => None,
                };
                retry.into_iter().chain(expiry).min()
            })
            .min()
    }

    /// Time passed: back-offs end, old dirty bytes are flushed.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.advance(now_ms);
        self.after_input();
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            dirty_bytes: self.store.totals.dirty,
            inflight_bytes: self.store.totals.inflight,
            unstable_bytes: self.store.totals.unstable,
            clean_bytes: self.store.totals.clean,
            orphan_bytes: self.store.orphan_bytes,
            extents: self.store.extent_count,
            ..self.stats
        }
    }

    /// The cached extents of an open (or closing) file, in order, for inspection.
    pub fn extents(&self, file: FileId) -> Result<Vec<ExtentInfo>, FileError> {
        let open = self.opens.get(&file).ok_or(FileError::NotOpen)?;
        let inode = self.store.inode(open.ino);
        Ok(inode
            .extents
            .iter()
            .map(|(&start, ext)| ExtentInfo {
                offset_bytes: start,
                data: ext.data.bytes_range(0, ext.data.len()),
                state: match ext.state {
                    State::Dirty => ExtentState::Dirty,
                    State::InFlight { rpc } => ExtentState::InFlight(rpc),
                    State::Unstable { verf, .. } => ExtentState::Unstable(verf),
                    State::Clean { .. } => ExtentState::Clean,
                },
                since_version: ext.since,
            })
            .collect())
    }

    /// The files holding bytes not known durable on the server (dirty, in flight or awaiting
    /// COMMIT), with how many, in handle order: what would be lost if the engine stopped now.
    pub fn undurable_files(&self) -> Vec<(FileHandle, u64)> {
        let mut files: Vec<(FileHandle, u64)> = self
            .store
            .inodes
            .values()
            .filter(|inode| inode.bytes.nonclean() > 0)
            .map(|inode| (inode.handle.clone(), inode.bytes.nonclean()))
            .collect();
        files.sort();
        files
    }

    /// The files open and not being closed, in order.
    pub fn open_files(&self) -> Vec<FileId> {
        self.opens
            .iter()
            .filter(|(_, open)| !open.closing)
            .map(|(&file, _)| file)
            .collect()
    }

    /// True when the engine holds this handle (open, cached or with work pending).
    pub fn holds(&self, handle: &FileHandle) -> bool {
        self.by_handle.contains_key(handle)
    }

    /// True while the file uses FILE_SYNC writes because its verifiers kept mismatching.
    pub fn is_file_sync(&self, file: FileId) -> Result<bool, FileError> {
        let open = self.opens.get(&file).ok_or(FileError::NotOpen)?;
        Ok(self.store.inode(open.ino).file_sync)
    }

    // ---- bookkeeping -------------------------------------------------------------------

    pub(crate) fn token(&mut self) -> WaitToken {
        let token = WaitToken(self.next_token);
        self.next_token += 1;
        token
    }

    fn ticket(&mut self) -> SyncTicket {
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        ticket
    }

    pub(crate) fn rpc_id(&mut self) -> RpcId {
        let id = RpcId(self.next_rpc);
        self.next_rpc += 1;
        id
    }

    pub(crate) fn clean_seq(&mut self) -> u64 {
        let seq = self.next_clean_seq;
        self.next_clean_seq += 1;
        seq
    }

    /// Moves the clock (never backwards): back-offs that ended are cleared; files whose
    /// non-clean bytes are older than `dirty_expire_ms` get a flush target.
    pub(crate) fn advance(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        let expire = self.config.dirty_expire_ms;
        let last_version = self.next_version - 1;
        for ino in self.active.iter() {
            let Some(inode) = self.store.inodes.get_mut(ino) else {
                continue;
            };
            if inode.retry_at_ms.is_some_and(|at| at <= now) {
                inode.retry_at_ms = None;
            }
            if inode.kick_version.is_none()
                && inode
                    .nonclean_since_ms
                    .is_some_and(|since| since.saturating_add(expire) <= now)
            {
                inode.kick_version = Some(last_version);
                inode.nonclean_since_ms = Some(now);
            }
        }
    }

    /// Schedules a retry of the file's calls after a back-off that doubles.
    pub(crate) fn backoff(&mut self, ino: InodeId) {
        let initial = self.config.retry_initial_ms;
        let max = self.config.retry_max_ms;
        let now = self.now_ms;
        let inode = self.store.inode_mut(ino);
        inode.backoff_ms = if inode.backoff_ms == 0 {
            initial
        } else {
            (inode.backoff_ms * 2).min(max)
        };
        inode.retry_at_ms = Some(now + inode.backoff_ms);
    }

    pub(crate) fn reset_backoff(&mut self, ino: InodeId) {
        let inode = self.store.inode_mut(ino);
        inode.backoff_ms = 0;
        inode.retry_at_ms = None;
    }

    /// Records a failed WRITE, COMMIT or SETATTR for every open of the file: each reports it
    /// once, at its next `fsync` or `close`. The first error since the last report wins.
    pub(crate) fn record_error(&mut self, ino: InodeId, status: Nfs3Status) {
        tracing::warn!(
            ?status,
            "write-back failed; reporting at the next fsync or close"
        );
        let sticky = matches!(
            status,
            Nfs3Status::NoSpc | Nfs3Status::DQuot | Nfs3Status::FBig
        );
        let files: Vec<FileId> = self.store.inode(ino).opens.iter().copied().collect();
        for file in files {
            if let Some(open) = self.opens.get_mut(&file) {
                open.error.get_or_insert(status);
                if sticky {
                    open.refuse.get_or_insert(status);
                }
            }
        }
    }

    pub(crate) fn complete(&mut self, ticket: SyncTicket, result: Result<(), FileError>) {
        self.completed.insert(ticket, result);
        self.events.push_back(Event::SyncDone(ticket));
    }

    pub(crate) fn wake_readers(&mut self, ino: InodeId) {
        let waiters = std::mem::take(&mut self.store.inode_mut(ino).read_waiters);
        self.events.extend(waiters.into_iter().map(Event::Wake));
    }

    /// Completes the syncs whose writes are all durable, clears a satisfied kick, tracks the
    /// age of non-clean bytes, and forgets idle files.
    fn settle(&mut self, ino: InodeId) {
        let now = self.now_ms;
        let Some(inode) = self.store.inodes.get_mut(&ino) else {
            self.active.remove(&ino);
            return;
        };
        let min_nonclean = inode.min_nonclean_since();
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
        if inode
            .kick_version
            .is_some_and(|k| min_nonclean.is_none_or(|v| v > k))
        {
            inode.kick_version = None;
        }
        if min_nonclean.is_none() {
            inode.nonclean_since_ms = None;
        } else if inode.nonclean_since_ms.is_none() {
            inode.nonclean_since_ms = Some(now);
        }
        for sync in done {
            let error = self.opens.get_mut(&sync.file).and_then(|open| {
                open.refuse = None;
                open.error.take()
            });
            if sync.close {
                self.opens.remove(&sync.file);
                self.store.inode_mut(ino).opens.remove(&sync.file);
            }
            self.complete(
                sync.ticket,
                error.map_or(Ok(()), |s| Err(FileError::Status(s))),
            );
        }
        let inode = self.store.inode(ino);
        let busy = inode.bytes.nonclean() > 0
            || !inode.syncs.is_empty()
            || !inode.truncates.is_empty()
            || !inode.read_wanted.is_empty()
            || inode.kick_version.is_some();
        if !busy {
            self.active.remove(&ino);
        }
        if inode.is_idle() {
            self.forget_inode(ino);
        }
    }

    fn forget_inode(&mut self, ino: InodeId) {
        if let Some(inode) = self.store.inodes.remove(&ino) {
            self.by_handle.remove(&inode.handle);
        }
        self.active.remove(&ino);
    }

    /// Evicts the oldest clean extents until the cache is within its bound, sparing the
    /// ranges readers were told to wait for.
    fn evict_to_bound(&mut self) {
        if self.store.total_bytes() <= self.config.memory_bound_bytes {
            return;
        }
        let pins: Vec<(InodeId, u64, u64)> = self
            .opens
            .values()
            .filter_map(|open| open.pin.map(|(start, end)| (open.ino, start, end)))
            .collect();
        let mut after: Option<(u64, InodeId, u64)> = None;
        while self.store.total_bytes() > self.config.memory_bound_bytes {
            let next = match after {
                None => self.store.clean_fifo.iter().next(),
                Some(key) => self
                    .store
                    .clean_fifo
                    .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                    .next(),
            };
            let Some(&key) = next else {
                break;
            };
            let (_, ino, start) = key;
            let end = start + self.store.inode(ino).extents[&start].len();
            if pins
                .iter()
                .any(|&(i, a, b)| i == ino && a < end && start < b)
            {
                after = Some(key);
                continue;
            }
            self.store.remove(ino, start);
            if self.store.inode(ino).is_idle() {
                self.forget_inode(ino);
            }
        }
    }

    /// Wakes the blocked writers whose write now fits under the write limit (exactly the
    /// negation of the condition that blocked them, so a woken writer is accepted unless
    /// someone else filled the room first).
    fn wake_writers(&mut self) {
        if self.blocked_writers.is_empty() {
            return;
        }
        let limit = self.config.write_limit_bytes();
        let nonclean = self.store.nonclean_bytes();
        let mut still = Vec::new();
        for (token, len_bytes) in std::mem::take(&mut self.blocked_writers) {
            if nonclean == 0 || nonclean + len_bytes <= limit {
                self.events.push_back(Event::Wake(token));
            } else {
                still.push((token, len_bytes));
            }
        }
        self.blocked_writers = still;
    }

    /// What every input ends with.
    pub(crate) fn after_input(&mut self) {
        self.evict_to_bound();
        let inodes: Vec<InodeId> = self.active.iter().copied().collect();
        for ino in inodes {
            self.settle(ino);
        }
        self.wake_writers();
        #[cfg(debug_assertions)]
        {
            self.inputs += 1;
            if self.store.extent_count <= 4096 || self.inputs.is_multiple_of(1024) {
                if let Err(violation) = self.check_invariants() {
                    panic!("nfsio-cache: {violation}");
                }
            }
        }
    }
}
