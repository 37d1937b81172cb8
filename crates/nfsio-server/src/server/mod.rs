//! The asynchronous shell: listeners, connections, and the bounds that keep a server alive
//! for every client.
//!
//! Connections are served by [`connection`]: each record charged against the connection's
//! and the server's memory bounds before its body is read, calls run on blocking threads for
//! the local store, replies batched into vectored writes, READ data spliced. The [`registry`]
//! knows every connection and closes the idle (after `idle_timeout_ms`), the stalled (no
//! progress owed for `stall_timeout_ms`), the longest idle when the connection cap is reached,
//! and the stalled ones holding memory when the memory bound is; [`budget`] has the memory
//! bound and the descriptor budget (RLIMIT_NOFILE raised to its hard limit, the store's
//! descriptors reserved, connections kept within the rest). [`udp`] answers MOUNT and the
//! portmapper over UDP, as `rpcinfo` and `showmount` expect.
//!
//! Bounds: a record larger than `max_record_bytes` closes the connection; a connection with
//! `max_requests_per_connection` calls in flight, or with `max_connection_buffer_bytes` of
//! requests and (expected) replies held, is not read until replies drain; all connections
//! together hold at most `max_buffer_bytes` and have at most `max_requests_total` calls in
//! flight; at most `max_connections` connections are served.

mod budget;
mod connection;
mod registry;
mod udp;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use self::budget::Memory;
use self::connection::serve_connection;
use self::registry::Registry;
use crate::config::{Limits, ServerConfig, ServiceConfig, Squash, process_ids};
use crate::error::ServerError;
use crate::handle::HandleSecret;
use crate::listener::Listener;
use crate::service::{Ports, Service};
use crate::storage::Storage;
use crate::storage::{LocalOptions, LocalStore};

/// Pause after a failed accept (e.g. out of descriptors), so the loop does not spin.
const ACCEPT_RETRY_MS: u64 = 100;

/// How long a new connection at the cap waits for the one evicted for it to go.
const EVICTION_WAIT_MS: u64 = 2_000;

/// How often the registry looks for idle and stalled connections.
const SWEEP_INTERVAL_MS: u64 = 1_000;

/// A bound NFS server, ready to [`run`](Server::run).
pub struct Server<L: Listener = TcpListener> {
    service: Arc<Service>,
    nfs: L,
    mount: Option<L>,
    portmap: Option<L>,
    nfs_addr: SocketAddr,
    mount_addr: SocketAddr,
    portmap_addr: Option<SocketAddr>,
    /// UDP sockets answering MOUNT and the portmapper (real servers only).
    udp: Vec<UdpSocket>,
    limits: Limits,
}

impl<L: Listener> std::fmt::Debug for Server<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("nfs_addr", &self.nfs_addr)
            .field("mount_addr", &self.mount_addr)
            .field("portmap_addr", &self.portmap_addr)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// The absolute form of `path`, resolving symbolic links in the part that exists.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(canonical, |acc: PathBuf, c| acc.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

fn check_config(config: &ServiceConfig) -> Result<(), ServerError> {
    let limits = &config.limits;
    if !config.export_name.starts_with('/') {
        return Err(ServerError::Config(format!(
            "the export name must be an absolute path, not {:?}",
            config.export_name
        )));
    }
    if limits.max_io_bytes < 4096 || limits.max_io_bytes > 64 << 20 {
        return Err(ServerError::Config(format!(
            "max_io_bytes must be between 4 KiB and 64 MiB, not {}",
            limits.max_io_bytes
        )));
    }
    if limits.max_record_bytes < limits.max_io_bytes + 1024 {
        return Err(ServerError::Config(
            "max_record_bytes must leave room for a WRITE of max_io_bytes".to_owned(),
        ));
    }
    if limits.max_requests_per_connection == 0
        || limits.max_requests_total == 0
        || limits.max_connections == 0
        || limits.max_connection_buffer_bytes < limits.max_record_bytes as usize
        || limits.max_connection_buffer_bytes > u32::MAX as usize
        || limits.max_buffer_bytes < 2 * limits.max_connection_buffer_bytes.min(64 << 20)
    {
        return Err(ServerError::Config(
            "request, connection and buffer limits must allow at least one request".to_owned(),
        ));
    }
    if config.anonuid == u32::MAX || config.anongid == u32::MAX {
        return Err(ServerError::Config(
            "the anonymous uid and gid cannot be 4294967295 (\"no change\" to chown)".to_owned(),
        ));
    }
    Ok(())
}

/// Applies what the process's own identity allows: root may act as anyone; another user only
/// as itself, which [`Squash::Auto`] becomes (every client acts as the process).
fn identity_of_process(mut config: ServiceConfig) -> Result<ServiceConfig, ServerError> {
    let Some((uid, gid)) = process_ids() else {
        return Ok(config);
    };
    if uid == 0 {
        return Ok(config);
    }
    match config.squash {
        Squash::Auto => {
            config.squash = Squash::All;
            config.anonuid = uid;
            config.anongid = gid;
        }
        Squash::All if (config.anonuid, config.anongid) == (uid, gid) => {}
        other => {
            return Err(ServerError::Config(format!(
                "squash {other:?} (anonymous {}:{}) needs root: a server run as uid {uid} can act \
                 only as {uid}:{gid}, as it does for every client by default",
                config.anonuid, config.anongid
            )));
        }
    }
    Ok(config)
}

impl Server<TcpListener> {
    /// Opens the export, loads (or creates) the handle key in the state directory, and binds
    /// the listeners. Port 0 picks a free port; [`Server::nfs_addr`] tells which.
    ///
    /// A server run by a user other than root can act only as that user: under the default
    /// [`Squash::Auto`] every client then acts as the process's uid and gid, and any other
    /// identity policy is refused.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let mut config = config;
        config.service = identity_of_process(config.service)?;
        check_config(&config.service)?;
        let limits = &mut config.service.limits;
        let options = LocalOptions {
            read_only: config.service.read_only,
            open_files: limits.open_files,
            open_file_idle_ms: limits.open_file_idle_ms,
            pipe_bytes: limits.max_io_bytes as usize,
            cross_mounts: config.cross_mounts,
            devices: config.devices,
            ..LocalOptions::default()
        };
        // Descriptors for the store first; connections and calls share the rest.
        let fds = budget::plan_descriptors(
            options.descriptors(),
            limits.max_connections,
            limits.max_requests_total,
        );
        limits.max_connections = fds.connections;
        limits.max_requests_total = fds.calls;
        let store = LocalStore::open(&config.export_dir, options).map_err(|source| {
            ServerError::Export {
                path: config.export_dir.clone(),
                source,
            }
        })?;
        let state_dir = resolved(&config.state_dir);
        if state_dir.starts_with(store.root_path()) {
            return Err(ServerError::StateInsideExport {
                state_dir,
                export_dir: store.root_path().to_path_buf(),
            });
        }
        let secret = crate::state::load_or_create_secret(&config.state_dir).map_err(|source| {
            ServerError::State {
                path: config.state_dir.clone(),
                source,
            }
        })?;
        let bind = |service: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    service,
                    addr,
                    source,
                })
        };
        let nfs = bind("NFS", config.listen).await?;
        let mount = match config.mount_listen {
            Some(addr) => Some(bind("MOUNT", addr).await?),
            None => None,
        };
        let portmap = match config.portmap_listen {
            Some(addr) => Some(bind("portmap", addr).await?),
            None => None,
        };
        info!(
            export = %store.root_path().display(),
            name = %config.service.export_name,
            read_only = config.service.read_only,
            kernel_handles = store.uses_kernel_handles(),
            descriptors = fds.limit,
            max_connections = fds.connections,
            "exporting"
        );
        let mut server =
            Self::with_listeners(&config, Arc::new(store), secret, nfs, mount, portmap)?;
        // MOUNT and the portmapper over UDP too, on the same ports (showmount, rpcinfo).
        let mut udp_addrs = vec![("MOUNT", server.mount_addr)];
        if let Some(addr) = server.portmap_addr {
            udp_addrs.push(("portmap", addr));
        }
        for (service, addr) in udp_addrs {
            // A TCP port free is no promise that the UDP port is: without it, those answer
            // over TCP only.
            match UdpSocket::bind(addr).await {
                Ok(socket) => server.udp.push(socket),
                Err(err) => warn!(service, %addr, %err, "no UDP for this service"),
            }
        }
        if !server.udp.is_empty() {
            server.set_udp_ports();
        }
        Ok(server)
    }
}

impl<L: Listener> Server<L> {
    /// A server over any store and any listeners (a simulated network, the memory store).
    /// `config.export_dir` and `config.state_dir` are not used; `secret` authenticates the
    /// handles.
    pub fn with_listeners(
        config: &ServerConfig,
        storage: Arc<dyn Storage>,
        secret: HandleSecret,
        nfs: L,
        mount: Option<L>,
        portmap: Option<L>,
    ) -> Result<Self, ServerError> {
        check_config(&config.service)?;
        let local = |listener: &L, service: &'static str, fallback: SocketAddr| {
            listener.local_addr().map_err(|source| ServerError::Bind {
                service,
                addr: fallback,
                source,
            })
        };
        let nfs_addr = local(&nfs, "NFS", config.listen)?;
        let mount_addr = match &mount {
            Some(listener) => local(listener, "MOUNT", config.mount_listen.unwrap_or(nfs_addr))?,
            None => nfs_addr,
        };
        let portmap_addr = match &portmap {
            Some(listener) => Some(local(
                listener,
                "portmap",
                config.portmap_listen.unwrap_or(nfs_addr),
            )?),
            None => None,
        };
        let mut service = Service::new(storage, config.service.clone(), secret);
        service.misbehavior = config.misbehavior.clone();
        service.set_ports(Ports {
            nfs: nfs_addr.port(),
            mount: mount_addr.port(),
            portmap: portmap_addr.map(|a| a.port()),
            udp: false,
            host: Some(nfs_addr.ip()).filter(|ip| !ip.is_unspecified()),
        });
        Ok(Self {
            service: Arc::new(service),
            nfs,
            mount,
            portmap,
            nfs_addr,
            mount_addr,
            portmap_addr,
            udp: Vec::new(),
            limits: config.service.limits,
        })
    }

    /// Tells the portmapper that MOUNT and itself answer over UDP too.
    fn set_udp_ports(&mut self) {
        if let Some(service) = Arc::get_mut(&mut self.service) {
            let mut ports = service.ports();
            ports.udp = true;
            service.set_ports(ports);
        }
    }

    /// The limits in force (the connection and call counts after the descriptor budget).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Where NFS (and MOUNT, without a separate MOUNT listener) is served.
    pub fn nfs_addr(&self) -> SocketAddr {
        self.nfs_addr
    }

    /// Where MOUNT is served.
    pub fn mount_addr(&self) -> SocketAddr {
        self.mount_addr
    }

    /// Where the portmapper is served, if it has a listener of its own.
    pub fn portmap_addr(&self) -> Option<SocketAddr> {
        self.portmap_addr
    }

    /// The host part of URLs: the listen address, or the loopback address for an
    /// unspecified one.
    fn url_host(&self) -> String {
        match self.nfs_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        }
    }

    /// The short URL nfsio's client takes: `nfs://127.0.0.1:PORT/export` (the client tries
    /// MOUNT on the NFS port first), with `?mountport=M` when MOUNT has a port of its own.
    pub fn url(&self) -> String {
        let mut url = format!(
            "nfs://{}:{}{}",
            self.url_host(),
            self.nfs_addr.port(),
            self.service.config().export_name
        );
        if self.mount_addr.port() != self.nfs_addr.port() {
            url.push_str(&format!("?mountport={}", self.mount_addr.port()));
        }
        url
    }

    /// The URL in the form every libnfs tool takes, both ports given:
    /// `nfs://127.0.0.1/export?nfsport=N&mountport=M`.
    pub fn libnfs_url(&self) -> String {
        format!(
            "nfs://{}{}?nfsport={}&mountport={}",
            self.url_host(),
            self.service.config().export_name,
            self.nfs_addr.port(),
            self.mount_addr.port()
        )
    }

    /// The request path (write verifier, root handle, store).
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Serves until `shutdown` completes, then stops accepting, closes every connection and
    /// returns. Replies of calls still running are not sent (clients retransmit them).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServerError> {
        let limits = self.limits;
        let shared = Arc::new(Shared {
            service: self.service,
            limits,
            requests: Arc::new(Semaphore::new(limits.max_requests_total)),
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            registry: Arc::new(Registry::new()),
            memory: Memory::new(limits.max_buffer_bytes),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut loops = JoinSet::new();
        loops.spawn(accept_loop(
            self.nfs,
            shared.clone(),
            stop_rx.clone(),
            "NFS",
        ));
        if let Some(mount) = self.mount {
            loops.spawn(accept_loop(mount, shared.clone(), stop_rx.clone(), "MOUNT"));
        }
        if let Some(portmap) = self.portmap {
            loops.spawn(accept_loop(
                portmap,
                shared.clone(),
                stop_rx.clone(),
                "portmap",
            ));
        }
        for socket in self.udp {
            loops.spawn(udp::serve_udp(socket, shared.clone(), stop_rx.clone()));
        }
        loops.spawn(sweep_loop(shared.clone(), stop_rx.clone()));
        info!(url = %format_args!("nfs://{}", self.nfs_addr), "serving");
        shutdown.await;
        info!("shutting down");
        let _ = stop_tx.send(true);
        shared.registry.close_all();
        loops.shutdown().await;
        Ok(())
    }
}

/// Closes idle and stalled connections, and the open files the store keeps that no call uses
/// any more, every [`SWEEP_INTERVAL_MS`].
async fn sweep_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_millis(SWEEP_INTERVAL_MS);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let limits = shared.limits;
        shared
            .registry
            .sweep(limits.idle_timeout_ms, limits.stall_timeout_ms);
        // Closing a file may free an unlinked file's blocks: not on a runtime thread.
        let storage = shared.service.storage.clone();
        if storage.is_blocking() {
            let _ = tokio::task::spawn_blocking(move || storage.release_idle()).await;
        } else {
            storage.release_idle();
        }
    }
}

/// Opens `config.export_dir`, binds, and serves until `shutdown` completes.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    Server::bind(config).await?.run(shutdown).await
}

/// What every connection shares.
struct Shared {
    service: Arc<Service>,
    limits: Limits,
    requests: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    registry: Arc<Registry>,
    memory: Memory,
}

async fn accept_loop<L: Listener>(
    mut listener: L,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(service = what, %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let permit = match shared.connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            // At the cap: the connection idle for longest makes room, as with knfsd.
            Err(_) if shared.registry.evict_oldest_idle() => {
                let wait = shared.connections.clone().acquire_owned();
                match tokio::time::timeout(Duration::from_millis(EVICTION_WAIT_MS), wait).await {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        warn!(%peer, "too many connections: closed");
                        continue;
                    }
                }
            }
            Err(_) => {
                warn!(%peer, "too many connections, none idle: closed");
                continue;
            }
        };
        debug!(service = what, %peer, "connection");
        let shared = shared.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, shared, stop).await;
            drop(permit);
        });
    }
    connections.shutdown().await;
}
