//! NFSv3 calls joined with their replies, read from a capture with tshark.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use std::io::BufRead;

use crate::capture::{parse_uint, with_tshark_stdout};

/// `stable_how` of NFSv3 WRITE (RFC 1813): asked for in the call, granted in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StableHow {
    /// 0: the server may keep the data in memory until COMMIT.
    Unstable,
    /// 1: data on stable storage, metadata maybe not.
    DataSync,
    /// 2: data and metadata on stable storage.
    FileSync,
    /// Any other value (a protocol error).
    Other(u32),
}

impl StableHow {
    fn from_raw(v: u64) -> StableHow {
        match v {
            0 => StableHow::Unstable,
            1 => StableHow::DataSync,
            2 => StableHow::FileSync,
            v => StableHow::Other(u32::try_from(v).unwrap_or(u32::MAX)),
        }
    }
}

impl fmt::Display for StableHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StableHow::Unstable => f.write_str("UNSTABLE"),
            StableHow::DataSync => f.write_str("DATA_SYNC"),
            StableHow::FileSync => f.write_str("FILE_SYNC"),
            StableHow::Other(v) => write!(f, "stable_how({v})"),
        }
    }
}

/// The name of NFSv3 procedure number `proc` (`"NULL"`, `"GETATTR"`, ... `"COMMIT"`), or
/// `"?"` for numbers NFSv3 does not have.
pub fn nfs3_proc_name(proc: u32) -> &'static str {
    const NAMES: [&str; 22] = [
        "NULL",
        "GETATTR",
        "SETATTR",
        "LOOKUP",
        "ACCESS",
        "READLINK",
        "READ",
        "WRITE",
        "CREATE",
        "MKDIR",
        "SYMLINK",
        "MKNOD",
        "REMOVE",
        "RMDIR",
        "RENAME",
        "LINK",
        "READDIR",
        "READDIRPLUS",
        "FSSTAT",
        "FSINFO",
        "PATHCONF",
        "COMMIT",
    ];
    NAMES.get(proc as usize).copied().unwrap_or("?")
}

/// One NFSv3 call and its reply, as seen on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct NfsCallLine {
    /// Frame holding the call (the last segment of it, when it spans several).
    pub call_frame: u64,
    /// Frame holding the reply.
    pub reply_frame: u64,
    /// RPC transaction id.
    pub xid: u32,
    /// NFSv3 procedure number; see [`NfsCallLine::name`].
    pub proc: u32,
    /// `offset` of READ, WRITE and COMMIT calls.
    pub offset: Option<u64>,
    /// `count` of READ, WRITE and COMMIT calls.
    pub count: Option<u32>,
    /// `stable` asked for by a WRITE call.
    pub stable: Option<StableHow>,
    /// `committed` granted by a WRITE reply.
    pub committed: Option<StableHow>,
    /// `nfsstat3` of the reply (0 = NFS3_OK), when the reply was accepted.
    pub status: Option<u32>,
    /// Time from the call's frame to the reply's frame.
    pub rtt: Duration,
}

impl NfsCallLine {
    /// The procedure's name, e.g. `"WRITE"`.
    pub fn name(&self) -> &'static str {
        nfs3_proc_name(self.proc)
    }
}

impl fmt::Display for NfsCallLine {
    /// `WRITE    off=0           cnt=1048576  stable=UNSTABLE  committed=UNSTABLE  status=0 rtt_ms=1.234`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn opt<T: fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
        }
        write!(
            f,
            "{:<11} off={:<11} cnt={:<8} stable={:<9} committed={:<9} status={:<5} rtt_ms={:.3}",
            self.name(),
            opt(&self.offset),
            opt(&self.count),
            opt(&self.stable),
            opt(&self.committed),
            opt(&self.status),
            self.rtt.as_secs_f64() * 1000.0
        )
    }
}

/// One RPC message of a frame, with the NFS fields dissected after it.
#[derive(Debug, Default, Clone)]
struct Msg {
    frame: u64,
    time: f64,
    xid: Option<u32>,
    msgtyp: Option<u64>,
    program: Option<u64>,
    version: Option<u64>,
    repframe: Option<u64>,
    proc: Option<u64>,
    offset: Option<u64>,
    count: Option<u64>,
    stable: Option<u64>,
    committed: Option<u64>,
    status: Option<u64>,
}

/// Every NFSv3 call in the capture that has its reply there too, in the order of the calls,
/// with procedure, offset, count, stable, committed, status and round-trip time.
///
/// A frame may hold several RPC messages (pipelined small calls or replies), so this reads
/// tshark's PDML, where each message's fields follow its own `rpc` element, rather than
/// `-T fields`, which would mix them up. Replies are joined to calls by XID, within the call
/// that Wireshark matched them to (`rpc.repframe`), so equal XIDs on different connections do
/// not get mixed up. Panics if tshark cannot be run or fails.
pub fn nfs_calls(pcap: &Path) -> Vec<NfsCallLine> {
    let msgs = with_tshark_stdout(
        pcap,
        &["-Y", "nfs", "-T", "pdml", "-J", "frame rpc nfs"],
        |r| parse_pdml(r),
    );
    join(msgs)
}

/// Splits PDML into RPC messages.
fn parse_pdml(mut pdml: impl BufRead) -> Vec<Msg> {
    let mut msgs = Vec::new();
    let (mut frame, mut time) = (0u64, 0f64);
    let mut proto = String::new();
    let mut cur: Option<Msg> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match pdml.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // The lines of interest are short; long ones carry payload hex (nfs.data).
        if buf.len() > 4096 {
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            continue;
        };
        let line = line.trim();
        if line.starts_with("<packet>") {
            msgs.extend(cur.take());
            (frame, time) = (0, 0.0);
            proto.clear();
        } else if let Some(rest) = line.strip_prefix("<proto ") {
            proto = attr(rest, "name").unwrap_or_default().to_owned();
            if proto == "rpc" {
                msgs.extend(cur.take());
                cur = Some(Msg {
                    frame,
                    time,
                    ..Msg::default()
                });
            }
        } else if let Some(rest) = line.strip_prefix("<field ") {
            let Some(name) = attr(rest, "name") else {
                continue;
            };
            let show = || attr(rest, "show").and_then(parse_uint);
            match (proto.as_str(), name) {
                ("frame", "frame.number") => frame = show().unwrap_or(0),
                ("frame", "frame.time_relative") => {
                    time = attr(rest, "show")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0.0)
                }
                ("rpc", _) | ("nfs", _) => {
                    let Some(m) = cur.as_mut() else { continue };
                    let slot = match name {
                        "rpc.xid" => {
                            m.xid = show().and_then(|v| u32::try_from(v).ok());
                            continue;
                        }
                        "rpc.msgtyp" => &mut m.msgtyp,
                        "rpc.program" => &mut m.program,
                        "rpc.programversion" => &mut m.version,
                        "rpc.repframe" => &mut m.repframe,
                        "nfs.procedure_v3" => &mut m.proc,
                        "nfs.offset3" => &mut m.offset,
                        "nfs.count3" => &mut m.count,
                        "nfs.write.stable" => &mut m.stable,
                        "nfs.write.committed" => &mut m.committed,
                        "nfs.status" => &mut m.status,
                        _ => continue,
                    };
                    // The first occurrence is the message's own; later ones are nested deeper.
                    if slot.is_none() {
                        *slot = show();
                    }
                }
                _ => {}
            }
        }
    }
    msgs.extend(cur.take());
    msgs
}

/// Joins NFSv3 calls with their replies.
fn join(msgs: Vec<Msg>) -> Vec<NfsCallLine> {
    let is_v3 = |m: &Msg| m.program == Some(100_003) && m.version == Some(3) && m.xid.is_some();
    let mut calls: Vec<Msg> = Vec::new();
    let mut index: HashMap<(u64, u32), usize> = HashMap::new();
    let mut replies: Vec<Msg> = Vec::new();
    for m in msgs.into_iter().filter(is_v3) {
        match m.msgtyp {
            Some(0) => {
                index.insert((m.frame, m.xid.unwrap_or(0)), calls.len());
                calls.push(m);
            }
            Some(1) => replies.push(m),
            _ => {}
        }
    }
    let mut reply_of: HashMap<usize, Msg> = HashMap::new();
    for r in replies {
        let Some(repframe) = r.repframe else { continue };
        if let Some(&i) = index.get(&(repframe, r.xid.unwrap_or(0))) {
            reply_of.entry(i).or_insert(r);
        }
    }
    calls
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let r = reply_of.remove(&i)?;
            let rtt = (r.time - c.time).max(0.0);
            let u32_of = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok());
            Some(NfsCallLine {
                call_frame: c.frame,
                reply_frame: r.frame,
                xid: c.xid.unwrap_or(0),
                proc: u32_of(c.proc.or(r.proc)).unwrap_or(u32::MAX),
                offset: c.offset,
                count: u32_of(c.count),
                stable: c.stable.map(StableHow::from_raw),
                committed: r.committed.map(StableHow::from_raw),
                status: u32_of(r.status),
                rtt: Duration::from_secs_f64(rtt),
            })
        })
        .collect()
}

/// The value of attribute `key` in the rest of a PDML tag (XML entities left as they are).
fn attr<'a>(tag: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = tag[from..].find(key) {
        let at = from + pos;
        let before_ok = at == 0 || tag.as_bytes()[at - 1] == b' ';
        let rest = &tag[at + key.len()..];
        if before_ok && let Some(value) = rest.strip_prefix("=\"") {
            return value.find('"').map(|end| &value[..end]);
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDML: &str = r#"<packet>
  <proto name="frame" showname="Frame 10">
    <field name="frame.time_relative" showname="x" size="0" pos="0" show="0.001000000"/>
    <field name="frame.number" showname="Frame Number: 10" size="0" pos="0" show="10"/>
  </proto>
  <proto name="rpc" showname="Remote Procedure Call, Type:Call XID:0x00000010" size="28" pos="66">
    <field name="rpc.xid" showname="XID: 0x00000010 (16)" size="4" pos="70" show="0x00000010" value="10"/>
    <field name="rpc.msgtyp" showname="Message Type: Call (0)" size="4" pos="74" show="0" value="0"/>
    <field name="rpc.program" showname="Program: NFS (100003)" size="4" pos="66" show="100003"/>
    <field name="rpc.programversion" showname="Program Version: 3" size="4" pos="66" show="3"/>
  </proto>
  <proto name="nfs" showname="Network File System">
    <field name="nfs.procedure_v3" showname="V3 Procedure: WRITE (7)" size="0" pos="160" show="7"/>
    <field name="nfs.offset3" showname="offset: 4096" size="8" pos="1" show="4096" value="1000"/>
    <field name="nfs.count3" showname="count: 512" size="4" pos="1" show="512" value="200"/>
    <field name="nfs.write.stable" showname="Stable: UNSTABLE (0)" size="4" pos="1" show="0" value="0"/>
    <field name="nfs.data" showname="Data" size="512" pos="1" show="00:11" value="0011"/>
  </proto>
  <proto name="rpc" showname="Remote Procedure Call, Type:Call XID:0x00000011">
    <field name="rpc.xid" showname="XID" size="4" pos="70" show="0x00000011" value="11"/>
    <field name="rpc.msgtyp" showname="Message Type: Call (0)" size="4" pos="74" show="0" value="0"/>
    <field name="rpc.program" showname="Program: NFS (100003)" size="4" pos="66" show="100003"/>
    <field name="rpc.programversion" showname="Program Version: 3" size="4" pos="66" show="3"/>
  </proto>
  <proto name="nfs" showname="Network File System">
    <field name="nfs.procedure_v3" showname="V3 Procedure: COMMIT (21)" size="0" pos="160" show="21"/>
    <field name="nfs.offset3" showname="offset: 0" size="8" pos="1" show="0" value="0"/>
    <field name="nfs.count3" showname="count: 0" size="4" pos="1" show="0" value="0"/>
  </proto>
</packet>
<packet>
  <proto name="frame" showname="Frame 12">
    <field name="frame.time_relative" showname="x" size="0" pos="0" show="0.003500000"/>
    <field name="frame.number" showname="Frame Number: 12" size="0" pos="0" show="12"/>
  </proto>
  <proto name="rpc" showname="Remote Procedure Call, Type:Reply XID:0x00000011">
    <field name="rpc.xid" showname="XID" size="4" pos="70" show="0x00000011" value="11"/>
    <field name="rpc.msgtyp" showname="Message Type: Reply (1)" size="4" pos="74" show="1" value="1"/>
    <field name="rpc.program" showname="Program: NFS (100003)" size="0" pos="66" show="100003"/>
    <field name="rpc.programversion" showname="Program Version: 3" size="0" pos="66" show="3"/>
    <field name="rpc.repframe" showname="This is a reply to a request in frame 10" size="0" pos="66" show="10"/>
  </proto>
  <proto name="nfs" showname="Network File System">
    <field name="nfs.procedure_v3" showname="V3 Procedure: COMMIT (21)" size="0" pos="160" show="21"/>
    <field name="nfs.status" showname="Status: NFS3_OK (0)" hide="yes" size="4" pos="1" show="0" value="0"/>
  </proto>
  <proto name="rpc" showname="Remote Procedure Call, Type:Reply XID:0x00000010">
    <field name="rpc.xid" showname="XID" size="4" pos="70" show="0x00000010" value="10"/>
    <field name="rpc.msgtyp" showname="Message Type: Reply (1)" size="4" pos="74" show="1" value="1"/>
    <field name="rpc.program" showname="Program: NFS (100003)" size="0" pos="66" show="100003"/>
    <field name="rpc.programversion" showname="Program Version: 3" size="0" pos="66" show="3"/>
    <field name="rpc.repframe" showname="This is a reply to a request in frame 10" size="0" pos="66" show="10"/>
  </proto>
  <proto name="nfs" showname="Network File System">
    <field name="nfs.procedure_v3" showname="V3 Procedure: WRITE (7)" size="0" pos="160" show="7"/>
    <field name="nfs.status" showname="Status: NFS3_OK (0)" hide="yes" size="4" pos="1" show="0" value="0"/>
    <field name="nfs.count3" showname="count: 512" size="4" pos="1" show="512" value="200"/>
    <field name="nfs.write.committed" showname="Committed: FILE_SYNC (2)" size="4" pos="1" show="2" value="2"/>
  </proto>
</packet>
"#;

    #[test]
    fn joins_several_messages_per_frame() {
        let calls = join(parse_pdml(PDML.as_bytes()));
        assert_eq!(calls.len(), 2, "{calls:#?}");
        let w = &calls[0];
        assert_eq!(
            (w.name(), w.xid, w.call_frame, w.reply_frame),
            ("WRITE", 0x10, 10, 12)
        );
        assert_eq!((w.offset, w.count), (Some(4096), Some(512)));
        assert_eq!(
            (w.stable, w.committed, w.status),
            (
                Some(StableHow::Unstable),
                Some(StableHow::FileSync),
                Some(0)
            )
        );
        assert!((w.rtt.as_secs_f64() - 0.0025).abs() < 1e-9);
        let c = &calls[1];
        assert_eq!(
            (c.name(), c.xid, c.offset, c.count, c.stable),
            ("COMMIT", 0x11, Some(0), Some(0), None)
        );
        assert!(w.to_string().starts_with(
            "WRITE       off=4096        cnt=512      stable=UNSTABLE  committed=FILE_SYNC"
        ));
    }

    #[test]
    fn attr_skips_showname() {
        let tag = r#"name="nfs.count3" showname="count: 5" show="5" value="05"/>"#;
        assert_eq!(attr(tag, "name"), Some("nfs.count3"));
        assert_eq!(attr(tag, "show"), Some("5"));
        assert_eq!(attr(tag, "value"), Some("05"));
    }

    #[test]
    fn proc_names() {
        assert_eq!(nfs3_proc_name(0), "NULL");
        assert_eq!(nfs3_proc_name(7), "WRITE");
        assert_eq!(nfs3_proc_name(21), "COMMIT");
        assert_eq!(nfs3_proc_name(22), "?");
    }
}
