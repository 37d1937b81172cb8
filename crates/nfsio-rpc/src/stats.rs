//! Per-procedure transport statistics: counts, bytes, retransmissions and round-trip times.
//!
//! What `nfsstat`/`mountstats` give a Linux user — how many calls of each kind, how many had
//! to be retransmitted, how long they took — is what tells a slow mount from a lossy network.
//! The transport records these on every completed call; the hot path costs one short mutex
//! hold and a few additions. Round-trip times go into a fixed histogram of log2-microsecond
//! buckets, enough to give a mean and a rough p99 without storing samples.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Number of round-trip-time histogram buckets: bucket `i` counts round trips of
/// `2^i ..= 2^(i+1) - 1` microseconds (bucket 0 also holds 0 µs; the last one is open-ended).
pub const RTT_BUCKETS: usize = 32;

/// Counters for one (program, procedure) pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStats {
    /// Program number.
    pub prog: u32,
    /// Procedure number.
    pub proc_num: u32,
    /// Calls that received a reply.
    pub calls: u64,
    /// Request bytes written (record payload, marks excluded), retransmissions included.
    pub bytes_sent: u64,
    /// Reply bytes received (record payload, marks excluded).
    pub bytes_received: u64,
    /// Transmissions after the first one, over all calls.
    pub retransmissions: u64,
    /// Tries that ended without a reply within the timeout.
    pub timeouts: u64,
    /// Sum of round-trip times of the replied calls, from the last transmission to the reply.
    pub rtt_sum_us: u64,
    /// Round-trip-time histogram (see [`RTT_BUCKETS`]).
    pub rtt_histogram: [u64; RTT_BUCKETS],
}

/// The histogram bucket of a round trip of `rtt_us` microseconds.
pub fn rtt_bucket(rtt_us: u64) -> usize {
    let log2 = 63 - rtt_us.max(1).leading_zeros() as usize;
    log2.min(RTT_BUCKETS - 1)
}

impl ProcStats {
    /// Mean round-trip time in microseconds, if any call completed.
    pub fn mean_rtt_us(&self) -> Option<u64> {
        let samples: u64 = self.rtt_histogram.iter().sum();
        (samples > 0).then(|| self.rtt_sum_us / samples)
    }

    /// An upper bound for the given percentile (0.0..=1.0) of round-trip times in
    /// microseconds: the top of the histogram bucket it falls in.
    pub fn rtt_percentile_us(&self, percentile: f64) -> Option<u64> {
        let samples: u64 = self.rtt_histogram.iter().sum();
        if samples == 0 {
            return None;
        }
        let rank = ((percentile.clamp(0.0, 1.0) * samples as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.rtt_histogram.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some((2u64 << bucket) - 1);
            }
        }
        Some(u64::MAX)
    }
}

/// A snapshot of a transport's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Connections established, the first one included.
    pub connects: u64,
    /// Connections established after a lost one.
    pub reconnects: u64,
    /// Connection attempts that failed or timed out (the initial one excepted).
    pub connect_failures: u64,
    /// Connections dropped because the peer sent something that is not a valid RPC reply
    /// (garbage, an oversized or truncated record).
    pub protocol_errors: u64,
    /// Replies that matched no outstanding call (late duplicates, cancelled calls): dropped.
    pub unknown_xid_replies: u64,
    /// Long replies (READs) that arrived into a receive buffer kept from an earlier reply
    /// rather than a new allocation (see [`crate::RpcConfig::spare_receive_buffers`]).
    pub receive_buffers_reused: u64,
    /// Calls outstanding at the time of the snapshot.
    pub pending_calls: usize,
    /// Per-procedure counters, sorted by program then procedure.
    pub procs: Vec<ProcStats>,
}

impl TransportStats {
    /// The counters of one procedure, if it was ever called.
    pub fn proc_stats(&self, prog: u32, proc_num: u32) -> Option<&ProcStats> {
        self.procs
            .iter()
            .find(|p| p.prog == prog && p.proc_num == proc_num)
    }

    /// Replied calls over all procedures.
    pub fn total_calls(&self) -> u64 {
        self.procs.iter().map(|p| p.calls).sum()
    }

    /// Retransmissions over all procedures.
    pub fn total_retransmissions(&self) -> u64 {
        self.procs.iter().map(|p| p.retransmissions).sum()
    }
}

/// The live counters behind [`TransportStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    procs: Mutex<HashMap<(u32, u32), ProcStats>>,
    pub(crate) connects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) unknown_xid_replies: AtomicU64,
    pub(crate) receive_buffers_reused: AtomicU64,
}

impl StatsRecorder {
    fn with_proc(&self, prog: u32, proc_num: u32, update: impl FnOnce(&mut ProcStats)) {
        let mut procs = self
            .procs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = procs.entry((prog, proc_num)).or_insert_with(|| ProcStats {
            prog,
            proc_num,
            ..ProcStats::default()
        });
        update(entry);
    }

    /// Counts one transmission of a request.
    pub(crate) fn sent(&self, prog: u32, proc_num: u32, len_bytes: u64, retransmission: bool) {
        self.with_proc(prog, proc_num, |p| {
            p.bytes_sent += len_bytes;
            p.retransmissions += u64::from(retransmission);
        });
    }

    /// Counts a reply to a call.
    pub(crate) fn replied(&self, prog: u32, proc_num: u32, len_bytes: u64, rtt: Option<Duration>) {
        self.with_proc(prog, proc_num, |p| {
            p.calls += 1;
            p.bytes_received += len_bytes;
            if let Some(rtt) = rtt {
                let rtt_us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
                p.rtt_sum_us = p.rtt_sum_us.saturating_add(rtt_us);
                p.rtt_histogram[rtt_bucket(rtt_us)] += 1;
            }
        });
    }

    /// Counts a try that timed out.
    pub(crate) fn timed_out(&self, prog: u32, proc_num: u32) {
        self.with_proc(prog, proc_num, |p| p.timeouts += 1);
    }

    /// Increments one of the connection counters.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot; `pending_calls` is filled in by the caller.
    pub(crate) fn snapshot(&self, pending_calls: usize) -> TransportStats {
        let mut procs: Vec<ProcStats> = self
            .procs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        procs.sort_by_key(|p| (p.prog, p.proc_num));
        TransportStats {
            connects: self.connects.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            protocol_errors: self.protocol_errors.load(Ordering::Relaxed),
            unknown_xid_replies: self.unknown_xid_replies.load(Ordering::Relaxed),
            receive_buffers_reused: self.receive_buffers_reused.load(Ordering::Relaxed),
            pending_calls,
            procs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2_microseconds() {
        assert_eq!(rtt_bucket(0), 0);
        assert_eq!(rtt_bucket(1), 0);
        assert_eq!(rtt_bucket(2), 1);
        assert_eq!(rtt_bucket(3), 1);
        assert_eq!(rtt_bucket(1024), 10);
        assert_eq!(rtt_bucket(u64::MAX), RTT_BUCKETS - 1);
    }

    #[test]
    fn mean_and_p99() {
        let rec = StatsRecorder::default();
        for _ in 0..99 {
            rec.replied(1, 2, 10, Some(Duration::from_micros(100)));
        }
        rec.replied(1, 2, 10, Some(Duration::from_millis(10)));
        let stats = rec.snapshot(0);
        let p = stats.proc_stats(1, 2).unwrap();
        assert_eq!(p.calls, 100);
        assert_eq!(p.bytes_received, 1000);
        assert_eq!(p.mean_rtt_us(), Some((99 * 100 + 10_000) / 100));
        // 100 µs lies in bucket 6 (64..=127).
        assert_eq!(p.rtt_percentile_us(0.99), Some(127));
        // 10 000 µs lies in bucket 13 (8192..=16383).
        assert_eq!(p.rtt_percentile_us(1.0), Some(16383));
        assert_eq!(ProcStats::default().rtt_percentile_us(0.5), None);
    }
}
