//! A mount's life: clearing a stale mount, mounting (mount(2) as root, see `direct.rs`;
//! `fusermount3` as an ordinary user, see `fusermount.rs`; then fuser's session on the
//! descriptor), waiting until the mount answers,
//! and unmounting (lazily, then joining the session).
//!
//! The session runs on fuser's threads (`n_threads`, with `clone_fd` where /dev/fuse can be
//! opened); the operations run on the tokio runtime handed in. Unmounting is
//! `umount2(MNT_DETACH)` (fuser 0.18.0's own unmount is a plain umount(2), which fails with
//! EBUSY while anything on the mount is in use), or `fusermount3 -u -z` where umount2 is not
//! allowed (EPERM: an ordinary user), after which the session's threads end once the kernel
//! lets go of the connection.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, SessionACL};
use nfsio_client::Client;
use tokio::runtime::Handle;

use crate::core::{Core, Settings};
use crate::direct;
use crate::error::MountError;
use crate::fs::NfsFs;
use crate::readahead;

/// How long [`Mounted::wait_ready`] and [`Mounted::unmount`] wait by default.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How a mount is made.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// The file system's name in /proc/mounts and df (the URL).
    pub fsname: String,
    /// Let every user reach the mount (`allow_other`), not only its owner. Each request's
    /// calls carry its caller's credentials, so every user acts as themselves on the server.
    pub allow_other: bool,
    /// Mount read-only.
    pub read_only: bool,
    /// FUSE threads reading requests (each with a cloned /dev/fuse fd).
    pub threads: usize,
    /// The consistency and caching settings.
    pub settings: Settings,
}

impl MountOptions {
    /// Defaults for a mount named `fsname`: owner only, read-write, 2 threads, the Linux
    /// NFS client's attribute caching and close-to-open.
    pub fn new(fsname: impl Into<String>) -> Self {
        Self {
            fsname: fsname.into(),
            allow_other: false,
            read_only: false,
            threads: 2,
            settings: Settings::default(),
        }
    }
}

/// A live mount. Dropping it unmounts (lazily) and joins the session, as
/// [`Mounted::unmount`] does, logging instead of returning errors.
pub struct Mounted {
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    /// This mount's device, so that unmounting never takes another mount made on the same
    /// directory since.
    device: Option<direct::Device>,
    core: Arc<Core>,
}

/// Mounts `client`'s export on `mountpoint`; the operations run on `runtime`. Returns once
/// the kernel has the mount (see [`Mounted::wait_ready`] for when it answers).
pub fn mount(
    client: Client,
    runtime: Handle,
    mountpoint: &Path,
    options: MountOptions,
) -> Result<Mounted, MountError> {
    let metadata = std::fs::metadata(mountpoint).map_err(|source| MountError::Mountpoint {
        path: mountpoint.to_owned(),
        source,
    })?;
    if !metadata.is_dir() {
        return Err(MountError::Mountpoint {
            path: mountpoint.to_owned(),
            source: io::Error::from(io::ErrorKind::NotADirectory),
        });
    }
    let core = Arc::new(Core::new(client, options.settings.clone()));
    let fs = NfsFs::new(Arc::clone(&core), runtime);
    let mut config = Config::default();
    config.acl = if options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    let fuse_error = |source| MountError::Fuse {
        path: mountpoint.to_owned(),
        source,
    };
    // The canonical path, as /proc/self/mountinfo shows the mount.
    let mountpoint =
        &std::fs::canonicalize(mountpoint).map_err(|source| MountError::Mountpoint {
            path: mountpoint.to_owned(),
            source,
        })?;
    let session = if is_root() {
        root_session(fs, mountpoint, &options, config)
    } else {
        user_session(fs, mountpoint, &options, config)
    };
    let session = session.map_err(fuse_error)?;
    let device = direct::device_at(mountpoint);
    core.invalidator
        .start(session.notifier())
        .map_err(fuse_error)?;
    let session = session.spawn().map_err(fuse_error)?;
    tracing::info!(mountpoint = %mountpoint.display(), fsname = %options.fsname, "mounted");
    Ok(Mounted {
        session: Some(session),
        mountpoint: mountpoint.to_owned(),
        device,
        core,
    })
}

/// Whether this process may mount with mount(2) itself (effective uid 0).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Root's session: our own mount(2) of a /dev/fuse descriptor (see `direct.rs` for why
/// not fuser's).
fn root_session(
    fs: NfsFs,
    mountpoint: &Path,
    options: &MountOptions,
    config: Config,
) -> io::Result<fuser::Session<NfsFs>> {
    let fd = direct::mount(
        mountpoint,
        &options.fsname,
        options.read_only,
        options.allow_other,
    )?;
    let acl = config.acl;
    fuser::Session::from_fd(fs, fd, acl, config).inspect_err(|_| {
        if let Err(error) = umount2(mountpoint, libc::MNT_DETACH) {
            tracing::warn!(%error, "unmount after a failed FUSE handshake");
        }
    })
}

/// An ordinary user's session: `fusermount3` mounts and hands back /dev/fuse. Each FUSE
/// thread gets a cloned descriptor only if this user can open /dev/fuse (cloning opens it);
/// otherwise the threads share the one descriptor.
fn user_session(
    fs: NfsFs,
    mountpoint: &Path,
    options: &MountOptions,
    mut config: Config,
) -> io::Result<fuser::Session<NfsFs>> {
    let mut list = vec![
        format!(
            "fsname={}",
            crate::fusermount::escape_option(&options.fsname)
        ),
        "subtype=nfsio".to_owned(),
        "nodev".to_owned(),
        "nosuid".to_owned(),
        if options.read_only { "ro" } else { "rw" }.to_owned(),
    ];
    if options.allow_other {
        list.push("allow_other".to_owned());
    }
    let fd = crate::fusermount::mount(mountpoint, &list.join(","))?;
    // SAFETY: a NUL-terminated literal path.
    config.clone_fd = unsafe { libc::access(c"/dev/fuse".as_ptr(), libc::R_OK | libc::W_OK) } == 0;
    let acl = config.acl;
    fuser::Session::from_fd(fs, fd, acl, config).inspect_err(|_| {
        // The mount exists but will never be served: take it away again.
        if let Err(error) = crate::fusermount::unmount(mountpoint, true) {
            tracing::warn!(%error, "unmount after a failed FUSE handshake");
        }
    })
}

impl Mounted {
    /// The mountpoint.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Waits until a stat of the mountpoint is answered by this mount (from a thread of its
    /// own, so a mount that hangs cannot hang the caller past `timeout`); then, as root,
    /// raises the kernel's readahead for the mount (`readahead.rs`).
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), MountError> {
        let path = self.mountpoint.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::metadata(&path));
        });
        let not_answering = |detail: String| MountError::NotAnswering {
            path: self.mountpoint.clone(),
            detail,
        };
        match rx.recv_timeout(timeout) {
            Ok(Ok(metadata)) if metadata.is_dir() => {
                self.raise_readahead();
                Ok(())
            }
            Ok(Ok(_)) => Err(not_answering("the root is not a directory".into())),
            Ok(Err(error)) => Err(not_answering(error.to_string())),
            Err(_) => Err(not_answering(format!("no answer within {timeout:?}"))),
        }
    }

    /// Raises the kernel's readahead for this mount (see `readahead.rs`), where allowed.
    fn raise_readahead(&self) {
        let Some(device) = self.device else { return };
        match readahead::raise(device, readahead::READAHEAD_KIB) {
            Ok(raised) => tracing::debug!(raised, "readahead {} KiB", readahead::READAHEAD_KIB),
            Err(error) => tracing::debug!(%error, "the kernel's readahead stays as it is"),
        }
    }

    /// The kernel's readahead for this mount in KiB, where its device can be read.
    pub fn readahead_kib(&self) -> Option<u32> {
        readahead::readahead_kib(self.device?).ok()
    }

    /// Nodes the kernel holds references to, the root included.
    pub fn inode_count(&self) -> usize {
        self.core.inodes().len()
    }

    /// Files open through the mount.
    pub fn open_files(&self) -> usize {
        self.core.handles.files_open()
    }

    /// READ requests the kernel has sent (reads its page cache did not answer).
    pub fn read_requests(&self) -> u64 {
        self.core
            .read_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Kernel cache invalidations queued for the notification thread (changes by other
    /// clients, moved appends).
    pub fn invalidations(&self) -> u64 {
        self.core.invalidator.queued()
    }

    /// The client the mount runs over.
    pub fn client(&self) -> &Client {
        &self.core.client
    }

    /// True once the session has ended (the mount was unmounted from outside, or the
    /// connection was aborted).
    pub fn is_finished(&self) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.guard.is_finished())
    }

    /// Unmounts (lazily) unless already unmounted, and waits up to `timeout` for the session
    /// threads to end (they end once nothing on the mount is in use any more).
    pub fn unmount(mut self, timeout: Duration) -> Result<(), MountError> {
        self.end(timeout)
    }

    fn end(&mut self, timeout: Duration) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let ours = self.device.is_some() && direct::device_at(&self.mountpoint) == self.device;
        let detached = if session.guard.is_finished() || !ours {
            Ok(())
        } else {
            detach(&self.mountpoint)
        };
        let deadline = Instant::now() + timeout;
        while !session.guard.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if session.guard.is_finished() {
            if let Err(error) = session.join() {
                tracing::warn!(%error, "the FUSE session ended with an error");
            }
        } else {
            tracing::warn!(
                mountpoint = %self.mountpoint.display(),
                "the FUSE session is still in use after the unmount; left to end on its own"
            );
        }
        detached
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(error) = self.end(READY_TIMEOUT) {
            tracing::warn!(%error, "unmount on drop");
        }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `umount2(path, MNT_DETACH)`, or `fusermount3 -u -z` where that is not allowed (EPERM:
/// an ordinary user's own mount): EINVAL (not a mount point) counts as done.
pub fn detach(path: &Path) -> Result<(), MountError> {
    unmount_with(path, true).or_else(|error| match error.raw_os_error() {
        Some(libc::EINVAL) => Ok(()),
        _ => Err(MountError::Unmount {
            path: path.to_owned(),
            source: error,
        }),
    })
}

/// Unmounts `path` (with `lazy`, detached: done at once, finished when nothing uses it): by
/// umount2(2), or through `fusermount3 -u` when umount2 answers EPERM (an ordinary user).
/// Errors as umount2's: EBUSY when in use (not lazy), EINVAL when nothing is mounted there.
pub fn unmount_with(path: &Path, lazy: bool) -> io::Result<()> {
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    match umount2(path, flags) {
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => {
            crate::fusermount::unmount(path, lazy)
        }
        done => done,
    }
}

/// `umount2(2)` of `path` with `flags`.
pub fn umount2(path: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Clears a stale mount at `path` (a FUSE mount whose daemon died: it answers ENOTCONN)
/// with a lazy unmount; true when there was one. Asked with statfs(2), which the kernel
/// always sends to the file system (a stat may be answered from its attribute cache).
pub fn clear_stale(path: &Path) -> Result<bool, MountError> {
    let c = c_path(path).map_err(|source| MountError::Mountpoint {
        path: path.to_owned(),
        source,
    })?;
    // SAFETY: a NUL-terminated path and a zeroed statfs buffer, both live across the call.
    let rc = unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut buf)
    };
    if rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOTCONN) {
        return Ok(false);
    }
    detach(path)?;
    Ok(true)
}
