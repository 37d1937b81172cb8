//! `df [-h]`: the export's space and files (FSSTAT), in coreutils' layout: size, used and
//! available in 1K blocks (or with `-h` in powers of 1024 with a unit), the use percentage
//! rounded up as df rounds it, and the export's URL in place of a device.

use clap::Args;

use crate::connect;
use crate::report::Failure;

/// `nfsio df` (`-h` is df's, as in coreutils: help is `--help` only).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct DfArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Sizes in powers of 1024 with a unit (K, M, G, T), as `df -h`.
    #[arg(short = 'h', long = "human-readable")]
    pub human: bool,
    /// One JSON array (bytes and file counts per export) instead of text.
    #[arg(long)]
    pub json: bool,
    /// nfs://host/export[/path] (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio df`.
pub async fn df(args: &DfArgs) -> Result<(), Failure> {
    let mut rows = vec![[
        "Filesystem".to_owned(),
        if args.human { "Size" } else { "1K-blocks" }.to_owned(),
        "Used".to_owned(),
        if args.human { "Avail" } else { "Available" }.to_owned(),
        "Use%".to_owned(),
    ]];
    let mut json = Vec::new();
    for url in &args.urls {
        let client = connect(url).await?;
        let stat = client
            .fsstat(client.root())
            .await
            .map_err(|e| Failure::nfs(url, e))?;
        let used = stat.tbytes.saturating_sub(stat.fbytes);
        json.push(serde_json::json!({
            "url": url,
            "filesystem": format!("{}:{}", client.server(), client.export()),
            "size_bytes": stat.tbytes,
            "used_bytes": used,
            "free_bytes": stat.fbytes,
            "available_bytes": stat.abytes,
            "files": stat.tfiles,
            "files_free": stat.ffiles,
            "files_available": stat.afiles,
        }));
        let size = |bytes: u64| {
            if args.human {
                crate::units::human(bytes)
            } else {
                bytes.div_ceil(1024).to_string()
            }
        };
        rows.push([
            format!("{}:{}", client.server(), client.export()),
            size(stat.tbytes),
            size(used),
            size(stat.abytes),
            use_percent(used, stat.abytes),
        ]);
    }
    if args.json {
        return crate::json::print(&serde_json::Value::Array(json));
    }
    let widths: Vec<usize> = (0..5)
        .map(|col| rows.iter().map(|row| row[col].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = format!("{:<w$}", row[0], w = widths[0]);
        for col in 1..5 {
            line.push_str(&format!(" {:>w$}", row[col], w = widths[col]));
        }
        println!("{line}");
    }
    Ok(())
}

/// Used over used + available, rounded up (df's rule), or `-` when both are 0.
fn use_percent(used: u64, avail: u64) -> String {
    let total = u128::from(used) + u128::from(avail);
    if total == 0 {
        return "-".to_owned();
    }
    format!("{}%", (u128::from(used) * 100).div_ceil(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up_as_df_does() {
        assert_eq!(use_percent(1, 99), "1%");
        assert_eq!(use_percent(1, 199), "1%");
        assert_eq!(use_percent(0, 0), "-");
        assert_eq!(use_percent(50, 50), "50%");
    }
}
