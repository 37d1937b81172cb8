//! nfsio's attribute cache: what the mount last saw of each node's attributes, how long
//! they may be trusted (the Linux NFS client's adaptive lifetime), whose change a new
//! value shows (ours or another client's), and whether the kernel's cached pages of a file
//! still match the server (close-to-open's FOPEN_KEEP_CACHE).
//!
//! Who caches what: the **kernel** caches attributes and names (dentries) for the TTLs we
//! put in each reply, and the file's pages until an open without FOPEN_KEEP_CACHE or an
//! invalidation from us; it answers stat(2) from its cache while the TTL runs. **nfsio**
//! keeps, per node, the attributes it last saw and their lifetime: the lifetime is the TTL
//! the kernel gets (so the kernel's cache is the attribute cache of nfs(5)); the attributes
//! let a new value be compared with the old (a change not made through this mount means
//! another client's: the kernel's pages and attributes are invalidated, off the request
//! path), and let an open skip its GETATTR under `nocto`. A GETATTR the kernel sends
//! always goes to the server: the kernel only sends one when its own copy expired or was
//! invalidated by an operation of its own.
//!
//! The lifetime, as Linux's `attrtimeo`: it starts at `acregmin` (files) or `acdirmin`
//! (directories), doubles each time the attributes are fetched again and found unchanged
//! after it ran out, goes back to the minimum on any change, and never exceeds the maximum.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use nfsio_client::proto::nfs3::{Fattr, FileType, NfsTime, WccAttr};

use crate::attr::nfs_time;

/// The attribute-cache lifetimes (nfs(5)'s `acregmin`, `acregmax`, `acdirmin`,
/// `acdirmax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrTimeouts {
    /// Shortest lifetime of a regular file's (or symlink's, or device's) attributes.
    pub reg_min: Duration,
    /// Longest lifetime of a regular file's attributes.
    pub reg_max: Duration,
    /// Shortest lifetime of a directory's attributes (and of the names in it).
    pub dir_min: Duration,
    /// Longest lifetime of a directory's attributes.
    pub dir_max: Duration,
}

impl AttrTimeouts {
    /// The Linux NFS client's defaults: 3/60 s for files, 30/60 s for directories.
    pub const LINUX: Self = Self {
        reg_min: Duration::from_secs(3),
        reg_max: Duration::from_secs(60),
        dir_min: Duration::from_secs(30),
        dir_max: Duration::from_secs(60),
    };

    /// All four lifetimes `lifetime` (`actimeo=`; zero is `noac`'s attribute half).
    pub const fn all(lifetime: Duration) -> Self {
        Self {
            reg_min: lifetime,
            reg_max: lifetime,
            dir_min: lifetime,
            dir_max: lifetime,
        }
    }

    /// The (min, max) lifetimes of a node of `file_type`.
    fn bounds(&self, file_type: FileType) -> (Duration, Duration) {
        match file_type {
            FileType::Directory => (self.dir_min, self.dir_max.max(self.dir_min)),
            _ => (self.reg_min, self.reg_max.max(self.reg_min)),
        }
    }
}

/// What identifies a version of a file's contents, as NFS clients compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size_bytes: u64,
    mtime: NfsTime,
    ctime: NfsTime,
}

impl Stamp {
    fn of(attributes: &Fattr) -> Self {
        Self {
            size_bytes: attributes.size,
            mtime: attributes.mtime,
            ctime: attributes.ctime,
        }
    }

    fn of_wcc(before: &WccAttr) -> Self {
        Self {
            size_bytes: before.size,
            mtime: before.mtime,
            ctime: before.ctime,
        }
    }
}

/// Changes of our own the next attributes of a node may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// None: a change is another client's.
    None,
    /// Written through the mount, perhaps not all on the server yet.
    Writing,
    /// Written and then flushed: the next attributes seen show all of it.
    Flushed,
}

#[derive(Debug, Clone)]
struct Cached {
    attributes: Fattr,
    seen_at: Instant,
    lifetime: Duration,
    own: Own,
    /// Another client changed the file since the kernel's pages were filled: the next open
    /// must not keep them.
    pages_stale: bool,
    /// This client's clock at its last write through the mount, until the server's mtime
    /// has caught up with it or a SETATTR set the times (see [`AttrCache::written_view`]).
    written_at: Option<NfsTime>,
}

/// What a new value of a node's attributes showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Nothing was cached for the node (or it was another object).
    First,
    /// The same size, mtime and ctime as before.
    Unchanged,
    /// A change made through this mount.
    ChangedByUs,
    /// A change nobody on this mount made: another client's.
    ChangedElsewhere,
}

/// The most names remembered per directory for invalidation; past it, names live out
/// their lifetime in the kernel.
const MAX_NAMES_PER_DIR: usize = 1024;

/// The attribute cache of one mount; see the module documentation.
pub struct AttrCache {
    timeouts: AttrTimeouts,
    nodes: Mutex<HashMap<u64, Cached>>,
    /// Names the kernel was told about (looked up, found or not) per directory: what to
    /// drop when another client changes the directory, as Linux drops a directory's
    /// cached lookups when its mtime changes.
    names: Mutex<HashMap<u64, HashSet<Vec<u8>>>>,
}

impl AttrCache {
    /// An empty cache with these lifetimes.
    pub fn new(timeouts: AttrTimeouts) -> Self {
        Self {
            timeouts,
            nodes: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
        }
    }

    fn nodes(&self) -> MutexGuard<'_, HashMap<u64, Cached>> {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `attributes` of node `ino`, just from the server, at `now`.
    pub fn observe(&self, ino: u64, attributes: &Fattr, now: Instant) -> Observed {
        let (min, max) = self.timeouts.bounds(attributes.file_type);
        let mut nodes = self.nodes();
        let Some(cached) = nodes
            .get_mut(&ino)
            .filter(|cached| cached.attributes.fileid == attributes.fileid)
        else {
            nodes.insert(ino, fresh_entry(attributes, now, min));
            return Observed::First;
        };
        let observed = if Stamp::of(&cached.attributes) == Stamp::of(attributes) {
            if now >= cached.seen_at + cached.lifetime {
                cached.lifetime = (cached.lifetime * 2).clamp(min, max);
            }
            Observed::Unchanged
        } else {
            cached.lifetime = min;
            if cached.own == Own::None {
                cached.pages_stale = true;
                Observed::ChangedElsewhere
            } else {
                Observed::ChangedByUs
            }
        };
        if cached.own == Own::Flushed {
            cached.own = Own::None;
        }
        cached.lifetime = cached.lifetime.clamp(min, max);
        cached.attributes = attributes.clone();
        cached.seen_at = now;
        observed
    }

    /// Records the weak cache consistency data of an operation of ours on node `ino`: pre-op
    /// attributes that differ from the cached ones mean another client changed the node
    /// before our operation (`ChangedElsewhere`); the post-op attributes become the cached
    /// ones.
    pub fn observe_wcc(
        &self,
        ino: u64,
        before: Option<&WccAttr>,
        after: Option<&Fattr>,
        now: Instant,
    ) -> Observed {
        let elsewhere = {
            let mut nodes = self.nodes();
            match (nodes.get_mut(&ino), before) {
                // Before the operation: only changes of ours not yet seen explain it.
                (Some(cached), Some(before))
                    if Stamp::of(&cached.attributes) != Stamp::of_wcc(before)
                        && cached.own == Own::None =>
                {
                    cached.pages_stale = true;
                    true
                }
                _ => false,
            }
        };
        let Some(after) = after else {
            return if elsewhere {
                Observed::ChangedElsewhere
            } else {
                Observed::Unchanged
            };
        };
        // The operation itself is ours: the post-op attributes are no news.
        self.changing(ino);
        let observed = self.observe(ino, after, now);
        if elsewhere {
            Observed::ChangedElsewhere
        } else {
            observed
        }
    }

    fn mark(&self, ino: u64, change: impl FnOnce(&mut Cached)) {
        if let Some(cached) = self.nodes().get_mut(&ino) {
            change(cached);
        }
    }

    /// An operation of ours that changes the node and is done before its attributes are
    /// seen again (a SETATTR, a CREATE in a directory): the next change seen is ours.
    pub fn changing(&self, ino: u64) {
        self.mark(ino, |cached| {
            if cached.own == Own::None {
                cached.own = Own::Flushed;
            }
        });
    }

    /// A write through the mount at `now` (this client's clock): changes seen until it is
    /// flushed are ours, and the file's mtime and ctime are at least `now` from here on.
    pub fn wrote(&self, ino: u64, now: SystemTime) {
        // A clock past 2106 (nfstime3's end) leaves the server's times alone.
        let now = nfs_time(now).ok();
        self.mark(ino, |cached| {
            cached.own = Own::Writing;
            cached.written_at = now.or(cached.written_at);
        });
    }

    /// The server's `attributes` of node `ino` with the times its writer sees: a write
    /// whose bytes are still in nfsio's cache has not moved the server's mtime and ctime
    /// yet, so both are at least the time of the last write through the mount (POSIX: a
    /// write marks both for update). Once the server's mtime has caught up (its WRITEs
    /// arrived), the server's times are shown again. The later of the two keeps the times
    /// from going back when the WRITEs land within the server clock's granularity.
    pub fn written_view(&self, ino: u64, attributes: &mut Fattr) {
        let mut nodes = self.nodes();
        let Some(cached) = nodes.get_mut(&ino) else {
            return;
        };
        let Some(written_at) = cached.written_at else {
            return;
        };
        if attributes.mtime >= written_at {
            cached.written_at = None;
            return;
        }
        attributes.mtime = written_at;
        attributes.ctime = attributes.ctime.max(written_at);
    }

    /// A SETATTR set node `ino`'s times (after its cached writes were sent): the server's
    /// times are the file's from here on.
    pub fn times_set(&self, ino: u64) {
        self.mark(ino, |cached| cached.written_at = None);
    }

    /// The node's writes are on the server: the next change seen is still ours, later ones
    /// are not. True when there were writes since the last flush (the server's times moved,
    /// so the kernel's copy of the attributes is out of date).
    pub fn flushed(&self, ino: u64) -> bool {
        let mut wrote = false;
        self.mark(ino, |cached| {
            if cached.own == Own::Writing {
                cached.own = Own::Flushed;
                wrote = true;
            }
        });
        wrote
    }

    /// How long the kernel may keep node `ino`'s attributes: its current lifetime (zero for
    /// a node not cached).
    pub fn lifetime(&self, ino: u64) -> Duration {
        self.nodes()
            .get(&ino)
            .map_or(Duration::ZERO, |cached| cached.lifetime)
    }

    /// The cached attributes of `ino` while their lifetime runs.
    pub fn fresh(&self, ino: u64, now: Instant) -> Option<Fattr> {
        self.nodes()
            .get(&ino)
            .filter(|cached| now < cached.seen_at + cached.lifetime)
            .map(|cached| cached.attributes.clone())
    }

    /// At an open, with `attributes` just fetched (recorded as [`AttrCache::observe`]
    /// does): true when the kernel may keep the file's cached pages (FOPEN_KEEP_CACHE) —
    /// the file has the size, mtime and ctime it had when last seen and nobody else changed
    /// it since. When false the kernel drops the pages at this open, so they are no longer
    /// stale.
    pub fn open_keeps_cache(&self, ino: u64, attributes: &Fattr, now: Instant) -> bool {
        let keep = self
            .nodes()
            .get(&ino)
            .filter(|cached| cached.attributes.fileid == attributes.fileid)
            .is_some_and(|cached| {
                !cached.pages_stale && Stamp::of(&cached.attributes) == Stamp::of(attributes)
            });
        self.observe(ino, attributes, now);
        if !keep {
            self.mark(ino, |cached| cached.pages_stale = false);
        }
        keep
    }

    fn names(&self) -> MutexGuard<'_, HashMap<u64, HashSet<Vec<u8>>>> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A lookup of `name` in directory `parent` was answered (the kernel may cache it).
    pub fn looked_up(&self, parent: u64, name: &[u8]) {
        let mut names = self.names();
        let known = names.entry(parent).or_default();
        if known.len() < MAX_NAMES_PER_DIR {
            known.insert(name.to_owned());
        }
    }

    /// The names of directory `parent` the kernel may hold, forgotten here (for their
    /// invalidation).
    pub fn take_names(&self, parent: u64) -> Vec<Vec<u8>> {
        self.names()
            .remove(&parent)
            .map(|names| names.into_iter().collect())
            .unwrap_or_default()
    }

    /// Drops what is cached of a node the kernel forgot.
    pub fn forget(&self, ino: u64) {
        self.nodes().remove(&ino);
        self.names().remove(&ino);
    }
}

fn fresh_entry(attributes: &Fattr, now: Instant, lifetime: Duration) -> Cached {
    Cached {
        attributes: attributes.clone(),
        seen_at: now,
        lifetime,
        own: Own::None,
        pages_stale: false,
        written_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, mtime_s: u32) -> Fattr {
        Fattr {
            file_type: FileType::Regular,
            size,
            fileid: 7,
            mtime: NfsTime {
                seconds: mtime_s,
                nseconds: 0,
            },
            ..Fattr::default()
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_lifetime_doubles_while_unchanged_and_resets_on_a_change() {
        let cache = AttrCache::new(AttrTimeouts::LINUX);
        let t0 = Instant::now();
        assert_eq!(cache.observe(2, &file(1, 1), t0), Observed::First);
        assert_eq!(cache.lifetime(2), 3 * S);
        // Seen again before it ran out: no growth.
        assert_eq!(cache.observe(2, &file(1, 1), t0 + S), Observed::Unchanged);
        assert_eq!(cache.lifetime(2), 3 * S);
        let mut now = t0 + S;
        for expected in [6, 12, 24, 48, 60, 60] {
            now += cache.lifetime(2);
            assert_eq!(cache.observe(2, &file(1, 1), now), Observed::Unchanged);
            assert_eq!(cache.lifetime(2), expected * S);
        }
        assert!(cache.fresh(2, now + 59 * S).is_some());
        assert!(cache.fresh(2, now + 60 * S).is_none());
        assert_eq!(
            cache.observe(2, &file(2, 1), now),
            Observed::ChangedElsewhere
        );
        assert_eq!(cache.lifetime(2), 3 * S);
        // A directory uses acdir*.
        let dir = Fattr {
            file_type: FileType::Directory,
            ..file(0, 0)
        };
        cache.observe(3, &dir, now);
        assert_eq!(cache.lifetime(3), 30 * S);
    }

    #[test]
    fn our_own_changes_are_not_another_clients() {
        let cache = AttrCache::new(AttrTimeouts::LINUX);
        let t0 = Instant::now();
        cache.observe(2, &file(1, 1), t0);
        cache.wrote(2, SystemTime::UNIX_EPOCH);
        assert_eq!(cache.observe(2, &file(2, 2), t0), Observed::ChangedByUs);
        // Write-back still landing: ours too, until flushed and seen once more.
        assert_eq!(cache.observe(2, &file(3, 3), t0), Observed::ChangedByUs);
        assert!(cache.flushed(2));
        assert!(!cache.flushed(2), "nothing written since");
        assert_eq!(cache.observe(2, &file(4, 4), t0), Observed::ChangedByUs);
        assert_eq!(
            cache.observe(2, &file(5, 5), t0),
            Observed::ChangedElsewhere
        );
    }

    #[test]
    fn cached_writes_move_mtime_and_ctime_until_the_server_catches_up() {
        let cache = AttrCache::new(AttrTimeouts::LINUX);
        let t0 = Instant::now();
        cache.observe(2, &file(1, 10), t0);
        cache.wrote(2, SystemTime::UNIX_EPOCH + Duration::from_secs(20));
        let at_20 = NfsTime {
            seconds: 20,
            nseconds: 0,
        };
        // The server has not seen the write: both times are the writer's.
        let mut seen = file(1, 10);
        cache.written_view(2, &mut seen);
        assert_eq!((seen.mtime, seen.ctime), (at_20, at_20));
        // The server's WRITE landed at 25: its times again, and from then on.
        let landed = file(1, 25);
        let mut seen = landed.clone();
        cache.written_view(2, &mut seen);
        assert_eq!(seen, landed);
        let mut seen = file(1, 10);
        cache.written_view(2, &mut seen);
        assert_eq!(seen.mtime.seconds, 10, "the write no longer counts");
        // A SETATTR of the times overrides a write before it.
        cache.wrote(2, SystemTime::UNIX_EPOCH + Duration::from_secs(30));
        cache.times_set(2);
        let mut seen = file(1, 5);
        cache.written_view(2, &mut seen);
        assert_eq!(seen.mtime.seconds, 5);
    }

    #[test]
    fn pre_op_attributes_that_differ_show_another_clients_change() {
        let cache = AttrCache::new(AttrTimeouts::LINUX);
        let t0 = Instant::now();
        cache.observe(2, &file(1, 1), t0);
        let same = WccAttr {
            size: 1,
            mtime: file(1, 1).mtime,
            ctime: NfsTime::default(),
        };
        assert_eq!(
            cache.observe_wcc(2, Some(&same), Some(&file(1, 2)), t0),
            Observed::ChangedByUs
        );
        assert!(cache.open_keeps_cache(2, &file(1, 2), t0));
        let other = WccAttr { size: 9, ..same };
        assert_eq!(
            cache.observe_wcc(2, Some(&other), Some(&file(9, 3)), t0),
            Observed::ChangedElsewhere
        );
        // The stamp matches now, but the pages were filled before the other change.
        assert!(!cache.open_keeps_cache(2, &file(9, 3), t0));
        assert!(
            cache.open_keeps_cache(2, &file(9, 3), t0),
            "dropped at that open"
        );
    }

    #[test]
    fn keep_cache_only_when_the_file_did_not_change() {
        let cache = AttrCache::new(AttrTimeouts::LINUX);
        let t0 = Instant::now();
        assert!(
            !cache.open_keeps_cache(2, &file(1, 1), t0),
            "nothing cached"
        );
        assert!(cache.open_keeps_cache(2, &file(1, 1), t0));
        assert!(!cache.open_keeps_cache(2, &file(1, 2), t0), "mtime changed");
        assert!(
            cache.open_keeps_cache(2, &file(1, 2), t0),
            "unchanged since that open"
        );
        let other_object = Fattr {
            fileid: 8,
            ..file(1, 2)
        };
        assert!(!cache.open_keeps_cache(2, &other_object, t0));
    }
}
