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

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use nfsio_proto::mount::{
    self, ExportList, ExportNode, MntRes, MountCall, MountEntry, MountList, MountReply, MountStatus,
};
use nfsio_proto::nfs3::{self, FileHandle, Nfs3Status};
use nfsio_proto::portmap::{self, Mapping, MappingList, PortmapCall, PortmapReply};
use nfsio_proto::rpc::{
    self, AcceptError, AuthStat, MessageHeader, MessagePeek, OpaqueAuth, RPC_VERSION, ReplyHeader,
    ReplyStatus, auth_flavor,
};
use nfsio_proto::rpcbind;
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder};
use tracing::{debug, trace};

use crate::config::{ServiceConfig, Squash};
use crate::drc::{Begin, Drc};
use crate::handle::{HandleCodec, HandleSecret};
use crate::misbehave::{Misbehaving, MisbehaviorSwitch};
use crate::peer::Peer;
use crate::splice::SplicedReply;
use crate::storage::{Caller, FileId, SplicedRead, Storage};
use crate::verifier::VerifierSource;

/// Most mounts remembered for MOUNT DUMP (it is advisory).
const MAX_MOUNT_ENTRIES: usize = 1024;

/// The ports a server's programs answer on, for portmap GETPORT and DUMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ports {
    /// NFS.
    pub nfs: u16,
    /// MOUNT.
    pub mount: u16,
    /// The separate portmap listener, if any.
    pub portmap: Option<u16>,
    /// MOUNT and the portmapper are also answered over UDP on their ports.
    pub udp: bool,
    /// The address listened on, when it is a specific one (rpcbind's universal addresses
    /// name it); `None`: the address each call arrived at.
    pub host: Option<IpAddr>,
}

/// The transport of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp,
    Udp,
}

/// A program version this server answers, where (what the portmapper reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Registration {
    prog: u32,
    vers: u32,
    transport: Transport,
    port: u16,
}

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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Encodes a reply header and body into segments.
fn encode_reply(xid: u32, status: ReplyStatus, body: Option<&dyn XdrEncodeDyn>) -> Vec<Bytes> {
    let mut enc = XdrEncoder::with_capacity(512);
    ReplyHeader { xid, status }.encode(&mut enc);
    if let Some(body) = body {
        body.encode_dyn(&mut enc);
    }
    enc.finish()
}

/// Object-safe [`XdrEncode`].
trait XdrEncodeDyn {
    fn encode_dyn(&self, enc: &mut XdrEncoder);
}

impl<T: XdrEncode> XdrEncodeDyn for T {
    fn encode_dyn(&self, enc: &mut XdrEncoder) {
        self.encode(enc);
    }
}

fn accept_error(xid: u32, error: AcceptError) -> Response {
    Response::Reply(encode_reply(
        xid,
        ReplyStatus::AcceptError {
            verf: OpaqueAuth::none(),
            error,
        },
        None,
    ))
}

fn success(xid: u32, body: &dyn XdrEncodeDyn) -> Vec<Bytes> {
    encode_reply(
        xid,
        ReplyStatus::Success {
            verf: OpaqueAuth::none(),
        },
        Some(body),
    )
}

/// The reply to a successful READ. Its data may wait in a pipe: then the reply is encoded
/// around it, exactly as [`success`] would encode `READ3resok` with the data in memory.
fn read_reply(xid: u32, read: SplicedRead) -> Response {
    let len_bytes = read.len_bytes();
    let Some(pipe) = read.pipe else {
        let ok = nfs3::ReadResOk {
            file_attributes: Some(read.attr),
            count: len_bytes as u32,
            eof: read.eof,
            data: read.rest,
        };
        return Response::Reply(success(xid, &nfs3::Nfs3Reply::Read(nfs3::NfsRes::Ok(ok))));
    };
    // The store read at most `max_io_bytes` (a u32).
    let Ok(count) = u32::try_from(len_bytes) else {
        return accept_error(xid, AcceptError::SystemErr);
    };
    let mut enc = XdrEncoder::with_capacity(160);
    ReplyHeader {
        xid,
        status: ReplyStatus::Success {
            verf: OpaqueAuth::none(),
        },
    }
    .encode(&mut enc);
    Nfs3Status::Ok.encode(&mut enc);
    Some(read.attr).encode(&mut enc);
    count.encode(&mut enc);
    read.eof.encode(&mut enc);
    // The opaque's length; its bytes are the pipe's, then `rest`, then the XDR padding.
    count.encode(&mut enc);
    let mut tail = Vec::with_capacity(2);
    if !read.rest.is_empty() {
        tail.push(read.rest);
    }
    let pad_bytes = (4 - len_bytes % 4) % 4;
    if pad_bytes > 0 {
        tail.push(Bytes::from_static(&[0u8; 3][..pad_bytes]));
    }
    Response::Spliced(SplicedReply {
        head: enc.finish(),
        pipe,
        tail,
    })
}

fn contiguous(segments: Vec<Bytes>) -> Bytes {
    if segments.len() == 1 {
        return segments.into_iter().next().unwrap_or_default();
    }
    let len = segments.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(len);
    for segment in &segments {
        out.put_slice(segment);
    }
    out.freeze()
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

    /// Maps the call's credentials to the identity the server acts as.
    fn credentials(&self, auth: &OpaqueAuth, peer: Peer) -> Result<Caller, AuthStat> {
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

    fn dispatch(
        &self,
        peer: Peer,
        header: &nfsio_proto::rpc::CallHeader,
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
            nfs3::PROGRAM => {
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
            mount::PROGRAM => {
                // Versions 1 and 2 are version 3 without MNT (their file handles are NFSv2's,
                // which this server does not issue); showmount asks version 1 for EXPORT.
                if !(1..=mount::VERSION).contains(&header.vers) {
                    return accept_error(
                        xid,
                        AcceptError::ProgMismatch {
                            low: 1,
                            high: mount::VERSION,
                        },
                    );
                }
                if header.vers < mount::VERSION && header.proc_num == mount::procs::MNT {
                    return accept_error(xid, AcceptError::ProcUnavail);
                }
                let call = match mount::decode_call(header.proc_num, dec) {
                    Ok(Some(call)) => call,
                    Ok(None) => return accept_error(xid, AcceptError::ProcUnavail),
                    Err(_) => return accept_error(xid, AcceptError::GarbageArgs),
                };
                if dec.finish().is_err() {
                    return accept_error(xid, AcceptError::GarbageArgs);
                }
                Response::Reply(success(xid, &self.mount_call(client, call)))
            }
            portmap::PROGRAM => match header.vers {
                portmap::VERSION => {
                    let call = match portmap::decode_call(header.proc_num, dec) {
                        Ok(Some(call)) => call,
                        Ok(None) => return accept_error(xid, AcceptError::ProcUnavail),
                        Err(_) => return accept_error(xid, AcceptError::GarbageArgs),
                    };
                    if dec.finish().is_err() {
                        return accept_error(xid, AcceptError::GarbageArgs);
                    }
                    match self.portmap_call(call) {
                        Some(reply) => Response::Reply(success(xid, &reply)),
                        None => accept_error(xid, AcceptError::ProcUnavail),
                    }
                }
                rpcbind::VERSION_3 | rpcbind::VERSION_4 => {
                    let call = match rpcbind::decode_call(header.vers, header.proc_num, dec) {
                        Ok(Some(call)) => call,
                        Ok(None) => return accept_error(xid, AcceptError::ProcUnavail),
                        Err(_) => return accept_error(xid, AcceptError::GarbageArgs),
                    };
                    if dec.finish().is_err() {
                        return accept_error(xid, AcceptError::GarbageArgs);
                    }
                    Response::Reply(success(xid, &self.rpcbind_call(peer, call)))
                }
                _ => accept_error(
                    xid,
                    AcceptError::ProgMismatch {
                        low: portmap::VERSION,
                        high: rpcbind::VERSION_4,
                    },
                ),
            },
            _ => accept_error(xid, AcceptError::ProgUnavail),
        }
    }

    /// Normalises a MOUNT path: no trailing slashes (except `/` itself).
    fn normalise(path: &[u8]) -> &[u8] {
        let mut path = path;
        while path.len() > 1 && path.ends_with(b"/") {
            path = &path[..path.len() - 1];
        }
        path
    }

    /// Resolves a MOUNT path to a directory of the export (the export itself, or a directory
    /// below it; never through a symbolic link, `.` or `..`).
    fn mount_path(&self, path: &[u8]) -> Result<FileId, MountStatus> {
        let path = Self::normalise(path);
        let export = Self::normalise(self.config.export_name.as_bytes());
        let rest = if path == export {
            &[][..]
        } else if path.starts_with(export)
            && (export == b"/" || path.get(export.len()) == Some(&b'/'))
        {
            &path[export.len()..]
        } else {
            return Err(MountStatus::NoEnt);
        };
        let mut id = self.storage.root();
        for component in rest.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if component == b"." || component == b".." {
                return Err(MountStatus::Inval);
            }
            let (next, attr) = self
                .storage
                .lookup(&Caller::root(), id, component)
                .map_err(|e| match e.status {
                    Nfs3Status::NoEnt => MountStatus::NoEnt,
                    Nfs3Status::NotDir => MountStatus::NotDir,
                    Nfs3Status::Acces | Nfs3Status::Perm => MountStatus::Acces,
                    Nfs3Status::NameTooLong => MountStatus::NameTooLong,
                    _ => MountStatus::Io,
                })?;
            if attr.file_type != nfs3::FileType::Directory {
                return Err(MountStatus::NotDir);
            }
            id = next;
        }
        Ok(id)
    }

    /// Whether `client` is in the export's allow list (an empty list allows everyone).
    fn allowed(&self, client: IpAddr) -> bool {
        self.config.allow.is_empty() || self.config.allow.iter().any(|net| net.contains(client))
    }

    fn mount_call(&self, client: IpAddr, call: MountCall) -> MountReply {
        let hostname = Bytes::from(client.to_string());
        match call {
            MountCall::Null => MountReply::Null,
            MountCall::Mnt(_) if !self.allowed(client) => {
                debug!(%client, "MNT from a client not in the allow list");
                MountReply::Mnt(MntRes::Fail(MountStatus::Acces))
            }
            MountCall::Mnt(args) => match self.mount_path(&args.dirpath) {
                Ok(id) => {
                    let mut mounts = lock(&self.mounts);
                    let entry = MountEntry {
                        hostname,
                        directory: args.dirpath.clone(),
                    };
                    if !mounts.contains(&entry) {
                        if mounts.len() >= MAX_MOUNT_ENTRIES {
                            mounts.remove(0);
                        }
                        mounts.push(entry);
                    }
                    debug!(%client, path = %String::from_utf8_lossy(&args.dirpath), "MNT");
                    MountReply::Mnt(MntRes::Ok {
                        fhandle: self.handles.encode(id),
                        auth_flavors: vec![auth_flavor::AUTH_SYS, auth_flavor::AUTH_NONE],
                    })
                }
                Err(status) => MountReply::Mnt(MntRes::Fail(status)),
            },
            MountCall::Dump => MountReply::Dump(MountList(lock(&self.mounts).clone())),
            MountCall::Umnt(args) => {
                lock(&self.mounts)
                    .retain(|m| !(m.hostname == hostname && m.directory == args.dirpath));
                MountReply::Umnt
            }
            MountCall::UmntAll => {
                lock(&self.mounts).retain(|m| m.hostname != hostname);
                MountReply::UmntAll
            }
            MountCall::Export => MountReply::Export(ExportList(vec![ExportNode {
                dir: Bytes::from(self.config.export_name.clone()),
                groups: self
                    .config
                    .allow
                    .iter()
                    .map(|net| Bytes::from(net.to_string()))
                    .collect(),
            }])),
        }
    }

    /// What this server answers, and where.
    fn registrations(&self) -> Vec<Registration> {
        let ports = self.ports;
        let reg = |prog, vers, transport, port| Registration {
            prog,
            vers,
            transport,
            port,
        };
        let mut list = vec![reg(nfs3::PROGRAM, nfs3::VERSION, Transport::Tcp, ports.nfs)];
        let mut transports = vec![Transport::Tcp];
        if ports.udp {
            transports.push(Transport::Udp);
        }
        for &transport in &transports {
            for vers in [1, mount::VERSION] {
                list.push(reg(mount::PROGRAM, vers, transport, ports.mount));
            }
        }
        if let Some(port) = ports.portmap {
            for &transport in &transports {
                for vers in [portmap::VERSION, rpcbind::VERSION_3, rpcbind::VERSION_4] {
                    list.push(reg(portmap::PROGRAM, vers, transport, port));
                }
            }
        }
        list
    }

    fn mappings(&self) -> Vec<Mapping> {
        self.registrations()
            .iter()
            .map(|r| Mapping {
                prog: r.prog,
                vers: r.vers,
                prot: match r.transport {
                    Transport::Tcp => portmap::IPPROTO_TCP,
                    Transport::Udp => portmap::IPPROTO_UDP,
                },
                port: u32::from(r.port),
            })
            .collect()
    }

    /// rpcbind's entries: network ids and universal addresses on the address the call came
    /// to (or the one listened on).
    fn rpcb_entries(&self, peer: Peer) -> Vec<rpcbind::Rpcb> {
        let host = self
            .ports
            .host
            .or(peer.local.map(|a| a.ip()))
            .filter(|ip| !ip.is_unspecified())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let six = if host.is_ipv6() { "6" } else { "" };
        self.registrations()
            .iter()
            .map(|r| {
                let netid = match r.transport {
                    Transport::Tcp => format!("tcp{six}"),
                    Transport::Udp => format!("udp{six}"),
                };
                let addr = rpcbind::universal_address(std::net::SocketAddr::new(host, r.port));
                rpcbind::Rpcb {
                    prog: r.prog,
                    vers: r.vers,
                    netid: Bytes::from(netid),
                    addr: Bytes::from(addr),
                    owner: Bytes::from_static(b"superuser"),
                }
            })
            .collect()
    }

    fn rpcbind_call(&self, peer: Peer, call: rpcbind::RpcbindCall) -> rpcbind::RpcbindReply {
        use rpcbind::{RpcbindCall, RpcbindReply};
        let find = |want: &rpcbind::Rpcb, any_version: bool| {
            let found = self.rpcb_entries(peer).into_iter().find(|e| {
                e.prog == want.prog
                    && (any_version || e.vers == want.vers)
                    && (want.netid.is_empty() || e.netid == want.netid)
            });
            RpcbindReply::Addr(found.map(|e| e.addr).unwrap_or_default())
        };
        match call {
            RpcbindCall::Null => RpcbindReply::Null,
            // This rpcbind answers for this server only; nobody may register.
            RpcbindCall::Set(_) | RpcbindCall::Unset(_) => RpcbindReply::Bool(false),
            // Like rpcbind, GETADDR of an unregistered version still names the program's
            // address (the caller then learns the versions from the server itself).
            RpcbindCall::Getaddr(want) => match find(&want, false) {
                RpcbindReply::Addr(addr) if addr.is_empty() => find(&want, true),
                found => found,
            },
            RpcbindCall::Getversaddr(want) => find(&want, false),
            RpcbindCall::Dump => RpcbindReply::Dump(rpcbind::RpcbList(self.rpcb_entries(peer))),
            RpcbindCall::Gettime => RpcbindReply::Time(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as u32),
            ),
        }
    }

    fn portmap_call(&self, call: PortmapCall) -> Option<PortmapReply> {
        Some(match call {
            PortmapCall::Null => PortmapReply::Null,
            // This portmapper answers for this server only; nobody may register.
            PortmapCall::Set(_) => PortmapReply::Set(false),
            PortmapCall::Unset(_) => PortmapReply::Unset(false),
            PortmapCall::Getport(want) => PortmapReply::Getport(
                self.mappings()
                    .iter()
                    .find(|m| m.prog == want.prog && m.vers == want.vers && m.prot == want.prot)
                    .map_or(0, |m| m.port),
            ),
            PortmapCall::Dump => PortmapReply::Dump(MappingList(self.mappings())),
            // Indirect calls would make the server an amplifier; not offered.
            PortmapCall::Callit(_) => return None,
        })
    }
}
