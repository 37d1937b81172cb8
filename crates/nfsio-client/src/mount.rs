//! Mount discovery: what `mount` does before the first NFSv3 call.
//!
//! Find the MOUNT and NFS ports (from the URL, the NFS port itself, or the portmapper), pick
//! the export that is the longest prefix of the URL's path from the server's export list, MNT
//! it for the root handle, open the NFS transport and ask FSINFO for the transfer sizes. The
//! result, a [`Mount`], is everything the [`Client`](crate::Client) facade is built from, so
//! the facade never exists half set up.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use nfsio_proto::nfs3::{self, FileHandle, FsinfoResOk};
use nfsio_proto::rpc::{AuthSysParams, OpaqueAuth};
use nfsio_proto::{XdrDecode, mount, portmap};
use nfsio_rpc::{RetryPolicy, RpcConfig, RpcError};
use tracing::debug;

use crate::error::{NfsError, NfsResult};
use crate::jukebox::Jukebox;
use crate::options::{ClientOptions, Network};
use crate::procedures::Procedures;
use crate::url::{
    NfsUrl, components, encode_path, normalize_path, trim_end_slashes, trim_start_slashes,
};

/// A mounted export: the NFS transport, the root handle and what FSINFO said of it.
#[derive(Debug)]
pub(crate) struct Mount {
    /// The NFSv3 procedures over the NFS connection.
    pub(crate) nfs: Procedures,
    /// The export's root handle.
    pub(crate) root: FileHandle,
    /// The export's path on the server.
    pub(crate) export: String,
    /// The path inside the export that the URL named (bytes: names need not be UTF-8).
    pub(crate) url_path: Vec<u8>,
    /// The NFS server's address.
    pub(crate) server: SocketAddr,
    /// FSINFO of the root.
    pub(crate) fsinfo: FsinfoResOk,
}

/// Transfer size when FSINFO gives no preference and no maximum.
const DEFAULT_TRANSFER_BYTES: u32 = 64 * 1024;

/// Largest READ or WRITE the client sends.
const MAX_TRANSFER_BYTES: u32 = 1024 * 1024;

/// The portmapper's well-known port.
const PORTMAP_PORT: u16 = 111;

/// The size to use given a server's preferred and maximum sizes (either may be 0 = unknown),
/// within [4 KiB, 1 MiB] (Linux's NFSv3 cap too: measured against ganesha here, one 4 MiB
/// READ took ten times as long as a 1 MiB one).
fn transfer_size(preferred: u32, max: u32) -> u32 {
    let size = match (preferred, max) {
        (0, 0) => DEFAULT_TRANSFER_BYTES,
        (0, max) => max,
        (preferred, 0) => preferred,
        (preferred, max) => preferred.min(max),
    };
    size.clamp(4096, MAX_TRANSFER_BYTES)
}

impl Mount {
    /// The READ size used for transfers, in bytes.
    pub(crate) fn rsize_bytes(&self) -> u32 {
        transfer_size(self.fsinfo.rtpref, self.fsinfo.rtmax)
    }

    /// The WRITE size used for transfers, in bytes.
    pub(crate) fn wsize_bytes(&self) -> u32 {
        transfer_size(self.fsinfo.wtpref, self.fsinfo.wtmax)
    }
}

/// Mounts the export `url` names over `net`; FSINFO's NFS3ERR_JUKEBOX is asked again per
/// `jukebox`.
pub(crate) async fn mount<N: Network>(
    url: &NfsUrl,
    options: &ClientOptions,
    net: &N,
    jukebox: Jukebox,
) -> NfsResult<Mount> {
    let ip = resolve(&url.host).await?;
    let params = credentials(url, options);
    let cred = OpaqueAuth::sys(&params);
    let control = control_config(options.mount_timeout_ms, options.rpc.xid_seed);
    let getport = |prog, vers| portmap_getport(net, &url.host, ip, prog, vers, control.clone());
    let mount_at = |port| mount_export(net, ip, port, &cred, &url.path, control.clone());
    let (export, root) = match (url.mount_port, url.nfs_port) {
        (Some(port), _) => mount_at(port).await?,
        // `nfs://host:port/...`: a server like `nfsio serve` answers MOUNT on its NFS port;
        // one that does not serve MOUNT there is asked through the portmapper.
        (None, Some(nfs_port)) => match mount_at(nfs_port).await {
            Err(error) if not_served_here(&error) => {
                debug!(%error, "no MOUNT on the NFS port; asking the portmapper");
                mount_at(getport(mount::PROGRAM, mount::VERSION).await?).await?
            }
            result => result?,
        },
        (None, None) => mount_at(getport(mount::PROGRAM, mount::VERSION).await?).await?,
    };
    let nfs_port = match url.nfs_port {
        Some(port) => port,
        None => getport(nfs3::PROGRAM, nfs3::VERSION).await?,
    };
    let below = url.path.get(trim_end_slashes(&export).len()..);
    let url_path = trim_start_slashes(below.unwrap_or_default()).to_vec();
    let export = String::from_utf8_lossy(&export).into_owned();
    let server = SocketAddr::new(ip, nfs_port);
    let rpc = nfsio_rpc::connect(net.connector(server), nfs_rpc_config(url, options))
        .await
        .map_err(|e| NfsError::service("NFS", server, e))?;
    let nfs = Procedures::new(rpc, params);
    let fsinfo = jukebox.retry(|| nfs.fsinfo(&root)).await?;
    debug!(
        rtmax = fsinfo.rtmax,
        wtmax = fsinfo.wtmax,
        wtpref = fsinfo.wtpref,
        dtpref = fsinfo.dtpref,
        "mounted"
    );
    Ok(Mount {
        nfs,
        root,
        export,
        url_path,
        server,
        fsinfo,
    })
}

/// The AUTH_SYS credentials of MOUNT and of every NFS call a client makes as itself (see
/// `Client::as_caller` for calls made as others): the URL's uid and gid, else the options',
/// else this process's.
fn credentials(url: &NfsUrl, options: &ClientOptions) -> AuthSysParams {
    let (process_uid, process_gid) = process_ids();
    AuthSysParams {
        stamp: std::process::id(),
        machine_name: Bytes::from(options.machine_name.clone().unwrap_or_else(host_name)),
        uid: url.uid.or(options.uid).unwrap_or(process_uid),
        gid: url.gid.or(options.gid).unwrap_or(process_gid),
        gids: options.gids.clone(),
    }
}

/// The effective uid and gid of this process, read from the owner of `/proc/self` (no libc
/// needed); `nobody` where that is not available.
fn process_ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((65534, 65534))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "nfsio".to_owned())
}

async fn resolve(host: &str) -> NfsResult<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let mut addrs = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| NfsError::Resolve(host.to_owned()))?;
    addrs
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| NfsError::Resolve(host.to_owned()))
}

/// A transport configuration for short control exchanges (portmap, MOUNT): soft, so a server
/// that does not answer fails the connect instead of hanging it. When the NFS transport's
/// XIDs come from a seed, so do these (a simulation replays exactly), from another range.
fn control_config(timeout_ms: u64, nfs_xid_seed: Option<u32>) -> RpcConfig {
    RpcConfig {
        slots: 4,
        timeout_ms,
        retry: RetryPolicy::Soft { max_tries: 2 },
        xid_seed: nfs_xid_seed.map(|seed| seed ^ 0x8000_0000),
        ..RpcConfig::default()
    }
}

/// The NFS transport's settings: the options', with the URL's `timeo=` (tenths of a second
/// per try) and `retrans=` (retransmissions before a call fails: a soft mount) applied.
///
/// Unless the options say otherwise, READ replies arrive into kept buffers: twice the READs
/// in flight, so that the buffers of the replies a sequential reader has consumed are among
/// them.
fn nfs_rpc_config(url: &NfsUrl, options: &ClientOptions) -> RpcConfig {
    let mut config = options.rpc.clone();
    config.spare_receive_buffers = config
        .spare_receive_buffers
        .or(Some(2 * crate::writeback::max_inflight_reads(options)));
    if let Some(timeo_ds) = url.timeo_ds {
        config.timeout_ms = u64::from(timeo_ds) * 100;
    }
    if let Some(retrans) = url.retrans {
        config.retry = RetryPolicy::Soft {
            max_tries: retrans.saturating_add(1),
        };
    }
    config
}

/// True when MOUNT failed at an address because that server does not serve MOUNT there (it
/// rejected the program or hung up), not because nothing is listening.
fn not_served_here(error: &NfsError) -> bool {
    let NfsError::Service { source, .. } = error else {
        return false;
    };
    matches!(
        source,
        RpcError::ProgUnavail
            | RpcError::ProgMismatch { .. }
            | RpcError::ProcUnavail
            | RpcError::ConnectionLost { .. }
            | RpcError::Record(_)
            | RpcError::Xdr(_)
    )
}

async fn portmap_getport<N: Network>(
    net: &N,
    host: &str,
    ip: IpAddr,
    prog: u32,
    vers: u32,
    control: RpcConfig,
) -> NfsResult<u16> {
    let addr = SocketAddr::new(ip, PORTMAP_PORT);
    let failed = |e| NfsError::service("portmapper", addr, e);
    let rpc = nfsio_rpc::connect(net.connector(addr), control)
        .await
        .map_err(failed)?;
    let mapping = portmap::Mapping {
        prog,
        vers,
        prot: portmap::IPPROTO_TCP,
        port: 0,
    };
    let (program, version) = (portmap::PROGRAM, portmap::VERSION);
    let none = OpaqueAuth::none();
    let mut dec = rpc
        .call(program, version, portmap::procs::GETPORT, &none, &mapping)
        .await
        .map_err(failed)?;
    let port = u32::decode(&mut dec)?;
    match u16::try_from(port) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(NfsError::NotRegistered {
            host: host.to_owned(),
            prog,
            vers,
        }),
    }
}

/// True when `prefix` is `path` or a directory above it, component-wise.
fn path_has_prefix(path: &[u8], prefix: &[u8]) -> bool {
    let prefix = trim_end_slashes(prefix);
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

/// The exports to try MNT on for `path`, best first: those of the server's list that contain
/// `path`, longest first; for a server that hides its list, every prefix of `path`.
fn candidates(exports: &mount::ExportList, path: &[u8]) -> NfsResult<Vec<Vec<u8>>> {
    let mut names: Vec<Vec<u8>> = exports
        .0
        .iter()
        .map(|e| normalize_path(&e.dir))
        .filter(|dir| path_has_prefix(path, dir))
        .collect();
    names.sort_by_key(|dir| std::cmp::Reverse(dir.len()));
    if !names.is_empty() {
        return Ok(names);
    }
    if !exports.0.is_empty() {
        let listed: Vec<String> = exports
            .0
            .iter()
            .map(|e| String::from_utf8_lossy(&e.dir).into_owned())
            .collect();
        return Err(NfsError::NoExport {
            path: encode_path(path),
            exports: listed.join(", "),
        });
    }
    // An empty list: the server may simply not disclose its exports.
    let mut prefix = Vec::new();
    names.push(b"/".to_vec());
    for component in components(path) {
        prefix.push(b'/');
        prefix.extend_from_slice(component);
        names.push(prefix.clone());
    }
    names.reverse();
    Ok(names)
}

/// Asks MOUNT for the export list and mounts the best export for `path` (see
/// [`candidates`]).
async fn mount_export<N: Network>(
    net: &N,
    ip: IpAddr,
    mount_port: u16,
    cred: &OpaqueAuth,
    path: &[u8],
    control: RpcConfig,
) -> NfsResult<(Vec<u8>, FileHandle)> {
    let addr = SocketAddr::new(ip, mount_port);
    let failed = |e| NfsError::service("MOUNT", addr, e);
    let rpc = nfsio_rpc::connect(net.connector(addr), control)
        .await
        .map_err(failed)?;
    let (program, version) = (mount::PROGRAM, mount::VERSION);
    let mut dec = rpc
        .call(program, version, mount::procs::EXPORT, cred, &())
        .await
        .map_err(failed)?;
    let exports = mount::ExportList::decode(&mut dec)?;
    let mut last_error = None;
    for export in candidates(&exports, path)? {
        let args = mount::MntArgs {
            dirpath: Bytes::from(export.clone()),
        };
        let mut dec = rpc
            .call(program, version, mount::procs::MNT, cred, &args)
            .await
            .map_err(failed)?;
        match mount::MntRes::decode(&mut dec)? {
            mount::MntRes::Ok { fhandle, .. } => return Ok((export, fhandle)),
            mount::MntRes::Fail(status) => last_error = Some(NfsError::Mount(status)),
        }
    }
    Err(last_error.unwrap_or(NfsError::NoExport {
        path: encode_path(path),
        exports: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_prefix_is_component_wise() {
        assert!(path_has_prefix(b"/export/a", b"/export"));
        assert!(path_has_prefix(b"/export", b"/export"));
        assert!(path_has_prefix(b"/export", b"/export/"));
        assert!(path_has_prefix(b"/anything", b"/"));
        assert!(!path_has_prefix(b"/exports/a", b"/export"));
        assert!(!path_has_prefix(b"/ex", b"/export"));
    }

    #[test]
    fn transfer_sizes_keep_within_the_servers_maximum_and_the_clients_cap() {
        assert_eq!(transfer_size(0, 0), DEFAULT_TRANSFER_BYTES);
        assert_eq!(transfer_size(1 << 20, 32 << 10), 32 << 10);
        assert_eq!(transfer_size(0, 8 << 20), MAX_TRANSFER_BYTES);
        assert_eq!(transfer_size(512, 0), 4096);
    }
}
