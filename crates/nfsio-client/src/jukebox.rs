//! The client's one NFS3ERR_JUKEBOX policy for calls a caller waits on.
//!
//! NFS3ERR_JUKEBOX means "the server is fetching the object from slow storage: ask again
//! later" (RFC 1813); like Linux's client, nfsio asks again, after a back-off, for as long as
//! the server says so. The back-off is the write-back engine's (`EngineConfig`'s
//! `retry_initial_ms`, doubling up to `retry_max_ms`), so one set of numbers governs both
//! the calls the facade and [`ReadDir`](crate::ReadDir) make here and the WRITEs, COMMITs,
//! READs and SETATTRs the engine retries itself (the procedure layer beneath both retries
//! nothing).
//!
//! A busy server answers JUKEBOX to a burst of calls and then serves them (nfs-ganesha does,
//! under a tree copy), so a retry is logged at debug level; a call the server keeps refusing
//! is worth a warning, once, after [`WARN_AFTER_MS`] of asking (Linux's client says nothing
//! at all).

use std::future::Future;
use std::time::Duration;

use nfsio_cache::{Backoff, EngineConfig};
use nfsio_proto::nfs3::Nfs3Status;
use tracing::{debug, warn};

use crate::error::{NfsError, NfsResult};

/// How long a call is asked again before the retries are worth a warning.
const WARN_AFTER_MS: u64 = 5_000;

/// How long to wait before asking again after NFS3ERR_JUKEBOX: the engine's [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jukebox(Backoff);

impl Jukebox {
    /// The write-back engine's back-off.
    pub(crate) fn of(config: &EngineConfig) -> Self {
        Self(config.backoff())
    }

    /// Runs `call` until it returns anything but NFS3ERR_JUKEBOX, waiting between tries.
    pub(crate) async fn retry<T, F, Fut>(&self, mut call: F) -> NfsResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = NfsResult<T>>,
    {
        let mut wait_ms = 0;
        let mut asked = Asked::default();
        loop {
            match call().await {
                Err(NfsError::Status {
                    proc_name,
                    status: Nfs3Status::Jukebox,
                }) => {
                    if asked.worth_a_warning() {
                        warn!(
                            proc = proc_name,
                            waited_ms = asked.waited_ms,
                            "the server keeps answering NFS3ERR_JUKEBOX; still asking"
                        );
                    }
                    wait_ms = self.0.next_ms(wait_ms);
                    debug!(proc = proc_name, wait_ms, "NFS3ERR_JUKEBOX: asking again");
                    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                    asked.waited(wait_ms);
                }
                result => return result,
            }
        }
    }
}

/// How long one call has been asked again, and whether that was worth a warning yet.
#[derive(Debug, Default)]
struct Asked {
    waited_ms: u64,
    warned: bool,
}

impl Asked {
    fn waited(&mut self, wait_ms: u64) {
        self.waited_ms = self.waited_ms.saturating_add(wait_ms);
    }

    /// True once, when the call has been asked again for [`WARN_AFTER_MS`].
    fn worth_a_warning(&mut self) -> bool {
        let warn = !self.warned && self.waited_ms >= WARN_AFTER_MS;
        self.warned |= warn;
        warn
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn jukebox(proc_name: &'static str) -> NfsError {
        NfsError::Status {
            proc_name,
            status: Nfs3Status::Jukebox,
        }
    }

    #[test]
    fn waits_are_the_engines_back_off_doubling_up_to_its_longest() {
        let config = EngineConfig {
            retry_initial_ms: 100,
            retry_max_ms: 700,
            ..EngineConfig::default()
        };
        let policy = Jukebox::of(&config);
        let mut wait_ms = 0;
        let waits: Vec<u64> = (0..5)
            .map(|_| {
                wait_ms = policy.0.next_ms(wait_ms);
                wait_ms
            })
            .collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
    }

    #[test]
    fn a_burst_of_jukebox_is_not_worth_a_warning_and_a_long_refusal_is_once() {
        let policy = Jukebox::of(&EngineConfig::default());
        let mut asked = Asked::default();
        let mut wait_ms = 0;
        // A busy server's burst: three answers, 0.7 s of waiting.
        for _ in 0..3 {
            assert!(!asked.worth_a_warning());
            wait_ms = policy.0.next_ms(wait_ms);
            asked.waited(wait_ms);
        }
        assert!(!asked.worth_a_warning());
        // Refused on and on: one warning once WARN_AFTER_MS has passed, and no more.
        let mut warnings = 0;
        for _ in 0..20 {
            wait_ms = policy.0.next_ms(wait_ms);
            asked.waited(wait_ms);
            warnings += u32::from(asked.worth_a_warning());
        }
        assert!(asked.waited_ms >= WARN_AFTER_MS);
        assert_eq!(warnings, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn jukebox_is_asked_again_after_the_back_off_and_other_errors_are_not() {
        let config = EngineConfig {
            retry_initial_ms: 100,
            retry_max_ms: 5_000,
            ..EngineConfig::default()
        };
        let policy = Jukebox::of(&config);
        let tries = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = policy
            .retry(|| async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0..=2 => Err(jukebox("GETATTR")),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(tries.load(Ordering::SeqCst), 4);
        // 100 + 200 + 400 ms of the paused clock.
        assert_eq!(started.elapsed(), Duration::from_millis(700));

        let tries = AtomicU32::new(0);
        let result: NfsResult<()> = policy
            .retry(|| async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(NfsError::Status {
                    proc_name: "LOOKUP",
                    status: Nfs3Status::NoEnt,
                })
            })
            .await;
        assert_eq!(
            result.err().and_then(|e| e.status()),
            Some(Nfs3Status::NoEnt)
        );
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
