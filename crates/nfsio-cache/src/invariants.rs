//! The executable statement of the design: the whole-state check, one invariant per piece.
//!
//! [`Engine::check_invariants`](crate::Engine::check_invariants) recomputes every counter and
//! index from the extents and the calls, and checks the rules the write path rests on. Each
//! piece lives next to the state it checks and states one invariant:
//!
//! - extents are non-empty, sorted, disjoint, within one chunk and within the file's size;
//! - every non-clean extent owes an application write that happened; sequence numbers exist;
//! - every byte not known durable is in exactly one state: dirty, in flight, or unstable
//!   (the extent map gives each byte one state by construction; this checks that an in-flight
//!   extent *is* its WRITE's snapshot — the very same bytes of that WRITE's payload, at the
//!   matching offset — so a completion can only ever retire what it carried);
//! - each file's indexes, and the engine-wide ones, are exactly those of the extents;
//! - WRITEs in flight for one file never overlap (they could otherwise be applied in either
//!   order by the server), and each file's index of its calls names exactly its calls;
//! - the in-flight counts and the payload bytes are those of the calls in flight;
//! - truncations and syncs are queued in order and belong to open files; opens and files
//!   name each other; handles name their files;
//! - the armed deadlines are exactly those of the active files, and every file with work is
//!   active (else its work would never be scheduled).
//!
//! The checks that guard data on the hot path do not wait for this: every extent transition
//! is checked where it happens, and the completion of a `fsync` asserts its postcondition, in
//! release builds too. This whole-state check costs time linear in the state, so it runs only
//! in debug builds, after every input (every 1024th input once the cache holds more than 4096
//! extents, to keep large debug runs usable), and panics on a violation.

use thiserror::Error;

/// A broken invariant: a bug in the engine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invariant violated: {0}")]
pub struct InvariantViolation(pub String);

/// Returns an [`InvariantViolation`] with the message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::invariants::InvariantViolation(format!($($fmt)+)));
        }
    };
}

pub(crate) use ensure;
