//! Root's mount: mount(2) of a /dev/fuse descriptor opened here, and which mount a path
//! shows (its device, from /proc/self/mountinfo).
//!
//! fuser's own mount keeps a guard that unmounts the mountpoint *by path* when the session
//! ends, after checking with a poll that its connection is still up; that check answers
//! "mounted" after an unmount from outside here, so a mount that ended (`nfsio umount`)
//! unmounted the next mount made on the same directory in the meantime. Mounting with our
//! own mount(2), as the ordinary user's path does through fusermount3, leaves fuser no guard;
//! the mount unmounts only itself, after checking the device at the path is its own.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A FUSE mount's device number, as /proc/self/mountinfo shows it (`major:minor`).
pub type Device = (u32, u32);

/// mount(2) of a new FUSE connection on `mountpoint` (named `fsname`, type `fuse.nfsio`);
/// returns the /dev/fuse descriptor to serve it with.
pub fn mount(
    mountpoint: &Path,
    fsname: &str,
    read_only: bool,
    allow_other: bool,
) -> io::Result<OwnedFd> {
    let device: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?
        .into();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&device);
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!("fd={fd},rootmode=40000,user_id={uid},group_id={gid},subtype=nfsio");
    if allow_other {
        data.push_str(",allow_other");
    }
    let mut flags = libc::MS_NODEV | libc::MS_NOSUID;
    if read_only {
        flags |= libc::MS_RDONLY;
    }
    let invalid = |_| io::Error::from(io::ErrorKind::InvalidInput);
    let source = CString::new(fsname).map_err(invalid)?;
    let target = CString::new(mountpoint.as_os_str().as_bytes()).map_err(invalid)?;
    let data = CString::new(data).map_err(invalid)?;
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            c"fuse".as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(device)
}

/// The device of the topmost mount on `mountpoint` (an absolute path), if any.
pub fn device_at(mountpoint: &Path) -> Option<Device> {
    let info = std::fs::read("/proc/self/mountinfo").ok()?;
    let wanted = escape(mountpoint.as_os_str().as_bytes());
    info.split(|&byte| byte == b'\n').rev().find_map(|line| {
        let mut fields = line.split(|&byte| byte == b' ');
        let device = fields.nth(2)?;
        let point = fields.nth(1)?;
        (point == wanted.as_slice()).then(|| parse_device(device))?
    })
}

fn parse_device(text: &[u8]) -> Option<Device> {
    let text = std::str::from_utf8(text).ok()?;
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A path as mountinfo writes it: space, tab, newline and backslash as octal escapes.
fn escape(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &byte in path {
        match byte {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend(format!("\\{byte:03o}").bytes()),
            _ => out.push(byte),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_and_devices_parse() {
        assert_eq!(escape(b"/tmp/a b\\c"), b"/tmp/a\\040b\\134c");
        assert_eq!(parse_device(b"0:52"), Some((0, 52)));
        assert_eq!(parse_device(b"x"), None);
        // The root of this machine is always mounted.
        assert!(device_at(Path::new("/")).is_some());
        assert_eq!(device_at(Path::new("/nonexistent-mount-point")), None);
    }
}
