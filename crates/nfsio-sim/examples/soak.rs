//! Soak: runs many seeds, prints one line per failure with the command that replays it, and a
//! summary of how often each fault fired.
//!
//! ```text
//! cargo run --release -p nfsio-sim --example soak -- [--seeds N] [--from S] [--jobs J] [--seed S]
//! ```
//!
//! `--jobs J` runs J threads, each taking every J-th seed; each seed's run is deterministic
//! on its own, so the result does not depend on J.

use std::time::Instant;

use nfsio_sim::{FaultCounts, Workload, run};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let (from, count) = match value("--seed") {
        Some(seed) => (seed, 1),
        None => (
            value("--from").unwrap_or(0),
            value("--seeds").unwrap_or(1000),
        ),
    };
    let jobs = value("--jobs").unwrap_or(1).clamp(1, 64);
    let started = Instant::now();
    let workers: Vec<_> = (0..jobs)
        .map(|job| {
            std::thread::spawn(move || {
                let mut total = FaultCounts::default();
                let mut failed = 0u64;
                let mut seed = from + job;
                while seed < from + count {
                    match run(seed, Workload::default()) {
                        Ok(counts) => total.add(&counts),
                        Err(error) => {
                            failed += 1;
                            println!(
                                "FAIL {error}\n  replay: cargo run --release -p nfsio-sim --example soak -- --seed {seed}"
                            );
                        }
                    }
                    seed += jobs;
                }
                (total, failed)
            })
        })
        .collect();
    let mut total = FaultCounts::default();
    let mut failed = 0u64;
    for worker in workers {
        match worker.join() {
            Ok((counts, failures)) => {
                total.add(&counts);
                failed += failures;
            }
            Err(_) => {
                println!("FAIL a soak thread panicked");
                failed += 1;
            }
        }
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "{count} seeds from {from}: {failed} failed, {:.0} seeds/minute ({jobs} jobs)",
        count as f64 / minutes.max(1e-9)
    );
    let t = &total;
    println!(
        "faults fired: {} random crashes; aimed crashes: {} at a COMMIT call, {} at a COMMIT reply, {} after a WRITE reply, {} at a retransmission; {} partitions, {} holds, {} connection resets ({} at a non-idempotent reply), {} write errors, {} sync errors, {} short writes, {} stable WRITEs answered UNSTABLE, {} skewed verifiers",
        t.crashes,
        t.crashes_in_commit_call,
        t.crashes_in_commit_reply,
        t.crashes_after_write_reply,
        t.crashes_in_retransmission,
        t.partitions,
        t.holds,
        t.resets,
        t.resets_at_reply,
        t.write_errors,
        t.sync_errors,
        t.short_writes,
        t.weaker_stability,
        t.skewed_verifiers
    );
    println!(
        "seen: {} retransmissions on the wire, {} application errors recovered, {} rename errors, {} close-to-open checks, peak cache {} KiB, {:.0} simulated s",
        t.retransmissions,
        t.app_errors,
        t.rename_errors,
        t.observer_checks,
        t.peak_cache_bytes >> 10,
        t.sim_ms as f64 / 1000.0
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
