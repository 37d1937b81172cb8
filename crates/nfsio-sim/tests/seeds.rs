//! The fixed seed set of the README's test command: each seed runs the real client and server
//! in one simulated world with the faults it chooses; any failure prints the command that
//! replays it. `SIM_SEEDS=N` changes how many seeds run (default 300).

use nfsio_sim::{FaultCounts, Workload, run};

#[test]
fn fixed_seeds_lose_nothing() {
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut total = FaultCounts::default();
    let mut failures = Vec::new();
    for seed in 0..seeds {
        match run(seed, Workload::default()) {
            Ok(counts) => total.add(&counts),
            Err(error) => failures.push(format!(
                "{error}\n  replay: cargo run --release -p nfsio-sim --example soak -- --seed {seed}"
            )),
        }
    }
    eprintln!("{seeds} seeds: {total:?}");
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The faults did fire (a harness whose faults never fire proves nothing).
    assert!(total.crashes > 0 && total.partitions > 0, "{total:?}");
    assert!(
        total.write_errors + total.sync_errors > 0 && total.short_writes > 0,
        "{total:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_run() {
    for seed in [3, 17] {
        let first = run(seed, Workload::default());
        let second = run(seed, Workload::default());
        assert_eq!(first, second, "seed {seed}");
    }
}
