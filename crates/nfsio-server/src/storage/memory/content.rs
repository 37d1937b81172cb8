//! File content and its durability, the crash model proper: READ, WRITE and COMMIT over a
//! file's volatile and durable contents, the faults a test queues for them (failed writes and
//! syncs, short writes), the crash that drops what was never made durable, and the two
//! contents as a test sees them.

use bytes::Bytes;
use nfsio_proto::nfs3::{Nfs3Status, StableHow, WccData};

use super::tree::{Kind, err};
use super::{Fault, MemStore};
use crate::storage::{Caller, FileId, ReadOutcome, StoreError, StoreResult, WriteOutcome, rules};

impl MemStore {
    /// Queues a fault for the next operation it applies to.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Drops the faults queued and not yet applied.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Simulates a crash of the machine: every file's volatile (unstable, uncommitted)
    /// content is replaced by its durable content.
    pub fn crash(&self) {
        let mut inner = self.lock();
        let mut used = 0u64;
        for node in inner.nodes.values_mut() {
            if let Kind::File {
                volatile, durable, ..
            } = &mut node.kind
            {
                volatile.clone_from(durable);
                used += durable.len() as u64;
            }
        }
        inner.used_bytes = used;
        inner.faults.clear();
    }

    /// The content READ sees (`None` for a stale id or a non-file).
    pub fn content(&self, id: FileId) -> Option<Vec<u8>> {
        match &self.lock().node(id).ok()?.kind {
            Kind::File { volatile, .. } => Some(volatile.clone()),
            _ => None,
        }
    }

    /// The content that would survive a crash now.
    pub fn durable_content(&self, id: FileId) -> Option<Vec<u8>> {
        match &self.lock().node(id).ok()?.kind {
            Kind::File { durable, .. } => Some(durable.clone()),
            _ => None,
        }
    }

    /// READ: the volatile content, what every write has changed.
    pub(super) fn read_file(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<ReadOutcome> {
        let inner = self.lock();
        let node = inner.node(id)?;
        rules::check_read(caller, &inner.fattr(id.ino, self.options.fsid)?)?;
        let Kind::File { volatile, .. } = &node.kind else {
            return err(if matches!(node.kind, Kind::Dir { .. }) {
                Nfs3Status::IsDir
            } else {
                Nfs3Status::Inval
            });
        };
        let len = volatile.len() as u64;
        let start = offset.min(len) as usize;
        let end = offset.saturating_add(u64::from(count)).min(len) as usize;
        let data = Bytes::copy_from_slice(&volatile[start..end]);
        Ok(ReadOutcome {
            data,
            eof: end as u64 >= len,
            attr: inner.fattr(id.ino, self.options.fsid)?,
        })
    }

    /// WRITE: into the volatile content, and into the durable one too when asked stable;
    /// the faults queued for writes and syncs apply here.
    pub(super) fn write_file(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        data: &Bytes,
        stable: StableHow,
    ) -> StoreResult<WriteOutcome> {
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        {
            let node = inner.node(id)?;
            if !matches!(node.kind, Kind::File { .. }) {
                return err(if matches!(node.kind, Kind::Dir { .. }) {
                    Nfs3Status::IsDir
                } else {
                    Nfs3Status::Inval
                });
            }
        }
        let before = inner.fattr(id.ino, fsid)?;
        rules::check_write(caller, &before)?;
        let cleared_mode = rules::mode_after_write(caller, &before);
        if let Some(Fault::WriteError(status)) =
            inner.take_fault(|f| matches!(f, Fault::WriteError(_)))
        {
            return Err(StoreError {
                status,
                lost_unstable_data: true,
            });
        }
        let mut len = data.len();
        if let Some(Fault::ShortWrite(max)) =
            inner.take_fault(|f| matches!(f, Fault::ShortWrite(_)))
        {
            len = len.min(max as usize);
        }
        let end = offset
            .checked_add(len as u64)
            .filter(|end| *end <= self.options.capacity_bytes)
            .ok_or(StoreError::new(Nfs3Status::FBig))?;
        let end = usize::try_from(end).map_err(|_| StoreError::new(Nfs3Status::FBig))?;
        let sync_fault = if stable != StableHow::Unstable {
            inner.take_fault(|f| matches!(f, Fault::SyncError(_)))
        } else {
            None
        };
        let now = inner.tick();
        let used = inner.used_bytes;
        let capacity = self.options.capacity_bytes;
        let node = inner.node_mut(id)?;
        let Kind::File {
            volatile, durable, ..
        } = &mut node.kind
        else {
            return err(Nfs3Status::Inval);
        };
        let old = volatile.len().max(durable.len());
        let grow = end.saturating_sub(old) as u64;
        if used.saturating_add(grow) > capacity {
            return Err(StoreError {
                status: Nfs3Status::NoSpc,
                lost_unstable_data: true,
            });
        }
        if volatile.len() < end {
            volatile.resize(end, 0);
        }
        volatile[offset as usize..end].copy_from_slice(&data[..len]);
        node.mtime = now;
        node.ctime = now;
        if let Some(mode) = cleared_mode {
            node.mode = mode;
        }
        if let Some(Fault::SyncError(status)) = sync_fault {
            // Writeback failed: what was not durable is gone.
            volatile.clone_from(durable);
            let new_used = used.saturating_sub(old as u64) + durable.len() as u64;
            inner.used_bytes = new_used;
            return Err(StoreError {
                status,
                lost_unstable_data: true,
            });
        }
        if stable != StableHow::Unstable {
            durable.clone_from(volatile);
        }
        let new_len = volatile.len().max(durable.len());
        inner.used_bytes = used.saturating_sub(old as u64) + new_len as u64;
        Ok(WriteOutcome {
            count: len as u32,
            committed: stable,
            wcc: inner.wcc(&before, id.ino, fsid),
        })
    }

    /// COMMIT: the volatile content becomes the durable one (the whole file, whatever the
    /// range), unless a queued sync fault drops the unstable data instead.
    pub(super) fn commit_file(
        &self,
        caller: &Caller,
        id: FileId,
        _offset: u64,
        _count: u32,
    ) -> StoreResult<WccData> {
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        let before = {
            let node = inner.node(id)?;
            if !matches!(node.kind, Kind::File { .. }) {
                return err(if matches!(node.kind, Kind::Dir { .. }) {
                    Nfs3Status::IsDir
                } else {
                    Nfs3Status::Inval
                });
            }
            inner.fattr(id.ino, fsid)?
        };
        rules::check_write(caller, &before)?;
        let fault = inner.take_fault(|f| matches!(f, Fault::SyncError(_)));
        let node = inner.node_mut(id)?;
        if let Kind::File {
            volatile, durable, ..
        } = &mut node.kind
        {
            if let Some(Fault::SyncError(status)) = fault {
                volatile.clone_from(durable);
                return Err(StoreError {
                    status,
                    lost_unstable_data: true,
                });
            }
            durable.clone_from(volatile);
        }
        Ok(inner.wcc(&before, id.ino, fsid))
    }
}
