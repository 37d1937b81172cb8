//! What one `cp` argument names: standard input or output, a local path, or a file on an
//! export. A local path is kept as the bytes the shell passed (a name need not be UTF-8);
//! an NFS path is a URL, which is text, its raw bytes percent-escaped.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::report::Failure;

/// One argument of `cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operand {
    /// `-`: standard input as a source, standard output as a destination.
    Std,
    /// A local path, exactly as given.
    Local(PathBuf),
    /// An `nfs://` URL (a short `nfs:PATH` already resolved against `NFSIO_URL`).
    Url(String),
}

impl Operand {
    /// Classifies `arg`: `-`, an `nfs://` URL or `nfs:PATH` (resolved), or else a local path.
    pub(crate) fn parse(arg: &OsStr) -> Result<Self, Failure> {
        if arg.as_bytes() == b"-" {
            return Ok(Self::Std);
        }
        match arg.to_str() {
            Some(text) if crate::short::is_nfs(text) => Ok(Self::Url(crate::short::resolve(text)?)),
            _ => Ok(Self::Local(PathBuf::from(arg))),
        }
    }

    /// The argument as messages show it (a local name that is not UTF-8 with its invalid
    /// bytes replaced, as `Path::display` does).
    pub(crate) fn shown(&self) -> Cow<'_, str> {
        match self {
            Self::Std => Cow::Borrowed("-"),
            Self::Local(path) => path.to_string_lossy(),
            Self::Url(url) => Cow::Borrowed(url),
        }
    }

    /// The URL, when the argument is one.
    pub(crate) fn url(&self) -> Option<&str> {
        match self {
            Self::Url(url) => Some(url),
            _ => None,
        }
    }

    /// The path part as bytes, for the name a copy into a directory gets and for a trailing
    /// `/`: a local path's bytes, or a URL's path without its query and still escaped.
    pub(crate) fn path_bytes(&self) -> &[u8] {
        match self {
            Self::Std => b"-",
            Self::Local(path) => path.as_os_str().as_bytes(),
            Self::Url(url) => url.split('?').next().unwrap_or(url).as_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_told_apart_and_local_bytes_kept() {
        let latin1 = OsStr::from_bytes(b"caf\xe9");
        assert_eq!(
            Operand::parse(latin1).unwrap(),
            Operand::Local(PathBuf::from(latin1))
        );
        assert_eq!(Operand::parse(OsStr::new("-")).unwrap(), Operand::Std);
        let url = "nfs://h/export/a%20b?nfsport=2049";
        assert_eq!(
            Operand::parse(OsStr::new(url)).unwrap(),
            Operand::Url(url.to_owned())
        );
        assert_eq!(
            Operand::Url(url.to_owned()).path_bytes(),
            b"nfs://h/export/a%20b"
        );
        assert_eq!(Operand::Local(PathBuf::from(latin1)).shown(), "caf\u{fffd}");
    }
}
