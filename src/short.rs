//! Short paths: the environment variable `NFSIO_URL` names a default server and export (and
//! optionally a directory in it), so that a command can name a path on it without the
//! whole URL. An argument that starts with `nfs://` is always a URL of its own and wins;
//! `nfs:PATH` is PATH under `NFSIO_URL` for every command (`cp` included, where a bare path
//! is local); the commands that only take NFS paths (`ls`, `cat`, `stat`, `rm`, ...) also
//! take a bare PATH. PATH is relative to `NFSIO_URL`'s path, with or without a leading
//! `/`; `%`, `?` and `#` in it are escaped for the URL. There is no configuration file.

use crate::report::Failure;

/// The variable naming the default server and export.
pub const NFSIO_URL: &str = "NFSIO_URL";

/// The URL `arg` stands for: itself when it is an `nfs://` URL, else (`nfs:PATH` or a bare
/// PATH) PATH under `NFSIO_URL`.
pub fn resolve(arg: &str) -> Result<String, Failure> {
    if arg.starts_with("nfs://") {
        return Ok(arg.to_owned());
    }
    let path = arg.strip_prefix("nfs:").unwrap_or(arg);
    let Some(base) = std::env::var_os(NFSIO_URL) else {
        return Err(Failure::message(format!(
            "{arg}: not an nfs:// URL, and {NFSIO_URL} (the default server) is not set"
        )));
    };
    let base = base.to_string_lossy();
    if !base.starts_with("nfs://") {
        return Err(Failure::message(format!(
            "{NFSIO_URL}={base}: not an nfs:// URL"
        )));
    }
    Ok(join(&base, path))
}

/// True when `arg` names an NFS path: an `nfs://` URL or the short `nfs:PATH`.
pub fn is_nfs(arg: &str) -> bool {
    arg.starts_with("nfs:")
}

/// `path` appended to the path of URL `base` (before its query), escaped.
fn join(base: &str, path: &str) -> String {
    let (base_path, query) = match base.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (base, None),
    };
    let mut out = base_path.trim_end_matches('/').to_owned();
    let path = path.trim_start_matches('/');
    if !path.is_empty() {
        out.push('/');
        for c in path.chars() {
            match c {
                '%' => out.push_str("%25"),
                '?' => out.push_str("%3F"),
                '#' => out.push_str("%23"),
                c => out.push(c),
            }
        }
    }
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn paths_join_before_the_query_and_are_escaped() {
        assert_eq!(join("nfs://h:1/export", "a/b"), "nfs://h:1/export/a/b");
        assert_eq!(join("nfs://h:1/export/", "/a"), "nfs://h:1/export/a");
        assert_eq!(
            join("nfs://h/export?nfsport=2", "x y"),
            "nfs://h/export/x y?nfsport=2"
        );
        assert_eq!(
            join("nfs://h/export", "50%?#"),
            "nfs://h/export/50%25%3F%23"
        );
        assert_eq!(join("nfs://h/export?q=1", ""), "nfs://h/export?q=1");
    }
}
