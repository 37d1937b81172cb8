//! The NFSv3 data types shared by many procedures (RFC 1813, section 2.5–2.6).

use std::fmt;

use bytes::Bytes;

use super::MAX_FH_BYTES;
use super::codec::{Name, xdr_struct};
use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrError, XdrResult};

/// `nfsstat3`: the status of every NFSv3 result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nfs3Status {
    /// `NFS3_OK` (0): success.
    Ok,
    /// `NFS3ERR_PERM` (1): not owner.
    Perm,
    /// `NFS3ERR_NOENT` (2): no such file or directory.
    NoEnt,
    /// `NFS3ERR_IO` (5): I/O error.
    Io,
    /// `NFS3ERR_NXIO` (6): no such device or address.
    NxIo,
    /// `NFS3ERR_ACCES` (13): permission denied.
    Acces,
    /// `NFS3ERR_EXIST` (17): file exists.
    Exist,
    /// `NFS3ERR_XDEV` (18): cross-device link.
    XDev,
    /// `NFS3ERR_NODEV` (19): no such device.
    NoDev,
    /// `NFS3ERR_NOTDIR` (20): not a directory.
    NotDir,
    /// `NFS3ERR_ISDIR` (21): is a directory.
    IsDir,
    /// `NFS3ERR_INVAL` (22): invalid argument.
    Inval,
    /// `NFS3ERR_FBIG` (27): file too large.
    FBig,
    /// `NFS3ERR_NOSPC` (28): no space left on device.
    NoSpc,
    /// `NFS3ERR_ROFS` (30): read-only file system.
    RoFs,
    /// `NFS3ERR_MLINK` (31): too many hard links.
    MLink,
    /// `NFS3ERR_NAMETOOLONG` (63): name too long.
    NameTooLong,
    /// `NFS3ERR_NOTEMPTY` (66): directory not empty.
    NotEmpty,
    /// `NFS3ERR_DQUOT` (69): quota exceeded.
    DQuot,
    /// `NFS3ERR_STALE` (70): stale file handle.
    Stale,
    /// `NFS3ERR_REMOTE` (71): too many levels of remote in path.
    Remote,
    /// `NFS3ERR_BADHANDLE` (10001): illegal file handle.
    BadHandle,
    /// `NFS3ERR_NOT_SYNC` (10002): SETATTR guard mismatch.
    NotSync,
    /// `NFS3ERR_BAD_COOKIE` (10003): READDIR cookie is stale.
    BadCookie,
    /// `NFS3ERR_NOTSUPP` (10004): operation not supported.
    NotSupp,
    /// `NFS3ERR_TOOSMALL` (10005): buffer or request too small.
    TooSmall,
    /// `NFS3ERR_SERVERFAULT` (10006): server error with no better mapping.
    ServerFault,
    /// `NFS3ERR_BADTYPE` (10007): type not supported by the server.
    BadType,
    /// `NFS3ERR_JUKEBOX` (10008): try again later.
    Jukebox,
    /// Any value RFC 1813 does not define (kept, not rejected: it is still a failure).
    Unknown(u32),
}

impl Nfs3Status {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Ok => 0,
            Self::Perm => 1,
            Self::NoEnt => 2,
            Self::Io => 5,
            Self::NxIo => 6,
            Self::Acces => 13,
            Self::Exist => 17,
            Self::XDev => 18,
            Self::NoDev => 19,
            Self::NotDir => 20,
            Self::IsDir => 21,
            Self::Inval => 22,
            Self::FBig => 27,
            Self::NoSpc => 28,
            Self::RoFs => 30,
            Self::MLink => 31,
            Self::NameTooLong => 63,
            Self::NotEmpty => 66,
            Self::DQuot => 69,
            Self::Stale => 70,
            Self::Remote => 71,
            Self::BadHandle => 10001,
            Self::NotSync => 10002,
            Self::BadCookie => 10003,
            Self::NotSupp => 10004,
            Self::TooSmall => 10005,
            Self::ServerFault => 10006,
            Self::BadType => 10007,
            Self::Jukebox => 10008,
            Self::Unknown(value) => value,
        }
    }

    /// From the wire value; values RFC 1813 does not define become [`Nfs3Status::Unknown`].
    pub fn from_u32(value: u32) -> Self {
        match value {
            0 => Self::Ok,
            1 => Self::Perm,
            2 => Self::NoEnt,
            5 => Self::Io,
            6 => Self::NxIo,
            13 => Self::Acces,
            17 => Self::Exist,
            18 => Self::XDev,
            19 => Self::NoDev,
            20 => Self::NotDir,
            21 => Self::IsDir,
            22 => Self::Inval,
            27 => Self::FBig,
            28 => Self::NoSpc,
            30 => Self::RoFs,
            31 => Self::MLink,
            63 => Self::NameTooLong,
            66 => Self::NotEmpty,
            69 => Self::DQuot,
            70 => Self::Stale,
            71 => Self::Remote,
            10001 => Self::BadHandle,
            10002 => Self::NotSync,
            10003 => Self::BadCookie,
            10004 => Self::NotSupp,
            10005 => Self::TooSmall,
            10006 => Self::ServerFault,
            10007 => Self::BadType,
            10008 => Self::Jukebox,
            other => Self::Unknown(other),
        }
    }

    /// True for [`Nfs3Status::Ok`].
    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }

    /// The RFC 1813 name (`"NFS3ERR_NOENT"`), or `None` for [`Nfs3Status::Unknown`].
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::Ok => "NFS3_OK",
            Self::Perm => "NFS3ERR_PERM",
            Self::NoEnt => "NFS3ERR_NOENT",
            Self::Io => "NFS3ERR_IO",
            Self::NxIo => "NFS3ERR_NXIO",
            Self::Acces => "NFS3ERR_ACCES",
            Self::Exist => "NFS3ERR_EXIST",
            Self::XDev => "NFS3ERR_XDEV",
            Self::NoDev => "NFS3ERR_NODEV",
            Self::NotDir => "NFS3ERR_NOTDIR",
            Self::IsDir => "NFS3ERR_ISDIR",
            Self::Inval => "NFS3ERR_INVAL",
            Self::FBig => "NFS3ERR_FBIG",
            Self::NoSpc => "NFS3ERR_NOSPC",
            Self::RoFs => "NFS3ERR_ROFS",
            Self::MLink => "NFS3ERR_MLINK",
            Self::NameTooLong => "NFS3ERR_NAMETOOLONG",
            Self::NotEmpty => "NFS3ERR_NOTEMPTY",
            Self::DQuot => "NFS3ERR_DQUOT",
            Self::Stale => "NFS3ERR_STALE",
            Self::Remote => "NFS3ERR_REMOTE",
            Self::BadHandle => "NFS3ERR_BADHANDLE",
            Self::NotSync => "NFS3ERR_NOT_SYNC",
            Self::BadCookie => "NFS3ERR_BAD_COOKIE",
            Self::NotSupp => "NFS3ERR_NOTSUPP",
            Self::TooSmall => "NFS3ERR_TOOSMALL",
            Self::ServerFault => "NFS3ERR_SERVERFAULT",
            Self::BadType => "NFS3ERR_BADTYPE",
            Self::Jukebox => "NFS3ERR_JUKEBOX",
            Self::Unknown(_) => return None,
        })
    }
}

impl fmt::Display for Nfs3Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "NFS3ERR_UNKNOWN({})", self.to_u32()),
        }
    }
}

impl XdrEncode for Nfs3Status {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.to_u32());
    }
}

impl XdrDecode for Nfs3Status {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        Ok(Self::from_u32(dec.get_u32()?))
    }
}

/// The result of an NFSv3 procedure: the `resok` arm on `NFS3_OK`, the `resfail` arm otherwise.
///
/// `F` is `()` for results whose `resfail` arm is void (GETATTR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NfsRes<T, F> {
    /// `NFS3_OK` and the `resok` arm.
    Ok(T),
    /// Any other status and the `resfail` arm.
    ///
    /// A `Fail` whose `status` is [`Nfs3Status::Ok`] cannot be expressed on the wire (the peer
    /// would read the `resok` arm); it is encoded as `NFS3ERR_SERVERFAULT`.
    Fail {
        /// The failure status (never `NFS3_OK` once decoded).
        status: Nfs3Status,
        /// The `resfail` arm.
        fail: F,
    },
}

impl<T, F> NfsRes<T, F> {
    /// The status on the wire.
    pub fn status(&self) -> Nfs3Status {
        match self {
            Self::Ok(_) => Nfs3Status::Ok,
            Self::Fail { status, .. } => *status,
        }
    }

    /// True for the `Ok` arm.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }

    /// The `resok` arm, if any.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Self::Ok(ok) => Some(ok),
            Self::Fail { .. } => None,
        }
    }

    /// Converts into a `Result` of the `resok` arm or the status and `resfail` arm.
    pub fn into_result(self) -> Result<T, (Nfs3Status, F)> {
        match self {
            Self::Ok(ok) => Ok(ok),
            Self::Fail { status, fail } => Err((status, fail)),
        }
    }

    /// A failure with `status` and the `resfail` arm `fail`.
    pub fn fail(status: Nfs3Status, fail: F) -> Self {
        Self::Fail { status, fail }
    }
}

impl<T, F> From<Result<T, (Nfs3Status, F)>> for NfsRes<T, F> {
    fn from(result: Result<T, (Nfs3Status, F)>) -> Self {
        match result {
            Ok(ok) => Self::Ok(ok),
            Err((status, fail)) => Self::Fail { status, fail },
        }
    }
}

impl<T: XdrEncode, F: XdrEncode> XdrEncode for NfsRes<T, F> {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Ok(ok) => {
                Nfs3Status::Ok.encode(enc);
                ok.encode(enc);
            }
            Self::Fail { status, fail } => {
                let status = if status.is_ok() {
                    Nfs3Status::ServerFault
                } else {
                    *status
                };
                status.encode(enc);
                fail.encode(enc);
            }
        }
    }
}

impl<T: XdrDecode, F: XdrDecode> XdrDecode for NfsRes<T, F> {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        let status = Nfs3Status::decode(dec)?;
        if status.is_ok() {
            Ok(Self::Ok(T::decode(dec)?))
        } else {
            Ok(Self::Fail {
                status,
                fail: F::decode(dec)?,
            })
        }
    }
}

/// `nfs_fh3`: an opaque file handle of at most [`MAX_FH_BYTES`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FileHandle(pub Bytes);

impl FileHandle {
    /// The handle's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The handle's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty handle.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Bytes> for FileHandle {
    fn from(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl From<Vec<u8>> for FileHandle {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Bytes::from(bytes))
    }
}

impl fmt::Debug for FileHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileHandle(")?;
        for byte in self.0.iter() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

impl XdrEncode for FileHandle {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_opaque(&self.0);
    }
}

impl XdrDecode for FileHandle {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        Ok(Self(dec.get_opaque("nfs_fh3", MAX_FH_BYTES)?))
    }
}

/// `ftype3`: the type of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FileType {
    /// `NF3REG` (1): regular file.
    #[default]
    Regular,
    /// `NF3DIR` (2): directory.
    Directory,
    /// `NF3BLK` (3): block special device.
    Block,
    /// `NF3CHR` (4): character special device.
    Character,
    /// `NF3LNK` (5): symbolic link.
    Symlink,
    /// `NF3SOCK` (6): socket.
    Socket,
    /// `NF3FIFO` (7): named pipe.
    Fifo,
}

impl FileType {
    /// The wire value (1..=7).
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Regular => 1,
            Self::Directory => 2,
            Self::Block => 3,
            Self::Character => 4,
            Self::Symlink => 5,
            Self::Socket => 6,
            Self::Fifo => 7,
        }
    }

    /// From the wire value; `None` outside 1..=7.
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::Regular,
            2 => Self::Directory,
            3 => Self::Block,
            4 => Self::Character,
            5 => Self::Symlink,
            6 => Self::Socket,
            7 => Self::Fifo,
            _ => return None,
        })
    }
}

impl XdrEncode for FileType {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.to_u32());
    }
}

impl XdrDecode for FileType {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        let value = dec.get_u32()?;
        Self::from_u32(value).ok_or(XdrError::InvalidValue {
            what: "ftype3",
            value,
        })
    }
}

xdr_struct! {
    /// `nfstime3`: seconds and nanoseconds since the epoch (ordered chronologically).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct NfsTime {
        /// Seconds since 1970-01-01T00:00:00Z.
        pub seconds: u32,
        /// Nanoseconds within the second.
        pub nseconds: u32,
    }
}

xdr_struct! {
    /// `specdata3`: the device numbers of a block or character special file.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SpecData {
        /// `specdata1`: major device number.
        pub major: u32,
        /// `specdata2`: minor device number.
        pub minor: u32,
    }
}

xdr_struct! {
    /// `fattr3`: the attributes of a file.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct Fattr {
        /// `type`: the file type.
        pub file_type: FileType,
        /// Permission bits (and set-id/sticky bits).
        pub mode: u32,
        /// Number of hard links.
        pub nlink: u32,
        /// Owner.
        pub uid: u32,
        /// Group.
        pub gid: u32,
        /// Size in bytes.
        pub size: u64,
        /// Bytes of storage actually used.
        pub used: u64,
        /// Device numbers, for block and character files.
        pub rdev: SpecData,
        /// File system identifier.
        pub fsid: u64,
        /// File identifier within the file system (inode number).
        pub fileid: u64,
        /// Last access.
        pub atime: NfsTime,
        /// Last modification of the data.
        pub mtime: NfsTime,
        /// Last change of the attributes.
        pub ctime: NfsTime,
    }
}

/// `post_op_attr`: attributes the server may return after an operation.
pub type PostOpAttr = Option<Fattr>;

xdr_struct! {
    /// `wcc_attr`: the subset of attributes used for weak cache consistency.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct WccAttr {
        /// Size in bytes.
        pub size: u64,
        /// Last modification of the data.
        pub mtime: NfsTime,
        /// Last change of the attributes.
        pub ctime: NfsTime,
    }
}

/// `pre_op_attr`: attributes the server may return from before an operation.
pub type PreOpAttr = Option<WccAttr>;

xdr_struct! {
    /// `wcc_data`: attributes from before and after an operation that modified an object.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct WccData {
        /// Before the operation.
        pub before: PreOpAttr,
        /// After the operation.
        pub after: PostOpAttr,
    }
}

/// `post_op_fh3`: a file handle the server may return.
pub type PostOpFh = Option<FileHandle>;

/// `set_atime`/`set_mtime`: how SETATTR (and the create procedures) set a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SetTime {
    /// `DONT_CHANGE` (0).
    #[default]
    DontChange,
    /// `SET_TO_SERVER_TIME` (1): the server's current time.
    ServerTime,
    /// `SET_TO_CLIENT_TIME` (2): the given time.
    ClientTime(NfsTime),
}

impl XdrEncode for SetTime {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::DontChange => enc.put_u32(0),
            Self::ServerTime => enc.put_u32(1),
            Self::ClientTime(time) => {
                enc.put_u32(2);
                time.encode(enc);
            }
        }
    }
}

impl XdrDecode for SetTime {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        match dec.get_u32()? {
            0 => Ok(Self::DontChange),
            1 => Ok(Self::ServerTime),
            2 => Ok(Self::ClientTime(NfsTime::decode(dec)?)),
            value => Err(XdrError::InvalidValue {
                what: "time_how",
                value,
            }),
        }
    }
}

xdr_struct! {
    /// `sattr3`: the attributes to set; `None`/[`SetTime::DontChange`] leaves one unchanged.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct Sattr {
        /// `set_mode3`.
        pub mode: Option<u32>,
        /// `set_uid3`.
        pub uid: Option<u32>,
        /// `set_gid3`.
        pub gid: Option<u32>,
        /// `set_size3`.
        pub size: Option<u64>,
        /// `set_atime`.
        pub atime: SetTime,
        /// `set_mtime`.
        pub mtime: SetTime,
    }
}

xdr_struct! {
    /// `diropargs3`: a name within a directory.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct DirOpArgs {
        /// The directory.
        pub dir: FileHandle,
        /// The name (at most [`super::MAX_NAME_BYTES`] bytes when decoded).
        pub name: Bytes as Name,
    }
}

/// `stable_how`: how durable a WRITE must be before the reply; ordered by strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum StableHow {
    /// `UNSTABLE` (0): the server may cache the data until COMMIT.
    #[default]
    Unstable,
    /// `DATA_SYNC` (1): data (and the metadata needed to read it) on stable storage.
    DataSync,
    /// `FILE_SYNC` (2): data and all metadata on stable storage.
    FileSync,
}

impl StableHow {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Unstable => 0,
            Self::DataSync => 1,
            Self::FileSync => 2,
        }
    }

    /// From the wire value; `None` outside 0..=2.
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::Unstable,
            1 => Self::DataSync,
            2 => Self::FileSync,
            _ => return None,
        })
    }
}

impl XdrEncode for StableHow {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.to_u32());
    }
}

impl XdrDecode for StableHow {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        let value = dec.get_u32()?;
        Self::from_u32(value).ok_or(XdrError::InvalidValue {
            what: "stable_how",
            value,
        })
    }
}

macro_rules! verifier {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub [u8; 8]);

        impl XdrEncode for $name {
            fn encode(&self, enc: &mut XdrEncoder) {
                enc.put_opaque_fixed(&self.0);
            }
        }

        impl XdrDecode for $name {
            fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
                Ok(Self(dec.get_array_fixed::<8>($what)?))
            }
        }
    };
}

verifier! {
    /// `writeverf3`: changes when the server may have lost uncommitted writes (reboot).
    WriteVerifier, "writeverf3"
}

verifier! {
    /// `cookieverf3`: validates READDIR cookies against the directory's version.
    CookieVerifier, "cookieverf3"
}

verifier! {
    /// `createverf3`: identifies an exclusive CREATE so that retransmissions are idempotent.
    CreateVerifier, "createverf3"
}

/// `createhow3`: how CREATE treats an existing file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CreateHow {
    /// `UNCHECKED` (0): create, or open an existing file, and set the attributes.
    Unchecked(Sattr),
    /// `GUARDED` (1): fail with `NFS3ERR_EXIST` if the file exists.
    Guarded(Sattr),
    /// `EXCLUSIVE` (2): create exactly once, identified by the verifier.
    Exclusive(CreateVerifier),
}

impl Default for CreateHow {
    fn default() -> Self {
        Self::Unchecked(Sattr::default())
    }
}

impl XdrEncode for CreateHow {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Unchecked(attributes) => {
                enc.put_u32(0);
                attributes.encode(enc);
            }
            Self::Guarded(attributes) => {
                enc.put_u32(1);
                attributes.encode(enc);
            }
            Self::Exclusive(verf) => {
                enc.put_u32(2);
                verf.encode(enc);
            }
        }
    }
}

impl XdrDecode for CreateHow {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        match dec.get_u32()? {
            0 => Ok(Self::Unchecked(Sattr::decode(dec)?)),
            1 => Ok(Self::Guarded(Sattr::decode(dec)?)),
            2 => Ok(Self::Exclusive(CreateVerifier::decode(dec)?)),
            value => Err(XdrError::InvalidValue {
                what: "createmode3",
                value,
            }),
        }
    }
}

xdr_struct! {
    /// `devicedata3`: the attributes and device numbers of a new special device file.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct DeviceData {
        /// Initial attributes.
        pub dev_attributes: Sattr,
        /// Device numbers.
        pub spec: SpecData,
    }
}

/// `mknoddata3`: what MKNOD creates, by file type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MknodData {
    /// `NF3CHR`: a character device.
    Char(DeviceData),
    /// `NF3BLK`: a block device.
    Block(DeviceData),
    /// `NF3SOCK`: a socket (`pipe_attributes`).
    Socket(Sattr),
    /// `NF3FIFO`: a named pipe (`pipe_attributes`).
    Fifo(Sattr),
    /// Any other type (the `default: void` arm): regular file, directory or symbolic link,
    /// which the server answers with `NFS3ERR_BADTYPE`.
    ///
    /// `Other` holding one of the four types above cannot be expressed on the wire; it is encoded
    /// as that type's arm with default attributes.
    Other(FileType),
}

impl MknodData {
    /// The file type discriminant.
    pub fn file_type(&self) -> FileType {
        match self {
            Self::Char(_) => FileType::Character,
            Self::Block(_) => FileType::Block,
            Self::Socket(_) => FileType::Socket,
            Self::Fifo(_) => FileType::Fifo,
            Self::Other(file_type) => *file_type,
        }
    }
}

impl XdrEncode for MknodData {
    fn encode(&self, enc: &mut XdrEncoder) {
        self.file_type().encode(enc);
        match self {
            Self::Char(device) | Self::Block(device) => device.encode(enc),
            Self::Socket(attributes) | Self::Fifo(attributes) => attributes.encode(enc),
            Self::Other(FileType::Character | FileType::Block) => DeviceData::default().encode(enc),
            Self::Other(FileType::Socket | FileType::Fifo) => Sattr::default().encode(enc),
            Self::Other(FileType::Regular | FileType::Directory | FileType::Symlink) => {}
        }
    }
}

impl XdrDecode for MknodData {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        Ok(match FileType::decode(dec)? {
            FileType::Character => Self::Char(DeviceData::decode(dec)?),
            FileType::Block => Self::Block(DeviceData::decode(dec)?),
            FileType::Socket => Self::Socket(Sattr::decode(dec)?),
            FileType::Fifo => Self::Fifo(Sattr::decode(dec)?),
            other => Self::Other(other),
        })
    }
}

xdr_struct! {
    /// `symlinkdata3`: the attributes and target of a new symbolic link.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct SymlinkData {
        /// Initial attributes.
        pub symlink_attributes: Sattr,
        /// The target path (at most [`super::MAX_PATH_BYTES`] bytes when decoded).
        pub symlink_data: Bytes as super::codec::Path,
    }
}
