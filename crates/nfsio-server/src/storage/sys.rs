//! The few system calls std does not offer, behind safe functions.
//!
//! The local store resolves every name relative to an open directory (`openat` and friends)
//! with `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so that no symbolic link is ever followed while
//! resolving a client's name and nothing outside the export is reachable. It also needs
//! `statx` (birth time for handle generations), `mknodat` (FIFOs, sockets), `getdents64` with
//! `lseek` (stable READDIR cookies) and `fstatvfs` (FSSTAT); the kernel's file handles
//! (`name_to_handle_at`, `open_by_handle_at`); operations on the object a descriptor names
//! (`fchmodat2`, `fchownat`, `utimensat` with `AT_EMPTY_PATH`, `faccessat2`, reopening and
//! linking through `/proc/self/fd`); and the calling thread's file-system identity
//! (`setfsuid`, `setfsgid`, `setgroups` as raw system calls, which act on one thread). This module and `crate::splice`
//! (pipes for zero-copy READ replies) are the only places with `unsafe` in the crate; every
//! function checks its arguments' lifetimes by type (`BorrowedFd`,
//! `&CStr`) and turns `-1` into the `errno` error.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A point in time as the kernel gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Timestamp {
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// The attributes `statx` returns, reduced to what the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stat {
    pub ino: u64,
    pub dev: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Bytes allocated on disk.
    pub used_bytes: u64,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// Birth time, when the file system records it.
    pub btime: Option<Timestamp>,
    /// The id of the mount the object was reached through (`STATX_MNT_ID`), 0 if unknown.
    pub mnt_id: u64,
}

impl Stat {
    /// The file-type bits of `mode`.
    pub fn file_type_bits(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type_bits() == libc::S_IFDIR
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type_bits() == libc::S_IFREG
    }

    /// True for a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type_bits() == libc::S_IFLNK
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn ts(t: libc::statx_timestamp) -> Timestamp {
    Timestamp {
        seconds: t.tv_sec,
        nanos: t.tv_nsec,
    }
}

fn statx_raw(dir: libc::c_int, name: &CStr, flags: libc::c_int) -> io::Result<Stat> {
    let mut buf = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `name` is a valid NUL-terminated string, `buf` points to writable memory of the
    // right size and type; the kernel writes at most `size_of::<statx>()` bytes.
    check(unsafe {
        libc::statx(
            dir,
            name.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_MNT_ID,
            buf.as_mut_ptr(),
        )
    })?;
    // SAFETY: zero-initialised, then filled by a successful statx; every field is plain data.
    let st = unsafe { buf.assume_init() };
    Ok(Stat {
        ino: st.stx_ino,
        dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
        mode: u32::from(st.stx_mode),
        nlink: st.stx_nlink,
        uid: st.stx_uid,
        gid: st.stx_gid,
        size: st.stx_size,
        used_bytes: st.stx_blocks.saturating_mul(512),
        rdev_major: st.stx_rdev_major,
        rdev_minor: st.stx_rdev_minor,
        atime: ts(st.stx_atime),
        mtime: ts(st.stx_mtime),
        ctime: ts(st.stx_ctime),
        btime: (st.stx_mask & libc::STATX_BTIME != 0).then(|| ts(st.stx_btime)),
        mnt_id: if st.stx_mask & libc::STATX_MNT_ID != 0 {
            st.stx_mnt_id
        } else {
            0
        },
    })
}

/// `statx` of `name` in `dir`, never following a symbolic link.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    statx_raw(dir.as_raw_fd(), name, 0)
}

/// `statx` of an open file (any kind of descriptor, `O_PATH` included).
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    statx_raw(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// `openat` of `name` in `dir`, with `O_NOFOLLOW | O_CLOEXEC` added to `flags`.
pub(crate) fn open_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: valid string; the returned descriptor is new and owned by nobody else.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: `fd` was just returned by a successful openat.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat`.
pub(crate) fn mkdir_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid string.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `symlinkat`: a link named `name` in `dir` whose content is `target`.
pub(crate) fn symlink_at(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: valid strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// `mknodat` with the file type in `mode`.
pub(crate) fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let dev = libc::makedev(major, minor);
    // SAFETY: valid string.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, dev) })
        .map(drop)
}

/// `unlinkat`; with `dir_entry` it removes an (empty) directory.
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &CStr, dir_entry: bool) -> io::Result<()> {
    let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid string.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// `renameat`.
pub(crate) fn rename_at(
    from_dir: BorrowedFd<'_>,
    from_name: &CStr,
    to_dir: BorrowedFd<'_>,
    to_name: &CStr,
) -> io::Result<()> {
    // SAFETY: valid strings.
    check(unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from_name.as_ptr(),
            to_dir.as_raw_fd(),
            to_name.as_ptr(),
        )
    })
    .map(drop)
}

/// `readlinkat` of the symbolic link `fd` itself (an `O_PATH` descriptor of it).
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>, max_bytes: usize) -> io::Result<Vec<u8>> {
    readlink_at(fd, c"", max_bytes)
}

/// `readlinkat`: the content of a symbolic link (at most `max_bytes`).
pub(crate) fn readlink_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    max_bytes: usize,
) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max_bytes + 1];
    // SAFETY: valid string; `buf` is writable for `buf.len()` bytes.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n > max_bytes {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

/// How [`utimens_at`] sets one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSet {
    /// Leave it.
    Omit,
    /// The current time.
    Now,
    /// This time.
    At(Timestamp),
}

fn timespec(set: TimeSet) -> libc::timespec {
    match set {
        TimeSet::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        TimeSet::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        TimeSet::At(t) => libc::timespec {
            tv_sec: t.seconds,
            tv_nsec: libc::c_long::from(t.nanos.min(999_999_999) as i32),
        },
    }
}

/// File system statistics: (block size, blocks, free, available, files, free files,
/// available files).
pub(crate) fn statvfs_fd(fd: BorrowedFd<'_>) -> io::Result<[u64; 7]> {
    let mut buf = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `buf` is writable memory of the right type.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), buf.as_mut_ptr()) })?;
    // SAFETY: zero-initialised, then filled by a successful fstatvfs.
    let st = unsafe { buf.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    Ok([
        st.f_frsize as u64,
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
        st.f_files as u64,
        st.f_ffree as u64,
        st.f_favail as u64,
    ])
}

/// Positions a directory stream at `cookie` (a `d_off` from [`getdents`], or 0).
pub(crate) fn seek_dir(fd: BorrowedFd<'_>, cookie: u64) -> io::Result<()> {
    // SAFETY: plain system call on a valid descriptor.
    let ret = unsafe { libc::lseek(fd.as_raw_fd(), cookie as libc::off_t, libc::SEEK_SET) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One entry parsed from `getdents64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDirEntry<'a> {
    pub ino: u64,
    /// The position after this entry (what resumes the listing after it).
    pub next_cookie: u64,
    pub d_type: u8,
    pub name: &'a [u8],
}

/// `getdents64` into `buf`; returns the number of bytes filled (0 at the end).
pub(crate) fn getdents(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for `buf.len()` bytes; the kernel writes whole records only.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd() as libc::c_long,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Parses the records `getdents64` wrote (`struct linux_dirent64`), stopping at anything
/// malformed.
pub(crate) fn parse_dirents(buf: &[u8]) -> impl Iterator<Item = RawDirEntry<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = buf.get(pos..pos + 19)?;
        let ino = u64::from_ne_bytes(header[0..8].try_into().ok()?);
        let next_cookie = i64::from_ne_bytes(header[8..16].try_into().ok()?) as u64;
        let reclen = usize::from(u16::from_ne_bytes(header[16..18].try_into().ok()?));
        let d_type = header[18];
        let record = buf.get(pos..pos.checked_add(reclen)?)?;
        if reclen < 19 {
            return None;
        }
        let name_field = &record[19..];
        let name_len = name_field.iter().position(|&b| b == 0)?;
        pos += reclen;
        Some(RawDirEntry {
            ino,
            next_cookie,
            d_type,
            name: &name_field[..name_len],
        })
    })
}

/// `pread` of up to `max_bytes` at `offset`, appended to `buf` without zeroing its spare
/// capacity first. Returns the number of bytes read (0 at the end of the file).
pub(crate) fn pread_append(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max_bytes: usize,
    offset: u64,
) -> io::Result<usize> {
    buf.reserve(max_bytes);
    let spare = buf.spare_capacity_mut();
    let want = max_bytes.min(spare.len());
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `spare` is writable for `want` bytes; the kernel writes at most `want` bytes.
    let n = unsafe { libc::pread(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want, offset) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n <= want` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `DT_DIR`.
pub(crate) const DT_DIR: u8 = libc::DT_DIR;

// ---- identity: the calling thread's file-system credentials --------------------------------

/// `setfsuid` of the calling thread only (the raw system call: glibc's wrappers of the
/// set*id calls change every thread of the process); returns the previous fsuid. `u32::MAX`
/// changes nothing and returns the current one.
pub(crate) fn set_fsuid(uid: u32) -> u32 {
    // SAFETY: plain system call; it cannot fail, only refuse (returning the old value).
    unsafe { libc::syscall(libc::SYS_setfsuid, uid as libc::c_long) as u32 }
}

/// `setfsgid` of the calling thread only; returns the previous fsgid.
pub(crate) fn set_fsgid(gid: u32) -> u32 {
    // SAFETY: plain system call.
    unsafe { libc::syscall(libc::SYS_setfsgid, gid as libc::c_long) as u32 }
}

/// `setgroups` of the calling thread only (needs CAP_SETGID).
pub(crate) fn set_groups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: `gids` is valid for `gids.len()` gid_t values (u32 on Linux).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_setgroups,
            gids.len() as libc::c_long,
            gids.as_ptr(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The calling thread's supplementary groups.
pub(crate) fn get_groups() -> io::Result<Vec<u32>> {
    // SAFETY: size 0 asks for the count only.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getgroups,
            0 as libc::c_long,
            std::ptr::null_mut::<u32>(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut gids = vec![0u32; n as usize];
    // SAFETY: `gids` is writable for `n` gid_t values.
    let got = unsafe { libc::syscall(libc::SYS_getgroups, n, gids.as_mut_ptr()) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    gids.truncate(got as usize);
    Ok(gids)
}

/// Sets the process's umask; returns the previous one.
pub(crate) fn set_umask(mask: u32) -> u32 {
    // SAFETY: plain system call, always succeeds.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

// ---- objects named by descriptor ---------------------------------------------------------

/// The kernel's handle of `fd`'s object (`name_to_handle_at` with `AT_EMPTY_PATH`): its type,
/// its bytes, and the id of the mount it belongs to. `EOVERFLOW` when it is longer than
/// `max_bytes`; `EOPNOTSUPP` when the file system has none.
pub(crate) fn handle_of(fd: BorrowedFd<'_>, max_bytes: usize) -> io::Result<(i32, Vec<u8>, i32)> {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        data: [u8; 128],
    }
    let mut handle = Handle {
        bytes: max_bytes.min(128) as u32,
        kind: 0,
        data: [0; 128],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `handle` starts like `struct file_handle` with room for `bytes` bytes of data;
    // the kernel writes at most that many; "" with AT_EMPTY_PATH names `fd` itself.
    check(unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            c"".as_ptr(),
            (&raw mut handle).cast(),
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    })?;
    let len = (handle.bytes as usize).min(handle.data.len());
    Ok((handle.kind, handle.data[..len].to_vec(), mount_id))
}

/// `open_by_handle_at` relative to the mount of `mount_fd` (needs CAP_DAC_READ_SEARCH);
/// `ESTALE` when the object no longer exists.
pub(crate) fn open_by_handle(
    mount_fd: BorrowedFd<'_>,
    kind: i32,
    bytes: &[u8],
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        data: [u8; 128],
    }
    if bytes.len() > 128 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut handle = Handle {
        bytes: bytes.len() as u32,
        kind,
        data: [0; 128],
    };
    handle.data[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `handle` is a valid `struct file_handle` of `bytes` bytes; the returned
    // descriptor is new and owned by nobody else.
    let fd = check(unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&raw mut handle).cast(),
            flags | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` was just returned by a successful open_by_handle_at.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `/proc/self/fd/N` path of a descriptor: opening or linking through it reaches exactly
/// that object, with the permission checks of the caller's identity.
fn proc_path(fd: BorrowedFd<'_>) -> std::ffi::CString {
    let text = format!("/proc/self/fd/{}", fd.as_raw_fd());
    // A decimal number has no NUL byte.
    std::ffi::CString::new(text).unwrap_or_default()
}

/// Opens the object of `fd` (typically `O_PATH`) anew with `flags`, as the calling thread's
/// identity: the kernel checks the permissions `flags` need on that very inode.
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = proc_path(fd);
    // SAFETY: valid string; the returned descriptor is new and owned by nobody else.
    let new = check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: `new` was just returned by a successful open.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `faccessat2(fd, "", mode, AT_EMPTY_PATH | AT_EACCESS)`: whether the calling thread's
/// file-system identity may access `fd`'s object with `mode` (`R_OK`, `W_OK`, `X_OK`).
pub(crate) fn access_fd(fd: BorrowedFd<'_>, mode: libc::c_int) -> io::Result<()> {
    // SAFETY: valid string; plain system call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            fd.as_raw_fd() as libc::c_long,
            c"".as_ptr(),
            mode as libc::c_long,
            (libc::AT_EMPTY_PATH | libc::AT_EACCESS) as libc::c_long,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `chmod` of `fd`'s object (`fchmodat2` with `AT_EMPTY_PATH`, which takes `O_PATH`
/// descriptors; through `/proc/self/fd` on kernels before 6.6).
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: valid string; plain system call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd() as libc::c_long,
            c"".as_ptr(),
            mode as libc::c_long,
            libc::AT_EMPTY_PATH as libc::c_long,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let path = proc_path(fd);
    // SAFETY: valid string.
    check(unsafe { libc::chmod(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH)`: the owner of `fd`'s object (a symbolic link
/// itself included); `None` leaves an id unchanged.
pub(crate) fn chown_fd(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let uid = uid.unwrap_or(u32::MAX);
    let gid = gid.unwrap_or(u32::MAX);
    // SAFETY: valid string.
    check(unsafe { libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) })
        .map(drop)
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH)`: the times of `fd`'s object.
pub(crate) fn utimens_fd(fd: BorrowedFd<'_>, atime: TimeSet, mtime: TimeSet) -> io::Result<()> {
    if atime == TimeSet::Omit && mtime == TimeSet::Omit {
        return Ok(());
    }
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: valid string; `times` is an array of two timespecs.
    check(unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// A new name `name` in `dir` for `fd`'s object (`linkat` through `/proc/self/fd`, which
/// needs no capability, unlike `AT_EMPTY_PATH`), checked as the calling thread's identity.
pub(crate) fn link_fd(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let path = proc_path(fd);
    // SAFETY: valid strings.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            path.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// The inode generation of `fd`'s object (`FS_IOC_GETVERSION`; needs a descriptor that is
/// not `O_PATH`).
pub(crate) fn inode_generation(fd: BorrowedFd<'_>) -> io::Result<u32> {
    const FS_IOC_GETVERSION: libc::c_ulong = 0x8008_7601;
    let mut generation: libc::c_long = 0;
    // SAFETY: FS_IOC_GETVERSION writes one long into `generation`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETVERSION, &mut generation) })?;
    Ok(generation as u32)
}

/// `ftruncate` of a descriptor open for writing.
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: plain system call.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// `fsync`: the object's data and metadata to stable storage. `fd` must not be `O_PATH`.
pub(crate) fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor the caller holds.
    check(unsafe { libc::fsync(fd.as_raw_fd()) }).map(drop)
}

/// `syncfs`: everything of the file system `fd` is on (data, metadata, the journal) to
/// stable storage. `fd` must not be `O_PATH`.
pub(crate) fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor the caller holds.
    check(unsafe { libc::syncfs(fd.as_raw_fd()) }).map(drop)
}
