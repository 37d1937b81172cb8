//! What a server serves, where, to whom, and within which bounds.
//!
//! [`ServerConfig`] is the one value the CLI (or an embedding program) fills in; everything in
//! it has a safe default (`ServerConfig::new`), so `nfsio serve DIR` needs no other setup.
//! Everything else in the crate may read a configuration; this module depends on nothing
//! above it (only on the misbehaviour switch a test server carries, [`crate::misbehave`]).

use std::fmt;
use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use siphasher::sip128::{Hasher128, SipHasher24};
use thiserror::Error;

/// How AUTH_SYS identities are mapped before the server acts on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Squash {
    /// The default, decided by who runs the server. Run by root: like [`Squash::Root`], except
    /// that a caller the kernel shows to be root on this machine (a loopback connection whose
    /// socket is owned by uid 0, see `crate::peer`) stays root, so a root user on the server
    /// machine can write a root-owned export while a remote client, or a local ordinary user,
    /// claiming uid 0 cannot. Run by any other user ([`Server::bind`](crate::Server::bind)):
    /// every caller acts as the server's own uid and gid, the only identity that process has.
    #[default]
    Auto,
    /// Trust the client's uid and gids as sent.
    None,
    /// Map uid 0 to the anonymous uid, and gid 0 to the anonymous gid (`root_squash`), for
    /// every client.
    Root,
    /// Map every user to the anonymous uid and gid (`all_squash`).
    All,
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a string is not an [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not an IP network (ADDRESS or ADDRESS/PREFIX): {0:?}")]
pub struct IpNetParseError(String);

impl IpNet {
    /// The network of `addr` with `prefix_len` leading bits (clamped to the address size).
    pub fn new(addr: IpAddr, prefix_len: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            prefix_len: prefix_len.min(max),
        }
    }

    /// The network's address as given.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// True when `ip` is in the network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpNetParseError(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix_len })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Resource bounds. Every buffer the server allocates for a client is bounded by one of these,
/// never by a length read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest READ or WRITE payload (FSINFO `rtmax`/`wtmax`; also the preferred size).
    pub max_io_bytes: u32,
    /// Largest RPC record accepted; a client announcing a larger one is disconnected before
    /// anything is allocated for it.
    pub max_record_bytes: u32,
    /// Requests of one connection being processed at once; at the limit, the server stops
    /// reading that connection.
    pub max_requests_per_connection: usize,
    /// Requests being processed at once, over all connections.
    pub max_requests_total: usize,
    /// Bytes of requests and replies one connection may hold at once (requests are charged
    /// their size plus the largest reply they can produce).
    pub max_connection_buffer_bytes: usize,
    /// Bytes of requests and replies all connections together may hold at once (the memory
    /// bound; an eighth of it is kept for small calls). Default: a thirty-second of the
    /// machine's memory, between 64 MiB and 512 MiB.
    pub max_buffer_bytes: usize,
    /// Open connections; at the limit the connection idle longest is closed to admit a new
    /// one, and when none is idle the new one is closed at once. Lowered at start to what the
    /// descriptor limit allows.
    pub max_connections: usize,
    /// A connection with no call in progress and nothing half-read that completes no call for
    /// this long is closed (knfsd: six minutes).
    pub idle_timeout_ms: u64,
    /// A connection that owes progress (replies the client does not take, a record
    /// half-read) and makes none for this long is closed.
    pub stall_timeout_ms: u64,
    /// When memory is short, a connection that has made no progress for this long may be
    /// closed to give its memory back.
    pub reclaim_after_ms: u64,
    /// Open files kept by the local store (descriptor LRU).
    pub open_files: usize,
    /// A kept open file that no call used for this long is closed by the next sweep (a
    /// descriptor keeps a file's blocks allocated after the file is unlinked on the server's
    /// disk; knfsd's file cache closes unused files after about two seconds too).
    pub open_file_idle_ms: u64,
    /// Entries of the duplicate request cache.
    pub drc_entries: usize,
    /// Preferred READDIR size (FSINFO `dtpref`).
    pub dtpref_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        let max_io_bytes = 1 << 20;
        Self {
            max_io_bytes,
            max_record_bytes: max_io_bytes + 64 * 1024,
            max_requests_per_connection: 32,
            max_requests_total: 256,
            max_connection_buffer_bytes: 24 << 20,
            max_buffer_bytes: default_memory_bound_bytes(),
            max_connections: 1024,
            idle_timeout_ms: 6 * 60 * 1000,
            stall_timeout_ms: 30_000,
            reclaim_after_ms: 1_000,
            open_files: 64,
            open_file_idle_ms: 2_000,
            drc_entries: 4096,
            dtpref_bytes: 64 * 1024,
        }
    }
}

/// What the request path ([`Service`](crate::Service)) needs to know: the export's name, who
/// may do what to it, the bounds, and the instance's seed. A [`ServerConfig`] embeds one and
/// hands it to its service whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// The path clients mount (`MNT`), e.g. `/export`.
    pub export_name: String,
    /// Refuse every change (`NFS3ERR_ROFS`).
    pub read_only: bool,
    /// Client networks allowed to connect (listed by MOUNT EXPORT; enforced by the listener
    /// and MNT); empty: everyone.
    pub allow: Vec<IpNet>,
    /// Identity mapping.
    pub squash: Squash,
    /// The uid squashed users become.
    pub anonuid: u32,
    /// The gid squashed users become.
    pub anongid: u32,
    /// Resource bounds.
    pub limits: Limits,
    /// Seed of the write verifier and other instance randomness (the duplicate cache's hash);
    /// `None`: from the system's entropy, time and process id (what a real server wants). A
    /// simulation sets it so that one seed fixes a whole run.
    pub instance_seed: Option<u64>,
}

impl Default for ServiceConfig {
    /// `/export`, read-write, open to everyone, the default identity policy
    /// ([`Squash::Auto`], anonymous 65534:65534), default limits, a fresh instance.
    fn default() -> Self {
        Self {
            export_name: "/export".to_owned(),
            read_only: false,
            allow: Vec::new(),
            squash: Squash::Auto,
            anonuid: 65534,
            anongid: 65534,
            limits: Limits::default(),
            instance_seed: None,
        }
    }
}

impl ServiceConfig {
    /// A configuration for tests and simulations: the defaults, but no squashing and the
    /// instance seeded with `seed`.
    pub fn for_tests(seed: u64) -> Self {
        Self {
            squash: Squash::None,
            instance_seed: Some(seed),
            ..Self::default()
        }
    }
}

/// Everything `nfsio serve` needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The directory to export.
    pub export_dir: PathBuf,
    /// Where NFS listens (port 0: any free port; see `Server::nfs_addr`).
    pub listen: SocketAddr,
    /// Where MOUNT listens; `None`: MOUNT is served on the NFS port only.
    pub mount_listen: Option<SocketAddr>,
    /// Where a portmapper (v2) listens, answering for this server's programs; `None`: no
    /// separate portmap listener (portmap is still answered on the NFS port).
    pub portmap_listen: Option<SocketAddr>,
    /// Where the server keeps what must survive restarts (the file handle key). Must be
    /// outside the export. [`ServerConfig::new`] sets [`default_state_dir`].
    pub state_dir: PathBuf,
    /// What the request path is given as it is: the export's name, who may do what, the
    /// bounds, the instance seed.
    pub service: ServiceConfig,
    /// Deliberate protocol violations, for testing clients (the simulation); `None` (what
    /// `nfsio serve` uses): keep every rule.
    pub misbehavior: Option<crate::misbehave::MisbehaviorSwitch>,
    /// Serve directories of other mounts inside the export when they are bind mounts of the
    /// export's own file system (never another file system); default false, as knfsd
    /// without `crossmnt`.
    pub cross_mounts: bool,
    /// Let MKNOD make character and block devices (as the caller: the kernel allows it to
    /// root only, and only when root is not squashed). Off: NFS3ERR_NOTSUPP.
    pub devices: bool,
}

impl ServerConfig {
    /// A configuration exporting `export_dir` as `/export` on 127.0.0.1:2049, read-write,
    /// with the default identity policy ([`Squash::Auto`]: root squashed to 65534 unless the
    /// kernel vouches for it) and the default state directory.
    pub fn new(export_dir: impl Into<PathBuf>) -> Self {
        let export_dir = export_dir.into();
        let state_dir = default_state_dir(&export_dir);
        Self {
            export_dir,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2049),
            mount_listen: None,
            portmap_listen: None,
            state_dir,
            service: ServiceConfig::default(),
            misbehavior: None,
            cross_mounts: false,
            devices: false,
        }
    }
}

/// The default state directory of an export: `$XDG_STATE_HOME/nfsio/exports/<hash>`, else
/// `/var/lib/nfsio/exports/<hash>` for root, else `~/.local/state/nfsio/exports/<hash>`, where
/// `<hash>` names the export's absolute path. It is never inside the export.
pub fn default_state_dir(export_dir: &Path) -> PathBuf {
    let absolute = export_dir
        .canonicalize()
        .unwrap_or_else(|_| export_dir.to_path_buf());
    let hash = path_hash(absolute.as_os_str().as_encoded_bytes());
    let leaf = format!("{hash:016x}");
    let base = if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        PathBuf::from(xdg).join("nfsio")
    } else if is_root() {
        PathBuf::from("/var/lib/nfsio")
    } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        PathBuf::from(home).join(".local/state/nfsio")
    } else {
        std::env::temp_dir().join("nfsio-state")
    };
    base.join("exports").join(leaf)
}

/// The default memory bound for this machine: a thirty-second of its memory, between 64 MiB
/// and 512 MiB.
pub fn default_memory_bound_bytes() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib.saturating_mul(1024))
        })
        .unwrap_or(8 << 30);
    (total / 32).clamp(64 << 20, 512 << 20)
}

/// A 64-bit hash of a path, stable across runs and builds (names the default state
/// directory and the local store's file system id).
pub(crate) fn path_hash(path: &[u8]) -> u64 {
    let mut hasher = SipHasher24::new_with_key(b"nfsio state dir\0");
    hasher.write(path);
    hasher.finish128().h1
}

/// The effective uid and gid of this process (the owner of `/proc/self`).
pub(crate) fn process_ids() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .ok()
        .map(|m| (m.uid(), m.gid()))
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just could create is its effective uid; /proc/self is
    // owned by the process's effective uid without creating anything.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let host: IpNet = "127.0.0.1".parse().unwrap();
        assert_eq!(host.prefix_len(), 32);
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
        assert_eq!(net.to_string(), "10.1.0.0/16");
    }

    #[test]
    fn default_state_dir_is_outside_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let state = default_state_dir(dir.path());
        assert!(!state.starts_with(dir.path().canonicalize().unwrap()));
        assert_eq!(state, default_state_dir(dir.path()), "stable");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(state, default_state_dir(other.path()));
    }
}
