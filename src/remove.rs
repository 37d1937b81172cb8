//! `rm [-r] [-f]` and `rmdir`: removing names, and whole trees depth first.
//!
//! A tree is removed by handles, not by paths looked up earlier: each directory's listing is
//! read whole first (READDIRPLUS; removing while paging through it would move the server's
//! cookies under the listing), then each entry is removed by its name in the directory's
//! handle — a subdirectory emptied the same way first — and last the directory itself by its
//! name in its parent. A symbolic link is removed, never followed. The first error ends the
//! command and names the path it happened on, as coreutils' `rm` does.

use std::future::Future;
use std::pin::Pin;

use clap::Args;
use nfsio_client::proto::nfs3::{FileHandle, FileType, Nfs3Status};
use nfsio_client::{Client, NfsError};

use crate::connect;
use crate::report::Failure;

/// `nfsio rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Remove directories and everything in them.
    #[arg(short = 'r', short_alias = 'R', long = "recursive")]
    pub recursive: bool,
    /// A name that does not exist is not an error.
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio rmdir`.
#[derive(Debug, Args)]
pub struct RmdirArgs {
    /// nfs://host/export/path of an empty directory (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio rm`: each URL in turn; the first failure ends the command.
pub async fn rm(args: &RmArgs) -> Result<(), Failure> {
    for url in &crate::glob::expand(&args.urls).await? {
        let client = connect(url).await?;
        let path = client.url_path().to_owned();
        match remove_one(&client, &path, url, args.recursive).await {
            Err((_, error)) if args.force && error.status() == Some(Nfs3Status::NoEnt) => {}
            Err((at, error)) => return Err(Failure::nfs(&at, error)),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// `nfsio rmdir`: each URL in turn; the first failure ends the command.
pub async fn rmdir(args: &RmdirArgs) -> Result<(), Failure> {
    for url in &crate::glob::expand(&args.urls).await? {
        let client = connect(url).await?;
        client
            .rmdir_path(client.url_path())
            .await
            .map_err(|e| Failure::nfs(url, e))?;
    }
    Ok(())
}

/// An error and the URL of the path it happened on.
type Located = (String, NfsError);

/// Removes what `path` names: a file (or link, or special file) with REMOVE; a directory
/// with its contents when `recursive`, else EISDIR as coreutils' `rm` answers.
async fn remove_one(
    client: &Client,
    path: &[u8],
    url: &str,
    recursive: bool,
) -> Result<(), Located> {
    let at = |error| (url.to_owned(), error);
    let (parent, name) = client.lookup_parent(path).await.map_err(at)?;
    let found = client.lookup(&parent, name).await.map_err(at)?;
    let is_dir = match &found.obj_attributes {
        Some(attributes) => attributes.file_type == FileType::Directory,
        None => client.getattr(&found.object).await.map_err(at)?.file_type == FileType::Directory,
    };
    if !is_dir {
        return client.remove(&parent, name).await.map(drop).map_err(at);
    }
    if !recursive {
        return Err(at(NfsError::Status {
            proc_name: "REMOVE",
            status: Nfs3Status::IsDir,
        }));
    }
    empty_dir(client, found.object, url.to_owned()).await?;
    client.rmdir(&parent, name).await.map(drop).map_err(at)
}

/// Removes everything in directory `dir` (whose URL is `url`), depth first.
fn empty_dir(
    client: &Client,
    dir: FileHandle,
    url: String,
) -> Pin<Box<dyn Future<Output = Result<(), Located>> + Send + '_>> {
    Box::pin(async move {
        let entries = client
            .readdirplus(&dir)
            .collect_all()
            .await
            .map_err(|error| (url.clone(), error))?;
        for entry in entries {
            let child = crate::bytepath::child_url(&url, &entry.name);
            let at = |error| (child.clone(), error);
            let kind = match &entry.attributes {
                Some(attributes) => attributes.file_type,
                None => {
                    let found = client.lookup(&dir, &entry.name[..]).await.map_err(at)?;
                    match found.obj_attributes {
                        Some(attributes) => attributes.file_type,
                        None => client.getattr(&found.object).await.map_err(at)?.file_type,
                    }
                }
            };
            if kind == FileType::Directory {
                let handle = match entry.handle {
                    Some(handle) => handle,
                    None => {
                        client
                            .lookup(&dir, &entry.name[..])
                            .await
                            .map_err(at)?
                            .object
                    }
                };
                empty_dir(client, handle, child.clone()).await?;
                client.rmdir(&dir, &entry.name[..]).await.map_err(at)?;
            } else {
                client.remove(&dir, &entry.name[..]).await.map_err(at)?;
            }
        }
        Ok(())
    })
}
