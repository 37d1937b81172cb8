//! Which files have work, and when the engine next needs the clock: one index of deadlines
//! per kind of timer, so that the next deadline is a lookup and a tick fires only what is due.
//!
//! Two timers per file: `Retry` (a back-off after `NFS3ERR_JUKEBOX` or a call without an
//! answer ends: the file's calls may be sent again) and `DirtyExpiry` (its non-clean bytes
//! have waited `dirty_expire_ms`: they get a flush target, like a `fsync` without a ticket).
//! A file's deadlines are armed only while the file is *active* (it may have work); the
//! shell is told the earliest armed one ([`Schedule::next_deadline_ms`]). The per-file
//! values live in [`FileTimers`], written only here, together with the index.

use std::collections::BTreeSet;

use crate::config::Backoff;
use crate::inode_id::InodeId;
use crate::invariants::{InvariantViolation, ensure};

/// A kind of timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A back-off ends.
    Retry,
    /// Non-clean bytes have waited `dirty_expire_ms`.
    DirtyExpiry,
}

/// One file's timers and what the expiry timer started, written only by the [`Schedule`].
#[derive(Debug, Default)]
pub(crate) struct FileTimers {
    /// When the back-off ends.
    retry_at_ms: Option<u64>,
    /// The last back-off (0: none since the last success); it doubles.
    backoff_ms: u64,
    /// Since when the file has held non-clean bytes (restarted when the expiry fires).
    nonclean_since_ms: Option<u64>,
    /// The flush target the expiry set: every byte written up to this version.
    kick_version: Option<u64>,
}

impl FileTimers {
    /// True while a back-off holds the file's calls.
    pub(crate) fn in_backoff(&self, now_ms: u64) -> bool {
        self.retry_at_ms.is_some_and(|at| at > now_ms)
    }

    /// The flush target set by dirty expiry, while not reached.
    pub(crate) fn kick_version(&self) -> Option<u64> {
        self.kick_version
    }

    fn deadline_ms(&self, timer: Timer, dirty_expire_ms: u64) -> Option<u64> {
        match timer {
            Timer::Retry => self.retry_at_ms,
            Timer::DirtyExpiry => match (self.kick_version, self.nonclean_since_ms) {
                (None, Some(since)) => Some(since.saturating_add(dirty_expire_ms)),
                _ => None,
            },
        }
    }
}

/// The active files, the armed deadlines by kind, and where the round robin resumes.
#[derive(Debug)]
pub(crate) struct Schedule {
    dirty_expire_ms: u64,
    backoff: Backoff,
    /// Files that may have work: non-clean bytes, syncs, truncations, wanted reads, a kick.
    active: BTreeSet<InodeId>,
    /// (deadline, file) of every active file's back-off.
    retry_ms: BTreeSet<(u64, InodeId)>,
    /// (deadline, file) of every active file's dirty expiry.
    dirty_expiry_ms: BTreeSet<(u64, InodeId)>,
    /// Where the round robin over active files resumes.
    rr_cursor: InodeId,
}

impl Schedule {
    /// No active files; the timers' lengths from the configuration.
    pub(crate) fn new(dirty_expire_ms: u64, backoff: Backoff) -> Self {
        Self {
            dirty_expire_ms,
            backoff,
            active: BTreeSet::new(),
            retry_ms: BTreeSet::new(),
            dirty_expiry_ms: BTreeSet::new(),
            rr_cursor: 0,
        }
    }

    fn index(&mut self, timer: Timer) -> &mut BTreeSet<(u64, InodeId)> {
        match timer {
            Timer::Retry => &mut self.retry_ms,
            Timer::DirtyExpiry => &mut self.dirty_expiry_ms,
        }
    }

    fn arm(&mut self, ino: InodeId, timers: &FileTimers) {
        for timer in [Timer::Retry, Timer::DirtyExpiry] {
            if let Some(at) = timers.deadline_ms(timer, self.dirty_expire_ms) {
                let added = self.index(timer).insert((at, ino));
                assert!(added, "{timer:?} of inode {ino} armed twice");
            }
        }
    }

    fn disarm(&mut self, ino: InodeId, timers: &FileTimers) {
        for timer in [Timer::Retry, Timer::DirtyExpiry] {
            if let Some(at) = timers.deadline_ms(timer, self.dirty_expire_ms) {
                let removed = self.index(timer).remove(&(at, ino));
                assert!(removed, "{timer:?} of inode {ino} not armed");
            }
        }
    }

    /// Applies `change` to the file's timers, keeping its armed deadlines in step.
    fn change(
        &mut self,
        ino: InodeId,
        timers: &mut FileTimers,
        change: impl FnOnce(&mut FileTimers),
    ) {
        if !self.active.contains(&ino) {
            change(timers);
            return;
        }
        let expire = self.dirty_expire_ms;
        let before = [Timer::Retry, Timer::DirtyExpiry].map(|t| timers.deadline_ms(t, expire));
        change(timers);
        for (i, timer) in [Timer::Retry, Timer::DirtyExpiry].into_iter().enumerate() {
            let after = timers.deadline_ms(timer, expire);
            if before[i] == after {
                continue;
            }
            if let Some(at) = before[i] {
                let removed = self.index(timer).remove(&(at, ino));
                assert!(removed, "{timer:?} of inode {ino} not armed");
            }
            if let Some(at) = after {
                let added = self.index(timer).insert((at, ino));
                assert!(added, "{timer:?} of inode {ino} armed twice");
            }
        }
    }

    /// The file may have work: it takes part in the round robin and its deadlines are armed.
    pub(crate) fn activate(&mut self, ino: InodeId, timers: &FileTimers) {
        if self.active.insert(ino) {
            self.arm(ino, timers);
        }
    }

    /// The file has no work (or is forgotten): out of the round robin, deadlines disarmed.
    pub(crate) fn deactivate(&mut self, ino: InodeId, timers: &FileTimers) {
        if self.active.remove(&ino) {
            self.disarm(ino, timers);
        }
    }

    /// True while the file may have work.
    pub(crate) fn is_active(&self, ino: InodeId) -> bool {
        self.active.contains(&ino)
    }

    /// Active files, starting after the last one served (round robin), into `out` (cleared
    /// first; its memory is reused).
    pub(crate) fn rotation_into(&self, out: &mut Vec<InodeId>) {
        let cursor = self.rr_cursor;
        out.clear();
        out.extend(
            self.active
                .range(cursor..)
                .chain(self.active.range(..cursor))
                .copied(),
        );
    }

    /// The round robin resumes after `ino`.
    pub(crate) fn served(&mut self, ino: InodeId) {
        self.rr_cursor = ino + 1;
    }

    /// Holds the file's calls for the next wait of the [`Backoff`].
    pub(crate) fn back_off(&mut self, ino: InodeId, timers: &mut FileTimers, now_ms: u64) {
        let backoff = self.backoff;
        self.change(ino, timers, |t| {
            t.backoff_ms = backoff.next_ms(t.backoff_ms);
            t.retry_at_ms = Some(now_ms + t.backoff_ms);
        });
    }

    /// A call of the file succeeded: no back-off.
    pub(crate) fn reset_backoff(&mut self, ino: InodeId, timers: &mut FileTimers) {
        self.change(ino, timers, |t| {
            t.backoff_ms = 0;
            t.retry_at_ms = None;
        });
    }

    /// Tracks the age of the file's non-clean bytes, whose oldest `since` is
    /// `min_nonclean_since`: the kick is done once none at or below its version is left; the
    /// age starts `now_ms` when the first appear and ends when the last go.
    pub(crate) fn track_nonclean(
        &mut self,
        ino: InodeId,
        timers: &mut FileTimers,
        min_nonclean_since: Option<u64>,
        now_ms: u64,
    ) {
        self.change(ino, timers, |t| {
            if t.kick_version
                .is_some_and(|k| min_nonclean_since.is_none_or(|v| v > k))
            {
                t.kick_version = None;
            }
            if min_nonclean_since.is_none() {
                t.nonclean_since_ms = None;
            } else if t.nonclean_since_ms.is_none() {
                t.nonclean_since_ms = Some(now_ms);
            }
        });
    }

    /// When the engine next wants the clock: the earliest armed deadline of any kind.
    pub(crate) fn next_deadline_ms(&self) -> Option<u64> {
        let retry = self.retry_ms.first().map(|&(at, _)| at);
        let expiry = self.dirty_expiry_ms.first().map(|&(at, _)| at);
        retry.into_iter().chain(expiry).min()
    }

    /// A timer due at `now_ms`, if any (fire it with [`Schedule::fire`]).
    pub(crate) fn due(&self, now_ms: u64) -> Option<(Timer, InodeId)> {
        let due = |index: &BTreeSet<(u64, InodeId)>| {
            index
                .first()
                .filter(|&&(at, _)| at <= now_ms)
                .map(|&(_, ino)| ino)
        };
        due(&self.retry_ms)
            .map(|ino| (Timer::Retry, ino))
            .or_else(|| due(&self.dirty_expiry_ms).map(|ino| (Timer::DirtyExpiry, ino)))
    }

    /// Fires a due timer of the file: a back-off ends; or expired non-clean bytes get a flush
    /// target (every byte written up to `last_version`) and their age starts again.
    pub(crate) fn fire(
        &mut self,
        timer: Timer,
        ino: InodeId,
        timers: &mut FileTimers,
        now_ms: u64,
        last_version: u64,
    ) {
        let at = timers.deadline_ms(timer, self.dirty_expire_ms);
        assert!(
            at.is_some_and(|at| at <= now_ms) && self.active.contains(&ino),
            "{timer:?} of inode {ino} fired before it was due"
        );
        self.change(ino, timers, |t| match timer {
            Timer::Retry => t.retry_at_ms = None,
            Timer::DirtyExpiry => {
                t.kick_version = Some(last_version);
                t.nonclean_since_ms = Some(now_ms);
            }
        });
    }

    /// The schedule's part of the whole-state check: the armed deadlines are exactly those of
    /// the active files (`files` yields every file's timers), and every active file exists.
    pub(crate) fn check<'a>(
        &self,
        files: impl Iterator<Item = (InodeId, &'a FileTimers)>,
    ) -> Result<(), InvariantViolation> {
        let mut retry = BTreeSet::new();
        let mut expiry = BTreeSet::new();
        let mut active = 0usize;
        for (ino, timers) in files {
            if !self.active.contains(&ino) {
                continue;
            }
            active += 1;
            retry.extend(
                timers
                    .deadline_ms(Timer::Retry, self.dirty_expire_ms)
                    .map(|at| (at, ino)),
            );
            expiry.extend(
                timers
                    .deadline_ms(Timer::DirtyExpiry, self.dirty_expire_ms)
                    .map(|at| (at, ino)),
            );
        }
        ensure!(active == self.active.len(), "an active file is not cached");
        ensure!(self.retry_ms == retry, "retry deadlines out of step");
        ensure!(
            self.dirty_expiry_ms == expiry,
            "dirty expiry deadlines out of step"
        );
        Ok(())
    }
}
