//! NFS version 3 (RFC 1813): every procedure's arguments and results, and their XDR.
//!
//! The client encodes [`Nfs3Call`]s and decodes [`Nfs3Reply`]s; the server does the reverse.
//! All decoding is bounded: file handles by [`MAX_FH_BYTES`], names and paths by
//! [`MAX_PATH_BYTES`], READ/WRITE payloads by the decoder's negotiated
//! [`XdrDecoder::max_data_bytes`](crate::xdr::XdrDecoder::max_data_bytes), and directory
//! listings by the record they arrive in. Payloads are never copied: WRITE and READ data are
//! encoded as shared segments and decoded as slices of the received record.
//! [`Nfs3Status::errno`] and [`Nfs3Status::from_errno`] are the one table between statuses
//! and errno values, for the server and the client.

pub(crate) mod codec;

mod args;
mod dispatch;
mod peek;
mod res;
mod status_errno;
mod types;

#[cfg(test)]
mod tests;

pub use args::*;
pub use dispatch::{Nfs3Call, Nfs3Reply, decode_call, decode_reply};
pub use peek::peek_reply_data_bytes;
pub use res::*;
pub use status_errno::errno;
pub use types::*;

/// The NFS program number.
pub const PROGRAM: u32 = 100003;

/// The NFS version this module speaks.
pub const VERSION: u32 = 3;

/// Maximum size of a file handle (`NFS3_FHSIZE`).
pub const MAX_FH_BYTES: u32 = 64;

/// Longest file name a server or client of this project uses (Linux `NAME_MAX`). Longer
/// names still decode (up to [`MAX_PATH_BYTES`]), so that a server can answer them
/// `NFS3ERR_NAMETOOLONG` instead of rejecting the whole call.
pub const MAX_NAME_BYTES: u32 = 255;

/// Longest `filename3` or `nfspath3` (symbolic link target) accepted when decoding: Linux's
/// `PATH_MAX`.
pub const MAX_PATH_BYTES: u32 = 4096;

/// Procedure numbers.
pub mod procs {
    /// Do nothing (ping).
    pub const NULL: u32 = 0;
    /// Get file attributes.
    pub const GETATTR: u32 = 1;
    /// Set file attributes.
    pub const SETATTR: u32 = 2;
    /// Look up a name in a directory.
    pub const LOOKUP: u32 = 3;
    /// Check access permission.
    pub const ACCESS: u32 = 4;
    /// Read a symbolic link.
    pub const READLINK: u32 = 5;
    /// Read from a file.
    pub const READ: u32 = 6;
    /// Write to a file.
    pub const WRITE: u32 = 7;
    /// Create a file.
    pub const CREATE: u32 = 8;
    /// Create a directory.
    pub const MKDIR: u32 = 9;
    /// Create a symbolic link.
    pub const SYMLINK: u32 = 10;
    /// Create a special device or pipe.
    pub const MKNOD: u32 = 11;
    /// Remove a file.
    pub const REMOVE: u32 = 12;
    /// Remove a directory.
    pub const RMDIR: u32 = 13;
    /// Rename a file or directory.
    pub const RENAME: u32 = 14;
    /// Create a hard link.
    pub const LINK: u32 = 15;
    /// Read a directory.
    pub const READDIR: u32 = 16;
    /// Read a directory with attributes and handles.
    pub const READDIRPLUS: u32 = 17;
    /// Get dynamic file system information.
    pub const FSSTAT: u32 = 18;
    /// Get static file system information.
    pub const FSINFO: u32 = 19;
    /// Get POSIX path configuration.
    pub const PATHCONF: u32 = 20;
    /// Commit cached writes to stable storage.
    pub const COMMIT: u32 = 21;
}

/// True for the procedures that change the server's namespace or attributes in a way that
/// doing them twice would show (SETATTR, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR,
/// RENAME, LINK): a retransmission of one must be answered from a duplicate request cache,
/// not run again. WRITE and COMMIT are idempotent.
pub fn is_non_idempotent(proc_num: u32) -> bool {
    matches!(
        proc_num,
        procs::SETATTR
            | procs::CREATE
            | procs::MKDIR
            | procs::SYMLINK
            | procs::MKNOD
            | procs::REMOVE
            | procs::RMDIR
            | procs::RENAME
            | procs::LINK
    )
}

/// The name of NFSv3 procedure `proc_num` (`"GETATTR"`), or `"UNKNOWN"`.
pub fn proc_name(proc_num: u32) -> &'static str {
    match proc_num {
        procs::NULL => "NULL",
        procs::GETATTR => "GETATTR",
        procs::SETATTR => "SETATTR",
        procs::LOOKUP => "LOOKUP",
        procs::ACCESS => "ACCESS",
        procs::READLINK => "READLINK",
        procs::READ => "READ",
        procs::WRITE => "WRITE",
        procs::CREATE => "CREATE",
        procs::MKDIR => "MKDIR",
        procs::SYMLINK => "SYMLINK",
        procs::MKNOD => "MKNOD",
        procs::REMOVE => "REMOVE",
        procs::RMDIR => "RMDIR",
        procs::RENAME => "RENAME",
        procs::LINK => "LINK",
        procs::READDIR => "READDIR",
        procs::READDIRPLUS => "READDIRPLUS",
        procs::FSSTAT => "FSSTAT",
        procs::FSINFO => "FSINFO",
        procs::PATHCONF => "PATHCONF",
        procs::COMMIT => "COMMIT",
        _ => "UNKNOWN",
    }
}

/// ACCESS permission bits (`ACCESS3_*`).
pub mod access {
    /// Read data or list a directory.
    pub const READ: u32 = 0x1;
    /// Look up a name in a directory.
    pub const LOOKUP: u32 = 0x2;
    /// Rewrite existing data or directory entries.
    pub const MODIFY: u32 = 0x4;
    /// Write new data or add directory entries.
    pub const EXTEND: u32 = 0x8;
    /// Delete a directory entry.
    pub const DELETE: u32 = 0x10;
    /// Execute a file (no meaning for directories).
    pub const EXECUTE: u32 = 0x20;
}

/// FSINFO `properties` bits (`FSF3_*`).
pub mod fsf {
    /// The file system supports hard links.
    pub const LINK: u32 = 0x1;
    /// The file system supports symbolic links.
    pub const SYMLINK: u32 = 0x2;
    /// PATHCONF is the same for every file in the file system.
    pub const HOMOGENEOUS: u32 = 0x8;
    /// The server can set times with SETATTR.
    pub const CANSETTIME: u32 = 0x10;
}
