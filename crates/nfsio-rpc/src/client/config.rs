//! What a transport is told: how many calls at once, how long a try waits, what a timeout
//! does, how big a record may be, how reconnections are spaced.

use nfsio_proto::xdr::DEFAULT_MAX_DATA_BYTES;

use crate::record::MAX_FRAGMENT_BYTES;

#[cfg(doc)]
use crate::{RpcClient, RpcError};
#[cfg(doc)]
use nfsio_proto::XdrDecoder;

/// What to do when a call gets no reply in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    /// Retransmit forever, until a reply comes or the caller drops the call (an NFS "hard"
    /// mount: no application ever sees a spurious I/O error).
    #[default]
    Hard,
    /// Give up with [`RpcError::TimedOut`] after `max_tries` tries (at least one).
    Soft {
        /// Tries before giving up, the first transmission included.
        max_tries: u32,
    },
}

/// Transport settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Most calls outstanding at once on the connection (at least 1; default 64).
    pub slots: usize,
    /// How long one try waits for its reply (default 60 000 ms).
    pub timeout_ms: u64,
    /// What happens after a try times out (default [`RetryPolicy::Hard`]).
    pub retry: RetryPolicy,
    /// Longest reply record accepted (default 4 MiB + 64 KiB: a 4 MiB READ and its header).
    pub max_record_bytes: u32,
    /// Longest fragment written; longer requests are split (default 2^31 - 1: one fragment).
    pub max_fragment_bytes: u32,
    /// How long one connection attempt may take (default 10 000 ms).
    pub connect_timeout_ms: u64,
    /// First delay between failed reconnection attempts (default 100 ms).
    pub reconnect_backoff_initial_ms: u64,
    /// Largest delay between failed reconnection attempts (default 30 000 ms).
    pub reconnect_backoff_max_ms: u64,
    /// First XID to use; `None` derives one from the time and the process id, so that a
    /// restarted client does not reuse the XIDs its predecessor left in the server's
    /// duplicate request cache.
    pub xid_seed: Option<u32>,
    /// Bound on READ/WRITE payloads given to every reply decoder (see
    /// [`XdrDecoder::with_max_data_bytes`]); [`RpcClient::call_with_max_data`] overrides it.
    pub max_data_bytes: u32,
    /// Large receive buffers (READ replies) kept for reuse once the replies read into them
    /// are dropped, instead of a fresh allocation per reply. Each is at most
    /// `max_record_bytes`; set it above the replies the caller holds at once. `None` (the
    /// default) keeps none here; the NFS client then chooses (twice its READs in flight),
    /// and `Some(0)` keeps none there either.
    pub spare_receive_buffers: Option<usize>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            slots: 64,
            timeout_ms: 60_000,
            retry: RetryPolicy::Hard,
            max_record_bytes: 4 * 1024 * 1024 + 64 * 1024,
            max_fragment_bytes: MAX_FRAGMENT_BYTES,
            connect_timeout_ms: 10_000,
            reconnect_backoff_initial_ms: 100,
            reconnect_backoff_max_ms: 30_000,
            xid_seed: None,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
            spare_receive_buffers: None,
        }
    }
}
