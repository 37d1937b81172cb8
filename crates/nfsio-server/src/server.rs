//! The asynchronous shell: listeners, connections, and the bounds that keep a server alive.
//!
//! Per connection, one reader loop reads records (RFC 5531 record marking, through
//! `nfsio_rpc::record::RecordReader`, which checks an announced length against the maximum
//! before allocating anything for it) and hands each call to [`Service::handle`] — on a
//! blocking thread for a store that does file I/O, so that many calls of one connection run at
//! once, or inline for the memory store — and one writer task sends the replies, batching all
//! that are ready into vectored writes. READ data is never copied on its way out: from the
//! local store it waits in a pipe and is spliced into the socket ([`crate::splice`]); from
//! memory it goes out as its own segment of the vectored write.
//!
//! Bounds: a record larger than `max_record_bytes` closes the connection; a connection with
//! `max_requests_per_connection` calls in flight, or with `max_connection_buffer_bytes` of
//! requests and (expected) replies held, is not read until replies drain; all connections
//! together have at most `max_requests_total` calls in flight; at most `max_connections`
//! connections are served.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nfsio_proto::nfs3::{self, procs};
use nfsio_rpc::record::{
    LAST_FRAGMENT_FLAG, MAX_FRAGMENT_BYTES, RecordError, RecordReader, write_records,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{Limits, ServerConfig, Squash, process_ids};
use crate::error::ServerError;
use crate::handle::HandleSecret;
use crate::listener::{Connection, Listener, ReplyWriter};
use crate::peer::Peer;
use crate::service::{Ports, Response, Service, ServiceConfig};
use crate::splice::SplicedReply;
use crate::storage::Storage;
use crate::storage::local::{LocalOptions, LocalStore};

/// Most replies gathered into one vectored write.
const MAX_BATCH_REPLIES: usize = 64;

/// Most bytes gathered into one vectored write.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// What the reply of a call besides READ/READDIR may take, at most, for the memory bound.
const SMALL_REPLY_BYTES: usize = 4096;

/// Pause after a failed accept (e.g. out of descriptors), so the loop does not spin.
const ACCEPT_RETRY_MS: u64 = 100;

/// A bound NFS server, ready to [`run`](Server::run).
pub struct Server<L: Listener = TcpListener> {
    service: Arc<Service>,
    nfs: L,
    mount: Option<L>,
    portmap: Option<L>,
    nfs_addr: SocketAddr,
    mount_addr: SocketAddr,
    portmap_addr: Option<SocketAddr>,
    limits: Limits,
}

impl<L: Listener> std::fmt::Debug for Server<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("nfs_addr", &self.nfs_addr)
            .field("mount_addr", &self.mount_addr)
            .field("portmap_addr", &self.portmap_addr)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// The absolute form of `path`, resolving symbolic links in the part that exists.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(canonical, |acc: PathBuf, c| acc.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

fn check_config(config: &ServerConfig) -> Result<(), ServerError> {
    let limits = &config.limits;
    if !config.export_name.starts_with('/') {
        return Err(ServerError::Config(format!(
            "the export name must be an absolute path, not {:?}",
            config.export_name
        )));
    }
    if limits.max_io_bytes < 4096 || limits.max_io_bytes > 64 << 20 {
        return Err(ServerError::Config(format!(
            "max_io_bytes must be between 4 KiB and 64 MiB, not {}",
            limits.max_io_bytes
        )));
    }
    if limits.max_record_bytes < limits.max_io_bytes + 1024 {
        return Err(ServerError::Config(
            "max_record_bytes must leave room for a WRITE of max_io_bytes".to_owned(),
        ));
    }
    if limits.max_requests_per_connection == 0
        || limits.max_requests_total == 0
        || limits.max_connections == 0
        || limits.max_connection_buffer_bytes < limits.max_record_bytes as usize
        || limits.max_connection_buffer_bytes > u32::MAX as usize
    {
        return Err(ServerError::Config(
            "request, connection and buffer limits must allow at least one request".to_owned(),
        ));
    }
    Ok(())
}

/// Applies what the process's own identity allows: root may act as anyone; another user only
/// as itself, which [`Squash::Auto`] becomes (every client acts as the process).
fn identity_of_process(mut config: ServerConfig) -> Result<ServerConfig, ServerError> {
    let Some((uid, gid)) = process_ids() else {
        return Ok(config);
    };
    if uid == 0 {
        return Ok(config);
    }
    match config.squash {
        Squash::Auto => {
            config.squash = Squash::All;
            config.anonuid = uid;
            config.anongid = gid;
        }
        Squash::All if (config.anonuid, config.anongid) == (uid, gid) => {}
        other => {
            return Err(ServerError::Config(format!(
                "squash {other:?} (anonymous {}:{}) needs root: a server run as uid {uid} can act \
                 only as {uid}:{gid}, as it does for every client by default",
                config.anonuid, config.anongid
            )));
        }
    }
    Ok(config)
}

impl Server<TcpListener> {
    /// Opens the export, loads (or creates) the handle key in the state directory, and binds
    /// the listeners. Port 0 picks a free port; [`Server::nfs_addr`] tells which.
    ///
    /// A server run by a user other than root can act only as that user: under the default
    /// [`Squash::Auto`] every client then acts as the process's uid and gid, and any other
    /// identity policy is refused.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let config = identity_of_process(config)?;
        check_config(&config)?;
        let store = LocalStore::open(
            &config.export_dir,
            LocalOptions {
                read_only: config.read_only,
                open_files: config.limits.open_files,
                pipe_bytes: config.limits.max_io_bytes as usize,
                ..LocalOptions::default()
            },
        )
        .map_err(|source| ServerError::Export {
            path: config.export_dir.clone(),
            source,
        })?;
        let state_dir = resolved(&config.state_dir);
        if state_dir.starts_with(store.root_path()) {
            return Err(ServerError::StateInsideExport {
                state_dir,
                export_dir: store.root_path().to_path_buf(),
            });
        }
        let secret = crate::state::load_or_create_secret(&config.state_dir).map_err(|source| {
            ServerError::State {
                path: config.state_dir.clone(),
                source,
            }
        })?;
        let bind = |service: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    service,
                    addr,
                    source,
                })
        };
        let nfs = bind("NFS", config.listen).await?;
        let mount = match config.mount_listen {
            Some(addr) => Some(bind("MOUNT", addr).await?),
            None => None,
        };
        let portmap = match config.portmap_listen {
            Some(addr) => Some(bind("portmap", addr).await?),
            None => None,
        };
        info!(
            export = %store.root_path().display(),
            name = %config.export_name,
            read_only = config.read_only,
            "exporting"
        );
        Self::with_listeners(&config, Arc::new(store), secret, nfs, mount, portmap)
    }
}

impl<L: Listener> Server<L> {
    /// A server over any store and any listeners (a simulated network, the memory store).
    /// `config.export_dir` and `config.state_dir` are not used; `secret` authenticates the
    /// handles.
    pub fn with_listeners(
        config: &ServerConfig,
        storage: Arc<dyn Storage>,
        secret: HandleSecret,
        nfs: L,
        mount: Option<L>,
        portmap: Option<L>,
    ) -> Result<Self, ServerError> {
        check_config(config)?;
        let local = |listener: &L, service: &'static str, fallback: SocketAddr| {
            listener.local_addr().map_err(|source| ServerError::Bind {
                service,
                addr: fallback,
                source,
            })
        };
        let nfs_addr = local(&nfs, "NFS", config.listen)?;
        let mount_addr = match &mount {
            Some(listener) => local(listener, "MOUNT", config.mount_listen.unwrap_or(nfs_addr))?,
            None => nfs_addr,
        };
        let portmap_addr = match &portmap {
            Some(listener) => Some(local(
                listener,
                "portmap",
                config.portmap_listen.unwrap_or(nfs_addr),
            )?),
            None => None,
        };
        let service = Service::new(
            storage,
            ServiceConfig {
                export_name: config.export_name.clone(),
                read_only: config.read_only,
                squash: config.squash,
                anonuid: config.anonuid,
                anongid: config.anongid,
                allow: config.allow.clone(),
                limits: config.limits,
                secret,
                instance_seed: config.instance_seed,
                misbehavior: config.misbehavior.clone(),
                ports: Ports {
                    nfs: nfs_addr.port(),
                    mount: mount_addr.port(),
                    portmap: portmap_addr.map(|a| a.port()),
                },
            },
        );
        Ok(Self {
            service: Arc::new(service),
            nfs,
            mount,
            portmap,
            nfs_addr,
            mount_addr,
            portmap_addr,
            limits: config.limits,
        })
    }

    /// Where NFS (and MOUNT, without a separate MOUNT listener) is served.
    pub fn nfs_addr(&self) -> SocketAddr {
        self.nfs_addr
    }

    /// Where MOUNT is served.
    pub fn mount_addr(&self) -> SocketAddr {
        self.mount_addr
    }

    /// Where the portmapper is served, if it has a listener of its own.
    pub fn portmap_addr(&self) -> Option<SocketAddr> {
        self.portmap_addr
    }

    /// The host part of URLs: the listen address, or the loopback address for an
    /// unspecified one.
    fn url_host(&self) -> String {
        match self.nfs_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        }
    }

    /// The short URL nfsio's client takes: `nfs://127.0.0.1:PORT/export` (the client tries
    /// MOUNT on the NFS port first), with `?mountport=M` when MOUNT has a port of its own.
    pub fn url(&self) -> String {
        let mut url = format!(
            "nfs://{}:{}{}",
            self.url_host(),
            self.nfs_addr.port(),
            self.service.config().export_name
        );
        if self.mount_addr.port() != self.nfs_addr.port() {
            url.push_str(&format!("?mountport={}", self.mount_addr.port()));
        }
        url
    }

    /// The URL in the form every libnfs tool takes, both ports given:
    /// `nfs://127.0.0.1/export?nfsport=N&mountport=M`.
    pub fn libnfs_url(&self) -> String {
        format!(
            "nfs://{}{}?nfsport={}&mountport={}",
            self.url_host(),
            self.service.config().export_name,
            self.nfs_addr.port(),
            self.mount_addr.port()
        )
    }

    /// The request path (write verifier, root handle, store).
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Serves until `shutdown` completes, then stops accepting, closes every connection and
    /// returns. Replies of calls still running are not sent (clients retransmit them).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let shared = Arc::new(Shared {
            service: self.service,
            limits: self.limits,
            requests: Arc::new(Semaphore::new(self.limits.max_requests_total)),
            connections: Arc::new(Semaphore::new(self.limits.max_connections)),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut loops = JoinSet::new();
        loops.spawn(accept_loop(
            self.nfs,
            shared.clone(),
            stop_rx.clone(),
            "NFS",
        ));
        if let Some(mount) = self.mount {
            loops.spawn(accept_loop(mount, shared.clone(), stop_rx.clone(), "MOUNT"));
        }
        if let Some(portmap) = self.portmap {
            loops.spawn(accept_loop(
                portmap,
                shared.clone(),
                stop_rx.clone(),
                "portmap",
            ));
        }
        info!(url = %format_args!("nfs://{}", self.nfs_addr), "serving");
        shutdown.await;
        info!("shutting down");
        let _ = stop_tx.send(true);
        loops.shutdown().await;
        Ok(())
    }
}

/// Opens `config.export_dir`, binds, and serves until `shutdown` completes.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    Server::bind(config).await?.run(shutdown).await
}

/// What every connection shares.
struct Shared {
    service: Arc<Service>,
    limits: Limits,
    requests: Arc<Semaphore>,
    connections: Arc<Semaphore>,
}

async fn accept_loop<L: Listener>(
    mut listener: L,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(service = what, %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
            warn!(%peer, "too many connections: closed");
            continue;
        };
        debug!(service = what, %peer, "connection");
        let shared = shared.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, shared, stop).await;
            drop(permit);
        });
    }
    connections.shutdown().await;
}

/// A reply record: segments in memory, or segments around bytes waiting in a pipe.
enum Record {
    Plain(Vec<Bytes>),
    Spliced(SplicedReply),
}

impl Record {
    fn len_bytes(&self) -> usize {
        match self {
            Self::Plain(segments) => segments.iter().map(Bytes::len).sum(),
            Self::Spliced(reply) => reply.len_bytes(),
        }
    }
}

/// A reply on its way to the writer, with the connection's permits (a request slot and its
/// bytes) that it holds until it is written.
struct Outgoing {
    record: Record,
    _permits: [OwnedSemaphorePermit; 2],
}

/// The most a call's reply can add to the connection's memory.
fn reply_estimate_bytes(record: &[u8], max_io_bytes: u32) -> usize {
    let word = |at: usize| {
        record
            .get(at..at + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    match (word(12), word(20)) {
        (Some(nfs3::PROGRAM), Some(procs::READ | procs::READDIR | procs::READDIRPLUS)) => {
            max_io_bytes as usize + SMALL_REPLY_BYTES
        }
        _ => SMALL_REPLY_BYTES,
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) where
    S: Connection,
{
    let limits = shared.limits;
    // Only the default squash policy asks who owns a local client's socket.
    let peer_id = Peer {
        ip: peer.ip(),
        local_uid: match shared.service.config().squash {
            Squash::Auto => stream.peer_uid(peer),
            _ => None,
        },
    };
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
    let mut writer = tokio::spawn(write_loop(write_half, rx));
    let in_flight = Arc::new(Semaphore::new(limits.max_requests_per_connection));
    let buffer = Arc::new(Semaphore::new(limits.max_connection_buffer_bytes));
    let close = Arc::new(Notify::new());
    let mut reader = RecordReader::new(read_half, limits.max_record_bytes);
    let blocking = shared.service.is_blocking();
    let clean_end = loop {
        // At the per-connection limit, stop reading until a reply has been written.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            break false;
        };
        let record = tokio::select! {
            biased;
            _ = close.notified() => break false,
            record = reader.read_record() => record,
            _ = stop.changed() => break false,
            _ = &mut writer => break false,
        };
        let record = match record {
            Ok(Some(record)) => record,
            Ok(None) => break true,
            Err(RecordError::TooLarge {
                len_bytes,
                max_bytes,
            }) => {
                warn!(%peer, len_bytes, max_bytes, "record too large: connection closed");
                break false;
            }
            Err(err) => {
                debug!(%peer, %err, "connection ended");
                break false;
            }
        };
        let charge = (record.len() + reply_estimate_bytes(&record, limits.max_io_bytes))
            .min(limits.max_connection_buffer_bytes) as u32;
        let Ok(bytes) = buffer.clone().acquire_many_owned(charge).await else {
            break false;
        };
        let Ok(global) = shared.requests.clone().acquire_owned().await else {
            break false;
        };
        let permits = [slot, bytes];
        let service = shared.service.clone();
        let tx = tx.clone();
        let close = close.clone();
        let work = move || {
            let response = service.handle_from(peer_id, record);
            // The global slot bounds work in progress, not replies waiting for a client that
            // does not read them: such a client must not starve the others.
            drop(global);
            match response {
                Response::Reply(segments) => {
                    let _ = tx.send(Outgoing {
                        record: Record::Plain(segments),
                        _permits: permits,
                    });
                }
                Response::Spliced(reply) => {
                    let _ = tx.send(Outgoing {
                        record: Record::Spliced(reply),
                        _permits: permits,
                    });
                }
                Response::Drop => {}
                Response::Close => close.notify_one(),
            }
        };
        if blocking {
            drop(tokio::task::spawn_blocking(work));
        } else {
            work();
        }
    };
    drop(tx);
    if clean_end {
        // The client finished sending: let the replies of calls in flight go out.
        let _ = (&mut writer).await;
    } else {
        writer.abort();
    }
    debug!(%peer, "connection closed");
}

async fn write_loop<W: ReplyWriter>(
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) -> io::Result<()> {
    let mut batch: Vec<Outgoing> = Vec::with_capacity(MAX_BATCH_REPLIES);
    while let Some(first) = rx.recv().await {
        let mut bytes = first.record.len_bytes();
        batch.push(first);
        while batch.len() < MAX_BATCH_REPLIES && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += next.record.len_bytes();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        write_batch(&mut writer, &mut batch).await?;
        writer.flush().await?;
        // Dropping the batch releases its permits: the reader may go on.
        batch.clear();
    }
    writer.shutdown().await
}

/// Writes the records of `batch` in order: runs of records in memory as one vectored write,
/// a record with a pipe as its head, its pipe's bytes, then its tail.
async fn write_batch<W: ReplyWriter>(writer: &mut W, batch: &mut [Outgoing]) -> io::Result<()> {
    let mut plain: Vec<&[Bytes]> = Vec::with_capacity(batch.len());
    for outgoing in batch.iter_mut() {
        match &mut outgoing.record {
            Record::Plain(segments) => plain.push(segments),
            Record::Spliced(reply) => {
                if !plain.is_empty() {
                    write_records(writer, &plain, MAX_FRAGMENT_BYTES).await?;
                    plain.clear();
                }
                write_spliced(writer, reply).await?;
            }
        }
    }
    if !plain.is_empty() {
        write_records(writer, &plain, MAX_FRAGMENT_BYTES).await?;
    }
    Ok(())
}

/// Writes one record whose middle is in a pipe, as a single fragment.
async fn write_spliced<W: ReplyWriter>(writer: &mut W, reply: &mut SplicedReply) -> io::Result<()> {
    let len_bytes = reply.len_bytes();
    let len = u32::try_from(len_bytes)
        .ok()
        .filter(|&len| len <= MAX_FRAGMENT_BYTES)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {len_bytes}-byte reply does not fit one record fragment"),
            )
        })?;
    let mark = (LAST_FRAGMENT_FLAG | len).to_be_bytes();
    let mut head: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&mark))
        .chain(reply.head.iter().map(|segment| IoSlice::new(segment)))
        .collect();
    writer
        .write_head_and_pipe(&mut head, &mut reply.pipe, !reply.tail.is_empty())
        .await?;
    for segment in &reply.tail {
        writer.write_all(segment).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::splice::PipePool;

    fn permits() -> [OwnedSemaphorePermit; 2] {
        let semaphore = Arc::new(Semaphore::new(2));
        let a = semaphore.clone().try_acquire_owned();
        let b = semaphore.try_acquire_owned();
        match (a, b) {
            (Ok(a), Ok(b)) => [a, b],
            _ => unreachable!("two permits of two"),
        }
    }

    /// A batch of: a record in memory, a record with 100,003 bytes in a pipe (and a tail),
    /// another in memory; and the bytes it must put on the wire.
    fn batch(pool: &Arc<PipePool>, file: &std::fs::File, data: &[u8]) -> (Vec<Outgoing>, Vec<u8>) {
        let (pipe, _) = pool.fill(file.as_fd(), 5, 100_003).expect("fill");
        let pipe = pipe.expect("a pipe");
        assert_eq!(pipe.len_bytes(), 100_003);
        let first = vec![Bytes::from_static(b"first reply")];
        let head = vec![Bytes::from_static(b"head"), Bytes::from_static(b"er")];
        let tail = vec![Bytes::from_static(b"\0\0\0 and the tail")];
        let last = vec![Bytes::from_static(b"last")];
        let mut wire = Vec::new();
        let mark = |len: usize| (LAST_FRAGMENT_FLAG | len as u32).to_be_bytes();
        wire.extend_from_slice(&mark(11));
        wire.extend_from_slice(b"first reply");
        wire.extend_from_slice(&mark(6 + 100_003 + 16));
        wire.extend_from_slice(b"header");
        wire.extend_from_slice(&data[5..100_008]);
        wire.extend_from_slice(b"\0\0\0 and the tail");
        wire.extend_from_slice(&mark(4));
        wire.extend_from_slice(b"last");
        let records = vec![
            Record::Plain(first),
            Record::Spliced(SplicedReply { head, pipe, tail }),
            Record::Plain(last),
        ];
        let batch = records
            .into_iter()
            .map(|record| Outgoing {
                record,
                _permits: permits(),
            })
            .collect();
        (batch, wire)
    }

    fn file() -> (std::fs::File, Vec<u8>) {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(&data).expect("write");
        (file, data)
    }

    #[tokio::test]
    async fn a_socket_gets_the_pipe_bytes_in_place() {
        let (file, data) = file();
        let pool = PipePool::new(1, 1 << 20);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr);
        let ((server, _), mut client) =
            tokio::join!(async { listener.accept().await.expect("accept") }, async {
                client.await.expect("connect")
            });
        let (_, mut writer) = Connection::into_split(server);
        let (mut batch, wire) = batch(&pool, &file, &data);
        let reading = tokio::spawn(async move {
            let mut got = vec![0u8; wire.len()];
            client.read_exact(&mut got).await.expect("read");
            assert!(got == wire, "the bytes on the wire");
        });
        write_batch(&mut writer, &mut batch).await.expect("write");
        drop(batch);
        reading.await.expect("reader");
        assert_eq!(pool.in_use(), 0, "the drained pipe is back in the pool");
    }

    #[tokio::test]
    async fn a_stream_that_is_not_a_socket_gets_a_copy() {
        let (file, data) = file();
        let pool = PipePool::new(1, 1 << 20);
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let (_, mut writer) = Connection::into_split(ours);
        let (mut batch, wire) = batch(&pool, &file, &data);
        write_batch(&mut writer, &mut batch).await.expect("write");
        drop(batch);
        let mut got = vec![0u8; wire.len()];
        theirs.read_exact(&mut got).await.expect("read");
        assert!(got == wire, "the bytes on the stream");
        assert_eq!(pool.in_use(), 0);
    }
}
