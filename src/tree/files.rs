//! One file of a tree copy. Into a directory that existed, it is written under a temporary
//! name and renamed over its final name only once it is complete (and, on an export,
//! durable), so that an interrupted copy leaves no half-written file under a name the user
//! asked for and a file it replaces is replaced whole. Into a directory the copy made itself,
//! nothing can be replaced: the file is created under its own name (exclusively), which saves
//! the RENAME and its synchronous update of the directory on the server. Either way the names
//! being written are kept, so that an interrupt can remove them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use nfsio_client::proto::nfs3::{CreateHow, FileHandle, Sattr};
use nfsio_client::{Advice, File};

use super::side::{Dir, Node, Side};
use super::small_read::read_small;
use crate::copy::{ChunkSink, ChunkSource, FileReader, LocalReader, LocalWriter, NfsWriter};
use crate::report::Failure;

/// The names being written (temporary ones, or final ones in a new directory), to remove at
/// an interrupt.
#[derive(Default)]
pub(crate) struct Partials {
    next: AtomicU64,
    names: Mutex<BTreeMap<u64, (Dir, Vec<u8>)>>,
}

impl Partials {
    /// A new temporary name in `dir`, recorded as partial.
    fn begin(&self, dir: &Dir) -> (u64, Vec<u8>) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!(".nfsio-{}-{seq}.part", std::process::id()).into_bytes();
        if let Ok(mut names) = self.names.lock() {
            names.insert(seq, (dir.clone(), name.clone()));
        }
        (seq, name)
    }

    /// `name` in `dir`, recorded as partial.
    fn begin_named(&self, dir: &Dir, name: &[u8]) -> u64 {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut names) = self.names.lock() {
            names.insert(seq, (dir.clone(), name.to_vec()));
        }
        seq
    }

    fn end(&self, seq: u64) {
        if let Ok(mut names) = self.names.lock() {
            names.remove(&seq);
        }
    }

    /// Removes every name still recorded; returns how many there were.
    pub(crate) async fn remove_all(&self, side: &Side) -> usize {
        let left: Vec<(Dir, Vec<u8>)> = match self.names.lock() {
            Ok(mut names) => std::mem::take(&mut *names).into_values().collect(),
            Err(_) => Vec::new(),
        };
        for (dir, name) in &left {
            side.remove(dir, name).await;
        }
        left.len()
    }
}

/// What a file copy needs to know besides the file.
pub(crate) struct FileCopy<'a> {
    pub src_side: &'a Side,
    pub src_dir: &'a Dir,
    pub node: &'a Node,
    pub dst_side: &'a Side,
    pub dst_dir: &'a Dir,
    pub dst_name: &'a [u8],
    /// Mode of the new file (the source's less the umask, or the source's with -p).
    pub mode: u32,
    pub preserve: bool,
    /// `dst_dir` was made by this copy: the file is written under its own name.
    pub in_new_dir: bool,
    pub partials: &'a Partials,
}

impl FileCopy<'_> {
    /// Copies the file; returns its size in bytes.
    pub(crate) async fn run(&self) -> Result<u64, Failure> {
        if self.in_new_dir {
            return self.run_in_place().await;
        }
        let (seq, temp) = self.partials.begin(self.dst_dir);
        let result = self.copy_as(&temp).await;
        match result {
            Ok(copied) => {
                let renamed = self
                    .dst_side
                    .rename(self.dst_dir, &temp, self.dst_name)
                    .await;
                if renamed.is_err() {
                    self.dst_side.remove(self.dst_dir, &temp).await;
                }
                self.partials.end(seq);
                renamed.map(|()| copied)
            }
            Err(e) => {
                self.dst_side.remove(self.dst_dir, &temp).await;
                self.partials.end(seq);
                Err(e)
            }
        }
    }

    /// Copies the file under its own name, into a directory this copy made. The name is
    /// recorded as partial before it is created (an interrupt during the CREATE removes what
    /// it may have made) and until the file is complete; a failed copy removes what it wrote,
    /// except when the name could not be created (it is not ours).
    async fn run_in_place(&self) -> Result<u64, Failure> {
        let seq = self.partials.begin_named(self.dst_dir, self.dst_name);
        let shown = self.dst_dir.show(self.dst_name);
        let created = self.create(self.dst_name, &shown).await;
        let result = match created {
            Ok((writer, handle)) => {
                let filled = self.fill(self.dst_name, writer, handle).await;
                if filled.is_err() {
                    self.dst_side.remove(self.dst_dir, self.dst_name).await;
                }
                filled
            }
            Err(e) => Err(e),
        };
        self.partials.end(seq);
        result
    }

    /// Writes the whole file under `temp`, durable on an export, with -p's mode and times.
    async fn copy_as(&self, temp: &[u8]) -> Result<u64, Failure> {
        let shown = self.dst_dir.show(self.dst_name);
        let (writer, handle) = self.create(temp, &shown).await?;
        self.fill(temp, writer, handle).await
    }

    /// Moves the source's bytes into the file just created as `name` and finishes it
    /// (durable on an export), then gives it -p's mode and times.
    async fn fill(
        &self,
        name: &[u8],
        mut writer: Box<dyn ChunkSink>,
        handle: Option<FileHandle>,
    ) -> Result<u64, Failure> {
        let copied = self.pump(writer.as_mut()).await;
        let finished = writer.finish().await;
        let copied = copied?;
        finished?;
        if self.preserve {
            self.dst_side
                .preserve(self.dst_dir, name, handle.as_ref(), self.node)
                .await?;
        }
        Ok(copied)
    }

    /// Creates `name` (GUARDED on an export, exclusively on local disk: the name is new) and
    /// a writer of it.
    async fn create(
        &self,
        name: &[u8],
        shown: &str,
    ) -> Result<(Box<dyn ChunkSink>, Option<FileHandle>), Failure> {
        match (self.dst_side, self.dst_dir) {
            (Side::Nfs(client), Dir::Nfs { handle, .. }) => {
                let how = CreateHow::Guarded(Sattr {
                    mode: Some(self.mode),
                    size: Some(0),
                    ..Sattr::default()
                });
                let nfs = |e| Failure::nfs(shown, e);
                let created = client.create(handle, name, how).await.map_err(nfs)?;
                let attributes = match created.attributes {
                    Some(attributes) => attributes,
                    None => client.getattr(&created.handle).await.map_err(nfs)?,
                };
                let file = client
                    .open_handle(created.handle.clone(), attributes, shown)
                    .map_err(nfs)?;
                Ok((
                    Box::new(NfsWriter::new(file, shown.to_owned())),
                    Some(created.handle),
                ))
            }
            _ => {
                use std::os::unix::fs::OpenOptionsExt;
                let path = self.dst_dir.local_path(name).unwrap_or_default();
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(self.mode)
                    .open(&path)
                    .map_err(|e| Failure::io(shown, e))?;
                let text = shown.to_owned();
                let writer = LocalWriter::spawn(file, move |e| Failure::io(&text, e));
                Ok((Box::new(writer), None))
            }
        }
    }

    /// Moves the source's bytes into `writer`; returns how many.
    async fn pump(&self, writer: &mut dyn ChunkSink) -> Result<u64, Failure> {
        let shown = self.src_dir.show(&self.node.name);
        let mut copied = 0u64;
        match (self.src_side, &self.node.nfs) {
            (Side::Nfs(client), Some((handle, attributes))) => {
                let file: File = client
                    .open_handle(handle.clone(), attributes.clone(), &shown)
                    .map_err(|e| Failure::nfs(&shown, e))?;
                file.advise(Advice::NoReuse)
                    .map_err(|e| Failure::nfs(&shown, e))?;
                let mut reader = FileReader::new(&file, &shown);
                while let Some(chunk) = ChunkSource::next_chunk(&mut reader).await? {
                    copied += chunk.len() as u64;
                    writer.write_chunk(chunk).await?;
                }
            }
            _ => {
                let path = self.src_dir.local_path(&self.node.name).unwrap_or_default();
                let chunk_bytes = self.chunk_bytes();
                if self.node.size_bytes <= chunk_bytes as u64 {
                    // A small file in one read, without a reader thread of its own (and
                    // without the blocking pool when the page cache holds it).
                    let data = read_small(path, self.node.size_bytes)
                        .await
                        .map_err(|e| Failure::io(&shown, e))?;
                    copied = data.len() as u64;
                    if !data.is_empty() {
                        writer.write_chunk(Bytes::from(data)).await?;
                    }
                } else {
                    let mut reader = LocalReader::open(&path, chunk_bytes)?;
                    while let Some(chunk) = reader.next_chunk().await? {
                        copied += chunk.len() as u64;
                        writer.write_chunk(chunk).await?;
                    }
                }
            }
        }
        Ok(copied)
    }

    fn chunk_bytes(&self) -> usize {
        match self.dst_side {
            Side::Nfs(client) => client.wsize_bytes() as usize,
            Side::Local => 1 << 20,
        }
    }
}
