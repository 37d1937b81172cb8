//! The server harness of the integration tests: servers in-process over the local or the
//! memory store, and (from `nfsio_testkit::raw`) the client that sends hand-built calls over a
//! loopback TCP connection, so each test controls every byte it sends.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nfsio_server::{HandleSecret, MemStore, Server, ServerConfig, Service, Storage};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for anything before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running server and what the tests need to reach it.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The short URL nfsio's client takes: `nfs://127.0.0.1:N/export`.
    pub url: String,
    /// The URL libnfs's tools take: `nfs://127.0.0.1/export?nfsport=N&mountport=N`.
    pub libnfs_url: String,
    pub service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("server stops")
                .expect("server task");
        }
    }

    pub async fn client(&self) -> TestClient {
        TestClient::connect(self.addr).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn spawn<L: nfsio_server::Listener>(server: Server<L>) -> TestServer {
    let addr = server.nfs_addr();
    let url = server.url();
    let libnfs_url = server.libnfs_url();
    let service = server.service().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
    });
    TestServer {
        addr,
        url,
        libnfs_url,
        service,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Runs a server built by the test.
pub fn spawn_server<L: nfsio_server::Listener>(server: Server<L>) -> TestServer {
    spawn(server)
}

/// A configuration on 127.0.0.1:0 for `export`, with its state dir in `state`.
pub fn config(export: &Path, state: &Path) -> ServerConfig {
    let mut config = ServerConfig::new(export);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.state_dir = state.to_path_buf();
    config.squash = nfsio_server::Squash::None;
    config
}

/// Starts a server on a local directory.
pub async fn start_local(config: ServerConfig) -> TestServer {
    spawn(Server::bind(config).await.expect("server binds"))
}

/// Starts a server on a memory store.
pub async fn start_mem(store: Arc<MemStore>, seed: u64) -> TestServer {
    let mut config = ServerConfig::new("/nonexistent");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.squash = nfsio_server::Squash::None;
    config.instance_seed = Some(seed);
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let storage: Arc<dyn Storage> = store;
    let server = Server::with_listeners(
        &config,
        storage,
        HandleSecret::from_seed(seed),
        listener,
        None,
        None,
    )
    .unwrap();
    spawn(server)
}

/// Temporary export and state directories.
pub struct Dirs {
    pub export: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        Self {
            export: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
        }
    }

    pub fn export_path(&self) -> PathBuf {
        self.export.path().to_path_buf()
    }

    pub fn config(&self) -> ServerConfig {
        config(self.export.path(), self.state.path())
    }
}

#[allow(unused_imports)]
pub use nfsio_testkit::raw::{RawReply, TestClient, dir_op, status, sys_cred};
