//! Export policy: read-only exports, squashing, permissions, the allow list.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use bytes::Bytes;
use common::*;
use nfsio_proto::nfs3::*;
use nfsio_server::Squash;

fn ok<T: std::fmt::Debug, F: std::fmt::Debug>(res: NfsRes<T, F>) -> T {
    match res {
        NfsRes::Ok(ok) => ok,
        NfsRes::Fail { status, fail } => panic!("{status}: {fail:?}"),
    }
}

#[tokio::test]
async fn read_only_export_answers_rofs_to_every_change() {
    let dirs = Dirs::new();
    std::fs::write(dirs.export.path().join("f"), b"data").unwrap();
    std::fs::create_dir(dirs.export.path().join("d")).unwrap();
    let mut config = dirs.config();
    config.service.read_only = true;
    let server = TestServer::bind(config).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let f = ok(c.lookup(&root, "f").await).object;
    let attrs = Sattr::default();

    let calls = vec![
        Nfs3Call::Setattr(SetattrArgs {
            object: f.clone(),
            new_attributes: Sattr {
                mode: Some(0o600),
                ..Sattr::default()
            },
            guard: None,
        }),
        Nfs3Call::Write(WriteArgs {
            file: f.clone(),
            offset: 0,
            count: 1,
            stable: StableHow::FileSync,
            data: Bytes::from_static(b"x"),
        }),
        Nfs3Call::Create(CreateArgs {
            where_: dir_op(&root, "new"),
            how: CreateHow::Unchecked(attrs.clone()),
        }),
        Nfs3Call::Mkdir(MkdirArgs {
            where_: dir_op(&root, "newdir"),
            attributes: attrs.clone(),
        }),
        Nfs3Call::Symlink(SymlinkArgs {
            where_: dir_op(&root, "l"),
            symlink: SymlinkData {
                symlink_attributes: attrs.clone(),
                symlink_data: Bytes::from_static(b"f"),
            },
        }),
        Nfs3Call::Mknod(MknodArgs {
            where_: dir_op(&root, "fifo"),
            what: MknodData::Fifo(attrs.clone()),
        }),
        Nfs3Call::Remove(RemoveArgs {
            object: dir_op(&root, "f"),
        }),
        Nfs3Call::Rmdir(RmdirArgs {
            object: dir_op(&root, "d"),
        }),
        Nfs3Call::Rename(RenameArgs {
            from: dir_op(&root, "f"),
            to: dir_op(&root, "g"),
        }),
        Nfs3Call::Link(LinkArgs {
            file: f.clone(),
            link: dir_op(&root, "hard"),
        }),
    ];
    for call in calls {
        let name = call.proc_name();
        let reply = c.nfs(call).await;
        assert_eq!(reply.status(), Nfs3Status::RoFs, "{name}");
    }
    // Reading still works, and ACCESS does not offer changes.
    assert_eq!(&ok(c.read(&f, 0, 10).await).data[..], b"data");
    let granted = match c
        .nfs(Nfs3Call::Access(AccessArgs {
            object: f.clone(),
            access: 0x3f,
        }))
        .await
    {
        Nfs3Reply::Access(res) => ok(res).access,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        granted & (access::MODIFY | access::EXTEND | access::DELETE),
        0
    );
    assert_ne!(granted & access::READ, 0);
    assert_eq!(
        std::fs::read(dirs.export.path().join("f")).unwrap(),
        b"data"
    );
    assert!(!dirs.export.path().join("new").exists());
    server.stop().await;
}

#[tokio::test]
async fn root_squash_gives_new_files_to_the_anonymous_user() {
    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.service.squash = Squash::Root;
    config.service.anonuid = 4242;
    config.service.anongid = 4343;
    // Squashed root is nobody special: the export must be writable by others.
    std::fs::set_permissions(dirs.export.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = TestServer::bind(config).await;
    let mut c = server.client().await;
    c.cred = sys_cred(0, 0);
    let root = c.root().await;
    let f = c.create_file(&root, "from_root").await;
    let meta = std::fs::metadata(dirs.export.path().join("from_root")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert_eq!(ok(c.getattr(&f).await).obj_attributes.uid, 4242);
    // A non-root user keeps its identity.
    c.cred = sys_cred(1000, 1000);
    c.create_file(&root, "from_user").await;
    let meta = std::fs::metadata(dirs.export.path().join("from_user")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    // Squashed root cannot write into a directory only root may write.
    std::fs::create_dir(dirs.export.path().join("locked")).unwrap();
    std::fs::set_permissions(
        dirs.export.path().join("locked"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    c.cred = sys_cred(0, 0);
    let locked = ok(c.lookup(&root, "locked").await).object;
    assert_eq!(
        c.create(&locked, "x", CreateHow::Guarded(Sattr::default()))
            .await
            .status(),
        Nfs3Status::Acces
    );
    server.stop().await;
}

#[tokio::test]
async fn all_squash_and_no_squash() {
    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.service.squash = Squash::All;
    config.service.anonuid = 777;
    config.service.anongid = 778;
    std::fs::set_permissions(dirs.export.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = TestServer::bind(config).await;
    let mut c = server.client().await;
    c.cred = sys_cred(1000, 1000);
    let root = c.root().await;
    c.create_file(&root, "a").await;
    let meta = std::fs::metadata(dirs.export.path().join("a")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (777, 778));
    server.stop().await;

    let dirs = Dirs::new();
    let server = TestServer::bind(dirs.config()).await; // Squash::None
    let mut c = server.client().await;
    c.cred = sys_cred(0, 0);
    let root = c.root().await;
    c.create_file(&root, "b").await;
    let meta = std::fs::metadata(dirs.export.path().join("b")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    server.stop().await;
}

#[tokio::test]
async fn permissions_are_checked_against_the_caller() {
    let dirs = Dirs::new();
    let export = dirs.export.path();
    std::fs::set_permissions(export, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(export.join("private"), b"mine").unwrap();
    std::fs::set_permissions(
        export.join("private"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::create_dir(export.join("shared")).unwrap();
    std::fs::set_permissions(
        export.join("shared"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    let server = TestServer::bind(dirs.config()).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let private = ok(c.lookup(&root, "private").await).object;
    let shared = ok(c.lookup(&root, "shared").await).object;

    c.cred = sys_cred(1000, 1000);
    assert_eq!(c.read(&private, 0, 10).await.status(), Nfs3Status::Acces);
    assert_eq!(
        c.write(&private, 0, b"x", StableHow::Unstable)
            .await
            .status(),
        Nfs3Status::Acces
    );
    assert_eq!(
        c.create(&root, "nope", CreateHow::Guarded(Sattr::default()))
            .await
            .status(),
        Nfs3Status::Acces
    );
    assert_eq!(c.remove(&root, "private").await.status(), Nfs3Status::Acces);
    let granted = match c
        .nfs(Nfs3Call::Access(AccessArgs {
            object: root.clone(),
            access: 0x3f,
        }))
        .await
    {
        Nfs3Reply::Access(res) => ok(res).access,
        other => panic!("{other:?}"),
    };
    assert_eq!(granted, access::READ | access::LOOKUP);
    let chmod = |object: &FileHandle| {
        Nfs3Call::Setattr(SetattrArgs {
            object: object.clone(),
            new_attributes: Sattr {
                mode: Some(0o666),
                ..Sattr::default()
            },
            guard: None,
        })
    };
    assert_eq!(c.nfs(chmod(&private)).await.status(), Nfs3Status::Perm);

    // In a sticky directory, users create freely but remove only their own files.
    c.create_file(&shared, "u1000").await;
    c.cred = sys_cred(2000, 2000);
    c.create_file(&shared, "u2000").await;
    // Linux answers a sticky-bit refusal with EPERM.
    assert_eq!(c.remove(&shared, "u1000").await.status(), Nfs3Status::Perm);
    ok(c.remove(&shared, "u2000").await);
    c.cred = sys_cred(1000, 1000);
    ok(c.remove(&shared, "u1000").await);

    // The owner may write its own file even when its mode says read-only (knfsd's rule: the
    // mode was checked when the client opened it).
    let own = c.create_file(&shared, "ro").await;
    ok(c.nfs(Nfs3Call::Setattr(SetattrArgs {
        object: own.clone(),
        new_attributes: Sattr {
            mode: Some(0o444),
            ..Sattr::default()
        },
        guard: None,
    }))
    .await
    .into_setattr());
    ok(c.write(&own, 0, b"still mine", StableHow::Unstable).await);
    server.stop().await;
}

trait IntoSetattr {
    fn into_setattr(self) -> SetattrRes;
}

impl IntoSetattr for Nfs3Reply {
    fn into_setattr(self) -> SetattrRes {
        match self {
            Nfs3Reply::Setattr(res) => res,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn clients_outside_the_allow_list_cannot_mount_or_call() {
    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.service.allow = vec!["10.0.0.0/8".parse().unwrap()];
    let server = TestServer::bind(config).await;
    // MNT answers MNT3ERR_ACCES at once (the client learns why), like rpc.mountd.
    let url = format!(
        "nfs://127.0.0.1/export?nfsport={0}&mountport={0}",
        server.addr.port()
    );
    let error = tokio::time::timeout(TIMEOUT, nfsio_client::Client::connect(&url))
        .await
        .expect("connect fails promptly")
        .expect_err("127.0.0.1 is not allowed");
    assert!(
        matches!(
            error,
            nfsio_client::NfsError::Mount(nfsio_proto::mount::MountStatus::Acces)
        ),
        "{error}"
    );
    assert_eq!(error.errno_name(), "EACCES");
    // NFS calls (with a handle learned elsewhere) are rejected as too weak.
    let mut c = server.client().await;
    let reply = c
        .call(
            nfsio_proto::nfs3::PROGRAM,
            nfsio_proto::nfs3::VERSION,
            1,
            &|enc| {
                enc.put_opaque(&[0u8; 44]);
            },
        )
        .await;
    assert!(
        matches!(
            reply.header.status,
            nfsio_proto::rpc::ReplyStatus::AuthError(nfsio_proto::rpc::AuthStat::TooWeak)
        ),
        "{:?}",
        reply.header.status
    );
    server.stop().await;

    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.service.allow = vec!["127.0.0.0/8".parse().unwrap()];
    let server = TestServer::bind(config).await;
    let mut c = server.client().await;
    c.root().await;
    server.stop().await;
}

#[tokio::test]
async fn a_state_directory_inside_the_export_is_refused() {
    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.state_dir = dirs.export.path().join("sub/.nfsio");
    let err = nfsio_server::Server::bind(config).await.unwrap_err();
    assert!(
        matches!(err, nfsio_server::ServerError::StateInsideExport { .. }),
        "{err}"
    );
    assert!(!dirs.export.path().join("sub").exists(), "nothing created");
    // The handle key is kept 0600 in the state directory.
    let server = TestServer::bind(dirs.config()).await;
    let mode = std::fs::metadata(dirs.state.path().join("handle.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    server.stop().await;
}
