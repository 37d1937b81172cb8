//! The server harness of the integration tests: scratch directories and configurations for
//! servers in-process (started with `nfsio_testkit::TestServer`, over the local or the memory
//! store), and (from `nfsio_testkit::raw`) the client that sends hand-built calls over a
//! loopback TCP connection, so each test controls every byte it sends.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nfsio_server::ServerConfig;

pub mod stores;

/// How long a test waits for anything before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A configuration on 127.0.0.1:0 for `export`, with its state dir in `state`.
pub fn config(export: &Path, state: &Path) -> ServerConfig {
    let mut config = nfsio_testkit::server::config();
    config.export_dir = export.to_path_buf();
    config.state_dir = state.to_path_buf();
    config
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
pub use nfsio_testkit::TestServer;
#[allow(unused_imports)]
pub use nfsio_testkit::raw::{RawReply, TestClient, dir_op, status, sys_cred};
