//! The CLI against nfs-ganesha, the other server of record: a tree copied up and down with
//! `cp -r`, `ls -l` byte for byte against GNU `ls -l` of ganesha's export directory, and
//! `stat` field by field against GNU `stat`. Without ganesha the tests print one skip line
//! (and fail under CI=true).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Run, make_file, stat_fields};
use nfsio_testkit::Ganesha;

fn nfsio_ok(args: &[&str]) -> String {
    let out = Run::nfsio(args).output();
    assert!(
        out.status.success(),
        "nfsio {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Files, a subdirectory, a link and a 2 MiB file under `root`.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    for n in 0..25usize {
        let data: Vec<u8> = (0..n * 3_000).map(|i| (i * 13 + n) as u8).collect();
        fs::write(root.join(format!("f{n}")), &data).unwrap();
        fs::write(root.join("sub/deeper").join(format!("g{n}")), &data).unwrap();
    }
    make_file(&root.join("sub/big.bin"), 2 << 20, 3);
    std::os::unix::fs::symlink("sub/big.bin", root.join("link")).unwrap();
}

/// Runs `program args` in `dir` with LC_ALL=C; its standard output.
fn gnu(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .expect(program);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_tree_goes_to_ganesha_and_back_whole() {
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("tree");
    make_tree(&src);
    nfsio_ok(&[
        "cp",
        "-r",
        "-q",
        &src.display().to_string(),
        &ganesha.url("up"),
    ]);
    let up = ganesha.export_dir.join("up");
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(&up)
        .status()
        .unwrap();
    assert!(diff.success(), "diff -r of the tree copied up");
    assert_eq!(
        fs::read_link(up.join("link")).unwrap(),
        Path::new("sub/big.bin")
    );
    let down = scratch.path().join("down");
    nfsio_ok(&[
        "cp",
        "-r",
        "-q",
        &ganesha.url("up"),
        &down.display().to_string(),
    ]);
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(&down)
        .status()
        .unwrap();
    assert!(diff.success(), "diff -r of the tree copied down");
}

#[test]
fn ls_and_stat_on_ganesha_print_what_gnu_prints_on_its_disk() {
    let Some(ganesha) = Ganesha::start() else {
        return;
    };
    // Made through ganesha (its cache of attributes would not see a tree made behind it).
    let scratch = tempfile::tempdir().unwrap();
    make_tree(&scratch.path().join("t"));
    let made = scratch.path().join("t").display().to_string();
    nfsio_ok(&["cp", "-r", "-q", &made, &ganesha.url("t")]);
    let top = ganesha.export_dir.join("t");
    for flags in [&["-l"][..], &["-la"], &["-ln"], &["-lh"]] {
        let mut args = vec!["ls"];
        args.extend_from_slice(flags);
        let url = ganesha.url("t");
        args.push(&url);
        let ours = nfsio_ok(&args);
        let mut gnu_args = flags.to_vec();
        gnu_args.push(".");
        assert_eq!(ours, gnu("ls", &gnu_args, &top), "ls {flags:?}");
    }
    for (name, times) in [
        ("f3", true),
        ("sub", true),
        ("link", false),
        ("sub/big.bin", true),
    ] {
        let url = ganesha.url(&format!("t/{name}"));
        let ours = nfsio_ok(&["stat", &url]).replace(&url, name);
        let theirs = gnu("stat", &[name], &top);
        assert_eq!(
            stat_fields(&ours, times),
            stat_fields(&theirs, times),
            "{ours}\n{theirs}"
        );
    }
}
