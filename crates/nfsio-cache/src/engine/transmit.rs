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
//! in flight: two overlapping WRITEs with different data are never in flight together,
//! because a server may apply concurrent WRITEs in any order. The WRITE's payload becomes the
//! extents' bytes (the `Send` transition re-points them at it), so the in-flight state *is*
//! the snapshot, and a later application write to those bytes creates a new dirty extent
//! instead of touching it.

use nfsio_proto::nfs3::StableHow;

use super::Engine;
use crate::api::{Op, Transmit};
use crate::calls::Call;
use crate::extents::Transition;
use crate::inode_id::InodeId;
use crate::ranges::RangeSet;
use crate::write_data::WriteData;

/// A piece of a WRITE's payload.
enum Piece {
    /// The dirty extent at this start.
    Dirty(u64),
    /// The clean extent at this start (bridging: the server has these bytes).
    Clean(u64),
    /// Known zeros on the server (bridging), `[start, end)`.
    Zeros(u64, u64),
}

/// The WRITE chosen: its pieces and where it ends.
struct WritePlan {
    pieces: Vec<Piece>,
    end: u64,
    /// Bytes of the dirty pieces.
    dirty_bytes: u64,
}

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

    fn next_transmit(&mut self) -> Option<Transmit> {
        let mut inodes = std::mem::take(&mut self.rotation);
        self.schedule.rotation_into(&mut inodes);
        let transmit = self.next_transmit_among(&inodes);
        self.rotation = inodes;
        transmit
    }

    /// The next call among the active files `inodes`, in round-robin order.
    fn next_transmit_among(&mut self, inodes: &[InodeId]) -> Option<Transmit> {
        if self.calls.writes_in_flight() < self.config.max_inflight_writes {
            for &ino in inodes {
                if let Some(t) = self.try_setattr(ino) {
                    return Some(t);
                }
            }
            for &ino in inodes {
                if let Some(t) = self.try_commit(ino) {
                    return Some(t);
                }
            }
            for &ino in inodes {
                if let Some(t) = self.try_flush_all(ino) {
                    self.schedule.served(ino);
                    return Some(t);
                }
            }
            if let Some(t) = self.try_background() {
                return Some(t);
            }
        }
        if self.calls.reads_in_flight() < self.config.max_inflight_reads {
            for &ino in inodes {
                if let Some(t) = self.try_read(ino) {
                    return Some(t);
                }
            }
        }
        None
    }

    /// Memory pressure: writers are blocked, or the non-clean bytes near the write limit.
    fn under_pressure(&self) -> bool {
        self.outbox.has_blocked_writers() || self.nonclean_bytes() >= self.config.pressure_bytes()
    }

    fn try_setattr(&mut self, ino: InodeId) -> Option<Transmit> {
        let inode = self.store.inode(ino);
        if inode.timers.in_backoff(self.now_ms) {
            return None;
        }
        let truncate = inode.truncates.front()?;
        if truncate.rpc.is_some() || inode.calls.write_past(truncate.size_bytes) {
            return None;
        }
        let size_bytes = truncate.size_bytes;
        let handle = inode.handle.clone();
        let inode = self.store.inode_mut(ino);
        let id = self.calls.start(&mut inode.calls, Call::Setattr { ino });
        if let Some(front) = inode.truncates.front_mut() {
            front.rpc = Some(id);
        }
        self.stats.setattrs_sent += 1;
        Some(Transmit {
            id,
            handle,
            op: Op::Setattr { size_bytes },
        })
    }

    fn try_commit(&mut self, ino: InodeId) -> Option<Transmit> {
        let inode = self.store.inode(ino);
        let unstable_bytes = inode.extents.bytes().unstable;
        if inode.timers.in_backoff(self.now_ms)
            || inode.calls.commit().is_some()
            || unstable_bytes == 0
        {
            return None;
        }
        let threshold = unstable_bytes >= self.config.commit_threshold_bytes
            || (self.is_stream(ino)
                && (unstable_bytes >= self.config.stream_commit_bytes()
                    || self.outbox.has_blocked_stream(ino)));
        // A sync (or expiry) whose WRITEs are all answered and that still has unstable bytes.
        let target = inode.flush_target().is_some_and(|t| {
            inode.extents.min_unstable_since().is_some_and(|u| u <= t)
                && inode.extents.min_pending_since().is_none_or(|p| p > t)
        });
        if !(threshold || target || self.under_pressure()) {
            return None;
        }
        let (lo, hi) = inode.extents.unstable_span();
        let count_bytes = u32::try_from(hi - lo).unwrap_or(0);
        let handle = inode.handle.clone();
        let upto_seq = self.store.index().last_unstable_seq();
        let inode = self.store.inode_mut(ino);
        let id = self
            .calls
            .start(&mut inode.calls, Call::Commit { ino, upto_seq });
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
    /// order (the lowest sendable dirty extent first, so that the tail of a file goes with
    /// the rest, last).
    fn try_flush_all(&mut self, ino: InodeId) -> Option<Transmit> {
        let inode = self.store.inode(ino);
        if inode.timers.in_backoff(self.now_ms)
            || inode.flush_target().is_none()
            || inode.extents.dirty_starts().is_empty()
        {
            return None;
        }
        let start = self.find_sendable(ino, 0, 0, u64::MAX)?;
        Some(self.build_write(ino, start))
    }

    /// Background flushing: once the dirty bytes reach `background_flush_bytes`, full chunks
    /// (one aligned wsize WRITE each), fullest first; under memory pressure, any chunk,
    /// fullest first. A stream's full chunks go at once, whatever the dirty bytes.
    fn try_background(&mut self) -> Option<Transmit> {
        let pressure = self.under_pressure();
        let index = self.store.index();
        let streams_only = index.totals().dirty < self.config.background_flush_bytes && !pressure;
        let chunk_bytes = index.chunk_bytes();
        let mut found = None;
        for (dirty, ino, chunk) in index.dirty_chunks_fullest_first() {
            if !pressure && dirty < chunk_bytes {
                break;
            }
            if (streams_only && !self.is_stream(ino))
                || self.store.inode(ino).timers.in_backoff(self.now_ms)
            {
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
        let dirty_starts = inode.extents.dirty_starts();
        dirty_starts
            .range(from..hi)
            .chain(dirty_starts.range(lo..from))
            .copied()
            .find(|&s| {
                let end = s + inode.extents.at(s).len();
                end <= hold && inode.calls.write_overlapping(s, end).is_none()
            })
    }

    /// Chooses the WRITE that starts at the dirty extent at `start` and takes the sendable
    /// dirty extents after it, within the chunk. Dirty extents separated by bytes whose
    /// content on the server is known — clean cached extents, or a range the server holds as
    /// zeros — are joined into one WRITE that carries those bytes too, as long as each such
    /// bridge is at most `bridge_gap_bytes` (one WRITE instead of two; the bridged bytes
    /// rewrite what the server already has, so neither a reply nor a crash can make them
    /// wrong).
    fn plan_write(&self, ino: InodeId, start: u64) -> WritePlan {
        let chunk_end = self.store.index().chunk_end(start);
        let bridge_max = self.config.bridge_gap_bytes;
        let inode = self.store.inode(ino);
        let hold = inode.write_hold_bytes();
        let sendable = |s: u64, e: u64| e <= hold && inode.calls.write_overlapping(s, e).is_none();
        let mut pieces: Vec<Piece> = Vec::new();
        // Pieces up to the last dirty one, and where it ends.
        let mut keep = 0;
        let mut end = start;
        let mut dirty_bytes = 0;
        let mut kept_dirty_bytes = 0;
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
                    || inode.calls.write_overlapping(pos, s).is_some()
                {
                    break;
                }
                pieces.push(Piece::Zeros(pos, s));
            }
            let state = ext.state();
            if state.is_dirty() {
                if !sendable(s, ext_end) {
                    break;
                }
                pieces.push(Piece::Dirty(s));
                dirty_bytes += ext.len();
                keep = pieces.len();
                kept_dirty_bytes = dirty_bytes;
                end = ext_end;
                bridge = 0;
            } else if state.is_clean() {
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
        WritePlan {
            pieces,
            end,
            dirty_bytes: kept_dirty_bytes,
        }
    }

    /// The stability to ask for: FILE_SYNC when the file's verifiers keep changing, or when
    /// this flush is the file's only unfinished business (no COMMIT needed); else UNSTABLE.
    fn stability(&self, ino: InodeId, dirty_bytes: u64) -> StableHow {
        let inode = self.store.inode(ino);
        let bytes = inode.extents.bytes();
        let alone = bytes.dirty == dirty_bytes
            && bytes.inflight == 0
            && bytes.unstable == 0
            && inode.calls.no_writes()
            && inode.calls.commit().is_none();
        if inode.file_sync || (alone && inode.flush_target().is_some()) {
            StableHow::FileSync
        } else {
            StableHow::Unstable
        }
    }

    /// The payload of a planned WRITE: the pieces' own buffers, in order (each dirty extent
    /// frozen in place, clean ones shared, zeros from a static buffer): no byte is copied.
    fn payload(&mut self, ino: InodeId, plan: &WritePlan) -> WriteData {
        let mut data = WriteData::new();
        for piece in &plan.pieces {
            match *piece {
                Piece::Dirty(s) => data.push(self.store.freeze_dirty(ino, s)),
                Piece::Clean(s) => {
                    let ext = self.store.inode(ino).extents.at(s);
                    data.push(ext.data().bytes_range(0, ext.len() as usize));
                }
                Piece::Zeros(a, b) => data.push_zeros((b - a) as usize),
            }
        }
        data
    }

    /// Builds and registers the WRITE that starts at the dirty extent at `start` (see
    /// [`Engine::plan_write`]); its dirty extents go in flight in it.
    fn build_write(&mut self, ino: InodeId, start: u64) -> Transmit {
        let plan = self.plan_write(ino, start);
        let end = plan.end;
        assert!(
            end <= self.store.inode(ino).write_hold_bytes(),
            "a WRITE past a pending truncation"
        );
        let stable = self.stability(ino, plan.dirty_bytes);
        let handle = self.store.inode(ino).handle.clone();
        let data = self.payload(ino, &plan);
        assert_eq!(
            data.len() as u64,
            end - start,
            "the payload covers the WRITE"
        );
        let inode = self.store.inode_mut(ino);
        let call = Call::Write {
            ino,
            offset: start,
            data: data.clone(),
            stable,
        };
        let id = self.calls.start(&mut inode.calls, call);
        for piece in &plan.pieces {
            if let Piece::Dirty(s) = *piece {
                // The extent's frozen buffer, which is the payload's segment for it.
                let ext = self.store.inode(ino).extents.at(s);
                let len = ext.len();
                let payload = ext.data().bytes_range(0, len as usize);
                self.store
                    .restate(ino, s, Transition::Send { rpc: id, payload });
                // Whatever the WRITE's fate, the server may hold these bytes from now on.
                self.store.inode_mut(ino).zeros.remove(s, s + len);
            }
        }
        self.stats.writes_sent += 1;
        self.stats.write_bytes_sent += end - start;
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
            if inode.timers.in_backoff(self.now_ms) || !inode.truncates.is_empty() {
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
            let mut fillable = RangeSet::new();
            for (a, b) in inode.extents.gaps(offset, end) {
                fillable.insert(a, b);
            }
            for (a, b) in self.calls.read_ranges(&inode.calls) {
                fillable.remove(a, b);
            }
            let handle = inode.handle.clone();
            let inode = self.store.inode_mut(ino);
            inode.read_wanted.remove(offset, end);
            if fillable.is_empty() {
                // Already cached or being read: whoever waits for it can look again.
                self.wake_readers(ino);
                continue;
            }
            let call = Call::Read {
                ino,
                offset,
                count: end - offset,
                fillable,
                truncated: false,
            };
            let id = self.calls.start(&mut inode.calls, call);
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
