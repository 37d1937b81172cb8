//! Which files are written as a stream, so that their memory follows the work.
//!
//! A file written sequentially (each write starting where the last ended, as `cp`, `dd`, a
//! log or a download writes) will not rewrite what it wrote, so holding its bytes until the
//! memory bound fills buys nothing and costs the whole bound in memory. Such a file gets a
//! window instead ([`EngineConfig::streaming_window_bytes`](crate::EngineConfig)): its full
//! chunks are sent at once, a COMMIT starts when half the window awaits one, its writer waits
//! when the window is full, and its bytes leave the cache once committed. A file written
//! anywhere else (random writes) stops being a stream at once and keeps the whole cache to
//! coalesce in.

/// The sequential run of one file's writes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamTracker {
    /// Where the next write of the run starts.
    next_bytes: u64,
    /// Bytes written in the run so far.
    run_bytes: u64,
}

impl StreamTracker {
    /// A write of `len_bytes` at `offset_bytes` was accepted.
    pub(crate) fn note_write(&mut self, offset_bytes: u64, len_bytes: u64) {
        if offset_bytes == self.next_bytes && self.run_bytes > 0 {
            self.run_bytes = self.run_bytes.saturating_add(len_bytes);
        } else {
            self.run_bytes = len_bytes;
        }
        self.next_bytes = offset_bytes.saturating_add(len_bytes);
    }

    /// True once the run is `min_run_bytes` long.
    pub(crate) fn is_streaming(&self, min_run_bytes: u64) -> bool {
        self.run_bytes >= min_run_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::StreamTracker;

    #[test]
    fn a_sequential_run_streams_and_one_jump_ends_it() {
        let mut t = StreamTracker::default();
        for i in 0..4 {
            t.note_write(i * 100, 100);
        }
        assert!(t.is_streaming(400));
        assert!(!t.is_streaming(401));
        t.note_write(50, 100);
        assert!(!t.is_streaming(200));
        t.note_write(150, 100);
        assert!(t.is_streaming(200));
    }

    #[test]
    fn rewriting_the_same_range_is_not_a_stream() {
        let mut t = StreamTracker::default();
        for _ in 0..10 {
            t.note_write(0, 4096);
        }
        assert!(!t.is_streaming(8192));
    }
}
