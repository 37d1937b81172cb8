//! The executable statement of the design: a full check of the engine's state.
//!
//! [`Engine::check_invariants`] recomputes every counter and index from the extents and checks
//! the rules the write path rests on:
//!
//! - extents are non-empty, sorted, disjoint, within one chunk and within the file's size;
//! - every byte not known durable is in exactly one state: dirty, in flight, or unstable
//!   (the extent map gives each byte one state by construction; this checks that an in-flight
//!   extent *is* its WRITE's snapshot — the very same bytes of that WRITE's payload, at the
//!   matching offset — so a completion can only ever retire what it carried);
//! - WRITEs in flight for one file never overlap (they could otherwise be applied in either
//!   order by the server);
//! - accounting matches the states: bytes per state per file and in total, the `since`
//!   multisets, dirty bytes per chunk, the COMMIT index, the eviction index, the live and
//!   orphaned bytes of every WRITE, the in-flight call counts;
//! - versions, sequence numbers and calls referred to exist.
//!
//! In debug builds it runs after every input (every 1024th input once the cache holds more
//! than 4096 extents, to keep large debug runs usable) and panics on a violation.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::engine::Engine;
use crate::store::{Outstanding, State, StateBytes};

/// A broken invariant: a bug in the engine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invariant violated: {0}")]
pub struct InvariantViolation(pub String);

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(InvariantViolation(format!($($fmt)+)));
        }
    };
}

impl Engine {
    /// Checks the whole state (see the [module documentation](crate::invariants)). Cost is
    /// linear in the number of extents and calls in flight.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let store = &self.store;
        let chunk = store.chunk_bytes;
        let mut totals = StateBytes::default();
        let mut extent_count = 0u64;
        let mut chunks_by_dirty = BTreeSet::new();
        let mut clean_fifo = BTreeSet::new();
        let mut live: BTreeMap<_, u64> = BTreeMap::new();

        for (&ino, inode) in &store.inodes {
            ensure!(
                self.by_handle.get(&inode.handle) == Some(&ino),
                "inode {ino} not indexed by its handle"
            );
            let mut bytes = StateBytes::default();
            let mut since_pending = BTreeMap::new();
            let mut since_unstable = BTreeMap::new();
            let mut dirty_starts = BTreeSet::new();
            let mut dirty_chunks: BTreeMap<u64, u64> = BTreeMap::new();
            let mut unstable_by_seq = BTreeSet::new();
            let mut unstable_verfs: BTreeMap<[u8; 8], u32> = BTreeMap::new();
            let mut prev_end = 0u64;
            for (&start, ext) in &inode.extents {
                let len = ext.len();
                let end = start + len;
                ensure!(len > 0, "inode {ino}: empty extent at {start}");
                ensure!(
                    start >= prev_end,
                    "inode {ino}: extent at {start} overlaps the previous one (ends {prev_end})"
                );
                ensure!(
                    start / chunk == (end - 1) / chunk,
                    "inode {ino}: extent [{start}, {end}) crosses a chunk boundary"
                );
                ensure!(
                    end <= inode.size_bytes,
                    "inode {ino}: extent [{start}, {end}) past the size {}",
                    inode.size_bytes
                );
                prev_end = end;
                extent_count += 1;
                if !ext.state.is_clean() {
                    ensure!(
                        ext.since >= 1 && ext.since < self.next_version,
                        "inode {ino}: extent at {start} has version {} (next {})",
                        ext.since,
                        self.next_version
                    );
                }
                match ext.state {
                    State::Dirty => {
                        bytes.dirty += len;
                        *since_pending.entry(ext.since).or_insert(0u32) += 1;
                        dirty_starts.insert(start);
                        *dirty_chunks.entry(start / chunk).or_insert(0) += len;
                    }
                    State::InFlight { rpc } => {
                        bytes.inflight += len;
                        *since_pending.entry(ext.since).or_insert(0u32) += 1;
                        let Some(Outstanding::Write {
                            ino: write_ino,
                            offset,
                            data,
                            ..
                        }) = store.rpcs.get(&rpc)
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
                            ext.data.is_slice_of(data, (start - offset) as usize),
                            "inode {ino}: extent at {start} is not the snapshot {rpc:?} carries"
                        );
                        ensure!(
                            inode.inflight_writes.get(offset)
                                == Some(&(offset + data.len() as u64, rpc)),
                            "inode {ino}: {rpc:?} missing from the in-flight index"
                        );
                        *live.entry(rpc).or_insert(0) += len;
                    }
                    State::Unstable { verf, seq } => {
                        bytes.unstable += len;
                        ensure!(
                            seq >= 1 && seq < self.next_unstable_seq,
                            "inode {ino}: unstable seq {seq}"
                        );
                        *since_unstable.entry(ext.since).or_insert(0u32) += 1;
                        unstable_by_seq.insert((seq, start));
                        *unstable_verfs.entry(verf.0).or_insert(0) += 1;
                    }
                    State::Clean { seq } => {
                        bytes.clean += len;
                        ensure!(seq < self.next_clean_seq, "inode {ino}: clean seq {seq}");
                        clean_fifo.insert((seq, ino, start));
                    }
                }
            }
            ensure!(
                inode.bytes == bytes,
                "inode {ino}: bytes {:?} != {bytes:?}",
                inode.bytes
            );
            ensure!(
                inode.since_pending == since_pending,
                "inode {ino}: since_pending"
            );
            ensure!(
                inode.since_unstable == since_unstable,
                "inode {ino}: since_unstable"
            );
            ensure!(
                inode.dirty_starts == dirty_starts,
                "inode {ino}: dirty_starts"
            );
            ensure!(
                inode.dirty_chunks == dirty_chunks,
                "inode {ino}: dirty_chunks"
            );
            ensure!(
                inode.unstable_by_seq == unstable_by_seq,
                "inode {ino}: unstable index"
            );
            ensure!(
                inode.unstable_verfs == unstable_verfs,
                "inode {ino}: verifier counts"
            );
            for (&c, &b) in &dirty_chunks {
                chunks_by_dirty.insert((b, ino, c));
            }
            totals.dirty += bytes.dirty;
            totals.inflight += bytes.inflight;
            totals.unstable += bytes.unstable;
            totals.clean += bytes.clean;

            // WRITEs in flight never overlap.
            let mut prev_write_end = 0u64;
            for (&offset, &(end, rpc)) in &inode.inflight_writes {
                ensure!(
                    offset >= prev_write_end,
                    "inode {ino}: WRITEs in flight overlap at {offset}"
                );
                prev_write_end = end;
                match store.rpcs.get(&rpc) {
                    Some(Outstanding::Write {
                        ino: write_ino,
                        offset: o,
                        data,
                        ..
                    }) => ensure!(
                        *write_ino == ino && *o == offset && o + data.len() as u64 == end,
                        "inode {ino}: in-flight index entry {rpc:?} does not match the WRITE"
                    ),
                    _ => {
                        return Err(InvariantViolation(format!(
                            "inode {ino}: in-flight index names {rpc:?}, no WRITE"
                        )));
                    }
                }
            }
            if let Some(rpc) = inode.commit_in_flight {
                ensure!(
                    matches!(store.rpcs.get(&rpc), Some(Outstanding::Commit { ino: i, .. }) if *i == ino),
                    "inode {ino}: COMMIT {rpc:?} not in flight"
                );
            }
            for rpc in &inode.reads_in_flight {
                ensure!(
                    matches!(store.rpcs.get(rpc), Some(Outstanding::Read { ino: i, .. }) if *i == ino),
                    "inode {ino}: READ {rpc:?} not in flight"
                );
            }
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
                        matches!(store.rpcs.get(&rpc), Some(Outstanding::Setattr { ino: j }) if *j == ino),
                        "inode {ino}: SETATTR {rpc:?} not in flight"
                    );
                }
            }
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
            for file in &inode.opens {
                ensure!(
                    self.opens.get(file).is_some_and(|o| o.ino == ino),
                    "inode {ino}: open {file:?} missing"
                );
            }
            let rpcs_out = store.rpcs.values().filter(|o| o.ino() == ino).count();
            ensure!(
                inode.rpcs_out == rpcs_out,
                "inode {ino}: calls in flight {}",
                inode.rpcs_out
            );
        }

        ensure!(
            store.totals == totals,
            "totals {:?} != {totals:?}",
            store.totals
        );
        ensure!(store.extent_count == extent_count, "extent count");
        ensure!(
            store.chunks_by_dirty == chunks_by_dirty,
            "dirty chunk index"
        );
        ensure!(store.clean_fifo == clean_fifo, "clean eviction index");

        let mut orphan = 0u64;
        let mut writes = 0usize;
        let mut reads = 0usize;
        for (rpc, out) in &store.rpcs {
            ensure!(
                store.inodes.contains_key(&out.ino()),
                "{rpc:?} for a forgotten inode"
            );
            if out.is_read() {
                reads += 1;
            } else {
                writes += 1;
            }
            if let Outstanding::Write {
                data, live_bytes, ..
            } = out
            {
                let counted = live.get(rpc).copied().unwrap_or(0);
                ensure!(
                    *live_bytes == counted,
                    "{rpc:?}: live bytes {live_bytes} != {counted}"
                );
                orphan += data.len() as u64 - counted;
            }
        }
        ensure!(
            store.orphan_bytes == orphan,
            "orphan bytes {} != {orphan}",
            store.orphan_bytes
        );
        ensure!(
            self.writes_in_flight == writes,
            "writes in flight {}",
            self.writes_in_flight
        );
        ensure!(
            self.reads_in_flight == reads,
            "reads in flight {}",
            self.reads_in_flight
        );
        for (file, open) in &self.opens {
            ensure!(
                store
                    .inodes
                    .get(&open.ino)
                    .is_some_and(|i| i.opens.contains(file)),
                "open {file:?} not registered on its inode"
            );
        }
        Ok(())
    }
}
