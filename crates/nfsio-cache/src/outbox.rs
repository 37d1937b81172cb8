//! What the engine owes its callers: events for the shell, the results of finished syncs,
//! and the writers told to wait.
//!
//! The async shell drains [`Outbox::poll_event`] after every input (quinn-proto's
//! `poll_event`), so every wake-up and completion reaches it in the order it happened.

use std::collections::{BTreeMap, VecDeque};

use crate::api::{Event, FileError, SyncTicket, WaitToken};

/// Events, results and waiting writers.
#[derive(Debug)]
pub(crate) struct Outbox {
    events: VecDeque<Event>,
    completed: BTreeMap<SyncTicket, Result<(), FileError>>,
    /// Writers told to wait, with the bytes they want to write.
    blocked_writers: Vec<(WaitToken, u64)>,
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

    /// A writer of `len_bytes` is told to wait for room.
    pub(crate) fn block_writer(&mut self, len_bytes: u64) -> WaitToken {
        let token = self.token();
        self.blocked_writers.push((token, len_bytes));
        token
    }

    /// True when some writer waits for room.
    pub(crate) fn has_blocked_writers(&self) -> bool {
        !self.blocked_writers.is_empty()
    }

    /// Wakes the blocked writers for which `fits(len_bytes)`, in the order they blocked.
    pub(crate) fn wake_writers(&mut self, fits: impl Fn(u64) -> bool) {
        if self.blocked_writers.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for (token, len_bytes) in std::mem::take(&mut self.blocked_writers) {
            if fits(len_bytes) {
                self.events.push_back(Event::Wake(token));
            } else {
                still.push((token, len_bytes));
            }
        }
        self.blocked_writers = still;
    }
}
