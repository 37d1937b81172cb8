//! The local-directory store: an export is a directory of the server's file system.
//!
//! Three things make this more than `std::fs` calls:
//!
//! - **Containment.** Every name is resolved relative to an open directory with `openat` and
//!   `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, one component at a time, starting from the export
//!   root's descriptor. A symbolic link is never followed (READLINK returns its text; a client
//!   follows it on its side), `..` of the root is the root, and objects on another file system
//!   mounted inside the export are not served. Nothing outside the export is reachable.
//! - **Handles that survive restarts.** A [`FileId`] is (inode number, generation), with the
//!   file's birth time (`statx` `btime`, nanoseconds) as the generation: it is set when an inode
//!   is (re)allocated and never changes after, so a reused inode number gets a new generation
//!   and the old handle stays stale. Resolving a [`FileId`] needs a path: the store keeps an
//!   inode → path map of everything it has handed out, and when a handle is not in it (after a
//!   restart, or a rename behind its back) walks the export to find the inode. Every resolution
//!   ends by checking inode number, generation and device of what it found.
//! - **Honest stability.** UNSTABLE writes are `pwrite`s answered UNSTABLE; DATA_SYNC writes
//!   are followed by `fdatasync`, FILE_SYNC writes by `fsync`, COMMIT by `fdatasync`, all
//!   before the reply. A failing write or sync is reported with
//!   [`StoreError::lost_unstable_data`] so the server changes its write verifier. Open files are
//!   kept in a small LRU cache, so a stream of 1 MiB WRITEs does not reopen the file each time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use nfsio_proto::nfs3::{
    CookieVerifier, Fattr, FileType, MknodData, Nfs3Status, NfsTime, Sattr, SetTime, SpecData,
    StableHow, WccData,
};
use tracing::{debug, warn};

use super::sys::{self, Stat, TimeSet, Timestamp};
use super::{
    CreateMode, Created, DirEntry, DirPage, FileId, FsStat, Owner, ReadOutcome, SplicedRead,
    Storage, StoreError, StoreLimits, StoreResult, WriteOutcome, check_name, check_new_name,
    wcc_attr,
};
use crate::splice::{PipePool, Spliced};

/// Longest symbolic link target returned (`MAX_PATH_BYTES` of the protocol).
const MAX_LINK_BYTES: usize = 1024;

/// Size of the buffer handed to `getdents64`.
const DIRENT_BUF_BYTES: usize = 32 * 1024;

/// Options of a [`LocalStore`].
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Open files read-only (a read-only export).
    pub read_only: bool,
    /// How many open files to keep (the LRU of descriptors used by READ, WRITE and COMMIT).
    pub open_files: usize,
    /// How many inode → path entries to remember before starting over (each is a path).
    pub max_tracked_paths: usize,
    /// How many stale handles to remember, so that using one does not walk the export again.
    pub max_stale_ids: usize,
    /// How many large READ buffers to keep for reuse.
    pub read_buffers: usize,
    /// Most pipes for zero-copy READ replies (each holds one reply's bytes until it is
    /// sent); 0 copies every READ.
    pub splice_pipes: usize,
    /// Capacity of each pipe: the largest READ it takes whole (from a page boundary).
    pub pipe_bytes: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            open_files: 64,
            max_tracked_paths: 1 << 20,
            max_stale_ids: 4096,
            read_buffers: 16,
            splice_pipes: 64,
            pipe_bytes: 1 << 20,
        }
    }
}

/// A directory of the server's file system, served as an export.
pub struct LocalStore {
    root_path: PathBuf,
    root: OwnedFd,
    root_id: FileId,
    dev: u64,
    fsid: u64,
    options: LocalOptions,
    paths: Mutex<PathMap>,
    files: Mutex<FileCache>,
    buffers: Buffers,
    pipes: Arc<PipePool>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("root_path", &self.root_path)
            .field("root_id", &self.root_id)
            .finish_non_exhaustive()
    }
}

/// The inode → path map, and the handles known to be stale.
#[derive(Debug, Default)]
struct PathMap {
    /// Inode number → (generation, path relative to the root, `/`-separated, empty = root).
    by_ino: HashMap<u64, (u64, Vec<u8>)>,
    stale: HashSet<FileId>,
    stale_order: VecDeque<FileId>,
}

/// READs at least this large are spliced when they can be (see [`crate::splice`]).
const SPLICE_READ_BYTES: usize = 16 * 1024;

/// READs at least this large use pooled buffers.
const POOLED_READ_BYTES: usize = 64 * 1024;

/// Reusable READ buffers: a 1 MiB READ neither zeroes nor faults in a fresh megabyte. A
/// buffer returns to the pool when the last `Bytes` of it (the reply segment) is dropped.
#[derive(Debug)]
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_buffers: usize,
}

/// A pooled buffer lent to a `Bytes`.
struct Pooled {
    data: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        let mut free = lock(&self.pool.free);
        if free.len() < self.pool.max_buffers {
            free.push(data);
        }
    }
}

/// Handle to the pool.
#[derive(Debug, Clone)]
struct Buffers(Arc<BufferPool>);

impl Buffers {
    fn new(max_buffers: usize) -> Self {
        Self(Arc::new(BufferPool {
            free: Mutex::new(Vec::new()),
            max_buffers,
        }))
    }

    /// An empty buffer with room for `len_bytes`.
    fn take(&self, len_bytes: usize) -> Vec<u8> {
        if len_bytes >= POOLED_READ_BYTES {
            let reused = {
                let mut free = lock(&self.0.free);
                let pos = free.iter().position(|b| b.capacity() >= len_bytes);
                pos.map(|pos| free.swap_remove(pos))
            };
            if let Some(buf) = reused {
                return buf;
            }
        }
        Vec::with_capacity(len_bytes)
    }

    /// Hands the buffer out as `Bytes`; large ones come back to the pool when dropped.
    fn freeze(&self, data: Vec<u8>) -> Bytes {
        if data.capacity() >= POOLED_READ_BYTES {
            Bytes::from_owner(Pooled {
                data,
                pool: self.0.clone(),
            })
        } else {
            Bytes::from(data)
        }
    }
}

/// An open regular file in the cache.
#[derive(Debug)]
struct CachedFile {
    file: Arc<File>,
    writable: bool,
    last_used: u64,
}

/// A small LRU of open regular files, keyed by identity.
#[derive(Debug, Default)]
struct FileCache {
    entries: HashMap<FileId, CachedFile>,
    tick: u64,
}

/// A resolved object: the directory holding it and its name there (the root is `.` of
/// itself).
struct Resolved {
    parent: Option<OwnedFd>,
    name: CString,
    rel: Vec<u8>,
    stat: Stat,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn cstring(name: &[u8]) -> StoreResult<CString> {
    CString::new(name).map_err(|_| StoreError::new(Nfs3Status::Inval))
}

fn generation(st: &Stat) -> u64 {
    st.btime
        .map(|t| {
            (t.seconds as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(u64::from(t.nanos))
        })
        .unwrap_or(0)
}

fn file_id(st: &Stat) -> FileId {
    FileId {
        ino: st.ino,
        generation: generation(st),
    }
}

fn nfs_time(t: Timestamp) -> NfsTime {
    NfsTime {
        seconds: t.seconds.clamp(0, i64::from(u32::MAX)) as u32,
        nseconds: t.nanos,
    }
}

fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(rel.len() + 1 + name.len());
    path.extend_from_slice(rel);
    if !rel.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

fn parent_of(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(pos) => &rel[..pos],
        None => &[],
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

impl LocalStore {
    /// Opens the directory `root` as a store.
    pub fn open(root: &Path, options: LocalOptions) -> io::Result<Self> {
        let root_path = root.canonicalize()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&root_path)?;
        let root = OwnedFd::from(file);
        let st = sys::stat_fd(root.as_fd())?;
        if !st.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let root_id = file_id(&st);
        // The fsid must be stable across restarts (device numbers need not be) and differ
        // between exports: a hash of the export's path.
        let fsid = crate::handle::path_hash(root_path.as_os_str().as_encoded_bytes());
        let mut paths = PathMap::default();
        paths
            .by_ino
            .insert(st.ino, (root_id.generation, Vec::new()));
        Ok(Self {
            root_path,
            root,
            root_id,
            dev: st.dev,
            fsid,
            paths: Mutex::new(paths),
            files: Mutex::new(FileCache::default()),
            buffers: Buffers::new(options.read_buffers),
            pipes: PipePool::new(options.splice_pipes, options.pipe_bytes),
            options,
        })
    }

    /// The canonical path of the exported directory.
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// Bytes READ has moved into pipes (sent without a copy) since the store was opened.
    pub fn spliced_bytes(&self) -> u64 {
        self.pipes.spliced_bytes()
    }

    /// Pipes holding bytes of READ replies not yet sent.
    pub fn pipes_in_use(&self) -> usize {
        self.pipes.in_use()
    }

    /// Reads `want` bytes of `file` from `offset` onto the end of `buf` (fewer at the end of
    /// the file).
    fn pread_into(
        file: BorrowedFd<'_>,
        buf: &mut Vec<u8>,
        want: usize,
        offset: u64,
    ) -> io::Result<()> {
        let start = buf.len();
        while buf.len() - start < want {
            let filled = buf.len() - start;
            match sys::pread_append(file, buf, want - filled, offset + filled as u64) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
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

    fn remember(&self, st: &Stat, rel: Vec<u8>) {
        let mut paths = lock(&self.paths);
        if paths.by_ino.len() >= self.options.max_tracked_paths {
            // Start over rather than track an unbounded tree; anything needed again is found
            // by the walk in `resolve`.
            paths.by_ino.clear();
            paths
                .by_ino
                .insert(self.root_id.ino, (self.root_id.generation, Vec::new()));
        }
        paths.by_ino.insert(st.ino, (generation(st), rel));
    }

    fn forget(&self, id: FileId) {
        let mut paths = lock(&self.paths);
        if paths
            .by_ino
            .get(&id.ino)
            .is_some_and(|(g, _)| *g == id.generation)
        {
            paths.by_ino.remove(&id.ino);
        }
        if paths.stale.insert(id) {
            paths.stale_order.push_back(id);
            while paths.stale_order.len() > self.options.max_stale_ids {
                if let Some(old) = paths.stale_order.pop_front() {
                    paths.stale.remove(&old);
                }
            }
        }
        drop(paths);
        lock(&self.files).entries.remove(&id);
    }

    /// Rewrites the paths under `from` (a renamed directory) to be under `to`.
    fn rename_prefix(&self, from: &[u8], to: &[u8]) {
        let mut paths = lock(&self.paths);
        for (_, path) in paths.by_ino.values_mut() {
            if path.len() > from.len() && path.starts_with(from) && path[from.len()] == b'/' {
                let mut new_path = to.to_vec();
                new_path.extend_from_slice(&path[from.len()..]);
                *path = new_path;
            }
        }
    }

    /// Opens every component of `rel` as a directory (never following a link); `None` is the
    /// root.
    fn walk(&self, components: &[&[u8]]) -> io::Result<Option<OwnedFd>> {
        let mut current: Option<OwnedFd> = None;
        for component in components {
            let name =
                CString::new(*component).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            let dir = current.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let next = sys::open_at(dir, &name, libc::O_PATH | libc::O_DIRECTORY, 0)?;
            current = Some(next);
        }
        Ok(current)
    }

    /// Resolves a relative path to (parent, name) and stats it.
    fn resolve_path(&self, rel: &[u8]) -> io::Result<Resolved> {
        if rel.is_empty() {
            let stat = sys::stat_fd(self.root.as_fd())?;
            return Ok(Resolved {
                parent: None,
                name: c".".to_owned(),
                rel: Vec::new(),
                stat,
            });
        }
        let components: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        let (last, dirs) = components
            .split_last()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let parent = self.walk(dirs)?;
        let name = CString::new(*last).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let dir = parent.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
        let stat = sys::stat_at(dir, &name)?;
        Ok(Resolved {
            parent,
            name,
            rel: rel.to_vec(),
            stat,
        })
    }

    fn matches(&self, id: FileId, st: &Stat) -> bool {
        st.ino == id.ino && generation(st) == id.generation && st.dev == self.dev
    }

    /// Finds the object `id` names, or `NFS3ERR_STALE`.
    fn resolve(&self, id: FileId) -> StoreResult<Resolved> {
        let known = {
            let paths = lock(&self.paths);
            if paths.stale.contains(&id) {
                return Err(StoreError::new(Nfs3Status::Stale));
            }
            paths
                .by_ino
                .get(&id.ino)
                .filter(|(g, _)| *g == id.generation)
                .map(|(_, rel)| rel.clone())
        };
        if let Some(rel) = known {
            if let Ok(resolved) = self.resolve_path(&rel) {
                if self.matches(id, &resolved.stat) && resolved.stat.nlink > 0 {
                    return Ok(resolved);
                }
            }
        }
        // Not where we last saw it: walk the export.
        if let Some(rel) = self.search(id)? {
            if let Ok(resolved) = self.resolve_path(&rel) {
                if self.matches(id, &resolved.stat) {
                    return Ok(resolved);
                }
            }
        }
        debug!(ino = id.ino, generation = id.generation, "stale handle");
        self.forget(id);
        Err(StoreError::new(Nfs3Status::Stale))
    }

    /// Walks the export breadth-first looking for `id`, remembering what it sees.
    fn search(&self, id: FileId) -> StoreResult<Option<Vec<u8>>> {
        let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
        queue.push_back(Vec::new());
        let mut visited_dirs = 0usize;
        let mut buf = vec![0u8; DIRENT_BUF_BYTES];
        while let Some(rel) = queue.pop_front() {
            visited_dirs += 1;
            if visited_dirs > self.options.max_tracked_paths {
                warn!("export too large to search for a handle");
                return Ok(None);
            }
            let Ok(dir) = self.open_dir_path(&rel) else {
                continue;
            };
            if sys::seek_dir(dir.as_fd(), 0).is_err() {
                continue;
            }
            while let Ok(filled) = sys::getdents(dir.as_fd(), &mut buf) {
                if filled == 0 {
                    break;
                }
                for entry in sys::parse_dirents(&buf[..filled]) {
                    if entry.name == b"." || entry.name == b".." {
                        continue;
                    }
                    let is_dir = entry.d_type == sys::DT_DIR;
                    if entry.ino != id.ino && !is_dir {
                        continue;
                    }
                    let Ok(name) = CString::new(entry.name) else {
                        continue;
                    };
                    let Ok(st) = sys::stat_at(dir.as_fd(), &name) else {
                        continue;
                    };
                    if st.dev != self.dev {
                        continue;
                    }
                    let child = join(&rel, entry.name);
                    self.remember(&st, child.clone());
                    if self.matches(id, &st) {
                        return Ok(Some(child));
                    }
                    if st.is_dir() {
                        queue.push_back(child);
                    }
                }
            }
        }
        Ok(None)
    }

    /// Opens the directory at `rel` for reading entries.
    fn open_dir_path(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        if rel.is_empty() {
            return sys::open_at(
                self.root.as_fd(),
                c".",
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            );
        }
        let resolved = self.resolve_path(rel)?;
        let dir = resolved
            .parent
            .as_ref()
            .map_or(self.root.as_fd(), |fd| fd.as_fd());
        let fd = sys::open_at(dir, &resolved.name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        if sys::stat_fd(fd.as_fd())?.ino != resolved.stat.ino {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        Ok(fd)
    }

    /// Resolves a directory and opens it (`O_PATH`) as the base of operations on its
    /// entries. Returns the descriptor (`None`: the root) and the resolution.
    fn open_dir(&self, id: FileId) -> StoreResult<(Option<OwnedFd>, Resolved)> {
        let resolved = self.resolve(id)?;
        if !resolved.stat.is_dir() {
            return Err(StoreError::new(Nfs3Status::NotDir));
        }
        if resolved.parent.is_none() && resolved.rel.is_empty() {
            return Ok((None, resolved));
        }
        let parent = resolved
            .parent
            .as_ref()
            .map_or(self.root.as_fd(), |fd| fd.as_fd());
        let fd = sys::open_at(parent, &resolved.name, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let st = sys::stat_fd(fd.as_fd())?;
        if !self.matches(id, &st) {
            return Err(StoreError::new(Nfs3Status::Stale));
        }
        Ok((Some(fd), resolved))
    }

    fn base<'a>(&'a self, fd: &'a Option<OwnedFd>) -> BorrowedFd<'a> {
        fd.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd())
    }

    /// The open regular file `id` (from the cache, or opened and cached), with its current
    /// attributes.
    fn open_file(&self, id: FileId, need_write: bool) -> StoreResult<(Arc<File>, Stat)> {
        let cached = {
            let mut cache = lock(&self.files);
            cache.tick += 1;
            let tick = cache.tick;
            cache.entries.get_mut(&id).and_then(|entry| {
                if need_write && !entry.writable {
                    return None;
                }
                entry.last_used = tick;
                Some(entry.file.clone())
            })
        };
        if let Some(file) = cached {
            let st = sys::stat_fd(file.as_fd())?;
            if st.nlink == 0 {
                self.forget(id);
                return Err(StoreError::new(Nfs3Status::Stale));
            }
            return Ok((file, st));
        }
        let resolved = self.resolve(id)?;
        match resolved.stat.file_type_bits() {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(StoreError::new(Nfs3Status::IsDir)),
            _ => return Err(StoreError::new(Nfs3Status::Inval)),
        }
        let parent = resolved
            .parent
            .as_ref()
            .map_or(self.root.as_fd(), |fd| fd.as_fd());
        let try_rw = !self.options.read_only;
        let (fd, writable) = match try_rw
            .then(|| sys::open_at(parent, &resolved.name, libc::O_RDWR | libc::O_NONBLOCK, 0))
        {
            Some(Ok(fd)) => (fd, true),
            Some(Err(err)) if need_write => return Err(err.into()),
            _ => (
                sys::open_at(parent, &resolved.name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?,
                false,
            ),
        };
        let st = sys::stat_fd(fd.as_fd())?;
        if !self.matches(id, &st) || !st.is_file() {
            return Err(StoreError::new(Nfs3Status::Stale));
        }
        let file = Arc::new(File::from(fd));
        self.cache_file(id, file.clone(), writable);
        Ok((file, st))
    }

    fn cache_file(&self, id: FileId, file: Arc<File>, writable: bool) {
        let capacity = self.options.open_files;
        if capacity == 0 {
            return;
        }
        let mut cache = lock(&self.files);
        cache.tick += 1;
        let tick = cache.tick;
        if cache.entries.len() >= capacity && !cache.entries.contains_key(&id) {
            if let Some(oldest) = cache
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(id, _)| *id)
            {
                cache.entries.remove(&oldest);
            }
        }
        cache.entries.insert(
            id,
            CachedFile {
                file,
                writable,
                last_used: tick,
            },
        );
    }

    /// Applies `attrs` to `name` in `dir`: owner first (it may clear set-id bits), then mode,
    /// size and times.
    fn apply_sattr(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        id: FileId,
        attrs: &Sattr,
        is_symlink: bool,
    ) -> StoreResult<()> {
        if attrs.uid.is_some() || attrs.gid.is_some() {
            sys::chown_at(dir, name, attrs.uid, attrs.gid)?;
        }
        if let Some(mode) = attrs.mode {
            if !is_symlink {
                sys::chmod_at(dir, name, mode & 0o7777)?;
            }
        }
        if let Some(size) = attrs.size {
            let (file, _) = self.open_file(id, true)?;
            file.set_len(size)?;
        }
        sys::utimens_at(dir, name, time_set(attrs.atime), time_set(attrs.mtime))?;
        Ok(())
    }

    /// Sets the owner of a new object; a server not running as root cannot, and keeps its
    /// own.
    fn set_owner(&self, dir: BorrowedFd<'_>, name: &CStr, owner: Owner) -> StoreResult<()> {
        match sys::chown_at(dir, name, Some(owner.uid), Some(owner.gid)) {
            Ok(()) => Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                debug!(?owner, "cannot give a new object its owner (not root)");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    fn dir_wcc(&self, pre: &Stat, dir_fd: BorrowedFd<'_>) -> WccData {
        WccData {
            before: Some(wcc_attr(&self.fattr(pre))),
            after: sys::stat_fd(dir_fd).ok().map(|st| self.fattr(&st)),
        }
    }

    /// Stats and remembers a new object, and answers a creating procedure.
    fn created(
        &self,
        dir_fd: BorrowedFd<'_>,
        dir: &Resolved,
        name: &[u8],
        cname: &CStr,
    ) -> StoreResult<Created> {
        let st = sys::stat_at(dir_fd, cname)?;
        self.remember(&st, join(&dir.rel, name));
        Ok(Created {
            id: file_id(&st),
            attr: self.fattr(&st),
            dir_wcc: self.dir_wcc(&dir.stat, dir_fd),
        })
    }

    fn create_exclusive(
        &self,
        dir_fd: BorrowedFd<'_>,
        dir: &Resolved,
        name: &[u8],
        cname: &CStr,
        verf: [u8; 8],
        owner: Owner,
    ) -> StoreResult<Created> {
        // The verifier is kept in the new file's times (mtime seconds, atime seconds), as
        // knfsd does; the client sets the real times with SETATTR right after.
        let mtime = Timestamp {
            seconds: i64::from(u32::from_be_bytes([verf[0], verf[1], verf[2], verf[3]])),
            nanos: 0,
        };
        let atime = Timestamp {
            seconds: i64::from(u32::from_be_bytes([verf[4], verf[5], verf[6], verf[7]])),
            nanos: 0,
        };
        match sys::open_at(
            dir_fd,
            cname,
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600,
        ) {
            Ok(fd) => {
                self.set_owner(dir_fd, cname, owner)?;
                sys::utimens_at(dir_fd, cname, TimeSet::At(atime), TimeSet::At(mtime))?;
                let st = sys::stat_fd(fd.as_fd())?;
                self.cache_file(file_id(&st), Arc::new(File::from(fd)), true);
                self.created(dir_fd, dir, name, cname)
            }
            Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                let st = sys::stat_at(dir_fd, cname)?;
                if st.is_file() && st.mtime == mtime && st.atime == atime {
                    debug!("exclusive CREATE retransmitted: verifier matches");
                    self.created(dir_fd, dir, name, cname)
                } else {
                    Err(StoreError::new(Nfs3Status::Exist))
                }
            }
            Err(err) => Err(err.into()),
        }
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
        let cached = lock(&self.files).entries.get(&id).map(|e| e.file.clone());
        if let Some(file) = cached {
            let st = sys::stat_fd(file.as_fd())?;
            if st.nlink > 0 {
                return Ok(self.fattr(&st));
            }
        }
        Ok(self.fattr(&self.resolve(id)?.stat))
    }

    fn lookup(&self, dir: FileId, name: &[u8]) -> StoreResult<(FileId, Fattr)> {
        check_name(name)?;
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let st = match name {
            b"." => resolved.stat,
            b".." => {
                // `..` of the root is the root: nothing above the export is reachable.
                let parent = self.resolve_path(parent_of(&resolved.rel))?;
                parent.stat
            }
            _ => {
                let cname = cstring(name)?;
                let st = sys::stat_at(self.base(&dir_fd), &cname)?;
                if st.dev != self.dev {
                    // A file system mounted inside the export: not served.
                    return Err(StoreError::new(Nfs3Status::Acces));
                }
                self.remember(&st, join(&resolved.rel, name));
                st
            }
        };
        Ok((file_id(&st), self.fattr(&st)))
    }

    fn setattr(&self, id: FileId, attrs: &Sattr, guard: Option<NfsTime>) -> StoreResult<WccData> {
        let resolved = self.resolve(id)?;
        let before = self.fattr(&resolved.stat);
        if let Some(ctime) = guard {
            if before.ctime != ctime {
                return Err(StoreError::new(Nfs3Status::NotSync));
            }
        }
        if attrs.size.is_some() && !resolved.stat.is_file() {
            return Err(StoreError::new(if resolved.stat.is_dir() {
                Nfs3Status::IsDir
            } else {
                Nfs3Status::Inval
            }));
        }
        let parent = resolved
            .parent
            .as_ref()
            .map_or(self.root.as_fd(), |fd| fd.as_fd());
        self.apply_sattr(
            parent,
            &resolved.name,
            id,
            attrs,
            resolved.stat.is_symlink(),
        )?;
        let after = sys::stat_at(parent, &resolved.name)
            .ok()
            .map(|st| self.fattr(&st));
        Ok(WccData {
            before: Some(wcc_attr(&before)),
            after,
        })
    }

    fn read(&self, id: FileId, offset: u64, count: u32) -> StoreResult<ReadOutcome> {
        let (file, st) = self.open_file(id, false)?;
        let want = if offset >= st.size {
            0
        } else {
            (st.size - offset).min(u64::from(count)) as usize
        };
        let mut buf = self.buffers.take(want);
        Self::pread_into(file.as_fd(), &mut buf, want, offset)?;
        let filled = buf.len();
        let after = sys::stat_fd(file.as_fd()).unwrap_or(st);
        let eof = offset.saturating_add(filled as u64) >= after.size;
        Ok(ReadOutcome {
            data: self.buffers.freeze(buf),
            eof,
            attr: self.fattr(&after),
        })
    }

    fn read_spliced(&self, id: FileId, offset: u64, count: u32) -> StoreResult<SplicedRead> {
        let (file, st) = self.open_file(id, false)?;
        let want = if offset >= st.size {
            0
        } else {
            (st.size - offset).min(u64::from(count)) as usize
        };
        // A small READ costs less copied than spliced (a pipe, two more system calls).
        let (pipe, at_eof) = if want >= SPLICE_READ_BYTES {
            self.pipes.fill(file.as_fd(), offset, want)?
        } else {
            (None, false)
        };
        let spliced = pipe.as_ref().map_or(0, Spliced::len_bytes);
        let mut buf = self.buffers.take(want - spliced);
        if !at_eof {
            Self::pread_into(
                file.as_fd(),
                &mut buf,
                want - spliced,
                offset + spliced as u64,
            )?;
        }
        let filled = spliced + buf.len();
        let after = sys::stat_fd(file.as_fd()).unwrap_or(st);
        let eof = offset.saturating_add(filled as u64) >= after.size;
        Ok(SplicedRead {
            pipe,
            rest: self.buffers.freeze(buf),
            eof,
            attr: self.fattr(&after),
        })
    }

    fn write(
        &self,
        id: FileId,
        offset: u64,
        data: &Bytes,
        stable: StableHow,
    ) -> StoreResult<WriteOutcome> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(StoreError::new(Nfs3Status::FBig));
        }
        let (file, pre) = self.open_file(id, true)?;
        let mut written = 0usize;
        while written < data.len() {
            match file.write_at(&data[written..], offset + written as u64) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // Some bytes made it: answer them; the error will come back on the next try.
                Err(_) if written > 0 => break,
                Err(err) => return Err(StoreError::write_failed(&err)),
            }
        }
        match stable {
            StableHow::Unstable => {}
            StableHow::DataSync => file.sync_data().map_err(|e| StoreError::write_failed(&e))?,
            StableHow::FileSync => file.sync_all().map_err(|e| StoreError::write_failed(&e))?,
        }
        let post = sys::stat_fd(file.as_fd()).ok();
        Ok(WriteOutcome {
            count: written as u32,
            committed: stable,
            wcc: WccData {
                before: Some(wcc_attr(&self.fattr(&pre))),
                after: post.map(|st| self.fattr(&st)),
            },
        })
    }

    fn commit(&self, id: FileId, _offset: u64, _count: u32) -> StoreResult<WccData> {
        // The whole file is synced: a range sync (sync_file_range) does not make data durable.
        let (file, pre) = self.open_file(id, false)?;
        file.sync_data().map_err(|e| StoreError::write_failed(&e))?;
        let post = sys::stat_fd(file.as_fd()).ok();
        Ok(WccData {
            before: Some(wcc_attr(&self.fattr(&pre))),
            after: post.map(|st| self.fattr(&st)),
        })
    }

    fn create(
        &self,
        dir: FileId,
        name: &[u8],
        mode: CreateMode<'_>,
        owner: Owner,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let base = self.base(&dir_fd);
        let attrs = match mode {
            CreateMode::Exclusive(verf) => {
                return self.create_exclusive(base, &resolved, name, &cname, verf.0, owner);
            }
            CreateMode::Unchecked(attrs) | CreateMode::Guarded(attrs) => attrs,
        };
        match sys::open_at(
            base,
            &cname,
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600,
        ) {
            Ok(fd) => {
                let st = sys::stat_fd(fd.as_fd())?;
                let id = file_id(&st);
                self.remember(&st, join(&resolved.rel, name));
                self.cache_file(id, Arc::new(File::from(fd)), true);
                self.set_owner(base, &cname, owner)?;
                let mut attrs = attrs.clone();
                attrs.mode = Some(attrs.mode.unwrap_or(0o644));
                attrs.uid = None;
                attrs.gid = None;
                if attrs.size == Some(0) {
                    attrs.size = None;
                }
                self.apply_sattr(base, &cname, id, &attrs, false)?;
                self.created(base, &resolved, name, &cname)
            }
            Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                if matches!(mode, CreateMode::Guarded(_)) {
                    return Err(StoreError::new(Nfs3Status::Exist));
                }
                // UNCHECKED on an existing file: like knfsd, only the size is applied (a size
                // of 0 is how O_TRUNC arrives); the other attributes are the file's own.
                let st = sys::stat_at(base, &cname)?;
                if st.is_dir() {
                    return Err(StoreError::new(Nfs3Status::IsDir));
                }
                if !st.is_file() {
                    return Err(StoreError::new(Nfs3Status::Exist));
                }
                self.remember(&st, join(&resolved.rel, name));
                let size_only = Sattr {
                    size: attrs.size,
                    ..Sattr::default()
                };
                self.apply_sattr(base, &cname, file_id(&st), &size_only, false)?;
                self.created(base, &resolved, name, &cname)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn mkdir(&self, dir: FileId, name: &[u8], attrs: &Sattr, owner: Owner) -> StoreResult<Created> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let base = self.base(&dir_fd);
        sys::mkdir_at(base, &cname, 0o700)?;
        self.set_owner(base, &cname, owner)?;
        let mut attrs = attrs.clone();
        attrs.mode = Some(attrs.mode.unwrap_or(0o755));
        attrs.uid = None;
        attrs.gid = None;
        attrs.size = None;
        let st = sys::stat_at(base, &cname)?;
        self.apply_sattr(base, &cname, file_id(&st), &attrs, false)?;
        self.created(base, &resolved, name, &cname)
    }

    fn symlink(
        &self,
        dir: FileId,
        name: &[u8],
        target: &[u8],
        attrs: &Sattr,
        owner: Owner,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        if target.is_empty() {
            return Err(StoreError::new(Nfs3Status::Inval));
        }
        let cname = cstring(name)?;
        let ctarget = cstring(target)?;
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let base = self.base(&dir_fd);
        sys::symlink_at(&ctarget, base, &cname)?;
        self.set_owner(base, &cname, owner)?;
        sys::utimens_at(base, &cname, time_set(attrs.atime), time_set(attrs.mtime))?;
        self.created(base, &resolved, name, &cname)
    }

    fn mknod(
        &self,
        dir: FileId,
        name: &[u8],
        what: &MknodData,
        owner: Owner,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let (type_bits, attrs) = match what {
            MknodData::Fifo(attrs) => (libc::S_IFIFO, attrs),
            MknodData::Socket(attrs) => (libc::S_IFSOCK, attrs),
            // Device nodes on an export are a way around the host's device permissions for
            // anyone with local access; this server does not make them.
            MknodData::Char(_) | MknodData::Block(_) => {
                return Err(StoreError::new(Nfs3Status::NotSupp));
            }
            MknodData::Other(_) => return Err(StoreError::new(Nfs3Status::BadType)),
        };
        let cname = cstring(name)?;
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let base = self.base(&dir_fd);
        sys::mknod_at(base, &cname, type_bits | 0o600, 0, 0)?;
        self.set_owner(base, &cname, owner)?;
        let mut attrs = attrs.clone();
        attrs.mode = Some(attrs.mode.unwrap_or(0o644));
        attrs.uid = None;
        attrs.gid = None;
        attrs.size = None;
        let st = sys::stat_at(base, &cname)?;
        self.apply_sattr(base, &cname, file_id(&st), &attrs, false)?;
        self.created(base, &resolved, name, &cname)
    }

    fn remove(&self, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let base = self.base(&dir_fd);
        let target = sys::stat_at(base, &cname)?;
        if target.is_dir() {
            return Err(StoreError::new(Nfs3Status::IsDir));
        }
        sys::unlink_at(base, &cname, false)?;
        if target.nlink <= 1 {
            self.forget(file_id(&target));
        } else {
            let mut paths = lock(&self.paths);
            let rel = join(&resolved.rel, name);
            if paths
                .by_ino
                .get(&target.ino)
                .is_some_and(|(_, p)| *p == rel)
            {
                paths.by_ino.remove(&target.ino);
            }
        }
        Ok(self.dir_wcc(&resolved.stat, base))
    }

    fn rmdir(&self, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let base = self.base(&dir_fd);
        let target = sys::stat_at(base, &cname)?;
        if !target.is_dir() {
            return Err(StoreError::new(Nfs3Status::NotDir));
        }
        sys::unlink_at(base, &cname, true)?;
        self.forget(file_id(&target));
        Ok(self.dir_wcc(&resolved.stat, base))
    }

    fn rename(
        &self,
        from_dir: FileId,
        from_name: &[u8],
        to_dir: FileId,
        to_name: &[u8],
    ) -> StoreResult<(WccData, WccData)> {
        check_new_name(from_name)?;
        check_new_name(to_name)?;
        let from_c = cstring(from_name)?;
        let to_c = cstring(to_name)?;
        let (from_fd, from_res) = self.open_dir(from_dir)?;
        let (to_fd, to_res) = self.open_dir(to_dir)?;
        let from_base = self.base(&from_fd);
        let to_base = self.base(&to_fd);
        let source = sys::stat_at(from_base, &from_c)?;
        let replaced = sys::stat_at(to_base, &to_c).ok();
        sys::rename_at(from_base, &from_c, to_base, &to_c)?;
        let from_rel = join(&from_res.rel, from_name);
        let to_rel = join(&to_res.rel, to_name);
        if let Some(old) = replaced {
            if old.ino != source.ino && (old.nlink <= 1 || old.is_dir()) {
                self.forget(file_id(&old));
            }
        }
        if source.is_dir() {
            self.rename_prefix(&from_rel, &to_rel);
        }
        self.remember(&source, to_rel);
        Ok((
            self.dir_wcc(&from_res.stat, from_base),
            self.dir_wcc(&to_res.stat, to_base),
        ))
    }

    fn link(&self, id: FileId, dir: FileId, name: &[u8]) -> StoreResult<(Fattr, WccData)> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let source = self.resolve(id)?;
        if source.stat.is_dir() {
            return Err(StoreError::new(Nfs3Status::IsDir));
        }
        let (dir_fd, resolved) = self.open_dir(dir)?;
        let base = self.base(&dir_fd);
        let source_parent = source
            .parent
            .as_ref()
            .map_or(self.root.as_fd(), |fd| fd.as_fd());
        sys::link_at(source_parent, &source.name, base, &cname)?;
        let st = sys::stat_at(base, &cname)?;
        if !self.matches(id, &st) {
            // The source name was replaced between resolving and linking.
            let _ = sys::unlink_at(base, &cname, false);
            return Err(StoreError::new(Nfs3Status::Stale));
        }
        Ok((self.fattr(&st), self.dir_wcc(&resolved.stat, base)))
    }

    fn readlink(&self, id: FileId) -> StoreResult<(Bytes, Fattr)> {
        let resolved = self.resolve(id)?;
        if !resolved.stat.is_symlink() {
            return Err(StoreError::new(Nfs3Status::Inval));
        }
        let parent = resolved
            .parent
            .as_ref()
            .map_or(self.root.as_fd(), |fd| fd.as_fd());
        let target = sys::readlink_at(parent, &resolved.name, MAX_LINK_BYTES)?;
        Ok((Bytes::from(target), self.fattr(&resolved.stat)))
    }

    fn readdir(
        &self,
        dir: FileId,
        cookie: u64,
        _verifier: CookieVerifier,
        max_entries: usize,
        plus: bool,
    ) -> StoreResult<DirPage> {
        // Cookies are the file system's own directory offsets (`d_off`), which stay valid
        // while the directory changes (ext4, xfs, btrfs hash or index positions), so the
        // verifier is constant and never checked, as with knfsd.
        let resolved = self.resolve(dir)?;
        if !resolved.stat.is_dir() {
            return Err(StoreError::new(Nfs3Status::NotDir));
        }
        let dir_fd = self.open_dir_path(&resolved.rel)?;
        if !self.matches(dir, &sys::stat_fd(dir_fd.as_fd())?) {
            return Err(StoreError::new(Nfs3Status::Stale));
        }
        sys::seek_dir(dir_fd.as_fd(), cookie)
            .map_err(|_| StoreError::new(Nfs3Status::BadCookie))?;
        let mut entries = Vec::new();
        let mut buf = vec![0u8; DIRENT_BUF_BYTES];
        let mut eof = false;
        'outer: while entries.len() < max_entries {
            let filled = sys::getdents(dir_fd.as_fd(), &mut buf)?;
            if filled == 0 {
                eof = true;
                break;
            }
            for raw in sys::parse_dirents(&buf[..filled]) {
                if entries.len() >= max_entries {
                    // The rest of this buffer is read again from the last cookie next time.
                    break 'outer;
                }
                let (fileid, plus_info) = match raw.name {
                    b"." => (
                        resolved.stat.ino,
                        plus.then(|| (file_id(&resolved.stat), self.fattr(&resolved.stat))),
                    ),
                    b".." => {
                        let parent = self.resolve_path(parent_of(&resolved.rel)).ok();
                        match parent {
                            Some(p) => (
                                p.stat.ino,
                                plus.then(|| (file_id(&p.stat), self.fattr(&p.stat))),
                            ),
                            None => (raw.ino, None),
                        }
                    }
                    name => {
                        let info = if plus {
                            CString::new(name)
                                .ok()
                                .and_then(|c| sys::stat_at(dir_fd.as_fd(), &c).ok())
                                .filter(|st| st.dev == self.dev)
                                .map(|st| {
                                    self.remember(&st, join(&resolved.rel, name));
                                    (file_id(&st), self.fattr(&st))
                                })
                        } else {
                            None
                        };
                        (raw.ino, info)
                    }
                };
                entries.push(DirEntry {
                    fileid,
                    name: Bytes::copy_from_slice(raw.name),
                    cookie: raw.next_cookie,
                    plus: plus_info,
                });
            }
        }
        let dir_attr = sys::stat_fd(dir_fd.as_fd()).ok().map(|st| self.fattr(&st));
        Ok(DirPage {
            dir_attr,
            verifier: CookieVerifier::default(),
            entries,
            eof,
        })
    }

    fn fsstat(&self, id: FileId) -> StoreResult<FsStat> {
        self.resolve(id)?;
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
}
