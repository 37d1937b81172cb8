//! The application's inputs that change a file: open (with close-to-open revalidation),
//! write, truncate, and the syncs (`fsync`, `close`).
//!
//! A write never touches bytes a call carries: its bytes become a dirty extent of their own,
//! which inherits the obligations (the oldest `since`) of the non-clean bytes it replaces, so
//! a `fsync` waiting for those now waits for these.

use bytes::BytesMut;
use nfsio_proto::nfs3::{Fattr, FileHandle};

use super::{Engine, OpenFile};
use crate::api::{FileError, FileId, OwnedWrite, SyncTicket, WriteOutcome};
use crate::extents::Removal;
use crate::inode_id::InodeId;
use crate::store::{AttrStamp, PendingSync, PendingTruncate};

/// An application write's bytes: borrowed (copied into the cache) or a buffer the cache may
/// keep.
enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(BytesMut),
}

impl Payload<'_> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Borrowed(data) => data,
            Payload::Owned(buf) => buf,
        }
    }

    /// The bytes as a buffer of their own: the caller's, or a copy.
    fn into_buf(self) -> BytesMut {
        match self {
            Payload::Borrowed(data) => BytesMut::from(data),
            Payload::Owned(buf) => buf,
        }
    }

    /// The caller's buffer, to give back.
    fn into_owned(self) -> Option<BytesMut> {
        match self {
            Payload::Borrowed(_) => None,
            Payload::Owned(buf) => Some(buf),
        }
    }
}

/// A dirty extent shorter than this grows in place when appended to (copying it is cheaper
/// than the index work of another extent); a longer one is followed by a new extent.
const GROW_IN_PLACE_BYTES: u64 = 32 << 10;

impl Engine {
    /// Opens a file with the attributes just fetched from the server (close-to-open: if the
    /// cache holds the file and its size, mtime or ctime changed since the cache last saw
    /// them, its clean bytes are dropped).
    pub fn open(&mut self, handle: FileHandle, attrs: &Fattr, now_ms: u64) -> FileId {
        self.advance(now_ms);
        let ino = match self.store.lookup(&handle) {
            Some(ino) => {
                self.revalidate(ino, attrs);
                ino
            }
            None => self.store.create(handle, attrs),
        };
        let file = FileId(self.next_file);
        self.next_file += 1;
        self.opens.insert(file, OpenFile::new(ino));
        self.store.inode_mut(ino).opens.insert(file);
        self.after_input();
        file
    }

    /// Revalidates an open file against attributes just fetched from the server, as an
    /// open does (a change since the cache last saw the file drops its clean bytes and,
    /// with nothing of ours pending, takes the server's size): for a caller that learnt of
    /// a change without opening the file again (an O_APPEND write, another client's change
    /// seen in a reply).
    pub fn revalidate_open(
        &mut self,
        file: FileId,
        attrs: &Fattr,
        now_ms: u64,
    ) -> Result<(), FileError> {
        self.advance(now_ms);
        let ino = self.open_file(file)?.ino;
        self.revalidate(ino, attrs);
        self.after_input();
        Ok(())
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
            .filter(|(_, e)| e.state().is_clean())
            .map(|(s, _)| *s)
            .collect();
        for start in clean {
            self.store.remove(ino, start, Removal::Stale);
        }
        let inode = self.store.inode_mut(ino);
        // With writes or truncations of ours pending, our size is the truth (as Linux keeps
        // i_size while writebacks are pending); else the server's.
        if inode.extents.bytes().nonclean() == 0
            && inode.truncates.is_empty()
            && inode.calls.is_empty()
        {
            inode.size_bytes = attrs.size;
        }
        // Someone else changed the file: only what lies past both sizes is known zero.
        inode.zeros.clear();
        inode
            .zeros
            .insert(attrs.size.max(inode.size_bytes), u64::MAX);
        inode.seen = stamp;
    }

    /// Writes `data` at `offset_bytes` into the cache. `Accepted` means reads see the bytes
    /// and a later `fsync` makes them durable (or reports why not). `Blocked` means nothing
    /// was written: the cache is at its bound; retry after the token's
    /// [`Event::Wake`](crate::Event::Wake). After `NFS3ERR_NOSPC`, `NFS3ERR_DQUOT` or
    /// `NFS3ERR_FBIG` on this file, writes fail with that status until a `fsync` or `close`
    /// has reported it.
    pub fn write(
        &mut self,
        file: FileId,
        offset_bytes: u64,
        data: &[u8],
        now_ms: u64,
    ) -> Result<WriteOutcome, FileError> {
        let (outcome, _) =
            self.write_payload(file, offset_bytes, Payload::Borrowed(data), now_ms)?;
        Ok(outcome)
    }

    /// [`Engine::write`] of a buffer the cache may keep: a write that lies within one chunk
    /// (one wsize WRITE) and replaces or starts an extent becomes that extent without a copy,
    /// and a WRITE of the whole chunk sends this very buffer. When the cache is full the
    /// buffer comes back with the token.
    pub fn write_owned(
        &mut self,
        file: FileId,
        offset_bytes: u64,
        data: BytesMut,
        now_ms: u64,
    ) -> Result<OwnedWrite, FileError> {
        match self.write_payload(file, offset_bytes, Payload::Owned(data), now_ms)? {
            (WriteOutcome::Accepted, _) => Ok(OwnedWrite::Accepted),
            (WriteOutcome::Blocked(token), back) => {
                Ok(OwnedWrite::Blocked(token, back.unwrap_or_default()))
            }
        }
    }

    /// The one body of both writes; a blocked owned write gives its buffer back.
    fn write_payload(
        &mut self,
        file: FileId,
        offset_bytes: u64,
        data: Payload<'_>,
        now_ms: u64,
    ) -> Result<(WriteOutcome, Option<BytesMut>), FileError> {
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
            return Ok((WriteOutcome::Accepted, None));
        }
        let nonclean = self.nonclean_bytes();
        if nonclean > 0 && nonclean + len_bytes > self.config.write_limit_bytes() {
            let token = self.outbox.block_writer(len_bytes, None);
            self.stats.app_writes_blocked += 1;
            self.after_input();
            return Ok((WriteOutcome::Blocked(token), data.into_owned()));
        }
        let held = self.store.inode(ino).extents.bytes().nonclean();
        if self.is_stream(ino) && held > 0 && held + len_bytes > self.config.streaming_window_bytes
        {
            let token = self.outbox.block_writer(len_bytes, Some(ino));
            self.stats.stream_writes_blocked += 1;
            self.after_input();
            return Ok((WriteOutcome::Blocked(token), data.into_owned()));
        }
        let version = self.new_version();
        if end <= self.store.index().chunk_end(offset_bytes) {
            // Within one chunk: one piece, the caller's buffer if it gave one.
            self.write_piece(ino, offset_bytes, data, version);
        } else {
            let mut pos = offset_bytes;
            let mut rest = data.as_slice();
            while !rest.is_empty() {
                let piece_end = end.min(self.store.index().chunk_end(pos));
                let (piece, tail) = rest.split_at((piece_end - pos) as usize);
                self.write_piece(ino, pos, Payload::Borrowed(piece), version);
                pos = piece_end;
                rest = tail;
            }
        }
        self.taint_reads(ino, offset_bytes, end);
        // The server's zeros stay zeros until a WRITE carries these bytes (the WRITE takes
        // them out of `zeros`); until then the cache holds the bytes, and only uncached bytes
        // are ever looked up in `zeros`.
        let inode = self.store.inode_mut(ino);
        inode.size_bytes = inode.size_bytes.max(end);
        inode.stream.note_write(offset_bytes, len_bytes);
        self.stats.app_writes += 1;
        self.activate(ino);
        self.after_input();
        Ok((WriteOutcome::Accepted, None))
    }

    /// Writes one piece that lies within a chunk: the new bytes become a dirty extent of their
    /// own, whatever state the bytes they replace were in, so a WRITE or COMMIT that carried
    /// the old bytes can no longer retire them. Its `since` is `version`, or older if it
    /// replaces non-clean bytes (it inherits their obligations).
    fn write_piece(&mut self, ino: InodeId, start: u64, data: Payload<'_>, version: u64) {
        let end = start + data.len() as u64;
        let chunk_bytes = self.store.index().chunk_bytes();
        // The last extent that starts before `end` tells the common cases apart with one
        // lookup: it holds all of `[start, end)`, or nothing of it is cached.
        let last = self
            .store
            .inode(ino)
            .extents
            .range(..end)
            .next_back()
            .map(|(s, ext)| (*s, *s + ext.len(), ext.state().is_dirty()));
        match last {
            // Inside one dirty extent: overwrite in place. Its `since` is older than
            // `version` and stays (min).
            Some((s, ext_end, true)) if s <= start && ext_end >= end => {
                self.store.overwrite_dirty(ino, s, start, data.as_slice());
                self.assert_written(ino, start, end, version);
                return;
            }
            // Something cached in `[start, end)`: the general case below.
            Some((_, ext_end, _)) if ext_end > start => {}
            // Nothing cached there: nothing superseded. Append to a dirty extent that ends
            // here in the same chunk, or start one.
            _ => {
                let left = last
                    .filter(|&(_, ext_end, dirty)| dirty && ext_end == start)
                    .filter(|_| !start.is_multiple_of(chunk_bytes))
                    .map(|(s, _, _)| s);
                self.append_or_start(ino, left, start, data, version);
                self.assert_written(ino, start, end, version);
                return;
            }
        }
        self.store.split_at(ino, start);
        self.store.split_at(ino, end);
        // The new bytes take over the obligations of the non-clean bytes they replace: a
        // `fsync` that was waiting for those waits for these (else the file's size, or its
        // state as of the `fsync`, could be lost with the superseded WRITE).
        let mut since = version;
        for s in self.store.inode(ino).extents.starts_in(start, end) {
            let old = self.store.remove(ino, s, Removal::Superseded);
            if !old.state().is_clean() {
                since = since.min(old.since());
            }
        }
        // Append to a dirty extent that ends here (same chunk: `start` is not a boundary).
        let left = self
            .store
            .inode(ino)
            .extents
            .range(..start)
            .next_back()
            .filter(|(s, e)| **s + e.len() == start && e.state().is_dirty())
            .map(|(s, _)| *s)
            .filter(|_| !start.is_multiple_of(chunk_bytes));
        self.append_or_start(ino, left, start, data, since);
        self.assert_written(ino, start, end, version);
    }

    /// Puts a piece's bytes at `start`, where nothing is cached, owing `since`: appended to
    /// the dirty extent at `left` (which ends at `start`, in the same chunk) when its buffer
    /// has room for them or is still short (below [`GROW_IN_PLACE_BYTES`]), else as a dirty
    /// extent of their own. A copied piece that follows a dirty extent gets a buffer with room
    /// for twice what that extent or the piece holds (within the chunk), so a long run of
    /// appends grows in extents that double and no byte of it is copied twice (growing one
    /// buffer would copy the run at every doubling). The spare room is at most twice the
    /// bytes before it, as a doubling buffer's would be, and is given back when the extent is
    /// sent ([`Buf::freeze`](crate::buf::Buf::freeze)).
    fn append_or_start(
        &mut self,
        ino: InodeId,
        left: Option<u64>,
        start: u64,
        data: Payload<'_>,
        since: u64,
    ) {
        let len = data.len();
        let left = left.map(|s| (s, self.store.inode(ino).extents.at(s)));
        if let Some((left_start, ext)) = left
            && (ext.spare_capacity() >= len || ext.len() < GROW_IN_PLACE_BYTES)
        {
            self.store
                .append_dirty(ino, left_start, data.as_slice(), since);
            return;
        }
        let buf = match (data, left) {
            (Payload::Borrowed(bytes), Some((_, ext))) => {
                let room = self.store.index().chunk_end(start) - start;
                let capacity = ext.len().max(len as u64).saturating_mul(2).min(room);
                let mut buf = BytesMut::with_capacity(capacity.max(len as u64) as usize);
                buf.extend_from_slice(bytes);
                buf
            }
            (data, _) => data.into_buf(),
        };
        self.store.insert_dirty(ino, start, since, buf);
    }

    /// The postcondition of a write piece (release builds too, O(log extents)): one dirty
    /// extent holds `[start, end)` and owes at most `version`, so no call can retire the new
    /// bytes and a `fsync` from now on waits for them.
    fn assert_written(&self, ino: InodeId, start: u64, end: u64, version: u64) {
        let holder = self.store.inode(ino).extents.range(..=start).next_back();
        assert!(
            holder.is_some_and(|(s, e)| {
                e.state().is_dirty() && *s + e.len() >= end && e.since() <= version
            }),
            "inode {ino}: written bytes [{start}, {end}) are not one dirty extent"
        );
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
        let ticket = self.outbox.ticket();
        let version = self.next_version - 1;
        self.store.inode_mut(ino).syncs.push_back(PendingSync {
            ticket,
            version,
            file,
            close,
        });
        self.activate(ino);
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
        let version = self.new_version();
        let ticket = self.outbox.ticket();
        let old_size = self.store.inode(ino).size_bytes;
        self.store.split_at(ino, size_bytes);
        let mut wait_version = version;
        for s in self
            .store
            .inode(ino)
            .extents
            .starts_in(size_bytes, u64::MAX)
        {
            let ext = self.store.remove(ino, s, Removal::Truncated);
            if !ext.state().is_clean() {
                wait_version = wait_version.min(ext.since());
            }
        }
        let changed_from = size_bytes.min(old_size);
        self.taint_reads(ino, changed_from, u64::MAX);
        self.calls.truncate_reads(&self.store.inode(ino).calls);
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
        self.activate(ino);
        self.after_input();
        Ok(ticket)
    }
}
