//! The 22 NFSv3 procedures, mapped onto [`Storage`](crate::storage::Storage).
//!
//! This is where RFC 1813's rules that are not about bytes live: which status each failure
//! gets, weak cache consistency data on success and failure, read-only exports, READDIR size
//! accounting (`count`, `dircount`, `maxcount`, `NFS3ERR_TOOSMALL`), and — the heart of the
//! server — the stability and verifier of WRITE and COMMIT replies (see [`crate::verifier`]).
//!
//! Permissions are not decided here: every operation goes to the store on behalf of the
//! (squashed) [`Caller`], and the local store runs it under that identity, so that the kernel
//! checks it (the memory store applies the same rules itself, `crate::storage::rules`).

use bytes::Bytes;
use nfsio_proto::nfs3::*;

use crate::service::Service;
use crate::storage::{Caller, CreateMode, FileId, SplicedRead, StoreError};

/// Bytes of a READDIR3resok besides its entries: status, dir attributes, verifier, list end,
/// eof.
const READDIR_FIXED_BYTES: usize = 4 + 4 + 84 + 8 + 4 + 4;

/// Most entries asked of the store for one READDIR.
const MAX_READDIR_ENTRIES: usize = 8192;

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

fn wcc_after(after: PostOpAttr) -> WccData {
    WccData {
        before: None,
        after,
    }
}

type Res<T> = Result<T, Nfs3Status>;

/// The shape of every procedure's reply: `op`, which stops at the first failure (`?`), gives
/// the `resok` arm; on a failure, its status goes with the `resfail` arm `fail` builds, after
/// `op`, so that it carries the attributes the objects have now.
fn answer<T, F>(op: impl FnOnce() -> Res<T>, fail: impl FnOnce() -> F) -> NfsRes<T, F> {
    match op() {
        Ok(ok) => NfsRes::Ok(ok),
        Err(status) => NfsRes::fail(status, fail()),
    }
}

impl Service {
    fn id(&self, handle: &FileHandle) -> Res<FileId> {
        self.handles.decode(handle)
    }

    fn attr_of(&self, id: Res<FileId>) -> PostOpAttr {
        id.ok().and_then(|id| self.storage.getattr(id).ok())
    }

    fn writable(&self) -> Res<()> {
        if self.config.read_only {
            Err(Nfs3Status::RoFs)
        } else {
            Ok(())
        }
    }

    /// Runs one NFSv3 call for `caller`.
    pub(crate) fn nfs_call(&self, caller: &Caller, call: Nfs3Call) -> Nfs3Reply {
        match call {
            Nfs3Call::Null => Nfs3Reply::Null,
            Nfs3Call::Getattr(args) => Nfs3Reply::Getattr(self.getattr(args)),
            Nfs3Call::Setattr(args) => Nfs3Reply::Setattr(self.setattr(caller, args)),
            Nfs3Call::Lookup(args) => Nfs3Reply::Lookup(self.lookup(caller, args)),
            Nfs3Call::Access(args) => Nfs3Reply::Access(self.access(caller, args)),
            Nfs3Call::Readlink(args) => Nfs3Reply::Readlink(self.readlink(args)),
            Nfs3Call::Read(args) => Nfs3Reply::Read(self.read(caller, args)),
            Nfs3Call::Write(args) => Nfs3Reply::Write(self.write(caller, args)),
            Nfs3Call::Create(args) => Nfs3Reply::Create(self.create(caller, args)),
            Nfs3Call::Mkdir(args) => Nfs3Reply::Mkdir(self.mkdir(caller, args)),
            Nfs3Call::Symlink(args) => Nfs3Reply::Symlink(self.symlink(caller, args)),
            Nfs3Call::Mknod(args) => Nfs3Reply::Mknod(self.mknod(caller, args)),
            Nfs3Call::Remove(args) => Nfs3Reply::Remove(self.remove(caller, args.object, false)),
            Nfs3Call::Rmdir(args) => Nfs3Reply::Rmdir(self.remove(caller, args.object, true)),
            Nfs3Call::Rename(args) => Nfs3Reply::Rename(self.rename(caller, args)),
            Nfs3Call::Link(args) => Nfs3Reply::Link(self.link(caller, args)),
            Nfs3Call::Readdir(args) => Nfs3Reply::Readdir(self.readdir(caller, args)),
            Nfs3Call::Readdirplus(args) => Nfs3Reply::Readdirplus(self.readdirplus(caller, args)),
            Nfs3Call::Fsstat(args) => Nfs3Reply::Fsstat(self.fsstat(args)),
            Nfs3Call::Fsinfo(args) => Nfs3Reply::Fsinfo(self.fsinfo(args)),
            Nfs3Call::Pathconf(args) => Nfs3Reply::Pathconf(self.pathconf(args)),
            Nfs3Call::Commit(args) => Nfs3Reply::Commit(self.commit(caller, args)),
        }
    }

    fn getattr(&self, args: GetattrArgs) -> GetattrRes {
        answer(
            || {
                let id = self.id(&args.object)?;
                Ok(GetattrResOk {
                    obj_attributes: self.storage.getattr(id)?,
                })
            },
            || (),
        )
    }

    fn setattr(&self, caller: &Caller, args: SetattrArgs) -> SetattrRes {
        let id = self.id(&args.object);
        answer(
            || {
                let id = id?;
                self.writable()?;
                let obj_wcc = self
                    .storage
                    .setattr(caller, id, &args.new_attributes, args.guard)?;
                Ok(SetattrResOk { obj_wcc })
            },
            || SetattrResFail {
                obj_wcc: wcc_after(self.attr_of(id)),
            },
        )
    }

    fn lookup(&self, caller: &Caller, args: LookupArgs) -> LookupRes {
        let dir = self.id(&args.what.dir);
        answer(
            || {
                let dir = dir?;
                let (id, attr) = self.storage.lookup(caller, dir, &args.what.name)?;
                let dir_attributes = self.storage.getattr(dir).ok();
                Ok(LookupResOk {
                    object: self.handles.encode(id),
                    obj_attributes: Some(attr),
                    dir_attributes,
                })
            },
            || LookupResFail {
                dir_attributes: self.attr_of(dir),
            },
        )
    }

    fn access(&self, caller: &Caller, args: AccessArgs) -> AccessRes {
        let id = self.id(&args.object);
        answer(
            || {
                let (can, attr) = self.storage.access(caller, id?)?;
                let is_dir = attr.file_type == FileType::Directory;
                let mut granted = 0;
                if can.read {
                    granted |= access::READ;
                }
                if is_dir {
                    if can.execute {
                        granted |= access::LOOKUP;
                    }
                    if can.write && can.execute {
                        granted |= access::MODIFY | access::EXTEND | access::DELETE;
                    }
                } else {
                    if can.write {
                        granted |= access::MODIFY | access::EXTEND | access::DELETE;
                    }
                    if can.execute {
                        granted |= access::EXECUTE;
                    }
                }
                if self.config.read_only {
                    granted &= !(access::MODIFY | access::EXTEND | access::DELETE);
                }
                Ok(AccessResOk {
                    obj_attributes: Some(attr),
                    access: args.access & granted,
                })
            },
            || AccessResFail {
                obj_attributes: self.attr_of(id),
            },
        )
    }

    fn readlink(&self, args: ReadlinkArgs) -> ReadlinkRes {
        let id = self.id(&args.symlink);
        answer(
            || {
                let (data, attr) = self.storage.readlink(id?)?;
                Ok(ReadlinkResOk {
                    symlink_attributes: Some(attr),
                    data,
                })
            },
            || ReadlinkResFail {
                symlink_attributes: self.attr_of(id),
            },
        )
    }

    fn read(&self, caller: &Caller, args: ReadArgs) -> ReadRes {
        let result = self.id(&args.file).and_then(|id| {
            let count = args.count.min(self.config.limits.max_io_bytes);
            Ok(self.storage.read(caller, id, args.offset, count)?)
        });
        match result {
            Ok(out) => NfsRes::Ok(ReadResOk {
                file_attributes: Some(out.attr),
                count: out.data.len() as u32,
                eof: out.eof,
                data: out.data,
            }),
            Err(status) => self.read_failed(&args, status),
        }
    }

    /// READ for a reply that may carry its data in a pipe ([`crate::splice`]).
    pub(crate) fn read_spliced(
        &self,
        caller: &Caller,
        args: &ReadArgs,
    ) -> Result<SplicedRead, Nfs3Status> {
        let id = self.id(&args.file)?;
        let count = args.count.min(self.config.limits.max_io_bytes);
        Ok(self.storage.read_spliced(caller, id, args.offset, count)?)
    }

    /// The reply to a READ that failed with `status`.
    pub(crate) fn read_failed(&self, args: &ReadArgs, status: Nfs3Status) -> ReadRes {
        NfsRes::fail(
            status,
            ReadResFail {
                file_attributes: self.attr_of(self.id(&args.file)),
            },
        )
    }

    /// The status of a failed write or sync; first, if it may have lost data written
    /// UNSTABLE, a new write verifier, so that clients write that data again.
    fn write_failed(&self, err: StoreError) -> Nfs3Status {
        if err.lost_unstable_data {
            self.verifier.reset();
        }
        err.status
    }

    /// The file and the bytes a WRITE writes, if its handle (`id`), the export and its
    /// count allow it.
    fn write_request(&self, id: Res<FileId>, args: &WriteArgs) -> Res<(FileId, Bytes)> {
        let id = id?;
        self.writable()?;
        let count = args.count as usize;
        if count > args.data.len() {
            return Err(Nfs3Status::Inval);
        }
        Ok((id, args.data.slice(..count)))
    }

    /// Whether a WRITE gets as far as the store (its handle, the export and its count allow
    /// it), whatever the store then answers.
    pub(crate) fn write_reaches_store(&self, args: &WriteArgs) -> bool {
        self.write_request(self.id(&args.file), args).is_ok()
    }

    fn write(&self, caller: &Caller, args: WriteArgs) -> WriteRes {
        let id = self.id(&args.file);
        answer(
            || {
                let (id, data) = self.write_request(id, &args)?;
                // The verifier the data is written under: read before the write, so that a
                // failure while it runs makes the client's next COMMIT see a different one.
                let verf = self.verifier.current();
                match self
                    .storage
                    .write(caller, id, args.offset, &data, args.stable)
                {
                    Ok(out) if out.committed >= args.stable => Ok(WriteResOk {
                        file_wcc: out.wcc,
                        count: out.count,
                        committed: out.committed,
                        verf,
                    }),
                    Ok(out) => {
                        // A store that did less than asked: never answer a stability the bytes
                        // do not have.
                        tracing::error!(
                            asked = ?args.stable,
                            got = ?out.committed,
                            "store answered a weaker stability than asked"
                        );
                        self.verifier.reset();
                        Err(Nfs3Status::Io)
                    }
                    Err(err) => Err(self.write_failed(err)),
                }
            },
            || WriteResFail {
                file_wcc: wcc_after(self.attr_of(id)),
            },
        )
    }

    fn commit(&self, caller: &Caller, args: CommitArgs) -> CommitRes {
        let id = self.id(&args.file);
        answer(
            || {
                let id = id?;
                // A read-only export has nothing to commit, and says so like every other change.
                self.writable()?;
                let file_wcc = self
                    .storage
                    .commit(caller, id, args.offset, args.count)
                    .map_err(|err| self.write_failed(err))?;
                Ok(CommitResOk {
                    file_wcc,
                    // Read after the sync: if anything failed meanwhile, the client sees it.
                    verf: self.verifier.current(),
                })
            },
            || CommitResFail {
                file_wcc: wcc_after(self.attr_of(id)),
            },
        )
    }

    /// The common shape of CREATE, MKDIR, SYMLINK and MKNOD.
    fn creating(
        &self,
        where_: &DirOpArgs,
        make: impl FnOnce(FileId) -> Res<crate::storage::Created>,
    ) -> CreateRes {
        let dir = self.id(&where_.dir);
        answer(
            || {
                let dir = dir?;
                self.writable()?;
                let created = make(dir)?;
                Ok(CreateResOk {
                    obj: Some(self.handles.encode(created.id)),
                    obj_attributes: Some(created.attr),
                    dir_wcc: created.dir_wcc,
                })
            },
            || CreateResFail {
                dir_wcc: wcc_after(self.attr_of(dir)),
            },
        )
    }

    fn create(&self, caller: &Caller, args: CreateArgs) -> CreateRes {
        self.creating(&args.where_, |dir| {
            let mode = match &args.how {
                CreateHow::Unchecked(attrs) => CreateMode::Unchecked(attrs),
                CreateHow::Guarded(attrs) => CreateMode::Guarded(attrs),
                CreateHow::Exclusive(verf) => CreateMode::Exclusive(*verf),
            };
            Ok(self.storage.create(caller, dir, &args.where_.name, mode)?)
        })
    }

    fn mkdir(&self, caller: &Caller, args: MkdirArgs) -> MkdirRes {
        self.creating(&args.where_, |dir| {
            Ok(self
                .storage
                .mkdir(caller, dir, &args.where_.name, &args.attributes)?)
        })
    }

    fn symlink(&self, caller: &Caller, args: SymlinkArgs) -> SymlinkRes {
        let attrs = &args.symlink.symlink_attributes;
        self.creating(&args.where_, |dir| {
            Ok(self.storage.symlink(
                caller,
                dir,
                &args.where_.name,
                &args.symlink.symlink_data,
                attrs,
            )?)
        })
    }

    fn mknod(&self, caller: &Caller, args: MknodArgs) -> MknodRes {
        self.creating(&args.where_, |dir| {
            Ok(self
                .storage
                .mknod(caller, dir, &args.where_.name, &args.what)?)
        })
    }

    fn remove(&self, caller: &Caller, object: DirOpArgs, is_dir: bool) -> RemoveRes {
        let dir = self.id(&object.dir);
        answer(
            || {
                let dir = dir?;
                self.writable()?;
                let dir_wcc = if is_dir {
                    self.storage.rmdir(caller, dir, &object.name)?
                } else {
                    self.storage.remove(caller, dir, &object.name)?
                };
                Ok(RemoveResOk { dir_wcc })
            },
            || RemoveResFail {
                dir_wcc: wcc_after(self.attr_of(dir)),
            },
        )
    }

    fn rename(&self, caller: &Caller, args: RenameArgs) -> RenameRes {
        let from = self.id(&args.from.dir);
        let to = self.id(&args.to.dir);
        answer(
            || {
                let (from, to) = (from?, to?);
                self.writable()?;
                let (fromdir_wcc, todir_wcc) =
                    self.storage
                        .rename(caller, from, &args.from.name, to, &args.to.name)?;
                Ok(RenameResOk {
                    fromdir_wcc,
                    todir_wcc,
                })
            },
            || RenameResFail {
                fromdir_wcc: wcc_after(self.attr_of(from)),
                todir_wcc: wcc_after(self.attr_of(to)),
            },
        )
    }

    fn link(&self, caller: &Caller, args: LinkArgs) -> LinkRes {
        let file = self.id(&args.file);
        let dir = self.id(&args.link.dir);
        answer(
            || {
                let (file, dir) = (file?, dir?);
                self.writable()?;
                let (attr, linkdir_wcc) = self.storage.link(caller, file, dir, &args.link.name)?;
                Ok(LinkResOk {
                    file_attributes: Some(attr),
                    linkdir_wcc,
                })
            },
            || LinkResFail {
                file_attributes: self.attr_of(file),
                linkdir_wcc: wcc_after(self.attr_of(dir)),
            },
        )
    }

    fn readdir(&self, caller: &Caller, args: ReaddirArgs) -> ReaddirRes {
        let dir = self.id(&args.dir);
        answer(
            || {
                let dir = dir?;
                let count = args.count.min(self.config.limits.max_io_bytes) as usize;
                let max_entries = (count.saturating_sub(READDIR_FIXED_BYTES) / 24 + 1)
                    .clamp(1, MAX_READDIR_ENTRIES);
                let page = self.storage.readdir(
                    caller,
                    dir,
                    args.cookie,
                    args.cookieverf,
                    max_entries,
                    false,
                )?;
                let mut size = READDIR_FIXED_BYTES;
                let mut entries = Vec::with_capacity(page.entries.len());
                let mut complete = true;
                for entry in page.entries.iter() {
                    let entry_bytes = 4 + 8 + 4 + padded(entry.name.len()) + 8;
                    if size + entry_bytes > count {
                        complete = false;
                        break;
                    }
                    size += entry_bytes;
                    entries.push(Entry {
                        fileid: entry.fileid,
                        name: entry.name.clone(),
                        cookie: entry.cookie,
                    });
                }
                if entries.is_empty() && !page.entries.is_empty() {
                    return Err(Nfs3Status::TooSmall);
                }
                Ok(ReaddirResOk {
                    dir_attributes: page.dir_attr,
                    cookieverf: page.verifier,
                    entries,
                    eof: page.eof && complete,
                })
            },
            || ReaddirResFail {
                dir_attributes: self.attr_of(dir),
            },
        )
    }

    fn readdirplus(&self, caller: &Caller, args: ReaddirplusArgs) -> ReaddirplusRes {
        let dir = self.id(&args.dir);
        answer(
            || {
                let dir = dir?;
                let maxcount = args.maxcount.min(self.config.limits.max_io_bytes) as usize;
                // A dircount too small for one entry is taken as "no separate limit".
                let dircount = match args.dircount as usize {
                    small if small < 24 => usize::MAX,
                    dircount => dircount,
                };
                let per_entry_bytes =
                    4 + 8 + 4 + 8 + 4 + 84 + 4 + 4 + crate::handle::MAX_HANDLE_BYTES;
                let by_maxcount = maxcount.saturating_sub(READDIR_FIXED_BYTES) / per_entry_bytes;
                let max_entries = (by_maxcount + 2)
                    .min(dircount / 24 + 2)
                    .clamp(1, MAX_READDIR_ENTRIES);
                let page = self.storage.readdir(
                    caller,
                    dir,
                    args.cookie,
                    args.cookieverf,
                    max_entries,
                    true,
                )?;
                let mut size = READDIR_FIXED_BYTES;
                let mut dir_size = 0usize;
                let mut entries = Vec::with_capacity(page.entries.len());
                let mut complete = true;
                for entry in page.entries.iter() {
                    let info_bytes = 8 + 4 + padded(entry.name.len()) + 8;
                    let handle = entry.plus.as_ref().map(|(id, _)| self.handles.encode(*id));
                    let plus_bytes = match &handle {
                        Some(handle) => 4 + 84 + 4 + 4 + padded(handle.len()),
                        None => 4 + 4,
                    };
                    let entry_bytes = 4 + info_bytes + plus_bytes;
                    if size + entry_bytes > maxcount
                        || dir_size.saturating_add(info_bytes) > dircount
                    {
                        complete = false;
                        break;
                    }
                    size += entry_bytes;
                    dir_size += info_bytes;
                    let name_attributes = entry.plus.as_ref().map(|(_, attr)| attr.clone());
                    let name_handle = handle;
                    entries.push(EntryPlus {
                        fileid: entry.fileid,
                        name: entry.name.clone(),
                        cookie: entry.cookie,
                        name_attributes,
                        name_handle,
                    });
                }
                if entries.is_empty() && !page.entries.is_empty() {
                    return Err(Nfs3Status::TooSmall);
                }
                Ok(ReaddirplusResOk {
                    dir_attributes: page.dir_attr,
                    cookieverf: page.verifier,
                    entries,
                    eof: page.eof && complete,
                })
            },
            || ReaddirplusResFail {
                dir_attributes: self.attr_of(dir),
            },
        )
    }

    fn fsstat(&self, args: FsstatArgs) -> FsstatRes {
        let id = self.id(&args.fsroot);
        answer(
            || {
                let fs = self.storage.fsstat(id?)?;
                Ok(FsstatResOk {
                    obj_attributes: self.attr_of(id),
                    tbytes: fs.total_bytes,
                    fbytes: fs.free_bytes,
                    abytes: fs.avail_bytes,
                    tfiles: fs.total_files,
                    ffiles: fs.free_files,
                    afiles: fs.avail_files,
                    invarsec: 0,
                })
            },
            || FsstatResFail {
                obj_attributes: self.attr_of(id),
            },
        )
    }

    fn fsinfo(&self, args: FsinfoArgs) -> FsinfoRes {
        let id = self.id(&args.fsroot);
        answer(
            || {
                let attr = self.storage.getattr(id?)?;
                let limits = self.storage.limits();
                let io_bytes = self.config.limits.max_io_bytes;
                Ok(FsinfoResOk {
                    obj_attributes: Some(attr),
                    rtmax: io_bytes,
                    rtpref: io_bytes,
                    rtmult: 4096,
                    wtmax: io_bytes,
                    wtpref: io_bytes,
                    wtmult: 4096,
                    dtpref: self.config.limits.dtpref_bytes,
                    maxfilesize: limits.max_file_bytes,
                    time_delta: limits.time_delta,
                    properties: fsf::LINK | fsf::SYMLINK | fsf::HOMOGENEOUS | fsf::CANSETTIME,
                })
            },
            || FsinfoResFail {
                obj_attributes: self.attr_of(id),
            },
        )
    }

    fn pathconf(&self, args: PathconfArgs) -> PathconfRes {
        let id = self.id(&args.object);
        answer(
            || {
                let attr = self.storage.getattr(id?)?;
                let limits = self.storage.limits();
                Ok(PathconfResOk {
                    obj_attributes: Some(attr),
                    linkmax: limits.link_max,
                    name_max: limits.name_max,
                    no_trunc: true,
                    chown_restricted: true,
                    case_insensitive: false,
                    case_preserving: true,
                })
            },
            || PathconfResFail {
                obj_attributes: self.attr_of(id),
            },
        )
    }
}

impl crate::misbehave::Nfs3Procedures for Service {
    fn nfs_call(&self, caller: &Caller, call: Nfs3Call) -> Nfs3Reply {
        Service::nfs_call(self, caller, call)
    }

    fn write_reaches_store(&self, args: &WriteArgs) -> bool {
        Service::write_reaches_store(self, args)
    }
}
