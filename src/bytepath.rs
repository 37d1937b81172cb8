//! Paths inside an export, as bytes: a name on an NFS server is any bytes but `/` and NUL,
//! not necessarily UTF-8, and a URL's `%E9` names the byte 0xE9 (see `NfsUrl::path`). The
//! few string operations the commands need on such paths, done on bytes.

/// `path` without trailing slashes.
pub(crate) fn trim_end_slashes(path: &[u8]) -> &[u8] {
    let kept = path.len() - path.iter().rev().take_while(|b| **b == b'/').count();
    &path[..kept]
}

/// `path` without leading or trailing slashes.
pub(crate) fn trim_slashes(path: &[u8]) -> &[u8] {
    let path = trim_end_slashes(path);
    &path[path.iter().take_while(|b| **b == b'/').count()..]
}

/// The last component of `path` (trailing slashes ignored; empty for the root).
pub(crate) fn base_name(path: &[u8]) -> &[u8] {
    let path = trim_end_slashes(path);
    match path.iter().rposition(|b| *b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// `name` inside the directory `dir` (`dir` may be empty: the export's root).
pub(crate) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let dir = trim_end_slashes(dir);
    let mut joined = Vec::with_capacity(dir.len() + 1 + name.len());
    joined.extend_from_slice(dir);
    if !dir.is_empty() {
        joined.push(b'/');
    }
    joined.extend_from_slice(name);
    joined
}

/// The URL of `name` in the directory that `url` names: the name, written as a URL writes
/// it (`%E9` for a byte that is not UTF-8), goes after the path and before the query.
pub(crate) fn child_url(url: &str, name: &[u8]) -> String {
    let (path, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let path = path.trim_end_matches('/');
    format!("{path}/{}{query}", nfsio_client::encode_path(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_split_and_joined_on_bytes() {
        assert_eq!(base_name(b"a/b\xe9/"), b"b\xe9");
        assert_eq!(base_name(b"f"), b"f");
        assert_eq!(base_name(b""), b"");
        assert_eq!(join(b"a/", b"\xff"), b"a/\xff");
        assert_eq!(join(b"", b"x"), b"x");
        assert_eq!(trim_slashes(b"//a/b//"), b"a/b");
    }

    #[test]
    fn a_child_url_keeps_the_query_at_the_end() {
        assert_eq!(
            child_url("nfs://h/export/d/?version=3&nfsport=9", b"caf\xe9"),
            "nfs://h/export/d/caf%E9?version=3&nfsport=9"
        );
        assert_eq!(child_url("nfs:dir", b"f x"), "nfs:dir/f x");
    }
}
