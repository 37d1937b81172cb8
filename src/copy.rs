//! `nfsio cp`: a pipelined copy between local files and NFS.
//!
//! The source is read in transfer-sized chunks with a bounded number of READs in flight and
//! delivered in order. An NFS destination is written through the client's write-back cache
//! (`nfsio_client::File`): the chunks land in the cache, which sends them as UNSTABLE WRITEs
//! with many in flight, COMMITs as unstable bytes pile up (so the server's flush to disk
//! overlaps the transfer), resends what a server restart lost (RFC 1813 section 4.12), and
//! reports any failure at `close`, which returns once everything is durable.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use nfsio_client::proto::nfs3::{Fattr, FileHandle, FileType, Nfs3Status};
use nfsio_client::{Advice, Client, File, NfsError};
use tokio::sync::mpsc;

use crate::operand::Operand;
use crate::output::out;
use crate::report::Failure;

/// Arguments of `nfsio cp`.
#[derive(clap::Args)]
pub struct CpArgs {
    /// The sources (SRC: local paths, nfs://host/export/path URLs, or nfs:PATH under
    /// NFSIO_URL; `-` is standard input), then the destination (DST: the same, `-` standard
    /// output; with several sources, or -r onto an existing directory, a directory that
    /// receives each source's name)
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<std::ffi::OsString>,
    /// Copy directories and everything in them (symbolic links as links).
    #[arg(short = 'r', short_alias = 'R', long)]
    pub(crate) recursive: bool,
    /// Keep the mode and the access and modification times.
    #[arg(short, long)]
    pub(crate) preserve: bool,
    /// Never replace an existing file (no clobber).
    #[arg(short = 'n', long)]
    pub(crate) no_clobber: bool,
    /// Replace an existing file only when the source is newer.
    #[arg(short, long)]
    pub(crate) update: bool,
    /// Files copied at once (trees and several sources).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) jobs: u16,
    /// No progress bar and no summary.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Progress as plain lines on stderr once a second (for logs), instead of a bar.
    #[arg(long, conflicts_with = "quiet")]
    pub(crate) progress: bool,
    /// Print per-procedure RPC statistics at the end.
    #[arg(long)]
    pub(crate) stats: bool,
    /// Maximum READs in flight (WRITEs in flight are the write-back cache's to decide).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) inflight: u16,
}

/// Where `cp` reads from.
enum Source {
    /// Standard input (`-`).
    Stdin,
    /// A local file, with its metadata (symbolic links followed).
    Local {
        path: PathBuf,
        meta: std::fs::Metadata,
    },
    /// A file on an export, open in its client's cache (whose readahead reads it).
    Nfs { url: String, file: File },
}

/// Where `cp` writes to, decided (a directory replaced by the file inside it) before anything
/// is opened for writing.
enum Dest {
    /// Standard output (`-`).
    Stdout,
    /// A local file and, when it exists, its metadata.
    Local {
        path: PathBuf,
        existing: Option<std::fs::Metadata>,
    },
    /// A file on an export: its path in the export and, when it exists, its handle and
    /// attributes.
    Nfs {
        url: String,
        client: Client,
        path: Vec<u8>,
        existing: Option<(FileHandle, Fattr)>,
    },
}

/// The last component of a path or URL path, for copying into a directory: bytes, with a
/// URL's percent-escapes decoded (`f%20x` is the file `f x`, `%E9` the byte 0xE9).
fn base_name(operand: &Operand) -> Vec<u8> {
    let decoded = operand
        .url()
        .and_then(|url| nfsio_client::NfsUrl::parse(url).ok())
        .map(|url| url.path);
    let path = decoded.unwrap_or_else(|| operand.path_bytes().to_vec());
    crate::bytepath::base_name(&path).to_vec()
}

fn eisdir(text: &str) -> Failure {
    Failure::message(format!("{text}: is a directory (EISDIR)"))
}

fn enotdir(text: &str) -> Failure {
    Failure::message(format!("{text}: not a directory (ENOTDIR)"))
}

impl Source {
    /// Opens `operand` for reading; an NFS file with up to `inflight` READs in flight ahead.
    async fn open(operand: &Operand, inflight: usize) -> Result<Self, Failure> {
        let url = match operand {
            Operand::Std => return Ok(Self::Stdin),
            Operand::Local(path) => {
                let text = operand.shown();
                let meta = std::fs::metadata(path).map_err(|e| Failure::io(&text, e))?;
                if meta.is_dir() {
                    return Err(eisdir(&text));
                }
                return Ok(Self::Local {
                    path: path.clone(),
                    meta,
                });
            }
            Operand::Url(url) => url,
        };
        let file = open_nfs(url, Some(inflight)).await?;
        Ok(Self::Nfs {
            url: url.clone(),
            file,
        })
    }

    fn size_bytes(&self) -> Option<u64> {
        match self {
            Self::Stdin => None,
            Self::Local { meta, .. } => Some(meta.len()),
            Self::Nfs { file, .. } => Some(file.attributes_at_open().size),
        }
    }
}

impl Dest {
    /// Resolves `operand` for a copy of `src`: `-`, a file, or an existing directory that
    /// receives the source's name. A name ending in `/` must be an existing directory.
    async fn resolve(operand: &Operand, src: &Operand) -> Result<Self, Failure> {
        let text = operand.shown();
        let text = text.as_ref();
        let wants_dir = operand.path_bytes().ends_with(b"/");
        let into_dir = |dir_text: &str| -> Result<Vec<u8>, Failure> {
            if *src == Operand::Std {
                return Err(Failure::message(format!(
                    "{dir_text}: is a directory; standard input needs a file name (EISDIR)"
                )));
            }
            Ok(base_name(src))
        };
        let url = match operand {
            Operand::Std => return Ok(Self::Stdout),
            Operand::Local(path) => {
                let mut path = path.clone();
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_dir() => {
                        path.push(std::ffi::OsStr::from_bytes(&into_dir(text)?));
                    }
                    // `DIR/` names a directory: never a new file called DIR (as coreutils).
                    Ok(_) if wants_dir => return Err(enotdir(text)),
                    Err(e) if wants_dir && e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(enotdir(text));
                    }
                    Err(e) if wants_dir => return Err(Failure::io(text, e)),
                    _ => {}
                }
                let existing = std::fs::metadata(&path).ok();
                if existing.as_ref().is_some_and(|m| m.is_dir()) {
                    return Err(eisdir(&path.display().to_string()));
                }
                return Ok(Self::Local { path, existing });
            }
            Operand::Url(url) => url,
        };
        let client = crate::connect(url).await?;
        let mut path = client.url_path().to_owned();
        match client.lookup_path(&path).await {
            Ok((_, attributes)) if attributes.file_type == FileType::Directory => {
                let name = into_dir(text)?;
                path = crate::bytepath::join(&path, &name);
            }
            Ok(_) if wants_dir => return Err(enotdir(text)),
            Err(e) if wants_dir && e.status() == Some(Nfs3Status::NoEnt) => {
                return Err(enotdir(text));
            }
            Err(e) if wants_dir => return Err(Failure::nfs(text, e)),
            _ => {}
        }
        let existing = match client.lookup_path(&path).await {
            Ok(found) => Some(found),
            Err(e) if e.status() == Some(Nfs3Status::NoEnt) => None,
            Err(e) => return Err(Failure::nfs(text, e)),
        };
        if existing
            .as_ref()
            .is_some_and(|(_, a)| a.file_type == FileType::Directory)
        {
            return Err(Failure::nfs(
                text,
                NfsError::Status {
                    proc_name: "CREATE",
                    status: Nfs3Status::IsDir,
                },
            ));
        }
        Ok(Self::Nfs {
            url: url.clone(),
            client,
            path,
            existing,
        })
    }
}

/// True when `src` and `dst` are one object, so that opening `dst` for writing would
/// truncate the source: the same device and inode locally; on one server and export, the
/// same file handle or file id; across NFS and a local path, a server on this machine whose
/// file has the local file's inode number and identical change time and size.
fn same_file(src: &Source, dst: &Dest) -> bool {
    use std::os::unix::fs::MetadataExt;
    let nfs_local = |client: &Client, attributes: &Fattr, meta: &std::fs::Metadata| {
        client.server().ip().is_loopback()
            && attributes.fileid == meta.ino()
            && attributes.size == meta.size()
            && i64::from(attributes.ctime.seconds) == meta.ctime()
            && i64::from(attributes.ctime.nseconds) == meta.ctime_nsec()
    };
    match (src, dst) {
        (
            Source::Local { meta, .. },
            Dest::Local {
                existing: Some(other),
                ..
            },
        ) => meta.dev() == other.dev() && meta.ino() == other.ino(),
        (
            Source::Nfs { file, .. },
            Dest::Nfs {
                client: other_client,
                existing: Some((other_handle, other_attributes)),
                ..
            },
        ) => {
            let (client, attributes) = (file.client(), file.attributes_at_open());
            client.server() == other_client.server()
                && client.export() == other_client.export()
                && (file.handle() == other_handle
                    || (attributes.fsid, attributes.fileid)
                        == (other_attributes.fsid, other_attributes.fileid))
        }
        (
            Source::Nfs { file, .. },
            Dest::Local {
                existing: Some(meta),
                ..
            },
        ) => nfs_local(file.client(), file.attributes_at_open(), meta),
        (
            Source::Local { meta, .. },
            Dest::Nfs {
                client,
                existing: Some((_, attributes)),
                ..
            },
        ) => nfs_local(client, attributes, meta),
        _ => false,
    }
}

/// Copies one file `src_operand` onto `dst_operand` (`-` for standard input or output).
pub(crate) async fn run_one(
    src_operand: &Operand,
    dst_operand: &Operand,
    args: &CpArgs,
) -> Result<(), Failure> {
    let src = Source::open(src_operand, usize::from(args.inflight)).await?;
    let dst = Dest::resolve(dst_operand, src_operand).await?;
    if same_file(&src, &dst) {
        return Err(Failure::message(format!(
            "'{}' and '{}' are the same file",
            src_operand.shown(),
            dst_operand.shown()
        )));
    }
    let started = Instant::now();
    let progress = match dst {
        _ if args.progress => crate::progress::counting(src.size_bytes()),
        // The progress bar would share the terminal with the data.
        Dest::Stdout => ProgressBar::hidden(),
        _ => progress_bar(src.size_bytes(), args.quiet),
    };
    let lines = args
        .progress
        .then(|| crate::progress::Lines::start(&progress));
    let chunk_bytes = match (&src, &dst) {
        (Source::Nfs { file, .. }, Dest::Nfs { client: d, .. }) => {
            file.client().rsize_bytes().min(d.wsize_bytes())
        }
        (Source::Nfs { file, .. }, _) => file.client().rsize_bytes(),
        (_, Dest::Nfs { client, .. }) => client.wsize_bytes(),
        _ => 1024 * 1024,
    } as usize;
    let copied = copy_once(&src, &dst, chunk_bytes, &progress).await?;
    progress.set_position(copied);
    if let Some(lines) = lines {
        lines.finish();
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.stats {
        // Statistics go where they cannot mix with copied data.
        let mut report = format!(
            "copied {copied} bytes in {seconds:.3} s ({:.1} MB/s)\n",
            copied as f64 / seconds.max(1e-9) / 1e6
        );
        let clients = [
            (
                "source",
                match &src {
                    Source::Nfs { file, .. } => Some(file.client()),
                    _ => None,
                },
            ),
            (
                "destination",
                match &dst {
                    Dest::Nfs { client, .. } => Some(client),
                    _ => None,
                },
            ),
        ];
        for (label, client) in clients {
            let Some(client) = client else { continue };
            report.push_str(&format!("{label} {}:\n", client.server()));
            report.push_str(&crate::report::stats_table(&client.stats()));
            if label == "destination" {
                report.push_str(&crate::report::cache_line(&client.cache_stats()));
                report.push('\n');
            }
        }
        if matches!(dst, Dest::Stdout) {
            eprint!("{report}");
        } else {
            out!("{report}")?;
        }
    }
    Ok(())
}

pub(crate) fn progress_bar(size_bytes: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match size_bytes {
        Some(size) => ProgressBar::new(size),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

async fn copy_once(
    src: &Source,
    dst: &Dest,
    chunk_bytes: usize,
    progress: &ProgressBar,
) -> Result<u64, Failure> {
    let mut reader: Box<dyn ChunkSource> = match src {
        Source::Stdin => Box::new(LocalReader::stdin(chunk_bytes)),
        Source::Local { path, .. } => Box::new(LocalReader::open(path, chunk_bytes)?),
        Source::Nfs { url, file } => Box::new(FileReader::new(file, url)),
    };
    let mut writer: Box<dyn ChunkSink> = match dst {
        Dest::Stdout => Box::new(LocalWriter::stdout()),
        Dest::Local { path, .. } => Box::new(LocalWriter::create(path)?),
        Dest::Nfs {
            url, client, path, ..
        } => {
            let file = client
                .create_file(path, 0o644)
                .await
                .map_err(|e| Failure::nfs(url, e))?;
            Box::new(NfsWriter::new(file, url.clone()))
        }
    };
    let mut copied = 0u64;
    while let Some(chunk) = reader.next_chunk().await? {
        copied += chunk.len() as u64;
        writer.write_chunk(chunk).await?;
        // Progress counts what reached the server, not what is still in the client's cache.
        let pending = match dst {
            Dest::Nfs { client, .. } => {
                let stats = client.cache_stats();
                stats.dirty_bytes + stats.inflight_bytes
            }
            _ => 0,
        };
        progress.set_position(copied.saturating_sub(pending));
    }
    writer.finish().await?;
    Ok(copied)
}

/// An ordered source of file contents.
pub(crate) trait ChunkSource: Send {
    /// The next chunk, or None at the end.
    fn next_chunk(&mut self) -> futures_lite::BoxedChunk<'_>;
}

/// A sink that takes file contents in order.
pub(crate) trait ChunkSink: Send {
    /// Accepts the next chunk (may return before it is written).
    fn write_chunk(&mut self, chunk: Bytes) -> futures_lite::BoxedUnit<'_>;
    /// Waits until everything is written and durable where the sink promises it.
    fn finish(&mut self) -> futures_lite::BoxedFinish<'_>;
}

/// Boxed future types for the object-safe traits above.
pub(crate) mod futures_lite {
    use std::future::Future;
    use std::pin::Pin;

    use bytes::Bytes;

    use crate::report::Failure;

    pub type BoxedChunk<'a> =
        Pin<Box<dyn Future<Output = Result<Option<Bytes>, Failure>> + Send + 'a>>;
    pub type BoxedUnit<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;
    pub type BoxedFinish<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;
}

/// Reads an NFS file in order through the client's cache ([`File`]), whose readahead keeps
/// READs of the transfer size in flight ahead of the reader; chunks are what each read
/// returned (a transfer's worth, fewer at the end).
pub(crate) struct FileReader<'f> {
    file: &'f File,
    url: &'f str,
    position: u64,
    chunk_bytes: usize,
}

impl<'f> FileReader<'f> {
    /// A reader of `file` from its start; `url` names it in messages.
    pub(crate) fn new(file: &'f File, url: &'f str) -> Self {
        Self {
            file,
            url,
            position: 0,
            chunk_bytes: file.client().rsize_bytes() as usize,
        }
    }

    /// The next chunk of the file in order, or None at end of file.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        let data = self
            .file
            .read_bytes_at(self.position, self.chunk_bytes)
            .await
            .map_err(|e| Failure::nfs(self.url, e))?;
        if data.is_empty() {
            return Ok(None);
        }
        self.position += data.len() as u64;
        Ok(Some(data))
    }
}

impl ChunkSource for FileReader<'_> {
    fn next_chunk(&mut self) -> futures_lite::BoxedChunk<'_> {
        Box::pin(FileReader::next_chunk(self))
    }
}

/// Connects to the server `url` names and opens the regular file it names, with up to
/// `inflight` READs in flight ahead of a sequential reader (None: the client's default).
pub(crate) async fn open_nfs(url: &str, inflight: Option<usize>) -> Result<File, Failure> {
    let options = nfsio_client::ClientOptions {
        max_inflight_reads: inflight,
        ..nfsio_client::ClientOptions::default()
    };
    let client = crate::connect_with(url, options).await?;
    let (handle, attributes) = client
        .lookup_path(client.url_path())
        .await
        .map_err(|e| Failure::nfs(url, e))?;
    if attributes.file_type == FileType::Directory {
        let status = Nfs3Status::IsDir;
        let error = NfsError::Status {
            proc_name: "READ",
            status,
        };
        return Err(Failure::nfs(url, error));
    }
    let file = client
        .open_handle(handle, attributes, client.url_path())
        .map_err(|e| Failure::nfs(url, e))?;
    // Each byte is read once: the cache keeps the readahead window, not the whole file.
    file.advise(Advice::NoReuse)
        .map_err(|e| Failure::nfs(url, e))?;
    Ok(file)
}

/// Reads a local file (or standard input) on a blocking thread, a bounded number of chunks
/// ahead.
pub(crate) struct LocalReader {
    chunks: mpsc::Receiver<Result<Bytes, Failure>>,
}

impl LocalReader {
    pub(crate) fn open(path: &Path, chunk_bytes: usize) -> Result<Self, Failure> {
        let text = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Failure::io(&text, e))?;
        Ok(Self::spawn(file, text, chunk_bytes))
    }

    fn stdin(chunk_bytes: usize) -> Self {
        Self::spawn(std::io::stdin(), "standard input".to_owned(), chunk_bytes)
    }

    fn spawn(mut input: impl Read + Send + 'static, text: String, chunk_bytes: usize) -> Self {
        let (sender, chunks) = mpsc::channel(4);
        std::thread::spawn(move || {
            loop {
                // Read into fresh capacity (never zeroed first); the chunk's buffer is then
                // handed to the writer, which may keep it (see `File::write_bytes_at`).
                let mut buf = Vec::with_capacity(chunk_bytes);
                let limit = chunk_bytes as u64;
                if let Err(e) = (&mut input).take(limit).read_to_end(&mut buf) {
                    let _ = sender.blocking_send(Err(Failure::io(&text, e)));
                    return;
                }
                if buf.is_empty() {
                    return;
                }
                if sender.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return;
                }
            }
        });
        Self { chunks }
    }
}

impl ChunkSource for LocalReader {
    fn next_chunk(&mut self) -> futures_lite::BoxedChunk<'_> {
        Box::pin(async move { self.chunks.recv().await.transpose() })
    }
}

/// Writes an NFS file in order through the client's write-back cache; `finish` closes it
/// (flush, COMMIT, verifiers checked, data resent if the server lost it).
pub(crate) struct NfsWriter {
    file: Option<File>,
    url: String,
    offset: u64,
}

impl NfsWriter {
    pub(crate) fn new(file: File, url: String) -> Self {
        Self {
            file: Some(file),
            url,
            offset: 0,
        }
    }
}

impl ChunkSink for NfsWriter {
    fn write_chunk(&mut self, chunk: Bytes) -> futures_lite::BoxedUnit<'_> {
        Box::pin(async move {
            let file = self
                .file
                .as_ref()
                .ok_or_else(|| Failure::message(format!("{}: already closed", self.url)))?;
            let len = chunk.len() as u64;
            file.write_bytes_at(chunk, self.offset)
                .await
                .map_err(|e| Failure::nfs(&self.url, e))?;
            self.offset += len;
            Ok(())
        })
    }

    fn finish(&mut self) -> futures_lite::BoxedFinish<'_> {
        Box::pin(async move {
            match self.file.take() {
                Some(file) => file.close().await.map_err(|e| Failure::nfs(&self.url, e)),
                None => Ok(()),
            }
        })
    }
}

/// Writes a local file (or standard output) on a blocking thread.
pub(crate) struct LocalWriter {
    chunks: Option<mpsc::Sender<Bytes>>,
    done: Option<std::thread::JoinHandle<Result<(), Failure>>>,
}

impl LocalWriter {
    /// Creates (or truncates) `path`: only once the copy is known not to be onto its source.
    fn create(path: &Path) -> Result<Self, Failure> {
        let text = path.display().to_string();
        let file = std::fs::File::create(path).map_err(|e| Failure::io(&text, e))?;
        Ok(Self::spawn(file, move |e| Failure::io(&text, e)))
    }

    fn stdout() -> Self {
        Self::spawn(std::io::stdout(), Failure::stdout)
    }

    pub(crate) fn spawn(
        mut output: impl Write + Send + 'static,
        fail: impl Fn(std::io::Error) -> Failure + Send + 'static,
    ) -> Self {
        let (sender, mut chunks) = mpsc::channel::<Bytes>(4);
        let done = std::thread::spawn(move || {
            while let Some(chunk) = chunks.blocking_recv() {
                output.write_all(&chunk).map_err(&fail)?;
            }
            output.flush().map_err(&fail)
        });
        Self {
            chunks: Some(sender),
            done: Some(done),
        }
    }

    async fn join(&mut self) -> Result<(), Failure> {
        self.chunks = None;
        match self.done.take() {
            Some(done) => tokio::task::spawn_blocking(move || done.join())
                .await
                .map_err(|e| Failure::message(format!("local writer failed: {e}")))?
                .map_err(|_| Failure::message("local writer panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl ChunkSink for LocalWriter {
    fn write_chunk(&mut self, chunk: Bytes) -> futures_lite::BoxedUnit<'_> {
        Box::pin(async move {
            let sent = match &self.chunks {
                Some(sender) => sender.send(chunk).await.is_ok(),
                None => false,
            };
            if sent {
                Ok(())
            } else {
                // The writer thread stopped: it has the error.
                self.join().await?;
                Err(Failure::message("local writer stopped".into()))
            }
        })
    }

    fn finish(&mut self) -> futures_lite::BoxedFinish<'_> {
        Box::pin(async move { self.join().await })
    }
}
