//! The workload and its checker: application tasks, each with one file and a model of what
//! it wrote.
//!
//! - Read-your-writes: a read returns the model — unless a write-back error is pending that
//!   the application has not been told about yet (the failed bytes were dropped, so a read
//!   shows the server's content); the next `sync_all` must then report it.
//! - Durability: whenever `sync_all` or `close` returns Ok, the server's *durable* content
//!   (what survives a crash now) equals the model.
//! - Close-to-open: after a close returns Ok, a second client (its own cache) opening the
//!   file reads the model.
//! - No silent loss: an error from `sync_all`, `close`, a write or a truncation means bytes
//!   may be lost; the task rewrites the file from its model and syncs until that succeeds,
//!   and the checks apply again. Once the faults stop, that must succeed within 5 attempts.
//! - Memory: after every operation the client's cache holds no more than its bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nfsio_client::{Client, File};
use nfsio_server::MemStore;

use crate::{Rng, Workload};

/// Counters the tasks share with the harness.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Application operations that returned an error (and were recovered from).
    pub app_errors: AtomicU64,
    /// Renames that reported an error (the task then looks which name exists).
    pub rename_errors: AtomicU64,
    /// Close-to-open checks made by the second client.
    pub observer_checks: AtomicU64,
    /// The most bytes the client's cache held after an operation.
    pub peak_cache_bytes: AtomicU64,
    /// Faults are still being injected (recovery may keep failing until they stop).
    pub faulting: AtomicBool,
    /// Server instances started so far.
    pub server_boots: AtomicU64,
}

/// One application task: one file, a model of its content, random operations.
pub(crate) struct Task {
    pub client: Client,
    /// A second client, for close-to-open checks.
    pub observer: Client,
    pub store: Arc<MemStore>,
    /// The file's name now (renames change it).
    pub path: String,
    pub renames: u64,
    pub rng: Rng,
    pub model: Vec<u8>,
    pub workload: Workload,
    pub memory_bound_bytes: u64,
    pub shared: Arc<Shared>,
}

pub(crate) type TaskResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Task {
    pub(crate) async fn run(mut self) -> TaskResult<()> {
        let mut file = self.client.create_file(&self.path, 0o644).await?;
        for _ in 0..self.workload.ops_per_file {
            // Think time, so that operations of the tasks and the faults interleave.
            let think_ms = self.rng.below(self.workload.max_think_ms + 1);
            tokio::time::sleep(Duration::from_millis(think_ms)).await;
            let ok = match self.rng.below(13) {
                0..=4 => {
                    let offset = self.rng.below(self.workload.span_bytes);
                    self.write(&file, offset).await
                }
                5 => {
                    let offset = self.model.len() as u64;
                    self.write(&file, offset).await
                }
                6 | 7 => self.read_check(&file).await?,
                8 => {
                    let len = self.rng.below(self.workload.span_bytes);
                    match file.set_len(len).await {
                        Ok(()) => {
                            self.model.resize(len as usize, 0);
                            true
                        }
                        Err(_) => false,
                    }
                }
                9 | 10 => match file.sync_all().await {
                    Ok(()) => {
                        self.check_durable("sync_all")?;
                        true
                    }
                    Err(_) => false,
                },
                11 => {
                    self.rename().await?;
                    true
                }
                _ => {
                    let closed = file.close().await;
                    let ok = match closed {
                        Ok(()) => {
                            self.check_durable("close")?;
                            self.check_other_client().await?;
                            true
                        }
                        Err(_) => false,
                    };
                    file = self.client.open(&self.path).await?;
                    ok
                }
            };
            self.check_memory()?;
            if !ok {
                self.shared.app_errors.fetch_add(1, Ordering::SeqCst);
                self.recover(&file).await?;
            }
        }
        match file.close().await {
            Ok(()) => self.check_durable("final close")?,
            Err(_) => {
                self.shared.app_errors.fetch_add(1, Ordering::SeqCst);
                let file = self.client.open(&self.path).await?;
                self.recover(&file).await?;
                file.close().await?;
                self.check_durable("close after recovery")?;
            }
        }
        self.check_other_client().await?;
        self.check_memory()
    }

    /// One write at `offset`; true when accepted.
    async fn write(&mut self, file: &File, offset: u64) -> bool {
        let len = 1 + self.rng.below(self.workload.max_write_bytes) as usize;
        let data = self.rng.bytes(len);
        // Half the writes give the cache a buffer of their own to keep (the owned path).
        let written = if self.rng.below(2) == 0 {
            file.write_at(&data, offset).await.map(drop)
        } else {
            file.write_bytes_at(bytes::Bytes::from(data.clone()), offset)
                .await
        };
        match written {
            Ok(()) => {
                let end = offset as usize + len;
                if self.model.len() < end {
                    self.model.resize(end, 0);
                }
                self.model[offset as usize..end].copy_from_slice(&data);
                true
            }
            Err(_) => false,
        }
    }

    /// Renames the file (open, and with bytes possibly still in the cache) to a new name.
    /// An error does not say whether the rename happened — a retransmitted RENAME that a
    /// restarted server (its duplicate request cache gone) no longer recognises answers
    /// NOENT — so the task then looks which name exists, as an application would.
    async fn rename(&mut self) -> TaskResult<()> {
        self.renames += 1;
        let base = self.path.split('.').next().unwrap_or("f").to_owned();
        let to = format!("{base}.{}", self.renames);
        let boots_before = self.shared.server_boots.load(Ordering::SeqCst);
        if self.client.rename_path(&self.path, &to).await.is_ok() {
            self.path = to;
            return Ok(());
        }
        self.shared.rename_errors.fetch_add(1, Ordering::SeqCst);
        if self.store.lookup_path(&to).is_ok() {
            // Done, yet reported failed: excusable only if the server restarted meanwhile
            // (its duplicate request cache is gone); otherwise the cache should have answered
            // the retransmission with the original reply.
            if self.shared.server_boots.load(Ordering::SeqCst) == boots_before {
                return Err(format!(
                    "{}: rename to {to} reported an error although it was done and the server did not restart",
                    self.path
                )
                .into());
            }
            self.path = to;
        } else if self.store.lookup_path(&self.path).is_err() {
            return Err(format!("{}: gone after a failed rename to {to}", self.path).into());
        }
        Ok(())
    }

    /// A read must return the model's bytes — unless a write-back error is pending that the
    /// application has not been told about yet. Such an error is reported by the next
    /// `sync_all`: a mismatch it explains returns `Ok(false)` (recover); any other is a bug.
    async fn read_check(&mut self, file: &File) -> TaskResult<bool> {
        let offset = self.rng.below(self.model.len() as u64 + 1);
        let len = 1 + self.rng.below(64 << 10) as usize;
        let data = match file.read_bytes_at(offset, len).await {
            Ok(data) => data,
            // A failed READ is reported; nothing to check.
            Err(_) => return Ok(true),
        };
        let start = (offset as usize).min(self.model.len());
        let end = (start + len).min(self.model.len());
        if data[..] != self.model[start..end] {
            if file.sync_all().await.is_err() {
                return Ok(false);
            }
            return Err(format!(
                "{}: read of {len} at {offset} returned {} bytes that differ from what was written ({} expected)",
                self.path,
                data.len(),
                end - start
            )
            .into());
        }
        Ok(true)
    }

    /// After an error some bytes may be lost: write the whole model again and sync until
    /// that succeeds (what an application that got EIO from fsync must do).
    async fn recover(&mut self, file: &File) -> TaskResult<()> {
        // While faults fire, recovery may keep failing; once they stopped, it must succeed
        // within a few attempts (liveness).
        let mut attempts_after_faults = 0;
        while attempts_after_faults < 5 {
            if !self.shared.faulting.load(Ordering::SeqCst) {
                attempts_after_faults += 1;
            }
            // Reports (and so clears) any error still pending.
            let _ = file.sync_all().await;
            let mut ok = file.set_len(self.model.len() as u64).await.is_ok();
            for (i, chunk) in self.model.chunks(32 << 10).enumerate() {
                ok &= file.write_at(chunk, (i * (32 << 10)) as u64).await.is_ok();
            }
            if ok && file.sync_all().await.is_ok() {
                return self.check_durable("sync_all after recovery");
            }
        }
        Err(format!(
            "{}: could not rewrite the file in 5 attempts after the faults stopped",
            self.path
        )
        .into())
    }

    /// The server's durable content must be the model.
    fn check_durable(&self, after: &str) -> TaskResult<()> {
        let id = self
            .store
            .lookup_path(&self.path)
            .map_err(|e| format!("{}: not on the server: {e:?}", self.path))?;
        let durable = self.store.durable_content(id).unwrap_or_default();
        if durable != self.model {
            return Err(format!(
                "{}: after {after} returned Ok the server's durable content ({} bytes) differs from what was written ({} bytes), first at byte {}",
                self.path,
                durable.len(),
                self.model.len(),
                first_difference(&durable, &self.model)
            )
            .into());
        }
        Ok(())
    }

    /// Close-to-open: just after a successful close, another client opening the file reads
    /// what was written. (Its open or read may fail under faults; that is reported, not a
    /// wrong answer.)
    async fn check_other_client(&self) -> TaskResult<()> {
        let Ok(file) = self.observer.open(&self.path).await else {
            return Ok(());
        };
        let read = file.read_bytes_at(0, self.model.len() + 1).await;
        let _ = file.close().await;
        let Ok(data) = read else {
            return Ok(());
        };
        self.shared.observer_checks.fetch_add(1, Ordering::SeqCst);
        if data[..] != self.model[..] {
            return Err(format!(
                "{}: after close returned Ok another client read {} bytes that differ from what was written ({} bytes), first at byte {}",
                self.path,
                data.len(),
                self.model.len(),
                first_difference(&data, &self.model)
            )
            .into());
        }
        Ok(())
    }

    /// The client's cache stays within its bound.
    fn check_memory(&self) -> TaskResult<()> {
        let total = self.client.cache_stats().total_bytes();
        self.shared
            .peak_cache_bytes
            .fetch_max(total, Ordering::SeqCst);
        if total > self.memory_bound_bytes {
            return Err(format!(
                "the client's cache holds {total} bytes, over its bound of {}",
                self.memory_bound_bytes
            )
            .into());
        }
        Ok(())
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}
