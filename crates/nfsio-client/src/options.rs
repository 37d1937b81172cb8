//! How a [`Client`](crate::Client) is set up: its options, and the network it reaches servers
//! over.
//!
//! Kept apart from the client itself so that mount discovery, the write-back set-up and the
//! facade read the same settings without importing one another.

use std::net::SocketAddr;

use nfsio_rpc::{Connector, RpcConfig, TcpConnector};

/// Options for [`Client::connect_with`](crate::Client::connect_with).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Transport settings for the NFS connection (slots, timeouts, retry policy).
    pub rpc: RpcConfig,
    /// AUTH_SYS uid when the URL gives none; None uses the process's effective uid.
    pub uid: Option<u32>,
    /// AUTH_SYS gid when the URL gives none; None uses the process's effective gid.
    pub gid: Option<u32>,
    /// Supplementary groups sent with AUTH_SYS.
    pub gids: Vec<u32>,
    /// The machine name sent with AUTH_SYS; None uses the host name.
    pub machine_name: Option<String>,
    /// Timeout for the MOUNT and portmapper exchanges at connect time.
    pub mount_timeout_ms: u64,
    /// The write-back cache's one memory bound (dirty, in flight, awaiting COMMIT and clean
    /// bytes of every file of this client); writers wait at it.
    pub cache_bytes: u64,
    /// READs the cache keeps in flight ahead of a sequential reader (its readahead, in
    /// READs of the mount's transfer size); `None` derives it from the transport's slots (a
    /// quarter of them, at most 16).
    pub max_inflight_reads: Option<usize>,
    /// The whole write-back configuration, for tests and benchmarks; `None` derives it from
    /// the mount (FSINFO's transfer sizes, the transport's slots) and `cache_bytes`. Transfer
    /// sizes given here are capped at the mount's.
    pub cache_config: Option<nfsio_cache::EngineConfig>,
}

/// The default memory bound of the write-back cache.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            rpc: RpcConfig::default(),
            uid: None,
            gid: None,
            gids: Vec::new(),
            machine_name: None,
            mount_timeout_ms: 15_000,
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_inflight_reads: None,
            cache_config: None,
        }
    }
}

/// How the client reaches a server address: TCP ([`Tcp`]) normally; a simulated network in
/// deterministic tests (the transport is generic over the stream).
pub trait Network: Send + Sync + 'static {
    /// The connector for one server address.
    type Connector: Connector;
    /// A connector that opens connections to `addr` (reconnects use it too).
    fn connector(&self, addr: SocketAddr) -> Self::Connector;
}

/// The real network: TCP with `TCP_NODELAY`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tcp;

impl Network for Tcp {
    type Connector = TcpConnector;

    fn connector(&self, addr: SocketAddr) -> TcpConnector {
        TcpConnector::new(addr)
    }
}
