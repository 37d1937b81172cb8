//! A crash of the server's machine keeps every change to names and attributes it answered.
//!
//! RFC 1813's synchronous procedures (CREATE, MKDIR, SYMLINK, REMOVE, RENAME, LINK, and
//! SETATTR as knfsd commits it) must be on stable storage when the reply leaves. To see what a
//! power cut would leave, the export lives on an ext4 file system in a loop-mounted image with
//! a 300 s journal commit interval (so nothing reaches the "disk" by the timer during the
//! test); after the commands, the image file is copied as it stands — what the loop device
//! has written, which is what a crash at that moment would leave — and the copy's journal is
//! replayed by `e2fsck` and its tree read by `debugfs`, without mounting it.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{MountGuard, Run, Scratch, Serve};

/// Runs a command that must succeed; returns its standard output.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nfsio ARGS`, which must succeed.
fn nfsio(args: &[&str]) {
    let out = Run::nfsio(args).output();
    assert!(
        out.status.success(),
        "nfsio {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One entry of `debugfs -R "ls -p DIR"`: `/inode/mode/uid/gid/name/size/` (no size for a
/// directory).
#[derive(Debug)]
struct Entry {
    name: String,
    mode_octal: String,
    size: Option<u64>,
}

/// The entries of `dir` in the ext4 image `image` (its journal already replayed).
fn entries(image: &Path, dir: &str) -> Vec<Entry> {
    let listing = run(
        "debugfs",
        &["-R", &format!("ls -p {dir}"), &path_str(image)],
    );
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('/').collect();
            let ["", _, mode, _, _, name, size, ""] = fields[..] else {
                return None;
            };
            Some(Entry {
                name: name.to_string(),
                mode_octal: mode.to_string(),
                size: size.parse().ok(),
            })
        })
        .filter(|e| e.name != "." && e.name != "..")
        .collect()
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn find<'a>(entries: &'a [Entry], name: &str) -> Option<&'a Entry> {
    entries.iter().find(|e| e.name == name)
}

/// A copy of `image` as the loop device has written it, with its journal replayed.
fn crash_copy(image: &Path, copy: &PathBuf) {
    std::fs::copy(image, copy).expect("copy the image");
    // e2fsck exits 1 when it replayed the journal or fixed something; 4 and up are errors it
    // could not correct.
    let status = Command::new("e2fsck")
        .args(["-f", "-y"])
        .arg(copy)
        .output()
        .expect("e2fsck");
    let code = status.status.code().unwrap_or(8);
    assert!(
        code < 4,
        "e2fsck of the crash image: {code}: {}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn names_and_attributes_answered_by_the_server_survive_a_crash_of_its_machine() {
    if !nfsio_testkit::require_root()
        || !["mkfs.ext4", "e2fsck", "debugfs", "mount"]
            .iter()
            .all(|tool| nfsio_testkit::require_tool(tool))
    {
        return;
    }
    let scratch = Scratch::new("crash-metadata");
    let image = scratch.join("fs.img");
    let mnt = scratch.join("fs");
    std::fs::create_dir_all(&mnt).expect("mountpoint");
    run("truncate", &["-s", "64M", &path_str(&image)]);
    run("mkfs.ext4", &["-q", "-F", &path_str(&image)]);
    run(
        "mount",
        &["-o", "loop,commit=300", &path_str(&image), &path_str(&mnt)],
    );
    let _mounted = MountGuard {
        mnt: mnt.clone(),
        pids: Vec::new(),
    };
    let export = mnt.join("export");
    std::fs::create_dir_all(&export).expect("export dir");
    let server = Serve::start_on("crash-metadata", &export, &[]);
    let url = |path: &str| server.url_of(path);

    // What was on disk before: a file to remove and one to move to another directory.
    nfsio(&["touch", &url("gone"), &url("old")]);
    run("sync", &["-f", &path_str(&export)]);

    nfsio(&["mkdir", &url("d")]);
    nfsio(&["touch", &url("f"), &url("t")]);
    nfsio(&["mv", &url("f"), &url("d/g")]);
    nfsio(&["chmod", "600", &url("d/g")]);
    nfsio(&["truncate", "-s", "12345", &url("t")]);
    nfsio(&["ln", "-s", "some/target", &url("s")]);
    nfsio(&["ln", &url("d/g"), &url("hard")]);
    nfsio(&["rm", &url("gone")]);
    nfsio(&["mv", &url("old"), &url("d/old2")]);

    let copy = scratch.join("crashed.img");
    crash_copy(&image, &copy);
    let top = entries(&copy, "/export");
    let sub = entries(&copy, "/export/d");
    let names = |es: &[Entry]| es.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    let (top_names, sub_names) = (names(&top), names(&sub));
    let mut expected_top = vec!["d", "hard", "s", "t"];
    expected_top.sort_unstable();
    let mut got_top = top_names.clone();
    got_top.sort_unstable();
    assert_eq!(
        got_top, expected_top,
        "the export's entries after the crash"
    );
    let mut got_sub = sub_names.clone();
    got_sub.sort_unstable();
    assert_eq!(got_sub, vec!["g", "old2"], "d's entries after the crash");
    let t = find(&top, "t").expect("t");
    assert_eq!(t.size, Some(12345), "t's truncation after the crash");
    let g = find(&sub, "g").expect("g");
    assert_eq!(g.mode_octal, "100600", "g's mode after the crash");
    drop(server);
}
