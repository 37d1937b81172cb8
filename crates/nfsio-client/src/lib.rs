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
//! let client = nfsio_client::Client::connect(
//!     "nfs://127.0.0.1/export?nfsport=2049&mountport=20048",
//! ).await?;
//! let file = client.create_file("hello.txt", 0o644).await?;
//! file.write_at(b"hello\n", 0).await?;
//! file.close().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod dir;
pub mod error;
mod file;
pub mod url;
mod writeback;

pub use client::{Client, ClientOptions, Created, DEFAULT_CACHE_BYTES, Network, Tcp};
pub use dir::{DirEntry, ReadDir};
pub use error::{NfsError, NfsResult};
pub use file::File;
pub use nfsio_cache as cache;
pub use nfsio_proto as proto;
pub use nfsio_rpc as rpc;
pub use url::NfsUrl;
