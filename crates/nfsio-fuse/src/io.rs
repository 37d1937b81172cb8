//! Regular files: open, create, read, write, flush, fsync and release.
//!
//! FUSE write-through over nfsio's write-back cache: a WRITE is answered once its bytes are
//! in the cache (`File::write_bytes_at`); FLUSH (every close(2)) and FSYNC make them
//! durable (sent and COMMITted) and answer the first write-back error as errno (ENOSPC,
//! EDQUOT, EIO), where the program can see it; RELEASE only drops the open file (a file
//! released with bytes still dirty, as after an mmap write, is written back in the
//! background by the client, which logs a failure).
//!
//! Open is close-to-open (see `consistency.rs`): a GETATTR (unless `nocto` and the cached
//! attributes are fresh), and FOPEN_KEEP_CACHE only for a file that did not change. A
//! handle opened O_APPEND writes at the end of the file as this client sees it (the size
//! revalidated with the server before each append), not at the kernel's offset, which
//! comes from its cached size; O_SYNC and O_DSYNC (and `noac`) writes return once durable:
//! into the cache, then the file synced (`File::sync_all`) before the reply, which the
//! cache sends as FILE_SYNC WRITEs when those bytes are all the file has pending (else
//! UNSTABLE WRITEs and a COMMIT).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fuser::{FileAttr, FopenFlags};
use nfsio_client::proto::nfs3::{CreateHow, CreateVerifier, Fattr, FileHandle, Sattr, SetTime};
use nfsio_client::{Advice, File};

use crate::core::Core;
use crate::error::{Errno, OpResult};
use crate::handles::{OpenFile, OpenMode};
use crate::notify::Invalidation;

/// An opened file: its `fh`, and the FOPEN flags of the reply.
pub struct Opened {
    /// The open file's `fh`.
    pub fh: u64,
    /// FOPEN_KEEP_CACHE (the file did not change since its pages were cached) and
    /// FOPEN_DIRECT_IO (a write-only open).
    pub flags: FopenFlags,
}

/// A file made by create, opened.
pub struct CreatedFile {
    /// Its entry (one kernel reference counted).
    pub attr: FileAttr,
    /// The open file's `fh`.
    pub fh: u64,
    /// The FOPEN flags of the reply (FOPEN_DIRECT_IO for a write-only open).
    pub flags: FopenFlags,
}

/// A verifier no other exclusive CREATE of this process uses (time, pid and a counter).
fn create_verifier() -> CreateVerifier {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = nanos ^ (u64::from(std::process::id()) << 40) ^ count.rotate_left(20);
    CreateVerifier(mixed.to_be_bytes())
}

impl Core {
    /// Opens node `ino` with open flags `flags` (close-to-open: see the module
    /// documentation; the client's cache drops its clean bytes if the file changed).
    pub async fn open(&self, ino: u64, flags: i32) -> OpResult<Opened> {
        let handle = self.handle(ino)?;
        let cached = (!self.settings.cto)
            .then(|| self.attrs.fresh(ino, Instant::now()))
            .flatten();
        let attributes = match cached {
            Some(attributes) => attributes,
            None => self.client.getattr(&handle).await?,
        };
        // A change is dropped by this open itself (no KEEP_CACHE) and by the client's
        // cache at `open_handle`.
        let keep_cache = self
            .attrs
            .open_keeps_cache(ino, &attributes, Instant::now());
        let label = format!("inode {ino}");
        let file = self.open_in_cache(handle, attributes, &label)?;
        let mode = OpenMode::of(
            flags,
            self.settings.writeback_cache,
            self.settings.sync_writes,
        );
        let fh = self.handles.insert_file(OpenFile { ino, file, mode });
        if !keep_cache {
            // The kernel's size and times may be stale too; the open reply cannot carry
            // the fresh ones.
            self.invalidator.attributes_now(ino);
        }
        Ok(Opened {
            fh,
            flags: mode.fopen_flags(keep_cache),
        })
    }

    /// CREATE of `name` in `parent` and opens it: EXCLUSIVE (by verifier, then SETATTR of
    /// the mode and times, as RFC 1813 asks) for O_EXCL, otherwise UNCHECKED with the mode (and size 0
    /// for O_TRUNC).
    pub async fn create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: i32,
    ) -> OpResult<CreatedFile> {
        let dir = self.handle(parent)?;
        let mode = mode & 0o7777;
        let exclusive = flags & libc::O_EXCL != 0;
        let how = if exclusive {
            CreateHow::Exclusive(create_verifier())
        } else {
            CreateHow::Unchecked(Sattr {
                mode: Some(mode),
                size: (flags & libc::O_TRUNC != 0).then_some(0),
                ..Sattr::default()
            })
        };
        self.attrs.changing(parent);
        let created = self.client.create(&dir, name, how).await?;
        let mut attributes = created.attributes;
        if exclusive {
            // The server may have kept the verifier in the times: set them too, as the
            // Linux client does.
            let sattr = Sattr {
                mode: Some(mode),
                atime: SetTime::ServerTime,
                mtime: SetTime::ServerTime,
                ..Sattr::default()
            };
            attributes = self
                .client
                .setattr(&created.handle, sattr, None)
                .await?
                .after;
        }
        let attributes = self.attributes_of(&created.handle, attributes).await?;
        let label = format!("{} (new)", name.escape_ascii());
        let file = self.open_in_cache(created.handle.clone(), attributes.clone(), &label)?;
        let attr = self.entry(&created.handle, &attributes);
        let mode = OpenMode::of(
            flags,
            self.settings.writeback_cache,
            self.settings.sync_writes,
        );
        let fh = self.handles.insert_file(OpenFile {
            ino: attr.ino.0,
            file,
            mode,
        });
        Ok(CreatedFile {
            attr,
            fh,
            flags: mode.fopen_flags(false),
        })
    }

    /// The file `handle` opened in nfsio's cache for one FUSE open. The kernel's page cache
    /// is the mount's cache of clean bytes (kept across opens of a file that did not change,
    /// FOPEN_KEEP_CACHE), so nfsio's cache lets clean bytes go once the kernel has read them
    /// past (`Advice::NoReuse`) and keeps what is dirty, in flight or read ahead: a file
    /// read through the mount is not cached twice, and the cache's buffers are reused.
    fn open_in_cache(&self, handle: FileHandle, attributes: Fattr, label: &str) -> OpResult<File> {
        let file = self.client.open_handle(handle, attributes, label)?;
        file.advise(Advice::NoReuse)?;
        Ok(file)
    }

    fn open_file(&self, fh: u64) -> OpResult<Arc<OpenFile>> {
        self.handles.file(fh).ok_or(Errno(libc::EBADF))
    }

    /// READ of up to `size` bytes at `offset` through the cache.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> OpResult<Bytes> {
        self.read_requests.fetch_add(1, Ordering::Relaxed);
        let open = self.open_file(fh)?;
        Ok(open.file.read_bytes_at(offset, size as usize).await?)
    }

    /// WRITE of `data` at `offset` into the cache (at the end of the file for O_APPEND,
    /// durable before the reply for O_SYNC); returns the bytes taken (all of them).
    pub async fn write(&self, fh: u64, offset: u64, data: Bytes) -> OpResult<u32> {
        let open = self.open_file(fh)?;
        let len = u32::try_from(data.len()).map_err(|_| Errno(libc::EINVAL))?;
        let at = if open.mode.append {
            self.end_of_file(&open).await?
        } else {
            offset
        };
        self.attrs.wrote(open.ino, SystemTime::now());
        open.file.write_bytes_at(data, at).await?;
        if at != offset {
            // The kernel put the bytes in its pages at its own offset: those pages are wrong.
            tracing::debug!(
                ino = open.ino,
                offset,
                at,
                "O_APPEND write moved to the end"
            );
            self.invalidator.queue(Invalidation::Node(open.ino));
        }
        if open.mode.sync {
            open.file.sync_all().await?;
            self.written_back(open.ino);
        }
        Ok(len)
    }

    /// The end of `open`'s file as its writer sees it: the server's size (a GETATTR, as
    /// Linux revalidates the size before an append), grown by this client's cached writes.
    async fn end_of_file(&self, open: &OpenFile) -> OpResult<u64> {
        let attributes = self.client.getattr(open.file.handle()).await?;
        open.file.revalidate(&attributes)?;
        self.attr(open.ino, &attributes);
        Ok(open.file.size_bytes()?)
    }

    /// FLUSH (a close) or FSYNC: the file's bytes durable, or the first write-back error.
    pub async fn sync(&self, fh: u64) -> OpResult<()> {
        let open = self.open_file(fh)?;
        open.file.sync_all().await?;
        self.written_back(open.ino);
        Ok(())
    }

    /// `ino`'s cached writes reached the server, whose WRITEs moved its mtime and ctime:
    /// the kernel's copy of the attributes (FUSE refreshes none after an FSYNC or FLUSH)
    /// is dropped so that the next stat asks, instead of living out its lifetime.
    fn written_back(&self, ino: u64) {
        if self.attrs.flushed(ino) {
            self.invalidator.attributes_now(ino);
        }
    }

    /// RELEASE: forgets the open file (no error can reach anyone here).
    pub fn release(&self, fh: u64) {
        drop(self.handles.remove_file(fh));
    }
}
