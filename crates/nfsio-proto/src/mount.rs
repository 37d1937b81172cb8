//! MOUNT version 3 (RFC 1813, appendix I): how a client gets the root file handle of an export.
//!
//! NFSv3 itself has no way to turn a path into a file handle; the MOUNT program does that (MNT),
//! and also lists exports (EXPORT) and, advisorily, the clients that mounted them (DUMP, UMNT,
//! UMNTALL). Its file handles are NFSv3 [`FileHandle`]s.

use std::fmt;

use bytes::Bytes;

use crate::nfs3::FileHandle;
use crate::nfs3::codec::{FieldCodec, decode_list, encode_list, xdr_struct};
use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrResult};

/// The MOUNT program number.
pub const PROGRAM: u32 = 100005;

/// The MOUNT version this module speaks.
pub const VERSION: u32 = 3;

/// Maximum length of a path (`dirpath`).
pub const MNTPATHLEN: u32 = 1024;

/// Maximum length of a host or group name (`name`).
pub const MNTNAMLEN: u32 = 255;

/// Maximum number of authentication flavors accepted in an MNT reply.
pub const MAX_AUTH_FLAVORS: u32 = 64;

/// Maximum number of items accepted in a DUMP or EXPORT list (or in one export's groups).
pub const MAX_LIST_ITEMS: usize = 1 << 16;

/// Procedure numbers.
pub mod procs {
    /// Do nothing (ping).
    pub const NULL: u32 = 0;
    /// Get the file handle of an exported path.
    pub const MNT: u32 = 1;
    /// List the mounts the server believes are active.
    pub const DUMP: u32 = 2;
    /// Forget a mount.
    pub const UMNT: u32 = 3;
    /// Forget every mount of the caller.
    pub const UMNTALL: u32 = 4;
    /// List the exports.
    pub const EXPORT: u32 = 5;
}

/// The name of MOUNT procedure `proc_num` (`"MNT"`), or `"UNKNOWN"`.
pub fn proc_name(proc_num: u32) -> &'static str {
    match proc_num {
        procs::NULL => "NULL",
        procs::MNT => "MNT",
        procs::DUMP => "DUMP",
        procs::UMNT => "UMNT",
        procs::UMNTALL => "UMNTALL",
        procs::EXPORT => "EXPORT",
        _ => "UNKNOWN",
    }
}

/// `dirpath`: at most [`MNTPATHLEN`] bytes.
struct DirPath;

impl FieldCodec<Bytes> for DirPath {
    fn encode_field(value: &Bytes, enc: &mut XdrEncoder) {
        enc.put_opaque(value);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Bytes> {
        dec.get_opaque("dirpath", MNTPATHLEN)
    }
}

/// `name`: at most [`MNTNAMLEN`] bytes.
struct Name;

impl FieldCodec<Bytes> for Name {
    fn encode_field(value: &Bytes, enc: &mut XdrEncoder) {
        enc.put_opaque(value);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Bytes> {
        dec.get_opaque("name", MNTNAMLEN)
    }
}

/// `groups`: a linked list of names.
struct Groups;

impl FieldCodec<Vec<Bytes>> for Groups {
    fn encode_field(value: &Vec<Bytes>, enc: &mut XdrEncoder) {
        encode_list(value, enc, Name::encode_field);
    }

    fn decode_field(dec: &mut XdrDecoder) -> XdrResult<Vec<Bytes>> {
        decode_list(dec, "groups", MAX_LIST_ITEMS, Name::decode_field)
    }
}

/// `mountstat3`: the status of MNT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountStatus {
    /// `MNT3_OK` (0).
    Ok,
    /// `MNT3ERR_PERM` (1): not owner.
    Perm,
    /// `MNT3ERR_NOENT` (2): no such file or directory.
    NoEnt,
    /// `MNT3ERR_IO` (5): I/O error.
    Io,
    /// `MNT3ERR_ACCES` (13): permission denied.
    Acces,
    /// `MNT3ERR_NOTDIR` (20): not a directory.
    NotDir,
    /// `MNT3ERR_INVAL` (22): invalid argument.
    Inval,
    /// `MNT3ERR_NAMETOOLONG` (63): path too long.
    NameTooLong,
    /// `MNT3ERR_NOTSUPP` (10004): operation not supported.
    NotSupp,
    /// `MNT3ERR_SERVERFAULT` (10006): server failure.
    ServerFault,
    /// Any value RFC 1813 does not define (kept, not rejected: it is still a failure).
    Unknown(u32),
}

impl MountStatus {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Ok => 0,
            Self::Perm => 1,
            Self::NoEnt => 2,
            Self::Io => 5,
            Self::Acces => 13,
            Self::NotDir => 20,
            Self::Inval => 22,
            Self::NameTooLong => 63,
            Self::NotSupp => 10004,
            Self::ServerFault => 10006,
            Self::Unknown(value) => value,
        }
    }

    /// From the wire value; values RFC 1813 does not define become [`MountStatus::Unknown`].
    pub fn from_u32(value: u32) -> Self {
        match value {
            0 => Self::Ok,
            1 => Self::Perm,
            2 => Self::NoEnt,
            5 => Self::Io,
            13 => Self::Acces,
            20 => Self::NotDir,
            22 => Self::Inval,
            63 => Self::NameTooLong,
            10004 => Self::NotSupp,
            10006 => Self::ServerFault,
            other => Self::Unknown(other),
        }
    }

    /// True for [`MountStatus::Ok`].
    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }

    /// The RFC 1813 name (`"MNT3ERR_NOENT"`), or `None` for [`MountStatus::Unknown`].
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::Ok => "MNT3_OK",
            Self::Perm => "MNT3ERR_PERM",
            Self::NoEnt => "MNT3ERR_NOENT",
            Self::Io => "MNT3ERR_IO",
            Self::Acces => "MNT3ERR_ACCES",
            Self::NotDir => "MNT3ERR_NOTDIR",
            Self::Inval => "MNT3ERR_INVAL",
            Self::NameTooLong => "MNT3ERR_NAMETOOLONG",
            Self::NotSupp => "MNT3ERR_NOTSUPP",
            Self::ServerFault => "MNT3ERR_SERVERFAULT",
            Self::Unknown(_) => return None,
        })
    }
}

impl fmt::Display for MountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "MNT3ERR_UNKNOWN({})", self.to_u32()),
        }
    }
}

impl XdrEncode for MountStatus {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.to_u32());
    }
}

impl XdrDecode for MountStatus {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        Ok(Self::from_u32(dec.get_u32()?))
    }
}

xdr_struct! {
    /// The argument of MNT and UMNT: a `dirpath`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct MntArgs {
        /// The exported path (at most [`MNTPATHLEN`] bytes when decoded).
        pub dirpath: Bytes as DirPath,
    }
}

/// The argument of UMNT (same as MNT's).
pub type UmntArgs = MntArgs;

/// `mountres3`: the result of MNT.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MntRes {
    /// `MNT3_OK` and `mountres3_ok`.
    Ok {
        /// The root file handle of the export.
        fhandle: FileHandle,
        /// The RPC authentication flavors the server accepts (at most [`MAX_AUTH_FLAVORS`]).
        auth_flavors: Vec<u32>,
    },
    /// Any other status (the arm is void). `Fail(MountStatus::Ok)` cannot be expressed on the
    /// wire and is encoded as `MNT3ERR_SERVERFAULT`.
    Fail(MountStatus),
}

impl MntRes {
    /// The status on the wire.
    pub fn status(&self) -> MountStatus {
        match self {
            Self::Ok { .. } => MountStatus::Ok,
            Self::Fail(status) => *status,
        }
    }
}

impl XdrEncode for MntRes {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Ok {
                fhandle,
                auth_flavors,
            } => {
                MountStatus::Ok.encode(enc);
                fhandle.encode(enc);
                enc.put_u32(auth_flavors.len() as u32);
                for flavor in auth_flavors {
                    enc.put_u32(*flavor);
                }
            }
            Self::Fail(status) => {
                let status = if status.is_ok() {
                    MountStatus::ServerFault
                } else {
                    *status
                };
                status.encode(enc);
            }
        }
    }
}

impl XdrDecode for MntRes {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        let status = MountStatus::decode(dec)?;
        if !status.is_ok() {
            return Ok(Self::Fail(status));
        }
        let fhandle = FileHandle::decode(dec)?;
        let count = dec.get_count("auth_flavors", MAX_AUTH_FLAVORS, 4)?;
        let mut auth_flavors = Vec::with_capacity(count);
        for _ in 0..count {
            auth_flavors.push(dec.get_u32()?);
        }
        Ok(Self::Ok {
            fhandle,
            auth_flavors,
        })
    }
}

xdr_struct! {
    /// `mountbody`: one mount in the DUMP list.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct MountEntry {
        /// `ml_hostname`: the client (at most [`MNTNAMLEN`] bytes when decoded).
        pub hostname: Bytes as Name,
        /// `ml_directory`: the path it mounted (at most [`MNTPATHLEN`] bytes when decoded).
        pub directory: Bytes as DirPath,
    }
}

/// `mountlist`: the result of DUMP, encoded as an XDR linked list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MountList(pub Vec<MountEntry>);

impl XdrEncode for MountList {
    fn encode(&self, enc: &mut XdrEncoder) {
        encode_list(&self.0, enc, MountEntry::encode);
    }
}

impl XdrDecode for MountList {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        decode_list(dec, "mountlist", MAX_LIST_ITEMS, MountEntry::decode).map(Self)
    }
}

xdr_struct! {
    /// `exportnode`: one export in the EXPORT list.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ExportNode {
        /// `ex_dir`: the exported path (at most [`MNTPATHLEN`] bytes when decoded).
        pub dir: Bytes as DirPath,
        /// `ex_groups`: the clients or groups allowed (at most [`MNTNAMLEN`] bytes each when
        /// decoded), encoded as an XDR linked list; empty means everyone.
        pub groups: Vec<Bytes> as Groups,
    }
}

/// `exports`: the result of EXPORT, encoded as an XDR linked list of [`ExportNode`]s.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ExportList(pub Vec<ExportNode>);

impl XdrEncode for ExportList {
    fn encode(&self, enc: &mut XdrEncoder) {
        encode_list(&self.0, enc, ExportNode::encode);
    }
}

impl XdrDecode for ExportList {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        decode_list(dec, "exports", MAX_LIST_ITEMS, ExportNode::decode).map(Self)
    }
}

/// The arguments of one MOUNT call, by procedure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MountCall {
    /// `MOUNTPROC3_NULL`.
    Null,
    /// `MOUNTPROC3_MNT`.
    Mnt(MntArgs),
    /// `MOUNTPROC3_DUMP`.
    Dump,
    /// `MOUNTPROC3_UMNT`.
    Umnt(UmntArgs),
    /// `MOUNTPROC3_UMNTALL`.
    UmntAll,
    /// `MOUNTPROC3_EXPORT`.
    Export,
}

impl MountCall {
    /// The procedure number.
    pub fn proc_num(&self) -> u32 {
        match self {
            Self::Null => procs::NULL,
            Self::Mnt(_) => procs::MNT,
            Self::Dump => procs::DUMP,
            Self::Umnt(_) => procs::UMNT,
            Self::UmntAll => procs::UMNTALL,
            Self::Export => procs::EXPORT,
        }
    }
}

impl XdrEncode for MountCall {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Null | Self::Dump | Self::UmntAll | Self::Export => {}
            Self::Mnt(args) | Self::Umnt(args) => args.encode(enc),
        }
    }
}

/// Decodes the arguments of MOUNT procedure `proc_num`; `Ok(None)` when there is no such
/// procedure. Bytes after the arguments are left in `dec`.
pub fn decode_call(proc_num: u32, dec: &mut XdrDecoder) -> XdrResult<Option<MountCall>> {
    Ok(Some(match proc_num {
        procs::NULL => MountCall::Null,
        procs::MNT => MountCall::Mnt(MntArgs::decode(dec)?),
        procs::DUMP => MountCall::Dump,
        procs::UMNT => MountCall::Umnt(UmntArgs::decode(dec)?),
        procs::UMNTALL => MountCall::UmntAll,
        procs::EXPORT => MountCall::Export,
        _ => return Ok(None),
    }))
}

/// The results of one MOUNT call, by procedure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MountReply {
    /// `MOUNTPROC3_NULL`.
    Null,
    /// `MOUNTPROC3_MNT`.
    Mnt(MntRes),
    /// `MOUNTPROC3_DUMP`.
    Dump(MountList),
    /// `MOUNTPROC3_UMNT` (void).
    Umnt,
    /// `MOUNTPROC3_UMNTALL` (void).
    UmntAll,
    /// `MOUNTPROC3_EXPORT`.
    Export(ExportList),
}

impl MountReply {
    /// The procedure number.
    pub fn proc_num(&self) -> u32 {
        match self {
            Self::Null => procs::NULL,
            Self::Mnt(_) => procs::MNT,
            Self::Dump(_) => procs::DUMP,
            Self::Umnt => procs::UMNT,
            Self::UmntAll => procs::UMNTALL,
            Self::Export(_) => procs::EXPORT,
        }
    }
}

impl XdrEncode for MountReply {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Null | Self::Umnt | Self::UmntAll => {}
            Self::Mnt(res) => res.encode(enc),
            Self::Dump(list) => list.encode(enc),
            Self::Export(list) => list.encode(enc),
        }
    }
}

/// Decodes the results of MOUNT procedure `proc_num`; `Ok(None)` when there is no such
/// procedure. Bytes after the results are left in `dec`.
pub fn decode_reply(proc_num: u32, dec: &mut XdrDecoder) -> XdrResult<Option<MountReply>> {
    Ok(Some(match proc_num {
        procs::NULL => MountReply::Null,
        procs::MNT => MountReply::Mnt(MntRes::decode(dec)?),
        procs::DUMP => MountReply::Dump(MountList::decode(dec)?),
        procs::UMNT => MountReply::Umnt,
        procs::UMNTALL => MountReply::UmntAll,
        procs::EXPORT => MountReply::Export(ExportList::decode(dec)?),
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
    fn export_list_is_a_list_of_lists() {
        let exports = ExportList(vec![
            ExportNode {
                dir: Bytes::from_static(b"/a"),
                groups: vec![Bytes::from_static(b"h1"), Bytes::from_static(b"h2")],
            },
            ExportNode {
                dir: Bytes::from_static(b"/b"),
                groups: vec![],
            },
        ]);
        let bytes = to_bytes(&exports);
        let mut expected = Vec::new();
        expected.extend(words(&[1, 2]));
        expected.extend(b"/a\0\0");
        expected.extend(words(&[1, 2]));
        expected.extend(b"h1\0\0");
        expected.extend(words(&[1, 2]));
        expected.extend(b"h2\0\0");
        expected.extend(words(&[0, 1, 2]));
        expected.extend(b"/b\0\0");
        expected.extend(words(&[0, 0]));
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(from_bytes::<ExportList>(bytes).unwrap(), exports);
    }

    #[test]
    fn mnt_res_arms() {
        let ok = MntRes::Ok {
            fhandle: FileHandle(Bytes::from_static(&[1, 2, 3])),
            auth_flavors: vec![1, 0],
        };
        let bytes = to_bytes(&ok);
        assert_eq!(&bytes[..], &words(&[0, 3, 0x0102_0300, 2, 1, 0])[..]);
        assert_eq!(from_bytes::<MntRes>(bytes).unwrap(), ok);

        let fail = MntRes::Fail(MountStatus::Acces);
        assert_eq!(&to_bytes(&fail)[..], &words(&[13])[..]);
        assert_eq!(
            &to_bytes(&MntRes::Fail(MountStatus::Ok))[..],
            &words(&[10006])[..]
        );
        assert_eq!(MountStatus::NoEnt.to_string(), "MNT3ERR_NOENT");
        assert_eq!(MountStatus::Unknown(7).to_string(), "MNT3ERR_UNKNOWN(7)");
    }

    #[test]
    fn bounds_are_enforced() {
        // A 1025-byte dirpath.
        let mut bytes = words(&[1025]);
        bytes.extend(vec![b'a'; 1028]);
        assert!(matches!(
            from_bytes::<MntArgs>(Bytes::from(bytes)),
            Err(XdrError::TooLong { .. })
        ));
        // A 65-byte handle in MNT's reply.
        let mut bytes = words(&[0, 65]);
        bytes.extend(vec![0; 68]);
        bytes.extend(words(&[0]));
        assert!(matches!(
            from_bytes::<MntRes>(Bytes::from(bytes)),
            Err(XdrError::TooLong { .. })
        ));
        // An absurd flavor count is rejected before allocating.
        let bytes = words(&[0, 0, u32::MAX]);
        assert!(matches!(
            from_bytes::<MntRes>(Bytes::from(bytes)),
            Err(XdrError::TooLong { .. })
        ));
        let bytes = words(&[0, 0, 60]);
        assert!(matches!(
            from_bytes::<MntRes>(Bytes::from(bytes)),
            Err(XdrError::Truncated { .. })
        ));
        // A list whose "more" flag is not a boolean.
        assert!(matches!(
            from_bytes::<MountList>(Bytes::from(words(&[2]))),
            Err(XdrError::InvalidValue { .. })
        ));
        // A list that never ends.
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.extend(words(&[1, 1]));
            bytes.extend(b"h\0\0\0");
            bytes.extend(words(&[1]));
            bytes.extend(b"/\0\0\0");
        }
        assert!(matches!(
            from_bytes::<MountList>(Bytes::from(bytes)),
            Err(XdrError::Truncated { .. })
        ));
    }

    #[test]
    fn unknown_procedures_are_none() {
        let mut dec = XdrDecoder::new(Bytes::new());
        assert_eq!(decode_call(6, &mut dec), Ok(None));
        assert_eq!(decode_reply(u32::MAX, &mut dec), Ok(None));
        assert_eq!(
            decode_call(procs::EXPORT, &mut dec),
            Ok(Some(MountCall::Export))
        );
    }
}
