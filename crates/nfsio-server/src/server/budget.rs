//! The server's two shared budgets: memory for requests and replies across all connections,
//! and file descriptors.
//!
//! **Memory.** Every call is charged, before its record's body is read, for its bytes and the
//! largest reply it can produce, against one bound shared by all connections; the charge is
//! given back when the reply has been written. Small calls (NULL, GETATTR, a 4 KiB READ: at
//! most [`SMALL_CHARGE_BYTES`]) draw on a reserve of their own, so clients that pile up
//! megabyte READs they never read cannot make a neighbour's GETATTR wait. When a charge cannot
//! be met, the connection holding the most memory while making no progress is closed
//! ([`Registry::reclaim`]); the caller then waits its turn. When the server goes quiet again
//! its freed memory is returned to the system (`malloc_trim`).
//!
//! **Descriptors.** The soft RLIMIT_NOFILE is raised to the hard one at start; the store's
//! own descriptors and a few per call in progress are reserved, and connections are kept
//! within the rest, so that a crowd of idle connections can never make a READ fail with EMFILE.

#![allow(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use super::registry::{ConnInfo, Registry};

/// Calls charged at most this much draw on the small reserve.
pub(crate) const SMALL_CHARGE_BYTES: usize = 16 * 1024;

/// Descriptors a call in progress may hold at once (the object, a directory, a reopened file,
/// an entry).
const FDS_PER_CALL: usize = 4;

/// Descriptors for listeners, the runtime and the like.
const FDS_MISC: usize = 32;

/// The memory bound, split into the main pool and the small reserve.
#[derive(Debug)]
pub(crate) struct Memory {
    big: Arc<Semaphore>,
    small: Arc<Semaphore>,
    /// Capacity of the main pool (the most one charge can take).
    big_bytes: usize,
    /// Total bytes of both pools.
    total_bytes: usize,
    /// When memory was last returned to the system (ms on the registry clock).
    trimmed_ms: AtomicU64,
}

/// Bytes charged to the memory bound for one call, given back on drop.
#[derive(Debug)]
pub(crate) struct Charge {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
    conn: Arc<ConnInfo>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.conn.held_bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl Memory {
    /// A bound of `total_bytes`, an eighth of it (at least 4 MiB) the small reserve.
    pub(crate) fn new(total_bytes: usize) -> Self {
        let small = (total_bytes / 8).max(4 << 20);
        let big = total_bytes.saturating_sub(small).max(small);
        Self {
            big: Arc::new(Semaphore::new(big)),
            small: Arc::new(Semaphore::new(small)),
            big_bytes: big,
            total_bytes: big + small,
            trimmed_ms: AtomicU64::new(0),
        }
    }

    /// Bytes charged now, over all connections.
    pub(crate) fn in_use_bytes(&self) -> usize {
        self.total_bytes - self.big.available_permits() - self.small.available_permits()
    }

    /// Charges `bytes` for a call of `conn`, closing stalled connections while the bound is
    /// reached, and waiting for the rest.
    pub(crate) async fn charge(
        &self,
        conn: &Arc<ConnInfo>,
        bytes: usize,
        registry: &Registry,
        reclaim_after_ms: u64,
    ) -> Option<Charge> {
        let pool = if bytes <= SMALL_CHARGE_BYTES {
            &self.small
        } else {
            &self.big
        };
        // A call larger than the whole pool takes all of it (it could never be served else).
        let bytes = bytes.min(self.big_bytes);
        let permits = u32::try_from(bytes).ok()?;
        let permit = loop {
            match pool.clone().try_acquire_many_owned(permits) {
                Ok(permit) => break permit,
                Err(tokio::sync::TryAcquireError::Closed) => return None,
                Err(tokio::sync::TryAcquireError::NoPermits) => {}
            }
            registry.reclaim(conn, reclaim_after_ms);
            let wait = pool.clone().acquire_many_owned(permits);
            match tokio::time::timeout(Duration::from_millis(reclaim_after_ms.max(50)), wait).await
            {
                Ok(Ok(permit)) => break permit,
                Ok(Err(_)) => return None,
                Err(_) => {}
            }
        };
        conn.held_bytes.fetch_add(bytes, Ordering::AcqRel);
        Some(Charge {
            _permit: permit,
            bytes,
            conn: conn.clone(),
        })
    }

    /// Charges `bytes` if that is possible at once (tests).
    #[cfg(test)]
    pub(crate) fn try_charge(&self, conn: &Arc<ConnInfo>, bytes: usize) -> Option<Charge> {
        let permit = self
            .small
            .clone()
            .try_acquire_many_owned(bytes as u32)
            .ok()?;
        conn.held_bytes.fetch_add(bytes, Ordering::AcqRel);
        Some(Charge {
            _permit: permit,
            bytes,
            conn: conn.clone(),
        })
    }

    /// Gives freed memory back to the system once the server holds little (clients left),
    /// at most once a second.
    pub(crate) fn trim_when_quiet(&self, now_ms: u64) {
        if self.in_use_bytes() > self.total_bytes / 16 {
            return;
        }
        let last = self.trimmed_ms.load(Ordering::Acquire);
        if now_ms < last + 1000
            || self
                .trimmed_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        trim();
    }
}

/// Returns free heap memory to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases memory glibc's allocator does not use.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// How the descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Descriptors {
    /// The soft limit after raising it.
    pub(crate) limit: usize,
    /// Connections that fit.
    pub(crate) connections: usize,
    /// Calls in progress that fit.
    pub(crate) calls: usize,
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and plans connections and calls within
/// it, reserving `store_fds` for the store.
pub(crate) fn plan_descriptors(
    store_fds: usize,
    want_connections: usize,
    want_calls: usize,
) -> Descriptors {
    let limit = raise_nofile_limit();
    plan(limit, store_fds, want_connections, want_calls)
}

fn plan(limit: usize, store_fds: usize, want_connections: usize, want_calls: usize) -> Descriptors {
    let spare = limit.saturating_sub(store_fds + FDS_MISC);
    // Calls first get up to half of what is spare, then connections take what is left.
    let calls = want_calls.min(spare / 2 / FDS_PER_CALL).max(1);
    let connections = want_connections
        .min(spare.saturating_sub(calls * FDS_PER_CALL))
        .max(1);
    if connections < want_connections || calls < want_calls {
        warn!(
            limit,
            connections, calls, "few file descriptors: fewer connections and calls at once"
        );
    }
    Descriptors {
        limit,
        connections,
        calls,
    }
}

/// Sets the soft limit on open files to the hard one; returns the soft limit now.
fn raise_nofile_limit() -> usize {
    let mut limits = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limits` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) } != 0 {
        return 1024;
    }
    if limits.rlim_cur < limits.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limits.rlim_max,
            rlim_max: limits.rlim_max,
        };
        // SAFETY: a valid rlimit; raising the soft limit up to the hard one is always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limits.rlim_cur = limits.rlim_max;
        }
    }
    usize::try_from(limits.rlim_cur).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_shared_out_within_the_limit() {
        let plenty = plan(1 << 20, 200, 1024, 256);
        assert_eq!((plenty.connections, plenty.calls), (1024, 256));
        // systemd's soft limit of 1024, which could not be raised.
        let tight = plan(1024, 200, 1024, 256);
        assert!(tight.connections + tight.calls * FDS_PER_CALL + 200 + FDS_MISC <= 1024);
        assert!(tight.connections >= 300 && tight.calls >= 90, "{tight:?}");
    }
}
