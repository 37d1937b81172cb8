//! The in-memory store with a crash model, for tests and the deterministic simulation.
//!
//! Every regular file has two contents: the *volatile* one (what READ sees: every write lands
//! there) and the *durable* one (what survives [`MemStore::crash`]). An UNSTABLE write changes
//! only the volatile content; a DATA_SYNC or FILE_SYNC write, and COMMIT, copy the volatile
//! content to the durable one before returning. Namespace operations and attribute changes are
//! durable at once (RFC 1813 requires them to be synchronous). [`MemStore::crash`] drops every
//! volatile change, which is exactly what a server that lied about stability would lose.
//!
//! Faults are injected with [`MemStore::inject`]: a write that fails with EIO or ENOSPC, a sync
//! that fails (and, like a failed writeback, drops the file's unstable data), a short write.
//! Inode numbers of removed objects are reused (with a new generation), so stale handles are
//! exercised. Callers are checked with [`rules`](super::rules), the kernel's permission rules
//! written down, since there is no kernel here to apply them. Time is a logical clock that
//! advances one microsecond per change, so runs are reproducible.
//!
//! The store's files: `tree.rs` (the nodes and the primitives that keep them consistent),
//! `content.rs` (READ, WRITE, COMMIT, faults and the crash), `store.rs` (the rest of
//! [`Storage`]: attributes, lookups, listings, the namespace), `tests.rs`, and this one (the
//! public types and construction).

mod content;
mod store;
#[cfg(test)]
mod tests;
mod tree;

use std::sync::{Mutex, MutexGuard};

use nfsio_proto::nfs3::Nfs3Status;

use self::tree::Inner;
use super::{Caller, FileId, Storage, StoreResult};

/// A fault to inject into the next matching operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next WRITE fails with this status before writing anything (an I/O error: the
    /// server changes its verifier).
    WriteError(Nfs3Status),
    /// The next sync (a DATA_SYNC or FILE_SYNC WRITE, or a COMMIT) fails with this status, and
    /// the file's unstable data is lost, as when writeback fails.
    SyncError(Nfs3Status),
    /// The next WRITE writes at most this many bytes.
    ShortWrite(u32),
}

/// Options of a [`MemStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemOptions {
    /// Reuse the inode numbers of removed objects (with a new generation).
    pub reuse_inodes: bool,
    /// Total bytes of file content the store holds before answering NFS3ERR_NOSPC.
    pub capacity_bytes: u64,
    /// The file system id.
    pub fsid: u64,
}

impl Default for MemOptions {
    fn default() -> Self {
        Self {
            reuse_inodes: true,
            capacity_bytes: 1 << 30,
            fsid: 0x6e66_7369_6f6d_656d,
        }
    }
}

/// An in-memory file system with volatile and durable file contents.
#[derive(Debug)]
pub struct MemStore {
    inner: Mutex<Inner>,
    options: MemOptions,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    /// An empty store with default options.
    pub fn new() -> Self {
        Self::with_options(MemOptions::default())
    }

    /// An empty store.
    pub fn with_options(options: MemOptions) -> Self {
        Self {
            inner: Mutex::new(Inner::new()),
            options,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Looks up a `/`-separated path from the root (tests).
    pub fn lookup_path(&self, path: &str) -> StoreResult<FileId> {
        let mut id = self.root();
        for name in path.split('/').filter(|c| !c.is_empty()) {
            id = self.lookup(&Caller::root(), id, name.as_bytes())?.0;
        }
        Ok(id)
    }
}
