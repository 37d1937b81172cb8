//! The cases of the client contract: each starts its own server of type `T` and asserts what
//! every NFSv3 server nfsio's client meets must give it.

use bytes::Bytes;
use nfsio_client::proto::nfs3::{
    CreateHow, CreateVerifier, FileType, Nfs3Status, NfsTime, Sattr, SetTime, StableHow, access,
};
use nfsio_client::{Client, NfsError};

use crate::targets::{Options, Restart, Target, url_at};

fn status(error: NfsError) -> Nfs3Status {
    match error.status() {
        Some(status) => status,
        None => panic!("expected an NFS status, got {error}"),
    }
}

/// Starts `T` with default options, or returns from the case (skipped).
macro_rules! start {
    ($t:ty) => {
        start!($t, Options::default())
    };
    ($t:ty, $options:expr) => {
        match <$t>::start($options).await {
            Some(target) => target,
            None => return,
        }
    };
}

/// Every procedure of a file, with WRITE in all three stabilities, and the `File` API.
pub async fn file_operations<T: Target>() {
    let t = start!(T);
    let client = Client::connect(&t.url("")).await.expect("connect");
    assert_eq!(client.export(), t.export());
    let info = client.fs_info();
    assert!(info.wtmax >= 65536 && info.rtmax >= 65536, "{info:?}");
    assert!(info.maxfilesize > 1 << 32, "{info:?}");
    client.null().await.expect("NULL");
    let root = client.root().clone();
    let fsinfo = client.fsinfo(&root).await.expect("FSINFO");
    assert_eq!((fsinfo.wtmax, fsinfo.rtmax), (info.wtmax, info.rtmax));

    // CREATE (unchecked), WRITE in all three stabilities, COMMIT, READ back.
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
    let attributes = created.attributes.expect("CREATE returns attributes");
    assert_eq!(
        (
            attributes.file_type,
            attributes.size,
            attributes.mode & 0o777
        ),
        (FileType::Regular, 0, 0o640)
    );
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
        // Honest stability: UNSTABLE stays UNSTABLE, the others are answered as asked or better.
        if stable == StableHow::Unstable {
            assert_eq!(reply.committed, StableHow::Unstable);
        } else {
            assert!(
                reply.committed >= stable,
                "server answered {:?} to {stable:?}",
                reply.committed
            );
        }
        // Weak cache consistency data: attributes before and after.
        let wcc = &reply.file_wcc;
        if t.write_wcc_has_before() {
            assert_eq!(wcc.before.as_ref().map(|b| b.size), Some(i as u64 * 1000));
        }
        assert_eq!(
            wcc.after.as_ref().map(|a| a.size),
            Some((i as u64 + 1) * 1000)
        );
        verifiers.push(reply.verf);
    }
    assert!(
        verifiers.windows(2).all(|w| w[0] == w[1]),
        "one verifier per server instance: {verifiers:?}"
    );
    let commit = client.commit(&fh, 0, 0).await.expect("commit");
    assert_eq!(
        commit.verf, verifiers[0],
        "WRITE and COMMIT verifiers of one server instance"
    );
    let read = client.read(&fh, 0, 5000).await.expect("read");
    assert_eq!(read.data.len(), 3000);
    assert!(read.eof);
    assert_eq!(&read.data[..1000], &[b'a'; 1000][..]);
    assert_eq!(&read.data[1000..2000], &[b'b'; 1000][..]);
    assert_eq!(&read.data[2000..], &[b'c'; 1000][..]);
    let partial = client.read(&fh, 2500, 100).await.expect("read inside");
    assert_eq!((partial.data.len(), partial.eof), (100, false));
    let past_end = client
        .read(&fh, 10_000, 100)
        .await
        .expect("read past the end");
    assert!(past_end.data.is_empty() && past_end.eof);
    assert_eq!(
        t.view().content("a.txt").as_deref(),
        Some(&read.data[..]),
        "the file in the server's storage"
    );

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
    let wcc = client
        .setattr(
            &fh,
            Sattr {
                size: Some(10),
                mode: Some(0o600),
                atime: SetTime::ClientTime(NfsTime {
                    seconds: 900_000,
                    nseconds: 5,
                }),
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
    assert_eq!(wcc.before.as_ref().map(|b| b.size), Some(3000));
    assert_eq!(wcc.after.as_ref().map(|a| a.size), Some(10));
    let attributes = client.getattr(&fh).await.expect("getattr");
    assert_eq!(
        (
            attributes.size,
            attributes.mode & 0o777,
            attributes.mtime.seconds,
            attributes.atime.seconds
        ),
        (10, 0o600, 1_000_000, 900_000)
    );
    assert_eq!(t.view().content("a.txt").map(|c| c.len()), Some(10));
    // Growing with SETATTR fills with zeros.
    client
        .setattr(
            &fh,
            Sattr {
                size: Some(20),
                ..Sattr::default()
            },
            None,
        )
        .await
        .expect("grow");
    let grown = client.read(&fh, 0, 100).await.expect("read");
    assert_eq!(&grown.data[..], &b"aaaaaaaaaa\0\0\0\0\0\0\0\0\0\0"[..]);
    // mtime to the server's time.
    client
        .setattr(
            &fh,
            Sattr {
                mtime: SetTime::ServerTime,
                ..Sattr::default()
            },
            None,
        )
        .await
        .expect("setattr server time");
    let attributes = client.getattr(&fh).await.expect("getattr");
    assert!(attributes.mtime.seconds > 1_000_000, "{attributes:?}");
    // A guarded SETATTR with a wrong ctime is refused with NOT_SYNC, with the right one it works.
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
    assert_eq!(
        client.getattr(&fh).await.expect("getattr").mode & 0o777,
        0o600
    );
    client
        .setattr(
            &fh,
            Sattr {
                mode: Some(0o644),
                ..Sattr::default()
            },
            Some(attributes.ctime),
        )
        .await
        .expect("guard with the current ctime");
    assert_eq!(
        client.getattr(&fh).await.expect("getattr").mode & 0o777,
        0o644
    );

    // ACCESS as root (no squash): everything that applies to a file.
    let granted = client
        .access(&fh, access::READ | access::MODIFY | access::EXTEND)
        .await
        .expect("access");
    assert_eq!(
        granted,
        access::READ | access::MODIFY | access::EXTEND,
        "granted {granted:#x}"
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
    let mut n = 0;
    while n < payload.len() {
        let got = file
            .read_at(&mut back[n..], n as u64)
            .await
            .expect("read_at");
        assert!(got > 0, "short read at {n}");
        n += got;
    }
    assert!(
        back[..n] == payload[..],
        "read_at returns what write_at wrote"
    );
    file.sync_all().await.expect("sync_all");
    file.close().await.expect("close");
    assert!(t.view().content("b.bin").expect("stored") == payload);

    // FSSTAT, PATHCONF.
    let fsstat = client.fsstat(&root).await.expect("fsstat");
    assert!(
        fsstat.tbytes >= fsstat.fbytes && fsstat.tbytes > 0,
        "{fsstat:?}"
    );
    assert!(fsstat.fbytes >= fsstat.abytes, "{fsstat:?}");
    let pathconf = client.pathconf(&root).await.expect("pathconf");
    assert!(pathconf.name_max >= 255, "{pathconf:?}");
    assert!(pathconf.case_preserving && !pathconf.case_insensitive);
}

/// MKDIR, paths, `..`, SYMLINK, READLINK, LINK, RENAME, READDIRPLUS of 300 entries,
/// EXCLUSIVE create, the errors a user meets, stale handles, RMDIR.
pub async fn directory_operations<T: Target>() {
    let t = start!(T);
    let client = Client::connect(&t.url("")).await.expect("connect");
    let root = client.root().clone();

    // MKDIR, a path walk, and `..` at the root.
    let dir = client.mkdir_path("d", 0o755).await.expect("mkdir").handle;
    client.mkdir_path("d/e", 0o700).await.expect("mkdir nested");
    let deep = client.mkdir_path("d/e/f", 0o755).await.expect("mkdir");
    let (walked, walked_attributes) = client.lookup_path("d/e/f").await.expect("path walk");
    assert_eq!(walked, deep.handle);
    assert_eq!(walked_attributes.file_type, FileType::Directory);
    assert_eq!(t.view().mode("d/e") & 0o777, 0o700);
    let up = client
        .lookup(&root, "..")
        .await
        .expect("lookup .. at the root");
    assert_eq!(up.object, root, "`..` at the export root stays at the root");
    let (parent, _) = client.lookup_path("d/e").await.expect("lookup");
    assert_eq!(
        client.lookup(&walked, "..").await.expect("..").object,
        parent
    );

    // CREATE guarded, SYMLINK, READLINK, LINK, RENAME.
    let file = client
        .create(&dir, "f", CreateHow::Guarded(Sattr::default()))
        .await
        .expect("create")
        .handle;
    let symlink = client
        .symlink(&dir, "s", "../elsewhere", Sattr::default())
        .await
        .expect("symlink");
    let (link, link_attributes) = client.lookup_path("d/s").await.expect("lookup symlink");
    assert_eq!(link, symlink.handle);
    assert_eq!(link_attributes.file_type, FileType::Symlink);
    assert_eq!(
        &client.readlink(&link).await.expect("readlink")[..],
        b"../elsewhere"
    );
    assert_eq!(t.view().link_target("d/s"), b"../elsewhere");
    client.link(&file, &dir, "hard").await.expect("link");
    assert_eq!(client.getattr(&file).await.expect("getattr").nlink, 2);
    client
        .rename_path("d/hard", "d/renamed")
        .await
        .expect("rename");
    let (renamed, _) = client.lookup_path("d/renamed").await.expect("lookup");
    assert_eq!(
        client.getattr(&renamed).await.expect("getattr").fileid,
        client.getattr(&file).await.expect("getattr").fileid
    );
    client
        .rename(&dir, "renamed", &root, "moved-up")
        .await
        .expect("rename across directories");
    client
        .rename(&root, "moved-up", &dir, "renamed")
        .await
        .expect("and back");

    // READDIRPLUS of 300+ entries, against the server's storage.
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
    assert_eq!(names.len(), 304, "e, f, s, renamed and 300 more: {names:?}");
    assert!(names.contains(&"renamed".to_owned()) && !names.contains(&"hard".to_owned()));
    assert!(
        entries
            .iter()
            .all(|e| e.attributes.is_some() && e.handle.is_some())
    );
    let mut cookies: Vec<u64> = entries.iter().map(|e| e.cookie).collect();
    cookies.sort_unstable();
    cookies.dedup();
    assert_eq!(cookies.len(), entries.len(), "cookies are distinct");
    let many = entries
        .iter()
        .find(|e| e.name_lossy() == "many-123")
        .expect("many-123");
    let (looked_up, _) = client.lookup_path("d/many-123").await.expect("lookup");
    assert_eq!(many.handle.as_ref(), Some(&looked_up));
    assert_eq!(names, t.view().names("d"));

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
    // After an exclusive create the client sets the attributes it wants.
    client
        .setattr(
            &first.handle,
            Sattr {
                mode: Some(0o604),
                ..Sattr::default()
            },
            None,
        )
        .await
        .expect("setattr after exclusive create");
    assert_eq!(
        client.getattr(&first.handle).await.expect("getattr").mode & 0o777,
        0o604
    );

    // Error cases.
    let missing = client
        .lookup_path("no/such/file")
        .await
        .expect_err("missing");
    assert_eq!(status(missing), Nfs3Status::NoEnt);
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
    let exists = client
        .mkdir(&dir, "e", Sattr::default())
        .await
        .expect_err("mkdir of an existing name");
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
    let not_dir = client.rmdir(&dir, "f").await.expect_err("rmdir of a file");
    assert_eq!(status(not_dir), Nfs3Status::NotDir);
    let is_dir = client
        .read(&dir, 0, 10)
        .await
        .expect_err("read of a directory");
    assert_eq!(status(is_dir), Nfs3Status::IsDir);
    let too_long = client
        .create(
            &dir,
            &"n".repeat(300),
            CreateHow::Unchecked(Sattr::default()),
        )
        .await
        .expect_err("name too long");
    assert_eq!(status(too_long), Nfs3Status::NameTooLong);

    // A stale handle after the file is removed (both links), and after rmdir.
    let wcc = client.remove(&dir, "f").await.expect("remove");
    assert!(wcc.before.is_some() && wcc.after.is_some(), "{wcc:?}");
    assert_eq!(client.getattr(&file).await.expect("one link left").nlink, 1);
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
    let stale = client
        .read(&file, 0, 10)
        .await
        .expect_err("read through a removed file's handle");
    assert_eq!(status(stale), Nfs3Status::Stale);
    // A new file in its place does not revive the old handle.
    client
        .create(&dir, "f", CreateHow::Unchecked(Sattr::default()))
        .await
        .expect("create again");
    assert_eq!(
        status(client.getattr(&file).await.expect_err("still stale")),
        Nfs3Status::Stale
    );
    client.rmdir_path("d/e/f").await.expect("rmdir");
    assert_eq!(
        status(client.getattr(&deep.handle).await.expect_err("stale dir")),
        Nfs3Status::Stale
    );

    // RMDIR once empty.
    for entry in client.readdirplus(&dir).collect_all().await.expect("list") {
        let name = entry.name_lossy();
        if entry.attributes.as_ref().map(|a| a.file_type) == Some(FileType::Directory) {
            client.rmdir(&dir, &name).await.expect("rmdir");
        } else {
            client.remove(&dir, &name).await.expect("remove");
        }
    }
    client.rmdir(&root, "d").await.expect("rmdir");
    assert!(!t.view().exists("d"));
    assert_eq!(
        status(client.getattr(&dir).await.expect_err("stale dir")),
        Nfs3Status::Stale
    );
}

/// A read-only export refuses every change (and ACCESS offers none), and nothing changes.
pub async fn read_only_export_refuses_changes<T: Target>() {
    let t = start!(T, Options { read_only: true });
    t.view().put_file("existing", b"data");
    t.view().put_dir("sub");
    let client = Client::connect(&t.url("")).await.expect("connect");
    assert_eq!(client.export(), t.export());
    let root = client.root().clone();
    let (fh, _) = client.lookup_path("existing").await.expect("lookup");
    assert_eq!(
        &client.read(&fh, 0, 100).await.expect("read").data[..],
        b"data"
    );
    let mut refusals: Vec<(&str, Result<(), NfsError>)> = vec![
        (
            "WRITE",
            client
                .write(&fh, 0, Bytes::from_static(b"x"), StableHow::FileSync)
                .await
                .map(drop),
        ),
        (
            "SETATTR",
            client
                .setattr(
                    &fh,
                    Sattr {
                        size: Some(0),
                        ..Sattr::default()
                    },
                    None,
                )
                .await
                .map(drop),
        ),
        (
            "CREATE",
            client
                .create(&root, "new", CreateHow::Unchecked(Sattr::default()))
                .await
                .map(drop),
        ),
        (
            "create_file",
            client.create_file("new", 0o644).await.map(drop),
        ),
        (
            "MKDIR",
            client
                .mkdir(&root, "newdir", Sattr::default())
                .await
                .map(drop),
        ),
        (
            "SYMLINK",
            client
                .symlink(&root, "newlink", "existing", Sattr::default())
                .await
                .map(drop),
        ),
        ("REMOVE", client.remove(&root, "existing").await.map(drop)),
        ("RMDIR", client.rmdir(&root, "sub").await.map(drop)),
        (
            "RENAME",
            client
                .rename(&root, "existing", &root, "renamed")
                .await
                .map(drop),
        ),
        ("LINK", client.link(&fh, &root, "hard").await.map(drop)),
    ];
    for (procedure, result) in refusals.drain(..) {
        let error = result.expect_err(procedure);
        assert_eq!(status(error), Nfs3Status::RoFs, "{procedure}");
    }
    // ACCESS does not offer what the export refuses.
    let granted = client
        .access(&fh, access::READ | access::MODIFY | access::EXTEND)
        .await
        .expect("access");
    assert_eq!(granted, access::READ, "granted {granted:#x}");
    assert_eq!(t.view().content("existing").as_deref(), Some(&b"data"[..]));
    assert_eq!(t.view().names(""), ["existing", "sub"]);
}

/// An export nobody serves, and a port nobody listens on, fail with errors that say so.
pub async fn unknown_export_and_bad_port_fail_cleanly<T: Target>() {
    let t = start!(T);
    let (nfs_port, mount_port) = t.ports();
    let url = url_at("/not-exported", "", nfs_port, mount_port);
    let error = Client::connect(&url).await.expect_err("no such export");
    assert!(
        matches!(error, NfsError::NoExport { .. } | NfsError::Mount(_)),
        "{error}"
    );
    let port = nfsio_testkit::free_port();
    let url = url_at("/export", "", port, port);
    let error = Client::connect(&url)
        .await
        .expect_err("nothing listens there");
    assert_eq!(error.errno_name(), "ECONNREFUSED", "{error}");
}

/// The uid and gid of the URL own what the client creates and are refused what they may not.
pub async fn auth_sys_credentials_from_the_url<T: Target>() {
    let t = start!(T);
    t.view().set_mode("", 0o777);
    t.view().put_dir("private");
    t.view().set_mode("private", 0o700);
    let url = format!("{}&uid=1234&gid=5678", t.url(""));
    let client = Client::connect(&url).await.expect("connect");
    let file = client
        .create_file("owned", 0o644)
        .await
        .expect("create as uid 1234");
    file.write_at(b"x", 0).await.expect("write");
    file.close().await.expect("close");
    assert_eq!(t.view().owner("owned"), (1234, 5678));
    // uid 1234 may not enter a root-only directory.
    let denied = client
        .create_file("private/x", 0o644)
        .await
        .expect_err("no permission");
    assert_eq!(status(denied), Nfs3Status::Acces);
}

/// `File` through tokio's AsyncRead, AsyncWrite and AsyncSeek.
pub async fn file_async_read_write_seek<T: Target>() {
    use std::io::SeekFrom;
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let t = start!(T);
    let client = Client::connect(&t.url("")).await.expect("connect");
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
    assert!(t.view().content("stream.bin").expect("stored") == payload);

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

/// READLINK of a target longer than 1024 bytes (RFC 1813 sets no limit; MAXPATHLEN does).
pub async fn symlink_targets_longer_than_1024_bytes_are_read<T: Target>() {
    let t = start!(T);
    let target: String = (0..2000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    t.view().put_symlink("long-link", &target);
    let client = Client::connect(&t.url("")).await.expect("connect");
    let (link, _) = client.lookup_path("long-link").await.expect("lookup");
    assert_eq!(
        client.readlink(&link).await.expect("READLINK"),
        target.as_bytes()
    );
}

/// A restart on the same storage and ports: old handles (and the same `Client`) keep
/// working, the write verifier changes, a retransmitted exclusive CREATE still succeeds.
pub async fn restart_keeps_handles_and_changes_the_verifier<T: Restart>() {
    let mut t = start!(T);
    let client = Client::connect(&t.url("")).await.expect("connect");
    let root = client.root().clone();
    let dir = client
        .mkdir_path("kept", 0o755)
        .await
        .expect("mkdir")
        .handle;
    let fh = client
        .create(&dir, "file", CreateHow::Unchecked(Sattr::default()))
        .await
        .expect("create")
        .handle;
    let before = client
        .write(&fh, 0, Bytes::from_static(b"before "), StableHow::Unstable)
        .await
        .expect("write");
    assert_eq!(before.committed, StableHow::Unstable);
    let commit = client.commit(&fh, 0, 0).await.expect("commit");
    assert_eq!(commit.verf, before.verf);
    let verifier = CreateVerifier(*b"restart!");
    let exclusive = client
        .create(&root, "excl", CreateHow::Exclusive(verifier))
        .await
        .expect("exclusive create")
        .handle;

    t.restart().await;

    // The same client (it reconnects) with handles from before the restart.
    let attributes = client.getattr(&fh).await.expect("old handle after restart");
    assert_eq!(attributes.size, 7);
    let after = client
        .write(&fh, 7, Bytes::from_static(b"after"), StableHow::Unstable)
        .await
        .expect("write through an old handle");
    assert_eq!(after.committed, StableHow::Unstable);
    assert_ne!(
        after.verf, before.verf,
        "the write verifier changes at every start"
    );
    let commit = client.commit(&fh, 0, 0).await.expect("commit");
    assert_eq!(commit.verf, after.verf);
    assert_eq!(
        &client.read(&fh, 0, 100).await.expect("read").data[..],
        b"before after"
    );
    client
        .create(&dir, "new-in-old-dir", CreateHow::Guarded(Sattr::default()))
        .await
        .expect("create in a directory through its old handle");
    // A retransmitted exclusive CREATE still finds its verifier.
    let again = client
        .create(&root, "excl", CreateHow::Exclusive(verifier))
        .await
        .expect("exclusive create retransmitted after the restart");
    assert_eq!(again.handle, exclusive);

    // A new client gets the same root handle, and the same handle by lookup.
    let fresh = Client::connect(&t.url("")).await.expect("connect");
    assert_eq!(fresh.root(), &root);
    assert_eq!(fresh.lookup_path("kept/file").await.expect("lookup").0, fh);
}
