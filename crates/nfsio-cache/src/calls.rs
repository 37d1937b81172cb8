//! The calls in flight: the only keeper of what is in flight, engine-wide and per file.
//!
//! A call enters the table when the engine hands it to the shell ([`CallTable::start`]) and
//! leaves it when its reply is applied ([`CallTable::finish`]); the in-flight counts that
//! bound the pipeline, each file's index of its WRITEs, COMMIT and READs, and the bytes of
//! WRITE payloads in flight change there and nowhere else. Starting a WRITE that overlaps one
//! in flight panics (release builds too): the server may apply concurrent WRITEs in any
//! order, so two overlapping ones with different data could leave the older bytes last.

use std::collections::{BTreeMap, BTreeSet};

use nfsio_proto::nfs3::StableHow;

use crate::api::RpcId;
use crate::inode_id::InodeId;
use crate::invariants::{InvariantViolation, ensure};
use crate::ranges::RangeSet;
use crate::write_data::WriteData;

/// A call in flight.
#[derive(Debug)]
pub(crate) enum Call {
    /// WRITE `data` at `offset`.
    Write {
        ino: InodeId,
        offset: u64,
        data: WriteData,
        stable: StableHow,
    },
    /// COMMIT of every unstable extent with `seq <= upto_seq`.
    Commit { ino: InodeId, upto_seq: u64 },
    /// READ `count` bytes at `offset`.
    Read {
        ino: InodeId,
        offset: u64,
        count: u64,
        /// Bytes the reply may fill: uncached when the READ was sent and not written or
        /// truncated since.
        fillable: RangeSet,
        /// A truncation happened since: the reply says nothing about the size.
        truncated: bool,
    },
    /// SETATTR of the size (the file's oldest pending truncation).
    Setattr { ino: InodeId },
}

impl Call {
    /// The file the call is for.
    pub(crate) fn ino(&self) -> InodeId {
        match self {
            Call::Write { ino, .. }
            | Call::Commit { ino, .. }
            | Call::Read { ino, .. }
            | Call::Setattr { ino } => *ino,
        }
    }
}

/// One file's calls in flight, written only by the [`CallTable`].
#[derive(Debug)]
pub(crate) struct FileCalls {
    ino: InodeId,
    count: usize,
    /// WRITEs in flight: offset -> (end, rpc). They never overlap.
    writes: BTreeMap<u64, (u64, RpcId)>,
    commit: Option<RpcId>,
    reads: BTreeSet<RpcId>,
}

impl FileCalls {
    /// No calls in flight for `ino`.
    pub(crate) fn new(ino: InodeId) -> Self {
        Self {
            ino,
            count: 0,
            writes: BTreeMap::new(),
            commit: None,
            reads: BTreeSet::new(),
        }
    }

    /// No call of any kind in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// No WRITE in flight.
    pub(crate) fn no_writes(&self) -> bool {
        self.writes.is_empty()
    }

    /// The COMMIT in flight.
    pub(crate) fn commit(&self) -> Option<RpcId> {
        self.commit
    }

    /// The end of a WRITE in flight that overlaps `[start, end)`, if any.
    pub(crate) fn write_overlapping(&self, start: u64, end: u64) -> Option<u64> {
        let (_, &(write_end, _)) = self.writes.range(..end).next_back()?;
        (write_end > start).then_some(write_end)
    }

    /// True when a WRITE in flight reaches past `size_bytes`.
    pub(crate) fn write_past(&self, size_bytes: u64) -> bool {
        self.writes.range(size_bytes..).next().is_some()
            || self
                .writes
                .range(..size_bytes)
                .next_back()
                .is_some_and(|(_, &(end, _))| end > size_bytes)
    }
}

/// Every call in flight, and the counts that bound them.
#[derive(Debug)]
pub(crate) struct CallTable {
    calls: BTreeMap<RpcId, Call>,
    next_rpc: u64,
    /// WRITE, COMMIT and SETATTR calls in flight.
    writes_in_flight: usize,
    reads_in_flight: usize,
    /// Bytes of the payloads of the WRITEs in flight.
    write_payload_bytes: u64,
}

impl CallTable {
    /// No calls.
    pub(crate) fn new() -> Self {
        Self {
            calls: BTreeMap::new(),
            next_rpc: 1,
            writes_in_flight: 0,
            reads_in_flight: 0,
            write_payload_bytes: 0,
        }
    }

    /// The call in flight with this id.
    pub(crate) fn get(&self, rpc: RpcId) -> Option<&Call> {
        self.calls.get(&rpc)
    }

    /// Every call in flight.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&RpcId, &Call)> + '_ {
        self.calls.iter()
    }

    /// WRITE, COMMIT and SETATTR calls in flight.
    pub(crate) fn writes_in_flight(&self) -> usize {
        self.writes_in_flight
    }

    /// READ calls in flight.
    pub(crate) fn reads_in_flight(&self) -> usize {
        self.reads_in_flight
    }

    /// Bytes of the payloads of the WRITEs in flight (live in the cache or not).
    pub(crate) fn write_payload_bytes(&self) -> u64 {
        self.write_payload_bytes
    }

    /// Registers a call the engine is about to hand to the shell, for `file`'s calls; returns
    /// its id.
    pub(crate) fn start(&mut self, file: &mut FileCalls, call: Call) -> RpcId {
        assert_eq!(call.ino(), file.ino, "a call registered on another file");
        let id = RpcId(self.next_rpc);
        self.next_rpc += 1;
        match &call {
            Call::Write { offset, data, .. } => {
                let end = offset + data.len() as u64;
                assert!(
                    file.write_overlapping(*offset, end).is_none(),
                    "WRITE [{offset}, {end}) overlaps a WRITE in flight"
                );
                file.writes.insert(*offset, (end, id));
                self.write_payload_bytes += data.len() as u64;
                self.writes_in_flight += 1;
            }
            Call::Commit { .. } => {
                assert!(file.commit.is_none(), "two COMMITs in flight for one file");
                file.commit = Some(id);
                self.writes_in_flight += 1;
            }
            Call::Read { .. } => {
                file.reads.insert(id);
                self.reads_in_flight += 1;
            }
            Call::Setattr { .. } => self.writes_in_flight += 1,
        }
        file.count += 1;
        let previous = self.calls.insert(id, call);
        assert!(previous.is_none(), "rpc id reused");
        id
    }

    /// Takes a call whose reply is being applied out of the table and `file`'s index.
    pub(crate) fn finish(&mut self, file: &mut FileCalls, rpc: RpcId) -> Call {
        let call = self.calls.remove(&rpc).expect("call in flight");
        assert_eq!(call.ino(), file.ino, "a call finished on another file");
        match &call {
            Call::Write { offset, data, .. } => {
                let removed = file.writes.remove(offset);
                let end = offset + data.len() as u64;
                assert_eq!(removed, Some((end, rpc)), "in-flight WRITE index");
                self.write_payload_bytes -= data.len() as u64;
                self.writes_in_flight -= 1;
            }
            Call::Commit { .. } => {
                assert_eq!(file.commit, Some(rpc), "COMMIT in flight");
                file.commit = None;
                self.writes_in_flight -= 1;
            }
            Call::Read { .. } => {
                assert!(file.reads.remove(&rpc), "READ in flight");
                self.reads_in_flight -= 1;
            }
            Call::Setattr { .. } => self.writes_in_flight -= 1,
        }
        file.count -= 1;
        call
    }

    /// READs in flight for `file` must not fill `[start, end)` any more: their data is older.
    pub(crate) fn taint_reads(&mut self, file: &FileCalls, start: u64, end: u64) {
        for rpc in &file.reads {
            if let Some(Call::Read { fillable, .. }) = self.calls.get_mut(rpc) {
                fillable.remove(start, end);
            }
        }
    }

    /// A truncation happened while `file`'s READs were in flight: their replies say nothing
    /// about the size.
    pub(crate) fn truncate_reads(&mut self, file: &FileCalls) {
        for rpc in &file.reads {
            if let Some(Call::Read { truncated, .. }) = self.calls.get_mut(rpc) {
                *truncated = true;
            }
        }
    }

    /// The ranges `file`'s READs in flight asked for.
    pub(crate) fn read_ranges(&self, file: &FileCalls) -> Vec<(u64, u64)> {
        file.reads
            .iter()
            .filter_map(|rpc| match self.calls.get(rpc) {
                Some(Call::Read { offset, count, .. }) => Some((*offset, offset + count)),
                _ => None,
            })
            .collect()
    }
}

/// The call table's part of the whole-state check.
impl CallTable {
    /// A file's index of its calls names exactly its calls in flight: WRITEs (which never
    /// overlap) at their offsets, its COMMIT, its READs, and how many there are.
    pub(crate) fn check_file(&self, file: &FileCalls) -> Result<(), InvariantViolation> {
        let ino = file.ino;
        let mut prev_write_end = 0u64;
        for (&offset, &(end, rpc)) in &file.writes {
            ensure!(
                offset >= prev_write_end,
                "inode {ino}: WRITEs in flight overlap at {offset}"
            );
            prev_write_end = end;
            ensure!(
                matches!(self.calls.get(&rpc), Some(Call::Write { ino: i, offset: o, data, .. })
                    if *i == ino && *o == offset && o + data.len() as u64 == end),
                "inode {ino}: in-flight index entry {rpc:?} does not match a WRITE"
            );
        }
        if let Some(rpc) = file.commit {
            ensure!(
                matches!(self.calls.get(&rpc), Some(Call::Commit { ino: i, .. }) if *i == ino),
                "inode {ino}: COMMIT {rpc:?} not in flight"
            );
        }
        for rpc in &file.reads {
            ensure!(
                matches!(self.calls.get(rpc), Some(Call::Read { ino: i, .. }) if *i == ino),
                "inode {ino}: READ {rpc:?} not in flight"
            );
        }
        let mine: Vec<(&RpcId, &Call)> =
            self.calls.iter().filter(|(_, c)| c.ino() == ino).collect();
        ensure!(
            file.count == mine.len(),
            "inode {ino}: calls in flight {} != {}",
            file.count,
            mine.len()
        );
        for (rpc, call) in mine {
            let indexed = match call {
                Call::Write { offset, .. } => file.writes.get(offset).map(|w| w.1) == Some(*rpc),
                Call::Commit { .. } => file.commit == Some(*rpc),
                Call::Read { .. } => file.reads.contains(rpc),
                Call::Setattr { .. } => true,
            };
            ensure!(
                indexed,
                "inode {ino}: {rpc:?} missing from its file's index"
            );
        }
        Ok(())
    }

    /// The engine-wide counts are those of the calls: WRITE-side and READ calls in flight, the
    /// bytes of WRITE payloads; every id was handed out.
    pub(crate) fn check_counts(&self) -> Result<(), InvariantViolation> {
        let mut writes = 0usize;
        let mut reads = 0usize;
        let mut payload = 0u64;
        for (rpc, call) in &self.calls {
            ensure!(
                rpc.0 >= 1 && rpc.0 < self.next_rpc,
                "{rpc:?} never handed out"
            );
            match call {
                Call::Read { .. } => reads += 1,
                Call::Write { data, .. } => {
                    writes += 1;
                    payload += data.len() as u64;
                }
                Call::Commit { .. } | Call::Setattr { .. } => writes += 1,
            }
        }
        ensure!(
            self.writes_in_flight == writes,
            "writes in flight {} != {writes}",
            self.writes_in_flight
        );
        ensure!(
            self.reads_in_flight == reads,
            "reads in flight {} != {reads}",
            self.reads_in_flight
        );
        ensure!(
            self.write_payload_bytes == payload,
            "WRITE payload bytes {} != {payload}",
            self.write_payload_bytes
        );
        Ok(())
    }
}
