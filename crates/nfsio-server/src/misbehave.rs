//! Deliberate protocol violations, for testing clients against a server that breaks the rules.
//!
//! A client must not trust a server to be correct about durability: RFC 1813 lets it answer a
//! WRITE more stable than asked but never less, and a WRITE and the COMMIT that follows carry
//! the same verifier only if nothing was lost in between — yet servers in the field have got
//! both wrong (Linux's client warns "faulty NFS server" and copes). The simulation switches
//! these violations on for a number of replies to check that our client copes too: it commits
//! bytes a WRITE answered less stable than asked, and resends bytes whose verifiers disagree.
//! `nfsio serve` never sets a [`Misbehavior`]; without one the server keeps every rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of replies still to send wrongly; shared between a test and the servers it starts
/// (one switch can outlive a server instance, as a misbehaving server build would).
#[derive(Debug, Default)]
pub struct Misbehavior {
    weaker_stability: AtomicU64,
    skewed_write_verifiers: AtomicU64,
    skewed_commit_verifiers: AtomicU64,
}

/// XORed into the verifier of a skewed reply: the reply carries a value the instance never
/// hands out otherwise (the real verifier only ever changes by a fixed odd step).
const SKEW: [u8; 8] = *b"skewed!!";

impl Misbehavior {
    /// A switch with every violation off.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The next `count` WRITEs asked for DATA_SYNC or FILE_SYNC are done UNSTABLE and answered
    /// UNSTABLE (the bytes really are only in volatile storage: a crash loses them unless the
    /// client commits them).
    pub fn answer_weaker_stability(&self, count: u64) {
        self.weaker_stability.fetch_add(count, Ordering::Relaxed);
    }

    /// The next `count` WRITE replies carry a verifier that differs from the instance's.
    pub fn skew_write_verifiers(&self, count: u64) {
        self.skewed_write_verifiers
            .fetch_add(count, Ordering::Relaxed);
    }

    /// The next `count` COMMIT replies carry a verifier that differs from the instance's (the
    /// data was committed all the same).
    pub fn skew_commit_verifiers(&self, count: u64) {
        self.skewed_commit_verifiers
            .fetch_add(count, Ordering::Relaxed);
    }

    /// Switches every violation off.
    pub fn stop(&self) {
        self.weaker_stability.store(0, Ordering::Relaxed);
        self.skewed_write_verifiers.store(0, Ordering::Relaxed);
        self.skewed_commit_verifiers.store(0, Ordering::Relaxed);
    }

    /// Whether this WRITE (asked stable) is to be done and answered UNSTABLE.
    pub(crate) fn take_weaker_stability(&self) -> bool {
        take(&self.weaker_stability)
    }

    /// The verifier this WRITE reply carries instead of `verf`.
    pub(crate) fn write_verifier(&self, verf: [u8; 8]) -> [u8; 8] {
        skew_if(take(&self.skewed_write_verifiers), verf)
    }

    /// The verifier this COMMIT reply carries instead of `verf`.
    pub(crate) fn commit_verifier(&self, verf: [u8; 8]) -> [u8; 8] {
        skew_if(take(&self.skewed_commit_verifiers), verf)
    }
}

/// Takes one from `counter` if it is not zero.
fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

fn skew_if(skew: bool, mut verf: [u8; 8]) -> [u8; 8] {
    if skew {
        for (byte, mask) in verf.iter_mut().zip(SKEW) {
            *byte ^= mask;
        }
    }
    verf
}

/// A [`Misbehavior`] in a [`crate::ServerConfig`]: configurations compare equal when they
/// share the same switch.
#[derive(Debug, Clone)]
pub struct MisbehaviorSwitch(pub Arc<Misbehavior>);

impl PartialEq for MisbehaviorSwitch {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_and_stops() {
        let m = Misbehavior::new();
        let verf = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(m.write_verifier(verf), verf);
        m.skew_write_verifiers(2);
        assert_ne!(m.write_verifier(verf), verf);
        assert_ne!(m.write_verifier(verf), verf);
        assert_eq!(m.write_verifier(verf), verf);
        m.skew_commit_verifiers(1);
        assert_ne!(m.commit_verifier(verf), verf);
        assert_eq!(m.commit_verifier(verf), verf);
        m.answer_weaker_stability(5);
        assert!(m.take_weaker_stability());
        m.stop();
        assert!(!m.take_weaker_stability());
    }
}
