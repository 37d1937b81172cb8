//! Packet captures with tshark, and Wireshark's verdict on them.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::env::{find_tool, skip_or_fail};
use crate::sys;

/// Payloads of the marker datagrams a [`Capture`] sends itself start with this; [`wire_check`]
/// and [`crate::nfs_calls`] leave those frames out.
const MARK: &str = "nfsio-testkit-capture-mark:";

/// Display filter that leaves the marker datagrams out.
pub(crate) const NOT_MARK: &str = "!(udp contains \"nfsio-testkit-capture-mark:\")";

/// Options for every `tshark -r`:
/// - try heuristic dissectors (RPC's among them) before the port-based ones. A client on a
///   reserved port (libnfs as root picks one in 512..1023) may otherwise have its traffic
///   taken for the protocol registered for that port, e.g. MSDP (639), RTSP (554) or IPP
///   (631), and come out as malformed;
/// - reassemble RPC records up to 64 MiB: the default limit (`rpc.max_tcp_pdu_size`, 4 MiB)
///   is below a 4 MiB WRITE call or READ reply with its headers, which would then show only
///   as undissected "Continuation" data.
pub(crate) const READ_OPTS: [&str; 6] = [
    "-o",
    "tcp.try_heuristic_first:TRUE",
    "-o",
    "rpc.max_tcp_pdu_size:67108864",
    // On loopback, segments sent from two CPUs at once are sometimes captured out of
    // order; without this, tshark leaves the records they belong to undissected.
    "-o",
    "tcp.reassemble_out_of_order:TRUE",
];

/// A running `tshark -i lo` capture of some TCP ports into a pcapng file.
///
/// To know that the capture is live, and later that every packet sent before [`Capture::stop`]
/// is in the file, it sends a marker UDP datagram to itself on loopback (also captured) and
/// waits until that shows up in the file. [`wire_check`] and [`crate::nfs_calls`] skip them.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    path: PathBuf,
    stderr: Option<JoinHandle<String>>,
    marker: UdpSocket,
    seq: u32,
}

impl Capture {
    /// Starts capturing TCP traffic to or from any of `ports` on the loopback interface into
    /// `path` (pcapng, replaced if it exists), and returns once tshark is really capturing:
    /// packets sent after this returns are in the file.
    ///
    /// `None` when that cannot be done here (tshark missing, not root, tshark refuses): then one
    /// `skipped: <test>: <reason>` line was written to stderr; under `CI=true` it panics.
    pub fn start(ports: &[u16], path: &Path) -> Option<Capture> {
        match Self::try_start(ports, path) {
            Ok(c) => Some(c),
            Err(why) => {
                skip_or_fail(&why);
                None
            }
        }
    }

    fn try_start(ports: &[u16], path: &Path) -> Result<Capture, String> {
        let tshark =
            find_tool("tshark").ok_or("tshark not installed (run scripts/install-test-deps.sh)")?;
        if !sys::is_root() {
            return Err("capturing packets needs root".into());
        }
        if ports.is_empty() {
            return Err("Capture::start: no ports given".into());
        }
        let marker =
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind udp: {e}"))?;
        let marker_port = marker.local_addr().map_err(|e| e.to_string())?.port();
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .chain([format!("udp port {marker_port}")])
            .collect::<Vec<_>>()
            .join(" or ");
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove old {}: {e}", path.display())),
        }
        let mut child = Command::new(tshark)
            .args(["-i", "lo", "-B", "64", "-f", &filter, "-q", "-w"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run tshark: {e}"))?;
        // Read tshark's stderr on a thread, so that the pipe never fills; kept for errors.
        let err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let mut cap = Capture {
            child,
            path: path.to_owned(),
            stderr: Some(stderr),
            marker,
            seq: 0,
        };

        // dumpcap writes the file header once the filter is on the socket; from then on a
        // marker sent now shows up in the file. Markers are resent until one does.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut from = 0;
        let mut token = None;
        let mut last_sent = Instant::now();
        loop {
            let header_written = std::fs::metadata(path).is_ok_and(|m| m.len() >= 28);
            if header_written && (token.is_none() || last_sent.elapsed() > Duration::from_secs(1)) {
                token = Some(cap.send_marker().map_err(|e| format!("send marker: {e}"))?);
                last_sent = Instant::now();
            }
            if let Some(t) = &token
                && find_in_file(path, &mut from, t.as_bytes())
            {
                return Ok(cap);
            }
            if let Ok(Some(status)) = cap.child.try_wait() {
                let text = cap
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                return Err(format!(
                    "tshark exited ({status}) before capturing: {}",
                    text.trim()
                ));
            }
            if Instant::now() > deadline {
                cap.halt();
                let text = cap
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                return Err(format!(
                    "tshark did not start capturing within 30 s: {}",
                    text.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends a new marker datagram to ourselves and returns its text.
    fn send_marker(&mut self) -> std::io::Result<String> {
        self.seq += 1;
        let token = format!(
            "{MARK}{}:{}:{}",
            std::process::id(),
            self.child.id(),
            self.seq
        );
        let me = self.marker.local_addr()?;
        self.marker.send_to(token.as_bytes(), me)?;
        let mut buf = [0u8; 128];
        let _ = self
            .marker
            .set_read_timeout(Some(Duration::from_millis(100)));
        let _ = self.marker.recv_from(&mut buf); // keep the socket's queue empty
        Ok(token)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the capture once every packet sent before this call is in the file (a marker
    /// datagram sent now has arrived there; waits up to 120 s, as dumpcap may lag behind a
    /// fast transfer), then SIGINT to tshark and wait for it to exit, so the file is complete.
    /// Returns the file's path.
    pub fn stop(mut self) -> PathBuf {
        let mut from = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        match self.send_marker() {
            Ok(token) => {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !find_in_file(&self.path, &mut from, token.as_bytes()) {
                    if Instant::now() > deadline || matches!(self.child.try_wait(), Ok(Some(_))) {
                        eprintln!(
                            "Capture::stop: end marker not seen in {}",
                            self.path.display()
                        );
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Err(e) => eprintln!("Capture::stop: cannot send end marker: {e}"),
        }
        self.halt();
        std::mem::take(&mut self.path)
    }

    /// SIGINT to tshark (by PID), wait up to 30 s, then SIGKILL.
    fn halt(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        sys::signal(self.child.id(), sys::SIGINT);
        if !sys::wait_timeout(&mut self.child, Duration::from_secs(30)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
    }
}

/// Whether `needle` occurs in `path` at or after `*from`; advances `*from` past what was read
/// (less `needle.len()`, so that a needle cut in two by a read is found the next time).
fn find_in_file(path: &Path, from: &mut u64, needle: &[u8]) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    if f.seek(SeekFrom::Start(*from)).is_err() {
        return false;
    }
    let mut data = Vec::new();
    if f.read_to_end(&mut data).is_err() {
        return false;
    }
    if data.windows(needle.len()).any(|w| w == needle) {
        return true;
    }
    *from += data.len().saturating_sub(needle.len()) as u64;
    false
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Severity of a Wireshark expert info (`_ws.expert.severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `comment` (0x00100000).
    Comment,
    /// `chat` (0x00200000): normal workflow, e.g. a TCP connection setup.
    Chat,
    /// `note` (0x00400000): unusual but valid, e.g. a duplicate ACK.
    Note,
    /// `warning` (0x00600000): unusual, maybe a problem, e.g. a TCP RST.
    Warning,
    /// `error` (0x00800000): a serious problem, e.g. a malformed packet.
    Error,
}

impl Severity {
    fn from_raw(v: u64) -> Severity {
        match v {
            v if v >= 0x0080_0000 => Severity::Error,
            v if v >= 0x0060_0000 => Severity::Warning,
            v if v >= 0x0040_0000 => Severity::Note,
            v if v >= 0x0020_0000 => Severity::Chat,
            _ => Severity::Comment,
        }
    }
}

/// One finding of Wireshark about a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertInfo {
    /// Frame number (1-based, as in Wireshark).
    pub frame: u64,
    /// How bad it is ([`Severity::Error`] for malformed frames).
    pub severity: Severity,
    /// The message, e.g. `Connection reset (RST)`, or `[Malformed Packet: NFS]`.
    pub message: String,
}

impl fmt::Display for ExpertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame {}: {:?}: {}",
            self.frame, self.severity, self.message
        )
    }
}

/// What Wireshark's dissectors made of a capture (see [`wire_check`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireReport {
    /// Frames in the file.
    pub frames: u64,
    /// Frames with at least one ONC RPC message (`rpc`).
    pub rpc_frames: u64,
    /// Frames with at least one NFS message (`nfs`).
    pub nfs_frames: u64,
    /// Frames with at least one MOUNT message (`mount`).
    pub mount_frames: u64,
    /// Frames a dissector could not parse (`_ws.malformed`), one entry per frame, with the
    /// text Wireshark shows, e.g. `[Malformed Packet: NFS]`.
    pub malformed: Vec<ExpertInfo>,
    /// Expert infos of severity error (`_ws.expert.severity == error`); malformed frames have one too.
    pub errors: Vec<ExpertInfo>,
    /// Expert infos of severity warning (`_ws.expert.severity == warning`), e.g. TCP resets.
    pub warnings: Vec<ExpertInfo>,
    /// Frames with RPC data that Wireshark could not place in a record ("Continuation": the
    /// frame has `rpc` but no `rpc.xid`), so nothing in them was checked. Expected empty when
    /// the capture saw the connections from their start.
    pub rpc_undecoded: Vec<u64>,
}

impl WireReport {
    /// No malformed frame, no expert error, and no RPC data left undissected.
    pub fn is_clean(&self) -> bool {
        self.malformed.is_empty() && self.errors.is_empty() && self.rpc_undecoded.is_empty()
    }
}

impl fmt::Display for WireReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} frames: {} rpc, {} nfs, {} mount; {} malformed, {} errors, {} warnings, \
             {} rpc undecoded",
            self.frames,
            self.rpc_frames,
            self.nfs_frames,
            self.mount_frames,
            self.malformed.len(),
            self.errors.len(),
            self.warnings.len(),
            self.rpc_undecoded.len()
        )?;
        if !self.rpc_undecoded.is_empty() {
            writeln!(f, "  rpc undecoded in frames: {:?}", self.rpc_undecoded)?;
        }
        for (what, list) in [
            ("malformed", &self.malformed),
            ("error", &self.errors),
            ("warning", &self.warnings),
        ] {
            for e in list {
                writeln!(f, "  {what}: {e}")?;
            }
        }
        Ok(())
    }
}

/// Separates several occurrences of one field in tshark's `-T fields` output.
const AGG: &str = "\u{1f}";

/// Runs tshark over a capture file (typically [`Capture::stop`]'s) and reports how many frames
/// carry RPC, NFS and MOUNT, which frames are malformed, the expert infos at warning and
/// error level, and RPC data left undissected. Use [`WireReport::is_clean`] to check all.
/// The capture's own marker datagrams are left out (`frames` does not count them).
///
/// RPC on our non-standard ports is found by Wireshark's heuristics (no `-d tcp.port==N,rpc`
/// needed), which tshark is told to try before port-based dissectors
/// (`-o tcp.try_heuristic_first:TRUE`): otherwise a client's reserved source port that is
/// registered to another protocol (e.g. 639, MSDP) makes the traffic look malformed. RPC
/// records up to 64 MiB are reassembled (`-o rpc.max_tcp_pdu_size:67108864`; the default,
/// 4 MiB, leaves 4 MiB WRITEs and READ replies undissected).
///
/// Panics if tshark cannot be run or fails (check [`crate::require_tool`] first).
pub fn wire_check(pcap: &Path) -> WireReport {
    let text = run_tshark(
        pcap,
        &[
            "-Y",
            NOT_MARK,
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            &format!("aggregator={AGG}"),
            "-e",
            "frame.number",
            "-e",
            "rpc",
            "-e",
            "nfs",
            "-e",
            "mount",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.expert.severity",
            "-e",
            "_ws.expert.message",
            "-e",
            "rpc.xid",
        ],
    );
    let mut r = WireReport::default();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 8 {
            continue;
        }
        let Ok(frame) = cols[0].parse::<u64>() else {
            continue;
        };
        r.frames += 1;
        r.rpc_frames += u64::from(!cols[1].is_empty());
        r.nfs_frames += u64::from(!cols[2].is_empty());
        r.mount_frames += u64::from(!cols[3].is_empty());
        if !cols[1].is_empty() && cols[7].is_empty() {
            r.rpc_undecoded.push(frame);
        }
        if !cols[4].is_empty() {
            // The protocol item reads "[Malformed Packet: NFS]"; its subtree adds bare names.
            let texts: Vec<&str> = cols[4]
                .split(AGG)
                .filter(|m| !m.is_empty() && !m.starts_with("_ws."))
                .collect();
            let message = if texts.is_empty() {
                "[Malformed Packet]".to_owned()
            } else {
                texts.join("; ")
            };
            r.malformed.push(ExpertInfo {
                frame,
                severity: Severity::Error,
                message,
            });
        }
        let severities = cols[5].split(AGG).filter(|s| !s.is_empty());
        for (sev, message) in severities.zip(cols[6].split(AGG)) {
            let severity = Severity::from_raw(parse_uint(sev).unwrap_or(0));
            let info = ExpertInfo {
                frame,
                severity,
                message: message.to_owned(),
            };
            match severity {
                Severity::Error => r.errors.push(info),
                Severity::Warning => r.warnings.push(info),
                _ => {}
            }
        }
    }
    r
}

/// Parses a decimal or `0x` hexadecimal unsigned number as tshark prints them.
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Runs `tshark -r pcap ARGS` and returns its stdout; panics on failure.
pub(crate) fn run_tshark(pcap: &Path, args: &[&str]) -> String {
    with_tshark_stdout(pcap, args, |mut out| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut out, &mut text).map(|_| text)
    })
    .unwrap_or_else(|e| panic!("reading tshark's output: {e}"))
}

/// Runs `tshark -r pcap ARGS`, hands its stdout to `read` as it comes (captures of big
/// transfers give a lot of text), and returns what `read` returned; panics if tshark fails.
pub(crate) fn with_tshark_stdout<T>(
    pcap: &Path,
    args: &[&str],
    read: impl FnOnce(&mut dyn BufRead) -> T,
) -> T {
    let tshark = find_tool("tshark")
        .unwrap_or_else(|| panic!("tshark not installed (run scripts/install-test-deps.sh)"));
    let mut child = Command::new(tshark)
        .args(READ_OPTS)
        .arg("-r")
        .arg(pcap)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run tshark: {e}"));
    let mut err = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
        text
    });
    let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().expect("piped stdout"));
    let result = read(&mut out);
    let _ = std::io::copy(&mut out, &mut std::io::sink()); // let tshark finish writing
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("waiting for tshark: {e}"));
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        panic!(
            "tshark -r {} {} failed ({status}): {}",
            pcap.display(),
            args.join(" "),
            stderr.trim()
        );
    }
    result
}
