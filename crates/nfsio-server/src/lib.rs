//! An NFSv3 server (RFC 1813) with MOUNT v3 and portmap v2, that tells the truth about
//! durability.
//!
//! ```no_run
//! # async fn demo() -> Result<(), nfsio_server::ServerError> {
//! use nfsio_server::{Server, ServerConfig};
//!
//! let mut config = ServerConfig::new("/srv/data");
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! let server = Server::bind(config).await?;
//! println!("mount {}", server.url());
//! server.run(async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```
//!
//! The layers, from the wire down (the modules are private; what a user needs is re-exported
//! here):
//! - `server`: listeners (through the [`Listener`] seam), connections, batching, bounds.
//! - `service`: one record in, one reply out — RPC header, authentication, squashing, the
//!   duplicate request cache (`drc`), MOUNT and portmap; `nfs` has the 22 NFSv3 procedures,
//!   and `misbehave` the deliberate violations a test may wrap them in ([`Misbehavior`]).
//! - `handle`: authenticated file handles; `verifier`: the write verifier; `state`: the
//!   handle key on disk.
//! - `storage`: the [`Storage`] trait and its vocabulary, the local directory
//!   ([`LocalStore`]) and the in-memory store with a crash model ([`MemStore`]).
//!
//! What the server promises (see `crate::verifier` and `crate::nfs`): a WRITE answered
//! UNSTABLE may be lost until a COMMIT answers with the same verifier; DATA_SYNC, FILE_SYNC and
//! COMMIT are durable before the reply; the verifier changes at every start and after every
//! failed write or sync.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod drc;
mod error;
mod handle;
mod listener;
mod misbehave;
mod nfs;
mod peer;
mod server;
mod service;
mod splice;
mod state;
mod storage;
mod verifier;

pub use config::{
    IpNet, IpNetParseError, Limits, ServerConfig, ServiceConfig, Squash,
    default_memory_bound_bytes, default_state_dir,
};
pub use error::ServerError;
pub use handle::{HandleCodec, HandleSecret};
pub use listener::{Connection, Listener, ReplyWriter};
pub use misbehave::{Misbehavior, MisbehaviorSwitch};
pub use peer::Peer;
pub use server::{Server, serve};
pub use service::{Ports, Response, Service};
pub use splice::{Spliced, SplicedReply};
pub use storage::{
    Caller, CreateMode, Created, DirEntry, DirPage, Fault, FileId, FsStat, Granted, KernelHandle,
    LocalOptions, LocalStore, MemOptions, MemStore, ReadOutcome, SplicedRead, Storage, StoreError,
    StoreLimits, StoreResult, WriteOutcome,
};
