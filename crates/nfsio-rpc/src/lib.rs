//! ONC RPC over TCP for nfsio.
//!
//! NFS, MOUNT and portmap are all ONC RPC programs; this crate moves their calls and replies
//! over TCP and knows nothing else about them. It is built on the sans-IO encoders of
//! `nfsio-proto` and on tokio.
//!
//! - [`record`]: RFC 5531 record marking — bounded reading, vectored and batched writing;
//!   shared by the client and servers.
//! - [`client`]: [`RpcClient`], many concurrent calls on one connection, matched by XID,
//!   retransmitted on timeout, carried over reconnections.
//! - [`stats`]: per-procedure counters and round-trip-time histograms.
//! - [`error`]: [`RpcError`], what a failed call reports.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod record;
pub mod stats;

pub use client::{Connector, RetryPolicy, RpcClient, RpcConfig, TcpConnector, connect};
pub use error::RpcError;
pub use record::{RecordError, RecordReader, read_record, write_record, write_records};
pub use stats::{ProcStats, TransportStats};
