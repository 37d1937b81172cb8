//! A raw RPC client for tests that must control every byte they send: hand-built call
//! headers, credentials and lengths over one TCP connection, replies read and decoded as
//! they come. The server's procedure and adversarial suites speak to servers with it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use nfsio_proto::mount::{self, MntArgs, MntRes, MountCall, MountReply};
use nfsio_proto::nfs3::*;
use nfsio_proto::rpc::{
    AuthSysParams, CallHeader, MessageHeader, OpaqueAuth, ReplyHeader, ReplyStatus,
};
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder};
use nfsio_rpc::record::{RecordReader, write_record};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long the client waits for a connection or a reply before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A decoded reply: its header and the undecoded results.
pub struct RawReply {
    /// The reply header.
    pub header: ReplyHeader,
    /// A decoder positioned at the results.
    pub body: XdrDecoder,
}

/// A hand-driven RPC client over one TCP connection.
pub struct TestClient {
    reader: RecordReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The XID of the next call made with [`TestClient::call`].
    pub next_xid: u32,
    /// The credentials every call carries (AUTH_SYS root by default).
    pub cred: OpaqueAuth,
}

/// AUTH_SYS credentials of `uid` and `gid`, no supplementary groups.
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
    /// Connects to `addr`.
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
        Self::from_stream(stream)
    }

    /// A client over a stream already connected (made with particular socket options, or by
    /// a thread with a particular identity).
    pub fn from_stream(stream: TcpStream) -> Self {
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
        args: &(dyn Fn(&mut XdrEncoder) + Sync),
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
        args: &(dyn Fn(&mut XdrEncoder) + Sync),
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

    /// MOUNT v3 MNT of `path`.
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

    /// The root handle of `/export`.
    pub async fn root(&mut self) -> FileHandle {
        match self.mount("/export").await {
            MntRes::Ok { fhandle, .. } => fhandle,
            MntRes::Fail(status) => panic!("MNT failed: {status}"),
        }
    }

    /// GETATTR.
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

    /// LOOKUP.
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

    /// CREATE.
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

    /// WRITE.
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

    /// READ.
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

    /// COMMIT of the whole file.
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

    /// REMOVE.
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

/// `diropargs3` of `name` in `dir`.
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
