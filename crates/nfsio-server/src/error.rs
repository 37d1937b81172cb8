//! Why a server could not start or keep running.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

/// Why [`crate::Server::bind`] or [`crate::Server::run`] failed.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The export directory cannot be opened.
    #[error("cannot export {}: {source}", path.display())]
    Export {
        /// The export directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The state directory cannot be used.
    #[error("state directory {}: {source}", path.display())]
    State {
        /// The state directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The state directory is inside the export, where clients could read the handle key.
    #[error("the state directory {} is inside the export {}", state_dir.display(), export_dir.display())]
    StateInsideExport {
        /// The state directory.
        state_dir: PathBuf,
        /// The export directory.
        export_dir: PathBuf,
    },
    /// A listening socket cannot be bound.
    #[error("cannot listen for {service} on {addr}: {source}")]
    Bind {
        /// Which service (`"NFS"`, `"MOUNT"`, `"portmap"`).
        service: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}
