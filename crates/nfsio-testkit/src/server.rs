//! nfsio's own server in-process, for tests: the one fixture every test that wants an
//! in-process server uses (the server's suites, the write-back suite, the client contract's
//! memory-store target).
//!
//! - [`TestServer::bind`]: what `nfsio serve` does ([`Server::bind`]: a [`LocalStore`] on the
//!   configuration's export directory, its handle key from the state directory).
//! - [`TestServer::memory`]: the in-memory store with a crash model (what the simulation
//!   runs), on 127.0.0.1, no squashing, write verifiers and handle key from one seed.
//! - [`TestServer::start`]: any store the test keeps a hold of (a memory store with faults
//!   to inject, a local store whose counters it reads), with any configuration and handle key.
//!
//! The server runs as a task on the test's runtime until [`TestServer::stop`] (or drop, which
//! aborts it). A restart is a stop and a new start over the same store, the same key and the
//! same address ([`TestServer::addr`] into `config.listen`).
//!
//! [`LocalStore`]: nfsio_server::LocalStore

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nfsio_server::{HandleSecret, Listener, MemStore, Server, ServerConfig, Service, Storage};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::raw::TestClient;

/// How long [`TestServer::stop`] waits for the server to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A configuration for a test server: NFS (and MOUNT) on 127.0.0.1, a port of the kernel's
/// choice, no squashing (callers act as who they say they are), the export `/export`. For
/// [`TestServer::bind`] set `export_dir` and `state_dir`; [`TestServer::start`] uses neither.
pub fn config() -> ServerConfig {
    let mut config = ServerConfig::new("/nonexistent");
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.service.squash = nfsio_server::Squash::None;
    config
}

/// A running in-process server and what tests need to reach it.
pub struct TestServer {
    /// Where NFS (and MOUNT, unless the configuration gave it a listener of its own) listens.
    pub addr: SocketAddr,
    /// The short URL nfsio's client takes: `nfs://127.0.0.1:N/export`.
    pub url: String,
    /// The URL libnfs's tools take: `nfs://127.0.0.1/export?nfsport=N&mountport=M`.
    pub libnfs_url: String,
    /// Where MOUNT listens.
    pub mount_addr: SocketAddr,
    /// Where the portmapper listens, when the configuration gave it a listener.
    pub portmap_addr: Option<SocketAddr>,
    /// The service (its write verifier, its counters).
    pub service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server as `nfsio serve` does: [`Server::bind`] of `config` (see [`config`]).
    pub async fn bind(config: ServerConfig) -> TestServer {
        Self::run(Server::bind(config).await.expect("server binds"))
    }

    /// Starts a server over `store` with `config` (see [`config`]; `export_dir` and
    /// `state_dir` are not used) and the handle key `secret`. The NFS listener binds
    /// `config.listen`; MOUNT and the portmapper get listeners of their own when
    /// `config.mount_listen` or `config.portmap_listen` ask for them.
    pub async fn start(
        store: Arc<dyn Storage>,
        config: &ServerConfig,
        secret: HandleSecret,
    ) -> TestServer {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .unwrap_or_else(|e| panic!("bind {addr}: {e}"))
        };
        let nfs = bind(config.listen).await;
        let mount = match config.mount_listen {
            Some(addr) => Some(bind(addr).await),
            None => None,
        };
        let portmap = match config.portmap_listen {
            Some(addr) => Some(bind(addr).await),
            None => None,
        };
        let server = Server::with_listeners(config, store, secret, nfs, mount, portmap)
            .expect("server over the store");
        Self::run(server)
    }

    /// Starts a server over a memory store with [`config`], write verifiers from `seed` and
    /// the handle key from `seed`.
    pub async fn memory(store: Arc<MemStore>, seed: u64) -> TestServer {
        let mut config = config();
        config.service.instance_seed = Some(seed);
        Self::start(store, &config, HandleSecret::from_seed(seed)).await
    }

    /// Runs `server` until [`TestServer::stop`].
    fn run<L: Listener>(server: Server<L>) -> TestServer {
        let (stop, stopped) = oneshot::channel::<()>();
        let mut test_server = TestServer {
            addr: server.nfs_addr(),
            url: server.url(),
            libnfs_url: server.libnfs_url(),
            mount_addr: server.mount_addr(),
            portmap_addr: server.portmap_addr(),
            service: server.service().clone(),
            stop: Some(stop),
            task: None,
        };
        test_server.task = Some(tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        }));
        test_server
    }

    /// The URL nfsio's client and libnfs take for `path` inside the export:
    /// `nfs://127.0.0.1/export/PATH?version=3&nfsport=N&mountport=M`.
    pub fn url_of(&self, path: &str) -> String {
        let (base, query) = self
            .libnfs_url
            .split_once('?')
            .expect("the libnfs URL has a query");
        let base = base.trim_end_matches('/');
        let path = path.trim_start_matches('/');
        format!("{base}/{path}?version=3&{query}")
    }

    /// A raw client (see [`crate::raw`]) connected to the NFS port.
    pub async fn client(&self) -> TestClient {
        TestClient::connect(self.addr).await
    }

    /// Stops the server (its connections close; calls in progress get no reply) and waits
    /// for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(STOP_TIMEOUT, task)
                .await
                .expect("the server stops in time")
                .expect("the server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
