//! The whole-state check: the pieces each sub-state states about itself, and the ones that
//! relate sub-states to each other (see [`crate::invariants`] for the list).

use super::Engine;
use crate::calls::Call;
use crate::extents::State;
use crate::inode_id::InodeId;
use crate::invariants::{InvariantViolation, ensure};
use crate::store::Inode;

impl Engine {
    /// Checks the whole state (see the [module documentation](crate::invariants)). Cost is
    /// linear in the number of extents and calls in flight.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let chunk_bytes = self.store.index().chunk_bytes();
        self.store.check_handles()?;
        for (ino, inode) in self.store.inodes() {
            inode
                .extents
                .check_layout(ino, chunk_bytes, inode.size_bytes)?;
            inode
                .extents
                .check_versions(ino, self.next_version, self.store.index())?;
            inode.extents.check_file_index(ino, chunk_bytes)?;
            self.check_snapshots(ino, inode)?;
            self.calls.check_file(&inode.calls)?;
            self.check_truncations(ino, inode)?;
            self.check_syncs(ino, inode)?;
            self.check_file_opens(ino, inode)?;
        }
        self.store.index().check(
            self.store
                .inodes()
                .map(|(ino, inode)| (ino, &inode.extents)),
        )?;
        self.calls.check_counts()?;
        self.check_calls_have_files()?;
        self.check_payload_covers_in_flight()?;
        self.check_opens_registered()?;
        self.schedule
            .check(self.store.inodes().map(|(ino, inode)| (ino, &inode.timers)))?;
        self.check_work_is_scheduled()
    }

    /// Every in-flight extent *is* its WRITE's snapshot: a WRITE of this file in flight, whose
    /// payload holds the very same bytes at the matching offset.
    fn check_snapshots(&self, ino: InodeId, inode: &Inode) -> Result<(), InvariantViolation> {
        for (&start, ext) in inode.extents.iter() {
            let State::InFlight { rpc } = ext.state() else {
                continue;
            };
            let end = start + ext.len();
            let Some(Call::Write {
                ino: write_ino,
                offset,
                data,
                ..
            }) = self.calls.get(rpc)
            else {
                return Err(InvariantViolation(format!(
                    "inode {ino}: extent at {start} in flight in {rpc:?}, which is no WRITE in flight"
                )));
            };
            ensure!(*write_ino == ino, "{rpc:?} belongs to another inode");
            ensure!(
                start >= *offset && end <= offset + data.len() as u64,
                "inode {ino}: extent [{start}, {end}) outside its WRITE {rpc:?}"
            );
            ensure!(
                ext.data().is_slice_of(data, (start - offset) as usize),
                "inode {ino}: extent at {start} is not the snapshot {rpc:?} carries"
            );
        }
        Ok(())
    }

    /// Truncations are queued in version order; only the oldest has a SETATTR, in flight.
    fn check_truncations(&self, ino: InodeId, inode: &Inode) -> Result<(), InvariantViolation> {
        let mut prev_version = 0;
        for (i, truncate) in inode.truncates.iter().enumerate() {
            ensure!(
                truncate.version > prev_version,
                "inode {ino}: truncations out of order"
            );
            prev_version = truncate.version;
            if let Some(rpc) = truncate.rpc {
                ensure!(
                    i == 0,
                    "inode {ino}: SETATTR for a truncation that is not the oldest"
                );
                ensure!(
                    matches!(self.calls.get(rpc), Some(Call::Setattr { ino: j }) if *j == ino),
                    "inode {ino}: SETATTR {rpc:?} not in flight"
                );
            }
        }
        Ok(())
    }

    /// Syncs are queued in version order, each for a file open on this inode.
    fn check_syncs(&self, ino: InodeId, inode: &Inode) -> Result<(), InvariantViolation> {
        let mut prev_version = 0;
        for sync in &inode.syncs {
            ensure!(
                sync.version >= prev_version,
                "inode {ino}: syncs out of order"
            );
            prev_version = sync.version;
            ensure!(
                self.opens.get(&sync.file).is_some_and(|o| o.ino == ino),
                "inode {ino}: sync for a file that is not open on it"
            );
        }
        Ok(())
    }

    /// Every open an inode lists is open on it.
    fn check_file_opens(&self, ino: InodeId, inode: &Inode) -> Result<(), InvariantViolation> {
        for file in &inode.opens {
            ensure!(
                self.opens.get(file).is_some_and(|o| o.ino == ino),
                "inode {ino}: open {file:?} missing"
            );
        }
        Ok(())
    }

    /// Every open file is registered on its inode.
    fn check_opens_registered(&self) -> Result<(), InvariantViolation> {
        for (file, open) in &self.opens {
            ensure!(
                self.store
                    .get(open.ino)
                    .is_some_and(|i| i.opens.contains(file)),
                "open {file:?} not registered on its inode"
            );
        }
        Ok(())
    }

    /// Every call in flight is for a cached file.
    fn check_calls_have_files(&self) -> Result<(), InvariantViolation> {
        for (rpc, call) in self.calls.iter() {
            ensure!(
                self.store.get(call.ino()).is_some(),
                "{rpc:?} for a forgotten inode"
            );
        }
        Ok(())
    }

    /// The bytes in flight in the cache are part of the WRITE payloads in flight (the rest
    /// are orphans: overwritten, truncated or bridging).
    fn check_payload_covers_in_flight(&self) -> Result<(), InvariantViolation> {
        let inflight = self.store.index().totals().inflight;
        let payload = self.calls.write_payload_bytes();
        ensure!(
            payload >= inflight,
            "{inflight} bytes in flight but only {payload} in WRITE payloads"
        );
        Ok(())
    }

    /// Every file with work (non-clean bytes, syncs, truncations, wanted reads, a kick) is
    /// active, so the round robin and the timers see it.
    fn check_work_is_scheduled(&self) -> Result<(), InvariantViolation> {
        for (ino, inode) in self.store.inodes() {
            ensure!(
                !inode.has_work() || self.schedule.is_active(ino),
                "inode {ino} has work but is not scheduled"
            );
        }
        Ok(())
    }
}
