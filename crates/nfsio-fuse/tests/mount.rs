//! The FUSE mount end to end: `nfsio serve`'s server in-process (a local-store export in a
//! temporary directory, or the memory store for faults), the export mounted under a fresh
//! temporary directory, and everything checked through ordinary `std::fs` calls and, for
//! durability, on the server's export directory behind the mount's back.
//!
//! The fixture is `common::Fixture` (shared by the test binaries): each test's mount is always
//! unmounted, also when the test fails. The tests skip with one line without /dev/fuse or
//! root, and fail under CI=true.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::Fixture;
use nfsio_client::proto::nfs3::Nfs3Status;
use nfsio_fuse::Settings;
use nfsio_server::{Fault, MemStore};

/// This process's umask.
fn umask() -> u32 {
    // SAFETY: umask only swaps the process's mask; it is put back at once.
    let mask = unsafe { libc::umask(0o022) };
    unsafe { libc::umask(mask) };
    mask
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn written_bytes_read_back_and_are_on_the_server_after_close() {
    let Some(fx) = Fixture::local() else { return };
    let data = pattern(3 << 20, 7);
    fs::write(fx.path("big.bin"), &data).expect("write");
    assert_eq!(
        fs::read(fx.on_server("big.bin")).expect("on the server"),
        data
    );
    assert_eq!(fs::read(fx.path("big.bin")).expect("read back"), data);
    assert_eq!(
        fs::metadata(fx.path("big.bin")).expect("stat").len(),
        data.len() as u64
    );

    // An fsync'd write in place, the file still open.
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(fx.path("big.bin"))
        .expect("open");
    std::os::unix::fs::FileExt::write_at(&file, b"HELLO", 1000).expect("write_at");
    assert_eq!(file.metadata().expect("fstat").len(), data.len() as u64);
    file.sync_all().expect("fsync");
    let on_server = fs::read(fx.on_server("big.bin")).expect("on the server");
    assert_eq!(&on_server[1000..1005], b"HELLO");
    let mut head = [0u8; 4];
    file.read_exact(&mut head).expect("read");
    assert_eq!(head, data[..4]);
    drop(file);
    fx.wait_for("the release", || fx.mounted().open_files() == 0);
}

#[test]
fn create_new_is_exclusive_and_truncate_empties() {
    let Some(fx) = Fixture::local() else { return };
    let path = fx.path("excl.txt");
    let mut file = fs::File::create_new(&path).expect("create_new");
    file.write_all(b"first").expect("write");
    drop(file);
    let again = fs::File::create_new(&path).expect_err("exists");
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&path).expect("read"), b"first");
    let on_server = fs::metadata(fx.on_server("excl.txt")).expect("stat");
    assert_eq!(
        on_server.mode() & 0o7777,
        0o666 & !umask(),
        "create_new's mode"
    );
    let mtime = on_server.mtime();
    assert!(
        mtime > 1_600_000_000,
        "a time, not the exclusive create's verifier: {mtime}"
    );
    fs::File::create(&path).expect("O_TRUNC");
    assert_eq!(
        fs::metadata(fx.on_server("excl.txt")).expect("stat").len(),
        0
    );
}

#[test]
fn a_listing_of_many_entries_pages_through_to_the_end() {
    let Some(fx) = Fixture::local() else { return };
    fs::create_dir(fx.path("many")).expect("mkdir");
    assert!(fx.on_server("many").is_dir());
    let mut expected: Vec<String> = (0..700)
        .map(|i| format!("entry-with-a-longish-name-{i:05}"))
        .collect();
    for name in &expected {
        fs::File::create(fx.path("many").join(name)).expect("create");
    }
    let readdirplus_calls = || {
        let stats = fx.client.stats();
        let proc = nfsio_client::proto::nfs3::procs::READDIRPLUS;
        stats
            .proc_stats(nfsio_client::proto::nfs3::PROGRAM, proc)
            .map_or(0, |s| s.calls)
    };
    let before = readdirplus_calls();
    let mut listed: Vec<String> = fs::read_dir(fx.path("many"))
        .expect("read_dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    let pages = readdirplus_calls() - before;
    assert!(pages > 1, "one listing took {pages} READDIRPLUS pages");
    let sizes: Vec<u64> = fs::read_dir(fx.path("many"))
        .expect("read_dir")
        .map(|entry| entry.expect("entry").metadata().expect("stat").len())
        .collect();
    assert_eq!(sizes.len(), 700);
    assert_eq!(count_twice_with_rewinddir(&fx.path("many")), (702, 702));
}

/// Entries read by readdir(3) (`.` and `..` included), then again after rewinddir(3).
fn count_twice_with_rewinddir(dir: &Path) -> (usize, usize) {
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; the stream is used only while open and closed once.
    unsafe {
        let stream = libc::opendir(path.as_ptr());
        assert!(!stream.is_null(), "opendir");
        let count = || {
            let mut n = 0;
            while !libc::readdir(stream).is_null() {
                n += 1;
            }
            n
        };
        let first = count();
        libc::rewinddir(stream);
        let second = count();
        libc::closedir(stream);
        (first, second)
    }
}

#[test]
fn rename_unlink_and_rmdir_change_the_server_directory() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.path("a"), b"a").expect("write");
    fs::write(fx.path("b"), b"b").expect("write");
    fs::rename(fx.path("a"), fx.path("c")).expect("rename");
    assert!(!fx.on_server("a").exists());
    assert_eq!(fs::read(fx.on_server("c")).expect("renamed"), b"a");
    assert_eq!(fs::read(fx.path("c")).expect("renamed"), b"a");

    let renameat2 = |from: &str, to: &str, flags: libc::c_uint| {
        let from = std::ffi::CString::new(fx.path(from).as_os_str().as_bytes()).unwrap();
        let to = std::ffi::CString::new(fx.path(to).as_os_str().as_bytes()).unwrap();
        // SAFETY: two NUL-terminated paths that live across the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                flags,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().raw_os_error())
        }
    };
    assert_eq!(
        renameat2("b", "c", libc::RENAME_NOREPLACE),
        Err(Some(libc::EEXIST))
    );
    assert_eq!(
        renameat2("b", "c", libc::RENAME_EXCHANGE),
        Err(Some(libc::EINVAL))
    );
    assert_eq!(renameat2("b", "d", libc::RENAME_NOREPLACE), Ok(()));

    fs::remove_file(fx.path("c")).expect("unlink");
    assert!(!fx.on_server("c").exists());
    assert_eq!(
        fs::metadata(fx.path("c")).expect_err("gone").kind(),
        std::io::ErrorKind::NotFound
    );
    fs::create_dir(fx.path("dir")).expect("mkdir");
    fs::write(fx.path("dir/x"), b"x").expect("write");
    let full = fs::remove_dir(fx.path("dir")).expect_err("not empty");
    assert_eq!(full.raw_os_error(), Some(libc::ENOTEMPTY));
    fs::remove_file(fx.path("dir/x")).expect("unlink");
    fs::remove_dir(fx.path("dir")).expect("rmdir");
    assert!(!fx.on_server("dir").exists());
}

#[test]
fn symlinks_hard_links_and_fifos() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.path("target"), b"t").expect("write");
    std::os::unix::fs::symlink("target", fx.path("link")).expect("symlink");
    assert_eq!(
        fs::read_link(fx.path("link")).expect("readlink"),
        Path::new("target")
    );
    assert_eq!(
        fs::read_link(fx.on_server("link")).expect("on server"),
        Path::new("target")
    );
    assert_eq!(fs::read(fx.path("link")).expect("through the link"), b"t");

    fs::hard_link(fx.path("target"), fx.path("second")).expect("link");
    let first = fs::metadata(fx.path("target")).expect("stat");
    let second = fs::metadata(fx.path("second")).expect("stat");
    assert_eq!(first.nlink(), 2);
    assert_eq!(first.ino(), second.ino(), "one node per file handle");
    fs::remove_file(fx.path("second")).expect("unlink");
    fx.wait_for("nlink back to 1", || {
        fs::metadata(fx.path("target")).is_ok_and(|m| m.nlink() == 1)
    });

    let fifo = std::ffi::CString::new(fx.path("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    assert!(
        fs::symlink_metadata(fx.on_server("fifo"))
            .expect("on server")
            .file_type()
            .is_fifo()
    );
    assert!(
        fs::symlink_metadata(fx.path("fifo"))
            .expect("stat")
            .file_type()
            .is_fifo()
    );

    // A device: the server decides; nfsio serve makes none (NFS3ERR_NOTSUPP), which
    // mknod(2) answers EPERM.
    let dev = std::ffi::CString::new(fx.path("null").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    let made = unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    let error = std::io::Error::last_os_error();
    assert_eq!(
        (made, error.raw_os_error()),
        (-1, Some(libc::EPERM)),
        "{error}"
    );
    assert!(!fx.on_server("null").exists());
}

#[test]
fn setattr_changes_mode_size_and_times() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.path("f"), pattern(10_000, 1)).expect("write");
    fs::set_permissions(fx.path("f"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let on_server = fs::metadata(fx.on_server("f")).expect("stat");
    assert_eq!(on_server.mode() & 0o7777, 0o600);
    assert_eq!(
        fs::metadata(fx.path("f")).expect("stat").mode() & 0o7777,
        0o600
    );

    let file = fs::OpenOptions::new()
        .write(true)
        .open(fx.path("f"))
        .expect("open");
    file.set_len(3).expect("ftruncate");
    assert_eq!(file.metadata().expect("fstat").len(), 3);
    drop(file);
    assert_eq!(fs::metadata(fx.on_server("f")).expect("stat").len(), 3);
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(fx.path("f"))
        .expect("O_TRUNC");
    assert_eq!(fs::metadata(fx.on_server("f")).expect("stat").len(), 0);

    let then = std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let file = fs::File::options()
        .write(true)
        .open(fx.path("f"))
        .expect("open");
    file.set_times(fs::FileTimes::new().set_modified(then))
        .expect("utimes");
    drop(file);
    assert_eq!(
        fs::metadata(fx.on_server("f")).expect("stat").mtime(),
        1_500_000_000
    );
    // UTIME_NOW: the server's clock.
    let path = std::ffi::CString::new(fx.path("f").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; a null `times` means "now" for both.
    assert_eq!(
        unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), std::ptr::null(), 0) },
        0
    );
    let now = fs::metadata(fx.on_server("f")).expect("stat").mtime();
    assert!(now > 1_600_000_000, "mtime set to now: {now}");
}

/// The server clears the set-user-ID and set-group-ID bits at a change of owner (the mount
/// claims FUSE_HANDLE_KILLPRIV, so the kernel leaves it to the server as the Linux NFS client
/// does), and a chown costs one SETATTR, without a GETATTR before it.
#[test]
fn chown_is_one_setattr_and_the_server_clears_setuid() {
    let Some(fx) = Fixture::local() else { return };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: giving a file away needs root");
        return;
    }
    let path = fx.path("setuid.bin");
    fs::write(&path, b"#!/bin/sh\n").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o6755)).expect("chmod");
    assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o7777, 0o6755);
    let calls = |proc: u32| {
        fx.client
            .stats()
            .proc_stats(nfsio_client::proto::nfs3::PROGRAM, proc)
            .map_or(0, |s| s.calls)
    };
    use nfsio_client::proto::nfs3::procs::{GETATTR, SETATTR};
    let (getattrs, setattrs) = (calls(GETATTR), calls(SETATTR));
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("chown");
    assert_eq!(calls(GETATTR) - getattrs, 0, "GETATTRs for one chown");
    assert_eq!(calls(SETATTR) - setattrs, 1, "SETATTRs for one chown");
    let on_server = fs::metadata(fx.on_server("setuid.bin")).expect("stat on the server");
    assert_eq!((on_server.uid(), on_server.gid()), (65534, 65534));
    assert_eq!(on_server.mode() & 0o7777, 0o755, "set-ID bits after chown");
    assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o7777, 0o755);
}

#[test]
fn statfs_reports_the_servers_space() {
    let Some(fx) = Fixture::local() else { return };
    let path = std::ffi::CString::new(fx.mnt.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a zeroed statvfs that lives across the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
    assert!(
        stat.f_blocks > 0 && stat.f_bsize > 0,
        "blocks {}",
        stat.f_blocks
    );
    assert!(stat.f_bfree <= stat.f_blocks && stat.f_bavail <= stat.f_blocks);
    assert_eq!(stat.f_namemax, 255);
}

#[test]
fn forgotten_nodes_leave_the_inode_table() {
    let Some(fx) = Fixture::local() else { return };
    let baseline = fx.mounted().inode_count();
    fs::create_dir(fx.path("d")).expect("mkdir");
    for i in 0..20 {
        fs::write(fx.path(&format!("d/{i}")), b"x").expect("write");
    }
    assert!(fx.mounted().inode_count() >= baseline + 21);
    for i in 0..20 {
        fs::remove_file(fx.path(&format!("d/{i}"))).expect("unlink");
    }
    fs::remove_dir(fx.path("d")).expect("rmdir");
    fx.wait_for("the kernel's FORGETs", || {
        fx.mounted().inode_count() == baseline
    });
    fx.wait_for("the releases", || fx.mounted().open_files() == 0);
}

#[test]
fn a_write_back_error_reaches_fsync_as_errno() {
    let store = Arc::new(MemStore::new());
    let Some(fx) = Fixture::memory(&store) else {
        return;
    };
    let mut file = fs::File::create(fx.path("full.bin")).expect("create");
    store.inject(Fault::WriteError(Nfs3Status::NoSpc));
    file.write_all(&pattern(64 << 10, 3))
        .expect("write into the cache");
    let error = file.sync_all().expect_err("fsync reports the failed WRITE");
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    drop(file);

    // close(2) is where a program sees it, too (FLUSH).
    let mut file = fs::File::create(fx.path("full2.bin")).expect("create");
    store.inject(Fault::WriteError(Nfs3Status::NoSpc));
    file.write_all(&pattern(64 << 10, 4))
        .expect("write into the cache");
    let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
    // SAFETY: `fd` is an open descriptor this test owns; it is closed once.
    let closed = unsafe { libc::close(fd) };
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert_eq!((closed, errno), (-1, Some(libc::ENOSPC)));
    // Reported once: the client is fine afterwards.
    fs::write(fx.path("ok.bin"), b"fine").expect("write after the error");
    assert_eq!(fs::read(fx.path("ok.bin")).expect("read"), b"fine");
    fx.rt.block_on(fx.client.shutdown()).ok();
}

#[test]
fn changes_behind_the_mounts_back_show_within_the_kernels_ttl() {
    let Some(fx) = Fixture::local_with(Settings::with_lifetimes(Duration::from_secs(1))) else {
        return;
    };
    // A negative entry is cached, but only for its TTL.
    let missing = fs::metadata(fx.path("later.txt")).expect_err("not there yet");
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    fs::write(fx.on_server("later.txt"), b"made on the server").expect("behind the back");
    fx.wait_for("the new name", || fx.path("later.txt").exists());
    assert_eq!(
        fs::read(fx.path("later.txt")).expect("read"),
        b"made on the server"
    );

    // Close-to-open: a file changed on the server reads new after a reopen.
    fs::write(
        fx.on_server("later.txt"),
        b"changed, and longer than before",
    )
    .expect("change");
    fx.wait_for("the new contents", || {
        fs::read(fx.path("later.txt")).is_ok_and(|data| data == b"changed, and longer than before")
    });
}

/// With the kernel's caches at zero (`actimeo=0`), the next stat and the next lookup ask the
/// server: a size changed and a name made behind the mount's back show at once, not within a
/// TTL.
#[test]
fn with_zero_lifetimes_the_next_stat_and_lookup_ask_the_server() {
    let Some(fx) = Fixture::local_with(Settings::with_lifetimes(Duration::ZERO)) else {
        return;
    };
    fs::write(fx.path("grows.txt"), b"short").expect("write");
    assert_eq!(fs::metadata(fx.path("grows.txt")).expect("stat").len(), 5);
    fs::write(fx.on_server("grows.txt"), b"longer on the server").expect("behind the back");
    assert_eq!(fs::metadata(fx.path("grows.txt")).expect("stat").len(), 20);

    let missing = fs::metadata(fx.path("made.txt")).expect_err("not there yet");
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    fs::write(fx.on_server("made.txt"), b"new").expect("behind the back");
    assert_eq!(
        fs::metadata(fx.path("made.txt"))
            .expect("seen at once")
            .len(),
        3
    );
    fx.rt.block_on(fx.client.shutdown()).ok();
}

/// A file's (mtime, ctime) with nanoseconds, as stat(2) shows them.
fn times_of(metadata: &fs::Metadata) -> ((i64, i64), (i64, i64)) {
    (
        (metadata.mtime(), metadata.mtime_nsec()),
        (metadata.ctime(), metadata.ctime_nsec()),
    )
}

#[test]
fn stat_of_a_file_with_cached_writes_shows_the_writers_times() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.path("t"), b"old").expect("write");
    let file = fs::File::options()
        .read(true)
        .write(true)
        .open(fx.path("t"))
        .expect("open");
    let long_ago = std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    file.set_times(fs::FileTimes::new().set_modified(long_ago))
        .expect("utimes");
    let (mtime_before, ctime_before) = times_of(&file.metadata().expect("fstat"));
    assert_eq!(mtime_before.0, 1_500_000_000);

    // The bytes stay in nfsio's cache: stat must still show the write.
    std::os::unix::fs::FileExt::write_at(&file, b" and new", 3).expect("write_at");
    let written = file.metadata().expect("fstat after the write");
    assert_eq!(written.len(), 11);
    let (mtime_written, ctime_written) = times_of(&written);
    assert!(
        mtime_written > mtime_before,
        "mtime {mtime_written:?} not past {mtime_before:?}"
    );
    assert!(
        ctime_written > ctime_before,
        "ctime {ctime_written:?} not past {ctime_before:?}"
    );

    file.sync_all().expect("fsync");
    let synced = file.metadata().expect("fstat after fsync");
    assert_eq!(synced.len(), 11);
    let (mtime_synced, ctime_synced) = times_of(&synced);
    assert!(
        mtime_synced >= mtime_written && ctime_synced >= ctime_written,
        "times went back at fsync: {:?} then {:?}",
        (mtime_written, ctime_written),
        (mtime_synced, ctime_synced)
    );
    // The kernel asked again after the fsync (it refreshes nothing itself): the server's
    // times now, unless the WRITEs landed within its clock's granularity of the write.
    let (mtime_server, ctime_server) =
        times_of(&fs::metadata(fx.on_server("t")).expect("stat on the server"));
    assert_eq!(
        (mtime_synced, ctime_synced),
        (
            mtime_server.max(mtime_written),
            ctime_server.max(ctime_written)
        )
    );
    drop(file);
    fx.wait_for("the release", || fx.mounted().open_files() == 0);
}

/// A sequential read in small pieces reaches the mount as READs of 1 MiB, not of the
/// kernel's default readahead (128 KiB): as root the mount raises its device's readahead.
#[test]
fn a_sequential_read_arrives_as_reads_of_a_mebibyte() {
    let Some(fx) = Fixture::local() else { return };
    let data = pattern(8 << 20, 3);
    fs::write(fx.on_server("stream.bin"), &data).expect("seed");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || fx.mounted().readahead_kib().is_none() {
        eprintln!("skipped: only root's mount raises its readahead");
        return;
    }
    assert_eq!(fx.mounted().readahead_kib(), Some(1024));
    let before = fx.mounted().read_requests();
    let mut file = fs::File::open(fx.path("stream.bin")).expect("open");
    let mut piece = vec![0u8; 64 << 10];
    let mut back = Vec::with_capacity(data.len());
    loop {
        let n = file.read(&mut piece).expect("read");
        if n == 0 {
            break;
        }
        back.extend_from_slice(&piece[..n]);
    }
    assert!(back == data, "the bytes read back");
    let requests = fx.mounted().read_requests() - before;
    // 8 MiB in 1 MiB READs, and a few more for the readahead's ramp-up; 128 KiB READs
    // would be 64.
    assert!(requests <= 20, "{requests} READ requests for 8 MiB");
}

/// The kernel's page cache is the mount's cache of clean bytes: a file read through the
/// mount is not kept a second time in nfsio's cache, which holds about its readahead window
/// however long the file is.
#[test]
fn a_file_read_through_the_mount_is_not_cached_twice() {
    let Some(fx) = Fixture::local() else { return };
    let len = 96 << 20;
    let data = pattern(len, 5);
    fs::write(fx.on_server("twice.bin"), &data).expect("seed");
    let back = fs::read(fx.path("twice.bin")).expect("read");
    assert!(back == data, "the bytes read back");
    let clean = fx.mounted().client().cache_stats().clean_bytes;
    // At most 16 READs of 1 MiB in flight ahead of the reader, and what it has not passed.
    assert!(
        clean <= 32 << 20,
        "{clean} clean bytes still cached after reading {len}"
    );
}

/// Pages of `file` (a multiple of the page size long) in the kernel's page cache.
fn resident_pages(file: &fs::File, len: usize) -> usize {
    use std::os::fd::AsRawFd;
    // SAFETY: a shared read-only mapping of an open file, looked at with mincore (which
    // touches no page) and unmapped before return.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(map, libc::MAP_FAILED, "mmap");
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let mut vec = vec![0u8; len.div_ceil(page)];
        assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0, "mincore");
        libc::munmap(map, len);
        vec.iter().filter(|&&byte| byte & 1 != 0).count()
    }
}

/// A write-only open is direct I/O: its writes leave no second copy of the file in the
/// kernel's pages (an O_RDWR open's do), and pages other opens hold stay coherent with it.
#[test]
fn write_only_opens_bypass_the_kernels_pages_and_keep_them_coherent() {
    let Some(fx) = Fixture::local() else { return };
    let len = 1 << 20;
    let data = pattern(len, 9);
    for (name, read_too) in [("wronly.bin", false), ("rdwr.bin", true)] {
        fs::write(fx.path(name), b"").expect("create");
        // Opened before the write, so that no open drops the pages in between.
        let reader = fs::File::open(fx.path(name)).expect("open");
        let mut file = fs::OpenOptions::new()
            .read(read_too)
            .write(true)
            .open(fx.path(name))
            .expect("open the writer");
        file.write_all(&data).expect("write");
        let resident = resident_pages(&reader, len);
        drop(file);
        if read_too {
            assert!(resident > 0, "an O_RDWR writer's pages stay cached");
        } else {
            assert_eq!(
                resident, 0,
                "a write-only writer's bytes are not in the kernel's pages"
            );
        }
    }

    // A reader's cached pages and mapping see a write-only writer's bytes at once.
    let reader = fs::File::open(fx.path("wronly.bin")).expect("open");
    let mut head = [0u8; 4];
    std::os::unix::fs::FileExt::read_exact_at(&reader, &mut head, 0).expect("read");
    assert_eq!(head, data[..4]);
    assert!(
        resident_pages(&reader, len) > 0,
        "the reader's pages are cached"
    );
    let writer = fs::OpenOptions::new()
        .write(true)
        .open(fx.path("wronly.bin"))
        .expect("open write-only");
    std::os::unix::fs::FileExt::write_all_at(&writer, b"XYZW", 0).expect("write");
    std::os::unix::fs::FileExt::read_exact_at(&reader, &mut head, 0).expect("read again");
    assert_eq!(
        &head, b"XYZW",
        "the reader sees the write-only writer's bytes"
    );
    drop(writer);
    assert_eq!(
        &fs::read(fx.on_server("wronly.bin")).expect("server")[..4],
        b"XYZW"
    );
}
