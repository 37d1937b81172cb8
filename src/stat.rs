//! `nfsio stat`: a file's attributes in GNU stat's default layout — `File:`, `Size:`,
//! `Blocks:` (512-byte), `IO Block:` (the client's WRITE size, as Linux's NFS client
//! reports it), the type in words, `Device:` (the server's file system id, in hex and
//! decimal as older GNU stat prints devices), `Inode:` (the file id), `Links:`,
//! `Access: (0644/-rw-r--r--)` with owner and group ids and names, and the access,
//! modification and change times with nanoseconds in local time (`Birth:` is `-`: NFSv3
//! has no birth time).

use std::io::Write;

use clap::Args;
use nfsio_client::proto::nfs3::{Fattr, FileType, NfsTime};

use crate::ids::{group_name, user_name};
use crate::report::Failure;
use crate::{connect, mode_string};

/// `nfsio stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// One JSON array of the files' attributes instead of text.
    #[arg(long)]
    pub json: bool,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio stat`: each URL in turn (a symbolic link as `URL -> target`, as stat's `%N`).
pub async fn stat(args: &StatArgs) -> Result<(), Failure> {
    let mut text = String::new();
    let mut json = Vec::new();
    for url in &crate::glob::expand(&args.urls).await? {
        let client = connect(url).await?;
        let at = |e| Failure::nfs(url, e);
        let (handle, attributes) = client.lookup_path(client.url_path()).await.map_err(at)?;
        let mut name = url.clone();
        let mut target = None;
        if attributes.file_type == FileType::Symlink {
            let link = client.readlink(&handle).await.map_err(at)?;
            name = format!("{name} -> {}", String::from_utf8_lossy(&link));
            target = Some(link);
        }
        let base = crate::bytepath::base_name(client.url_path());
        let mut value = crate::json::entry(base, &attributes, target.as_deref());
        value["url"] = serde_json::json!(url);
        json.push(value);
        text.push_str(&layout(&name, &attributes, client.wsize_bytes()));
    }
    if args.json {
        return crate::json::print(&serde_json::Value::Array(json));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Failure::stdout)
}

/// GNU stat's default format for `name` with attributes `a`.
fn layout(name: &str, a: &Fattr, io_block_bytes: u32) -> String {
    let device = matches!(a.file_type, FileType::Block | FileType::Character);
    let links = if device {
        format!(
            "Links: {:<5} Device type: {},{}",
            a.nlink, a.rdev.major, a.rdev.minor
        )
    } else {
        format!("Links: {}", a.nlink)
    };
    let user = user_name(a.uid).unwrap_or_else(|| "UNKNOWN".to_owned());
    let group = group_name(a.gid).unwrap_or_else(|| "UNKNOWN".to_owned());
    format!(
        "  File: {name}\n  Size: {:<10}\tBlocks: {:<10} IO Block: {:<6} {}\n\
         Device: {:x}h/{}d\tInode: {:<11} {links}\n\
         Access: ({:04o}/{})  Uid: ({:>5}/{:>8})   Gid: ({:>5}/{:>8})\n\
         Access: {}\nModify: {}\nChange: {}\n Birth: -\n",
        a.size,
        a.used.div_ceil(512),
        io_block_bytes,
        type_words(a),
        a.fsid,
        a.fsid,
        a.fileid,
        a.mode & 0o7777,
        mode_string(a),
        a.uid,
        user,
        a.gid,
        group,
        time_text(a.atime),
        time_text(a.mtime),
        time_text(a.ctime),
    )
}

/// The file type as stat's `%F` says it.
fn type_words(a: &Fattr) -> &'static str {
    match a.file_type {
        FileType::Regular if a.size == 0 => "regular empty file",
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Block => "block special file",
        FileType::Character => "character special file",
        FileType::Symlink => "symbolic link",
        FileType::Socket => "socket",
        FileType::Fifo => "fifo",
    }
}

/// `2026-12-02 07:42:11.123456789 +0000`, in local time.
fn time_text(time: NfsTime) -> String {
    let Some(tm) = crate::when::local_tm(i64::from(time.seconds)) else {
        return format!("{}.{:09}", time.seconds, time.nseconds);
    };
    let offset_minutes = tm.tm_gmtoff / 60;
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let offset = offset_minutes.abs();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09} {sign}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        time.nseconds,
        offset / 60,
        offset % 60
    )
}
