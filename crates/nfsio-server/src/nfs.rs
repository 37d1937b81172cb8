//! The 22 NFSv3 procedures, mapped onto [`Storage`](crate::storage::Storage).
//!
//! This is where RFC 1813's rules that are not about bytes live: which status each failure
//! gets, weak cache consistency data on success and failure, read-only exports, permission
//! checks against the (squashed) caller, the owner of new objects, READDIR size accounting
//! (`count`, `dircount`, `maxcount`, `NFS3ERR_TOOSMALL`), and — the heart of the server — the
//! stability and verifier of WRITE and COMMIT replies (see [`crate::verifier`]).
//!
//! Permission checks follow knfsd: the server (running as root) checks mode bits against the
//! caller; a file's owner may read and write it whatever its mode (clients check at open, and
//! a file created read-only must still receive its data); READ is also allowed with execute
//! permission; directory changes need write and search permission on the directory, and the
//! sticky bit restricts removals to the owners of the file or directory.

use bytes::Bytes;
use nfsio_proto::nfs3::*;

use crate::service::{Cred, Service};
use crate::storage::{CreateMode, FileId, Owner, SplicedRead};

const MAY_READ: u32 = 4;
const MAY_WRITE: u32 = 2;
const MAY_EXEC: u32 = 1;

/// Bytes of a READDIR3resok besides its entries: status, dir attributes, verifier, list end,
/// eof.
const READDIR_FIXED_BYTES: usize = 4 + 4 + 84 + 8 + 4 + 4;

/// Most entries asked of the store for one READDIR.
const MAX_READDIR_ENTRIES: usize = 8192;

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// True when `cred` has every permission bit of `want` on an object with `attr`.
fn may(cred: &Cred, attr: &Fattr, want: u32) -> bool {
    if cred.uid == 0 {
        // Root may do anything, except execute a file nobody may execute.
        return want & MAY_EXEC == 0
            || attr.file_type == FileType::Directory
            || attr.mode & 0o111 != 0;
    }
    let bits = if attr.uid == cred.uid {
        (attr.mode >> 6) & 7
    } else if cred.in_group(attr.gid) {
        (attr.mode >> 3) & 7
    } else {
        attr.mode & 7
    };
    bits & want == want
}

fn is_owner(cred: &Cred, attr: &Fattr) -> bool {
    cred.uid == 0 || attr.uid == cred.uid
}

fn wcc_after(after: PostOpAttr) -> WccData {
    WccData {
        before: None,
        after,
    }
}

type Res<T> = Result<T, Nfs3Status>;

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

    /// The attributes of a directory the caller wants to change (write and search).
    fn dir_for_change(&self, cred: &Cred, dir: FileId) -> Res<Fattr> {
        let attr = self.storage.getattr(dir)?;
        if attr.file_type != FileType::Directory {
            return Err(Nfs3Status::NotDir);
        }
        if !may(cred, &attr, MAY_WRITE | MAY_EXEC) {
            return Err(Nfs3Status::Acces);
        }
        Ok(attr)
    }

    /// With the sticky bit on `dir`, only the owners of the directory or of the entry may
    /// remove or rename it.
    fn check_sticky(&self, cred: &Cred, dir: FileId, dir_attr: &Fattr, name: &[u8]) -> Res<()> {
        if cred.uid == 0 || dir_attr.mode & 0o1000 == 0 || dir_attr.uid == cred.uid {
            return Ok(());
        }
        let (_, attr) = self.storage.lookup(dir, name)?;
        if attr.uid == cred.uid {
            Ok(())
        } else {
            Err(Nfs3Status::Acces)
        }
    }

    /// The owner of a new object: the caller, with the directory's group when it is set-gid;
    /// root may choose both.
    fn owner_for(&self, cred: &Cred, dir_attr: &Fattr, attrs: &Sattr) -> Owner {
        let mut owner = Owner {
            uid: cred.uid,
            gid: if dir_attr.mode & 0o2000 != 0 {
                dir_attr.gid
            } else {
                cred.gid
            },
        };
        if let Some(uid) = attrs.uid.filter(|_| cred.uid == 0) {
            owner.uid = uid;
        }
        if let Some(gid) = attrs.gid.filter(|g| cred.uid == 0 || cred.in_group(*g)) {
            owner.gid = gid;
        }
        owner
    }

    /// Runs one NFSv3 call as `cred`.
    pub(crate) fn nfs_call(&self, cred: &Cred, call: Nfs3Call) -> Nfs3Reply {
        match call {
            Nfs3Call::Null => Nfs3Reply::Null,
            Nfs3Call::Getattr(args) => Nfs3Reply::Getattr(self.getattr(args)),
            Nfs3Call::Setattr(args) => Nfs3Reply::Setattr(self.setattr(cred, args)),
            Nfs3Call::Lookup(args) => Nfs3Reply::Lookup(self.lookup(cred, args)),
            Nfs3Call::Access(args) => Nfs3Reply::Access(self.access(cred, args)),
            Nfs3Call::Readlink(args) => Nfs3Reply::Readlink(self.readlink(args)),
            Nfs3Call::Read(args) => Nfs3Reply::Read(self.read(cred, args)),
            Nfs3Call::Write(args) => Nfs3Reply::Write(self.write(cred, args)),
            Nfs3Call::Create(args) => Nfs3Reply::Create(self.create(cred, args)),
            Nfs3Call::Mkdir(args) => Nfs3Reply::Mkdir(self.mkdir(cred, args)),
            Nfs3Call::Symlink(args) => Nfs3Reply::Symlink(self.symlink(cred, args)),
            Nfs3Call::Mknod(args) => Nfs3Reply::Mknod(self.mknod(cred, args)),
            Nfs3Call::Remove(args) => Nfs3Reply::Remove(self.remove(cred, args.object, false)),
            Nfs3Call::Rmdir(args) => Nfs3Reply::Rmdir(self.remove(cred, args.object, true)),
            Nfs3Call::Rename(args) => Nfs3Reply::Rename(self.rename(cred, args)),
            Nfs3Call::Link(args) => Nfs3Reply::Link(self.link(cred, args)),
            Nfs3Call::Readdir(args) => Nfs3Reply::Readdir(self.readdir(cred, args)),
            Nfs3Call::Readdirplus(args) => Nfs3Reply::Readdirplus(self.readdirplus(cred, args)),
            Nfs3Call::Fsstat(args) => Nfs3Reply::Fsstat(self.fsstat(args)),
            Nfs3Call::Fsinfo(args) => Nfs3Reply::Fsinfo(self.fsinfo(args)),
            Nfs3Call::Pathconf(args) => Nfs3Reply::Pathconf(self.pathconf(args)),
            Nfs3Call::Commit(args) => Nfs3Reply::Commit(self.commit(args)),
        }
    }

    fn getattr(&self, args: GetattrArgs) -> GetattrRes {
        let result = self
            .id(&args.object)
            .and_then(|id| Ok(self.storage.getattr(id)?));
        match result {
            Ok(attr) => NfsRes::Ok(GetattrResOk {
                obj_attributes: attr,
            }),
            Err(status) => NfsRes::fail(status, ()),
        }
    }

    fn setattr(&self, cred: &Cred, args: SetattrArgs) -> SetattrRes {
        let id = self.id(&args.object);
        let result = (|| {
            let id = id?;
            self.writable()?;
            let attr = self.storage.getattr(id)?;
            let new = &args.new_attributes;
            if cred.uid != 0 {
                let owner = attr.uid == cred.uid;
                if new.mode.is_some() && !owner {
                    return Err(Nfs3Status::Perm);
                }
                if new.uid.is_some_and(|uid| uid != attr.uid) {
                    return Err(Nfs3Status::Perm);
                }
                if new
                    .gid
                    .is_some_and(|gid| gid != attr.gid && !(owner && cred.in_group(gid)))
                {
                    return Err(Nfs3Status::Perm);
                }
                if new.size.is_some() && !owner && !may(cred, &attr, MAY_WRITE) {
                    return Err(Nfs3Status::Acces);
                }
                let client_time = |t: SetTime| matches!(t, SetTime::ClientTime(_));
                if (client_time(new.atime) || client_time(new.mtime)) && !owner {
                    return Err(Nfs3Status::Perm);
                }
                let server_time = |t: SetTime| matches!(t, SetTime::ServerTime);
                if (server_time(new.atime) || server_time(new.mtime))
                    && !owner
                    && !may(cred, &attr, MAY_WRITE)
                {
                    return Err(Nfs3Status::Acces);
                }
            }
            Ok(self.storage.setattr(id, new, args.guard)?)
        })();
        match result {
            Ok(obj_wcc) => NfsRes::Ok(SetattrResOk { obj_wcc }),
            Err(status) => NfsRes::fail(
                status,
                SetattrResFail {
                    obj_wcc: wcc_after(self.attr_of(id)),
                },
            ),
        }
    }

    fn lookup(&self, cred: &Cred, args: LookupArgs) -> LookupRes {
        let dir = self.id(&args.what.dir);
        let result = (|| {
            let dir = dir?;
            let dir_attr = self.storage.getattr(dir)?;
            if dir_attr.file_type != FileType::Directory {
                return Err(Nfs3Status::NotDir);
            }
            if !may(cred, &dir_attr, MAY_EXEC) {
                return Err(Nfs3Status::Acces);
            }
            let (id, attr) = self.storage.lookup(dir, &args.what.name)?;
            Ok((id, attr, dir_attr))
        })();
        match result {
            Ok((id, attr, dir_attr)) => NfsRes::Ok(LookupResOk {
                object: self.handles.encode(id),
                obj_attributes: Some(attr),
                dir_attributes: Some(dir_attr),
            }),
            Err(status) => NfsRes::fail(
                status,
                LookupResFail {
                    dir_attributes: self.attr_of(dir),
                },
            ),
        }
    }

    fn access(&self, cred: &Cred, args: AccessArgs) -> AccessRes {
        let id = self.id(&args.object);
        let result = id.and_then(|id| Ok(self.storage.getattr(id)?));
        match result {
            Ok(attr) => {
                let is_dir = attr.file_type == FileType::Directory;
                let mut granted = 0;
                if may(cred, &attr, MAY_READ) {
                    granted |= access::READ;
                }
                if is_dir {
                    if may(cred, &attr, MAY_EXEC) {
                        granted |= access::LOOKUP;
                    }
                    if may(cred, &attr, MAY_WRITE | MAY_EXEC) {
                        granted |= access::MODIFY | access::EXTEND | access::DELETE;
                    }
                } else {
                    if may(cred, &attr, MAY_WRITE) {
                        granted |= access::MODIFY | access::EXTEND | access::DELETE;
                    }
                    if may(cred, &attr, MAY_EXEC) {
                        granted |= access::EXECUTE;
                    }
                }
                if self.config.read_only {
                    granted &= !(access::MODIFY | access::EXTEND | access::DELETE);
                }
                NfsRes::Ok(AccessResOk {
                    obj_attributes: Some(attr),
                    access: args.access & granted,
                })
            }
            Err(status) => NfsRes::fail(
                status,
                AccessResFail {
                    obj_attributes: self.attr_of(id),
                },
            ),
        }
    }

    fn readlink(&self, args: ReadlinkArgs) -> ReadlinkRes {
        let id = self.id(&args.symlink);
        match id.and_then(|id| Ok(self.storage.readlink(id)?)) {
            Ok((data, attr)) => NfsRes::Ok(ReadlinkResOk {
                symlink_attributes: Some(attr),
                data,
            }),
            Err(status) => NfsRes::fail(
                status,
                ReadlinkResFail {
                    symlink_attributes: self.attr_of(id),
                },
            ),
        }
    }

    /// The file READ may read, after the permission check.
    fn readable(&self, cred: &Cred, file: &FileHandle) -> Result<FileId, Nfs3Status> {
        let id = self.id(file)?;
        if cred.uid != 0 {
            let attr = self.storage.getattr(id)?;
            if !is_owner(cred, &attr) && !may(cred, &attr, MAY_READ) && !may(cred, &attr, MAY_EXEC)
            {
                return Err(Nfs3Status::Acces);
            }
        }
        Ok(id)
    }

    fn read(&self, cred: &Cred, args: ReadArgs) -> ReadRes {
        let result = self.readable(cred, &args.file).and_then(|id| {
            let count = args.count.min(self.config.limits.max_io_bytes);
            Ok(self.storage.read(id, args.offset, count)?)
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
        cred: &Cred,
        args: &ReadArgs,
    ) -> Result<SplicedRead, Nfs3Status> {
        let id = self.readable(cred, &args.file)?;
        let count = args.count.min(self.config.limits.max_io_bytes);
        Ok(self.storage.read_spliced(id, args.offset, count)?)
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

    fn write(&self, cred: &Cred, args: WriteArgs) -> WriteRes {
        let id = self.id(&args.file);
        let result = (|| {
            let id = id?;
            self.writable()?;
            let count = args.count as usize;
            if count > args.data.len() {
                return Err(Nfs3Status::Inval);
            }
            let data: Bytes = args.data.slice(..count);
            if cred.uid != 0 {
                let attr = self.storage.getattr(id)?;
                if !is_owner(cred, &attr) && !may(cred, &attr, MAY_WRITE) {
                    return Err(Nfs3Status::Acces);
                }
            }
            // The verifier the data is written under: read before the write, so that a failure
            // while it runs makes the client's next COMMIT see a different one.
            let verf = self.verifier.current();
            let misbehavior = self.config.misbehavior.as_ref().map(|m| &*m.0);
            if args.stable != StableHow::Unstable
                && misbehavior.is_some_and(|m| m.take_weaker_stability())
            {
                // Deliberately less stable than asked (and honestly so: only volatile).
                return match self
                    .storage
                    .write(id, args.offset, &data, StableHow::Unstable)
                {
                    Ok(out) => Ok(WriteResOk {
                        file_wcc: out.wcc,
                        count: out.count,
                        committed: StableHow::Unstable,
                        verf,
                    }),
                    Err(err) => {
                        if err.lost_unstable_data {
                            self.verifier.reset();
                        }
                        Err(err.status)
                    }
                };
            }
            let verf = match misbehavior {
                Some(m) => WriteVerifier(m.write_verifier(verf.0)),
                None => verf,
            };
            match self.storage.write(id, args.offset, &data, args.stable) {
                Ok(out) if out.committed >= args.stable => Ok(WriteResOk {
                    file_wcc: out.wcc,
                    count: out.count,
                    committed: out.committed,
                    verf,
                }),
                Ok(out) => {
                    // A store that did less than asked: never answer a stability the bytes do
                    // not have.
                    tracing::error!(
                        asked = ?args.stable,
                        got = ?out.committed,
                        "store answered a weaker stability than asked"
                    );
                    self.verifier.reset();
                    Err(Nfs3Status::Io)
                }
                Err(err) => {
                    if err.lost_unstable_data {
                        self.verifier.reset();
                    }
                    Err(err.status)
                }
            }
        })();
        match result {
            Ok(ok) => NfsRes::Ok(ok),
            Err(status) => NfsRes::fail(
                status,
                WriteResFail {
                    file_wcc: wcc_after(self.attr_of(id)),
                },
            ),
        }
    }

    fn commit(&self, args: CommitArgs) -> CommitRes {
        let id = self.id(&args.file);
        let result = (|| {
            let id = id?;
            match self.storage.commit(id, args.offset, args.count) {
                // Read after the sync: if anything failed meanwhile, the client sees it.
                Ok(wcc) => {
                    let verf = self.verifier.current();
                    Ok(CommitResOk {
                        file_wcc: wcc,
                        verf: match &self.config.misbehavior {
                            Some(m) => WriteVerifier(m.0.commit_verifier(verf.0)),
                            None => verf,
                        },
                    })
                }
                Err(err) => {
                    if err.lost_unstable_data {
                        self.verifier.reset();
                    }
                    Err(err.status)
                }
            }
        })();
        match result {
            Ok(ok) => NfsRes::Ok(ok),
            Err(status) => NfsRes::fail(
                status,
                CommitResFail {
                    file_wcc: wcc_after(self.attr_of(id)),
                },
            ),
        }
    }

    /// The common shape of CREATE, MKDIR, SYMLINK and MKNOD.
    fn creating(
        &self,
        cred: &Cred,
        where_: &DirOpArgs,
        attrs: &Sattr,
        make: impl FnOnce(FileId, Owner) -> Res<crate::storage::Created>,
    ) -> CreateRes {
        let dir = self.id(&where_.dir);
        let result = (|| {
            let dir = dir?;
            self.writable()?;
            let dir_attr = self.dir_for_change(cred, dir)?;
            let owner = self.owner_for(cred, &dir_attr, attrs);
            make(dir, owner)
        })();
        match result {
            Ok(created) => NfsRes::Ok(CreateResOk {
                obj: Some(self.handles.encode(created.id)),
                obj_attributes: Some(created.attr),
                dir_wcc: created.dir_wcc,
            }),
            Err(status) => NfsRes::fail(
                status,
                CreateResFail {
                    dir_wcc: wcc_after(self.attr_of(dir)),
                },
            ),
        }
    }

    fn create(&self, cred: &Cred, args: CreateArgs) -> CreateRes {
        let no_attrs = Sattr::default();
        let attrs = match &args.how {
            CreateHow::Unchecked(attrs) | CreateHow::Guarded(attrs) => attrs,
            CreateHow::Exclusive(_) => &no_attrs,
        };
        self.creating(cred, &args.where_, attrs, |dir, owner| {
            let mut rest = attrs.clone();
            rest.uid = None;
            rest.gid = None;
            let mode = match &args.how {
                CreateHow::Unchecked(_) => {
                    // Truncating an existing file needs the right to write it.
                    if rest.size.is_some() && cred.uid != 0 {
                        if let Ok((_, existing)) = self.storage.lookup(dir, &args.where_.name) {
                            if !is_owner(cred, &existing) && !may(cred, &existing, MAY_WRITE) {
                                return Err(Nfs3Status::Acces);
                            }
                        }
                    }
                    CreateMode::Unchecked(&rest)
                }
                CreateHow::Guarded(_) => CreateMode::Guarded(&rest),
                CreateHow::Exclusive(verf) => CreateMode::Exclusive(*verf),
            };
            Ok(self.storage.create(dir, &args.where_.name, mode, owner)?)
        })
    }

    fn mkdir(&self, cred: &Cred, args: MkdirArgs) -> MkdirRes {
        self.creating(cred, &args.where_, &args.attributes, |dir, owner| {
            Ok(self
                .storage
                .mkdir(dir, &args.where_.name, &args.attributes, owner)?)
        })
    }

    fn symlink(&self, cred: &Cred, args: SymlinkArgs) -> SymlinkRes {
        let attrs = &args.symlink.symlink_attributes;
        self.creating(cred, &args.where_, attrs, |dir, owner| {
            Ok(self.storage.symlink(
                dir,
                &args.where_.name,
                &args.symlink.symlink_data,
                attrs,
                owner,
            )?)
        })
    }

    fn mknod(&self, cred: &Cred, args: MknodArgs) -> MknodRes {
        let attrs = match &args.what {
            MknodData::Char(device) | MknodData::Block(device) => device.dev_attributes.clone(),
            MknodData::Socket(attrs) | MknodData::Fifo(attrs) => attrs.clone(),
            MknodData::Other(_) => Sattr::default(),
        };
        self.creating(cred, &args.where_, &attrs, |dir, owner| {
            Ok(self
                .storage
                .mknod(dir, &args.where_.name, &args.what, owner)?)
        })
    }

    fn remove(&self, cred: &Cred, object: DirOpArgs, is_dir: bool) -> RemoveRes {
        let dir = self.id(&object.dir);
        let result = (|| {
            let dir = dir?;
            self.writable()?;
            let dir_attr = self.dir_for_change(cred, dir)?;
            self.check_sticky(cred, dir, &dir_attr, &object.name)?;
            Ok(if is_dir {
                self.storage.rmdir(dir, &object.name)?
            } else {
                self.storage.remove(dir, &object.name)?
            })
        })();
        match result {
            Ok(dir_wcc) => NfsRes::Ok(RemoveResOk { dir_wcc }),
            Err(status) => NfsRes::fail(
                status,
                RemoveResFail {
                    dir_wcc: wcc_after(self.attr_of(dir)),
                },
            ),
        }
    }

    fn rename(&self, cred: &Cred, args: RenameArgs) -> RenameRes {
        let from = self.id(&args.from.dir);
        let to = self.id(&args.to.dir);
        let result = (|| {
            let (from, to) = (from?, to?);
            self.writable()?;
            let from_attr = self.dir_for_change(cred, from)?;
            let to_attr = self.dir_for_change(cred, to)?;
            self.check_sticky(cred, from, &from_attr, &args.from.name)?;
            match self.check_sticky(cred, to, &to_attr, &args.to.name) {
                Ok(()) | Err(Nfs3Status::NoEnt) => {}
                Err(status) => return Err(status),
            }
            Ok(self
                .storage
                .rename(from, &args.from.name, to, &args.to.name)?)
        })();
        match result {
            Ok((fromdir_wcc, todir_wcc)) => NfsRes::Ok(RenameResOk {
                fromdir_wcc,
                todir_wcc,
            }),
            Err(status) => NfsRes::fail(
                status,
                RenameResFail {
                    fromdir_wcc: wcc_after(self.attr_of(from)),
                    todir_wcc: wcc_after(self.attr_of(to)),
                },
            ),
        }
    }

    fn link(&self, cred: &Cred, args: LinkArgs) -> LinkRes {
        let file = self.id(&args.file);
        let dir = self.id(&args.link.dir);
        let result = (|| {
            let (file, dir) = (file?, dir?);
            self.writable()?;
            self.dir_for_change(cred, dir)?;
            // As Linux's protected_hardlinks: only the owner, or someone who may read and
            // write the file, may link to it.
            if cred.uid != 0 {
                let attr = self.storage.getattr(file)?;
                if attr.uid != cred.uid && !may(cred, &attr, MAY_READ | MAY_WRITE) {
                    return Err(Nfs3Status::Acces);
                }
            }
            Ok(self.storage.link(file, dir, &args.link.name)?)
        })();
        match result {
            Ok((attr, linkdir_wcc)) => NfsRes::Ok(LinkResOk {
                file_attributes: Some(attr),
                linkdir_wcc,
            }),
            Err(status) => NfsRes::fail(
                status,
                LinkResFail {
                    file_attributes: self.attr_of(file),
                    linkdir_wcc: wcc_after(self.attr_of(dir)),
                },
            ),
        }
    }

    fn dir_for_listing(&self, cred: &Cred, dir: FileId) -> Res<()> {
        let attr = self.storage.getattr(dir)?;
        if attr.file_type != FileType::Directory {
            return Err(Nfs3Status::NotDir);
        }
        if !may(cred, &attr, MAY_READ) {
            return Err(Nfs3Status::Acces);
        }
        Ok(())
    }

    fn readdir(&self, cred: &Cred, args: ReaddirArgs) -> ReaddirRes {
        let dir = self.id(&args.dir);
        let result = (|| {
            let dir = dir?;
            self.dir_for_listing(cred, dir)?;
            let count = args.count.min(self.config.limits.max_io_bytes) as usize;
            let max_entries =
                (count.saturating_sub(READDIR_FIXED_BYTES) / 24 + 1).clamp(1, MAX_READDIR_ENTRIES);
            let page =
                self.storage
                    .readdir(dir, args.cookie, args.cookieverf, max_entries, false)?;
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
        })();
        match result {
            Ok(ok) => NfsRes::Ok(ok),
            Err(status) => NfsRes::fail(
                status,
                ReaddirResFail {
                    dir_attributes: self.attr_of(dir),
                },
            ),
        }
    }

    fn readdirplus(&self, cred: &Cred, args: ReaddirplusArgs) -> ReaddirplusRes {
        let dir = self.id(&args.dir);
        let result = (|| {
            let dir = dir?;
            self.dir_for_listing(cred, dir)?;
            let maxcount = args.maxcount.min(self.config.limits.max_io_bytes) as usize;
            // A dircount too small for one entry is taken as "no separate limit".
            let dircount = match args.dircount as usize {
                small if small < 24 => usize::MAX,
                dircount => dircount,
            };
            let per_entry_bytes = 4 + 8 + 4 + 8 + 4 + 84 + 4 + 4 + crate::handle::HANDLE_BYTES;
            let max_entries = (maxcount.saturating_sub(READDIR_FIXED_BYTES) / per_entry_bytes + 2)
                .min(dircount / 24 + 2)
                .clamp(1, MAX_READDIR_ENTRIES);
            let page =
                self.storage
                    .readdir(dir, args.cookie, args.cookieverf, max_entries, true)?;
            let mut size = READDIR_FIXED_BYTES;
            let mut dir_size = 0usize;
            let mut entries = Vec::with_capacity(page.entries.len());
            let mut complete = true;
            for entry in page.entries.iter() {
                let info_bytes = 8 + 4 + padded(entry.name.len()) + 8;
                let plus_bytes = match entry.plus {
                    Some(_) => 4 + 84 + 4 + 4 + crate::handle::HANDLE_BYTES,
                    None => 4 + 4,
                };
                let entry_bytes = 4 + info_bytes + plus_bytes;
                if size + entry_bytes > maxcount || dir_size.saturating_add(info_bytes) > dircount {
                    complete = false;
                    break;
                }
                size += entry_bytes;
                dir_size += info_bytes;
                let (name_attributes, name_handle) = match &entry.plus {
                    Some((id, attr)) => (Some(attr.clone()), Some(self.handles.encode(*id))),
                    None => (None, None),
                };
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
        })();
        match result {
            Ok(ok) => NfsRes::Ok(ok),
            Err(status) => NfsRes::fail(
                status,
                ReaddirplusResFail {
                    dir_attributes: self.attr_of(dir),
                },
            ),
        }
    }

    fn fsstat(&self, args: FsstatArgs) -> FsstatRes {
        let id = self.id(&args.fsroot);
        match id.and_then(|id| Ok(self.storage.fsstat(id)?)) {
            Ok(fs) => NfsRes::Ok(FsstatResOk {
                obj_attributes: self.attr_of(id),
                tbytes: fs.total_bytes,
                fbytes: fs.free_bytes,
                abytes: fs.avail_bytes,
                tfiles: fs.total_files,
                ffiles: fs.free_files,
                afiles: fs.avail_files,
                invarsec: 0,
            }),
            Err(status) => NfsRes::fail(
                status,
                FsstatResFail {
                    obj_attributes: self.attr_of(id),
                },
            ),
        }
    }

    fn fsinfo(&self, args: FsinfoArgs) -> FsinfoRes {
        let id = self.id(&args.fsroot);
        match id.and_then(|id| Ok(self.storage.getattr(id)?)) {
            Ok(attr) => {
                let limits = self.storage.limits();
                let io_bytes = self.config.limits.max_io_bytes;
                NfsRes::Ok(FsinfoResOk {
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
            }
            Err(status) => NfsRes::fail(
                status,
                FsinfoResFail {
                    obj_attributes: self.attr_of(id),
                },
            ),
        }
    }

    fn pathconf(&self, args: PathconfArgs) -> PathconfRes {
        let id = self.id(&args.object);
        match id.and_then(|id| Ok(self.storage.getattr(id)?)) {
            Ok(attr) => {
                let limits = self.storage.limits();
                NfsRes::Ok(PathconfResOk {
                    obj_attributes: Some(attr),
                    linkmax: limits.link_max,
                    name_max: limits.name_max,
                    no_trunc: true,
                    chown_restricted: true,
                    case_insensitive: false,
                    case_preserving: true,
                })
            }
            Err(status) => NfsRes::fail(
                status,
                PathconfResFail {
                    obj_attributes: self.attr_of(id),
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(mode: u32, uid: u32, gid: u32) -> Fattr {
        Fattr {
            mode,
            uid,
            gid,
            ..Fattr::default()
        }
    }

    fn cred(uid: u32, gid: u32) -> Cred {
        Cred {
            uid,
            gid,
            gids: vec![50],
        }
    }

    #[test]
    fn mode_bits_by_owner_group_other() {
        let file = attr(0o640, 1000, 100);
        assert!(may(&cred(1000, 1), &file, MAY_READ | MAY_WRITE));
        assert!(may(&cred(1001, 100), &file, MAY_READ));
        assert!(!may(&cred(1001, 100), &file, MAY_WRITE));
        assert!(!may(&cred(1002, 7), &file, MAY_READ));
        let group_via_list = attr(0o040, 1, 50);
        assert!(may(&cred(1002, 7), &group_via_list, MAY_READ));
        // Root may do anything but execute a file without any execute bit.
        assert!(may(&cred(0, 0), &attr(0, 5, 5), MAY_READ | MAY_WRITE));
        assert!(!may(&cred(0, 0), &attr(0o644, 5, 5), MAY_EXEC));
        assert!(may(&cred(0, 0), &attr(0o100, 5, 5), MAY_EXEC));
    }
}
