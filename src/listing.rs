//! `nfsio ls`: a listing that reads like GNU `ls` run with `LC_ALL=C`: names sorted by their
//! bytes, dot files only with `-a` (with `.` and `..`) or `-A`; `-l` in ls's long format —
//! mode string, links, owner and group names (numeric where this machine has no name, or
//! with `-n`), size (`major, minor` for devices; `-h` in powers of 1024), the modification
//! time as `Mon dd HH:MM` within six months and `Mon dd  YYYY` otherwise, in local time, the
//! name and, for a symbolic link, ` -> target` — with columns aligned and a `total` of
//! 1 KiB blocks first; `-d` lists a directory itself; `-R` lists subdirectories below,
//! each under its header, without following links. Names are written as their bytes, as
//! `ls` writes them when its output is not a terminal. `--json` prints the entries and
//! their attributes as one JSON array instead (see `json.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use nfsio_client::proto::nfs3::{Fattr, FileHandle, FileType};
use nfsio_client::{Client, NfsError};

use crate::ids::{group_name, user_name};
use crate::report::Failure;
use crate::{connect, mode_string};

/// `nfsio ls` (`-h` is ls's, as in coreutils: help is `--help` only).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct LsArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Long listing: mode, links, owner, group, size, modification time, name.
    #[arg(short = 'l')]
    pub long: bool,
    /// Also names starting with `.`, and `.` and `..`.
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Also names starting with `.`, without `.` and `..`.
    #[arg(short = 'A', long = "almost-all")]
    pub almost_all: bool,
    /// Numeric user and group ids (implies -l).
    #[arg(short = 'n', long = "numeric-uid-gid")]
    pub numeric: bool,
    /// Sizes in powers of 1024 with a unit (K, M, G), as `ls -lh`.
    #[arg(short = 'h', long = "human-readable")]
    pub human: bool,
    /// List directories themselves, not their contents.
    #[arg(short = 'd', long = "directory")]
    pub directory: bool,
    /// List subdirectories recursively (symbolic links are not followed).
    #[arg(short = 'R', long = "recursive")]
    pub recursive: bool,
    /// One JSON array of the entries (with their attributes) instead of text.
    #[arg(long)]
    pub json: bool,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// One line of a listing: a name and its attributes (and a link's target).
struct Item {
    name: Vec<u8>,
    attributes: Fattr,
    target: Option<Vec<u8>>,
    /// A directory entry's handle, for `-R` (none for `.` and `..` and operands).
    handle: Option<FileHandle>,
}

/// `nfsio ls`: as GNU ls orders its operands, the ones that are not directories (all of
/// them with `-d`) first, as one block sorted by name, then each directory's listing, under
/// a `URL:` header when there is more than one operand.
pub async fn ls(args: &LsArgs) -> Result<(), Failure> {
    let long = args.long || args.numeric || args.json;
    let mut names = Names::default();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut operand_widths = Vec::new();
    let urls = crate::glob::expand(&args.urls).await?;
    for url in &urls {
        let client = connect(url).await?;
        let at = |e| Failure::nfs(url, e);
        let path = client.url_path().to_owned();
        let (handle, attributes) = client.lookup_path(&path).await.map_err(at)?;
        if attributes.file_type == FileType::Directory && !args.directory {
            let items = directory_items(&client, &handle, attributes.clone(), args, long)
                .await
                .map_err(at)?;
            dirs.push((url.clone(), items, client));
            // GNU ls sizes the operands' columns with the directory operands among them.
            operand_widths.push(Item {
                name: Vec::new(),
                attributes,
                target: None,
                handle: None,
            });
        } else {
            let name = Some(crate::bytepath::base_name(&path))
                .filter(|n| !n.is_empty())
                .unwrap_or(b".");
            let target = link_target(&client, &handle, &attributes, long)
                .await
                .map_err(at)?;
            files.push(Item {
                name: name.to_vec(),
                attributes,
                target,
                handle: None,
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = Vec::new();
    let mut json = Vec::new();
    add_json(&mut json, &files, None, args);
    let all_operands: Vec<&Item> = files.iter().chain(&operand_widths).collect();
    let widths = long_rows(&all_operands, args, &mut names).1;
    render_with(
        &mut text,
        &files,
        long,
        false,
        args,
        &mut names,
        Some(widths),
    );
    let headers = urls.len() > 1 || args.recursive;
    for (i, (url, items, client)) in dirs.iter().enumerate() {
        if headers {
            let gap = if i > 0 || !files.is_empty() { "\n" } else { "" };
            text.extend_from_slice(format!("{gap}{url}:\n").as_bytes());
        }
        render(&mut text, items, long, true, args, &mut names);
        add_json(&mut json, items, Some(url), args);
        if args.recursive {
            let mut walk = Recursion {
                client,
                args,
                long,
                text: &mut text,
                json: &mut json,
                names: &mut names,
            };
            walk.below(url, items).await?;
        }
    }
    if args.json {
        return crate::json::print(&serde_json::Value::Array(json));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .map_err(Failure::stdout)
}

/// `ls -R`'s walk below one directory operand, appending to the listing.
struct Recursion<'a> {
    client: &'a Client,
    args: &'a LsArgs,
    long: bool,
    text: &'a mut Vec<u8>,
    json: &'a mut Vec<serde_json::Value>,
    names: &'a mut Names,
}

impl Recursion<'_> {
    /// Lists each subdirectory among `items` (those of the directory labelled `label`)
    /// under its own header, and below it, in name order, as GNU ls -R does.
    fn below<'s>(
        &'s mut self,
        label: &'s str,
        items: &'s [Item],
    ) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 's>> {
        Box::pin(async move {
            for item in items {
                let Some(handle) = &item.handle else { continue };
                if item.attributes.file_type != FileType::Directory {
                    continue;
                }
                let child = child_label(label, &item.name);
                let at = |e| Failure::nfs(&child, e);
                let (client, args, long) = (self.client, self.args, self.long);
                let sub = directory_items(client, handle, item.attributes.clone(), args, long)
                    .await
                    .map_err(at)?;
                self.text
                    .extend_from_slice(format!("\n{child}:\n").as_bytes());
                render(self.text, &sub, long, true, args, self.names);
                add_json(self.json, &sub, Some(&child), args);
                self.below(&child, &sub).await?;
            }
            Ok(())
        })
    }
}

/// Adds `items` (entries of the directory labelled `dir`, or operands) to the JSON array,
/// when the output is JSON (`--json`); otherwise does nothing.
fn add_json(json: &mut Vec<serde_json::Value>, items: &[Item], dir: Option<&str>, args: &LsArgs) {
    if !args.json {
        return;
    }
    for item in items {
        let mut value = crate::json::entry(&item.name, &item.attributes, item.target.as_deref());
        if let Some(dir) = dir {
            value["directory"] = serde_json::json!(dir);
        }
        json.push(value);
    }
}

/// The header of directory `name` inside the one labelled `label` (a URL: before its query).
fn child_label(label: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match label.split_once('?') {
        Some((path, query)) => format!("{}/{name}?{query}", path.trim_end_matches('/')),
        None => format!("{}/{name}", label.trim_end_matches('/')),
    }
}

/// The entries of directory `dir` to list, sorted by their bytes.
async fn directory_items(
    client: &Client,
    dir: &FileHandle,
    dir_attributes: Fattr,
    args: &LsArgs,
    long: bool,
) -> Result<Vec<Item>, NfsError> {
    let mut items = Vec::new();
    if args.all {
        let parent = client.lookup(dir, "..").await?;
        let parent_attributes = match parent.obj_attributes {
            Some(attributes) => attributes,
            None => client.getattr(&parent.object).await?,
        };
        for (name, attributes) in [(".", dir_attributes), ("..", parent_attributes)] {
            items.push(Item {
                name: name.as_bytes().to_vec(),
                attributes,
                target: None,
                handle: None,
            });
        }
    }
    let show_dots = args.all || args.almost_all;
    for entry in client.readdirplus(dir).collect_all().await? {
        if entry.name.starts_with(b".") && !show_dots {
            continue;
        }
        let (handle, attributes) = match (entry.handle, entry.attributes) {
            (Some(handle), Some(attributes)) => (handle, attributes),
            _ => {
                let found = client.lookup(dir, &entry.name[..]).await?;
                let attributes = match found.obj_attributes {
                    Some(attributes) => attributes,
                    None => client.getattr(&found.object).await?,
                };
                (found.object, attributes)
            }
        };
        let target = link_target(client, &handle, &attributes, long).await?;
        items.push(Item {
            name: entry.name.to_vec(),
            attributes,
            target,
            handle: Some(handle),
        });
    }
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(items)
}

/// A symbolic link's target, for a long listing.
async fn link_target(
    client: &Client,
    handle: &FileHandle,
    attributes: &Fattr,
    long: bool,
) -> Result<Option<Vec<u8>>, NfsError> {
    if !long || attributes.file_type != FileType::Symlink {
        return Ok(None);
    }
    Ok(Some(client.readlink(handle).await?.to_vec()))
}

/// The long format's cells of `items`, and each column's width.
fn long_rows(items: &[&Item], args: &LsArgs, names: &mut Names) -> (Vec<[String; 6]>, [usize; 6]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let rows: Vec<[String; 6]> = items
        .iter()
        .map(|item| {
            let a = &item.attributes;
            [
                mode_string(a),
                a.nlink.to_string(),
                names.user(a.uid, args.numeric),
                names.group(a.gid, args.numeric),
                size_text(a, args.human),
                date_text(i64::from(a.mtime.seconds), now),
            ]
        })
        .collect();
    let mut widths = [0; 6];
    for row in &rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.len());
        }
    }
    (rows, widths)
}

/// Appends the listing of `items` to `out`: names one per line, or the long format with
/// aligned columns (and `total` first for a directory's contents).
fn render(
    out: &mut Vec<u8>,
    items: &[Item],
    long: bool,
    total: bool,
    args: &LsArgs,
    names: &mut Names,
) {
    render_with(out, items, long, total, args, names, None);
}

/// [`render`] with the columns' widths given (`None`: from `items`); nothing for `--json`.
fn render_with(
    out: &mut Vec<u8>,
    items: &[Item],
    long: bool,
    total: bool,
    args: &LsArgs,
    names: &mut Names,
    widths: Option<[usize; 6]>,
) {
    if args.json {
        // The output is the JSON array (`add_json`), not this text.
        return;
    }
    let names_of = Shown::new(items);
    if !long {
        for item in items {
            names_of.put(out, &item.name);
            out.push(b'\n');
        }
        return;
    }
    let refs: Vec<&Item> = items.iter().collect();
    let (rows, own) = long_rows(&refs, args, names);
    let widths = widths.unwrap_or(own);
    if total {
        // ls sums the blocks, then converts: 1 KiB blocks, rounded up once.
        let used_bytes: u64 = items.iter().map(|i| i.attributes.used).sum();
        let blocks = used_bytes.div_ceil(1024);
        let blocks = if args.human {
            crate::units::human(blocks * 1024)
        } else {
            blocks.to_string()
        };
        out.extend_from_slice(format!("total {blocks}\n").as_bytes());
    }
    // ls left-aligns names and right-aligns ids printed as numbers.
    let cell = |text: &str, width: usize| {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            format!("{text:>width$}")
        } else {
            format!("{text:<width$}")
        }
    };
    for (row, item) in rows.iter().zip(items) {
        let line = format!(
            "{} {:>w1$} {} {} {:>w4$} {} ",
            row[0],
            row[1],
            cell(&row[2], widths[2]),
            cell(&row[3], widths[3]),
            row[4],
            row[5],
            w1 = widths[1],
            w4 = widths[4],
        );
        out.extend_from_slice(line.as_bytes());
        names_of.put(out, &item.name);
        if let Some(target) = &item.target {
            out.extend_from_slice(b" -> ");
            out.extend_from_slice(&names_of.quoted(target));
        }
        out.push(b'\n');
    }
}

/// How names are written: raw bytes into a pipe or file; on a terminal quoted as GNU ls
/// quotes them (`quote.rs`), the others then indented by one column when some are quoted.
struct Shown {
    terminal: bool,
    indent: bool,
}

impl Shown {
    fn new(items: &[Item]) -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stdout().is_terminal();
        let indent = terminal && items.iter().any(|i| crate::quote::needs_quotes(&i.name));
        Self { terminal, indent }
    }

    fn quoted<'a>(&self, name: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if self.terminal {
            crate::quote::shell_escape(name)
        } else {
            std::borrow::Cow::Borrowed(name)
        }
    }

    fn put(&self, out: &mut Vec<u8>, name: &[u8]) {
        let shown = self.quoted(name);
        if self.indent && matches!(shown, std::borrow::Cow::Borrowed(_)) {
            out.push(b' ');
        }
        out.extend_from_slice(&shown);
    }
}

/// The size column: bytes (or `-h`), and `major, minor` for a device.
fn size_text(attributes: &Fattr, human: bool) -> String {
    match attributes.file_type {
        FileType::Block | FileType::Character => {
            format!("{}, {}", attributes.rdev.major, attributes.rdev.minor)
        }
        _ if human => crate::units::human(attributes.size),
        _ => attributes.size.to_string(),
    }
}

/// ls's date: `Mon dd HH:MM` for times within the last six months (and not in the future),
/// else `Mon dd  YYYY`, in this machine's local time.
fn date_text(seconds: i64, now: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const SIX_MONTHS: i64 = 31_556_952 / 2;
    let Some(tm) = crate::when::local_tm(seconds) else {
        return seconds.to_string();
    };
    let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("???");
    if seconds > now || now - seconds > SIX_MONTHS {
        format!("{month} {:>2}  {}", tm.tm_mday, tm.tm_year + 1900)
    } else {
        format!(
            "{month} {:>2} {:02}:{:02}",
            tm.tm_mday, tm.tm_hour, tm.tm_min
        )
    }
}

/// User and group names of this machine, looked up once each.
#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32, numeric: bool) -> String {
        if numeric {
            return uid.to_string();
        }
        self.users
            .entry(uid)
            .or_insert_with(|| user_name(uid).unwrap_or_else(|| uid.to_string()))
            .clone()
    }

    fn group(&mut self, gid: u32, numeric: bool) -> String {
        if numeric {
            return gid.to_string();
        }
        self.groups
            .entry(gid)
            .or_insert_with(|| group_name(gid).unwrap_or_else(|| gid.to_string()))
            .clone()
    }
}
