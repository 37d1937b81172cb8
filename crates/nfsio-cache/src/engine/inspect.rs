//! The engine's outputs that are not calls, and its questions: events, sync results, the
//! next deadline and the tick that fires it, counters, and views for tests and the shell.

use nfsio_proto::nfs3::FileHandle;

use super::Engine;
use crate::api::{EngineStats, Event, ExtentInfo, ExtentState, FileError, FileId, SyncTicket};
use crate::extents::State;

impl Engine {
    /// The result of a `fsync`, `close` or `truncate`, once (`None` while pending, and after
    /// it has been taken).
    pub fn poll_sync(&mut self, ticket: SyncTicket) -> Option<Result<(), FileError>> {
        self.outbox.take_result(ticket)
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.outbox.poll_event()
    }

    /// When the engine next wants [`Engine::handle_timeout`] (a back-off ending, dirty bytes
    /// expiring), in the same clock as the `now_ms` arguments.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.schedule.next_deadline_ms()
    }

    /// Time passed: back-offs end, old dirty bytes are flushed.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.advance(now_ms);
        self.after_input();
    }

    /// The size the application sees (the server's, grown by cached writes, set by
    /// truncation).
    pub fn size_bytes(&self, file: FileId) -> Result<u64, FileError> {
        let open = self.opens.get(&file).ok_or(FileError::NotOpen)?;
        Ok(self.store.inode(open.ino).size_bytes)
    }

    /// Counters.
    pub fn stats(&self) -> EngineStats {
        let totals = self.store.index().totals();
        EngineStats {
            dirty_bytes: totals.dirty,
            inflight_bytes: totals.inflight,
            unstable_bytes: totals.unstable,
            clean_bytes: totals.clean,
            orphan_bytes: self.orphan_bytes(),
            extents: self.store.index().extent_count(),
            ..self.stats
        }
    }

    /// The cached extents of an open (or closing) file, in order, for inspection.
    pub fn extents(&self, file: FileId) -> Result<Vec<ExtentInfo>, FileError> {
        let open = self.opens.get(&file).ok_or(FileError::NotOpen)?;
        let inode = self.store.inode(open.ino);
        Ok(inode
            .extents
            .iter()
            .map(|(&start, ext)| ExtentInfo {
                offset_bytes: start,
                data: ext.data().bytes_range(0, ext.data().len()),
                state: match ext.state() {
                    State::Dirty => ExtentState::Dirty,
                    State::InFlight { rpc } => ExtentState::InFlight(rpc),
                    State::Unstable { verf, .. } => ExtentState::Unstable(verf),
                    State::Clean { .. } => ExtentState::Clean,
                },
                since_version: ext.since(),
            })
            .collect())
    }

    /// The files holding bytes not known durable on the server (dirty, in flight or awaiting
    /// COMMIT), with how many, in handle order: what would be lost if the engine stopped now.
    pub fn undurable_files(&self) -> Vec<(FileHandle, u64)> {
        let mut files: Vec<(FileHandle, u64)> = self
            .store
            .inodes()
            .map(|(_, inode)| (inode, inode.extents.bytes().nonclean()))
            .filter(|&(_, nonclean)| nonclean > 0)
            .map(|(inode, nonclean)| (inode.handle.clone(), nonclean))
            .collect();
        files.sort();
        files
    }

    /// The files open and not being closed, in order.
    pub fn open_files(&self) -> Vec<FileId> {
        self.opens
            .iter()
            .filter(|(_, open)| !open.closing)
            .map(|(&file, _)| file)
            .collect()
    }

    /// True when `handle` has bytes not known durable on the server (dirty, in flight or
    /// awaiting COMMIT) or a truncation not yet done: work the shell sends on behalf of
    /// whoever wrote it (it sends another's writes only after this is false).
    pub fn has_pending_writes(&self, handle: &FileHandle) -> bool {
        self.store
            .lookup(handle)
            .and_then(|ino| self.store.get(ino))
            .is_some_and(|inode| {
                inode.extents.bytes().nonclean() > 0 || !inode.truncates.is_empty()
            })
    }

    /// True when the engine holds this handle (open, cached or with work pending).
    pub fn holds(&self, handle: &FileHandle) -> bool {
        self.store.lookup(handle).is_some()
    }

    /// True while the file uses FILE_SYNC writes because its verifiers kept mismatching.
    pub fn is_file_sync(&self, file: FileId) -> Result<bool, FileError> {
        let open = self.opens.get(&file).ok_or(FileError::NotOpen)?;
        Ok(self.store.inode(open.ino).file_sync)
    }
}
