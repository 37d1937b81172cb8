//! Test harness for nfsio's integration tests.
//!
//! - [`Ganesha`]: a private nfs-ganesha NFSv3 server on 127.0.0.1 (free ports, a fresh state
//!   and export directory), driven through the repository's `scripts/ganesha.sh`.
//! - [`require_tool`], [`require_root`], [`skip_or_fail`]: the project's rule for tests that need
//!   something from outside: skip with one `skipped: <test>: <reason>` line on stderr, or panic
//!   when the environment variable `CI` is `true` (CI must never pass by skipping).
//! - [`Capture`], [`wire_check`], [`nfs_calls`]: record loopback traffic with tshark and let
//!   Wireshark's dissectors judge it (malformed frames, expert errors and warnings, RPC data left
//!   undissected: [`WireReport::is_clean`]), and list the NFSv3 calls joined with their replies.
//! - [`free_port`]: a TCP port on 127.0.0.1 that nothing listens on.
//! - [`raw`]: an RPC client that sends exactly the bytes a test means (crafted headers,
//!   credentials, lengths).
//! - [`server`]: nfsio's own server in-process ([`TestServer`]) over a local directory or
//!   the memory store: the one fixture of every test that runs the server in its own process.
//! - [`StoreView`]: what a server's storage holds (a directory on disk, a memory store), read
//!   and changed behind the server's back, for suites that run against several servers.
//!
//! The external programs come from `scripts/install-test-deps.sh` (run by `scripts/test.sh`).
//!
//! ```no_run
//! use nfsio_testkit::Ganesha;
//!
//! let Some(server) = Ganesha::start() else { return }; // skipped (or panicked under CI)
//! std::fs::write(server.export_dir.join("hello.txt"), b"hi").unwrap();
//! let url = server.url("hello.txt"); // nfs://127.0.0.1/export/hello.txt?version=3&nfsport=..
//! # let _ = url;
//! ```

#![warn(missing_docs)]

mod calls;
mod capture;
mod env;
mod ganesha;
pub mod raw;
pub mod server;
mod sys;
mod view;

pub use calls::{NfsCallLine, StableHow, nfs_calls, nfs3_proc_name};
pub use capture::{Capture, ExpertInfo, Severity, WireReport, wire_check};
pub use env::{
    free_port, is_ci, require_cargo_tool, require_root, require_tool, skip_or_fail, test_name,
};
pub use ganesha::{Ganesha, GaneshaOptions};
pub use server::TestServer;
pub use view::StoreView;
