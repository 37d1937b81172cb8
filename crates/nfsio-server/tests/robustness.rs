//! What a hostile or unlucky network does: retransmissions on new connections, oversized
//! records, garbage, unknown programs and flavors.

mod common;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use common::*;
use nfsio_proto::nfs3::*;
use nfsio_proto::rpc::{AcceptError, AuthStat, OpaqueAuth, ReplyStatus};
use nfsio_proto::{XdrDecode, XdrEncode};
use nfsio_server::{HandleSecret, MemStore, Response, Service, ServiceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ok<T: std::fmt::Debug, F: std::fmt::Debug>(res: NfsRes<T, F>) -> T {
    match res {
        NfsRes::Ok(ok) => ok,
        NfsRes::Fail { status, fail } => panic!("{status}: {fail:?}"),
    }
}

fn accept_error(status: &ReplyStatus) -> Option<AcceptError> {
    match status {
        ReplyStatus::AcceptError { error, .. } => Some(*error),
        _ => None,
    }
}

#[tokio::test]
async fn retransmitted_create_on_a_new_connection_gets_the_original_reply() {
    let dirs = Dirs::new();
    let server = TestServer::bind(dirs.config()).await;
    let mut first = server.client().await;
    let root = first.root().await;
    let args = CreateArgs {
        where_: dir_op(&root, "once"),
        how: CreateHow::Guarded(Sattr {
            mode: Some(0o644),
            ..Sattr::default()
        }),
    };
    let record = first.build(0xabcd, PROGRAM, VERSION, procs::CREATE, &|enc| {
        args.encode(enc)
    });
    first.send_record(&record).await;
    let original = first.read_reply_record().await.unwrap();
    drop(first);

    // The client reconnects (new port) and retransmits the same call.
    let mut second = server.client().await;
    second.send_record(&record).await;
    let replayed = second.read_reply_record().await.unwrap();
    assert_eq!(replayed, original, "the original reply, not NFS3ERR_EXIST");
    let mut dec = nfsio_proto::XdrDecoder::new(replayed);
    nfsio_proto::rpc::MessageHeader::decode(&mut dec).unwrap();
    let res = CreateRes::decode(&mut dec).unwrap();
    assert!(res.is_ok());

    // The same arguments under a new XID are a new call: EXIST.
    let fresh = second.create(&root, "once", args.how.clone()).await;
    assert_eq!(fresh.status(), Nfs3Status::Exist);
    server.stop().await;
}

#[tokio::test]
async fn exclusive_create_is_idempotent_without_the_cache() {
    let dirs = Dirs::new();
    let server = TestServer::bind(dirs.config()).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let verf = CreateVerifier(*b"verifier");
    let a = ok(c.create(&root, "x", CreateHow::Exclusive(verf)).await);
    // A retransmission with a new XID (the cache cannot help) and the same verifier.
    let b = ok(c.create(&root, "x", CreateHow::Exclusive(verf)).await);
    assert_eq!(a.obj, b.obj);
    let other = CreateVerifier(*b"someone!");
    assert_eq!(
        c.create(&root, "x", CreateHow::Exclusive(other))
            .await
            .status(),
        Nfs3Status::Exist
    );
    server.stop().await;

    // The memory store too.
    let server = TestServer::memory(Arc::new(MemStore::new()), 9).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let a = ok(c.create(&root, "x", CreateHow::Exclusive(verf)).await);
    let b = ok(c.create(&root, "x", CreateHow::Exclusive(verf)).await);
    assert_eq!(a.obj, b.obj);
    assert_eq!(
        c.create(&root, "x", CreateHow::Exclusive(other))
            .await
            .status(),
        Nfs3Status::Exist
    );
    server.stop().await;
}

fn vm_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn an_oversized_record_closes_the_connection_without_allocating_it() {
    let dirs = Dirs::new();
    let server = TestServer::bind(dirs.config()).await;
    let rss_before = vm_rss_bytes();
    let started = Instant::now();
    let mut victims = Vec::new();
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        // A 1 GiB fragment is announced; a few bytes of it follow.
        stream
            .write_all(&(0x8000_0000u32 | (1 << 30)).to_be_bytes())
            .await
            .unwrap();
        let _ = stream.write_all(&[0u8; 1000]).await;
        victims.push(stream);
    }
    for mut stream in victims {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
            .await
            .expect("the server closes the connection promptly");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert!(started.elapsed() < TIMEOUT);
    let grown = vm_rss_bytes().saturating_sub(rss_before);
    assert!(grown < 64 << 20, "RSS grew by {grown} bytes");

    // A fragment just over the limit is refused too; one within it is served.
    let max = nfsio_server::Limits::default().max_record_bytes;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(&(0x8000_0000u32 | (max + 1)).to_be_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(TIMEOUT, stream.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)));

    // The server still answers everyone else.
    let mut c = server.client().await;
    assert_eq!(c.nfs(Nfs3Call::Null).await, Nfs3Reply::Null);
    server.stop().await;
}

/// An unsupported flavor (RPCSEC_GSS) and a malformed AUTH_SYS body are refused; AUTH_NONE is
/// served (as the anonymous user).
async fn credentials_are_checked(c: &mut TestClient) {
    c.cred = OpaqueAuth {
        flavor: 6,
        body: Bytes::from_static(&[0; 8]),
    };
    let reply = c.call(PROGRAM, VERSION, 0, &|_| {}).await;
    assert_eq!(
        reply.header.status,
        ReplyStatus::AuthError(AuthStat::TooWeak)
    );
    c.cred = OpaqueAuth {
        flavor: 1,
        body: Bytes::from_static(&[0, 0, 0, 1]),
    };
    let reply = c.call(PROGRAM, VERSION, 0, &|_| {}).await;
    assert_eq!(
        reply.header.status,
        ReplyStatus::AuthError(AuthStat::BadCred)
    );
    // AUTH_NONE is served (as the anonymous user).
    c.cred = OpaqueAuth::none();
    assert_eq!(c.nfs(Nfs3Call::Null).await, Nfs3Reply::Null);
}

#[tokio::test]
async fn rpc_level_errors_are_answered_and_the_connection_survives() {
    let dirs = Dirs::new();
    let server = TestServer::bind(dirs.config()).await;
    let mut c = server.client().await;

    // Unknown program, wrong versions, unknown procedure.
    let reply = c.call(200_000, 1, 0, &|_| {}).await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::ProgUnavail)
    );
    let reply = c.call(PROGRAM, 2, 0, &|_| {}).await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::ProgMismatch { low: 3, high: 3 })
    );
    // MOUNT versions 1 to 3 are answered (1 and 2 without MNT); 4 is not.
    let reply = c.call(nfsio_proto::mount::PROGRAM, 4, 0, &|_| {}).await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::ProgMismatch { low: 1, high: 3 })
    );
    let reply = c.call(nfsio_proto::mount::PROGRAM, 1, 0, &|_| {}).await;
    assert_eq!(accept_error(&reply.header.status), None, "MOUNT v1 NULL");
    let reply = c
        .call(
            nfsio_proto::mount::PROGRAM,
            1,
            nfsio_proto::mount::procs::MNT,
            &|_| {},
        )
        .await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::ProcUnavail),
        "MOUNT v1 MNT would need an NFSv2 handle"
    );
    let reply = c.call(nfsio_proto::portmap::PROGRAM, 5, 0, &|_| {}).await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::ProgMismatch { low: 2, high: 4 })
    );
    let reply = c.call(PROGRAM, VERSION, 22, &|_| {}).await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::ProcUnavail)
    );

    // Truncated and malformed arguments.
    let reply = c
        .call(PROGRAM, VERSION, procs::READ, &|enc| enc.put_u32(44))
        .await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::GarbageArgs)
    );
    let root = c.root().await;
    let reply = c
        .call(PROGRAM, VERSION, procs::WRITE, &|enc| {
            root.encode(enc);
            enc.put_u64(0);
            enc.put_u32(1);
            enc.put_u32(7); // not a stable_how
            enc.put_opaque(b"x");
        })
        .await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::GarbageArgs)
    );
    // Trailing bytes after the arguments.
    let reply = c
        .call(PROGRAM, VERSION, procs::GETATTR, &|enc| {
            root.encode(enc);
            enc.put_u32(0);
        })
        .await;
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::GarbageArgs)
    );

    // RPC version 3.
    let mut record = c.build(77, PROGRAM, VERSION, 0, &|_| {});
    record[8..12].copy_from_slice(&3u32.to_be_bytes());
    c.send_record(&record).await;
    let reply = c.read_reply().await;
    assert_eq!(reply.header.xid, 77);
    assert_eq!(
        reply.header.status,
        ReplyStatus::RpcMismatch { low: 2, high: 2 }
    );

    credentials_are_checked(&mut c).await;
    server.stop().await;
}

#[tokio::test]
async fn garbage_records_get_garbage_args_or_a_closed_connection() {
    let dirs = Dirs::new();
    let server = TestServer::bind(dirs.config()).await;
    // Not even an RPC message: the connection is closed.
    let mut c = server.client().await;
    c.send_record(&[0xff; 3]).await;
    assert!(c.read_reply_record().await.is_none());
    let mut c = server.client().await;
    c.send_record(&[0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4]).await;
    assert!(c.read_reply_record().await.is_none());
    // A call header cut short: GARBAGE_ARGS for its XID.
    let mut c = server.client().await;
    c.send_record(&[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1])
        .await;
    let reply = c.read_reply().await;
    assert_eq!(reply.header.xid, 5);
    assert_eq!(
        accept_error(&reply.header.status),
        Some(AcceptError::GarbageArgs)
    );
    // Raw noise that is not even record marking.
    let mut c = server.client().await;
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(c.read_reply_record().await.is_none());
    // The server is fine.
    let mut c = server.client().await;
    assert_eq!(c.nfs(Nfs3Call::Null).await, Nfs3Reply::Null);
    server.stop().await;
}

/// A small deterministic generator (no dependency needed for a test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn the_service_never_panics_on_mutated_calls() {
    let store = Arc::new(MemStore::new());
    let service = Service::new(
        store,
        ServiceConfig::for_tests(11),
        HandleSecret::from_seed(11),
    );
    let client = "127.0.0.1".parse().unwrap();
    let root = service.root_handle();
    // Valid calls of every procedure as seeds, then mutated bytes, lengths and words.
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for proc_num in 0..23u32 {
        let mut enc = nfsio_proto::XdrEncoder::new();
        nfsio_proto::rpc::MessageHeader::Call(nfsio_proto::rpc::CallHeader {
            xid: proc_num,
            prog: PROGRAM,
            vers: VERSION,
            proc_num,
            cred: sys_cred(0, 0),
            verf: OpaqueAuth::none(),
        })
        .encode(&mut enc);
        root.encode(&mut enc);
        enc.put_opaque(b"name");
        enc.put_u64(0);
        enc.put_u32(16);
        enc.put_u32(1);
        enc.put_opaque(b"data");
        seeds.push(enc.finish_contiguous().to_vec());
    }
    let mut rng = Lcg(1);
    let mut replies = 0;
    for round in 0..20_000 {
        let mut record = seeds[round % seeds.len()].clone();
        for _ in 0..(rng.next() % 4 + 1) {
            let len = record.len();
            match rng.next() % 4 {
                0 => record[rng.next() as usize % len] ^= 1 << (rng.next() % 8),
                1 => record.truncate(rng.next() as usize % len),
                2 => {
                    let at = (rng.next() as usize % len.max(4)) & !3;
                    if at + 4 <= record.len() {
                        record[at..at + 4].copy_from_slice(&(rng.next() as u32).to_be_bytes());
                    }
                }
                _ => record.extend((0..rng.next() % 16).map(|_| rng.next() as u8)),
            }
            if record.is_empty() {
                break;
            }
        }
        if let Response::Reply(_) = service.handle(client, Bytes::from(record)) {
            replies += 1;
        }
    }
    assert!(replies > 10_000, "most mutated calls still get an answer");
    // And the service still works.
    let mut enc = nfsio_proto::XdrEncoder::new();
    nfsio_proto::rpc::MessageHeader::Call(nfsio_proto::rpc::CallHeader {
        xid: 1,
        prog: PROGRAM,
        vers: VERSION,
        proc_num: 0,
        cred: OpaqueAuth::none(),
        verf: OpaqueAuth::none(),
    })
    .encode(&mut enc);
    assert!(matches!(
        service.handle(client, enc.finish_contiguous()),
        Response::Reply(_)
    ));
}
