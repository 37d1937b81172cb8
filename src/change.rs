//! `chmod`, `chown`, `truncate` and `touch`: one SETATTR each, as coreutils' commands of those names
//! change a local file. Modes are octal (`644`) or symbolic (`u+x,go-w`, `a=r`); sizes take
//! coreutils' suffixes (K, M, G, T for powers of 1024; KB, MB, GB, TB for powers of 1000);
//! `touch` sets both times to the server's clock (what Linux's NFS client sends for
//! `utimensat(NULL)`), or to `-d`/`-t`'s time (see `when.rs`), creating a missing file
//! unless `-c`.

use clap::Args;
use nfsio_client::proto::nfs3::{CreateHow, Nfs3Status, NfsTime, Sattr, SetTime};
use nfsio_client::{Client, NfsError};

use crate::connect;
use crate::report::Failure;

/// `nfsio chmod`.
#[derive(Debug, Args)]
pub struct ChmodArgs {
    /// Octal (644) or symbolic (u+x,go-w) mode
    pub mode: String,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio chown`.
#[derive(Debug, Args)]
pub struct ChownArgs {
    /// OWNER, OWNER:GROUP, OWNER: (the owner's login group) or :GROUP; names of this
    /// machine or numbers
    pub owner: String,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio truncate`.
#[derive(Debug, Args)]
pub struct TruncateArgs {
    /// The new size: bytes, or with a suffix K, M, G, T (1024s) or KB, MB, GB, TB (1000s)
    #[arg(short = 's', long = "size")]
    pub size: String,
    /// Do not create a missing file.
    #[arg(short = 'c', long = "no-create")]
    pub no_create: bool,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio touch`.
#[derive(Debug, Args)]
pub struct TouchArgs {
    /// Do not create a missing file.
    #[arg(short = 'c', long = "no-create")]
    pub no_create: bool,
    /// This time instead of now: @SECONDS, YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS] (local).
    #[arg(short = 'd', long = "date", conflicts_with = "stamp")]
    pub date: Option<String>,
    /// This time instead of now: [[CC]YY]MMDDhhmm[.ss] (local), as POSIX touch -t.
    #[arg(short = 't')]
    pub stamp: Option<String>,
    /// nfs://host/export/path (one or more)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
}

/// `nfsio chmod`.
pub async fn chmod(args: &ChmodArgs) -> Result<(), Failure> {
    let change = ModeChange::parse(&args.mode)
        .ok_or_else(|| Failure::message(format!("invalid mode: '{}'", args.mode)))?;
    for url in &crate::glob::expand(&args.urls).await? {
        let client = connect(url).await?;
        let (handle, attributes) = client
            .lookup_path(client.url_path())
            .await
            .map_err(|e| Failure::nfs(url, e))?;
        let is_dir = attributes.file_type == nfsio_client::proto::nfs3::FileType::Directory;
        let mode = change.apply(attributes.mode & 0o7777, is_dir, umask());
        let sattr = Sattr {
            mode: Some(mode),
            ..Sattr::default()
        };
        client
            .setattr(&handle, sattr, None)
            .await
            .map_err(|e| Failure::nfs(url, e))?;
    }
    Ok(())
}

/// `nfsio chown`: one SETATTR of the owner and/or group; the server decides who may.
pub async fn chown(args: &ChownArgs) -> Result<(), Failure> {
    let (uid, gid) = parse_owner(&args.owner)
        .ok_or_else(|| Failure::message(format!("invalid user or group: '{}'", args.owner)))?;
    let sattr = Sattr {
        uid,
        gid,
        ..Sattr::default()
    };
    for url in &crate::glob::expand(&args.urls).await? {
        let client = connect(url).await?;
        let (handle, _) = client
            .lookup_path(client.url_path())
            .await
            .map_err(|e| Failure::nfs(url, e))?;
        client
            .setattr(&handle, sattr.clone(), None)
            .await
            .map_err(|e| Failure::nfs(url, e))?;
    }
    Ok(())
}

/// chown's OWNER[:[GROUP]] or :GROUP, as (uid, gid) to set.
fn parse_owner(text: &str) -> Option<(Option<u32>, Option<u32>)> {
    let (owner, group) = match text.split_once(':') {
        Some((owner, group)) => (owner, Some(group)),
        None => (text, None),
    };
    let user = if owner.is_empty() {
        None
    } else {
        Some(crate::ids::lookup_user(owner)?)
    };
    let gid = match group {
        None => None,
        // OWNER: takes the owner's login group.
        Some("") => Some(user?.1),
        Some(group) => Some(crate::ids::lookup_group(group)?),
    };
    let uid = user.map(|(uid, _)| uid);
    (uid.is_some() || gid.is_some()).then_some((uid, gid))
}

/// `nfsio truncate`.
pub async fn truncate(args: &TruncateArgs) -> Result<(), Failure> {
    let size_bytes = parse_size(&args.size)
        .ok_or_else(|| Failure::message(format!("invalid size: '{}'", args.size)))?;
    let sattr = Sattr {
        size: Some(size_bytes),
        ..Sattr::default()
    };
    for url in &crate::glob::expand(&args.urls).await? {
        set_or_create(url, sattr.clone(), !args.no_create).await?;
    }
    Ok(())
}

/// `nfsio touch`.
pub async fn touch(args: &TouchArgs) -> Result<(), Failure> {
    let given = match (&args.date, &args.stamp) {
        (Some(date), _) => Some(
            crate::when::parse_date(date)
                .ok_or_else(|| Failure::message(format!("invalid date format '{date}'")))?,
        ),
        (None, Some(stamp)) => Some(
            crate::when::parse_stamp(stamp)
                .ok_or_else(|| Failure::message(format!("invalid date format '{stamp}'")))?,
        ),
        (None, None) => None,
    };
    let time = match given {
        None => SetTime::ServerTime,
        Some(seconds) => SetTime::ClientTime(NfsTime {
            seconds: u32::try_from(seconds).map_err(|_| {
                Failure::message(format!("{seconds}: outside NFSv3's times (1970-2106)"))
            })?,
            nseconds: 0,
        }),
    };
    let sattr = Sattr {
        atime: time,
        mtime: time,
        ..Sattr::default()
    };
    for url in &crate::glob::expand(&args.urls).await? {
        set_or_create(url, sattr.clone(), !args.no_create).await?;
    }
    Ok(())
}

/// SETATTR of `sattr` on what `url` names; a missing file is created first (see
/// [`created`]) when `create`, and silently skipped otherwise.
async fn set_or_create(url: &str, sattr: Sattr, create: bool) -> Result<(), Failure> {
    let client = connect(url).await?;
    let path = client.url_path().to_owned();
    let handle = match client.lookup_path(&path).await {
        Ok((handle, _)) => handle,
        Err(error) if error.status() == Some(Nfs3Status::NoEnt) => {
            if !create {
                return Ok(());
            }
            match created(&client, &path).await {
                Ok(handle) => handle,
                Err(error) => return Err(Failure::nfs(url, error)),
            }
        }
        Err(error) => return Err(Failure::nfs(url, error)),
    };
    client
        .setattr(&handle, sattr, None)
        .await
        .map(drop)
        .map_err(|e| Failure::nfs(url, e))
}

/// A new empty regular file at `path`, mode 0666 less this process's umask as coreutils'
/// `touch` makes it (GUARDED); a file another client made meanwhile is taken as it is.
async fn created(
    client: &Client,
    path: &[u8],
) -> Result<nfsio_client::proto::nfs3::FileHandle, NfsError> {
    let (dir, name) = client.lookup_parent(path).await?;
    let how = CreateHow::Guarded(Sattr {
        mode: Some(0o666 & !umask()),
        ..Sattr::default()
    });
    match client.create(&dir, name, how).await {
        Ok(created) => Ok(created.handle),
        Err(error) if error.status() == Some(Nfs3Status::Exist) => {
            Ok(client.lookup(&dir, name).await?.object)
        }
        Err(error) => Err(error),
    }
}

/// This process's umask, read once: reading it means setting it, and for that moment a
/// file another thread created would get the wrong mode, so it is read only the first time,
/// which `main` does before any other thread starts.
pub(crate) fn umask() -> u32 {
    static MASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    // SAFETY: umask has no preconditions; the old mask is put straight back.
    *MASK.get_or_init(|| unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask
    })
}

/// A size as coreutils' `truncate -s` takes it (without its relative forms).
fn parse_size(text: &str) -> Option<u64> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let scale: u64 = match suffix {
        "" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// A mode change: an absolute octal mode, or symbolic clauses applied in order.
#[derive(Debug, PartialEq)]
enum ModeChange {
    Absolute(u32),
    Symbolic(Vec<Clause>),
}

/// One symbolic clause: who (bits of u, g, o), the operator, the permissions.
#[derive(Debug, PartialEq)]
struct Clause {
    who: u32,
    op: char,
    perms: String,
}

impl ModeChange {
    fn parse(text: &str) -> Option<ModeChange> {
        if !text.is_empty() && text.chars().all(|c| c.is_digit(8)) {
            let mode = u32::from_str_radix(text, 8).ok()?;
            return (mode <= 0o7777).then_some(ModeChange::Absolute(mode));
        }
        let mut clauses = Vec::new();
        for clause in text.split(',') {
            let op_at = clause.find(['+', '-', '='])?;
            let (who_text, rest) = clause.split_at(op_at);
            let mut who = 0;
            for c in who_text.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return None,
                };
            }
            let op = rest.chars().next()?;
            let perms = rest[1..].to_owned();
            if !perms.chars().all(|c| "rwxXst".contains(c)) {
                return None;
            }
            clauses.push(Clause { who, op, perms });
        }
        Some(ModeChange::Symbolic(clauses))
    }

    /// The new mode of a file whose mode is `mode` (a directory: `X` applies); a clause
    /// without who leaves the bits of `umask` alone, as coreutils' chmod does.
    fn apply(&self, mode: u32, is_dir: bool, umask: u32) -> u32 {
        let clauses = match self {
            ModeChange::Absolute(mode) => return *mode,
            ModeChange::Symbolic(clauses) => clauses,
        };
        let mut mode = mode;
        for clause in clauses {
            let who = if clause.who == 0 {
                0o7777 & !umask
            } else {
                clause.who
            };
            let mut bits = 0;
            for c in clause.perms.chars() {
                bits |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = bits & who;
            mode = match clause.op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => mode & !who | bits,
            };
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_apply_as_chmod_does() {
        let apply = |text: &str, mode: u32, dir: bool| {
            ModeChange::parse(text).unwrap().apply(mode, dir, 0o022)
        };
        assert_eq!(apply("644", 0o777, false), 0o644);
        assert_eq!(apply("u+x", 0o644, false), 0o744);
        assert_eq!(apply("go-w", 0o666, false), 0o644);
        assert_eq!(apply("a=r", 0o755, false), 0o444);
        assert_eq!(apply("u=rw,go=r", 0o777, false), 0o644);
        assert_eq!(apply("+x", 0o644, false), 0o755);
        assert_eq!(apply("+w", 0o444, false), 0o644, "the umask's bits stay");
        assert_eq!(apply("a+X", 0o644, false), 0o644);
        assert_eq!(apply("a+X", 0o644, true), 0o755);
        assert_eq!(apply("u+s", 0o755, false), 0o4755);
        assert_eq!(apply("+t", 0o755, true), 0o1755);
        assert!(ModeChange::parse("8").is_none());
        assert!(ModeChange::parse("u+q").is_none());
        assert!(ModeChange::parse("17777").is_none());
    }

    #[test]
    fn sizes_take_coreutils_suffixes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("10K"), Some(10240));
        assert_eq!(parse_size("3M"), Some(3 << 20));
        assert_eq!(parse_size("2KB"), Some(2000));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5Q"), None);
    }
}
