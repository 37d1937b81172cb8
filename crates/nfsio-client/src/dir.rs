//! Directory listing as a stream of READDIRPLUS entries.
//!
//! A directory can hold millions of names, so a listing is read page by page as the caller
//! consumes it (like `tokio::fs::ReadDir`), carrying the cookie and cookie verifier from one
//! READDIRPLUS to the next. `.` and `..` are skipped, as `std::fs::read_dir` does.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use nfsio_proto::nfs3::{CookieVerifier, EntryPlus, Fattr, FileHandle, ReaddirplusArgs};

use crate::error::{NfsResult, ProtocolViolation};
use crate::jukebox::Jukebox;
use crate::procedures::Procedures;

/// One directory entry.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The entry's name as the server sent it (file names are bytes in NFS).
    pub name: Bytes,
    /// The file id (inode number).
    pub fileid: u64,
    /// The cookie to resume a listing after this entry.
    pub cookie: u64,
    /// Attributes, when the server sent them.
    pub attributes: Option<Fattr>,
    /// The file handle, when the server sent it.
    pub handle: Option<FileHandle>,
}

impl DirEntry {
    /// The name as text (invalid UTF-8 replaced).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A directory being listed; see [`Client::readdirplus`](crate::Client::readdirplus).
pub struct ReadDir {
    nfs: Arc<Procedures>,
    jukebox: Jukebox,
    dir: FileHandle,
    /// Bytes of directory information asked for per page (READDIRPLUS's `dircount`).
    dircount_bytes: u32,
    /// Largest reply asked for per page (`maxcount`).
    maxcount_bytes: u32,
    cookie: u64,
    cookieverf: CookieVerifier,
    pending: VecDeque<EntryPlus>,
    eof: bool,
}

/// Bytes of directory information asked for per READDIRPLUS when FSINFO gave no preference.
const DEFAULT_DIRCOUNT_BYTES: u32 = 8192;

impl ReadDir {
    /// A listing of `dir` in pages sized from FSINFO's `dtpref` (0: no preference) within
    /// the mount's READ size.
    pub(crate) fn new(
        nfs: Arc<Procedures>,
        jukebox: Jukebox,
        dir: FileHandle,
        dtpref_bytes: u32,
        rsize_bytes: u32,
    ) -> Self {
        let dircount_bytes = match dtpref_bytes {
            0 => DEFAULT_DIRCOUNT_BYTES,
            dtpref => dtpref,
        };
        let maxcount_bytes = dircount_bytes
            .saturating_mul(8)
            .min(rsize_bytes.max(dircount_bytes));
        Self {
            nfs,
            jukebox,
            dir,
            dircount_bytes,
            maxcount_bytes,
            cookie: 0,
            cookieverf: CookieVerifier::default(),
            pending: VecDeque::new(),
            eof: false,
        }
    }

    /// The next entry, or None at the end of the directory.
    pub async fn next_entry(&mut self) -> NfsResult<Option<DirEntry>> {
        loop {
            while let Some(entry) = self.pending.pop_front() {
                self.cookie = entry.cookie;
                if &entry.name[..] == b"." || &entry.name[..] == b".." {
                    continue;
                }
                return Ok(Some(DirEntry {
                    name: entry.name,
                    fileid: entry.fileid,
                    cookie: entry.cookie,
                    attributes: entry.name_attributes,
                    handle: entry.name_handle,
                }));
            }
            if self.eof {
                return Ok(None);
            }
            let args = ReaddirplusArgs {
                dir: self.dir.clone(),
                cookie: self.cookie,
                cookieverf: self.cookieverf,
                dircount: self.dircount_bytes,
                maxcount: self.maxcount_bytes,
            };
            let page = self.jukebox.retry(|| self.nfs.readdirplus(&args)).await?;
            self.cookieverf = page.cookieverf;
            self.eof = page.eof;
            if page.entries.is_empty() && !page.eof {
                return Err(ProtocolViolation::ReaddirWithoutProgress.into());
            }
            self.pending.extend(page.entries);
        }
    }

    /// Reads the rest of the listing into a vector.
    pub async fn collect_all(mut self) -> NfsResult<Vec<DirEntry>> {
        let mut entries = Vec::new();
        while let Some(entry) = self.next_entry().await? {
            entries.push(entry);
        }
        Ok(entries)
    }
}
