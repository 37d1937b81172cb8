//! The memory store's tree: its nodes (files with their two contents, directories with their
//! cookies, symbolic links, special files) and the primitives every operation is made of —
//! find, allocate, add and remove an entry, unlink, set attributes — which keep link counts,
//! cookies, generations and the bytes in use consistent. The logical clock lives here too:
//! every change ticks it one microsecond, so runs are reproducible.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use nfsio_proto::nfs3::{Fattr, FileType, Nfs3Status, NfsTime, Sattr, SetTime, SpecData, WccData};

use super::Fault;
use crate::storage::{FileId, StoreError, StoreResult, wcc_attr};

/// The root directory's inode number.
pub(super) const ROOT_INO: u64 = 1;

/// Cookies of `.` and `..`; entries use larger ones.
pub(super) const DOT_COOKIE: u64 = 1;
pub(super) const DOTDOT_COOKIE: u64 = 2;
const FIRST_ENTRY_COOKIE: u64 = 3;

/// What a node is, with what only that kind of node has.
#[derive(Debug, Clone)]
pub(super) enum Kind {
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

/// A file system object: its attributes and its kind.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) generation: u64,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) nlink: u32,
    pub(super) atime: NfsTime,
    pub(super) mtime: NfsTime,
    pub(super) ctime: NfsTime,
    pub(super) kind: Kind,
}

/// The whole tree, what the store's lock guards.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) nodes: HashMap<u64, Node>,
    pub(super) next_ino: u64,
    pub(super) free_inos: Vec<u64>,
    pub(super) next_generation: u64,
    pub(super) clock_ns: u64,
    pub(super) used_bytes: u64,
    pub(super) faults: VecDeque<Fault>,
}

fn time_of(clock_ns: u64) -> NfsTime {
    NfsTime {
        seconds: (clock_ns / 1_000_000_000) as u32,
        nseconds: (clock_ns % 1_000_000_000) as u32,
    }
}

/// A failure with `status` that lost nothing.
pub(super) fn err<T>(status: Nfs3Status) -> StoreResult<T> {
    Err(StoreError::new(status))
}

impl Inner {
    /// A tree with only its root directory (mode 0777, owned by root), the clock at
    /// 2023-11-14.
    pub(super) fn new() -> Self {
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
        inner
    }

    /// Advances the clock one microsecond and returns the new time.
    pub(super) fn tick(&mut self) -> NfsTime {
        self.clock_ns += 1_000;
        time_of(self.clock_ns)
    }

    /// The node `id` names, if it still exists with that generation (else `NFS3ERR_STALE`).
    pub(super) fn node(&self, id: FileId) -> StoreResult<&Node> {
        match self.nodes.get(&id.ino) {
            Some(node) if node.generation == id.generation => Ok(node),
            _ => err(Nfs3Status::Stale),
        }
    }

    /// [`Inner::node`], to change.
    pub(super) fn node_mut(&mut self, id: FileId) -> StoreResult<&mut Node> {
        match self.nodes.get_mut(&id.ino) {
            Some(node) if node.generation == id.generation => Ok(node),
            _ => err(Nfs3Status::Stale),
        }
    }

    /// The id of the node with inode number `ino` now.
    pub(super) fn id_of(&self, ino: u64) -> StoreResult<FileId> {
        self.nodes
            .get(&ino)
            .map(|node| FileId::new(ino, node.generation))
            .ok_or(StoreError::new(Nfs3Status::Stale))
    }

    /// The attributes of `ino`, as the file system `fsid`.
    pub(super) fn fattr(&self, ino: u64, fsid: u64) -> StoreResult<Fattr> {
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
    pub(super) fn child(&self, dir: FileId, name: &[u8]) -> StoreResult<u64> {
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

    /// A new node of `kind` (a free inode number if `reuse`, with a new generation), not yet
    /// linked anywhere.
    pub(super) fn allocate(
        &mut self,
        reuse: bool,
        kind: Kind,
        mode: u32,
        owner: (u32, u32),
    ) -> u64 {
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

    /// Links `ino` into the directory `dir` as `name`, with the next cookie.
    pub(super) fn add_entry(&mut self, dir: u64, name: &[u8], ino: u64) -> StoreResult<()> {
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

    /// Unlinks `name` from the directory `dir` and returns the inode number it named (whose
    /// link count the caller then drops, [`Inner::unlink`]).
    pub(super) fn remove_entry(&mut self, dir: u64, name: &[u8]) -> StoreResult<u64> {
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
    pub(super) fn unlink(&mut self, ino: u64) {
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

    /// Changes the link count of the directory `dir` by `delta` (a subdirectory's `..`).
    pub(super) fn set_link_count(&mut self, dir: u64, delta: i32) {
        if let Some(node) = self.nodes.get_mut(&dir) {
            node.nlink = node.nlink.saturating_add_signed(delta);
        }
    }

    /// Takes the first queued fault that `matches`.
    pub(super) fn take_fault(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let pos = self.faults.iter().position(matches)?;
        self.faults.remove(pos)
    }

    /// Applies `attrs` to `ino` (permissions were checked by the caller). A size change is
    /// synchronous (both contents) and refused with `NFS3ERR_NOSPC` when the store would then
    /// hold more than `capacity_bytes`.
    pub(super) fn apply_sattr(
        &mut self,
        ino: u64,
        attrs: &Sattr,
        capacity_bytes: u64,
    ) -> StoreResult<()> {
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

    /// Weak cache consistency data of `ino`: `before`, and its attributes now.
    pub(super) fn wcc(&self, before: &Fattr, ino: u64, fsid: u64) -> WccData {
        WccData {
            before: Some(wcc_attr(before)),
            after: self.fattr(ino, fsid).ok(),
        }
    }
}

/// A new, empty directory below `parent`.
pub(super) fn new_dir(parent: u64) -> Kind {
    Kind::Dir {
        parent,
        by_cookie: BTreeMap::new(),
        by_name: HashMap::new(),
        next_cookie: FIRST_ENTRY_COOKIE,
    }
}
