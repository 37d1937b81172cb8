//! A tap on the simulated wire, so that crashes can be aimed at the moments that matter.
//!
//! A crash at a random millisecond rarely lands inside a COMMIT or a retransmission: they
//! last a few milliseconds of a run's twenty seconds. Between two steps the harness looks at
//! the TCP segments turmoil holds in flight, reads their record marks and RPC headers with
//! the protocol crate's codec and peek (`nfsio_proto::record::fragments`,
//! `nfsio_proto::rpc::peek_message`; client and server write whole records per segment),
//! and reports the events a crash can
//! be aimed at: a COMMIT call on its way to the server (it will never be answered by this
//! instance), a COMMIT reply on its way back (the data is durable; the reply may be lost), a
//! WRITE reply (bytes acknowledged UNSTABLE, not yet committed), a call whose XID was
//! already sent before (a retransmission after a reconnect), and the reply to a
//! non-idempotent call (a connection reset then loses it, and the retransmission tests the
//! duplicate request cache).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use nfsio_proto::nfs3::{self, procs};
use nfsio_proto::record;
use nfsio_proto::rpc::{self, MessagePeek};
use turmoil::{Protocol, Segment, Sim};

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

impl Tap {
    /// The events in the segments that went on the wire since the last look; `server_port`
    /// tells calls from replies.
    pub fn look(&mut self, sim: &Sim<'_>, server_port: u16) -> Vec<WireEvent> {
        let mut messages: Vec<(bool, MessagePeek)> = Vec::new();
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
                    for (_, body) in record::fragments(bytes) {
                        if let Some(peek) = rpc::peek_message(body) {
                            messages.push((to_server, peek));
                        }
                    }
                }
            }
        });
        let mut events = Vec::new();
        for (to_server, peek) in messages {
            match peek {
                MessagePeek::Call(call) if to_server && call.prog == nfs3::PROGRAM => {
                    if self.calls.insert(call.xid, call.proc_num).is_some() {
                        events.push(WireEvent::Retransmission);
                    }
                    if call.proc_num == procs::COMMIT {
                        events.push(WireEvent::CommitCall);
                    }
                }
                MessagePeek::Reply { xid } if !to_server => match self.calls.get(&xid) {
                    Some(&procs::COMMIT) => events.push(WireEvent::CommitReply),
                    Some(&procs::WRITE) => events.push(WireEvent::WriteReply),
                    Some(&proc_num) if nfs3::is_non_idempotent(proc_num) => {
                        events.push(WireEvent::NonIdempotentReply);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        events
    }
}
