//! `nfsio cp -r` and `nfsio cp SRC... DIR` against `nfsio serve`: trees copied up, down and
//! across with their shape, symbolic links as links, names that are not UTF-8, `-p`'s modes
//! and times, `-n` and `-u`, several sources into a directory (and none without one), the
//! summary line, an interrupted copy that leaves no half-written file under its name, and
//! copies named by the decoded name of a source URL (`d%20x` is `d x`).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, Serve, make_file};

const NFSIO: &str = env!("CARGO_BIN_EXE_nfsio");

/// What a tree holds: for each relative path, a file's bytes, a link's target, or a
/// directory.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
}

fn read_tree(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let meta = fs::symlink_metadata(&path).unwrap();
            let value = if meta.is_dir() {
                pending.push(path.clone());
                Entry::Dir
            } else if meta.file_type().is_symlink() {
                Entry::Link(
                    fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec(),
                )
            } else {
                Entry::File(fs::read(&path).unwrap())
            };
            out.insert(rel, value);
        }
    }
    out
}

/// A tree of 3 levels: 120 files from empty to 300 KiB, a 3 MiB file, 3 links (one dangling,
/// one to a directory), an empty directory and a Latin-1 name.
fn make_tree(root: &Path) {
    for (d, dir) in ["", "a", "a/b"].iter().enumerate() {
        fs::create_dir_all(root.join(dir)).unwrap();
        for n in 0..40usize {
            let data: Vec<u8> = (0..n * 7_500).map(|i| (i * 31 + n + d) as u8).collect();
            fs::write(root.join(dir).join(format!("f{n}")), data).unwrap();
        }
    }
    make_file(&root.join("a/b/big.bin"), 3 << 20, 7);
    fs::create_dir_all(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("../f1", root.join("a/up")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("a/b", root.join("dirlink")).unwrap();
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    fs::write(root.join("a").join(latin1), b"latin-1").unwrap();
}

fn run(args: &[&str]) -> std::process::Output {
    Run::nfsio(args).output()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "nfsio {args:?}: {stderr}");
    stderr
}

/// `nfsio cp FLAG -q SRC DST`, which must succeed.
fn cp_quiet(flag: &str, src: &Path, dst: &str) {
    ok(&["cp", flag, "-q", &src.display().to_string(), dst]);
}

#[test]
fn trees_go_up_down_and_across_with_their_shape() {
    let server = Serve::start("cp-tree");
    let src = server.scratch("src");
    make_tree(&src);
    let expected = read_tree(&src);
    assert!(expected.len() > 120);

    // Up, into the export's root (an existing directory: the tree keeps its name).
    let stderr = ok(&["cp", "-r", &src.display().to_string(), &server.url_of("")]);
    assert_eq!(read_tree(&server.export.join("src")), expected);
    assert!(
        stderr.contains("copied 125 files"),
        "the summary counts files and links: {stderr}"
    );
    // Across: a new name on the same export is the copy itself.
    ok(&[
        "cp",
        "-r",
        "-q",
        &server.url_of("src"),
        &server.url_of("again"),
    ]);
    assert_eq!(read_tree(&server.export.join("again")), expected);
    // Down, to a new local name.
    let down = server.scratch("down");
    ok(&[
        "cp",
        "-r",
        "-q",
        &server.url_of("again"),
        &down.display().to_string(),
    ]);
    assert_eq!(read_tree(&down), expected);
    // No temporary file is left anywhere.
    let left: Vec<_> = read_tree(&server.export)
        .into_keys()
        .filter(|k| String::from_utf8_lossy(k).contains(".nfsio-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // Without -r a directory is refused.
    let out = run(&["cp", &src.display().to_string(), &server.url_of("x"), "-n"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("EISDIR"));
    assert!(!server.export.join("x").exists());
}

#[test]
fn p_keeps_modes_and_times_n_and_u_keep_what_is_there() {
    let server = Serve::start("cp-flags");
    let src = server.scratch("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"new contents").unwrap();
    fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(src.join("d"), fs::Permissions::from_mode(0o750)).unwrap();
    let old = std::time::UNIX_EPOCH + Duration::new(1_500_000_000, 123_456_789);
    let times = fs::FileTimes::new().set_accessed(old).set_modified(old);
    fs::File::open(src.join("d/f"))
        .unwrap()
        .set_times(times)
        .unwrap();
    fs::File::open(src.join("d"))
        .unwrap()
        .set_times(times)
        .unwrap();

    cp_quiet("-rp", &src.join("d"), &server.url_of("d"));
    for (name, mode) in [("d", 0o750), ("d/f", 0o640)] {
        let meta = fs::metadata(server.export.join(name)).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{name}'s mode");
        assert_eq!(
            (meta.mtime(), meta.mtime_nsec()),
            (1_500_000_000, 123_456_789),
            "{name}'s mtime"
        );
    }

    // -n: an existing file stays as it is; a missing one is copied.
    fs::write(server.export.join("d/f"), b"server's").unwrap();
    fs::write(src.join("d/g"), b"g").unwrap();
    cp_quiet("-rn", &src.join("d"), &server.url_of(""));
    assert_eq!(fs::read(server.export.join("d/f")).unwrap(), b"server's");
    assert_eq!(fs::read(server.export.join("d/g")).unwrap(), b"g");
    // -u: replaced only by a newer source. The server's copy (written just now) is newer
    // than the source's 2017 file; then the source is touched and wins.
    cp_quiet("-u", &src.join("d/f"), &server.url_of("d/f"));
    assert_eq!(fs::read(server.export.join("d/f")).unwrap(), b"server's");
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    let times = fs::FileTimes::new().set_modified(later);
    fs::File::options()
        .write(true)
        .open(src.join("d/f"))
        .unwrap()
        .set_times(times)
        .unwrap();
    cp_quiet("-u", &src.join("d/f"), &server.url_of("d/f"));
    assert_eq!(
        fs::read(server.export.join("d/f")).unwrap(),
        b"new contents"
    );
}

#[test]
fn several_sources_go_into_a_directory_and_need_one() {
    let server = Serve::start("cp-many");
    let a = server.scratch("a.txt");
    let b = server.scratch("b.txt");
    fs::write(&a, b"aaa").unwrap();
    fs::write(&b, b"bbb").unwrap();
    fs::create_dir(server.export.join("into")).unwrap();
    let (a_text, b_text) = (a.display().to_string(), b.display().to_string());
    ok(&["cp", "-q", &a_text, &b_text, &server.url_of("into")]);
    assert_eq!(fs::read(server.export.join("into/a.txt")).unwrap(), b"aaa");
    assert_eq!(fs::read(server.export.join("into/b.txt")).unwrap(), b"bbb");
    // Onto a name that is not a directory: refused, nothing copied.
    let out = run(&["cp", "-q", &a_text, &b_text, &server.url_of("nodir")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ENOTDIR"), "{stderr}");
    assert!(!server.export.join("nodir").exists());
}

/// Starts `nfsio cp -r` of four 64 MiB files from `src` to `dst_url`, waits until a file in
/// `watch` that `partial` accepts is half written, interrupts the copy with SIGINT and returns
/// its stderr (after checking that it says so and exits 1).
fn interrupt_tree_copy(
    src: &Path,
    dst_url: &str,
    watch: &Path,
    partial: fn(&str) -> bool,
) -> String {
    for i in 0..4u64 {
        make_file(&src.join(format!("big{i}.bin")), 64 << 20, i + 1);
    }
    let mut cp = Command::new(NFSIO)
        .args(["cp", "-r", "-q", "--jobs", "2"])
        .arg(src)
        .arg(dst_url)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nfsio cp");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = fs::read_dir(watch)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                partial(&e.file_name().to_string_lossy())
                    && e.metadata()
                        .is_ok_and(|m| m.len() > 0 && m.len() < 64 << 20)
            });
        if found {
            break;
        }
        assert!(
            cp.try_wait().unwrap().is_none(),
            "cp ended before it was interrupted"
        );
        assert!(Instant::now() < deadline, "no partial file appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = Command::new("kill")
        .args(["-INT", &cp.id().to_string()])
        .status();
    let out = cp.wait_with_output().expect("wait for cp");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    stderr
}

/// Every entry of `dir` has its final name and is whole (the same bytes as in `src`).
fn assert_only_whole_files(dir: &Path, src: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".part"), "{name} was left behind");
        assert_eq!(
            fs::read(entry.path()).unwrap(),
            fs::read(src.join(&name)).unwrap(),
            "{name} is not the whole file"
        );
    }
}

/// Into a directory that existed, files are written under temporary names: an interrupt
/// removes them, and whatever has its final name is whole.
#[test]
fn an_interrupted_tree_copy_leaves_no_half_written_file_under_its_name() {
    let server = Serve::start("cp-interrupt");
    let src = server.scratch("src");
    fs::create_dir(&src).unwrap();
    // dst/src exists: the copy goes into it, replacing nothing half-way.
    let into = server.export.join("dst").join("src");
    fs::create_dir_all(&into).unwrap();
    interrupt_tree_copy(&src, &server.url_of("dst"), &into, |name| {
        name.ends_with(".part")
    });
    assert_only_whole_files(&into, &src);
}

/// Into a directory the copy made, files are written under their own names (nothing there can
/// be replaced): an interrupt removes those not complete, and says how many.
#[test]
fn an_interrupted_copy_into_a_new_directory_removes_its_partial_files() {
    let server = Serve::start("cp-interrupt-new");
    let src = server.scratch("src");
    fs::create_dir(&src).unwrap();
    let dst = server.export.join("new");
    let stderr = interrupt_tree_copy(&src, &server.url_of("new"), &dst, |name| {
        name.starts_with("big")
    });
    let removed: usize = stderr
        .split("removed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of removed files in {stderr:?}"));
    assert!(removed >= 1, "{stderr}");
    assert_only_whole_files(&dst, &src);
}

/// `--progress` prints plain lines on stderr (not a terminal here), the last one at 100 %,
/// for a tree (with its file count) and for one file.
#[test]
fn progress_lines_are_printed_for_logs() {
    let server = Serve::start("cp-progress");
    let src = server.scratch("src");
    fs::create_dir(&src).unwrap();
    for i in 0..3 {
        fs::write(src.join(format!("f{i}")), vec![i as u8; 100_000]).unwrap();
    }
    let src_text = src.display().to_string();
    let stderr = ok(&["cp", "-r", "--progress", &src_text, &server.url_of("t")]);
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("nfsio cp: "))
        .unwrap_or_else(|| panic!("no progress line in {stderr:?}"));
    assert!(
        last.contains("3 of 3 files") && last.contains("(100%)"),
        "{last}"
    );
    let one = src.join("f1").display().to_string();
    let stderr = ok(&["cp", "--progress", &one, &server.url_of("one")]);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("nfsio cp: ") && l.contains("(100%)")),
        "{stderr}"
    );
    assert_eq!(
        fs::read(server.export.join("one")).unwrap(),
        vec![1u8; 100_000]
    );
}

/// A source URL's last component names its copy with the percent-escapes decoded (`d%20x`
/// is the directory `d x`), in a tree copy and a copy of several sources, down and across.
#[test]
fn copies_are_named_by_the_decoded_name_of_a_source_url() {
    let server = Serve::start("cp-escaped");
    fs::create_dir(server.export.join("d x")).unwrap();
    fs::write(server.export.join("d x/f"), b"f").unwrap();
    fs::write(server.export.join("g y"), b"g").unwrap();
    fs::write(server.export.join("h"), b"h").unwrap();
    let down = server.scratch("down");
    fs::create_dir(&down).unwrap();
    let down_text = down.display().to_string();
    ok(&["cp", "-r", "-q", &server.url_of("d%20x"), &down_text]);
    ok(&[
        "cp",
        "-q",
        &server.url_of("g%20y"),
        &server.url_of("h"),
        &down_text,
    ]);
    let names = |dir: &Path| {
        let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&down), [&b"d x"[..], b"g y", b"h"]);
    assert_eq!(fs::read(down.join("d x/f")).unwrap(), b"f");
    assert_eq!(fs::read(down.join("g y")).unwrap(), b"g");

    fs::create_dir(server.export.join("across")).unwrap();
    ok(&[
        "cp",
        "-r",
        "-q",
        &server.url_of("d%20x"),
        &server.url_of("across"),
    ]);
    assert_eq!(names(&server.export.join("across")), [&b"d x"[..]]);
    assert_eq!(fs::read(server.export.join("across/d x/f")).unwrap(), b"f");
}
