//! Globs in the last component of a URL, expanded against the directory on the server, since
//! the local shell cannot see it: `nfsio rm 'nfs://host/export/logs/*.gz'`.
//!
//! A last component with `*`, `[` or `?` in it is a pattern (`?`, which starts a URL's query,
//! is written `%3F` in a URL, plain in an `nfs:` short path, which escapes it). As in the
//! shell, a pattern also matches a name with those characters in it. It is matched by
//! the C library's `fnmatch` with `FNM_PERIOD` (a leading `.` only by a pattern that starts
//! with one), against the names the directory lists, sorted bytewise as the shell sorts them
//! with `LC_ALL=C`. A pattern that matches nothing is passed on as it is, as the shell does,
//! so the command reports the name (and `rm -f` ignores it).

use std::ffi::CString;

use crate::report::Failure;

/// `urls` with every pattern replaced by the URLs of the names it matches.
pub(crate) async fn expand(urls: &[String]) -> Result<Vec<String>, Failure> {
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        let full = if crate::short::is_nfs(url) {
            crate::short::resolve(url)?
        } else {
            url.clone()
        };
        match split(&full) {
            Some(parts) if is_pattern(parts.last) => {
                let matches = matches(&parts).await?;
                if matches.is_empty() {
                    out.push(url.clone());
                }
                out.extend(matches);
            }
            _ => out.push(url.clone()),
        }
    }
    Ok(out)
}

/// A URL cut around its last path component.
struct Parts<'a> {
    /// Up to the last `/`, without it.
    dir: &'a str,
    /// The last component, still escaped.
    last: &'a str,
    /// The query, with its `?`, or empty.
    query: &'a str,
}

fn split(url: &str) -> Option<Parts<'_>> {
    let after_scheme = url.strip_prefix("nfs://")?;
    let (before_query, query) = match url.find('?') {
        Some(at) => (&url[..at], &url[at..]),
        None => (url, ""),
    };
    // A slash of the path, not of `nfs://`.
    let slash = before_query
        .rfind('/')
        .filter(|&at| at >= url.len() - after_scheme.len())?;
    Some(Parts {
        dir: &before_query[..slash],
        last: &before_query[slash + 1..],
        query,
    })
}

fn is_pattern(component: &str) -> bool {
    component.contains('*')
        || component.contains('[')
        || component.to_ascii_uppercase().contains("%3F")
}

/// `%XX` decoded; a `%` not followed by two hex digits stays.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// A name as a URL path component: `%`, `?`, `#`, `/` and bytes outside printable ASCII
/// escaped.
fn escape(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#' | b'/') || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn fnmatch(pattern: &CString, name: &[u8]) -> bool {
    let Ok(name) = CString::new(name) else {
        return false;
    };
    // SAFETY: both are NUL-terminated strings that live across the call.
    unsafe { libc::fnmatch(pattern.as_ptr(), name.as_ptr(), libc::FNM_PERIOD) == 0 }
}

/// The URLs of the entries of the pattern's directory that it matches, sorted by name.
async fn matches(parts: &Parts<'_>) -> Result<Vec<String>, Failure> {
    let dir_url = format!("{}{}", parts.dir, parts.query);
    let pattern = CString::new(unescape(parts.last))
        .map_err(|_| Failure::message(format!("{dir_url}: a NUL byte in a pattern (EINVAL)")))?;
    let client = crate::connect(&dir_url).await?;
    let (handle, _) = client
        .lookup_path(client.url_path())
        .await
        .map_err(|e| Failure::nfs(&dir_url, e))?;
    let entries = client
        .readdirplus(&handle)
        .collect_all()
        .await
        .map_err(|e| Failure::nfs(&dir_url, e))?;
    let mut names: Vec<Vec<u8>> = entries
        .into_iter()
        .map(|e| e.name.to_vec())
        .filter(|n| n != b"." && n != b".." && fnmatch(&pattern, n))
        .collect();
    names.sort();
    Ok(names
        .iter()
        .map(|n| format!("{}/{}{}", parts.dir, escape(n), parts.query))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_cut_at_its_last_component_and_query() {
        let p = split("nfs://h:1/export/logs/*.gz?version=3").unwrap();
        assert_eq!(
            (p.dir, p.last, p.query),
            ("nfs://h:1/export/logs", "*.gz", "?version=3")
        );
        assert!(split("nfs://host").is_none());
        assert!(is_pattern("a*") && is_pattern("[ab]c") && is_pattern("one%3f"));
        assert!(!is_pattern("plain%20name"));
    }

    #[test]
    fn patterns_match_as_the_shell_matches() {
        let p = CString::new(unescape("f%3F.[ch]")).unwrap();
        assert!(fnmatch(&p, b"f1.c") && fnmatch(&p, b"fx.h"));
        assert!(!fnmatch(&p, b"f12.c") && !fnmatch(&p, b"f1.o"));
        let star = CString::new("*").unwrap();
        assert!(fnmatch(&star, b"visible") && !fnmatch(&star, b".hidden"));
        assert_eq!(escape(b"a b%?#/\xe9"), "a b%25%3F%23%2F%E9");
    }
}
