//! The local store's operations on file content: READ (copied into pooled buffers, or
//! spliced into a pipe), WRITE and COMMIT with the syncs their stability asks for, and
//! truncation.
//!
//! Each one goes through the store's cache of open files (`files.rs`): a descriptor the
//! server opened, which carries no permission, so every call first asks the kernel, as the
//! caller, whether the caller may (or is the owner: knfsd's owner override, see the store's
//! documentation). Writes and truncations then run as the caller, so that the kernel clears
//! set-id bits as for the caller's own; a failed write or sync is reported with
//! [`StoreError::write_failed`] so that the server changes its write verifier.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use nfsio_proto::nfs3::{Nfs3Status, StableHow, WccData};

use super::super::sys::{self, Stat};
use super::{LocalStore, denied, lock};
use crate::splice::Spliced;
use crate::storage::{
    Caller, FileId, ReadOutcome, SplicedRead, StoreError, StoreResult, WriteOutcome, wcc_attr,
};

/// READs at least this large are spliced when they can be (see `crate::splice`).
const SPLICE_READ_BYTES: usize = 16 * 1024;

impl LocalStore {
    /// The open regular file `id` (from the cache, or opened by the server and cached), with
    /// its current attributes. Opening it carries no permission: see the checks below.
    fn open_file(&self, id: FileId, need_write: bool) -> StoreResult<(Arc<File>, Stat)> {
        let cached = lock(&self.files).get(id, need_write);
        if let Some(file) = cached {
            let st = sys::stat_fd(file.as_fd())?;
            if st.nlink == 0 {
                self.forget(id);
                return denied(Nfs3Status::Stale);
            }
            return Ok((file, st));
        }
        let object = self.open_id(id)?;
        match object.stat.file_type_bits() {
            libc::S_IFREG => {}
            libc::S_IFDIR => return denied(Nfs3Status::IsDir),
            _ => return denied(Nfs3Status::Inval),
        }
        let flags = libc::O_NONBLOCK | libc::O_NOCTTY;
        let (fd, writable) = match (!self.options.read_only)
            .then(|| sys::reopen(object.fd.as_fd(), libc::O_RDWR | flags))
        {
            Some(Ok(fd)) => (fd, true),
            Some(Err(err)) if need_write => return Err(err.into()),
            _ => (
                sys::reopen(object.fd.as_fd(), libc::O_RDONLY | flags)?,
                false,
            ),
        };
        let st = sys::stat_fd(fd.as_fd())?;
        if st.ino != object.stat.ino || !st.is_file() {
            return denied(Nfs3Status::Stale);
        }
        let file = Arc::new(File::from(fd));
        lock(&self.files).insert(id, file.clone(), writable, self.options.open_files);
        Ok((file, st))
    }

    /// READ's check: read or execute permission as the kernel sees the caller, or ownership.
    fn check_read(&self, caller: &Caller, file: &File, st: &Stat) -> StoreResult<()> {
        if st.uid == caller.uid {
            return Ok(());
        }
        let fd = file.as_fd();
        self.as_caller(caller, || {
            match sys::access_fd(fd, libc::R_OK).or_else(|_| sys::access_fd(fd, libc::X_OK)) {
                Ok(()) => Ok(()),
                Err(err) => Err(err.into()),
            }
        })
    }

    /// WRITE's, COMMIT's and truncation's check: write permission as the kernel sees the
    /// caller, or ownership.
    fn check_write(&self, caller: &Caller, file: &File, st: &Stat) -> StoreResult<()> {
        if self.options.read_only {
            return denied(Nfs3Status::RoFs);
        }
        if st.uid == caller.uid {
            return Ok(());
        }
        let fd = file.as_fd();
        self.as_caller(caller, || Ok(sys::access_fd(fd, libc::W_OK)?))
    }

    /// Truncates (or extends) the regular file `id` to `size` as `caller`: the descriptor is
    /// the server's (an owner may truncate a file it may not open for writing), the check is
    /// [`LocalStore::check_write`], and the `ftruncate` runs as the caller, so the kernel
    /// clears set-id bits as it does for the caller's own truncation.
    pub(super) fn truncate_as(&self, caller: &Caller, id: FileId, size: u64) -> StoreResult<()> {
        let (file, st) = self.open_file(id, true)?;
        self.check_write(caller, &file, &st)?;
        self.as_caller(caller, || Ok(sys::ftruncate(file.as_fd(), size)?))
    }

    /// Reads `want` bytes of `file` from `offset` onto the end of `buf` (fewer at the end of
    /// the file).
    fn pread_into(
        file: BorrowedFd<'_>,
        buf: &mut Vec<u8>,
        want: usize,
        offset: u64,
    ) -> io::Result<()> {
        let start = buf.len();
        while buf.len() - start < want {
            let filled = buf.len() - start;
            match sys::pread_append(file, buf, want - filled, offset + filled as u64) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// READ into a buffer (a pooled one when large).
    pub(super) fn read_file(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<ReadOutcome> {
        let (file, st) = self.open_file(id, false)?;
        self.check_read(caller, &file, &st)?;
        let want = if offset >= st.size {
            0
        } else {
            (st.size - offset).min(u64::from(count)) as usize
        };
        let mut buf = self.buffers.take(want);
        Self::pread_into(file.as_fd(), &mut buf, want, offset)?;
        let filled = buf.len();
        let after = sys::stat_fd(file.as_fd()).unwrap_or(st);
        let eof = offset.saturating_add(filled as u64) >= after.size;
        Ok(ReadOutcome {
            data: self.buffers.freeze(buf),
            eof,
            attr: self.fattr(&after),
        })
    }

    /// READ with as much of the data as a pipe takes left in it, spliced from the file (see
    /// `crate::splice`); the rest, and small READs, copied.
    pub(super) fn read_file_spliced(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<SplicedRead> {
        let (file, st) = self.open_file(id, false)?;
        self.check_read(caller, &file, &st)?;
        let want = if offset >= st.size {
            0
        } else {
            (st.size - offset).min(u64::from(count)) as usize
        };
        // A small READ costs less copied than spliced (a pipe, two more system calls).
        let (pipe, at_eof) = if want >= SPLICE_READ_BYTES {
            self.pipes.fill(file.as_fd(), offset, want)?
        } else {
            (None, false)
        };
        let spliced = pipe.as_ref().map_or(0, Spliced::len_bytes);
        let mut buf = self.buffers.take(want - spliced);
        if !at_eof {
            Self::pread_into(
                file.as_fd(),
                &mut buf,
                want - spliced,
                offset + spliced as u64,
            )?;
        }
        let filled = spliced + buf.len();
        let after = sys::stat_fd(file.as_fd()).unwrap_or(st);
        let eof = offset.saturating_add(filled as u64) >= after.size;
        Ok(SplicedRead {
            pipe,
            rest: self.buffers.freeze(buf),
            eof,
            attr: self.fattr(&after),
        })
    }

    /// WRITE as the caller, then the sync its stability asks for.
    pub(super) fn write_file(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        data: &Bytes,
        stable: StableHow,
    ) -> StoreResult<WriteOutcome> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return denied(Nfs3Status::FBig);
        }
        let (file, pre) = self.open_file(id, true)?;
        self.check_write(caller, &file, &pre)?;
        // The write itself runs as the caller: the kernel clears set-id bits as for the
        // caller's own write.
        let written = self.as_caller(caller, || {
            let mut written = 0usize;
            while written < data.len() {
                match file.write_at(&data[written..], offset + written as u64) {
                    Ok(0) => break,
                    Ok(n) => written += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    // Some bytes made it: answer them; the error will come back on the next try.
                    Err(_) if written > 0 => break,
                    Err(err) => return Err(StoreError::write_failed(&err)),
                }
            }
            Ok(written)
        })?;
        match stable {
            StableHow::Unstable => {}
            StableHow::DataSync => file.sync_data().map_err(|e| StoreError::write_failed(&e))?,
            StableHow::FileSync => file.sync_all().map_err(|e| StoreError::write_failed(&e))?,
        }
        let post = sys::stat_fd(file.as_fd()).ok();
        Ok(WriteOutcome {
            count: written as u32,
            committed: stable,
            wcc: WccData {
                before: Some(wcc_attr(&self.fattr(&pre))),
                after: post.map(|st| self.fattr(&st)),
            },
        })
    }

    /// COMMIT: the whole file's data made durable.
    pub(super) fn commit_file(
        &self,
        caller: &Caller,
        id: FileId,
        _offset: u64,
        _count: u32,
    ) -> StoreResult<WccData> {
        // The whole file is synced: a range sync (sync_file_range) does not make data durable.
        let (file, pre) = self.open_file(id, false)?;
        self.check_write(caller, &file, &pre)?;
        file.sync_data().map_err(|e| StoreError::write_failed(&e))?;
        let post = sys::stat_fd(file.as_fd()).ok();
        Ok(WccData {
            before: Some(wcc_attr(&self.fattr(&pre))),
            after: post.map(|st| self.fattr(&st)),
        })
    }
}
