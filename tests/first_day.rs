//! What a new user meets on the first day: the README's quick start (as root and as an
//! ordinary user), `cp` that never destroys its source, ready lines that are true when
//! printed, short URLs, errors that say where, and the habits of Unix tools (a closed pipe, no
//! colour where there is no terminal).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{NFSIO, Run, STOP_TIMEOUT, Scratch, Serve, is_root, make_file};
use nfsio_client::Client;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits for `child` up to `limit`; SIGKILL and panic after.
fn wait_with_limit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -s {name} {pid}");
}

// ---- cp never destroys its source -------------------------------------------------------

#[test]
fn cp_refuses_to_copy_a_file_onto_itself() {
    let server = Serve::start("self-copy");
    let original = server.scratch("original.bin");
    make_file(&original, 8 << 20, 11);
    let file = server.export.join("f.bin");
    std::fs::copy(&original, &file).expect("copy");
    let link = server.scratch("hard-link.bin");
    std::fs::hard_link(&file, &link).expect("link");
    let export = server.export.display().to_string();
    let f_local = file.display().to_string();
    let cases: Vec<(String, String)> = vec![
        (server.url_of("f.bin"), server.url_of("f.bin")),
        (server.short_url_of("f.bin"), server.short_url_of("")),
        (server.short_url_of("f.bin"), server.short_url_of("./f.bin")),
        (server.url_of("f.bin"), server.short_url_of("f.bin")),
        (f_local.clone(), f_local.clone()),
        (f_local.clone(), format!("{export}/")),
        (f_local.clone(), format!("{export}/./f.bin")),
        (link.display().to_string(), f_local.clone()),
        // Across NFS and a local path: the export's own file on this machine.
        (server.short_url_of("f.bin"), format!("{export}/")),
        (f_local.clone(), server.short_url_of("")),
    ];
    for (src, dst) in cases {
        let output = Run::nfsio(&["cp", "--quiet", &src, &dst]).output();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "cp {src} {dst}: {stderr}");
        assert_eq!(
            stderr,
            format!("nfsio: '{src}' and '{dst}' are the same file\n"),
            "cp {src} {dst}"
        );
        common::assert_same_file(&original, &file);
    }
    // A real copy next to it still works.
    let output = Run::nfsio(&[
        "cp",
        "--quiet",
        &server.url_of("f.bin"),
        &server.url_of("g.bin"),
    ])
    .output();
    assert!(output.status.success(), "{}", stderr_of(&output));
    common::assert_same_file(&original, &server.export.join("g.bin"));
}

#[test]
fn cp_into_a_name_ending_in_slash_needs_that_directory() {
    let server = Serve::start("slash");
    let local = server.scratch("a.txt");
    std::fs::write(&local, b"some bytes").expect("write");
    std::fs::write(server.export.join("plain"), b"a file").expect("write");
    let nowhere = server.scratch("no-such-dir/").display().to_string();
    let cases = [
        (local.display().to_string(), nowhere),
        (local.display().to_string(), format!("{}/", local.display())),
        (
            local.display().to_string(),
            server.short_url_of("no-such-dir/"),
        ),
        (local.display().to_string(), server.short_url_of("plain/")),
        (
            server.url_of("plain"),
            server.scratch("missing/").display().to_string(),
        ),
    ];
    for (src, dst) in cases {
        let output = Run::nfsio(&["cp", "--quiet", &src, &dst]).output();
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "cp {src} {dst}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("ENOTDIR"), "cp {src} {dst}: {stderr}");
    }
    assert!(!server.scratch("no-such-dir").exists());
    assert!(!server.scratch("missing").exists());
    assert!(!server.export.join("no-such-dir").exists());
    assert_eq!(
        std::fs::read(server.export.join("plain")).unwrap(),
        b"a file"
    );
    // An existing directory with or without the slash receives the file.
    let output = Run::nfsio(&[
        "cp",
        "--quiet",
        &local.display().to_string(),
        &server.short_url_of(""),
    ])
    .output();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        std::fs::read(server.export.join("a.txt")).unwrap(),
        b"some bytes"
    );
}

#[test]
fn cp_dash_is_standard_input_and_output() {
    let server = Serve::start("dash");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let cwd = server.scratch("cwd");
    std::fs::create_dir(&cwd).expect("cwd");
    let up = Run::nfsio(&["cp", "-", &server.short_url_of("from-stdin.bin")])
        .stdin(&data)
        .cwd(&cwd)
        .output();
    assert!(up.status.success(), "{}", stderr_of(&up));
    assert!(std::fs::read(server.export.join("from-stdin.bin")).unwrap() == data);
    let down = Run::nfsio(&["cp", &server.short_url_of("from-stdin.bin"), "-"])
        .cwd(&cwd)
        .output();
    assert!(down.status.success(), "{}", stderr_of(&down));
    assert!(down.stdout == data, "standard output has the file");
    assert!(
        std::fs::read_dir(&cwd).unwrap().next().is_none(),
        "no local file named '-'"
    );
}

// ---- ready lines are true when printed --------------------------------------------------

#[test]
fn serve_handles_sigterm_right_after_its_url() {
    let scratch = Scratch::new("ready");
    let export = scratch.join("export");
    std::fs::create_dir(&export).expect("export");
    for round in 0..20 {
        let mut child = Command::new(NFSIO)
            .arg("serve")
            .arg(&export)
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(scratch.join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        assert!(line.starts_with("nfs://127.0.0.1"), "{line:?}");
        signal(child.id(), "TERM");
        let status = wait_with_limit(&mut child, STOP_TIMEOUT);
        assert_eq!(status.code(), Some(0), "round {round}: {status}");
    }
}

#[test]
fn demo_stops_cleanly_on_sigterm_after_its_server_line() {
    let scratch = Scratch::new("demo-term");
    let mut child = Command::new(NFSIO)
        .args(["demo", "--size", "4G", "--quiet", "--dir"])
        .arg(&scratch.path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    assert!(line.starts_with("nfsio serve "), "{line:?}");
    signal(child.id(), "TERM");
    let status = wait_with_limit(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(1), "{status}: {stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&scratch.path).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}

// ---- short URLs and errors that say where -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_urls_reach_nfsio_serve() {
    let server = Serve::start("short");
    assert_eq!(
        server.printed_url,
        format!("nfs://127.0.0.1:{}/export", server.nfs_port)
    );
    std::fs::create_dir(server.export.join("sub")).unwrap();
    std::fs::write(server.export.join("sub/x.txt"), b"x marks").unwrap();
    let client = Client::connect(&server.short_url_of("sub"))
        .await
        .expect("connect");
    assert_eq!(client.url_path(), b"sub");
    let file = client.open("sub/x.txt").await.expect("open");
    assert_eq!(file.read_bytes_at(0, 100).await.unwrap(), &b"x marks"[..]);
    file.close().await.unwrap();
    drop(client);

    // MOUNT on a port of its own: the printed URL names it.
    let mount_port = nfsio_testkit::free_port();
    let separate = Serve::start_with("short-mount", &["--mount-port", &mount_port.to_string()]);
    assert_eq!(
        separate.printed_url,
        format!(
            "nfs://127.0.0.1:{}/export?mountport={mount_port}",
            separate.nfs_port
        )
    );
    let output = Run::nfsio(&["ls", &separate.printed_url]).output();
    assert!(output.status.success(), "{}", stderr_of(&output));
}

#[test]
fn connection_errors_name_the_address_and_the_service() {
    let port = nfsio_testkit::free_port();
    let output = Run::nfsio(&["ls", &format!("nfs://127.0.0.1:{port}/export")]).output();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("MOUNT at 127.0.0.1:{port}: connection refused")),
        "{stderr}"
    );
    assert!(stderr.contains("is the server running"), "{stderr}");
    assert!(stderr.trim_end().ends_with("(ECONNREFUSED)"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeo_and_retrans_make_calls_fail_instead_of_hanging() {
    let server = Serve::start("soft");
    // Tries of 0.3 s, one retransmission: a call fails after about 0.6 s.
    let base = server.short_url_of("");
    let join = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{join}timeo=3&retrans=1");
    let client = Client::connect(&url).await.expect("connect");
    client.null().await.expect("NULL");
    signal(server.pid(), "STOP");
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(Duration::from_secs(60), client.getattr(client.root())).await;
    signal(server.pid(), "CONT");
    let result = outcome.expect("a soft call gives up instead of hanging");
    let error = result.expect_err("the server was stopped");
    assert_eq!(error.errno_name(), "ETIMEDOUT", "{error}");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    // The server answers again, and so does the client.
    client.null().await.expect("NULL after SIGCONT");
}

// ---- the habits of Unix tools -----------------------------------------------------------

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let server = Serve::start("pipe");
    make_file(&server.export.join("big.bin"), 16 << 20, 5);
    for args in [
        vec!["cat".to_owned(), server.short_url_of("big.bin")],
        vec![
            "cp".to_owned(),
            server.short_url_of("big.bin"),
            "-".to_owned(),
        ],
    ] {
        let mut child = Command::new(NFSIO)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut head = [0u8; 10];
        stdout.read_exact(&mut head).expect("the first bytes");
        drop(stdout);
        let status = wait_with_limit(&mut child, Duration::from_secs(60));
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr);
        assert_eq!(status.code(), Some(0), "{args:?}: {status}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

/// Runs `nfsio ARGS` under `script`, so that its stderr is a terminal; returns what the
/// terminal showed.
fn on_a_terminal(args: &str, no_color: bool) -> String {
    let mut command = Command::new("script");
    command
        .args(["-qec", &format!("{NFSIO} {args}"), "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let output = command.output().expect("script (util-linux)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    if !nfsio_testkit::require_tool("script") {
        return;
    }
    let server = Serve::start("colour");
    let args = format!("-vv ls {}", server.short_url_of(""));
    let piped = Run::nfsio(&args.split(' ').collect::<Vec<_>>())
        .env("TERM", "xterm")
        .output();
    let piped_stderr = stderr_of(&piped);
    assert!(piped.status.success(), "{piped_stderr}");
    assert!(piped_stderr.contains("DEBUG"), "debug logs: {piped_stderr}");
    assert!(
        !piped_stderr.contains('\x1b'),
        "colour in a pipe: {piped_stderr:?}"
    );
    let terminal = on_a_terminal(&args, false);
    assert!(
        terminal.contains("\x1b["),
        "a terminal gets colour: {terminal:?}"
    );
    let plain = on_a_terminal(&args, true);
    assert!(plain.contains("DEBUG"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
}

// ---- the README's quick start, verbatim --------------------------------------------------

/// The shell blocks of the README's "Quick start" section, in order.
fn quick_start_blocks() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Quick start section in README.md");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut current, line.trim_start().starts_with("```")) {
            (None, true) => current = Some(Vec::new()),
            (Some(_), true) => blocks.extend(current.take()),
            (Some(block), false) => block.push(line.to_owned()),
            (None, false) => {}
        }
    }
    blocks
}

/// The quick start's commands with its directory and port replaced by the test's own.
fn localised(line: &str, share: &Path, port: u16) -> String {
    line.replace("/tmp/share", &share.display().to_string())
        .replace("2049", &port.to_string())
}

/// Runs the quick start as the user `ids` (None: as we are): the first block (the server) in
/// the background, once its URL line is out the second block, which must succeed; returns
/// the export directory.
fn run_quick_start(scratch: &Scratch, ids: Option<(u32, u32)>) -> std::path::PathBuf {
    let blocks = quick_start_blocks();
    assert_eq!(blocks.len(), 2, "the server block and the client block");
    let share = scratch.join("share");
    let home = scratch.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let work = scratch.join("work");
    std::fs::create_dir_all(&work).unwrap();
    if let Some((uid, gid)) = ids {
        for dir in [&scratch.path, &home, &work] {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        }
    }
    let port = nfsio_testkit::free_port();
    let bin_dir = Path::new(NFSIO).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |script: &str| {
        let mut command = match ids {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={gid}"),
                    "--clear-groups",
                    "bash",
                ]);
                c
            }
            None => Command::new("bash"),
        };
        command
            .args(["-ec", script])
            .current_dir(&work)
            .env("PATH", &path)
            .env("HOME", &home)
            .env_remove("XDG_STATE_HOME");
        command
    };
    let (setup, serve) = blocks[0].split_at(blocks[0].len() - 1);
    let setup: Vec<String> = setup.iter().map(|l| localised(l, &share, port)).collect();
    let status = shell(&setup.join("\n")).status().expect("setup");
    assert!(status.success(), "{setup:?}");
    let mut server = shell(&format!("exec {}", localised(&serve[0], &share, port)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("URL line");
    assert_eq!(line.trim(), format!("nfs://127.0.0.1:{port}/export"));
    let client_script: Vec<String> = blocks[1]
        .iter()
        .map(|l| localised(l, &share, port))
        .collect();
    let output = shell(&client_script.join("\n"))
        .output()
        .expect("client block");
    signal(server.id(), "TERM");
    let status = wait_with_limit(&mut server, STOP_TIMEOUT);
    let mut server_log = String::new();
    let _ = server
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut server_log);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "quick start as {ids:?}: {}\n{stdout}\nserver: {server_log}",
        stderr_of(&output)
    );
    assert_eq!(status.code(), Some(0), "{server_log}");
    assert!(
        stdout.contains("hello.txt") && stdout.contains("hello-libnfs.txt"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("hello"), "cat: {stdout}");
    for name in ["hello.txt", "hello-libnfs.txt"] {
        assert_eq!(
            std::fs::read(share.join(name)).unwrap(),
            b"hello\n",
            "{name}"
        );
    }
    share
}

#[test]
fn readme_quick_start_works_as_root_and_as_an_ordinary_user() {
    if !nfsio_testkit::require_tool("nfs-cp") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    if is_root() {
        let scratch = Scratch::new("quick-root");
        let share = run_quick_start(&scratch, None);
        // Root on this machine is not squashed: its files are root's.
        assert_eq!(std::fs::metadata(share.join("hello.txt")).unwrap().uid(), 0);
    }
    if !is_root() && !nfsio_testkit::require_root() {
        return;
    }
    if !nfsio_testkit::require_tool("setpriv") {
        return;
    }
    let scratch = Scratch::new("quick-user");
    std::fs::set_permissions(
        &scratch.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let share = run_quick_start(&scratch, Some((65534, 65534)));
    assert_eq!(
        std::fs::metadata(share.join("hello.txt")).unwrap().uid(),
        65534
    );
}
