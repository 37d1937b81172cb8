//! NFS status <-> errno: one table, read one way by a server and the other by a client.
//!
//! Most NFSv3 errors are named after a POSIX errno (RFC 1813 section 2.6), so a server answers
//! a failed system call with the status of its errno, and a client reports a status as the
//! errno it names. A few statuses have no errno of their own (a client reports the nearest,
//! as Linux's does), and a server's file system gives a few errnos that have no status of
//! their own (they are answered with the nearest). Both halves are rows of [`TABLE`], so they
//! cannot drift apart. The numbers are Linux's, on every platform: NFS clients report Linux's
//! numbers so that a message names the same error everywhere, and the server runs on Linux.

use super::Nfs3Status;

/// Linux errno values: the ones the table maps and the ones a client reports for a failed
/// transport, with their symbolic names.
pub mod errno {
    #![allow(missing_docs)]
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const ENXIO: i32 = 6;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const EXDEV: i32 = 18;
    pub const ENODEV: i32 = 19;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const ETXTBSY: i32 = 26;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const EMLINK: i32 = 31;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOTEMPTY: i32 = 39;
    pub const ELOOP: i32 = 40;
    pub const EREMOTE: i32 = 66;
    pub const EPROTO: i32 = 71;
    pub const EOVERFLOW: i32 = 75;
    pub const EOPNOTSUPP: i32 = 95;
    pub const ECONNRESET: i32 = 104;
    pub const ETIMEDOUT: i32 = 110;
    pub const ECONNREFUSED: i32 = 111;
    pub const EHOSTUNREACH: i32 = 113;
    pub const ESTALE: i32 = 116;
    pub const EREMOTEIO: i32 = 121;
    pub const EDQUOT: i32 = 122;

    /// The symbolic name of an errno value ("ENOENT"), or "E?" for one not listed.
    pub fn name(errno: i32) -> &'static str {
        match errno {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            EIO => "EIO",
            ENXIO => "ENXIO",
            EBADF => "EBADF",
            EAGAIN => "EAGAIN",
            EACCES => "EACCES",
            EBUSY => "EBUSY",
            EEXIST => "EEXIST",
            EXDEV => "EXDEV",
            ENODEV => "ENODEV",
            ENOTDIR => "ENOTDIR",
            EISDIR => "EISDIR",
            EINVAL => "EINVAL",
            ETXTBSY => "ETXTBSY",
            EFBIG => "EFBIG",
            ENOSPC => "ENOSPC",
            EROFS => "EROFS",
            EMLINK => "EMLINK",
            ENAMETOOLONG => "ENAMETOOLONG",
            ENOTEMPTY => "ENOTEMPTY",
            ELOOP => "ELOOP",
            EREMOTE => "EREMOTE",
            EPROTO => "EPROTO",
            EOVERFLOW => "EOVERFLOW",
            EOPNOTSUPP => "EOPNOTSUPP",
            ECONNRESET => "ECONNRESET",
            ETIMEDOUT => "ETIMEDOUT",
            ECONNREFUSED => "ECONNREFUSED",
            EHOSTUNREACH => "EHOSTUNREACH",
            ESTALE => "ESTALE",
            EREMOTEIO => "EREMOTEIO",
            EDQUOT => "EDQUOT",
            _ => "E?",
        }
    }
}

use errno::*;

/// Which way a row of [`TABLE`] is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// The status names the errno: both ways.
    Both,
    /// A status without an errno of its own, reported as this one.
    ToErrno,
    /// An errno without a status of its own, answered with this one.
    FromErrno,
}

/// The statuses and errnos, each row read the way it says; the first row that fits wins.
const TABLE: &[(Nfs3Status, i32, Way)] = &[
    (Nfs3Status::Perm, EPERM, Way::Both),
    (Nfs3Status::NoEnt, ENOENT, Way::Both),
    (Nfs3Status::Io, EIO, Way::Both),
    (Nfs3Status::NxIo, ENXIO, Way::Both),
    (Nfs3Status::Acces, EACCES, Way::Both),
    (Nfs3Status::Exist, EEXIST, Way::Both),
    (Nfs3Status::XDev, EXDEV, Way::Both),
    (Nfs3Status::NoDev, ENODEV, Way::Both),
    (Nfs3Status::NotDir, ENOTDIR, Way::Both),
    (Nfs3Status::IsDir, EISDIR, Way::Both),
    (Nfs3Status::Inval, EINVAL, Way::Both),
    (Nfs3Status::FBig, EFBIG, Way::Both),
    (Nfs3Status::NoSpc, ENOSPC, Way::Both),
    (Nfs3Status::RoFs, EROFS, Way::Both),
    (Nfs3Status::MLink, EMLINK, Way::Both),
    (Nfs3Status::NameTooLong, ENAMETOOLONG, Way::Both),
    (Nfs3Status::NotEmpty, ENOTEMPTY, Way::Both),
    (Nfs3Status::DQuot, EDQUOT, Way::Both),
    (Nfs3Status::Stale, ESTALE, Way::Both),
    (Nfs3Status::NotSupp, EOPNOTSUPP, Way::Both),
    (Nfs3Status::Jukebox, EAGAIN, Way::Both),
    // NFS3ERR_REMOTE is about the server's paths; a server answers a file system's EREMOTE,
    // like EREMOTEIO, as an I/O error.
    (Nfs3Status::Remote, EREMOTE, Way::ToErrno),
    (Nfs3Status::ServerFault, EREMOTEIO, Way::ToErrno),
    // Linux reports a bad handle as ESTALE to applications as well.
    (Nfs3Status::BadHandle, ESTALE, Way::ToErrno),
    (Nfs3Status::NotSync, EIO, Way::ToErrno),
    (Nfs3Status::BadCookie, EINVAL, Way::ToErrno),
    (Nfs3Status::TooSmall, EINVAL, Way::ToErrno),
    (Nfs3Status::BadType, EINVAL, Way::ToErrno),
    // Busy: try again later.
    (Nfs3Status::Jukebox, EBUSY, Way::FromErrno),
    (Nfs3Status::Jukebox, ETXTBSY, Way::FromErrno),
    // A symbolic link where the server refused to follow one: the object is not what the
    // client thinks it is.
    (Nfs3Status::Inval, ELOOP, Way::FromErrno),
    (Nfs3Status::Inval, EBADF, Way::FromErrno),
    (Nfs3Status::Inval, EOVERFLOW, Way::FromErrno),
];

impl Nfs3Status {
    /// The errno (Linux's number) a client reports for this status: the one it names, or
    /// the nearest for a status without one (`NFS3ERR_BADHANDLE` is `ESTALE`,
    /// `NFS3ERR_JUKEBOX` is `EAGAIN`, a value RFC 1813 does not define is `EIO`). `None` for
    /// `NFS3_OK`, which is no error.
    pub fn errno(self) -> Option<i32> {
        match self {
            Self::Ok => None,
            Self::Unknown(_) => Some(EIO),
            status => TABLE
                .iter()
                .find(|&&(s, _, way)| s == status && way != Way::FromErrno)
                .map(|&(_, errno, _)| errno),
        }
    }

    /// The status a server answers for a failure with `errno` (Linux's number): the one that
    /// names it, or the nearest (`EBUSY` is `NFS3ERR_JUKEBOX`, `ELOOP` is `NFS3ERR_INVAL`);
    /// `NFS3ERR_IO` for an errno the table does not name.
    pub fn from_errno(errno: i32) -> Self {
        TABLE
            .iter()
            .find(|&&(_, e, way)| e == errno && way != Way::ToErrno)
            .map_or(Self::Io, |&(status, _, _)| status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status RFC 1813 defines, and one it does not.
    const EVERY_STATUS: [Nfs3Status; 30] = [
        Nfs3Status::Ok,
        Nfs3Status::Perm,
        Nfs3Status::NoEnt,
        Nfs3Status::Io,
        Nfs3Status::NxIo,
        Nfs3Status::Acces,
        Nfs3Status::Exist,
        Nfs3Status::XDev,
        Nfs3Status::NoDev,
        Nfs3Status::NotDir,
        Nfs3Status::IsDir,
        Nfs3Status::Inval,
        Nfs3Status::FBig,
        Nfs3Status::NoSpc,
        Nfs3Status::RoFs,
        Nfs3Status::MLink,
        Nfs3Status::NameTooLong,
        Nfs3Status::NotEmpty,
        Nfs3Status::DQuot,
        Nfs3Status::Stale,
        Nfs3Status::Remote,
        Nfs3Status::BadHandle,
        Nfs3Status::NotSync,
        Nfs3Status::BadCookie,
        Nfs3Status::NotSupp,
        Nfs3Status::TooSmall,
        Nfs3Status::ServerFault,
        Nfs3Status::BadType,
        Nfs3Status::Jukebox,
        Nfs3Status::Unknown(12345),
    ];

    /// Where a status without an errno of its own comes back to, through its errno.
    fn round_trip_of(status: Nfs3Status) -> Nfs3Status {
        match status {
            Nfs3Status::Remote
            | Nfs3Status::ServerFault
            | Nfs3Status::NotSync
            | Nfs3Status::Unknown(_) => Nfs3Status::Io,
            Nfs3Status::BadHandle => Nfs3Status::Stale,
            Nfs3Status::BadCookie | Nfs3Status::TooSmall | Nfs3Status::BadType => Nfs3Status::Inval,
            status => status,
        }
    }

    #[test]
    fn every_status_round_trips_through_its_errno() {
        for status in EVERY_STATUS {
            assert_eq!(Nfs3Status::from_u32(status.to_u32()), status, "wire");
            let Some(errno) = status.errno() else {
                assert_eq!(status, Nfs3Status::Ok);
                continue;
            };
            let back = Nfs3Status::from_errno(errno);
            assert_eq!(back, round_trip_of(status), "{status:?} -> {errno}");
            let again = back.errno().map(Nfs3Status::from_errno);
            assert_eq!(again, Some(back), "{back:?} is a fixed point");
        }
    }

    #[test]
    fn every_row_reads_its_way() {
        for &(status, errno, way) in TABLE {
            if way != Way::ToErrno {
                assert_eq!(Nfs3Status::from_errno(errno), status, "errno {errno}");
            }
            if way != Way::FromErrno {
                assert_eq!(status.errno(), Some(errno), "{status:?}");
            }
        }
        assert_eq!(Nfs3Status::from_errno(0), Nfs3Status::Io);
        assert_eq!(Nfs3Status::from_errno(-1), Nfs3Status::Io);
        assert_eq!(Nfs3Status::from_errno(EREMOTE), Nfs3Status::Io);
    }
}
