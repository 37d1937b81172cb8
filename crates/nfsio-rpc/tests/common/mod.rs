//! A fake RPC server for the transport tests: connections are in-memory duplex pipes handed
//! out by a [`Connector`], so tests run on tokio's paused clock and are deterministic.

#![allow(dead_code)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use nfsio_proto::rpc::{CallHeader, MessageHeader, OpaqueAuth, ReplyHeader, ReplyStatus};
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder};
use nfsio_rpc::record::{RecordReader, write_record};
use nfsio_rpc::{Connector, RpcClient, RpcConfig};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

/// How long the fake server waits for anything before failing the test, so that a regression
/// fails instead of hanging (on the paused clock this costs no real time).
pub const PATIENCE: Duration = Duration::from_secs(600);

/// The test program number.
pub const PROG: u32 = 400_123;
/// The test program version.
pub const VERS: u32 = 1;

/// Hands the server side of each new connection to the test.
#[derive(Clone)]
pub struct DuplexConnector {
    tx: mpsc::Sender<ServerConn>,
    /// The next this-many connection attempts are refused.
    pub refuse: Arc<AtomicU32>,
}

impl Connector for DuplexConnector {
    type Stream = DuplexStream;

    fn connect(&self) -> impl Future<Output = io::Result<DuplexStream>> + Send {
        let tx = self.tx.clone();
        let refuse = self.refuse.clone();
        async move {
            if refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            let (client, server) = tokio::io::duplex(1 << 20);
            tx.send(ServerConn::new(server))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            Ok(client)
        }
    }
}

/// The listening side: yields one [`ServerConn`] per connection the client makes.
pub struct Listener {
    rx: mpsc::Receiver<ServerConn>,
}

impl Listener {
    /// The next connection (within [`PATIENCE`] of virtual time).
    pub async fn accept(&mut self) -> ServerConn {
        tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("no connection came")
            .expect("connector dropped")
    }

    /// A connection made since the last accept, if any.
    pub fn try_accept(&mut self) -> Option<ServerConn> {
        self.rx.try_recv().ok()
    }
}

/// A connector and its listener.
pub fn network() -> (DuplexConnector, Listener) {
    let (tx, rx) = mpsc::channel(16);
    (
        DuplexConnector {
            tx,
            refuse: Arc::new(AtomicU32::new(0)),
        },
        Listener { rx },
    )
}

/// A config for tests: a known XID seed, short timeouts.
pub fn test_config() -> RpcConfig {
    RpcConfig {
        xid_seed: Some(1000),
        timeout_ms: 1_000,
        ..RpcConfig::default()
    }
}

/// Connects a client and accepts its first connection.
pub async fn client_and_server(config: RpcConfig) -> (RpcClient, Listener, ServerConn) {
    let (connector, mut listener) = network();
    let client = nfsio_rpc::connect(connector, config)
        .await
        .expect("connect");
    let conn = listener.accept().await;
    (client, listener, conn)
}

/// One call as the server sees it.
pub struct ReceivedCall {
    pub header: CallHeader,
    pub args: XdrDecoder,
}

impl ReceivedCall {
    /// The call's single `u32` argument.
    pub fn arg_u32(&mut self) -> u32 {
        self.args.get_u32().expect("u32 argument")
    }
}

/// The server side of one connection.
pub struct ServerConn {
    reader: RecordReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

impl ServerConn {
    fn new(stream: DuplexStream) -> Self {
        let (r, w) = tokio::io::split(stream);
        Self {
            reader: RecordReader::new(r, 1 << 24),
            writer: w,
        }
    }

    /// The next call, or `None` when the client closed the connection (within [`PATIENCE`]).
    pub async fn recv(&mut self) -> Option<ReceivedCall> {
        let record = tokio::time::timeout(PATIENCE, self.reader.read_record())
            .await
            .expect("the client neither sent a call nor closed the connection")
            .ok()??;
        let mut args = XdrDecoder::new(record);
        match MessageHeader::decode(&mut args).expect("call header") {
            MessageHeader::Call(header) => Some(ReceivedCall { header, args }),
            MessageHeader::Reply(_) => panic!("client sent a reply"),
        }
    }

    /// The next call, which must come.
    pub async fn expect_call(&mut self) -> ReceivedCall {
        self.recv().await.expect("a call")
    }

    /// Sends a record as it is.
    pub async fn send_record(&mut self, segments: &[Bytes]) {
        write_record(&mut self.writer, segments, u32::MAX)
            .await
            .expect("write");
        self.writer.flush().await.expect("flush");
    }

    /// Sends raw bytes (marks included).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
        self.writer.flush().await.expect("flush");
    }

    /// Replies with `status` and, for a success, `results`.
    pub async fn reply<T: XdrEncode + ?Sized>(
        &mut self,
        xid: u32,
        status: ReplyStatus,
        results: &T,
    ) {
        let mut enc = XdrEncoder::new();
        ReplyHeader { xid, status }.encode(&mut enc);
        results.encode(&mut enc);
        let segments = enc.finish();
        self.send_record(&segments).await;
    }

    /// Replies SUCCESS with `results`.
    pub async fn reply_ok<T: XdrEncode + ?Sized>(&mut self, xid: u32, results: &T) {
        self.reply(
            xid,
            ReplyStatus::Success {
                verf: OpaqueAuth::none(),
            },
            results,
        )
        .await;
    }
}
