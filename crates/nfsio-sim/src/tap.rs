//! A tap on the simulated wire, so that crashes can be aimed at the moments that matter.
//!
//! A crash at a random millisecond rarely lands inside a COMMIT or a retransmission: they
//! last a few milliseconds of a run's twenty seconds. Between two steps the harness looks at
//! the TCP segments turmoil holds in flight, decodes the RPC record marks and headers
//! (client and server write whole records per segment), and reports the events a crash can
//! be aimed at: a COMMIT call on its way to the server (it will never be answered by this
//! instance), a COMMIT reply on its way back (the data is durable; the reply may be lost), a
//! WRITE reply (bytes acknowledged UNSTABLE, not yet committed), a call whose XID was
//! already sent before (a retransmission after a reconnect), and the reply to a
//! non-idempotent call (a connection reset then loses it, and the retransmission tests the
//! duplicate request cache).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use turmoil::{Protocol, Segment, Sim};

/// The NFS program number.
const NFS_PROGRAM: u32 = 100_003;
/// NFSv3 WRITE.
const PROC_WRITE: u32 = 7;
/// NFSv3 COMMIT.
const PROC_COMMIT: u32 = 21;

/// An event on the wire a crash can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireEvent {
    /// A COMMIT call in flight to the server.
    CommitCall,
    /// A COMMIT reply in flight to the client.
    CommitReply,
    /// A WRITE reply in flight to the client.
    WriteReply,
    /// An NFS call in flight whose XID was sent before.
    Retransmission,
    /// The reply to a non-idempotent call (SETATTR, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE,
    /// RMDIR, RENAME, LINK) in flight: if it is lost, the retransmission must be answered
    /// by the duplicate request cache, not done again.
    NonIdempotentReply,
}

/// What the tap has seen so far.
#[derive(Debug, Default)]
pub struct Tap {
    /// Segments already looked at: (source, destination, sequence number).
    seen: HashSet<(SocketAddr, SocketAddr, u64)>,
    /// NFS calls seen, by XID: their procedure.
    calls: HashMap<u32, u32>,
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

impl Tap {
    /// The events in the segments that went on the wire since the last look; `server_port`
    /// tells calls from replies.
    pub fn look(&mut self, sim: &Sim<'_>, server_port: u16) -> Vec<WireEvent> {
        let mut records: Vec<(bool, Vec<u8>)> = Vec::new();
        sim.links(|links| {
            for link in links {
                for sent in link {
                    let (src, dst) = sent.pair();
                    let Protocol::Tcp(Segment::Data(seq, bytes)) = sent.protocol() else {
                        continue;
                    };
                    if !self.seen.insert((src, dst, *seq)) {
                        continue;
                    }
                    let to_server = dst.port() == server_port;
                    let mut at = 0;
                    while let Some(mark) = be32(bytes, at) {
                        let len = (mark & 0x7fff_ffff) as usize;
                        let end = (at + 4 + len).min(bytes.len());
                        // Headers only: 28 bytes of a call, 8 of a reply.
                        let head = &bytes[at + 4..end.min(at + 4 + 28)];
                        records.push((to_server, head.to_vec()));
                        at = at + 4 + len;
                    }
                }
            }
        });
        let mut events = Vec::new();
        for (to_server, head) in records {
            let (Some(xid), Some(kind)) = (be32(&head, 0), be32(&head, 4)) else {
                continue;
            };
            if to_server && kind == 0 {
                if be32(&head, 12) != Some(NFS_PROGRAM) {
                    continue;
                }
                let Some(proc_num) = be32(&head, 20) else {
                    continue;
                };
                if self.calls.insert(xid, proc_num).is_some() {
                    events.push(WireEvent::Retransmission);
                }
                if proc_num == PROC_COMMIT {
                    events.push(WireEvent::CommitCall);
                }
            } else if !to_server && kind == 1 {
                match self.calls.get(&xid) {
                    Some(&PROC_COMMIT) => events.push(WireEvent::CommitReply),
                    Some(&PROC_WRITE) => events.push(WireEvent::WriteReply),
                    Some(&(2 | 8..=15)) => events.push(WireEvent::NonIdempotentReply),
                    _ => {}
                }
            }
        }
        events
    }
}
