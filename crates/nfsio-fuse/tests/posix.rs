//! What a POSIX program expects of a file system beyond reading and writing, on a mount of
//! `nfsio serve`'s export (the shared `common::Fixture`, always unmounted): an unlinked
//! file that is still open (opened or made by open(O_CREAT)) stays usable, with no links,
//! until its last close (silly rename), lseek's SEEK_DATA/SEEK_HOLE, fallocate's
//! EOPNOTSUPP with posix_fallocate still working, fsync of a directory, and fcntl and
//! flock locks that conflict between processes on the mount.
//! Skipped with one line without /dev/fuse or root (a failure under CI=true).

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::process::Command;

use common::Fixture;

/// Names in the export's root directory that start with `.nfs`.
fn hidden_names(fx: &Fixture) -> Vec<String> {
    fs::read_dir(fx.export.as_ref().expect("a local export"))
        .expect("read the export")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".nfs"))
        .collect()
}

#[test]
fn an_unlinked_open_file_stays_usable_until_its_last_close() {
    let Some(fx) = Fixture::local() else { return };
    let path = fx.path("open.txt");
    fs::write(&path, b"before unlink\n").expect("write");
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    let second = fs::File::open(&path).expect("a second open");
    fs::remove_file(&path).expect("unlink");
    assert!(!path.exists(), "the name is gone");
    assert!(!fx.on_server("open.txt").exists());
    let hidden = hidden_names(&fx);
    assert_eq!(hidden.len(), 1, "one hidden name on the server: {hidden:?}");
    assert_eq!(hidden[0].len(), ".nfs".len() + 24, "{hidden:?}");

    // Readable and writable through what is open.
    let mut text = String::new();
    file.read_to_string(&mut text).expect("read after unlink");
    assert_eq!(text, "before unlink\n");
    file.write_all(b"after\n").expect("write after unlink");
    file.sync_all().expect("fsync after unlink");
    let mut all = Vec::new();
    (&second)
        .read_to_end(&mut all)
        .expect("read through the second open");
    assert_eq!(all, b"before unlink\nafter\n");

    // Unlinking the hidden name while the file is open: EBUSY, as on Linux.
    let error = fs::remove_file(fx.path(&hidden[0])).expect_err("EBUSY");
    assert_eq!(error.raw_os_error(), Some(libc::EBUSY));

    drop(file);
    assert_eq!(hidden_names(&fx).len(), 1, "still open once");
    drop(second);
    fx.wait_for("the hidden file's REMOVE", || hidden_names(&fx).is_empty());
    fx.wait_for("the releases", || fx.mounted().open_files() == 0);
}

/// Creates `name` with open(2) and `flags` (O_CREAT and more), writes to it, unlinks it
/// while open, and checks the open file keeps working until its close, as on Linux.
fn unlink_while_open_after_create(fx: &Fixture, name: &str, flags: libc::c_int) {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = fx.path(name);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(flags)
        .mode(0o644)
        .open(&path)
        .expect("open(O_CREAT)");
    file.write_all(b"made by create\n").expect("write");
    fs::remove_file(&path).expect("unlink while open");
    assert!(!path.exists(), "the name is gone");
    assert!(
        !fx.on_server(name).exists(),
        "the name is gone on the server"
    );
    assert_eq!(
        hidden_names(fx).len(),
        1,
        "one hidden name: {:?}",
        hidden_names(fx)
    );

    let stat = file.metadata().expect("fstat after unlink");
    assert_eq!(stat.nlink(), 0, "an unlinked file has no links");
    assert_eq!(stat.len(), 15);
    file.write_all(b"after\n").expect("write after unlink");
    let mut all = Vec::new();
    file.seek(SeekFrom::Start(0)).expect("seek");
    file.read_to_end(&mut all).expect("read after unlink");
    assert_eq!(all, b"made by create\nafter\n");
    file.sync_all().expect("fsync after unlink");
    // close(2) itself, so that its answer (FLUSH) is seen.
    let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
    // SAFETY: `fd` is the descriptor just taken from `file`, closed once.
    assert_eq!(
        unsafe { libc::close(fd) },
        0,
        "{}",
        std::io::Error::last_os_error()
    );
    fx.wait_for("the hidden file's REMOVE", || hidden_names(fx).is_empty());
    fx.wait_for("the releases", || fx.mounted().open_files() == 0);
}

#[test]
fn a_file_made_by_open_o_creat_and_unlinked_while_open_stays_usable() {
    let Some(fx) = Fixture::local() else { return };
    unlink_while_open_after_create(&fx, "created", libc::O_CREAT);
    unlink_while_open_after_create(&fx, "created-trunc", libc::O_CREAT | libc::O_TRUNC);
}

#[test]
fn a_file_made_by_open_o_excl_and_unlinked_while_open_stays_usable() {
    let Some(fx) = Fixture::local() else { return };
    unlink_while_open_after_create(&fx, "exclusive", libc::O_CREAT | libc::O_EXCL);
}

#[test]
fn an_open_hard_linked_file_counts_only_its_visible_names() {
    use std::os::unix::fs::MetadataExt;
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.path("first"), b"linked").expect("write");
    fs::hard_link(fx.path("first"), fx.path("second")).expect("link");
    let file = fs::File::open(fx.path("first")).expect("open");
    fs::remove_file(fx.path("first")).expect("unlink the first name");
    assert_eq!(hidden_names(&fx).len(), 1);
    assert_eq!(
        file.metadata().expect("fstat").nlink(),
        1,
        "the second name"
    );
    fs::remove_file(fx.path("second")).expect("unlink the second name");
    assert_eq!(hidden_names(&fx).len(), 2, "each name hidden");
    assert_eq!(file.metadata().expect("fstat").nlink(), 0, "no name left");
    let mut text = String::new();
    (&file).read_to_string(&mut text).expect("read");
    assert_eq!(text, "linked");
    drop(file);
    fx.wait_for("both hidden names' REMOVE", || hidden_names(&fx).is_empty());
}

#[test]
fn a_rename_onto_an_open_file_hides_the_replaced_one() {
    let Some(fx) = Fixture::local() else { return };
    fs::write(fx.path("target"), b"old target").expect("write");
    fs::write(fx.path("source"), b"new").expect("write");
    let open = fs::File::open(fx.path("target")).expect("open the target");
    fs::rename(fx.path("source"), fx.path("target")).expect("rename");
    assert_eq!(fs::read(fx.path("target")).expect("read"), b"new");
    assert_eq!(hidden_names(&fx).len(), 1);
    let mut old = String::new();
    (&open)
        .read_to_string(&mut old)
        .expect("read the replaced file");
    assert_eq!(old, "old target");
    drop(open);
    fx.wait_for("the hidden file's REMOVE", || hidden_names(&fx).is_empty());
    // Not open: a plain unlink and rename leave nothing hidden.
    fs::rename(fx.path("target"), fx.path("again")).expect("rename");
    fs::remove_file(fx.path("again")).expect("unlink");
    assert!(hidden_names(&fx).is_empty());
}

#[test]
fn seek_data_and_hole_see_the_writers_size() {
    let Some(fx) = Fixture::local() else { return };
    let mut file = fs::File::create(fx.path("seek.bin")).expect("create");
    file.write_all(&[7u8; 5000]).expect("write");
    // Not closed: the bytes may be only in nfsio's cache.
    let fd = file.as_raw_fd();
    // SAFETY: lseek on a descriptor this test owns.
    let seek = |offset: i64, whence: i32| {
        let at = unsafe { libc::lseek(fd, offset, whence) };
        if at < 0 {
            Err(std::io::Error::last_os_error().raw_os_error())
        } else {
            Ok(at)
        }
    };
    assert_eq!(seek(0, libc::SEEK_DATA), Ok(0));
    assert_eq!(seek(4999, libc::SEEK_DATA), Ok(4999));
    assert_eq!(seek(0, libc::SEEK_HOLE), Ok(5000));
    assert_eq!(seek(1234, libc::SEEK_HOLE), Ok(5000));
    assert_eq!(seek(5000, libc::SEEK_DATA), Err(Some(libc::ENXIO)));
    assert_eq!(seek(5000, libc::SEEK_HOLE), Err(Some(libc::ENXIO)));
    assert_eq!(seek(-1, libc::SEEK_DATA), Err(Some(libc::ENXIO)));
    assert_eq!(file.seek(SeekFrom::End(0)).expect("SEEK_END"), 5000);
}

#[test]
fn fallocate_is_eopnotsupp_and_posix_fallocate_still_extends() {
    let Some(fx) = Fixture::local() else { return };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(fx.path("alloc.bin"))
        .expect("create");
    file.write_all_at(b"abc", 0).expect("write");
    let fd = file.as_raw_fd();
    for mode in [
        libc::FALLOC_FL_KEEP_SIZE,
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        0,
    ] {
        // SAFETY: fallocate on a descriptor this test owns.
        let rc = unsafe { libc::fallocate(fd, mode, 0, 8192) };
        assert_eq!(rc, -1, "mode {mode:#x}");
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP),
            "mode {mode:#x}"
        );
    }
    // SAFETY: as above; glibc writes zeros itself when the file system cannot allocate.
    let rc = unsafe { libc::posix_fallocate(fd, 0, 10_000) };
    assert_eq!(rc, 0, "posix_fallocate: errno {rc}");
    drop(file);
    let data = fs::read(fx.on_server("alloc.bin")).expect("on the server");
    assert_eq!(data.len(), 10_000);
    assert_eq!(&data[..3], b"abc");
    assert!(data[3..].iter().all(|&b| b == 0));
}

#[test]
fn fsync_of_a_directory_succeeds() {
    let Some(fx) = Fixture::local() else { return };
    fs::create_dir(fx.path("d")).expect("mkdir");
    fs::write(fx.path("d/f"), b"x").expect("write");
    let dir = fs::File::open(fx.path("d")).expect("open the directory");
    dir.sync_all().expect("fsync of a directory");
    assert!(fx.on_server("d/f").exists());
}

/// Whether another process gets an exclusive fcntl (`posix`) or flock lock on `path` at
/// once (python3's fcntl module; exits 0 if it got the lock, 3 if it is held).
fn other_process_locks(path: &std::path::Path, posix: bool) -> bool {
    let call = if posix {
        "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)"
    } else {
        "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)"
    };
    let script = format!(
        "import fcntl, sys\nf = open(sys.argv[1], 'r+')\ntry:\n    {call}\nexcept OSError:\n    sys.exit(3)\n"
    );
    let status = Command::new("python3")
        .args(["-c", &script])
        .arg(path)
        .status()
        .expect("python3");
    match status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!("python3 lock helper: {status}"),
    }
}

#[test]
fn fcntl_and_flock_locks_conflict_between_processes_on_the_mount() {
    let Some(fx) = Fixture::local() else { return };
    if !nfsio_testkit::require_tool("python3") {
        return;
    }
    let path = fx.path("lock");
    fs::write(&path, b"lock").expect("write");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    let fd = file.as_raw_fd();
    assert!(other_process_locks(&path, true), "free at first");

    let mut lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    // SAFETY: F_SETLK with a flock struct that lives across the call.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETLK, &lock) }, 0);
    assert!(!other_process_locks(&path, true), "fcntl lock held here");
    lock.l_type = libc::F_UNLCK as libc::c_short;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETLK, &lock) }, 0);
    assert!(other_process_locks(&path, true), "fcntl lock released");

    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) }, 0);
    assert!(!other_process_locks(&path, false), "flock held here");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(fd, libc::LOCK_UN) }, 0);
    assert!(other_process_locks(&path, false), "flock released");
}

/// Names are bytes, as on Linux: names that are not UTF-8 (here Latin-1) are created,
/// listed, renamed, linked and removed through the mount with their bytes unchanged on the
/// server, and a symbolic link's target keeps its bytes too.
#[test]
fn names_that_are_not_utf8_keep_their_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let Some(fx) = Fixture::local() else { return };
    let name = |bytes: &[u8]| OsStr::from_bytes(bytes).to_owned();
    let file = name(b"caf\xe9.txt");
    let dir = name(b"r\xe9pertoire");
    fs::create_dir(fx.path("").join(&dir)).expect("mkdir of a Latin-1 name");
    fs::write(fx.path("").join(&dir).join(&file), b"bytes\n").expect("create");
    let on_server = fx.on_server("").join(&dir).join(&file);
    assert_eq!(fs::read(&on_server).expect("on the server"), b"bytes\n");

    let listed: Vec<_> = fs::read_dir(fx.path("").join(&dir))
        .expect("opendir")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(
        listed,
        std::slice::from_ref(&file),
        "the listing has the raw bytes"
    );

    let renamed = name(b"na\xefve.txt");
    fs::rename(
        fx.path("").join(&dir).join(&file),
        fx.path("").join(&dir).join(&renamed),
    )
    .expect("rename");
    assert!(fx.on_server("").join(&dir).join(&renamed).exists());
    let link = name(b"lien-\xe0");
    fs::hard_link(
        fx.path("").join(&dir).join(&renamed),
        fx.path("").join(&link),
    )
    .expect("link");
    assert_eq!(
        fs::read(fx.on_server("").join(&link)).expect("linked"),
        b"bytes\n"
    );

    let symlink = name(b"sym-\xff");
    std::os::unix::fs::symlink(&renamed, fx.path("").join(&symlink)).expect("symlink");
    assert_eq!(
        fs::read_link(fx.on_server("").join(&symlink)).expect("readlink on the server"),
        std::path::PathBuf::from(&renamed)
    );
    assert_eq!(
        fs::read_link(fx.path("").join(&symlink)).expect("readlink"),
        std::path::PathBuf::from(&renamed)
    );

    for gone in [&symlink, &link] {
        fs::remove_file(fx.path("").join(gone)).expect("unlink");
    }
    fs::remove_file(fx.path("").join(&dir).join(&renamed)).expect("unlink");
    fs::remove_dir(fx.path("").join(&dir)).expect("rmdir");
    assert!(!fx.on_server("").join(&dir).exists());
}
