//! A tiny RPC client and server harness for the integration tests: hand-built calls over a
//! loopback TCP connection, so each test controls every byte it sends.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nfsio_proto::mount::{self, MntArgs, MntRes, MountCall, MountReply};
use nfsio_proto::nfs3::*;
use nfsio_proto::rpc::{
    AuthSysParams, CallHeader, MessageHeader, OpaqueAuth, ReplyHeader, ReplyStatus,
};
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder};
use nfsio_rpc::record::{RecordReader, write_record};
use nfsio_server::{HandleSecret, MemStore, Server, ServerConfig, Service, Storage};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for anything before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running server and what the tests need to reach it.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The short URL nfsio's client takes: `nfs://127.0.0.1:N/export`.
    pub url: String,
    /// The URL libnfs's tools take: `nfs://127.0.0.1/export?nfsport=N&mountport=N`.
    pub libnfs_url: String,
    pub service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("server stops")
                .expect("server task");
        }
    }

    pub async fn client(&self) -> TestClient {
        TestClient::connect(self.addr).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn spawn<L: nfsio_server::Listener>(server: Server<L>) -> TestServer {
    let addr = server.nfs_addr();
    let url = server.url();
    let libnfs_url = server.libnfs_url();
    let service = server.service().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
    });
    TestServer {
        addr,
        url,
        libnfs_url,
        service,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Runs a server built by the test.
pub fn spawn_server<L: nfsio_server::Listener>(server: Server<L>) -> TestServer {
    spawn(server)
}

/// A configuration on 127.0.0.1:0 for `export`, with its state dir in `state`.
pub fn config(export: &Path, state: &Path) -> ServerConfig {
    let mut config = ServerConfig::new(export);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.state_dir = state.to_path_buf();
    config.squash = nfsio_server::Squash::None;
    config
}

/// Starts a server on a local directory.
pub async fn start_local(config: ServerConfig) -> TestServer {
    spawn(Server::bind(config).await.expect("server binds"))
}

/// Starts a server on a memory store.
pub async fn start_mem(store: Arc<MemStore>, seed: u64) -> TestServer {
    let mut config = ServerConfig::new("/nonexistent");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.squash = nfsio_server::Squash::None;
    config.instance_seed = Some(seed);
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let storage: Arc<dyn Storage> = store;
    let server = Server::with_listeners(
        &config,
        storage,
        HandleSecret::from_seed(seed),
        listener,
        None,
        None,
    )
    .unwrap();
    spawn(server)
}

/// Temporary export and state directories.
pub struct Dirs {
    pub export: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        Self {
            export: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
        }
    }

    pub fn export_path(&self) -> PathBuf {
        self.export.path().to_path_buf()
    }

    pub fn config(&self) -> ServerConfig {
        config(self.export.path(), self.state.path())
    }
}

/// A decoded reply: its header and the undecoded results.
pub struct RawReply {
    pub header: ReplyHeader,
    pub body: XdrDecoder,
}

/// A hand-driven RPC client over one TCP connection.
pub struct TestClient {
    reader: RecordReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub next_xid: u32,
    pub cred: OpaqueAuth,
}

pub fn sys_cred(uid: u32, gid: u32) -> OpaqueAuth {
    OpaqueAuth::sys(&AuthSysParams {
        stamp: 7,
        machine_name: Bytes::from_static(b"test"),
        uid,
        gid,
        gids: vec![],
    })
}

impl TestClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::over(TcpStream::connect(addr)).await
    }

    /// Connects with a receive buffer of a few KiB, so that replies the test does not read
    /// soon pile up on the server's side.
    pub async fn connect_small_window(addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        Self::over(socket.connect(addr)).await
    }

    async fn over(connect: impl Future<Output = std::io::Result<TcpStream>>) -> Self {
        let stream = tokio::time::timeout(TIMEOUT, connect)
            .await
            .expect("connect in time")
            .expect("connect");
        let (read, write) = stream.into_split();
        Self {
            reader: RecordReader::new(read, 64 << 20),
            writer: write,
            next_xid: 1,
            cred: sys_cred(0, 0),
        }
    }

    /// Builds a call record.
    pub fn build(
        &self,
        xid: u32,
        prog: u32,
        vers: u32,
        proc_num: u32,
        args: &dyn Fn(&mut XdrEncoder),
    ) -> Vec<u8> {
        let mut enc = XdrEncoder::new();
        MessageHeader::Call(CallHeader {
            xid,
            prog,
            vers,
            proc_num,
            cred: self.cred.clone(),
            verf: OpaqueAuth::none(),
        })
        .encode(&mut enc);
        args(&mut enc);
        enc.finish_contiguous().to_vec()
    }

    /// Sends a record as is.
    pub async fn send_record(&mut self, record: &[u8]) {
        write_record(&mut self.writer, &[Bytes::copy_from_slice(record)], 1 << 30)
            .await
            .expect("send");
        self.writer.flush().await.expect("flush");
    }

    /// Sends raw bytes (no record marking).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send raw");
        self.writer.flush().await.expect("flush");
    }

    /// Reads the next reply record; `None` when the server closed the connection.
    pub async fn read_reply_record(&mut self) -> Option<Bytes> {
        tokio::time::timeout(TIMEOUT, self.reader.read_record())
            .await
            .expect("reply in time")
            .ok()
            .flatten()
    }

    /// Reads the next reply and decodes its header.
    pub async fn read_reply(&mut self) -> RawReply {
        let record = self.read_reply_record().await.expect("a reply");
        let mut body = XdrDecoder::new(record);
        let MessageHeader::Reply(header) = MessageHeader::decode(&mut body).expect("reply header")
        else {
            panic!("not a reply");
        };
        RawReply { header, body }
    }

    /// Sends a call with the next XID and reads its reply.
    pub async fn call(
        &mut self,
        prog: u32,
        vers: u32,
        proc_num: u32,
        args: &dyn Fn(&mut XdrEncoder),
    ) -> RawReply {
        let xid = self.next_xid;
        self.next_xid += 1;
        let record = self.build(xid, prog, vers, proc_num, args);
        self.send_record(&record).await;
        let reply = self.read_reply().await;
        assert_eq!(reply.header.xid, xid);
        reply
    }

    /// An NFSv3 call; panics unless the RPC was accepted.
    pub async fn nfs(&mut self, call: Nfs3Call) -> Nfs3Reply {
        let proc_num = call.proc_num();
        let mut reply = self
            .call(PROGRAM, VERSION, proc_num, &|enc| call.encode(enc))
            .await;
        assert!(
            matches!(reply.header.status, ReplyStatus::Success { .. }),
            "{:?}",
            reply.header.status
        );
        let result = decode_reply(proc_num, &mut reply.body)
            .expect("decodable reply")
            .expect("known procedure");
        reply.body.finish().expect("no trailing bytes");
        result
    }

    pub async fn mount(&mut self, path: &str) -> MntRes {
        let args = MntArgs {
            dirpath: Bytes::copy_from_slice(path.as_bytes()),
        };
        let mut reply = self
            .call(mount::PROGRAM, mount::VERSION, mount::procs::MNT, &|enc| {
                MountCall::Mnt(args.clone()).encode(enc)
            })
            .await;
        match mount::decode_reply(mount::procs::MNT, &mut reply.body) {
            Ok(Some(MountReply::Mnt(res))) => res,
            other => panic!("bad MNT reply {other:?}"),
        }
    }

    pub async fn root(&mut self) -> FileHandle {
        match self.mount("/export").await {
            MntRes::Ok { fhandle, .. } => fhandle,
            MntRes::Fail(status) => panic!("MNT failed: {status}"),
        }
    }

    pub async fn getattr(&mut self, object: &FileHandle) -> GetattrRes {
        match self
            .nfs(Nfs3Call::Getattr(GetattrArgs {
                object: object.clone(),
            }))
            .await
        {
            Nfs3Reply::Getattr(res) => res,
            other => panic!("{other:?}"),
        }
    }

    pub async fn lookup(&mut self, dir: &FileHandle, name: &str) -> LookupRes {
        match self
            .nfs(Nfs3Call::Lookup(LookupArgs {
                what: dir_op(dir, name),
            }))
            .await
        {
            Nfs3Reply::Lookup(res) => res,
            other => panic!("{other:?}"),
        }
    }

    pub async fn create(&mut self, dir: &FileHandle, name: &str, how: CreateHow) -> CreateRes {
        match self
            .nfs(Nfs3Call::Create(CreateArgs {
                where_: dir_op(dir, name),
                how,
            }))
            .await
        {
            Nfs3Reply::Create(res) => res,
            other => panic!("{other:?}"),
        }
    }

    /// Creates a file (GUARDED, mode 0644) and returns its handle.
    pub async fn create_file(&mut self, dir: &FileHandle, name: &str) -> FileHandle {
        let attrs = Sattr {
            mode: Some(0o644),
            ..Sattr::default()
        };
        match self.create(dir, name, CreateHow::Guarded(attrs)).await {
            NfsRes::Ok(ok) => ok.obj.expect("handle"),
            NfsRes::Fail { status, .. } => panic!("CREATE {name}: {status}"),
        }
    }

    pub async fn write(
        &mut self,
        file: &FileHandle,
        offset: u64,
        data: &[u8],
        stable: StableHow,
    ) -> WriteRes {
        match self
            .nfs(Nfs3Call::Write(WriteArgs {
                file: file.clone(),
                offset,
                count: data.len() as u32,
                stable,
                data: Bytes::copy_from_slice(data),
            }))
            .await
        {
            Nfs3Reply::Write(res) => res,
            other => panic!("{other:?}"),
        }
    }

    pub async fn read(&mut self, file: &FileHandle, offset: u64, count: u32) -> ReadRes {
        match self
            .nfs(Nfs3Call::Read(ReadArgs {
                file: file.clone(),
                offset,
                count,
            }))
            .await
        {
            Nfs3Reply::Read(res) => res,
            other => panic!("{other:?}"),
        }
    }

    pub async fn commit(&mut self, file: &FileHandle) -> CommitRes {
        match self
            .nfs(Nfs3Call::Commit(CommitArgs {
                file: file.clone(),
                offset: 0,
                count: 0,
            }))
            .await
        {
            Nfs3Reply::Commit(res) => res,
            other => panic!("{other:?}"),
        }
    }

    pub async fn remove(&mut self, dir: &FileHandle, name: &str) -> RemoveRes {
        match self
            .nfs(Nfs3Call::Remove(RemoveArgs {
                object: dir_op(dir, name),
            }))
            .await
        {
            Nfs3Reply::Remove(res) => res,
            other => panic!("{other:?}"),
        }
    }
}

pub fn dir_op(dir: &FileHandle, name: &str) -> DirOpArgs {
    DirOpArgs {
        dir: dir.clone(),
        name: Bytes::copy_from_slice(name.as_bytes()),
    }
}

/// The status of any NFS result.
pub fn status<T, F>(res: &NfsRes<T, F>) -> Nfs3Status {
    res.status()
}
