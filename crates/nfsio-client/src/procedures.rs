//! The typed NFSv3 procedure layer: one call in, its decoded result out, nothing else.
//!
//! Everything that sends NFSv3 procedures goes through [`Procedures`]: the [`Client`]
//! facade, the write-back driver and [`ReadDir`]. It has no retry policy of its own: an
//! error status comes back as it is ([`NfsError::Status`], NFS3ERR_JUKEBOX included), so
//! that each caller applies its one policy (the facade and `ReadDir`: `crate::jukebox`; the
//! write-back: the engine's back-off). Replies that break the protocol in ways the decoder
//! cannot see (a READ longer than asked) are [`NfsError::Protocol`].
//!
//! The write-back driver holds this layer directly (not the client) so that the client's last
//! handle is the application's: dropping it stops the write-back at once, with the loss
//! reported, instead of whenever the calls in flight happen to end.
//!
//! Each `Procedures` acts as one caller (its AUTH_SYS credential); [`Procedures::as_caller`]
//! makes another over the same transport, for the facade's `Client::as_caller` and for the
//! write-back, which sends a file's WRITEs and COMMITs as the caller whose bytes they are.
//!
//! [`Client`]: crate::Client
//! [`ReadDir`]: crate::ReadDir

use bytes::Bytes;
use nfsio_proto::nfs3::{
    self, AccessArgs, CommitArgs, CommitResOk, CreateArgs, CreateHow, CreateResOk, DirOpArgs,
    Fattr, FileHandle, FsinfoArgs, FsinfoResOk, FsstatArgs, FsstatResOk, GetattrArgs, GetattrResOk,
    LinkArgs, LinkResOk, LookupArgs, LookupResOk, MkdirArgs, MkdirResOk, MknodArgs, MknodData,
    MknodResOk, Nfs3Status, NfsRes, NfsTime, PathconfArgs, PathconfResOk, ReadArgs, ReadResOk,
    ReaddirplusArgs, ReaddirplusResOk, ReadlinkArgs, ReadlinkResOk, RemoveArgs, RemoveResOk,
    RenameArgs, RenameResOk, RmdirArgs, RmdirResOk, Sattr, SetattrArgs, SetattrResOk, StableHow,
    SymlinkArgs, SymlinkData, SymlinkResOk, WccData, WriteResOk, WriteSegmentsArgs, procs,
};
use nfsio_proto::rpc::{AuthSysParams, OpaqueAuth};
use nfsio_proto::{XdrDecode, XdrEncode};
use nfsio_rpc::RpcClient;

use crate::caller::Caller;
use crate::error::{NfsError, NfsResult, ProtocolViolation};

/// The NFS transport and the credentials every call carries.
#[derive(Debug)]
pub(crate) struct Procedures {
    rpc: RpcClient,
    /// The AUTH_SYS parameters of the calls (the stamp and machine name are the client's).
    params: AuthSysParams,
    cred: OpaqueAuth,
}

impl Procedures {
    /// Calls over `rpc` acting as `params`.
    pub(crate) fn new(rpc: RpcClient, params: AuthSysParams) -> Self {
        let cred = OpaqueAuth::sys(&params);
        Self { rpc, params, cred }
    }

    /// Calls over the same transport acting as `caller` (with this client's stamp and
    /// machine name).
    pub(crate) fn as_caller(&self, caller: &Caller) -> Self {
        let params = caller.auth_sys(self.params.stamp, self.params.machine_name.clone());
        Self::new(self.rpc.clone(), params)
    }

    /// Who the calls act as.
    pub(crate) fn caller(&self) -> Caller {
        Caller::of(&self.params)
    }

    /// The credential every call carries.
    pub(crate) fn cred(&self) -> &OpaqueAuth {
        &self.cred
    }

    /// The transport.
    pub(crate) fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// Sends one NFSv3 call and decodes its result; an error status becomes
    /// [`NfsError::Status`] naming the procedure.
    async fn call<A, T, F>(&self, proc_num: u32, args: &A) -> NfsResult<T>
    where
        A: XdrEncode + Sync + ?Sized,
        NfsRes<T, F>: XdrDecode,
    {
        let mut dec = self
            .rpc
            .call(nfs3::PROGRAM, nfs3::VERSION, proc_num, &self.cred, args)
            .await?;
        match NfsRes::<T, F>::decode(&mut dec)? {
            NfsRes::Ok(ok) => Ok(ok),
            NfsRes::Fail { status, .. } => Err(NfsError::Status {
                proc_name: nfs3::proc_name(proc_num),
                status,
            }),
        }
    }

    /// NULL: a round trip that does nothing.
    pub(crate) async fn null(&self) -> NfsResult<()> {
        let proc_num = procs::NULL;
        self.rpc
            .call(nfs3::PROGRAM, nfs3::VERSION, proc_num, &self.cred, &())
            .await?;
        Ok(())
    }

    /// GETATTR.
    pub(crate) async fn getattr(&self, object: &FileHandle) -> NfsResult<Fattr> {
        let args = GetattrArgs {
            object: object.clone(),
        };
        let ok: GetattrResOk = self.call::<_, _, ()>(procs::GETATTR, &args).await?;
        Ok(ok.obj_attributes)
    }

    /// SETATTR; with `guard`, only if the object's ctime still equals it.
    pub(crate) async fn setattr(
        &self,
        object: &FileHandle,
        new_attributes: Sattr,
        guard: Option<NfsTime>,
    ) -> NfsResult<WccData> {
        let args = SetattrArgs {
            object: object.clone(),
            new_attributes,
            guard,
        };
        let ok: SetattrResOk = self.call::<_, _, WccData>(procs::SETATTR, &args).await?;
        Ok(ok.obj_wcc)
    }

    /// LOOKUP of one name in a directory.
    pub(crate) async fn lookup(&self, dir: &FileHandle, name: &[u8]) -> NfsResult<LookupResOk> {
        let args = LookupArgs {
            what: dir_op(dir, name)?,
        };
        self.call::<_, _, Option<Fattr>>(procs::LOOKUP, &args).await
    }

    /// ACCESS: which of the `access` bits the caller is granted.
    pub(crate) async fn access(&self, object: &FileHandle, access: u32) -> NfsResult<u32> {
        let args = AccessArgs {
            object: object.clone(),
            access,
        };
        let ok: nfs3::AccessResOk = self
            .call::<_, _, Option<Fattr>>(procs::ACCESS, &args)
            .await?;
        Ok(ok.access)
    }

    /// READLINK: the target of a symbolic link.
    pub(crate) async fn readlink(&self, symlink: &FileHandle) -> NfsResult<Bytes> {
        let args = ReadlinkArgs {
            symlink: symlink.clone(),
        };
        let ok: ReadlinkResOk = self
            .call::<_, _, Option<Fattr>>(procs::READLINK, &args)
            .await?;
        Ok(ok.data)
    }

    /// READ of at most `count` bytes at `offset` (one RPC; may return fewer bytes, but never
    /// none before the end of the file: that is [`NfsError::Protocol`]).
    pub(crate) async fn read(
        &self,
        file: &FileHandle,
        offset: u64,
        count: u32,
    ) -> NfsResult<ReadResOk> {
        let args = ReadArgs {
            file: file.clone(),
            offset,
            count,
        };
        let ok: ReadResOk = self.call::<_, _, Option<Fattr>>(procs::READ, &args).await?;
        // A READ that returns nothing before the end of the file makes no progress; taken
        // as end of file it would silently shorten what the caller reads.
        if count > 0 && ok.data.is_empty() && !ok.eof {
            return Err(ProtocolViolation::ReadWithoutProgress { offset, count }.into());
        }
        if ok.data.len() > count as usize || ok.count as usize != ok.data.len() {
            return Err(ProtocolViolation::ReadCount {
                count,
                reply_count: ok.count,
                data_bytes: ok.data.len(),
            }
            .into());
        }
        Ok(ok)
    }

    /// WRITE of `data` at `offset` with the requested stability (one RPC): the count the
    /// server took (possibly short), how stable it made them, and the write verifier.
    pub(crate) async fn write(
        &self,
        file: &FileHandle,
        offset: u64,
        data: Bytes,
        stable: StableHow,
    ) -> NfsResult<WriteResOk> {
        self.write_segments(file, offset, &[data], stable).await
    }

    /// [`Procedures::write`] of the data given as buffers in order (the cache's extents and
    /// the zeros between them), which go on the wire as they are, without being joined.
    pub(crate) async fn write_segments(
        &self,
        file: &FileHandle,
        offset: u64,
        data: &[Bytes],
        stable: StableHow,
    ) -> NfsResult<WriteResOk> {
        let count = u32::try_from(data.iter().map(Bytes::len).sum::<usize>())
            .map_err(|_| NfsError::InvalidArgument("WRITE larger than 4 GiB".into()))?;
        let args = WriteSegmentsArgs {
            file,
            offset,
            stable,
            data,
        };
        let ok: WriteResOk = self.call::<_, _, WccData>(procs::WRITE, &args).await?;
        if ok.count > count {
            return Err(ProtocolViolation::WriteCount {
                count,
                reply_count: ok.count,
            }
            .into());
        }
        Ok(ok)
    }

    /// COMMIT of `count` bytes at `offset` (0, 0: the whole file).
    pub(crate) async fn commit(
        &self,
        file: &FileHandle,
        offset: u64,
        count: u32,
    ) -> NfsResult<CommitResOk> {
        let args = CommitArgs {
            file: file.clone(),
            offset,
            count,
        };
        self.call::<_, _, WccData>(procs::COMMIT, &args).await
    }

    /// CREATE of a regular file in `dir`.
    pub(crate) async fn create(
        &self,
        dir: &FileHandle,
        name: &[u8],
        how: CreateHow,
    ) -> NfsResult<CreateResOk> {
        let args = CreateArgs {
            where_: dir_op(dir, name)?,
            how,
        };
        self.call::<_, _, WccData>(procs::CREATE, &args).await
    }

    /// MKDIR.
    pub(crate) async fn mkdir(
        &self,
        dir: &FileHandle,
        name: &[u8],
        attributes: Sattr,
    ) -> NfsResult<MkdirResOk> {
        let args = MkdirArgs {
            where_: dir_op(dir, name)?,
            attributes,
        };
        self.call::<_, _, WccData>(procs::MKDIR, &args).await
    }

    /// SYMLINK: `name` in `dir` pointing at `target`.
    pub(crate) async fn symlink(
        &self,
        dir: &FileHandle,
        name: &[u8],
        target: &[u8],
        attributes: Sattr,
    ) -> NfsResult<SymlinkResOk> {
        let args = SymlinkArgs {
            where_: dir_op(dir, name)?,
            symlink: SymlinkData {
                symlink_attributes: attributes,
                symlink_data: Bytes::copy_from_slice(target),
            },
        };
        self.call::<_, _, WccData>(procs::SYMLINK, &args).await
    }

    /// MKNOD: a special file (FIFO, socket, character or block device) `name` in `dir`.
    pub(crate) async fn mknod(
        &self,
        dir: &FileHandle,
        name: &[u8],
        what: MknodData,
    ) -> NfsResult<MknodResOk> {
        let args = MknodArgs {
            where_: dir_op(dir, name)?,
            what,
        };
        self.call::<_, _, WccData>(procs::MKNOD, &args).await
    }

    /// REMOVE of a non-directory.
    pub(crate) async fn remove(&self, dir: &FileHandle, name: &[u8]) -> NfsResult<WccData> {
        let args = RemoveArgs {
            object: dir_op(dir, name)?,
        };
        let ok: RemoveResOk = self.call::<_, _, WccData>(procs::REMOVE, &args).await?;
        Ok(ok.dir_wcc)
    }

    /// RMDIR of an empty directory.
    pub(crate) async fn rmdir(&self, dir: &FileHandle, name: &[u8]) -> NfsResult<WccData> {
        let args = RmdirArgs {
            object: dir_op(dir, name)?,
        };
        let ok: RmdirResOk = self.call::<_, _, WccData>(procs::RMDIR, &args).await?;
        Ok(ok.dir_wcc)
    }

    /// RENAME.
    pub(crate) async fn rename(
        &self,
        from: (&FileHandle, &[u8]),
        to: (&FileHandle, &[u8]),
    ) -> NfsResult<RenameResOk> {
        let args = RenameArgs {
            from: dir_op(from.0, from.1)?,
            to: dir_op(to.0, to.1)?,
        };
        self.call::<_, _, nfs3::RenameResFail>(procs::RENAME, &args)
            .await
    }

    /// LINK: a new name `name` in `dir` for `file`.
    pub(crate) async fn link(
        &self,
        file: &FileHandle,
        dir: &FileHandle,
        name: &[u8],
    ) -> NfsResult<LinkResOk> {
        let args = LinkArgs {
            file: file.clone(),
            link: dir_op(dir, name)?,
        };
        self.call::<_, _, nfs3::LinkResFail>(procs::LINK, &args)
            .await
    }

    /// One page of READDIRPLUS.
    pub(crate) async fn readdirplus(&self, args: &ReaddirplusArgs) -> NfsResult<ReaddirplusResOk> {
        self.call::<_, _, Option<Fattr>>(procs::READDIRPLUS, args)
            .await
    }

    /// FSSTAT: space and file counts.
    pub(crate) async fn fsstat(&self, fsroot: &FileHandle) -> NfsResult<FsstatResOk> {
        let args = FsstatArgs {
            fsroot: fsroot.clone(),
        };
        self.call::<_, _, Option<Fattr>>(procs::FSSTAT, &args).await
    }

    /// FSINFO: transfer sizes and properties.
    pub(crate) async fn fsinfo(&self, fsroot: &FileHandle) -> NfsResult<FsinfoResOk> {
        let args = FsinfoArgs {
            fsroot: fsroot.clone(),
        };
        self.call::<_, _, Option<Fattr>>(procs::FSINFO, &args).await
    }

    /// PATHCONF: name length limits and case behaviour.
    pub(crate) async fn pathconf(&self, object: &FileHandle) -> NfsResult<PathconfResOk> {
        let args = PathconfArgs {
            object: object.clone(),
        };
        self.call::<_, _, Option<Fattr>>(procs::PATHCONF, &args)
            .await
    }
}

/// Builds a `diropargs3`, rejecting names the server would have to reject anyway.
fn dir_op(dir: &FileHandle, name: &[u8]) -> NfsResult<DirOpArgs> {
    if name.is_empty() || name.contains(&b'/') {
        return Err(NfsError::InvalidArgument(format!(
            "bad file name {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    if name.len() > nfs3::MAX_NAME_BYTES as usize {
        return Err(NfsError::Status {
            proc_name: "LOOKUP",
            status: Nfs3Status::NameTooLong,
        });
    }
    Ok(DirOpArgs {
        dir: dir.clone(),
        name: Bytes::copy_from_slice(name),
    })
}
