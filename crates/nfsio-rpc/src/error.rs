//! The errors a caller of the RPC transport can see.
//!
//! One enum covers the three ways a call can fail — the transport gave up (timeout, shutdown,
//! unreachable server), the server refused the call in its RPC reply header (program or
//! procedure unavailable, bad credentials, ...), or the bytes made no sense — so that the
//! client layer above can match on what happened without knowing how the transport works.

use std::io;

use nfsio_proto::XdrError;
use nfsio_proto::rpc::{AcceptError, AuthStat, ReplyStatus};
use thiserror::Error;

use crate::record::RecordError;

/// Why an RPC failed.
#[derive(Debug, Error)]
pub enum RpcError {
    /// The connection to the server could not be established (refused, unreachable, ...).
    #[error("cannot connect to the server: {0}")]
    Connect(#[source] io::Error),
    /// Establishing the connection took longer than the connect timeout.
    #[error("connecting to the server timed out after {timeout_ms} ms")]
    ConnectTimedOut {
        /// The connect timeout that expired.
        timeout_ms: u64,
    },
    /// An I/O error on an established connection.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// No reply arrived within the allowed tries (soft retry policy).
    #[error("no reply after {tries} tries")]
    TimedOut {
        /// How many times the call was tried.
        tries: u32,
    },
    /// Under the soft retry policy: the connection was lost before a reply, on every try.
    #[error("the server closed the connection before replying, {tries} times")]
    ConnectionLost {
        /// Times the call was sent.
        tries: u32,
    },
    /// The transport was shut down (or its last handle dropped) before the reply came.
    #[error("the RPC transport is shut down")]
    Shutdown,
    /// A record could not be read (too large, truncated).
    #[error("record error: {0}")]
    Record(#[from] RecordError),
    /// A message could not be decoded.
    #[error("malformed message: {0}")]
    Xdr(#[from] XdrError),
    /// The server does not serve this program.
    #[error("program unavailable")]
    ProgUnavail,
    /// The server serves this program, but not this version.
    #[error("program version mismatch: server supports versions {low} to {high}")]
    ProgMismatch {
        /// Lowest version served.
        low: u32,
        /// Highest version served.
        high: u32,
    },
    /// The program has no such procedure.
    #[error("procedure unavailable")]
    ProcUnavail,
    /// The server could not decode the arguments.
    #[error("server could not decode the arguments")]
    GarbageArgs,
    /// The server failed for a reason of its own.
    #[error("server system error")]
    SystemErr,
    /// The server does not speak RPC version 2.
    #[error("RPC version mismatch: server supports versions {low} to {high}")]
    RpcMismatch {
        /// Lowest RPC version supported.
        low: u32,
        /// Highest RPC version supported.
        high: u32,
    },
    /// The server rejected the credentials.
    #[error("authentication error: {0:?}")]
    AuthError(AuthStat),
}

impl RpcError {
    /// True for failures that may go away by trying again later (timeouts, connection
    /// trouble); false for answers from the server and for shutdown.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect(_)
                | Self::ConnectTimedOut { .. }
                | Self::Io(_)
                | Self::TimedOut { .. }
                | Self::ConnectionLost { .. }
        )
    }

    /// The error for a reply header that is not an accepted SUCCESS; `None` for SUCCESS.
    pub fn from_reply_status(status: &ReplyStatus) -> Option<Self> {
        match *status {
            ReplyStatus::Success { .. } => None,
            ReplyStatus::AcceptError { error, .. } => Some(match error {
                AcceptError::ProgUnavail => Self::ProgUnavail,
                AcceptError::ProgMismatch { low, high } => Self::ProgMismatch { low, high },
                AcceptError::ProcUnavail => Self::ProcUnavail,
                AcceptError::GarbageArgs => Self::GarbageArgs,
                AcceptError::SystemErr => Self::SystemErr,
            }),
            ReplyStatus::RpcMismatch { low, high } => Some(Self::RpcMismatch { low, high }),
            ReplyStatus::AuthError(stat) => Some(Self::AuthError(stat)),
        }
    }
}
