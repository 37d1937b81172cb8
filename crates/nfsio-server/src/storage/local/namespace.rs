//! The local store's operations on directory entries: LOOKUP, CREATE, MKDIR, SYMLINK,
//! MKNOD, REMOVE, RMDIR, RENAME, LINK and READDIR.
//!
//! Each one names an entry of a directory it holds by descriptor, and makes its system calls
//! as the caller (`mkdirat`, `unlinkat`, `renameat`, ... relative to that descriptor), so the
//! kernel checks write and search permission, the sticky bit and `protected_hardlinks`, and
//! gives new objects their owner, group and set-gid bit. Attributes of a new object are set
//! on the descriptor that made it (CREATE) or, for the calls that return no descriptor
//! (`mkdirat`, `symlinkat`, `mknodat`), on one opened right after by name: under the caller's
//! identity, so that even if another client swapped the name meanwhile, the kernel lets the
//! caller change nothing it could not change anyway.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use bytes::Bytes;
use nfsio_proto::nfs3::{Fattr, MknodData, Nfs3Status, Sattr, SpecData};

use super::super::sys::{self, TimeSet, Timestamp};
use super::locator::{Mode, Object};
use super::{DIRENT_BUF_BYTES, LocalStore, cstring, denied, lock};
use crate::storage::{
    Caller, CreateMode, Created, DirEntry, DirPage, FileId, StoreError, StoreResult, check_name,
    check_new_name,
};

/// Maps the "entry exists" answer of an exclusive create to its status.
fn exists(err: &std::io::Error) -> bool {
    err.raw_os_error() == Some(libc::EEXIST)
}

impl LocalStore {
    /// Answers a creating procedure for the object `fd` names, now `name` in `dir`.
    fn created(
        &self,
        dir: &Object,
        dir_id: FileId,
        name: &[u8],
        fd: BorrowedFd<'_>,
    ) -> StoreResult<Created> {
        let st = sys::stat_fd(fd)?;
        let id = self.identify(fd, &st)?;
        self.remember(id, dir_id, name);
        Ok(Created {
            id,
            attr: self.fattr(&st),
            dir_wcc: self.dir_wcc(&dir.stat, dir.fd.as_fd()),
        })
    }

    /// Opens `name` in `dir` (`O_PATH`, never following a link) as the caller.
    fn open_entry(
        &self,
        caller: &Caller,
        dir: BorrowedFd<'_>,
        name: &CStr,
    ) -> StoreResult<OwnedFd> {
        self.as_caller(caller, || Ok(sys::open_at(dir, name, libc::O_PATH, 0)?))
    }

    /// The attributes a CREATE, MKDIR, SYMLINK or MKNOD sets after making the object (its
    /// mode went with the making); a size of 0 is how O_TRUNC arrives and means nothing new.
    fn rest_of(attrs: &Sattr) -> Sattr {
        Sattr {
            mode: None,
            size: attrs.size.filter(|&size| size != 0),
            ..attrs.clone()
        }
    }

    pub(super) fn lookup_entry(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
    ) -> StoreResult<(FileId, Fattr)> {
        check_name(name)?;
        let dir_obj = self.open_dir(dir)?;
        let dir_fd = dir_obj.fd.as_fd();
        match name {
            b"." => {
                self.as_caller(caller, || Ok(sys::access_fd(dir_fd, libc::X_OK)?))?;
                Ok((dir, self.fattr(&dir_obj.stat)))
            }
            b".." => {
                let parent = self.parent_of(caller, dir, &dir_obj)?;
                let id = self.identify(parent.fd.as_fd(), &parent.stat)?;
                Ok((id, self.fattr(&parent.stat)))
            }
            _ => {
                let cname = cstring(name)?;
                let fd = self.open_entry(caller, dir_fd, &cname)?;
                let st = sys::stat_fd(fd.as_fd())?;
                if !self.same_mount(&st) {
                    // Another mount inside the export: not served.
                    return denied(Nfs3Status::Acces);
                }
                let id = self.identify(fd.as_fd(), &st)?;
                self.remember(id, dir, name);
                Ok((id, self.fattr(&st)))
            }
        }
    }

    /// `..` of `dir`: the root is its own parent, and a parent outside the export is refused.
    fn parent_of(&self, caller: &Caller, dir: FileId, dir_obj: &Object) -> StoreResult<Object> {
        if dir == self.root_id {
            return self.open_id(dir);
        }
        let fd = self.as_caller(caller, || {
            Ok(sys::open_at(
                dir_obj.fd.as_fd(),
                c"..",
                libc::O_PATH | libc::O_DIRECTORY,
                0,
            )?)
        })?;
        if !self.is_inside(fd.as_fd())? {
            return denied(Nfs3Status::Acces);
        }
        let stat = sys::stat_fd(fd.as_fd())?;
        Ok(Object { fd, stat })
    }

    pub(super) fn create_file(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        mode: CreateMode<'_>,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let dir_obj = self.open_dir(dir)?;
        let base = dir_obj.fd.as_fd();
        let (attrs, perm, exclusive) = match mode {
            CreateMode::Exclusive(verf) => (None, 0o600, Some(verf.0)),
            CreateMode::Unchecked(attrs) | CreateMode::Guarded(attrs) => {
                (Some(attrs), attrs.mode.unwrap_or(0o644), None)
            }
        };
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NONBLOCK;
        let made = self.as_caller(caller, || match sys::open_at(base, &cname, flags, perm) {
            Ok(fd) => Ok(Some(fd)),
            Err(err) if exists(&err) => Ok(None),
            Err(err) => Err(err.into()),
        })?;
        match (made, exclusive) {
            (Some(fd), Some(verf)) => {
                // The verifier is kept in the new file's times (mtime seconds, atime seconds),
                // as knfsd does; the client sets the real times with SETATTR right after.
                let (atime, mtime) = verifier_times(verf);
                self.as_caller(caller, || {
                    Ok(sys::utimens_fd(
                        fd.as_fd(),
                        TimeSet::At(atime),
                        TimeSet::At(mtime),
                    )?)
                })?;
                self.new_file(dir_obj, dir, name, fd)
            }
            (Some(fd), None) => {
                let rest = Self::rest_of(attrs.unwrap_or(&Sattr::default()));
                self.apply_sattr(caller, fd.as_fd(), &rest, false)?;
                if let Some(size) = rest.size {
                    self.as_caller(caller, || Ok(sys::ftruncate(fd.as_fd(), size)?))?;
                }
                self.new_file(dir_obj, dir, name, fd)
            }
            (None, Some(verf)) => {
                let fd = self.open_entry(caller, base, &cname)?;
                let st = sys::stat_fd(fd.as_fd())?;
                let (atime, mtime) = verifier_times(verf);
                if st.is_file() && st.mtime == mtime && st.atime == atime {
                    tracing::debug!("exclusive CREATE retransmitted: verifier matches");
                    self.created(&dir_obj, dir, name, fd.as_fd())
                } else {
                    denied(Nfs3Status::Exist)
                }
            }
            (None, None) => {
                if matches!(mode, CreateMode::Guarded(_)) {
                    return denied(Nfs3Status::Exist);
                }
                // UNCHECKED on an existing file: like knfsd, only the size applies (a size of
                // 0 is how O_TRUNC arrives), as a truncation by the caller.
                let fd = self.open_entry(caller, base, &cname)?;
                let st = sys::stat_fd(fd.as_fd())?;
                if st.is_dir() {
                    return denied(Nfs3Status::IsDir);
                }
                if !st.is_file() {
                    return denied(Nfs3Status::Exist);
                }
                let created = self.created(&dir_obj, dir, name, fd.as_fd())?;
                if let Some(size) = attrs.and_then(|a| a.size) {
                    self.truncate_as(caller, created.id, size)?;
                    self.commit_metadata(&[fd.as_fd()])?;
                    let st = sys::stat_fd(fd.as_fd())?;
                    return Ok(Created {
                        attr: self.fattr(&st),
                        ..created
                    });
                }
                Ok(created)
            }
        }
    }

    /// Answers CREATE for the file just made as `fd`, and keeps `fd` for the WRITEs to come.
    fn new_file(
        &self,
        dir_obj: Object,
        dir: FileId,
        name: &[u8],
        fd: OwnedFd,
    ) -> StoreResult<Created> {
        self.commit_new_file(fd.as_fd(), dir_obj.fd.as_fd())?;
        let created = self.created(&dir_obj, dir, name, fd.as_fd())?;
        let file = Arc::new(File::from(fd));
        lock(&self.files).insert(created.id, file, true, self.options.open_files);
        Ok(created)
    }

    /// Makes an object with `make` (as the caller), opens it by name as the caller, and
    /// applies the rest of `attrs` to it.
    fn make_then_set(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        attrs: &Sattr,
        is_symlink: bool,
        make: impl FnOnce(BorrowedFd<'_>, &CStr) -> std::io::Result<()>,
    ) -> StoreResult<Created> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let dir_obj = self.open_dir(dir)?;
        let base = dir_obj.fd.as_fd();
        self.as_caller(caller, || Ok(make(base, &cname)?))?;
        let fd = self.open_entry(caller, base, &cname)?;
        let mut rest = Self::rest_of(attrs);
        rest.size = None;
        self.apply_sattr(caller, fd.as_fd(), &rest, is_symlink)?;
        if sys::stat_fd(fd.as_fd())?.is_dir() {
            self.commit_metadata(&[fd.as_fd(), base])?;
        } else {
            self.commit_metadata(&[base])?;
        }
        self.created(&dir_obj, dir, name, fd.as_fd())
    }

    pub(super) fn make_dir(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        let mode = attrs.mode.unwrap_or(0o755) & 0o7777;
        self.make_then_set(caller, dir, name, attrs, false, |base, cname| {
            sys::mkdir_at(base, cname, mode)
        })
    }

    pub(super) fn make_symlink(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        target: &[u8],
        attrs: &Sattr,
    ) -> StoreResult<Created> {
        if target.is_empty() {
            return denied(Nfs3Status::Inval);
        }
        if target.len() > super::MAX_LINK_BYTES {
            return denied(Nfs3Status::NameTooLong);
        }
        let ctarget = cstring(target)?;
        self.make_then_set(caller, dir, name, attrs, true, |base, cname| {
            sys::symlink_at(&ctarget, base, cname)
        })
    }

    pub(super) fn make_node(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        what: &MknodData,
    ) -> StoreResult<Created> {
        let no_device = SpecData::default();
        let (type_bits, attrs, spec) = match what {
            MknodData::Fifo(attrs) => (libc::S_IFIFO, attrs, &no_device),
            MknodData::Socket(attrs) => (libc::S_IFSOCK, attrs, &no_device),
            // Device nodes on an export are a way around the host's device permissions for
            // anyone with local access: only made when the export allows them, and then as
            // the caller, so that the kernel's CAP_MKNOD check decides.
            MknodData::Char(_) | MknodData::Block(_) if !self.options.devices => {
                return denied(Nfs3Status::NotSupp);
            }
            MknodData::Char(dev) => (libc::S_IFCHR, &dev.dev_attributes, &dev.spec),
            MknodData::Block(dev) => (libc::S_IFBLK, &dev.dev_attributes, &dev.spec),
            MknodData::Other(_) => return denied(Nfs3Status::BadType),
        };
        let mode = type_bits | (attrs.mode.unwrap_or(0o644) & 0o7777);
        self.make_then_set(caller, dir, name, attrs, false, |base, cname| {
            sys::mknod_at(base, cname, mode, spec.major, spec.minor)
        })
    }

    /// The identity of `name` in `dir` when its last name goes: to forget it (tree mode), and
    /// to close the server's own descriptor of it, which would keep the inode (and its
    /// space) allocated.
    fn identity_before_removal(
        &self,
        caller: &Caller,
        dir: BorrowedFd<'_>,
        name: &CStr,
    ) -> Option<FileId> {
        let fd = self.open_entry(caller, dir, name).ok()?;
        let st = sys::stat_fd(fd.as_fd()).ok()?;
        let id = self.identify(fd.as_fd(), &st).ok()?;
        (st.nlink <= 1 || st.is_dir()).then_some(id)
    }

    pub(super) fn unlink_entry(
        &self,
        caller: &Caller,
        dir: FileId,
        name: &[u8],
        is_dir: bool,
    ) -> StoreResult<nfsio_proto::nfs3::WccData> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let dir_obj = self.open_dir(dir)?;
        let base = dir_obj.fd.as_fd();
        let victim = self.identity_before_removal(caller, base, &cname);
        self.as_caller(caller, || {
            match sys::unlink_at(base, &cname, is_dir) {
                Ok(()) => Ok(()),
                // unlink(2) of a directory answers EISDIR on Linux; EPERM elsewhere.
                Err(err) if !is_dir && err.raw_os_error() == Some(libc::EPERM) => {
                    match sys::stat_at(base, &cname) {
                        Ok(st) if st.is_dir() => denied(Nfs3Status::IsDir),
                        _ => Err(err.into()),
                    }
                }
                Err(err) => Err(err.into()),
            }
        })?;
        if let Some(id) = victim {
            self.forget(id);
        }
        self.commit_metadata(&[base])?;
        Ok(self.dir_wcc(&dir_obj.stat, base))
    }

    pub(super) fn rename_entry(
        &self,
        caller: &Caller,
        from_dir: FileId,
        from_name: &[u8],
        to_dir: FileId,
        to_name: &[u8],
    ) -> StoreResult<(nfsio_proto::nfs3::WccData, nfsio_proto::nfs3::WccData)> {
        check_new_name(from_name)?;
        check_new_name(to_name)?;
        let from_c = cstring(from_name)?;
        let to_c = cstring(to_name)?;
        let from_obj = self.open_dir(from_dir)?;
        let to_obj = self.open_dir(to_dir)?;
        let (from_base, to_base) = (from_obj.fd.as_fd(), to_obj.fd.as_fd());
        let moving = match self.mode {
            Mode::Kernel => None,
            Mode::Tree(_) => self
                .open_entry(caller, from_base, &from_c)
                .ok()
                .and_then(|fd| {
                    let st = sys::stat_fd(fd.as_fd()).ok()?;
                    self.identify(fd.as_fd(), &st).ok()
                }),
        };
        let replaced = self.identity_before_removal(caller, to_base, &to_c);
        self.as_caller(caller, || {
            Ok(sys::rename_at(from_base, &from_c, to_base, &to_c)?)
        })?;
        if let Some(old) = replaced
            && Some(old) != moving
        {
            self.forget(old);
        }
        if let Some(id) = moving {
            self.remember(id, to_dir, to_name);
        }
        if from_dir == to_dir {
            self.commit_metadata(&[to_base])?;
        } else {
            self.commit_metadata(&[from_base, to_base])?;
        }
        Ok((
            self.dir_wcc(&from_obj.stat, from_base),
            self.dir_wcc(&to_obj.stat, to_base),
        ))
    }

    pub(super) fn link_entry(
        &self,
        caller: &Caller,
        id: FileId,
        dir: FileId,
        name: &[u8],
    ) -> StoreResult<(Fattr, nfsio_proto::nfs3::WccData)> {
        check_new_name(name)?;
        let cname = cstring(name)?;
        let source = self.open_id(id)?;
        if source.stat.is_dir() {
            return denied(Nfs3Status::IsDir);
        }
        let dir_obj = self.open_dir(dir)?;
        let base = dir_obj.fd.as_fd();
        self.as_caller(caller, || {
            Ok(sys::link_fd(source.fd.as_fd(), base, &cname)?)
        })?;
        if source.stat.is_file() {
            self.commit_metadata(&[source.fd.as_fd(), base])?;
        } else {
            self.commit_metadata(&[base])?;
        }
        let st = sys::stat_fd(source.fd.as_fd())?;
        Ok((self.fattr(&st), self.dir_wcc(&dir_obj.stat, base)))
    }

    /// One entry's identity and attributes for READDIRPLUS (as the caller: the kernel checks
    /// search permission); none for an entry on another mount.
    fn entry_plus(
        &self,
        dir: FileId,
        listing: BorrowedFd<'_>,
        name: &[u8],
    ) -> Option<(FileId, Fattr)> {
        let cname = cstring(name).ok()?;
        let fd = sys::open_at(listing, &cname, libc::O_PATH, 0).ok()?;
        let st = sys::stat_fd(fd.as_fd()).ok()?;
        if !self.same_mount(&st) {
            return None;
        }
        let id = self.identify(fd.as_fd(), &st).ok()?;
        self.remember(id, dir, name);
        Some((id, self.fattr(&st)))
    }

    pub(super) fn list(
        &self,
        caller: &Caller,
        dir: FileId,
        cookie: u64,
        max_entries: usize,
        plus: bool,
    ) -> StoreResult<DirPage> {
        // Cookies are the file system's own directory offsets (`d_off`), which stay valid
        // while the directory changes (ext4, xfs, btrfs hash or index positions), so the
        // verifier is constant and never checked, as with knfsd.
        let dir_obj = self.open_dir(dir)?;
        let listing = self.as_caller(caller, || {
            Ok(sys::reopen(
                dir_obj.fd.as_fd(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            )?)
        })?;
        sys::seek_dir(listing.as_fd(), cookie)
            .map_err(|_| StoreError::new(Nfs3Status::BadCookie))?;
        let parent = if plus {
            self.parent_of(caller, dir, &dir_obj).ok()
        } else {
            None
        };
        let mut entries = Vec::new();
        let mut buf = vec![0u8; DIRENT_BUF_BYTES];
        let mut eof = false;
        self.as_caller(caller, || {
            'outer: while entries.len() < max_entries {
                let filled = sys::getdents(listing.as_fd(), &mut buf)?;
                if filled == 0 {
                    eof = true;
                    break;
                }
                for raw in sys::parse_dirents(&buf[..filled]) {
                    if entries.len() >= max_entries {
                        // The rest of this buffer is read again from the last cookie.
                        break 'outer;
                    }
                    let (fileid, info) = match raw.name {
                        b"." => (
                            dir_obj.stat.ino,
                            plus.then(|| (dir, self.fattr(&dir_obj.stat))),
                        ),
                        b".." => match &parent {
                            Some(p) => (
                                p.stat.ino,
                                self.identify(p.fd.as_fd(), &p.stat)
                                    .ok()
                                    .map(|id| (id, self.fattr(&p.stat))),
                            ),
                            None => (raw.ino, None),
                        },
                        name => (
                            raw.ino,
                            if plus {
                                self.entry_plus(dir, listing.as_fd(), name)
                            } else {
                                None
                            },
                        ),
                    };
                    entries.push(DirEntry {
                        fileid,
                        name: Bytes::copy_from_slice(raw.name),
                        cookie: raw.next_cookie,
                        plus: info,
                    });
                }
            }
            Ok(())
        })?;
        let dir_attr = sys::stat_fd(dir_obj.fd.as_fd())
            .ok()
            .map(|st| self.fattr(&st));
        Ok(DirPage {
            dir_attr,
            verifier: nfsio_proto::nfs3::CookieVerifier::default(),
            entries,
            eof,
        })
    }
}

/// The (atime, mtime) an exclusive CREATE's verifier is kept in.
fn verifier_times(verf: [u8; 8]) -> (Timestamp, Timestamp) {
    let mtime = Timestamp {
        seconds: i64::from(u32::from_be_bytes([verf[0], verf[1], verf[2], verf[3]])),
        nanos: 0,
    };
    let atime = Timestamp {
        seconds: i64::from(u32::from_be_bytes([verf[4], verf[5], verf[6], verf[7]])),
        nanos: 0,
    };
    (atime, mtime)
}
