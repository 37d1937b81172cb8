//! `nfsio serve`: the embedded NFSv3 server on a local directory.
//!
//! A thin shell over `nfsio-server`: turn the flags into a `ServerConfig`, bind, print the URL
//! clients use, and serve until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use nfsio_server::{IpNet, Server, ServerConfig, Squash};

use crate::report::Failure;

/// How client identities are mapped.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SquashArg {
    /// Keep every uid and gid.
    None,
    /// Map uid 0 to the anonymous user (the default, like knfsd's root_squash).
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
    /// Identity mapping.
    #[arg(long, value_enum, default_value = "root")]
    squash: SquashArg,
    /// The uid squashed users become.
    #[arg(long, default_value_t = 65534)]
    anonuid: u32,
    /// The gid squashed users become.
    #[arg(long, default_value_t = 65534)]
    anongid: u32,
    /// Where state that must survive restarts (the file handle key) is kept; outside the
    /// export. Default: under $XDG_STATE_HOME, /var/lib/nfsio (root) or ~/.local/state.
    #[arg(long)]
    state_dir: Option<PathBuf>,
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
        config.export_name = self.export.clone();
        config.read_only = self.read_only;
        config.allow = self.allow.clone();
        config.squash = match self.squash {
            SquashArg::None => Squash::None,
            SquashArg::Root => Squash::Root,
            SquashArg::All => Squash::All,
        };
        config.anonuid = self.anonuid;
        config.anongid = self.anongid;
        if let Some(state_dir) = &self.state_dir {
            config.state_dir = state_dir.clone();
        }
        config
    }
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn termination() {
    let mut sigterm = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm.recv() => {}
    }
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let dir = args.dir.display().to_string();
    let server = Server::bind(args.config())
        .await
        .map_err(|e| Failure::message(format!("{dir}: {e}")))?;
    println!("{}", server.url());
    tracing::info!(url = %server.url(), "serving");
    server
        .run(async {
            termination().await;
            tracing::info!("stopping");
        })
        .await
        .map_err(|e| Failure::message(format!("{dir}: {e}")))
}
