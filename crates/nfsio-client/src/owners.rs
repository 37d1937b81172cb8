//! Whose credentials the write-back sends each call with.
//!
//! The engine does not know callers. This remembers, per file handle, the one caller whose
//! bytes are not yet durable (its *owner*): the shell sends that file's WRITEs, COMMITs and
//! truncating SETATTRs as the owner, also the resends after a verifier change and the
//! background write-back of files already closed. A write (or truncation) by another caller
//! to a file with the owner's work pending first makes that work durable (an `fsync` the
//! writer waits for, as Linux's `nfs_flush_incompatible` does), and only then becomes the
//! owner: nobody's bytes are ever sent with someone else's credentials. READs go as the
//! caller that last read the file.

use std::collections::HashMap;
use std::sync::Arc;

use nfsio_cache::{Engine, FileError, FileId, Op, SyncTicket, Transmit};
use nfsio_proto::nfs3::FileHandle;
use tokio::sync::oneshot;
use tracing::debug;

use crate::procedures::Procedures;

/// An open file's handle and the procedures acting as whoever opened it.
struct Opener {
    handle: FileHandle,
    nfs: Arc<Procedures>,
}

/// Who opened each file, who owns each file's pending writes, who read it last, and the
/// `fsync`s a writer waits for before it may write.
#[derive(Default)]
pub(crate) struct Owners {
    opens: HashMap<FileId, Opener>,
    owners: HashMap<FileHandle, Arc<Procedures>>,
    readers: HashMap<FileHandle, Arc<Procedures>>,
    /// `fsync`s started to make another caller's pending writes durable before a write,
    /// with the writer's open file and the writer to wake.
    flushes: HashMap<SyncTicket, (FileId, oneshot::Sender<()>)>,
    /// Errors of those `fsync`s, for the writer's next attempt to report.
    flush_errors: HashMap<FileId, FileError>,
    sweep: Sweep,
}

/// When to sweep a map of handles for those the engine no longer holds: at 1024 entries,
/// then whenever the map has doubled since the last sweep. The engine may hold every handle
/// (thousands of small files cached clean); a sweep at every insertion past a fixed size
/// would then cost a scan of the map each, O(n^2) over a tree copy, where this costs O(1)
/// per insertion amortized.
#[derive(Debug)]
pub(crate) struct Sweep {
    at_len: usize,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            at_len: Self::FIRST_AT_LEN,
        }
    }
}

impl Sweep {
    const FIRST_AT_LEN: usize = 1024;

    /// True when a map of `len` entries is due for a sweep.
    pub(crate) fn due(&self, len: usize) -> bool {
        len >= self.at_len
    }

    /// The map was swept down to `len` entries.
    pub(crate) fn swept(&mut self, len: usize) {
        self.at_len = len.saturating_mul(2).max(Self::FIRST_AT_LEN);
    }
}

impl Owners {
    /// `file` was opened on `handle` by the caller `nfs` acts as.
    pub(crate) fn opened(&mut self, file: FileId, handle: FileHandle, nfs: Arc<Procedures>) {
        self.opens.insert(file, Opener { handle, nfs });
    }

    /// `file` is closed: nothing more is written or read through it.
    pub(crate) fn closed(&mut self, file: FileId) {
        self.opens.remove(&file);
        self.flush_errors.remove(&file);
    }

    /// `file`'s opener reads: the file's READs act as them from now on.
    pub(crate) fn read_by(&mut self, file: FileId) {
        if let Some(opener) = self.opens.get(&file) {
            let (handle, nfs) = (opener.handle.clone(), Arc::clone(&opener.nfs));
            self.readers.insert(handle, nfs);
        }
    }

    /// Forgets the callers of handles the engine no longer holds, once there are many.
    pub(crate) fn prune(&mut self, engine: &Engine) {
        if self.sweep.due(self.owners.len() + self.readers.len()) {
            self.owners.retain(|handle, _| engine.holds(handle));
            self.readers.retain(|handle, _| engine.holds(handle));
            self.sweep.swept(self.owners.len() + self.readers.len());
        }
    }

    /// Takes the result of `ticket` if it is a writer's `fsync` of another caller's writes
    /// (keeping an error for the writer's next attempt, then waking it); false otherwise.
    pub(crate) fn flush_done(&mut self, ticket: SyncTicket, result: Result<(), FileError>) -> bool {
        let Some((file, tx)) = self.flushes.remove(&ticket) else {
            return false;
        };
        if let Err(error) = result {
            self.flush_errors.insert(file, error);
        }
        let _ = tx.send(());
        true
    }

    /// True when `ticket` is a writer's `fsync` of another caller's writes.
    pub(crate) fn is_flush(&self, ticket: SyncTicket) -> bool {
        self.flushes.contains_key(&ticket)
    }

    /// Makes the caller that opened `file` the owner of its handle's pending writes, unless
    /// another caller's are pending: then starts an `fsync` of them and returns the receiver
    /// woken when it is done (try again then). An error of an earlier such `fsync` is
    /// returned now.
    pub(crate) fn claim(
        &mut self,
        engine: &mut Engine,
        file: FileId,
        now_ms: u64,
    ) -> Result<Option<oneshot::Receiver<()>>, FileError> {
        if let Some(error) = self.flush_errors.remove(&file) {
            return Err(error);
        }
        let Some(opener) = self.opens.get(&file) else {
            // Not open: the engine says so.
            return Ok(None);
        };
        let (handle, nfs) = (opener.handle.clone(), Arc::clone(&opener.nfs));
        let other_pending = self
            .owners
            .get(&handle)
            .is_some_and(|owner| owner.cred() != nfs.cred() && engine.has_pending_writes(&handle));
        if !other_pending {
            self.owners.insert(handle, nfs);
            return Ok(None);
        }
        debug!("another caller's writes are pending: making them durable first");
        let ticket = engine.fsync(file, now_ms)?;
        if let Some(result) = engine.poll_sync(ticket) {
            // Nothing written before now was left to wait for after all.
            result?;
            self.owners.insert(handle, nfs);
            return Ok(None);
        }
        let (tx, rx) = oneshot::channel();
        self.flushes.insert(ticket, (file, tx));
        Ok(Some(rx))
    }

    /// The procedures `transmit` is sent through: the handle's owner for the write-back, its
    /// last reader for READs (else its owner), else the client's own (`default`).
    pub(crate) fn sender(&self, transmit: &Transmit, default: &Arc<Procedures>) -> Arc<Procedures> {
        let by = match transmit.op {
            Op::Read { .. } => self.readers.get(&transmit.handle),
            _ => None,
        };
        by.or_else(|| self.owners.get(&transmit.handle))
            .unwrap_or(default)
            .clone()
    }
}

#[cfg(test)]
mod sweep_tests {
    use super::Sweep;

    /// A map the engine never lets shrink (every handle still cached), grown to 10,000
    /// entries one insertion at a time, sweeping whenever due: a handful of sweeps, not one
    /// per insertion past 1024 (8,977 with a fixed threshold).
    #[test]
    fn a_map_of_held_handles_is_swept_a_logarithmic_number_of_times() {
        let mut sweep = Sweep::default();
        let mut sweeps = 0;
        for len in 1..=10_000usize {
            if sweep.due(len) {
                sweeps += 1;
                sweep.swept(len);
            }
        }
        assert!(sweeps <= 5, "{sweeps} sweeps for 10,000 insertions");
    }

    /// A map that sweeps down to few entries is swept again at the first threshold.
    #[test]
    fn a_map_that_empties_is_swept_again_at_1024() {
        let mut sweep = Sweep::default();
        assert!(!sweep.due(1023));
        assert!(sweep.due(1024));
        sweep.swept(10);
        assert!(!sweep.due(1023));
        assert!(sweep.due(1024));
    }
}
