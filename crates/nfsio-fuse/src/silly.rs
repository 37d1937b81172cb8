//! Silly rename: an open file that is unlinked stays readable and writable until its last
//! close, as with the Linux NFS client.
//!
//! NFSv3 servers keep no open state: a REMOVE of a file that a program still has open
//! makes its handle stale at once. So, as the Linux client does, an unlink (or a rename onto
//! it) of a file open through this mount renames it instead to a hidden name in the same
//! directory, `.nfs` + its 16-hex-digit fileid + an 8-hex-digit counter, and the REMOVE of
//! that name follows the file's last RELEASE on this mount. The hidden names are not
//! counted in the link count the kernel gets (`Core::attr`): fstat of the open file shows 0
//! links once its last name is unlinked, as POSIX expects. Unlinking such a name while the
//! file is still open answers EBUSY, as Linux does. A mount that ends (or a client that
//! dies) with such files open leaves the `.nfs` names behind, as Linux's do.

use std::sync::Arc;

use nfsio_client::proto::nfs3::{FileHandle, Nfs3Status};

use crate::core::Core;
use crate::error::{Errno, OpResult};
use crate::handles::OpenFile;
use crate::hidden::Hidden;

/// What an unlink should do with a name.
pub enum Unlink {
    /// Nothing of this mount has it open: REMOVE it.
    Remove,
    /// It was renamed to a hidden name (removed at its last release).
    Hidden,
}

impl Core {
    /// Before an unlink (or a rename onto it) of `name` in `dir`: a file open on this mount
    /// is renamed to a hidden name; a hidden name itself is EBUSY. `keep`: a handle that may
    /// take the name (a rename's source), which is left alone if it is the same file.
    pub async fn hide_if_open(
        &self,
        dir: &FileHandle,
        name: &[u8],
        keep: Option<(&FileHandle, &[u8])>,
    ) -> OpResult<Unlink> {
        if self.handles.silly.is_hidden(dir, name) {
            return Err(Errno(libc::EBUSY));
        }
        if self.handles.files_open() == 0 {
            return Ok(Unlink::Remove);
        }
        let found = match self.client.lookup(dir, name).await {
            Ok(found) => found,
            // Let the operation itself answer (ENOENT, ENOTDIR, ...).
            Err(_) => return Ok(Unlink::Remove),
        };
        let Some(ino) = self.inodes().peek(&found.object) else {
            return Ok(Unlink::Remove);
        };
        if self.handles.opens_of(ino) == 0 {
            return Ok(Unlink::Remove);
        }
        if let Some((from_dir, from_name)) = keep {
            let same = self.client.lookup(from_dir, from_name).await;
            if same.is_ok_and(|from| from.object == found.object) {
                return Ok(Unlink::Remove);
            }
        }
        let fileid = found.obj_attributes.as_ref().map_or(ino, |a| a.fileid);
        let hidden = Hidden {
            dir: dir.clone(),
            name: self.handles.silly.name_for(fileid),
            by: self.client.clone(),
        };
        self.client.rename(dir, name, dir, &hidden.name).await?;
        let name = name.escape_ascii().to_string();
        tracing::debug!(ino, name, hidden = %hidden.name, "open file renamed away");
        self.handles
            .silly
            .locked()
            .entry(ino)
            .or_default()
            .push(hidden);
        // The last release may have run between the count above and now, seeing nothing
        // hidden: then nobody else would remove the name.
        if self.handles.opens_of(ino) == 0 {
            self.remove_names_of(ino).await;
        }
        Ok(Unlink::Hidden)
    }

    /// After the RELEASE of `open`: once no open file of its node is left, its hidden
    /// names are REMOVEd (after what was written through it is written back, so that no
    /// write-back reaches a removed file).
    pub async fn remove_hidden(self: Arc<Self>, open: Arc<OpenFile>) {
        let ino = open.ino;
        if self.handles.opens_of(ino) > 0 {
            return;
        }
        if let Err(error) = open.file.sync_all().await {
            tracing::debug!(ino, %error, "write-back of an unlinked file");
        }
        if self.handles.opens_of(ino) == 0 {
            self.remove_names_of(ino).await;
        }
    }

    /// REMOVEs the hidden names of node `ino` (nothing of it open any more) and forgets
    /// them.
    async fn remove_names_of(&self, ino: u64) {
        let Some(names) = self.handles.silly.locked().remove(&ino) else {
            return;
        };
        for hidden in names {
            match hidden.by.remove(&hidden.dir, &hidden.name).await {
                Ok(_) => {}
                Err(error) if error.status() == Some(Nfs3Status::NoEnt) => {}
                Err(error) => {
                    tracing::warn!(name = %hidden.name, %error, "REMOVE of a hidden file failed");
                }
            }
        }
    }
}
