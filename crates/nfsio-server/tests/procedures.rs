//! The procedures of NFSv3, MOUNT v3 and portmap v2, one by one: the storage contract, each
//! case run over the local store (`local::*`) and over the memory store (`memory::*`, what the
//! simulation trusts as ground truth), seeded and checked behind the server's back through
//! `nfsio_testkit::StoreView`.
//!
//! Not in the contract: `separate_mount_and_portmap_listeners` checks what `Server::bind`
//! sets up (MOUNT and the portmapper on ports of their own, over UDP too), which no store
//! decides. The store-independent cases of stability and handles are stamped out the same way
//! in stability.rs and handles.rs.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::stores::{Store, store_contract};
use common::*;
use nfsio_proto::XdrEncode;
use nfsio_proto::mount::{self, MntRes, MountCall, MountReply};
use nfsio_proto::nfs3::*;
use nfsio_proto::portmap::{self, Mapping, PortmapCall, PortmapReply};

fn ok<T: std::fmt::Debug, F: std::fmt::Debug>(res: NfsRes<T, F>) -> T {
    match res {
        NfsRes::Ok(ok) => ok,
        NfsRes::Fail { status, fail } => panic!("{status}: {fail:?}"),
    }
}

async fn readdir(c: &mut TestClient, dir: &FileHandle, cookie: u64, count: u32) -> ReaddirRes {
    match c
        .nfs(Nfs3Call::Readdir(ReaddirArgs {
            dir: dir.clone(),
            cookie,
            cookieverf: CookieVerifier::default(),
            count,
        }))
        .await
    {
        Nfs3Reply::Readdir(res) => res,
        other => panic!("{other:?}"),
    }
}

store_contract!(
    readdir_pages_through_every_entry_once_and_respects_count,
    readdirplus_returns_usable_handles_within_maxcount,
    namespace_procedures_and_their_errors,
    setattr_sizes_times_and_the_guard,
    fsinfo_fsstat_pathconf,
    mount_protocol,
    many_concurrent_calls_on_one_connection,
    tight_limits_throttle_but_never_deadlock,
    a_client_that_does_not_read_its_replies_starves_nobody,
);

async fn readdir_pages_through_every_entry_once_and_respects_count<S: Store>() {
    let store = S::start().await;
    let mut expected = BTreeSet::new();
    for i in 0..300 {
        let name = format!("entry-with-a-longish-name-{i:04}");
        store.view().put_file(&name, b"");
        expected.insert(name);
    }
    expected.insert(".".to_owned());
    expected.insert("..".to_owned());
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;

    let count = 1024;
    let mut seen = BTreeSet::new();
    let mut cookie = 0;
    let mut calls = 0;
    loop {
        let page = ok(readdir(&mut c, &root, cookie, count).await);
        calls += 1;
        let size = nfsio_proto::xdr::to_bytes(&page).len() + 4;
        assert!(
            size <= count as usize,
            "reply of {size} bytes for count {count}"
        );
        for entry in &page.entries {
            let name = String::from_utf8(entry.name.to_vec()).unwrap();
            assert!(seen.insert(name), "an entry listed twice");
        }
        if page.eof {
            break;
        }
        cookie = page.entries.last().expect("progress").cookie;
        // Changing the directory between pages loses nothing that stays.
        if calls == 3 {
            store.view().put_file("added-later", b"");
        }
        assert!(calls < 1000);
    }
    assert!(calls > 5, "small pages");
    seen.remove("added-later");
    assert_eq!(seen, expected);

    // Too small for a single entry.
    assert_eq!(
        readdir(&mut c, &root, 0, 100).await.status(),
        Nfs3Status::TooSmall
    );
    // Not a directory.
    let file = ok(c.lookup(&root, "entry-with-a-longish-name-0000").await).object;
    assert_eq!(
        readdir(&mut c, &file, 0, 4096).await.status(),
        Nfs3Status::NotDir
    );
    store.stop().await;
}

async fn readdirplus_returns_usable_handles_within_maxcount<S: Store>() {
    let store = S::start().await;
    for i in 0..50 {
        store.view().put_file(&format!("f{i}"), &vec![0u8; i]);
    }
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let mut cookie = 0;
    let mut files = 0;
    loop {
        let maxcount = 2048;
        let page = match c
            .nfs(Nfs3Call::Readdirplus(ReaddirplusArgs {
                dir: root.clone(),
                cookie,
                cookieverf: CookieVerifier::default(),
                dircount: 512,
                maxcount,
            }))
            .await
        {
            Nfs3Reply::Readdirplus(res) => ok(res),
            other => panic!("{other:?}"),
        };
        let size = nfsio_proto::xdr::to_bytes(&page).len() + 4;
        assert!(size <= maxcount as usize);
        for entry in &page.entries {
            if entry.name.starts_with(b"f") {
                files += 1;
                let handle = entry.name_handle.clone().expect("a handle");
                let attr = ok(c.getattr(&handle).await).obj_attributes;
                assert_eq!(Some(&attr), entry.name_attributes.as_ref());
                let expected_len: u64 = std::str::from_utf8(&entry.name[1..])
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(attr.size, expected_len);
            }
        }
        if page.eof {
            break;
        }
        cookie = page.entries.last().unwrap().cookie;
    }
    assert_eq!(files, 50);
    store.stop().await;
}

/// MKNOD in `d`: FIFO and socket; devices and regular files are refused.
async fn mknod_makes_fifos_and_sockets_only(
    c: &mut TestClient,
    view: &dyn nfsio_testkit::StoreView,
    d: &FileHandle,
) {
    for (name, what) in [
        ("fifo", MknodData::Fifo(Sattr::default())),
        ("sock", MknodData::Socket(Sattr::default())),
    ] {
        match c
            .nfs(Nfs3Call::Mknod(MknodArgs {
                where_: dir_op(d, name),
                what,
            }))
            .await
        {
            Nfs3Reply::Mknod(res) => {
                ok(res);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(view.file_type("d/fifo"), FileType::Fifo);
    assert_eq!(view.file_type("d/sock"), FileType::Socket);
    let fifo = ok(c.lookup(d, "fifo").await);
    assert_eq!(fifo.obj_attributes.unwrap().file_type, FileType::Fifo);
    // READ of a FIFO must not block the server.
    assert_eq!(
        c.read(&fifo.object, 0, 10).await.status(),
        Nfs3Status::Inval
    );
    let device = c
        .nfs(Nfs3Call::Mknod(MknodArgs {
            where_: dir_op(d, "dev"),
            what: MknodData::Block(DeviceData::default()),
        }))
        .await;
    assert_eq!(device.status(), Nfs3Status::NotSupp);
    let bad = c
        .nfs(Nfs3Call::Mknod(MknodArgs {
            where_: dir_op(d, "reg"),
            what: MknodData::Other(FileType::Regular),
        }))
        .await;
    assert_eq!(bad.status(), Nfs3Status::BadType);
}

async fn namespace_procedures_and_their_errors<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let view = store.view();

    // MKDIR, then weak cache consistency of the parent.
    let dir = match c
        .nfs(Nfs3Call::Mkdir(MkdirArgs {
            where_: dir_op(&root, "d"),
            attributes: Sattr {
                mode: Some(0o750),
                ..Sattr::default()
            },
        }))
        .await
    {
        Nfs3Reply::Mkdir(res) => ok(res),
        other => panic!("{other:?}"),
    };
    assert!(dir.dir_wcc.before.is_some() && dir.dir_wcc.after.is_some());
    assert_eq!(dir.obj_attributes.as_ref().unwrap().mode, 0o750);
    assert_eq!(
        dir.obj_attributes.as_ref().unwrap().file_type,
        FileType::Directory
    );
    let d = dir.obj.unwrap();
    let f = c.create_file(&d, "f").await;
    assert_eq!(
        c.create(&d, "f", CreateHow::Guarded(Sattr::default()))
            .await
            .status(),
        Nfs3Status::Exist
    );

    // LOOKUP errors.
    assert_eq!(c.lookup(&root, "missing").await.status(), Nfs3Status::NoEnt);
    assert_eq!(c.lookup(&f, "x").await.status(), Nfs3Status::NotDir);

    mknod_makes_fifos_and_sockets_only(&mut c, view, &d).await;

    // LINK, RENAME, REMOVE, RMDIR.
    match c
        .nfs(Nfs3Call::Link(LinkArgs {
            file: f.clone(),
            link: dir_op(&root, "hard"),
        }))
        .await
    {
        Nfs3Reply::Link(res) => assert_eq!(ok(res).file_attributes.unwrap().nlink, 2),
        other => panic!("{other:?}"),
    }
    match c
        .nfs(Nfs3Call::Rename(RenameArgs {
            from: dir_op(&root, "hard"),
            to: dir_op(&d, "renamed"),
        }))
        .await
    {
        Nfs3Reply::Rename(res) => {
            let res = ok(res);
            assert!(res.fromdir_wcc.after.is_some() && res.todir_wcc.after.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(view.exists("d/renamed") && !view.exists("hard"));
    assert_eq!(ok(c.lookup(&d, "renamed").await).object, f);
    let rmdir = |name: &str| {
        Nfs3Call::Rmdir(RmdirArgs {
            object: dir_op(&root, name),
        })
    };
    assert_eq!(c.nfs(rmdir("d")).await.status(), Nfs3Status::NotEmpty);
    assert_eq!(c.remove(&root, "d").await.status(), Nfs3Status::IsDir);
    for name in ["f", "renamed", "fifo", "sock"] {
        ok(c.remove(&d, name).await);
    }
    assert_eq!(c.remove(&d, "f").await.status(), Nfs3Status::NoEnt);
    assert_eq!(c.nfs(rmdir("d")).await.status(), Nfs3Status::Ok);
    assert_eq!(c.getattr(&d).await.status(), Nfs3Status::Stale);
    assert_eq!(c.getattr(&f).await.status(), Nfs3Status::Stale);
    // `.` and `..` are not names to create or remove.
    assert_eq!(
        c.create(&root, "..", CreateHow::Unchecked(Sattr::default()))
            .await
            .status(),
        Nfs3Status::Inval
    );
    store.stop().await;
}

async fn setattr_sizes_times_and_the_guard<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let f = c.create_file(&root, "f").await;
    c.write(&f, 0, b"0123456789", StableHow::FileSync).await;
    let setattr = |attrs: Sattr, guard: Option<NfsTime>| {
        Nfs3Call::Setattr(SetattrArgs {
            object: f.clone(),
            new_attributes: attrs,
            guard,
        })
    };
    let res = match c
        .nfs(setattr(
            Sattr {
                size: Some(4),
                mtime: SetTime::ClientTime(NfsTime {
                    seconds: 1_000_000_000,
                    nseconds: 5,
                }),
                ..Sattr::default()
            },
            None,
        ))
        .await
    {
        Nfs3Reply::Setattr(res) => ok(res),
        other => panic!("{other:?}"),
    };
    assert_eq!(res.obj_wcc.before.unwrap().size, 10);
    let after = res.obj_wcc.after.unwrap();
    assert_eq!(after.size, 4);
    assert_eq!(
        after.mtime,
        NfsTime {
            seconds: 1_000_000_000,
            nseconds: 5
        }
    );
    assert_eq!(store.view().content("f").unwrap(), b"0123");
    // A guard with a stale ctime: NOT_SYNC, nothing changed.
    let stale = NfsTime {
        seconds: 1,
        nseconds: 0,
    };
    let reply = c
        .nfs(setattr(
            Sattr {
                size: Some(0),
                ..Sattr::default()
            },
            Some(stale),
        ))
        .await;
    assert_eq!(reply.status(), Nfs3Status::NotSync);
    assert_eq!(store.view().content("f").unwrap(), b"0123");
    // With the right ctime it applies.
    let reply = c
        .nfs(setattr(
            Sattr {
                size: Some(0),
                ..Sattr::default()
            },
            Some(after.ctime),
        ))
        .await;
    assert_eq!(reply.status(), Nfs3Status::Ok);
    assert_eq!(store.view().content("f").unwrap(), b"");
    // UNCHECKED create of an existing file with size 0 truncates it (O_TRUNC).
    c.write(&f, 0, b"abc", StableHow::Unstable).await;
    let again = ok(c
        .create(
            &root,
            "f",
            CreateHow::Unchecked(Sattr {
                size: Some(0),
                ..Sattr::default()
            }),
        )
        .await);
    assert_eq!(again.obj.unwrap(), f);
    assert_eq!(again.obj_attributes.unwrap().size, 0);
    store.stop().await;
}

async fn fsinfo_fsstat_pathconf<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let info = match c
        .nfs(Nfs3Call::Fsinfo(FsinfoArgs {
            fsroot: root.clone(),
        }))
        .await
    {
        Nfs3Reply::Fsinfo(res) => ok(res),
        other => panic!("{other:?}"),
    };
    assert_eq!((info.rtmax, info.wtmax), (1 << 20, 1 << 20));
    assert_eq!((info.rtpref, info.wtpref), (1 << 20, 1 << 20));
    assert_eq!(info.dtpref, 64 * 1024);
    assert_eq!(
        info.time_delta,
        NfsTime {
            seconds: 0,
            nseconds: S::TIME_DELTA_NS
        }
    );
    assert_eq!(
        info.properties,
        fsf::LINK | fsf::SYMLINK | fsf::HOMOGENEOUS | fsf::CANSETTIME
    );
    assert!(info.maxfilesize >= S::MAX_FILE_BYTES_AT_LEAST, "{info:?}");
    let stat = match c
        .nfs(Nfs3Call::Fsstat(FsstatArgs {
            fsroot: root.clone(),
        }))
        .await
    {
        Nfs3Reply::Fsstat(res) => ok(res),
        other => panic!("{other:?}"),
    };
    assert!(stat.tbytes > 0 && stat.fbytes <= stat.tbytes && stat.abytes <= stat.fbytes);
    let conf = match c
        .nfs(Nfs3Call::Pathconf(PathconfArgs {
            object: root.clone(),
        }))
        .await
    {
        Nfs3Reply::Pathconf(res) => ok(res),
        other => panic!("{other:?}"),
    };
    assert_eq!(conf.name_max, 255);
    assert!(conf.no_trunc && conf.case_preserving && !conf.case_insensitive);
    store.stop().await;
}

async fn mount_protocol<S: Store>() {
    let store = S::start().await;
    store.view().put_dir("sub");
    store.view().put_dir("sub/dir");
    store.view().put_file("sub/file", b"");
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    assert!(matches!(c.mount("/export/").await, MntRes::Ok { fhandle, .. } if fhandle == root));
    match c.mount("/export/sub/dir").await {
        MntRes::Ok {
            fhandle,
            auth_flavors,
        } => {
            assert!(auth_flavors.contains(&1));
            let sub = ok(c.lookup(&root, "sub").await).object;
            assert_eq!(ok(c.lookup(&sub, "dir").await).object, fhandle);
        }
        MntRes::Fail(status) => panic!("{status}"),
    }
    assert!(matches!(
        c.mount("/other").await,
        MntRes::Fail(mount::MountStatus::NoEnt)
    ));
    assert!(matches!(
        c.mount("/exports").await,
        MntRes::Fail(mount::MountStatus::NoEnt)
    ));
    assert!(matches!(
        c.mount("/export/sub/file").await,
        MntRes::Fail(mount::MountStatus::NotDir)
    ));
    assert!(matches!(
        c.mount("/export/sub/../..").await,
        MntRes::Fail(mount::MountStatus::Inval)
    ));

    let mut reply = c
        .call(
            mount::PROGRAM,
            mount::VERSION,
            mount::procs::EXPORT,
            &|enc| MountCall::Export.encode(enc),
        )
        .await;
    match mount::decode_reply(mount::procs::EXPORT, &mut reply.body).unwrap() {
        Some(MountReply::Export(list)) => {
            assert_eq!(list.0.len(), 1);
            assert_eq!(&list.0[0].dir[..], b"/export");
        }
        other => panic!("{other:?}"),
    }
    let mut reply = c
        .call(mount::PROGRAM, mount::VERSION, mount::procs::DUMP, &|_| {})
        .await;
    match mount::decode_reply(mount::procs::DUMP, &mut reply.body).unwrap() {
        Some(MountReply::Dump(list)) => {
            assert!(list.0.iter().any(|m| &m.hostname[..] == b"127.0.0.1"));
        }
        other => panic!("{other:?}"),
    }
    let mut reply = c
        .call(
            mount::PROGRAM,
            mount::VERSION,
            mount::procs::UMNTALL,
            &|_| {},
        )
        .await;
    assert!(matches!(
        mount::decode_reply(mount::procs::UMNTALL, &mut reply.body),
        Ok(Some(MountReply::UmntAll))
    ));
    let mut reply = c
        .call(mount::PROGRAM, mount::VERSION, mount::procs::DUMP, &|_| {})
        .await;
    assert!(matches!(
        mount::decode_reply(mount::procs::DUMP, &mut reply.body),
        Ok(Some(MountReply::Dump(list))) if list.0.is_empty()
    ));
    store.stop().await;
}

#[tokio::test]
async fn separate_mount_and_portmap_listeners() {
    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.mount_listen = Some("127.0.0.1:0".parse().unwrap());
    config.portmap_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::bind(config).await;
    let nfs_port = server.addr.port();
    let mount_addr = server.mount_addr;
    let portmap_addr = server.portmap_addr.unwrap();
    assert_ne!(mount_addr.port(), nfs_port);
    assert_eq!(
        server.url,
        format!(
            "nfs://127.0.0.1:{nfs_port}/export?mountport={}",
            mount_addr.port()
        )
    );
    assert_eq!(
        server.libnfs_url,
        format!(
            "nfs://127.0.0.1/export?nfsport={nfs_port}&mountport={}",
            mount_addr.port()
        )
    );

    let mut pm = TestClient::connect(portmap_addr).await;
    let getport = |prog, vers| {
        PortmapCall::Getport(Mapping {
            prog,
            vers,
            prot: portmap::IPPROTO_TCP,
            port: 0,
        })
    };
    for (prog, vers, port) in [
        (PROGRAM, VERSION, nfs_port),
        (mount::PROGRAM, mount::VERSION, mount_addr.port()),
        (PROGRAM, 4, 0),
    ] {
        let call = getport(prog, vers);
        let mut reply = pm
            .call(
                portmap::PROGRAM,
                portmap::VERSION,
                portmap::procs::GETPORT,
                &|enc| call.encode(enc),
            )
            .await;
        assert_eq!(
            portmap::decode_reply(portmap::procs::GETPORT, &mut reply.body).unwrap(),
            Some(PortmapReply::Getport(u32::from(port)))
        );
    }
    let mut reply = pm
        .call(
            portmap::PROGRAM,
            portmap::VERSION,
            portmap::procs::DUMP,
            &|_| {},
        )
        .await;
    match portmap::decode_reply(portmap::procs::DUMP, &mut reply.body).unwrap() {
        Some(PortmapReply::Dump(list)) => {
            // NFS over TCP; MOUNT v1 and v3 and the portmapper v2, v3, v4 over TCP and UDP.
            assert_eq!(list.0.len(), 1 + 2 * 2 + 3 * 2, "{list:?}");
            let has = |prog, vers, prot, port: u16| {
                list.0.iter().any(|m| {
                    (m.prog, m.vers, m.prot, m.port) == (prog, vers, prot, u32::from(port))
                })
            };
            assert!(has(PROGRAM, 3, portmap::IPPROTO_TCP, nfs_port));
            for prot in [portmap::IPPROTO_TCP, portmap::IPPROTO_UDP] {
                assert!(has(mount::PROGRAM, 1, prot, mount_addr.port()));
                assert!(has(mount::PROGRAM, 3, prot, mount_addr.port()));
                assert!(has(portmap::PROGRAM, 2, prot, portmap_addr.port()));
            }
        }
        other => panic!("{other:?}"),
    }
    let mut m = TestClient::connect(mount_addr).await;
    let root = m.root().await;
    let mut c = TestClient::connect(std::net::SocketAddr::new(mount_addr.ip(), nfs_port)).await;
    assert_eq!(
        c.root().await,
        root,
        "MOUNT is answered on the NFS port too"
    );
    ok(c.getattr(&root).await);
    server.stop().await;
}

async fn many_concurrent_calls_on_one_connection<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let f = c.create_file(&root, "f").await;
    // Send 100 WRITEs without waiting, then collect 100 replies in any order.
    let mut xids = BTreeSet::new();
    for i in 0..100u32 {
        let xid = 1000 + i;
        let args = WriteArgs {
            file: f.clone(),
            offset: u64::from(i) * 4096,
            count: 4096,
            stable: StableHow::Unstable,
            data: Bytes::from(vec![i as u8; 4096]),
        };
        let record = c.build(xid, PROGRAM, VERSION, procs::WRITE, &|enc| args.encode(enc));
        c.send_record(&record).await;
        xids.insert(xid);
    }
    for _ in 0..100 {
        let reply = c.read_reply().await;
        assert!(xids.remove(&reply.header.xid));
    }
    ok(c.commit(&f).await);
    let data = store.view().content("f").unwrap();
    assert_eq!(data.len(), 100 * 4096);
    assert!(
        data.chunks(4096)
            .enumerate()
            .all(|(i, chunk)| chunk.iter().all(|&b| b == i as u8))
    );
    store.stop().await;
}

async fn tight_limits_throttle_but_never_deadlock<S: Store>() {
    let store = S::start_with(|config| {
        config.service.limits.max_requests_per_connection = 1;
        config.service.limits.max_requests_total = 1;
        config.service.limits.max_connection_buffer_bytes =
            config.service.limits.max_record_bytes as usize;
    })
    .await;
    let server = store.server();
    let mut c = server.client().await;
    let mut other = server.client().await;
    let root = c.root().await;
    let f = c.create_file(&root, "f").await;
    // Pipelined 1 MiB WRITEs and READs on one connection while another connection works (few
    // enough that the sockets' buffers hold them while this test is not reading replies).
    let data = Bytes::from(vec![7u8; 1 << 20]);
    for i in 0..3u32 {
        let args = WriteArgs {
            file: f.clone(),
            offset: u64::from(i) << 20,
            count: 1 << 20,
            stable: StableHow::Unstable,
            data: data.clone(),
        };
        let record = c.build(100 + i, PROGRAM, VERSION, procs::WRITE, &|enc| {
            args.encode(enc)
        });
        c.send_record(&record).await;
        let read = ReadArgs {
            file: f.clone(),
            offset: 0,
            count: 1 << 20,
        };
        let record = c.build(200 + i, PROGRAM, VERSION, procs::READ, &|enc| {
            read.encode(enc)
        });
        c.send_record(&record).await;
    }
    assert_eq!(other.nfs(Nfs3Call::Null).await, Nfs3Reply::Null);
    let mut xids = BTreeSet::new();
    for _ in 0..6 {
        xids.insert(c.read_reply().await.header.xid);
    }
    assert_eq!(xids.len(), 6);
    assert_eq!(store.view().content("f").unwrap().len(), 3 << 20);
    store.stop().await;
}

async fn a_client_that_does_not_read_its_replies_starves_nobody<S: Store>() {
    let store = S::start_with(|config| config.service.limits.max_requests_total = 1).await;
    store.view().put_file("big", &vec![1u8; 1 << 20]);
    let server = store.server();
    let mut greedy = server.client().await;
    let root = greedy.root().await;
    let big = match greedy.lookup(&root, "big").await {
        NfsRes::Ok(ok) => ok.object,
        NfsRes::Fail { status, .. } => panic!("{status}"),
    };
    // 40 MiB of READ replies that are never read: far more than the sockets buffer.
    for i in 0..40u32 {
        let read = ReadArgs {
            file: big.clone(),
            offset: 0,
            count: 1 << 20,
        };
        let record = greedy.build(500 + i, PROGRAM, VERSION, procs::READ, &|enc| {
            read.encode(enc)
        });
        greedy.send_record(&record).await;
    }
    let mut polite = server.client().await;
    for _ in 0..3 {
        assert_eq!(polite.nfs(Nfs3Call::Null).await, Nfs3Reply::Null);
        ok(polite.getattr(&root).await);
    }
    store.stop().await;
}
