//! The background task that owns the connection: it connects and reconnects with back-off,
//! writes queued requests in vectored batches, reads replies and hands each to its caller,
//! and replaces a connection on which a call timed out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::connector::Connector;
use super::shared::Shared;
use crate::record::{RecordError, RecordReader, write_records};
use crate::stats::StatsRecorder;

/// Why a connection ended.
#[derive(Debug)]
enum ConnectionEnd {
    /// Lost (or dropped on purpose); reconnect.
    Lost {
        /// It delivered at least one valid reply (so it is worth reconnecting at once).
        delivered_reply: bool,
    },
    /// The transport is shutting down.
    Shutdown,
}

/// Waits until the transport is told to shut down (or its last handle is dropped).
async fn shutdown_signal(shutdown_rx: &mut watch::Receiver<bool>) {
    while !*shutdown_rx.borrow_and_update() {
        if shutdown_rx.changed().await.is_err() {
            return;
        }
    }
}

/// The background task: owns the connection, reconnects, and fails everything at the end.
pub(super) async fn drive<C: Connector>(
    shared: Arc<Shared>,
    connector: C,
    first: C::Stream,
    mut shutdown_rx: watch::Receiver<bool>,
) {
    let mut next_stream = Some(first);
    let mut backoff_ms: u64 = 0;
    let mut connections: u64 = 0;
    loop {
        let stream = match next_stream.take() {
            Some(stream) => stream,
            None => match reconnect(&shared, &connector, &mut backoff_ms, &mut shutdown_rx).await {
                Some(stream) => stream,
                None => break,
            },
        };
        connections += 1;
        StatsRecorder::bump(&shared.stats.connects);
        if connections > 1 {
            StatsRecorder::bump(&shared.stats.reconnects);
            info!(connection = connections, "reconnected");
        }
        match run_connection(&shared, stream, &mut shutdown_rx).await {
            ConnectionEnd::Shutdown => break,
            ConnectionEnd::Lost { delivered_reply } => {
                backoff_ms = if delivered_reply {
                    0
                } else {
                    shared.next_backoff_ms(backoff_ms)
                };
            }
        }
    }
    shared.fail_all();
    debug!("RPC connection task ended");
}

/// Makes a new connection, waiting `backoff_ms` before each attempt and growing it after each
/// failure. `None` when the transport shuts down meanwhile.
async fn reconnect<C: Connector>(
    shared: &Shared,
    connector: &C,
    backoff_ms: &mut u64,
    shutdown_rx: &mut watch::Receiver<bool>,
) -> Option<C::Stream> {
    let connect_timeout = Duration::from_millis(shared.config.connect_timeout_ms);
    loop {
        if *backoff_ms > 0 {
            tokio::select! {
                biased;
                () = tokio::time::sleep(Duration::from_millis(*backoff_ms)) => {}
                () = shutdown_signal(shutdown_rx) => return None,
            }
        }
        let attempt = tokio::select! {
            biased;
            attempt = tokio::time::timeout(connect_timeout, connector.connect()) => attempt,
            () = shutdown_signal(shutdown_rx) => return None,
        };
        match attempt {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(err)) => warn!(error = %err, "reconnection failed"),
            Err(_) => warn!(
                timeout_ms = shared.config.connect_timeout_ms,
                "reconnection timed out"
            ),
        }
        StatsRecorder::bump(&shared.stats.connect_failures);
        *backoff_ms = shared.next_backoff_ms(*backoff_ms);
    }
}

/// Runs one connection until it is lost, replaced after a timeout, or shut down.
async fn run_connection<S: AsyncRead + AsyncWrite + Unpin + Send>(
    shared: &Shared,
    stream: S,
    shutdown_rx: &mut watch::Receiver<bool>,
) -> ConnectionEnd {
    let (read_half, mut write_half) = tokio::io::split(stream);
    let mut reader = RecordReader::with_spare_buffers(
        read_half,
        shared.config.max_record_bytes,
        shared.config.spare_receive_buffers.unwrap_or(0),
    );
    let conn_gen = shared.connection_up();
    shared.writer_wake.notify_one();
    let mut delivered_reply = false;
    let end = tokio::select! {
        biased;
        () = read_loop(shared, &mut reader, &mut delivered_reply) => None,
        () = write_loop(shared, &mut write_half, conn_gen) => None,
        () = wait_kill(shared, conn_gen) => None,
        () = shutdown_signal(shutdown_rx) => Some(ConnectionEnd::Shutdown),
    };
    shared.connection_down();
    end.unwrap_or(ConnectionEnd::Lost { delivered_reply })
}

/// Reads and dispatches replies until the connection fails or misbehaves.
async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Shared,
    reader: &mut RecordReader<R>,
    delivered_reply: &mut bool,
) {
    let mut reused_counted = 0;
    loop {
        // Each reply arrives into room of its own size: the client keeps READ replies as
        // slices of the buffer they were read into, and a buffer grown in steps would pin
        // up to twice their size.
        let record = match reserve_then_read(reader).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                info!("server closed the connection");
                return;
            }
            Err(RecordError::Io(err)) => {
                warn!(error = %err, "connection lost");
                return;
            }
            Err(err) => {
                warn!(error = %err, "bad record from server, dropping the connection");
                StatsRecorder::bump(&shared.stats.protocol_errors);
                return;
            }
        };
        if let Err(err) = shared.dispatch(record) {
            warn!(error = %err, "malformed reply from server, dropping the connection");
            StatsRecorder::bump(&shared.stats.protocol_errors);
            return;
        }
        *delivered_reply = true;
        let reused = reader.spare_buffers_reused();
        if reused > reused_counted {
            shared
                .stats
                .receive_buffers_reused
                .fetch_add(reused - reused_counted, Ordering::Relaxed);
            reused_counted = reused;
        }
    }
}

/// The next record, read into room reserved for it once its first mark is here.
async fn reserve_then_read<R: AsyncRead + Unpin>(
    reader: &mut RecordReader<R>,
) -> Result<Option<Bytes>, RecordError> {
    reader.reserve_next_fragment().await?;
    reader.read_record().await
}

/// Writes queued requests, a whole batch per vectored write, until a write fails.
async fn write_loop<W: AsyncWrite + Unpin>(shared: &Shared, writer: &mut W, conn_gen: u64) {
    let mut batch: Vec<Arc<[Bytes]>> = Vec::new();
    loop {
        batch.clear();
        shared.take_batch(conn_gen, &mut batch);
        if batch.is_empty() {
            shared.writer_wake.notified().await;
            continue;
        }
        let written = async {
            write_records(writer, &batch, shared.config.max_fragment_bytes).await?;
            writer.flush().await
        };
        if let Err(err) = written.await {
            warn!(error = %err, "write failed, dropping the connection");
            return;
        }
    }
}

/// Completes when a timeout asks for connection `conn_gen` to be replaced.
async fn wait_kill(shared: &Shared, conn_gen: u64) {
    loop {
        shared.kill_wake.notified().await;
        if shared.lock().kill_gen == Some(conn_gen) {
            info!("a call timed out, replacing the connection");
            return;
        }
    }
}
