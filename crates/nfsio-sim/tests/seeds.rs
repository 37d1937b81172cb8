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
    let t = &total;
    assert!(t.crashes > 0 && t.partitions > 0 && t.holds > 0, "{t:?}");
    assert!(
        t.crashes_in_commit_call > 0
            && t.crashes_in_commit_reply > 0
            && t.crashes_after_write_reply > 0
            && t.crashes_in_retransmission > 0,
        "{t:?}"
    );
    assert!(t.resets > 0 && t.resets_at_reply > 0, "{t:?}");
    assert!(
        t.write_errors > 0 && t.sync_errors > 0 && t.short_writes > 0,
        "{t:?}"
    );
    assert!(t.weaker_stability > 0 && t.skewed_verifiers > 0, "{t:?}");
    // And the checker did look.
    assert!(t.retransmissions > 0 && t.observer_checks > 0, "{t:?}");
    assert!(t.peak_cache_bytes > 0, "{t:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    // Seeds with crashes, resets and holds among their faults; each run twice in one process
    // (tokio's task ids differ between the runs, so nothing may depend on them).
    for seed in [3, 17, 29, 141] {
        let first = run(seed, Workload::default());
        let second = run(seed, Workload::default());
        assert_eq!(first, second, "seed {seed}");
        let counts = first.unwrap_or_default();
        assert!(
            counts.sim_ms > 0 && counts.observer_checks > 0,
            "seed {seed}: {counts:?}"
        );
    }
}
