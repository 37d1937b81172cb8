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

use std::ops::Deref;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fuser::FileAttr;
use nfsio_client::Client;
use nfsio_client::proto::nfs3::{Fattr, FileHandle, WccData};

use crate::attr::file_attr;
use crate::callers::Callers;
pub use crate::consistency::AttrTimeouts;
use crate::consistency::{AttrCache, Observed};
use crate::error::{Errno, OpResult};
use crate::handles::Handles;
use crate::inodes::InodeTable;
use crate::notify::{Invalidation, Invalidator};

/// Which names the kernel may cache (`lookupcache=`, as the Linux NFS client names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupCache {
    /// Names that exist and names that do not (the default).
    #[default]
    All,
    /// Only names that exist: a name created elsewhere shows at the next lookup.
    Positive,
    /// None: every lookup asks the server.
    None,
}

/// The settings of one mount that the operations read (the consistency options of
/// nfs(5); see the README's "Consistency and caching").
#[derive(Debug, Clone)]
pub struct Settings {
    /// The attribute-cache lifetimes (`acregmin=` .. `acdirmax=`, `actimeo=`). All zero
    /// under `noac`.
    pub attr_timeouts: AttrTimeouts,
    /// Which names the kernel may cache; they live as long as a directory's attributes
    /// (`acdirmin`).
    pub lookup_cache: LookupCache,
    /// Close-to-open (`cto`, the default): every open asks the server for the file's
    /// attributes; `nocto` reuses them while their lifetime runs.
    pub cto: bool,
    /// Every write is durable before it returns (`noac`, as in Linux; or `sync`).
    pub sync_writes: bool,
    /// The kernel's own writeback cache (`writeback_cache`): single-client only.
    pub writeback_cache: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            attr_timeouts: AttrTimeouts::LINUX,
            lookup_cache: LookupCache::All,
            cto: true,
            sync_writes: false,
            writeback_cache: false,
        }
    }
}

impl Settings {
    /// Settings whose every lifetime is `lifetime` (as `-o actimeo=`).
    pub fn with_lifetimes(lifetime: Duration) -> Self {
        Self {
            attr_timeouts: AttrTimeouts::all(lifetime),
            ..Self::default()
        }
    }

    /// How long the kernel may keep a name that exists.
    pub fn entry_ttl(&self) -> Duration {
        match self.lookup_cache {
            LookupCache::All | LookupCache::Positive => self.attr_timeouts.dir_min,
            LookupCache::None => Duration::ZERO,
        }
    }

    /// How long the kernel may keep a name that does not exist.
    pub fn negative_ttl(&self) -> Duration {
        match self.lookup_cache {
            LookupCache::All => self.attr_timeouts.dir_min,
            LookupCache::Positive | LookupCache::None => Duration::ZERO,
        }
    }

    /// The one lifetime of a listing's entries (names and attributes alike): the shorter
    /// of the entry lifetime and the smallest attribute lifetime.
    pub fn ttl(&self) -> Duration {
        let timeouts = &self.attr_timeouts;
        self.entry_ttl().min(timeouts.reg_min).min(timeouts.dir_min)
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
    /// What nfsio last saw of each node's attributes (see `consistency.rs`).
    pub attrs: AttrCache,
    /// Kernel cache invalidations, sent from a thread of their own.
    pub invalidator: Invalidator,
    /// READ requests the kernel sent (its page cache missed), for tests.
    pub read_requests: AtomicU64,
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
            attrs: AttrCache::new(settings.attr_timeouts),
            settings,
            invalidator: Invalidator::default(),
            read_requests: AtomicU64::new(0),
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

    /// The attributes of node `ino` as the kernel gets them, just from the server: recorded
    /// in the attribute cache, and another client's change is invalidated. The hidden names
    /// of a file unlinked while open (silly rename) are not counted as links: to the
    /// program that unlinked it the file has lost that name (fstat shows 0 links, as POSIX
    /// and pjdfstest's `unlink::open_file_not_freed` expect).
    pub fn attr(&self, ino: u64, attributes: &Fattr) -> FileAttr {
        if self.attrs.observe(ino, attributes, Instant::now()) == Observed::ChangedElsewhere {
            self.changed_elsewhere(ino, attributes);
        }
        let mut attr = file_attr(ino, attributes, self.client.wsize_bytes());
        let hidden = self.handles.silly.len_of(ino);
        if hidden > 0 {
            let hidden = u32::try_from(hidden).unwrap_or(u32::MAX);
            attr.nlink = attr.nlink.saturating_sub(hidden);
        }
        attr
    }

    /// How long the kernel may keep node `ino`'s attributes (its attribute-cache lifetime).
    pub fn attr_ttl(&self, ino: u64) -> Duration {
        self.attrs.lifetime(ino)
    }

    /// Another client changed node `ino` (now `attributes`): the clean bytes nfsio's cache
    /// holds of it, the kernel's pages and attributes and, for a directory, the names the
    /// kernel holds in it are dropped (the kernel's off the request path).
    pub fn changed_elsewhere(&self, ino: u64, attributes: &Fattr) {
        tracing::debug!(ino, "changed by another client: invalidating");
        for name in self.attrs.take_names(ino) {
            self.invalidator
                .queue(Invalidation::Entry { parent: ino, name });
        }
        if let Some(open) = self.handles.file_of(ino)
            && let Err(error) = open.file.revalidate(attributes)
        {
            tracing::debug!(ino, %error, "revalidating the cache");
        }
        self.invalidator.queue(Invalidation::Node(ino));
    }

    /// The weak cache consistency data of an operation on node `ino`: a pre-op value that
    /// differs from the cached attributes is another client's change.
    pub fn wcc(&self, ino: u64, wcc: &WccData) {
        let after = wcc.after.as_ref();
        let observed = self
            .attrs
            .observe_wcc(ino, wcc.before.as_ref(), after, Instant::now());
        if observed == Observed::ChangedElsewhere {
            match after {
                Some(after) => self.changed_elsewhere(ino, after),
                None => self.invalidator.queue(Invalidation::Node(ino)),
            }
        }
    }

    /// The kernel dropped `count` references to `ino` (FORGET).
    pub fn forget(&self, ino: u64, count: u64) {
        let mut inodes = self.inodes();
        inodes.forget(ino, count);
        if inodes.handle(ino).is_none() {
            self.attrs.forget(ino);
        }
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
