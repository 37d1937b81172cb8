//! The sans-IO NFSv3 write-back engine: a page cache with coalesced, pipelined UNSTABLE
//! WRITEs and COMMIT, race-free by construction.
//!
//! No sockets, no files, no clock, no tasks: inputs are method calls (an application write,
//! read, `fsync`, truncation or close; an RPC's reply; "now is T ms"), outputs are values (a
//! call to send, a wake-up, a deadline). The async shell drives it under one mutex:
//!
//! ```
//! use nfsio_cache::{Engine, EngineConfig, Event, Op, Reply, WriteOutcome};
//! use nfsio_proto::nfs3::{Fattr, FileHandle, StableHow, WriteVerifier};
//!
//! let mut engine = Engine::new(EngineConfig::default()).unwrap();
//! let file = engine.open(FileHandle::from(vec![1, 2, 3]), &Fattr::default(), 0);
//! assert_eq!(engine.write(file, 0, b"hello", 0), Ok(WriteOutcome::Accepted));
//! let ticket = engine.fsync(file, 0).unwrap();
//! // The shell's loop: send what the engine asks for, feed the replies back.
//! while engine.poll_sync(ticket).is_none() {
//!     let call = engine.poll_transmit(0).expect("the fsync needs a WRITE");
//!     let reply = match call.op {
//!         Op::Write { data, stable, .. } => Reply::Write {
//!             count_bytes: data.len() as u32,
//!             committed: stable,
//!             verf: WriteVerifier([7; 8]),
//!             post_op_attrs: None,
//!         },
//!         Op::Commit { .. } => Reply::Commit { verf: WriteVerifier([7; 8]), post_op_attrs: None },
//!         _ => unreachable!(),
//!     };
//!     engine.on_reply(call.id, reply, 0);
//!     while let Some(event) = engine.poll_event() {
//!         if let Event::SyncDone(done) = event {
//!             assert_eq!(done, ticket);
//!         }
//!     }
//! }
//! ```
//!
//! The shell: after every input, send every [`Engine::poll_transmit`] until `None`, deliver
//! every [`Engine::poll_event`] (wake the waiting writer, reader or syncer), arm a timer for
//! [`Engine::next_deadline_ms`] and call [`Engine::handle_timeout`] when it fires.
//!
//! # The invariant that kills the seeds' race
//!
//! Every application write gets a version; each cached byte range is `Dirty`, `InFlight{rpc}`
//! (exactly the bytes a WRITE carries — its payload *is* the extent's buffer), `Unstable`
//! (written UNSTABLE under a verifier, awaiting COMMIT) or `Clean`. A completion retires only
//! bytes still in the state its call put them in; a write landing on bytes in flight or
//! awaiting COMMIT makes a new dirty extent that no earlier call can retire. Every byte whose
//! newest content is not known durable is dirty, in exactly one in-flight WRITE, or unstable,
//! and a `fsync` completes only when no byte written before it began is in any of those
//! states — or with the error. Every change of an extent's state is a named transition,
//! checked against the allowed ones where it happens, and a completing `fsync` asserts its
//! postcondition, in release builds too; [`Engine::check_invariants`] states the whole
//! invariant executably and runs after every input in debug builds.
//!
//! Modules: [`config`] (knobs), [`api`] (values crossing the boundary), `extents` (a file's
//! extent map, its indexes and the checked transitions between extent states), `calls` (the
//! calls in flight and their counts), `schedule` (active files and named deadlines), `store`
//! (the cached files), `stream` (which files are written as a stream), `outbox` (events and results), `engine` (the inputs, which call next,
//! applying replies, settling), [`invariants`] (the whole-state check, one invariant each).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod buf;
mod calls;
pub mod config;
mod engine;
mod extents;
mod inode_id;
pub mod invariants;
mod outbox;
mod ranges;
mod schedule;
mod store;
mod stream;
mod write_data;

pub use api::{
    Advice, EngineStats, Event, ExtentInfo, ExtentState, FileError, FileId, Op, OwnedWrite,
    ReadOutcome, Reply, RpcId, SyncTicket, Transmit, WaitToken, WriteOutcome,
};
pub use config::{Backoff, ConfigError, EngineConfig};
pub use engine::Engine;
pub use invariants::InvariantViolation;
pub use write_data::WriteData;
