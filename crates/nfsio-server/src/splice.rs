//! Zero-copy READ replies: file data moved to the socket through a pipe.
//!
//! Serving a file from the page cache, a READ done with `pread` costs the server two copies of
//! every byte: page cache → buffer, then buffer → socket. On a 2-CPU machine those copies were
//! a third of the server's CPU time for a download. With `splice(2)` the READ instead puts
//! references to the page-cache pages into a pipe (no copy), and the connection writer moves
//! them from the pipe to the TCP socket, which sends from the pages (no copy either). Linux
//! knfsd serves READ the same way.
//!
//! The bytes are taken when the READ is served: the pipe holds the pages, and the count in the
//! reply is the count spliced, so a file truncated between the READ and the reply's departure
//! cannot leave the record short. A WRITE to the same range in that interval may show in the
//! reply (the pages are shared, as with knfsd); NFS gives no order between calls in flight
//! together.
//!
//! A pipe holds at most its capacity (1 MiB by default, the READ size), counted in pages, so
//! a READ that does not start on a page boundary may not fit whole: what does not fit is read
//! with `pread` and sent after the pipe's bytes. Pipes are pooled (creating and sizing one
//! costs three system calls) and bounded in number; when none can be had (the bound, or the
//! kernel's limits on pipe memory for unprivileged users), or the file system cannot splice,
//! the READ is copied as before.

// pipe2, fcntl(F_SETPIPE_SZ), splice and sendmsg(MSG_MORE) have no safe wrapper in std; each
// unsafe block states what makes it sound.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tracing::debug;

/// One pipe: what is written to `write` is read from `read`.
#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A new pipe with room for at least `capacity_bytes`.
    fn new(capacity_bytes: usize) -> io::Result<Self> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
        let pipe = unsafe {
            Self {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        let want = libc::c_int::try_from(capacity_bytes)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: F_SETPIPE_SZ takes an int argument; the descriptor is open.
        let got = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(pipe)
    }
}

/// The pipes of one store, reused from READ to READ.
#[derive(Debug)]
pub(crate) struct PipePool {
    /// Empty pipes ready for use (a pipe returns here only when drained).
    idle: Mutex<Vec<Pipe>>,
    /// Pipes in existence, idle or holding a reply's bytes.
    live: AtomicUsize,
    /// The most pipes there may be: the configured bound, lowered to the number that existed
    /// when the kernel last refused one (so READs do not ask again and again).
    max_live: AtomicUsize,
    capacity_bytes: usize,
    /// Cleared when the file system or the kernel cannot splice: every READ copies from then.
    enabled: AtomicBool,
    /// Bytes put into pipes, over the pool's life.
    spliced_bytes: AtomicU64,
}

impl PipePool {
    /// A pool of at most `max_live` pipes of `capacity_bytes` each.
    pub(crate) fn new(max_live: usize, capacity_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            max_live: AtomicUsize::new(max_live),
            capacity_bytes,
            enabled: AtomicBool::new(max_live > 0),
            spliced_bytes: AtomicU64::new(0),
        })
    }

    /// Bytes put into pipes so far.
    pub(crate) fn spliced_bytes(&self) -> u64 {
        self.spliced_bytes.load(Ordering::Relaxed)
    }

    /// Pipes holding bytes of replies not yet sent (or being filled).
    pub(crate) fn in_use(&self) -> usize {
        let idle = self.lock_idle().len();
        self.live.load(Ordering::Acquire).saturating_sub(idle)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Pipe>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty pipe, or `None` when the bound is reached or no pipe can be made.
    fn take(&self) -> Option<Pipe> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(pipe) = self.lock_idle().pop() {
            return Some(pipe);
        }
        if self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_live.load(Ordering::Acquire)).then_some(n + 1)
            })
            .is_err()
        {
            return None;
        }
        match Pipe::new(self.capacity_bytes) {
            Ok(pipe) => Some(pipe),
            Err(err) => {
                // EPERM: the user's pipe memory is used up (pipe-user-pages-soft), or the
                // capacity is over pipe-max-size. Make do with the pipes there are.
                let others = self.live.fetch_sub(1, Ordering::AcqRel) - 1;
                self.max_live.fetch_min(others, Ordering::AcqRel);
                debug!(%err, pipes = others, "no more pipes for zero-copy READs");
                None
            }
        }
    }

    /// Takes back a pipe; `drained` says it holds nothing (else it is closed).
    fn give_back(&self, pipe: Pipe, drained: bool) {
        if drained {
            self.lock_idle().push(pipe);
        } else {
            drop(pipe);
            self.live.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Moves up to `len_bytes` of `file` at `offset` into a pipe. Returns the pipe with the
    /// bytes it took (`None` when it took none: no pipe, splicing unsupported, or the end of
    /// the file) and whether the end of the file was met.
    pub(crate) fn fill(
        self: &Arc<Self>,
        file: BorrowedFd<'_>,
        offset: u64,
        len_bytes: usize,
    ) -> io::Result<(Option<Spliced>, bool)> {
        if len_bytes == 0 {
            return Ok((None, false));
        }
        let Some(pipe) = self.take() else {
            return Ok((None, false));
        };
        let mut spliced = Spliced {
            pipe: Some(pipe),
            len_bytes: 0,
            pool: self.clone(),
        };
        let mut at_eof = false;
        while spliced.len_bytes < len_bytes {
            let Some(pipe) = spliced.pipe.as_ref() else {
                break;
            };
            let Ok(mut off) =
                libc::loff_t::try_from(offset.saturating_add(spliced.len_bytes as u64))
            else {
                break;
            };
            // SAFETY: both descriptors are open; `off` is a valid loff_t the kernel updates.
            let n = unsafe {
                libc::splice(
                    file.as_raw_fd(),
                    &mut off,
                    pipe.write.as_raw_fd(),
                    std::ptr::null_mut(),
                    len_bytes - spliced.len_bytes,
                    libc::SPLICE_F_NONBLOCK,
                )
            };
            match n {
                0 => {
                    at_eof = true;
                    break;
                }
                n if n > 0 => spliced.len_bytes += n as usize,
                _ => {
                    let err = io::Error::last_os_error();
                    match err.raw_os_error() {
                        Some(libc::EINTR) => {}
                        // The pipe is full: the rest is copied.
                        Some(libc::EAGAIN) => break,
                        // This file system cannot splice.
                        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                            if spliced.len_bytes == 0 =>
                        {
                            debug!(%err, "splice from a file failed: READs copy from now on");
                            self.enabled.store(false, Ordering::Relaxed);
                            break;
                        }
                        _ => return Err(err),
                    }
                }
            }
        }
        self.spliced_bytes
            .fetch_add(spliced.len_bytes as u64, Ordering::Relaxed);
        Ok(((spliced.len_bytes > 0).then_some(spliced), at_eof))
    }
}

/// Bytes of a file waiting in a pipe for the connection writer. Dropping it returns the pipe
/// to its pool if it was drained, and closes it otherwise.
pub struct Spliced {
    pipe: Option<Pipe>,
    len_bytes: usize,
    pool: Arc<PipePool>,
}

impl std::fmt::Debug for Spliced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spliced")
            .field("len_bytes", &self.len_bytes)
            .finish_non_exhaustive()
    }
}

impl Drop for Spliced {
    fn drop(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            self.pool.give_back(pipe, self.len_bytes == 0);
        }
    }
}

impl Spliced {
    /// Bytes still in the pipe.
    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    /// True when every byte has left the pipe.
    pub fn is_empty(&self) -> bool {
        self.len_bytes == 0
    }

    fn read_fd(&self) -> io::Result<BorrowedFd<'_>> {
        self.pipe
            .as_ref()
            .map(|p| p.read.as_fd())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// Moves bytes from the pipe to `socket` (non-blocking: `WouldBlock` when the socket is
    /// full); `more` tells TCP that more of the record follows at once. Returns the bytes
    /// moved.
    pub fn splice_to(&mut self, socket: BorrowedFd<'_>, more: bool) -> io::Result<usize> {
        if self.len_bytes == 0 {
            return Ok(0);
        }
        let mut flags = libc::SPLICE_F_NONBLOCK;
        if more {
            flags |= libc::SPLICE_F_MORE;
        }
        // SAFETY: both descriptors are open; no offsets (pipe and socket have none).
        let n = unsafe {
            libc::splice(
                self.read_fd()?.as_raw_fd(),
                std::ptr::null_mut(),
                socket.as_raw_fd(),
                std::ptr::null_mut(),
                self.len_bytes,
                flags,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        assert!(n <= self.len_bytes, "splice moved more than the pipe held");
        self.len_bytes -= n;
        Ok(n)
    }

    /// Reads every byte left in the pipe onto the end of `out` (the copying way, for a stream
    /// that is not a socket).
    pub fn read_to_vec(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        out.reserve(self.len_bytes);
        while self.len_bytes > 0 {
            let spare = out.spare_capacity_mut();
            let want = self.len_bytes.min(spare.len());
            // SAFETY: `spare` is writable for `want` bytes; the kernel writes at most that.
            let n =
                unsafe { libc::read(self.read_fd()?.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "pipe ended before its bytes",
                ));
            }
            let n = n as usize;
            // SAFETY: the kernel initialised the first `n <= want` bytes of the spare capacity.
            unsafe { out.set_len(out.len() + n) };
            self.len_bytes -= n;
        }
        Ok(())
    }
}

/// A reply record whose middle waits in a pipe: `head`, the pipe's bytes, then `tail`.
#[derive(Debug)]
pub struct SplicedReply {
    /// Segments before the pipe's bytes.
    pub head: Vec<Bytes>,
    /// The bytes in the pipe.
    pub pipe: Spliced,
    /// Segments after the pipe's bytes.
    pub tail: Vec<Bytes>,
}

impl SplicedReply {
    /// The record's length.
    pub fn len_bytes(&self) -> usize {
        self.head.iter().map(Bytes::len).sum::<usize>()
            + self.pipe.len_bytes()
            + self.tail.iter().map(Bytes::len).sum::<usize>()
    }

    /// The record as one buffer (copies the pipe's bytes out; for tests and for streams that
    /// cannot splice).
    pub fn into_bytes(mut self) -> io::Result<Bytes> {
        let mut out = Vec::with_capacity(self.len_bytes());
        for segment in &self.head {
            out.extend_from_slice(segment);
        }
        self.pipe.read_to_vec(&mut out)?;
        for segment in &self.tail {
            out.extend_from_slice(segment);
        }
        Ok(Bytes::from(out))
    }
}

/// `sendmsg` of `slices` with `MSG_MORE` (the pipe's bytes follow at once, so TCP need not
/// push a segment of the header alone). Non-blocking on a non-blocking socket.
pub(crate) fn send_more(socket: BorrowedFd<'_>, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = slices.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = slices.len().min(libc::UIO_MAXIOV as usize) as _;
    // SAFETY: IoSlice is ABI-compatible with iovec on Unix; the slices outlive the call.
    let n = unsafe {
        libc::sendmsg(
            socket.as_raw_fd(),
            &msg,
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file_with(data: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(data).expect("write");
        file
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn fill_takes_what_fits_and_the_pipe_returns_when_drained() {
        let data = pattern(300 * 1024);
        let file = file_with(&data);
        let pool = PipePool::new(1, 256 * 1024);
        let (spliced, at_eof) = pool.fill(file.as_fd(), 0, data.len()).expect("fill");
        let mut spliced = spliced.expect("a pipe");
        // 256 KiB of pipe holds 64 pages: the rest is left for pread.
        assert_eq!(spliced.len_bytes(), 256 * 1024);
        assert!(!at_eof);
        // The bound: no second pipe while the first is out.
        let (second, _) = pool.fill(file.as_fd(), 0, 10).expect("fill");
        assert!(second.is_none());
        let mut out = Vec::new();
        spliced.read_to_vec(&mut out).expect("read");
        assert_eq!(out, &data[..256 * 1024]);
        drop(spliced);
        assert_eq!(
            pool.lock_idle().len(),
            1,
            "a drained pipe goes back to the pool"
        );
        // Reused, from an offset not on a page boundary, up to the end of the file.
        let (spliced, at_eof) = pool
            .fill(file.as_fd(), 250 * 1024 + 3, 1 << 20)
            .expect("fill");
        let mut out = Vec::new();
        spliced
            .expect("a pipe")
            .read_to_vec(&mut out)
            .expect("read");
        assert_eq!(out, &data[250 * 1024 + 3..]);
        assert!(at_eof);
        assert_eq!(pool.live.load(Ordering::Relaxed), 1);
        assert_eq!(pool.spliced_bytes(), (256 * 1024 + out.len()) as u64);
    }

    #[test]
    fn an_undrained_pipe_is_closed_not_reused() {
        let file = file_with(&pattern(8192));
        let pool = PipePool::new(2, 64 * 1024);
        let (spliced, _) = pool.fill(file.as_fd(), 0, 8192).expect("fill");
        drop(spliced.expect("a pipe"));
        assert_eq!(pool.lock_idle().len(), 0);
        assert_eq!(pool.live.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_refused_pipe_is_not_asked_for_again() {
        let file = file_with(&pattern(65536));
        // A capacity F_SETPIPE_SZ cannot take.
        let pool = PipePool::new(4, 1 << 40);
        let (spliced, _) = pool
            .fill(file.as_fd(), 0, 65536)
            .expect("fill copies instead");
        assert!(spliced.is_none());
        assert_eq!(pool.max_live.load(Ordering::Relaxed), 0);
        assert_eq!(pool.live.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn at_the_end_of_the_file_nothing_is_spliced() {
        let file = file_with(&pattern(100));
        let pool = PipePool::new(1, 64 * 1024);
        let (spliced, at_eof) = pool.fill(file.as_fd(), 100, 4096).expect("fill");
        assert!(spliced.is_none());
        assert!(at_eof);
        assert_eq!(pool.lock_idle().len(), 1, "the unused pipe is kept");
    }
}
