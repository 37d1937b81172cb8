//! The few libc calls std does not offer: signals by PID, and the effective user id.

use std::process::Child;
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn geteuid() -> u32;
}

pub(crate) const SIGINT: i32 = 2;

/// Sends `sig` to process `pid`. Returns false when the process does not exist (or is not ours).
pub(crate) fn signal(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // never a process group or "every process"
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { kill(pid, sig) == 0 }
}

/// Whether we run with effective uid 0.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    unsafe { geteuid() == 0 }
}

/// Waits up to `timeout` for `child` to exit; true if it did (and was reaped).
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => return false,
        }
    }
}
