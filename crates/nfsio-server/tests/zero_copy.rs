//! READ replies whose data goes from the file to the socket through a pipe (`splice`): every
//! reply must be the same record, byte for byte, as a copied one would be — framing, count,
//! eof, XDR padding — whether the READ fitted the pipe whole, in part (not page-aligned), or
//! was too small to splice, and however replies of one connection are batched.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use common::*;
use nfsio_proto::nfs3::*;
use nfsio_proto::rpc::ReplyStatus;
use nfsio_proto::{XdrDecode, XdrEncode};
use nfsio_server::{HandleSecret, LocalOptions, LocalStore};

const MIB: usize = 1 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ (i >> 12) as u8)
        .collect()
}

/// A server over a local store the test keeps a handle on (for its splice counter).
async fn start(dirs: &Dirs) -> (TestServer, Arc<LocalStore>) {
    let store = Arc::new(
        LocalStore::open(&dirs.export_path(), LocalOptions::default()).expect("store opens"),
    );
    let server = TestServer::start(store.clone(), &dirs.config(), HandleSecret::from_seed(7)).await;
    (server, store)
}

/// The READ calls: (offset, count) and what each exercises.
fn cases(size: usize) -> Vec<(u64, u32)> {
    vec![
        (0, MIB as u32),                       // page-aligned: the pipe takes it whole
        (1000, MIB as u32),                    // not aligned: pipe, then the rest copied
        (17, 20_001),                          // spliced, 3 bytes of XDR padding
        ((size - 100_005) as u64, MIB as u32), // to the end of the file: eof, padding
        ((size - 5) as u64, 4096),             // small: copied
        (size as u64, 4096),                   // at the end: nothing
        ((2 * MIB) as u64, 64 * 1024),         // aligned, smaller than the pipe
        ((size + 4096) as u64, MIB as u32),    // past the end
    ]
}

/// Sends every call before reading any reply (so the server batches replies, and its socket
/// fills while the test is not reading), then checks each reply against the file.
async fn read_pipelined(
    client: &mut TestClient,
    file: &FileHandle,
    data: &[u8],
    calls: &[(u64, u32)],
) {
    let mut expected = HashMap::new();
    for &(offset, count) in calls {
        let xid = client.next_xid;
        client.next_xid += 1;
        let args = ReadArgs {
            file: file.clone(),
            offset,
            count,
        };
        let record = client.build(xid, PROGRAM, VERSION, procs::READ, &|enc| args.encode(enc));
        client.send_record(&record).await;
        // A small call between the READs: its reply is batched with theirs.
        let getattr_xid = client.next_xid;
        client.next_xid += 1;
        let object = file.clone();
        let record = client.build(getattr_xid, PROGRAM, VERSION, procs::GETATTR, &|enc| {
            GetattrArgs {
                object: object.clone(),
            }
            .encode(enc)
        });
        client.send_record(&record).await;
        expected.insert(xid, Some((offset, count)));
        expected.insert(getattr_xid, None);
    }
    while !expected.is_empty() {
        let mut reply = client.read_reply().await;
        assert!(matches!(reply.header.status, ReplyStatus::Success { .. }));
        let call = expected
            .remove(&reply.header.xid)
            .expect("a reply to a call sent, once");
        match call {
            None => {
                let res = GetattrRes::decode(&mut reply.body).expect("GETATTR3res");
                let NfsRes::Ok(ok) = res else {
                    panic!("GETATTR failed")
                };
                assert_eq!(ok.obj_attributes.size, data.len() as u64);
            }
            Some((offset, count)) => {
                let res = ReadRes::decode(&mut reply.body).expect("READ3res");
                let NfsRes::Ok(ok) = res else {
                    panic!("READ failed")
                };
                let start = (offset as usize).min(data.len());
                let end = (start + count as usize).min(data.len());
                assert_eq!(ok.count as usize, end - start, "count at {offset}");
                assert_eq!(ok.data.len(), end - start, "data length at {offset}");
                assert!(ok.data[..] == data[start..end], "data at {offset}+{count}");
                assert_eq!(ok.eof, end == data.len(), "eof at {offset}");
            }
        }
        // The record ends exactly where the reply does (padding included, nothing after).
        assert_eq!(reply.body.remaining(), 0, "bytes after the reply");
    }
}

#[tokio::test]
async fn spliced_read_replies_are_the_records_a_copy_would_send() {
    let dirs = Dirs::new();
    let size = 3 * MIB + 5;
    let data = pattern(size);
    std::fs::write(dirs.export.path().join("f"), &data).unwrap();
    let (server, store) = start(&dirs).await;
    let mut client = server.client().await;
    let root = client.root().await;
    let file = match client.lookup(&root, "f").await {
        NfsRes::Ok(ok) => ok.object,
        NfsRes::Fail { status, .. } => panic!("lookup: {status}"),
    };

    let calls = cases(size);
    read_pipelined(&mut client, &file, &data, &calls).await;
    // The large READs went through pipes: at least the aligned MiB, the aligned 64 KiB and
    // the pipe's share of the unaligned ones.
    let spliced = store.spliced_bytes();
    assert!(
        spliced >= (MIB + 64 * 1024 + 20_001) as u64,
        "only {spliced} bytes spliced"
    );

    // Many 1 MiB READs in flight at once: more than the socket holds, so the writer waits for
    // the socket with bytes still in a pipe.
    let many: Vec<(u64, u32)> = (0..24)
        .map(|i| (((i * 337 * 1024) % (2 * MIB)) as u64, MIB as u32))
        .collect();
    read_pipelined(&mut client, &file, &data, &many).await;
    assert!(store.spliced_bytes() >= spliced + 20 * MIB as u64);
    server.stop().await;
}

/// Polls `done` until it holds; fails the test after [`TIMEOUT`].
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_connection_reset_with_replies_in_pipes_releases_them() {
    let dirs = Dirs::new();
    let size = 4 * MIB;
    let data = pattern(size);
    let path = dirs.export.path().join("f");
    std::fs::write(&path, &data).unwrap();
    let (server, store) = start(&dirs).await;

    let file = {
        let mut c = server.client().await;
        let root = c.root().await;
        match c.lookup(&root, "f").await {
            NfsRes::Ok(ok) => ok.object,
            NfsRes::Fail { status, .. } => panic!("lookup: {status}"),
        }
    };
    // Sixteen 1 MiB READs from a client with a tiny receive window that reads nothing: once
    // the server has served them all, most of their bytes are stuck in pipes.
    let mut first = TestClient::connect_small_window(server.addr).await;
    for i in 0..16u64 {
        let args = ReadArgs {
            file: file.clone(),
            offset: (i % 4) * MIB as u64,
            count: MIB as u32,
        };
        let record = first.build(100 + i as u32, PROGRAM, VERSION, procs::READ, &|enc| {
            args.encode(enc)
        });
        first.send_record(&record).await;
    }
    wait_until("all 16 READs served", || {
        store.spliced_bytes() >= 16 * MIB as u64
    })
    .await;
    assert!(store.pipes_in_use() > 0, "replies waiting in pipes");
    // The client goes away with replies unread (a reset): the server must close, not reuse,
    // the pipes that still hold bytes.
    drop(first);
    wait_until("every pipe released", || store.pipes_in_use() == 0).await;

    // New contents, read on a new connection: a pipe that still held the old bytes must not
    // have been reused.
    let changed: Vec<u8> = data.iter().map(|b| b ^ 0xa5).collect();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(&changed, 0)
        .unwrap();
    let mut second = server.client().await;
    let calls: Vec<(u64, u32)> = (0..8).map(|i| ((i % 4) * MIB as u64, MIB as u32)).collect();
    read_pipelined(&mut second, &file, &changed, &calls).await;
    server.stop().await;
}
