//! Check-then-act races: a change the server checked on one object must not land on another
//! that took its name meanwhile. An attacker renames a victim's private file onto the name of
//! its own file while asking the server to change its own file (SETATTR) or to create one
//! there (CREATE, with the attributes applied after), in a shared directory without the
//! sticky bit, where anyone may rename anything.

use std::os::unix::fs::PermissionsExt;

use nfsio_proto::nfs3::*;
use nfsio_testkit::raw::TestClient;

use crate::common::Serve;
use crate::harness::*;

fn rounds() -> usize {
    if long() { 5_000 } else { 400 }
}

/// The victim's file of round `round`: created 0600 with a secret, its handle returned.
async fn victim_file(victim: &mut TestClient, dir: &FileHandle, round: usize) -> FileHandle {
    let name = format!("secret-{round}");
    let handle = ok(create_mode(victim, dir, &name, 0o600).await)
        .obj
        .expect("handle");
    ok(victim
        .write(&handle, 0, b"the victim's secret", StableHow::Unstable)
        .await);
    handle
}

/// After a round: the victim's file must still be 0600 and unreadable to the attacker.
async fn assert_untouched(
    victim: &mut TestClient,
    attacker: &mut TestClient,
    secret: &FileHandle,
    round: usize,
) {
    let attr = ok(victim.getattr(secret).await).obj_attributes;
    assert_eq!(
        attr.mode & 0o777,
        0o600,
        "round {round}: the victim's file was changed through a name"
    );
    assert_eq!(
        attacker.read(secret, 0, 64).await.status(),
        Nfs3Status::Acces,
        "round {round}: the attacker read the victim's file"
    );
}

/// Sends `count` copies of SETATTR(`object`, mode 0666) back to back, so the server runs them
/// at once, then reads their replies.
async fn chmod_burst(attacker: &mut TestClient, object: &FileHandle, count: u32) {
    use nfsio_proto::XdrEncode;
    let args = SetattrArgs {
        object: object.clone(),
        new_attributes: Sattr {
            mode: Some(0o666),
            ..Sattr::default()
        },
        guard: None,
    };
    for i in 0..count {
        let xid = attacker.next_xid + i;
        let record = attacker.build(xid, PROGRAM, VERSION, procs::SETATTR, &|enc| {
            args.encode(enc)
        });
        attacker.send_record(&record).await;
    }
    attacker.next_xid += count;
    for _ in 0..count {
        attacker.read_reply().await;
    }
}

fn shared_dir(server: &Serve) {
    std::fs::set_permissions(&server.export, std::fs::Permissions::from_mode(0o777)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setattr_acts_on_the_object_of_the_handle_not_on_a_name() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let server = Serve::start_with("race-setattr", &["--squash", "auto"]);
    shared_dir(&server);
    let mut victim = client(&server, cred(1000, 1000, &[])).await;
    let root = victim.root().await;
    let mut attacker = client(&server, cred(2000, 2000, &[])).await;
    let mut renamer = client(&server, cred(2000, 2000, &[])).await;
    for round in 0..rounds() {
        let secret = victim_file(&mut victim, &root, round).await;
        let bait_name = format!("bait-{round}");
        let bait = ok(create_mode(&mut attacker, &root, &bait_name, 0o600).await)
            .obj
            .expect("handle");
        let secret_name = format!("secret-{round}");
        // The attacker's chmods of its own file are allowed; whatever the order, they reach
        // only that file.
        let ((), moved) = tokio::join!(
            chmod_burst(&mut attacker, &bait, 16),
            rename(&mut renamer, &root, &secret_name, &root, &bait_name),
        );
        let _ = moved;
        assert_untouched(&mut victim, &mut attacker, &secret, round).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_sets_attributes_on_the_file_it_made_not_on_a_name() {
    if !nfsio_testkit::require_root() {
        return;
    }
    let server = Serve::start_with("race-create", &["--squash", "auto"]);
    shared_dir(&server);
    let mut victim = client(&server, cred(1000, 1000, &[])).await;
    let root = victim.root().await;
    let mut attacker = client(&server, cred(2000, 2000, &[])).await;
    let mut renamer = client(&server, cred(2000, 2000, &[])).await;
    for round in 0..rounds() {
        let secret = victim_file(&mut victim, &root, round).await;
        let name = format!("made-{round}");
        let secret_name = format!("secret-{round}");
        let (created, moved) = tokio::join!(
            create_mode(&mut attacker, &root, &name, 0o666),
            rename(&mut renamer, &root, &secret_name, &root, &name),
        );
        let _ = (created, moved);
        assert_untouched(&mut victim, &mut attacker, &secret, round).await;
    }
}
