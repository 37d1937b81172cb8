//! The servers the client contract runs against: how each is started, reached, looked at
//! behind its back and restarted.

use std::net::SocketAddr;
use std::sync::Arc;

use nfsio_server::{HandleSecret, MemOptions, MemStore};
use nfsio_testkit::{Ganesha, GaneshaOptions, StoreView, TestServer};

use crate::common::Serve;

/// How a case wants its server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Export read-only.
    pub read_only: bool,
}

/// A server the client contract runs against.
#[allow(async_fn_in_trait)]
pub trait Target: Sized {
    /// Starts a server on an empty export. `None` when it cannot be had here: then one
    /// `skipped:` line was printed (under `CI=true` that is a panic instead).
    async fn start(options: Options) -> Option<Self>;

    /// `nfs://127.0.0.1/EXPORT/PATH?version=3&nfsport=N&mountport=M`.
    fn url(&self, path: &str) -> String;

    /// The path clients mount (`/export`, unless the target was started to show another).
    fn export(&self) -> &str;

    /// The ports of NFS and MOUNT (the same port when MOUNT has none of its own).
    fn ports(&self) -> (u16, u16);

    /// The server's storage, behind its back.
    fn view(&self) -> &dyn StoreView;

    /// Whether WRITE replies carry the file's attributes from before the write: wcc_data's
    /// `before` is optional (RFC 1813), ganesha sends none. The one place the contract lets
    /// the servers' answers differ.
    fn write_wcc_has_before(&self) -> bool {
        true
    }
}

/// A server that can be stopped and started again on the same storage, handle key and ports.
#[allow(async_fn_in_trait)]
pub trait Restart: Target {
    /// Stops the server and starts a new instance of it.
    async fn restart(&mut self);
}

/// The URL of `path` under `export` at `addr` (NFS and MOUNT on `nfs_port`/`mount_port`).
pub fn url_at(export: &str, path: &str, nfs_port: u16, mount_port: u16) -> String {
    let export = export.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    format!("nfs://127.0.0.1{export}/{path}?version=3&nfsport={nfs_port}&mountport={mount_port}")
}

/// nfs-ganesha 4.3 (the VFS back end on this machine's disk), through `nfsio_testkit`.
pub struct GaneshaTarget(Ganesha);

impl Target for GaneshaTarget {
    async fn start(options: Options) -> Option<Self> {
        Ganesha::start_with(GaneshaOptions {
            read_only: options.read_only,
            ..GaneshaOptions::default()
        })
        .map(GaneshaTarget)
    }

    fn url(&self, path: &str) -> String {
        self.0.url(path)
    }

    fn export(&self) -> &str {
        "/export"
    }

    fn ports(&self) -> (u16, u16) {
        (self.0.nfs_port, self.0.mnt_port)
    }

    fn view(&self) -> &dyn StoreView {
        &self.0.export_dir
    }

    fn write_wcc_has_before(&self) -> bool {
        false
    }
}

/// `nfsio serve` (the binary, a child process) exporting a fresh directory: the local store.
pub struct ServeTarget(Serve);

impl Target for ServeTarget {
    async fn start(options: Options) -> Option<Self> {
        let server = if options.read_only {
            // And another export name, to see `--export` reach MOUNT.
            let server = Serve::start_with("contract-ro", &["--read-only", "--export", "/ro"]);
            assert!(server.url.contains("/ro?"), "{}", server.url);
            server
        } else {
            Serve::start("contract")
        };
        Some(ServeTarget(server))
    }

    fn url(&self, path: &str) -> String {
        self.0.url_of(path)
    }

    fn export(&self) -> &str {
        let (base, _) = self.0.url.split_once('?').expect("URL with a query");
        base.trim_start_matches("nfs://127.0.0.1")
    }

    fn ports(&self) -> (u16, u16) {
        (self.0.nfs_port, self.0.mount_port)
    }

    fn view(&self) -> &dyn StoreView {
        &self.0.export
    }
}

impl Restart for ServeTarget {
    async fn restart(&mut self) {
        let (old_url, old_pid) = (self.0.url.clone(), self.0.pid());
        self.0.restart();
        assert_eq!(self.0.url, old_url, "same ports after the restart");
        assert_ne!(self.0.pid(), old_pid);
    }
}

/// nfsio's server in-process over the memory store (what the simulation runs).
pub struct MemoryTarget {
    store: Arc<MemStore>,
    server: Option<TestServer>,
    export: &'static str,
    read_only: bool,
    /// Instances started so far (each gets its own write verifier).
    boots: u64,
}

/// The handle key of every instance: a restarted server must accept the old handles.
const MEMORY_SECRET_SEED: u64 = 7;

impl MemoryTarget {
    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("running")
    }

    async fn boot(&mut self, listen: SocketAddr) {
        self.boots += 1;
        let mut config = nfsio_testkit::server::config();
        config.listen = listen;
        config.service.read_only = self.read_only;
        config.service.export_name = self.export.to_owned();
        config.service.instance_seed = Some(self.boots);
        self.server = Some(
            TestServer::start(
                self.store.clone(),
                &config,
                HandleSecret::from_seed(MEMORY_SECRET_SEED),
            )
            .await,
        );
    }
}

impl Target for MemoryTarget {
    async fn start(options: Options) -> Option<Self> {
        let mut target = MemoryTarget {
            // Room for files over 4 GiB (FSINFO's maxfilesize is the capacity), as on a disk;
            // nothing is allocated before it is written.
            store: Arc::new(MemStore::with_options(MemOptions {
                capacity_bytes: 8 << 30,
                ..MemOptions::default()
            })),
            server: None,
            // Read-only under another export name, as the `nfsio serve` target.
            export: if options.read_only { "/ro" } else { "/export" },
            read_only: options.read_only,
            boots: 0,
        };
        target.boot(SocketAddr::from(([127, 0, 0, 1], 0))).await;
        Some(target)
    }

    fn url(&self, path: &str) -> String {
        let (nfs, mount) = self.ports();
        url_at(self.export, path, nfs, mount)
    }

    fn export(&self) -> &str {
        self.export
    }

    fn ports(&self) -> (u16, u16) {
        let port = self.server().addr.port();
        (port, port)
    }

    fn view(&self) -> &dyn StoreView {
        &*self.store
    }
}

impl Restart for MemoryTarget {
    async fn restart(&mut self) {
        let server = self.server.take().expect("running");
        let addr = server.addr;
        server.stop().await;
        self.boot(addr).await;
        assert_eq!(self.server().addr, addr, "same port after the restart");
    }
}
