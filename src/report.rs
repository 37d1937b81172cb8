//! What the CLI prints when something fails, and the `--stats` table.
//!
//! Every failure is one line: the path or URL it concerns, what went wrong (for NFS errors the
//! procedure and the NFS status), and the errno name, so that a user and a script can both
//! read it.

use std::fmt;

use nfsio_client::NfsError;

/// A failure of a CLI command, already rendered as its one-line message.
#[derive(Debug)]
pub struct Failure {
    message: String,
    /// Standard output was closed by its reader (`nfsio cat URL | head`): the command ends
    /// quietly with status 0, as coreutils do.
    reader_gone: bool,
}

impl Failure {
    /// An NFS failure concerning `path`.
    pub fn nfs(path: &str, error: NfsError) -> Self {
        Self::message(format!("{path}: {error} ({})", error.errno_name()))
    }

    /// A local I/O failure concerning `path`: the error and its errno name.
    pub fn io(path: &str, error: std::io::Error) -> Self {
        match error.raw_os_error().map(errno_name) {
            Some(name) => Self::message(format!("{path}: {} ({name})", io_text(&error))),
            None => Self::message(format!("{path}: {error}")),
        }
    }

    /// A failure writing to standard output; a reader that went away is not a failure.
    pub fn stdout(error: std::io::Error) -> Self {
        let reader_gone = error.kind() == std::io::ErrorKind::BrokenPipe;
        Self {
            reader_gone,
            ..Self::io("standard output", error)
        }
    }

    /// Any other failure, already phrased.
    pub fn message(text: String) -> Self {
        Self {
            message: text,
            reader_gone: false,
        }
    }

    /// True when the command ended because standard output's reader went away: exit 0,
    /// print nothing.
    pub fn is_reader_gone(&self) -> bool {
        self.reader_gone
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An io::Error's text without Rust's ` (os error N)` suffix.
fn io_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The symbolic name of a Linux errno.
fn errno_name(errno: i32) -> &'static str {
    match nfsio_client::error::errno::name(errno) {
        "E?" => match errno {
            libc::EBADF => "EBADF",
            libc::ENOMEM => "ENOMEM",
            libc::EBUSY => "EBUSY",
            libc::ETXTBSY => "ETXTBSY",
            libc::ELOOP => "ELOOP",
            libc::EPIPE => "EPIPE",
            libc::EINTR => "EINTR",
            _ => "E?",
        },
        name => name,
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
