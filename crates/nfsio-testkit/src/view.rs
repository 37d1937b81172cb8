//! What a server's storage holds, read and changed behind the NFS server's back: a
//! directory on disk (the export of `nfsio serve`, of nfs-ganesha, of a local store) or a
//! memory store. The contract suites seed files and check results through it, so that one
//! test body asks "what is on the server now" of every implementation alike.
//!
//! Paths are `/`-separated and relative to the export's root; "" is the root. Every method
//! panics (with the path) on what a test did not expect, e.g. a missing file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use nfsio_proto::nfs3::{CookieVerifier, FileType, Sattr, StableHow};
use nfsio_server::{Caller, CreateMode, FileId, MemStore, Storage};

/// A server's storage, seen from behind the server (as root).
pub trait StoreView {
    /// Writes a regular file `path` with `data` (replacing one that exists).
    fn put_file(&self, path: &str, data: &[u8]);
    /// Makes the directory `path` (its parent must exist).
    fn put_dir(&self, path: &str);
    /// Makes a symbolic link `path` to `target`.
    fn put_symlink(&self, path: &str, target: &str);
    /// Sets the permission bits of `path`.
    fn set_mode(&self, path: &str, mode: u32);
    /// Renames `from` to `to`.
    fn rename(&self, from: &str, to: &str);
    /// The content of the regular file `path` as a READ would see it now; `None` when
    /// nothing is there.
    fn content(&self, path: &str) -> Option<Vec<u8>>;
    /// Whether anything is at `path` (a symbolic link is not followed).
    fn exists(&self, path: &str) -> bool;
    /// The type of `path` (a symbolic link is not followed).
    fn file_type(&self, path: &str) -> FileType;
    /// The permission bits (`mode & 0o7777`) of `path`.
    fn mode(&self, path: &str) -> u32;
    /// The owner and group of `path`.
    fn owner(&self, path: &str) -> (u32, u32);
    /// The target of the symbolic link `path`.
    fn link_target(&self, path: &str) -> Vec<u8>;
    /// The names in the directory `dir`, sorted, without `.` and `..`.
    fn names(&self, dir: &str) -> Vec<String>;
}

/// A directory on this machine's disk.
impl StoreView for PathBuf {
    fn put_file(&self, path: &str, data: &[u8]) {
        std::fs::write(self.join(path), data).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    fn put_dir(&self, path: &str) {
        std::fs::create_dir(self.join(path)).unwrap_or_else(|e| panic!("mkdir {path}: {e}"));
    }

    fn put_symlink(&self, path: &str, target: &str) {
        std::os::unix::fs::symlink(target, self.join(path))
            .unwrap_or_else(|e| panic!("symlink {path}: {e}"));
    }

    fn set_mode(&self, path: &str, mode: u32) {
        std::fs::set_permissions(self.join(path), std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {path}: {e}"));
    }

    fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.join(from), self.join(to))
            .unwrap_or_else(|e| panic!("rename {from} {to}: {e}"));
    }

    fn content(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.join(path)).ok()
    }

    fn exists(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.join(path)).is_ok()
    }

    fn file_type(&self, path: &str) -> FileType {
        use std::os::unix::fs::FileTypeExt;
        let kind = metadata(self, path).file_type();
        if kind.is_file() {
            FileType::Regular
        } else if kind.is_dir() {
            FileType::Directory
        } else if kind.is_symlink() {
            FileType::Symlink
        } else if kind.is_fifo() {
            FileType::Fifo
        } else if kind.is_socket() {
            FileType::Socket
        } else if kind.is_block_device() {
            FileType::Block
        } else {
            FileType::Character
        }
    }

    fn mode(&self, path: &str) -> u32 {
        metadata(self, path).mode() & 0o7777
    }

    fn owner(&self, path: &str) -> (u32, u32) {
        let meta = metadata(self, path);
        (meta.uid(), meta.gid())
    }

    fn link_target(&self, path: &str) -> Vec<u8> {
        std::fs::read_link(self.join(path))
            .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
            .into_os_string()
            .into_encoded_bytes()
    }

    fn names(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.join(dir))
            .unwrap_or_else(|e| panic!("list {dir}: {e}"))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn metadata(dir: &Path, path: &str) -> std::fs::Metadata {
    std::fs::symlink_metadata(dir.join(path)).unwrap_or_else(|e| panic!("stat {path}: {e}"))
}

/// The parent's id and the last name of `path` in `store`.
fn parent_of<'a>(store: &MemStore, path: &'a str) -> (FileId, &'a str) {
    let path = path.trim_matches('/');
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    (id_of(store, dir), name)
}

fn id_of(store: &MemStore, path: &str) -> FileId {
    store
        .lookup_path(path)
        .unwrap_or_else(|e| panic!("lookup {path:?}: {e:?}"))
}

/// The in-memory store.
impl StoreView for MemStore {
    fn put_file(&self, path: &str, data: &[u8]) {
        let (dir, name) = parent_of(self, path);
        let truncate = Sattr {
            size: Some(0),
            ..Sattr::default()
        };
        let id = self
            .create(
                &Caller::root(),
                dir,
                name.as_bytes(),
                CreateMode::Unchecked(&truncate),
            )
            .unwrap_or_else(|e| panic!("create {path}: {e:?}"))
            .id;
        let written = self
            .write(
                &Caller::root(),
                id,
                0,
                &Bytes::copy_from_slice(data),
                StableHow::FileSync,
            )
            .unwrap_or_else(|e| panic!("write {path}: {e:?}"));
        assert_eq!(written.count as usize, data.len(), "write {path}");
    }

    fn put_dir(&self, path: &str) {
        let (dir, name) = parent_of(self, path);
        self.mkdir(&Caller::root(), dir, name.as_bytes(), &Sattr::default())
            .unwrap_or_else(|e| panic!("mkdir {path}: {e:?}"));
    }

    fn put_symlink(&self, path: &str, target: &str) {
        let (dir, name) = parent_of(self, path);
        self.symlink(
            &Caller::root(),
            dir,
            name.as_bytes(),
            target.as_bytes(),
            &Sattr::default(),
        )
        .unwrap_or_else(|e| panic!("symlink {path}: {e:?}"));
    }

    fn set_mode(&self, path: &str, mode: u32) {
        let mode = Sattr {
            mode: Some(mode),
            ..Sattr::default()
        };
        self.setattr(&Caller::root(), id_of(self, path), &mode, None)
            .unwrap_or_else(|e| panic!("chmod {path}: {e:?}"));
    }

    fn rename(&self, from: &str, to: &str) {
        let (from_dir, from_name) = parent_of(self, from);
        let (to_dir, to_name) = parent_of(self, to);
        Storage::rename(
            self,
            &Caller::root(),
            from_dir,
            from_name.as_bytes(),
            to_dir,
            to_name.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("rename {from} {to}: {e:?}"));
    }

    fn content(&self, path: &str) -> Option<Vec<u8>> {
        MemStore::content(self, self.lookup_path(path).ok()?)
    }

    fn exists(&self, path: &str) -> bool {
        self.lookup_path(path).is_ok()
    }

    fn file_type(&self, path: &str) -> FileType {
        self.getattr(id_of(self, path))
            .unwrap_or_else(|e| panic!("getattr {path}: {e:?}"))
            .file_type
    }

    fn mode(&self, path: &str) -> u32 {
        self.getattr(id_of(self, path))
            .unwrap_or_else(|e| panic!("getattr {path}: {e:?}"))
            .mode
            & 0o7777
    }

    fn owner(&self, path: &str) -> (u32, u32) {
        let attr = self
            .getattr(id_of(self, path))
            .unwrap_or_else(|e| panic!("getattr {path}: {e:?}"));
        (attr.uid, attr.gid)
    }

    fn link_target(&self, path: &str) -> Vec<u8> {
        self.readlink(id_of(self, path))
            .unwrap_or_else(|e| panic!("readlink {path}: {e:?}"))
            .0
            .to_vec()
    }

    fn names(&self, dir: &str) -> Vec<String> {
        let page = self
            .readdir(
                &Caller::root(),
                id_of(self, dir),
                0,
                CookieVerifier::default(),
                usize::MAX,
                false,
            )
            .unwrap_or_else(|e| panic!("list {dir}: {e:?}"));
        assert!(page.eof, "the whole of {dir} in one page");
        let mut names: Vec<String> = page
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .filter(|name| name != "." && name != "..")
            .collect();
        names.sort();
        names
    }
}
