//! Who a caller is: ids no policy accepts, root squash, AUTH_NONE, set-id bits, permissions the
//! kernel decides, COMMIT's checks.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use nfsio_proto::nfs3::*;
use nfsio_proto::rpc::OpaqueAuth;

use crate::common::Serve;
use crate::harness::*;

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn owner_and_mode(path: &std::path::Path) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).expect("stat");
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// A server with the default identity policy on an export anyone may write.
fn open_server(name: &str) -> Serve {
    let server = Serve::start_with(name, &["--squash", "auto"]);
    chmod(&server.export, 0o777);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_no_policy_accepts_become_the_anonymous_user() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let server = open_server("invalid-ids");
    let mut c = client(&server, cred(u32::MAX, u32::MAX, &[u32::MAX])).await;
    let root = c.root().await;
    ok(create_mode(&mut c, &root, "setuid-bait", 0o4777).await);
    ok(mkdir(&mut c, &root, "dir-bait", 0o777).await);
    // -1 is "leave unchanged" to chown: had it reached the kernel, these were root's.
    assert_eq!(owner_and_mode(&server.export.join("setuid-bait")).0, 65534);
    assert_eq!(owner_and_mode(&server.export.join("setuid-bait")).1, 65534);
    assert_eq!(owner_and_mode(&server.export.join("dir-bait")).0, 65534);
    // gid -1 alone: the group is the anonymous one, never 0.
    let mut c = client(&server, cred(1000, u32::MAX, &[])).await;
    ok(create_mode(&mut c, &root, "group-bait", 0o2777).await);
    let (uid, gid, _) = owner_and_mode(&server.export.join("group-bait"));
    assert_eq!((uid, gid), (1000, 65534));
}

/// A raw client whose TCP socket belongs to `uid` (the kernel lists its owner in
/// /proc/net/tcp: the fsuid of the thread that made it).
async fn client_with_socket_of(
    server: &Serve,
    uid: u32,
    cred: OpaqueAuth,
) -> nfsio_testkit::raw::TestClient {
    let to = addr(server);
    let stream = std::thread::spawn(move || {
        // SAFETY: setfsuid changes only this thread's file-system uid; it is set back below.
        unsafe { libc::syscall(libc::SYS_setfsuid, uid as libc::c_long) };
        let stream = std::net::TcpStream::connect(to);
        unsafe { libc::syscall(libc::SYS_setfsuid, 0 as libc::c_long) };
        stream.expect("connect")
    })
    .join()
    .expect("thread");
    stream.set_nonblocking(true).expect("nonblocking");
    let mut client = nfsio_testkit::raw::TestClient::from_stream(
        tokio::net::TcpStream::from_std(stream).expect("tokio"),
    );
    client.cred = cred;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_is_squashed_unless_the_kernel_shows_it_is_root_here() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let server = open_server("squash-auto");
    // Root on this machine (the test runs as root): trusted.
    let mut root_here = client(&server, cred(0, 0, &[])).await;
    let root = root_here.root().await;
    ok(create_mode(&mut root_here, &root, "by-local-root", 0o644).await);
    assert_eq!(owner_and_mode(&server.export.join("by-local-root")).0, 0);
    // A local ordinary user claiming uid 0: squashed.
    let mut liar = client_with_socket_of(&server, 1000, cred(0, 0, &[0])).await;
    ok(create_mode(&mut liar, &root, "by-a-liar", 0o644).await);
    let (uid, gid, _) = owner_and_mode(&server.export.join("by-a-liar"));
    assert_eq!((uid, gid), (65534, 65534));
    // AUTH_NONE: the anonymous user.
    let mut anonymous = client(&server, OpaqueAuth::none()).await;
    ok(create_mode(&mut anonymous, &root, "by-nobody", 0o644).await);
    assert_eq!(owner_and_mode(&server.export.join("by-nobody")).0, 65534);
    // --squash root squashes root here too.
    let strict = Serve::start_with("squash-root-strict", &["--squash", "root"]);
    chmod(&strict.export, 0o777);
    let mut c = client(&strict, cred(0, 0, &[])).await;
    let root = c.root().await;
    ok(create_mode(&mut c, &root, "squashed", 0o644).await);
    assert_eq!(owner_and_mode(&strict.export.join("squashed")).0, 65534);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_id_bits_are_cleared_and_inherited_as_linux_does() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let server = open_server("set-id");
    let export = &server.export;
    // Root's set-id files anyone may write.
    for (name, mode) in [("suid", 0o4777), ("sgid-exec", 0o6777)] {
        std::fs::write(export.join(name), b"#!/bin/sh\n").unwrap();
        chmod(&export.join(name), mode);
    }
    std::fs::create_dir(export.join("sgid-dir")).unwrap();
    chmod(&export.join("sgid-dir"), 0o2777);
    let mut user = client(&server, cred(1000, 1000, &[])).await;
    let root = user.root().await;
    // A WRITE by someone else clears set-uid.
    let (suid, _) = lookup(&mut user, &root, "suid").await;
    ok(user
        .write(&suid, 0, b"#!/bin/true", StableHow::FileSync)
        .await);
    assert_eq!(owner_and_mode(&export.join("suid")).2, 0o777);
    // A truncation by someone else clears set-uid and set-gid (group may execute).
    let (sgid, _) = lookup(&mut user, &root, "sgid-exec").await;
    ok(setattr(
        &mut user,
        &sgid,
        Sattr {
            size: Some(0),
            ..Sattr::default()
        },
    )
    .await);
    assert_eq!(owner_and_mode(&export.join("sgid-exec")).2, 0o777);
    // In a set-gid directory of group 0: new objects get group 0; a file's set-gid asked by a
    // non-member is dropped; a new directory inherits set-gid.
    let (dir, _) = lookup(&mut user, &root, "sgid-dir").await;
    ok(create_mode(&mut user, &dir, "file", 0o2755).await);
    ok(mkdir(&mut user, &dir, "sub", 0o755).await);
    let (_, gid, mode) = owner_and_mode(&export.join("sgid-dir/file"));
    assert_eq!((gid, mode), (0, 0o755));
    let (_, gid, mode) = owner_and_mode(&export.join("sgid-dir/sub"));
    assert_eq!((gid, mode & 0o2000), (0, 0o2000));
    // chmod of one's own file to set-gid of a group one is not in: set-gid dropped.
    let (file, _) = lookup(&mut user, &dir, "file").await;
    ok(setattr(
        &mut user,
        &file,
        Sattr {
            mode: Some(0o2750),
            ..Sattr::default()
        },
    )
    .await);
    assert_eq!(owner_and_mode(&export.join("sgid-dir/file")).2, 0o750);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_decides_permissions_and_commit_is_checked() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let server = open_server("permissions");
    let mut alice = client(&server, cred(1000, 1000, &[])).await;
    let root = alice.root().await;
    let secret = ok(create_mode(&mut alice, &root, "secret", 0o600).await)
        .obj
        .expect("handle");
    ok(alice
        .write(&secret, 0, b"alice's", StableHow::Unstable)
        .await);
    let mut bob = client(&server, cred(2000, 2000, &[])).await;
    assert_eq!(bob.read(&secret, 0, 100).await.status(), Nfs3Status::Acces);
    assert_eq!(
        bob.write(&secret, 0, b"bob", StableHow::Unstable)
            .await
            .status(),
        Nfs3Status::Acces
    );
    // COMMIT needs the right to write, and AUTH_NONE has none here.
    let mut anonymous = client(&server, OpaqueAuth::none()).await;
    assert_eq!(anonymous.commit(&secret).await.status(), Nfs3Status::Acces);
    assert_eq!(bob.commit(&secret).await.status(), Nfs3Status::Acces);
    ok(alice.commit(&secret).await);
    // The owner may write its own read-only file (knfsd's rule: clients check at open).
    ok(setattr(
        &mut alice,
        &secret,
        Sattr {
            mode: Some(0o400),
            ..Sattr::default()
        },
    )
    .await);
    ok(alice
        .write(&secret, 0, b"ALICE'S", StableHow::FileSync)
        .await);
    assert_eq!(
        std::fs::read(server.export.join("secret")).unwrap(),
        b"ALICE'S"
    );
    // A read-only export answers COMMIT with ROFS, like every other change.
    let ro = Serve::start_with("permissions-ro", &["--read-only"]);
    std::fs::write(ro.export.join("f"), b"x").unwrap();
    let mut c = client(&ro, cred(0, 0, &[])).await;
    let root = c.root().await;
    let (f, _) = lookup(&mut c, &root, "f").await;
    assert_eq!(c.commit(&f).await.status(), Nfs3Status::RoFs);
}
