//! `Client`: the facade over one mounted NFSv3 export.
//!
//! A client is built whole from a [`Mount`](crate::mount) (discovery, MNT and FSINFO are
//! done before it exists) and a running write-back cache. Every handle-level operation here
//! is one NFSv3 procedure of the procedure layer under the client's one NFS3ERR_JUKEBOX
//! policy (`crate::jukebox`); the path-level conveniences that open [`File`]s live in
//! `paths.rs`. The client is cheap to clone and safe to use from many tasks at once.
//!
//! A client acts as one [`Caller`]; [`Client::as_caller`] is a handle over the same
//! transport, cache and mount acting as another, for programs that serve many users.
//!
//! [`File`]: crate::File

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use nfsio_proto::nfs3::{
    CommitResOk, CreateHow, CreateResOk, Fattr, FileHandle, FileType, FsinfoResOk, FsstatResOk,
    LinkResOk, LookupResOk, MknodData, Nfs3Status, NfsTime, PathconfResOk, ReadResOk, RenameResOk,
    Sattr, StableHow, WccData, WriteResOk,
};
use nfsio_rpc::{RpcClient, TransportStats};

use crate::caller::Caller;
use crate::dir::ReadDir;
use crate::error::{NfsError, NfsResult};
use crate::jukebox::Jukebox;
use crate::mount::{self, Mount};
use crate::options::{ClientOptions, Network, Tcp};
use crate::procedures::Procedures;
use crate::url::{NfsUrl, components};
use crate::writeback::{self, Cache};

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
///
/// Every call acts as the client's [`Caller`] (see [`Client::caller`]); a handle acting as
/// someone else comes from [`Client::as_caller`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// The procedures acting as this handle's caller.
    nfs: Arc<Procedures>,
}

struct Inner {
    /// The procedures acting as the identity the client connected with.
    base: Arc<Procedures>,
    root: FileHandle,
    export: String,
    url: NfsUrl,
    url_path: Vec<u8>,
    fsinfo: FsinfoResOk,
    rsize_bytes: u32,
    wsize_bytes: u32,
    server: SocketAddr,
    jukebox: Jukebox,
    /// The write-back cache beneath every `File` of this client.
    cache: Arc<Cache>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cache.stop();
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
        let base = options.cache_config.clone().unwrap_or_default();
        let mount = mount::mount(url, &options, net, Jukebox::of(&base)).await?;
        let (rsize_bytes, wsize_bytes) = (mount.rsize_bytes(), mount.wsize_bytes());
        let config = writeback::engine_config(&options, wsize_bytes, rsize_bytes);
        let jukebox = Jukebox::of(&config);
        let engine = nfsio_cache::Engine::new(config)
            .map_err(|e| NfsError::InvalidArgument(format!("write-back cache: {e}")))?;
        let Mount {
            nfs,
            root,
            export,
            url_path,
            server,
            fsinfo,
        } = mount;
        let nfs = Arc::new(nfs);
        let cache = Cache::new(engine);
        cache.spawn_driver(Arc::clone(&nfs));
        let inner = Inner {
            base: Arc::clone(&nfs),
            root,
            export,
            url: url.clone(),
            url_path,
            fsinfo,
            rsize_bytes,
            wsize_bytes,
            server,
            jukebox,
            cache,
        };
        Ok(Self {
            inner: Arc::new(inner),
            nfs,
        })
    }

    /// A handle to this client that acts as `caller`: it shares the connection, the
    /// write-back cache and the mount with this one (it is as cheap as a clone), and every
    /// call made through it, through the [`File`](crate::File)s it opens and through the
    /// listings it starts carries `caller`'s AUTH_SYS credentials (this client's stamp and
    /// machine name; at most 16 supplementary groups). The bytes written through such a file
    /// are sent and COMMITted as `caller` too, also by the background write-back; a write
    /// by another caller to a file holding `caller`'s bytes not yet durable first makes those
    /// durable (as `caller`), so that nobody's bytes are ever sent as someone else.
    ///
    /// The server decides what `caller` may do; whether a program may act as `caller` is
    /// its own decision (a FUSE mount acts as the kernel's caller of each request).
    pub fn as_caller(&self, caller: &Caller) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            nfs: Arc::new(self.inner.base.as_caller(caller)),
        }
    }

    /// Who this handle's calls act as.
    pub fn caller(&self) -> Caller {
        self.nfs.caller()
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
    /// Bytes: a name on the server need not be UTF-8 (see [`NfsUrl::path`]).
    pub fn url_path(&self) -> &[u8] {
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
    pub fn fs_info(&self) -> &FsinfoResOk {
        &self.inner.fsinfo
    }

    /// The READ size used for transfers, in bytes: the server's preferred size, within its
    /// maximum and within [4 KiB, 1 MiB] (Linux's NFSv3 cap too: measured against ganesha
    /// here, one 4 MiB READ took ten times as long as a 1 MiB one).
    pub fn rsize_bytes(&self) -> u32 {
        self.inner.rsize_bytes
    }

    /// The WRITE size used for transfers, in bytes: the server's preferred size, within its
    /// maximum and within [4 KiB, 1 MiB].
    pub fn wsize_bytes(&self) -> u32 {
        self.inner.wsize_bytes
    }

    /// Per-procedure call statistics of the NFS connection.
    pub fn stats(&self) -> TransportStats {
        self.inner.base.rpc().stats()
    }

    /// Counters of the write-back cache (bytes dirty, in flight, awaiting COMMIT and clean;
    /// WRITEs and COMMITs sent, verifier mismatches, writers that waited at the bound).
    pub fn cache_stats(&self) -> nfsio_cache::EngineStats {
        self.inner.cache.stats()
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
        self.inner.cache.shutdown().await
    }

    /// The write-back cache.
    pub(crate) fn cache(&self) -> &Arc<Cache> {
        &self.inner.cache
    }

    /// The transport, for callers that send their own calls.
    pub fn transport(&self) -> &RpcClient {
        self.inner.base.rpc()
    }

    /// The procedure layer, acting as this handle's caller.
    fn nfs(&self) -> &Procedures {
        &self.nfs
    }

    /// The procedure layer acting as this handle's caller, for the write-back of its files.
    pub(crate) fn procedures(&self) -> &Arc<Procedures> {
        &self.nfs
    }

    /// NULL: a round trip that does nothing.
    pub async fn null(&self) -> NfsResult<()> {
        self.nfs().null().await
    }

    /// GETATTR.
    pub async fn getattr(&self, object: &FileHandle) -> NfsResult<Fattr> {
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().getattr(object)).await
    }

    /// SETATTR: size (truncate or extend), mode, owner, times. With `guard`, the server applies
    /// the change only if the object's ctime still equals it (NFS3ERR_NOT_SYNC otherwise).
    pub async fn setattr(
        &self,
        object: &FileHandle,
        new_attributes: Sattr,
        guard: Option<NfsTime>,
    ) -> NfsResult<WccData> {
        let jukebox = self.inner.jukebox;
        jukebox
            .retry(|| self.nfs().setattr(object, new_attributes.clone(), guard))
            .await
    }

    /// LOOKUP of one name in a directory. Names here and in the other namespace calls are
    /// bytes, as in NFS: a `&str`, or the `&[u8]` of a name that is not UTF-8
    /// (`OsStr::as_bytes`).
    pub async fn lookup(
        &self,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<LookupResOk> {
        let name = name.as_ref();
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().lookup(dir, name)).await
    }

    /// Walks `path` (relative to the export root; `/`-separated) with LOOKUPs and returns the
    /// handle and attributes of what it names. Symbolic links are not followed.
    pub async fn lookup_path(
        &self,
        path: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<(FileHandle, Fattr)> {
        let mut handle = self.inner.root.clone();
        let mut attributes = None;
        for name in components(path.as_ref()) {
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
    pub async fn lookup_parent<'p>(
        &self,
        path: &'p (impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<(FileHandle, &'p [u8])> {
        let path = path.as_ref();
        let trimmed = crate::url::trim_end_slashes(path);
        let (dir, name) = match trimmed.iter().rposition(|b| *b == b'/') {
            Some(slash) => (&trimmed[..slash], &trimmed[slash + 1..]),
            None => (&b""[..], trimmed),
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Err(NfsError::InvalidArgument(format!(
                "{:?} does not name an entry in a directory",
                crate::url::encode_path(path)
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
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().access(object, access)).await
    }

    /// READLINK: the target of a symbolic link.
    pub async fn readlink(&self, symlink: &FileHandle) -> NfsResult<Bytes> {
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().readlink(symlink)).await
    }

    /// READ of at most `count` bytes at `offset` (one RPC; may return fewer bytes, but never
    /// none before the end of the file: that is [`NfsError::Protocol`]).
    pub async fn read(&self, file: &FileHandle, offset: u64, count: u32) -> NfsResult<ReadResOk> {
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().read(file, offset, count)).await
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
        let jukebox = self.inner.jukebox;
        jukebox
            .retry(|| self.nfs().write(file, offset, data.clone(), stable))
            .await
    }

    /// COMMIT of `count` bytes at `offset` (0, 0: the whole file). Returns the verifier that
    /// must equal the one of every UNSTABLE WRITE being committed.
    pub async fn commit(
        &self,
        file: &FileHandle,
        offset: u64,
        count: u32,
    ) -> NfsResult<CommitResOk> {
        let jukebox = self.inner.jukebox;
        jukebox
            .retry(|| self.nfs().commit(file, offset, count))
            .await
    }

    /// What a creating procedure made; RFC 1813 lets the server omit the handle, and then a
    /// LOOKUP gets it.
    async fn created(&self, dir: &FileHandle, name: &[u8], ok: CreateResOk) -> NfsResult<Created> {
        if let Some(handle) = ok.obj {
            return Ok(Created {
                handle,
                attributes: ok.obj_attributes,
            });
        }
        let found = self.lookup(dir, name).await?;
        Ok(Created {
            handle: found.object,
            attributes: found.obj_attributes,
        })
    }

    /// CREATE of a regular file: `Unchecked` (truncates an existing file when the attributes
    /// set size 0), `Guarded` (NFS3ERR_EXIST if it exists) or `Exclusive` (by verifier, safe
    /// to retransmit).
    pub async fn create(
        &self,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
        how: CreateHow,
    ) -> NfsResult<Created> {
        let name = name.as_ref();
        let jukebox = self.inner.jukebox;
        let ok = jukebox
            .retry(|| self.nfs().create(dir, name, how.clone()))
            .await?;
        self.created(dir, name, ok).await
    }

    /// MKDIR.
    pub async fn mkdir(
        &self,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
        attributes: Sattr,
    ) -> NfsResult<Created> {
        let name = name.as_ref();
        let jukebox = self.inner.jukebox;
        let ok = jukebox
            .retry(|| self.nfs().mkdir(dir, name, attributes.clone()))
            .await?;
        self.created(dir, name, ok).await
    }

    /// SYMLINK: creates `name` in `dir` pointing at `target`.
    pub async fn symlink(
        &self,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
        target: &(impl AsRef<[u8]> + ?Sized),
        attributes: Sattr,
    ) -> NfsResult<Created> {
        let (name, target) = (name.as_ref(), target.as_ref());
        let jukebox = self.inner.jukebox;
        let ok = jukebox
            .retry(|| self.nfs().symlink(dir, name, target, attributes.clone()))
            .await?;
        self.created(dir, name, ok).await
    }

    /// MKNOD: a special file `name` in `dir`: a FIFO or socket (with its attributes), or a
    /// character or block device (with its attributes and device numbers; servers commonly
    /// refuse those to callers that are not root, NFS3ERR_PERM).
    pub async fn mknod(
        &self,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
        what: MknodData,
    ) -> NfsResult<Created> {
        let name = name.as_ref();
        let jukebox = self.inner.jukebox;
        let ok = jukebox
            .retry(|| self.nfs().mknod(dir, name, what.clone()))
            .await?;
        self.created(dir, name, ok).await
    }

    /// REMOVE of a non-directory.
    pub async fn remove(
        &self,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<WccData> {
        let name = name.as_ref();
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().remove(dir, name)).await
    }

    /// RMDIR of an empty directory.
    pub async fn rmdir(
        &self,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<WccData> {
        let name = name.as_ref();
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().rmdir(dir, name)).await
    }

    /// RENAME.
    pub async fn rename(
        &self,
        from_dir: &FileHandle,
        from_name: &(impl AsRef<[u8]> + ?Sized),
        to_dir: &FileHandle,
        to_name: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<RenameResOk> {
        let (from, to) = ((from_dir, from_name.as_ref()), (to_dir, to_name.as_ref()));
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().rename(from, to)).await
    }

    /// LINK: a new name `name` in `dir` for `file`.
    pub async fn link(
        &self,
        file: &FileHandle,
        dir: &FileHandle,
        name: &(impl AsRef<[u8]> + ?Sized),
    ) -> NfsResult<LinkResOk> {
        let name = name.as_ref();
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().link(file, dir, name)).await
    }

    /// READDIRPLUS of `dir` as a stream of entries with attributes and handles.
    pub fn readdirplus(&self, dir: &FileHandle) -> ReadDir {
        let fsinfo = &self.inner.fsinfo;
        ReadDir::new(
            Arc::clone(&self.nfs),
            self.inner.jukebox,
            dir.clone(),
            fsinfo.dtpref,
            self.inner.rsize_bytes,
        )
    }

    /// FSSTAT: space and file counts.
    pub async fn fsstat(&self, fsroot: &FileHandle) -> NfsResult<FsstatResOk> {
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().fsstat(fsroot)).await
    }

    /// FSINFO: transfer sizes and properties.
    pub async fn fsinfo(&self, fsroot: &FileHandle) -> NfsResult<FsinfoResOk> {
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().fsinfo(fsroot)).await
    }

    /// PATHCONF: name length limits and case behaviour.
    pub async fn pathconf(&self, object: &FileHandle) -> NfsResult<PathconfResOk> {
        let jukebox = self.inner.jukebox;
        jukebox.retry(|| self.nfs().pathconf(object)).await
    }
}
