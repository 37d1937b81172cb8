//! Which call to send next, and the snapshot each call carries.
//!
//! Priorities, highest first: a SETATTR whose truncation no longer waits for a WRITE; a COMMIT
//! (threshold reached, a `fsync` whose WRITEs are all answered, memory pressure); WRITEs for
//! files being synced (everything dirty, in offset order); background WRITEs (the fullest
//! chunk first: only full, aligned chunks until memory pressure, then anything); READs.
//!
//! A WRITE is built from the dirty extents of one chunk (so never more than wsize), contiguous
//! or joined across short runs of bytes whose server content is known (clean cached bytes,
//! known zeros: never across unknown bytes), stopping at any byte that overlaps a WRITE still
//! in flight: two
//! overlapping WRITEs with different data are never in flight together, because a server may
//! apply concurrent WRITEs in any order. The WRITE's payload becomes the extents' bytes (they
//! are re-pointed at it), so the in-flight state *is* the snapshot, and a later application
//! write to those bytes creates a new dirty extent instead of touching it.

use bytes::BytesMut;
use nfsio_proto::nfs3::StableHow;

use crate::api::{Op, Transmit};
use crate::engine::Engine;
use crate::ranges::RangeSet;
use crate::store::{Buf, Extent, InodeId, Outstanding, State};

impl Engine {
    /// The next call to send, if any (none when nothing needs sending or the in-flight limits
    /// are reached). Call until `None` after every input.
    pub fn poll_transmit(&mut self, now_ms: u64) -> Option<Transmit> {
        self.advance(now_ms);
        let transmit = self.next_transmit();
        if transmit.is_some() {
            self.after_input();
        }
        transmit
    }

    /// Active inodes, starting after the last one served (round robin).
    fn rotation(&self) -> Vec<InodeId> {
        let cursor = self.rr_cursor;
        self.active
            .range(cursor..)
            .chain(self.active.range(..cursor))
            .copied()
            .collect()
    }

    fn next_transmit(&mut self) -> Option<Transmit> {
        let inodes = self.rotation();
        if self.writes_in_flight < self.config.max_inflight_writes {
            for &ino in &inodes {
                if let Some(t) = self.try_setattr(ino) {
                    return Some(t);
                }
            }
            for &ino in &inodes {
                if let Some(t) = self.try_commit(ino) {
                    return Some(t);
                }
            }
            for &ino in &inodes {
                if let Some(t) = self.try_flush_all(ino) {
                    self.rr_cursor = ino + 1;
                    return Some(t);
                }
            }
            if let Some(t) = self.try_background() {
                return Some(t);
            }
        }
        if self.reads_in_flight < self.config.max_inflight_reads {
            for &ino in &inodes {
                if let Some(t) = self.try_read(ino) {
                    return Some(t);
                }
            }
        }
        None
    }

    /// Memory pressure: writers are blocked, or the non-clean bytes near the write limit.
    pub(crate) fn under_pressure(&self) -> bool {
        !self.blocked_writers.is_empty()
            || self.store.nonclean_bytes() >= self.config.pressure_bytes()
    }

    fn try_setattr(&mut self, ino: InodeId) -> Option<Transmit> {
        let inode = self.store.inode(ino);
        if inode.in_backoff(self.now_ms) {
            return None;
        }
        let truncate = inode.truncates.front()?;
        if truncate.rpc.is_some() || inode.inflight_write_past(truncate.size_bytes) {
            return None;
        }
        let size_bytes = truncate.size_bytes;
        let handle = inode.handle.clone();
        let id = self.rpc_id();
        self.store.add_rpc(id, Outstanding::Setattr { ino });
        if let Some(front) = self.store.inode_mut(ino).truncates.front_mut() {
            front.rpc = Some(id);
        }
        self.writes_in_flight += 1;
        self.stats.setattrs_sent += 1;
        Some(Transmit {
            id,
            handle,
            op: Op::Setattr { size_bytes },
        })
    }

    fn try_commit(&mut self, ino: InodeId) -> Option<Transmit> {
        let inode = self.store.inode(ino);
        if inode.in_backoff(self.now_ms)
            || inode.commit_in_flight.is_some()
            || inode.bytes.unstable == 0
        {
            return None;
        }
        let threshold = inode.bytes.unstable >= self.config.commit_threshold_bytes;
        // A sync (or expiry) whose WRITEs are all answered and that still has unstable bytes.
        let target = inode.flush_target().is_some_and(|t| {
            inode.min_unstable_since().is_some_and(|u| u <= t)
                && inode.min_pending_since().is_none_or(|p| p > t)
        });
        if !(threshold || target || self.under_pressure()) {
            return None;
        }
        let mut lo = u64::MAX;
        let mut hi = 0;
        for &(_, start) in &inode.unstable_by_seq {
            lo = lo.min(start);
            hi = hi.max(start + inode.extents[&start].len());
        }
        let count_bytes = u32::try_from(hi - lo).unwrap_or(0);
        let handle = inode.handle.clone();
        let upto_seq = self.next_unstable_seq - 1;
        let id = self.rpc_id();
        self.store
            .add_rpc(id, Outstanding::Commit { ino, upto_seq });
        self.store.inode_mut(ino).commit_in_flight = Some(id);
        self.writes_in_flight += 1;
        self.stats.commits_sent += 1;
        Some(Transmit {
            id,
            handle,
            op: Op::Commit {
                offset_bytes: lo,
                count_bytes,
            },
        })
    }

    /// A file being synced (or whose dirty bytes expired): send its dirty bytes, in offset
    /// order from where the last WRITE ended.
    fn try_flush_all(&mut self, ino: InodeId) -> Option<Transmit> {
        let inode = self.store.inode(ino);
        if inode.in_backoff(self.now_ms)
            || inode.flush_target().is_none()
            || inode.dirty_starts.is_empty()
        {
            return None;
        }
        let start = self.find_sendable(ino, inode.flush_cursor, 0, u64::MAX)?;
        Some(self.build_write(ino, start))
    }

    /// Background flushing: once the dirty bytes reach `background_flush_bytes`, full chunks
    /// (one aligned wsize WRITE each), fullest first; under memory pressure, any chunk,
    /// fullest first.
    fn try_background(&mut self) -> Option<Transmit> {
        let pressure = self.under_pressure();
        if self.store.totals.dirty < self.config.background_flush_bytes && !pressure {
            return None;
        }
        let chunk_bytes = self.store.chunk_bytes;
        let mut found = None;
        for &(dirty, ino, chunk) in self.store.chunks_by_dirty.iter().rev() {
            if !pressure && dirty < chunk_bytes {
                break;
            }
            if self.store.inode(ino).in_backoff(self.now_ms) {
                continue;
            }
            let lo = chunk * chunk_bytes;
            if let Some(start) = self.find_sendable(ino, lo, lo, lo + chunk_bytes) {
                found = Some((ino, start));
                break;
            }
        }
        let (ino, start) = found?;
        Some(self.build_write(ino, start))
    }

    /// The first dirty extent in `[lo, hi)`, searching from `from` and wrapping, that can be
    /// sent now: it overlaps no WRITE in flight and does not reach past a pending truncation.
    fn find_sendable(&self, ino: InodeId, from: u64, lo: u64, hi: u64) -> Option<u64> {
        let inode = self.store.inode(ino);
        let hold = inode.write_hold_bytes();
        let from = from.clamp(lo, hi);
        inode
            .dirty_starts
            .range(from..hi)
            .chain(inode.dirty_starts.range(lo..from))
            .copied()
            .find(|&s| {
                let end = s + inode.extents[&s].len();
                end <= hold && inode.inflight_write_overlapping(s, end).is_none()
            })
    }

    /// Builds the WRITE that starts at the dirty extent at `start` and takes the sendable
    /// dirty extents after it, within the chunk. Dirty extents separated by bytes whose
    /// content on the server is known — clean cached extents, or a range the server holds as
    /// zeros — are joined into one WRITE that carries those bytes too, as long as each such
    /// bridge is at most `bridge_gap_bytes` (one WRITE instead of two; the bridged bytes
    /// rewrite what the server already has, so neither a reply nor a crash can make them
    /// wrong).
    fn build_write(&mut self, ino: InodeId, start: u64) -> Transmit {
        /// A piece of the WRITE's payload.
        enum Piece {
            Dirty(u64),
            Clean(u64),
            Zeros(u64, u64),
        }
        let chunk_end = self.store.chunk_end(start);
        let bridge_max = self.config.bridge_gap_bytes;
        let inode = self.store.inode(ino);
        let hold = inode.write_hold_bytes();
        let sendable =
            |s: u64, e: u64| e <= hold && inode.inflight_write_overlapping(s, e).is_none();
        let mut pieces: Vec<Piece> = Vec::new();
        // Pieces up to the last dirty one, and where it ends.
        let mut keep = 0;
        let mut end = start;
        let mut pos = start;
        // Bytes since the last dirty piece (the bridge being built).
        let mut bridge = 0;
        for (&s, ext) in inode.extents.range(start..chunk_end) {
            let ext_end = s + ext.len();
            if s != pos {
                // Uncached bytes: bridgeable only when known zeros on the server.
                bridge += s - pos;
                if bridge > bridge_max
                    || !inode.zeros.contains(pos, s)
                    || inode.inflight_write_overlapping(pos, s).is_some()
                {
                    break;
                }
                pieces.push(Piece::Zeros(pos, s));
            }
            if ext.state.is_dirty() {
                if !sendable(s, ext_end) {
                    break;
                }
                pieces.push(Piece::Dirty(s));
                keep = pieces.len();
                end = ext_end;
                bridge = 0;
            } else if ext.state.is_clean() {
                bridge += ext.len();
                if bridge > bridge_max || !sendable(s, ext_end) {
                    break;
                }
                pieces.push(Piece::Clean(s));
            } else {
                break;
            }
            pos = ext_end;
        }
        pieces.truncate(keep);
        assert!(
            matches!(pieces.first(), Some(Piece::Dirty(s)) if *s == start),
            "build_write at a start that cannot be sent"
        );
        let len = end - start;
        let dirty_len: u64 = pieces
            .iter()
            .map(|p| match p {
                Piece::Dirty(s) => inode.extents[s].len(),
                _ => 0,
            })
            .sum();
        // A flush that is the file's only unfinished business goes FILE_SYNC: no COMMIT.
        let alone = inode.bytes.dirty == dirty_len
            && inode.bytes.inflight == 0
            && inode.bytes.unstable == 0
            && inode.inflight_writes.is_empty()
            && inode.commit_in_flight.is_none();
        let stable = if inode.file_sync || (alone && inode.flush_target().is_some()) {
            StableHow::FileSync
        } else {
            StableHow::Unstable
        };
        let handle = inode.handle.clone();
        let mut sinces = Vec::with_capacity(pieces.len());
        let data = if let [Piece::Dirty(s)] = pieces.as_slice() {
            let ext = self.store.remove(ino, *s);
            sinces.push((*s, ext.len(), ext.since));
            ext.data.into_bytes()
        } else {
            let mut buf = BytesMut::with_capacity(len as usize);
            for piece in &pieces {
                match *piece {
                    Piece::Dirty(s) => {
                        let ext = self.store.remove(ino, s);
                        sinces.push((s, ext.len(), ext.since));
                        buf.extend_from_slice(ext.data.as_slice());
                    }
                    Piece::Clean(s) => {
                        buf.extend_from_slice(self.store.inode(ino).extents[&s].data.as_slice());
                    }
                    Piece::Zeros(a, b) => buf.resize(buf.len() + (b - a) as usize, 0),
                }
            }
            buf.freeze()
        };
        debug_assert_eq!(data.len() as u64, len, "the payload covers the WRITE");
        let id = self.rpc_id();
        self.store.add_rpc(
            id,
            Outstanding::Write {
                ino,
                offset: start,
                data: data.clone(),
                stable,
                live_bytes: 0,
            },
        );
        for (s, ext_len, since) in sinces {
            let at = (s - start) as usize;
            self.store.insert(
                ino,
                s,
                Extent {
                    state: State::InFlight { rpc: id },
                    since,
                    data: Buf::Shared(data.slice(at..at + ext_len as usize)),
                },
            );
        }
        let inode = self.store.inode_mut(ino);
        inode.inflight_writes.insert(start, (end, id));
        inode.flush_cursor = end;
        self.writes_in_flight += 1;
        self.stats.writes_sent += 1;
        self.stats.write_bytes_sent += len;
        Transmit {
            id,
            handle,
            op: Op::Write {
                offset_bytes: start,
                data,
                stable,
            },
        }
    }

    /// The next READ a file wants: its first wanted range, from a page boundary, at most
    /// rsize, asking only for bytes not cached and not being read. READs wait while a
    /// truncation is pending (the server's size is about to change).
    fn try_read(&mut self, ino: InodeId) -> Option<Transmit> {
        let page = u64::from(self.config.page_bytes);
        let rsize = u64::from(self.config.rsize_bytes);
        loop {
            let inode = self.store.inode(ino);
            if inode.in_backoff(self.now_ms) || !inode.truncates.is_empty() {
                return None;
            }
            let (first, wanted_end) = inode.read_wanted.first()?;
            let offset = first / page * page;
            let max_end = offset + rsize;
            let end = wanted_end
                .min(max_end)
                .div_ceil(page)
                .saturating_mul(page)
                .min(max_end);
            let in_flight = self.read_ranges_in_flight(ino);
            let mut fillable = RangeSet::new();
            for (a, b) in self.gaps(ino, offset, end) {
                fillable.insert(a, b);
            }
            for (a, b) in in_flight {
                fillable.remove(a, b);
            }
            let handle = inode.handle.clone();
            self.store.inode_mut(ino).read_wanted.remove(offset, end);
            if fillable.is_empty() {
                // Already cached or being read: whoever waits for it can look again.
                self.wake_readers(ino);
                continue;
            }
            let id = self.rpc_id();
            self.store.add_rpc(
                id,
                Outstanding::Read {
                    ino,
                    offset,
                    count: end - offset,
                    fillable,
                    truncated: false,
                },
            );
            self.store.inode_mut(ino).reads_in_flight.insert(id);
            self.reads_in_flight += 1;
            self.stats.reads_sent += 1;
            return Some(Transmit {
                id,
                handle,
                op: Op::Read {
                    offset_bytes: offset,
                    count_bytes: (end - offset) as u32,
                },
            });
        }
    }
}
