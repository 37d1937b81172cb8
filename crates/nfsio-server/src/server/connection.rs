//! One client connection: a reader loop that reads and charges records and hands each call to
//! the service, and a writer task that sends the replies, batched.
//!
//! The reader looks at each record's first fragment mark before reading its body, and charges
//! the record's bytes plus the largest reply its procedure can produce against the
//! connection's buffer bound and the server's memory bound ([`super::budget`]); it stops
//! reading (TCP then pushes back on the client) while either is exhausted, and at the limit of
//! calls in progress per connection. Calls run on a blocking thread for a store that does
//! file I/O, so that many calls of one connection run at once, or inline for the memory
//! store. The writer gathers all replies that are ready into vectored writes; READ data is
//! never copied on its way out (see [`crate::splice`]). Every step updates the connection's
//! [`ConnInfo`], which the registry reads to close idle and stalled connections.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use nfsio_proto::nfs3;
use nfsio_proto::rpc::{self, MessagePeek};
use nfsio_rpc::record::{
    FragmentMark, MAX_FRAGMENT_BYTES, RecordError, RecordReader, write_records,
};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::{debug, warn};

use super::Shared;
use super::budget::Charge;
use super::registry::{ConnInfo, Registry};
use crate::config::Squash;
use crate::listener::{Connection, ReplyWriter};
use crate::peer::Peer;
use crate::service::Response;
use crate::splice::SplicedReply;

/// Most replies gathered into one vectored write.
const MAX_BATCH_REPLIES: usize = 64;

/// Most bytes gathered into one vectored write.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// What the reply of a call besides READ/READDIR may take, at most, for the memory bound.
const SMALL_REPLY_BYTES: usize = 4096;

/// A reply record: segments in memory, or segments around bytes waiting in a pipe.
pub(super) enum Record {
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

/// What a call holds until its reply is written: its slot among the connection's calls in
/// progress, its share of the connection's buffer bound and of the server's memory bound.
pub(super) struct Held {
    _slot: OwnedSemaphorePermit,
    _buffer: OwnedSemaphorePermit,
    _memory: Charge,
    conn: Arc<ConnInfo>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.conn.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A reply on its way to the writer, with what its call holds.
pub(super) struct Outgoing {
    record: Record,
    _held: Held,
}

/// The most a call's reply can add to the connection's memory: what READ asks for (or
/// READDIR's counts), a few KiB for every other procedure.
fn reply_estimate_bytes(record: &[u8], max_io_bytes: u32) -> usize {
    let Some(MessagePeek::Call(call)) = rpc::peek_message(record) else {
        return SMALL_REPLY_BYTES;
    };
    if call.prog != nfs3::PROGRAM {
        return SMALL_REPLY_BYTES;
    }
    let args = &record[call.args_offset..];
    match nfs3::peek_reply_data_bytes(call.proc_num, args, max_io_bytes) {
        Some(asked_bytes) => asked_bytes as usize + SMALL_REPLY_BYTES,
        None => SMALL_REPLY_BYTES,
    }
}

/// The client's bytes, each read noted as progress.
struct Progress<R> {
    inner: R,
    conn: Arc<ConnInfo>,
    registry: Arc<Registry>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Progress<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.registry.now_ms();
            self.conn.read_ms.store(now, Ordering::Release);
        }
        result
    }
}

/// Serves one connection until it ends, the server stops, or the registry closes it.
pub(super) async fn serve_connection<S: Connection>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let registered = shared.registry.add(peer);
    let conn = registered.info.clone();
    let limits = shared.limits;
    let peer_id = peer_of(&stream, peer, &shared);
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
    let mut writer = tokio::spawn(write_loop(
        write_half,
        rx,
        conn.clone(),
        shared.registry.clone(),
    ));
    let in_flight = Arc::new(Semaphore::new(limits.max_requests_per_connection));
    let buffer = Arc::new(Semaphore::new(limits.max_connection_buffer_bytes));
    let progress = Progress {
        inner: read_half,
        conn: conn.clone(),
        registry: shared.registry.clone(),
    };
    let mut reader = RecordReader::new(progress, limits.max_record_bytes);
    let blocking = shared.service.is_blocking();
    let clean_end = loop {
        // At the per-connection limit, stop reading until a reply has been written.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            break false;
        };
        let mark = tokio::select! {
            biased;
            _ = conn.closed() => break false,
            _ = stop.changed() => break false,
            _ = &mut writer => break false,
            mark = reader.peek_mark() => mark,
        };
        let mark = match mark {
            Ok(Some(mark)) => mark,
            Ok(None) => break true,
            Err(err) => {
                debug!(%peer, %err, "connection ended");
                break false;
            }
        };
        conn.mid_record.store(true, Ordering::Release);
        let Some((record, charge, buffer_permit)) = read_charged(
            &mut reader,
            &conn,
            &shared,
            &buffer,
            record_charge_bytes(mark, limits.max_record_bytes),
            &mut stop,
        )
        .await
        else {
            break false;
        };
        conn.mid_record.store(false, Ordering::Release);
        conn.active_ms
            .store(shared.registry.now_ms(), Ordering::Release);
        conn.outstanding.fetch_add(1, Ordering::AcqRel);
        let held = Held {
            _slot: slot,
            _buffer: buffer_permit,
            _memory: charge,
            conn: conn.clone(),
        };
        let Ok(global) = shared.requests.clone().acquire_owned().await else {
            break false;
        };
        let call = Call {
            peer: peer_id,
            record,
            held,
            global,
        };
        run_call(&shared, call, &conn, &tx, blocking);
    };
    drop(tx);
    if clean_end {
        // The client finished sending: let the replies of calls in flight go out.
        let _ = (&mut writer).await;
    } else {
        writer.abort();
    }
    drop(registered);
    shared.memory.trim_when_quiet(shared.registry.now_ms());
    debug!(%peer, "connection closed");
}

/// Who a connection's calls come from; only the default squash policy asks who owns a local
/// client's socket.
fn peer_of<S: Connection>(stream: &S, peer: SocketAddr, shared: &Shared) -> Peer {
    Peer {
        ip: peer.ip(),
        local_uid: match shared.service.config().squash {
            Squash::Auto => stream.peer_uid(peer),
            _ => None,
        },
        local: stream.local_addr(),
        datagram: false,
    }
}

/// What a record whose first fragment has the mark `mark` is charged before its body is
/// read: its bytes (all of the maximum when it comes in several fragments; the reply's are
/// charged once the call is known), with a small reply's room, so that most calls are
/// charged once.
fn record_charge_bytes(mark: FragmentMark, max_record_bytes: u32) -> usize {
    let record_bytes = if mark.last {
        mark.len_bytes as usize
    } else {
        max_record_bytes as usize
    }
    .min(max_record_bytes as usize);
    record_bytes + SMALL_REPLY_BYTES
}

/// A call read and charged, ready to run.
struct Call {
    /// Who sent it.
    peer: Peer,
    /// Its record.
    record: Bytes,
    /// What it holds until its reply is written.
    held: Held,
    /// Its slot among the server's calls in progress, until its reply is made.
    global: OwnedSemaphorePermit,
}

/// Runs `call` (on a blocking thread when `blocking`, else inline) and queues its reply for
/// the writer; a record that is not a call closes the connection `conn`.
fn run_call(
    shared: &Shared,
    call: Call,
    conn: &Arc<ConnInfo>,
    tx: &mpsc::UnboundedSender<Outgoing>,
    blocking: bool,
) {
    let service = shared.service.clone();
    let tx = tx.clone();
    let conn_for_work = conn.clone();
    let work = move || {
        let Call {
            peer,
            record,
            held,
            global,
        } = call;
        let response = service.handle_from(peer, record);
        // The global slot bounds work in progress, not replies waiting for a client that
        // does not read them: such a client must not starve the others.
        drop(global);
        let record = match response {
            Response::Reply(segments) => Record::Plain(segments),
            Response::Spliced(reply) => Record::Spliced(reply),
            Response::Drop => return,
            Response::Close => {
                conn_for_work.close("not an RPC call");
                return;
            }
        };
        conn_for_work.queued.fetch_add(1, Ordering::AcqRel);
        let _ = tx.send(Outgoing {
            record,
            _held: held,
        });
    };
    if blocking {
        drop(tokio::task::spawn_blocking(work));
    } else {
        work();
    }
}

/// Charges a record of (at most) `record_bytes` and reads it, then charges its reply;
/// `None` when the connection must end.
async fn read_charged<R: AsyncRead + Unpin>(
    reader: &mut RecordReader<R>,
    conn: &Arc<ConnInfo>,
    shared: &Shared,
    buffer: &Arc<Semaphore>,
    record_bytes: usize,
    stop: &mut watch::Receiver<bool>,
) -> Option<(Bytes, Charge, OwnedSemaphorePermit)> {
    let limits = shared.limits;
    let peer = conn.peer;
    let reply_max = limits.max_io_bytes as usize + SMALL_REPLY_BYTES;
    // The connection's own bound first (the most this record and its reply can take), then
    // the server's.
    let per_connection = (record_bytes + reply_max).min(limits.max_connection_buffer_bytes) as u32;
    let buffer_permit = tokio::select! {
        biased;
        _ = conn.closed() => return None,
        permit = buffer.clone().acquire_many_owned(per_connection) => permit.ok()?,
    };
    let reclaim_after = limits.reclaim_after_ms;
    let record_charge = tokio::select! {
        biased;
        _ = conn.closed() => return None,
        _ = stop.changed() => return None,
        charge = shared.memory.charge(conn, record_bytes, &shared.registry, reclaim_after) => charge?,
    };
    // Charged: the record may arrive into room of its exact size.
    reader.reserve(record_bytes.saturating_sub(SMALL_REPLY_BYTES) + 4);
    let record = tokio::select! {
        biased;
        _ = conn.closed() => return None,
        _ = stop.changed() => return None,
        record = reader.read_record() => record,
    };
    let record = match record {
        Ok(Some(record)) => record,
        Ok(None) => return None,
        Err(RecordError::TooLarge {
            len_bytes,
            max_bytes,
        }) => {
            warn!(%peer, len_bytes, max_bytes, "record too large: connection closed");
            return None;
        }
        Err(err) => {
            debug!(%peer, %err, "connection ended");
            return None;
        }
    };
    // The charge covers the record as it is and the largest reply its call can have.
    let total = record.len() + reply_estimate_bytes(&record, limits.max_io_bytes);
    let charge = if total <= record_bytes {
        record_charge
    } else {
        drop(record_charge);
        tokio::select! {
            biased;
            _ = conn.closed() => return None,
            _ = stop.changed() => return None,
            charge = shared.memory.charge(conn, total, &shared.registry, reclaim_after) => charge?,
        }
    };
    Some((record, charge, buffer_permit))
}

async fn write_loop<W: ReplyWriter>(
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    conn: Arc<ConnInfo>,
    registry: Arc<Registry>,
) -> io::Result<()> {
    let mut batch: Vec<Outgoing> = Vec::with_capacity(MAX_BATCH_REPLIES);
    loop {
        let first = tokio::select! {
            biased;
            _ = conn.closed() => return Ok(()),
            first = rx.recv() => first,
        };
        let Some(first) = first else { break };
        // Replies to send from now: progress is measured from here.
        conn.write_ms.store(registry.now_ms(), Ordering::Release);
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
        let written = tokio::select! {
            biased;
            _ = conn.closed() => return Ok(()),
            written = async {
                write_batch(&mut writer, &mut batch).await?;
                writer.flush().await
            } => written,
        };
        written?;
        conn.write_ms.store(registry.now_ms(), Ordering::Release);
        conn.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        // Dropping the batch releases what its calls held: the reader may go on.
        batch.clear();
    }
    writer.shutdown().await
}

/// Writes the records of `batch` in order: runs of records in memory as one vectored write,
/// a record with a pipe as its head, its pipe's bytes, then its tail.
pub(super) async fn write_batch<W: ReplyWriter>(
    writer: &mut W,
    batch: &mut [Outgoing],
) -> io::Result<()> {
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
    let mark = FragmentMark::new(len, true).to_bytes();
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
pub(super) fn test_outgoing(record: Record) -> Outgoing {
    let semaphore = Arc::new(Semaphore::new(2));
    let registry = Arc::new(Registry::new());
    let registered = registry.add(SocketAddr::from(([127, 0, 0, 1], 1)));
    let conn = registered.info.clone();
    conn.outstanding.fetch_add(1, Ordering::AcqRel);
    let memory = super::budget::Memory::new(8 << 20);
    let charge = memory
        .try_charge(&conn, 1)
        .unwrap_or_else(|| unreachable!("an empty pool"));
    let (Ok(a), Ok(b)) = (
        semaphore.clone().try_acquire_owned(),
        semaphore.try_acquire_owned(),
    ) else {
        unreachable!("two permits of two")
    };
    Outgoing {
        record,
        _held: Held {
            _slot: a,
            _buffer: b,
            _memory: charge,
            conn,
        },
    }
}

#[cfg(test)]
mod tests {
    use nfsio_proto::nfs3::procs;

    use super::*;

    #[test]
    fn reply_estimates_follow_the_count_asked() {
        use nfsio_proto::XdrEncode;
        use nfsio_proto::rpc::{CallHeader, MessageHeader, OpaqueAuth};
        let call = |proc_num: u32, args: &dyn Fn(&mut nfsio_proto::XdrEncoder)| {
            let mut enc = nfsio_proto::XdrEncoder::new();
            MessageHeader::Call(CallHeader {
                xid: 1,
                prog: nfs3::PROGRAM,
                vers: 3,
                proc_num,
                cred: OpaqueAuth::none(),
                verf: OpaqueAuth::none(),
            })
            .encode(&mut enc);
            args(&mut enc);
            enc.finish_contiguous()
        };
        let read = |count: u32| {
            call(procs::READ, &move |enc| {
                nfs3::ReadArgs {
                    file: nfs3::FileHandle::from(vec![7; 44]),
                    offset: 0,
                    count,
                }
                .encode(enc)
            })
        };
        assert_eq!(
            reply_estimate_bytes(&read(4096), 1 << 20),
            4096 + SMALL_REPLY_BYTES
        );
        assert_eq!(
            reply_estimate_bytes(&read(u32::MAX), 1 << 20),
            (1 << 20) + SMALL_REPLY_BYTES
        );
        assert_eq!(
            reply_estimate_bytes(&call(procs::NULL, &|_| {}), 1 << 20),
            SMALL_REPLY_BYTES
        );
        assert_eq!(reply_estimate_bytes(b"junk", 1 << 20), SMALL_REPLY_BYTES);
    }
}

#[cfg(test)]
mod writer_tests {
    use std::io::Write;
    use std::os::fd::AsFd;

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::listener::Connection;
    use crate::splice::PipePool;
    use tokio::net::TcpListener;

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
        let mark = |len: usize| FragmentMark::new(len as u32, true).to_bytes();
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
        let batch = records.into_iter().map(test_outgoing).collect();
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
