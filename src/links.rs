//! `ln [-s]` and `readlink`: a hard link (LINK) or a symbolic link (SYMLINK) made by name in
//! the new name's directory, and a link's target printed as its bytes, as coreutils' commands
//! of those names do.

use std::io::Write;

use clap::Args;
use nfsio_client::proto::nfs3::{FileType, Sattr};

use crate::report::Failure;
use crate::{bytepath, connect};

/// `nfsio ln`.
#[derive(Debug, Args)]
pub struct LnArgs {
    /// Make a symbolic link holding TARGET's text instead of a hard link.
    #[arg(short = 's', long = "symbolic")]
    pub symbolic: bool,
    /// With -s: the link's text (any path, relative to the link). Without: the nfs:// URL
    /// of an existing file on the same export.
    pub target: String,
    /// nfs://host/export/path of the new name, or of an existing directory to make the link
    /// in under TARGET's last component
    pub link: String,
}

/// `nfsio readlink`.
#[derive(Debug, Args)]
pub struct ReadlinkArgs {
    /// nfs://host/export/path of a symbolic link
    pub url: String,
}

/// `nfsio ln`. A new name that is an existing directory receives the link under the
/// target's last component, as coreutils' `ln TARGET DIR` does.
pub async fn ln(args: &LnArgs) -> Result<(), Failure> {
    let client = connect(&args.link).await?;
    let at = |e| Failure::nfs(&args.link, e);
    let target_client = if args.symbolic {
        None
    } else {
        let target_client = connect(&args.target).await?;
        if target_client.server() != client.server() || target_client.export() != client.export() {
            return Err(Failure::message(format!(
                "{}: not on the same export as {} (EXDEV)",
                args.link, args.target
            )));
        }
        Some(target_client)
    };
    let target_path = match &target_client {
        Some(target_client) => target_client.url_path(),
        None => args.target.as_bytes(),
    };
    let mut link_path = client.url_path().to_owned();
    if is_directory(&client, &link_path).await {
        let name = bytepath::base_name(target_path);
        if name.is_empty() {
            return Err(Failure::message(format!(
                "{}: is a directory, and {} has no name to link it under (EISDIR)",
                args.link, args.target
            )));
        }
        link_path = bytepath::join(&link_path, name);
    }
    let (dir, name) = client.lookup_parent(&link_path).await.map_err(at)?;
    if target_client.is_none() {
        client
            .symlink(&dir, name, target_path, Sattr::default())
            .await
            .map_err(at)?;
        return Ok(());
    }
    let (file, _) = client
        .lookup_path(target_path)
        .await
        .map_err(|e| Failure::nfs(&args.target, e))?;
    client.link(&file, &dir, name).await.map_err(at)?;
    Ok(())
}

/// Whether `path` names an existing directory on `client`'s export.
async fn is_directory(client: &nfsio_client::Client, path: &[u8]) -> bool {
    matches!(
        client.lookup_path(path).await,
        Ok((_, attributes)) if attributes.file_type == FileType::Directory
    )
}

/// `nfsio readlink`: the target's bytes and a newline.
pub async fn readlink(args: &ReadlinkArgs) -> Result<(), Failure> {
    let client = connect(&args.url).await?;
    let at = |e| Failure::nfs(&args.url, e);
    let (handle, _) = client.lookup_path(client.url_path()).await.map_err(at)?;
    let target = client.readlink(&handle).await.map_err(at)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&target)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(Failure::stdout)
}
