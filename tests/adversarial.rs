//! The adversarial suite: `nfsio serve` (a real process, as root on the machine's file
//! system, default flags unless a test says otherwise) against a client that sends exactly
//! the bytes it means, for every class of attack an adversarial review found: identities
//! (ids no policy accepts, root squash, AUTH_NONE), set-id bits, check-then-act rename races,
//! escapes (symbolic links, `..`, mounts inside the export), forged and stale handles, and
//! exhaustion (idle connections, replies nobody reads, records stopped halfway, the
//! descriptor limit, deep trees, stale-handle floods), each asserting a bound, not survival.
//!
//! `NFSIO_ADVERSARIAL_LONG=1` runs the long variants (more rounds, clients and depth); the
//! `measure:` lines they print (`--no-capture`) are the figures of the closing notes.

mod common;
#[path = "adversarial/escapes.rs"]
mod escapes;
#[path = "adversarial/exhaustion.rs"]
mod exhaustion;
#[path = "adversarial/harness.rs"]
mod harness;
#[path = "adversarial/identities.rs"]
mod identities;
#[path = "adversarial/protocol.rs"]
mod protocol;
#[path = "adversarial/races.rs"]
mod races;
