//! Protocol limits and discovery: names over 255 bytes answered NAMETOOLONG (not rejected as
//! garbage), symbolic link targets of up to 4,095 bytes both ways, and Linux's `rpcinfo` and
//! `showmount` against `nfsio serve --portmap-port 111` (in a network namespace of the
//! test's own, whose port 111 nothing else holds).

use std::process::Command;

use bytes::Bytes;
use nfsio_proto::nfs3::*;

use crate::common::{NFSIO, Serve};
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_names_are_nametoolong_and_long_link_targets_work() {
    let server = Serve::start("names");
    let mut c = client(&server, cred(0, 0, &[])).await;
    let root = c.root().await;
    let long = "n".repeat(256);
    assert_eq!(
        c.lookup(&root, &long).await.status(),
        Nfs3Status::NameTooLong
    );
    assert_eq!(
        create_mode(&mut c, &root, &long, 0o644).await.status(),
        Nfs3Status::NameTooLong
    );
    assert_eq!(
        mkdir(&mut c, &root, &long, 0o755).await.status(),
        Nfs3Status::NameTooLong
    );
    // A 4,000-byte symbolic link target, made and read back through the server, then read by
    // nfsio's client.
    let target: String = (0..4000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let made = match c
        .nfs(Nfs3Call::Symlink(SymlinkArgs {
            where_: nfsio_testkit::raw::dir_op(&root, "long-link"),
            symlink: SymlinkData {
                symlink_attributes: Sattr::default(),
                symlink_data: Bytes::from(target.clone()),
            },
        }))
        .await
    {
        Nfs3Reply::Symlink(res) => ok(res),
        other => panic!("{other:?}"),
    };
    let link = made.obj.expect("handle");
    assert_eq!(
        std::fs::read_link(server.export.join("long-link"))
            .unwrap()
            .as_os_str()
            .len(),
        4000
    );
    let library = nfsio_client::Client::connect(&server.short_url_of(""))
        .await
        .expect("connect");
    assert_eq!(
        library.readlink(&link).await.expect("READLINK"),
        target.as_bytes()
    );
    // Linux's own limit: 4,095 bytes.
    let too_long = "x".repeat(4096);
    let refused = match c
        .nfs(Nfs3Call::Symlink(SymlinkArgs {
            where_: nfsio_testkit::raw::dir_op(&root, "too-long"),
            symlink: SymlinkData {
                symlink_attributes: Sattr::default(),
                symlink_data: Bytes::from(too_long),
            },
        }))
        .await
    {
        Nfs3Reply::Symlink(res) => res.status(),
        other => panic!("{other:?}"),
    };
    assert_eq!(refused, Nfs3Status::NameTooLong);
}

#[test]
fn rpcinfo_and_showmount_find_and_list_the_export() {
    if !nfsio_testkit::require_root()
        || !nfsio_testkit::require_tool("rpcinfo")
        || !nfsio_testkit::require_tool("showmount")
        || !nfsio_testkit::require_tool("unshare")
    {
        return;
    }
    let scratch = crate::common::Scratch::new("discovery");
    let export = scratch.join("export");
    std::fs::create_dir(&export).unwrap();
    let script = format!(
        r#"set -e
ip link set lo up
exec 3< <(exec {nfsio} serve {export} --listen 127.0.0.1:2049 --portmap-port 111 --state-dir {state} 2>{log})
pid=$!
read -t 30 -u 3 url
echo "url $url"
echo "== rpcinfo -p"; rpcinfo -p 127.0.0.1
echo "== rpcinfo -T tcp"; rpcinfo -T tcp 127.0.0.1
echo "== rpcinfo -T udp 100005 1"; rpcinfo -T udp 127.0.0.1 100005 1
echo "== showmount -e"; showmount -e 127.0.0.1
kill $pid
"#,
        nfsio = NFSIO,
        export = export.display(),
        state = scratch.join("state").display(),
        log = scratch.join("serve.log").display(),
    );
    let output = Command::new("unshare")
        .args(["-n", "bash", "-c", &script])
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "{stdout}\n{}\nserver: {}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(scratch.join("serve.log")).unwrap_or_default()
    );
    let section = |title: &str| {
        stdout
            .split("== ")
            .find(|s| s.starts_with(title))
            .unwrap_or_default()
            .to_owned()
    };
    let portmap = section("rpcinfo -p");
    for row in [
        "100003    3   tcp   2049  nfs",
        "100005    3   tcp   2049  mountd",
        "100005    1   udp   2049  mountd",
        "100000    2   tcp    111  portmapper",
    ] {
        assert!(
            portmap.contains(row),
            "rpcinfo -p lacks {row:?}:\n{portmap}"
        );
    }
    let rpcbind = section("rpcinfo -T tcp");
    assert!(rpcbind.contains("127.0.0.1.8.1"), "{rpcbind}");
    assert!(
        rpcbind.contains("mountd") && rpcbind.contains("nfs"),
        "{rpcbind}"
    );
    assert!(
        section("rpcinfo -T udp").contains("ready and waiting"),
        "{stdout}"
    );
    let exports = section("showmount -e");
    assert!(exports.contains("/export"), "{exports}");
}
