//! The inode table: FUSE node ids <-> NFS file handles, with the kernel's lookup counts.
//!
//! The kernel names a file by a node id it got from us in an entry reply (LOOKUP, CREATE,
//! MKDIR, SYMLINK, LINK, MKNOD, a READDIRPLUS entry) and keeps it until it FORGETs every
//! one of those references. So the table is keyed by file handle (one node per object, the
//! same id for every name of a hard-linked file), counts each reference it hands out, and
//! frees a node when the kernel's count reaches zero. Ids are never reused (a counter), so a
//! stale id from the kernel cannot reach another object. Node 1 is the export root and is
//! never freed.

use std::collections::HashMap;

use nfsio_client::proto::nfs3::FileHandle;

/// The node id of the export root (FUSE_ROOT_ID).
pub const ROOT_INO: u64 = 1;

struct Node {
    handle: FileHandle,
    /// References the kernel holds (entries replied minus forgotten).
    lookups: u64,
}

/// Node ids and their handles; see the module documentation.
pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    by_handle: HashMap<FileHandle, u64>,
    next: u64,
}

impl InodeTable {
    /// A table holding only the export root, `root`, as node 1.
    pub fn new(root: FileHandle) -> Self {
        let mut table = Self {
            nodes: HashMap::new(),
            by_handle: HashMap::new(),
            next: ROOT_INO + 1,
        };
        table.by_handle.insert(root.clone(), ROOT_INO);
        table.nodes.insert(
            ROOT_INO,
            Node {
                handle: root,
                lookups: 0,
            },
        );
        table
    }

    /// The handle of node `ino`, if the kernel may still use it.
    pub fn handle(&self, ino: u64) -> Option<FileHandle> {
        self.nodes.get(&ino).map(|node| node.handle.clone())
    }

    /// The id `handle` has or would get from [`InodeTable::remember`], without counting a
    /// reference (for a reply the entry may not fit in).
    pub fn prospective(&self, handle: &FileHandle) -> u64 {
        self.by_handle.get(handle).copied().unwrap_or(self.next)
    }

    /// The id of `handle`, if it has one.
    pub fn peek(&self, handle: &FileHandle) -> Option<u64> {
        self.by_handle.get(handle).copied()
    }

    /// The id of `handle`, counting one kernel reference (an entry reply is being sent).
    pub fn remember(&mut self, handle: &FileHandle) -> u64 {
        if let Some(&ino) = self.by_handle.get(handle) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.lookups += 1;
            }
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_handle.insert(handle.clone(), ino);
        self.nodes.insert(
            ino,
            Node {
                handle: handle.clone(),
                lookups: 1,
            },
        );
        ino
    }

    /// The kernel dropped `count` references to `ino`; frees it at zero (never the root).
    pub fn forget(&mut self, ino: u64, count: u64) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            tracing::warn!(ino, count, "FORGET of an unknown node");
            return;
        };
        if count > node.lookups {
            tracing::warn!(
                ino,
                count,
                held = node.lookups,
                "FORGET of more than was looked up"
            );
        }
        node.lookups = node.lookups.saturating_sub(count);
        if node.lookups == 0 && ino != ROOT_INO {
            let handle = node.handle.clone();
            self.nodes.remove(&ino);
            self.by_handle.remove(&handle);
        }
    }

    /// Nodes in the table, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn fh(n: u8) -> FileHandle {
        FileHandle(Bytes::from(vec![n; 8]))
    }

    #[test]
    fn counts_references_and_frees_at_zero_but_never_the_root() {
        let mut table = InodeTable::new(fh(0));
        let a = table.remember(&fh(1));
        assert_eq!(table.prospective(&fh(1)), a);
        assert_eq!(table.remember(&fh(1)), a, "one id per handle");
        let b = table.prospective(&fh(2));
        assert_eq!(table.remember(&fh(2)), b);
        assert_eq!(table.len(), 3);
        table.forget(a, 1);
        assert_eq!(table.handle(a), Some(fh(1)), "one reference left");
        table.forget(a, 1);
        assert_eq!(table.handle(a), None);
        assert_ne!(table.remember(&fh(1)), a, "ids are not reused");
        assert_eq!(table.remember(&fh(0)), ROOT_INO);
        table.forget(ROOT_INO, 5);
        assert_eq!(table.handle(ROOT_INO), Some(fh(0)));
    }
}
