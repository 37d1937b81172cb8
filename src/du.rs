//! `nfsio du [-s] [-h] URL...`: disk usage as GNU `du` reports it — the space the server
//! says each file uses (`used`, in 1 KiB blocks, or with `-h` in powers of 1024), summed
//! over each directory and everything under it, a line per directory after its contents
//! (`-s`: one line per operand), and a file with several links counted once. Directories
//! are listed with READDIRPLUS (attributes come with the names) and walked by handles;
//! symbolic links are counted, never followed.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;

use clap::Args;
use nfsio_client::proto::nfs3::{Fattr, FileHandle, FileType};
use nfsio_client::{Client, NfsError};

use crate::connect;
use crate::report::Failure;

/// `nfsio du` (`-h` is du's, as in coreutils: help is `--help` only).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct DuArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Only a total for each argument.
    #[arg(short = 's', long = "summarize")]
    pub summarize: bool,
    /// Sizes in powers of 1024 with a unit (K, M, G), as `du -h`.
    #[arg(short = 'h', long = "human-readable")]
    pub human: bool,
    /// One JSON array of {path, used_bytes} instead of text.
    #[arg(long)]
    pub json: bool,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// What the walk keeps: files already counted (by file system and file id, as du keys them
/// by device and inode) and the lines to print.
struct Walk<'a> {
    args: &'a DuArgs,
    seen: HashSet<(u64, u64)>,
    out: Vec<u8>,
    json: Vec<serde_json::Value>,
}

impl Walk<'_> {
    /// The bytes `a` adds: nothing for a file with several links seen before.
    fn charge(&mut self, a: &Fattr) -> u64 {
        if a.file_type != FileType::Directory
            && a.nlink > 1
            && !self.seen.insert((a.fsid, a.fileid))
        {
            return 0;
        }
        a.used
    }

    /// One line of the output: a JSON object for `--json`, else `du`'s text line.
    fn line(&mut self, used_bytes: u64, path: &str) {
        if self.args.json {
            self.json
                .push(serde_json::json!({ "path": path, "used_bytes": used_bytes }));
            return;
        }
        let size = if self.args.human {
            crate::units::human(used_bytes)
        } else {
            used_bytes.div_ceil(1024).to_string()
        };
        self.out
            .extend_from_slice(format!("{size}\t{path}\n").as_bytes());
    }
}

/// `nfsio du`.
pub async fn du(args: &DuArgs) -> Result<(), Failure> {
    let mut walk = Walk {
        args,
        seen: HashSet::new(),
        out: Vec::new(),
        json: Vec::new(),
    };
    for url in &crate::glob::expand(&args.urls).await? {
        let client = connect(url).await?;
        let at = |e| Failure::nfs(url, e);
        let (handle, attributes) = client.lookup_path(client.url_path()).await.map_err(at)?;
        let mut total = walk.charge(&attributes);
        if attributes.file_type == FileType::Directory {
            total += usage(&client, handle, url.clone(), &mut walk)
                .await
                .map_err(|(path, e)| Failure::nfs(&path, e))?;
        }
        walk.line(total, url);
    }
    if args.json {
        return crate::json::print(&serde_json::Value::Array(walk.json));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&walk.out)
        .and_then(|()| out.flush())
        .map_err(Failure::stdout)
}

/// Bytes used, or an error and the path it happened on.
type Usage = Result<u64, (String, NfsError)>;

/// The bytes used under directory `dir` (its own excluded), printing a line for each
/// subdirectory unless `-s`.
fn usage<'a>(
    client: &'a Client,
    dir: FileHandle,
    path: String,
    walk: &'a mut Walk<'_>,
) -> Pin<Box<dyn Future<Output = Usage> + Send + 'a>> {
    Box::pin(async move {
        let entries = client
            .readdirplus(&dir)
            .collect_all()
            .await
            .map_err(|e| (path.clone(), e))?;
        let mut total = 0;
        for entry in entries {
            let child = crate::bytepath::child_url(&path, &entry.name);
            let at = |e| (child.clone(), e);
            let (handle, attributes) = match (entry.handle, entry.attributes) {
                (Some(handle), Some(attributes)) => (handle, attributes),
                _ => {
                    let found = client.lookup(&dir, &entry.name[..]).await.map_err(at)?;
                    let attributes = match found.obj_attributes {
                        Some(attributes) => attributes,
                        None => client.getattr(&found.object).await.map_err(at)?,
                    };
                    (found.object, attributes)
                }
            };
            let mut used = walk.charge(&attributes);
            if attributes.file_type == FileType::Directory {
                used += usage(client, handle, child.clone(), walk).await?;
                if !walk.args.summarize {
                    walk.line(used, &child);
                }
            }
            total += used;
        }
        Ok(total)
    })
}
