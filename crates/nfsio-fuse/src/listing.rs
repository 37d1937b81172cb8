//! Directory listings: opendir, readdir, readdirplus and releasedir.
//!
//! A listing is the directory's READDIRPLUS stream, read page by page as the kernel asks and
//! through to the end of the directory; the handle keeps only the window of entries the
//! kernel is reading (the entries before the one it asks for are dropped). The kernel's
//! offset (`d_off`) is a position in that listing — 0 and 1 are `.` and `..`, then the
//! server's entries in order — rather than the NFS cookie: the client's `ReadDir` resumes
//! only from where it stopped, not from a cookie handed back, and positions within one
//! handle's listing are as stable. An offset before the window (rewinddir, a seekdir back)
//! restarts the listing and skips forward. (`..` carries the directory's own node id: the
//! table keeps no parents.)
//!
//! A READDIRPLUS entry adds one kernel reference to its node, counted only once the entry
//! fits in the reply; `.` and `..` add none (the kernel does not link them).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

use fuser::{FileType as FuseType, Generation, ReplyDirectory, ReplyDirectoryPlus};
use nfsio_client::DirEntry;

use crate::attr::{fuse_type, placeholder};
use crate::core::Core;
use crate::error::{Errno, OpResult};
use crate::handles::Listing;

/// Entries before the server's: `.` and `..`.
const DOTS: u64 = 2;

/// Entry `index` of the listing (None past its end): moves the window to it, restarting the
/// listing from the directory's start for an index before the window (as after a
/// rewinddir), and reads until the window holds it.
async fn entry_at(
    core: &Core,
    dir_ino: u64,
    listing: &mut Listing,
    index: usize,
) -> OpResult<Option<DirEntry>> {
    if index < listing.base {
        let dir = core.handle(dir_ino)?;
        listing.stream = Some(core.client.readdirplus(&dir));
        listing.entries.clear();
        listing.base = 0;
    }
    while listing.base < index && listing.entries.pop_front().is_some() {
        listing.base += 1;
    }
    while listing.base + listing.entries.len() <= index {
        let Some(stream) = listing.stream.as_mut() else {
            return Ok(None);
        };
        match stream.next_entry().await? {
            // Skipping forward after a restart: entries before `index` are not kept.
            Some(_) if listing.entries.is_empty() && listing.base < index => listing.base += 1,
            Some(entry) => listing.entries.push_back(entry),
            None => listing.stream = None,
        }
    }
    let offset = index.checked_sub(listing.base);
    Ok(offset
        .and_then(|offset| listing.entries.get(offset))
        .cloned())
}

fn dot_name(position: u64) -> &'static str {
    if position == 0 { "." } else { ".." }
}

impl Core {
    /// OPENDIR of node `ino`: a listing handle, after close-to-open for the directory as
    /// Linux does it (an open revalidates the directory's attributes with a GETATTR unless
    /// `nocto` and they are fresh): a change by another client drops the names cached in it,
    /// and a directory removed on the server answers ESTALE, on which the kernel looks the
    /// path up again (LOOKUP_REVAL) and opens what is there now.
    pub async fn opendir(&self, ino: u64) -> OpResult<u64> {
        let dir = self.handle(ino)?;
        let fresh = (!self.settings.cto)
            .then(|| self.attrs.fresh(ino, Instant::now()))
            .flatten();
        if fresh.is_none() {
            let attributes = self.client.getattr(&dir).await?;
            self.attr(ino, &attributes);
        }
        Ok(self.handles.insert_listing(self.client.readdirplus(&dir)))
    }

    /// READDIR from position `offset` of listing `fh` of directory `ino`.
    pub async fn readdir(&self, ino: u64, fh: u64, offset: u64, mut reply: ReplyDirectory) {
        let Some(listing) = self.handles.listing(fh) else {
            return reply.error(Errno(libc::EBADF).fuse());
        };
        let mut listing = listing.lock().await;
        let mut position = offset;
        loop {
            if position < DOTS {
                let name = dot_name(position);
                if reply.add(fuser::INodeNo(ino), position + 1, FuseType::Directory, name) {
                    break;
                }
                position += 1;
                continue;
            }
            let index = (position - DOTS) as usize;
            let entry = match entry_at(self, ino, &mut listing, index).await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(errno) => return reply.error(errno.fuse()),
            };
            let node = entry
                .handle
                .as_ref()
                .and_then(|handle| self.inodes().peek(handle))
                .unwrap_or(entry.fileid);
            let kind = entry
                .attributes
                .as_ref()
                .map_or(FuseType::RegularFile, |a| fuse_type(a.file_type));
            let name = OsStr::from_bytes(&entry.name);
            if reply.add(fuser::INodeNo(node), position + 1, kind, name) {
                break;
            }
            position += 1;
        }
        reply.ok();
    }

    /// READDIRPLUS from position `offset` of listing `fh` of directory `ino`.
    pub async fn readdirplus(&self, ino: u64, fh: u64, offset: u64, mut reply: ReplyDirectoryPlus) {
        let Some(listing) = self.handles.listing(fh) else {
            return reply.error(Errno(libc::EBADF).fuse());
        };
        let mut listing = listing.lock().await;
        let ttl = self.settings.ttl();
        let mut position = offset;
        loop {
            if position < DOTS {
                let attr = placeholder(ino, FuseType::Directory);
                let name = dot_name(position);
                if reply.add(
                    fuser::INodeNo(ino),
                    position + 1,
                    name,
                    &ttl,
                    &attr,
                    Generation(0),
                ) {
                    break;
                }
                position += 1;
                continue;
            }
            let index = (position - DOTS) as usize;
            let entry = match entry_at(self, ino, &mut listing, index).await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(errno) => return reply.error(errno.fuse()),
            };
            let entry = match self.complete(ino, entry).await {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    position += 1;
                    continue;
                }
                Err(errno) => return reply.error(errno.fuse()),
            };
            let name = OsStr::from_bytes(&entry.name);
            let mut inodes = self.inodes();
            let (Some(handle), Some(attributes)) = (&entry.handle, &entry.attributes) else {
                position += 1;
                continue;
            };
            let node = inodes.prospective(handle);
            let attr = self.attr(node, attributes);
            if reply.add(
                fuser::INodeNo(node),
                position + 1,
                name,
                &ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
            inodes.remember(handle);
            position += 1;
        }
        reply.ok();
    }

    /// The entry with its handle and attributes (a LOOKUP when the server left them out);
    /// None for an entry that vanished or whose name is not UTF-8 (the client cannot look
    /// it up).
    async fn complete(&self, dir_ino: u64, mut entry: DirEntry) -> OpResult<Option<DirEntry>> {
        if entry.handle.is_some() && entry.attributes.is_some() {
            return Ok(Some(entry));
        }
        let Ok(name) = std::str::from_utf8(&entry.name) else {
            tracing::debug!(name = ?entry.name, "listing entry without a handle, not UTF-8: left out");
            return Ok(None);
        };
        let dir = self.handle(dir_ino)?;
        let found = match self.client.lookup(&dir, name).await {
            Ok(found) => found,
            Err(error) if error.errno() == libc::ENOENT => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let attributes = self
            .attributes_of(&found.object, found.obj_attributes)
            .await?;
        entry.handle = Some(found.object);
        entry.attributes = Some(attributes);
        Ok(Some(entry))
    }

    /// RELEASEDIR: drops the listing.
    pub fn releasedir(&self, fh: u64) {
        self.handles.remove_listing(fh);
    }
}
