//! The namespace operations: lookup, mkdir, mknod, symlink, link, unlink, rmdir, rename and
//! readlink, each one NFSv3 procedure (rename with RENAME_NOREPLACE: two, see there).
//!
//! Every one that makes an entry reply counts one kernel reference in the inode table
//! (`Core::entry`), and only once the reply is certain to carry it.

use fuser::{FileAttr, RenameFlags};
use nfsio_client::proto::nfs3::{DeviceData, MknodData, Nfs3Status, Sattr};

use crate::attr::decode_dev;
use crate::core::Core;
use crate::error::{Errno, OpResult};
use crate::silly::Unlink;

/// What a lookup found: an entry, or none (a negative entry the kernel may cache).
pub enum Found {
    /// The name exists.
    Entry(FileAttr),
    /// The name does not exist.
    Missing,
}

impl Core {
    /// LOOKUP of `name` in node `parent`.
    pub async fn lookup(&self, parent: u64, name: &[u8]) -> OpResult<Found> {
        let dir = self.handle(parent)?;
        self.attrs.looked_up(parent, name);
        let found = match self.client.lookup(&dir, name).await {
            Ok(found) => found,
            Err(error) if error.status() == Some(Nfs3Status::NoEnt) => return Ok(Found::Missing),
            Err(error) => return Err(error.into()),
        };
        let attributes = self
            .attributes_of(&found.object, found.obj_attributes)
            .await?;
        Ok(Found::Entry(self.entry(&found.object, &attributes)))
    }

    /// MKDIR of `name` in `parent` with `mode` (the kernel applied the umask).
    pub async fn mkdir(&self, parent: u64, name: &[u8], mode: u32) -> OpResult<FileAttr> {
        let dir = self.handle(parent)?;
        self.attrs.changing(parent);
        let attributes = Sattr {
            mode: Some(mode & 0o7777),
            ..Sattr::default()
        };
        let created = self.client.mkdir(&dir, name, attributes).await?;
        let attributes = self
            .attributes_of(&created.handle, created.attributes)
            .await?;
        Ok(self.entry(&created.handle, &attributes))
    }

    /// MKNOD of a FIFO, socket or device (the server decides whether a caller may make
    /// devices; a server that does not make them, NFS3ERR_NOTSUPP, is EPERM as mknod(2)
    /// says); a regular file is a GUARDED CREATE. Other types are EINVAL.
    pub async fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> OpResult<FileAttr> {
        let dir = self.handle(parent)?;
        self.attrs.changing(parent);
        let attributes = Sattr {
            mode: Some(mode & 0o7777),
            ..Sattr::default()
        };
        let device = |attributes| DeviceData {
            dev_attributes: attributes,
            spec: decode_dev(rdev),
        };
        let what = match mode & libc::S_IFMT {
            libc::S_IFIFO => MknodData::Fifo(attributes),
            libc::S_IFSOCK => MknodData::Socket(attributes),
            libc::S_IFCHR => MknodData::Char(device(attributes)),
            libc::S_IFBLK => MknodData::Block(device(attributes)),
            libc::S_IFREG => {
                let how = nfsio_client::proto::nfs3::CreateHow::Guarded(attributes);
                let created = self.client.create(&dir, name, how).await?;
                let attributes = self
                    .attributes_of(&created.handle, created.attributes)
                    .await?;
                return Ok(self.entry(&created.handle, &attributes));
            }
            _ => return Err(Errno(libc::EINVAL)),
        };
        let device = matches!(what, MknodData::Char(_) | MknodData::Block(_));
        let created = match self.client.mknod(&dir, name, what).await {
            Ok(created) => created,
            // mknod(2)'s answer when the file system does not support the node type.
            Err(error) if device && error.status() == Some(Nfs3Status::NotSupp) => {
                return Err(Errno(libc::EPERM));
            }
            Err(error) => return Err(error.into()),
        };
        let attributes = self
            .attributes_of(&created.handle, created.attributes)
            .await?;
        Ok(self.entry(&created.handle, &attributes))
    }

    /// SYMLINK `name` in `parent` pointing at `target`.
    pub async fn symlink(&self, parent: u64, name: &[u8], target: &[u8]) -> OpResult<FileAttr> {
        let dir = self.handle(parent)?;
        self.attrs.changing(parent);
        let created = self
            .client
            .symlink(&dir, name, target, Sattr::default())
            .await?;
        let attributes = self
            .attributes_of(&created.handle, created.attributes)
            .await?;
        Ok(self.entry(&created.handle, &attributes))
    }

    /// LINK: a new name `name` in `parent` for node `ino`.
    pub async fn link(&self, ino: u64, parent: u64, name: &[u8]) -> OpResult<FileAttr> {
        let file = self.handle(ino)?;
        let dir = self.handle(parent)?;
        self.attrs.changing(ino);
        let linked = self.client.link(&file, &dir, name).await?;
        self.wcc(parent, &linked.linkdir_wcc);
        let attributes = self.attributes_of(&file, linked.file_attributes).await?;
        Ok(self.entry(&file, &attributes))
    }

    /// REMOVE of `name` in `parent`.
    pub async fn unlink(&self, parent: u64, name: &[u8]) -> OpResult<()> {
        let dir = self.handle(parent)?;
        if let Unlink::Hidden = self.hide_if_open(&dir, name, None).await? {
            return Ok(());
        }
        let wcc = self.client.remove(&dir, name).await?;
        self.wcc(parent, &wcc);
        Ok(())
    }

    /// RMDIR of `name` in `parent`.
    pub async fn rmdir(&self, parent: u64, name: &[u8]) -> OpResult<()> {
        let dir = self.handle(parent)?;
        let wcc = self.client.rmdir(&dir, name).await?;
        self.wcc(parent, &wcc);
        Ok(())
    }

    /// RENAME. RENAME_EXCHANGE (and any flag but RENAME_NOREPLACE) is EINVAL: NFSv3 cannot
    /// exchange. RENAME_NOREPLACE is a LOOKUP of the target (EEXIST if it exists) and then
    /// the RENAME: **not atomic** — a target created by another client between the two
    /// calls is replaced. NFSv3 has no exclusive rename; this is the best it offers.
    pub async fn rename(
        &self,
        from: (u64, &[u8]),
        to: (u64, &[u8]),
        flags: RenameFlags,
    ) -> OpResult<()> {
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            return Err(Errno(libc::EINVAL));
        }
        let from_dir = self.handle(from.0)?;
        let to_dir = self.handle(to.0)?;
        if flags.contains(RenameFlags::RENAME_NOREPLACE) {
            match self.client.lookup(&to_dir, to.1).await {
                Ok(_) => return Err(Errno(libc::EEXIST)),
                Err(error) if error.status() == Some(Nfs3Status::NoEnt) => {}
                Err(error) => return Err(error.into()),
            }
        }
        self.hide_if_open(&to_dir, to.1, Some((&from_dir, from.1)))
            .await?;
        let renamed = self.client.rename(&from_dir, from.1, &to_dir, to.1).await?;
        self.wcc(from.0, &renamed.fromdir_wcc);
        if to.0 != from.0 {
            self.wcc(to.0, &renamed.todir_wcc);
        }
        Ok(())
    }

    /// READLINK of node `ino`.
    pub async fn readlink(&self, ino: u64) -> OpResult<bytes::Bytes> {
        let link = self.handle(ino)?;
        Ok(self.client.readlink(&link).await?)
    }
}
