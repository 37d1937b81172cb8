//! The engine's knobs, with their units in their names, and the check that they make sense.
//!
//! Everything the engine decides on its own — how much to buffer, when to start flushing, when
//! to COMMIT, how far to read ahead, how long to back off — is a field here, so that the async
//! shell can derive it from the mount (FSINFO's `wtmax`/`rtmax`, the transport's slot count)
//! and a test can shrink it to a few pages.

use thiserror::Error;

/// How the engine buffers, flushes and reads ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Granularity of READs: uncached ranges are read in whole, aligned pages. Dirty state is
    /// tracked per byte, so this does not widen what a WRITE sends.
    pub page_bytes: u32,
    /// Largest WRITE (FSINFO `wtmax`). WRITEs are also aligned: one never crosses a multiple
    /// of `wsize_bytes`, so a sequential stream is sent as aligned, full-size WRITEs whose
    /// payload is one cache buffer (no copy).
    pub wsize_bytes: u32,
    /// Largest READ (FSINFO `rtmax`).
    pub rsize_bytes: u32,
    /// WRITE, COMMIT and SETATTR calls in flight at once, over all files (the transport's
    /// slots left for writing).
    pub max_inflight_writes: usize,
    /// READ calls in flight at once, over all files.
    pub max_inflight_reads: usize,
    /// One bound on the bytes the engine holds: dirty, in flight, awaiting COMMIT and clean.
    /// Clean bytes are evicted first; writers are told to wait (`Blocked`) rather than the
    /// cache growing past it.
    pub memory_bound_bytes: u64,
    /// Dirty bytes (over all files) from which background flushing starts sending full,
    /// aligned WRITEs without waiting for a `fsync`.
    pub background_flush_bytes: u64,
    /// A file whose bytes awaiting COMMIT reach this gets a COMMIT while it is still being
    /// written, so that the server's disk flush overlaps the transfer.
    pub commit_threshold_bytes: u64,
    /// Non-clean bytes (dirty, in flight, awaiting COMMIT) a file written as a stream may
    /// hold: its full chunks are sent at once, it is committed when half of this awaits a
    /// COMMIT, its writer waits when this is reached, and its committed bytes leave the cache
    /// (see `stream.rs`). Random writers are not held to it. A window at least the write
    /// limit ([`EngineConfig::write_limit_bytes`]) treats streams as any other writer.
    pub streaming_window_bytes: u64,
    /// First readahead window of a sequential reader.
    pub readahead_initial_bytes: u64,
    /// The readahead window doubles on each sequential read, up to this.
    pub readahead_max_bytes: u64,
    /// Bytes that stay dirty or unflushed this long are written and committed even without a
    /// `fsync` (like Linux's `dirty_expire_centisecs`).
    pub dirty_expire_ms: u64,
    /// First back-off after `NFS3ERR_JUKEBOX` or a call without an answer; it doubles.
    pub retry_initial_ms: u64,
    /// Longest back-off.
    pub retry_max_ms: u64,
    /// After this many successive verifier mismatches on one file, the file is written
    /// FILE_SYNC (some servers' WRITE and COMMIT verifiers never match).
    pub verifier_mismatch_limit: u32,
    /// Longest run of bytes with known server content (clean cached bytes, known zeros) that
    /// a WRITE may carry to join two dirty ranges into one call (0: never join).
    pub bridge_gap_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            page_bytes: 4096,
            wsize_bytes: 1 << 20,
            rsize_bytes: 1 << 20,
            max_inflight_writes: 16,
            max_inflight_reads: 8,
            memory_bound_bytes: 256 << 20,
            background_flush_bytes: 64 << 20,
            commit_threshold_bytes: 64 << 20,
            streaming_window_bytes: 32 << 20,
            readahead_initial_bytes: 128 << 10,
            readahead_max_bytes: 4 << 20,
            dirty_expire_ms: 30_000,
            retry_initial_ms: 100,
            retry_max_ms: 10_000,
            verifier_mismatch_limit: 3,
            bridge_gap_bytes: 64 << 10,
        }
    }
}

/// A configuration the engine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A size or count that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The memory bound cannot hold a few full WRITEs next to the read reserve.
    #[error(
        "memory_bound_bytes ({bound_bytes}) must be at least 4 x max(wsize, rsize) ({transfer_bytes})"
    )]
    BoundTooSmall {
        /// The configured bound.
        bound_bytes: u64,
        /// The larger of the WRITE and READ sizes.
        transfer_bytes: u64,
    },
    /// The back-off range is empty.
    #[error("retry_initial_ms ({initial_ms}) exceeds retry_max_ms ({max_ms})")]
    RetryRange {
        /// First back-off.
        initial_ms: u64,
        /// Longest back-off.
        max_ms: u64,
    },
}

/// The back-off between tries of a call answered NFS3ERR_JUKEBOX ("ask again later") or not
/// answered at all: `initial_ms`, doubling up to `max_ms`. The one policy of a client: the
/// engine backs its own calls off by it, and the async shell the calls an application waits
/// on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial_ms: u64,
    /// The longest wait.
    pub max_ms: u64,
}

impl Backoff {
    /// The wait after one of `previous_ms` (0: the first wait); never 0.
    pub fn next_ms(&self, previous_ms: u64) -> u64 {
        let next_ms = if previous_ms == 0 {
            self.initial_ms
        } else {
            previous_ms.saturating_mul(2).min(self.max_ms)
        };
        next_ms.max(1)
    }
}

impl EngineConfig {
    /// The back-off of retried calls (`retry_initial_ms` doubling up to `retry_max_ms`).
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial_ms: self.retry_initial_ms,
            max_ms: self.retry_max_ms,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive: [(&'static str, u64); 12] = [
            ("page_bytes", u64::from(self.page_bytes)),
            ("wsize_bytes", u64::from(self.wsize_bytes)),
            ("rsize_bytes", u64::from(self.rsize_bytes)),
            ("max_inflight_writes", self.max_inflight_writes as u64),
            ("max_inflight_reads", self.max_inflight_reads as u64),
            ("memory_bound_bytes", self.memory_bound_bytes),
            ("background_flush_bytes", self.background_flush_bytes),
            ("commit_threshold_bytes", self.commit_threshold_bytes),
            ("streaming_window_bytes", self.streaming_window_bytes),
            ("retry_initial_ms", self.retry_initial_ms),
            (
                "verifier_mismatch_limit",
                u64::from(self.verifier_mismatch_limit),
            ),
            ("dirty_expire_ms", self.dirty_expire_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Zero(name));
        }
        let transfer = u64::from(self.wsize_bytes.max(self.rsize_bytes));
        if self.memory_bound_bytes < 4 * transfer {
            return Err(ConfigError::BoundTooSmall {
                bound_bytes: self.memory_bound_bytes,
                transfer_bytes: transfer,
            });
        }
        if self.retry_initial_ms > self.retry_max_ms {
            return Err(ConfigError::RetryRange {
                initial_ms: self.retry_initial_ms,
                max_ms: self.retry_max_ms,
            });
        }
        Ok(())
    }

    /// Bytes kept free for READ replies, so that a reader always makes progress even when
    /// writers have filled the cache: the in-flight READs' worth, at most a quarter of the
    /// bound.
    pub fn read_reserve_bytes(&self) -> u64 {
        (self.max_inflight_reads as u64)
            .saturating_mul(u64::from(self.rsize_bytes))
            .min(self.memory_bound_bytes / 4)
    }

    /// Non-clean bytes (dirty, in flight, awaiting COMMIT) from which writers are blocked:
    /// the bound less the read reserve.
    pub fn write_limit_bytes(&self) -> u64 {
        self.memory_bound_bytes - self.read_reserve_bytes()
    }

    /// The sequential run after which a file counts as a stream: two full WRITEs.
    pub fn stream_run_bytes(&self) -> u64 {
        2 * u64::from(self.wsize_bytes)
    }

    /// Unstable bytes from which a stream is committed: half its window, or the general
    /// threshold if that is lower.
    pub fn stream_commit_bytes(&self) -> u64 {
        (self.streaming_window_bytes / 2)
            .max(1)
            .min(self.commit_threshold_bytes)
    }

    /// Non-clean bytes from which the engine flushes and commits everything it can, not only
    /// full WRITEs: three quarters of the write limit.
    pub fn pressure_bytes(&self) -> u64 {
        self.write_limit_bytes() / 4 * 3
    }
}
