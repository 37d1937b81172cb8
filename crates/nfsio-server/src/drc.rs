//! The duplicate request cache: a retransmitted call gets the original reply.
//!
//! Clients retransmit a call when its reply is late or when the connection broke, often on a
//! new connection from a new port. Running a non-idempotent call twice gives a wrong answer
//! (a retransmitted CREATE GUARDED would fail with EXIST, a REMOVE with NOENT), so the
//! replies of CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK and SETATTR are kept,
//! keyed by client IP address (not port), XID, program, procedure, the call's length and a hash
//! of its first KiB after the XID. Every call, idempotent or not, is also marked while in progress, so a
//! retransmission that arrives while the original still runs is dropped instead of run
//! concurrently. The cache is bounded: at capacity, the least recently used finished entry
//! goes.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::net::IpAddr;

use bytes::Bytes;
use siphasher::sip::SipHasher13;

/// Bytes of a call after its XID that go into its key.
pub(crate) const HASHED_PREFIX_BYTES: usize = 1024;

/// Identifies one call, retransmissions included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DrcKey {
    client: IpAddr,
    xid: u32,
    prog: u32,
    proc_num: u32,
    body_hash: u64,
}

/// The key of a call; `record` is the whole call message (XID first), `hash_key` keys the
/// hash.
///
/// Only the first [`HASHED_PREFIX_BYTES`] after the XID are hashed, with the record's length:
/// enough to tell calls apart (header, credentials, handle, offsets, names), and a 1 MiB WRITE
/// costs no more to key than a GETATTR.
pub(crate) fn key(
    hash_key: (u64, u64),
    client: IpAddr,
    xid: u32,
    prog: u32,
    proc_num: u32,
    record: &[u8],
) -> DrcKey {
    let mut hasher = SipHasher13::new_with_keys(hash_key.0, hash_key.1);
    let body = record.get(4..).unwrap_or_default();
    hasher.write(&body[..body.len().min(HASHED_PREFIX_BYTES)]);
    hasher.write_usize(record.len());
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    };
    DrcKey {
        client,
        xid,
        prog,
        proc_num,
        body_hash: hasher.finish(),
    }
}

/// What to do with a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Not seen before (or forgotten): run it.
    New,
    /// The same call is running: drop this copy.
    InProgress,
    /// Already answered: send this reply again.
    Replay(Bytes),
}

#[derive(Debug)]
enum State {
    InProgress,
    Done(Bytes),
}

#[derive(Debug)]
struct Entry {
    state: State,
    seq: u64,
}

/// The cache.
#[derive(Debug)]
pub(crate) struct Drc {
    entries: HashMap<DrcKey, Entry>,
    order: BTreeMap<u64, DrcKey>,
    next_seq: u64,
    capacity: usize,
}

impl Drc {
    /// A cache of at most `capacity` finished entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
        }
    }

    fn touch(&mut self, key: DrcKey) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(entry) = self.entries.get_mut(&key) {
            self.order.remove(&entry.seq);
            entry.seq = seq;
            self.order.insert(seq, key);
        }
    }

    /// Looks a call up, marking it in progress if it is new.
    pub fn begin(&mut self, key: DrcKey) -> Begin {
        match self.entries.get(&key).map(|e| &e.state) {
            Some(State::InProgress) => return Begin::InProgress,
            Some(State::Done(reply)) => {
                let reply = reply.clone();
                self.touch(key);
                return Begin::Replay(reply);
            }
            None => {}
        }
        self.evict_to(self.capacity.saturating_sub(1));
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            key,
            Entry {
                state: State::InProgress,
                seq,
            },
        );
        self.order.insert(seq, key);
        Begin::New
    }

    /// Ends a call: keeps `reply` for retransmissions, or forgets the call (`None`: an
    /// idempotent procedure).
    pub fn finish(&mut self, key: DrcKey, reply: Option<Bytes>) {
        match reply {
            Some(reply) => {
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.state = State::Done(reply);
                }
                self.touch(key);
            }
            None => {
                if let Some(entry) = self.entries.remove(&key) {
                    self.order.remove(&entry.seq);
                }
            }
        }
    }

    /// Drops the least recently used finished entries until at most `len` entries remain
    /// (entries in progress are never dropped; there are at most as many as requests in
    /// flight).
    fn evict_to(&mut self, len: usize) {
        if self.entries.len() <= len {
            return;
        }
        let victims: Vec<(u64, DrcKey)> = self
            .order
            .iter()
            .filter(|(_, key)| {
                matches!(
                    self.entries.get(key).map(|e| &e.state),
                    Some(State::Done(_))
                )
            })
            .take(self.entries.len() - len)
            .map(|(seq, key)| (*seq, *key))
            .collect();
        for (seq, key) in victims {
            self.order.remove(&seq);
            self.entries.remove(&key);
        }
    }

    /// Number of entries (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(_drc: &Drc, ip: &str, xid: u32, body: &[u8]) -> DrcKey {
        super::key((1, 2), ip.parse().unwrap(), xid, 100003, 8, body)
    }

    #[test]
    fn replays_by_ip_xid_and_body_not_port() {
        let mut drc = Drc::new(8);
        let k = key(&drc, "10.0.0.1", 5, b"xxxxcall body");
        assert_eq!(drc.begin(k), Begin::New);
        assert_eq!(drc.begin(k), Begin::InProgress);
        drc.finish(k, Some(Bytes::from_static(b"reply")));
        assert_eq!(drc.begin(k), Begin::Replay(Bytes::from_static(b"reply")));
        // Same XID, different body: a different call.
        let other = key(&drc, "10.0.0.1", 5, b"xxxxanother body");
        assert_eq!(drc.begin(other), Begin::New);
        // Same XID and body from another client: a different call.
        let other_ip = key(&drc, "10.0.0.2", 5, b"xxxxcall body");
        assert_eq!(drc.begin(other_ip), Begin::New);
        // IPv4-mapped IPv6 is the same client.
        let mapped = key(&drc, "::ffff:10.0.0.1", 5, b"xxxxcall body");
        assert_eq!(mapped, k);
    }

    #[test]
    fn idempotent_calls_are_forgotten_and_size_is_bounded() {
        let mut drc = Drc::new(4);
        let k = key(&drc, "10.0.0.1", 1, b"....a");
        assert_eq!(drc.begin(k), Begin::New);
        drc.finish(k, None);
        assert_eq!(drc.begin(k), Begin::New);
        drc.finish(k, None);
        assert_eq!(drc.len(), 0);
        for xid in 0..100 {
            let k = key(&drc, "10.0.0.1", xid, b"....b");
            assert_eq!(drc.begin(k), Begin::New);
            drc.finish(k, Some(Bytes::from_static(b"r")));
            assert!(drc.len() <= 4);
        }
        // The most recent ones survive.
        let recent = key(&drc, "10.0.0.1", 99, b"....b");
        assert!(matches!(drc.begin(recent), Begin::Replay(_)));
        let old = key(&drc, "10.0.0.1", 0, b"....b");
        assert_eq!(drc.begin(old), Begin::New);
    }
}
