//! The extent map's part of the whole-state check: each function states one invariant and
//! recomputes what it needs from the extents themselves, independently of the incremental
//! accounting it checks.

use std::collections::{BTreeMap, BTreeSet};

use super::{ExtentIndex, ExtentMap, State, StateBytes};
use crate::inode_id::InodeId;
use crate::invariants::{InvariantViolation, ensure};

impl ExtentMap {
    /// Extents are non-empty, sorted, disjoint, each within one chunk and within the file's
    /// size.
    pub(crate) fn check_layout(
        &self,
        ino: InodeId,
        chunk_bytes: u64,
        size_bytes: u64,
    ) -> Result<(), InvariantViolation> {
        let mut prev_end = 0u64;
        for (&start, ext) in &self.extents {
            let len = ext.len();
            let end = start + len;
            ensure!(len > 0, "inode {ino}: empty extent at {start}");
            ensure!(
                start >= prev_end,
                "inode {ino}: extent at {start} overlaps the previous one (ends {prev_end})"
            );
            ensure!(
                start / chunk_bytes == (end - 1) / chunk_bytes,
                "inode {ino}: extent [{start}, {end}) crosses a chunk boundary"
            );
            ensure!(
                end <= size_bytes,
                "inode {ino}: extent [{start}, {end}) past the size {size_bytes}"
            );
            prev_end = end;
        }
        Ok(())
    }

    /// Every non-clean extent owes an application write that happened (`1 <= since <
    /// next_version`); every sequence number was handed out.
    pub(crate) fn check_versions(
        &self,
        ino: InodeId,
        next_version: u64,
        all: &ExtentIndex,
    ) -> Result<(), InvariantViolation> {
        for (&start, ext) in &self.extents {
            if !ext.state.is_clean() {
                ensure!(
                    ext.since >= 1 && ext.since < next_version,
                    "inode {ino}: extent at {start} has version {} (next {next_version})",
                    ext.since
                );
            }
            match ext.state {
                State::Unstable { seq, .. } => ensure!(
                    seq >= 1 && seq < all.next_unstable_seq,
                    "inode {ino}: unstable seq {seq}"
                ),
                State::Clean { seq } => {
                    ensure!(seq < all.next_clean_seq, "inode {ino}: clean seq {seq}")
                }
                State::Dirty | State::InFlight { .. } => {}
            }
        }
        Ok(())
    }

    /// The file's indexes are exactly those of its extents: bytes per state, the `since`
    /// multisets, the dirty starts and bytes per chunk, the COMMIT index, the verifier counts.
    pub(crate) fn check_file_index(
        &self,
        ino: InodeId,
        chunk_bytes: u64,
    ) -> Result<(), InvariantViolation> {
        let mut bytes = StateBytes::default();
        let mut since_pending = BTreeMap::new();
        let mut since_unstable = BTreeMap::new();
        let mut dirty_starts = BTreeSet::new();
        let mut dirty_chunks: BTreeMap<u64, u64> = BTreeMap::new();
        let mut unstable_by_seq = BTreeSet::new();
        let mut unstable_verfs: BTreeMap<[u8; 8], u32> = BTreeMap::new();
        for (&start, ext) in &self.extents {
            let len = ext.len();
            match ext.state {
                State::Dirty => {
                    bytes.dirty += len;
                    *since_pending.entry(ext.since).or_insert(0u32) += 1;
                    dirty_starts.insert(start);
                    *dirty_chunks.entry(start / chunk_bytes).or_insert(0) += len;
                }
                State::InFlight { .. } => {
                    bytes.inflight += len;
                    *since_pending.entry(ext.since).or_insert(0u32) += 1;
                }
                State::Unstable { verf, seq } => {
                    bytes.unstable += len;
                    *since_unstable.entry(ext.since).or_insert(0u32) += 1;
                    unstable_by_seq.insert((seq, start));
                    *unstable_verfs.entry(verf.0).or_insert(0) += 1;
                }
                State::Clean { .. } => bytes.clean += len,
            }
        }
        let index = &self.index;
        ensure!(
            index.bytes == bytes,
            "inode {ino}: bytes {:?} != {bytes:?}",
            index.bytes
        );
        ensure!(
            index.since_pending == since_pending,
            "inode {ino}: since_pending"
        );
        ensure!(
            index.since_unstable == since_unstable,
            "inode {ino}: since_unstable"
        );
        ensure!(
            index.dirty_starts == dirty_starts,
            "inode {ino}: dirty_starts"
        );
        ensure!(
            index.dirty_chunks == dirty_chunks,
            "inode {ino}: dirty_chunks"
        );
        ensure!(
            index.unstable_by_seq == unstable_by_seq,
            "inode {ino}: unstable index"
        );
        ensure!(
            index.unstable_verfs == unstable_verfs,
            "inode {ino}: verifier counts"
        );
        Ok(())
    }
}

impl ExtentIndex {
    /// The engine-wide indexes are exactly those of every file's extents: bytes per state,
    /// the extent count, the dirty-chunk index, the clean-eviction index.
    pub(crate) fn check<'a>(
        &self,
        files: impl Iterator<Item = (InodeId, &'a ExtentMap)>,
    ) -> Result<(), InvariantViolation> {
        let chunk_bytes = self.chunk_bytes;
        let mut totals = StateBytes::default();
        let mut extent_count = 0u64;
        let mut chunks_by_dirty = BTreeSet::new();
        let mut clean_fifo = BTreeSet::new();
        for (ino, map) in files {
            let mut dirty_chunks: BTreeMap<u64, u64> = BTreeMap::new();
            for (&start, ext) in &map.extents {
                let len = ext.len();
                extent_count += 1;
                match ext.state {
                    State::Dirty => {
                        totals.dirty += len;
                        *dirty_chunks.entry(start / chunk_bytes).or_insert(0) += len;
                    }
                    State::InFlight { .. } => totals.inflight += len,
                    State::Unstable { .. } => totals.unstable += len,
                    State::Clean { seq } => {
                        totals.clean += len;
                        clean_fifo.insert((seq, ino, start));
                    }
                }
            }
            for (chunk, dirty) in dirty_chunks {
                chunks_by_dirty.insert((std::cmp::Reverse(dirty), ino, chunk));
            }
        }
        ensure!(
            self.totals == totals,
            "totals {:?} != {totals:?}",
            self.totals
        );
        ensure!(self.extent_count == extent_count, "extent count");
        ensure!(self.chunks_by_dirty == chunks_by_dirty, "dirty chunk index");
        ensure!(self.clean_fifo == clean_fifo, "clean eviction index");
        Ok(())
    }
}
