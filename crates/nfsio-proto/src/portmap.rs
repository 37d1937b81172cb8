//! Portmap version 2 (RFC 1833): how a client finds the port of the MOUNT and NFS programs.
//!
//! A server registers (program, version, protocol) → port mappings with SET; a client asks with
//! GETPORT, or lists them all with DUMP. CALLIT (indirect call) is encoded here for completeness
//! but its arguments and results stay opaque.

use bytes::Bytes;

use crate::nfs3::codec::{FieldCodec, decode_list, encode_list, xdr_struct};
use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrResult};

/// The portmap program number.
pub const PROGRAM: u32 = 100000;

/// The portmap version this module speaks.
pub const VERSION: u32 = 2;

/// The well-known portmap port.
pub const PMAP_PORT: u16 = 111;

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u32 = 6;

/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u32 = 17;

/// Maximum number of mappings accepted in a DUMP reply.
pub const MAX_MAPPINGS: usize = 1 << 16;

/// Maximum size of CALLIT's opaque arguments or results accepted when decoding.
pub const MAX_CALLIT_BYTES: u32 = 64 * 1024;

/// Procedure numbers.
pub mod procs {
    /// Do nothing (ping).
    pub const NULL: u32 = 0;
    /// Register a mapping.
    pub const SET: u32 = 1;
    /// Remove a mapping.
    pub const UNSET: u32 = 2;
    /// Look up the port of a program.
    pub const GETPORT: u32 = 3;
    /// List all mappings.
    pub const DUMP: u32 = 4;
    /// Call a procedure on the local host indirectly.
    pub const CALLIT: u32 = 5;
}

/// The name of portmap procedure `proc_num` (`"GETPORT"`), or `"UNKNOWN"`.
pub fn proc_name(proc_num: u32) -> &'static str {
    match proc_num {
        procs::NULL => "NULL",
        procs::SET => "SET",
        procs::UNSET => "UNSET",
        procs::GETPORT => "GETPORT",
        procs::DUMP => "DUMP",
        procs::CALLIT => "CALLIT",
        _ => "UNKNOWN",
    }
}

/// CALLIT's opaque arguments and results.
struct CallitOpaque;

impl FieldCodec<Bytes> for CallitOpaque {
    fn encode_field(value: &Bytes, enc: &mut XdrEncoder) {
        enc.put_opaque(value);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Bytes> {
        dec.get_opaque("callit opaque", MAX_CALLIT_BYTES)
    }
}

xdr_struct! {
    /// `mapping`: a program version served on a protocol and port.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Mapping {
        /// Program number.
        pub prog: u32,
        /// Program version.
        pub vers: u32,
        /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
        pub prot: u32,
        /// Port (ignored in GETPORT and UNSET arguments; 0 in a GETPORT result means "not
        /// registered").
        pub port: u32,
    }
}

/// `pmaplist`: the result of DUMP, encoded as an XDR linked list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MappingList(pub Vec<Mapping>);

impl XdrEncode for MappingList {
    fn encode(&self, enc: &mut XdrEncoder) {
        encode_list(&self.0, enc, Mapping::encode);
    }
}

impl XdrDecode for MappingList {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        decode_list(dec, "pmaplist", MAX_MAPPINGS, Mapping::decode).map(Self)
    }
}

xdr_struct! {
    /// `call_args`: the arguments of CALLIT.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CallitArgs {
        /// Program to call.
        pub prog: u32,
        /// Its version.
        pub vers: u32,
        /// The procedure.
        pub proc_num: u32,
        /// The procedure's encoded arguments (at most [`MAX_CALLIT_BYTES`] when decoded).
        pub args: Bytes as CallitOpaque,
    }
}

xdr_struct! {
    /// `call_result`: the results of CALLIT.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CallitRes {
        /// The port of the program called.
        pub port: u32,
        /// The procedure's encoded results (at most [`MAX_CALLIT_BYTES`] when decoded).
        pub res: Bytes as CallitOpaque,
    }
}

/// The arguments of one portmap call, by procedure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortmapCall {
    /// `PMAPPROC_NULL`.
    Null,
    /// `PMAPPROC_SET`.
    Set(Mapping),
    /// `PMAPPROC_UNSET`.
    Unset(Mapping),
    /// `PMAPPROC_GETPORT` (`port` is ignored).
    Getport(Mapping),
    /// `PMAPPROC_DUMP`.
    Dump,
    /// `PMAPPROC_CALLIT`.
    Callit(CallitArgs),
}

impl PortmapCall {
    /// The procedure number.
    pub fn proc_num(&self) -> u32 {
        match self {
            Self::Null => procs::NULL,
            Self::Set(_) => procs::SET,
            Self::Unset(_) => procs::UNSET,
            Self::Getport(_) => procs::GETPORT,
            Self::Dump => procs::DUMP,
            Self::Callit(_) => procs::CALLIT,
        }
    }
}

impl XdrEncode for PortmapCall {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Null | Self::Dump => {}
            Self::Set(mapping) | Self::Unset(mapping) | Self::Getport(mapping) => {
                mapping.encode(enc)
            }
            Self::Callit(args) => args.encode(enc),
        }
    }
}

/// Decodes the arguments of portmap procedure `proc_num`; `Ok(None)` when there is no such
/// procedure. Bytes after the arguments are left in `dec`.
pub fn decode_call(proc_num: u32, dec: &mut XdrDecoder) -> XdrResult<Option<PortmapCall>> {
    Ok(Some(match proc_num {
        procs::NULL => PortmapCall::Null,
        procs::SET => PortmapCall::Set(Mapping::decode(dec)?),
        procs::UNSET => PortmapCall::Unset(Mapping::decode(dec)?),
        procs::GETPORT => PortmapCall::Getport(Mapping::decode(dec)?),
        procs::DUMP => PortmapCall::Dump,
        procs::CALLIT => PortmapCall::Callit(CallitArgs::decode(dec)?),
        _ => return Ok(None),
    }))
}

/// The results of one portmap call, by procedure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortmapReply {
    /// `PMAPPROC_NULL`.
    Null,
    /// `PMAPPROC_SET`: true if the mapping was registered.
    Set(bool),
    /// `PMAPPROC_UNSET`: true if a mapping was removed.
    Unset(bool),
    /// `PMAPPROC_GETPORT`: the port, 0 if not registered.
    Getport(u32),
    /// `PMAPPROC_DUMP`.
    Dump(MappingList),
    /// `PMAPPROC_CALLIT`.
    Callit(CallitRes),
}

impl PortmapReply {
    /// The procedure number.
    pub fn proc_num(&self) -> u32 {
        match self {
            Self::Null => procs::NULL,
            Self::Set(_) => procs::SET,
            Self::Unset(_) => procs::UNSET,
            Self::Getport(_) => procs::GETPORT,
            Self::Dump(_) => procs::DUMP,
            Self::Callit(_) => procs::CALLIT,
        }
    }
}

impl XdrEncode for PortmapReply {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Null => {}
            Self::Set(done) | Self::Unset(done) => enc.put_bool(*done),
            Self::Getport(port) => enc.put_u32(*port),
            Self::Dump(list) => list.encode(enc),
            Self::Callit(res) => res.encode(enc),
        }
    }
}

/// Decodes the results of portmap procedure `proc_num`; `Ok(None)` when there is no such
/// procedure. Bytes after the results are left in `dec`.
pub fn decode_reply(proc_num: u32, dec: &mut XdrDecoder) -> XdrResult<Option<PortmapReply>> {
    Ok(Some(match proc_num {
        procs::NULL => PortmapReply::Null,
        procs::SET => PortmapReply::Set(dec.get_bool()?),
        procs::UNSET => PortmapReply::Unset(dec.get_bool()?),
        procs::GETPORT => PortmapReply::Getport(dec.get_u32()?),
        procs::DUMP => PortmapReply::Dump(MappingList::decode(dec)?),
        procs::CALLIT => PortmapReply::Callit(CallitRes::decode(dec)?),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::{XdrError, from_bytes, to_bytes};

    fn words(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn dump_is_a_linked_list() {
        let list = MappingList(vec![
            Mapping {
                prog: PROGRAM,
                vers: VERSION,
                prot: IPPROTO_TCP,
                port: 111,
            },
            Mapping {
                prog: 100003,
                vers: 3,
                prot: IPPROTO_UDP,
                port: 2049,
            },
        ]);
        let bytes = to_bytes(&list);
        let expected = words(&[
            1, 100000, 2, 6, 111, //
            1, 100003, 3, 17, 2049, //
            0,
        ]);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(from_bytes::<MappingList>(bytes).unwrap(), list);
        assert_eq!(&to_bytes(&MappingList::default())[..], &words(&[0])[..]);
    }

    #[test]
    fn getport_round_trip_and_errors() {
        let call = PortmapCall::Getport(Mapping {
            prog: 100005,
            vers: 3,
            prot: IPPROTO_TCP,
            port: 0,
        });
        let bytes = to_bytes(&call);
        assert_eq!(bytes.len(), 16);
        let mut dec = XdrDecoder::new(bytes);
        assert_eq!(decode_call(procs::GETPORT, &mut dec), Ok(Some(call)));
        dec.finish().unwrap();

        let mut dec = XdrDecoder::new(Bytes::from(words(&[1, 2, 3])));
        assert!(matches!(
            decode_call(procs::GETPORT, &mut dec),
            Err(XdrError::Truncated { .. })
        ));
        let mut dec = XdrDecoder::new(Bytes::from(words(&[3])));
        assert!(matches!(
            decode_reply(procs::SET, &mut dec),
            Err(XdrError::InvalidValue { .. })
        ));
        let mut dec = XdrDecoder::new(Bytes::new());
        assert_eq!(decode_call(6, &mut dec), Ok(None));
        assert_eq!(decode_reply(99, &mut dec), Ok(None));
    }
}
