//! Who each FUSE request acts as on the server.
//!
//! Like the Linux NFS client, a mount sends every call with its caller's AUTH_SYS
//! credentials, so that permissions are the server's decision and a mount shared with
//! `allow_other` gives each user exactly their own rights. The kernel tells each request's
//! uid and gid (the caller's file-system ids) and its pid; the supplementary groups are the
//! `Groups:` line of `/proc/PID/status`, read at most every [`GROUPS_TTL`] per process and
//! trusted only while that process's file-system ids are still the request's (a pid reused
//! by another user's process, or a process gone, gets the uid and gid alone). A client
//! handle per caller is kept with them, so a request costs a map lookup.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nfsio_client::{Caller, Client};

/// How long a process's supplementary groups are reused before `/proc` is read again.
pub const GROUPS_TTL: Duration = Duration::from_secs(2);

/// Most processes remembered at once; past that, the expired ones are dropped (and all of
/// them, if none had expired).
const MAX_PROCESSES: usize = 1024;

/// A process's caller as last read, and the client handle acting as it.
struct Known {
    uid: u32,
    gid: u32,
    read_at: Instant,
    client: Client,
}

/// The client handles of the mount's callers, by process.
pub struct Callers {
    client: Client,
    known: Mutex<HashMap<u32, Known>>,
}

impl Callers {
    /// Callers of a mount of `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The client acting as the caller of a request from process `pid` with `uid` and `gid`.
    pub fn client_for(&self, uid: u32, gid: u32, pid: u32) -> Client {
        let now = Instant::now();
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = known.get(&pid)
            && entry.uid == uid
            && entry.gid == gid
            && now.duration_since(entry.read_at) < GROUPS_TTL
        {
            return entry.client.clone();
        }
        let gids = groups_of(pid, uid, gid).unwrap_or_default();
        let client = self
            .client
            .as_caller(&Caller::new(uid, gid).with_groups(gids));
        if known.len() >= MAX_PROCESSES {
            known.retain(|_, entry| now.duration_since(entry.read_at) < GROUPS_TTL);
            if known.len() >= MAX_PROCESSES {
                known.clear();
            }
        }
        let entry = Known {
            uid,
            gid,
            read_at: now,
            client: client.clone(),
        };
        known.insert(pid, entry);
        client
    }
}

/// The supplementary groups of process `pid`, if it still runs with file-system ids `uid`
/// and `gid`.
fn groups_of(pid: u32, uid: u32, gid: u32) -> Option<Vec<u32>> {
    if pid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_groups(&status, uid, gid)
}

/// The `Groups:` of a `/proc/PID/status` whose file-system uid and gid (the fourth field of
/// `Uid:` and `Gid:`) are `uid` and `gid`.
fn parse_groups(status: &str, uid: u32, gid: u32) -> Option<Vec<u32>> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::split_whitespace)
    };
    let fs_id = |name: &str| field(name)?.nth(3)?.parse::<u32>().ok();
    if fs_id("Uid:")? != uid || fs_id("Gid:")? != gid {
        return None;
    }
    field("Groups:")?
        .map(|group| group.parse::<u32>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcat\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\nGroups:\t27 1001 2000 \n";

    #[test]
    fn groups_are_read_only_for_the_requests_ids() {
        assert_eq!(parse_groups(STATUS, 1001, 1001), Some(vec![27, 1001, 2000]));
        assert_eq!(parse_groups(STATUS, 1002, 1001), None);
        assert_eq!(parse_groups(STATUS, 1001, 0), None);
        let none = STATUS.replace("27 1001 2000 ", "");
        assert_eq!(parse_groups(&none, 1001, 1001), Some(vec![]));
        assert_eq!(parse_groups("Name:\tx\n", 0, 0), None);
    }

    #[test]
    fn this_process_groups_are_read() {
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let fs = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|ids| ids.split_whitespace().nth(3))
                .and_then(|id| id.parse::<u32>().ok())
                .expect("fs id")
        };
        let (uid, gid) = (fs("Uid:"), fs("Gid:"));
        let pid = std::process::id();
        assert!(groups_of(pid, uid, gid).is_some());
        assert_eq!(groups_of(pid, uid.wrapping_add(1), gid), None);
    }
}
