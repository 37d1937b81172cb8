//! Engine CPU cost and WRITE counts against an instant in-memory server (no network, no disk):
//! `cargo run --release -p nfsio-cache --example engine_bench`.
//!
//! - sequential: 1 GiB in 64 KiB application writes, then fsync;
//! - random: 100,000 random 4 KiB writes into a 256 MiB file, then fsync (the number of WRITE
//!   RPCs against one per application write): a file created empty and extended to 256 MiB
//!   (the gaps between written pages are known zeros, so WRITEs bridge them), and an existing
//!   256 MiB file whose content the cache has not read (no bridging).

use std::time::Instant;

use nfsio_cache::{Engine, EngineConfig, Op, Reply, WriteOutcome};
use nfsio_proto::nfs3::{Fattr, FileHandle, WriteVerifier};

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
    println!("| run | app writes | WRITE RPCs | COMMITs | engine time | per app write |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");

    let mut run = Run::new(EngineConfig::default());
    let file = run
        .engine
        .open(FileHandle::from(vec![1]), &Fattr::default(), 0);
    let chunk = vec![0x5a; 64 << 10];
    let n = (1u64 << 30) / chunk.len() as u64;
    let started = Instant::now();
    for i in 0..n {
        run.write(file, i * chunk.len() as u64, &chunk);
        run.pump(true);
    }
    run.fsync(file);
    let elapsed = started.elapsed();
    println!(
        "| sequential 1 GiB, 64 KiB writes | {n} | {} | {} | {:.2?} | {:.2?} |",
        run.writes,
        run.commits,
        elapsed,
        elapsed / n as u32
    );

    for (label, extend) in [
        ("random 100k x 4 KiB, new file extended to 256 MiB", true),
        ("random 100k x 4 KiB, existing 256 MiB file", false),
    ] {
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
        println!(
            "| {label} | {n} | {} | {} | {:.2?} | {:.2?} |",
            run.writes,
            run.commits,
            elapsed,
            elapsed / n as u32
        );
    }
}
