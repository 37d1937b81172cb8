//! File handles and containment: stale handles, forged handles, `..`, symbolic links.
//!
//! What every store must do is part of the storage contract (see procedures.rs), run over the
//! local store (`local::*`) and the memory store (`memory::*`). Over one store only: symbolic
//! links to places outside the export and the local store's map of names (the machine's file
//! system), and the memory store's reuse of inode numbers (which ext4 does only now and then).

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use bytes::Bytes;
use common::stores::{Store, store_contract};
use common::*;
use nfsio_proto::nfs3::*;
use nfsio_proto::rpc::{AcceptError, ReplyStatus};
use nfsio_server::MemStore;

fn ok<T: std::fmt::Debug, F: std::fmt::Debug>(res: NfsRes<T, F>) -> T {
    match res {
        NfsRes::Ok(ok) => ok,
        NfsRes::Fail { status, fail } => panic!("{status}: {fail:?}"),
    }
}

store_contract!(
    removed_file_handle_is_stale_even_when_the_inode_number_is_reused,
    dotdot_at_the_export_root_stays_at_the_root,
    forged_and_tampered_handles_are_rejected,
    handles_follow_renames_over_nfs_and_behind_the_servers_back,
);

async fn removed_file_handle_is_stale_even_when_the_inode_number_is_reused<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let old = c.create_file(&root, "victim").await;
    let old_ino = ok(c.getattr(&old).await).obj_attributes.fileid;
    ok(c.remove(&root, "victim").await);
    assert_eq!(c.getattr(&old).await.status(), Nfs3Status::Stale);
    assert_eq!(
        c.write(&old, 0, b"x", StableHow::Unstable).await.status(),
        Nfs3Status::Stale
    );

    // ext4 hands a freed inode number out again soon; provoke it.
    let mut reused = None;
    for i in 0..200 {
        let name = format!("new{i}");
        let handle = c.create_file(&root, &name).await;
        if ok(c.getattr(&handle).await).obj_attributes.fileid == old_ino {
            reused = Some(handle);
            break;
        }
    }
    if let Some(new) = reused {
        assert_ne!(new, old, "same inode number, different generation");
        assert_eq!(c.getattr(&old).await.status(), Nfs3Status::Stale);
        assert_eq!(
            c.read(&old, 0, 10).await.status(),
            Nfs3Status::Stale,
            "the old handle must not reach the new file"
        );
        ok(c.getattr(&new).await);
    } else {
        eprintln!("inode number {old_ino} was not reused; reuse checked on the memory store only");
    }
    store.stop().await;
}

#[tokio::test]
async fn reused_inode_number_on_the_memory_store_is_stale() {
    let store = Arc::new(MemStore::new());
    let server = TestServer::memory(store, 5).await;
    let mut c = server.client().await;
    let root = c.root().await;
    let old = c.create_file(&root, "a").await;
    let old_id = ok(c.getattr(&old).await).obj_attributes.fileid;
    ok(c.remove(&root, "a").await);
    let new = c.create_file(&root, "b").await;
    assert_eq!(ok(c.getattr(&new).await).obj_attributes.fileid, old_id);
    assert_eq!(c.getattr(&old).await.status(), Nfs3Status::Stale);
    server.stop().await;
}

async fn dotdot_at_the_export_root_stays_at_the_root<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let root_id = ok(c.getattr(&root).await).obj_attributes.fileid;
    let up = ok(c.lookup(&root, "..").await);
    assert_eq!(up.object, root);
    assert_eq!(up.obj_attributes.unwrap().fileid, root_id);
    let up_up = ok(c.lookup(&up.object, "..").await);
    assert_eq!(up_up.object, root);

    // READDIRPLUS of the root lists `..` as the root too.
    let listing = match c
        .nfs(Nfs3Call::Readdirplus(ReaddirplusArgs {
            dir: root.clone(),
            cookie: 0,
            cookieverf: CookieVerifier::default(),
            dircount: 8192,
            maxcount: 65536,
        }))
        .await
    {
        Nfs3Reply::Readdirplus(res) => ok(res),
        other => panic!("{other:?}"),
    };
    let dotdot = listing
        .entries
        .iter()
        .find(|e| &e.name[..] == b"..")
        .expect("a .. entry");
    assert_eq!(dotdot.fileid, root_id);
    assert_eq!(dotdot.name_handle.as_ref(), Some(&root));

    // `..` of a subdirectory is the root.
    store.view().put_dir("d");
    let d = ok(c.lookup(&root, "d").await).object;
    assert_eq!(ok(c.lookup(&d, "..").await).object, root);
    store.stop().await;
}

/// A link to a file outside the export (`root`'s `out_file`, to `outside/secret`) is not
/// opened: READ and WRITE refuse it, UNCHECKED CREATE with size 0 (O_TRUNC) does not truncate
/// the target, SETATTR does not change it.
async fn a_file_link_is_not_opened(
    c: &mut TestClient,
    root: &FileHandle,
    outside: &std::path::Path,
) {
    let file_link = ok(c.lookup(root, "out_file").await).object;
    assert_ne!(c.read(&file_link, 0, 100).await.status(), Nfs3Status::Ok);
    assert_ne!(
        c.write(&file_link, 0, b"pwned", StableHow::FileSync)
            .await
            .status(),
        Nfs3Status::Ok
    );
    let truncate = Sattr {
        size: Some(0),
        ..Sattr::default()
    };
    assert_ne!(
        c.create(root, "out_file", CreateHow::Unchecked(truncate))
            .await
            .status(),
        Nfs3Status::Ok
    );
    assert_eq!(
        std::fs::read(outside.join("secret")).unwrap(),
        b"top secret"
    );
    // SETATTR on a link does not change its target.
    let before = std::fs::metadata(outside.join("secret")).unwrap().mode();
    let _ = c
        .nfs(Nfs3Call::Setattr(SetattrArgs {
            object: file_link.clone(),
            new_attributes: Sattr {
                mode: Some(0o777),
                ..Sattr::default()
            },
            guard: None,
        }))
        .await;
    assert_eq!(
        std::fs::metadata(outside.join("secret")).unwrap().mode(),
        before
    );
}

#[tokio::test]
async fn symlinks_are_read_but_never_followed() {
    let dirs = Dirs::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"top secret").unwrap();
    let export = dirs.export.path();
    std::os::unix::fs::symlink(outside.path(), export.join("out_dir")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), export.join("out_file")).unwrap();
    let server = TestServer::bind(dirs.config()).await;
    let mut c = server.client().await;
    let root = c.root().await;

    // LOOKUP finds the link itself, READLINK returns its text.
    let link = ok(c.lookup(&root, "out_dir").await);
    assert_eq!(link.obj_attributes.unwrap().file_type, FileType::Symlink);
    let target = match c
        .nfs(Nfs3Call::Readlink(ReadlinkArgs {
            symlink: link.object.clone(),
        }))
        .await
    {
        Nfs3Reply::Readlink(res) => ok(res).data,
        other => panic!("{other:?}"),
    };
    assert_eq!(&target[..], outside.path().as_os_str().as_encoded_bytes());

    // Nothing goes through the link.
    assert_eq!(
        c.lookup(&link.object, "secret").await.status(),
        Nfs3Status::NotDir
    );
    let attrs = Sattr {
        mode: Some(0o644),
        ..Sattr::default()
    };
    assert_eq!(
        c.create(&link.object, "planted", CreateHow::Unchecked(attrs.clone()))
            .await
            .status(),
        Nfs3Status::NotDir
    );
    assert!(!outside.path().join("planted").exists());

    a_file_link_is_not_opened(&mut c, &root, outside.path()).await;

    // MOUNT does not follow links either.
    assert!(matches!(
        c.mount("/export/out_dir").await,
        nfsio_proto::mount::MntRes::Fail(_)
    ));

    // A link created over NFS is stored as given, and not followed either.
    let made = match c
        .nfs(Nfs3Call::Symlink(SymlinkArgs {
            where_: dir_op(&root, "made"),
            symlink: SymlinkData {
                symlink_attributes: Sattr::default(),
                symlink_data: Bytes::from_static(b"../../../../etc"),
            },
        }))
        .await
    {
        Nfs3Reply::Symlink(res) => ok(res).obj.unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(c.lookup(&made, "passwd").await.status(), Nfs3Status::NotDir);
    assert_eq!(
        std::fs::read_link(export.join("made")).unwrap(),
        std::path::Path::new("../../../../etc")
    );
    server.stop().await;
}

async fn forged_and_tampered_handles_are_rejected<S: Store>() {
    let store = S::start().await;
    store.view().put_file("f", b"data");
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    let file = ok(c.lookup(&root, "f").await).object;

    // Flip a bit of the inode number: the MAC no longer matches.
    let mut tampered = file.as_bytes().to_vec();
    tampered[19] ^= 1;
    assert_eq!(
        c.getattr(&FileHandle::from(tampered)).await.status(),
        Nfs3Status::BadHandle
    );
    // A handle of the right length made up from scratch.
    assert_eq!(
        c.getattr(&FileHandle::from(vec![0x6e; 44])).await.status(),
        Nfs3Status::BadHandle
    );
    // Empty and wrong-length handles.
    assert_eq!(
        c.getattr(&FileHandle::default()).await.status(),
        Nfs3Status::BadHandle
    );
    assert_eq!(
        c.read(&FileHandle::from(vec![1u8; 64]), 0, 10)
            .await
            .status(),
        Nfs3Status::BadHandle
    );
    // Longer than NFSv3 allows: the arguments do not decode.
    let mut enc_handle = vec![0u8; 4];
    enc_handle[..4].copy_from_slice(&65u32.to_be_bytes());
    enc_handle.extend_from_slice(&[0u8; 68]);
    let reply = c
        .call(PROGRAM, VERSION, procs::GETATTR, &|enc| {
            enc.put_opaque_fixed(&enc_handle)
        })
        .await;
    assert!(matches!(
        reply.header.status,
        ReplyStatus::AcceptError {
            error: AcceptError::GarbageArgs,
            ..
        }
    ));
    // A handle from another server (another key) is rejected.
    let other = S::start().await;
    let mut o = other.server().client().await;
    let foreign_root = o.root().await;
    assert_eq!(
        c.getattr(&foreign_root).await.status(),
        Nfs3Status::BadHandle
    );
    // The real one still works.
    ok(c.getattr(&file).await);
    other.stop().await;
    store.stop().await;
}

async fn handles_follow_renames_over_nfs_and_behind_the_servers_back<S: Store>() {
    let store = S::start().await;
    let server = store.server();
    let mut c = server.client().await;
    let root = c.root().await;
    store.view().put_dir("a");
    store.view().put_dir("a/b");
    store.view().put_file("a/b/f", b"x");
    let a = ok(c.lookup(&root, "a").await).object;
    let b = ok(c.lookup(&a, "b").await).object;
    let f = ok(c.lookup(&b, "f").await).object;
    // Renamed over NFS: the map follows.
    match c
        .nfs(Nfs3Call::Rename(RenameArgs {
            from: dir_op(&root, "a"),
            to: dir_op(&root, "z"),
        }))
        .await
    {
        Nfs3Reply::Rename(res) => {
            ok(res);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ok(c.getattr(&f).await).obj_attributes.size, 1);
    // Renamed behind the server's back: found by walking the export.
    store.view().rename("z/b", "y");
    assert_eq!(ok(c.getattr(&f).await).obj_attributes.size, 1);
    assert_eq!(ok(c.lookup(&b, "f").await).object, f);
    store.stop().await;
}

/// A local store that resolves handles through its map of names (what a server that is not
/// root does), with a map bound of `max_map_bytes`.
fn name_map_store(dir: &std::path::Path, max_map_bytes: usize) -> nfsio_server::LocalStore {
    nfsio_server::LocalStore::open(
        dir,
        nfsio_server::LocalOptions {
            kernel_handles: false,
            max_map_bytes,
            ..nfsio_server::LocalOptions::default()
        },
    )
    .expect("store")
}

#[test]
fn the_map_of_names_grows_with_names_not_paths_and_stays_within_its_bound() {
    use nfsio_server::{Caller, Storage};
    let dirs = Dirs::new();
    let store = name_map_store(dirs.export.path(), 64 << 20);
    assert!(!store.uses_kernel_handles());
    let root = Caller::root();
    let name = [b'd'; 255];
    let mut dir = store.root();
    let mut ids = Vec::new();
    for _ in 0..300 {
        dir = store
            .mkdir(&root, dir, &name, &Sattr::default())
            .expect("mkdir")
            .id;
        ids.push(dir);
    }
    // Each level costs its name and a small overhead, not the path above it.
    let per_level = store.map_bytes() / 300;
    assert!(
        (255..=400).contains(&per_level),
        "{per_level} bytes a level"
    );
    for id in &ids {
        store.getattr(*id).expect("resolves");
    }
    // A tight bound: the map starts over instead of growing past it (and once the path
    // above no longer fits, resolving a deep directory takes a search from the budget, or
    // the answer "try later").
    let tight = name_map_store(dirs.export.path(), 10_000);
    let mut dir = tight.root();
    for i in 0..300 {
        match tight.lookup(&root, dir, &name) {
            Ok((next, _)) => dir = next,
            Err(e) => assert_eq!(e.status, Nfs3Status::Jukebox, "level {i}"),
        }
        assert!(
            tight.map_bytes() <= 10_000,
            "level {i}: {} bytes",
            tight.map_bytes()
        );
    }
}

#[test]
fn unknown_handles_are_searched_within_a_budget_and_stale_ones_cost_nothing() {
    use nfsio_server::{Caller, FileId, Storage};
    let dirs = Dirs::new();
    let store = name_map_store(dirs.export.path(), 64 << 20);
    let root = Caller::root();
    let sub = store
        .mkdir(&root, store.root(), b"sub", &Sattr::default())
        .expect("mkdir")
        .id;
    let file = store
        .create(
            &root,
            sub,
            b"f",
            nfsio_server::CreateMode::Guarded(&Sattr::default()),
        )
        .expect("create")
        .id;
    // A restarted server knows none of them: the first is found by a search of the export.
    let restarted = name_map_store(dirs.export.path(), 64 << 20);
    restarted.getattr(file).expect("found by a search");
    restarted.getattr(sub).expect("remembered by that search");
    // Handles of nothing: one more search is in the budget, then the server answers
    // "try later" at once rather than walking the export for each.
    let nothing = |n: u64| FileId::new(1 << 40 | n, 7);
    let statuses: Vec<Nfs3Status> = (0..10)
        .map(|n| restarted.getattr(nothing(n)).unwrap_err().status)
        .collect();
    assert_eq!(statuses[0], Nfs3Status::Stale, "{statuses:?}");
    assert!(
        statuses[1..]
            .iter()
            .all(|s| *s == Nfs3Status::Jukebox || *s == Nfs3Status::Stale)
            && statuses.contains(&Nfs3Status::Jukebox),
        "{statuses:?}"
    );
    // One found stale is remembered: asking again costs no search.
    let started = std::time::Instant::now();
    for _ in 0..1000 {
        assert_eq!(
            restarted.getattr(nothing(0)).unwrap_err().status,
            Nfs3Status::Stale
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
