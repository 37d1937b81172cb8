//! The open handles: FUSE file handles (`fh`) of open files and of directory listings.
//!
//! An open file is an nfsio [`File`] (the client's write-back cache, shared by every open of
//! the same NFS handle); a listing is the directory's READDIRPLUS stream with a window of
//! the entries the kernel is reading (see `listing.rs`). The files renamed away while open
//! (silly rename, see `silly.rs`) are kept here too, next to the open counts they hang on.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fuser::FopenFlags;
use nfsio_client::{DirEntry, File, ReadDir};

use crate::hidden::SillyTable;

/// How a file was opened, as far as its writes care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenMode {
    /// O_APPEND: every write lands at the end of the file.
    pub append: bool,
    /// O_SYNC or O_DSYNC: every write is durable before it returns.
    pub sync: bool,
    /// FOPEN_DIRECT_IO: a write-only open's writes go from the program's buffer to nfsio's
    /// cache without a copy into the kernel's pages (see `OpenMode::of`).
    pub direct_io: bool,
}

impl OpenMode {
    /// The mode of open flags `flags` on a mount with the kernel's writeback cache on or off
    /// (with it the kernel places appends and syncs O_SYNC writes itself) and every write
    /// synchronous or not (`noac`).
    ///
    /// A write-only open (without the kernel's writeback cache) is direct I/O: nothing can
    /// read or map through it, and without FUSE's writeback cache every write(2) is a WRITE
    /// request anyway, so its bytes gain nothing from a stay in the kernel's pages; skipping
    /// them saves a copy and the memory of a second cached copy of the file. The kernel
    /// keeps the pages other opens of the file cached coherent: it writes back and drops
    /// the range of each direct write first.
    pub fn of(flags: i32, writeback_cache: bool, sync_writes: bool) -> Self {
        let kernel_does_it = writeback_cache;
        Self {
            append: flags & libc::O_APPEND != 0 && !kernel_does_it,
            sync: (flags & (libc::O_SYNC | libc::O_DSYNC) != 0 || sync_writes) && !kernel_does_it,
            direct_io: flags & libc::O_ACCMODE == libc::O_WRONLY && !kernel_does_it,
        }
    }

    /// The FOPEN flags this mode asks of the kernel, with FOPEN_KEEP_CACHE when `keep_cache`.
    pub fn fopen_flags(self, keep_cache: bool) -> FopenFlags {
        let mut flags = FopenFlags::empty();
        if keep_cache {
            flags |= FopenFlags::FOPEN_KEEP_CACHE;
        }
        if self.direct_io {
            flags |= FopenFlags::FOPEN_DIRECT_IO;
        }
        flags
    }
}

/// An open regular file of node `ino`.
pub struct OpenFile {
    /// The node the file was opened as.
    pub ino: u64,
    /// The file in nfsio's cache.
    pub file: File,
    /// How it was opened (O_APPEND, O_SYNC).
    pub mode: OpenMode,
}

/// A directory listing being read by the kernel: a window of the server's entries (without
/// `.` and `..`), from the one at index `base` on, and the stream of the rest.
pub struct Listing {
    /// The rest of the listing, until its end was read.
    pub stream: Option<ReadDir>,
    /// Entries `base..base + entries.len()` of the listing.
    pub entries: VecDeque<DirEntry>,
    /// The index of `entries[0]` in the listing.
    pub base: usize,
}

/// The open files and listings of one mount.
#[derive(Default)]
pub struct Handles {
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    listings: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Listing>>>>,
    next: AtomicU64,
    /// Open files that were unlinked: their hidden names.
    pub silly: SillyTable,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Handles {
    fn next_fh(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers an open file; returns its `fh`.
    pub fn insert_file(&self, file: OpenFile) -> u64 {
        let fh = self.next_fh();
        locked(&self.files).insert(fh, Arc::new(file));
        fh
    }

    /// The open file `fh`.
    pub fn file(&self, fh: u64) -> Option<Arc<OpenFile>> {
        locked(&self.files).get(&fh).cloned()
    }

    /// Some open file of node `ino` (for a size that includes cached writes).
    pub fn file_of(&self, ino: u64) -> Option<Arc<OpenFile>> {
        locked(&self.files)
            .values()
            .find(|open| open.ino == ino)
            .cloned()
    }

    /// How many open files node `ino` has.
    pub fn opens_of(&self, ino: u64) -> usize {
        locked(&self.files)
            .values()
            .filter(|open| open.ino == ino)
            .count()
    }

    /// Drops the open file `fh` from the table; returns it.
    pub fn remove_file(&self, fh: u64) -> Option<Arc<OpenFile>> {
        locked(&self.files).remove(&fh)
    }

    /// Open files.
    pub fn files_open(&self) -> usize {
        locked(&self.files).len()
    }

    /// Registers a listing; returns its `fh`.
    pub fn insert_listing(&self, stream: ReadDir) -> u64 {
        let fh = self.next_fh();
        let listing = Listing {
            stream: Some(stream),
            entries: VecDeque::new(),
            base: 0,
        };
        locked(&self.listings).insert(fh, Arc::new(tokio::sync::Mutex::new(listing)));
        fh
    }

    /// The listing `fh`.
    pub fn listing(&self, fh: u64) -> Option<Arc<tokio::sync::Mutex<Listing>>> {
        locked(&self.listings).get(&fh).cloned()
    }

    /// Drops the listing `fh`.
    pub fn remove_listing(&self, fh: u64) {
        locked(&self.listings).remove(&fh);
    }
}
