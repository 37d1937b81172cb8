//! The results of the NFSv3 procedures (the `*3res`, `*3resok` and `*3resfail` structures).
//!
//! Every result is an [`NfsRes`] of its `resok` and `resfail` arms. Where RFC 1813 gives several
//! procedures results of the same shape (CREATE, MKDIR, SYMLINK, MKNOD; REMOVE, RMDIR), the
//! later names are aliases of the first.

use bytes::Bytes;

use super::codec::{List, Name, Path, Payload, xdr_struct};
use super::types::{
    CookieVerifier, Fattr, FileHandle, NfsRes, NfsTime, PostOpAttr, PostOpFh, StableHow, WccData,
    WriteVerifier,
};

xdr_struct! {
    /// `GETATTR3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct GetattrResOk {
        /// The attributes.
        pub obj_attributes: Fattr,
    }
}

/// `GETATTR3res` (its `resfail` arm is void).
pub type GetattrRes = NfsRes<GetattrResOk, ()>;

xdr_struct! {
    /// `SETATTR3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct SetattrResOk {
        /// The object's attributes before and after.
        pub obj_wcc: WccData,
    }
}

xdr_struct! {
    /// `SETATTR3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct SetattrResFail {
        /// The object's attributes before and after.
        pub obj_wcc: WccData,
    }
}

/// `SETATTR3res`.
pub type SetattrRes = NfsRes<SetattrResOk, SetattrResFail>;

xdr_struct! {
    /// `LOOKUP3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct LookupResOk {
        /// The handle of the object found.
        pub object: FileHandle,
        /// Its attributes.
        pub obj_attributes: PostOpAttr,
        /// The directory's attributes.
        pub dir_attributes: PostOpAttr,
    }
}

xdr_struct! {
    /// `LOOKUP3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct LookupResFail {
        /// The directory's attributes.
        pub dir_attributes: PostOpAttr,
    }
}

/// `LOOKUP3res`.
pub type LookupRes = NfsRes<LookupResOk, LookupResFail>;

xdr_struct! {
    /// `ACCESS3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct AccessResOk {
        /// The object's attributes.
        pub obj_attributes: PostOpAttr,
        /// The [`super::access`] bits granted (a subset of those asked).
        pub access: u32,
    }
}

xdr_struct! {
    /// `ACCESS3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct AccessResFail {
        /// The object's attributes.
        pub obj_attributes: PostOpAttr,
    }
}

/// `ACCESS3res`.
pub type AccessRes = NfsRes<AccessResOk, AccessResFail>;

xdr_struct! {
    /// `READLINK3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReadlinkResOk {
        /// The link's attributes.
        pub symlink_attributes: PostOpAttr,
        /// The target path (at most [`super::MAX_PATH_BYTES`] bytes when decoded).
        pub data: Bytes as Path,
    }
}

xdr_struct! {
    /// `READLINK3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReadlinkResFail {
        /// The link's attributes.
        pub symlink_attributes: PostOpAttr,
    }
}

/// `READLINK3res`.
pub type ReadlinkRes = NfsRes<ReadlinkResOk, ReadlinkResFail>;

xdr_struct! {
    /// `READ3resok`.
    ///
    /// `data` is encoded as a shared segment (no copy) and decoded as a slice of the record,
    /// bounded by the decoder's [`crate::xdr::XdrDecoder::max_data_bytes`].
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReadResOk {
        /// The file's attributes.
        pub file_attributes: PostOpAttr,
        /// Bytes read (RFC 1813: equals `data.len()`).
        pub count: u32,
        /// True when the read reached the end of the file.
        pub eof: bool,
        /// The data.
        pub data: Bytes as Payload,
    }
}

xdr_struct! {
    /// `READ3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReadResFail {
        /// The file's attributes.
        pub file_attributes: PostOpAttr,
    }
}

/// `READ3res`.
pub type ReadRes = NfsRes<ReadResOk, ReadResFail>;

xdr_struct! {
    /// `WRITE3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct WriteResOk {
        /// The file's attributes before and after.
        pub file_wcc: WccData,
        /// Bytes written.
        pub count: u32,
        /// How durable the write actually is (at least what was asked).
        pub committed: StableHow,
        /// The server's write verifier.
        pub verf: WriteVerifier,
    }
}

xdr_struct! {
    /// `WRITE3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct WriteResFail {
        /// The file's attributes before and after.
        pub file_wcc: WccData,
    }
}

/// `WRITE3res`.
pub type WriteRes = NfsRes<WriteResOk, WriteResFail>;

xdr_struct! {
    /// `CREATE3resok` (also `MKDIR3resok`, `SYMLINK3resok`, `MKNOD3resok`).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CreateResOk {
        /// The new object's handle.
        pub obj: PostOpFh,
        /// Its attributes.
        pub obj_attributes: PostOpAttr,
        /// The directory's attributes before and after.
        pub dir_wcc: WccData,
    }
}

xdr_struct! {
    /// `CREATE3resfail` (also `MKDIR3resfail`, `SYMLINK3resfail`, `MKNOD3resfail`).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CreateResFail {
        /// The directory's attributes before and after.
        pub dir_wcc: WccData,
    }
}

/// `CREATE3res`.
pub type CreateRes = NfsRes<CreateResOk, CreateResFail>;

/// `MKDIR3resok` (same shape as [`CreateResOk`]).
pub type MkdirResOk = CreateResOk;
/// `MKDIR3resfail` (same shape as [`CreateResFail`]).
pub type MkdirResFail = CreateResFail;
/// `MKDIR3res`.
pub type MkdirRes = NfsRes<MkdirResOk, MkdirResFail>;

/// `SYMLINK3resok` (same shape as [`CreateResOk`]).
pub type SymlinkResOk = CreateResOk;
/// `SYMLINK3resfail` (same shape as [`CreateResFail`]).
pub type SymlinkResFail = CreateResFail;
/// `SYMLINK3res`.
pub type SymlinkRes = NfsRes<SymlinkResOk, SymlinkResFail>;

/// `MKNOD3resok` (same shape as [`CreateResOk`]).
pub type MknodResOk = CreateResOk;
/// `MKNOD3resfail` (same shape as [`CreateResFail`]).
pub type MknodResFail = CreateResFail;
/// `MKNOD3res`.
pub type MknodRes = NfsRes<MknodResOk, MknodResFail>;

xdr_struct! {
    /// `REMOVE3resok` (also `RMDIR3resok`).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct RemoveResOk {
        /// The directory's attributes before and after.
        pub dir_wcc: WccData,
    }
}

xdr_struct! {
    /// `REMOVE3resfail` (also `RMDIR3resfail`).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct RemoveResFail {
        /// The directory's attributes before and after.
        pub dir_wcc: WccData,
    }
}

/// `REMOVE3res`.
pub type RemoveRes = NfsRes<RemoveResOk, RemoveResFail>;

/// `RMDIR3resok` (same shape as [`RemoveResOk`]).
pub type RmdirResOk = RemoveResOk;
/// `RMDIR3resfail` (same shape as [`RemoveResFail`]).
pub type RmdirResFail = RemoveResFail;
/// `RMDIR3res`.
pub type RmdirRes = NfsRes<RmdirResOk, RmdirResFail>;

xdr_struct! {
    /// `RENAME3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct RenameResOk {
        /// The source directory's attributes before and after.
        pub fromdir_wcc: WccData,
        /// The target directory's attributes before and after.
        pub todir_wcc: WccData,
    }
}

xdr_struct! {
    /// `RENAME3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct RenameResFail {
        /// The source directory's attributes before and after.
        pub fromdir_wcc: WccData,
        /// The target directory's attributes before and after.
        pub todir_wcc: WccData,
    }
}

/// `RENAME3res`.
pub type RenameRes = NfsRes<RenameResOk, RenameResFail>;

xdr_struct! {
    /// `LINK3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct LinkResOk {
        /// The file's attributes.
        pub file_attributes: PostOpAttr,
        /// The link directory's attributes before and after.
        pub linkdir_wcc: WccData,
    }
}

xdr_struct! {
    /// `LINK3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct LinkResFail {
        /// The file's attributes.
        pub file_attributes: PostOpAttr,
        /// The link directory's attributes before and after.
        pub linkdir_wcc: WccData,
    }
}

/// `LINK3res`.
pub type LinkRes = NfsRes<LinkResOk, LinkResFail>;

xdr_struct! {
    /// `entry3`: one READDIR entry (the `nextentry` pointer is the list encoding).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct Entry {
        /// File id (inode number).
        pub fileid: u64,
        /// Name (at most [`super::MAX_NAME_BYTES`] bytes when decoded).
        pub name: Bytes as Name,
        /// Cookie to resume after this entry.
        pub cookie: u64,
    }
}

xdr_struct! {
    /// `READDIR3resok` (with `dirlist3` flattened into `entries` and `eof`).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReaddirResOk {
        /// The directory's attributes.
        pub dir_attributes: PostOpAttr,
        /// Verifier to send back with the cookies.
        pub cookieverf: CookieVerifier,
        /// The entries, encoded as the `*entry3` linked list.
        pub entries: Vec<Entry> as List,
        /// True when the last entry is the directory's last.
        pub eof: bool,
    }
}

xdr_struct! {
    /// `READDIR3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReaddirResFail {
        /// The directory's attributes.
        pub dir_attributes: PostOpAttr,
    }
}

/// `READDIR3res`.
pub type ReaddirRes = NfsRes<ReaddirResOk, ReaddirResFail>;

xdr_struct! {
    /// `entryplus3`: one READDIRPLUS entry (the `nextentry` pointer is the list encoding).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct EntryPlus {
        /// File id (inode number).
        pub fileid: u64,
        /// Name (at most [`super::MAX_NAME_BYTES`] bytes when decoded).
        pub name: Bytes as Name,
        /// Cookie to resume after this entry.
        pub cookie: u64,
        /// The entry's attributes.
        pub name_attributes: PostOpAttr,
        /// The entry's handle.
        pub name_handle: PostOpFh,
    }
}

xdr_struct! {
    /// `READDIRPLUS3resok` (with `dirlistplus3` flattened into `entries` and `eof`).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReaddirplusResOk {
        /// The directory's attributes.
        pub dir_attributes: PostOpAttr,
        /// Verifier to send back with the cookies.
        pub cookieverf: CookieVerifier,
        /// The entries, encoded as the `*entryplus3` linked list.
        pub entries: Vec<EntryPlus> as List,
        /// True when the last entry is the directory's last.
        pub eof: bool,
    }
}

xdr_struct! {
    /// `READDIRPLUS3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReaddirplusResFail {
        /// The directory's attributes.
        pub dir_attributes: PostOpAttr,
    }
}

/// `READDIRPLUS3res`.
pub type ReaddirplusRes = NfsRes<ReaddirplusResOk, ReaddirplusResFail>;

xdr_struct! {
    /// `FSSTAT3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct FsstatResOk {
        /// The file system root's attributes.
        pub obj_attributes: PostOpAttr,
        /// Total size in bytes.
        pub tbytes: u64,
        /// Free bytes.
        pub fbytes: u64,
        /// Free bytes available to the caller.
        pub abytes: u64,
        /// Total file slots.
        pub tfiles: u64,
        /// Free file slots.
        pub ffiles: u64,
        /// Free file slots available to the caller.
        pub afiles: u64,
        /// Seconds for which these values will not change (0: volatile).
        pub invarsec: u32,
    }
}

xdr_struct! {
    /// `FSSTAT3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct FsstatResFail {
        /// The object's attributes.
        pub obj_attributes: PostOpAttr,
    }
}

/// `FSSTAT3res`.
pub type FsstatRes = NfsRes<FsstatResOk, FsstatResFail>;

xdr_struct! {
    /// `FSINFO3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct FsinfoResOk {
        /// The file system root's attributes.
        pub obj_attributes: PostOpAttr,
        /// Maximum READ size.
        pub rtmax: u32,
        /// Preferred READ size.
        pub rtpref: u32,
        /// Suggested READ size multiple.
        pub rtmult: u32,
        /// Maximum WRITE size.
        pub wtmax: u32,
        /// Preferred WRITE size.
        pub wtpref: u32,
        /// Suggested WRITE size multiple.
        pub wtmult: u32,
        /// Preferred READDIR size.
        pub dtpref: u32,
        /// Maximum file size.
        pub maxfilesize: u64,
        /// Server time granularity.
        pub time_delta: NfsTime,
        /// [`super::fsf`] bits.
        pub properties: u32,
    }
}

xdr_struct! {
    /// `FSINFO3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct FsinfoResFail {
        /// The object's attributes.
        pub obj_attributes: PostOpAttr,
    }
}

/// `FSINFO3res`.
pub type FsinfoRes = NfsRes<FsinfoResOk, FsinfoResFail>;

xdr_struct! {
    /// `PATHCONF3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct PathconfResOk {
        /// The object's attributes.
        pub obj_attributes: PostOpAttr,
        /// Maximum number of hard links.
        pub linkmax: u32,
        /// Maximum name length.
        pub name_max: u32,
        /// True if longer names are rejected rather than truncated.
        pub no_trunc: bool,
        /// True if only the superuser may change ownership.
        pub chown_restricted: bool,
        /// True if names are compared case-insensitively.
        pub case_insensitive: bool,
        /// True if the case of names is preserved.
        pub case_preserving: bool,
    }
}

xdr_struct! {
    /// `PATHCONF3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct PathconfResFail {
        /// The object's attributes.
        pub obj_attributes: PostOpAttr,
    }
}

/// `PATHCONF3res`.
pub type PathconfRes = NfsRes<PathconfResOk, PathconfResFail>;

xdr_struct! {
    /// `COMMIT3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CommitResOk {
        /// The file's attributes before and after.
        pub file_wcc: WccData,
        /// The server's write verifier.
        pub verf: WriteVerifier,
    }
}

xdr_struct! {
    /// `COMMIT3resfail`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CommitResFail {
        /// The file's attributes before and after.
        pub file_wcc: WccData,
    }
}

/// `COMMIT3res`.
pub type CommitRes = NfsRes<CommitResOk, CommitResFail>;
