//! The CLI's namespace commands against `nfsio serve` (a spawned server on a scratch
//! export): `rm` of files and, with `-r`, of whole trees; `rm -f` of missing names; `rmdir`
//! of empty directories; `chmod` (octal and symbolic), `truncate -s`, `touch`, `ln [-s]`,
//! `readlink`, `df [-h]` and `mv` (renames, and moves into directories). Results are
//! checked on the export's disk; errors are one line naming the path, the NFS status and
//! the errno name, with exit status 1.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;

use common::{Run, Serve, stat_fields};

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs nfsio with `args`, which must succeed, and returns what it printed.
fn ok(args: &[&str]) -> Vec<u8> {
    let output = Run::nfsio(args).output();
    assert!(
        output.status.success(),
        "nfsio {args:?}: {}",
        stderr_of(&output)
    );
    output.stdout
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

#[test]
fn chmod_truncate_and_touch_change_what_coreutils_would() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let server = Serve::start("cli-attrs");
    let file = server.export.join("f.txt");
    fs::write(&file, b"0123456789").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let mode = |path: &std::path::Path| fs::metadata(path).unwrap().mode() & 0o7777;

    ok(&["chmod", "644", &server.url_of("f.txt")]);
    assert_eq!(mode(&file), 0o644);
    ok(&["chmod", "u+x,go-r", &server.url_of("f.txt")]);
    assert_eq!(mode(&file), 0o700);
    ok(&["chmod", "a=r", &server.url_of("f.txt")]);
    assert_eq!(mode(&file), 0o444);
    fails(
        &["chmod", "u+q", &server.url_of("f.txt")],
        &["invalid mode"],
    );
    fails(
        &["chmod", "644", &server.url_of("nope")],
        &["nope", "NFS3ERR_NOENT", "ENOENT"],
    );
    ok(&["chmod", "644", &server.url_of("f.txt")]);

    ok(&["truncate", "-s", "4", &server.url_of("f.txt")]);
    assert_eq!(fs::read(&file).unwrap(), b"0123");
    ok(&["truncate", "-s", "10K", &server.url_of("grown.bin")]);
    assert_eq!(
        fs::metadata(server.export.join("grown.bin")).unwrap().len(),
        10240
    );
    ok(&["truncate", "-c", "-s", "1", &server.url_of("never.bin")]);
    assert!(
        !server.export.join("never.bin").exists(),
        "-c creates nothing"
    );
    fails(
        &["truncate", "-s", "5Q", &server.url_of("f.txt")],
        &["invalid size"],
    );

    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    ok(&["touch", &server.url_of("f.txt"), &server.url_of("new.txt")]);
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    assert!(
        mtime > old + std::time::Duration::from_secs(86400 * 365 * 20),
        "{mtime:?}"
    );
    let made = fs::metadata(server.export.join("new.txt")).unwrap();
    assert_eq!(made.len(), 0);
    assert_eq!(made.mode() & 0o777, 0o666 & !umask(), "0666 less the umask");
    ok(&["touch", "-c", &server.url_of("not-made.txt")]);
    assert!(!server.export.join("not-made.txt").exists());
}

/// This process's umask (the nfsio it runs inherits it).
fn umask() -> u32 {
    // SAFETY: umask has no preconditions; the old mask is put straight back.
    unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask
    }
}

#[test]
fn ln_readlink_and_df() {
    use std::os::unix::fs::MetadataExt;
    let server = Serve::start("cli-links");
    fs::write(server.export.join("target.txt"), b"t").unwrap();

    ok(&["ln", "-s", "target.txt", &server.url_of("sym")]);
    assert_eq!(
        fs::read_link(server.export.join("sym")).unwrap(),
        std::path::Path::new("target.txt")
    );
    let output = Run::nfsio(&["readlink", &server.url_of("sym")]).output();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(output.stdout, b"target.txt\n");
    fails(
        &["readlink", &server.url_of("target.txt")],
        &["target.txt", "NFS3ERR_INVAL", "EINVAL"],
    );

    ok(&["ln", &server.url_of("target.txt"), &server.url_of("hard")]);
    let (a, b) = (
        fs::metadata(server.export.join("target.txt")).unwrap(),
        fs::metadata(server.export.join("hard")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one file, two names");
    fails(
        &["ln", &server.url_of("target.txt"), &server.url_of("hard")],
        &["hard", "NFS3ERR_EXIST", "EEXIST"],
    );
    // Onto an existing directory: the link goes in it under the target's last component
    // (decoded, for a URL), as `ln TARGET DIR` does.
    fs::create_dir(server.export.join("in")).unwrap();
    fs::write(server.export.join("t x"), b"x").unwrap();
    ok(&["ln", &server.url_of("t%20x"), &server.url_of("in")]);
    ok(&["ln", "-s", "../target.txt", &server.url_of("in/")]);
    let x = fs::metadata(server.export.join("t x")).unwrap();
    let linked = fs::metadata(server.export.join("in/t x")).unwrap();
    assert_eq!((linked.ino(), linked.nlink()), (x.ino(), 2));
    assert_eq!(
        fs::read_link(server.export.join("in/target.txt")).unwrap(),
        std::path::Path::new("../target.txt")
    );

    for args in [vec!["df"], vec!["df", "-h"]] {
        let mut args = args.clone();
        let url = server.url_of("");
        args.push(&url);
        let output = Run::nfsio(&args).output();
        assert!(output.status.success(), "{}", stderr_of(&output));
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("Filesystem"), "{text}");
        let fields: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(fields.len(), 5, "{text}");
        assert!(fields[4].ends_with('%'), "{text}");
        if args.contains(&"-h") {
            assert!(fields[1].ends_with(['K', 'M', 'G', 'T', 'P']), "{text}");
        } else {
            assert!(fields[1].parse::<u64>().unwrap() > 0, "{text}");
        }
    }
    let output = Run::nfsio(&["df", "--help"]).output();
    assert!(output.status.success() && String::from_utf8_lossy(&output.stdout).contains("-h"));
}

#[test]
fn mv_renames_and_moves_into_directories_as_coreutils_does() {
    let server = Serve::start("cli-mv");
    let export = &server.export;
    for name in ["a.txt", "b.txt", "c.txt"] {
        fs::write(export.join(name), name).unwrap();
    }
    fs::create_dir(export.join("dir")).unwrap();
    fs::create_dir(export.join("sub")).unwrap();
    fs::write(export.join("sub/inner"), b"in").unwrap();

    // Onto a new name: a rename.
    ok(&["mv", &server.url_of("a.txt"), &server.url_of("renamed.txt")]);
    assert_eq!(fs::read(export.join("renamed.txt")).unwrap(), b"a.txt");
    // Onto an existing directory: into it, keeping the name (before: EISDIR).
    ok(&["mv", &server.url_of("renamed.txt"), &server.url_of("dir")]);
    assert!(export.join("dir/renamed.txt").exists());
    // Several sources into a directory, a directory among them.
    ok(&[
        "mv",
        &server.url_of("b.txt"),
        &server.url_of("c.txt"),
        &server.url_of("sub"),
        &server.url_of("dir"),
    ]);
    for moved in ["dir/b.txt", "dir/c.txt", "dir/sub/inner"] {
        assert!(export.join(moved).exists(), "{moved}");
    }
    assert!(!export.join("b.txt").exists() && !export.join("sub").exists());
    // Several sources need a directory; nothing moves otherwise.
    fs::write(export.join("x"), b"x").unwrap();
    fs::write(export.join("y"), b"y").unwrap();
    fails(
        &[
            "mv",
            &server.url_of("x"),
            &server.url_of("y"),
            &server.url_of("nodir"),
        ],
        &["nodir", "ENOTDIR"],
    );
    assert!(export.join("x").exists() && export.join("y").exists());
    // A file onto a file replaces it.
    ok(&["mv", &server.url_of("x"), &server.url_of("y")]);
    assert_eq!(fs::read(export.join("y")).unwrap(), b"x");
    fails(
        &["mv", &server.url_of("gone"), &server.url_of("dir")],
        &["gone", "NFS3ERR_NOENT", "ENOENT"],
    );
}

#[test]
fn mkdir_makes_several_directories_and_p_their_parents() {
    let server = Serve::start("cli-mkdir");
    ok(&["mkdir", &server.url_of("one"), &server.url_of("two")]);
    assert!(server.export.join("one").is_dir() && server.export.join("two").is_dir());
    ok(&[
        "mkdir",
        "-p",
        &server.url_of("a/b/c"),
        &server.url_of("a/d"),
        &server.url_of("one"),
    ]);
    assert!(server.export.join("a/b/c").is_dir() && server.export.join("a/d").is_dir());
    fails(
        &["mkdir", &server.url_of("one")],
        &["one", "NFS3ERR_EXIST", "EEXIST"],
    );
    fails(
        &["mkdir", &server.url_of("x/y")],
        &["x/y", "NFS3ERR_NOENT", "ENOENT"],
    );
}

#[test]
fn completions_and_man_pages_come_from_the_parser() {
    let run = |args: &[&str]| String::from_utf8(ok(args)).expect("text");
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("_nfsio()") && bash.contains("rmdir") && bash.contains("--recursive"));
    assert!(run(&["completions", "zsh"]).starts_with("#compdef nfsio"));
    assert!(run(&["completions", "fish"]).contains("complete -c nfsio"));
    let page = run(&["man"]);
    assert!(
        page.contains(".TH nfsio 1") && page.contains("rmdir"),
        "{page}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    run(&["man", "--dir", dir.path().to_str().expect("utf-8")]);
    let rm = fs::read_to_string(dir.path().join("nfsio-rm.1")).expect("nfsio-rm.1");
    assert!(
        rm.contains(".TH nfsio-rm 1") && rm.contains("recursive"),
        "{rm}"
    );
    assert!(dir.path().join("nfsio.1").exists() && dir.path().join("nfsio-mount.1").exists());
    let output = Run::nfsio(&["completions", "tcsh"]).output();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn exit_statuses_are_0_1_and_2() {
    let server = Serve::start("cli-exit");
    assert_eq!(
        Run::nfsio(&["mkdir", &server.url_of("d")])
            .output()
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        Run::nfsio(&["rmdir", &server.url_of("missing")])
            .output()
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        Run::nfsio(&["rmdir", "--no-such-flag", &server.url_of("d")])
            .output()
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        Run::nfsio(&["no-such-command"]).output().status.code(),
        Some(2)
    );
    assert!(
        server.export.join("d").is_dir(),
        "a usage error does nothing"
    );
    // cp and mv with one operand say that the destination is missing, as coreutils do.
    let d = server.url_of("d");
    for (args, missing) in [
        (
            vec!["cp", "a"],
            "missing destination operand after 'a'".to_owned(),
        ),
        (
            vec!["mv", &d],
            format!("missing destination operand after '{d}'"),
        ),
    ] {
        let output = Run::nfsio(&args).output();
        assert_eq!(output.status.code(), Some(2), "nfsio {args:?}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains(&missing), "nfsio {args:?}: {stderr}");
    }
    assert!(
        server.export.join("d").is_dir(),
        "mv with one operand does nothing"
    );
}

/// `nfsio ls` prints what GNU `ls` (LC_ALL=C) prints for the same files on the export's
/// disk, byte for byte, for each set of flags and operands (in a subdirectory: `..` of the
/// export's root is the root itself over NFS).
#[test]
fn ls_prints_what_gnu_ls_prints() {
    use std::os::unix::fs::PermissionsExt;
    let server = Serve::start("cli-ls");
    let top = server.export.join("t");
    fs::create_dir_all(top.join("sub")).unwrap();
    fs::create_dir_all(top.join("dir2")).unwrap();
    fs::write(top.join("a.txt"), b"hello\n").unwrap();
    fs::write(top.join("big"), vec![0u8; 5000]).unwrap();
    fs::write(top.join(".hidden"), b"h").unwrap();
    fs::write(top.join("dir2/inner"), b"i").unwrap();
    fs::write(top.join("setuid"), b"s").unwrap();
    fs::set_permissions(top.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("a.txt", top.join("link")).unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(978_307_200);
    fs::File::options()
        .write(true)
        .open(top.join("big"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fifo = std::ffi::CString::new(top.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    if common::is_root() {
        let big = std::ffi::CString::new(top.join("big").as_os_str().as_bytes()).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::chown(big.as_ptr(), 65534, 65534) }, 0);
    }
    let url = server.url_of("t");
    let ls = |flags: &[&str]| {
        let mut args = vec!["ls"];
        args.extend_from_slice(flags);
        args.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let cases: [(&[&str], &[&str]); 11] = [
        (&["-R"], &[""]),
        (&["-laR"], &[""]),
        (&[], &[""]),
        (&["-l"], &[""]),
        (&["-la"], &[""]),
        (&["-lA"], &[""]),
        (&["-ln"], &[""]),
        (&["-lh"], &[""]),
        (&["-ld"], &["sub", "a.txt"]),
        (&["-l"], &["dir2", "sub", "a.txt", "link"]),
        (&[], &["dir2", "big"]),
    ];
    for (flags, operands) in cases {
        let mut ours = ls(flags);
        let mut theirs: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let mut named = Vec::new();
        for operand in operands {
            let (mine, gnu) = if operand.is_empty() {
                (url.clone(), ".".to_owned())
            } else {
                (server.url_of(&format!("t/{operand}")), operand.to_string())
            };
            named.push((mine.clone(), gnu.clone()));
            ours.push(mine);
            theirs.push(gnu);
        }
        let output = Run::nfsio(&ours).output();
        assert!(
            output.status.success(),
            "nfsio ls {ours:?}: {}",
            stderr_of(&output)
        );
        // Headers name the operands as given: URLs here, paths for GNU ls.
        let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
        for (mine, gnu) in &named {
            printed = printed.replace(&format!("{mine}:"), &format!("{gnu}:"));
        }
        // -R's headers below the operand `.`: URL/dir?query: is GNU's ./dir:.
        let (base, query) = url.split_once('?').expect("a query");
        printed = printed
            .lines()
            .map(|line| match line.strip_prefix(base) {
                Some(rest) if line.ends_with(&format!("?{query}:")) => {
                    format!(".{}:\n", &rest[..rest.len() - query.len() - 2])
                }
                _ => format!("{line}\n"),
            })
            .collect();
        let gnu = std::process::Command::new("ls")
            .args(&theirs)
            .current_dir(&top)
            .env("LC_ALL", "C")
            .output()
            .expect("GNU ls");
        assert_eq!(
            printed,
            String::from_utf8_lossy(&gnu.stdout),
            "ls {flags:?} {operands:?}"
        );
    }
}

/// `nfsio stat` prints GNU stat's layout, and every field the server's disk and NFS share
/// is what GNU `stat` (LC_ALL=C) prints for the file on the export.
#[test]
fn stat_agrees_with_gnu_stat_field_by_field() {
    let server = Serve::start("cli-stat");
    let export = &server.export;
    fs::write(export.join("a.txt"), b"hello\n").unwrap();
    fs::write(export.join("empty"), b"").unwrap();
    fs::create_dir(export.join("d")).unwrap();
    std::os::unix::fs::symlink("a.txt", export.join("l")).unwrap();
    let fifo = std::ffi::CString::new(export.join("p").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    for (name, times) in [
        ("a.txt", true),
        ("empty", true),
        ("d", true),
        ("l", false),
        ("p", true),
    ] {
        let url = server.url_of(name);
        let output = Run::nfsio(&["stat", &url]).output();
        assert!(output.status.success(), "{}", stderr_of(&output));
        let ours = String::from_utf8_lossy(&output.stdout).replace(&url, name);
        assert!(ours.contains("\n Birth: -\n"), "{ours}");
        let gnu = std::process::Command::new("stat")
            .arg(name)
            .current_dir(export)
            .env("LC_ALL", "C")
            .output()
            .expect("GNU stat");
        let gnu = String::from_utf8_lossy(&gnu.stdout).into_owned();
        assert_eq!(
            stat_fields(&ours, times),
            stat_fields(&gnu, times),
            "{ours}\n{gnu}"
        );
    }
}

/// `nfsio du` reports what GNU `du` reports for the same tree on the export (lines sorted:
/// the two walk directories in different orders), a hard-linked file counted once.
#[test]
fn du_agrees_with_gnu_du() {
    let server = Serve::start("cli-du");
    let top = server.export.join("t");
    fs::create_dir_all(top.join("a/b")).unwrap();
    fs::create_dir_all(top.join("c")).unwrap();
    fs::write(top.join("f1"), vec![1u8; 10_000]).unwrap();
    fs::write(top.join("a/f2"), vec![2u8; 100_000]).unwrap();
    fs::hard_link(top.join("a/f2"), top.join("c/hard")).unwrap();
    fs::write(top.join("a/b/f3"), vec![3u8; 5_000]).unwrap();
    std::os::unix::fs::symlink("f1", top.join("sym")).unwrap();
    let url = server.url_of("t");
    for flags in [&[][..], &["-s"], &["-h"], &["-sh"]] {
        let mut args = vec!["du"];
        args.extend_from_slice(flags);
        args.push(&url);
        let output = Run::nfsio(&args).output();
        assert!(output.status.success(), "{}", stderr_of(&output));
        // Each line's URL is the directory's, with the query kept at its end.
        let (url_path, query) = url.split_at(url.find('?').unwrap());
        let mut ours: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| {
                let line = l.strip_suffix(query).unwrap_or_else(|| panic!("{l}"));
                line.replace(url_path, "t")
            })
            .collect();
        let gnu = std::process::Command::new("du")
            .args(flags)
            .arg("t")
            .current_dir(&server.export)
            .env("LC_ALL", "C")
            .output()
            .expect("GNU du");
        let mut gnu: Vec<String> = String::from_utf8_lossy(&gnu.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        ours.sort();
        gnu.sort();
        assert_eq!(ours, gnu, "du {flags:?}");
    }
}

/// NFSIO_URL names a default server: bare paths for the NFS-only commands, `nfs:PATH` for
/// every command (cp's bare paths stay local), a full URL always wins, and without the
/// variable a short path is a one-line error.
#[test]
fn nfsio_url_lets_paths_be_short() {
    let server = Serve::start("cli-short");
    let other = Serve::start("cli-short-other");
    fs::create_dir(server.export.join("sub")).unwrap();
    fs::write(server.export.join("sub/x.txt"), b"x marks").unwrap();
    fs::write(other.export.join("y.txt"), b"elsewhere").unwrap();
    let base = server.url_of("");
    let with_env = |args: &[&str]| {
        let output = Run::nfsio(args).env("NFSIO_URL", &base).output();
        assert!(
            output.status.success(),
            "nfsio {args:?}: {}",
            stderr_of(&output)
        );
        output.stdout
    };
    assert_eq!(with_env(&["ls", "sub"]), b"x.txt\n");
    assert_eq!(with_env(&["cat", "/sub/x.txt"]), b"x marks");
    assert_eq!(with_env(&["cat", "nfs:sub/x.txt"]), b"x marks");
    let local = tempfile::tempdir().expect("tempdir");
    let copy = local.path().join("copy.txt");
    with_env(&["cp", "nfs:sub/x.txt", copy.to_str().unwrap()]);
    assert_eq!(fs::read(&copy).unwrap(), b"x marks");
    with_env(&["cp", copy.to_str().unwrap(), "nfs:back.txt"]);
    assert_eq!(
        fs::read(server.export.join("back.txt")).unwrap(),
        b"x marks"
    );
    // A full URL is its own server.
    assert_eq!(with_env(&["cat", &other.url_of("y.txt")]), b"elsewhere");
    let output = Run::nfsio(&["cat", "sub/x.txt"]).output();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("NFSIO_URL"),
        "{}",
        stderr_of(&output)
    );
}

/// `chown` sets owner and group (names or numbers; `OWNER:` takes the login group), and
/// `touch -d`/`-t` set a given time (the server decides who may chown: root here).
#[test]
fn chown_and_touch_with_a_given_time() {
    use std::os::unix::fs::MetadataExt;
    if !common::is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let server = Serve::start("cli-chown");
    let file = server.export.join("f");
    fs::write(&file, b"f").unwrap();
    let ids = || {
        let m = fs::metadata(&file).unwrap();
        (m.uid(), m.gid())
    };
    ok(&["chown", "nobody:nogroup", &server.url_of("f")]);
    assert_eq!(ids(), (65534, 65534));
    ok(&["chown", "0", &server.url_of("f")]);
    assert_eq!(ids(), (0, 65534));
    ok(&["chown", ":0", &server.url_of("f")]);
    assert_eq!(ids(), (0, 0));
    ok(&["chown", "nobody:", &server.url_of("f")]);
    assert_eq!(ids(), (65534, 65534), "OWNER: takes the login group");
    fails(
        &["chown", "no-such-user-here", &server.url_of("f")],
        &["invalid user"],
    );

    let mtime = || fs::metadata(&file).unwrap().mtime();
    ok(&["touch", "-d", "@1000000000", &server.url_of("f")]);
    assert_eq!(mtime(), 1_000_000_000);
    ok(&["touch", "-t", "200109090146.40", &server.url_of("f")]);
    let gnu = std::process::Command::new("date")
        .args(["-d", "2001-09-09 01:46:40", "+%s"])
        .output()
        .expect("date");
    let expected: i64 = String::from_utf8_lossy(&gnu.stdout).trim().parse().unwrap();
    assert_eq!(mtime(), expected, "local time, as GNU date reads it");
    fails(
        &["touch", "-d", "yesterday", &server.url_of("f")],
        &["invalid date format"],
    );
}

/// `--json` on ls, stat, df and du: one JSON document each, with the facts of the text.
#[test]
fn json_output_carries_what_the_text_shows() {
    use std::os::unix::fs::MetadataExt;
    let server = Serve::start("cli-json");
    let top = server.export.join("j");
    fs::create_dir_all(top.join("sub")).unwrap();
    fs::write(top.join("a.txt"), b"hello\n").unwrap();
    fs::write(top.join("sub/b"), vec![0u8; 10_000]).unwrap();
    std::os::unix::fs::symlink("a.txt", top.join("l")).unwrap();
    fs::write(top.join(std::ffi::OsStr::from_bytes(b"caf\xe9")), b"x").unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let output = Run::nfsio(args).output();
        assert!(
            output.status.success(),
            "nfsio {args:?}: {}",
            stderr_of(&output)
        );
        serde_json::from_slice(&output.stdout).expect("one JSON document")
    };
    let url = server.url_of("j");
    let entries = json(&["ls", "--json", "-R", &url]);
    let entries = entries.as_array().expect("an array");
    let named = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {entries:?}"))
    };
    let a = named("a.txt");
    let meta = fs::metadata(top.join("a.txt")).unwrap();
    assert_eq!(a["size"], 6);
    assert_eq!(a["type"], "file");
    assert_eq!(a["mode"], meta.mode() & 0o7777);
    assert_eq!(a["fileid"], meta.ino());
    assert_eq!(a["mtime"]["seconds"], meta.mtime());
    assert_eq!(named("l")["target"], "a.txt");
    assert_eq!(named("b")["directory"], server.url_of("j/sub"));
    let latin1 = entries
        .iter()
        .find(|e| e.get("name_bytes").is_some())
        .expect("the Latin-1 name");
    assert_eq!(latin1["name_bytes"], serde_json::json!([99, 97, 102, 233]));

    let stat = json(&["stat", "--json", &server.url_of("j/a.txt")]);
    assert_eq!(stat[0]["size"], 6);
    assert_eq!(stat[0]["name"], "a.txt");
    let df = json(&["df", "--json", &url]);
    assert!(df[0]["size_bytes"].as_u64().unwrap() > 0);
    assert!(df[0]["used_bytes"].as_u64().unwrap() <= df[0]["size_bytes"].as_u64().unwrap());
    let du = json(&["du", "--json", "-s", &url]);
    let used: u64 = ["j", "j/a.txt", "j/sub", "j/sub/b", "j/l"]
        .iter()
        .map(|p| {
            fs::symlink_metadata(server.export.join(p))
                .unwrap()
                .blocks()
                * 512
        })
        .sum::<u64>()
        + fs::metadata(top.join(std::ffi::OsStr::from_bytes(b"caf\xe9")))
            .unwrap()
            .blocks()
            * 512;
    assert_eq!(du[0]["used_bytes"], used);
}

/// A glob in a URL's last component is expanded against the directory on the server:
/// `*` and `[...]`, `?` as `%3F`, dot files only by a pattern that starts with `.`, sorted
/// as the shell sorts with LC_ALL=C; a pattern that matches nothing is passed on as it is.
#[test]
fn globs_in_the_last_component_are_expanded_on_the_server() {
    let server = Serve::start("cli-glob");
    let dir = server.export.join("g");
    fs::create_dir(&dir).unwrap();
    for name in [
        "b2.txt",
        "a1.txt",
        "a10.txt",
        ".hidden.txt",
        "c.log",
        "d.log",
    ] {
        fs::write(dir.join(name), name.as_bytes()).unwrap();
    }
    let ls = |pattern: &str| {
        let output = Run::nfsio(&["ls", &server.url_of(&format!("g/{pattern}"))]).output();
        assert!(output.status.success(), "{}", stderr_of(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(ls("*.txt"), "a1.txt\na10.txt\nb2.txt\n");
    assert_eq!(ls("a%3F.txt"), "a1.txt\n");
    assert_eq!(ls("[bc]*"), "b2.txt\nc.log\n");
    assert_eq!(ls(".*.txt"), ".hidden.txt\n");
    // Into a local directory, several files at once.
    let local = server.scratch("got");
    fs::create_dir(&local).unwrap();
    ok(&[
        "cp",
        "-q",
        &server.url_of("g/a*.txt"),
        &local.display().to_string(),
    ]);
    assert_eq!(fs::read(local.join("a10.txt")).unwrap(), b"a10.txt");
    assert!(local.join("a1.txt").exists() && !local.join("b2.txt").exists());
    // rm of a pattern removes exactly what it matches.
    ok(&["rm", &server.url_of("g/*.log")]);
    assert!(!dir.join("c.log").exists() && !dir.join("d.log").exists());
    assert!(dir.join("a1.txt").exists());
    // No match: the name goes on as written; rm -f ignores it, rm reports it.
    ok(&["rm", "-f", &server.url_of("g/*.none")]);
    fails(&["rm", &server.url_of("g/*.none")], &["*.none", "ENOENT"]);
}

/// On a terminal (a pty from `script`), `ls -l` quotes names as GNU ls does there: spaces and
/// quotes quoted, control characters and bytes that are not UTF-8 as `$'\ooo'` (an escape
/// sequence in a name cannot reach the terminal), the other names indented by one column.
#[test]
fn ls_on_a_terminal_quotes_names_as_gnu_ls_does() {
    if !nfsio_testkit::require_tool("script") {
        return;
    }
    let server = Serve::start("cli-tty");
    let dir = server.export.join("t");
    fs::create_dir(&dir).unwrap();
    for name in [&b"a b"[..], b"don't", b"caf\xe9", b"\x1b[31mred", b"plain"] {
        fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), b"x").unwrap();
    }
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(b"caf\xe9"), dir.join("link")).unwrap();
    let on_a_terminal = |command: &str, cwd: &std::path::Path| {
        let out = std::process::Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .current_dir(cwd)
            .env("LC_ALL", "C")
            .output()
            .expect("script");
        assert!(out.status.success(), "{command}: {:?}", out);
        out.stdout
    };
    let nfsio = env!("CARGO_BIN_EXE_nfsio");
    for flags in ["-l", "-la"] {
        let ours = on_a_terminal(
            &format!("{nfsio} ls {flags} '{}'", server.url_of("t")),
            &dir,
        );
        let gnu = on_a_terminal(&format!("ls {flags}"), &dir);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&gnu),
            "ls {flags} on a terminal"
        );
        assert!(!ours.contains(&0x1b), "an escape byte reached the terminal");
    }
}

/// A name that is not UTF-8 is reached by the percent-escapes of its bytes (`%E9` is the byte
/// 0xE9), by every command, and one with `%25` is the name with a `%` in it.
#[test]
fn names_that_are_not_utf8_are_reached_by_the_percent_escapes_of_their_bytes() {
    let server = Serve::start("cli-bytes");
    let name = |bytes: &[u8]| server.export.join(std::ffi::OsStr::from_bytes(bytes));
    fs::write(name(b"latin1-\xe9"), b"hello latin1").unwrap();
    fs::write(name(b"100%"), b"percent").unwrap();

    assert_eq!(ok(&["cat", &server.url_of("latin1-%E9")]), b"hello latin1");
    assert_eq!(ok(&["cat", &server.url_of("100%25")]), b"percent");
    let stat = String::from_utf8_lossy(&ok(&["stat", &server.url_of("latin1-%e9")])).into_owned();
    assert!(stat.contains("Size: 12"), "{stat}");
    assert_eq!(ok(&["ls", &server.url_of("latin1-%E9")]), b"latin1-\xe9\n");

    // Down into a local directory (the local name has the same bytes), and up under a new one.
    let local = server.scratch("bytes-local");
    fs::create_dir(&local).unwrap();
    ok(&[
        "cp",
        "-q",
        &server.url_of("latin1-%E9"),
        &format!("{}/", local.display()),
    ]);
    let local_copy = local.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9"));
    assert_eq!(fs::read(&local_copy).unwrap(), b"hello latin1");
    fs::write(server.export.join("f x"), b"spaced").unwrap();
    ok(&[
        "cp",
        "-q",
        &server.url_of("f%20x"),
        &format!("{}/", local.display()),
    ]);
    assert_eq!(fs::read(local.join("f x")).unwrap(), b"spaced");
    // A local argument is the bytes the shell passed, UTF-8 or not: up under a new name,
    // down onto one, and a tree whose top directory's name is not UTF-8.
    let args_ok = |args: &[&std::ffi::OsStr]| {
        let output = Run::nfsio(args).output();
        assert!(
            output.status.success(),
            "nfsio {args:?}: {}",
            stderr_of(&output)
        );
    };
    let os = |text: &str| std::ffi::OsString::from(text);
    let up_url = os(&server.url_of("up-%FF"));
    args_ok(&[
        "cp".as_ref(),
        "-q".as_ref(),
        local_copy.as_os_str(),
        &up_url,
    ]);
    assert_eq!(fs::read(name(b"up-\xff")).unwrap(), b"hello latin1");
    let down = local.join(std::ffi::OsStr::from_bytes(b"down-\xfe"));
    args_ok(&["cp".as_ref(), "-q".as_ref(), &up_url, down.as_os_str()]);
    assert_eq!(fs::read(&down).unwrap(), b"hello latin1");
    let tree = server
        .scratch("tree-\u{e9}")
        .with_file_name(std::ffi::OsStr::from_bytes(b"tree-\xe9"));
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("inner"), b"in").unwrap();
    let export_url = os(&server.url_of(""));
    args_ok(&[
        "cp".as_ref(),
        "-r".as_ref(),
        "-q".as_ref(),
        tree.as_os_str(),
        &export_url,
    ]);
    assert_eq!(fs::read(name(b"tree-\xe9/inner")).unwrap(), b"in");

    // The namespace commands.
    ok(&["mv", &server.url_of("up-%FF"), &server.url_of("moved-%FE")]);
    assert!(name(b"moved-\xfe").exists() && !name(b"up-\xff").exists());
    ok(&["chmod", "600", &server.url_of("moved-%FE")]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(name(b"moved-\xfe")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o7777, 0o600);
    ok(&["truncate", "-s", "5", &server.url_of("moved-%FE")]);
    assert_eq!(fs::read(name(b"moved-\xfe")).unwrap(), b"hello");
    ok(&["touch", &server.url_of("new-%E9")]);
    assert!(name(b"new-\xe9").is_file());
    ok(&["mkdir", "-p", &server.url_of("d-%E9/e-%E9")]);
    assert!(name(b"d-\xe9/e-\xe9").is_dir());
    ok(&["mv", &server.url_of("new-%E9"), &server.url_of("d-%E9")]);
    assert!(name(b"d-\xe9/new-\xe9").is_file());
    ok(&["ln", "-s", "latin1-\u{e9}", &server.url_of("link-%E9")]);
    assert!(
        fs::symlink_metadata(name(b"link-\xe9"))
            .unwrap()
            .is_symlink()
    );
    ok(&["rmdir", &server.url_of("d-%E9/e-%E9")]);
    ok(&["rm", "-r", &server.url_of("d-%E9")]);
    ok(&[
        "rm",
        &server.url_of("latin1-%E9"),
        &server.url_of("moved-%FE"),
    ]);
    assert!(!name(b"d-\xe9").exists() && !name(b"latin1-\xe9").exists());
    assert!(!name(b"moved-\xfe").exists());

    // A malformed escape is still refused, in one line.
    fails(
        &["stat", &server.url_of("bad-%G1")],
        &["bad percent-escape"],
    );
}
