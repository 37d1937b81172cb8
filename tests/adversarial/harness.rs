//! What the adversarial tests share: a real `nfsio serve` under attack (its PID, for its
//! memory), raw clients with chosen credentials, and a neighbour that keeps measuring how fast
//! an innocent client is served while an attack runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nfsio_proto::nfs3::*;
use nfsio_proto::rpc::{AuthSysParams, OpaqueAuth};
use nfsio_testkit::raw::TestClient;

use crate::common::Serve;

/// The server's address.
pub fn addr(server: &Serve) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], server.nfs_port))
}

/// AUTH_SYS credentials with supplementary groups.
pub fn cred(uid: u32, gid: u32, gids: &[u32]) -> OpaqueAuth {
    OpaqueAuth::sys(&AuthSysParams {
        stamp: 9,
        machine_name: Bytes::from_static(b"adversary"),
        uid,
        gid,
        gids: gids.to_vec(),
    })
}

/// A raw client of `server` speaking with `cred`.
pub async fn client(server: &Serve, cred: OpaqueAuth) -> TestClient {
    let mut client = TestClient::connect(addr(server)).await;
    client.cred = cred;
    client
}

/// The result of an NFS call, or a panic naming the status.
pub fn ok<T, F: std::fmt::Debug>(res: NfsRes<T, F>) -> T {
    match res {
        NfsRes::Ok(ok) => ok,
        NfsRes::Fail { status, fail } => panic!("{status}: {fail:?}"),
    }
}

/// A process's resident set now and at its peak, in bytes (`VmRSS`, `VmHWM`).
pub fn rss_bytes(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Mebibytes, for messages.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// An innocent client that keeps calling NULL and reading 4 KiB while an attack runs, and
/// remembers the slowest answer of each.
pub struct Neighbour {
    stop: Arc<AtomicBool>,
    slowest_null_us: Arc<AtomicU64>,
    slowest_read_us: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// What a neighbour saw.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub slowest_null: Duration,
    pub slowest_read: Duration,
    pub calls: u64,
}

impl Neighbour {
    /// Starts probing `server`, reading the first 4 KiB of `file`.
    pub async fn start(server: &Serve, file: FileHandle) -> Neighbour {
        let mut client = client(server, cred(0, 0, &[])).await;
        let stop = Arc::new(AtomicBool::new(false));
        let slowest_null_us = Arc::new(AtomicU64::new(0));
        let slowest_read_us = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicU64::new(0));
        let (s, n, r, c) = (
            stop.clone(),
            slowest_null_us.clone(),
            slowest_read_us.clone(),
            calls.clone(),
        );
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Acquire) {
                let started = Instant::now();
                assert_eq!(client.nfs(Nfs3Call::Null).await, Nfs3Reply::Null);
                n.fetch_max(started.elapsed().as_micros() as u64, Ordering::AcqRel);
                let started = Instant::now();
                let read = client.read(&file, 0, 4096).await;
                assert!(read.status().is_ok(), "neighbour READ: {}", read.status());
                r.fetch_max(started.elapsed().as_micros() as u64, Ordering::AcqRel);
                c.fetch_add(1, Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Neighbour {
            stop,
            slowest_null_us,
            slowest_read_us,
            calls,
            task,
        }
    }

    /// Stops probing; panics if the neighbour failed.
    pub async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Release);
        self.task.await.expect("the neighbour was served");
        Seen {
            slowest_null: Duration::from_micros(self.slowest_null_us.load(Ordering::Acquire)),
            slowest_read: Duration::from_micros(self.slowest_read_us.load(Ordering::Acquire)),
            calls: self.calls.load(Ordering::Acquire),
        }
    }
}

/// Prints one measurement line (the closing note's figures come from these).
pub fn report(attack: &str, pid: u32, before_rss: u64, seen: Seen) {
    let (now, peak) = rss_bytes(pid);
    eprintln!(
        "measure: {attack}: server RSS before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; \
         neighbour {} calls, slowest NULL {:.1} ms, slowest 4 KiB READ {:.1} ms",
        mib(before_rss),
        mib(peak),
        mib(now),
        seen.calls,
        seen.slowest_null.as_secs_f64() * 1e3,
        seen.slowest_read.as_secs_f64() * 1e3,
    );
}

/// True when the long variants are asked for (`NFSIO_ADVERSARIAL_LONG=1`).
pub fn long() -> bool {
    std::env::var("NFSIO_ADVERSARIAL_LONG").is_ok_and(|v| v == "1")
}

/// Handle, then attributes, of `name` in `dir`.
pub async fn lookup(client: &mut TestClient, dir: &FileHandle, name: &str) -> (FileHandle, Fattr) {
    let found = ok(client.lookup(dir, name).await);
    (found.object, found.obj_attributes.expect("attributes"))
}

/// MKDIR of `name` in `dir` with `mode`.
pub async fn mkdir(client: &mut TestClient, dir: &FileHandle, name: &str, mode: u32) -> MkdirRes {
    match client
        .nfs(Nfs3Call::Mkdir(MkdirArgs {
            where_: nfsio_testkit::raw::dir_op(dir, name),
            attributes: Sattr {
                mode: Some(mode),
                ..Sattr::default()
            },
        }))
        .await
    {
        Nfs3Reply::Mkdir(res) => res,
        other => panic!("{other:?}"),
    }
}

/// SETATTR of `object`.
pub async fn setattr(client: &mut TestClient, object: &FileHandle, attrs: Sattr) -> SetattrRes {
    match client
        .nfs(Nfs3Call::Setattr(SetattrArgs {
            object: object.clone(),
            new_attributes: attrs,
            guard: None,
        }))
        .await
    {
        Nfs3Reply::Setattr(res) => res,
        other => panic!("{other:?}"),
    }
}

/// CREATE (UNCHECKED) of `name` in `dir` with `mode`.
pub async fn create_mode(
    client: &mut TestClient,
    dir: &FileHandle,
    name: &str,
    mode: u32,
) -> CreateRes {
    client
        .create(
            dir,
            name,
            CreateHow::Unchecked(Sattr {
                mode: Some(mode),
                ..Sattr::default()
            }),
        )
        .await
}

/// RENAME.
pub async fn rename(
    client: &mut TestClient,
    from: &FileHandle,
    from_name: &str,
    to: &FileHandle,
    to_name: &str,
) -> RenameRes {
    match client
        .nfs(Nfs3Call::Rename(RenameArgs {
            from: nfsio_testkit::raw::dir_op(from, from_name),
            to: nfsio_testkit::raw::dir_op(to, to_name),
        }))
        .await
    {
        Nfs3Reply::Rename(res) => res,
        other => panic!("{other:?}"),
    }
}
