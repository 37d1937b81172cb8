//! The local-directory store: an export is a directory of the server's file system.
//!
//! Four things make this more than `std::fs` calls:
//!
//! - **The caller's identity, the kernel's rules.** Every system call that the kernel would
//!   check runs on a thread that has taken the caller's fsuid, fsgid and groups
//!   ([`identity`]), so Linux decides permissions, the owner and group of new objects, set-gid
//!   inheritance and the clearing of set-id bits. The one rule that is not Linux's is knfsd's
//!   owner override: a file's owner may read, write and truncate it whatever its mode, because
//!   NFS clients check permissions at open and a file created read-only must still receive its
//!   data. READ is also allowed with execute permission (clients read what they execute).
//! - **Objects, not names.** An operation on a handle resolves it to a descriptor of that very
//!   object ([`locator`]) and acts on the descriptor (`fchownat`/`fchmodat2`/`utimensat` with
//!   `AT_EMPTY_PATH`, reopening through `/proc/self/fd`); CREATE sets the new file's
//!   attributes on the descriptor it created. Names are only used where the protocol names
//!   an entry of a directory (LOOKUP, CREATE, REMOVE, RENAME, ...), relative to the
//!   directory's descriptor, with `O_NOFOLLOW`, and then the kernel checks them as the caller.
//! - **Containment.** A symbolic link is never followed (READLINK returns its text), `..` of
//!   the root is the root and `..` of a directory found outside the export is refused, and an
//!   object on another mount inside the export (a bind mount, another file system) is not
//!   served unless `cross_mounts` allows a bind mount of the same file system.
//! - **Honest stability.** UNSTABLE writes are `pwrite`s answered UNSTABLE; DATA_SYNC writes
//!   are followed by `fdatasync`, FILE_SYNC writes by `fsync`, COMMIT by `fdatasync`, all
//!   before the reply. A failing write or sync is reported with
//!   [`StoreError::write_failed`] so the server changes its write verifier. CREATE, MKDIR,
//!   SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK and SETATTR sync what they changed before
//!   the reply too (`durable.rs`).
//!
//! The store sets the process's umask to 0 when it opens: the modes of new objects are the
//! client's, as with knfsd (the client applies its own umask).
//!
//! This file opens the store and answers the calls on attributes; READ, WRITE and COMMIT are
//! in `content.rs`, the calls on directory entries in `namespace.rs`, the open files and
//! buffers kept between calls in `files.rs`.

mod content;
mod durable;
mod files;
mod identity;
mod locator;
mod namespace;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use nfsio_proto::nfs3::{
    CookieVerifier, Fattr, FileType, MknodData, Nfs3Status, NfsTime, Sattr, SetTime, SpecData,
    StableHow, WccData,
};

use self::files::{Buffers, FileCache};
use self::identity::ServerIdentity;
use self::locator::{Generation, Mode, Object, Tree};
use super::sys::{self, Stat, TimeSet, Timestamp};
use super::{
    Caller, CreateMode, Created, DirPage, FileId, FsStat, Granted, ReadOutcome, SplicedRead,
    Storage, StoreError, StoreLimits, StoreResult, WriteOutcome, wcc_attr,
};
use crate::splice::PipePool;

/// Longest symbolic link target (Linux's PATH_MAX less the terminating NUL).
pub(crate) const MAX_LINK_BYTES: usize = 4095;

/// Size of the buffer handed to `getdents64`.
const DIRENT_BUF_BYTES: usize = 32 * 1024;

/// Options of a [`LocalStore`].
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Open files read-only (a read-only export).
    pub read_only: bool,
    /// How many open files to keep (the LRU of descriptors used by READ, WRITE and COMMIT).
    pub open_files: usize,
    /// A kept open file unused for this long is closed at [`Storage::release_idle`].
    pub open_file_idle_ms: u64,
    /// Use the kernel's file handles when the server may (root); false forces the map of
    /// names that an ordinary user's server uses (tests of it).
    pub kernel_handles: bool,
    /// Bytes the map of names may hold (tree mode) before it starts over.
    pub max_map_bytes: usize,
    /// Entries one search for an unknown handle may visit (tree mode).
    pub max_search_entries: usize,
    /// How many stale handles to remember (tree mode), so that using one again costs nothing.
    pub max_stale_ids: usize,
    /// How many large READ buffers to keep for reuse.
    pub read_buffers: usize,
    /// Most pipes for zero-copy READ replies (each holds one reply's bytes until it is
    /// sent); 0 copies every READ.
    pub splice_pipes: usize,
    /// Capacity of each pipe: the largest READ it takes whole (from a page boundary).
    pub pipe_bytes: usize,
    /// Serve directories of another mount inside the export when it is a bind mount of the
    /// export's own file system (never another file system).
    pub cross_mounts: bool,
    /// Let MKNOD make character and block devices. Each is made as its caller, so the kernel
    /// allows it only to a caller with CAP_MKNOD: root, and only when not squashed.
    pub devices: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            open_files: 64,
            open_file_idle_ms: 2_000,
            kernel_handles: true,
            max_map_bytes: 64 << 20,
            max_search_entries: 100_000,
            max_stale_ids: 4096,
            read_buffers: 16,
            splice_pipes: 64,
            pipe_bytes: 1 << 20,
            cross_mounts: false,
            devices: false,
        }
    }
}

impl LocalOptions {
    /// Descriptors the store may hold at once besides those of calls in progress: the open
    /// files, two per pipe, and the root.
    pub fn descriptors(&self) -> usize {
        self.open_files + 2 * self.splice_pipes + 4
    }
}

/// A directory of the server's file system, served as an export.
pub struct LocalStore {
    root_path: PathBuf,
    root: OwnedFd,
    root_id: FileId,
    dev: u64,
    mnt_id: u64,
    fsid: u64,
    mode: Mode,
    identity: ServerIdentity,
    options: LocalOptions,
    tree: Mutex<Tree>,
    files: Mutex<FileCache>,
    buffers: Buffers,
    pipes: Arc<PipePool>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("root_path", &self.root_path)
            .field("root_id", &self.root_id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn cstring(name: &[u8]) -> StoreResult<std::ffi::CString> {
    std::ffi::CString::new(name).map_err(|_| StoreError::new(Nfs3Status::Inval))
}

fn nfs_time(t: Timestamp) -> NfsTime {
    NfsTime {
        seconds: t.seconds.clamp(0, i64::from(u32::MAX)) as u32,
        nseconds: t.nanos,
    }
}

fn time_set(set: SetTime) -> TimeSet {
    match set {
        SetTime::DontChange => TimeSet::Omit,
        SetTime::ServerTime => TimeSet::Now,
        SetTime::ClientTime(t) => TimeSet::At(Timestamp {
            seconds: i64::from(t.seconds),
            nanos: t.nseconds,
        }),
    }
}

fn denied<T>(status: Nfs3Status) -> StoreResult<T> {
    Err(StoreError::new(status))
}

/// How identities are resolved for the export at `root`: the kernel's handles when the
/// server may use them, else the map of names with the best generation the file system has;
/// a file system with neither birth times nor inode generations is refused (a reused inode
/// number could not be told from the removed file).
fn choose_mode(
    root: BorrowedFd<'_>,
    stat: &Stat,
    identity: &ServerIdentity,
    options: &LocalOptions,
    path: &Path,
) -> io::Result<Mode> {
    if options.kernel_handles && identity.is_root() {
        let usable = sys::handle_of(root, super::KernelHandle::MAX_BYTES)
            .and_then(|(k, b, _)| sys::open_by_handle(root, k, &b, libc::O_PATH).map(drop));
        match usable {
            Ok(()) => return Ok(Mode::Kernel),
            Err(err) => tracing::warn!(
                %err,
                export = %path.display(),
                "the kernel's file handles are not usable here; handles resolve through a map of names"
            ),
        }
    }
    if stat.btime.is_some() {
        return Ok(Mode::Tree(Generation::BirthTime));
    }
    if sys::inode_generation(root).is_ok() {
        return Ok(Mode::Tree(Generation::InodeGeneration));
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{}: its file system records neither birth times nor inode generations, so the \
             handle of a removed file could reach a new file at the same inode number; run \
             the server as root (it then uses the kernel's file handles) or export a \
             directory on another file system",
            path.display()
        ),
    ))
}

impl LocalStore {
    /// Opens the directory `root` as a store.
    pub fn open(root: &Path, options: LocalOptions) -> io::Result<Self> {
        let root_path = root.canonicalize()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_directory()
            .open(&root_path)?;
        let root = OwnedFd::from(file);
        let st = sys::stat_fd(root.as_fd())?;
        if !st.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let identity = ServerIdentity::current();
        let mode = choose_mode(root.as_fd(), &st, &identity, &options, &root_path)?;
        // Modes of new objects are the client's (it applied its umask already).
        sys::set_umask(0);
        // The fsid must be stable across restarts (device numbers need not be) and differ
        // between exports: a hash of the export's path.
        let fsid = crate::config::path_hash(root_path.as_os_str().as_encoded_bytes());
        let mut store = Self {
            root_path,
            root,
            root_id: FileId::new(st.ino, 0),
            dev: st.dev,
            mnt_id: st.mnt_id,
            fsid,
            mode,
            identity,
            tree: Mutex::new(Tree::new()),
            files: Mutex::new(FileCache::default()),
            buffers: Buffers::new(options.read_buffers),
            pipes: PipePool::new(options.splice_pipes, options.pipe_bytes),
            options,
        };
        store.root_id = store
            .identify(store.root.as_fd(), &st)
            .map_err(|e| io::Error::other(format!("cannot identify the export root: {e}")))?;
        Ok(store)
    }

    /// The canonical path of the exported directory.
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// True when handles are the kernel's (the server runs as root); false when they resolve
    /// through the bounded map of names.
    pub fn uses_kernel_handles(&self) -> bool {
        self.mode == Mode::Kernel
    }

    /// Bytes READ has moved into pipes (sent without a copy) since the store was opened.
    pub fn spliced_bytes(&self) -> u64 {
        self.pipes.spliced_bytes()
    }

    /// Pipes holding bytes of READ replies not yet sent.
    pub fn pipes_in_use(&self) -> usize {
        self.pipes.in_use()
    }

    fn fattr(&self, st: &Stat) -> Fattr {
        let file_type = match st.file_type_bits() {
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFBLK => FileType::Block,
            libc::S_IFCHR => FileType::Character,
            libc::S_IFSOCK => FileType::Socket,
            libc::S_IFIFO => FileType::Fifo,
            _ => FileType::Regular,
        };
        Fattr {
            file_type,
            mode: st.mode & 0o7777,
            nlink: st.nlink,
            uid: st.uid,
            gid: st.gid,
            size: st.size,
            used: st.used_bytes,
            rdev: SpecData {
                major: st.rdev_major,
                minor: st.rdev_minor,
            },
            fsid: self.fsid,
            fileid: st.ino,
            atime: nfs_time(st.atime),
            mtime: nfs_time(st.mtime),
            ctime: nfs_time(st.ctime),
        }
    }

    /// Runs `op` as `caller` (see [`identity`]).
    fn as_caller<T>(&self, caller: &Caller, op: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
        self.identity.run_as(caller, op)
    }

    /// The directory `id` names.
    fn open_dir(&self, id: FileId) -> StoreResult<Object> {
        let dir = self.open_id(id)?;
        if !dir.stat.is_dir() {
            return denied(Nfs3Status::NotDir);
        }
        Ok(dir)
    }

    /// Applies owner, mode and times of `attrs` to `fd`'s object as `caller` (size is done by
    /// [`LocalStore::truncate_as`]): owner first (it may clear set-id bits), then mode.
    fn apply_sattr(
        &self,
        caller: &Caller,
        fd: BorrowedFd<'_>,
        attrs: &Sattr,
        is_symlink: bool,
    ) -> StoreResult<()> {
        self.as_caller(caller, || {
            if attrs.uid.is_some() || attrs.gid.is_some() {
                sys::chown_fd(fd, attrs.uid, attrs.gid)?;
            }
            if let Some(mode) = attrs.mode
                && !is_symlink
            {
                sys::chmod_fd(fd, mode & 0o7777)?;
            }
            sys::utimens_fd(fd, time_set(attrs.atime), time_set(attrs.mtime))?;
            Ok(())
        })
    }

    fn dir_wcc(&self, pre: &Stat, dir_fd: BorrowedFd<'_>) -> WccData {
        WccData {
            before: Some(wcc_attr(&self.fattr(pre))),
            after: sys::stat_fd(dir_fd).ok().map(|st| self.fattr(&st)),
        }
    }
}

/// `OpenOptions` for a directory.
trait DirectoryOpen {
    fn custom_flags_directory(&mut self) -> &mut Self;
}

impl DirectoryOpen for std::fs::OpenOptions {
    fn custom_flags_directory(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_DIRECTORY)
    }
}

impl Storage for LocalStore {
    fn is_blocking(&self) -> bool {
        true
    }

    fn root(&self) -> FileId {
        self.root_id
    }

    fn fsid(&self) -> u64 {
        self.fsid
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits {
            link_max: 65_000,
            name_max: 255,
            max_file_bytes: i64::MAX as u64,
            time_delta: NfsTime {
                seconds: 0,
                nseconds: 1,
            },
        }
    }

    fn getattr(&self, id: FileId) -> StoreResult<Fattr> {
        let cached = lock(&self.files).peek(id);
        if let Some(file) = cached {
            let st = sys::stat_fd(file.as_fd())?;
            if st.nlink > 0 {
                return Ok(self.fattr(&st));
            }
        }
        Ok(self.fattr(&self.open_id(id)?.stat))
    }

    fn access(&self, caller: &Caller, id: FileId) -> StoreResult<(Granted, Fattr)> {
        let object = self.open_id(id)?;
        let fd = object.fd.as_fd();
        let granted = self.as_caller(caller, || {
            Ok(Granted {
                read: sys::access_fd(fd, libc::R_OK).is_ok(),
                write: !self.options.read_only && sys::access_fd(fd, libc::W_OK).is_ok(),
                execute: sys::access_fd(fd, libc::X_OK).is_ok(),
            })
        })?;
        Ok((granted, self.fattr(&object.stat)))
    }

    fn lookup(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<(FileId, Fattr)> {
        self.lookup_entry(caller, dir, name)
    }

    fn setattr(
        &self,
        caller: &Caller,
        id: FileId,
        attrs: &Sattr,
        guard: Option<NfsTime>,
    ) -> StoreResult<WccData> {
        let object = self.open_id(id)?;
        let before = self.fattr(&object.stat);
        if let Some(ctime) = guard
            && before.ctime != ctime
        {
            return denied(Nfs3Status::NotSync);
        }
        if attrs.size.is_some() && !object.stat.is_file() {
            return denied(if object.stat.is_dir() {
                Nfs3Status::IsDir
            } else {
                Nfs3Status::Inval
            });
        }
        let is_symlink = object.stat.is_symlink();
        let owner = Sattr {
            uid: attrs.uid,
            gid: attrs.gid,
            mode: attrs.mode,
            ..Sattr::default()
        };
        self.apply_sattr(caller, object.fd.as_fd(), &owner, is_symlink)?;
        if let Some(size) = attrs.size {
            self.truncate_as(caller, id, size)?;
        }
        let times = Sattr {
            atime: attrs.atime,
            mtime: attrs.mtime,
            ..Sattr::default()
        };
        self.apply_sattr(caller, object.fd.as_fd(), &times, is_symlink)?;
        self.commit_attributes(object.fd.as_fd(), &object.stat)?;
        let after = sys::stat_fd(object.fd.as_fd())
            .ok()
            .map(|st| self.fattr(&st));
        Ok(WccData {
            before: Some(wcc_attr(&before)),
            after,
        })
    }

    fn read(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<ReadOutcome> {
        self.read_file(caller, id, offset, count)
    }

    fn read_spliced(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<SplicedRead> {
        self.read_file_spliced(caller, id, offset, count)
    }

    fn write(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        data: &Bytes,
        stable: StableHow,
    ) -> StoreResult<WriteOutcome> {
        self.write_file(caller, id, offset, data, stable)
    }

    fn commit(&self, caller: &Caller, id: FileId, offset: u64, count: u32) -> StoreResult<WccData> {
        self.commit_file(caller, id, offset, count)
    }

    fn create(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        mode: CreateMode<'_>,
    ) -> StoreResult<Created> {
        self.create_file(caller, dir, name, mode)
    }

    fn mkdir(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        self.make_dir(caller, dir, name, attrs)
    }

    fn symlink(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        target: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        self.make_symlink(caller, dir, name, target, attrs)
    }

    fn mknod(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        what: &MknodData,
    ) -> StoreResult<Created> {
        self.make_node(caller, dir, name, what)
    }

    fn remove(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        self.unlink_entry(caller, dir, name, false)
    }

    fn rmdir(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        self.unlink_entry(caller, dir, name, true)
    }

    fn rename(
        &self,
        caller: &Caller,
        from_dir: FileId,
        from_name: &[u8],
        to_dir: FileId,
        to_name: &[u8],
    ) -> StoreResult<(WccData, WccData)> {
        self.rename_entry(caller, from_dir, from_name, to_dir, to_name)
    }

    fn link(
        &self,
        caller: &Caller,
        id: FileId,
        dir: FileId,
        name: &[u8],
    ) -> StoreResult<(Fattr, WccData)> {
        self.link_entry(caller, id, dir, name)
    }

    fn readlink(&self, id: FileId) -> StoreResult<(Bytes, Fattr)> {
        let object = self.open_id(id)?;
        if !object.stat.is_symlink() {
            return denied(Nfs3Status::Inval);
        }
        let target = sys::readlink_fd(object.fd.as_fd(), MAX_LINK_BYTES)?;
        Ok((Bytes::from(target), self.fattr(&object.stat)))
    }

    fn readdir(
        &self,
        caller: &Caller,
        dir: FileId,
        cookie: u64,
        _verifier: CookieVerifier,
        max_entries: usize,
        plus: bool,
    ) -> StoreResult<DirPage> {
        self.list(caller, dir, cookie, max_entries, plus)
    }

    fn fsstat(&self, id: FileId) -> StoreResult<FsStat> {
        self.open_id(id)?;
        let [frsize, blocks, bfree, bavail, files, ffree, favail] =
            sys::statvfs_fd(self.root.as_fd())?;
        Ok(FsStat {
            total_bytes: blocks.saturating_mul(frsize),
            free_bytes: bfree.saturating_mul(frsize),
            avail_bytes: bavail.saturating_mul(frsize),
            total_files: files,
            free_files: ffree,
            avail_files: favail,
        })
    }

    /// Closes the kept open files no call used for `open_file_idle_ms` (after the lock is
    /// released: closing the last descriptor of an unlinked file frees its blocks).
    fn release_idle(&self) {
        let idle = std::time::Duration::from_millis(self.options.open_file_idle_ms);
        let closed = lock(&self.files).take_idle(std::time::Instant::now(), idle);
        drop(closed);
    }
}
