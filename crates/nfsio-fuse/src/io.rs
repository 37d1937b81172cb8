//! Regular files: open, create, read, write, flush, fsync and release.
//!
//! FUSE write-through over nfsio's write-back cache: a WRITE is answered once its bytes are
//! in the cache (`File::write_bytes_at`); FLUSH (every close(2)) and FSYNC make them
//! durable (sent and COMMITted) and answer the first write-back error as errno (ENOSPC,
//! EDQUOT, EIO), where the program can see it; RELEASE only drops the open file (a file
//! released with bytes still dirty, as after an mmap write, is written back in the
//! background by the client, which logs a failure).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fuser::FileAttr;
use nfsio_client::proto::nfs3::{CreateHow, CreateVerifier, Sattr, SetTime};

use crate::core::Core;
use crate::error::{Errno, OpResult};
use crate::handles::OpenFile;

/// A file made by create, opened.
pub struct CreatedFile {
    /// Its entry (one kernel reference counted).
    pub attr: FileAttr,
    /// The open file's `fh`.
    pub fh: u64,
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
    /// Opens node `ino`: a fresh GETATTR (close-to-open: the client's cache drops clean
    /// bytes if the file changed), then a `File` in the cache.
    pub async fn open(&self, ino: u64) -> OpResult<u64> {
        let handle = self.handle(ino)?;
        let attributes = self.client.getattr(&handle).await?;
        let label = format!("inode {ino}");
        let file = self.client.open_handle(handle, attributes, &label)?;
        Ok(self.handles.insert_file(OpenFile { ino, file }))
    }

    /// CREATE of `name` in `parent` and opens it: EXCLUSIVE (by verifier, then SETATTR of
    /// the mode and times, as RFC 1813 asks) for O_EXCL, otherwise UNCHECKED with the mode (and size 0
    /// for O_TRUNC).
    pub async fn create(
        &self,
        parent: u64,
        name: &str,
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
        let label = format!("{name} (new)");
        let file = self
            .client
            .open_handle(created.handle.clone(), attributes.clone(), &label)?;
        let attr = self.entry(&created.handle, &attributes);
        let fh = self.handles.insert_file(OpenFile {
            ino: attr.ino.0,
            file,
        });
        Ok(CreatedFile { attr, fh })
    }

    fn open_file(&self, fh: u64) -> OpResult<Arc<OpenFile>> {
        self.handles.file(fh).ok_or(Errno(libc::EBADF))
    }

    /// READ of up to `size` bytes at `offset` through the cache.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> OpResult<Bytes> {
        let open = self.open_file(fh)?;
        Ok(open.file.read_bytes_at(offset, size as usize).await?)
    }

    /// WRITE of `data` at `offset` into the cache; returns the bytes taken (all of them).
    pub async fn write(&self, fh: u64, offset: u64, data: Bytes) -> OpResult<u32> {
        let open = self.open_file(fh)?;
        let len = u32::try_from(data.len()).map_err(|_| Errno(libc::EINVAL))?;
        open.file.write_bytes_at(data, offset).await?;
        Ok(len)
    }

    /// FLUSH (a close) or FSYNC: the file's bytes durable, or the first write-back error.
    pub async fn sync(&self, fh: u64) -> OpResult<()> {
        let open = self.open_file(fh)?;
        open.file.sync_all().await?;
        Ok(())
    }

    /// RELEASE: forgets the open file (no error can reach anyone here).
    pub fn release(&self, fh: u64) {
        drop(self.handles.remove_file(fh));
    }
}
