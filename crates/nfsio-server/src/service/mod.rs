//! The request path without the network: one RPC record in, one reply record out.
//!
//! [`Service::handle`] is synchronous and owns everything between the bytes of a call and the
//! bytes of its reply: the RPC header (RPC_MISMATCH, PROG_UNAVAIL, PROG_MISMATCH,
//! PROC_UNAVAIL, GARBAGE_ARGS), authentication (AUTH_SYS and AUTH_NONE; anything else is
//! AUTH_ERROR TOOWEAK) and squashing, the duplicate request cache, and the dispatch to NFSv3,
//! MOUNT v3 and portmap v2. Keeping it free of I/O and tasks lets the connection layer run it
//! on a blocking thread (local store) or inline (memory store, simulation), and lets the fuzz
//! target drive it directly. It never panics on input and never allocates by a length read
//! from the wire (the XDR decoder bounds every item by the record it arrived in).
//!
//! Its parts: `auth.rs` (credentials and squashing), `mountd.rs` (MOUNT), `portmapper.rs`
//! (portmap and rpcbind), `reply.rs` (how replies are encoded); the NFSv3 procedures are
//! `crate::nfs`'s, the duplicate cache `crate::drc`'s.

mod auth;
mod mountd;
mod portmapper;
mod reply;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use nfsio_proto::mount::{self, MountEntry};
use nfsio_proto::nfs3::{self, FileHandle};
use nfsio_proto::portmap;
use nfsio_proto::rpc::{
    self, AcceptError, AuthStat, CallHeader, MessageHeader, MessagePeek, RPC_VERSION, ReplyStatus,
};
use nfsio_proto::{XdrDecode, XdrDecoder};
use tracing::{debug, trace};

pub use self::portmapper::Ports;
use self::reply::{accept_error, contiguous, encode_reply, read_reply, success};
use crate::config::ServiceConfig;
use crate::drc::{Begin, Drc};
use crate::handle::{HandleCodec, HandleSecret};
use crate::misbehave::{Misbehaving, MisbehaviorSwitch};
use crate::peer::Peer;
use crate::splice::SplicedReply;
use crate::storage::{Caller, FileId, Storage};
use crate::verifier::VerifierSource;

/// What to do with a call's record.
#[derive(Debug)]
pub enum Response {
    /// Send this reply record (as segments, in order).
    Reply(Vec<Bytes>),
    /// Send this reply record, whose data waits in a pipe (a READ; see [`SplicedReply`]).
    Spliced(SplicedReply),
    /// Send nothing (a retransmission of a call still in progress, or a reply message).
    Drop,
    /// The bytes are not an RPC call at all: close the connection.
    Close,
}

/// The server's request path: decode, authenticate, deduplicate, dispatch, encode.
pub struct Service {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) handles: HandleCodec,
    pub(crate) verifier: VerifierSource,
    pub(crate) config: ServiceConfig,
    ports: Ports,
    /// Deliberate protocol violations (tests of clients only), which wrap the NFSv3
    /// procedures ([`Misbehaving`]); `None`: keep every rule.
    pub(crate) misbehavior: Option<MisbehaviorSwitch>,
    drc: Mutex<Drc>,
    drc_hash_key: (u64, u64),
    mounts: Mutex<Vec<MountEntry>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("export_name", &self.config.export_name)
            .field("verifier", &self.verifier.current())
            .finish_non_exhaustive()
    }
}

/// Locks `mutex`, whatever a panic left in it (plain data: keep serving).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Service {
    /// A service over `storage`, its handles authenticated by `secret`; it reports no ports
    /// until [`Service::set_ports`].
    pub fn new(storage: Arc<dyn Storage>, config: ServiceConfig, secret: HandleSecret) -> Self {
        let verifier = match config.instance_seed {
            Some(seed) => VerifierSource::from_seed(seed),
            None => VerifierSource::new_instance(),
        };
        let hash_seed = u64::from_be_bytes(verifier.current().0);
        let drc_hash_key = (hash_seed, hash_seed.rotate_left(29) ^ 0x5bd1_e995);
        Self {
            handles: HandleCodec::new(secret),
            ports: Ports::default(),
            misbehavior: None,
            drc: Mutex::new(Drc::new(config.limits.drc_entries)),
            drc_hash_key,
            mounts: Mutex::new(Vec::new()),
            storage,
            verifier,
            config,
        }
    }

    /// The store.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// True when calls must run on a blocking thread (see [`Storage::is_blocking`]).
    pub fn is_blocking(&self) -> bool {
        self.storage.is_blocking()
    }

    /// The write verifier now (what WRITE and COMMIT replies carry).
    pub fn write_verifier(&self) -> nfs3::WriteVerifier {
        self.verifier.current()
    }

    /// How many times the write verifier changed because a write or sync failed.
    pub fn verifier_resets(&self) -> u64 {
        self.verifier.resets()
    }

    /// The handle of the export's root (what MNT returns).
    pub fn root_handle(&self) -> FileHandle {
        self.handles.encode(self.storage.root())
    }

    /// The handle of `id`.
    pub fn handle_of(&self, id: FileId) -> FileHandle {
        self.handles.encode(id)
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The ports portmap reports.
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// Sets the ports portmap reports (known once the listeners are bound).
    pub fn set_ports(&mut self, ports: Ports) {
        self.ports = ports;
    }

    /// Processes one call record from `client` (a peer the kernel vouches nothing for) and
    /// says what to send back.
    pub fn handle(&self, client: IpAddr, record: Bytes) -> Response {
        self.handle_from(Peer::remote(client), record)
    }

    /// Processes one call record from `peer` and says what to send back.
    pub fn handle_from(&self, peer: Peer, record: Bytes) -> Response {
        let client = peer.ip;
        let xid = match rpc::peek_message(&record) {
            Some(MessagePeek::Call(call)) => call.xid,
            // A reply sent to a server: nothing to answer.
            Some(MessagePeek::Reply { .. }) => return Response::Drop,
            Some(MessagePeek::RpcMismatch { xid, .. }) => {
                return Response::Reply(encode_reply(
                    xid,
                    ReplyStatus::RpcMismatch {
                        low: RPC_VERSION,
                        high: RPC_VERSION,
                    },
                    None,
                ));
            }
            Some(MessagePeek::BadCall { xid }) => {
                debug!(xid, "undecodable call header");
                return accept_error(xid, AcceptError::GarbageArgs);
            }
            None => return Response::Close,
        };
        let mut dec =
            XdrDecoder::new(record.clone()).with_max_data_bytes(self.config.limits.max_io_bytes);
        let header = match MessageHeader::decode(&mut dec) {
            Ok(MessageHeader::Call(header)) => header,
            Ok(MessageHeader::Reply(_)) => return Response::Drop,
            Err(err) => {
                debug!(xid, %err, "undecodable call header");
                return accept_error(xid, AcceptError::GarbageArgs);
            }
        };
        let caller = match self.credentials(&header.cred, peer) {
            Ok(caller) => caller,
            Err(stat) => {
                return Response::Reply(encode_reply(xid, ReplyStatus::AuthError(stat), None));
            }
        };
        let key = crate::drc::key(
            self.drc_hash_key,
            client,
            xid,
            header.prog,
            header.proc_num,
            &record,
        );
        match lock(&self.drc).begin(key) {
            Begin::New => {}
            Begin::InProgress => {
                debug!(xid, %client, "retransmission of a call in progress: dropped");
                return Response::Drop;
            }
            Begin::Replay(reply) => {
                debug!(xid, %client, "retransmission: original reply sent again");
                return Response::Reply(vec![reply]);
            }
        }
        let cache = header.prog == nfs3::PROGRAM
            && header.vers == nfs3::VERSION
            && nfs3::is_non_idempotent(header.proc_num);
        match self.dispatch(peer, &header, &caller, &mut dec) {
            Response::Reply(segments) if cache => {
                let reply = contiguous(segments);
                lock(&self.drc).finish(key, Some(reply.clone()));
                Response::Reply(vec![reply])
            }
            response => {
                lock(&self.drc).finish(key, None);
                response
            }
        }
    }

    /// Routes a call to its program.
    fn dispatch(
        &self,
        peer: Peer,
        header: &CallHeader,
        caller: &Caller,
        dec: &mut XdrDecoder,
    ) -> Response {
        let xid = header.xid;
        let client = peer.ip;
        match header.prog {
            // NFS replies (READ, READDIR) do not fit datagrams: NFS is served over TCP only.
            nfs3::PROGRAM if peer.datagram => accept_error(xid, AcceptError::ProgUnavail),
            // A client outside the allow list may ask the portmapper and MOUNT's NULL and
            // EXPORT (so it learns why it cannot mount), but MNT answers MNT3ERR_ACCES and
            // NFS calls are rejected for security reasons, as knfsd and rpc.mountd do.
            nfs3::PROGRAM if !self.allowed(client) => {
                debug!(xid, %client, "NFS call from a client not in the allow list");
                Response::Reply(encode_reply(
                    xid,
                    ReplyStatus::AuthError(AuthStat::TooWeak),
                    None,
                ))
            }
            nfs3::PROGRAM => self.dispatch_nfs(header, caller, dec),
            mount::PROGRAM => self.dispatch_mount(client, header, dec),
            portmap::PROGRAM => self.dispatch_portmap(peer, header, dec),
            _ => accept_error(xid, AcceptError::ProgUnavail),
        }
    }

    /// An NFSv3 call: version, arguments, the procedure (READ may leave its data in a pipe;
    /// a misbehaviour switch, if any, wraps the others), the reply.
    fn dispatch_nfs(&self, header: &CallHeader, caller: &Caller, dec: &mut XdrDecoder) -> Response {
        let xid = header.xid;
        if header.vers != nfs3::VERSION {
            return accept_error(
                xid,
                AcceptError::ProgMismatch {
                    low: nfs3::VERSION,
                    high: nfs3::VERSION,
                },
            );
        }
        let call = match nfs3::decode_call(header.proc_num, dec) {
            Ok(Some(call)) => call,
            Ok(None) => return accept_error(xid, AcceptError::ProcUnavail),
            Err(err) => {
                debug!(xid, proc = nfs3::proc_name(header.proc_num), %err, "garbage arguments");
                return accept_error(xid, AcceptError::GarbageArgs);
            }
        };
        if dec.finish().is_err() {
            return accept_error(xid, AcceptError::GarbageArgs);
        }
        trace!(xid, proc = call.proc_name(), uid = caller.uid, "NFS call");
        let reply = match call {
            nfs3::Nfs3Call::Read(args) => match self.read_spliced(caller, &args) {
                Ok(read) => return read_reply(xid, read),
                Err(status) => nfs3::Nfs3Reply::Read(self.read_failed(&args, status)),
            },
            call => match &self.misbehavior {
                Some(switch) => Misbehaving {
                    service: self,
                    switch: &switch.0,
                }
                .nfs_call(caller, call),
                None => self.nfs_call(caller, call),
            },
        };
        if !reply.status().is_ok() {
            debug!(xid, proc = reply.proc_name(), status = %reply.status(), "NFS call failed");
        }
        Response::Reply(success(xid, &reply))
    }

    /// Whether `client` is in the export's allow list (an empty list allows everyone).
    fn allowed(&self, client: IpAddr) -> bool {
        self.config.allow.is_empty() || self.config.allow.iter().any(|net| net.contains(client))
    }
}
