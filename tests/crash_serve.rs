//! Real processes, real crashes: `nfsio cp` keeps going while `nfsio serve` dies under it.
//!
//! A 512 MiB copy into `nfsio serve` is started; once a quarter of it is on the server's disk,
//! the server is killed with SIGKILL (or stopped with SIGTERM and kept down for 5 s), then
//! restarted on the same directory, state directory and port. The copy must complete (hard
//! retry: the transport reconnects and retransmits; a changed write verifier at COMMIT makes
//! cp write the data again) and the file on the server's disk must be byte-exact.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NFSIO: &str = env!("CARGO_BIN_EXE_nfsio");
const FILE_BYTES: u64 = 512 << 20;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound and released; the server binds it with SO_REUSEADDR).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `nfsio serve` as a child process on a fixed port.
struct Serve {
    child: Child,
}

impl Serve {
    fn start(export: &Path, state: &Path, port: u16) -> (Serve, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(NFSIO)
                .args(["serve", "--squash", "none", "--listen"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--state-dir")
                .arg(state)
                .arg(export)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn nfsio serve");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("stdout");
            let _ = BufReader::new(stdout).read_line(&mut line);
            if line.starts_with("nfs://") {
                return (Serve { child }, line.trim().to_owned());
            }
            // The port may still be held by the process we just killed: try again.
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "nfsio serve did not start: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for nfsio serve")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn make_file(path: &Path, len_bytes: u64) {
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..len_bytes / block.len() as u64 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        out.write_all(&block).expect("write");
    }
    out.flush().expect("flush");
}

fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(mut fa), Ok(mut fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    match (fa.metadata(), fb.metadata()) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => {}
        _ => return false,
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).expect("read");
        if n == 0 {
            return true;
        }
        if fb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Runs the copy, waits until `trigger_bytes` are on the server's disk, applies `fault`, and
/// checks that the copy completes byte-exact.
fn copy_through_a_fault(name: &str, fault: impl FnOnce(Serve)) {
    let base = std::env::temp_dir().join(format!("nfsio-crash-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let scratch = Scratch(base.clone());
    let (export, state) = (base.join("export"), base.join("state"));
    std::fs::create_dir_all(&export).expect("export dir");
    let source = base.join("source.bin");
    make_file(&source, FILE_BYTES);
    let port = free_port();
    let (server, url) = Serve::start(&export, &state, port);
    let target = url.replacen("/export?", "/export/copy.bin?", 1);

    let mut cp = Command::new(NFSIO)
        .args(["cp", "--quiet"])
        .arg(&source)
        .arg(&target)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nfsio cp");
    let on_disk = export.join("copy.bin");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let len = std::fs::metadata(&on_disk).map_or(0, |m| m.len());
        if len >= FILE_BYTES / 4 {
            break;
        }
        if let Ok(Some(status)) = cp.try_wait() {
            panic!("the copy ended ({status}) before a quarter of it was on disk");
        }
        assert!(Instant::now() < deadline, "the copy made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    fault(server);
    let (_server, _) = Serve::start(&export, &state, port);

    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = cp.try_wait().expect("wait for cp") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the copy did not finish after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = cp.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success(),
        "nfsio cp failed across the fault: {stderr}"
    );
    assert!(
        same_content(&source, &on_disk),
        "the file on the server's disk differs from the source"
    );
    drop(scratch);
}

#[test]
fn serve_killed_mid_copy_and_restarted() {
    copy_through_a_fault("kill9", |server| {
        server.signal("-KILL");
        let status = server.wait();
        assert!(
            !status.success(),
            "SIGKILL should end the server abnormally"
        );
    });
}

#[test]
fn serve_stopped_for_5_s_mid_copy() {
    copy_through_a_fault("stop5", |server| {
        server.signal("-TERM");
        let status = server.wait();
        assert!(status.success(), "SIGTERM should stop the server cleanly");
        // Down for 5 s: the client's reconnect attempts are refused meanwhile.
        std::thread::sleep(Duration::from_secs(5));
    });
}
