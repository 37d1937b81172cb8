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
//!
//! Every change of an extent here is a named [`Transition`] or [`Removal`], checked against
//! the extent's state by the extent map.

use bytes::Bytes;
use nfsio_proto::nfs3::{Nfs3Status, StableHow, WriteVerifier};

use super::Engine;
use crate::api::{FileError, Reply, RpcId};
use crate::calls::Call;
use crate::extents::{Removal, State, Transition};
use crate::inode_id::InodeId;
use crate::store::AttrStamp;

/// A WRITE being answered: what it carried.
#[derive(Clone, Copy)]
struct Written {
    ino: InodeId,
    rpc: RpcId,
    offset: u64,
    end: u64,
    stable: StableHow,
}

impl Engine {
    /// Feeds the outcome of the call `rpc` (see [`Reply`] for what to feed when). A reply for
    /// an unknown id (already answered) is ignored.
    pub fn on_reply(&mut self, rpc: RpcId, reply: Reply, now_ms: u64) {
        self.advance(now_ms);
        let Some(call) = self.calls.get(rpc) else {
            tracing::warn!(?rpc, "reply for a call that is not in flight; ignored");
            return;
        };
        let ino = call.ino();
        let attrs = match &reply {
            Reply::Write { post_op_attrs, .. }
            | Reply::Commit { post_op_attrs, .. }
            | Reply::Read { post_op_attrs, .. }
            | Reply::Setattr { post_op_attrs } => post_op_attrs.as_ref().map(AttrStamp::from),
            Reply::Status(_) | Reply::Retry => None,
        };
        let apply: fn(&mut Self, RpcId, Reply) = match call {
            Call::Write { .. } => Self::write_reply,
            Call::Commit { .. } => Self::commit_reply,
            Call::Read { .. } => Self::read_reply,
            Call::Setattr { .. } => Self::setattr_reply,
        };
        apply(self, rpc, reply);
        if let Some(inode) = self.store.get_mut(ino) {
            if let Some(stamp) = attrs {
                inode.seen = stamp;
            }
            self.activate(ino);
        }
        self.after_input();
    }

    fn write_reply(&mut self, rpc: RpcId, reply: Reply) {
        let Some(&Call::Write {
            ino,
            offset,
            ref data,
            stable,
        }) = self.calls.get(rpc)
        else {
            unreachable!("dispatched on kind");
        };
        let len = data.len() as u64;
        let w = Written {
            ino,
            rpc,
            offset,
            end: offset + len,
            stable,
        };
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
                    self.fail_write(w, Nfs3Status::Io);
                } else {
                    self.written(w, count, committed, verf);
                }
            }
            Reply::Status(Nfs3Status::Jukebox) | Reply::Retry => {
                self.not_written(w);
                self.backoff(ino);
            }
            Reply::Status(status) => self.fail_write(w, status),
            other => {
                tracing::warn!(?other, "reply of the wrong kind for a WRITE; retrying");
                self.not_written(w);
                self.backoff(ino);
            }
        }
        // Postcondition: no byte is in flight in this WRITE any more, so it may leave the
        // table (and no later reply can retire anything).
        assert!(
            self.store
                .inode(ino)
                .extents
                .in_flight_in(rpc, w.offset, w.end)
                .is_empty(),
            "{rpc:?} answered with bytes still in flight in it"
        );
        self.calls.finish(&mut self.store.inode_mut(ino).calls, rpc);
    }

    fn written(&mut self, w: Written, count: u64, committed: StableHow, verf: WriteVerifier) {
        let Written {
            ino, rpc, offset, ..
        } = w;
        let mut durable = committed != StableHow::Unstable;
        if committed < w.stable {
            tracing::warn!(
                stable = ?w.stable,
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
            .is_some_and(|(s, e)| {
                *s + e.len() > written_end && e.state() == State::InFlight { rpc }
            });
        if straddles {
            self.store.split_at(ino, written_end);
        }
        let seq = if durable {
            0
        } else {
            self.store.new_unstable_seq()
        };
        let live = self
            .store
            .inode(ino)
            .extents
            .in_flight_in(rpc, offset, w.end);
        for start in live {
            let change = if start >= written_end {
                Transition::NotWritten { rpc }
            } else if durable {
                Transition::WrittenDurable { rpc }
            } else {
                Transition::WrittenUnstable { rpc, verf, seq }
            };
            self.store.restate(ino, start, change);
            if durable {
                self.drop_committed(ino, start);
            }
        }
        self.reset_backoff(ino);
    }

    /// The bytes this WRITE still carries go back to dirty (to be sent again).
    fn not_written(&mut self, w: Written) {
        let live = self
            .store
            .inode(w.ino)
            .extents
            .in_flight_in(w.rpc, w.offset, w.end);
        for start in live {
            self.store
                .restate(w.ino, start, Transition::NotWritten { rpc: w.rpc });
        }
    }

    /// A WRITE failed: the error is recorded, the bytes it still carries are dropped.
    fn fail_write(&mut self, w: Written, status: Nfs3Status) {
        self.record_error(w.ino, status);
        let live = self
            .store
            .inode(w.ino)
            .extents
            .in_flight_in(w.rpc, w.offset, w.end);
        for start in live {
            self.store
                .remove(w.ino, start, Removal::WriteFailed { rpc: w.rpc });
        }
    }

    /// Sends every unstable extent written under a verifier other than `verf` back to dirty;
    /// returns how many.
    fn redirty_unstable_except(&mut self, ino: InodeId, verf: WriteVerifier) -> usize {
        let lost = self.store.inode(ino).extents.unstable_not_under(verf);
        for &start in &lost {
            self.store
                .restate(ino, start, Transition::VerifierChanged { verf });
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
        let Some(&Call::Commit { ino, upto_seq }) = self.calls.get(rpc) else {
            unreachable!("dispatched on kind");
        };
        self.calls.finish(&mut self.store.inode_mut(ino).calls, rpc);
        let snapshot = self.store.inode(ino).extents.unstable_upto(upto_seq);
        match reply {
            Reply::Commit { verf, .. } => self.committed(ino, snapshot, verf),
            Reply::Status(Nfs3Status::Jukebox) | Reply::Retry => self.backoff(ino),
            Reply::Status(status) => {
                // The server could not make them durable: record, and drop them (see the
                // module documentation).
                self.record_error(ino, status);
                for start in snapshot {
                    self.store.remove(ino, start, Removal::CommitFailed);
                }
            }
            other => {
                tracing::warn!(?other, "reply of the wrong kind for a COMMIT; retrying");
                self.backoff(ino);
            }
        }
    }

    /// A COMMIT answered under `verf`: its snapshot's extents written under `verf` are clean,
    /// the others (and any other unstable extent under another verifier) dirty again.
    fn committed(&mut self, ino: InodeId, snapshot: Vec<u64>, verf: WriteVerifier) {
        let mut cleaned = 0;
        let mut lost = 0;
        for start in snapshot {
            let State::Unstable { verf: written, .. } =
                self.store.inode(ino).extents.at(start).state()
            else {
                unreachable!("unstable index");
            };
            if written == verf {
                self.store
                    .restate(ino, start, Transition::Committed { verf });
                self.drop_committed(ino, start);
                cleaned += 1;
            } else {
                self.store
                    .restate(ino, start, Transition::VerifierChanged { verf });
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

    fn read_reply(&mut self, rpc: RpcId, reply: Reply) {
        let ino = self.calls.get(rpc).expect("dispatched").ino();
        let Call::Read {
            offset,
            count,
            fillable,
            truncated,
            ..
        } = self.calls.finish(&mut self.store.inode_mut(ino).calls, rpc)
        else {
            unreachable!("dispatched on kind");
        };
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
                    for (ga, gb) in self.store.inode(ino).extents.gaps(a, b) {
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
            let mut piece_end = end.min(self.store.index().chunk_end(pos));
            let bytes = if pos < data_end {
                piece_end = piece_end.min(data_end);
                data.slice((pos - data_offset) as usize..(piece_end - data_offset) as usize)
            } else {
                Bytes::from(vec![0u8; (piece_end - pos) as usize])
            };
            self.store.insert_clean(ino, pos, bytes);
            pos = piece_end;
        }
    }

    fn setattr_reply(&mut self, rpc: RpcId, reply: Reply) {
        let ino = self.calls.get(rpc).expect("dispatched").ino();
        self.calls.finish(&mut self.store.inode_mut(ino).calls, rpc);
        let inode = self.store.inode_mut(ino);
        let front = inode.truncates.front_mut().expect("pending truncation");
        assert_eq!(front.rpc, Some(rpc), "SETATTR for the oldest truncation");
        match reply {
            Reply::Setattr { .. } => {
                let done = inode.truncates.pop_front().expect("pending truncation");
                self.reset_backoff(ino);
                self.outbox.complete(done.ticket, Ok(()));
            }
            Reply::Status(Nfs3Status::Jukebox) | Reply::Retry => {
                front.rpc = None;
                self.backoff(ino);
            }
            Reply::Status(status) => {
                let done = inode.truncates.pop_front().expect("pending truncation");
                // The server kept its size: show at least what it last told us.
                inode.size_bytes = inode.size_bytes.max(inode.seen.size_bytes);
                self.outbox
                    .complete(done.ticket, Err(FileError::Status(status)));
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
