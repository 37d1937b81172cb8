//! The mount fixture the FUSE test binaries share: `nfsio serve`'s server in-process (a
//! local-store export in a temporary directory, or the memory store for faults) and its
//! export mounted under a fresh temporary directory.
//!
//! Each mount is always unmounted, also when the test fails: [`Fixture`]'s drop detaches the
//! mount and joins its session. [`Fixture::local`] and [`Fixture::memory`] return None after
//! one skip line without /dev/fuse or root (and fail under CI=true).
//!
//! [`Fixture::ganesha`] mounts a private nfs-ganesha's export instead (for the heavier
//! suites), and [`Fixture::second_mount`] mounts the same export a second time, through a
//! client of its own (the two-mount consistency tests).

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nfsio_client::Client;
use nfsio_fuse::{MountOptions, Mounted, Settings};
use nfsio_server::MemStore;
use nfsio_testkit::TestServer;
use tokio::runtime::Runtime;

/// How long a test waits for anything.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A server, a client and a mount of its export. Fields drop in order: the mount first
/// (detached and joined while the runtime still runs its operations), the runtime last.
pub struct Fixture {
    mounted: Option<Mounted>,
    pub client: Client,
    server: Option<TestServer>,
    /// The nfs-ganesha serving the export (None over `nfsio serve`'s server); stopped on drop.
    ganesha: Option<nfsio_testkit::Ganesha>,
    /// The URL the client connected to.
    pub url: String,
    /// The local store's export directory (None over the memory store).
    pub export: Option<PathBuf>,
    pub mnt: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
    pub rt: Runtime,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mounted) = self.mounted.take()
            && let Err(error) = mounted.unmount(TIMEOUT)
        {
            eprintln!("unmount: {error}");
        }
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.stop());
        }
    }
}

/// Whether this machine can mount FUSE (root and /dev/fuse); prints the skip line if not.
fn can_mount() -> bool {
    if !Path::new("/dev/fuse").exists() {
        nfsio_testkit::skip_or_fail("/dev/fuse is missing");
        return false;
    }
    nfsio_testkit::require_root()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl Fixture {
    /// A local-store server on a temporary export, mounted.
    pub fn local() -> Option<Fixture> {
        Self::local_with(Settings::default())
    }

    /// A local-store server on a temporary export, mounted with `settings`.
    pub fn local_with(settings: Settings) -> Option<Fixture> {
        Self::local_mounted(
            MountOptions {
                settings,
                ..MountOptions::new("")
            },
            false,
        )
    }

    /// A local-store server that makes device nodes (`nfsio serve --devices`) on a
    /// temporary export, mounted with `allow_other` (every local user may use the mount),
    /// as pjdfstest's device and user-switching tests need.
    pub fn local_allow_other() -> Option<Fixture> {
        Self::local_mounted(
            MountOptions {
                allow_other: true,
                ..MountOptions::new("")
            },
            true,
        )
    }

    /// A local-store server on a temporary export (making device nodes when `devices`),
    /// mounted with `options` (its `fsname` becomes the server's URL).
    fn local_mounted(options: MountOptions, devices: bool) -> Option<Fixture> {
        if !can_mount() {
            return None;
        }
        let export = tempfile::tempdir().expect("tempdir");
        let state = tempfile::tempdir().expect("tempdir");
        let mut config = nfsio_testkit::server::config();
        config.export_dir = export.path().to_path_buf();
        config.state_dir = state.path().to_path_buf();
        // Small READDIRPLUS pages, so that a listing of hundreds takes several.
        config.service.limits.dtpref_bytes = 4096;
        config.devices = devices;
        let rt = runtime();
        let server = rt.block_on(TestServer::bind(config));
        let export_path = export.path().to_path_buf();
        Some(Self::mount(
            rt,
            server,
            Some(export_path),
            vec![export, state],
            options,
        ))
    }

    /// A memory-store server (faults to inject through `store`), mounted.
    pub fn memory(store: &Arc<MemStore>) -> Option<Fixture> {
        Self::memory_with(store, Settings::default())
    }

    /// A memory-store server, mounted with `settings`.
    pub fn memory_with(store: &Arc<MemStore>, settings: Settings) -> Option<Fixture> {
        if !can_mount() {
            return None;
        }
        let rt = runtime();
        let server = rt.block_on(TestServer::memory(Arc::clone(store), 14));
        Some(Self::mount(
            rt,
            server,
            None,
            Vec::new(),
            MountOptions {
                settings,
                ..MountOptions::new("")
            },
        ))
    }

    fn mount(
        rt: Runtime,
        server: TestServer,
        export: Option<PathBuf>,
        dirs: Vec<tempfile::TempDir>,
        options: MountOptions,
    ) -> Fixture {
        let url = server.url.clone();
        Self::mount_url(rt, Some(server), None, url, export, dirs, options)
    }

    /// An nfs-ganesha (`nfsio_testkit::Ganesha`, exporting a temporary directory), mounted.
    /// None after one skip line without root, /dev/fuse or ganesha (a failure under CI=true).
    pub fn ganesha() -> Option<Fixture> {
        if !can_mount() {
            return None;
        }
        let ganesha = nfsio_testkit::Ganesha::start()?;
        let url = ganesha.url("");
        let export = Some(ganesha.export_dir.clone());
        Some(Self::mount_url(
            runtime(),
            None,
            Some(ganesha),
            url,
            export,
            Vec::new(),
            MountOptions::new(""),
        ))
    }

    fn mount_url(
        rt: Runtime,
        server: Option<TestServer>,
        ganesha: Option<nfsio_testkit::Ganesha>,
        url: String,
        export: Option<PathBuf>,
        mut dirs: Vec<tempfile::TempDir>,
        options: MountOptions,
    ) -> Fixture {
        let client = rt.block_on(Client::connect(&url)).expect("connect");
        let mnt_dir = tempfile::tempdir().expect("tempdir");
        let mnt = mnt_dir.path().to_path_buf();
        dirs.push(mnt_dir);
        let options = MountOptions {
            fsname: url.clone(),
            ..options
        };
        let mounted = mount_client(&rt, client.clone(), &mnt, options);
        let fixture = Fixture {
            mounted: Some(mounted),
            client,
            server,
            ganesha,
            url,
            export,
            mnt,
            _dirs: dirs,
            rt,
        };
        fixture
            .mounted()
            .wait_ready(TIMEOUT)
            .expect("the mount answers");
        fixture
    }

    /// The same export mounted a second time on a fresh directory, through a client (and
    /// so a cache) of its own, with `settings`; unmounted when dropped (drop it before the
    /// fixture).
    pub fn second_mount(&self, settings: Settings) -> SecondMount {
        let client = self
            .rt
            .block_on(Client::connect(&self.url))
            .expect("connect");
        let dir = tempfile::tempdir().expect("tempdir");
        let mnt = dir.path().to_path_buf();
        let options = MountOptions {
            settings,
            ..MountOptions::new(self.url.clone())
        };
        let mounted = mount_client(&self.rt, client, &mnt, options);
        mounted
            .wait_ready(TIMEOUT)
            .expect("the second mount answers");
        SecondMount {
            mounted: Some(mounted),
            mnt,
            _dir: dir,
        }
    }

    pub fn mounted(&self) -> &Mounted {
        self.mounted.as_ref().expect("mounted")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    pub fn on_server(&self, name: &str) -> PathBuf {
        self.export.as_ref().expect("a local export").join(name)
    }

    /// Waits until `condition` holds, failing after [`TIMEOUT`] with `what`.
    pub fn wait_for(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Mounts `client` on `mnt` with `options` (whose `fsname` is the client's URL).
fn mount_client(rt: &Runtime, client: Client, mnt: &Path, options: MountOptions) -> Mounted {
    nfsio_fuse::mount(client, rt.handle().clone(), mnt, options).expect("mount")
}

/// A second mount of a fixture's export ([`Fixture::second_mount`]); unmounted on drop.
pub struct SecondMount {
    mounted: Option<Mounted>,
    pub mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl SecondMount {
    pub fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }
}

impl Drop for SecondMount {
    fn drop(&mut self) {
        if let Some(mounted) = self.mounted.take()
            && let Err(error) = mounted.unmount(TIMEOUT)
        {
            eprintln!("unmount of the second mount: {error}");
        }
    }
}

/// Whether the heavy variants were asked for (`NFSIO_HEAVY=1`); prints one skip line if not
/// (also under CI=true: they are for a run that asks for them).
pub fn heavy() -> bool {
    if std::env::var("NFSIO_HEAVY").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!(
        "skipped: {}: a heavy variant (set NFSIO_HEAVY=1 to run it)",
        nfsio_testkit::test_name()
    );
    false
}
