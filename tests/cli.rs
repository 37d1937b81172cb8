//! The CLI's namespace commands against `nfsio serve` (a spawned server on a scratch
//! export): `rm` of files and, with `-r`, of whole trees; `rm -f` of missing names; `rmdir`
//! of empty directories. Results are checked on the export's disk; errors are one line
//! naming the path, the NFS status and the errno name, with exit status 1.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;

use common::{Run, Serve};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs nfsio with `args`, which must succeed.
fn ok(args: &[&str]) {
    let output = Run::nfsio(args).output();
    assert!(
        output.status.success(),
        "nfsio {args:?}: {}",
        stderr_of(&output)
    );
}

/// Runs nfsio with `args`, which must fail with status 1 and one line holding `expected`.
fn fails(args: &[&str], expected: &[&str]) {
    let output = Run::nfsio(args).output();
    assert_eq!(output.status.code(), Some(1), "nfsio {args:?}");
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} in {stderr:?}");
    }
}

#[test]
fn rm_r_removes_a_whole_tree_and_rmdir_only_empty_directories() {
    let server = Serve::start("cli-rm");
    let tree = server.export.join("tree");
    fs::create_dir_all(tree.join("a/b/c")).unwrap();
    fs::create_dir_all(tree.join("empty")).unwrap();
    for (i, dir) in ["", "a", "a/b", "a/b/c"].iter().enumerate() {
        for n in 0..30 {
            fs::write(tree.join(dir).join(format!("f{n}")), vec![i as u8; n * 100]).unwrap();
        }
    }
    std::os::unix::fs::symlink("/etc/passwd", tree.join("a/link")).unwrap();
    std::os::unix::fs::symlink("a", tree.join("dirlink")).unwrap();
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    fs::write(tree.join("a").join(latin1), b"x").unwrap();
    fs::write(server.export.join("keep.txt"), b"kept").unwrap();

    // Without -r a directory is refused and nothing goes.
    fails(
        &["rm", &server.url_of("tree")],
        &["tree", "NFS3ERR_ISDIR", "EISDIR"],
    );
    // rmdir refuses a directory that is not empty.
    fails(
        &["rmdir", &server.url_of("tree")],
        &["tree", "NFS3ERR_NOTEMPTY", "ENOTEMPTY"],
    );
    assert!(tree.join("a/b/c/f29").exists());

    ok(&["rmdir", &server.url_of("tree/empty")]);
    assert!(!tree.join("empty").exists());
    ok(&["rm", "-r", &server.url_of("tree")]);
    assert!(!tree.exists(), "the tree is gone");
    assert!(
        fs::metadata("/etc/passwd").is_ok(),
        "a link's target is never followed"
    );
    assert_eq!(fs::read(server.export.join("keep.txt")).unwrap(), b"kept");

    // Several names at once; -f lets a missing one pass, without -f it is an error.
    fs::write(server.export.join("x1"), b"1").unwrap();
    fs::write(server.export.join("x2"), b"2").unwrap();
    ok(&[
        "rm",
        "-f",
        &server.url_of("x1"),
        &server.url_of("missing"),
        &server.url_of("x2"),
    ]);
    assert!(!server.export.join("x1").exists() && !server.export.join("x2").exists());
    fails(
        &["rm", &server.url_of("missing")],
        &["missing", "NFS3ERR_NOENT", "ENOENT"],
    );
}
