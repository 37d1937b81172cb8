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
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nfsio_fuse::{MountOptions, Mounted};

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
    /// Comma-separated options: ro, rw, actimeo=SECONDS (how long the kernel caches
    /// attributes and names; default 1), lookupcache=all|positive (positive: names that do
    /// not exist are not cached).
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

/// The most seconds `actimeo=` accepts (the Linux client's attribute cache tops out at 600 s
/// for acregmax and acdirmax by default; a day is far beyond any sensible value).
const MAX_ACTIMEO_S: u64 = 86_400;

/// Which lookups the kernel may cache (`lookupcache=`, as the Linux NFS client names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LookupCache {
    /// Names that exist and names that do not.
    All,
    /// Only names that exist: a name created elsewhere shows at the next lookup.
    Positive,
}

fn mount_options(args: &MountArgs) -> Result<MountOptions, Failure> {
    let mut options = MountOptions::new(args.url.clone());
    let mut actimeo: Option<Duration> = None;
    let mut lookupcache = LookupCache::All;
    for option in args.options.iter().flat_map(|list| list.split(',')) {
        match option.trim() {
            "" => {}
            // Each request carries its caller's credentials: other users act as themselves.
            "allow_other" => {
                user_may_allow_other()?;
                options.allow_other = true;
            }
            "ro" => options.read_only = true,
            "rw" => options.read_only = false,
            "lookupcache=all" => lookupcache = LookupCache::All,
            "lookupcache=positive" => lookupcache = LookupCache::Positive,
            other => match other.strip_prefix("actimeo=") {
                Some(value) => actimeo = Some(actimeo_seconds(value)?),
                None => {
                    return Err(Failure::message(format!(
                        "unknown mount option {other:?} (known: ro, rw, allow_other, \
                         actimeo=SECONDS, lookupcache=all|positive)"
                    )));
                }
            },
        }
    }
    if let Some(ttl) = actimeo {
        options.settings.ttl = ttl;
        options.settings.negative_ttl = ttl;
    }
    if lookupcache == LookupCache::Positive {
        options.settings.negative_ttl = Duration::ZERO;
    }
    Ok(options)
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

/// The value of `actimeo=`: whole seconds, at most [`MAX_ACTIMEO_S`].
fn actimeo_seconds(value: &str) -> Result<Duration, Failure> {
    match value.parse::<u64>() {
        Ok(seconds) if seconds <= MAX_ACTIMEO_S => Ok(Duration::from_secs(seconds)),
        _ => Err(Failure::message(format!(
            "actimeo={value}: expected whole seconds from 0 to {MAX_ACTIMEO_S}"
        ))),
    }
}

/// `nfsio mount`.
pub async fn run(args: MountArgs, verbose: u8) -> Result<(), Failure> {
    let options = mount_options(&args)?;
    if !args.foreground {
        return tokio::task::block_in_place(|| run_background(&args, verbose));
    }
    let mp = args.mountpoint.display().to_string();
    let mut termination = Termination::install()
        .map_err(|e| Failure::message(format!("cannot watch SIGINT and SIGTERM: {e}")))?;
    if nfsio_fuse::clear_stale(&args.mountpoint).map_err(|e| Failure::message(e.to_string()))? {
        eprintln!("nfsio mount: {mp}: cleared a stale mount (transport endpoint is not connected)");
    }
    let client = crate::connect(&args.url).await?;
    let runtime = tokio::runtime::Handle::current();
    let mounted = tokio::task::block_in_place(|| {
        nfsio_fuse::mount(client.clone(), runtime, &args.mountpoint, options)
    })
    .map_err(|e| Failure::message(e.to_string()))?;
    if let Err(failure) = answers(&args.mountpoint).await {
        unmount(mounted)?;
        return Err(failure);
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

/// Waits until a stat of `mountpoint` is answered (by the mount: the caller mounted it).
async fn answers(mountpoint: &Path) -> Result<(), Failure> {
    let path = mountpoint.to_owned();
    let stat = tokio::task::spawn_blocking(move || std::fs::metadata(path));
    let mp = mountpoint.display();
    match tokio::time::timeout(READY_TIMEOUT, stat).await {
        Ok(Ok(Ok(metadata))) if metadata.is_dir() => Ok(()),
        Ok(Ok(Ok(_))) => Err(Failure::message(format!(
            "{mp}: the mount's root is not a directory"
        ))),
        Ok(Ok(Err(error))) => Err(Failure::io(&mp.to_string(), error)),
        Ok(Err(error)) => Err(Failure::message(format!("{mp}: {error}"))),
        Err(_) => Err(Failure::message(format!(
            "{mp}: the mount did not answer within {READY_TIMEOUT:?}"
        ))),
    }
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

    fn parse(options: &[&str]) -> Result<MountOptions, Failure> {
        mount_options(&MountArgs {
            url: "nfs://127.0.0.1:9/export".to_owned(),
            mountpoint: PathBuf::from("/mnt"),
            foreground: true,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        })
    }

    #[test]
    fn cache_options_set_the_kernels_lifetimes() {
        let default = parse(&[]).expect("no options");
        assert_eq!(
            (default.settings.ttl, default.settings.negative_ttl),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
        let zero = parse(&["actimeo=0"]).expect("actimeo=0");
        assert_eq!(
            (zero.settings.ttl, zero.settings.negative_ttl),
            (Duration::ZERO, Duration::ZERO)
        );
        let positive = parse(&["lookupcache=positive,actimeo=5", "ro"]).expect("two lists");
        assert_eq!(
            (positive.settings.ttl, positive.settings.negative_ttl),
            (Duration::from_secs(5), Duration::ZERO)
        );
        assert!(positive.read_only);
        for bad in [
            "actimeo=",
            "actimeo=-1",
            "actimeo=1.5",
            "actimeo=86401",
            "lookupcache=none",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad} accepted");
        }
    }
}
