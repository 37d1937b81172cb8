//! The storage seam: everything the NFS server does to files goes through [`Storage`].
//!
//! The server maps NFSv3 onto this trait and nothing else, so that the same protocol code runs
//! on a real directory ([`LocalStore`]) and on the in-memory store with a crash model that the
//! simulation uses ([`MemStore`]). The trait is NFS-shaped on purpose: objects are named by a
//! [`FileId`] (inode number and generation, what a file handle carries), results carry the
//! attributes RFC 1813 wants (weak cache consistency data taken by the store, as close to the
//! change as it can), and errors are NFSv3 statuses.
//!
//! Every operation that the kernel would check is made on behalf of a [`Caller`] (the identity
//! after squashing): the local store runs it under that identity, so that Linux decides
//! permissions, owners of new objects and set-id bits; the memory store applies the same rules
//! itself ([`rules`]). Credential squashing, read-only exports, file handles and the write
//! verifier are the server's business, not the store's.

use std::io;

use crate::splice::Spliced;
use bytes::Bytes;
use nfsio_proto::nfs3::{
    CookieVerifier, CreateVerifier, Fattr, MknodData, Nfs3Status, NfsTime, Sattr, StableHow,
    WccData,
};
use thiserror::Error;

mod local;
mod memory;
mod rules;
mod sys;

pub use local::{LocalOptions, LocalStore};
pub use memory::{Fault, MemOptions, MemStore};

/// Names a file system object: what a file handle carries, besides its MAC.
///
/// `generation` distinguishes two objects that had the same inode number at different times, so
/// that the handle of a removed file stays stale even when its inode number is reused. A local
/// store that may open files by the kernel's own handles (`open_by_handle_at`) carries the
/// kernel's handle in `kernel`, which the kernel checks itself (its inode generation
/// included); otherwise `kernel` is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Inode number (also the NFS `fileid`).
    pub ino: u64,
    /// A value that changes when the inode number is reused.
    pub generation: u64,
    /// The kernel's file handle, when the store uses them.
    pub kernel: KernelHandle,
}

impl FileId {
    /// An object named by inode number and generation alone.
    pub fn new(ino: u64, generation: u64) -> Self {
        Self {
            ino,
            generation,
            kernel: KernelHandle::NONE,
        }
    }
}

/// A kernel file handle (`struct file_handle` of `name_to_handle_at`), kept inline so that a
/// [`FileId`] stays a small `Copy` value. Only handles of at most [`KernelHandle::MAX_BYTES`]
/// bytes fit the 64 bytes of an NFSv3 handle with this server's header and MAC; ext4, xfs,
/// btrfs and tmpfs give 8 to 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelHandle {
    /// `handle_type`.
    pub kind: i32,
    /// Bytes used of `bytes` (0: no kernel handle).
    pub len: u8,
    /// `f_handle`.
    pub bytes: [u8; KernelHandle::MAX_BYTES],
}

impl KernelHandle {
    /// The most `f_handle` bytes kept.
    pub const MAX_BYTES: usize = 20;

    /// No kernel handle.
    pub const NONE: Self = Self {
        kind: 0,
        len: 0,
        bytes: [0; Self::MAX_BYTES],
    };

    /// A handle of `kind` with `bytes`, if they fit.
    pub fn new(kind: i32, bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > Self::MAX_BYTES {
            return None;
        }
        let mut out = Self::NONE;
        out.kind = kind;
        out.len = bytes.len() as u8;
        out.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(out)
    }

    /// True when there is a handle.
    pub fn is_some(&self) -> bool {
        self.len > 0
    }

    /// The `f_handle` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(Self::MAX_BYTES)]
    }
}

/// Who an operation is done for: the identity after squashing and id mapping. Never
/// `u32::MAX` (the "no change" id of `chown`): the server maps it to the anonymous id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub gids: Vec<u32>,
}

impl Caller {
    /// True when `gid` is the caller's primary or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.gids.contains(&gid)
    }

    /// Root (the caller the kernel exempts from permission checks).
    pub fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            gids: Vec::new(),
        }
    }
}

/// What ACCESS may grant, as the kernel decides it for the caller: read, write and
/// execute (search, for a directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Granted {
    /// May read (list, for a directory).
    pub read: bool,
    /// May write (change entries, for a directory).
    pub write: bool,
    /// May execute (search, for a directory).
    pub execute: bool,
}

/// Why a storage operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{status}{}", if *.lost_unstable_data { " (a write or sync failed: unstable data may be lost)" } else { "" })]
pub struct StoreError {
    /// The NFSv3 status to answer.
    pub status: Nfs3Status,
    /// True when a write or a sync failed in a way that may have lost data written UNSTABLE
    /// before: the server must change its write verifier so that clients write it again.
    pub lost_unstable_data: bool,
}

impl StoreError {
    /// A failure with `status` that lost nothing.
    pub fn new(status: Nfs3Status) -> Self {
        Self {
            status,
            lost_unstable_data: false,
        }
    }

    /// A failure of a write or a sync: `status` from the error, and unstable data may be lost.
    pub fn write_failed(err: &io::Error) -> Self {
        Self {
            status: status_from_io(err),
            lost_unstable_data: true,
        }
    }
}

impl From<Nfs3Status> for StoreError {
    fn from(status: Nfs3Status) -> Self {
        Self::new(status)
    }
}

impl From<io::Error> for StoreError {
    fn from(err: io::Error) -> Self {
        Self::new(status_from_io(&err))
    }
}

impl From<StoreError> for Nfs3Status {
    fn from(err: StoreError) -> Self {
        err.status
    }
}

/// The result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Maps an operating-system error to the NFSv3 status RFC 1813 gives it (the protocol
/// crate's table, [`Nfs3Status::from_errno`]; an error without an errno by its kind).
pub fn status_from_io(err: &io::Error) -> Nfs3Status {
    let Some(errno) = err.raw_os_error() else {
        return match err.kind() {
            io::ErrorKind::NotFound => Nfs3Status::NoEnt,
            io::ErrorKind::PermissionDenied => Nfs3Status::Acces,
            io::ErrorKind::AlreadyExists => Nfs3Status::Exist,
            io::ErrorKind::InvalidInput => Nfs3Status::Inval,
            _ => Nfs3Status::Io,
        };
    };
    Nfs3Status::from_errno(errno)
}

/// What READ returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The bytes read (fewer than asked at the end of the file).
    pub data: Bytes,
    /// True when the read reached the end of the file.
    pub eof: bool,
    /// The file's attributes after the read.
    pub attr: Fattr,
}

/// What READ returns for a reply: the bytes are those waiting in `pipe`, then `rest`.
#[derive(Debug)]
pub struct SplicedRead {
    /// Bytes left in a pipe by `splice(2)`, sent to the socket without a copy.
    pub pipe: Option<Spliced>,
    /// Bytes read into memory (all of them when there is no pipe).
    pub rest: Bytes,
    /// True when the read reached the end of the file.
    pub eof: bool,
    /// The file's attributes after the read.
    pub attr: Fattr,
}

impl SplicedRead {
    /// Bytes read.
    pub fn len_bytes(&self) -> usize {
        self.pipe.as_ref().map_or(0, Spliced::len_bytes) + self.rest.len()
    }
}

impl From<ReadOutcome> for SplicedRead {
    fn from(read: ReadOutcome) -> Self {
        Self {
            pipe: None,
            rest: read.data,
            eof: read.eof,
            attr: read.attr,
        }
    }
}

/// What WRITE returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Bytes written (a store may write fewer than asked).
    pub count: u32,
    /// How durable those bytes are now: never less than asked, never more than true.
    pub committed: StableHow,
    /// The file's attributes before and after.
    pub wcc: WccData,
}

/// What the creating procedures (CREATE, MKDIR, SYMLINK, MKNOD) return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The new (or, for an idempotent CREATE, existing) object.
    pub id: FileId,
    /// Its attributes.
    pub attr: Fattr,
    /// The directory's attributes before and after.
    pub dir_wcc: WccData,
}

/// How CREATE treats an existing file (the store's view of `createhow3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode<'a> {
    /// Create or reuse the existing file, then apply the attributes.
    Unchecked(&'a Sattr),
    /// Fail with `NFS3ERR_EXIST` if the name exists.
    Guarded(&'a Sattr),
    /// Create exactly once: the verifier is kept with the file, and a retransmission with the
    /// same verifier finds it and succeeds.
    Exclusive(CreateVerifier),
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's file id (inode number).
    pub fileid: u64,
    /// Its name.
    pub name: Bytes,
    /// The cookie that resumes after it.
    pub cookie: u64,
    /// Its identity and attributes, when asked for (READDIRPLUS) and available.
    pub plus: Option<(FileId, Fattr)>,
}

/// A batch of directory entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirPage {
    /// The directory's attributes.
    pub dir_attr: Option<Fattr>,
    /// The verifier to send back with the cookies.
    pub verifier: CookieVerifier,
    /// The entries, in cookie order.
    pub entries: Vec<DirEntry>,
    /// True when the last entry is the directory's last.
    pub eof: bool,
}

/// Dynamic file system information (FSSTAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStat {
    /// Total size in bytes.
    pub total_bytes: u64,
    /// Free bytes.
    pub free_bytes: u64,
    /// Free bytes available to unprivileged users.
    pub avail_bytes: u64,
    /// Total file slots.
    pub total_files: u64,
    /// Free file slots.
    pub free_files: u64,
    /// Free file slots available to unprivileged users.
    pub avail_files: u64,
}

/// Static limits of the store (PATHCONF, FSINFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Maximum number of hard links.
    pub link_max: u32,
    /// Maximum name length in bytes.
    pub name_max: u32,
    /// Maximum file size in bytes.
    pub max_file_bytes: u64,
    /// Time granularity.
    pub time_delta: NfsTime,
}

/// Where files live. Every method is synchronous; the server calls the ones of a store whose
/// [`Storage::is_blocking`] is true on a blocking thread.
///
/// Names are single path components: never empty, never containing `/` or NUL; `.` and `..`
/// are valid in [`Storage::lookup`] only (`..` of the root is the root). No method may reach an
/// object outside the store's tree, or follow a symbolic link while resolving a name.
pub trait Storage: Send + Sync + 'static {
    /// True when the methods block on I/O (the server then runs them on blocking threads);
    /// false for a store that only touches memory (run inline, which keeps a simulation
    /// deterministic).
    fn is_blocking(&self) -> bool;

    /// The root directory of the tree.
    fn root(&self) -> FileId;

    /// A 64-bit identifier of the file system (the `fsid` of every [`Fattr`]).
    fn fsid(&self) -> u64;

    /// Static limits.
    fn limits(&self) -> StoreLimits;

    /// The attributes of `id`.
    fn getattr(&self, id: FileId) -> StoreResult<Fattr>;

    /// What `caller` may do to `id` (ACCESS), and its attributes.
    fn access(&self, caller: &Caller, id: FileId) -> StoreResult<(Granted, Fattr)>;

    /// Looks `name` up in directory `dir` (the caller needs search permission on `dir`).
    fn lookup(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<(FileId, Fattr)>;

    /// Changes attributes of `id` as `caller` (owner, mode, size, times, with the kernel's
    /// rules on who may change what and on set-id bits); when `guard` is set, only if the
    /// object's ctime equals it (`NFS3ERR_NOT_SYNC` otherwise). Returns the object's
    /// attributes before and after.
    fn setattr(
        &self,
        caller: &Caller,
        id: FileId,
        attrs: &Sattr,
        guard: Option<NfsTime>,
    ) -> StoreResult<WccData>;

    /// Reads up to `count` bytes at `offset` (the caller needs read or execute permission,
    /// or to own the file).
    fn read(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<ReadOutcome>;

    /// Reads up to `count` bytes at `offset` for a READ reply: a store that can leaves them
    /// in a pipe (see `crate::splice`); the default reads them into memory.
    fn read_spliced(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        count: u32,
    ) -> StoreResult<SplicedRead> {
        self.read(caller, id, offset, count).map(SplicedRead::from)
    }

    /// Writes `data` at `offset`, at least as durably as `stable` asks before returning (the
    /// caller needs write permission, or to own the file; a write by anyone without the
    /// right to keep them clears the set-id bits).
    fn write(
        &self,
        caller: &Caller,
        id: FileId,
        offset: u64,
        data: &Bytes,
        stable: StableHow,
    ) -> StoreResult<WriteOutcome>;

    /// Makes everything written to the file durable (`count` 0: to the end); the caller
    /// needs the right to write it. Returns the file's attributes before and after.
    fn commit(&self, caller: &Caller, id: FileId, offset: u64, count: u32) -> StoreResult<WccData>;

    /// Creates a regular file `name` in `dir` as `caller`, who owns it (with the directory's
    /// group when the directory is set-gid).
    fn create(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        mode: CreateMode<'_>,
    ) -> StoreResult<Created>;

    /// Creates a directory as `caller` (set-gid inherited from a set-gid parent).
    fn mkdir(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created>;

    /// Creates a symbolic link to `target` (stored as given, never interpreted).
    fn symlink(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        target: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created>;

    /// Creates a special file (FIFO, socket; devices where the store allows them).
    fn mknod(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        what: &MknodData,
    ) -> StoreResult<Created>;

    /// Removes a non-directory (write and search permission on `dir`; with the sticky bit,
    /// only the owners of the file or the directory). Returns the directory's attributes
    /// before and after.
    fn remove(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData>;

    /// Removes an empty directory. Returns the parent's attributes before and after.
    fn rmdir(&self, caller: &Caller, dir: FileId, name: &[u8]) -> StoreResult<WccData>;

    /// Renames; returns the attributes of the source and target directories before and
    /// after.
    fn rename(
        &self,
        caller: &Caller,
        from_dir: FileId,
        from_name: &[u8],
        to_dir: FileId,
        to_name: &[u8],
    ) -> StoreResult<(WccData, WccData)>;

    /// Makes a hard link to `id` named `name` in `dir`. Returns the file's attributes and the
    /// directory's before and after.
    fn link(
        &self,
        caller: &Caller,
        id: FileId,
        dir: FileId,
        name: &[u8],
    ) -> StoreResult<(Fattr, WccData)>;

    /// The target of a symbolic link, and the link's attributes.
    fn readlink(&self, id: FileId) -> StoreResult<(Bytes, Fattr)>;

    /// Up to `max_entries` entries of `dir` after `cookie` (0: from the start), with
    /// identities and attributes when `plus` (the caller needs read permission on `dir`, and
    /// search permission for the attributes). A store may check `verifier` for cookies other
    /// than 0 and answer `NFS3ERR_BAD_COOKIE`.
    fn readdir(
        &self,
        caller: &Caller,
        dir: FileId,
        cookie: u64,
        verifier: CookieVerifier,
        max_entries: usize,
        plus: bool,
    ) -> StoreResult<DirPage>;

    /// Space and file-slot counts.
    fn fsstat(&self, id: FileId) -> StoreResult<FsStat>;

    /// Lets go of what the store keeps open for calls that stopped coming (called about once
    /// a second); by default there is nothing.
    fn release_idle(&self) {}
}

/// Splits a validated name for the stores: rejects what can never be a single component.
pub(crate) fn check_name(name: &[u8]) -> StoreResult<()> {
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(StoreError::new(Nfs3Status::Inval));
    }
    if name.len() > 255 {
        return Err(StoreError::new(Nfs3Status::NameTooLong));
    }
    Ok(())
}

/// Checks a name for the creating and removing procedures, where `.` and `..` are invalid.
pub(crate) fn check_new_name(name: &[u8]) -> StoreResult<()> {
    check_name(name)?;
    if name == b"." || name == b".." {
        return Err(StoreError::new(Nfs3Status::Inval));
    }
    Ok(())
}

/// The pre-operation subset of attributes.
pub fn wcc_attr(attr: &Fattr) -> nfsio_proto::nfs3::WccAttr {
    nfsio_proto::nfs3::WccAttr {
        size: attr.size,
        mtime: attr.mtime,
        ctime: attr.ctime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping_follows_rfc_1813() {
        let cases = [
            (libc::ENOENT, Nfs3Status::NoEnt),
            (libc::EEXIST, Nfs3Status::Exist),
            (libc::ENOTDIR, Nfs3Status::NotDir),
            (libc::EISDIR, Nfs3Status::IsDir),
            (libc::ENOTEMPTY, Nfs3Status::NotEmpty),
            (libc::ENAMETOOLONG, Nfs3Status::NameTooLong),
            (libc::EROFS, Nfs3Status::RoFs),
            (libc::ENOSPC, Nfs3Status::NoSpc),
            (libc::EDQUOT, Nfs3Status::DQuot),
            (libc::EFBIG, Nfs3Status::FBig),
            (libc::EACCES, Nfs3Status::Acces),
            (libc::EPERM, Nfs3Status::Perm),
            (libc::EXDEV, Nfs3Status::XDev),
            (libc::EINVAL, Nfs3Status::Inval),
            (libc::EMLINK, Nfs3Status::MLink),
            (libc::EIO, Nfs3Status::Io),
            (libc::ENXIO, Nfs3Status::NxIo),
            (libc::ENODEV, Nfs3Status::NoDev),
            (libc::ESTALE, Nfs3Status::Stale),
            (libc::EOPNOTSUPP, Nfs3Status::NotSupp),
            (libc::ENOTSUP, Nfs3Status::NotSupp),
            (libc::EAGAIN, Nfs3Status::Jukebox),
            (libc::EWOULDBLOCK, Nfs3Status::Jukebox),
            (libc::EBUSY, Nfs3Status::Jukebox),
            (libc::ETXTBSY, Nfs3Status::Jukebox),
            (libc::ELOOP, Nfs3Status::Inval),
            (libc::EBADF, Nfs3Status::Inval),
            (libc::EOVERFLOW, Nfs3Status::Inval),
            (libc::EREMOTE, Nfs3Status::Io),
            (libc::EREMOTEIO, Nfs3Status::Io),
            (libc::EINTR, Nfs3Status::Io),
        ];
        for (errno, status) in cases {
            assert_eq!(
                status_from_io(&io::Error::from_raw_os_error(errno)),
                status,
                "errno {errno}"
            );
        }
    }

    #[test]
    fn names_are_single_components() {
        assert!(check_name(b"a").is_ok());
        assert!(check_name(b"..").is_ok());
        assert_eq!(check_name(b"").unwrap_err().status, Nfs3Status::Inval);
        assert_eq!(check_name(b"a/b").unwrap_err().status, Nfs3Status::Inval);
        assert_eq!(check_name(b"a\0").unwrap_err().status, Nfs3Status::Inval);
        assert_eq!(check_new_name(b"..").unwrap_err().status, Nfs3Status::Inval);
        assert_eq!(
            check_name(&[b'x'; 256]).unwrap_err().status,
            Nfs3Status::NameTooLong
        );
    }
}
