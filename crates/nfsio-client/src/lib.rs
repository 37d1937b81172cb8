//! An async NFSv3 client.
//!
//! [`Client::connect`] mounts an export named by a libnfs-style URL
//! (`nfs://host/export/path?nfsport=N&mountport=N`); the client then offers every NFSv3
//! operation on file handles, path-level conveniences (`open`, `create_file`, `mkdir_path`,
//! ...), directory listing as a stream ([`ReadDir`]), and [`File`] with positional and
//! streaming I/O over a write-back cache (the sans-IO engine of `nfsio-cache`, driven here):
//! writes return once in the cache, go out as coalesced UNSTABLE WRITEs with many in flight,
//! and are COMMITted; `sync_all` and `close` return once they are durable. Errors are one
//! type, [`NfsError`], that carries the NFS status and maps to errno and
//! `std::io::ErrorKind`.
//!
//! ```no_run
//! # async fn example() -> Result<(), nfsio_client::NfsError> {
//! // `nfsio serve`'s short form; libnfs's `?nfsport=N&mountport=N` works too.
//! let client = nfsio_client::Client::connect("nfs://127.0.0.1:2049/export").await?;
//! let file = client.create_file("hello.txt", 0o644).await?;
//! file.write_at(b"hello\n", 0).await?;
//! file.close().await?; // durable on the server, or the first write-back error
//! client.shutdown().await?; // and anything else the client still holds
//! # Ok(()) }
//! ```
//!
//! Ending a program: `close` every [`File`] (or call [`Client::shutdown`]) before the last
//! `Client` handle is dropped. A `File` dropped without `close` is written back in the
//! background while the client lives, and `shutdown` waits for it; bytes still cached when
//! the client goes are lost, and an error-level log line names them (see [`Client`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod caller;
mod client;
mod dir;
pub mod error;
mod file;
mod jukebox;
mod mount;
mod options;
mod owners;
mod paths;
mod procedures;
mod sender;
pub mod url;
mod writeback;

pub use caller::{Caller, MAX_AUTH_SYS_GROUPS};
pub use client::{Client, Created};
pub use dir::{DirEntry, ReadDir};
pub use error::{NfsError, NfsResult, ProtocolViolation};
pub use file::File;
pub use nfsio_cache as cache;
pub use nfsio_cache::Advice;
pub use nfsio_proto as proto;
pub use nfsio_rpc as rpc;
pub use options::{ClientOptions, DEFAULT_CACHE_BYTES, Network, Tcp};
pub use url::{NfsUrl, encode_path};
