//! The client against `nfsio serve` (the binary, as a child process on a fresh directory).
//!
//! - Every client operation, as tests/ganesha_client.rs does against ganesha, with the error
//!   cases a user meets (NOENT, EXIST, NOTEMPTY, NOTDIR, STALE, and ROFS with `--read-only`).
//! - Honest stability over the wire: WRITE in all three stabilities is answered at least as
//!   stable as asked (UNSTABLE as UNSTABLE), WRITE and COMMIT of one instance carry one verifier.
//! - A restart on the same directory: old handles (and the same `Client`) keep working, the
//!   write verifier changes, a retransmitted exclusive CREATE still succeeds.
//! - `--squash none|root|all` with `--anonuid`/`--anongid` decide who owns created files.
//! - The CLI: `nfsio demo` verifies; `nfsio serve` exits 0 on SIGTERM and SIGINT (with a client
//!   connected) and fails with one line on stderr for a directory it cannot export.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{NFSIO, Scratch, Serve};
use nfsio_client::proto::nfs3::{
    CreateHow, CreateVerifier, FileType, Nfs3Status, NfsTime, Sattr, SetTime, StableHow, access,
};
use nfsio_client::{Client, NfsError};

fn status(error: NfsError) -> Nfs3Status {
    match error.status() {
        Some(status) => status,
        None => panic!("expected an NFS status, got {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_file_operations() {
    let server = Serve::start("file-ops");
    let client = Client::connect(&server.url_of("")).await.expect("connect");
    assert_eq!(client.export(), "/export");
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
        assert_eq!(wcc.before.as_ref().map(|b| b.size), Some(i as u64 * 1000));
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
    let on_disk = std::fs::read(server.export.join("a.txt")).expect("file on the server's disk");
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
    assert_eq!(
        std::fs::metadata(server.export.join("a.txt"))
            .expect("on disk")
            .len(),
        10
    );
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
    assert!(std::fs::read(server.export.join("b.bin")).expect("on disk") == payload);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_directory_operations() {
    let server = Serve::start("dir-ops");
    let client = Client::connect(&server.url_of("")).await.expect("connect");
    let root = client.root().clone();

    // MKDIR, a path walk, and `..` at the root.
    let dir = client.mkdir_path("d", 0o755).await.expect("mkdir").handle;
    client.mkdir_path("d/e", 0o700).await.expect("mkdir nested");
    let deep = client.mkdir_path("d/e/f", 0o755).await.expect("mkdir");
    let (walked, walked_attributes) = client.lookup_path("d/e/f").await.expect("path walk");
    assert_eq!(walked, deep.handle);
    assert_eq!(walked_attributes.file_type, FileType::Directory);
    assert_eq!(
        std::fs::metadata(server.export.join("d/e"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .expect("on disk"),
        0o700
    );
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
    assert_eq!(
        std::fs::read_link(server.export.join("d/s")).expect("symlink on disk"),
        std::path::Path::new("../elsewhere")
    );
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

    // READDIRPLUS of 300+ entries, against the server's disk.
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
    let mut on_disk: Vec<String> = std::fs::read_dir(server.export.join("d"))
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
    assert!(!server.export.join("d").exists());
    assert_eq!(
        status(client.getattr(&dir).await.expect_err("stale dir")),
        Nfs3Status::Stale
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_read_only_export_answers_rofs() {
    let server = Serve::start_with("read-only", &["--read-only", "--export", "/ro"]);
    assert!(server.url.contains("/ro?"), "{}", server.url);
    std::fs::write(server.export.join("existing"), b"data").expect("seed the export");
    std::fs::create_dir(server.export.join("sub")).expect("seed a dir");
    let client = Client::connect(&server.url_of("")).await.expect("connect");
    assert_eq!(client.export(), "/ro");
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
    assert_eq!(
        std::fs::read(server.export.join("existing")).expect("unchanged"),
        b"data"
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(&server.export)
        .expect("export")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, ["existing", "sub"]);
}

/// Creates `name` through a client connected with `uid` and `gid` (AUTH_SYS), returns the
/// owner the server's disk shows and the one GETATTR shows.
async fn create_as(server: &Serve, uid: u32, gid: u32, name: &str) -> ((u32, u32), (u32, u32)) {
    use std::os::unix::fs::MetadataExt;
    let url = format!("{}&uid={uid}&gid={gid}", server.url_of(""));
    let client = Client::connect(&url).await.expect("connect");
    let file = client.create_file(name, 0o644).await.expect("create");
    let attributes = file.metadata().await.expect("getattr");
    file.close().await.expect("close");
    let meta = std::fs::metadata(server.export.join(name)).expect("on disk");
    ((meta.uid(), meta.gid()), (attributes.uid, attributes.gid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_squash_flags_map_owners() {
    use std::os::unix::fs::PermissionsExt;
    let open_up = |server: &Serve| {
        std::fs::set_permissions(&server.export, std::fs::Permissions::from_mode(0o777))
            .expect("chmod the export");
    };
    // --squash none (the fixture's default): root stays root.
    let none = Serve::start("squash-none");
    open_up(&none);
    assert_eq!(create_as(&none, 0, 0, "root").await, ((0, 0), (0, 0)));
    assert_eq!(
        create_as(&none, 1000, 100, "user").await,
        ((1000, 100), (1000, 100))
    );
    // --squash root: root becomes the anonymous user (65534 unless --anonuid/--anongid).
    let root = Serve::start_with("squash-root", &["--squash", "root"]);
    open_up(&root);
    assert_eq!(
        create_as(&root, 0, 0, "root").await,
        ((65534, 65534), (65534, 65534))
    );
    assert_eq!(
        create_as(&root, 1000, 100, "user").await,
        ((1000, 100), (1000, 100))
    );
    // --squash all with --anonuid and --anongid: everyone becomes 1234:5678.
    let all = Serve::start_with(
        "squash-all",
        &["--squash", "all", "--anonuid", "1234", "--anongid", "5678"],
    );
    open_up(&all);
    assert_eq!(
        create_as(&all, 0, 0, "root").await,
        ((1234, 5678), (1234, 5678))
    );
    assert_eq!(
        create_as(&all, 1000, 100, "user").await,
        ((1234, 5678), (1234, 5678))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_restart_keeps_handles_and_changes_the_verifier() {
    let mut server = Serve::start("restart");
    let client = Client::connect(&server.url_of("")).await.expect("connect");
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
    let (old_url, old_pid) = (server.url.clone(), server.pid());

    server.restart();
    assert_eq!(server.url, old_url, "same ports after the restart");
    assert_ne!(server.pid(), old_pid);

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
    let fresh = Client::connect(&server.url_of("")).await.expect("connect");
    assert_eq!(fresh.root(), &root);
    assert_eq!(fresh.lookup_path("kept/file").await.expect("lookup").0, fh);
}

#[test]
fn serve_stops_with_status_0_on_sigterm_and_sigint() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    for signal in ["TERM", "INT"] {
        let mut server = Serve::start(&format!("stop-{signal}"));
        // With a mounted client and an open connection.
        let client = runtime
            .block_on(Client::connect(&server.url_of("")))
            .expect("connect");
        runtime.block_on(client.null()).expect("NULL");
        let started = Instant::now();
        let (exit, in_time) = server.stop_with(signal);
        assert!(
            in_time,
            "SIG{signal}: still running after {:?}; stderr:\n{}",
            common::STOP_TIMEOUT,
            server.log_text()
        );
        assert_eq!(
            exit.code(),
            Some(0),
            "SIG{signal}: {exit}; stderr:\n{}",
            server.log_text()
        );
        assert!(started.elapsed() < common::STOP_TIMEOUT);
        // Nothing listens any more.
        let Err(gone) = runtime.block_on(Client::connect(&server.url_of(""))) else {
            panic!("SIG{signal}: connect after the stop succeeded");
        };
        assert_eq!(gone.errno_name(), "ECONNREFUSED", "{gone}");
        drop(client);
    }
}

/// Runs `nfsio ARGS`, killing it after `limit`.
fn run_with_limit(args: &[&std::ffi::OsStr], limit: Duration) -> std::process::Output {
    let child = Command::new(NFSIO)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nfsio");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("wait for nfsio"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
            panic!("nfsio {args:?} still running after {limit:?}");
        }
    }
}

#[test]
fn serve_of_a_missing_directory_fails_with_one_line() {
    let scratch = Scratch::new("missing");
    let missing = scratch.join("does-not-exist");
    let a_file = scratch.join("a-file");
    std::fs::write(&a_file, b"not a directory").expect("file");
    let state = scratch.join("state");
    for dir in [&missing, &a_file] {
        let output = run_with_limit(
            &[
                "serve".as_ref(),
                dir.as_os_str(),
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--state-dir".as_ref(),
                state.as_os_str(),
            ],
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: {stderr}", dir.display());
        assert_eq!(
            stderr.lines().count(),
            1,
            "one line on stderr, got {stderr:?}"
        );
        assert!(
            stderr.contains(&*dir.to_string_lossy()),
            "the line names the directory: {stderr:?}"
        );
        assert!(
            output.stdout.is_empty(),
            "no URL printed: {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn serve_demo_64_mib_verifies() {
    let scratch = Scratch::new("demo");
    let output = run_with_limit(
        &[
            "demo".as_ref(),
            "--size".as_ref(),
            "64M".as_ref(),
            "--quiet".as_ref(),
            "--dir".as_ref(),
            scratch.path.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "nfsio demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stdout.contains("67108864 bytes"), "{stdout}");
    for procedure in ["WRITE", "COMMIT", "READ"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(procedure)),
            "no {procedure} row in:\n{stdout}"
        );
    }
    // Nothing left behind without --keep.
    let left: Vec<_> = std::fs::read_dir(&scratch.path).expect("scratch").collect();
    assert!(left.is_empty(), "demo left {left:?}");
}
