//! Deterministic whole-system simulation: the real client (transport, write-back cache,
//! `File`) and the real server (service, duplicate request cache, handles) over a simulated
//! network (turmoil) and the memory store's crash model, under faults chosen by one seed.
//!
//! The engine's own property test checks the engine against a model server; this checks the
//! product's parts together, through the real wire protocol, the way they fail in the field:
//! the server crashing between a WRITE reply and the COMMIT, during a COMMIT or a
//! retransmission (losing what was not durable, and coming back with a new write verifier),
//! connections reset with calls outstanding, messages held back and released in a burst,
//! partitions, storage errors, short writes, and a server that breaks the rules (answers less
//! stable than asked, WRITE and COMMIT verifiers that differ). One seed decides everything —
//! which faults are enabled, when they fire, the workload, the network's latencies — so a
//! failing seed replays event for event.
//!
//! The checker (`task.rs`) is the application's view: read-your-writes, durability after
//! every Ok `sync_all`/`close`, close-to-open through a second client, errors reported rather
//! than bytes lost silently, recovery once the faults stop, and the cache's memory bound.

mod chaos;
mod net;
mod tap;
mod task;

pub use net::{Resets, SimConnector, SimListener, SimNet, SimStream};
pub use tap::{Tap, WireEvent};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nfsio_client::cache::EngineConfig;
use nfsio_client::{Client, ClientOptions, NfsUrl};
use nfsio_rpc::RpcConfig;
use nfsio_server::{
    HandleSecret, MemStore, Misbehavior, MisbehaviorSwitch, Server, ServerConfig, Squash, Storage,
};

use crate::chaos::{Chaos, Targets};
use crate::task::{Shared, Task};

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

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Which faults a seed enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// The server crashes at random moments (losing what is not durable) and restarts with a
    /// new verifier.
    pub crash: bool,
    /// The server crashes at aimed moments: a COMMIT call or reply in flight, a WRITE reply in
    /// flight, a retransmission in flight (see [`WireEvent`]).
    pub aimed_crash: bool,
    /// The network between client and server is cut for a while (in-flight messages lost).
    pub partition: bool,
    /// Messages between client and server are held for a while, then delivered at once:
    /// delays (some past the client's timeout, so it retransmits) and reordering.
    pub hold: bool,
    /// Connections are reset with calls outstanding, at random moments and when the reply
    /// to a non-idempotent call is in flight.
    pub reset: bool,
    /// WRITEs and syncs fail with EIO or ENOSPC.
    pub storage_errors: bool,
    /// WRITEs take fewer bytes than sent.
    pub short_writes: bool,
    /// The server misbehaves: answers stable WRITEs UNSTABLE, skews WRITE or COMMIT verifiers.
    pub misbehave: bool,
}

impl Faults {
    /// Each fault enabled with probability 1/2.
    pub fn choose(rng: &mut Rng) -> Self {
        Self {
            crash: rng.one_in(2),
            aimed_crash: rng.one_in(2),
            partition: rng.one_in(2),
            hold: rng.one_in(2),
            reset: rng.one_in(2),
            storage_errors: rng.one_in(2),
            short_writes: rng.one_in(2),
            misbehave: rng.one_in(2),
        }
    }
}

/// How often each fault fired in a run, and what the checker saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Server crashes at random moments (each followed by a restart).
    pub crashes: u64,
    /// Crashes aimed at a COMMIT call in flight.
    pub crashes_in_commit_call: u64,
    /// Crashes aimed at a COMMIT reply in flight (the reply is lost with the crash).
    pub crashes_in_commit_reply: u64,
    /// Crashes aimed at a WRITE reply in flight (bytes acknowledged, not committed).
    pub crashes_after_write_reply: u64,
    /// Crashes aimed at a retransmitted call in flight.
    pub crashes_in_retransmission: u64,
    /// Partitions (each followed by a repair).
    pub partitions: u64,
    /// Holds (each followed by a release).
    pub holds: u64,
    /// Resets of the connections at random moments.
    pub resets: u64,
    /// Resets aimed at the reply of a non-idempotent call in flight.
    pub resets_at_reply: u64,
    /// Injected WRITE errors (EIO or ENOSPC).
    pub write_errors: u64,
    /// Injected sync errors (COMMIT or stable WRITE: EIO, unstable data lost).
    pub sync_errors: u64,
    /// Injected short writes.
    pub short_writes: u64,
    /// Stable WRITEs the server was told to answer UNSTABLE.
    pub weaker_stability: u64,
    /// WRITE or COMMIT replies the server was told to send with a skewed verifier.
    pub skewed_verifiers: u64,
    /// Retransmitted NFS calls seen on the wire.
    pub retransmissions: u64,
    /// Application operations that returned an error (and were recovered from).
    pub app_errors: u64,
    /// Renames that reported an error.
    pub rename_errors: u64,
    /// Close-to-open checks by the second client.
    pub observer_checks: u64,
    /// The most bytes the client's cache held after an operation (max over runs).
    pub peak_cache_bytes: u64,
    /// Simulated milliseconds the run took.
    pub sim_ms: u64,
}

impl FaultCounts {
    /// Adds `other` into `self` (the peak is the maximum).
    pub fn add(&mut self, other: &FaultCounts) {
        self.crashes += other.crashes;
        self.crashes_in_commit_call += other.crashes_in_commit_call;
        self.crashes_in_commit_reply += other.crashes_in_commit_reply;
        self.crashes_after_write_reply += other.crashes_after_write_reply;
        self.crashes_in_retransmission += other.crashes_in_retransmission;
        self.partitions += other.partitions;
        self.holds += other.holds;
        self.resets += other.resets;
        self.resets_at_reply += other.resets_at_reply;
        self.write_errors += other.write_errors;
        self.sync_errors += other.sync_errors;
        self.short_writes += other.short_writes;
        self.weaker_stability += other.weaker_stability;
        self.skewed_verifiers += other.skewed_verifiers;
        self.retransmissions += other.retransmissions;
        self.app_errors += other.app_errors;
        self.rename_errors += other.rename_errors;
        self.observer_checks += other.observer_checks;
        self.peak_cache_bytes = self.peak_cache_bytes.max(other.peak_cache_bytes);
        self.sim_ms += other.sim_ms;
    }

    /// The aimed crashes.
    pub fn aimed_crashes(&self) -> u64 {
        self.crashes_in_commit_call
            + self.crashes_in_commit_reply
            + self.crashes_after_write_reply
            + self.crashes_in_retransmission
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
        streaming_window_bytes: 128 << 10,
        readahead_initial_bytes: 16 << 10,
        readahead_max_bytes: 64 << 10,
        dirty_expire_ms: 5_000,
        retry_initial_ms: 50,
        retry_max_ms: 2_000,
        ..EngineConfig::default()
    }
}

/// The options of the clients in the simulation.
fn client_options(seed: u64) -> ClientOptions {
    ClientOptions {
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
    }
}

/// Mounts the export. Mounting is soft (as `mount` is): retried while the server is down or
/// cut off.
async fn mount(url: &NfsUrl, options: ClientOptions, net: &SimNet) -> Result<Client, String> {
    let mut tries = 0;
    loop {
        match Client::connect_via(url, options.clone(), net).await {
            Ok(client) => return Ok(client),
            Err(error) if tries < 600 => {
                tries += 1;
                tracing::debug!(%error, "mount failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(format!("mount: {error}")),
        }
    }
}

/// Runs one seed; returns how often each fault fired, or what went wrong.
pub fn run(seed: u64, workload: Workload) -> Result<FaultCounts, String> {
    let mut rng = Rng::new(seed);
    let faults = Faults::choose(&mut rng);
    let targets = Targets {
        store: Arc::new(MemStore::new()),
        resets: Arc::new(Resets::default()),
        misbehavior: Misbehavior::new(),
    };
    let shared = Arc::new(Shared::default());
    shared.faulting.store(true, Ordering::SeqCst);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(1800))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(5))
        .build();
    add_server(&mut sim, seed, &targets, &shared);
    let app_seed = rng.next_u64();
    add_app(&mut sim, seed, app_seed, workload, &targets, &shared);

    let store = Arc::clone(&targets.store);
    let misbehavior = Arc::clone(&targets.misbehavior);
    let mut chaos = Chaos::new(rng, faults, targets);
    let mut tap = Tap::default();
    loop {
        if !chaos.faulting() && shared.faulting.swap(false, Ordering::SeqCst) {
            store.clear_faults();
            misbehavior.stop();
        }
        chaos.before_step(&mut sim);
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => {
                let step_ms = chaos.step_ms;
                return Err(format!("seed {seed} ({faults:?}) at {step_ms} ms: {error}"));
            }
        }
        chaos.step_ms += 1;
        for event in tap.look(&sim, PORT) {
            chaos.on_wire(&mut sim, event);
        }
    }
    let mut counts = chaos.counts;
    counts.app_errors = shared.app_errors.load(Ordering::SeqCst);
    counts.rename_errors = shared.rename_errors.load(Ordering::SeqCst);
    counts.observer_checks = shared.observer_checks.load(Ordering::SeqCst);
    counts.peak_cache_bytes = shared.peak_cache_bytes.load(Ordering::SeqCst);
    counts.sim_ms = chaos.step_ms;
    Ok(counts)
}

/// The server's host: the real server over the run's memory store, restarted with a new
/// write verifier (from the seed and the boot count) each time it comes back.
fn add_server(sim: &mut turmoil::Sim<'_>, seed: u64, targets: &Targets, shared: &Arc<Shared>) {
    let host_store = Arc::clone(&targets.store);
    let host_resets = Arc::clone(&targets.resets);
    let host_misbehavior = Arc::clone(&targets.misbehavior);
    let boots = Arc::clone(shared);
    sim.host("server", move || {
        let store = Arc::clone(&host_store);
        let resets = Arc::clone(&host_resets);
        let misbehavior = MisbehaviorSwitch(Arc::clone(&host_misbehavior));
        let boot = boots.server_boots.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let mut config = ServerConfig::new("/sim");
            config.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT);
            config.service.squash = Squash::None;
            config.service.instance_seed = Some(seed.wrapping_mul(1_000_003).wrapping_add(boot));
            config.misbehavior = Some(misbehavior);
            let listener = SimListener::bind(config.listen, resets).await?;
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
}

/// The application's host: two clients (one writes, one checks close-to-open) and a task
/// per file, each checking its file against its model.
fn add_app(
    sim: &mut turmoil::Sim<'_>,
    seed: u64,
    app_seed: u64,
    workload: Workload,
    targets: &Targets,
    shared: &Arc<Shared>,
) {
    let app_store = Arc::clone(&targets.store);
    let app_shared = Arc::clone(shared);
    let net = SimNet {
        resets: Arc::clone(&targets.resets),
    };
    sim.client("app", async move {
        let ip = turmoil::lookup("server");
        let url = NfsUrl::parse(&format!(
            "nfs://{ip}/export?nfsport={PORT}&mountport={PORT}&uid=0&gid=0"
        ))?;
        let client = mount(&url, client_options(seed), &net).await?;
        // The second client, for close-to-open checks: its own cache, its own XIDs.
        let observer = mount(&url, client_options(seed ^ 0x5a5a_5a5a), &net).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..workload.files {
            let task = Task {
                client: client.clone(),
                observer: observer.clone(),
                store: Arc::clone(&app_store),
                path: format!("f{index}"),
                renames: 0,
                rng: Rng::new(app_seed ^ index.wrapping_mul(0x9e37_79b9)),
                model: Vec::new(),
                workload,
                memory_bound_bytes: cache_config().memory_bound_bytes,
                shared: Arc::clone(&app_shared),
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
}
