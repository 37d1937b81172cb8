//! `Caller`: who a call acts as on the server.
//!
//! NFSv3 over AUTH_SYS has no sessions: each call carries the uid, gid and supplementary groups
//! it acts as, and the server decides (with its squash and identity rules) what that caller
//! may do. A [`Client`](crate::Client) acts as the identity it was connected with;
//! [`Client::as_caller`](crate::Client::as_caller) gives a handle acting as another, as a
//! multi-user program (a FUSE mount shared with `allow_other`) needs, the way the Linux NFS
//! client sends each process's own credentials.

use bytes::Bytes;
use nfsio_proto::rpc::AuthSysParams;

/// Most supplementary groups AUTH_SYS carries (RFC 5531, `gids<16>`).
pub const MAX_AUTH_SYS_GROUPS: usize = 16;

/// An identity calls act as: AUTH_SYS's uid, gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Caller {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The supplementary groups; only the first [`MAX_AUTH_SYS_GROUPS`] are sent (as the
    /// Linux client does, AUTH_SYS has room for no more).
    pub gids: Vec<u32>,
}

impl Caller {
    /// A caller with `uid`, `gid` and no supplementary groups.
    pub fn new(uid: u32, gid: u32) -> Self {
        Self {
            uid,
            gid,
            gids: Vec::new(),
        }
    }

    /// The same caller with the supplementary groups `gids`.
    pub fn with_groups(mut self, gids: Vec<u32>) -> Self {
        self.gids = gids;
        self
    }

    /// The AUTH_SYS parameters for this caller with the client's `stamp` and machine name.
    pub(crate) fn auth_sys(&self, stamp: u32, machine_name: Bytes) -> AuthSysParams {
        let count = self.gids.len().min(MAX_AUTH_SYS_GROUPS);
        AuthSysParams {
            stamp,
            machine_name,
            uid: self.uid,
            gid: self.gid,
            gids: self.gids[..count].to_vec(),
        }
    }

    /// The caller named by AUTH_SYS parameters.
    pub(crate) fn of(params: &AuthSysParams) -> Self {
        Self {
            uid: params.uid,
            gid: params.gid,
            gids: params.gids.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sixteen_supplementary_groups_are_sent() {
        let caller = Caller::new(1001, 1001).with_groups((1..=20).collect());
        let params = caller.auth_sys(7, Bytes::from_static(b"host"));
        assert_eq!(params.gids, (1..=16).collect::<Vec<u32>>());
        assert_eq!((params.uid, params.gid, params.stamp), (1001, 1001, 7));
        let cred = nfsio_proto::rpc::OpaqueAuth::sys(&params);
        let decoded = cred.as_sys().expect("AUTH_SYS").expect("decodes");
        assert_eq!(decoded, params);
    }
}
