//! libnfs-compatible `nfs://` URLs.
//!
//! Users already have URLs in the form libnfs's tools (`nfs-cp`, `nfs-cat`) accept, so nfsio
//! takes the same: `nfs://host[:port]/path?version=3&nfsport=N&mountport=N&uid=N&gid=N`, and
//! libnfs's `timeo=` (tenths of a second per try) and `retrans=` (retransmissions before a
//! call fails). The path names the export followed by a path inside it; which part is the
//! export is decided at connect time from the server's export list. `nfs://host:port/export`
//! is enough for `nfsio serve`, which answers MOUNT on its NFS port.

use std::fmt;

use thiserror::Error;

/// Why a string is not a usable `nfs://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlError {
    /// The URL does not start with `nfs://`.
    #[error("not an nfs:// URL: {0}")]
    Scheme(String),
    /// No host between `nfs://` and the path.
    #[error("no host in URL: {0}")]
    NoHost(String),
    /// A port or numeric parameter is not a number in range.
    #[error("bad value for {key} in URL: {value}")]
    BadNumber {
        /// The parameter.
        key: &'static str,
        /// What was given.
        value: String,
    },
    /// A `version=` other than 3.
    #[error("only NFS version 3 is supported, the URL asks for version {0}")]
    Version(String),
    /// A malformed `%` escape.
    #[error("bad percent-escape in URL: {0}")]
    Escape(String),
    /// A query parameter nfsio does not know.
    #[error("unknown URL parameter {0:?}")]
    UnknownParameter(String),
}

/// A parsed `nfs://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// The NFS port: `nfsport=` or the URL's `:port`; None asks the portmapper.
    pub nfs_port: Option<u16>,
    /// The MOUNT port: `mountport=`; None asks the portmapper.
    pub mount_port: Option<u16>,
    /// The absolute path: export path followed by the path inside the export, as the bytes
    /// its percent-escapes name (a name on the server need not be UTF-8: `%E9` is the byte
    /// 0xE9). [`NfsUrl::path_text`] shows it.
    pub path: Vec<u8>,
    /// AUTH_SYS uid (`uid=`); None uses the process's effective uid.
    pub uid: Option<u32>,
    /// AUTH_SYS gid (`gid=`); None uses the process's effective gid.
    pub gid: Option<u32>,
    /// `timeo=`: how long one try of a call waits for its reply, in tenths of a second (as
    /// in libnfs and Linux's nfs(5)); None keeps the transport's default.
    pub timeo_ds: Option<u32>,
    /// `retrans=`: retransmissions after which a call fails with ETIMEDOUT (a soft mount);
    /// None retries forever (a hard mount).
    pub retrans: Option<u32>,
}

fn number<T: std::str::FromStr>(key: &'static str, value: &str) -> Result<T, UrlError> {
    value.parse().map_err(|_| UrlError::BadNumber {
        key,
        value: value.to_owned(),
    })
}

fn percent_decode(text: &str) -> Result<Vec<u8>, UrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly (`from_str_radix` alone would take `%+1`).
            let hex = text
                .get(i + 1..i + 3)
                .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| UrlError::Escape(text.to_owned()))?;
            let byte =
                u8::from_str_radix(hex, 16).map_err(|_| UrlError::Escape(text.to_owned()))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// `path` as it is written in a URL that parses back to the same bytes: UTF-8 text as it
/// is, and `%XX` for `%`, `?`, `#`, control bytes and bytes that are not UTF-8.
pub fn encode_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            if matches!(c, '%' | '?' | '#') || c.is_ascii_control() {
                out.push_str(&format!("%{:02X}", c as u32));
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl NfsUrl {
    /// Parses a URL.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let rest = url
            .strip_prefix("nfs://")
            .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i..]),
            None => (before_query, "/"),
        };
        // libnfs accepts user@host; the user part carries nothing we use.
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, tail) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::NoHost(url.to_owned()))?;
            let port = tail.strip_prefix(':');
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost(url.to_owned()));
        }
        let mut parsed = Self {
            host: host.to_owned(),
            nfs_port: port.map(|p| number("port", p)).transpose()?,
            mount_port: None,
            path: normalize_path(&percent_decode(path)?),
            uid: None,
            gid: None,
            timeo_ds: None,
            retrans: None,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "version" => {
                    if value != "3" {
                        return Err(UrlError::Version(value.to_owned()));
                    }
                }
                "nfsport" => parsed.nfs_port = Some(number("nfsport", value)?),
                "mountport" => parsed.mount_port = Some(number("mountport", value)?),
                "uid" => parsed.uid = Some(number("uid", value)?),
                "gid" => parsed.gid = Some(number("gid", value)?),
                "timeo" => {
                    let timeo: u32 = number("timeo", value)?;
                    if timeo == 0 {
                        return Err(UrlError::BadNumber {
                            key: "timeo",
                            value: value.to_owned(),
                        });
                    }
                    parsed.timeo_ds = Some(timeo);
                }
                "retrans" => parsed.retrans = Some(number("retrans", value)?),
                // libnfs tuning knobs whose job nfsio does its own way (its cache, its
                // readahead, its reconnects) are accepted and have no effect.
                "readahead"
                | "pagecache"
                | "debug"
                | "auto-traverse-mounts"
                | "if"
                | "autoreconnect"
                | "tcp-syncnt"
                | "xprtsec" => {}
                other => return Err(UrlError::UnknownParameter(other.to_owned())),
            }
        }
        Ok(parsed)
    }

    /// The same server with another path (bytes: a name need not be UTF-8).
    pub fn with_path(&self, path: impl AsRef<[u8]>) -> Self {
        Self {
            path: normalize_path(path.as_ref()),
            ..self.clone()
        }
    }

    /// The path as a URL writes it (see [`encode_path`]): for messages and for URLs made
    /// from this one.
    pub fn path_text(&self) -> String {
        encode_path(&self.path)
    }
}

/// Collapses repeated slashes and `.` components, keeps a leading `/`, drops a trailing one.
/// `..` is kept as a component (the server decides what it means).
pub fn normalize_path(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    for component in components(path) {
        out.push(b'/');
        out.extend_from_slice(component);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `path` without trailing slashes.
pub(crate) fn trim_end_slashes(path: &[u8]) -> &[u8] {
    let kept = path.len() - path.iter().rev().take_while(|b| **b == b'/').count();
    &path[..kept]
}

/// `path` without leading slashes.
pub(crate) fn trim_start_slashes(path: &[u8]) -> &[u8] {
    &path[path.iter().take_while(|b| **b == b'/').count()..]
}

/// The components of a `/`-separated path, without empty names and `.`.
pub(crate) fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

impl fmt::Display for NfsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "nfs://[{}]{}?version=3", self.host, self.path_text())?;
        } else {
            write!(f, "nfs://{}{}?version=3", self.host, self.path_text())?;
        }
        if let Some(port) = self.nfs_port {
            write!(f, "&nfsport={port}")?;
        }
        if let Some(port) = self.mount_port {
            write!(f, "&mountport={port}")?;
        }
        if let Some(uid) = self.uid {
            write!(f, "&uid={uid}")?;
        }
        if let Some(gid) = self.gid {
            write!(f, "&gid={gid}")?;
        }
        if let Some(timeo) = self.timeo_ds {
            write!(f, "&timeo={timeo}")?;
        }
        if let Some(retrans) = self.retrans {
            write!(f, "&retrans={retrans}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libnfs_form() {
        let url = NfsUrl::parse(
            "nfs://127.0.0.1/export/dir/f%20x?version=3&nfsport=2049&mountport=20048&uid=5&gid=6",
        )
        .unwrap();
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.nfs_port, Some(2049));
        assert_eq!(url.mount_port, Some(20048));
        assert_eq!(url.path, b"/export/dir/f x");
        assert_eq!((url.uid, url.gid), (Some(5), Some(6)));
        let again = NfsUrl::parse(&url.to_string().replace(' ', "%20")).unwrap();
        assert_eq!(again, url);
    }

    #[test]
    fn host_port_and_ipv6() {
        let url = NfsUrl::parse("nfs://server:2050//a//./b/").unwrap();
        assert_eq!(
            (url.host.as_str(), url.nfs_port, url.path.as_slice()),
            ("server", Some(2050), &b"/a/b"[..])
        );
        let url = NfsUrl::parse("nfs://[::1]:2049/x").unwrap();
        assert_eq!((url.host.as_str(), url.nfs_port), ("::1", Some(2049)));
        let url = NfsUrl::parse("nfs://h").unwrap();
        assert_eq!(url.path, b"/");
    }

    #[test]
    fn timeo_and_retrans() {
        let url = NfsUrl::parse("nfs://h:2049/export?timeo=15&retrans=3").unwrap();
        assert_eq!((url.timeo_ds, url.retrans), (Some(15), Some(3)));
        assert_eq!(NfsUrl::parse(&url.to_string()).unwrap(), url);
        for bad in ["timeo=0", "timeo=x", "retrans=-1", "timeo=99999999999"] {
            assert!(
                matches!(
                    NfsUrl::parse(&format!("nfs://h/x?{bad}")),
                    Err(UrlError::BadNumber { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            NfsUrl::parse("http://h/x"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            NfsUrl::parse("nfs:///x"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(
            NfsUrl::parse("nfs://h/x?version=4"),
            Err(UrlError::Version(_))
        ));
        assert!(matches!(
            NfsUrl::parse("nfs://h/x?nfsport=99999"),
            Err(UrlError::BadNumber { .. })
        ));
        assert!(matches!(
            NfsUrl::parse("nfs://h/x?bogus=1"),
            Err(UrlError::UnknownParameter(_))
        ));
        for bad in ["nfs://h/%zz", "nfs://h/%+1", "nfs://h/x%4"] {
            assert!(
                matches!(NfsUrl::parse(bad), Err(UrlError::Escape(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_that_are_not_utf8_are_their_bytes_and_print_back_as_escapes() {
        let url = NfsUrl::parse("nfs://h:2049/export/latin1-%E9/%25%3F%23%0A/caf%C3%A9").unwrap();
        assert_eq!(url.path, b"/export/latin1-\xe9/%?#\n/caf\xc3\xa9");
        assert_eq!(url.path_text(), "/export/latin1-%E9/%25%3F%23%0A/café");
        assert_eq!(NfsUrl::parse(&url.to_string()).unwrap(), url);
        let other = url.with_path(b"/export/\xff");
        assert_eq!(other.path_text(), "/export/%FF");
        assert_eq!(NfsUrl::parse(&other.to_string()).unwrap(), other);
    }
}
