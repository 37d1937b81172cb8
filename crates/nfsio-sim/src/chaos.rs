//! The fault schedule of one run: each simulated millisecond, which faults fire and which
//! end, decided by the seed's generator.
//!
//! [`Chaos`] owns the generator, the faults the seed enabled and the deadlines of the faults
//! in progress (a server down, a partition, messages held), and counts what it fires. The
//! run's loop asks it before each step ([`Chaos::before_step`]) and shows it what the step put
//! on the wire ([`Chaos::on_wire`]), where crashes and resets are aimed at the moments that
//! hurt: a COMMIT in flight, a WRITE reply, a retransmission, the reply to a non-idempotent
//! call. The order in which the generator is asked is the run's identity: a seed replays
//! event for event only while that order stays the same.

use std::sync::Arc;

use nfsio_proto::nfs3::Nfs3Status;
use nfsio_server::{Fault, MemStore, Misbehavior};

use crate::net::Resets;
use crate::tap::WireEvent;
use crate::{FaultCounts, Faults, Rng};

/// Faults fire during the first this many simulated milliseconds; then the server is brought
/// back, the network repaired, and everything must finish.
const FAULT_MS: u64 = 20_000;

/// What the faults act on.
pub(crate) struct Targets {
    /// The server's store (crashes, injected errors, short writes).
    pub(crate) store: Arc<MemStore>,
    /// The connections between client and server.
    pub(crate) resets: Arc<Resets>,
    /// The server's rule breaking.
    pub(crate) misbehavior: Arc<Misbehavior>,
}

/// The faults of one run and their schedule.
pub(crate) struct Chaos {
    rng: Rng,
    faults: Faults,
    targets: Targets,
    /// What fired so far.
    pub(crate) counts: FaultCounts,
    /// Simulated milliseconds stepped so far.
    pub(crate) step_ms: u64,
    server_down_until_ms: Option<u64>,
    partitioned_until_ms: Option<u64>,
    held_until_ms: Option<u64>,
    /// Whether faults could fire when the step now done began: what the wire's events of
    /// that step are judged by.
    faulting_at_step: bool,
}

impl Chaos {
    /// The schedule of `faults`, decided by `rng`.
    pub(crate) fn new(rng: Rng, faults: Faults, targets: Targets) -> Self {
        Self {
            rng,
            faults,
            targets,
            counts: FaultCounts::default(),
            step_ms: 0,
            server_down_until_ms: None,
            partitioned_until_ms: None,
            held_until_ms: None,
            faulting_at_step: true,
        }
    }

    /// Faults may still fire.
    pub(crate) fn faulting(&self) -> bool {
        self.step_ms < FAULT_MS
    }

    /// Ends the faults whose time is up (all of them once faulting stops) and fires new ones.
    pub(crate) fn before_step(&mut self, sim: &mut turmoil::Sim<'_>) {
        self.faulting_at_step = self.faulting();
        self.crash_or_restart(sim);
        self.partition_or_repair(sim);
        self.hold_or_release(sim);
        self.reset_misbehave_or_fail();
    }

    /// The server restarts when its time down is up; a random crash may take it down.
    fn crash_or_restart(&mut self, sim: &mut turmoil::Sim<'_>) {
        let faulting = self.faulting();
        match self.server_down_until_ms {
            Some(at) if self.step_ms >= at || !faulting => {
                sim.bounce("server");
                self.server_down_until_ms = None;
            }
            None if faulting
                && self.faults.crash
                && self.held_until_ms.is_none()
                && self.rng.one_in(400) =>
            {
                self.crash(sim);
                self.counts.crashes += 1;
                self.server_down_until_ms = Some(self.step_ms + 1 + self.rng.below(1_500));
            }
            _ => {}
        }
    }

    /// A partition ends when its time is up; a new one may begin.
    fn partition_or_repair(&mut self, sim: &mut turmoil::Sim<'_>) {
        let faulting = self.faulting();
        match self.partitioned_until_ms {
            Some(at) if self.step_ms >= at || !faulting => {
                sim.repair("app", "server");
                self.partitioned_until_ms = None;
            }
            None if faulting
                && self.faults.partition
                && self.held_until_ms.is_none()
                && self.rng.one_in(500) =>
            {
                sim.partition("app", "server");
                self.counts.partitions += 1;
                self.partitioned_until_ms = Some(self.step_ms + 1 + self.rng.below(2_000));
            }
            _ => {}
        }
    }

    /// Held messages are released when their time is up; a new hold may begin.
    fn hold_or_release(&mut self, sim: &mut turmoil::Sim<'_>) {
        let faulting = self.faulting();
        match self.held_until_ms {
            Some(at) if self.step_ms >= at || !faulting => {
                sim.release("app", "server");
                self.held_until_ms = None;
            }
            None if faulting
                && self.faults.hold
                && self.partitioned_until_ms.is_none()
                && self.rng.one_in(700) =>
            {
                sim.hold("app", "server");
                self.counts.holds += 1;
                // Mostly short; one in four past the client's 10 s timeout.
                let hold_ms = if self.rng.one_in(4) {
                    10_000 + self.rng.below(4_000)
                } else {
                    1 + self.rng.below(500)
                };
                self.held_until_ms = Some(self.step_ms + hold_ms);
            }
            _ => {}
        }
    }

    /// Resets, rule breaking, storage errors and short writes, each at its own rate.
    fn reset_misbehave_or_fail(&mut self) {
        let faulting = self.faulting();
        if faulting && self.faults.reset && self.rng.one_in(600) {
            self.targets.resets.reset();
            self.counts.resets += 1;
        }
        if faulting && self.faults.misbehave && self.rng.one_in(300) {
            self.misbehave();
        }
        if faulting && self.faults.storage_errors && self.rng.one_in(300) {
            self.fail_storage();
        }
        if faulting && self.faults.short_writes && self.rng.one_in(50) {
            let short_bytes = 1 + self.rng.below(8192) as u32;
            self.targets.store.inject(Fault::ShortWrite(short_bytes));
            self.counts.short_writes += 1;
        }
    }

    /// The server breaks a rule for the next few replies of one kind.
    fn misbehave(&mut self) {
        let replies = 1 + self.rng.below(6);
        let misbehavior = &self.targets.misbehavior;
        match self.rng.below(3) {
            0 => {
                misbehavior.answer_weaker_stability(replies);
                self.counts.weaker_stability += replies;
            }
            1 => {
                misbehavior.skew_write_verifiers(replies);
                self.counts.skewed_verifiers += replies;
            }
            _ => {
                misbehavior.skew_commit_verifiers(replies);
                self.counts.skewed_verifiers += replies;
            }
        }
    }

    /// The next WRITE or sync fails.
    fn fail_storage(&mut self) {
        let status = if self.rng.one_in(2) {
            Nfs3Status::Io
        } else {
            Nfs3Status::NoSpc
        };
        if self.rng.one_in(2) {
            self.targets.store.inject(Fault::WriteError(status));
            self.counts.write_errors += 1;
        } else {
            self.targets.store.inject(Fault::SyncError(Nfs3Status::Io));
            self.counts.sync_errors += 1;
        }
    }

    /// Reacts to what the last step put on the wire: counts retransmissions, loses the reply
    /// of a non-idempotent call with its connection, and aims crashes.
    pub(crate) fn on_wire(&mut self, sim: &mut turmoil::Sim<'_>, event: WireEvent) {
        let faulting = self.faulting_at_step;
        if event == WireEvent::Retransmission {
            self.counts.retransmissions += 1;
        }
        if event == WireEvent::NonIdempotentReply
            && faulting
            && self.faults.reset
            && self.rng.one_in(2)
        {
            // Lose the reply with the connection: the retransmission must be answered from
            // the duplicate request cache.
            self.targets.resets.reset();
            self.counts.resets_at_reply += 1;
        }
        if faulting
            && self.faults.aimed_crash
            && self.server_down_until_ms.is_none()
            && self.held_until_ms.is_none()
        {
            self.aim_crash(sim, event);
        }
    }

    /// Perhaps crashes the server at `event`; rare events are aimed at more often than
    /// frequent ones.
    fn aim_crash(&mut self, sim: &mut turmoil::Sim<'_>, event: WireEvent) {
        let one_in = match event {
            WireEvent::CommitCall | WireEvent::CommitReply => 6,
            WireEvent::WriteReply => 40,
            WireEvent::Retransmission => 2,
            WireEvent::NonIdempotentReply => return,
        };
        if !self.rng.one_in(one_in) {
            return;
        }
        let counts = &mut self.counts;
        match event {
            WireEvent::CommitCall => counts.crashes_in_commit_call += 1,
            WireEvent::CommitReply => counts.crashes_in_commit_reply += 1,
            WireEvent::WriteReply => counts.crashes_after_write_reply += 1,
            WireEvent::Retransmission => counts.crashes_in_retransmission += 1,
            WireEvent::NonIdempotentReply => {}
        }
        self.crash(sim);
        self.server_down_until_ms = Some(self.step_ms + 1 + self.rng.below(1_000));
        if event == WireEvent::CommitReply
            && self.partitioned_until_ms.is_none()
            && self.held_until_ms.is_none()
        {
            // Lose the reply in flight: the client never learns the COMMIT succeeded.
            sim.partition("app", "server");
            self.partitioned_until_ms = Some(self.step_ms + 1 + self.rng.below(20));
        }
    }

    /// Crashes the server's machine: its software stops at once (calls in progress are never
    /// answered), it sends nothing more — no FIN, no RST: the client learns of the crash from
    /// the RST its next segment draws, or from its timeout — and the store loses everything
    /// not durable. (Letting the dying host close its sockets would also make the run depend
    /// on the order in which tokio drops the host's tasks, which varies between runs in one
    /// process.) Not called while messages are held: a partition would drop them.
    fn crash(&self, sim: &mut turmoil::Sim<'_>) {
        let partitioned = self.partitioned_until_ms.is_some();
        if !partitioned {
            sim.partition("app", "server");
        }
        sim.crash("server");
        if !partitioned {
            sim.repair("app", "server");
        }
        self.targets.store.crash();
    }
}
