//! The mount's consistency rules (nfs(5)'s, see the README's "Consistency and caching"):
//! close-to-open with FOPEN_KEEP_CACHE, another client's change seen in WCC data and in a
//! GETATTR and invalidated, the attribute and lookup lifetimes, `nocto`, O_APPEND at the
//! end of file as the writer sees it, O_SYNC/O_DSYNC and `noac` writes durable when
//! write(2) returns, and the kernel's writeback cache.
//!
//! "Behind the mount's back" is a change made on the server's storage directly (the local
//! store's export directory, or the memory store), as another client's would be.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

use common::Fixture;
use nfsio_fuse::{AttrTimeouts, LookupCache, Settings};
use nfsio_server::MemStore;

const S: Duration = Duration::from_secs(1);

/// `len` bytes of `byte`.
fn filled(byte: u8, len: usize) -> Vec<u8> {
    vec![byte; len]
}

/// Close-to-open: a file read twice without a change is read from the kernel's pages the
/// second time (FOPEN_KEEP_CACHE: no READ reaches the mount); changed behind the mount's
/// back, the next open reads the new bytes. (Counted are the kernel's READ requests to the
/// mount, not READs on the wire: nfsio's own cache would answer a re-read from memory
/// either way.)
#[test]
fn an_unchanged_file_keeps_its_pages_and_a_changed_one_reads_new_at_open() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.on_server("cto.bin"), filled(b'a', 64 << 10)).expect("seed");
    assert!(fs::read(fx.path("cto.bin")).expect("read") == filled(b'a', 64 << 10));
    let after_first = fx.mounted().read_requests();
    assert!(after_first > 0, "the first read reached the mount");
    assert!(fs::read(fx.path("cto.bin")).expect("again") == filled(b'a', 64 << 10));
    assert_eq!(
        fx.mounted().read_requests(),
        after_first,
        "an unchanged file is read from the kernel's pages"
    );
    fs::write(fx.on_server("cto.bin"), filled(b'b', 64 << 10)).expect("behind the back");
    assert!(
        fs::read(fx.path("cto.bin")).expect("after the change") == filled(b'b', 64 << 10),
        "the open saw the change and dropped the pages"
    );
    assert!(fx.mounted().read_requests() > after_first);
}

/// Close-to-open for directories: a directory replaced on the server (removed and made
/// again) while the kernel still holds its name is opened anew, as Linux does (the open's
/// GETATTR answers ESTALE and the kernel looks the path up again), instead of listing the
/// removed one (ESTALE from readdir; `tar -C DIR` could then create nothing in it).
#[test]
fn a_directory_replaced_on_the_server_is_listed_anew_at_open() {
    let Some(fx) = Fixture::local() else { return };
    let names = |path: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(path)
            .expect("opendir")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .into_string()
                    .expect("text")
            })
            .collect();
        names.sort();
        names
    };
    fs::create_dir(fx.on_server("d")).expect("mkdir");
    fs::write(fx.on_server("d/old"), b"1").expect("seed");
    assert_eq!(names(&fx.path("d")), ["old"]);
    fs::remove_file(fx.on_server("d/old")).expect("rm");
    fs::remove_dir(fx.on_server("d")).expect("rmdir");
    fs::create_dir(fx.on_server("d")).expect("mkdir again");
    fs::write(fx.on_server("d/new"), b"2").expect("seed again");
    assert_eq!(names(&fx.path("d")), ["new"], "the new directory is listed");
}

/// `nocto`: while the cached attributes are fresh an open does not ask the server, so a
/// change behind the mount's back is not seen (the kernel keeps its pages) — the trade
/// `nocto` makes. (Read with pread, without a stat: a stat after a read asks the server
/// for the atime the read invalidated, and would see the change.)
#[test]
fn nocto_opens_trust_fresh_attributes() {
    let settings = Settings {
        cto: false,
        ..Settings::with_lifetimes(60 * S)
    };
    let Some(fx) = Fixture::local_with(settings) else {
        return;
    };
    let read = || {
        let mut buf = vec![0; 4096];
        let file = File::open(fx.path("nocto.bin")).expect("open");
        file.read_exact_at(&mut buf, 0).expect("pread");
        buf
    };
    fs::write(fx.on_server("nocto.bin"), filled(b'a', 4096)).expect("seed");
    assert!(read() == filled(b'a', 4096), "the first read");
    fs::write(fx.on_server("nocto.bin"), filled(b'b', 4096)).expect("behind the back");
    assert!(
        read() == filled(b'a', 4096),
        "nocto: no GETATTR at open within the attribute lifetime"
    );
}

/// WCC data tells our changes from another client's: a SETATTR of ours on an unchanged
/// file invalidates nothing (its pre-op attributes are the cached ones), while one whose
/// pre-op attributes show another client's change drops the kernel's pages of the open
/// file (from the notification thread), so the same descriptor reads the new bytes
/// without a reopen.
#[test]
fn wcc_data_tells_our_changes_from_another_clients() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.on_server("wcc.bin"), filled(b'a', 4096)).expect("seed");
    let file = File::open(fx.path("wcc.bin")).expect("open");
    let mut buf = vec![0; 4096];
    file.read_exact_at(&mut buf, 0).expect("read");
    let before = fx.mounted().invalidations();
    fs::set_permissions(fx.path("wcc.bin"), fs::Permissions::from_mode(0o640)).expect("chmod");
    assert_eq!(
        fx.mounted().invalidations(),
        before,
        "our own change invalidates nothing"
    );

    fs::write(fx.on_server("wcc.bin"), filled(b'b', 4096)).expect("behind the back");
    file.read_exact_at(&mut buf, 0).expect("read cached");
    assert!(
        buf == filled(b'a', 4096),
        "the kernel's pages still hold the old bytes"
    );
    fs::set_permissions(fx.path("wcc.bin"), fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(
        fx.mounted().invalidations() > before,
        "another client's change"
    );
    fx.wait_for("the new bytes through the open descriptor", || {
        file.read_exact_at(&mut buf, 0).expect("read");
        buf == filled(b'b', 4096)
    });
}

/// Another client's change seen in a GETATTR (here at every stat: lifetimes zero) is
/// invalidated the same way.
#[test]
fn a_change_seen_by_a_getattr_drops_the_pages_of_an_open_file() {
    let Some(fx) = Fixture::local_with(Settings::with_lifetimes(Duration::ZERO)) else {
        return;
    };
    fs::write(fx.on_server("seen.bin"), filled(b'a', 4096)).expect("seed");
    let file = File::open(fx.path("seen.bin")).expect("open");
    let mut buf = vec![0; 4096];
    file.read_exact_at(&mut buf, 0).expect("read");
    fs::write(fx.on_server("seen.bin"), filled(b'b', 4096)).expect("behind the back");
    file.read_exact_at(&mut buf, 0).expect("read cached");
    assert!(
        buf == filled(b'a', 4096),
        "the kernel's pages still hold the old bytes"
    );
    file.metadata().expect("fstat: a GETATTR");
    fx.wait_for("the new bytes through the open descriptor", || {
        file.read_exact_at(&mut buf, 0).expect("read");
        buf == filled(b'b', 4096)
    });
}

/// The attribute lifetime reaches the kernel: within acregmin a stat is answered from the
/// kernel's cache (a change behind the mount's back does not show), with zero it is not.
#[test]
fn attributes_are_cached_for_their_lifetime() {
    let long = Settings {
        attr_timeouts: AttrTimeouts {
            reg_min: 60 * S,
            reg_max: 60 * S,
            ..AttrTimeouts::LINUX
        },
        ..Settings::default()
    };
    let Some(fx) = Fixture::local_with(long) else {
        return;
    };
    fs::write(fx.on_server("life.txt"), b"short").expect("seed");
    assert_eq!(fs::metadata(fx.path("life.txt")).expect("stat").len(), 5);
    fs::write(fx.on_server("life.txt"), b"longer on the server").expect("behind the back");
    assert_eq!(
        fs::metadata(fx.path("life.txt")).expect("stat").len(),
        5,
        "answered from the attribute cache within acregmin"
    );
}

/// `lookupcache=positive` and `none`: a name made behind the mount's back shows at the
/// next lookup although the directory's lifetime (acdirmin 30 s) has not run out; with
/// `all` the negative entry hides it.
#[test]
fn lookupcache_decides_whether_missing_names_are_cached() {
    for (cache, shows) in [
        (LookupCache::All, false),
        (LookupCache::Positive, true),
        (LookupCache::None, true),
    ] {
        let settings = Settings {
            lookup_cache: cache,
            ..Settings::default()
        };
        let Some(fx) = Fixture::local_with(settings) else {
            return;
        };
        assert!(!fx.path("later.txt").exists(), "{cache:?}: not there yet");
        fs::write(fx.on_server("later.txt"), b"new").expect("behind the back");
        assert_eq!(fx.path("later.txt").exists(), shows, "{cache:?}");
    }
}

/// O_APPEND writes land at the end of the file as the writer sees it: past bytes another
/// client appended behind the mount's back (the kernel's cached size is stale), and past
/// this client's own cached writes through another descriptor.
#[test]
fn appends_land_at_the_end_of_the_file() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.on_server("log.txt"), b"0123456789").expect("seed");
    let mut appender = OpenOptions::new()
        .append(true)
        .open(fx.path("log.txt"))
        .expect("open O_APPEND");
    let other = OpenOptions::new()
        .read(true)
        .write(true)
        .open(fx.path("log.txt"))
        .expect("open O_RDWR");
    assert_eq!(fs::metadata(fx.path("log.txt")).expect("stat").len(), 10);
    OpenOptions::new()
        .append(true)
        .open(fx.on_server("log.txt"))
        .and_then(|mut f| f.write_all(b"SERVER"))
        .expect("behind the back");
    appender.write_all(b"A").expect("append");
    other
        .write_all_at(b"B", 17)
        .expect("pwrite (cached, not yet on the server)");
    appender
        .write_all(b"C")
        .expect("append after the cached write");
    appender.sync_all().expect("fsync");
    drop((appender, other));
    assert_eq!(
        fs::read(fx.on_server("log.txt")).expect("on the server"),
        b"0123456789SERVERABC"
    );
    assert_eq!(
        fs::read(fx.path("log.txt")).expect("through the mount"),
        b"0123456789SERVERABC"
    );
}

/// Durable when write(2) returns: O_SYNC, O_DSYNC, and every write of a `noac` mount. The
/// memory store tells durable bytes (FILE_SYNC, or committed) from unstable ones.
#[test]
fn synchronous_writes_are_durable_when_write_returns() {
    let noac = Settings {
        sync_writes: true,
        ..Settings::with_lifetimes(Duration::ZERO)
    };
    for (what, settings, flags) in [
        ("O_SYNC", Settings::default(), libc::O_SYNC),
        ("O_DSYNC", Settings::default(), libc::O_DSYNC),
        ("noac", noac, 0),
    ] {
        let store = Arc::new(MemStore::new());
        let Some(fx) = Fixture::memory_with(&store, settings) else {
            return;
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(flags)
            .open(fx.path("sync.bin"))
            .expect("create");
        let before = fx.client.cache_stats();
        let mut data = Vec::new();
        for piece in [b's', b't'] {
            file.write_all(&filled(piece, 50_000)).expect("write");
            data.extend(filled(piece, 50_000));
            let id = store.lookup_path("sync.bin").expect("on the server");
            let durable = store.durable_content(id).expect("a file");
            assert!(
                durable == data,
                "{what}: {} of {} bytes durable when write(2) returned",
                durable.len(),
                data.len()
            );
        }
        let after = fx.client.cache_stats();
        // Each write is the file's only unfinished business: FILE_SYNC WRITEs, no COMMIT.
        let writes = after.writes_sent - before.writes_sent;
        let commits = after.commits_sent - before.commits_sent;
        eprintln!("measure: {what}: 2 writes of 50,000 bytes: {writes} WRITEs, {commits} COMMITs");
        assert!(
            writes >= 2 && commits == 0,
            "{what}: {writes} WRITEs, {commits} COMMITs"
        );
        drop(file);
    }
}

/// `writeback_cache`: the kernel keeps the dirty pages and sends them gathered, so a few
/// thousand small write(2)s reach nfsio as far fewer WRITEs; without it each is one.
#[test]
fn the_kernels_writeback_cache_gathers_small_writes() {
    for writeback_cache in [false, true] {
        let settings = Settings {
            writeback_cache,
            ..Settings::default()
        };
        let Some(fx) = Fixture::local_with(settings) else {
            return;
        };
        let before = fx.client.cache_stats().app_writes;
        let mut file = File::create(fx.path("small.bin")).expect("create");
        let mut expected = Vec::new();
        for i in 0..1000u32 {
            let piece = format!("{i:015}\n");
            file.write_all(piece.as_bytes()).expect("write");
            expected.extend_from_slice(piece.as_bytes());
        }
        file.sync_all().expect("fsync");
        drop(file);
        let writes = fx.client.cache_stats().app_writes - before;
        eprintln!(
            "measure: 1000 writes of 16 bytes, writeback_cache {writeback_cache}: {writes} WRITEs"
        );
        if writeback_cache {
            assert!(
                writes < 100,
                "{writes} WRITEs with the kernel's writeback cache"
            );
        } else {
            assert!(writes >= 1000, "{writes} WRITEs without it");
        }
        assert!(fs::read(fx.on_server("small.bin")).expect("server") == expected);
    }
}

/// Close-to-open includes the size: a file that grew behind the mount's back while the
/// kernel held its attributes (acregmin) reads whole after the next open, although an open
/// reply carries no attributes (the open drops the kernel's cached ones).
#[test]
fn a_file_grown_elsewhere_reads_whole_after_open() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.on_server("grows.txt"), b"short").expect("seed");
    assert_eq!(fs::metadata(fx.path("grows.txt")).expect("stat").len(), 5);
    fs::write(fx.on_server("grows.txt"), b"much longer on the server").expect("behind the back");
    assert_eq!(
        fs::read(fx.path("grows.txt")).expect("read"),
        b"much longer on the server"
    );
    assert_eq!(fs::metadata(fx.path("grows.txt")).expect("stat").len(), 25);
}

/// A directory changed by another client, seen in the pre-op attributes of a REMOVE of
/// ours, drops the names the kernel holds in it (as Linux drops a directory's cached
/// lookups): a name created behind the mount's back shows at once, not after the negative
/// entry's lifetime (acdirmin, 30 s). Our own changes to the directory (REMOVE, MKDIR,
/// CREATE, SYMLINK, LINK) invalidate nothing.
#[test]
fn another_clients_change_to_a_directory_drops_its_cached_names() {
    let Some(fx) = Fixture::local() else { return };
    fs::create_dir(fx.on_server("d")).expect("dir");
    for name in ["y", "z"] {
        fs::write(fx.on_server(&format!("d/{name}")), b"").expect("seed");
    }
    assert!(!fx.path("d/x").exists(), "not there yet (a negative entry)");
    let before = fx.mounted().invalidations();
    // Each change of ours, then a stat of the directory (its new attributes seen).
    let stat_dir = || fs::metadata(fx.path("d")).expect("stat the directory");
    fs::remove_file(fx.path("d/z")).expect("remove ours");
    stat_dir();
    fs::create_dir(fx.path("d/sub")).expect("mkdir ours");
    stat_dir();
    fs::write(fx.path("d/new"), b"ours").expect("create ours");
    stat_dir();
    std::os::unix::fs::symlink("new", fx.path("d/link")).expect("symlink ours");
    stat_dir();
    fs::hard_link(fx.path("d/new"), fx.path("d/hard")).expect("link ours");
    stat_dir();
    fs::metadata(fx.path("d/new")).expect("stat: the linked file's new attributes");
    assert_eq!(fx.mounted().invalidations(), before, "our own changes");

    fs::write(fx.on_server("d/x"), b"new").expect("behind the back");
    assert!(!fx.path("d/x").exists(), "the negative entry hides it");
    fs::remove_file(fx.path("d/y")).expect("remove");
    fx.wait_for("the name made behind the mount's back", || {
        fx.path("d/x").exists()
    });
}
