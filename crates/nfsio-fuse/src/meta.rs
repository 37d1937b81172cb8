//! Attributes and the file system as a whole: getattr, setattr, access and statfs.
//!
//! A file with writes still in nfsio's cache shows the size and times its writer sees (the
//! cache's size over the server's; mtime and ctime at least the time of the last write
//! through the mount, see `AttrCache::written_view`), and a size change of an open file goes through the cache
//! (`File::set_len`), which orders it after the WRITEs in flight. A change of times sends
//! the open file's cached bytes first, so that their WRITEs cannot move the mtime after it.

use fuser::{FileAttr, TimeOrNow};
use nfsio_client::proto::nfs3::{Fattr, FileHandle, Sattr, SetTime, access};

use crate::attr::set_time;
use crate::core::Core;
use crate::error::{Errno, OpResult};

/// What a setattr asks to change (the kernel's fields, owned).
#[derive(Debug, Default)]
pub struct SetAttr {
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Size (truncate or extend).
    pub size: Option<u64>,
    /// Access time (`UTIME_NOW` as `Now`).
    pub atime: Option<TimeOrNow>,
    /// Modification time.
    pub mtime: Option<TimeOrNow>,
    /// The open file the change came through, if any.
    pub fh: Option<u64>,
}

/// Space and file counts as statfs(2) reports them.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    /// Blocks of `bsize` bytes in total.
    pub blocks: u64,
    /// Blocks free.
    pub bfree: u64,
    /// Blocks free to the caller.
    pub bavail: u64,
    /// File slots in total.
    pub files: u64,
    /// File slots free to the caller.
    pub ffree: u64,
    /// The block size.
    pub bsize: u32,
    /// The longest name.
    pub namelen: u32,
}

/// The block size statfs reports its counts in.
const STATFS_BLOCK_BYTES: u32 = 4096;

impl Core {
    /// Fresh attributes of `ino` (GETATTR), with the size this client sees.
    pub async fn getattr(&self, ino: u64) -> OpResult<FileAttr> {
        let handle = self.handle(ino)?;
        let attributes = self.client.getattr(&handle).await?;
        Ok(self.attr(ino, &self.local_view(ino, attributes)?))
    }

    /// The server's attributes with this client's cached size, when the file is open, and
    /// the times of its writes the server has not seen yet.
    ///
    /// Why not write the bytes back first, as Linux's `nfs_getattr` does: each stat of a
    /// file being written (`ls -l`, a progress bar, glibc's `posix_fallocate`) would wait
    /// for its write-back, the cost Linux pays for `ls -l` during a large copy. The client's
    /// clock instead is the mtime a local file system would show; the server's takes over
    /// once its WRITEs arrive, and the later of the two is shown so the times never go back.
    fn local_view(&self, ino: u64, mut attributes: Fattr) -> OpResult<Fattr> {
        self.attrs.written_view(ino, &mut attributes);
        if let Some(open) = self.handles.file_of(ino) {
            attributes.size = open.file.size_bytes()?;
        }
        Ok(attributes)
    }

    /// SETATTR of `ino`; the size of an open file through the cache: through the open file
    /// the change came by (ftruncate, O_TRUNC), else, when the file is open, through a
    /// file opened for this request's caller (truncate(2) acts as its caller, not as
    /// whoever opened the file).
    pub async fn setattr(&self, ino: u64, change: SetAttr) -> OpResult<FileAttr> {
        let handle = self.handle(ino)?;
        let by_fh = change.fh.and_then(|fh| self.handles.file(fh));
        let open_elsewhere = by_fh.is_none() && self.handles.file_of(ino).is_some();
        let mut sattr = Sattr {
            mode: change.mode.map(|mode| mode & 0o7777),
            uid: change.uid,
            gid: change.gid,
            size: None,
            atime: set_time(change.atime)?,
            mtime: set_time(change.mtime)?,
        };
        match (change.size, &by_fh) {
            // Through the cache: no WCC data reaches us, the next change seen is ours.
            (Some(size), Some(open)) => {
                self.attrs.changing(ino);
                open.file.set_len(size).await?;
            }
            (Some(size), None) if open_elsewhere => {
                self.attrs.changing(ino);
                self.truncate_open(ino, &handle, size).await?;
            }
            (size, _) => sattr.size = size,
        }
        // Bytes still in the cache would reach the server after the new times, and each
        // WRITE sets the mtime again (tar sets a file's times before it closes it): send
        // them first, as the Linux client does before a SETATTR.
        let sets_times = sattr.atime != SetTime::DontChange || sattr.mtime != SetTime::DontChange;
        if sets_times && let Some(open) = by_fh.clone().or_else(|| self.handles.file_of(ino)) {
            open.file.sync_all().await?;
        }
        if sets_times {
            self.attrs.times_set(ino);
        }
        let mut after = None;
        if sattr != Sattr::default() {
            let wcc = self.client.setattr(&handle, sattr, None).await?;
            self.wcc(ino, &wcc);
            after = wcc.after;
        }
        // The attributes SETATTR's reply carried, else a GETATTR.
        match after {
            Some(attributes) => Ok(self.attr(ino, &self.local_view(ino, attributes)?)),
            None => self.getattr(ino).await,
        }
    }

    /// Truncates a file that is open (its cached bytes must see the new size) as this
    /// request's caller: a file of its own in the cache for the length of the change.
    async fn truncate_open(&self, ino: u64, handle: &FileHandle, size: u64) -> OpResult<()> {
        let attributes = self.client.getattr(handle).await?;
        let label = format!("inode {ino} (truncate)");
        let file = self
            .client
            .open_handle(handle.clone(), attributes, &label)?;
        let truncated = file.set_len(size).await;
        let closed = file.close().await;
        truncated?;
        Ok(closed?)
    }

    /// ACCESS: Ok when the server grants every kind of access in `mask` (R_OK, W_OK, X_OK;
    /// F_OK is a GETATTR). A write is granted when MODIFY, EXTEND or DELETE is; an
    /// execute when EXECUTE (files) or LOOKUP (directories) is, as the Linux client reads
    /// them.
    pub async fn access(&self, ino: u64, mask: i32) -> OpResult<()> {
        let handle = self.handle(ino)?;
        let wants = [
            (libc::R_OK, access::READ),
            (libc::W_OK, access::MODIFY | access::EXTEND | access::DELETE),
            (libc::X_OK, access::EXECUTE | access::LOOKUP),
        ];
        let asked: u32 = wants
            .iter()
            .filter(|(bit, _)| mask & bit != 0)
            .fold(0, |all, (_, nfs)| all | nfs);
        if asked == 0 {
            self.client.getattr(&handle).await?;
            return Ok(());
        }
        let granted = self.client.access(&handle, asked).await?;
        let denied = wants
            .iter()
            .any(|(bit, nfs)| mask & bit != 0 && granted & nfs == 0);
        if denied {
            return Err(Errno(libc::EACCES));
        }
        Ok(())
    }

    /// The permission check of an open (FUSE checks none without `default_permissions`):
    /// ACCESS for reading, writing or both as `flags` ask (O_TRUNC writes), as the Linux
    /// client checks each open against the server; EACCES when the server denies any.
    pub async fn may_open(&self, ino: u64, flags: i32) -> OpResult<()> {
        let mut mask = match flags & libc::O_ACCMODE {
            libc::O_WRONLY => libc::W_OK,
            libc::O_RDWR => libc::R_OK | libc::W_OK,
            _ => libc::R_OK,
        };
        if flags & libc::O_TRUNC != 0 {
            mask |= libc::W_OK;
        }
        self.access(ino, mask).await
    }

    /// FSSTAT of the export root.
    pub async fn statfs(&self) -> OpResult<StatFs> {
        let stat = self.client.fsstat(self.client.root()).await?;
        let bsize = STATFS_BLOCK_BYTES;
        let blocks = |bytes: u64| bytes / u64::from(bsize);
        Ok(StatFs {
            blocks: blocks(stat.tbytes),
            bfree: blocks(stat.fbytes),
            bavail: blocks(stat.abytes),
            files: stat.tfiles,
            ffree: stat.afiles,
            bsize,
            namelen: nfsio_client::proto::nfs3::MAX_NAME_BYTES,
        })
    }
}
