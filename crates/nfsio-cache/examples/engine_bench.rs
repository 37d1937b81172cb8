//! Engine CPU cost and WRITE counts against an instant in-memory server (no network, no disk):
//! `cargo run --release -p nfsio-cache --example engine_bench [RUN...]`, RUN one of `seq64k`,
//! `seq4k`, `random-new`, `random-existing` (all of them when none is named).
//!
//! - sequential: 1 GiB in 64 KiB application writes, and 1 GiB in 4 KiB writes, then fsync;
//! - random: 100,000 random 4 KiB writes into a 256 MiB file, then fsync (the number of WRITE
//!   RPCs against one per application write): a file created empty and extended to 256 MiB
//!   (the gaps between written pages are known zeros, so WRITEs bridge them), and an existing
//!   256 MiB file whose content the cache has not read (no bridging).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nfsio_cache::{Engine, EngineConfig, Op, Reply, WriteOutcome};
use nfsio_proto::nfs3::{Fattr, FileHandle, WriteVerifier};

/// The system allocator, counting the allocations (and reallocations) made through it.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made so far.
fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Prints one row of the table: `n` application writes of `write_bytes` took `elapsed` and
/// `allocs` allocations.
fn report(label: &str, run: &Run, n: u64, write_bytes: u64, elapsed: Duration, allocs: u64) {
    let gib = (n * write_bytes) as f64 / f64::from(1u32 << 30);
    println!(
        "| {label} | {n} | {} | {} | {:.2?} | {:.2?} | {:.2} | {:.0} |",
        run.writes,
        run.commits,
        elapsed,
        elapsed / n as u32,
        allocs as f64 / n as f64,
        allocs as f64 / gib
    );
}

struct Run {
    engine: Engine,
    writes: u64,
    commits: u64,
    in_flight: Vec<nfsio_cache::Transmit>,
}

impl Run {
    fn new(config: EngineConfig) -> Self {
        Self {
            engine: Engine::new(config).expect("config"),
            writes: 0,
            commits: 0,
            in_flight: Vec::new(),
        }
    }

    /// Sends what the engine wants; answers the oldest call when `answer` (instantly).
    fn pump(&mut self, answer: bool) {
        while let Some(t) = self.engine.poll_transmit(0) {
            self.in_flight.push(t);
        }
        if answer && !self.in_flight.is_empty() {
            let t = self.in_flight.remove(0);
            let reply = match &t.op {
                Op::Write { data, stable, .. } => {
                    self.writes += 1;
                    Reply::Write {
                        count_bytes: data.len() as u32,
                        committed: *stable,
                        verf: WriteVerifier([1; 8]),
                        post_op_attrs: None,
                    }
                }
                Op::Commit { .. } => {
                    self.commits += 1;
                    Reply::Commit {
                        verf: WriteVerifier([1; 8]),
                        post_op_attrs: None,
                    }
                }
                Op::Setattr { .. } => Reply::Setattr {
                    post_op_attrs: None,
                },
                other => panic!("unexpected {other:?}"),
            };
            self.engine.on_reply(t.id, reply, 0);
        }
        while self.engine.poll_event().is_some() {}
    }

    fn write(&mut self, file: nfsio_cache::FileId, offset: u64, data: &[u8]) {
        loop {
            match self.engine.write(file, offset, data, 0).expect("write") {
                WriteOutcome::Accepted => {
                    self.pump(false);
                    return;
                }
                WriteOutcome::Blocked(_) => self.pump(true),
            }
        }
    }

    fn fsync(&mut self, file: nfsio_cache::FileId) {
        let ticket = self.engine.fsync(file, 0).expect("fsync");
        while self.engine.poll_sync(ticket).is_none() {
            self.pump(true);
        }
    }
}

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let runs: [(&str, fn()); 4] = [
        ("seq64k", || sequential(64 << 10)),
        ("seq4k", || sequential(4 << 10)),
        ("random-new", || random(true)),
        ("random-existing", || random(false)),
    ];
    if let Some(bad) = wanted
        .iter()
        .find(|w| runs.iter().all(|(name, _)| name != w))
    {
        eprintln!(
            "engine_bench: no run named {bad:?} (seq64k, seq4k, random-new, random-existing)"
        );
        std::process::exit(2);
    }
    println!(
        "| run | app writes | WRITE RPCs | COMMITs | engine time | per app write | allocations per app write | per GiB written |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, run) in runs {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            run();
        }
    }
}

/// 1 GiB in order in writes of `write_bytes`, then fsync.
fn sequential(write_bytes: usize) {
    let mut run = Run::new(EngineConfig::default());
    let file = run
        .engine
        .open(FileHandle::from(vec![1]), &Fattr::default(), 0);
    let chunk = vec![0x5a; write_bytes];
    let n = (1u64 << 30) / chunk.len() as u64;
    let allocs_before = allocations();
    let started = Instant::now();
    for i in 0..n {
        run.write(file, i * chunk.len() as u64, &chunk);
        run.pump(true);
    }
    run.fsync(file);
    let elapsed = started.elapsed();
    let label = format!("sequential 1 GiB, {} KiB writes", write_bytes >> 10);
    let allocs = allocations() - allocs_before;
    report(&label, &run, n, write_bytes as u64, elapsed, allocs);
}

/// 100,000 random 4 KiB writes into a 256 MiB file, then fsync: a new file extended to 256
/// MiB when `extend`, else an existing one whose content is not cached.
fn random(extend: bool) {
    let label = if extend {
        "random 100k x 4 KiB, new file extended to 256 MiB"
    } else {
        "random 100k x 4 KiB, existing 256 MiB file"
    };
    let mut run = Run::new(EngineConfig::default());
    let attrs = Fattr {
        size: if extend { 0 } else { 256 << 20 },
        ..Fattr::default()
    };
    let file = run.engine.open(FileHandle::from(vec![2]), &attrs, 0);
    if extend {
        let ticket = run.engine.truncate(file, 256 << 20, 0).expect("truncate");
        while run.engine.poll_sync(ticket).is_none() {
            run.pump(true);
        }
    }
    let page = vec![0xa5; 4096];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let n = 100_000u64;
    let allocs_before = allocations();
    let started = Instant::now();
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let offset = (state % 65_536) * 4096;
        run.write(file, offset, &page);
    }
    run.fsync(file);
    let elapsed = started.elapsed();
    let allocs = allocations() - allocs_before;
    report(label, &run, n, page.len() as u64, elapsed, allocs);
}
