//! Deterministic whole-system simulation: the real client (transport, write-back cache,
//! `File`) and the real server (service, duplicate request cache, handles) over a simulated
//! network (turmoil) and the memory store's crash model, under faults chosen by one seed.
//!
//! The engine's own property test checks the engine against a model server; this checks the
//! product's parts together, through the real wire protocol, the way they fail in the field:
//! the server crashing between a WRITE reply and the COMMIT (losing what was not durable, and
//! coming back with a new write verifier), partitions, storage errors, short writes. One seed
//! decides everything — which faults are enabled, when they fire, the workload, the network's
//! latencies — so a failing seed replays event for event.
//!
//! The checker is the application's view: each task owns one file and a model of its content.
//! Reads must return the model (read-your-writes). Whenever `sync_all` or `close` returns Ok,
//! the server's *durable* content (what would survive a crash now) must equal the model. An
//! error from `sync_all`, `close` or a write means some bytes may be lost: the task then does
//! what an application must do — rewrites the file from its model and syncs until that
//! succeeds — and the check applies again. Liveness: once the faults stop, everything must
//! finish within the simulated time limit.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nfsio_client::cache::EngineConfig;
use nfsio_client::{Client, ClientOptions, File, Network, NfsUrl};
use nfsio_proto::nfs3::Nfs3Status;
use nfsio_rpc::{Connector, RpcConfig};
use nfsio_server::{Fault, HandleSecret, MemStore, Server, ServerConfig, Squash, Storage};

/// The NFS (and MOUNT) port of the simulated server.
const PORT: u16 = 2049;

/// A small deterministic generator (SplitMix64): the simulation's only source of choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x6e66_7369_6f73_696d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// The simulated network, for [`Client::connect_via`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SimNet;

/// Connects to one address over the simulated network.
#[derive(Debug, Clone, Copy)]
pub struct SimConnector(SocketAddr);

impl Connector for SimConnector {
    type Stream = turmoil::net::TcpStream;

    async fn connect(&self) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(self.0).await
    }
}

impl Network for SimNet {
    type Connector = SimConnector;

    fn connector(&self, addr: SocketAddr) -> SimConnector {
        SimConnector(addr)
    }
}

/// The server's listener on the simulated network.
pub struct SimListener(turmoil::net::TcpListener);

impl nfsio_server::Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Which faults a seed enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// The server crashes (losing what is not durable) and restarts with a new verifier.
    pub crash: bool,
    /// The network between client and server is cut for a while.
    pub partition: bool,
    /// WRITEs and syncs fail with EIO or ENOSPC.
    pub storage_errors: bool,
    /// WRITEs take fewer bytes than sent.
    pub short_writes: bool,
}

impl Faults {
    /// Each fault enabled with probability 1/2.
    pub fn choose(rng: &mut Rng) -> Self {
        Self {
            crash: rng.one_in(2),
            partition: rng.one_in(2),
            storage_errors: rng.one_in(2),
            short_writes: rng.one_in(2),
        }
    }
}

/// How often each fault fired in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Server crashes (each followed by a restart).
    pub crashes: u64,
    /// Partitions (each followed by a repair).
    pub partitions: u64,
    /// Injected WRITE errors (EIO or ENOSPC).
    pub write_errors: u64,
    /// Injected sync errors (COMMIT or stable WRITE: EIO, unstable data lost).
    pub sync_errors: u64,
    /// Injected short writes.
    pub short_writes: u64,
    /// Application operations that returned an error (and were recovered from).
    pub app_errors: u64,
    /// Simulated milliseconds the run took.
    pub sim_ms: u64,
}

impl FaultCounts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &FaultCounts) {
        self.crashes += other.crashes;
        self.partitions += other.partitions;
        self.write_errors += other.write_errors;
        self.sync_errors += other.sync_errors;
        self.short_writes += other.short_writes;
        self.app_errors += other.app_errors;
        self.sim_ms += other.sim_ms;
    }
}

/// The size of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Files, each written by its own task.
    pub files: u64,
    /// Operations per task.
    pub ops_per_file: u64,
    /// Largest file offset a write starts at.
    pub span_bytes: u64,
    /// Largest single write.
    pub max_write_bytes: u64,
    /// Longest pause of a task between two operations.
    pub max_think_ms: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            files: 3,
            ops_per_file: 40,
            span_bytes: 192 << 10,
            max_write_bytes: 24 << 10,
            max_think_ms: 40,
        }
    }
}

/// The client's cache in the simulation: small, so that the memory bound, background
/// flushing and COMMIT thresholds all come into play with little data.
fn cache_config() -> EngineConfig {
    EngineConfig {
        page_bytes: 4096,
        wsize_bytes: 32 << 10,
        rsize_bytes: 32 << 10,
        memory_bound_bytes: 512 << 10,
        background_flush_bytes: 64 << 10,
        commit_threshold_bytes: 96 << 10,
        readahead_initial_bytes: 16 << 10,
        readahead_max_bytes: 64 << 10,
        dirty_expire_ms: 5_000,
        retry_initial_ms: 50,
        retry_max_ms: 2_000,
        ..EngineConfig::default()
    }
}

/// Runs one seed; returns how often each fault fired, or what went wrong.
pub fn run(seed: u64, workload: Workload) -> Result<FaultCounts, String> {
    let mut rng = Rng::new(seed);
    let faults = Faults::choose(&mut rng);
    let store = Arc::new(MemStore::new());
    let boots = Arc::new(AtomicU64::new(0));
    let app_errors = Arc::new(AtomicU64::new(0));
    let faulting_flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(1800))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(5))
        .build();

    let host_store = Arc::clone(&store);
    let host_boots = Arc::clone(&boots);
    sim.host("server", move || {
        let store = Arc::clone(&host_store);
        let boot = host_boots.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let mut config = ServerConfig::new("/sim");
            config.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT);
            config.squash = Squash::None;
            config.instance_seed = Some(seed.wrapping_mul(1_000_003).wrapping_add(boot));
            let listener = SimListener(turmoil::net::TcpListener::bind(config.listen).await?);
            let storage: Arc<dyn Storage> = store;
            let server = Server::with_listeners(
                &config,
                storage,
                HandleSecret::from_seed(seed),
                listener,
                None,
                None,
            )?;
            server.run(std::future::pending()).await?;
            Ok(())
        }
    });

    let app_store = Arc::clone(&store);
    let app_errors_in = Arc::clone(&app_errors);
    let faulting_in = Arc::clone(&faulting_flag);
    let app_seed = rng.next_u64();
    sim.client("app", async move {
        let ip = turmoil::lookup("server");
        let url = NfsUrl::parse(&format!(
            "nfs://{ip}/export?nfsport={PORT}&mountport={PORT}&uid=0&gid=0"
        ))?;
        let options = ClientOptions {
            rpc: RpcConfig {
                xid_seed: Some(seed as u32),
                timeout_ms: 10_000,
                reconnect_backoff_max_ms: 2_000,
                ..RpcConfig::default()
            },
            machine_name: Some("sim".into()),
            mount_timeout_ms: 600_000,
            cache_config: Some(cache_config()),
            ..ClientOptions::default()
        };
        // Mounting is soft (as `mount` is): retry while the server is down or cut off.
        let mut tries = 0;
        let client = loop {
            match Client::connect_via(&url, options.clone(), &SimNet).await {
                Ok(client) => break client,
                Err(error) if tries < 600 => {
                    tries += 1;
                    tracing::debug!(%error, "mount failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(format!("mount: {error}").into()),
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..workload.files {
            let task = Task {
                client: client.clone(),
                store: Arc::clone(&app_store),
                path: format!("f{index}"),
                rng: Rng::new(app_seed ^ index.wrapping_mul(0x9e37_79b9)),
                model: Vec::new(),
                workload,
                errors: Arc::clone(&app_errors_in),
                faulting: Arc::clone(&faulting_in),
            };
            tasks.spawn(task.run());
        }
        while let Some(joined) = tasks.join_next().await {
            joined
                .map_err(|e| format!("task panicked: {e}"))?
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    });

    let mut counts = FaultCounts::default();
    // Faults fire during the first `fault_ms` simulated milliseconds; then the server is
    // brought back, the network repaired, and everything must finish.
    let fault_ms = 20_000;
    let mut step_ms: u64 = 0;
    let mut server_down_until: Option<u64> = None;
    let mut partitioned_until: Option<u64> = None;
    loop {
        let faulting = step_ms < fault_ms;
        if !faulting && faulting_flag.swap(false, Ordering::SeqCst) {
            store.clear_faults();
        }
        match server_down_until {
            Some(at) if step_ms >= at || !faulting => {
                sim.bounce("server");
                server_down_until = None;
            }
            None if faulting && faults.crash && rng.one_in(400) => {
                sim.crash("server");
                store.crash();
                counts.crashes += 1;
                server_down_until = Some(step_ms + 1 + rng.below(1_500));
            }
            _ => {}
        }
        match partitioned_until {
            Some(at) if step_ms >= at || !faulting => {
                sim.repair("app", "server");
                partitioned_until = None;
            }
            None if faulting && faults.partition && rng.one_in(500) => {
                sim.partition("app", "server");
                counts.partitions += 1;
                partitioned_until = Some(step_ms + 1 + rng.below(2_000));
            }
            _ => {}
        }
        if faulting && faults.storage_errors && rng.one_in(300) {
            let status = if rng.one_in(2) {
                Nfs3Status::Io
            } else {
                Nfs3Status::NoSpc
            };
            if rng.one_in(2) {
                store.inject(Fault::WriteError(status));
                counts.write_errors += 1;
            } else {
                store.inject(Fault::SyncError(Nfs3Status::Io));
                counts.sync_errors += 1;
            }
        }
        if faulting && faults.short_writes && rng.one_in(50) {
            store.inject(Fault::ShortWrite(1 + rng.below(8192) as u32));
            counts.short_writes += 1;
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => {
                return Err(format!("seed {seed} ({faults:?}) at {step_ms} ms: {error}"));
            }
        }
        step_ms += 1;
    }
    counts.app_errors = app_errors.load(Ordering::SeqCst);
    counts.sim_ms = step_ms;
    Ok(counts)
}

/// One application task: one file, a model of its content, random operations.
struct Task {
    client: Client,
    store: Arc<MemStore>,
    path: String,
    rng: Rng,
    model: Vec<u8>,
    workload: Workload,
    errors: Arc<AtomicU64>,
    /// Faults are still being injected (recovery may keep failing until they stop).
    faulting: Arc<std::sync::atomic::AtomicBool>,
}

type TaskResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

impl Task {
    async fn run(mut self) -> TaskResult<()> {
        let mut file = self.client.create_file(&self.path, 0o644).await?;
        for _ in 0..self.workload.ops_per_file {
            // Think time, so that operations of the tasks and the faults interleave.
            let think_ms = self.rng.below(self.workload.max_think_ms + 1);
            tokio::time::sleep(Duration::from_millis(think_ms)).await;
            let ok = match self.rng.below(12) {
                0..=4 => {
                    let offset = self.rng.below(self.workload.span_bytes);
                    self.write(&file, offset).await
                }
                5 => {
                    let offset = self.model.len() as u64;
                    self.write(&file, offset).await
                }
                6 | 7 => self.read_check(&file).await?,
                8 => {
                    let len = self.rng.below(self.workload.span_bytes);
                    match file.set_len(len).await {
                        Ok(()) => {
                            self.model.resize(len as usize, 0);
                            true
                        }
                        Err(_) => false,
                    }
                }
                9 | 10 => match file.sync_all().await {
                    Ok(()) => {
                        self.check_durable("sync_all")?;
                        true
                    }
                    Err(_) => false,
                },
                _ => {
                    let closed = file.close().await;
                    file = self.client.open(&self.path).await?;
                    match closed {
                        Ok(()) => {
                            self.check_durable("close")?;
                            true
                        }
                        Err(_) => false,
                    }
                }
            };
            if !ok {
                self.errors.fetch_add(1, Ordering::SeqCst);
                self.recover(&file).await?;
            }
        }
        match file.close().await {
            Ok(()) => self.check_durable("final close")?,
            Err(_) => {
                self.errors.fetch_add(1, Ordering::SeqCst);
                let file = self.client.open(&self.path).await?;
                self.recover(&file).await?;
                file.close().await?;
                self.check_durable("close after recovery")?;
            }
        }
        Ok(())
    }

    /// One write at `offset`; true when accepted.
    async fn write(&mut self, file: &File, offset: u64) -> bool {
        let len = 1 + self.rng.below(self.workload.max_write_bytes) as usize;
        let data = self.rng.bytes(len);
        match file.write_at(&data, offset).await {
            Ok(_) => {
                let end = offset as usize + len;
                if self.model.len() < end {
                    self.model.resize(end, 0);
                }
                self.model[offset as usize..end].copy_from_slice(&data);
                true
            }
            Err(_) => false,
        }
    }

    /// A read must return the model's bytes — unless a write-back error is pending that the
    /// application has not been told about yet (the failed bytes were dropped from the cache,
    /// so a read shows the server's content). Such an error is reported by the next
    /// `sync_all`: a mismatch it explains returns `Ok(false)` (recover); any other is a bug.
    async fn read_check(&mut self, file: &File) -> TaskResult<bool> {
        let offset = self.rng.below(self.model.len() as u64 + 1);
        let len = 1 + self.rng.below(64 << 10) as usize;
        let data = match file.read_bytes_at(offset, len).await {
            Ok(data) => data,
            // A failed READ is reported; nothing to check.
            Err(_) => return Ok(true),
        };
        let start = (offset as usize).min(self.model.len());
        let end = (start + len).min(self.model.len());
        if data[..] != self.model[start..end] {
            if file.sync_all().await.is_err() {
                return Ok(false);
            }
            return Err(format!(
                "{}: read of {len} at {offset} returned {} bytes that differ from what was written ({} expected)",
                self.path,
                data.len(),
                end - start
            )
            .into());
        }
        Ok(true)
    }

    /// After an error some bytes may be lost: write the whole model again and sync until
    /// that succeeds (what an application that got EIO from fsync must do).
    async fn recover(&mut self, file: &File) -> TaskResult<()> {
        // While faults fire, recovery may keep failing; once they stopped, it must succeed
        // within a few attempts (liveness).
        let mut attempts_after_faults = 0;
        while attempts_after_faults < 5 {
            if !self.faulting.load(Ordering::SeqCst) {
                attempts_after_faults += 1;
            }
            // Reports (and so clears) any error still pending.
            let _ = file.sync_all().await;
            let mut ok = file.set_len(self.model.len() as u64).await.is_ok();
            for (i, chunk) in self.model.chunks(32 << 10).enumerate() {
                ok &= file.write_at(chunk, (i * (32 << 10)) as u64).await.is_ok();
            }
            if ok && file.sync_all().await.is_ok() {
                return self.check_durable("sync_all after recovery");
            }
        }
        Err(format!(
            "{}: could not rewrite the file in 5 attempts after the faults stopped",
            self.path
        )
        .into())
    }

    /// The server's durable content must be the model.
    fn check_durable(&self, after: &str) -> TaskResult<()> {
        let id = self
            .store
            .lookup_path(&self.path)
            .map_err(|e| format!("{}: not on the server: {e:?}", self.path))?;
        let durable = self.store.durable_content(id).unwrap_or_default();
        if durable != self.model {
            let first = durable
                .iter()
                .zip(&self.model)
                .position(|(a, b)| a != b)
                .unwrap_or(durable.len().min(self.model.len()));
            return Err(format!(
                "{}: after {after} returned Ok the server's durable content ({} bytes) differs from what was written ({} bytes), first at byte {first}",
                self.path,
                durable.len(),
                self.model.len()
            )
            .into());
        }
        Ok(())
    }
}
