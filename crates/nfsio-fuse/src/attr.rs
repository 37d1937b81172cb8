//! Conversions between NFSv3 attributes and FUSE's: `fattr3` into `FileAttr`, the setattr
//! arguments into `sattr3`, and the file types of mknod.
//!
//! Kept apart from the operations so that every place that answers the kernel with
//! attributes builds them the same way (node id, blocks, device numbers, times).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType as FuseType, INodeNo, TimeOrNow};
use nfsio_client::proto::nfs3::{Fattr, FileType, NfsTime, SetTime, SpecData};

use crate::error::{Errno, OpResult};

/// The FUSE attributes of node `ino` from the server's attributes; `blksize` is the
/// preferred I/O size reported in `st_blksize`.
pub fn file_attr(ino: u64, attributes: &Fattr, blksize: u32) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: attributes.size,
        blocks: attributes.used.div_ceil(512),
        atime: system_time(attributes.atime),
        mtime: system_time(attributes.mtime),
        ctime: system_time(attributes.ctime),
        crtime: UNIX_EPOCH,
        kind: fuse_type(attributes.file_type),
        perm: (attributes.mode & 0o7777) as u16,
        nlink: attributes.nlink,
        uid: attributes.uid,
        gid: attributes.gid,
        rdev: encode_dev(attributes.rdev),
        blksize,
        flags: 0,
    }
}

/// Attributes for a reply that needs some but whose fields the kernel does not use: a
/// negative entry (`ino` 0) and the `.` and `..` of a READDIRPLUS listing.
pub fn placeholder(ino: u64, kind: FuseType) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

/// The FUSE file type of an NFS one.
pub fn fuse_type(file_type: FileType) -> FuseType {
    match file_type {
        FileType::Regular => FuseType::RegularFile,
        FileType::Directory => FuseType::Directory,
        FileType::Block => FuseType::BlockDevice,
        FileType::Character => FuseType::CharDevice,
        FileType::Symlink => FuseType::Symlink,
        FileType::Socket => FuseType::Socket,
        FileType::Fifo => FuseType::NamedPipe,
    }
}

/// An NFS time as a `SystemTime`.
pub fn system_time(time: NfsTime) -> SystemTime {
    UNIX_EPOCH + Duration::new(u64::from(time.seconds), time.nseconds)
}

/// A `SystemTime` as an NFS time: EINVAL before 1970 or after 2106 (`nfstime3` holds
/// unsigned 32-bit seconds).
pub fn nfs_time(time: SystemTime) -> OpResult<NfsTime> {
    let since = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Errno(libc::EINVAL))?;
    let seconds = u32::try_from(since.as_secs()).map_err(|_| Errno(libc::EINVAL))?;
    Ok(NfsTime {
        seconds,
        nseconds: since.subsec_nanos(),
    })
}

/// A setattr time as `set_atime`/`set_mtime`: `UTIME_NOW` is SET_TO_SERVER_TIME.
pub fn set_time(time: Option<TimeOrNow>) -> OpResult<SetTime> {
    Ok(match time {
        None => SetTime::DontChange,
        Some(TimeOrNow::Now) => SetTime::ServerTime,
        Some(TimeOrNow::SpecificTime(time)) => SetTime::ClientTime(nfs_time(time)?),
    })
}

/// Device numbers in the kernel's 32-bit encoding (`new_encode_dev`), which FUSE carries.
pub fn encode_dev(spec: SpecData) -> u32 {
    let (major, minor) = (spec.major, spec.minor);
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// The device numbers of the kernel's 32-bit encoding (`new_decode_dev`).
pub fn decode_dev(rdev: u32) -> SpecData {
    SpecData {
        major: (rdev & 0xfff00) >> 8,
        minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_round_trip_the_kernel_encoding() {
        for (major, minor) in [(0, 0), (1, 3), (8, 17), (259, 65_536), (4095, 1 << 19)] {
            let spec = SpecData { major, minor };
            assert_eq!(decode_dev(encode_dev(spec)), spec, "{major}:{minor}");
        }
    }

    #[test]
    fn times_outside_nfstime3_are_einval() {
        assert_eq!(
            nfs_time(UNIX_EPOCH - Duration::from_secs(1)),
            Err(Errno(libc::EINVAL))
        );
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(system_time(nfs_time(t).unwrap()), t);
    }
}
