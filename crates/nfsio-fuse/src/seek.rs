//! The operations NFSv3 has no procedure for, answered the generic way: lseek's SEEK_DATA
//! and SEEK_HOLE (all of a file is data, its one hole is at its end), fallocate
//! (EOPNOTSUPP) and fsyncdir (nothing to wait for).
//!
//! Answering them here, not with ENOSYS, keeps the answers ours: the size lseek looks at is
//! the one this mount's writer sees (bytes in nfsio's cache included), and glibc's
//! `posix_fallocate` falls back to writing zeros on EOPNOTSUPP, as on any file system that
//! cannot allocate.

use crate::core::Core;
use crate::error::{Errno, OpResult};

impl Core {
    /// SEEK_DATA or SEEK_HOLE from `offset` in the open file `fh`: data at `offset` itself,
    /// the hole at the end of the file; ENXIO at or past the end. Other `whence` values are
    /// the kernel's own business (EINVAL here).
    pub fn seek(&self, fh: u64, offset: i64, whence: i32) -> OpResult<i64> {
        let open = self.handles.file(fh).ok_or(Errno(libc::EBADF))?;
        let size = open.file.size_bytes()?;
        let size = i64::try_from(size).map_err(|_| Errno(libc::EOVERFLOW))?;
        if offset < 0 || offset >= size {
            return Err(Errno(libc::ENXIO));
        }
        match whence {
            libc::SEEK_DATA => Ok(offset),
            libc::SEEK_HOLE => Ok(size),
            _ => Err(Errno(libc::EINVAL)),
        }
    }

    /// fallocate: NFSv3 cannot reserve space or punch holes, so every mode is EOPNOTSUPP.
    pub fn allocate(&self, fh: u64) -> OpResult<()> {
        self.handles.file(fh).ok_or(Errno(libc::EBADF))?;
        Err(Errno(libc::EOPNOTSUPP))
    }
}
