//! `--json` for `ls`, `stat`, `df` and `du`: the same facts as the text, as one JSON
//! document on standard output for scripts (serde_json). Names are strings (invalid UTF-8
//! replaced), with `name_bytes` holding the raw bytes of a name that is not UTF-8; times
//! are `{"seconds", "nanoseconds"}` since the epoch; sizes are bytes.

use nfsio_client::proto::nfs3::{Fattr, FileType, NfsTime};
use serde_json::{Value, json};

use crate::ids::{group_name, user_name};
use crate::mode_string;
use crate::report::Failure;

fn time(t: NfsTime) -> Value {
    json!({ "seconds": t.seconds, "nanoseconds": t.nseconds })
}

fn type_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Regular => "file",
        FileType::Directory => "directory",
        FileType::Block => "block",
        FileType::Character => "char",
        FileType::Symlink => "symlink",
        FileType::Socket => "socket",
        FileType::Fifo => "fifo",
    }
}

/// One file: its name, attributes and (for a link, when read) target.
pub fn entry(name: &[u8], a: &Fattr, target: Option<&[u8]>) -> Value {
    let mut value = json!({
        "name": String::from_utf8_lossy(name),
        "type": type_name(a.file_type),
        "mode": a.mode & 0o7777,
        "mode_string": mode_string(a),
        "nlink": a.nlink,
        "uid": a.uid,
        "user": user_name(a.uid),
        "gid": a.gid,
        "group": group_name(a.gid),
        "size": a.size,
        "used": a.used,
        "rdev": [a.rdev.major, a.rdev.minor],
        "fsid": a.fsid,
        "fileid": a.fileid,
        "atime": time(a.atime),
        "mtime": time(a.mtime),
        "ctime": time(a.ctime),
    });
    if std::str::from_utf8(name).is_err() {
        value["name_bytes"] = json!(name);
    }
    if let Some(target) = target {
        value["target"] = json!(String::from_utf8_lossy(target));
    }
    value
}

/// Prints `value` and a newline on standard output.
pub fn print(value: &Value) -> Result<(), Failure> {
    use std::io::Write;
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Failure::message(format!("JSON: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(Failure::stdout)
}
