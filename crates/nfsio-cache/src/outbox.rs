//! What the engine owes its callers: events for the shell, the results of finished syncs,
//! and the writers told to wait.
//!
//! The async shell drains [`Outbox::poll_event`] after every input (quinn-proto's
//! `poll_event`), so every wake-up and completion reaches it in the order it happened.

use std::collections::{BTreeMap, VecDeque};

use crate::api::{Event, FileError, SyncTicket, WaitToken};
use crate::inode_id::InodeId;

/// A writer told to wait: for room in the cache, or (`stream` set) in its stream's window.
#[derive(Debug, Clone, Copy)]
struct BlockedWriter {
    token: WaitToken,
    len_bytes: u64,
    stream: Option<InodeId>,
}

/// Events, results and waiting writers.
#[derive(Debug)]
pub(crate) struct Outbox {
    events: VecDeque<Event>,
    completed: BTreeMap<SyncTicket, Result<(), FileError>>,
    /// Writers told to wait, in the order they were.
    blocked_writers: Vec<BlockedWriter>,
    next_token: u64,
    next_ticket: u64,
}

impl Outbox {
    /// Nothing owed.
    pub(crate) fn new() -> Self {
        Self {
            events: VecDeque::new(),
            completed: BTreeMap::new(),
            blocked_writers: Vec::new(),
            next_token: 1,
            next_ticket: 1,
        }
    }

    /// A new token for a caller told to wait.
    pub(crate) fn token(&mut self) -> WaitToken {
        let token = WaitToken(self.next_token);
        self.next_token += 1;
        token
    }

    /// A new ticket for a `fsync`, `close` or `truncate`.
    pub(crate) fn ticket(&mut self) -> SyncTicket {
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        ticket
    }

    /// The ticket's result is in: kept for `poll_sync`, announced by an event.
    pub(crate) fn complete(&mut self, ticket: SyncTicket, result: Result<(), FileError>) {
        let previous = self.completed.insert(ticket, result);
        assert!(previous.is_none(), "{ticket:?} completed twice");
        self.events.push_back(Event::SyncDone(ticket));
    }

    /// The ticket's result, once.
    pub(crate) fn take_result(&mut self, ticket: SyncTicket) -> Option<Result<(), FileError>> {
        self.completed.remove(&ticket)
    }

    /// Tells these waiting callers to try again.
    pub(crate) fn wake(&mut self, tokens: impl IntoIterator<Item = WaitToken>) {
        self.events.extend(tokens.into_iter().map(Event::Wake));
    }

    /// The next event for the shell.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A writer of `len_bytes` is told to wait for room in the cache (`stream` None) or in
    /// the window of the stream `stream`.
    pub(crate) fn block_writer(&mut self, len_bytes: u64, stream: Option<InodeId>) -> WaitToken {
        let token = self.token();
        self.blocked_writers.push(BlockedWriter {
            token,
            len_bytes,
            stream,
        });
        token
    }

    /// True when some writer waits for room in the cache (memory pressure).
    pub(crate) fn has_blocked_writers(&self) -> bool {
        self.blocked_writers.iter().any(|w| w.stream.is_none())
    }

    /// True when a writer waits for room in `ino`'s stream window.
    pub(crate) fn has_blocked_stream(&self, ino: InodeId) -> bool {
        self.blocked_writers.iter().any(|w| w.stream == Some(ino))
    }

    /// Wakes the blocked writers for which `fits(len_bytes, stream)`, in the order they
    /// blocked.
    pub(crate) fn wake_writers(&mut self, fits: impl Fn(u64, Option<InodeId>) -> bool) {
        if self.blocked_writers.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for writer in std::mem::take(&mut self.blocked_writers) {
            if fits(writer.len_bytes, writer.stream) {
                self.events.push_back(Event::Wake(writer.token));
            } else {
                still.push(writer);
            }
        }
        self.blocked_writers = still;
    }
}
