//! Changes to names and attributes are on stable storage before their reply.
//!
//! RFC 1813 counts CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME and LINK among the
//! synchronous procedures, and knfsd (with its default `sync` export) also commits SETATTR:
//! a client that got a reply may forget the request, so what the reply reports must survive a
//! crash of the server's machine. Without this a new file, a rename or a truncation lives in
//! the kernel's memory until the file system's next journal commit (five seconds on ext4), and
//! a power cut loses what the client was told was done.
//!
//! The objects are `O_PATH` descriptors, which `fsync` refuses, so each is opened anew
//! (`/proc/self/fd`, as the server's own identity) and synced; a file CREATE has just made is
//! synced through the read-write descriptor it was made with. Regular files and directories
//! are synced themselves; other objects (symbolic links, FIFOs, sockets, devices) through the
//! directory that holds their name, which on a journaling file system commits the inode made
//! or changed with it. Where an object cannot be opened (a server that is not root, on a mode
//! that shuts it out) the whole file system is synced instead (`syncfs` of the export root):
//! slower, never less durable. A failed sync is a write failure: the caller gets its status
//! and the server's write verifier changes, as for a failed COMMIT.

use std::os::fd::{AsFd, BorrowedFd};

use super::super::sys::{self, Stat};
use super::LocalStore;
use crate::storage::{StoreError, StoreResult};

impl LocalStore {
    /// Makes the changes to `objects` durable: each a regular file or a directory, among them
    /// the directory whose entries changed.
    pub(super) fn commit_metadata(&self, objects: &[BorrowedFd<'_>]) -> StoreResult<()> {
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
        let mut whole_fs = false;
        for fd in objects {
            match sys::reopen(*fd, flags) {
                Ok(own) => std::fs::File::from(own)
                    .sync_all()
                    .map_err(|e| StoreError::write_failed(&e))?,
                Err(err) => {
                    tracing::debug!(%err, "reopen to sync failed; syncing the file system");
                    whole_fs = true;
                }
            }
        }
        if whole_fs {
            sys::syncfs(self.root.as_fd()).map_err(|e| StoreError::write_failed(&e))?;
        }
        Ok(())
    }

    /// Makes a new regular file durable with the directory that holds its name: `file` is
    /// the descriptor it was created and opened with (read-write), synced as it is, without
    /// the second open an `O_PATH` descriptor needs; then the directory.
    pub(super) fn commit_new_file(
        &self,
        file: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
    ) -> StoreResult<()> {
        sys::fsync(file).map_err(|e| StoreError::write_failed(&e))?;
        self.commit_metadata(&[dir])
    }

    /// Makes an attribute change of `fd`'s object durable: the object itself when it can be
    /// synced, the whole file system otherwise (its directory is not known here).
    pub(super) fn commit_attributes(&self, fd: BorrowedFd<'_>, st: &Stat) -> StoreResult<()> {
        if st.is_file() || st.is_dir() {
            return self.commit_metadata(&[fd]);
        }
        sys::syncfs(self.root.as_fd()).map_err(|e| StoreError::write_failed(&e))
    }
}
