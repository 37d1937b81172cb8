//! `nfsio serve`: the embedded NFSv3 server on a local directory.
//!
//! A thin shell over `nfsio-server`: turn the flags into a `ServerConfig`, watch SIGINT and
//! SIGTERM, bind, print the URL clients use (only then: a script may act on it at once), say
//! on stderr who clients act as when that may surprise, and serve until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;

use nfsio_server::{IpNet, Server, ServerConfig, Squash};

use crate::output::outln;
use crate::report::Failure;
use crate::signals::Termination;

/// How client identities are mapped (a server run by root; any other user's server acts as
/// that user for every client).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SquashArg {
    /// The default: root squashed, except root on this machine (a local connection whose
    /// socket the kernel shows is root's).
    Auto,
    /// Keep every uid and gid.
    None,
    /// Map uid 0 to the anonymous user for every client (knfsd's root_squash).
    Root,
    /// Map every user to the anonymous user.
    All,
}

/// Arguments of `nfsio serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The directory to export.
    dir: PathBuf,
    /// Address and port for NFS (and MOUNT, unless --mount-port); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:2049")]
    listen: SocketAddr,
    /// A separate port for MOUNT (default: MOUNT is answered on the NFS port).
    #[arg(long)]
    mount_port: Option<u16>,
    /// Also answer portmap v2 on this port, so clients without nfsport/mountport find us.
    #[arg(long)]
    portmap_port: Option<u16>,
    /// The path clients mount.
    #[arg(long, default_value = "/export")]
    export: String,
    /// Refuse every change with NFS3ERR_ROFS.
    #[arg(long)]
    read_only: bool,
    /// Client networks allowed to connect (CIDR; repeatable); default everyone.
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<IpNet>,
    /// Identity mapping (root only; default auto).
    #[arg(long, value_enum)]
    squash: Option<SquashArg>,
    /// The uid squashed users become (root only; default 65534).
    #[arg(long)]
    anonuid: Option<u32>,
    /// The gid squashed users become (root only; default 65534).
    #[arg(long)]
    anongid: Option<u32>,
    /// Where state that must survive restarts (the file handle key) is kept; outside the
    /// export. Default: under $XDG_STATE_HOME, /var/lib/nfsio (root) or ~/.local/state.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Bytes of requests and replies all clients together may hold (K, M, G suffixes);
    /// default a thirty-second of the machine's memory, between 64M and 512M.
    #[arg(long, value_parser = crate::demo::parse_size)]
    memory_bound: Option<u64>,
    /// Most connections at once (fewer if the descriptor limit says so); at the limit the
    /// connection idle longest is closed for a new one.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Seconds after which an idle connection is closed.
    #[arg(long, default_value_t = 360)]
    idle_timeout: u64,
    /// Serve bind mounts of the export's own file system found inside the export (never
    /// another file system).
    #[arg(long)]
    cross_mounts: bool,
    /// Let clients make character and block devices with MKNOD (as the caller, so only root
    /// that is not squashed may); default: refused with NFS3ERR_NOTSUPP.
    #[arg(long)]
    devices: bool,
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        let mut config = ServerConfig::new(&self.dir);
        config.listen = self.listen;
        config.mount_listen = self
            .mount_port
            .map(|port| SocketAddr::new(self.listen.ip(), port));
        config.portmap_listen = self
            .portmap_port
            .map(|port| SocketAddr::new(self.listen.ip(), port));
        config.service.export_name = self.export.clone();
        config.service.read_only = self.read_only;
        config.service.allow = self.allow.clone();
        config.service.squash = match self.squash.unwrap_or(SquashArg::Auto) {
            SquashArg::Auto => Squash::Auto,
            SquashArg::None => Squash::None,
            SquashArg::Root => Squash::Root,
            SquashArg::All => Squash::All,
        };
        if let Some(uid) = self.anonuid {
            config.service.anonuid = uid;
        }
        if let Some(gid) = self.anongid {
            config.service.anongid = gid;
        }
        if let Some(state_dir) = &self.state_dir {
            config.state_dir = state_dir.clone();
        }
        if let Some(bytes) = self.memory_bound {
            config.service.limits.max_buffer_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        config.service.limits.max_connections = self.max_connections;
        config.service.limits.idle_timeout_ms = self.idle_timeout.saturating_mul(1000);
        config.cross_mounts = self.cross_mounts;
        config.devices = self.devices;
        config
    }
}

/// The effective uid and gid of this process.
fn process_ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or((u32::MAX, u32::MAX), |m| (m.uid(), m.gid()))
}

/// Refuses identity flags a server that is not root cannot honour.
fn check_identity_flags(args: &ServeArgs, uid: u32, gid: u32) -> Result<(), Failure> {
    if uid == 0 || (args.squash.is_none() && args.anonuid.is_none() && args.anongid.is_none()) {
        return Ok(());
    }
    Err(Failure::message(format!(
        "--squash, --anonuid and --anongid need root: run as uid {uid}, the server can act \
         only as {uid}:{gid}, and does for every client"
    )))
}

/// One line on who clients act as, when a user could be surprised by it: an ordinary user's
/// server acts as that user for everyone; a root server whose squashed identity cannot write
/// the export's root refuses writes from squashed clients.
fn identity_note(args: &ServeArgs, config: &ServerConfig, uid: u32, gid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if uid != 0 {
        return Some(format!(
            "not run as root: every client acts as uid {uid} gid {gid} (this process)"
        ));
    }
    if !matches!(
        config.service.squash,
        Squash::Auto | Squash::Root | Squash::All
    ) {
        return None;
    }
    let meta = std::fs::metadata(&args.dir).ok()?;
    let (anon_uid, anon_gid) = (config.service.anonuid, config.service.anongid);
    let bits = if meta.uid() == anon_uid {
        meta.mode() >> 6
    } else if meta.gid() == anon_gid {
        meta.mode() >> 3
    } else {
        meta.mode()
    };
    if bits & 0o3 == 0o3 {
        return None;
    }
    let (who, but) = match config.service.squash {
        Squash::Auto => (
            "root from other machines, and local users claiming root,",
            "; root on this machine can",
        ),
        Squash::Root => ("root clients", ""),
        _ => ("all clients", ""),
    };
    Some(format!(
        "{who} act as uid {anon_uid} gid {anon_gid}, which cannot write {} (owner {}:{}, mode \
         {:04o}){but}; --squash none trusts client root, --anonuid/--anongid choose the \
         squashed identity",
        args.dir.display(),
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777
    ))
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let dir = args.dir.display().to_string();
    let (uid, gid) = process_ids();
    check_identity_flags(&args, uid, gid)?;
    // Before anything is printed: a SIGTERM right after the URL line must stop us cleanly.
    let mut termination = Termination::install()
        .map_err(|e| Failure::message(format!("cannot watch SIGINT and SIGTERM: {e}")))?;
    let config = args.config();
    let note = identity_note(&args, &config, uid, gid);
    let server = Server::bind(config)
        .await
        .map_err(|e| Failure::message(format!("{dir}: {e}")))?;
    outln!("{}", server.url())?;
    // libnfs 4 cannot parse a port in the URL's authority: its tools need the query form.
    eprintln!("nfsio serve: for libnfs tools: {}", server.libnfs_url());
    if let Some(note) = note {
        eprintln!("nfsio serve: {note}");
    }
    tracing::info!(url = %server.url(), libnfs = %server.libnfs_url(), "serving");
    server
        .run(async move {
            let stop = termination.wait().await;
            tracing::info!(signal = stop.name(), "stopping");
        })
        .await
        .map_err(|e| Failure::message(format!("{dir}: {e}")))
}
