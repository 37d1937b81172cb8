//! `mv SRC... DST`: RENAME within one export, as coreutils' `mv` moves: onto an existing
//! directory (and with several sources, which need one) each source keeps its name inside
//! it; otherwise the one source takes DST's name, replacing a file there. A source on
//! another server or export is EXDEV before anything moves (NFS cannot rename across
//! exports).

use clap::Args;
use nfsio_client::proto::nfs3::{FileType, Nfs3Status};
use nfsio_client::{Client, NfsUrl};

use crate::connect;
use crate::report::Failure;

/// `nfsio mv`.
#[derive(Debug, Args)]
pub struct MvArgs {
    /// nfs://host/export/path of each file or directory to move (SRC), then of the new
    /// name or of an existing directory to move into (DST)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `nfsio mv`: each source in turn; the first failure ends the command.
pub async fn mv(args: &MvArgs) -> Result<(), Failure> {
    let Some((dst, sources)) = args.paths.split_last() else {
        return Err(Failure::message(
            "mv needs a source and a destination".to_owned(),
        ));
    };
    let client = connect(dst).await?;
    let dst_path = client.url_path().to_owned();
    let into_dir = match client.lookup_path(&dst_path).await {
        Ok((_, attributes)) => attributes.file_type == FileType::Directory,
        Err(error) if error.status() == Some(Nfs3Status::NoEnt) => false,
        Err(error) => return Err(Failure::nfs(dst, error)),
    };
    if !into_dir && sources.len() > 1 {
        return Err(Failure::message(format!(
            "{dst}: target is not a directory (ENOTDIR)"
        )));
    }
    let paths = sources
        .iter()
        .map(|src| path_on_export(&client, src, dst).map(|path| (src, path)))
        .collect::<Result<Vec<_>, _>>()?;
    for (src, src_path) in paths {
        let to = if into_dir {
            let name = crate::bytepath::base_name(&src_path);
            if name.is_empty() {
                return Err(Failure::message(format!(
                    "{src}: cannot move an export's root (EINVAL)"
                )));
            }
            crate::bytepath::join(&dst_path, name)
        } else {
            dst_path.clone()
        };
        client
            .rename_path(&src_path, &to)
            .await
            .map_err(|e| Failure::nfs(src, e))?;
    }
    Ok(())
}

/// `src`'s path inside the export `client` (connected for `dst`) serves, or EXDEV when it
/// names another server or export.
fn path_on_export(client: &Client, src: &str, dst: &str) -> Result<Vec<u8>, Failure> {
    let full = crate::short::resolve(src)?;
    let src_url = NfsUrl::parse(&full).map_err(|e| Failure::nfs(src, e.into()))?;
    let dst_url = client.url();
    let export = crate::bytepath::trim_end_slashes(client.export().as_bytes());
    let below = src_url.path.strip_prefix(export);
    let same_server = src_url.host == dst_url.host
        && src_url.nfs_port.is_none_or(|p| Some(p) == dst_url.nfs_port)
        && below.is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"));
    if !same_server {
        return Err(Failure::message(format!(
            "{dst}: not on the same export as {src} (EXDEV)"
        )));
    }
    Ok(crate::bytepath::trim_slashes(below.unwrap_or_default()).to_vec())
}
