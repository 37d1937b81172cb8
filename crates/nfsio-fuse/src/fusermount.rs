//! Mounting and unmounting as an ordinary user, through the setuid helper `fusermount3`
//! (Debian package fuse3).
//!
//! Only root may call mount(2) for FUSE, so an ordinary user's mount is made by
//! `fusermount3`: it opens /dev/fuse, mounts it on a directory the user may write to (type
//! `fuse.SUBTYPE`, the `fsname` as the source, `user_id=` the caller) and hands the open
//! /dev/fuse descriptor back over a Unix socket named by `_FUSE_COMMFD` (SCM_RIGHTS). The
//! session then runs on that descriptor (`fuser::Session::from_fd`). fuser 0.18.0 can do
//! this itself, but only after opening /dev/fuse in the caller, which fails where the device
//! is root's alone (as in many containers), and with its messages, not ours. Unmounting as
//! an ordinary user is `fusermount3 -u` (`-z`: lazily).

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The helper's name (looked up in PATH, then in /usr/bin and /bin).
const FUSERMOUNT3: &str = "fusermount3";

/// The environment variable naming the socket descriptor fusermount3 answers on.
const COMMFD_ENV: &str = "_FUSE_COMMFD";

/// The path of `fusermount3`: the first in PATH, else /usr/bin's or /bin's, else the bare
/// name (whose spawn then fails with "not found").
fn helper() -> std::path::PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|dir| dir.join(FUSERMOUNT3))
        .find(|path| path.is_file())
        .unwrap_or_else(|| FUSERMOUNT3.into())
}

/// `value` escaped for one fusermount3 option (its parser takes `\` as an escape, and `,`
/// separates options).
pub fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == ',' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The first line of what fusermount3 said, without its `fusermount3: ` prefix.
fn said(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    // "fusermount3: ..." or "/usr/bin/fusermount3: ...".
    match line.split_once("fusermount3: ") {
        Some((program, rest)) if !program.contains(' ') => rest.to_owned(),
        _ => line.to_owned(),
    }
}

/// Mounts /dev/fuse on `mountpoint` with `options` (comma-separated, already escaped)
/// through fusermount3; returns the open /dev/fuse descriptor.
pub fn mount(mountpoint: &Path, options: &str) -> io::Result<OwnedFd> {
    let (ours, theirs) = UnixStream::pair()?;
    let theirs_fd = theirs.as_raw_fd();
    let mut command = Command::new(helper());
    command
        .arg("-o")
        .arg(options)
        .arg("--")
        .arg(mountpoint)
        .env(COMMFD_ENV, theirs_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only fcntl(2), async-signal-safe, runs between fork and exec: it keeps the
    // helper's end of the socket open across exec (Rust opens it close-on-exec).
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(theirs_fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|error| {
        io::Error::new(error.kind(), format!("cannot run {FUSERMOUNT3}: {error}"))
    })?;
    drop(theirs);
    let received = receive_fd(&ours);
    drop(ours);
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_end(&mut stderr);
    }
    let status = child.wait()?;
    match received {
        Ok(fd) => Ok(fd),
        Err(_) if !stderr.is_empty() => Err(io::Error::other(format!(
            "{FUSERMOUNT3}: {}",
            said(&stderr)
        ))),
        Err(error) => Err(io::Error::new(
            error.kind(),
            format!("{FUSERMOUNT3} handed back no descriptor ({status}): {error}"),
        )),
    }
}

/// Receives one descriptor (SCM_RIGHTS) on `socket`.
fn receive_fd(socket: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    // Room for one cmsghdr and one int, aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    let received = loop {
        // SAFETY: `msg` points at `iov` and `control`, which live across the call.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    if received == 0 {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    // SAFETY: the kernel filled `msg`'s control buffer; CMSG_FIRSTHDR and CMSG_DATA stay
    // inside it, and a cmsghdr of SOL_SOCKET/SCM_RIGHTS carries at least one int.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no descriptor in the answer",
            ));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<libc::c_int>());
        if fd < 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidData));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// `fusermount3 -u` (with `lazy`, `-z`) of `mountpoint`. Errors carry EBUSY when the mount
/// is in use and EINVAL when nothing of this user's is mounted there, as umount2(2) does.
pub fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    let mut command = Command::new(helper());
    command.arg("-u");
    if lazy {
        command.arg("-z");
    }
    let output = command
        .arg("--")
        .arg(mountpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|error| {
            io::Error::new(error.kind(), format!("cannot run {FUSERMOUNT3}: {error}"))
        })?;
    if output.status.success() {
        return Ok(());
    }
    let message = said(&output.stderr);
    let errno = if message.contains("busy") {
        Some(libc::EBUSY)
    } else if message.contains("not found") || message.contains("not mounted") {
        Some(libc::EINVAL)
    } else {
        None
    };
    Err(match errno {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::other(format!("{FUSERMOUNT3} -u: {message}")),
    })
}

/// Whether /etc/fuse.conf lets ordinary users mount with `allow_other` (a line
/// `user_allow_other` of its own).
pub fn user_allow_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|text| allows_other(&text))
}

/// Whether fuse.conf's `text` has a `user_allow_other` line (comments after `#` ignored).
fn allows_other(text: &str) -> bool {
    text.lines().any(|line| {
        line.split('#')
            .next()
            .is_some_and(|l| l.trim() == "user_allow_other")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_escaped_and_messages_trimmed() {
        assert_eq!(escape_option(r"nfs://h/a,b\c"), r"nfs://h/a\,b\\c");
        assert_eq!(
            escape_option("nfs://127.0.0.1:9/export"),
            "nfs://127.0.0.1:9/export"
        );
        assert_eq!(
            said(b"/usr/bin/fusermount3: failed to open /dev/fuse: Permission denied\n"),
            "failed to open /dev/fuse: Permission denied"
        );
        assert_eq!(
            said(b"\nfusermount3: bad mount point x: No such file\n"),
            "bad mount point x: No such file"
        );
        assert_eq!(
            said(b"other program: fusermount3: x"),
            "other program: fusermount3: x"
        );
    }

    #[test]
    fn user_allow_other_needs_its_own_uncommented_line() {
        assert!(!allows_other("#user_allow_other\n# mount_max = 1000\n"));
        assert!(allows_other("# comment\n  user_allow_other  # yes\n"));
        assert!(!allows_other("user_allow_other_not\n"));
    }
}
