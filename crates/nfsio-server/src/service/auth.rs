//! Who a call acts as: its credentials (AUTH_SYS or AUTH_NONE; anything else is too weak)
//! mapped by the export's identity policy ([`Squash`]), and ids no policy accepts made
//! anonymous, as knfsd does.

use nfsio_proto::rpc::{AuthStat, OpaqueAuth, auth_flavor};

use super::Service;
use crate::config::Squash;
use crate::peer::Peer;
use crate::storage::Caller;

impl Service {
    /// Maps the call's credentials to the identity the server acts as.
    pub(super) fn credentials(&self, auth: &OpaqueAuth, peer: Peer) -> Result<Caller, AuthStat> {
        let anon = Caller {
            uid: self.config.anonuid,
            gid: self.config.anongid,
            gids: Vec::new(),
        };
        let params = match auth.flavor {
            auth_flavor::AUTH_NONE => return Ok(anon),
            auth_flavor::AUTH_SYS => match auth.as_sys() {
                Some(Ok(params)) => params,
                _ => return Err(AuthStat::BadCred),
            },
            _ => return Err(AuthStat::TooWeak),
        };
        let claimed = Caller {
            uid: params.uid,
            gid: params.gid,
            gids: params.gids,
        };
        // Under the default policy, a caller that the kernel shows to be root on this
        // machine is not squashed (see `crate::peer`).
        let proven_root = claimed.uid == 0 && peer.local_uid == Some(0);
        let caller = match self.config.squash {
            Squash::None => claimed,
            Squash::Auto if proven_root => claimed,
            Squash::All => anon,
            Squash::Root | Squash::Auto => self.squash_root(claimed),
        };
        Ok(self.accepted_ids(caller))
    }

    /// `root_squash`: uid 0 and gid 0 (also among the supplementary groups) become the
    /// anonymous ids.
    fn squash_root(&self, claimed: Caller) -> Caller {
        let map_gid = |g: u32| if g == 0 { self.config.anongid } else { g };
        Caller {
            uid: if claimed.uid == 0 {
                self.config.anonuid
            } else {
                claimed.uid
            },
            gid: map_gid(claimed.gid),
            gids: claimed.gids.into_iter().map(map_gid).collect(),
        }
    }

    /// Maps every id no policy accepts to the anonymous id, as knfsd does: 4294967295 is
    /// not a user (to `chown` it means "leave unchanged", so a file "owned" by it would keep
    /// the server's own ids), and a supplementary group of that value is dropped.
    fn accepted_ids(&self, caller: Caller) -> Caller {
        const INVALID_ID: u32 = u32::MAX;
        let mut gids: Vec<u32> = caller
            .gids
            .into_iter()
            .filter(|&g| g != INVALID_ID)
            .collect();
        gids.sort_unstable();
        gids.dedup();
        Caller {
            uid: if caller.uid == INVALID_ID {
                self.config.anonuid
            } else {
                caller.uid
            },
            gid: if caller.gid == INVALID_ID {
                self.config.anongid
            } else {
                caller.gid
            },
            gids,
        }
    }
}
