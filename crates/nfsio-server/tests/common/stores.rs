//! The storage contract's two implementations: nfsio's server in-process over the local
//! store (a fresh directory, as `nfsio serve` opens it) and over the memory store (what the
//! simulation trusts as ground truth). A case is written once, generic over [`Store`], and
//! stamped out for both by [`store_contract!`]: `local::CASE` and `memory::CASE`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nfsio_server::{HandleSecret, MemStore, ServerConfig};
use nfsio_testkit::{StoreView, TestServer};

use super::Dirs;

/// A server over a fresh store of one kind.
#[allow(async_fn_in_trait)]
pub trait Store: Sized {
    /// The granularity of the store's times, as FSINFO reports it.
    const TIME_DELTA_NS: u32;
    /// The least FSINFO's maxfilesize may be.
    const MAX_FILE_BYTES_AT_LEAST: u64;

    /// Starts a server over an empty store, its configuration (see
    /// `nfsio_testkit::server::config`) changed by `tune` first.
    async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Self;

    /// Starts a server over an empty store with the test configuration.
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The running server.
    fn server(&self) -> &TestServer;

    /// The store, behind the server's back.
    fn view(&self) -> &dyn StoreView;

    /// Stops the server and starts a new instance (a new write verifier) over the same store
    /// and handle key; the port may change.
    async fn restart(&mut self);

    /// Stops the server.
    async fn stop(self);
}

/// The local store on a fresh directory, started as `nfsio serve` starts it
/// (`Server::bind`: the handle key from the state directory).
pub struct Local {
    /// Kept for the life of the store (removed on drop).
    _dirs: Dirs,
    export: std::path::PathBuf,
    config: ServerConfig,
    server: Option<TestServer>,
}

impl Local {
    /// The exported directory on disk.
    #[allow(dead_code)] // not every test binary that includes this module uses it
    pub fn export_dir(&self) -> &std::path::Path {
        &self.export
    }
}

impl Store for Local {
    const TIME_DELTA_NS: u32 = 1;
    const MAX_FILE_BYTES_AT_LEAST: u64 = 1 << 40;

    async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Self {
        let dirs = Dirs::new();
        let mut config = dirs.config();
        tune(&mut config);
        let server = TestServer::bind(config.clone()).await;
        Local {
            export: dirs.export_path(),
            _dirs: dirs,
            config,
            server: Some(server),
        }
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("running")
    }

    fn view(&self) -> &dyn StoreView {
        &self.export
    }

    async fn restart(&mut self) {
        self.server.take().expect("running").stop().await;
        self.server = Some(TestServer::bind(self.config.clone()).await);
    }

    async fn stop(mut self) {
        self.server.take().expect("running").stop().await;
    }
}

/// The memory store, served in-process with a handle key of its own.
pub struct Memory {
    store: Arc<MemStore>,
    config: ServerConfig,
    secret_seed: u64,
    server: Option<TestServer>,
}

impl Memory {
    async fn boot(&mut self) {
        // Every instance its own write verifier.
        let boot = self.config.service.instance_seed.map_or(1, |seed| seed + 1);
        self.config.service.instance_seed = Some(boot);
        self.server = Some(
            TestServer::start(
                self.store.clone(),
                &self.config,
                HandleSecret::from_seed(self.secret_seed),
            )
            .await,
        );
    }
}

impl Store for Memory {
    // Microseconds, and files as large as its capacity (1 GiB by default).
    const TIME_DELTA_NS: u32 = 1_000;
    const MAX_FILE_BYTES_AT_LEAST: u64 = 1 << 30;

    async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> Self {
        // Each store its own key, as each local export has: a handle of one server is
        // foreign to every other.
        static SECRETS: AtomicU64 = AtomicU64::new(1);
        let mut config = nfsio_testkit::server::config();
        tune(&mut config);
        let mut memory = Memory {
            store: Arc::new(MemStore::new()),
            config,
            secret_seed: SECRETS.fetch_add(1, Ordering::Relaxed),
            server: None,
        };
        memory.boot().await;
        memory
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("running")
    }

    fn view(&self) -> &dyn StoreView {
        &*self.store
    }

    async fn restart(&mut self) {
        self.server.take().expect("running").stop().await;
        self.boot().await;
    }

    async fn stop(mut self) {
        self.server.take().expect("running").stop().await;
    }
}

/// Stamps out `#[tokio::test]`s `local::CASE` and `memory::CASE` for each `CASE`, an
/// `async fn CASE<S: Store>()` of the invoking file.
#[allow(unused_macros)]
macro_rules! store_contract {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case::<crate::common::stores::Local>().await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case::<crate::common::stores::Memory>().await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use store_contract;
