//! Whole-call and whole-reply values, dispatched on the procedure number.
//!
//! The server decodes a call's arguments with [`decode_call`] once the RPC header has told it
//! the procedure; the client decodes a reply's results with [`decode_reply`] for the procedure
//! it called. Both enums encode just the arguments or results (not the procedure number), which
//! [`Nfs3Call::proc_num`] and [`Nfs3Reply::proc_num`] supply for the RPC header.

use super::args::{
    AccessArgs, CommitArgs, CreateArgs, FsinfoArgs, FsstatArgs, GetattrArgs, LinkArgs, LookupArgs,
    MkdirArgs, MknodArgs, PathconfArgs, ReadArgs, ReaddirArgs, ReaddirplusArgs, ReadlinkArgs,
    RemoveArgs, RenameArgs, RmdirArgs, SetattrArgs, SymlinkArgs, WriteArgs,
};
use super::procs;
use super::res::{
    AccessRes, CommitRes, CreateRes, FsinfoRes, FsstatRes, GetattrRes, LinkRes, LookupRes,
    MkdirRes, MknodRes, PathconfRes, ReadRes, ReaddirRes, ReaddirplusRes, ReadlinkRes, RemoveRes,
    RenameRes, RmdirRes, SetattrRes, SymlinkRes, WriteRes,
};
use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrResult};

macro_rules! nfs3_dispatch {
    ($( $variant:ident($proc:ident, $args:ty, $res:ty) ),* $(,)?) => {
        /// The arguments of one NFSv3 call, by procedure.
        #[derive(Debug, Clone, PartialEq, Eq)]
        // Calls are decoded once and consumed; boxing the larger variants would cost an
        // allocation per call to save a few hundred bytes of stack.
        #[allow(clippy::large_enum_variant)]
        pub enum Nfs3Call {
            /// `NFSPROC3_NULL`: no arguments.
            Null,
            $(
                #[doc = concat!("`NFSPROC3_", stringify!($proc), "`.")]
                $variant($args),
            )*
        }

        impl Nfs3Call {
            /// The procedure number.
            pub fn proc_num(&self) -> u32 {
                match self {
                    Self::Null => procs::NULL,
                    $( Self::$variant(_) => procs::$proc, )*
                }
            }

            /// The procedure name (`"GETATTR"`).
            pub fn proc_name(&self) -> &'static str {
                super::proc_name(self.proc_num())
            }
        }

        impl XdrEncode for Nfs3Call {
            fn encode(&self, enc: &mut XdrEncoder) {
                match self {
                    Self::Null => {}
                    $( Self::$variant(args) => args.encode(enc), )*
                }
            }
        }

        /// Decodes the arguments of procedure `proc_num`.
        ///
        /// Returns `Ok(None)` when NFSv3 has no such procedure (the server answers
        /// PROC_UNAVAIL), and an error when the arguments are malformed (GARBAGE_ARGS). Bytes
        /// after the arguments are left in `dec`; call [`XdrDecoder::finish`] to reject them.
        pub fn decode_call(proc_num: u32, dec: &mut XdrDecoder) -> XdrResult<Option<Nfs3Call>> {
            Ok(Some(match proc_num {
                procs::NULL => Nfs3Call::Null,
                $( procs::$proc => Nfs3Call::$variant(<$args>::decode(dec)?), )*
                _ => return Ok(None),
            }))
        }

        /// The results of one NFSv3 call, by procedure.
        #[derive(Debug, Clone, PartialEq, Eq)]
        // Replies are built once and consumed; see `Nfs3Call`.
        #[allow(clippy::large_enum_variant)]
        pub enum Nfs3Reply {
            /// `NFSPROC3_NULL`: no results.
            Null,
            $(
                #[doc = concat!("`NFSPROC3_", stringify!($proc), "`.")]
                $variant($res),
            )*
        }

        impl Nfs3Reply {
            /// The procedure number.
            pub fn proc_num(&self) -> u32 {
                match self {
                    Self::Null => procs::NULL,
                    $( Self::$variant(_) => procs::$proc, )*
                }
            }

            /// The procedure name (`"GETATTR"`).
            pub fn proc_name(&self) -> &'static str {
                super::proc_name(self.proc_num())
            }

            /// The status of the result (`NFS3_OK` for NULL).
            pub fn status(&self) -> super::Nfs3Status {
                match self {
                    Self::Null => super::Nfs3Status::Ok,
                    $( Self::$variant(res) => res.status(), )*
                }
            }
        }

        impl XdrEncode for Nfs3Reply {
            fn encode(&self, enc: &mut XdrEncoder) {
                match self {
                    Self::Null => {}
                    $( Self::$variant(res) => res.encode(enc), )*
                }
            }
        }

        /// Decodes the results of procedure `proc_num`.
        ///
        /// Returns `Ok(None)` when NFSv3 has no such procedure, and an error when the results
        /// are malformed. Bytes after the results are left in `dec`.
        pub fn decode_reply(proc_num: u32, dec: &mut XdrDecoder) -> XdrResult<Option<Nfs3Reply>> {
            Ok(Some(match proc_num {
                procs::NULL => Nfs3Reply::Null,
                $( procs::$proc => Nfs3Reply::$variant(<$res>::decode(dec)?), )*
                _ => return Ok(None),
            }))
        }
    };
}

nfs3_dispatch! {
    Getattr(GETATTR, GetattrArgs, GetattrRes),
    Setattr(SETATTR, SetattrArgs, SetattrRes),
    Lookup(LOOKUP, LookupArgs, LookupRes),
    Access(ACCESS, AccessArgs, AccessRes),
    Readlink(READLINK, ReadlinkArgs, ReadlinkRes),
    Read(READ, ReadArgs, ReadRes),
    Write(WRITE, WriteArgs, WriteRes),
    Create(CREATE, CreateArgs, CreateRes),
    Mkdir(MKDIR, MkdirArgs, MkdirRes),
    Symlink(SYMLINK, SymlinkArgs, SymlinkRes),
    Mknod(MKNOD, MknodArgs, MknodRes),
    Remove(REMOVE, RemoveArgs, RemoveRes),
    Rmdir(RMDIR, RmdirArgs, RmdirRes),
    Rename(RENAME, RenameArgs, RenameRes),
    Link(LINK, LinkArgs, LinkRes),
    Readdir(READDIR, ReaddirArgs, ReaddirRes),
    Readdirplus(READDIRPLUS, ReaddirplusArgs, ReaddirplusRes),
    Fsstat(FSSTAT, FsstatArgs, FsstatRes),
    Fsinfo(FSINFO, FsinfoArgs, FsinfoRes),
    Pathconf(PATHCONF, PathconfArgs, PathconfRes),
    Commit(COMMIT, CommitArgs, CommitRes),
}
