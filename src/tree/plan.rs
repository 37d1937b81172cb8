//! What a tree copy will do, decided before it writes anything: where each source goes (into
//! an existing directory under its own name, or as the destination itself), every directory
//! to make (parents first), and every file and link to copy, with the sizes for the progress
//! bar.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nfsio_client::proto::nfs3::FileType;

use super::side::{Dir, Kind, Node, Side, local_node, nfs_node};
use crate::copy::CpArgs;
use crate::operand::Operand;
use crate::report::Failure;

/// Where a destination entry goes: a directory that existed before the copy, or one the copy
/// makes (by its index in [`Plan::dirs`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Parent {
    Top(usize),
    Made(usize),
}

/// A directory to make on the destination.
pub(crate) struct PlannedDir {
    node: Node,
    parent: Parent,
    name: Vec<u8>,
}

/// A file or link to copy.
pub(crate) struct Target {
    /// Which source argument it comes from (its side).
    pub source: usize,
    /// The source directory holding it.
    pub src_dir: Dir,
    pub node: Node,
    pub parent: Parent,
    pub name: Vec<u8>,
}

/// The whole copy.
pub(crate) struct Plan {
    sources: Vec<Side>,
    pub dst_side: Side,
    top: Vec<Dir>,
    dirs: Vec<PlannedDir>,
    pub targets: Vec<Target>,
}

/// The destination as given: its side, the directory holding it and its name, and itself
/// when it is an existing directory.
struct Destination {
    side: Side,
    parent: Dir,
    name: Vec<u8>,
    into: Option<Dir>,
}

/// The last component of a local path and the directory holding it (`.` and `/` resolved).
fn split_local(path: &Path) -> Result<(Dir, Vec<u8>), Failure> {
    let text = path.to_string_lossy();
    let mut path = path.to_path_buf();
    if path.file_name().is_none() {
        path = path.canonicalize().map_err(|e| Failure::io(&text, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .ok_or_else(|| Failure::message(format!("{text}: cannot copy the root itself")))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((Dir::Local(parent), name))
}

/// The refusal of `-`: standard input or output has no name to copy a tree or several
/// files under.
fn refuse_std() -> Failure {
    Failure::message(
        "-: standard input or output cannot be copied with -r, -p, -n, -u or several sources"
            .into(),
    )
}

/// The URL of the directory holding what `url` names, for messages.
fn parent_url(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    match path.rfind('/') {
        Some(at) => path[..at].to_owned(),
        None => path.to_owned(),
    }
}

async fn destination(operand: &Operand) -> Result<Destination, Failure> {
    let text = match operand {
        Operand::Std => return Err(refuse_std()),
        Operand::Url(url) => url,
        Operand::Local(path) => {
            let (parent, name) = split_local(path)?;
            let into = std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_dir())
                .map(|_| Dir::Local(path.to_path_buf()));
            return Ok(Destination {
                side: Side::Local,
                parent,
                name,
                into,
            });
        }
    };
    let client = crate::connect(text).await?;
    let path = client.url_path().to_owned();
    let shown = text.split('?').next().unwrap_or(text).to_owned();
    let into = match client.lookup_path(&path).await {
        Ok((handle, attributes)) if attributes.file_type == FileType::Directory => Some(Dir::Nfs {
            handle,
            path: shown.trim_end_matches('/').to_owned(),
        }),
        _ => None,
    };
    let (parent, name) = if into.is_some() && crate::bytepath::trim_slashes(&path).is_empty() {
        // The export's root: never replaced, only copied into.
        (client.root().clone(), b".".to_vec())
    } else {
        let (handle, name) = client
            .lookup_parent(&path)
            .await
            .map_err(|e| Failure::nfs(text, e))?;
        (handle, name.to_vec())
    };
    Ok(Destination {
        side: Side::Nfs(client),
        parent: Dir::Nfs {
            handle: parent,
            path: parent_url(&shown),
        },
        name,
        into,
    })
}

/// A source argument: its side, the directory holding it, and what it is.
async fn source(operand: &Operand, follow: bool) -> Result<(Side, Dir, Node), Failure> {
    let text = match operand {
        Operand::Std => return Err(refuse_std()),
        Operand::Url(url) => url,
        Operand::Local(path) => {
            let (parent, name) = split_local(path)?;
            let meta = if follow {
                std::fs::metadata(path)
            } else {
                std::fs::symlink_metadata(path)
            }
            .map_err(|e| Failure::io(&operand.shown(), e))?;
            return Ok((Side::Local, parent, local_node(name, &meta)));
        }
    };
    let client = crate::connect(text).await?;
    let path = client.url_path().to_owned();
    let (handle, attributes) = client
        .lookup_path(&path)
        .await
        .map_err(|e| Failure::nfs(text, e))?;
    let shown = text.split('?').next().unwrap_or(text);
    // The name as the server has it (`d%20x` is `d x`); the export's root is copied under
    // the export's name as written.
    let name = match crate::bytepath::base_name(&path) {
        [] => shown
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(shown)
            .as_bytes()
            .to_vec(),
        name => name.to_vec(),
    };
    let parent = Dir::Nfs {
        handle: client.root().clone(),
        path: parent_url(shown),
    };
    Ok((
        Side::Nfs(client),
        parent,
        nfs_node(name, handle, attributes),
    ))
}

/// The directory a listed directory node is, on its side.
fn dir_of(parent: &Dir, node: &Node) -> Dir {
    match (parent, &node.nfs) {
        (Dir::Nfs { .. }, Some((handle, _))) => Dir::Nfs {
            handle: handle.clone(),
            path: parent.show(&node.name),
        },
        _ => Dir::Local(parent.local_path(&node.name).unwrap_or_default()),
    }
}

impl Plan {
    /// Resolves the arguments and walks the sources. Returns the plan and how many sources
    /// were refused (each reported on its own line).
    pub(crate) async fn make(args: &CpArgs, operands: &[Operand]) -> Result<(Plan, u64), Failure> {
        let Some((dst_operand, srcs)) = operands.split_last() else {
            return Err(Failure::message(
                "cp needs a source and a destination".into(),
            ));
        };
        let dst = destination(dst_operand).await?;
        if srcs.len() > 1 && dst.into.is_none() {
            return Err(Failure::message(format!(
                "{}: target is not a directory (ENOTDIR)",
                dst_operand.shown()
            )));
        }
        let mut plan = Plan {
            sources: Vec::new(),
            dst_side: dst.side.clone(),
            top: Vec::new(),
            dirs: Vec::new(),
            targets: Vec::new(),
        };
        let mut refused = 0;
        for operand in srcs {
            match plan.add_source(operand, &dst, args.recursive).await {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("nfsio: {e}");
                    refused += 1;
                }
            }
        }
        Ok((plan, refused))
    }

    async fn add_source(
        &mut self,
        operand: &Operand,
        dst: &Destination,
        recursive: bool,
    ) -> Result<(), Failure> {
        let (side, parent, node) = source(operand, !recursive).await?;
        let text = operand.shown();
        let source = self.sources.len();
        self.sources.push(side.clone());
        let (dst_parent, dst_name) = match &dst.into {
            Some(dir) => (dir.clone(), node.name.clone()),
            None => (dst.parent.clone(), dst.name.clone()),
        };
        self.top.push(dst_parent);
        let top = Parent::Top(self.top.len() - 1);
        match node.kind {
            Kind::Dir if !recursive => Err(Failure::message(format!(
                "{text}: is a directory; -r copies directories (EISDIR)"
            ))),
            Kind::Dir => self.walk(source, &side, &parent, node, top, dst_name).await,
            Kind::File | Kind::Symlink => {
                self.targets.push(Target {
                    source,
                    src_dir: parent,
                    node,
                    parent: top,
                    name: dst_name,
                });
                Ok(())
            }
            Kind::Other => Err(special(&text)),
        }
    }

    /// Plans the directory `node` (in `parent` on `side`) and everything in it.
    async fn walk(
        &mut self,
        source: usize,
        side: &Side,
        parent: &Dir,
        node: Node,
        dst_parent: Parent,
        dst_name: Vec<u8>,
    ) -> Result<(), Failure> {
        let mut pending = vec![(dir_of(parent, &node), node, dst_parent, dst_name)];
        while let Some((dir, node, dst_parent, dst_name)) = pending.pop() {
            self.dirs.push(PlannedDir {
                node,
                parent: dst_parent,
                name: dst_name,
            });
            let made = Parent::Made(self.dirs.len() - 1);
            let mut children = side.list(&dir).await?;
            children.sort_by(|a, b| a.name.cmp(&b.name));
            for child in children {
                match child.kind {
                    Kind::Dir => {
                        let name = child.name.clone();
                        pending.push((dir_of(&dir, &child), child, made, name));
                    }
                    Kind::File | Kind::Symlink => self.targets.push(Target {
                        source,
                        src_dir: dir.clone(),
                        name: child.name.clone(),
                        node: child,
                        parent: made,
                    }),
                    Kind::Other => eprintln!("nfsio: {}", special(&dir.show(&child.name))),
                }
            }
        }
        Ok(())
    }

    /// The side source argument `source` is on.
    pub(crate) fn src_side(&self, source: usize) -> &Side {
        &self.sources[source]
    }

    /// Bytes of all the files to copy.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.targets
            .iter()
            .filter(|t| t.node.kind == Kind::File)
            .map(|t| t.node.size_bytes)
            .sum()
    }

    /// The destination directory `parent` names, once `dirs` (from [`Plan::make_dirs`]) exist.
    pub(crate) fn dst_dir<'a>(&'a self, dirs: &'a [Dir], parent: Parent) -> &'a Dir {
        match parent {
            Parent::Top(i) => &self.top[i],
            Parent::Made(i) => &dirs[i],
        }
    }

    /// True when `parent` is a directory this copy made (it did not exist before): nothing in
    /// it can be replaced, so its files are written under their own names.
    pub(crate) fn is_new(&self, new: &[bool], parent: Parent) -> bool {
        match parent {
            Parent::Top(_) => false,
            Parent::Made(i) => new.get(i).copied().unwrap_or(false),
        }
    }

    /// Makes the destination's directories, parents first; returns them, and for each
    /// whether this copy made it (false: it existed). With -p they are made writable by
    /// their owner until [`Plan::preserve_dirs`] gives them their modes.
    pub(crate) async fn make_dirs(&self, preserve: bool) -> Result<(Vec<Dir>, Vec<bool>), Failure> {
        let umask = crate::change::umask();
        let mut made: Vec<Dir> = Vec::with_capacity(self.dirs.len());
        let mut new = Vec::with_capacity(self.dirs.len());
        for planned in &self.dirs {
            let mode = if preserve {
                planned.node.mode | 0o700
            } else {
                planned.node.mode & 0o777 & !umask
            };
            let parent = self.dst_dir(&made, planned.parent).clone();
            let (dir, existed) = self.dst_side.make_dir(&parent, &planned.name, mode).await?;
            made.push(dir);
            new.push(!existed);
        }
        Ok((made, new))
    }

    /// -p: every made directory gets its source's mode and times, deepest first (so that
    /// making and renaming entries in it does not change its times again).
    pub(crate) async fn preserve_dirs(&self, dirs: &[Dir]) -> Result<(), Failure> {
        for (index, planned) in self.dirs.iter().enumerate().rev() {
            let parent = self.dst_dir(dirs, planned.parent);
            let handle = match &dirs[index] {
                Dir::Nfs { handle, .. } => Some(handle),
                Dir::Local(_) => None,
            };
            self.dst_side
                .preserve(parent, &planned.name, handle, &planned.node)
                .await?;
        }
        Ok(())
    }
}

fn special(shown: &str) -> Failure {
    Failure::message(format!(
        "{shown}: not a regular file, directory or symbolic link; not copied"
    ))
}
