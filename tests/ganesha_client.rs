//! The client against nfs-ganesha where only ganesha can show it: MOUNT and NFS ports found
//! through the system's portmapper (rpcbind on 127.0.0.1:111, where ganesha registers).
//!
//! Everything else the client must do against ganesha is the client contract
//! (tests/client_contract.rs, `ganesha::*`), run against `nfsio serve` and the memory store as
//! well. Without ganesha the tests print one skip line (and fail under CI=true).

use nfsio_client::Client;
use nfsio_testkit::{Ganesha, GaneshaOptions};

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
    assert_eq!(client.url_path(), b"via-portmap");
    let (fh, _) = client.lookup_path(client.url_path()).await.expect("lookup");
    assert_eq!(
        &client.read(&fh, 0, 100).await.expect("read").data[..],
        b"found"
    );
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
