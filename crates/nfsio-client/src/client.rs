//! `Client`: one mounted NFSv3 export and every operation on it.
//!
//! Connecting does what `mount` does: find the MOUNT and NFS ports (from the URL or the
//! portmapper), pick the export that is the longest prefix of the URL's path from the server's
//! export list, MNT it for the root handle, and ask FSINFO for the transfer sizes. After that
//! every operation is one NFSv3 procedure on the shared, pipelined transport; the client is
//! cheap to clone and safe to use from many tasks at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use nfsio_proto::nfs3::{
    self, AccessArgs, CommitResOk, CreateArgs, CreateHow, CreateResOk, DirOpArgs, Fattr,
    FileHandle, FileType, FsinfoArgs, FsinfoResOk, FsstatArgs, FsstatResOk, GetattrArgs,
    GetattrResOk, LinkArgs, LinkResOk, LookupArgs, LookupResOk, MkdirArgs, MkdirResOk, Nfs3Status,
    NfsRes, NfsTime, PathconfArgs, PathconfResOk, ReadResOk, ReadlinkArgs, ReadlinkResOk,
    RemoveArgs, RemoveResOk, RenameArgs, RenameResOk, RmdirArgs, RmdirResOk, Sattr, StableHow,
    SymlinkArgs, SymlinkData, SymlinkResOk, WccData, WriteResOk, procs,
};
use nfsio_proto::rpc::{AuthSysParams, OpaqueAuth};
use nfsio_proto::{XdrDecode, XdrEncode, mount, portmap};
use nfsio_rpc::{
    Connector, RetryPolicy, RpcClient, RpcConfig, RpcError, TcpConnector, TransportStats,
};
use tracing::debug;

use crate::dir::ReadDir;
use crate::error::{NfsError, NfsResult};
use crate::procedures::Procedures;
use crate::url::NfsUrl;
use crate::writeback::{self, Cache};

/// Options for [`Client::connect_with`].
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

/// The object a CREATE, MKDIR, SYMLINK or MKNOD made.
#[derive(Debug, Clone)]
pub struct Created {
    /// Its file handle.
    pub handle: FileHandle,
    /// Its attributes, when the server returned them.
    pub attributes: Option<Fattr>,
}

/// A mounted NFSv3 export. Cheap to clone; all clones share one connection and one
/// write-back cache (see [`File`](crate::File)).
///
/// The cache's background work runs in a task on the tokio runtime that connected, while any
/// handle to the client (a clone, or an open `File`) lives; it writes back the files dropped
/// without `close` too. When the last handle is dropped it stops, and bytes not yet durable
/// are lost: an error-level log line (or, without a `tracing` subscriber, a line on stderr)
/// names the files and the byte counts. End a program with [`File::close`](crate::File::close)
/// on every file, or with [`Client::shutdown`], which waits for all of it:
///
/// ```no_run
/// # async fn example() -> Result<(), nfsio_client::NfsError> {
/// let client = nfsio_client::Client::connect("nfs://127.0.0.1:2049/export").await?;
/// let file = client.create_file("log.txt", 0o644).await?;
/// file.write_at(b"entry\n", 0).await?;
/// drop(file); // handed to the background write-back
/// client.shutdown().await?; // durable on the server, or the first error
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    nfs: Arc<Procedures>,
    root: FileHandle,
    export: String,
    url: NfsUrl,
    url_path: String,
    fsinfo: Option<FsinfoResOk>,
    server: SocketAddr,
    /// The write-back cache beneath every `File` of this client (set once FSINFO answered).
    cache: Option<Arc<Cache>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(cache) = &self.cache {
            cache.stop();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.server)
            .field("export", &self.inner.export)
            .finish_non_exhaustive()
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
fn nfs_rpc_config(url: &NfsUrl, options: &ClientOptions) -> RpcConfig {
    let mut config = options.rpc.clone();
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
    let mut dec = rpc
        .call(
            portmap::PROGRAM,
            portmap::VERSION,
            portmap::procs::GETPORT,
            &OpaqueAuth::none(),
            &mapping,
        )
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

/// Transfer size before FSINFO has answered.
const DEFAULT_TRANSFER_BYTES: u32 = 64 * 1024;

/// Largest READ or WRITE the client sends.
const MAX_TRANSFER_BYTES: u32 = 1024 * 1024;

/// The size to use given a server's preferred and maximum sizes (either may be 0 = unknown).
fn transfer_size(preferred: u32, max: u32) -> u32 {
    let size = match (preferred, max) {
        (0, 0) => DEFAULT_TRANSFER_BYTES,
        (0, max) => max,
        (preferred, 0) => preferred,
        (preferred, max) => preferred.min(max),
    };
    size.clamp(4096, MAX_TRANSFER_BYTES)
}

/// The portmapper's well-known port.
const PORTMAP_PORT: u16 = 111;

/// True when `prefix` is `path` or a directory above it, component-wise.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Splits a path inside the export into its components, rejecting empty names.
pub(crate) fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

impl Client {
    /// Connects to the export named by a libnfs-style URL with default options.
    pub async fn connect(url: &str) -> NfsResult<Self> {
        Self::connect_with(&NfsUrl::parse(url)?, ClientOptions::default()).await
    }

    /// Connects to the export named by `url`.
    pub async fn connect_with(url: &NfsUrl, options: ClientOptions) -> NfsResult<Self> {
        Self::connect_via(url, options, &Tcp).await
    }

    /// Connects to the export named by `url` over `net` (TCP, or a simulated network). The
    /// URL's host must be an IP address unless `net` is TCP with a resolver at hand.
    pub async fn connect_via<N: Network>(
        url: &NfsUrl,
        options: ClientOptions,
        net: &N,
    ) -> NfsResult<Self> {
        let ip = resolve(&url.host).await?;
        let (process_uid, process_gid) = process_ids();
        let cred = OpaqueAuth::sys(&AuthSysParams {
            stamp: std::process::id(),
            machine_name: Bytes::from(options.machine_name.clone().unwrap_or_else(host_name)),
            uid: url.uid.or(options.uid).unwrap_or(process_uid),
            gid: url.gid.or(options.gid).unwrap_or(process_gid),
            gids: options.gids.clone(),
        });
        let control = control_config(options.mount_timeout_ms, options.rpc.xid_seed);
        let getport = |prog, vers| portmap_getport(net, &url.host, ip, prog, vers, control.clone());
        let mount_at = |port| mount_export(net, ip, port, &cred, &url.path, control.clone());
        let (export, root) = match (url.mount_port, url.nfs_port) {
            (Some(port), _) => mount_at(port).await?,
            // `nfs://host:port/...`: a server like `nfsio serve` answers MOUNT on its NFS
            // port; one that does not serve MOUNT there is asked through the portmapper.
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
        let url_path = url.path[export.trim_end_matches('/').len()..]
            .trim_start_matches('/')
            .to_owned();
        let server = SocketAddr::new(ip, nfs_port);
        let rpc = nfsio_rpc::connect(net.connector(server), nfs_rpc_config(url, &options))
            .await
            .map_err(|e| NfsError::service("NFS", server, e))?;
        let mut client = Self {
            inner: Arc::new(Inner {
                nfs: Arc::new(Procedures::new(rpc, cred)),
                root: root.clone(),
                export,
                url: url.clone(),
                url_path,
                fsinfo: None,
                server,
                cache: None,
            }),
        };
        let fsinfo = client.fsinfo(&root).await?;
        debug!(
            rtmax = fsinfo.rtmax,
            wtmax = fsinfo.wtmax,
            wtpref = fsinfo.wtpref,
            dtpref = fsinfo.dtpref,
            "mounted"
        );
        let config = writeback::engine_config(
            options.cache_config.clone(),
            options.cache_bytes,
            transfer_size(fsinfo.wtpref, fsinfo.wtmax),
            transfer_size(fsinfo.rtpref, fsinfo.rtmax),
            options.rpc.slots,
        );
        let engine = nfsio_cache::Engine::new(config)
            .map_err(|e| NfsError::InvalidArgument(format!("write-back cache: {e}")))?;
        let cache = Cache::new(engine);
        if let Some(inner) = Arc::get_mut(&mut client.inner) {
            inner.fsinfo = Some(fsinfo);
            inner.cache = Some(Arc::clone(&cache));
        }
        cache.spawn_driver(Arc::clone(&client.inner.nfs));
        Ok(client)
    }

    /// The root handle of the export.
    pub fn root(&self) -> &FileHandle {
        &self.inner.root
    }

    /// The export's path on the server (e.g. `/export`).
    pub fn export(&self) -> &str {
        &self.inner.export
    }

    /// The path inside the export that the connect URL named ("" for the export's root).
    pub fn url_path(&self) -> &str {
        &self.inner.url_path
    }

    /// The URL the client was connected with.
    pub fn url(&self) -> &NfsUrl {
        &self.inner.url
    }

    /// The NFS server's address.
    pub fn server(&self) -> SocketAddr {
        self.inner.server
    }

    /// FSINFO of the export root, as read at connect time.
    pub fn fs_info(&self) -> Option<&FsinfoResOk> {
        self.inner.fsinfo.as_ref()
    }

    /// The READ size used for transfers, in bytes: the server's preferred size, within its
    /// maximum and within [4 KiB, 1 MiB] (Linux's NFSv3 cap too: measured against ganesha
    /// here, one 4 MiB READ took ten times as long as a 1 MiB one).
    pub fn rsize_bytes(&self) -> u32 {
        self.inner
            .fsinfo
            .as_ref()
            .map_or(DEFAULT_TRANSFER_BYTES, |f| transfer_size(f.rtpref, f.rtmax))
    }

    /// The WRITE size used for transfers, in bytes: the server's preferred size, within its
    /// maximum and within [4 KiB, 1 MiB].
    pub fn wsize_bytes(&self) -> u32 {
        self.inner
            .fsinfo
            .as_ref()
            .map_or(DEFAULT_TRANSFER_BYTES, |f| transfer_size(f.wtpref, f.wtmax))
    }

    /// Per-procedure call statistics of the NFS connection.
    pub fn stats(&self) -> TransportStats {
        self.inner.nfs.rpc().stats()
    }

    /// Counters of the write-back cache (bytes dirty, in flight, awaiting COMMIT and clean;
    /// WRITEs and COMMITs sent, verifier mismatches, writers that waited at the bound).
    pub fn cache_stats(&self) -> nfsio_cache::EngineStats {
        self.inner
            .cache
            .as_ref()
            .map(|cache| cache.stats())
            .unwrap_or_default()
    }

    /// Makes everything written through this client durable on the server and waits for it:
    /// every open [`File`](crate::File) is synced (as `sync_all`), and the write-back of
    /// files dropped without `close` is finished. Returns the first error among them and
    /// those the background write-back met since the last `shutdown` (ENOSPC, EIO, ...: each
    /// reported once, here or to the file's own `sync_all`/`close`, not both).
    ///
    /// The client stays usable; call this last, before dropping the client, so that nothing
    /// is lost when the program ends.
    pub async fn shutdown(&self) -> NfsResult<()> {
        self.cache()?.shutdown().await
    }

    /// The write-back cache (present once `connect_with` returned).
    pub(crate) fn cache(&self) -> NfsResult<&Arc<Cache>> {
        self.inner
            .cache
            .as_ref()
            .ok_or_else(|| NfsError::Protocol("the client has no write-back cache".into()))
    }

    /// The transport, for callers that send their own calls.
    pub fn transport(&self) -> &RpcClient {
        self.inner.nfs.rpc()
    }

    /// Sends one NFSv3 call and decodes its result (see [`Procedures::call`]).
    async fn call<A, T, F>(&self, proc_num: u32, args: &A) -> NfsResult<T>
    where
        A: XdrEncode + Sync + ?Sized,
        NfsRes<T, F>: XdrDecode,
    {
        self.inner.nfs.call::<A, T, F>(proc_num, args).await
    }

    /// NULL: a round trip that does nothing.
    pub async fn null(&self) -> NfsResult<()> {
        let nfs = &self.inner.nfs;
        nfs.rpc()
            .call(nfs3::PROGRAM, nfs3::VERSION, procs::NULL, nfs.cred(), &())
            .await?;
        Ok(())
    }

    /// GETATTR.
    pub async fn getattr(&self, object: &FileHandle) -> NfsResult<Fattr> {
        let ok: GetattrResOk = self
            .call::<_, _, ()>(
                procs::GETATTR,
                &GetattrArgs {
                    object: object.clone(),
                },
            )
            .await?;
        Ok(ok.obj_attributes)
    }

    /// SETATTR: size (truncate or extend), mode, owner, times. With `guard`, the server applies
    /// the change only if the object's ctime still equals it (NFS3ERR_NOT_SYNC otherwise).
    pub async fn setattr(
        &self,
        object: &FileHandle,
        new_attributes: Sattr,
        guard: Option<NfsTime>,
    ) -> NfsResult<WccData> {
        self.inner.nfs.setattr(object, new_attributes, guard).await
    }

    /// LOOKUP of one name in a directory.
    pub async fn lookup(&self, dir: &FileHandle, name: &str) -> NfsResult<LookupResOk> {
        self.call::<_, _, Option<Fattr>>(
            procs::LOOKUP,
            &LookupArgs {
                what: dir_op(dir, name)?,
            },
        )
        .await
    }

    /// Walks `path` (relative to the export root; `/`-separated) with LOOKUPs and returns the
    /// handle and attributes of what it names. Symbolic links are not followed.
    pub async fn lookup_path(&self, path: &str) -> NfsResult<(FileHandle, Fattr)> {
        let mut handle = self.inner.root.clone();
        let mut attributes = None;
        for name in components(path) {
            let found = self.lookup(&handle, name).await?;
            handle = found.object;
            attributes = found.obj_attributes;
        }
        let attributes = match attributes {
            Some(attributes) => attributes,
            None => self.getattr(&handle).await?,
        };
        Ok((handle, attributes))
    }

    /// The handle of the directory containing `path`, and the last component's name.
    pub async fn lookup_parent<'p>(&self, path: &'p str) -> NfsResult<(FileHandle, &'p str)> {
        let trimmed = path.trim_end_matches('/');
        let (dir, name) = match trimmed.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", trimmed),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(NfsError::InvalidArgument(format!(
                "{path:?} does not name an entry in a directory"
            )));
        }
        let (handle, attributes) = self.lookup_path(dir).await?;
        if attributes.file_type != FileType::Directory {
            return Err(NfsError::Status {
                proc_name: "LOOKUP",
                status: Nfs3Status::NotDir,
            });
        }
        Ok((handle, name))
    }

    /// ACCESS: which of the `access` bits (see `nfs3::access`) the caller is granted.
    pub async fn access(&self, object: &FileHandle, access: u32) -> NfsResult<u32> {
        let ok: nfs3::AccessResOk = self
            .call::<_, _, Option<Fattr>>(
                procs::ACCESS,
                &AccessArgs {
                    object: object.clone(),
                    access,
                },
            )
            .await?;
        Ok(ok.access)
    }

    /// READLINK: the target of a symbolic link.
    pub async fn readlink(&self, symlink: &FileHandle) -> NfsResult<Bytes> {
        let ok: ReadlinkResOk = self
            .call::<_, _, Option<Fattr>>(
                procs::READLINK,
                &ReadlinkArgs {
                    symlink: symlink.clone(),
                },
            )
            .await?;
        Ok(ok.data)
    }

    /// READ of at most `count` bytes at `offset` (one RPC; may return fewer bytes, but never
    /// none before the end of the file: that is [`NfsError::Protocol`]).
    pub async fn read(&self, file: &FileHandle, offset: u64, count: u32) -> NfsResult<ReadResOk> {
        self.inner.nfs.read(file, offset, count).await
    }

    /// WRITE of `data` at `offset` with the requested stability (one RPC). Returns the count
    /// the server took (possibly short), how stable it made them, and the write verifier.
    pub async fn write(
        &self,
        file: &FileHandle,
        offset: u64,
        data: Bytes,
        stable: StableHow,
    ) -> NfsResult<WriteResOk> {
        self.inner.nfs.write(file, offset, data, stable).await
    }

    /// COMMIT of `count` bytes at `offset` (0, 0: the whole file). Returns the verifier that
    /// must equal the one of every UNSTABLE WRITE being committed.
    pub async fn commit(
        &self,
        file: &FileHandle,
        offset: u64,
        count: u32,
    ) -> NfsResult<CommitResOk> {
        self.inner.nfs.commit(file, offset, count).await
    }

    async fn created(&self, dir: &FileHandle, name: &str, ok: CreateResOk) -> NfsResult<Created> {
        match ok.obj {
            Some(handle) => Ok(Created {
                handle,
                attributes: ok.obj_attributes,
            }),
            // RFC 1813 lets the server omit the handle; a LOOKUP gets it.
            None => {
                let found = self.lookup(dir, name).await?;
                Ok(Created {
                    handle: found.object,
                    attributes: found.obj_attributes,
                })
            }
        }
    }

    /// CREATE of a regular file: `Unchecked` (truncates an existing file when the attributes
    /// set size 0), `Guarded` (NFS3ERR_EXIST if it exists) or `Exclusive` (by verifier, safe
    /// to retransmit).
    pub async fn create(&self, dir: &FileHandle, name: &str, how: CreateHow) -> NfsResult<Created> {
        let ok: CreateResOk = self
            .call::<_, _, WccData>(
                procs::CREATE,
                &CreateArgs {
                    where_: dir_op(dir, name)?,
                    how,
                },
            )
            .await?;
        self.created(dir, name, ok).await
    }

    /// MKDIR.
    pub async fn mkdir(
        &self,
        dir: &FileHandle,
        name: &str,
        attributes: Sattr,
    ) -> NfsResult<Created> {
        let ok: MkdirResOk = self
            .call::<_, _, WccData>(
                procs::MKDIR,
                &MkdirArgs {
                    where_: dir_op(dir, name)?,
                    attributes,
                },
            )
            .await?;
        self.created(dir, name, ok).await
    }

    /// SYMLINK: creates `name` in `dir` pointing at `target`.
    pub async fn symlink(
        &self,
        dir: &FileHandle,
        name: &str,
        target: &str,
        attributes: Sattr,
    ) -> NfsResult<Created> {
        let ok: SymlinkResOk = self
            .call::<_, _, WccData>(
                procs::SYMLINK,
                &SymlinkArgs {
                    where_: dir_op(dir, name)?,
                    symlink: SymlinkData {
                        symlink_attributes: attributes,
                        symlink_data: Bytes::copy_from_slice(target.as_bytes()),
                    },
                },
            )
            .await?;
        self.created(dir, name, ok).await
    }

    /// REMOVE of a non-directory.
    pub async fn remove(&self, dir: &FileHandle, name: &str) -> NfsResult<WccData> {
        let ok: RemoveResOk = self
            .call::<_, _, WccData>(
                procs::REMOVE,
                &RemoveArgs {
                    object: dir_op(dir, name)?,
                },
            )
            .await?;
        Ok(ok.dir_wcc)
    }

    /// RMDIR of an empty directory.
    pub async fn rmdir(&self, dir: &FileHandle, name: &str) -> NfsResult<WccData> {
        let ok: RmdirResOk = self
            .call::<_, _, WccData>(
                procs::RMDIR,
                &RmdirArgs {
                    object: dir_op(dir, name)?,
                },
            )
            .await?;
        Ok(ok.dir_wcc)
    }

    /// RENAME.
    pub async fn rename(
        &self,
        from_dir: &FileHandle,
        from_name: &str,
        to_dir: &FileHandle,
        to_name: &str,
    ) -> NfsResult<RenameResOk> {
        self.call::<_, _, nfs3::RenameResFail>(
            procs::RENAME,
            &RenameArgs {
                from: dir_op(from_dir, from_name)?,
                to: dir_op(to_dir, to_name)?,
            },
        )
        .await
    }

    /// LINK: a new name `name` in `dir` for `file`.
    pub async fn link(
        &self,
        file: &FileHandle,
        dir: &FileHandle,
        name: &str,
    ) -> NfsResult<LinkResOk> {
        self.call::<_, _, nfs3::LinkResFail>(
            procs::LINK,
            &LinkArgs {
                file: file.clone(),
                link: dir_op(dir, name)?,
            },
        )
        .await
    }

    /// READDIRPLUS of `dir` as a stream of entries with attributes and handles.
    pub fn readdirplus(&self, dir: &FileHandle) -> ReadDir {
        ReadDir::new(self.clone(), dir.clone())
    }

    pub(crate) async fn readdirplus_page(
        &self,
        args: &nfs3::ReaddirplusArgs,
    ) -> NfsResult<nfs3::ReaddirplusResOk> {
        self.call::<_, _, Option<Fattr>>(procs::READDIRPLUS, args)
            .await
    }

    /// FSSTAT: space and file counts.
    pub async fn fsstat(&self, fsroot: &FileHandle) -> NfsResult<FsstatResOk> {
        self.call::<_, _, Option<Fattr>>(
            procs::FSSTAT,
            &FsstatArgs {
                fsroot: fsroot.clone(),
            },
        )
        .await
    }

    /// FSINFO: transfer sizes and properties.
    pub async fn fsinfo(&self, fsroot: &FileHandle) -> NfsResult<FsinfoResOk> {
        self.call::<_, _, Option<Fattr>>(
            procs::FSINFO,
            &FsinfoArgs {
                fsroot: fsroot.clone(),
            },
        )
        .await
    }

    /// PATHCONF: name length limits and case behaviour.
    pub async fn pathconf(&self, object: &FileHandle) -> NfsResult<PathconfResOk> {
        self.call::<_, _, Option<Fattr>>(
            procs::PATHCONF,
            &PathconfArgs {
                object: object.clone(),
            },
        )
        .await
    }
}

/// Builds a `diropargs3`, rejecting names the server would have to reject anyway.
fn dir_op(dir: &FileHandle, name: &str) -> NfsResult<DirOpArgs> {
    if name.is_empty() || name.contains('/') {
        return Err(NfsError::InvalidArgument(format!("bad file name {name:?}")));
    }
    if name.len() > nfs3::MAX_NAME_BYTES as usize {
        return Err(NfsError::Status {
            proc_name: "LOOKUP",
            status: Nfs3Status::NameTooLong,
        });
    }
    Ok(DirOpArgs {
        dir: dir.clone(),
        name: Bytes::copy_from_slice(name.as_bytes()),
    })
}

/// Asks MOUNT for the export list, picks the longest export that is a prefix of `path`, and
/// mounts it. Servers that hide their export list are tried with the path's prefixes.
async fn mount_export<N: Network>(
    net: &N,
    ip: IpAddr,
    mount_port: u16,
    cred: &OpaqueAuth,
    path: &str,
    control: RpcConfig,
) -> NfsResult<(String, FileHandle)> {
    let addr = SocketAddr::new(ip, mount_port);
    let failed = |e| NfsError::service("MOUNT", addr, e);
    let rpc = nfsio_rpc::connect(net.connector(addr), control)
        .await
        .map_err(failed)?;
    let mut dec = rpc
        .call(
            mount::PROGRAM,
            mount::VERSION,
            mount::procs::EXPORT,
            cred,
            &(),
        )
        .await
        .map_err(failed)?;
    let exports = mount::ExportList::decode(&mut dec)?;
    let mut names: Vec<String> = exports
        .0
        .iter()
        .map(|e| crate::url::normalize_path(&String::from_utf8_lossy(&e.dir)))
        .filter(|dir| path_has_prefix(path, dir))
        .collect();
    names.sort_by_key(|dir| std::cmp::Reverse(dir.len()));
    if names.is_empty() {
        if !exports.0.is_empty() {
            let listed: Vec<String> = exports
                .0
                .iter()
                .map(|e| String::from_utf8_lossy(&e.dir).into_owned())
                .collect();
            return Err(NfsError::NoExport {
                path: path.to_owned(),
                exports: listed.join(", "),
            });
        }
        // An empty list: the server may simply not disclose its exports.
        let mut prefix = String::new();
        names.push("/".to_owned());
        for component in components(path) {
            prefix.push('/');
            prefix.push_str(component);
            names.push(prefix.clone());
        }
        names.reverse();
    }
    let mut last_error = None;
    for export in names {
        let mut dec = rpc
            .call(
                mount::PROGRAM,
                mount::VERSION,
                mount::procs::MNT,
                cred,
                &mount::MntArgs {
                    dirpath: Bytes::from(export.clone()),
                },
            )
            .await
            .map_err(failed)?;
        match mount::MntRes::decode(&mut dec)? {
            mount::MntRes::Ok { fhandle, .. } => return Ok((export, fhandle)),
            mount::MntRes::Fail(status) => last_error = Some(NfsError::Mount(status)),
        }
    }
    Err(last_error.unwrap_or(NfsError::NoExport {
        path: path.to_owned(),
        exports: String::new(),
    }))
}

impl Client {
    /// Opens an existing regular file for reading and writing.
    pub async fn open(&self, path: &str) -> NfsResult<crate::File> {
        let (handle, attributes) = self.lookup_path(path).await?;
        match attributes.file_type {
            FileType::Directory => Err(NfsError::Status {
                proc_name: "LOOKUP",
                status: Nfs3Status::IsDir,
            }),
            _ => crate::File::new(self.clone(), handle, attributes, path),
        }
    }

    /// Creates a regular file (truncating it if it exists), like `std::fs::File::create`.
    pub async fn create_file(&self, path: &str, mode: u32) -> NfsResult<crate::File> {
        let (dir, name) = self.lookup_parent(path).await?;
        let created = self
            .create(
                &dir,
                name,
                CreateHow::Unchecked(Sattr {
                    mode: Some(mode),
                    size: Some(0),
                    ..Sattr::default()
                }),
            )
            .await?;
        self.file_from(created, path).await
    }

    /// Creates a regular file that must not exist yet (GUARDED create: NFS3ERR_EXIST if it
    /// does), like `OpenOptions::create_new`.
    pub async fn create_new_file(&self, path: &str, mode: u32) -> NfsResult<crate::File> {
        let (dir, name) = self.lookup_parent(path).await?;
        let created = self
            .create(
                &dir,
                name,
                CreateHow::Guarded(Sattr {
                    mode: Some(mode),
                    ..Sattr::default()
                }),
            )
            .await?;
        self.file_from(created, path).await
    }

    async fn file_from(&self, created: Created, path: &str) -> NfsResult<crate::File> {
        let attributes = match created.attributes {
            Some(attributes) => attributes,
            None => self.getattr(&created.handle).await?,
        };
        crate::File::new(self.clone(), created.handle, attributes, path)
    }

    /// Removes the file at `path`.
    pub async fn remove_path(&self, path: &str) -> NfsResult<()> {
        let (dir, name) = self.lookup_parent(path).await?;
        self.remove(&dir, name).await.map(drop)
    }

    /// Removes the empty directory at `path`.
    pub async fn rmdir_path(&self, path: &str) -> NfsResult<()> {
        let (dir, name) = self.lookup_parent(path).await?;
        self.rmdir(&dir, name).await.map(drop)
    }

    /// Creates the directory at `path` with `mode`.
    pub async fn mkdir_path(&self, path: &str, mode: u32) -> NfsResult<Created> {
        let (dir, name) = self.lookup_parent(path).await?;
        self.mkdir(
            &dir,
            name,
            Sattr {
                mode: Some(mode),
                ..Sattr::default()
            },
        )
        .await
    }

    /// Renames `from` to `to` (both paths inside the export).
    pub async fn rename_path(&self, from: &str, to: &str) -> NfsResult<()> {
        let (from_dir, from_name) = self.lookup_parent(from).await?;
        let (to_dir, to_name) = self.lookup_parent(to).await?;
        self.rename(&from_dir, from_name, &to_dir, to_name)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_prefix_is_component_wise() {
        assert!(path_has_prefix("/export/a", "/export"));
        assert!(path_has_prefix("/export", "/export"));
        assert!(path_has_prefix("/export", "/export/"));
        assert!(path_has_prefix("/anything", "/"));
        assert!(!path_has_prefix("/exports/a", "/export"));
        assert!(!path_has_prefix("/ex", "/export"));
    }
}
