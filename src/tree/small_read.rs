//! Reads a small local file of a tree copy without a thread hand-off when it can.
//!
//! A tree copy reads thousands of small files. Handing each read to tokio's blocking pool
//! costs two thread wake-ups per file, which on this kind of machine was a third of the
//! copy's CPU. So the file is opened on the runtime's thread, where the copy's plan listed
//! and stat'ed its directory (on a local disk its inode is in memory now), and read with
//! `preadv2(RWF_NOWAIT)`, which answers from the page cache or says EAGAIN instead of
//! waiting for the disk; only then does the rest of the read go to the blocking pool. The
//! runtime never waits on the disk for a file's bytes. (A source on a network or FUSE file
//! system, where an open is a round trip, is listed and opened at that pace.)

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cleared once the kernel refuses RWF_NOWAIT (too old, or a file system without it): every
/// read then goes to the blocking pool, as before.
static NOWAIT_WORKS: AtomicBool = AtomicBool::new(true);

/// What one non-blocking read gave.
enum Step {
    /// This many bytes (0: end of file).
    Read(usize),
    /// The page cache does not hold the next bytes (or RWF_NOWAIT is refused).
    WouldBlock,
}

/// Reads all of the file at `path`, expected to hold about `size_hint` bytes.
pub(crate) async fn read_small(path: PathBuf, size_hint: u64) -> io::Result<Vec<u8>> {
    let file = File::open(&path)?;
    let capacity = usize::try_from(size_hint).unwrap_or(0).saturating_add(1);
    let mut data = Vec::with_capacity(capacity);
    if NOWAIT_WORKS.load(Ordering::Relaxed) {
        loop {
            if data.len() == data.capacity() {
                data.reserve(data.capacity().max(4096));
            }
            match read_nowait(&file, &mut data)? {
                Step::Read(0) => return Ok(data),
                Step::Read(_) => continue,
                Step::WouldBlock => break,
            }
        }
    }
    tokio::task::spawn_blocking(move || finish(&file, data))
        .await
        .map_err(io::Error::other)?
}

/// One `preadv2(RWF_NOWAIT)` into `data`'s spare capacity, at the offset `data.len()`.
fn read_nowait(file: &File, data: &mut Vec<u8>) -> io::Result<Step> {
    let offset = libc::off_t::try_from(data.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let spare = data.spare_capacity_mut();
    let iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    loop {
        // SAFETY: `iov` points at `spare`, writable and `spare.len()` bytes long.
        let got = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        if let Ok(got) = usize::try_from(got) {
            assert!(got <= iov.iov_len, "preadv2 read past its buffer");
            // SAFETY: the kernel initialised the first `got` bytes of the spare capacity.
            unsafe { data.set_len(data.len() + got) };
            return Ok(Step::Read(got));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(Step::WouldBlock),
            Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS) => {
                NOWAIT_WORKS.store(false, Ordering::Relaxed);
                return Ok(Step::WouldBlock);
            }
            _ => return Err(error),
        }
    }
}

/// Reads the rest of `file` (blocking) after the `data.len()` bytes already read, into the
/// same buffer (`preadv2` left the file's offset at 0).
fn finish(mut file: &File, mut data: Vec<u8>) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(data.len() as u64))?;
    file.read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_every_byte_of_files_of_many_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, 200_000] {
            let path = dir.path().join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            // A hint too small and one too large: the length comes from the file.
            for hint in [0, len as u64 / 2, len as u64 * 2 + 10] {
                let read = read_small(path.clone(), hint).await.unwrap();
                assert_eq!(read, bytes, "file of {len} bytes, hint {hint}");
            }
        }
    }

    #[tokio::test]
    async fn a_file_not_in_the_page_cache_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cold");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        file.sync_all().unwrap();
        // SAFETY: a valid descriptor; the advice only drops clean cached pages.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        let read = read_small(path, 4096).await.unwrap();
        assert_eq!(read, bytes);
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_small(dir.path().join("none"), 10).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
