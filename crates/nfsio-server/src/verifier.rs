//! The write verifier: how the server tells clients that unstable data may be gone.
//!
//! RFC 1813 gives every WRITE and COMMIT reply an 8-byte verifier. A client keeps the data it
//! wrote UNSTABLE until a COMMIT reply carries the same verifier as the WRITE replies did; a
//! different one means "write it again". So the verifier is one value per server instance,
//! new at every start (the page cache of the previous instance may have died with it), and
//! changed whenever a write or a sync fails with an I/O error (the failed writeback may have
//! dropped unstable pages; knfsd does the same).
//!
//! Which value a reply carries matters under concurrency:
//! - a WRITE reply carries the verifier read *before* the write: if a failure changes it
//!   while the write runs, the client's next COMMIT sees a different value and rewrites;
//! - a COMMIT reply carries the verifier read *after* the sync: if anything failed while it
//!   ran, the client sees the change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nfsio_proto::nfs3::WriteVerifier;
use tracing::warn;

/// The step between successive verifiers: odd, so 2^64 resets pass before one repeats.
const STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// The current write verifier of a server instance.
#[derive(Debug)]
pub struct VerifierSource {
    current: AtomicU64,
    resets: AtomicU64,
}

impl VerifierSource {
    /// A verifier derived from `seed` (simulations: one seed fixes the run).
    pub fn from_seed(seed: u64) -> Self {
        Self {
            current: AtomicU64::new(mix(seed)),
            resets: AtomicU64::new(0),
        }
    }

    /// A verifier that differs from every earlier instance's: system entropy, mixed with the
    /// time and the process id so that it is new even without entropy.
    pub fn new_instance() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let random = crate::state::random_bytes::<8>()
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        let pid = u64::from(std::process::id());
        Self::from_seed(random ^ nanos ^ pid.rotate_left(40))
    }

    /// The verifier now.
    pub fn current(&self) -> WriteVerifier {
        WriteVerifier(self.current.load(Ordering::Acquire).to_be_bytes())
    }

    /// Changes the verifier (after a write or sync failure) and returns the new one.
    pub fn reset(&self) -> WriteVerifier {
        let new = self
            .current
            .fetch_add(STEP, Ordering::AcqRel)
            .wrapping_add(STEP);
        let resets = self.resets.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(
            resets,
            "write verifier changed: clients will resend unstable data"
        );
        WriteVerifier(new.to_be_bytes())
    }

    /// How many times the verifier changed since the start.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }
}

/// SplitMix64's finaliser: spreads a seed over all 64 bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(STEP);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_differ_and_resets_change_it() {
        let a = VerifierSource::new_instance();
        let b = VerifierSource::new_instance();
        assert_ne!(a.current(), b.current());
        let before = a.current();
        assert_eq!(a.current(), before, "stable while nothing fails");
        let after = a.reset();
        assert_ne!(after, before);
        assert_eq!(a.current(), after);
        assert_eq!(a.resets(), 1);
        assert_eq!(
            VerifierSource::from_seed(7).current(),
            VerifierSource::from_seed(7).current()
        );
    }
}
