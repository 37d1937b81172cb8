//! The client against a real NFSv3 server: nfs-ganesha on loopback.
//!
//! Every client operation is exercised against ganesha, including the error cases a user will
//! meet (missing file, existing file with a guarded create, non-empty rmdir, stale handle,
//! read-only export). Without ganesha the tests print one skip line (and fail under CI=true).

use bytes::Bytes;
use nfsio_client::proto::nfs3::{
    CreateHow, CreateVerifier, FileType, Nfs3Status, NfsTime, Sattr, SetTime, StableHow, access,
};
use nfsio_client::{Client, NfsError};
use nfsio_testkit::{Ganesha, GaneshaOptions};

fn status(error: NfsError) -> Nfs3Status {
    match error.status() {
        Some(status) => status,
        None => panic!("expected an NFS status, got {error}"),
    }
}

#[tokio::test]
async fn ganesha_file_operations() {
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let client = Client::connect(&ganesha.url("")).await.expect("connect");
    assert_eq!(client.export(), "/export");
    let info = client.fs_info();
    assert!(info.wtmax >= 4096 && info.rtmax >= 4096, "{info:?}");
    assert!(info.maxfilesize > 1 << 32);
    client.null().await.expect("NULL");

    // CREATE (unchecked), WRITE in all three stabilities, COMMIT, READ back.
    let root = client.root().clone();
    let created = client
        .create(
            &root,
            "a.txt",
            CreateHow::Unchecked(Sattr {
                mode: Some(0o640),
                ..Sattr::default()
            }),
        )
        .await
        .expect("create");
    let fh = created.handle;
    let mut verifiers = Vec::new();
    for (i, stable) in [
        StableHow::Unstable,
        StableHow::DataSync,
        StableHow::FileSync,
    ]
    .into_iter()
    .enumerate()
    {
        let data = Bytes::from(vec![b'a' + i as u8; 1000]);
        let reply = client
            .write(&fh, i as u64 * 1000, data, stable)
            .await
            .expect("write");
        assert_eq!(reply.count, 1000);
        assert!(
            reply.committed >= stable,
            "server answered {:?} to {stable:?}",
            reply.committed
        );
        verifiers.push(reply.verf);
    }
    let commit = client.commit(&fh, 0, 0).await.expect("commit");
    assert_eq!(
        commit.verf, verifiers[0],
        "WRITE and COMMIT verifiers of one server instance"
    );
    let read = client.read(&fh, 0, 5000).await.expect("read");
    assert_eq!(read.data.len(), 3000);
    assert!(read.eof);
    assert_eq!(&read.data[..1000], &[b'a'; 1000][..]);
    assert_eq!(&read.data[2000..], &[b'c'; 1000][..]);
    let on_disk =
        std::fs::read(ganesha.export_dir.join("a.txt")).expect("file on the server's disk");
    assert_eq!(on_disk, read.data);

    // GETATTR and SETATTR: size, mode, times.
    let attributes = client.getattr(&fh).await.expect("getattr");
    assert_eq!(
        (
            attributes.file_type,
            attributes.size,
            attributes.mode & 0o777
        ),
        (FileType::Regular, 3000, 0o640)
    );
    client
        .setattr(
            &fh,
            Sattr {
                size: Some(10),
                mode: Some(0o600),
                mtime: SetTime::ClientTime(NfsTime {
                    seconds: 1_000_000,
                    nseconds: 0,
                }),
                ..Sattr::default()
            },
            None,
        )
        .await
        .expect("setattr");
    let attributes = client.getattr(&fh).await.expect("getattr");
    assert_eq!(
        (
            attributes.size,
            attributes.mode & 0o777,
            attributes.mtime.seconds
        ),
        (10, 0o600, 1_000_000)
    );
    // A guarded SETATTR with a wrong ctime is refused with NOT_SYNC.
    let wrong = NfsTime {
        seconds: 1,
        nseconds: 1,
    };
    let error = client
        .setattr(
            &fh,
            Sattr {
                mode: Some(0o644),
                ..Sattr::default()
            },
            Some(wrong),
        )
        .await;
    assert_eq!(
        status(error.expect_err("guard must fail")),
        Nfs3Status::NotSync
    );

    // ACCESS as root: everything that applies to a file.
    let granted = client
        .access(&fh, access::READ | access::MODIFY | access::EXTEND)
        .await
        .expect("access");
    assert_eq!(
        granted & (access::READ | access::MODIFY),
        access::READ | access::MODIFY
    );

    // LOOKUP by path, then the File API.
    let (found, _) = client.lookup_path("a.txt").await.expect("lookup");
    assert_eq!(found, fh);
    let file = client
        .create_file("b.bin", 0o644)
        .await
        .expect("create_file");
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(
        file.write_at(&payload, 0).await.expect("write_at"),
        payload.len()
    );
    let mut back = vec![0u8; payload.len() + 10];
    let n = file.read_at(&mut back, 0).await.expect("read_at");
    assert_eq!(n, payload.len());
    assert!(
        back[..n] == payload[..],
        "read_at returns what write_at wrote"
    );
    file.sync_all().await.expect("sync_all");
    file.close().await.expect("close");

    // FSSTAT, PATHCONF.
    let fsstat = client.fsstat(&root).await.expect("fsstat");
    assert!(fsstat.tbytes >= fsstat.fbytes && fsstat.tbytes > 0);
    let pathconf = client.pathconf(&root).await.expect("pathconf");
    assert!(pathconf.name_max >= 255);
}

#[tokio::test]
async fn ganesha_directory_operations() {
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let client = Client::connect(&ganesha.url("")).await.expect("connect");
    let root = client.root().clone();

    // MKDIR, SYMLINK, READLINK, LINK, RENAME, READDIRPLUS.
    let dir = client.mkdir_path("d", 0o755).await.expect("mkdir").handle;
    let file = client
        .create(&dir, "f", CreateHow::Guarded(Sattr::default()))
        .await
        .expect("create")
        .handle;
    client
        .symlink(&dir, "s", "../elsewhere", Sattr::default())
        .await
        .expect("symlink");
    let (link, link_attributes) = client.lookup_path("d/s").await.expect("lookup symlink");
    assert_eq!(link_attributes.file_type, FileType::Symlink);
    assert_eq!(
        &client.readlink(&link).await.expect("readlink")[..],
        b"../elsewhere"
    );
    client.link(&file, &dir, "hard").await.expect("link");
    assert_eq!(client.getattr(&file).await.expect("getattr").nlink, 2);
    client
        .rename_path("d/hard", "d/renamed")
        .await
        .expect("rename");
    for i in 0..300 {
        client
            .create(
                &dir,
                &format!("many-{i:03}"),
                CreateHow::Unchecked(Sattr::default()),
            )
            .await
            .expect("create");
    }
    let entries = client
        .readdirplus(&dir)
        .collect_all()
        .await
        .expect("readdirplus");
    let mut names: Vec<String> = entries.iter().map(|e| e.name_lossy()).collect();
    names.sort();
    assert_eq!(names.len(), 303, "f, s, renamed and 300 more: {names:?}");
    assert!(names.contains(&"renamed".to_owned()) && !names.contains(&"hard".to_owned()));
    assert!(
        entries
            .iter()
            .all(|e| e.attributes.is_some() && e.handle.is_some())
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(ganesha.export_dir.join("d"))
        .expect("export dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(names, on_disk);

    // EXCLUSIVE create: a retransmission with the same verifier succeeds, another fails.
    let verifier = CreateVerifier(*b"nfsio-v1");
    let first = client
        .create(&root, "x", CreateHow::Exclusive(verifier))
        .await
        .expect("exclusive");
    let again = client
        .create(&root, "x", CreateHow::Exclusive(verifier))
        .await
        .expect("same verifier");
    assert_eq!(first.handle, again.handle);
    let other = client
        .create(
            &root,
            "x",
            CreateHow::Exclusive(CreateVerifier(*b"other-v2")),
        )
        .await;
    assert_eq!(
        status(other.expect_err("other verifier")),
        Nfs3Status::Exist
    );

    // Error cases.
    let missing = client
        .lookup_path("no/such/file")
        .await
        .expect_err("missing");
    assert_eq!((status(missing),), (Nfs3Status::NoEnt,));
    let missing = client
        .lookup_path("nothing-here")
        .await
        .expect_err("missing");
    assert_eq!(missing.errno_name(), "ENOENT");
    assert_eq!(
        std::io::Error::from(missing).kind(),
        std::io::ErrorKind::NotFound
    );
    let exists = client
        .create_new_file("d/f", 0o644)
        .await
        .expect_err("guarded create of an existing file");
    assert_eq!(status(exists), Nfs3Status::Exist);
    let not_empty = client
        .rmdir_path("d")
        .await
        .expect_err("rmdir of a non-empty directory");
    assert_eq!(status(not_empty), Nfs3Status::NotEmpty);
    let not_dir = client
        .lookup_path("d/f/x")
        .await
        .expect_err("lookup through a file");
    assert_eq!(status(not_dir), Nfs3Status::NotDir);

    // A stale handle after the file is removed.
    client.remove(&dir, "f").await.expect("remove");
    client
        .remove(&dir, "renamed")
        .await
        .expect("remove the last link");
    let stale = client
        .getattr(&file)
        .await
        .expect_err("handle of a removed file");
    assert_eq!(status(stale), Nfs3Status::Stale);
    assert_eq!(
        std::io::Error::from(client.getattr(&file).await.expect_err("stale")).kind(),
        std::io::ErrorKind::StaleNetworkFileHandle
    );

    // RMDIR once empty.
    for entry in client.readdirplus(&dir).collect_all().await.expect("list") {
        client
            .remove(&dir, &entry.name_lossy())
            .await
            .expect("remove");
    }
    client.rmdir(&root, "d").await.expect("rmdir");
    assert!(!ganesha.export_dir.join("d").exists());
}

#[tokio::test]
async fn ganesha_read_only_export_refuses_writes() {
    let Some(ganesha) = Ganesha::start_with(GaneshaOptions {
        read_only: true,
        ..GaneshaOptions::default()
    }) else {
        return;
    };
    std::fs::write(ganesha.export_dir.join("existing"), b"data").expect("seed the export");
    let client = Client::connect(&ganesha.url("")).await.expect("connect");
    let (fh, _) = client.lookup_path("existing").await.expect("lookup");
    let write = client
        .write(&fh, 0, Bytes::from_static(b"x"), StableHow::FileSync)
        .await;
    let write_status = status(write.expect_err("write to a read-only export"));
    assert!(
        matches!(write_status, Nfs3Status::RoFs | Nfs3Status::Acces),
        "{write_status}"
    );
    let create = client
        .create_file("new", 0o644)
        .await
        .expect_err("create on a read-only export");
    assert!(matches!(
        status(create),
        Nfs3Status::RoFs | Nfs3Status::Acces
    ));
    assert_eq!(
        std::fs::read(ganesha.export_dir.join("existing")).expect("unchanged"),
        b"data"
    );
    assert!(!ganesha.export_dir.join("new").exists());
}

#[tokio::test]
async fn ganesha_unknown_export_and_bad_port_fail_cleanly() {
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let url = format!(
        "nfs://127.0.0.1/not-exported?version=3&nfsport={}&mountport={}",
        ganesha.nfs_port, ganesha.mnt_port
    );
    let error = Client::connect(&url).await.expect_err("no such export");
    assert!(
        matches!(error, NfsError::NoExport { .. } | NfsError::Mount(_)),
        "{error}"
    );
    let port = nfsio_testkit::free_port();
    let url = format!("nfs://127.0.0.1/export?version=3&nfsport={port}&mountport={port}");
    let error = Client::connect(&url)
        .await
        .expect_err("nothing listens there");
    assert_eq!(error.errno_name(), "ECONNREFUSED", "{error}");
}

#[tokio::test]
async fn ganesha_ports_from_the_portmapper() {
    let Some(ganesha) = Ganesha::start_with(GaneshaOptions {
        keep_rpcbind: true,
        ..GaneshaOptions::default()
    }) else {
        return;
    };
    std::fs::write(ganesha.export_dir.join("via-portmap"), b"found").expect("seed");
    // No nfsport or mountport: both come from GETPORT on 127.0.0.1:111.
    let client = Client::connect("nfs://127.0.0.1/export/via-portmap?version=3")
        .await
        .expect("connect");
    assert_eq!(client.server().port(), ganesha.nfs_port);
    assert_eq!(client.url_path(), "via-portmap");
    let (fh, _) = client.lookup_path(client.url_path()).await.expect("lookup");
    assert_eq!(
        &client.read(&fh, 0, 100).await.expect("read").data[..],
        b"found"
    );
}

#[tokio::test]
async fn ganesha_auth_sys_credentials_from_the_url() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    std::fs::set_permissions(&ganesha.export_dir, std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    std::fs::create_dir(ganesha.export_dir.join("private")).expect("dir");
    std::fs::set_permissions(
        ganesha.export_dir.join("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    let url = format!("{}&uid=1234&gid=5678", ganesha.url(""));
    let client = Client::connect(&url).await.expect("connect");
    let file = client
        .create_file("owned", 0o644)
        .await
        .expect("create as uid 1234");
    file.write_at(b"x", 0).await.expect("write");
    let meta = std::fs::metadata(ganesha.export_dir.join("owned")).expect("on disk");
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    // uid 1234 may not enter a root-only directory.
    let denied = client
        .create_file("private/x", 0o644)
        .await
        .expect_err("no permission");
    assert_eq!(status(denied), Nfs3Status::Acces);
}

#[tokio::test]
async fn ganesha_file_async_read_write_seek() {
    use std::io::SeekFrom;
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let client = Client::connect(&ganesha.url("")).await.expect("connect");
    let payload: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();

    // Stream in through AsyncWrite (tokio::io::copy), then shut down (flush + commit).
    let mut file = client
        .create_file("stream.bin", 0o644)
        .await
        .expect("create");
    let copied = tokio::io::copy(&mut &payload[..], &mut file)
        .await
        .expect("copy in");
    assert_eq!(copied, payload.len() as u64);
    file.shutdown().await.expect("shutdown");
    assert_eq!(
        std::fs::read(ganesha.export_dir.join("stream.bin")).expect("on disk"),
        payload
    );

    // Read it back through AsyncRead, in odd-sized pieces, after seeks of every kind.
    let mut file = client.open("stream.bin").await.expect("open");
    let mut all = Vec::new();
    file.read_to_end(&mut all).await.expect("read_to_end");
    assert!(all == payload);
    assert_eq!(
        file.seek(SeekFrom::Start(1000)).await.expect("seek start"),
        1000
    );
    let mut piece = [0u8; 777];
    file.read_exact(&mut piece).await.expect("read_exact");
    assert_eq!(&piece[..], &payload[1000..1777]);
    assert_eq!(
        file.seek(SeekFrom::Current(-77)).await.expect("seek back"),
        1700
    );
    file.read_exact(&mut piece[..10])
        .await
        .expect("read after seek");
    assert_eq!(&piece[..10], &payload[1700..1710]);
    assert_eq!(
        file.seek(SeekFrom::End(-5)).await.expect("seek end"),
        payload.len() as u64 - 5
    );
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).await.expect("tail");
    assert_eq!(&tail[..], &payload[payload.len() - 5..]);
    assert!(
        file.seek(SeekFrom::Current(-(payload.len() as i64) - 1))
            .await
            .is_err(),
        "seek before 0"
    );

    // Overwrite in the middle through AsyncWrite after a seek, then truncate with set_len.
    file.seek(SeekFrom::Start(10)).await.expect("seek");
    file.write_all(b"XYZ").await.expect("write");
    file.flush().await.expect("flush");
    file.set_len(20).await.expect("set_len");
    assert_eq!(file.metadata().await.expect("getattr").size, 20);
    let head = file.read_bytes_at(0, 100).await.expect("read");
    let mut expected = payload[..20].to_vec();
    expected[10..13].copy_from_slice(b"XYZ");
    assert_eq!(&head[..], &expected[..]);
    file.close().await.expect("close");
}

#[tokio::test]
async fn ganesha_short_url_finds_mount_through_the_portmapper() {
    let Some(ganesha) = Ganesha::start_with(GaneshaOptions {
        keep_rpcbind: true,
        ..GaneshaOptions::default()
    }) else {
        return;
    };
    std::fs::write(ganesha.export_dir.join("short"), b"by port").expect("seed");
    // Only the NFS port: MOUNT is tried there first (ganesha serves it on its own port),
    // then found through the portmapper.
    let url = format!("nfs://127.0.0.1:{}/export/short", ganesha.nfs_port);
    let client = Client::connect(&url).await.expect("connect");
    assert_eq!(client.server().port(), ganesha.nfs_port);
    let (fh, _) = client.lookup_path(client.url_path()).await.expect("lookup");
    assert_eq!(
        &client.read(&fh, 0, 100).await.expect("read").data[..],
        b"by port"
    );
}

#[tokio::test]
async fn ganesha_symlink_targets_longer_than_1024_bytes_are_read() {
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let target: String = (0..2000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    std::os::unix::fs::symlink(&target, ganesha.export_dir.join("long-link")).expect("symlink");
    let client = Client::connect(&ganesha.url("")).await.expect("connect");
    let (link, _) = client.lookup_path("long-link").await.expect("lookup");
    assert_eq!(
        client.readlink(&link).await.expect("READLINK"),
        target.as_bytes()
    );
}
