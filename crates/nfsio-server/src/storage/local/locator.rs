//! From a [`FileId`] to the object it names, and back, in bounded time and memory.
//!
//! Run as root, the store uses the kernel's own file handles, as knfsd and nfs-ganesha do:
//! `name_to_handle_at` gives a handle that names the inode and its generation, and
//! `open_by_handle_at` (CAP_DAC_READ_SEARCH) opens it again in one system call, after a
//! restart too, or answers `ESTALE` for a removed file whatever reuse its inode number saw.
//! Nothing is remembered per file; a stale or forged handle costs one system call (a forged
//! one not even that: its MAC fails first).
//!
//! Without that capability (an ordinary user's server) the store keeps a map of what it has
//! handed out: each object's parent and name, never a full path, so memory grows with the
//! number of names and is bounded in bytes (past the bound the map starts over). Resolving
//! walks the path from the root, at most one `openat` per level. A handle the map does not
//! know (after a restart) is searched for by a bounded walk of the export, at most
//! `max_search_entries` entries a walk and a walk every two seconds or so (a token bucket):
//! beyond that the server answers NFS3ERR_JUKEBOX (try again later), and handles found stale
//! are remembered, so a flood of them costs O(1) each. The generation is the file's birth time
//! or, where the file system has none, its inode generation (`FS_IOC_GETVERSION`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use nfsio_proto::nfs3::Nfs3Status;
use tracing::{debug, warn};

use super::super::sys::{self, Stat};
use super::{LocalStore, lock};
use crate::storage::{FileId, KernelHandle, StoreError, StoreResult};

/// Deepest directory tree walked up or down (PATH_MAX / 2 levels of one-byte names).
const MAX_DEPTH: usize = 2048;

/// Bytes a remembered name costs besides its own length (map entry, node, allocation).
const NODE_OVERHEAD_BYTES: usize = 64;

/// An object resolved from its identity: an `O_PATH` descriptor and its attributes.
pub(crate) struct Object {
    pub(crate) fd: OwnedFd,
    pub(crate) stat: Stat,
}

/// Where an object's generation comes from, when the kernel's handles are not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generation {
    /// The birth time (`statx` btime), in nanoseconds.
    BirthTime,
    /// The inode generation (`FS_IOC_GETVERSION`).
    InodeGeneration,
}

/// How identities are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The kernel's handles.
    Kernel,
    /// The bounded map of names, with generations from this source.
    Tree(Generation),
}

/// One remembered name: its object's parent and its name there.
#[derive(Debug)]
struct Node {
    generation: u64,
    parent: u64,
    name: Box<[u8]>,
}

/// The map of names (tree mode), the handles known stale, and the walk budget.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: HashMap<u64, Node>,
    bytes: usize,
    stale: HashSet<FileId>,
    stale_order: VecDeque<FileId>,
    search_tokens: f64,
    tokens_at: Instant,
}

impl Tree {
    pub(crate) fn new() -> Self {
        Self {
            nodes: HashMap::new(),
            bytes: 0,
            stale: HashSet::new(),
            stale_order: VecDeque::new(),
            search_tokens: SEARCH_BURST,
            tokens_at: Instant::now(),
        }
    }

    /// Bytes the map holds (names and their overhead).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Walks that may start at once, and how fast the budget comes back (per second).
const SEARCH_BURST: f64 = 2.0;
const SEARCH_REFILL_PER_S: f64 = 0.5;

fn stale<T>() -> StoreResult<T> {
    Err(StoreError::new(Nfs3Status::Stale))
}

impl LocalStore {
    /// The identity of the object `fd` (with attributes `stat`) names.
    pub(crate) fn identify(&self, fd: BorrowedFd<'_>, stat: &Stat) -> StoreResult<FileId> {
        match self.mode {
            Mode::Kernel => {
                let (kind, bytes, _) = sys::handle_of(fd, KernelHandle::MAX_BYTES)?;
                let kernel = KernelHandle::new(kind, &bytes)
                    .ok_or(StoreError::new(Nfs3Status::ServerFault))?;
                Ok(FileId {
                    ino: stat.ino,
                    generation: 0,
                    kernel,
                })
            }
            Mode::Tree(source) => Ok(FileId::new(stat.ino, generation(fd, stat, source))),
        }
    }

    /// Remembers that `id` is `name` in the directory `parent` (tree mode; the kernel needs
    /// nothing remembered).
    pub(crate) fn remember(&self, id: FileId, parent: FileId, name: &[u8]) {
        if self.mode == Mode::Kernel || id == self.root_id {
            return;
        }
        let mut tree = lock(&self.tree);
        let cost = NODE_OVERHEAD_BYTES + name.len();
        if tree.bytes + cost > self.options.max_map_bytes {
            // Start over rather than hold more, keeping the chain above `parent` when it is
            // small enough, so that the walk in progress goes on; anything else needed again
            // is found again.
            debug!(bytes = tree.bytes, "name map at its bound: starting over");
            let chain = chain_above(
                &tree,
                parent.ino,
                self.root_id.ino,
                self.options.max_map_bytes / 2,
            );
            tree.nodes.clear();
            tree.bytes = 0;
            for (ino, node) in chain {
                tree.bytes += NODE_OVERHEAD_BYTES + node.name.len();
                tree.nodes.insert(ino, node);
            }
        }
        let node = Node {
            generation: id.generation,
            parent: parent.ino,
            name: name.into(),
        };
        if let Some(old) = tree.nodes.insert(id.ino, node) {
            tree.bytes -= NODE_OVERHEAD_BYTES + old.name.len();
        }
        tree.bytes += cost;
        tree.stale.remove(&id);
    }

    /// Forgets `id`: it was removed.
    pub(crate) fn forget(&self, id: FileId) {
        lock(&self.files).remove(id);
        if self.mode == Mode::Kernel {
            return;
        }
        let mut tree = lock(&self.tree);
        if tree
            .nodes
            .get(&id.ino)
            .is_some_and(|n| n.generation == id.generation)
            && let Some(old) = tree.nodes.remove(&id.ino)
        {
            tree.bytes -= NODE_OVERHEAD_BYTES + old.name.len();
        }
        if tree.stale.insert(id) {
            tree.stale_order.push_back(id);
            while tree.stale_order.len() > self.options.max_stale_ids {
                if let Some(old) = tree.stale_order.pop_front() {
                    tree.stale.remove(&old);
                }
            }
        }
    }

    /// Opens the object `id` names (`O_PATH`), or answers `NFS3ERR_STALE`.
    pub(crate) fn open_id(&self, id: FileId) -> StoreResult<Object> {
        if id == self.root_id {
            let fd = self.root.try_clone()?;
            let stat = sys::stat_fd(fd.as_fd())?;
            return Ok(Object { fd, stat });
        }
        let object = match self.mode {
            Mode::Kernel => self.open_by_kernel_handle(id)?,
            Mode::Tree(_) => self.open_by_name(id)?,
        };
        if object.stat.nlink == 0 {
            self.forget(id);
            return stale();
        }
        Ok(object)
    }

    fn open_by_kernel_handle(&self, id: FileId) -> StoreResult<Object> {
        if !id.kernel.is_some() {
            return stale();
        }
        let fd = match sys::open_by_handle(
            self.root.as_fd(),
            id.kernel.kind,
            id.kernel.as_bytes(),
            libc::O_PATH,
        ) {
            Ok(fd) => fd,
            Err(err) if matches!(err.raw_os_error(), Some(libc::ESTALE | libc::ENOENT)) => {
                return stale();
            }
            Err(err) => return Err(err.into()),
        };
        let stat = sys::stat_fd(fd.as_fd())?;
        if stat.ino != id.ino || stat.dev != self.dev {
            return stale();
        }
        Ok(Object { fd, stat })
    }

    fn open_by_name(&self, id: FileId) -> StoreResult<Object> {
        let path = {
            let tree = lock(&self.tree);
            if tree.stale.contains(&id) {
                return stale();
            }
            self.path_of(&tree, id)
        };
        if let Some(path) = path
            && let Some(object) = self.walk_down(&path)?
            && self.is(id, &object)
        {
            return Ok(object);
        }
        self.search(id)
    }

    /// The names from the root down to `id`, if the map knows them all.
    fn path_of(&self, tree: &Tree, id: FileId) -> Option<Vec<Box<[u8]>>> {
        let mut path = Vec::new();
        let mut ino = id.ino;
        let node = tree.nodes.get(&ino)?;
        if node.generation != id.generation {
            return None;
        }
        while ino != self.root_id.ino {
            let node = tree.nodes.get(&ino)?;
            path.push(node.name.clone());
            if path.len() > MAX_DEPTH {
                return None;
            }
            ino = node.parent;
        }
        path.reverse();
        Some(path)
    }

    /// Opens `path` from the root, one component at a time, never following a link.
    fn walk_down(&self, path: &[Box<[u8]>]) -> StoreResult<Option<Object>> {
        let mut fd = self.root.try_clone()?;
        for name in path {
            let Ok(name) = CString::new(&name[..]) else {
                return Ok(None);
            };
            match sys::open_at(fd.as_fd(), &name, libc::O_PATH, 0) {
                Ok(next) => fd = next,
                Err(_) => return Ok(None),
            }
        }
        let stat = sys::stat_fd(fd.as_fd())?;
        Ok(Some(Object { fd, stat }))
    }

    /// True when `object` is the one `id` names.
    fn is(&self, id: FileId, object: &Object) -> bool {
        let Mode::Tree(source) = self.mode else {
            return false;
        };
        object.stat.ino == id.ino
            && object.stat.dev == self.dev
            && generation(object.fd.as_fd(), &object.stat, source) == id.generation
    }

    /// Takes one walk from the budget, or says to come back later.
    fn take_search_token(&self) -> StoreResult<()> {
        let mut tree = lock(&self.tree);
        let now = Instant::now();
        let refill = now.duration_since(tree.tokens_at).as_secs_f64() * SEARCH_REFILL_PER_S;
        tree.search_tokens = (tree.search_tokens + refill).min(SEARCH_BURST);
        tree.tokens_at = now;
        if tree.search_tokens < 1.0 {
            return Err(StoreError::new(Nfs3Status::Jukebox));
        }
        tree.search_tokens -= 1.0;
        Ok(())
    }

    /// Walks the export breadth-first (at most `max_search_entries` entries) looking for
    /// `id`, remembering what it sees.
    fn search(&self, id: FileId) -> StoreResult<Object> {
        self.take_search_token()?;
        let Mode::Tree(source) = self.mode else {
            return stale();
        };
        let mut queue: VecDeque<(FileId, OwnedFd)> = VecDeque::new();
        queue.push_back((self.root_id, self.root.try_clone()?));
        let mut visited = 0usize;
        let mut buf = vec![0u8; super::DIRENT_BUF_BYTES];
        while let Some((dir_id, dir)) = queue.pop_front() {
            let Ok(listing) = sys::reopen(dir.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY) else {
                continue;
            };
            while let Ok(filled) = sys::getdents(listing.as_fd(), &mut buf) {
                if filled == 0 {
                    break;
                }
                for entry in sys::parse_dirents(&buf[..filled]) {
                    if entry.name == b"." || entry.name == b".." {
                        continue;
                    }
                    visited += 1;
                    if visited > self.options.max_search_entries {
                        warn!(visited, "search for a handle gave up at its bound");
                        self.forget(id);
                        return stale();
                    }
                    if entry.ino != id.ino && entry.d_type != sys::DT_DIR {
                        continue;
                    }
                    let Ok(name) = CString::new(entry.name) else {
                        continue;
                    };
                    let Ok(fd) = sys::open_at(dir.as_fd(), &name, libc::O_PATH, 0) else {
                        continue;
                    };
                    let Ok(stat) = sys::stat_fd(fd.as_fd()) else {
                        continue;
                    };
                    if !self.same_mount(&stat) {
                        continue;
                    }
                    let found = FileId::new(stat.ino, generation(fd.as_fd(), &stat, source));
                    self.remember(found, dir_id, entry.name);
                    if found == id {
                        return Ok(Object { fd, stat });
                    }
                    if stat.is_dir() {
                        queue.push_back((found, fd));
                    }
                }
            }
        }
        debug!(ino = id.ino, "stale handle");
        self.forget(id);
        stale()
    }

    /// True when `stat` is on the export's own mount (or, with `cross_mounts`, a bind mount
    /// of the same file system).
    pub(crate) fn same_mount(&self, stat: &Stat) -> bool {
        if stat.dev != self.dev {
            return false;
        }
        stat.mnt_id == self.mnt_id || self.options.cross_mounts
    }

    /// True when the directory `fd` lies inside the export: walking up through `..` meets
    /// the export's root before the file system's (at most [`MAX_DEPTH`] levels).
    pub(crate) fn is_inside(&self, fd: BorrowedFd<'_>) -> StoreResult<bool> {
        let mut current = fd.try_clone_to_owned()?;
        for _ in 0..MAX_DEPTH {
            let stat = sys::stat_fd(current.as_fd())?;
            if stat.dev == self.dev && stat.ino == self.root_id.ino {
                return Ok(true);
            }
            let parent = sys::open_at(current.as_fd(), c"..", libc::O_PATH | libc::O_DIRECTORY, 0)?;
            let above = sys::stat_fd(parent.as_fd())?;
            if above.dev == stat.dev && above.ino == stat.ino {
                return Ok(false);
            }
            current = parent;
        }
        Ok(false)
    }

    /// Bytes of the name map (tree mode; 0 with kernel handles).
    pub fn map_bytes(&self) -> usize {
        lock(&self.tree).bytes()
    }
}

/// The nodes from `ino` up to the root, if they are all known and take at most
/// `max_bytes`; none otherwise.
fn chain_above(tree: &Tree, mut ino: u64, root: u64, max_bytes: usize) -> Vec<(u64, Node)> {
    let mut chain = Vec::new();
    let mut bytes = 0;
    while ino != root {
        let Some(node) = tree.nodes.get(&ino) else {
            return Vec::new();
        };
        bytes += NODE_OVERHEAD_BYTES + node.name.len();
        if bytes > max_bytes || chain.len() > MAX_DEPTH {
            return Vec::new();
        }
        chain.push((
            ino,
            Node {
                generation: node.generation,
                parent: node.parent,
                name: node.name.clone(),
            },
        ));
        ino = node.parent;
    }
    chain
}

/// The generation of an object where the kernel's handles are not used.
pub(crate) fn generation(fd: BorrowedFd<'_>, stat: &Stat, source: Generation) -> u64 {
    match source {
        Generation::BirthTime => stat
            .btime
            .map(|t| {
                (t.seconds as u64)
                    .wrapping_mul(1_000_000_000)
                    .wrapping_add(u64::from(t.nanos))
            })
            .unwrap_or(0),
        Generation::InodeGeneration => {
            // The ioctl needs a descriptor that is not O_PATH; an object this process may
            // not open (or a symbolic link) gets 0.
            let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
            if stat.is_symlink() {
                return 0;
            }
            sys::reopen(fd, flags)
                .and_then(|opened| sys::inode_generation(opened.as_fd()))
                .map_or(0, u64::from)
        }
    }
}
