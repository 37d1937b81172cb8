//! The `fuser::Filesystem` of a mount: every callback takes owned copies of its arguments
//! and its reply, hands them to a task on the tokio runtime and returns, so that no FUSE
//! thread ever waits on the network. The work is in `Core` (one file per kind of
//! operation); this file only moves requests to it and answers. Each request's work runs
//! on a `Core` acting as the request's caller (`Core::for_caller`); RELEASE and FORGET,
//! which have no caller to speak of, use the mount's own.

use std::ffi::OsStr;
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use fuser::{
    AccessFlags, FileHandle, FileType as FuseType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle;

use crate::attr::placeholder;
use crate::core::Core;
use crate::error::{Errno, OpResult};
use crate::meta::SetAttr;
use crate::names::Found;

/// The largest WRITE the kernel is asked to send (1 MiB, the kernel's page limit here).
const MAX_WRITE_BYTES: u32 = 1 << 20;

/// A reply that can carry an error.
trait Answer {
    fn fail(self, errno: Errno);
}

macro_rules! answer {
    ($($reply:ty),*) => {
        $(impl Answer for $reply {
            fn fail(self, errno: Errno) {
                self.error(errno.fuse());
            }
        })*
    };
}
answer!(
    ReplyAttr,
    ReplyCreate,
    ReplyData,
    ReplyEmpty,
    ReplyEntry,
    ReplyOpen,
    ReplyStatfs,
    ReplyWrite
);

/// The FUSE file system of one mount.
pub struct NfsFs {
    core: Arc<Core>,
    runtime: Handle,
    /// The kernel's `max_background`: the transport's call slots.
    max_background: u16,
}

impl NfsFs {
    /// The file system over `core`, its work run on `runtime`.
    pub fn new(core: Arc<Core>, runtime: Handle) -> Self {
        let slots = core.client.transport().config().slots;
        let max_background = u16::try_from(slots).unwrap_or(u16::MAX).max(1);
        Self {
            core,
            runtime,
            max_background,
        }
    }

    /// The mount as `req`'s caller sees it.
    fn core_for(&self, req: &Request) -> Arc<Core> {
        Arc::new(self.core.for_caller(req.uid(), req.gid(), req.pid()))
    }

    /// Runs `work` for `req`'s caller on the runtime; answers with `done` or the error.
    fn run<R, T, Fut>(
        &self,
        req: &Request,
        reply: R,
        work: impl FnOnce(Arc<Core>) -> Fut,
        done: impl FnOnce(R, &Core, T) + Send + 'static,
    ) where
        R: Answer + Send + 'static,
        T: Send + 'static,
        Fut: Future<Output = OpResult<T>> + Send + 'static,
    {
        let core = self.core_for(req);
        let future = work(Arc::clone(&core));
        self.runtime.spawn(async move {
            match future.await {
                Ok(value) => done(reply, &core, value),
                Err(errno) => reply.fail(errno),
            }
        });
    }

    /// Like [`NfsFs::run`] for an operation on a name (bytes, as NFS and Linux names are).
    fn run_named<R, T, Fut>(
        &self,
        req: &Request,
        name: &OsStr,
        reply: R,
        work: impl FnOnce(Arc<Core>, Vec<u8>) -> Fut,
        done: impl FnOnce(R, &Core, T) + Send + 'static,
    ) where
        R: Answer + Send + 'static,
        T: Send + 'static,
        Fut: Future<Output = OpResult<T>> + Send + 'static,
    {
        let name = name.as_bytes().to_vec();
        self.run(req, reply, |core| work(core, name), done);
    }
}

fn entry(reply: ReplyEntry, core: &Core, attr: fuser::FileAttr) {
    let attr_ttl = core.attr_ttl(attr.ino.0);
    reply.entry_with_ttls(&core.settings.entry_ttl(), &attr_ttl, &attr, Generation(0));
}

fn empty(reply: ReplyEmpty, _core: &Core, (): ()) {
    reply.ok();
}

impl Filesystem for NfsFs {
    // FUSE_POSIX_LOCKS and FUSE_FLOCK_LOCKS are not claimed: the kernel then keeps fcntl
    // and flock locks itself, local to this mount (NFSv3's NLM is not spoken).
    // FUSE_HANDLE_KILLPRIV: the server clears set-user-ID and set-group-ID bits on a write,
    // a truncation or a change of owner, as the Linux NFS client leaves it to the server;
    // without it the kernel asks for the attributes (a GETATTR) before every chown.
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for (flag, what) in [
            (InitFlags::FUSE_PARALLEL_DIROPS, "PARALLEL_DIROPS"),
            (InitFlags::FUSE_DO_READDIRPLUS, "DO_READDIRPLUS"),
            (InitFlags::FUSE_HANDLE_KILLPRIV, "HANDLE_KILLPRIV"),
        ] {
            if config.add_capabilities(flag).is_err() {
                tracing::warn!("the kernel does not offer FUSE {what}");
            }
        }
        if self.core.settings.writeback_cache
            && config
                .add_capabilities(InitFlags::FUSE_WRITEBACK_CACHE)
                .is_err()
        {
            tracing::warn!("the kernel does not offer FUSE WRITEBACK_CACHE");
        }
        if let Err(nearest) = config.set_max_write(MAX_WRITE_BYTES) {
            let _ = config.set_max_write(nearest);
        }
        if let Err(nearest) = config.set_max_background(self.max_background) {
            let _ = config.set_max_background(nearest);
        }
        let congestion = (u32::from(self.max_background) * 3 / 4).max(1);
        let _ = config.set_congestion_threshold(u16::try_from(congestion).unwrap_or(u16::MAX));
        tracing::debug!(
            max_background = self.max_background,
            "FUSE session initialised"
        );
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let work =
            move |core: Arc<Core>, name: Vec<u8>| async move { core.lookup(parent.0, &name).await };
        self.run_named(req, name, reply, work, |reply, core, found| match found {
            Found::Entry(attr) => entry(reply, core, attr),
            Found::Missing => {
                let ttl = core.settings.negative_ttl();
                let attr = placeholder(0, FuseType::RegularFile);
                reply.entry_with_ttls(&ttl, &ttl, &attr, Generation(0));
            }
        });
    }

    // BATCH_FORGET: fuser 0.18.0's default calls `forget` for each node (its `ForgetOne`
    // cannot be named outside the crate, so it cannot be overridden).
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.run(
            req,
            reply,
            move |core| async move { core.getattr(ino.0).await },
            move |reply, core, attr| reply.attr(&core.attr_ttl(ino.0), &attr),
        );
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            fh: fh.map(|fh| fh.0),
        };
        self.run(
            req,
            reply,
            move |core| async move { core.setattr(ino.0, change).await },
            move |reply, core, attr| reply.attr(&core.attr_ttl(ino.0), &attr),
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.run(
            req,
            reply,
            move |core| async move { core.readlink(ino.0).await },
            |reply, _core, target| reply.data(&target),
        );
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let mode = mode & !umask | (mode & libc::S_IFMT);
        let work = move |core: Arc<Core>, name: Vec<u8>| async move {
            core.mknod(parent.0, &name, mode, rdev).await
        };
        self.run_named(req, name, reply, work, entry);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mode = mode & !umask;
        let work = move |core: Arc<Core>, name: Vec<u8>| async move {
            core.mkdir(parent.0, &name, mode).await
        };
        self.run_named(req, name, reply, work, entry);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let work =
            move |core: Arc<Core>, name: Vec<u8>| async move { core.unlink(parent.0, &name).await };
        self.run_named(req, name, reply, work, empty);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let work =
            move |core: Arc<Core>, name: Vec<u8>| async move { core.rmdir(parent.0, &name).await };
        self.run_named(req, name, reply, work, empty);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let target = target.as_os_str().as_bytes().to_vec();
        let work = move |core: Arc<Core>, name: Vec<u8>| async move {
            core.symlink(parent.0, &name, &target).await
        };
        self.run_named(req, link_name, reply, work, entry);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let to_name = newname.as_bytes().to_vec();
        let work = move |core: Arc<Core>, from_name: Vec<u8>| async move {
            let (from, to) = (
                (parent.0, from_name.as_slice()),
                (newparent.0, to_name.as_slice()),
            );
            core.rename(from, to, flags).await
        };
        self.run_named(req, name, reply, work, empty);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let work = move |core: Arc<Core>, name: Vec<u8>| async move {
            core.link(ino.0, newparent.0, &name).await
        };
        self.run_named(req, newname, reply, work, entry);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.run(
            req,
            reply,
            // The permission check and the open's GETATTR go out together; an open the
            // server refuses is released at once.
            move |core| async move {
                let (allowed, opened) =
                    tokio::join!(core.may_open(ino.0, flags.0), core.open(ino.0, flags.0));
                match (allowed, opened) {
                    (Ok(()), opened) => opened,
                    (Err(errno), Ok(opened)) => {
                        core.release(opened.fh);
                        Err(errno)
                    }
                    (Err(errno), Err(_)) => Err(errno),
                }
            },
            |reply, _core, opened| reply.opened(FileHandle(opened.fh), opened.flags),
        );
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.run(
            req,
            reply,
            move |core| async move { core.read(fh.0, offset, size).await },
            |reply, _core, data| reply.data(&data),
        );
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // The kernel's buffer is reused once we return: the one copy of a WRITE.
        let data = Bytes::copy_from_slice(data);
        self.run(
            req,
            reply,
            move |core| async move { core.write(fh.0, offset, data).await },
            |reply, _core, written| reply.written(written),
        );
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.run(
            req,
            reply,
            move |core| async move { core.sync(fh.0).await },
            empty,
        );
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let open = self.core.handles.file(fh.0);
        self.core.release(fh.0);
        reply.ok();
        if let Some(open) = open
            && self.core.handles.silly.len_of(open.ino) > 0
        {
            let core = Arc::clone(&self.core);
            self.runtime.spawn(core.remove_hidden(open));
        }
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.run(
            req,
            reply,
            move |core| async move { core.sync(fh.0).await },
            empty,
        );
    }

    // Directory operations are synchronous on an NFSv3 server: nothing of a directory is
    // ever pending here.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        match self.core.allocate(fh.0) {
            Ok(()) => reply.ok(),
            Err(errno) => reply.fail(errno),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.core.seek(fh.0, offset, whence) {
            Ok(offset) => reply.offset(offset),
            Err(errno) => reply.error(errno.fuse()),
        }
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.run(
            req,
            reply,
            move |core| async move { core.opendir(ino.0).await },
            |reply, _core, fh| reply.opened(FileHandle(fh), FopenFlags::empty()),
        );
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let core = self.core_for(req);
        self.runtime
            .spawn(async move { core.readdir(ino.0, fh.0, offset, reply).await });
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let core = self.core_for(req);
        self.runtime
            .spawn(async move { core.readdirplus(ino.0, fh.0, offset, reply).await });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.core.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.run(
            req,
            reply,
            |core| async move { core.statfs().await },
            |reply, _core, s| {
                reply.statfs(
                    s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
                );
            },
        );
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let mask = mask.bits();
        self.run(
            req,
            reply,
            move |core| async move { core.access(ino.0, mask).await },
            empty,
        );
    }

    // Extended attributes: NFSv3 has none. ENOSYS makes the kernel stop asking (and answer
    // EOPNOTSUPP itself), without fuser's "not implemented" warning for each.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mode = mode & !umask;
        let work = move |core: Arc<Core>, name: Vec<u8>| async move {
            core.create(parent.0, &name, mode, flags).await
        };
        self.run_named(req, name, reply, work, |reply, core, created| {
            let ttl = core.attr_ttl(created.attr.ino.0);
            let fh = FileHandle(created.fh);
            reply.created(&ttl, &created.attr, Generation(0), fh, created.flags);
        });
    }
}
