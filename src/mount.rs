//! `nfsio mount URL MOUNTPOINT` and `nfsio umount MOUNTPOINT`: an export as a FUSE mount.
//!
//! In the foreground (`-f`) the command connects, mounts, checks that the mount answers (a
//! stat of the mountpoint, answered by this process), prints the ready line and serves until
//! SIGINT/SIGTERM or an unmount from outside; then it makes everything written durable
//! (`Client::shutdown`: flush and COMMIT), unmounts and ends. Without `-f` it starts itself
//! with `-f` in a process group of its own, and returns once that child has printed its
//! ready line on a pipe, so the line it prints is true when printed; a child that fails
//! before that leaves its error on stderr and the command fails. After its ready line the
//! child lets go of the caller's stdout and stderr (they point at /dev/null).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use nfsio_client::{Client, ClientOptions, NfsUrl};
use nfsio_fuse::{AttrTimeouts, LookupCache, MountOptions, Mounted};

use crate::output::outln;
use crate::report::Failure;
use crate::signals::Termination;

/// Arguments of `nfsio mount`.
#[derive(clap::Args)]
pub struct MountArgs {
    /// nfs://host[:port]/export[/path]
    url: String,
    /// An existing directory to mount on.
    mountpoint: PathBuf,
    /// Stay in the foreground (logs on stderr) until SIGINT, SIGTERM or an unmount.
    #[arg(short, long)]
    foreground: bool,
    /// Comma-separated options: ro, rw; the attribute cache of nfs(5): acregmin=S,
    /// acregmax=S, acdirmin=S, acdirmax=S (default 3, 60, 30, 60), actimeo=S (all four),
    /// noac (no attribute caching, synchronous writes), ac; cto (default) or nocto;
    /// lookupcache=all|positive|none; writeback_cache (the kernel's own write-back cache:
    /// single-client only); hard (default) or soft, timeo=DECISECONDS (per try, default
    /// 600), retrans=N (retransmissions before a soft call fails with EIO, default 2).
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
}

/// Arguments of `nfsio umount`.
#[derive(clap::Args)]
pub struct UmountArgs {
    /// The mountpoint.
    mountpoint: PathBuf,
}

/// Set by `nfsio mount` without `-f` on the process it starts: after its ready line that
/// process lets go of the caller's standard output and error, as a daemon does.
const DETACHED: &str = "NFSIO_MOUNT_DETACHED";

/// How long the mount may take to answer its first stat.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most seconds an attribute-cache option (`actimeo=`, `acregmin=` ...) accepts (the
/// Linux client caps acregmax and acdirmax at 600 s by default; a day is far beyond any
/// sensible value).
const MAX_ACTIMEO_S: u64 = 86_400;

/// nfs(5)'s default for TCP: "tries each TCP request twice" before a soft mount fails it.
const DEFAULT_RETRANS: u32 = 2;

/// The transport options of a mount: `hard` (default) or `soft`, `timeo=`, `retrans=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Transport {
    soft: bool,
    /// Per try, in tenths of a second (nfs(5)'s unit).
    timeo_ds: Option<u32>,
    /// Retransmissions before a soft call fails.
    retrans: Option<u32>,
}

impl Transport {
    /// The URL with these options applied (the mount options win over the URL's): the
    /// client's `timeo=` and `retrans=`, which make its transport soft.
    fn apply(&self, url: &mut NfsUrl) {
        if let Some(timeo_ds) = self.timeo_ds {
            url.timeo_ds = Some(timeo_ds);
        }
        url.retrans = if self.soft {
            Some(self.retrans.or(url.retrans).unwrap_or(DEFAULT_RETRANS))
        } else {
            None
        };
    }
}

/// What `-o` asks for.
struct Parsed {
    mount: MountOptions,
    transport: Transport,
}

fn mount_options(args: &MountArgs) -> Result<Parsed, Failure> {
    let mut options = MountOptions::new(args.url.clone());
    let mut transport = Transport::default();
    let mut noac = false;
    for option in args.options.iter().flat_map(|list| list.split(',')) {
        let settings = &mut options.settings;
        match option.trim() {
            "" => {}
            // Each request carries its caller's credentials: other users act as themselves.
            "allow_other" => {
                user_may_allow_other()?;
                options.allow_other = true;
            }
            "ro" => options.read_only = true,
            "rw" => options.read_only = false,
            "lookupcache=all" => settings.lookup_cache = LookupCache::All,
            "lookupcache=positive" | "lookupcache=pos" => {
                settings.lookup_cache = LookupCache::Positive;
            }
            "lookupcache=none" => settings.lookup_cache = LookupCache::None,
            "noac" => noac = true,
            "ac" => noac = false,
            "cto" => settings.cto = true,
            "nocto" => settings.cto = false,
            "writeback_cache" => settings.writeback_cache = true,
            "hard" => transport.soft = false,
            "soft" => transport.soft = true,
            other => keyed_option(other, settings, &mut transport)?,
        }
    }
    if noac {
        options.settings.attr_timeouts = AttrTimeouts::all(Duration::ZERO);
        options.settings.sync_writes = true;
    }
    Ok(Parsed {
        mount: options,
        transport,
    })
}

/// An ordinary user's `-o allow_other` needs `user_allow_other` in /etc/fuse.conf
/// (fusermount3 refuses it otherwise): said in one line before anything is tried.
fn user_may_allow_other() -> Result<(), Failure> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root || nfsio_fuse::user_allow_other() {
        return Ok(());
    }
    Err(Failure::message(
        "-o allow_other as an ordinary user needs a line user_allow_other in /etc/fuse.conf \
         (fusermount3 refuses it otherwise)"
            .to_owned(),
    ))
}

/// An option with a value: the attribute-cache lifetimes, `timeo=`, `retrans=`.
fn keyed_option(
    option: &str,
    settings: &mut nfsio_fuse::Settings,
    transport: &mut Transport,
) -> Result<(), Failure> {
    let (key, value) = option.split_once('=').unwrap_or((option, ""));
    let timeouts = &mut settings.attr_timeouts;
    match key {
        "acregmin" => timeouts.reg_min = lifetime_seconds(key, value)?,
        "acregmax" => timeouts.reg_max = lifetime_seconds(key, value)?,
        "acdirmin" => timeouts.dir_min = lifetime_seconds(key, value)?,
        "acdirmax" => timeouts.dir_max = lifetime_seconds(key, value)?,
        "actimeo" => *timeouts = AttrTimeouts::all(lifetime_seconds(key, value)?),
        "timeo" => transport.timeo_ds = Some(count(key, value, 1)?),
        "retrans" => transport.retrans = Some(count(key, value, 0)?),
        _ => {
            return Err(Failure::message(format!(
                "unknown mount option {option:?} (known: ro, rw, allow_other, acregmin=S, acregmax=S, \
                 acdirmin=S, acdirmax=S, actimeo=S, noac, ac, cto, nocto, \
                 lookupcache=all|positive|none, writeback_cache, hard, soft, timeo=DS, \
                 retrans=N)"
            )));
        }
    }
    Ok(())
}

/// The value of an attribute-cache option: whole seconds, at most [`MAX_ACTIMEO_S`].
fn lifetime_seconds(key: &str, value: &str) -> Result<Duration, Failure> {
    match value.parse::<u64>() {
        Ok(seconds) if seconds <= MAX_ACTIMEO_S => Ok(Duration::from_secs(seconds)),
        _ => Err(Failure::message(format!(
            "{key}={value}: expected whole seconds from 0 to {MAX_ACTIMEO_S}"
        ))),
    }
}

/// The most `timeo=` (tenths of a second) or `retrans=` accepts.
const MAX_COUNT: u32 = 1_000_000;

/// The value of `timeo=` or `retrans=`: a whole number from `min` to [`MAX_COUNT`].
fn count(key: &str, value: &str, min: u32) -> Result<u32, Failure> {
    match value.parse::<u32>() {
        Ok(n) if (min..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(Failure::message(format!(
            "{key}={value}: expected a whole number from {min} to {MAX_COUNT}"
        ))),
    }
}

/// `nfsio mount`.
pub async fn run(args: MountArgs, verbose: u8) -> Result<(), Failure> {
    let Parsed {
        mount: options,
        transport,
    } = mount_options(&args)?;
    if !args.foreground {
        return tokio::task::block_in_place(|| run_background(&args, verbose));
    }
    let mp = args.mountpoint.display().to_string();
    let mut termination = Termination::install()
        .map_err(|e| Failure::message(format!("cannot watch SIGINT and SIGTERM: {e}")))?;
    if nfsio_fuse::clear_stale(&args.mountpoint).map_err(|e| Failure::message(e.to_string()))? {
        eprintln!("nfsio mount: {mp}: cleared a stale mount (transport endpoint is not connected)");
    }
    let mut url = NfsUrl::parse(&args.url).map_err(|e| Failure::nfs(&args.url, e.into()))?;
    transport.apply(&mut url);
    let client = Client::connect_with(&url, ClientOptions::default())
        .await
        .map_err(|e| Failure::nfs(&args.url, e))?;
    let runtime = tokio::runtime::Handle::current();
    let mounted = tokio::task::block_in_place(|| {
        nfsio_fuse::mount(client.clone(), runtime, &args.mountpoint, options)
    })
    .map_err(|e| Failure::message(e.to_string()))?;
    // The mount's own readiness check: a stat answered by it (which also raises root's
    // readahead once the kernel has the mount).
    if let Err(error) = tokio::task::block_in_place(|| mounted.wait_ready(READY_TIMEOUT)) {
        unmount(mounted)?;
        return Err(Failure::message(error.to_string()));
    }
    outln!("nfsio mount: {} mounted on {mp}", args.url)?;
    if std::env::var_os(DETACHED).is_some() {
        detach_output();
    }
    let stop = tokio::select! {
        stop = termination.wait() => Some(stop),
        () = unmounted(&mounted) => None,
    };
    match stop {
        Some(stop) => tracing::info!(signal = stop.name(), "unmounting"),
        None => tracing::info!("unmounted from outside"),
    }
    let flushed = client.shutdown().await;
    unmount(mounted)?;
    let rest = client.shutdown().await;
    flushed.and(rest).map_err(|e| Failure::nfs(&args.url, e))
}

/// Resolves once the session has ended (an unmount from outside).
async fn unmounted(mounted: &Mounted) {
    while !mounted.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long an ending mount waits for its session after the lazy unmount: a file still open
/// on the mount keeps the session until it is closed, and everything written is durable by
/// then, so the process does not wait for it.
const SESSION_END_TIMEOUT: Duration = Duration::from_secs(1);

fn unmount(mounted: Mounted) -> Result<(), Failure> {
    tokio::task::block_in_place(|| mounted.unmount(SESSION_END_TIMEOUT))
        .map_err(|e| Failure::message(e.to_string()))
}

/// Points standard output and error at /dev/null, so that a caller reading them (a pipe,
/// `$(...)`) is not held open for the life of the mount. Messages after the ready line are
/// lost, as a daemon's are; `-f` keeps them.
fn detach_output() {
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return;
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    // SAFETY: dup2 of a valid descriptor onto 1 and 2; Rust's stdout/stderr handles keep
    // working on whatever those descriptors now name.
    unsafe {
        libc::dup2(fd, libc::STDOUT_FILENO);
        libc::dup2(fd, libc::STDERR_FILENO);
    }
}

/// Starts `nfsio mount -f` in a process group of its own and waits for its ready line.
fn run_background(args: &MountArgs, verbose: u8) -> Result<(), Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::message(format!("cannot find this program: {e}")))?;
    let mut command = Command::new(exe);
    if verbose > 0 {
        command.arg(format!("-{}", "v".repeat(usize::from(verbose))));
    }
    command
        .arg("mount")
        .arg(&args.url)
        .arg(&args.mountpoint)
        .arg("-f");
    for option in &args.options {
        command.arg("-o").arg(option);
    }
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .env(DETACHED, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::message(format!("cannot start the mount process: {e}")))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(Failure::message(
            "the mount process has no output pipe".into(),
        ));
    };
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    match read {
        Ok(n) if n > 0 && line.starts_with("nfsio mount: ") => {
            outln!("{} (pid {})", line.trim_end(), child.id())
        }
        _ => {
            let status = child.wait().map_err(|e| Failure::message(e.to_string()))?;
            Err(Failure::message(format!(
                "{}: the mount process ended before the mount answered ({status})",
                args.mountpoint.display()
            )))
        }
    }
}

/// `nfsio umount`: unmounts (umount2(2) as root, `fusermount3 -u` as an ordinary user); a
/// busy mount is detached (lazily unmounted) with a line saying so, and the mount process
/// ends once nothing uses it.
pub fn umount(args: &UmountArgs) -> Result<(), Failure> {
    let mp = args.mountpoint.display().to_string();
    match nfsio_fuse::unmount_with(&args.mountpoint, false) {
        Ok(()) => Ok(()),
        Err(error) if error.raw_os_error() == Some(libc::EBUSY) => {
            eprintln!("nfsio umount: {mp} is busy: detached (unmounted once no longer in use)");
            nfsio_fuse::unmount_with(&args.mountpoint, true).map_err(|e| Failure::io(&mp, e))
        }
        Err(error) => Err(Failure::io(&mp, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> Result<Parsed, Failure> {
        mount_options(&MountArgs {
            url: "nfs://127.0.0.1:9/export".to_owned(),
            mountpoint: PathBuf::from("/mnt"),
            foreground: true,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        })
    }

    fn settings(options: &[&str]) -> nfsio_fuse::Settings {
        parse(options).expect("valid options").mount.settings
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn attribute_cache_options_set_the_lifetimes() {
        let default = settings(&[]);
        assert_eq!(default.attr_timeouts, AttrTimeouts::LINUX);
        assert_eq!(
            (default.attr_timeouts.reg_min, default.attr_timeouts.dir_max),
            (3 * S, 60 * S)
        );
        assert!(default.cto && !default.sync_writes && !default.writeback_cache);
        let each = settings(&["acregmin=1,acregmax=2", "acdirmin=3,acdirmax=4"]);
        assert_eq!(
            each.attr_timeouts,
            AttrTimeouts {
                reg_min: S,
                reg_max: 2 * S,
                dir_min: 3 * S,
                dir_max: 4 * S,
            }
        );
        let all = settings(&["acregmin=1,actimeo=7"]);
        assert_eq!(all.attr_timeouts, AttrTimeouts::all(7 * S));
        let noac = settings(&["noac"]);
        assert_eq!(noac.attr_timeouts, AttrTimeouts::all(Duration::ZERO));
        assert!(noac.sync_writes, "noac makes writes synchronous");
        assert_eq!(noac.entry_ttl(), Duration::ZERO);
        assert!(!settings(&["noac,ac"]).sync_writes);
        for bad in [
            "actimeo=",
            "actimeo=-1",
            "actimeo=1.5",
            "actimeo=86401",
            "acregmin=x",
            "acdirmax",
            "lookupcache=some",
            "noac=1",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn lookup_cache_cto_and_writeback_options() {
        let all = settings(&["actimeo=5"]);
        assert_eq!((all.entry_ttl(), all.negative_ttl()), (5 * S, 5 * S));
        let positive = settings(&["lookupcache=positive,actimeo=5", "ro"]);
        assert_eq!(
            (positive.entry_ttl(), positive.negative_ttl()),
            (5 * S, Duration::ZERO)
        );
        assert!(parse(&["ro"]).expect("ro").mount.read_only);
        let none = settings(&["lookupcache=none"]);
        assert_eq!(none.lookup_cache, LookupCache::None);
        assert_eq!(
            (none.entry_ttl(), none.negative_ttl()),
            (Duration::ZERO, Duration::ZERO)
        );
        assert!(!settings(&["nocto"]).cto);
        assert!(settings(&["nocto,cto"]).cto);
        assert!(settings(&["writeback_cache"]).writeback_cache);
    }

    #[test]
    fn hard_is_the_default_and_soft_sets_the_clients_retransmissions() {
        let url = |options: &[&str]| {
            let mut url = NfsUrl::parse("nfs://127.0.0.1:9/export").expect("url");
            parse(options).expect("options").transport.apply(&mut url);
            (url.timeo_ds, url.retrans)
        };
        assert_eq!(url(&[]), (None, None), "hard: retried forever");
        assert_eq!(
            url(&["timeo=5"]),
            (Some(5), None),
            "hard with a per-try timeout"
        );
        assert_eq!(url(&["soft"]), (None, Some(DEFAULT_RETRANS)));
        assert_eq!(url(&["soft,timeo=10,retrans=1"]), (Some(10), Some(1)));
        assert_eq!(url(&["soft,retrans=1,hard"]), (None, None));
        let mut from_url =
            NfsUrl::parse("nfs://127.0.0.1:9/export?retrans=4").expect("url with retrans");
        parse(&["soft"])
            .expect("soft")
            .transport
            .apply(&mut from_url);
        assert_eq!(from_url.retrans, Some(4), "the URL's retrans= is kept");
        for bad in ["timeo=0", "timeo=x", "retrans=-1", "retrans=99999999"] {
            assert!(parse(&[bad]).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn allow_other_lets_other_users_in_where_the_user_may() {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match parse(&["allow_other"]) {
            Ok(parsed) => assert!(parsed.mount.allow_other),
            Err(_) => assert!(!root && !nfsio_fuse::user_allow_other(), "refused to root"),
        }
        assert!(!parse(&["ro"]).expect("ro").mount.allow_other);
    }
}
