//! `Core`: what every operation shares — the client, the inode table, the open handles and
//! the mount's settings — and the small steps many operations take (a node's handle, a
//! name as text, an entry reply's node and attributes).
//!
//! Each request gets its own `Core` ([`Core::for_caller`]): the mount's shared state and a
//! client acting as the request's caller, so every NFS call an operation makes carries the
//! caller's credentials (see `callers.rs`) without the operations knowing. Work without a
//! caller (RELEASE, FORGET, the background write-back) uses the mount's own `Core`, and an
//! open file's bytes go out as the caller that opened it.
//!
//! The operations themselves live in one file per kind (`names.rs`, `meta.rs`, `io.rs`,
//! `listing.rs`); `fs.rs` only hands them to tokio.

use std::ffi::OsStr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fuser::FileAttr;
use nfsio_client::Client;
use nfsio_client::proto::nfs3::{Fattr, FileHandle};

use crate::attr::file_attr;
use crate::callers::Callers;
use crate::error::{Errno, OpResult};
use crate::handles::Handles;
use crate::inodes::InodeTable;

/// The settings of one mount that the operations read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long the kernel may cache attributes and positive entries.
    pub ttl: Duration,
    /// How long the kernel may cache a negative entry (a name that does not exist).
    pub negative_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(1),
            negative_ttl: Duration::from_secs(1),
        }
    }
}

/// The state of one mount that every request shares.
pub struct Shared {
    /// Node ids and their kernel references.
    pub inodes: Mutex<InodeTable>,
    /// Open files and directory listings.
    pub handles: Handles,
    /// The mount's settings.
    pub settings: Settings,
    /// The client handles acting as the mount's callers.
    callers: Callers,
}

/// The state of one mount as one request sees it: the shared state, and the client acting
/// as the request's caller.
pub struct Core {
    /// The NFS client acting as this request's caller (the mount's own identity for the
    /// mount's `Core`); its write-back cache is beneath every open file.
    pub client: Client,
    shared: Arc<Shared>,
}

impl Deref for Core {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Core {
    /// The state of a mount of `client`'s export root.
    pub fn new(client: Client, settings: Settings) -> Self {
        let inodes = Mutex::new(InodeTable::new(client.root().clone()));
        let shared = Shared {
            inodes,
            handles: Handles::default(),
            settings,
            callers: Callers::new(client.clone()),
        };
        Self {
            client,
            shared: Arc::new(shared),
        }
    }

    /// This mount as a request from process `pid` with file-system ids `uid` and `gid`
    /// sees it: its calls act as that caller (with the process's supplementary groups).
    pub fn for_caller(&self, uid: u32, gid: u32, pid: u32) -> Core {
        Core {
            client: self.callers.client_for(uid, gid, pid),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Shared {
    /// The inode table (a poisoned lock is taken over: the table has no invariant a panic
    /// in between two of its own calls could break).
    pub fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        self.inodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Core {
    /// The handle of node `ino`; ESTALE for a node the table does not hold.
    pub fn handle(&self, ino: u64) -> OpResult<FileHandle> {
        self.inodes().handle(ino).ok_or(Errno(libc::ESTALE))
    }

    /// The attributes of node `ino` as the kernel gets them.
    pub fn attr(&self, ino: u64, attributes: &Fattr) -> FileAttr {
        file_attr(ino, attributes, self.client.wsize_bytes())
    }

    /// An entry reply's node and attributes for `handle`, counting one kernel reference.
    pub fn entry(&self, handle: &FileHandle, attributes: &Fattr) -> FileAttr {
        let ino = self.inodes().remember(handle);
        self.attr(ino, attributes)
    }

    /// Attributes a reply did not carry, fetched.
    pub async fn attributes_of(
        &self,
        handle: &FileHandle,
        attributes: Option<Fattr>,
    ) -> OpResult<Fattr> {
        match attributes {
            Some(attributes) => Ok(attributes),
            None => Ok(self.client.getattr(handle).await?),
        }
    }
}

/// A name from the kernel as the client's `&str`: EINVAL for names that are not UTF-8
/// (the client's API takes text today; NFS names are bytes).
pub fn name_str(name: &OsStr) -> OpResult<&str> {
    name.to_str().ok_or_else(|| {
        tracing::debug!(?name, "a name that is not UTF-8: EINVAL");
        Errno(libc::EINVAL)
    })
}
