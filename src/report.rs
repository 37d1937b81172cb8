//! What the CLI prints when something fails, and the `--stats` table.
//!
//! Every failure is one line: the path or URL it concerns, what went wrong (for NFS errors the
//! procedure and the NFS status), and the errno name, so that a user and a script can both
//! read it.

use std::fmt;

use nfsio_client::NfsError;

/// A failure of a CLI command, already rendered as its one-line message.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    /// An NFS failure concerning `path`.
    pub fn nfs(path: &str, error: NfsError) -> Self {
        Self(format!("{path}: {error} ({})", error.errno_name()))
    }

    /// A local I/O failure concerning `path`.
    pub fn io(path: &str, error: std::io::Error) -> Self {
        Self(format!("{path}: {error}"))
    }

    /// A failure writing to standard output.
    pub fn stdout(error: std::io::Error) -> Self {
        Self(format!("standard output: {error}"))
    }

    /// Any other failure, already phrased.
    pub fn message(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Renders a transport's statistics as the `--stats` table: one row per procedure with call
/// count, bytes each way, mean and 99th-percentile round-trip time, and retransmissions.
pub fn stats_table(stats: &nfsio_client::rpc::TransportStats) -> String {
    use nfsio_client::proto::{mount, nfs3, portmap};
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<12} {:>8} {:>14} {:>14} {:>10} {:>10} {:>8}",
        "procedure", "calls", "bytes sent", "bytes recv", "mean ms", "p99 ms<=", "retrans"
    );
    let mut procs = stats.procs.clone();
    procs.sort_by_key(|p| (p.prog, p.proc_num));
    for p in procs.iter().filter(|p| p.calls > 0) {
        let name = match p.prog {
            nfs3::PROGRAM => nfs3::proc_name(p.proc_num).to_owned(),
            mount::PROGRAM => format!("MOUNT{}", p.proc_num),
            portmap::PROGRAM => format!("PORTMAP{}", p.proc_num),
            other => format!("{other}/{}", p.proc_num),
        };
        let ms =
            |us: Option<u64>| us.map_or("-".to_owned(), |us| format!("{:.3}", us as f64 / 1000.0));
        let _ = writeln!(
            out,
            "  {:<12} {:>8} {:>14} {:>14} {:>10} {:>10} {:>8}",
            name,
            p.calls,
            p.bytes_sent,
            p.bytes_received,
            ms(p.mean_rtt_us()),
            ms(p.rtt_percentile_us(0.99)),
            p.retransmissions
        );
    }
    let _ = writeln!(
        out,
        "  connections: {} ({} reconnects)",
        stats.connects, stats.reconnects
    );
    out
}

/// One line on what the write-back cache did: the application's writes against the WRITEs
/// and COMMITs that carried them, verifier mismatches, and writers that waited at the bound.
pub fn cache_line(stats: &nfsio_client::cache::EngineStats) -> String {
    format!(
        "write-back: {} writes -> {} WRITEs ({} bytes), {} COMMITs, {} verifier mismatches, {} waits at the memory bound",
        stats.app_writes,
        stats.writes_sent,
        stats.write_bytes_sent,
        stats.commits_sent,
        stats.verifier_mismatches,
        stats.app_writes_blocked
    )
}
