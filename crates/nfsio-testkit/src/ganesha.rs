//! A private nfs-ganesha NFSv3 server for one test, run through `scripts/ganesha.sh`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::env::{find_tool, free_ports, skip_or_fail};

/// `scripts/ganesha.sh` of this repository.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ganesha.sh")
}

/// A command running `scripts/ganesha.sh ACTION` with bash.
fn script_command(action: &str) -> Command {
    let bash = find_tool("bash").unwrap_or_else(|| PathBuf::from("/bin/bash"));
    let mut cmd = Command::new(bash);
    cmd.arg(script()).arg(action).stdin(Stdio::null());
    cmd
}

/// How [`Ganesha::start_with`] sets the server up.
#[derive(Debug, Clone, Default)]
pub struct GaneshaOptions {
    /// Export read-only (`Access_Type = RO;`): writes fail with NFS3ERR_ROFS / NFS3ERR_ACCES.
    pub read_only: bool,
    /// Leave the rpcbind that was started for ganesha running (on *:111) until the server is
    /// dropped, for tests of portmapper lookups. While it runs, other ganesha starts and stops
    /// wait for it (see `scripts/ganesha.sh`): don't start a second server in the same test.
    pub keep_rpcbind: bool,
    /// Extra lines for the config's EXPORT block, e.g. `"Attr_Expiration_Time = 0;"` when the
    /// test changes the export directory behind ganesha's back.
    pub export_extra: String,
}

/// A running nfs-ganesha 4.3 serving NFSv3 (and MOUNT v3) over TCP on 127.0.0.1 only, with one
/// export seen by clients as `/export`. Stopped (by PID) and its state directory removed on drop.
#[derive(Debug)]
pub struct Ganesha {
    /// TCP port of NFS (program 100003, version 3).
    pub nfs_port: u16,
    /// TCP port of MOUNT (program 100005, version 3).
    pub mnt_port: u16,
    /// The directory exported as `/export`; files put here are visible through NFS (as root,
    /// no squashing).
    pub export_dir: PathBuf,
    /// The server's own directory: config, log, PID files, `env`, and the export dir.
    pub state_dir: PathBuf,
    pid: u32,
    rpcbind_pid: Option<u32>,
    opts: GaneshaOptions,
}

/// How one run of `ganesha.sh start` ended.
enum StartError {
    /// Exit 2: cannot run here (not root, not installed).
    Unavailable(String),
    /// Exit 3: a port was taken in the meantime; try other ports.
    PortTaken(String),
    /// Anything else.
    Failed(String),
}

impl Ganesha {
    /// Starts a read-write server with default options. `None` when ganesha cannot be had here
    /// (not installed, not root, does not start): then one `skipped: <test>: <reason>` line has
    /// been written to stderr and the test should return early. Under `CI=true` that case
    /// panics instead.
    pub fn start() -> Option<Ganesha> {
        Self::start_with(GaneshaOptions::default())
    }

    /// Like [`Ganesha::start`], with options.
    pub fn start_with(opts: GaneshaOptions) -> Option<Ganesha> {
        match Self::try_start(opts) {
            Ok(g) => Some(g),
            Err(
                StartError::Unavailable(why) | StartError::PortTaken(why) | StartError::Failed(why),
            ) => {
                skip_or_fail(&format!("no ganesha: {why}"));
                None
            }
        }
    }

    fn try_start(opts: GaneshaOptions) -> Result<Ganesha, StartError> {
        let state_dir =
            new_state_dir().map_err(|e| StartError::Failed(format!("state dir: {e}")))?;
        let mut last = String::new();
        for _attempt in 0..5 {
            let [nfs_port, mnt_port] = free_ports::<2>();
            match run_start(&state_dir, nfs_port, mnt_port, &opts) {
                Ok(vars) => {
                    let g = Self::from_env(&state_dir, &vars, opts);
                    if g.is_err() {
                        let _ = script_command("stop")
                            .env("GANESHA_STATE", &state_dir)
                            .output();
                        let _ = std::fs::remove_dir_all(&state_dir);
                    }
                    return g;
                }
                Err(StartError::PortTaken(why)) => last = why,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&state_dir);
                    return Err(e);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&state_dir);
        Err(StartError::Failed(format!(
            "ports kept being taken: {last}"
        )))
    }

    fn from_env(
        state_dir: &Path,
        vars: &HashMap<String, String>,
        opts: GaneshaOptions,
    ) -> Result<Ganesha, StartError> {
        let s = Started::parse(vars).map_err(StartError::Failed)?;
        Ok(Ganesha {
            nfs_port: s.nfs_port,
            mnt_port: s.mnt_port,
            export_dir: s.export_dir,
            state_dir: state_dir.to_owned(),
            pid: s.pid,
            rpcbind_pid: s.rpcbind_pid,
            opts,
        })
    }

    /// The libnfs URL of `path_in_export` (relative to the export; `""` for the export itself):
    /// `nfs://127.0.0.1/export/<path>?version=3&nfsport=N&mountport=M`. No portmapper needed.
    pub fn url(&self, path_in_export: &str) -> String {
        let path = path_in_export.trim_start_matches('/');
        let sep = if path.is_empty() { "" } else { "/" };
        format!(
            "nfs://127.0.0.1/export{sep}{path}?version=3&nfsport={}&mountport={}",
            self.nfs_port, self.mnt_port
        )
    }

    /// The PID of the ganesha.nfsd daemon.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The PID of the rpcbind kept for this server ([`GaneshaOptions::keep_rpcbind`]), if any.
    pub fn rpcbind_pid(&self) -> Option<u32> {
        self.rpcbind_pid
    }

    /// ganesha's log file (`NIV_EVENT` level), worth printing when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.state_dir.join("ganesha.log")
    }

    /// Stops the server and starts it again on the same ports and export (ganesha then hands
    /// out a new write verifier). Panics if it does not come back.
    pub fn restart(&mut self) {
        self.stop_server();
        match run_start(&self.state_dir, self.nfs_port, self.mnt_port, &self.opts) {
            Ok(vars) => {
                let s = Started::parse(&vars)
                    .unwrap_or_else(|why| panic!("ganesha did not restart: {why}"));
                self.pid = s.pid;
                self.rpcbind_pid = s.rpcbind_pid;
            }
            Err(
                StartError::Unavailable(why) | StartError::PortTaken(why) | StartError::Failed(why),
            ) => {
                panic!("ganesha did not restart: {why}")
            }
        }
    }

    fn stop_server(&mut self) {
        let out = script_command("stop")
            .env("GANESHA_STATE", &self.state_dir)
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "ganesha.sh stop failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run ganesha.sh stop: {e}"),
        }
    }
}

impl Drop for Ganesha {
    fn drop(&mut self) {
        self.stop_server();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// What `ganesha.sh start` reported.
struct Started {
    nfs_port: u16,
    mnt_port: u16,
    export_dir: PathBuf,
    pid: u32,
    rpcbind_pid: Option<u32>,
}

impl Started {
    fn parse(vars: &HashMap<String, String>) -> Result<Started, String> {
        let get = |k: &str| vars.get(k).map(String::as_str).unwrap_or("");
        let bad = |k: &str| format!("ganesha.sh start printed no valid {k}");
        Ok(Started {
            nfs_port: get("NFS_PORT").parse().map_err(|_| bad("NFS_PORT"))?,
            mnt_port: get("MNT_PORT").parse().map_err(|_| bad("MNT_PORT"))?,
            export_dir: PathBuf::from(get("EXPORT_DIR")),
            pid: get("GANESHA_PID").parse().map_err(|_| bad("GANESHA_PID"))?,
            rpcbind_pid: get("RPCBIND_PID").parse().ok(),
        })
    }
}

/// A new empty directory for one server's state.
fn new_state_dir() -> std::io::Result<PathBuf> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    loop {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("nfsio-ganesha-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Runs `ganesha.sh start` and returns the KEY=VALUE lines it printed.
fn run_start(
    state_dir: &Path,
    nfs_port: u16,
    mnt_port: u16,
    opts: &GaneshaOptions,
) -> Result<HashMap<String, String>, StartError> {
    let mut extra = opts.export_extra.clone();
    if opts.read_only {
        extra.push_str("\n    Access_Type = RO;");
    }
    let out = script_command("start")
        .env("GANESHA_STATE", state_dir)
        .env("NFS_PORT", nfs_port.to_string())
        .env("MNT_PORT", mnt_port.to_string())
        .env("EXPORT_EXTRA", extra)
        .env("KEEP_RPCBIND", if opts.keep_rpcbind { "1" } else { "0" })
        .env_remove("EXPORT_DIR")
        .env_remove("PSEUDO")
        .output()
        .map_err(|e| {
            StartError::Unavailable(format!("cannot run bash {}: {e}", script().display()))
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = || {
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    match out.status.code() {
        Some(0) => Ok(parse_env(&String::from_utf8_lossy(&out.stdout))),
        Some(2) => Err(StartError::Unavailable(stderr.trim().to_owned())),
        Some(3) => Err(StartError::PortTaken(why())),
        _ => Err(StartError::Failed(format!(
            "ganesha.sh start: {}\n{}",
            out.status,
            why()
        ))),
    }
}

/// Parses `KEY=VALUE` lines as `ganesha.sh` prints them (values maybe in sh single quotes).
pub(crate) fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(|(k, v)| (k.to_owned(), sh_unquote(v)))
        .collect()
}

/// Undoes sh single quoting: `'a'\''b'` -> `a'b`; unquoted text is kept as it is.
fn sh_unquote(v: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '\\' if !quoted => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_script_output() {
        let vars = parse_env(
            "GANESHA_PID=42\nRPCBIND_PID=\nNFS_URL='nfs://127.0.0.1/export?version=3&nfsport=1&mountport=2'\n\
             EXPORT_DIR='/tmp/a b'\\''c'\nnoise line\n",
        );
        assert_eq!(vars["GANESHA_PID"], "42");
        assert_eq!(vars["RPCBIND_PID"], "");
        assert_eq!(
            vars["NFS_URL"],
            "nfs://127.0.0.1/export?version=3&nfsport=1&mountport=2"
        );
        assert_eq!(vars["EXPORT_DIR"], "/tmp/a b'c");
        assert_eq!(vars.len(), 4);
    }
}
