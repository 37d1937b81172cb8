//! The arguments of the NFSv3 procedures (the `*3args` structures of RFC 1813 section 3.3).

use bytes::Bytes;

use super::codec::{Payload, xdr_struct};
use super::types::{
    CookieVerifier, CreateHow, DirOpArgs, FileHandle, MknodData, NfsTime, Sattr, StableHow,
    SymlinkData,
};
use crate::xdr::{XdrEncode, XdrEncoder};

xdr_struct! {
    /// `GETATTR3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct GetattrArgs {
        /// The object whose attributes are wanted.
        pub object: FileHandle,
    }
}

xdr_struct! {
    /// `SETATTR3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct SetattrArgs {
        /// The object to change.
        pub object: FileHandle,
        /// The attributes to set.
        pub new_attributes: Sattr,
        /// `sattrguard3`: when present, the server applies the change only if the object's
        /// ctime equals this (`obj_ctime`), and fails with `NFS3ERR_NOT_SYNC` otherwise.
        pub guard: Option<NfsTime>,
    }
}

xdr_struct! {
    /// `LOOKUP3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct LookupArgs {
        /// The directory and the name to look up.
        pub what: DirOpArgs,
    }
}

xdr_struct! {
    /// `ACCESS3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct AccessArgs {
        /// The object to check.
        pub object: FileHandle,
        /// The [`super::access`] bits to check.
        pub access: u32,
    }
}

xdr_struct! {
    /// `READLINK3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReadlinkArgs {
        /// The symbolic link.
        pub symlink: FileHandle,
    }
}

xdr_struct! {
    /// `READ3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReadArgs {
        /// The file.
        pub file: FileHandle,
        /// Where to start reading.
        pub offset: u64,
        /// How many bytes to read.
        pub count: u32,
    }
}

xdr_struct! {
    /// `WRITE3args`.
    ///
    /// `data` is encoded as a shared segment (no copy) and decoded as a slice of the record,
    /// bounded by the decoder's [`crate::xdr::XdrDecoder::max_data_bytes`]. RFC 1813 says
    /// `count` equals `data.len()`; decoding keeps both as sent (see [`WriteArgs::is_consistent`])
    /// and never allocates from `count`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct WriteArgs {
        /// The file.
        pub file: FileHandle,
        /// Where to start writing.
        pub offset: u64,
        /// The number of bytes to write, as claimed by the client.
        pub count: u32,
        /// How durable the write must be before the reply.
        pub stable: StableHow,
        /// The data.
        pub data: Bytes as Payload,
    }
}

impl WriteArgs {
    /// True when `count` equals the length of `data`, as RFC 1813 requires.
    pub fn is_consistent(&self) -> bool {
        u64::from(self.count) == self.data.len() as u64
    }
}

/// `WRITE3args` to send, with the data given as several buffers (the cache's extents and
/// zeros between them) that go on the wire without being joined: encodes exactly as the
/// [`WriteArgs`] of the concatenated data does. Encode-only; a server decodes [`WriteArgs`].
#[derive(Debug, Clone, Copy)]
pub struct WriteSegmentsArgs<'a> {
    /// The file.
    pub file: &'a FileHandle,
    /// Where to start writing.
    pub offset: u64,
    /// How durable the write must be before the reply.
    pub stable: StableHow,
    /// The data, in order.
    pub data: &'a [Bytes],
}

impl XdrEncode for WriteSegmentsArgs<'_> {
    fn encode(&self, enc: &mut XdrEncoder) {
        let count: usize = self.data.iter().map(Bytes::len).sum();
        assert!(u32::try_from(count).is_ok(), "WRITE of 4 GiB or more");
        self.file.encode(enc);
        enc.put_u64(self.offset);
        enc.put_u32(count as u32);
        self.stable.encode(enc);
        enc.put_opaque_segments(self.data);
    }
}

xdr_struct! {
    /// `CREATE3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CreateArgs {
        /// `where`: the directory and the new file's name.
        pub where_: DirOpArgs,
        /// How to create it.
        pub how: CreateHow,
    }
}

xdr_struct! {
    /// `MKDIR3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct MkdirArgs {
        /// `where`: the parent directory and the new directory's name.
        pub where_: DirOpArgs,
        /// Initial attributes.
        pub attributes: Sattr,
    }
}

xdr_struct! {
    /// `SYMLINK3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct SymlinkArgs {
        /// `where`: the directory and the new link's name.
        pub where_: DirOpArgs,
        /// Attributes and target.
        pub symlink: SymlinkData,
    }
}

xdr_struct! {
    /// `MKNOD3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct MknodArgs {
        /// `where`: the directory and the new file's name.
        pub where_: DirOpArgs,
        /// What to create.
        pub what: MknodData,
    }
}

xdr_struct! {
    /// `REMOVE3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct RemoveArgs {
        /// The directory and the name to remove.
        pub object: DirOpArgs,
    }
}

xdr_struct! {
    /// `RMDIR3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct RmdirArgs {
        /// The parent directory and the name of the directory to remove.
        pub object: DirOpArgs,
    }
}

xdr_struct! {
    /// `RENAME3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct RenameArgs {
        /// The source directory and name.
        pub from: DirOpArgs,
        /// The target directory and name.
        pub to: DirOpArgs,
    }
}

xdr_struct! {
    /// `LINK3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct LinkArgs {
        /// The existing file.
        pub file: FileHandle,
        /// The directory and name of the new link.
        pub link: DirOpArgs,
    }
}

xdr_struct! {
    /// `READDIR3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReaddirArgs {
        /// The directory.
        pub dir: FileHandle,
        /// Where to resume (0 for the start).
        pub cookie: u64,
        /// The verifier returned with `cookie` (zero for the start).
        pub cookieverf: CookieVerifier,
        /// Maximum size of the reply's directory information, in bytes.
        pub count: u32,
    }
}

xdr_struct! {
    /// `READDIRPLUS3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct ReaddirplusArgs {
        /// The directory.
        pub dir: FileHandle,
        /// Where to resume (0 for the start).
        pub cookie: u64,
        /// The verifier returned with `cookie` (zero for the start).
        pub cookieverf: CookieVerifier,
        /// Maximum bytes of directory information (file ids, names, cookies).
        pub dircount: u32,
        /// Maximum size of the whole reply, in bytes.
        pub maxcount: u32,
    }
}

xdr_struct! {
    /// `FSSTAT3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct FsstatArgs {
        /// Any handle within the file system.
        pub fsroot: FileHandle,
    }
}

xdr_struct! {
    /// `FSINFO3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct FsinfoArgs {
        /// Any handle within the file system (usually the root).
        pub fsroot: FileHandle,
    }
}

xdr_struct! {
    /// `PATHCONF3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct PathconfArgs {
        /// Any handle within the file system.
        pub object: FileHandle,
    }
}

xdr_struct! {
    /// `COMMIT3args`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
    pub struct CommitArgs {
        /// The file.
        pub file: FileHandle,
        /// Start of the range to commit.
        pub offset: u64,
        /// Length of the range; 0 means to the end of the file.
        pub count: u32,
    }
}
