//! The in-memory store with a crash model, for tests and the deterministic simulation.
//!
//! Every regular file has two contents: the *volatile* one (what READ sees: every write lands
//! there) and the *durable* one (what survives [`MemStore::crash`]). An UNSTABLE write changes
//! only the volatile content; a DATA_SYNC or FILE_SYNC write, and COMMIT, copy the volatile
//! content to the durable one before returning. Namespace operations and attribute changes are
//! durable at once (RFC 1813 requires them to be synchronous). [`MemStore::crash`] drops every
//! volatile change, which is exactly what a server that lied about stability would lose.
//!
//! Faults are injected with [`MemStore::inject`]: a write that fails with EIO or ENOSPC, a sync
//! that fails (and, like a failed writeback, drops the file's unstable data), a short write.
//! Inode numbers of removed objects are reused (with a new generation), so stale handles are
//! exercised. Callers are checked with [`rules`], the kernel's permission rules written down,
//! since there is no kernel here to apply them. Time is a logical clock that advances one microsecond per change, so runs are
//! reproducible.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use nfsio_proto::nfs3::{
    CookieVerifier, Fattr, FileType, MknodData, Nfs3Status, NfsTime, Sattr, SetTime, SpecData,
    StableHow, WccData,
};

use super::rules;
use super::{
    Caller, CreateMode, Created, DirEntry, DirPage, FileId, FsStat, Granted, ReadOutcome, Storage,
    StoreError, StoreLimits, StoreResult, WriteOutcome, check_name, check_new_name, wcc_attr,
};

/// The root directory's inode number.
const ROOT_INO: u64 = 1;

/// Cookies of `.` and `..`; entries use larger ones.
const DOT_COOKIE: u64 = 1;
const DOTDOT_COOKIE: u64 = 2;
const FIRST_ENTRY_COOKIE: u64 = 3;

/// A fault to inject into the next matching operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next WRITE fails with this status before writing anything (an I/O error: the
    /// server changes its verifier).
    WriteError(Nfs3Status),
    /// The next sync (a DATA_SYNC or FILE_SYNC WRITE, or a COMMIT) fails with this status, and
    /// the file's unstable data is lost, as when writeback fails.
    SyncError(Nfs3Status),
    /// The next WRITE writes at most this many bytes.
    ShortWrite(u32),
}

/// Options of a [`MemStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemOptions {
    /// Reuse the inode numbers of removed objects (with a new generation).
    pub reuse_inodes: bool,
    /// Total bytes of file content the store holds before answering NFS3ERR_NOSPC.
    pub capacity_bytes: u64,
    /// The file system id.
    pub fsid: u64,
}

impl Default for MemOptions {
    fn default() -> Self {
        Self {
            reuse_inodes: true,
            capacity_bytes: 1 << 30,
            fsid: 0x6e66_7369_6f6d_656d,
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    File {
        volatile: Vec<u8>,
        durable: Vec<u8>,
        create_verf: Option<[u8; 8]>,
    },
    Dir {
        parent: u64,
        by_cookie: BTreeMap<u64, (Bytes, u64)>,
        by_name: HashMap<Bytes, u64>,
        next_cookie: u64,
    },
    Symlink(Bytes),
    Fifo,
    Socket,
}

#[derive(Debug, Clone)]
struct Node {
    generation: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    atime: NfsTime,
    mtime: NfsTime,
    ctime: NfsTime,
    kind: Kind,
}

#[derive(Debug)]
struct Inner {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    free_inos: Vec<u64>,
    next_generation: u64,
    clock_ns: u64,
    used_bytes: u64,
    faults: VecDeque<Fault>,
}

/// An in-memory file system with volatile and durable file contents.
#[derive(Debug)]
pub struct MemStore {
    inner: Mutex<Inner>,
    options: MemOptions,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

fn time_of(clock_ns: u64) -> NfsTime {
    NfsTime {
        seconds: (clock_ns / 1_000_000_000) as u32,
        nseconds: (clock_ns % 1_000_000_000) as u32,
    }
}

fn err<T>(status: Nfs3Status) -> StoreResult<T> {
    Err(StoreError::new(status))
}

impl Inner {
    fn tick(&mut self) -> NfsTime {
        self.clock_ns += 1_000;
        time_of(self.clock_ns)
    }

    fn node(&self, id: FileId) -> StoreResult<&Node> {
        match self.nodes.get(&id.ino) {
            Some(node) if node.generation == id.generation => Ok(node),
            _ => err(Nfs3Status::Stale),
        }
    }

    fn node_mut(&mut self, id: FileId) -> StoreResult<&mut Node> {
        match self.nodes.get_mut(&id.ino) {
            Some(node) if node.generation == id.generation => Ok(node),
            _ => err(Nfs3Status::Stale),
        }
    }

    fn id_of(&self, ino: u64) -> StoreResult<FileId> {
        self.nodes
            .get(&ino)
            .map(|node| FileId::new(ino, node.generation))
            .ok_or(StoreError::new(Nfs3Status::Stale))
    }

    fn fattr(&self, ino: u64, fsid: u64) -> StoreResult<Fattr> {
        let node = self
            .nodes
            .get(&ino)
            .ok_or(StoreError::new(Nfs3Status::Stale))?;
        let (file_type, size) = match &node.kind {
            Kind::File { volatile, .. } => (FileType::Regular, volatile.len() as u64),
            Kind::Dir { by_cookie, .. } => {
                (FileType::Directory, 4096 + 32 * by_cookie.len() as u64)
            }
            Kind::Symlink(target) => (FileType::Symlink, target.len() as u64),
            Kind::Fifo => (FileType::Fifo, 0),
            Kind::Socket => (FileType::Socket, 0),
        };
        Ok(Fattr {
            file_type,
            mode: node.mode,
            nlink: node.nlink,
            uid: node.uid,
            gid: node.gid,
            size,
            used: size,
            rdev: SpecData::default(),
            fsid,
            fileid: ino,
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
        })
    }

    /// The directory `dir`'s entry `name`, as an inode number.
    fn child(&self, dir: FileId, name: &[u8]) -> StoreResult<u64> {
        match &self.node(dir)?.kind {
            Kind::Dir {
                by_cookie, by_name, ..
            } => by_name
                .get(name)
                .and_then(|cookie| by_cookie.get(cookie))
                .map(|(_, ino)| *ino)
                .ok_or(StoreError::new(Nfs3Status::NoEnt)),
            _ => err(Nfs3Status::NotDir),
        }
    }

    fn allocate(&mut self, reuse: bool, kind: Kind, mode: u32, owner: (u32, u32)) -> u64 {
        let ino = match reuse.then(|| self.free_inos.pop()).flatten() {
            Some(ino) => ino,
            None => {
                self.next_ino += 1;
                self.next_ino
            }
        };
        self.next_generation += 1;
        let now = self.tick();
        self.nodes.insert(
            ino,
            Node {
                generation: self.next_generation,
                mode: mode & 0o7777,
                uid: owner.0,
                gid: owner.1,
                nlink: if matches!(kind, Kind::Dir { .. }) {
                    2
                } else {
                    1
                },
                atime: now,
                mtime: now,
                ctime: now,
                kind,
            },
        );
        ino
    }

    fn add_entry(&mut self, dir: u64, name: &[u8], ino: u64) -> StoreResult<()> {
        let now = self.tick();
        let node = self
            .nodes
            .get_mut(&dir)
            .ok_or(StoreError::new(Nfs3Status::Stale))?;
        let Kind::Dir {
            by_cookie,
            by_name,
            next_cookie,
            ..
        } = &mut node.kind
        else {
            return err(Nfs3Status::NotDir);
        };
        let name = Bytes::copy_from_slice(name);
        let cookie = *next_cookie;
        *next_cookie += 1;
        by_cookie.insert(cookie, (name.clone(), ino));
        by_name.insert(name, cookie);
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    fn remove_entry(&mut self, dir: u64, name: &[u8]) -> StoreResult<u64> {
        let now = self.tick();
        let node = self
            .nodes
            .get_mut(&dir)
            .ok_or(StoreError::new(Nfs3Status::Stale))?;
        let Kind::Dir {
            by_cookie, by_name, ..
        } = &mut node.kind
        else {
            return err(Nfs3Status::NotDir);
        };
        let cookie = by_name
            .remove(name)
            .ok_or(StoreError::new(Nfs3Status::NoEnt))?;
        let (_, ino) = by_cookie
            .remove(&cookie)
            .ok_or(StoreError::new(Nfs3Status::ServerFault))?;
        node.mtime = now;
        node.ctime = now;
        Ok(ino)
    }

    /// Drops one link to `ino`, freeing it when none is left.
    fn unlink(&mut self, ino: u64) {
        let now = self.tick();
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        let is_dir = matches!(node.kind, Kind::Dir { .. });
        node.nlink = if is_dir {
            0
        } else {
            node.nlink.saturating_sub(1)
        };
        node.ctime = now;
        if node.nlink == 0 {
            if let Some(removed) = self.nodes.remove(&ino) {
                if let Kind::File {
                    volatile, durable, ..
                } = removed.kind
                {
                    self.used_bytes = self
                        .used_bytes
                        .saturating_sub(volatile.len().max(durable.len()) as u64);
                }
            }
            self.free_inos.push(ino);
        }
    }

    fn set_link_count(&mut self, dir: u64, delta: i32) {
        if let Some(node) = self.nodes.get_mut(&dir) {
            node.nlink = node.nlink.saturating_add_signed(delta);
        }
    }

    fn take_fault(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let pos = self.faults.iter().position(matches)?;
        self.faults.remove(pos)
    }

    fn apply_sattr(&mut self, ino: u64, attrs: &Sattr, capacity_bytes: u64) -> StoreResult<()> {
        let now = self.tick();
        let used = self.used_bytes;
        let node = self
            .nodes
            .get_mut(&ino)
            .ok_or(StoreError::new(Nfs3Status::Stale))?;
        if let Some(size) = attrs.size {
            let Kind::File {
                volatile, durable, ..
            } = &mut node.kind
            else {
                return err(if matches!(node.kind, Kind::Dir { .. }) {
                    Nfs3Status::IsDir
                } else {
                    Nfs3Status::Inval
                });
            };
            let old = volatile.len().max(durable.len()) as u64;
            let grow = size.saturating_sub(old);
            if used.saturating_add(grow) > capacity_bytes {
                return err(Nfs3Status::NoSpc);
            }
            let size = usize::try_from(size).map_err(|_| StoreError::new(Nfs3Status::FBig))?;
            // A size change is an attribute change: synchronous, so both contents.
            volatile.resize(size, 0);
            durable.resize(size, 0);
            node.mtime = now;
            self.used_bytes = used.saturating_sub(old).saturating_add(size as u64);
        }
        if let Some(mode) = attrs.mode {
            node.mode = mode & 0o7777;
        }
        if let Some(uid) = attrs.uid {
            node.uid = uid;
        }
        if let Some(gid) = attrs.gid {
            node.gid = gid;
        }
        match attrs.atime {
            SetTime::DontChange => {}
            SetTime::ServerTime => node.atime = now,
            SetTime::ClientTime(t) => node.atime = t,
        }
        match attrs.mtime {
            SetTime::DontChange => {}
            SetTime::ServerTime => node.mtime = now,
            SetTime::ClientTime(t) => node.mtime = t,
        }
        node.ctime = now;
        Ok(())
    }

    fn wcc(&self, before: &Fattr, ino: u64, fsid: u64) -> WccData {
        WccData {
            before: Some(wcc_attr(before)),
            after: self.fattr(ino, fsid).ok(),
        }
    }
}

impl MemStore {
    /// An empty store with default options.
    pub fn new() -> Self {
        Self::with_options(MemOptions::default())
    }

    /// An empty store.
    pub fn with_options(options: MemOptions) -> Self {
        let mut inner = Inner {
            nodes: HashMap::new(),
            next_ino: ROOT_INO,
            free_inos: Vec::new(),
            next_generation: 1,
            clock_ns: 1_700_000_000 * 1_000_000_000,
            used_bytes: 0,
            faults: VecDeque::new(),
        };
        let now = inner.tick();
        inner.nodes.insert(
            ROOT_INO,
            Node {
                generation: 1,
                mode: 0o777,
                uid: 0,
                gid: 0,
                nlink: 2,
                atime: now,
                mtime: now,
                ctime: now,
                kind: Kind::Dir {
                    parent: ROOT_INO,
                    by_cookie: BTreeMap::new(),
                    by_name: HashMap::new(),
                    next_cookie: FIRST_ENTRY_COOKIE,
                },
            },
        );
        Self {
            inner: Mutex::new(inner),
            options,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a fault for the next operation it applies to.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Drops the faults queued and not yet applied.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Simulates a crash of the machine: every file's volatile (unstable, uncommitted)
    /// content is replaced by its durable content.
    pub fn crash(&self) {
        let mut inner = self.lock();
        let mut used = 0u64;
        for node in inner.nodes.values_mut() {
            if let Kind::File {
                volatile, durable, ..
            } = &mut node.kind
            {
                volatile.clone_from(durable);
                used += durable.len() as u64;
            }
        }
        inner.used_bytes = used;
        inner.faults.clear();
    }

    /// The content READ sees (`None` for a stale id or a non-file).
    pub fn content(&self, id: FileId) -> Option<Vec<u8>> {
        match &self.lock().node(id).ok()?.kind {
            Kind::File { volatile, .. } => Some(volatile.clone()),
            _ => None,
        }
    }

    /// The content that would survive a crash now.
    pub fn durable_content(&self, id: FileId) -> Option<Vec<u8>> {
        match &self.lock().node(id).ok()?.kind {
            Kind::File { durable, .. } => Some(durable.clone()),
            _ => None,
        }
    }

    /// Looks up a `/`-separated path from the root (tests).
    pub fn lookup_path(&self, path: &str) -> StoreResult<FileId> {
        let mut id = self.root();
        for name in path.split('/').filter(|c| !c.is_empty()) {
            id = self.lookup(&Caller::root(), id, name.as_bytes())?.0;
        }
        Ok(id)
    }

    fn create_node(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        kind: Kind,
        attrs: &Sattr,
        default_mode: u32,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(dir)?;
        let before = inner.fattr(dir.ino, fsid)?;
        rules::check_change_entries(caller, &before)?;
        match inner.child(dir, name) {
            Ok(_) => return err(Nfs3Status::Exist),
            Err(e) if e.status == Nfs3Status::NoEnt => {}
            Err(e) => return Err(e),
        }
        let is_dir = matches!(kind, Kind::Dir { .. });
        let (uid, gid, mode) =
            rules::new_object(caller, &before, attrs.mode.unwrap_or(default_mode), is_dir);
        let ino = inner.allocate(self.options.reuse_inodes, kind, mode, (uid, gid));
        inner.add_entry(dir.ino, name, ino)?;
        if is_dir {
            inner.set_link_count(dir.ino, 1);
        }
        // The rest applies as a SETATTR by the new owner (an owner chosen by root included).
        let mut rest = attrs.clone();
        rest.mode = None;
        if rest.size == Some(0) {
            rest.size = None;
        }
        if rest != Sattr::default() {
            let created = inner.fattr(ino, fsid)?;
            if let Some(mode) = rules::check_setattr(caller, &created, &rest)? {
                rest.mode = Some(mode);
            }
            inner.apply_sattr(ino, &rest, self.options.capacity_bytes)?;
        }
        Ok(Created {
            id: inner.id_of(ino)?,
            attr: inner.fattr(ino, fsid)?,
            dir_wcc: inner.wcc(&before, dir.ino, fsid),
        })
    }
}

fn new_dir(parent: u64) -> Kind {
    Kind::Dir {
        parent,
        by_cookie: BTreeMap::new(),
        by_name: HashMap::new(),
        next_cookie: FIRST_ENTRY_COOKIE,
    }
}

impl Storage for MemStore {
    fn is_blocking(&self) -> bool {
        false
    }

    fn root(&self) -> FileId {
        FileId::new(ROOT_INO, 1)
    }

    fn fsid(&self) -> u64 {
        self.options.fsid
    }

    fn limits(&self) -> StoreLimits {
        StoreLimits {
            link_max: u32::MAX,
            name_max: 255,
            max_file_bytes: self.options.capacity_bytes,
            time_delta: NfsTime {
                seconds: 0,
                nseconds: 1_000,
            },
        }
    }

    fn getattr(&self, id: FileId) -> StoreResult<Fattr> {
        let inner = self.lock();
        inner.node(id)?;
        inner.fattr(id.ino, self.options.fsid)
    }

    fn access(&self, caller: &Caller, id: FileId) -> StoreResult<(Granted, Fattr)> {
        let attr = self.getattr(id)?;
        Ok((rules::granted(caller, &attr), attr))
    }

    fn lookup(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<(FileId, Fattr)> {
        check_name(name)?;
        let inner = self.lock();
        let Kind::Dir { parent, .. } = &inner.node(dir)?.kind else {
            return err(Nfs3Status::NotDir);
        };
        rules::check_search(caller, &inner.fattr(dir.ino, self.options.fsid)?)?;
        let ino = match name {
            b"." => dir.ino,
            b".." => *parent,
            _ => inner.child(dir, name)?,
        };
        Ok((inner.id_of(ino)?, inner.fattr(ino, self.options.fsid)?))
    }

    fn setattr(
        &self,
        caller: &Caller,
        id: FileId,
        attrs: &Sattr,
        guard: Option<NfsTime>,
    ) -> StoreResult<WccData> {
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(id)?;
        let before = inner.fattr(id.ino, fsid)?;
        if guard.is_some_and(|ctime| ctime != before.ctime) {
            return err(Nfs3Status::NotSync);
        }
        let mut attrs = attrs.clone();
        if before.file_type == FileType::Symlink {
            // Linux has no mode on symbolic links.
            attrs.mode = None;
        }
        if let Some(mode) = rules::check_setattr(caller, &before, &attrs)? {
            attrs.mode = Some(mode);
        }
        inner.apply_sattr(id.ino, &attrs, self.options.capacity_bytes)?;
        Ok(inner.wcc(&before, id.ino, fsid))
    }

    fn read(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<ReadOutcome> {
        let inner = self.lock();
        let node = inner.node(id)?;
        rules::check_read(caller, &inner.fattr(id.ino, self.options.fsid)?)?;
        let Kind::File { volatile, .. } = &node.kind else {
            return err(if matches!(node.kind, Kind::Dir { .. }) {
                Nfs3Status::IsDir
            } else {
                Nfs3Status::Inval
            });
        };
        let len = volatile.len() as u64;
        let start = offset.min(len) as usize;
        let end = offset.saturating_add(u64::from(count)).min(len) as usize;
        let data = Bytes::copy_from_slice(&volatile[start..end]);
        Ok(ReadOutcome {
            data,
            eof: end as u64 >= len,
            attr: inner.fattr(id.ino, self.options.fsid)?,
        })
    }

    fn write(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        data: &Bytes,
        stable: StableHow,
    ) -> StoreResult<WriteOutcome> {
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        {
            let node = inner.node(id)?;
            if !matches!(node.kind, Kind::File { .. }) {
                return err(if matches!(node.kind, Kind::Dir { .. }) {
                    Nfs3Status::IsDir
                } else {
                    Nfs3Status::Inval
                });
            }
        }
        let before = inner.fattr(id.ino, fsid)?;
        rules::check_write(caller, &before)?;
        let cleared_mode = rules::mode_after_write(caller, &before);
        if let Some(Fault::WriteError(status)) =
            inner.take_fault(|f| matches!(f, Fault::WriteError(_)))
        {
            return Err(StoreError {
                status,
                lost_unstable_data: true,
            });
        }
        let mut len = data.len();
        if let Some(Fault::ShortWrite(max)) =
            inner.take_fault(|f| matches!(f, Fault::ShortWrite(_)))
        {
            len = len.min(max as usize);
        }
        let end = offset
            .checked_add(len as u64)
            .filter(|end| *end <= self.options.capacity_bytes)
            .ok_or(StoreError::new(Nfs3Status::FBig))?;
        let end = usize::try_from(end).map_err(|_| StoreError::new(Nfs3Status::FBig))?;
        let sync_fault = if stable != StableHow::Unstable {
            inner.take_fault(|f| matches!(f, Fault::SyncError(_)))
        } else {
            None
        };
        let now = inner.tick();
        let used = inner.used_bytes;
        let capacity = self.options.capacity_bytes;
        let node = inner.node_mut(id)?;
        let Kind::File {
            volatile, durable, ..
        } = &mut node.kind
        else {
            return err(Nfs3Status::Inval);
        };
        let old = volatile.len().max(durable.len());
        let grow = end.saturating_sub(old) as u64;
        if used.saturating_add(grow) > capacity {
            return Err(StoreError {
                status: Nfs3Status::NoSpc,
                lost_unstable_data: true,
            });
        }
        if volatile.len() < end {
            volatile.resize(end, 0);
        }
        volatile[offset as usize..end].copy_from_slice(&data[..len]);
        node.mtime = now;
        node.ctime = now;
        if let Some(mode) = cleared_mode {
            node.mode = mode;
        }
        if let Some(Fault::SyncError(status)) = sync_fault {
            // Writeback failed: what was not durable is gone.
            volatile.clone_from(durable);
            let new_used = used.saturating_sub(old as u64) + durable.len() as u64;
            inner.used_bytes = new_used;
            return Err(StoreError {
                status,
                lost_unstable_data: true,
            });
        }
        if stable != StableHow::Unstable {
            durable.clone_from(volatile);
        }
        let new_len = volatile.len().max(durable.len());
        inner.used_bytes = used.saturating_sub(old as u64) + new_len as u64;
        Ok(WriteOutcome {
            count: len as u32,
            committed: stable,
            wcc: inner.wcc(&before, id.ino, fsid),
        })
    }

    fn commit(
        &self,
        caller: &Caller,
        id: FileId,
        _offset: u64,
        _count: u32,
    ) -> StoreResult<WccData> {
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        let before = {
            let node = inner.node(id)?;
            if !matches!(node.kind, Kind::File { .. }) {
                return err(if matches!(node.kind, Kind::Dir { .. }) {
                    Nfs3Status::IsDir
                } else {
                    Nfs3Status::Inval
                });
            }
            inner.fattr(id.ino, fsid)?
        };
        rules::check_write(caller, &before)?;
        let fault = inner.take_fault(|f| matches!(f, Fault::SyncError(_)));
        let node = inner.node_mut(id)?;
        if let Kind::File {
            volatile, durable, ..
        } = &mut node.kind
        {
            if let Some(Fault::SyncError(status)) = fault {
                volatile.clone_from(durable);
                return Err(StoreError {
                    status,
                    lost_unstable_data: true,
                });
            }
            durable.clone_from(volatile);
        }
        Ok(inner.wcc(&before, id.ino, fsid))
    }

    fn create(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        mode: CreateMode<'_>,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let existing = {
            let inner = self.lock();
            inner.node(dir)?;
            rules::check_change_entries(caller, &inner.fattr(dir.ino, fsid)?)?;
            match inner.child(dir, name) {
                Ok(ino) => Some(ino),
                Err(e) if e.status == Nfs3Status::NoEnt => None,
                Err(e) => return Err(e),
            }
        };
        let file = |verf| Kind::File {
            volatile: Vec::new(),
            durable: Vec::new(),
            create_verf: verf,
        };
        match (mode, existing) {
            (CreateMode::Guarded(_), Some(_)) => err(Nfs3Status::Exist),
            (CreateMode::Unchecked(attrs), Some(ino)) => {
                let mut inner = self.lock();
                let before = inner.fattr(dir.ino, fsid)?;
                let node = inner
                    .nodes
                    .get(&ino)
                    .ok_or(StoreError::new(Nfs3Status::Stale))?;
                match node.kind {
                    Kind::File { .. } => {}
                    Kind::Dir { .. } => return err(Nfs3Status::IsDir),
                    _ => return err(Nfs3Status::Exist),
                }
                // Like knfsd: only the size applies to an existing file, as a truncation by
                // the caller.
                let mut size_only = Sattr {
                    size: attrs.size,
                    ..Sattr::default()
                };
                if size_only.size.is_some() {
                    let existing = inner.fattr(ino, fsid)?;
                    size_only.mode = rules::check_setattr(caller, &existing, &size_only)?;
                }
                inner.apply_sattr(ino, &size_only, self.options.capacity_bytes)?;
                Ok(Created {
                    id: inner.id_of(ino)?,
                    attr: inner.fattr(ino, fsid)?,
                    dir_wcc: inner.wcc(&before, dir.ino, fsid),
                })
            }
            (CreateMode::Exclusive(verf), Some(ino)) => {
                let inner = self.lock();
                let node = inner
                    .nodes
                    .get(&ino)
                    .ok_or(StoreError::new(Nfs3Status::Stale))?;
                match &node.kind {
                    Kind::File {
                        create_verf: Some(stored),
                        ..
                    } if *stored == verf.0 => {
                        let before = inner.fattr(dir.ino, fsid)?;
                        Ok(Created {
                            id: inner.id_of(ino)?,
                            attr: inner.fattr(ino, fsid)?,
                            dir_wcc: inner.wcc(&before, dir.ino, fsid),
                        })
                    }
                    _ => err(Nfs3Status::Exist),
                }
            }
            (CreateMode::Unchecked(attrs) | CreateMode::Guarded(attrs), None) => {
                self.create_node(caller, dir, name, file(None), attrs, 0o644)
            }
            (CreateMode::Exclusive(verf), None) => self.create_node(
                caller,
                dir,
                name,
                file(Some(verf.0)),
                &Sattr::default(),
                0o600,
            ),
        }
    }

    fn mkdir(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        let mut attrs = attrs.clone();
        attrs.size = None;
        self.create_node(caller, dir, name, new_dir(dir.ino), &attrs, 0o755)
    }

    fn symlink(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        target: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        if target.is_empty() {
            return err(Nfs3Status::Inval);
        }
        let attrs = Sattr {
            atime: attrs.atime,
            mtime: attrs.mtime,
            ..Sattr::default()
        };
        self.create_node(
            caller,
            dir,
            name,
            Kind::Symlink(Bytes::copy_from_slice(target)),
            &attrs,
            0o777,
        )
    }

    fn mknod(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        what: &MknodData,
    ) -> StoreResult<Created> {
        let (kind, attrs) = match what {
            MknodData::Fifo(attrs) => (Kind::Fifo, attrs),
            MknodData::Socket(attrs) => (Kind::Socket, attrs),
            MknodData::Char(_) | MknodData::Block(_) => return err(Nfs3Status::NotSupp),
            MknodData::Other(_) => return err(Nfs3Status::BadType),
        };
        let mut attrs = attrs.clone();
        attrs.size = None;
        self.create_node(caller, dir, name, kind, &attrs, 0o644)
    }

    fn remove(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(dir)?;
        let dir_attr = inner.fattr(dir.ino, fsid)?;
        rules::check_change_entries(caller, &dir_attr)?;
        let ino = inner.child(dir, name)?;
        rules::check_sticky(caller, &dir_attr, &inner.fattr(ino, fsid)?)?;
        if matches!(
            inner.nodes.get(&ino).map(|n| &n.kind),
            Some(Kind::Dir { .. })
        ) {
            return err(Nfs3Status::IsDir);
        }
        let before = inner.fattr(dir.ino, fsid)?;
        inner.remove_entry(dir.ino, name)?;
        inner.unlink(ino);
        Ok(inner.wcc(&before, dir.ino, fsid))
    }

    fn rmdir(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(dir)?;
        let dir_attr = inner.fattr(dir.ino, fsid)?;
        rules::check_change_entries(caller, &dir_attr)?;
        let ino = inner.child(dir, name)?;
        rules::check_sticky(caller, &dir_attr, &inner.fattr(ino, fsid)?)?;
        match inner.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::Dir { by_cookie, .. }) if by_cookie.is_empty() => {}
            Some(Kind::Dir { .. }) => return err(Nfs3Status::NotEmpty),
            _ => return err(Nfs3Status::NotDir),
        }
        let before = inner.fattr(dir.ino, fsid)?;
        inner.remove_entry(dir.ino, name)?;
        inner.unlink(ino);
        inner.set_link_count(dir.ino, -1);
        Ok(inner.wcc(&before, dir.ino, fsid))
    }

    fn rename(
        &self,
        caller: &Caller,
        from_dir: FileId,
        from_name: &[u8],
        to_dir: FileId,
        to_name: &[u8],
    ) -> StoreResult<(WccData, WccData)> {
        check_new_name(from_name)?;
        check_new_name(to_name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        inner.node(from_dir)?;
        inner.node(to_dir)?;
        let from_before = inner.fattr(from_dir.ino, fsid)?;
        let to_before = inner.fattr(to_dir.ino, fsid)?;
        if !matches!(inner.node(to_dir)?.kind, Kind::Dir { .. }) {
            return err(Nfs3Status::NotDir);
        }
        rules::check_change_entries(caller, &from_before)?;
        rules::check_change_entries(caller, &to_before)?;
        let ino = inner.child(from_dir, from_name)?;
        rules::check_sticky(caller, &from_before, &inner.fattr(ino, fsid)?)?;
        if let Ok(target) = inner.child(to_dir, to_name) {
            rules::check_sticky(caller, &to_before, &inner.fattr(target, fsid)?)?;
        }
        let source_is_dir = matches!(
            inner.nodes.get(&ino).map(|n| &n.kind),
            Some(Kind::Dir { .. })
        );
        if source_is_dir {
            // A directory cannot move below itself.
            let mut cursor = to_dir.ino;
            loop {
                if cursor == ino {
                    return err(Nfs3Status::Inval);
                }
                match inner.nodes.get(&cursor).map(|n| &n.kind) {
                    Some(Kind::Dir { parent, .. }) if *parent != cursor => cursor = *parent,
                    _ => break,
                }
            }
        }
        let replaced = match inner.child(to_dir, to_name) {
            Ok(target) => Some(target),
            Err(e) if e.status == Nfs3Status::NoEnt => None,
            Err(e) => return Err(e),
        };
        if replaced == Some(ino) {
            // Both names are links to the same file: nothing to do.
            return Ok((
                inner.wcc(&from_before, from_dir.ino, fsid),
                inner.wcc(&to_before, to_dir.ino, fsid),
            ));
        }
        if let Some(target) = replaced {
            match (source_is_dir, inner.nodes.get(&target).map(|n| &n.kind)) {
                (true, Some(Kind::Dir { by_cookie, .. })) if !by_cookie.is_empty() => {
                    return err(Nfs3Status::NotEmpty);
                }
                (true, Some(Kind::Dir { .. })) | (false, Some(Kind::File { .. })) => {}
                (false, Some(Kind::Dir { .. })) => return err(Nfs3Status::IsDir),
                (true, _) => return err(Nfs3Status::NotDir),
                (false, _) => {}
            }
            inner.remove_entry(to_dir.ino, to_name)?;
            if source_is_dir {
                inner.set_link_count(to_dir.ino, -1);
            }
            inner.unlink(target);
        }
        inner.remove_entry(from_dir.ino, from_name)?;
        inner.add_entry(to_dir.ino, to_name, ino)?;
        if source_is_dir && from_dir.ino != to_dir.ino {
            inner.set_link_count(from_dir.ino, -1);
            inner.set_link_count(to_dir.ino, 1);
        }
        let now = inner.tick();
        if let Some(node) = inner.nodes.get_mut(&ino) {
            node.ctime = now;
            if let Kind::Dir { parent, .. } = &mut node.kind {
                *parent = to_dir.ino;
            }
        }
        Ok((
            inner.wcc(&from_before, from_dir.ino, fsid),
            inner.wcc(&to_before, to_dir.ino, fsid),
        ))
    }

    fn link(
        &self,
        caller: &Caller,
        id: FileId,
        dir: FileId,
        name: &[u8],
    ) -> StoreResult<(Fattr, WccData)> {
        check_new_name(name)?;
        let fsid = self.options.fsid;
        let mut inner = self.lock();
        if matches!(inner.node(id)?.kind, Kind::Dir { .. }) {
            return err(Nfs3Status::IsDir);
        }
        if !matches!(inner.node(dir)?.kind, Kind::Dir { .. }) {
            return err(Nfs3Status::NotDir);
        }
        rules::check_change_entries(caller, &inner.fattr(dir.ino, fsid)?)?;
        rules::check_link(caller, &inner.fattr(id.ino, fsid)?)?;
        match inner.child(dir, name) {
            Ok(_) => return err(Nfs3Status::Exist),
            Err(e) if e.status == Nfs3Status::NoEnt => {}
            Err(e) => return Err(e),
        }
        let before = inner.fattr(dir.ino, fsid)?;
        inner.add_entry(dir.ino, name, id.ino)?;
        let now = inner.tick();
        let node = inner.node_mut(id)?;
        node.nlink = node.nlink.saturating_add(1);
        node.ctime = now;
        Ok((
            inner.fattr(id.ino, fsid)?,
            inner.wcc(&before, dir.ino, fsid),
        ))
    }

    fn readlink(&self, id: FileId) -> StoreResult<(Bytes, Fattr)> {
        let inner = self.lock();
        match &inner.node(id)?.kind {
            Kind::Symlink(target) => Ok((target.clone(), inner.fattr(id.ino, self.options.fsid)?)),
            _ => err(Nfs3Status::Inval),
        }
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
        // Cookies are per-directory slot numbers that are never reused, so they stay valid
        // while the directory changes and the verifier is constant.
        let fsid = self.options.fsid;
        let inner = self.lock();
        let Kind::Dir {
            parent, by_cookie, ..
        } = &inner.node(dir)?.kind
        else {
            return err(Nfs3Status::NotDir);
        };
        let dir_attr = inner.fattr(dir.ino, fsid)?;
        rules::check_list(caller, &dir_attr)?;
        let plus = plus && rules::may(caller, &dir_attr, rules::MAY_EXEC);
        let mut candidates: Vec<(u64, Bytes, u64)> = Vec::new();
        if cookie < DOT_COOKIE {
            candidates.push((DOT_COOKIE, Bytes::from_static(b"."), dir.ino));
        }
        if cookie < DOTDOT_COOKIE {
            candidates.push((DOTDOT_COOKIE, Bytes::from_static(b".."), *parent));
        }
        let mut eof = true;
        let after = (Bound::Excluded(cookie.max(DOTDOT_COOKIE)), Bound::Unbounded);
        for (c, (name, ino)) in by_cookie.range(after) {
            if candidates.len() >= max_entries {
                eof = false;
                break;
            }
            candidates.push((*c, name.clone(), *ino));
        }
        if candidates.len() > max_entries {
            candidates.truncate(max_entries);
            eof = false;
        }
        let entries = candidates
            .into_iter()
            .map(|(cookie, name, ino)| DirEntry {
                fileid: ino,
                name,
                cookie,
                plus: if plus {
                    inner
                        .id_of(ino)
                        .ok()
                        .and_then(|id| Some((id, inner.fattr(ino, fsid).ok()?)))
                } else {
                    None
                },
            })
            .collect();
        Ok(DirPage {
            dir_attr: inner.fattr(dir.ino, fsid).ok(),
            verifier: CookieVerifier::default(),
            entries,
            eof,
        })
    }

    fn fsstat(&self, id: FileId) -> StoreResult<FsStat> {
        let inner = self.lock();
        inner.node(id)?;
        let capacity = self.options.capacity_bytes;
        let free = capacity.saturating_sub(inner.used_bytes);
        Ok(FsStat {
            total_bytes: capacity,
            free_bytes: free,
            avail_bytes: free,
            total_files: 1 << 20,
            free_files: (1u64 << 20).saturating_sub(inner.nodes.len() as u64),
            avail_files: (1u64 << 20).saturating_sub(inner.nodes.len() as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Caller {
        Caller::root()
    }

    fn new_file(store: &MemStore, name: &str) -> FileId {
        store
            .create(
                &root(),
                store.root(),
                name.as_bytes(),
                CreateMode::Guarded(&Sattr::default()),
            )
            .unwrap()
            .id
    }

    #[test]
    fn crash_drops_unstable_data_and_keeps_committed_data() {
        let store = MemStore::new();
        let a = new_file(&store, "a");
        let b = new_file(&store, "b");
        let c = new_file(&store, "c");
        let w = |id, off, data: &'static [u8], how| {
            store
                .write(&root(), id, off, &Bytes::from_static(data), how)
                .unwrap()
        };
        assert_eq!(
            w(a, 0, b"committed", StableHow::Unstable).committed,
            StableHow::Unstable
        );
        store.commit(&root(), a, 0, 0).unwrap();
        w(a, 0, b"COMMITTED-but-then-overwritten", StableHow::Unstable);
        assert_eq!(
            w(b, 0, b"file-sync", StableHow::FileSync).committed,
            StableHow::FileSync
        );
        w(c, 0, b"never committed", StableHow::Unstable);
        assert_eq!(store.content(c).unwrap(), b"never committed");

        store.crash();

        assert_eq!(store.content(a).unwrap(), b"committed");
        assert_eq!(store.content(b).unwrap(), b"file-sync");
        assert_eq!(store.content(c).unwrap(), b"");
        // Namespace operations are synchronous: all three files still exist.
        assert!(store.lookup_path("/c").is_ok());
    }

    #[test]
    fn sync_error_loses_unstable_data_and_says_so() {
        let store = MemStore::new();
        let a = new_file(&store, "a");
        store
            .write(
                &root(),
                a,
                0,
                &Bytes::from_static(b"unstable"),
                StableHow::Unstable,
            )
            .unwrap();
        store.inject(Fault::SyncError(Nfs3Status::Io));
        let e = store.commit(&root(), a, 0, 0).unwrap_err();
        assert_eq!(e.status, Nfs3Status::Io);
        assert!(e.lost_unstable_data);
        assert_eq!(store.content(a).unwrap(), b"");
        // The fault was one-shot.
        store.commit(&root(), a, 0, 0).unwrap();
    }

    #[test]
    fn write_faults_and_short_writes() {
        let store = MemStore::new();
        let a = new_file(&store, "a");
        store.inject(Fault::WriteError(Nfs3Status::NoSpc));
        let e = store
            .write(
                &root(),
                a,
                0,
                &Bytes::from_static(b"xyz"),
                StableHow::Unstable,
            )
            .unwrap_err();
        assert_eq!(e.status, Nfs3Status::NoSpc);
        assert!(e.lost_unstable_data);
        store.inject(Fault::ShortWrite(2));
        let out = store
            .write(
                &root(),
                a,
                0,
                &Bytes::from_static(b"xyz"),
                StableHow::FileSync,
            )
            .unwrap();
        assert_eq!(out.count, 2);
        assert_eq!(store.durable_content(a).unwrap(), b"xy");
    }

    #[test]
    fn reused_inode_numbers_get_new_generations() {
        let store = MemStore::new();
        let a = new_file(&store, "a");
        store.remove(&root(), store.root(), b"a").unwrap();
        let b = new_file(&store, "b");
        assert_eq!(a.ino, b.ino, "the inode number is reused");
        assert_ne!(a.generation, b.generation);
        assert_eq!(store.getattr(a).unwrap_err().status, Nfs3Status::Stale);
        assert!(store.getattr(b).is_ok());
    }

    #[test]
    fn readdir_cookies_survive_changes() {
        let store = MemStore::new();
        for name in ["a", "b", "c", "d"] {
            new_file(&store, name);
        }
        let root = store.root();
        let page = store
            .readdir(
                &Caller::root(),
                root,
                0,
                CookieVerifier::default(),
                4,
                false,
            )
            .unwrap();
        let names: Vec<&[u8]> = page.entries.iter().map(|e| &e.name[..]).collect();
        assert_eq!(names, [&b"."[..], b"..", b"a", b"b"]);
        assert!(!page.eof);
        store.remove(&Caller::root(), root, b"a").unwrap();
        let next = store
            .readdir(
                &Caller::root(),
                root,
                page.entries[3].cookie,
                page.verifier,
                10,
                true,
            )
            .unwrap();
        let names: Vec<&[u8]> = next.entries.iter().map(|e| &e.name[..]).collect();
        assert_eq!(names, [&b"c"[..], b"d"]);
        assert!(next.eof);
        assert!(next.entries.iter().all(|e| e.plus.is_some()));
    }

    #[test]
    fn the_largest_cookie_lists_nothing() {
        // Found by fuzzing: `cookie + 1` overflowed.
        let store = MemStore::new();
        new_file(&store, "a");
        let page = store
            .readdir(
                &root(),
                store.root(),
                u64::MAX,
                CookieVerifier::default(),
                10,
                false,
            )
            .unwrap();
        assert!(page.entries.is_empty());
        assert!(page.eof);
    }

    #[test]
    fn dotdot_of_root_is_root() {
        let store = MemStore::new();
        let (id, _) = store.lookup(&root(), store.root(), b"..").unwrap();
        assert_eq!(id, store.root());
    }
}
