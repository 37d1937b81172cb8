//! What the local store keeps between calls so that a stream of READs and WRITEs is cheap: a
//! small LRU of open regular files, and a pool of large READ buffers.
//!
//! An open file here was opened by the server itself; it carries no permission. Every READ,
//! WRITE and COMMIT that uses one first asks the kernel, as the caller, whether the caller may
//! (`faccessat2`), so a cached descriptor never lets anyone do more than their own open would.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::lock;
use crate::storage::FileId;

/// READs at least this large use pooled buffers.
const POOLED_READ_BYTES: usize = 64 * 1024;

/// Reusable READ buffers: a 1 MiB READ neither zeroes nor faults in a fresh megabyte. A
/// buffer returns to the pool when the last `Bytes` of it (the reply segment) is dropped.
#[derive(Debug)]
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_buffers: usize,
}

/// A pooled buffer lent to a `Bytes`.
struct Pooled {
    data: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        let mut free = lock(&self.pool.free);
        if free.len() < self.pool.max_buffers {
            free.push(data);
        }
    }
}

/// Handle to the pool.
#[derive(Debug, Clone)]
pub(crate) struct Buffers(Arc<BufferPool>);

impl Buffers {
    pub(crate) fn new(max_buffers: usize) -> Self {
        Self(Arc::new(BufferPool {
            free: Mutex::new(Vec::new()),
            max_buffers,
        }))
    }

    /// An empty buffer with room for `len_bytes`.
    pub(crate) fn take(&self, len_bytes: usize) -> Vec<u8> {
        if len_bytes >= POOLED_READ_BYTES {
            let reused = {
                let mut free = lock(&self.0.free);
                let pos = free.iter().position(|b| b.capacity() >= len_bytes);
                pos.map(|pos| free.swap_remove(pos))
            };
            if let Some(buf) = reused {
                return buf;
            }
        }
        Vec::with_capacity(len_bytes)
    }

    /// Hands the buffer out as `Bytes`; large ones come back to the pool when dropped.
    pub(crate) fn freeze(&self, data: Vec<u8>) -> Bytes {
        if data.capacity() >= POOLED_READ_BYTES {
            Bytes::from_owner(Pooled {
                data,
                pool: self.0.clone(),
            })
        } else {
            Bytes::from(data)
        }
    }
}

/// An open regular file in the cache.
#[derive(Debug)]
struct CachedFile {
    file: Arc<File>,
    writable: bool,
    last_used: u64,
    /// When a call last used it.
    used_at: Instant,
}

/// A small LRU of open regular files, keyed by identity.
#[derive(Debug, Default)]
pub(crate) struct FileCache {
    entries: HashMap<FileId, CachedFile>,
    tick: u64,
}

impl FileCache {
    /// The cached file of `id` (writable when `need_write`), marked as just used.
    pub(crate) fn get(&mut self, id: FileId, need_write: bool) -> Option<Arc<File>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(&id)?;
        if need_write && !entry.writable {
            return None;
        }
        entry.last_used = tick;
        entry.used_at = Instant::now();
        Some(entry.file.clone())
    }

    /// Any cached file of `id`, not marked.
    pub(crate) fn peek(&self, id: FileId) -> Option<Arc<File>> {
        self.entries.get(&id).map(|e| e.file.clone())
    }

    /// Keeps `file` for `id`, evicting the least recently used beyond `capacity`.
    pub(crate) fn insert(&mut self, id: FileId, file: Arc<File>, writable: bool, capacity: usize) {
        if capacity == 0 {
            return;
        }
        self.tick += 1;
        let tick = self.tick;
        if self.entries.len() >= capacity && !self.entries.contains_key(&id) {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(id, _)| *id)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            id,
            CachedFile {
                file,
                writable,
                last_used: tick,
                used_at: Instant::now(),
            },
        );
    }

    /// Takes out every file no call used for `idle` before `now`, for the caller to close
    /// outside the lock.
    pub(crate) fn take_idle(&mut self, now: Instant, idle: Duration) -> Vec<Arc<File>> {
        let mut taken = Vec::new();
        self.entries.retain(|_, e| {
            let keep = now.saturating_duration_since(e.used_at) < idle;
            if !keep {
                taken.push(Arc::clone(&e.file));
            }
            keep
        });
        taken
    }

    /// Drops the file of `id`.
    pub(crate) fn remove(&mut self, id: FileId) {
        self.entries.remove(&id);
    }
}
