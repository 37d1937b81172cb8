//! The portmapper this server answers for itself (portmap v2, rpcbind v3 and v4): which of
//! its programs and versions listen where, over TCP and, when bound, UDP. Nobody else may
//! register, and indirect calls (CALLIT) are not offered: they would make the server an
//! amplifier.

use std::net::IpAddr;

use bytes::Bytes;
use nfsio_proto::portmap::{self, Mapping, MappingList, PortmapCall, PortmapReply};
use nfsio_proto::rpc::{AcceptError, CallHeader};
use nfsio_proto::{XdrDecoder, mount, nfs3, rpcbind};

use super::reply::{accept_error, success};
use super::{Response, Service};
use crate::peer::Peer;

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

impl Service {
    /// A portmap (v2) or rpcbind (v3, v4) call: version, arguments, the procedure, the reply.
    pub(super) fn dispatch_portmap(
        &self,
        peer: Peer,
        header: &CallHeader,
        dec: &mut XdrDecoder,
    ) -> Response {
        let xid = header.xid;
        match header.vers {
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
