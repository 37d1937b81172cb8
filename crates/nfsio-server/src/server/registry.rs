//! Every open connection, what it holds and when it last made progress: so that no client can
//! starve the others.
//!
//! Three rules, after knfsd's: a connection that is idle (no call in progress, no reply
//! waiting, no record half-read) for the idle timeout is closed; at the connection cap the
//! connection idle for longest is closed to admit a new one; and when the memory bound is
//! reached, the connection holding the most memory without making progress (a client that does
//! not read its replies, or stopped in the middle of a record) is closed to give it back. A
//! connection that merely stopped sending or reading for longer than the stall timeout while
//! owing the server progress is closed by the sweep too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info};

/// One connection's state, shared by its reader, its writer and the registry.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    /// Calls read and not yet answered (running, or their reply not yet written).
    pub(crate) outstanding: AtomicUsize,
    /// Replies handed to the writer and not yet written.
    pub(crate) queued: AtomicUsize,
    /// Bytes charged to the server's memory bound and not yet given back.
    pub(crate) held_bytes: AtomicUsize,
    /// A record's mark was read and its body has not all arrived.
    pub(crate) mid_record: AtomicBool,
    /// When bytes last arrived (ms since the registry's epoch).
    pub(crate) read_ms: AtomicU64,
    /// When the socket last took reply bytes, or the writer last had nothing to send.
    pub(crate) write_ms: AtomicU64,
    /// When a call last completed a record (what "idle since" means).
    pub(crate) active_ms: AtomicU64,
    closing: AtomicBool,
    close: Notify,
}

impl ConnInfo {
    /// Asks the connection to close (its reader and writer see [`ConnInfo::closed`]).
    pub(crate) fn close(&self, why: &str) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            debug!(peer = %self.peer, why, "closing connection");
            self.close.notify_waiters();
        }
    }

    /// Resolves once the connection was asked to close.
    pub(crate) async fn closed(&self) {
        let notified = self.close.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    fn idle(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) == 0 && !self.mid_record.load(Ordering::Acquire)
    }

    /// True when the connection owes progress and made none since `since_ms`: its writer
    /// has replies the client does not take, or a record is half-read.
    fn stalled_since(&self, since_ms: u64) -> bool {
        let writer_stuck = self.queued.load(Ordering::Acquire) > 0
            && self.write_ms.load(Ordering::Acquire) < since_ms;
        let reader_stuck = self.mid_record.load(Ordering::Acquire)
            && self.read_ms.load(Ordering::Acquire) < since_ms;
        writer_stuck || reader_stuck
    }
}

/// The table of open connections.
#[derive(Debug)]
pub(crate) struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnInfo>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds since the registry began (the clock of every `*_ms` field).
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Registers a new connection; it leaves the table when the returned guard is dropped.
    pub(crate) fn add(self: &Arc<Self>, peer: SocketAddr) -> Registered {
        let now = self.now_ms();
        let info = Arc::new(ConnInfo {
            peer,
            outstanding: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            held_bytes: AtomicUsize::new(0),
            mid_record: AtomicBool::new(false),
            read_ms: AtomicU64::new(now),
            write_ms: AtomicU64::new(now),
            active_ms: AtomicU64::new(now),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.conns).insert(id, info.clone());
        Registered {
            registry: self.clone(),
            id,
            info,
        }
    }

    /// At the connection cap: closes the connection idle for longest to make room. Returns
    /// false when no connection is idle (the new one must be refused).
    pub(crate) fn evict_oldest_idle(&self) -> bool {
        let victim = lock(&self.conns)
            .values()
            .filter(|c| c.idle() && !c.closing.load(Ordering::Acquire))
            .min_by_key(|c| c.active_ms.load(Ordering::Acquire))
            .cloned();
        match victim {
            Some(conn) => {
                info!(peer = %conn.peer, "at the connection limit: closing the connection idle longest");
                conn.close("evicted for a new connection");
                true
            }
            None => false,
        }
    }

    /// Memory is short: closes the connection (other than `needy`) that holds the most bytes
    /// while making no progress for `after_ms`. Returns true when one was closed.
    pub(crate) fn reclaim(&self, needy: &ConnInfo, after_ms: u64) -> bool {
        let since = self.now_ms().saturating_sub(after_ms);
        let victim = lock(&self.conns)
            .values()
            .filter(|c| !std::ptr::eq(c.as_ref(), needy))
            .filter(|c| !c.closing.load(Ordering::Acquire) && c.stalled_since(since))
            .max_by_key(|c| c.held_bytes.load(Ordering::Acquire))
            .cloned();
        match victim {
            Some(conn) if conn.held_bytes.load(Ordering::Acquire) > 0 => {
                info!(
                    peer = %conn.peer,
                    held_bytes = conn.held_bytes.load(Ordering::Acquire),
                    "memory bound reached: closing a connection that makes no progress"
                );
                conn.close("memory reclaimed from a stalled connection");
                true
            }
            _ => false,
        }
    }

    /// The periodic sweep: closes connections idle for `idle_ms` and connections stalled for
    /// `stall_ms`.
    pub(crate) fn sweep(&self, idle_ms: u64, stall_ms: u64) {
        let now = self.now_ms();
        let conns: Vec<Arc<ConnInfo>> = lock(&self.conns).values().cloned().collect();
        for conn in conns {
            if conn.idle() && conn.active_ms.load(Ordering::Acquire) + idle_ms <= now {
                conn.close("idle");
            } else if conn.stalled_since(now.saturating_sub(stall_ms)) {
                conn.close("stalled");
            }
        }
    }

    /// Asks every connection to close (the server stops).
    pub(crate) fn close_all(&self) {
        for conn in lock(&self.conns).values() {
            conn.close("server stopping");
        }
    }
}

/// A connection's place in the registry, removed on drop.
pub(crate) struct Registered {
    registry: Arc<Registry>,
    id: u64,
    pub(crate) info: Arc<ConnInfo>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.registry.conns).remove(&self.id);
    }
}
