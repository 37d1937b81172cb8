//! Directory listing as a stream of READDIRPLUS entries.
//!
//! A directory can hold millions of names, so a listing is read page by page as the caller
//! consumes it (like `tokio::fs::ReadDir`), carrying the cookie and cookie verifier from one
//! READDIRPLUS to the next. `.` and `..` are skipped, as `std::fs::read_dir` does.

use std::collections::VecDeque;

use bytes::Bytes;
use nfsio_proto::nfs3::{CookieVerifier, EntryPlus, Fattr, FileHandle, ReaddirplusArgs};

use crate::client::Client;
use crate::error::{NfsError, NfsResult};

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

/// A directory being listed; see [`Client::readdirplus`].
pub struct ReadDir {
    client: Client,
    dir: FileHandle,
    cookie: u64,
    cookieverf: CookieVerifier,
    pending: VecDeque<EntryPlus>,
    eof: bool,
}

/// Bytes of directory information asked for per READDIRPLUS when FSINFO gave no preference.
const DEFAULT_DIRCOUNT_BYTES: u32 = 8192;

impl ReadDir {
    pub(crate) fn new(client: Client, dir: FileHandle) -> Self {
        Self {
            client,
            dir,
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
            let dircount = self
                .client
                .fs_info()
                .map(|f| f.dtpref)
                .filter(|&d| d > 0)
                .unwrap_or(DEFAULT_DIRCOUNT_BYTES);
            let maxcount =
                (dircount.saturating_mul(8)).min(self.client.rsize_bytes().max(dircount));
            let page = self
                .client
                .readdirplus_page(&ReaddirplusArgs {
                    dir: self.dir.clone(),
                    cookie: self.cookie,
                    cookieverf: self.cookieverf,
                    dircount,
                    maxcount,
                })
                .await?;
            self.cookieverf = page.cookieverf;
            self.eof = page.eof;
            if page.entries.is_empty() && !page.eof {
                return Err(NfsError::Protocol(
                    "READDIRPLUS returned no entries and no end of directory".into(),
                ));
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
