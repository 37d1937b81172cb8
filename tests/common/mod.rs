//! `nfsio serve` as a child process, for the tests/serve_*.rs integration tests.
//!
//! [`Serve::start`] runs `nfsio serve DIR --listen 127.0.0.1:0 --squash none --state-dir STATE`
//! (without `--squash` when not root, which only root may give) on a fresh scratch directory,
//! reads the URL from the first line of its stdout (`nfs://127.0.0.1:PORT/export`, with
//! `?mountport=M` when MOUNT has its own port), and stops it on drop (SIGTERM by PID, SIGKILL
//! after 15 s). [`Serve::restart`] stops it and starts it again on the same export, state
//! directory and ports.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The binary under test.
pub const NFSIO: &str = env!("CARGO_BIN_EXE_nfsio");

/// How long the server may take to print its URL.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopping server may take before it gets SIGKILL (it takes milliseconds; the
/// margin is for a loaded machine).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a restart retries a port that is still held.
const REBIND_TIMEOUT: Duration = Duration::from_secs(10);

/// A scratch directory under the system's temporary directory, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "nfsio-serve-test-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("scratch dir");
        Scratch { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running `nfsio serve`.
pub struct Serve {
    /// The exported directory.
    pub export: PathBuf,
    /// The server's state directory (outside the export).
    pub state: PathBuf,
    /// The URL in libnfs's form: `nfs://127.0.0.1/export?nfsport=N&mountport=M`.
    pub url: String,
    /// What the server printed on its first line: `nfs://127.0.0.1:N/export`.
    pub printed_url: String,
    pub nfs_port: u16,
    pub mount_port: u16,
    /// Where the server's stderr goes (appended to across restarts).
    pub log: PathBuf,
    extra: Vec<String>,
    wrapper: Vec<String>,
    child: Option<Child>,
    // Last: removed after the child is stopped.
    scratch: Scratch,
}

impl Serve {
    /// Starts `nfsio serve` on a fresh directory.
    pub fn start(name: &str) -> Serve {
        Self::start_with(name, &[])
    }

    /// Starts `nfsio serve` on a fresh directory with extra arguments (e.g. `--read-only`; a
    /// `--squash` here replaces the default `--squash none`).
    pub fn start_with(name: &str, extra: &[&str]) -> Serve {
        let scratch = Scratch::new(name);
        let export = scratch.join("export");
        std::fs::create_dir_all(&export).expect("export dir");
        Self::start_in(scratch, export, &[], extra)
    }

    /// Starts `nfsio serve` exporting `export` (a directory the test made, on a file system
    /// of its choice).
    pub fn start_on(name: &str, export: &Path, extra: &[&str]) -> Serve {
        Self::start_in(Scratch::new(name), export.to_path_buf(), &[], extra)
    }

    /// Starts `WRAPPER... nfsio serve ...` (e.g. `prlimit --nofile=1024:1024`), which must
    /// exec the server, on a fresh directory.
    pub fn start_wrapped(name: &str, wrapper: &[&str], extra: &[&str]) -> Serve {
        let scratch = Scratch::new(name);
        let export = scratch.join("export");
        std::fs::create_dir_all(&export).expect("export dir");
        Self::start_in(scratch, export, wrapper, extra)
    }

    fn start_in(scratch: Scratch, export: PathBuf, wrapper: &[&str], extra: &[&str]) -> Serve {
        let state = scratch.join("state");
        let mut serve = Serve {
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
            export,
            state,
            url: String::new(),
            printed_url: String::new(),
            nfs_port: 0,
            mount_port: 0,
            log: scratch.join("serve.log"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            scratch,
        };
        if let Err(why) = serve.spawn(None) {
            panic!("nfsio serve did not start: {why}");
        }
        serve
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `nfs://127.0.0.1/export/PATH?version=3&nfsport=N&mountport=M`, for the client or libnfs.
    pub fn url_of(&self, path: &str) -> String {
        let (base, query) = self.url.split_once('?').expect("URL with a query");
        let base = base.trim_end_matches('/');
        let path = path.trim_start_matches('/');
        if path.is_empty() {
            format!("{base}/?version=3&{query}")
        } else {
            format!("{base}/{path}?version=3&{query}")
        }
    }

    /// `nfs://127.0.0.1:N/export/PATH`: the short form nfsio's client takes.
    pub fn short_url_of(&self, path: &str) -> String {
        let (base, query) = match self.printed_url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.printed_url.as_str(), None),
        };
        let mut url = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// A scratch path next to (not inside) the export, for local files.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the child. `ports`: bind these NFS and MOUNT ports instead of free ones.
    fn spawn(&mut self, ports: Option<(u16, u16)>) -> Result<(), String> {
        let listen = format!("127.0.0.1:{}", ports.map_or(0, |p| p.0));
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(NFSIO);
                command
            }
            None => Command::new(NFSIO),
        };
        command
            .arg("serve")
            .arg(&self.export)
            .args(["--listen", &listen, "--state-dir"])
            .arg(&self.state);
        if !self.extra.iter().any(|a| a.starts_with("--squash")) && is_root() {
            command.args(["--squash", "none"]);
        }
        if let Some((nfs, mount)) = ports
            && nfs != mount
        {
            command.args(["--mount-port", &mount.to_string()]);
        }
        command.args(&self.extra);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot run {NFSIO}: {e}"))?;
        // The first stdout line on a thread (so a silent server cannot hang us), then keep
        // draining stdout so that the server never writes into a closed pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line: String = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let printed = line.trim().to_owned();
        let parsed = parse_printed_url(&printed);
        let Some((nfs_port, mount_port, export)) = parsed else {
            let _ = child.kill();
            let status = child.wait();
            return Err(format!(
                "no URL on stdout (got {printed:?}, exit {status:?}); stderr:\n{}",
                self.log_text()
            ));
        };
        if let Some(want) = ports {
            assert_eq!((nfs_port, mount_port), want, "restart kept the ports");
        }
        self.url = format!("nfs://127.0.0.1{export}?nfsport={nfs_port}&mountport={mount_port}");
        self.printed_url = printed;
        self.nfs_port = nfs_port;
        self.mount_port = mount_port;
        self.child = Some(child);
        Ok(())
    }

    /// Sends `signal` (a `kill -s` name: TERM, INT, ...) and waits for the server to exit; after
    /// 5 s it gets SIGKILL. Returns its exit status and whether it exited by itself in time.
    pub fn stop_with(&mut self, signal: &str) -> (ExitStatus, bool) {
        let mut child = self.child.take().expect("server running");
        if let Ok(Some(status)) = child.try_wait() {
            return (status, true);
        }
        let _ = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return (status, true);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        (child.wait().expect("wait for nfsio serve"), false)
    }

    /// SIGTERM; panics unless the server exits by itself with status 0.
    pub fn stop(&mut self) {
        let (status, in_time) = self.stop_with("TERM");
        assert!(
            in_time && status.success(),
            "nfsio serve stopped with {status} (in time: {in_time}); stderr:\n{}",
            self.log_text()
        );
    }

    /// Stops the server (cleanly, see [`Serve::stop`]) and starts it again on the same
    /// directory, state directory and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.respawn();
    }

    /// Starts the server again after it was stopped (cleanly or not) on the same directory,
    /// state directory and ports; retries while the port is still held.
    pub fn respawn(&mut self) {
        let ports = (self.nfs_port, self.mount_port);
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match self.spawn(Some(ports)) {
                Ok(()) => return,
                Err(why) if Instant::now() < deadline => {
                    eprintln!("restart of nfsio serve failed, retrying: {why}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(why) => panic!("nfsio serve did not restart on {ports:?}: {why}"),
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop_with("TERM");
        }
    }
}

/// The NFS and MOUNT ports and the export of `nfs://127.0.0.1:N/EXPORT[?mountport=M]` (or of
/// the libnfs form `nfs://127.0.0.1/EXPORT?nfsport=N&mountport=M`).
pub fn parse_printed_url(url: &str) -> Option<(u16, u16, String)> {
    if let Some(rest) = url.strip_prefix("nfs://127.0.0.1/") {
        let (export, query) = rest.split_once('?')?;
        let port = |key: &str| -> Option<u16> {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        return Some((port("nfsport")?, port("mountport")?, format!("/{export}")));
    }
    let rest = url.strip_prefix("nfs://127.0.0.1:")?;
    let (port, rest) = rest.split_once('/')?;
    let nfs: u16 = port.parse().ok()?;
    let (export, mount) = match rest.split_once("?mountport=") {
        Some((export, mount)) => (export, mount.parse().ok()?),
        None => (rest, nfs),
    };
    Some((nfs, mount, format!("/{export}")))
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Writes `len_bytes` of reproducible pseudo-random data to `path`.
pub fn make_file(path: &Path, len_bytes: u64, seed: u64) {
    let mut state = seed | 1;
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    let mut block = vec![0u8; 1 << 20];
    let mut left = len_bytes;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    out.flush().expect("flush");
}

/// Compares two files without reading either into memory whole; panics at the first
/// difference.
pub fn assert_same_file(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap_or_else(|e| panic!("open {}: {e}", a.display())),
        std::fs::File::open(b).unwrap_or_else(|e| panic!("open {}: {e}", b.display())),
    );
    let (la, lb) = (
        fa.metadata().expect("meta").len(),
        fb.metadata().expect("meta").len(),
    );
    assert_eq!(
        la,
        lb,
        "{} and {} differ in length",
        a.display(),
        b.display()
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = fa.read(&mut ba).expect("read a");
        if n == 0 {
            break;
        }
        fb.read_exact(&mut bb[..n]).expect("read b");
        if ba[..n] != bb[..n] {
            let at = ba[..n]
                .iter()
                .zip(&bb[..n])
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            panic!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                offset + at as u64
            );
        }
        offset += n as u64;
    }
}

/// A command to run with a time limit: `nfsio ARGS` by default.
pub struct Run {
    command: Command,
    stdin: Option<Vec<u8>>,
    limit: Duration,
}

impl Run {
    /// `nfsio ARGS`.
    pub fn nfsio<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
        let mut command = Command::new(NFSIO);
        command.args(args);
        Run {
            command,
            stdin: None,
            limit: Duration::from_secs(120),
        }
    }

    /// Feeds `data` on standard input (default: nothing, `/dev/null`).
    pub fn stdin(mut self, data: &[u8]) -> Run {
        self.stdin = Some(data.to_vec());
        self
    }

    /// Runs in `dir`.
    pub fn cwd(mut self, dir: &Path) -> Run {
        self.command.current_dir(dir);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.command.env(key, value);
        self
    }

    /// Runs it to the end; panics (after killing it) if it outlives the limit.
    pub fn output(mut self) -> std::process::Output {
        let mut child = self
            .command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if let (Some(data), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(self.limit) {
            Ok(output) => output.expect("wait"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", &pid.to_string()])
                    .status();
                panic!("{:?} still running after {:?}", self.command, self.limit);
            }
        }
    }
}

/// Detaches a FUSE mount and kills the mount processes it knows of when dropped, so that a
/// test that fails leaves no mount behind.
pub struct MountGuard {
    pub mnt: PathBuf,
    pub pids: Vec<u32>,
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        for &pid in &self.pids {
            if alive(pid) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let Ok(path) = std::ffi::CString::new(self.mnt.as_os_str().as_encoded_bytes()) else {
            return;
        };
        // SAFETY: a NUL-terminated path that lives across the call.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Whether this machine lets the test mount (root and /dev/fuse); else one skip line (a
/// failure under CI=true).
pub fn can_mount() -> bool {
    if !Path::new("/dev/fuse").exists() {
        nfsio_testkit::skip_or_fail("/dev/fuse is missing");
        return false;
    }
    nfsio_testkit::require_root()
}

/// Whether process `pid` still runs (a zombie has ended).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The fields of one `stat` output that NFS and the local disk share: the name line, size,
/// blocks, type in words, inode, links, the access line and (`times`) the three times.
pub fn stat_fields(text: &str, times: bool) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 8, "{text}");
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let size_line = words(lines[1]);
    let device_line = words(lines[2]);
    let io_at = size_line
        .iter()
        .position(|w| w == "Block:")
        .expect("IO Block");
    let mut fields = vec![
        lines[0].to_owned(),
        size_line[1].clone(),
        size_line[3].clone(),
        size_line[io_at + 2..].join(" "),
        device_line[2].clone(),
        device_line[4].clone(),
        lines[3].to_owned(),
    ];
    if times {
        fields.extend(lines[4..7].iter().map(|l| l.to_string()));
    }
    fields
}
