//! Running a system call as the NFS caller, so that the kernel decides what the caller may do.
//!
//! As knfsd and nfs-ganesha's VFS backend do, the thread that makes the system calls of an
//! operation takes the caller's file-system identity for their duration: `fsuid`, `fsgid`
//! and the supplementary groups, set with the raw system calls, which change only the calling
//! thread (glibc's wrappers change every thread of the process). With an fsuid other than 0
//! the kernel also drops the file-system capabilities of the thread (CAP_DAC_OVERRIDE,
//! CAP_CHOWN, CAP_FOWNER, CAP_FSETID, ...), so permission checks, the owner and group of new
//! objects, set-gid inheritance and the clearing of set-id bits are exactly Linux's. The
//! server's own identity comes back when the operation ends, also when it panics; a thread
//! that cannot get it back would act as the wrong user, and stops the process.
//!
//! A server that is not root can only act as itself: then every caller must be that identity
//! (the server's squash policy makes it so), and an operation for anyone else is refused.

use nfsio_proto::nfs3::Nfs3Status;
use tracing::error;

use super::super::sys;
use crate::storage::{Caller, StoreError, StoreResult};

/// Linux accepts at most this many supplementary groups (`NGROUPS_MAX`).
const MAX_GROUPS: usize = 65_536;

/// The server's own file-system identity, and whether it may take others.
#[derive(Debug, Clone)]
pub(crate) struct ServerIdentity {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    /// Root: may switch to any caller.
    can_switch: bool,
}

impl ServerIdentity {
    /// The identity of the calling thread, as the store opens.
    pub(crate) fn current() -> Self {
        let uid = sys::set_fsuid(u32::MAX);
        let gid = sys::set_fsgid(u32::MAX);
        let groups = sys::get_groups().unwrap_or_default();
        Self {
            uid,
            gid,
            groups,
            can_switch: uid == 0,
        }
    }

    /// True when the server runs as root (it may act as anyone, and open files by handle).
    pub(crate) fn is_root(&self) -> bool {
        self.can_switch
    }

    /// True when `caller` is the server itself (nothing to switch).
    fn is_self(&self, caller: &Caller) -> bool {
        caller.uid == self.uid && caller.gid == self.gid && caller.gids == self.groups
    }

    /// Runs `op` with the calling thread's file-system identity set to `caller`'s.
    pub(crate) fn run_as<T>(
        &self,
        caller: &Caller,
        op: impl FnOnce() -> StoreResult<T>,
    ) -> StoreResult<T> {
        if self.is_self(caller) || (caller.uid == 0 && self.uid == 0 && caller.gid == 0) {
            // Root acting as root needs no switch: the kernel's checks are root's either way
            // (supplementary groups change nothing for a caller with every capability).
            return op();
        }
        if !self.can_switch {
            if caller.uid == self.uid && caller.gid == self.gid {
                return op();
            }
            error!(
                uid = caller.uid,
                gid = caller.gid,
                "a server that is not root cannot act as another user"
            );
            return Err(StoreError::new(Nfs3Status::Perm));
        }
        let _restore = Switched::to(self, caller)?;
        op()
    }
}

/// The thread acting as a caller; dropping it gives the thread its server identity back.
struct Switched<'a> {
    server: &'a ServerIdentity,
}

impl<'a> Switched<'a> {
    fn to(server: &'a ServerIdentity, caller: &Caller) -> StoreResult<Self> {
        let groups = &caller.gids[..caller.gids.len().min(MAX_GROUPS)];
        // Groups first: setgroups needs CAP_SETGID, which a non-zero fsuid does not take away,
        // but set it while the thread is still fully the server anyway.
        if let Err(err) = sys::set_groups(groups) {
            error!(%err, "setgroups for a caller failed");
            return Err(StoreError::new(Nfs3Status::ServerFault));
        }
        let guard = Switched { server };
        sys::set_fsgid(caller.gid);
        sys::set_fsuid(caller.uid);
        // Both calls return the previous value; asking again (-1 changes nothing) tells
        // whether the new one took.
        if sys::set_fsgid(u32::MAX) != caller.gid || sys::set_fsuid(u32::MAX) != caller.uid {
            error!(
                uid = caller.uid,
                gid = caller.gid,
                "cannot take the caller's identity"
            );
            return Err(StoreError::new(Nfs3Status::ServerFault));
        }
        Ok(guard)
    }
}

impl Drop for Switched<'_> {
    fn drop(&mut self) {
        let server = self.server;
        sys::set_fsuid(server.uid);
        sys::set_fsgid(server.gid);
        let groups_back = sys::set_groups(&server.groups).is_ok();
        if !groups_back
            || sys::set_fsuid(u32::MAX) != server.uid
            || sys::set_fsgid(u32::MAX) != server.gid
        {
            // This thread would serve the next request as someone else.
            error!("cannot return to the server's identity: stopping");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switched_thread_is_the_caller_and_comes_back() {
        let server = ServerIdentity::current();
        if !server.is_root() {
            return;
        }
        let caller = Caller {
            uid: 12345,
            gid: 23456,
            gids: vec![34567],
        };
        let seen = server
            .run_as(&caller, || {
                Ok((
                    sys::set_fsuid(u32::MAX),
                    sys::set_fsgid(u32::MAX),
                    sys::get_groups().unwrap_or_default(),
                ))
            })
            .unwrap();
        assert_eq!(seen, (12345, 23456, vec![34567]));
        assert_eq!(sys::set_fsuid(u32::MAX), server.uid);
        assert_eq!(sys::get_groups().unwrap_or_default(), server.groups);
        // Another thread never saw the switch.
        let other = std::thread::spawn(|| sys::set_fsuid(u32::MAX))
            .join()
            .unwrap();
        assert_eq!(other, server.uid);
    }
}
