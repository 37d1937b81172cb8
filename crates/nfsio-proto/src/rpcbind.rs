//! rpcbind versions 3 and 4 (RFC 1833): the portmapper as today's clients ask it.
//!
//! Linux's `rpcinfo` and `showmount` (libtirpc) find services with rpcbind's GETADDR, which
//! answers a *universal address* (`h1.h2.h3.h4.p1.p2` for IPv4) for a program, version and
//! network id (`tcp`, `udp`, `tcp6`, `udp6`), and list them with DUMP; only when that fails
//! do they fall back to portmap v2 ([`crate::portmap`]). Same program number, versions 3 and
//! 4; this module has the procedures a server that answers for itself needs: NULL, SET and
//! UNSET (refused), GETADDR, DUMP, GETTIME and (version 4) GETVERSADDR.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::nfs3::codec::{FieldCodec, decode_list, encode_list, xdr_struct};
use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrResult};

/// The rpcbind program number (the portmapper's).
pub const PROGRAM: u32 = crate::portmap::PROGRAM;

/// rpcbind version 3.
pub const VERSION_3: u32 = 3;

/// rpcbind version 4.
pub const VERSION_4: u32 = 4;

/// Longest network id, universal address or owner accepted when decoding.
pub const MAX_STRING_BYTES: u32 = 256;

/// Most entries accepted in a DUMP reply.
pub const MAX_ENTRIES: usize = 1 << 16;

/// Procedure numbers.
pub mod procs {
    /// Do nothing (ping).
    pub const NULL: u32 = 0;
    /// Register a service.
    pub const SET: u32 = 1;
    /// Remove a registration.
    pub const UNSET: u32 = 2;
    /// The universal address of a program, version and network id.
    pub const GETADDR: u32 = 3;
    /// Every registration.
    pub const DUMP: u32 = 4;
    /// The server's time (seconds since the epoch).
    pub const GETTIME: u32 = 6;
    /// Version 4: GETADDR of exactly this version.
    pub const GETVERSADDR: u32 = 9;
}

/// An rpcbind string (network id, universal address, owner).
struct RpcbString;

impl FieldCodec<Bytes> for RpcbString {
    fn encode_field(value: &Bytes, enc: &mut XdrEncoder) {
        enc.put_opaque(value);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Bytes> {
        dec.get_opaque("rpcb string", MAX_STRING_BYTES)
    }
}

xdr_struct! {
    /// `rpcb`: a registration (or, as GETADDR's argument, what is looked for).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct Rpcb {
        /// Program number.
        pub prog: u32,
        /// Program version.
        pub vers: u32,
        /// Network id: `tcp`, `udp`, `tcp6`, `udp6`.
        pub netid: Bytes as RpcbString,
        /// Universal address.
        pub addr: Bytes as RpcbString,
        /// Owner of the registration.
        pub owner: Bytes as RpcbString,
    }
}

/// `rpcblist`: the result of DUMP, an XDR linked list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RpcbList(pub Vec<Rpcb>);

impl XdrEncode for RpcbList {
    fn encode(&self, enc: &mut XdrEncoder) {
        encode_list(&self.0, enc, Rpcb::encode);
    }
}

impl XdrDecode for RpcbList {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        decode_list(dec, "rpcblist", MAX_ENTRIES, Rpcb::decode).map(Self)
    }
}

/// The arguments of one rpcbind call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RpcbindCall {
    /// NULL.
    Null,
    /// SET.
    Set(Rpcb),
    /// UNSET.
    Unset(Rpcb),
    /// GETADDR.
    Getaddr(Rpcb),
    /// DUMP.
    Dump,
    /// GETTIME.
    Gettime,
    /// GETVERSADDR (version 4).
    Getversaddr(Rpcb),
}

/// Decodes the arguments of rpcbind procedure `proc_num` of version `vers`; `None` for a
/// procedure this module does not have.
pub fn decode_call(
    vers: u32,
    proc_num: u32,
    dec: &mut XdrDecoder,
) -> XdrResult<Option<RpcbindCall>> {
    Ok(Some(match proc_num {
        procs::NULL => RpcbindCall::Null,
        procs::SET => RpcbindCall::Set(Rpcb::decode(dec)?),
        procs::UNSET => RpcbindCall::Unset(Rpcb::decode(dec)?),
        procs::GETADDR => RpcbindCall::Getaddr(Rpcb::decode(dec)?),
        procs::DUMP => RpcbindCall::Dump,
        procs::GETTIME => RpcbindCall::Gettime,
        procs::GETVERSADDR if vers == VERSION_4 => RpcbindCall::Getversaddr(Rpcb::decode(dec)?),
        _ => return Ok(None),
    }))
}

/// The results of one rpcbind call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RpcbindReply {
    /// NULL.
    Null,
    /// SET, UNSET: true when done.
    Bool(bool),
    /// GETADDR, GETVERSADDR: the universal address, empty when not registered.
    Addr(Bytes),
    /// DUMP.
    Dump(RpcbList),
    /// GETTIME.
    Time(u32),
}

impl XdrEncode for RpcbindReply {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Null => {}
            Self::Bool(value) => value.encode(enc),
            Self::Addr(addr) => enc.put_opaque(addr),
            Self::Dump(list) => list.encode(enc),
            Self::Time(seconds) => seconds.encode(enc),
        }
    }
}

/// The universal address of `addr` (RFC 5665): `h1.h2.h3.h4.p1.p2` for IPv4, the
/// textual IPv6 address followed by `.p1.p2` for IPv6.
pub fn universal_address(addr: SocketAddr) -> String {
    let port = addr.port();
    let (high, low) = (port >> 8, port & 0xff);
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}.{high}.{low}"),
        IpAddr::V6(ip) => format!("{ip}.{high}.{low}"),
    }
}

/// The socket address a universal address names, if it is one.
pub fn parse_universal_address(text: &str) -> Option<SocketAddr> {
    let (rest, low) = text.rsplit_once('.')?;
    let (host, high) = rest.rsplit_once('.')?;
    let port =
        (high.parse::<u16>().ok()?.checked_mul(256)?).checked_add(low.parse::<u16>().ok()?)?;
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universal_addresses_round_trip() {
        let v4: SocketAddr = "127.0.0.1:2049".parse().unwrap();
        assert_eq!(universal_address(v4), "127.0.0.1.8.1");
        assert_eq!(parse_universal_address("127.0.0.1.8.1"), Some(v4));
        let v6: SocketAddr = "[::1]:20048".parse().unwrap();
        assert_eq!(universal_address(v6), "::1.78.80");
        assert_eq!(parse_universal_address("::1.78.80"), Some(v6));
        assert_eq!(parse_universal_address("127.0.0.1.300.1"), None);
        assert_eq!(parse_universal_address("nonsense"), None);
    }

    #[test]
    fn calls_and_replies_round_trip() {
        let rpcb = Rpcb {
            prog: 100005,
            vers: 3,
            netid: Bytes::from_static(b"tcp"),
            addr: Bytes::new(),
            owner: Bytes::from_static(b"nfsio"),
        };
        let mut enc = XdrEncoder::new();
        rpcb.encode(&mut enc);
        let mut dec = XdrDecoder::new(enc.finish_contiguous());
        assert_eq!(
            decode_call(VERSION_3, procs::GETADDR, &mut dec).unwrap(),
            Some(RpcbindCall::Getaddr(rpcb.clone()))
        );
        let list = RpcbList(vec![rpcb.clone(), rpcb]);
        let mut enc = XdrEncoder::new();
        list.encode(&mut enc);
        let mut dec = XdrDecoder::new(enc.finish_contiguous());
        assert_eq!(RpcbList::decode(&mut dec).unwrap(), list);
        let mut dec = XdrDecoder::new(Bytes::new());
        assert_eq!(
            decode_call(VERSION_3, procs::GETVERSADDR, &mut dec).unwrap(),
            None
        );
    }
}
