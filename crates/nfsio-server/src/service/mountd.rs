//! MOUNT v3 (and versions 1 and 2 without MNT, which showmount asks): MNT resolves a path
//! below the export to a directory's handle for a client in the allow list, DUMP lists the
//! mounts remembered (advisory, bounded), UMNT and UMNTALL forget them, EXPORT names the
//! export and who may mount it.

use std::net::IpAddr;

use bytes::Bytes;
use nfsio_proto::XdrDecoder;
use nfsio_proto::mount::{
    self, ExportList, ExportNode, MntRes, MountCall, MountEntry, MountList, MountReply, MountStatus,
};
use nfsio_proto::nfs3::{self, Nfs3Status};
use nfsio_proto::rpc::{AcceptError, CallHeader, auth_flavor};
use tracing::debug;

use super::reply::{accept_error, success};
use super::{Response, Service, lock};
use crate::storage::{Caller, FileId};

/// Most mounts remembered for MOUNT DUMP (it is advisory).
const MAX_MOUNT_ENTRIES: usize = 1024;

impl Service {
    /// A MOUNT call: version, arguments, the procedure, the reply.
    pub(super) fn dispatch_mount(
        &self,
        client: IpAddr,
        header: &CallHeader,
        dec: &mut XdrDecoder,
    ) -> Response {
        let xid = header.xid;
        // Versions 1 and 2 are version 3 without MNT (their file handles are NFSv2's,
        // which this server does not issue); showmount asks version 1 for EXPORT.
        if !(1..=mount::VERSION).contains(&header.vers) {
            return accept_error(
                xid,
                AcceptError::ProgMismatch {
                    low: 1,
                    high: mount::VERSION,
                },
            );
        }
        if header.vers < mount::VERSION && header.proc_num == mount::procs::MNT {
            return accept_error(xid, AcceptError::ProcUnavail);
        }
        let call = match mount::decode_call(header.proc_num, dec) {
            Ok(Some(call)) => call,
            Ok(None) => return accept_error(xid, AcceptError::ProcUnavail),
            Err(_) => return accept_error(xid, AcceptError::GarbageArgs),
        };
        if dec.finish().is_err() {
            return accept_error(xid, AcceptError::GarbageArgs);
        }
        Response::Reply(success(xid, &self.mount_call(client, call)))
    }

    /// Normalises a MOUNT path: no trailing slashes (except `/` itself).
    fn normalise(path: &[u8]) -> &[u8] {
        let mut path = path;
        while path.len() > 1 && path.ends_with(b"/") {
            path = &path[..path.len() - 1];
        }
        path
    }

    /// Resolves a MOUNT path to a directory of the export (the export itself, or a directory
    /// below it; never through a symbolic link, `.` or `..`).
    fn mount_path(&self, path: &[u8]) -> Result<FileId, MountStatus> {
        let path = Self::normalise(path);
        let export = Self::normalise(self.config.export_name.as_bytes());
        let rest = if path == export {
            &[][..]
        } else if path.starts_with(export)
            && (export == b"/" || path.get(export.len()) == Some(&b'/'))
        {
            &path[export.len()..]
        } else {
            return Err(MountStatus::NoEnt);
        };
        let mut id = self.storage.root();
        for component in rest.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if component == b"." || component == b".." {
                return Err(MountStatus::Inval);
            }
            let (next, attr) = self
                .storage
                .lookup(&Caller::root(), id, component)
                .map_err(|e| match e.status {
                    Nfs3Status::NoEnt => MountStatus::NoEnt,
                    Nfs3Status::NotDir => MountStatus::NotDir,
                    Nfs3Status::Acces | Nfs3Status::Perm => MountStatus::Acces,
                    Nfs3Status::NameTooLong => MountStatus::NameTooLong,
                    _ => MountStatus::Io,
                })?;
            if attr.file_type != nfs3::FileType::Directory {
                return Err(MountStatus::NotDir);
            }
            id = next;
        }
        Ok(id)
    }

    fn mount_call(&self, client: IpAddr, call: MountCall) -> MountReply {
        let hostname = Bytes::from(client.to_string());
        match call {
            MountCall::Null => MountReply::Null,
            MountCall::Mnt(_) if !self.allowed(client) => {
                debug!(%client, "MNT from a client not in the allow list");
                MountReply::Mnt(MntRes::Fail(MountStatus::Acces))
            }
            MountCall::Mnt(args) => match self.mount_path(&args.dirpath) {
                Ok(id) => {
                    let mut mounts = lock(&self.mounts);
                    let entry = MountEntry {
                        hostname,
                        directory: args.dirpath.clone(),
                    };
                    if !mounts.contains(&entry) {
                        if mounts.len() >= MAX_MOUNT_ENTRIES {
                            mounts.remove(0);
                        }
                        mounts.push(entry);
                    }
                    debug!(%client, path = %String::from_utf8_lossy(&args.dirpath), "MNT");
                    MountReply::Mnt(MntRes::Ok {
                        fhandle: self.handles.encode(id),
                        auth_flavors: vec![auth_flavor::AUTH_SYS, auth_flavor::AUTH_NONE],
                    })
                }
                Err(status) => MountReply::Mnt(MntRes::Fail(status)),
            },
            MountCall::Dump => MountReply::Dump(MountList(lock(&self.mounts).clone())),
            MountCall::Umnt(args) => {
                lock(&self.mounts)
                    .retain(|m| !(m.hostname == hostname && m.directory == args.dirpath));
                MountReply::Umnt
            }
            MountCall::UmntAll => {
                lock(&self.mounts).retain(|m| m.hostname != hostname);
                MountReply::UmntAll
            }
            MountCall::Export => MountReply::Export(ExportList(vec![ExportNode {
                dir: Bytes::from(self.config.export_name.clone()),
                groups: self
                    .config
                    .allow
                    .iter()
                    .map(|net| Bytes::from(net.to_string()))
                    .collect(),
            }])),
        }
    }
}
