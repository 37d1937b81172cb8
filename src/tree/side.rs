//! One side of a tree copy, local or on an export: the few operations a copy needs, on
//! directories held open (a local path, an NFS handle), so that a tree of thousands of files
//! is not resolved path by path.
//!
//! Names are bytes on both sides (a local name that is not UTF-8 keeps its bytes).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use nfsio_client::proto::nfs3::{Fattr, FileHandle, FileType, Nfs3Status, NfsTime, Sattr, SetTime};
use nfsio_client::{Client, NfsError};

use crate::report::Failure;

/// What an entry is, as far as a copy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    /// FIFOs, sockets, devices: not copied (as `cp -r` without `--special`, it says so).
    Other,
}

/// A time as seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Stamp {
    pub seconds: i64,
    pub nanos: u32,
}

/// An entry of a directory with the attributes a copy uses.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub size_bytes: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub atime: Stamp,
    pub mtime: Stamp,
    /// The handle and attributes of an NFS entry (None for a local one).
    pub nfs: Option<(FileHandle, Fattr)>,
}

/// A directory on one side, held open.
#[derive(Debug, Clone)]
pub(crate) enum Dir {
    Local(PathBuf),
    Nfs { handle: FileHandle, path: String },
}

impl Dir {
    /// How the entry `name` of this directory is shown in messages.
    pub(crate) fn show(&self, name: &[u8]) -> String {
        let name = String::from_utf8_lossy(name);
        match self {
            Dir::Local(path) => path.join(&*name).display().to_string(),
            Dir::Nfs { path, .. } => format!("{}/{name}", path.trim_end_matches('/')),
        }
    }

    /// The local path of the entry `name` (local directories only).
    pub(crate) fn local_path(&self, name: &[u8]) -> Option<PathBuf> {
        match self {
            Dir::Local(path) => Some(path.join(OsStr::from_bytes(name))),
            Dir::Nfs { .. } => None,
        }
    }
}

/// A side: this machine, or an export reached through `client`.
#[derive(Clone)]
pub(crate) enum Side {
    Local,
    Nfs(Client),
}

fn stamp(t: NfsTime) -> Stamp {
    Stamp {
        seconds: i64::from(t.seconds),
        nanos: t.nseconds,
    }
}

fn nfs_time(s: Stamp) -> NfsTime {
    NfsTime {
        seconds: u32::try_from(s.seconds.max(0)).unwrap_or(u32::MAX),
        nseconds: s.nanos,
    }
}

/// The node of an NFS object called `name`.
pub(crate) fn nfs_node(name: Vec<u8>, handle: FileHandle, attributes: Fattr) -> Node {
    let kind = match attributes.file_type {
        FileType::Directory => Kind::Dir,
        FileType::Regular => Kind::File,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    };
    Node {
        name,
        kind,
        size_bytes: attributes.size,
        mode: attributes.mode & 0o7777,
        atime: stamp(attributes.atime),
        mtime: stamp(attributes.mtime),
        nfs: Some((handle, attributes)),
    }
}

/// The node of a local object called `name`, from its metadata (links not followed).
pub(crate) fn local_node(name: Vec<u8>, meta: &std::fs::Metadata) -> Node {
    let file_type = meta.file_type();
    let kind = if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else if file_type.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    Node {
        name,
        kind,
        size_bytes: meta.len(),
        mode: meta.mode() & 0o7777,
        atime: Stamp {
            seconds: meta.atime(),
            nanos: u32::try_from(meta.atime_nsec()).unwrap_or(0),
        },
        mtime: Stamp {
            seconds: meta.mtime(),
            nanos: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        },
        nfs: None,
    }
}

/// LOOKUP of `name` in `dir`, with the object's attributes (GETATTR if the reply had none).
pub(crate) async fn nfs_lookup(
    client: &Client,
    dir: &FileHandle,
    name: &[u8],
) -> Result<(FileHandle, Fattr), NfsError> {
    let found = client.lookup(dir, name).await?;
    let attributes = match found.obj_attributes {
        Some(attributes) => attributes,
        None => client.getattr(&found.object).await?,
    };
    Ok((found.object, attributes))
}

fn exists(e: &NfsError) -> bool {
    e.status() == Some(Nfs3Status::Exist)
}

impl Side {
    /// The entries of `dir` (without `.` and `..`).
    pub(crate) async fn list(&self, dir: &Dir) -> Result<Vec<Node>, Failure> {
        match (self, dir) {
            (Side::Local, Dir::Local(path)) => {
                let text = path.display().to_string();
                let mut nodes = Vec::new();
                for entry in std::fs::read_dir(path).map_err(|e| Failure::io(&text, e))? {
                    let entry = entry.map_err(|e| Failure::io(&text, e))?;
                    let name = entry.file_name().as_bytes().to_vec();
                    let meta = std::fs::symlink_metadata(entry.path())
                        .map_err(|e| Failure::io(&entry.path().display().to_string(), e))?;
                    nodes.push(local_node(name, &meta));
                }
                Ok(nodes)
            }
            (Side::Nfs(client), Dir::Nfs { handle, path }) => {
                let entries = client
                    .readdirplus(handle)
                    .collect_all()
                    .await
                    .map_err(|e| Failure::nfs(path, e))?;
                let mut nodes = Vec::new();
                for entry in entries {
                    let name = entry.name.to_vec();
                    if name == b"." || name == b".." {
                        continue;
                    }
                    let (handle, attributes) = match (entry.handle, entry.attributes) {
                        (Some(h), Some(a)) => (h, a),
                        _ => nfs_lookup(client, handle, &name)
                            .await
                            .map_err(|e| Failure::nfs(&dir.show(&name), e))?,
                    };
                    nodes.push(nfs_node(name, handle, attributes));
                }
                Ok(nodes)
            }
            _ => Err(Failure::message(
                "internal: a directory of the other side".into(),
            )),
        }
    }

    /// The entry `name` of `dir`, if there is one.
    pub(crate) async fn lookup(&self, dir: &Dir, name: &[u8]) -> Result<Option<Node>, Failure> {
        match (self, dir) {
            (Side::Nfs(client), Dir::Nfs { handle, .. }) => {
                match nfs_lookup(client, handle, name).await {
                    Ok((handle, attributes)) => {
                        Ok(Some(nfs_node(name.to_vec(), handle, attributes)))
                    }
                    Err(e) if e.status() == Some(Nfs3Status::NoEnt) => Ok(None),
                    Err(e) => Err(Failure::nfs(&dir.show(name), e)),
                }
            }
            _ => {
                let path = dir.local_path(name).unwrap_or_default();
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) => Ok(Some(local_node(name.to_vec(), &meta))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Failure::io(&path.display().to_string(), e)),
                }
            }
        }
    }

    /// Makes the directory `name` in `dir` with `mode` (an existing directory is used as it
    /// is); returns it and whether it existed.
    pub(crate) async fn make_dir(
        &self,
        dir: &Dir,
        name: &[u8],
        mode: u32,
    ) -> Result<(Dir, bool), Failure> {
        let shown = dir.show(name);
        match (self, dir) {
            (Side::Nfs(client), Dir::Nfs { handle, .. }) => {
                let attributes = Sattr {
                    mode: Some(mode),
                    ..Sattr::default()
                };
                let existed = match client.mkdir(handle, name, attributes).await {
                    Ok(created) => return Ok((nfs_dir(created.handle, shown), false)),
                    Err(e) if exists(&e) => true,
                    Err(e) => return Err(Failure::nfs(&shown, e)),
                };
                let (found, attributes) = nfs_lookup(client, handle, name)
                    .await
                    .map_err(|e| Failure::nfs(&shown, e))?;
                if attributes.file_type != FileType::Directory {
                    return Err(Failure::message(format!(
                        "{shown}: exists and is not a directory (ENOTDIR)"
                    )));
                }
                Ok((nfs_dir(found, shown), existed))
            }
            _ => {
                let path = dir.local_path(name).unwrap_or_default();
                let made = std::fs::DirBuilder::new()
                    .mode(mode)
                    .create(&path)
                    .map(|()| false);
                match made {
                    Ok(existed) => Ok((Dir::Local(path), existed)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {
                        Ok((Dir::Local(path), true))
                    }
                    Err(e) => Err(Failure::io(&shown, e)),
                }
            }
        }
    }

    /// Makes the symbolic link `name` in `dir` pointing at `target`, replacing an entry of
    /// that name that is not a directory.
    pub(crate) async fn make_symlink(
        &self,
        dir: &Dir,
        name: &[u8],
        target: &[u8],
    ) -> Result<(), Failure> {
        let shown = dir.show(name);
        match (self, dir) {
            (Side::Nfs(client), Dir::Nfs { handle, .. }) => {
                let attempt = client.symlink(handle, name, target, Sattr::default()).await;
                match attempt {
                    Err(e) if exists(&e) => {
                        client
                            .remove(handle, name)
                            .await
                            .map_err(|e| Failure::nfs(&shown, e))?;
                        client
                            .symlink(handle, name, target, Sattr::default())
                            .await
                            .map(drop)
                            .map_err(|e| Failure::nfs(&shown, e))
                    }
                    other => other.map(drop).map_err(|e| Failure::nfs(&shown, e)),
                }
            }
            _ => {
                let path = dir.local_path(name).unwrap_or_default();
                let target = OsStr::from_bytes(target);
                match std::os::unix::fs::symlink(target, &path) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::remove_file(&path).map_err(|e| Failure::io(&shown, e))?;
                        std::os::unix::fs::symlink(target, &path)
                            .map_err(|e| Failure::io(&shown, e))
                    }
                    other => other.map_err(|e| Failure::io(&shown, e)),
                }
            }
        }
    }

    /// The target of the symbolic link `node` in `dir`.
    pub(crate) async fn read_link(&self, dir: &Dir, node: &Node) -> Result<Vec<u8>, Failure> {
        let shown = dir.show(&node.name);
        match (self, &node.nfs) {
            (Side::Nfs(client), Some((handle, _))) => client
                .readlink(handle)
                .await
                .map(|b| b.to_vec())
                .map_err(|e| Failure::nfs(&shown, e)),
            _ => {
                let path = dir.local_path(&node.name).unwrap_or_default();
                std::fs::read_link(&path)
                    .map(|t| t.as_os_str().as_bytes().to_vec())
                    .map_err(|e| Failure::io(&shown, e))
            }
        }
    }

    /// Renames `from` to `to`, both in `dir` (replacing `to`).
    pub(crate) async fn rename(&self, dir: &Dir, from: &[u8], to: &[u8]) -> Result<(), Failure> {
        let shown = dir.show(to);
        match (self, dir) {
            (Side::Nfs(client), Dir::Nfs { handle, .. }) => client
                .rename(handle, from, handle, to)
                .await
                .map(drop)
                .map_err(|e| Failure::nfs(&shown, e)),
            _ => {
                let (a, b) = (dir.local_path(from), dir.local_path(to));
                std::fs::rename(a.unwrap_or_default(), b.unwrap_or_default())
                    .map_err(|e| Failure::io(&shown, e))
            }
        }
    }

    /// Removes the file `name` of `dir`; a missing one is not an error.
    pub(crate) async fn remove(&self, dir: &Dir, name: &[u8]) {
        match (self, dir) {
            (Side::Nfs(client), Dir::Nfs { handle, .. }) => {
                let _ = client.remove(handle, name).await;
            }
            _ => {
                let _ = std::fs::remove_file(dir.local_path(name).unwrap_or_default());
            }
        }
    }

    /// Gives the entry `name` of `dir` (a file or a directory) `mode` and the times of
    /// `from` (`-p`).
    pub(crate) async fn preserve(
        &self,
        dir: &Dir,
        name: &[u8],
        handle: Option<&FileHandle>,
        from: &Node,
    ) -> Result<(), Failure> {
        let shown = dir.show(name);
        match (self, handle) {
            (Side::Nfs(client), Some(handle)) => {
                let attributes = Sattr {
                    mode: Some(from.mode),
                    atime: SetTime::ClientTime(nfs_time(from.atime)),
                    mtime: SetTime::ClientTime(nfs_time(from.mtime)),
                    ..Sattr::default()
                };
                client
                    .setattr(handle, attributes, None)
                    .await
                    .map(drop)
                    .map_err(|e| Failure::nfs(&shown, e))
            }
            _ => {
                let path = dir.local_path(name).unwrap_or_default();
                let io = |e| Failure::io(&shown, e);
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(from.mode))
                    .map_err(io)?;
                let file = std::fs::File::open(&path).map_err(io)?;
                let times = std::fs::FileTimes::new()
                    .set_accessed(system_time(from.atime))
                    .set_modified(system_time(from.mtime));
                file.set_times(times).map_err(io)
            }
        }
    }
}

fn nfs_dir(handle: FileHandle, path: String) -> Dir {
    Dir::Nfs { handle, path }
}

fn system_time(s: Stamp) -> std::time::SystemTime {
    let since = std::time::Duration::new(s.seconds.unsigned_abs(), s.nanos);
    if s.seconds >= 0 {
        std::time::UNIX_EPOCH + since
    } else {
        std::time::UNIX_EPOCH - since
    }
}
