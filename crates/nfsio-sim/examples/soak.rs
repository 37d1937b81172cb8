//! Soak: runs many seeds, prints one line per failure with the command that replays it, and a
//! summary of how often each fault fired.
//!
//! ```text
//! cargo run --release -p nfsio-sim --example soak -- [--seeds N] [--from S] [--seed S]
//! ```

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
    let started = Instant::now();
    let mut total = FaultCounts::default();
    let mut failed = 0u64;
    for seed in from..from + count {
        match run(seed, Workload::default()) {
            Ok(counts) => total.add(&counts),
            Err(error) => {
                failed += 1;
                println!(
                    "FAIL {error}\n  replay: cargo run --release -p nfsio-sim --example soak -- --seed {seed}"
                );
            }
        }
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "{count} seeds from {from}: {failed} failed, {:.0} seeds/minute",
        count as f64 / minutes.max(1e-9)
    );
    println!(
        "faults fired: {} crashes, {} partitions, {} write errors, {} sync errors, {} short writes; {} application errors recovered; {:.0} simulated s",
        total.crashes,
        total.partitions,
        total.write_errors,
        total.sync_errors,
        total.short_writes,
        total.app_errors,
        total.sim_ms as f64 / 1000.0
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
