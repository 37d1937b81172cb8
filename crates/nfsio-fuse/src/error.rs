//! The crate's errors: [`MountError`] for setting a mount up and taking it down, and
//! [`Errno`], what a FUSE operation answers the kernel with.
//!
//! Every NFS failure reaches the kernel through [`NfsError::errno`], the client's one table,
//! so that a program on the mount sees the errno a kernel NFS client would have given it.

use std::io;
use std::path::PathBuf;

use nfsio_client::NfsError;
use thiserror::Error;

/// Why a mount could not be made or ended.
#[derive(Debug, Error)]
pub enum MountError {
    /// The mountpoint is unusable (missing, not a directory).
    #[error("mountpoint {path}: {source}")]
    Mountpoint {
        /// The mountpoint.
        path: PathBuf,
        /// What stat or the check said.
        #[source]
        source: io::Error,
    },
    /// The FUSE session could not be created (no /dev/fuse, no permission, mount(2) failed).
    #[error("FUSE mount on {path}: {source}")]
    Fuse {
        /// The mountpoint.
        path: PathBuf,
        /// What fuser or the kernel said.
        #[source]
        source: io::Error,
    },
    /// The mount did not answer a stat of its root in time.
    #[error("the mount on {path} did not answer: {detail}")]
    NotAnswering {
        /// The mountpoint.
        path: PathBuf,
        /// What the check saw.
        detail: String,
    },
    /// umount2(2) failed.
    #[error("unmount {path}: {source}")]
    Unmount {
        /// The mountpoint.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

/// A FUSE error answer: a positive Linux errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The value for fuser's reply.
    pub fn fuse(self) -> fuser::Errno {
        fuser::Errno::from_i32(self.0)
    }
}

impl From<NfsError> for Errno {
    /// The client's errno, except that a call that timed out (a soft mount's, after
    /// `retrans` retransmissions) is EIO, as on a Linux soft mount.
    fn from(error: NfsError) -> Self {
        tracing::debug!(%error, "operation failed");
        match error.errno() {
            libc::ETIMEDOUT => Errno(libc::EIO),
            errno => Errno(errno),
        }
    }
}

/// The result of one FUSE operation's work.
pub type OpResult<T> = Result<T, Errno>;
