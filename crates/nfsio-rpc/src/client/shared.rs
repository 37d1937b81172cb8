//! The state callers and the connection task share: the pending map of outstanding calls
//! (XID -> reply channel + encoded request), the queue of what to (re)send on the current
//! connection, and the connection's generation. Every change of it is a method here, so the
//! rules (each call queued at most once, retransmitted in call order after a reconnection,
//! soft calls ending after their tries) live in one place.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use nfsio_proto::rpc::{MessageHeader, ReplyStatus};
use nfsio_proto::{XdrDecode, XdrDecoder};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::time::Instant;
use tracing::debug;

use super::config::{RetryPolicy, RpcConfig};
use crate::error::RpcError;
use crate::stats::StatsRecorder;

/// State shared between the callers and the background task.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: RpcConfig,
    pub(super) state: Mutex<State>,
    pub(super) slots: Semaphore,
    /// Wakes the writer when a request is queued.
    pub(super) writer_wake: Notify,
    /// Wakes the connection task when a timeout asks for a reconnection.
    pub(super) kill_wake: Notify,
    pub(super) next_xid: AtomicU32,
    pub(super) stats: StatsRecorder,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) pending: HashMap<u32, Pending>,
    /// XIDs of pending calls to (re)transmit on the current connection, each at most once.
    pub(super) queue: VecDeque<u32>,
    pub(super) connected: bool,
    /// Generation of the current (or last) connection; 0 before the first.
    pub(super) conn_gen: u64,
    /// A timeout asked to drop the connection of this generation.
    pub(super) kill_gen: Option<u64>,
    pub(super) shutdown: bool,
    /// Orders calls, so that retransmissions after a reconnection go out in call order.
    pub(super) next_seq: u64,
}

/// Where a call's reply (or the error that ends it) arrives.
pub(super) type ReplyRx = oneshot::Receiver<Result<Reply, RpcError>>;

/// An outstanding call.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) seq: u64,
    pub(super) prog: u32,
    pub(super) proc_num: u32,
    pub(super) request: Arc<[Bytes]>,
    pub(super) request_len_bytes: u64,
    /// Where the reply goes — or the error that ends the call (a soft call whose connections
    /// kept failing).
    pub(super) reply_tx: oneshot::Sender<Result<Reply, RpcError>>,
    /// In [`State::queue`].
    pub(super) queued: bool,
    /// Generation of the connection it was last written to.
    pub(super) sent_gen: Option<u64>,
    pub(super) transmissions: u32,
    pub(super) last_sent: Option<Instant>,
}

/// A reply whose header has been decoded; `results` is positioned after it.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: ReplyStatus,
    pub(super) results: XdrDecoder,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// A try of call `xid` timed out: if it was sent on the current connection, ask for that
    /// connection to be replaced (which retransmits every outstanding call).
    pub(super) fn on_timeout(&self, xid: u32) {
        let kill = {
            let mut state = self.lock();
            let sent_on_current = state
                .pending
                .get(&xid)
                .is_some_and(|p| p.sent_gen == Some(state.conn_gen));
            if state.connected && sent_on_current {
                state.kill_gen = Some(state.conn_gen);
                true
            } else {
                false
            }
        };
        if kill {
            self.kill_wake.notify_one();
        }
    }

    /// Moves every queued request not yet sent on connection `conn_gen` into `batch`.
    pub(super) fn take_batch(&self, conn_gen: u64, batch: &mut Vec<Arc<[Bytes]>>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let now = Instant::now();
        while let Some(xid) = state.queue.pop_front() {
            let Some(pending) = state.pending.get_mut(&xid) else {
                continue;
            };
            pending.queued = false;
            if pending.sent_gen == Some(conn_gen) {
                continue;
            }
            let retransmission = pending.transmissions > 0;
            pending.transmissions = pending.transmissions.saturating_add(1);
            pending.sent_gen = Some(conn_gen);
            pending.last_sent = Some(now);
            if retransmission {
                debug!(xid, transmission = pending.transmissions, "retransmitting");
            }
            self.stats.sent(
                pending.prog,
                pending.proc_num,
                pending.request_len_bytes,
                retransmission,
            );
            batch.push(pending.request.clone());
        }
    }

    /// Routes one received record to its caller. An error means the record is not a valid
    /// RPC reply and the connection must be dropped.
    pub(super) fn dispatch(&self, record: Bytes) -> Result<(), RpcError> {
        let len_bytes = record.len() as u64;
        let mut dec = XdrDecoder::new(record).with_max_data_bytes(self.config.max_data_bytes);
        let reply = match MessageHeader::decode(&mut dec)? {
            MessageHeader::Reply(reply) => reply,
            MessageHeader::Call(call) => {
                return Err(RpcError::Xdr(nfsio_proto::XdrError::InvalidValue {
                    what: "msg_type (a call where a reply was expected)",
                    value: call.xid,
                }));
            }
        };
        let pending = {
            let mut state = self.lock();
            let pending = state.pending.remove(&reply.xid);
            if let Some(p) = &pending {
                if p.queued {
                    state.queue.retain(|&queued| queued != reply.xid);
                }
            }
            pending
        };
        match pending {
            Some(pending) => {
                let rtt = pending.last_sent.map(|sent| sent.elapsed());
                self.stats
                    .replied(pending.prog, pending.proc_num, len_bytes, rtt);
                // The caller may have gone in the meantime; then nobody wants the reply.
                let _ = pending.reply_tx.send(Ok(Reply {
                    status: reply.status,
                    results: dec,
                }));
            }
            None => {
                debug!(xid = reply.xid, "reply with unknown XID dropped");
                StatsRecorder::bump(&self.stats.unknown_xid_replies);
            }
        }
        Ok(())
    }

    /// Marks connection `conn_gen` as current and queues every outstanding call on it.
    pub(super) fn connection_up(&self) -> u64 {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.conn_gen += 1;
        state.connected = true;
        state.kill_gen = None;
        let mut order: Vec<(u64, u32)> = state
            .pending
            .iter_mut()
            .map(|(&xid, p)| {
                p.queued = true;
                (p.seq, xid)
            })
            .collect();
        order.sort_unstable();
        state.queue.clear();
        state.queue.extend(order.into_iter().map(|(_, xid)| xid));
        state.conn_gen
    }

    /// Marks the connection as gone: nothing is queued until the next one. Under
    /// [`RetryPolicy::Soft`], a lost connection counts as a failed try: a call already sent
    /// `max_tries` times ends with [`RpcError::ConnectionLost`] instead of being sent again
    /// (a server that drops every connection must not hang a soft call).
    pub(super) fn connection_down(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.connected = false;
        state.queue.clear();
        for pending in state.pending.values_mut() {
            pending.queued = false;
        }
        if let RetryPolicy::Soft { max_tries } = self.config.retry {
            let exhausted: Vec<u32> = state
                .pending
                .iter()
                .filter(|(_, p)| p.transmissions >= max_tries.max(1))
                .map(|(&xid, _)| xid)
                .collect();
            for xid in exhausted {
                if let Some(pending) = state.pending.remove(&xid) {
                    debug!(
                        xid,
                        tries = pending.transmissions,
                        "connection lost, giving up"
                    );
                    let _ = pending.reply_tx.send(Err(RpcError::ConnectionLost {
                        tries: pending.transmissions,
                    }));
                }
            }
        }
    }

    /// Fails every outstanding and waiting call: the transport is shutting down.
    pub(super) fn fail_all(&self) {
        let pending = {
            let mut state = self.lock();
            state.shutdown = true;
            state.connected = false;
            state.queue.clear();
            std::mem::take(&mut state.pending)
        };
        // Dropping the reply senders makes the callers return `RpcError::Shutdown`.
        drop(pending);
        self.slots.close();
    }

    pub(super) fn next_backoff_ms(&self, backoff_ms: u64) -> u64 {
        let max_ms = self.config.reconnect_backoff_max_ms.max(1);
        if backoff_ms == 0 {
            self.config.reconnect_backoff_initial_ms.clamp(1, max_ms)
        } else {
            backoff_ms.saturating_mul(2).min(max_ms)
        }
    }
}
