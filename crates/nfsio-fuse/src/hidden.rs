//! The table of hidden names (silly rename): which open files were renamed to `.nfs` names
//! and by whom. Kept apart from `silly.rs`, which does the renaming, so that the open-file
//! table (`handles.rs`) can own it without depending on the operations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use nfsio_client::Client;
use nfsio_client::proto::nfs3::FileHandle;

/// A hidden name a file was renamed to: its directory and the name, and the client acting
/// as the caller whose unlink hid it (its REMOVE acts as them, as Linux's does).
#[derive(Clone)]
pub(crate) struct Hidden {
    pub(crate) dir: FileHandle,
    pub(crate) name: String,
    pub(crate) by: Client,
}

/// The files renamed away while open, by node id.
#[derive(Default)]
pub struct SillyTable {
    hidden: Mutex<HashMap<u64, Vec<Hidden>>>,
    counter: AtomicU32,
}

impl SillyTable {
    pub(crate) fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Hidden>>> {
        self.hidden
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh hidden name for the file `fileid`.
    pub(crate) fn name_for(&self, fileid: u64) -> String {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(".nfs{fileid:016x}{count:08x}")
    }

    pub(crate) fn is_hidden(&self, dir: &FileHandle, name: &[u8]) -> bool {
        self.locked()
            .values()
            .flatten()
            .any(|hidden| hidden.dir == *dir && hidden.name.as_bytes() == name)
    }

    /// Names hidden for node `ino`.
    pub fn len_of(&self, ino: u64) -> usize {
        self.locked().get(&ino).map_or(0, Vec::len)
    }
}
