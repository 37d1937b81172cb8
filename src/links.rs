//! `ln [-s]` and `readlink`: a hard link (LINK) or a symbolic link (SYMLINK) made by name in
//! the new name's directory, and a link's target printed as its bytes, as coreutils' commands
//! of those names do.

use std::io::Write;

use clap::Args;
use nfsio_client::proto::nfs3::Sattr;

use crate::connect;
use crate::report::Failure;

/// `nfsio ln`.
#[derive(Debug, Args)]
pub struct LnArgs {
    /// Make a symbolic link holding TARGET's text instead of a hard link.
    #[arg(short = 's', long = "symbolic")]
    pub symbolic: bool,
    /// With -s: the link's text (any path, relative to the link). Without: the nfs:// URL
    /// of an existing file on the same export.
    pub target: String,
    /// nfs://host/export/path of the new name
    pub link: String,
}

/// `nfsio readlink`.
#[derive(Debug, Args)]
pub struct ReadlinkArgs {
    /// nfs://host/export/path of a symbolic link
    pub url: String,
}

/// `nfsio ln`.
pub async fn ln(args: &LnArgs) -> Result<(), Failure> {
    let client = connect(&args.link).await?;
    let link_path = client.url_path().to_owned();
    let at = |e| Failure::nfs(&args.link, e);
    let (dir, name) = client.lookup_parent(&link_path).await.map_err(at)?;
    if args.symbolic {
        client
            .symlink(&dir, name, args.target.as_bytes(), Sattr::default())
            .await
            .map_err(at)?;
        return Ok(());
    }
    let target_client = connect(&args.target).await?;
    if target_client.server() != client.server() || target_client.export() != client.export() {
        return Err(Failure::message(format!(
            "{}: not on the same export as {} (EXDEV)",
            args.link, args.target
        )));
    }
    let (file, _) = client
        .lookup_path(target_client.url_path())
        .await
        .map_err(|e| Failure::nfs(&args.target, e))?;
    client.link(&file, &dir, name).await.map_err(at)?;
    Ok(())
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
