//! Fuzzes the server's request path: RPC records into `Service::handle`, against the memory
//! store, never through a socket.
//!
//! The input is a sequence of chunks. A raw chunk goes to the server as a whole record (header
//! decoding, authentication, program dispatch). A structured chunk becomes a well-formed NFSv3
//! (or MOUNT) call header with a *valid* file handle from a small tree, followed by fuzzer bytes
//! as arguments — the fuzzer cannot forge a handle's MAC, so without this it would never get
//! past the handle check into the procedures and the store.
//!
//! Oracles: no panic; every reply is a well-formed RPC reply for the call's XID; every accepted
//! NFSv3 reply decodes with the protocol decoder and fills its record exactly; a WRITE or
//! COMMIT that succeeds carries the server's current verifier.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nfsio_proto::nfs3::{self, CreateHow, FileHandle, Nfs3Reply, NfsRes, Sattr, StableHow};
use nfsio_proto::rpc::{AuthSysParams, CallHeader, MessageHeader, OpaqueAuth, ReplyStatus};
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder};
use nfsio_server::{
    Caller, CreateMode, HandleSecret, MemStore, Response, Service, ServiceConfig, Storage,
};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A store with a directory, a file with data, a symbolic link and a removed file.
fn setup() -> (Service, Vec<FileHandle>) {
    let store = Arc::new(MemStore::new());
    let owner = Caller::root();
    let root = store.root();
    let attrs = Sattr::default();
    let dir = store.mkdir(&owner, root, b"d", &attrs).expect("mkdir").id;
    let file = store
        .create(&owner, dir, b"f", CreateMode::Guarded(&attrs))
        .expect("create")
        .id;
    store
        .write(&owner, file, 0, &Bytes::from_static(b"some data"), StableHow::Unstable)
        .expect("write");
    let link = store
        .symlink(&owner, root, b"l", b"../outside", &attrs)
        .expect("symlink")
        .id;
    let gone = store
        .create(&owner, root, b"gone", CreateMode::Guarded(&attrs))
        .expect("create")
        .id;
    store.remove(&owner, root, b"gone").expect("remove");
    let storage: Arc<dyn Storage> = store;
    let service = Service::new(
        storage,
        ServiceConfig::for_tests(0),
        HandleSecret::from_seed(0),
    );
    let handles = [root, dir, file, link, gone]
        .into_iter()
        .map(|id| service.handle_of(id))
        .collect();
    (service, handles)
}

fn header(xid: u32, prog: u32, vers: u32, proc_num: u32, uid: u32) -> XdrEncoder {
    let mut enc = XdrEncoder::new();
    let cred = if uid == u32::MAX {
        OpaqueAuth::none()
    } else {
        OpaqueAuth::sys(&AuthSysParams {
            stamp: 1,
            machine_name: Bytes::from_static(b"fuzz"),
            uid,
            gid: uid,
            gids: vec![],
        })
    };
    MessageHeader::Call(CallHeader {
        xid,
        prog,
        vers,
        proc_num,
        cred,
        verf: OpaqueAuth::none(),
    })
    .encode(&mut enc);
    enc
}

/// Checks a reply against the call it answers.
fn check(service: &Service, xid: Option<u32>, nfs_proc: Option<u32>, response: Response) {
    let Response::Reply(segments) = response else {
        return;
    };
    let mut record = Vec::new();
    for segment in &segments {
        record.extend_from_slice(segment);
    }
    let mut dec = XdrDecoder::new(Bytes::from(record));
    let Ok(MessageHeader::Reply(reply)) = MessageHeader::decode(&mut dec) else {
        panic!("the server sent something that is not a reply");
    };
    if let Some(expected) = xid {
        assert_eq!(reply.xid, expected);
    }
    let (Some(proc_num), ReplyStatus::Success { .. }) = (nfs_proc, &reply.status) else {
        return;
    };
    let results = nfs3::decode_reply(proc_num, &mut dec)
        .expect("the server's reply decodes")
        .expect("a known procedure");
    dec.finish().expect("the reply fills its record");
    match results {
        Nfs3Reply::Write(NfsRes::Ok(ok)) => assert_eq!(ok.verf, service.write_verifier()),
        Nfs3Reply::Commit(NfsRes::Ok(ok)) => assert_eq!(ok.verf, service.write_verifier()),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (service, handles) = setup();
    let mut input = data;
    let mut xid = 0u32;
    while input.len() >= 2 {
        let kind = input[0];
        let len = usize::from(input[1]) * 4;
        let chunk = &input[2..input.len().min(2 + len)];
        input = &input[(2 + len).min(input.len())..];
        xid = xid.wrapping_add(1);
        match kind % 4 {
            // The bytes as a whole record.
            0 => {
                let response = service.handle(CLIENT, Bytes::copy_from_slice(chunk));
                check(&service, None, None, response);
            }
            // An NFSv3 call with a valid handle, then fuzzer bytes.
            1 | 2 => {
                let Some((&selector, rest)) = chunk.split_first() else {
                    continue;
                };
                let proc_num = u32::from(selector % 23);
                let uid = match kind >> 4 {
                    0 => 0,
                    1 => u32::MAX,
                    n => u32::from(n) * 1000,
                };
                let mut enc = header(xid, nfs3::PROGRAM, nfs3::VERSION, proc_num, uid);
                handles[usize::from(selector >> 5) % handles.len()].encode(&mut enc);
                if kind % 4 == 2 {
                    // A second handle (RENAME, LINK) and a name first.
                    enc.put_opaque(b"n");
                    handles[usize::from(selector) % handles.len()].encode(&mut enc);
                }
                enc.put_opaque_fixed(rest);
                let response = service.handle(CLIENT, enc.finish_contiguous());
                check(&service, Some(xid), Some(proc_num), response);
            }
            // A well-formed CREATE or MOUNT call built from the bytes.
            _ => {
                let name = Bytes::copy_from_slice(&chunk[..chunk.len().min(8)]);
                if kind & 0x10 == 0 {
                    let args = nfs3::CreateArgs {
                        where_: nfs3::DirOpArgs {
                            dir: handles[usize::from(kind >> 5) % handles.len()].clone(),
                            name,
                        },
                        how: CreateHow::Unchecked(Sattr {
                            size: chunk.get(8).map(|&b| u64::from(b)),
                            ..Sattr::default()
                        }),
                    };
                    let mut enc = header(xid, nfs3::PROGRAM, nfs3::VERSION, nfs3::procs::CREATE, 0);
                    args.encode(&mut enc);
                    let response = service.handle(CLIENT, enc.finish_contiguous());
                    check(&service, Some(xid), Some(nfs3::procs::CREATE), response);
                } else {
                    let mut enc = header(xid, nfsio_proto::mount::PROGRAM, 3, u32::from(kind % 6), 0);
                    enc.put_opaque(&name);
                    let response = service.handle(CLIENT, enc.finish_contiguous());
                    check(&service, Some(xid), None, response);
                }
            }
        }
    }
});
