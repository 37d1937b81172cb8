//! The kernel's readahead for a mount: FUSE leaves it at the kernel's default (128 KiB),
//! which turns a sequential read into one 128 KiB READ request after another, each a round
//! trip through this process. Root raises it to [`READAHEAD_KIB`] through the mount's
//! backing device (`/sys/class/bdi/MAJOR:MINOR/read_ahead_kb`), as an administrator would
//! for a kernel NFS mount; an ordinary user cannot write there and keeps the default.
//!
//! It is set once the mount answers: the kernel's FUSE INIT handling lowers the device's
//! readahead to what the INIT reply offers, so a value written before INIT would not last.

use std::io;
use std::path::PathBuf;

use crate::direct::Device;

/// The readahead root's mounts get: 1 MiB, one READ request of the largest size FUSE sends
/// (`max_pages`) at a time; sequential reads measured 1.4x faster than at 128 KiB.
pub const READAHEAD_KIB: u32 = 1024;

/// The sysfs file of `device`'s readahead.
fn sysfs_path(device: Device) -> PathBuf {
    PathBuf::from(format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        device.0, device.1
    ))
}

/// `device`'s readahead in KiB.
pub fn readahead_kib(device: Device) -> io::Result<u32> {
    let text = std::fs::read_to_string(sysfs_path(device))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// Raises `device`'s readahead to `kib` unless it is already at least that; true when it
/// was written. EACCES (an ordinary user) and a missing file are errors for the caller to
/// log, never a failure of the mount.
pub fn raise(device: Device, kib: u32) -> io::Result<bool> {
    if readahead_kib(device)? >= kib {
        return Ok(false);
    }
    std::fs::write(sysfs_path(device), format!("{kib}\n"))?;
    Ok(true)
}
