//! Applying answers: each completion retires exactly the bytes its call carried, at the state
//! it carried them in, and nothing else.
//!
//! - WRITE: bytes still `InFlight{this}` up to `count` become clean (DATA_SYNC/FILE_SYNC) or
//!   unstable under the reply's verifier; past `count` they become dirty again (short write).
//!   Bytes the application rewrote meanwhile are dirty extents of their own and untouched.
//! - COMMIT: unstable extents in its snapshot (`seq <=` the COMMIT's) become clean when their
//!   verifier is the reply's, dirty otherwise. Bytes that became unstable after it was sent
//!   stay unstable.
//! - Any WRITE or COMMIT reply whose verifier differs from the one unstable bytes were written
//!   under sends those bytes back to dirty (RFC 1813 section 4.12: the server lost them).
//!   After `verifier_mismatch_limit` successive mismatches the file is written FILE_SYNC.
//! - Errors: `NFS3ERR_JUKEBOX` and "no answer" put the bytes back (dirty, or still unstable)
//!   and back off. Any other status is recorded for every open of the file (reported once
//!   each, at the next `fsync`/`close`) and the failed bytes are dropped from the cache, as
//!   Linux does: retrying them could keep a `fsync` from ever returning, and a failure is
//!   never silent because it is reported.

use bytes::Bytes;
use nfsio_proto::nfs3::{Nfs3Status, StableHow, WriteVerifier};

use crate::api::{FileError, Reply, RpcId};
use crate::engine::Engine;
use crate::store::{AttrStamp, Buf, Extent, InodeId, Outstanding, State};

impl Engine {
    /// Feeds the outcome of a call. A reply for an unknown id (already answered) is ignored.
    pub fn on_reply(&mut self, rpc: RpcId, reply: Reply, now_ms: u64) {
        self.advance(now_ms);
        let Some(out) = self.store.rpcs.get(&rpc) else {
            tracing::warn!(?rpc, "reply for a call that is not in flight; ignored");
            return;
        };
        let ino = out.ino();
        let attrs = match &reply {
            Reply::Write { post_op_attrs, .. }
            | Reply::Commit { post_op_attrs, .. }
            | Reply::Read { post_op_attrs, .. }
            | Reply::Setattr { post_op_attrs } => post_op_attrs.as_ref().map(AttrStamp::from),
            Reply::Status(_) | Reply::Retry => None,
        };
        match out {
            Outstanding::Write { .. } => self.write_reply(rpc, reply),
            Outstanding::Commit { .. } => self.commit_reply(rpc, reply),
            Outstanding::Read { .. } => self.read_reply(rpc, reply),
            Outstanding::Setattr { .. } => self.setattr_reply(rpc, reply),
        }
        if let Some(inode) = self.store.inodes.get_mut(&ino) {
            if let Some(stamp) = attrs {
                inode.seen = stamp;
            }
            self.active.insert(ino);
        }
        self.after_input();
    }

    /// Starts of the extents still `InFlight{rpc}` within `[start, end)`.
    fn live_extents(&self, ino: InodeId, rpc: RpcId, start: u64, end: u64) -> Vec<u64> {
        let inode = self.store.inode(ino);
        inode
            .extents
            .range(start..end)
            .filter(|(_, e)| e.state == State::InFlight { rpc })
            .map(|(s, _)| *s)
            .collect()
    }

    /// Changes the state of the extent at `start`.
    fn restate(&mut self, ino: InodeId, start: u64, state: State) {
        let mut ext = self.store.remove(ino, start);
        if state.is_clean() {
            ext.since = 0;
        }
        ext.state = state;
        self.store.insert(ino, start, ext);
    }

    fn write_reply(&mut self, rpc: RpcId, reply: Reply) {
        let Some(Outstanding::Write {
            ino,
            offset,
            data,
            stable,
            ..
        }) = self.store.rpcs.get(&rpc)
        else {
            unreachable!("dispatched on kind");
        };
        let (ino, offset, stable) = (*ino, *offset, *stable);
        let len = data.len() as u64;
        let end = offset + len;
        let inode = self.store.inode_mut(ino);
        let removed = inode.inflight_writes.remove(&offset);
        assert_eq!(removed, Some((end, rpc)), "in-flight WRITE index");
        self.writes_in_flight -= 1;
        match reply {
            Reply::Write {
                count_bytes,
                committed,
                verf,
                ..
            } => {
                let mut count = u64::from(count_bytes);
                if count > len {
                    tracing::warn!(count, len, "WRITE reply counts more bytes than sent");
                    count = len;
                }
                if count == 0 && len > 0 {
                    tracing::warn!(offset, len, "WRITE reply took no bytes: EIO");
                    self.fail_write(ino, rpc, offset, end, Nfs3Status::Io);
                } else {
                    self.written(ino, rpc, offset, end, count, stable, committed, verf);
                }
            }
            Reply::Status(Nfs3Status::Jukebox) | Reply::Retry => {
                self.redirty_live(ino, rpc, offset, end);
                self.backoff(ino);
            }
            Reply::Status(status) => self.fail_write(ino, rpc, offset, end, status),
            other => {
                tracing::warn!(?other, "reply of the wrong kind for a WRITE; retrying");
                self.redirty_live(ino, rpc, offset, end);
                self.backoff(ino);
            }
        }
        self.store.remove_rpc(rpc);
    }

    #[allow(clippy::too_many_arguments)]
    fn written(
        &mut self,
        ino: InodeId,
        rpc: RpcId,
        offset: u64,
        end: u64,
        count: u64,
        stable: StableHow,
        committed: StableHow,
        verf: WriteVerifier,
    ) {
        let mut durable = committed != StableHow::Unstable;
        if committed < stable {
            tracing::warn!(
                ?stable,
                ?committed,
                "server answered a WRITE less stable than asked (protocol violation); the bytes will be committed"
            );
            durable = false;
        }
        // Unstable bytes written under another verifier were lost by the server.
        if self.redirty_unstable_except(ino, verf) > 0 {
            self.count_mismatch(ino);
        }
        let written_end = offset + count;
        let straddles = self
            .store
            .inode(ino)
            .extents
            .range(..written_end)
            .next_back()
            .is_some_and(|(s, e)| *s + e.len() > written_end && e.state == State::InFlight { rpc });
        if straddles {
            self.store.split_at(ino, written_end);
        }
        let seq = if durable {
            0
        } else {
            let seq = self.next_unstable_seq;
            self.next_unstable_seq += 1;
            seq
        };
        for start in self.live_extents(ino, rpc, offset, end) {
            let state = if start >= written_end {
                State::Dirty
            } else if durable {
                State::Clean {
                    seq: self.clean_seq(),
                }
            } else {
                State::Unstable { verf, seq }
            };
            self.restate(ino, start, state);
        }
        self.reset_backoff(ino);
    }

    /// The bytes this WRITE still carries go back to dirty (to be sent again).
    fn redirty_live(&mut self, ino: InodeId, rpc: RpcId, offset: u64, end: u64) {
        for start in self.live_extents(ino, rpc, offset, end) {
            self.restate(ino, start, State::Dirty);
        }
    }

    /// A WRITE failed: the error is recorded, the bytes it still carries are dropped.
    fn fail_write(&mut self, ino: InodeId, rpc: RpcId, offset: u64, end: u64, status: Nfs3Status) {
        self.record_error(ino, status);
        for start in self.live_extents(ino, rpc, offset, end) {
            self.store.remove(ino, start);
        }
    }

    /// Sends every unstable extent written under a verifier other than `verf` back to dirty;
    /// returns how many.
    fn redirty_unstable_except(&mut self, ino: InodeId, verf: WriteVerifier) -> usize {
        let inode = self.store.inode(ino);
        if inode.unstable_verfs.keys().all(|k| *k == verf.0) {
            return 0;
        }
        let lost: Vec<u64> = inode
            .unstable_by_seq
            .iter()
            .map(|&(_, start)| start)
            .filter(|start| {
                matches!(inode.extents[start].state, State::Unstable { verf: v, .. } if v != verf)
            })
            .collect();
        for &start in &lost {
            self.restate(ino, start, State::Dirty);
        }
        lost.len()
    }

    /// One more successive verifier mismatch on this file.
    fn count_mismatch(&mut self, ino: InodeId) {
        self.stats.verifier_mismatches += 1;
        let limit = self.config.verifier_mismatch_limit;
        let inode = self.store.inode_mut(ino);
        inode.mismatches += 1;
        tracing::warn!(
            mismatches = inode.mismatches,
            "the server's write verifier changed: it may have lost unstable data; writing it again"
        );
        if inode.mismatches >= limit && !inode.file_sync {
            inode.file_sync = true;
            tracing::warn!(
                handle = ?inode.handle,
                mismatches = inode.mismatches,
                "write verifiers keep changing; writing this file FILE_SYNC from now on"
            );
        }
    }

    fn commit_reply(&mut self, rpc: RpcId, reply: Reply) {
        let Some(&Outstanding::Commit { ino, upto_seq }) = self.store.rpcs.get(&rpc) else {
            unreachable!("dispatched on kind");
        };
        let inode = self.store.inode_mut(ino);
        assert_eq!(inode.commit_in_flight, Some(rpc), "COMMIT in flight");
        inode.commit_in_flight = None;
        self.writes_in_flight -= 1;
        let snapshot: Vec<u64> = inode
            .unstable_by_seq
            .range(..=(upto_seq, u64::MAX))
            .map(|&(_, start)| start)
            .collect();
        match reply {
            Reply::Commit { verf, .. } => {
                let mut cleaned = 0;
                let mut lost = 0;
                for start in snapshot {
                    let State::Unstable { verf: written, .. } =
                        self.store.inode(ino).extents[&start].state
                    else {
                        unreachable!("unstable index");
                    };
                    if written == verf {
                        let seq = self.clean_seq();
                        self.restate(ino, start, State::Clean { seq });
                        cleaned += 1;
                    } else {
                        self.restate(ino, start, State::Dirty);
                        lost += 1;
                    }
                }
                lost += self.redirty_unstable_except(ino, verf);
                if lost > 0 {
                    self.count_mismatch(ino);
                } else if cleaned > 0 {
                    self.store.inode_mut(ino).mismatches = 0;
                }
                self.reset_backoff(ino);
            }
            Reply::Status(Nfs3Status::Jukebox) | Reply::Retry => self.backoff(ino),
            Reply::Status(status) => {
                // The server could not make them durable: record, and drop them (see the
                // module documentation).
                self.record_error(ino, status);
                for start in snapshot {
                    self.store.remove(ino, start);
                }
            }
            other => {
                tracing::warn!(?other, "reply of the wrong kind for a COMMIT; retrying");
                self.backoff(ino);
            }
        }
        self.store.remove_rpc(rpc);
    }

    fn read_reply(&mut self, rpc: RpcId, reply: Reply) {
        let Outstanding::Read {
            ino,
            offset,
            count,
            fillable,
            truncated,
        } = self.store.remove_rpc(rpc)
        else {
            unreachable!("dispatched on kind");
        };
        self.store.inode_mut(ino).reads_in_flight.remove(&rpc);
        self.reads_in_flight -= 1;
        match reply {
            Reply::Read { mut data, eof, .. } => {
                if data.len() as u64 > count {
                    tracing::warn!(count, got = data.len(), "READ returned more than asked");
                    data.truncate(count as usize);
                }
                let data_end = offset + data.len() as u64;
                let inode = self.store.inode_mut(ino);
                if inode
                    .read_error
                    .is_some_and(|(_, start, end)| start < offset + count && offset < end)
                {
                    inode.read_error = None;
                }
                if !truncated && data_end > inode.size_bytes {
                    // The file grew on the server (another client).
                    inode.size_bytes = data_end;
                }
                // At end of file, the rest of the range up to our size is a hole: zeros.
                let fill_end = if eof {
                    (offset + count).min(inode.size_bytes).max(data_end)
                } else {
                    data_end
                };
                let fill_end = fill_end.min(inode.size_bytes);
                for (a, b) in fillable.intersect(offset, fill_end) {
                    for (ga, gb) in self.gaps(ino, a, b) {
                        self.fill_clean(ino, offset, &data, ga, gb);
                    }
                }
                self.reset_backoff(ino);
            }
            Reply::Status(Nfs3Status::Jukebox) | Reply::Retry => self.backoff(ino),
            Reply::Status(status) => {
                self.store.inode_mut(ino).read_error = Some((status, offset, offset + count));
            }
            other => {
                tracing::warn!(?other, "reply of the wrong kind for a READ; retrying");
                self.backoff(ino);
            }
        }
        self.wake_readers(ino);
    }

    /// Caches `[start, end)` as clean: bytes of `data` (which starts at `data_offset`) where
    /// it has them, zeros past its end. Split at chunk boundaries.
    fn fill_clean(&mut self, ino: InodeId, data_offset: u64, data: &Bytes, start: u64, end: u64) {
        let data_end = data_offset + data.len() as u64;
        let mut pos = start;
        while pos < end {
            let mut piece_end = end.min(self.store.chunk_end(pos));
            let bytes = if pos < data_end {
                piece_end = piece_end.min(data_end);
                data.slice((pos - data_offset) as usize..(piece_end - data_offset) as usize)
            } else {
                Bytes::from(vec![0u8; (piece_end - pos) as usize])
            };
            let seq = self.clean_seq();
            self.store.insert(
                ino,
                pos,
                Extent {
                    state: State::Clean { seq },
                    since: 0,
                    data: Buf::Shared(bytes),
                },
            );
            pos = piece_end;
        }
    }

    fn setattr_reply(&mut self, rpc: RpcId, reply: Reply) {
        let ino = self.store.remove_rpc(rpc).ino();
        self.writes_in_flight -= 1;
        let inode = self.store.inode_mut(ino);
        let front = inode.truncates.front_mut().expect("pending truncation");
        assert_eq!(front.rpc, Some(rpc), "SETATTR for the oldest truncation");
        match reply {
            Reply::Setattr { .. } => {
                let done = inode.truncates.pop_front().expect("pending truncation");
                self.reset_backoff(ino);
                self.complete(done.ticket, Ok(()));
            }
            Reply::Status(Nfs3Status::Jukebox) | Reply::Retry => {
                front.rpc = None;
                self.backoff(ino);
            }
            Reply::Status(status) => {
                let done = inode.truncates.pop_front().expect("pending truncation");
                // The server kept its size: show at least what it last told us.
                inode.size_bytes = inode.size_bytes.max(inode.seen.size_bytes);
                self.complete(done.ticket, Err(FileError::Status(status)));
            }
            other => {
                tracing::warn!(?other, "reply of the wrong kind for a SETATTR; retrying");
                front.rpc = None;
                self.backoff(ino);
            }
        }
        self.wake_readers(ino);
    }
}
