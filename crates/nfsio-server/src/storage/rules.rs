//! The kernel's permission rules, for the store that has no kernel.
//!
//! The local store runs every operation under the caller's identity and lets Linux decide;
//! the memory store (what the simulation and most tests run on) must decide itself, and does
//! it with these functions, written after Linux's `fs/namei.c` and `fs/attr.c`: mode bits by
//! owner, group and other with root exempt, write and search on a directory to change it, the
//! sticky bit, owners of new objects and set-gid inheritance, who may change which attribute,
//! set-id bits cleared on write, truncate, chmod and chown, and `protected_hardlinks`.
//! Like knfsd, a file's owner may read and write it whatever its mode (NFS clients check
//! permissions at open, and a file created read-only must still receive its data).

use nfsio_proto::nfs3::{Fattr, FileType, Nfs3Status, Sattr, SetTime};

use super::{Caller, Granted, StoreError, StoreResult};

/// Read permission.
pub const MAY_READ: u32 = 4;
/// Write permission.
pub const MAY_WRITE: u32 = 2;
/// Execute (search) permission.
pub const MAY_EXEC: u32 = 1;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// True when `caller` has every bit of `want` on an object with `attr`.
pub fn may(caller: &Caller, attr: &Fattr, want: u32) -> bool {
    if caller.uid == 0 {
        // Root may do anything, except execute a file nobody may execute.
        return want & MAY_EXEC == 0
            || attr.file_type == FileType::Directory
            || attr.mode & 0o111 != 0;
    }
    let bits = if attr.uid == caller.uid {
        (attr.mode >> 6) & 7
    } else if caller.in_group(attr.gid) {
        (attr.mode >> 3) & 7
    } else {
        attr.mode & 7
    };
    bits & want == want
}

/// Root, or the object's owner.
pub fn is_owner(caller: &Caller, attr: &Fattr) -> bool {
    caller.uid == 0 || attr.uid == caller.uid
}

fn denied<T>(status: Nfs3Status) -> StoreResult<T> {
    Err(StoreError::new(status))
}

/// What ACCESS grants.
pub fn granted(caller: &Caller, attr: &Fattr) -> Granted {
    Granted {
        read: may(caller, attr, MAY_READ),
        write: may(caller, attr, MAY_WRITE),
        execute: may(caller, attr, MAY_EXEC),
    }
}

/// Search permission on a directory (LOOKUP).
pub fn check_search(caller: &Caller, dir: &Fattr) -> StoreResult<()> {
    if dir.file_type != FileType::Directory {
        return denied(Nfs3Status::NotDir);
    }
    if !may(caller, dir, MAY_EXEC) {
        return denied(Nfs3Status::Acces);
    }
    Ok(())
}

/// Read permission on a directory (READDIR).
pub fn check_list(caller: &Caller, dir: &Fattr) -> StoreResult<()> {
    if dir.file_type != FileType::Directory {
        return denied(Nfs3Status::NotDir);
    }
    if !may(caller, dir, MAY_READ) {
        return denied(Nfs3Status::Acces);
    }
    Ok(())
}

/// Write and search permission on a directory whose entries change.
pub fn check_change_entries(caller: &Caller, dir: &Fattr) -> StoreResult<()> {
    if dir.file_type != FileType::Directory {
        return denied(Nfs3Status::NotDir);
    }
    if !may(caller, dir, MAY_WRITE | MAY_EXEC) {
        return denied(Nfs3Status::Acces);
    }
    Ok(())
}

/// With the sticky bit on `dir`, only root and the owners of the directory or of the entry
/// may remove or replace it (EPERM, as Linux answers).
pub fn check_sticky(caller: &Caller, dir: &Fattr, entry: &Fattr) -> StoreResult<()> {
    if caller.uid == 0 || dir.mode & S_ISVTX == 0 || dir.uid == caller.uid {
        return Ok(());
    }
    if entry.uid == caller.uid {
        Ok(())
    } else {
        denied(Nfs3Status::Perm)
    }
}

/// READ: read or execute permission (clients read what they execute), or ownership.
pub fn check_read(caller: &Caller, attr: &Fattr) -> StoreResult<()> {
    if is_owner(caller, attr) || may(caller, attr, MAY_READ) || may(caller, attr, MAY_EXEC) {
        Ok(())
    } else {
        denied(Nfs3Status::Acces)
    }
}

/// WRITE and COMMIT: write permission, or ownership.
pub fn check_write(caller: &Caller, attr: &Fattr) -> StoreResult<()> {
    if is_owner(caller, attr) || may(caller, attr, MAY_WRITE) {
        Ok(())
    } else {
        denied(Nfs3Status::Acces)
    }
}

/// The owner and mode of a new object: the caller's uid; the directory's group when it is
/// set-gid, else the caller's; a directory inherits set-gid; a file's set-gid bit is dropped
/// unless the caller is in its group (Linux's `inode_init_owner` and `mode_strip_sgid`).
pub fn new_object(caller: &Caller, dir: &Fattr, mode: u32, is_dir: bool) -> (u32, u32, u32) {
    let setgid_dir = dir.mode & S_ISGID != 0;
    let gid = if setgid_dir { dir.gid } else { caller.gid };
    let mut mode = mode & 0o7777;
    if setgid_dir && is_dir {
        mode |= S_ISGID;
    } else if mode & S_ISGID != 0 && caller.uid != 0 && !caller.in_group(gid) {
        mode &= !S_ISGID;
    }
    (caller.uid, gid, mode)
}

/// Who may change which attribute (Linux's `setattr_prepare`), and the mode that results
/// from a change: chmod by a non-member drops set-gid; chown of a non-directory drops the
/// set-id bits. Returns the new mode when it changes.
pub fn check_setattr(caller: &Caller, attr: &Fattr, new: &Sattr) -> StoreResult<Option<u32>> {
    let owner = is_owner(caller, attr);
    let root = caller.uid == 0;
    if new.mode.is_some() && !owner {
        return denied(Nfs3Status::Perm);
    }
    if !root && new.uid.is_some_and(|uid| uid != attr.uid) {
        return denied(Nfs3Status::Perm);
    }
    if !root
        && new
            .gid
            .is_some_and(|gid| gid != attr.gid && !(owner && caller.in_group(gid)))
    {
        return denied(Nfs3Status::Perm);
    }
    if new.size.is_some() && !owner && !may(caller, attr, MAY_WRITE) {
        return denied(Nfs3Status::Acces);
    }
    let client_time = |t: SetTime| matches!(t, SetTime::ClientTime(_));
    if (client_time(new.atime) || client_time(new.mtime)) && !owner {
        return denied(Nfs3Status::Perm);
    }
    let server_time = |t: SetTime| matches!(t, SetTime::ServerTime);
    if (server_time(new.atime) || server_time(new.mtime)) && !owner && !may(caller, attr, MAY_WRITE)
    {
        return denied(Nfs3Status::Acces);
    }
    let mut mode = attr.mode & 0o7777;
    if let Some(requested) = new.mode {
        mode = requested & 0o7777;
        let group = new.gid.unwrap_or(attr.gid);
        if mode & S_ISGID != 0 && !root && !caller.in_group(group) {
            mode &= !S_ISGID;
        }
    }
    let owner_changes =
        new.uid.is_some_and(|uid| uid != attr.uid) || new.gid.is_some_and(|gid| gid != attr.gid);
    if owner_changes && attr.file_type != FileType::Directory {
        mode = kill_setid(mode);
    }
    if new.size.is_some() && attr.file_type == FileType::Regular && !root {
        mode = kill_setid(mode);
    }
    Ok((mode != attr.mode & 0o7777).then_some(mode))
}

/// The mode after a non-root caller wrote a file: set-uid always cleared, set-gid when the
/// group may execute (otherwise it marks mandatory locking); root keeps them.
pub fn mode_after_write(caller: &Caller, attr: &Fattr) -> Option<u32> {
    if caller.uid == 0 {
        return None;
    }
    let mode = kill_setid(attr.mode & 0o7777);
    (mode != attr.mode & 0o7777).then_some(mode)
}

fn kill_setid(mode: u32) -> u32 {
    let mut mode = mode & !S_ISUID;
    if mode & 0o010 != 0 {
        mode &= !S_ISGID;
    }
    mode
}

/// `protected_hardlinks`: only the owner, root, or someone who may read and write a file may
/// link to it.
pub fn check_link(caller: &Caller, attr: &Fattr) -> StoreResult<()> {
    if is_owner(caller, attr) || may(caller, attr, MAY_READ | MAY_WRITE) {
        Ok(())
    } else {
        denied(Nfs3Status::Perm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(mode: u32, uid: u32, gid: u32) -> Fattr {
        Fattr {
            mode,
            uid,
            gid,
            ..Fattr::default()
        }
    }

    fn caller(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            gids: vec![50],
        }
    }

    #[test]
    fn mode_bits_by_owner_group_other() {
        let file = attr(0o640, 1000, 100);
        assert!(may(&caller(1000, 1), &file, MAY_READ | MAY_WRITE));
        assert!(may(&caller(1001, 100), &file, MAY_READ));
        assert!(!may(&caller(1001, 100), &file, MAY_WRITE));
        assert!(!may(&caller(1002, 7), &file, MAY_READ));
        let group_via_list = attr(0o040, 1, 50);
        assert!(may(&caller(1002, 7), &group_via_list, MAY_READ));
        // Root may do anything but execute a file without any execute bit.
        assert!(may(&caller(0, 0), &attr(0, 5, 5), MAY_READ | MAY_WRITE));
        assert!(!may(&caller(0, 0), &attr(0o644, 5, 5), MAY_EXEC));
        assert!(may(&caller(0, 0), &attr(0o100, 5, 5), MAY_EXEC));
    }

    #[test]
    fn set_id_bits_follow_linux() {
        let user = caller(1000, 1000);
        let dir = Fattr {
            file_type: FileType::Directory,
            ..attr(0o2777, 0, 0)
        };
        // In a set-gid directory: the directory's group; a new directory inherits set-gid; a
        // file's set-gid is dropped for a non-member of the group.
        assert_eq!(new_object(&user, &dir, 0o755, true), (1000, 0, 0o2755));
        assert_eq!(new_object(&user, &dir, 0o2755, false), (1000, 0, 0o755));
        // A write by a non-root caller clears set-uid, and set-gid with group execute.
        assert_eq!(mode_after_write(&user, &attr(0o6777, 0, 0)), Some(0o777));
        assert_eq!(mode_after_write(&user, &attr(0o2644, 0, 0)), None);
        assert_eq!(mode_after_write(&caller(0, 0), &attr(0o4777, 0, 0)), None);
        // chmod by the owner outside the file's group drops set-gid.
        let mine = attr(0o644, 1000, 7);
        let chmod = Sattr {
            mode: Some(0o2755),
            ..Sattr::default()
        };
        assert_eq!(check_setattr(&user, &mine, &chmod), Ok(Some(0o755)));
    }
}
