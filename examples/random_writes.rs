//! `random_writes`: the random-write benchmark of issue #4 (the write-back cache).
//!
//! ```text
//! random_writes URL --size-mib 256 --count 100000 --seed 1 --mode cache|direct --reference PATH
//! ```
//!
//! Creates the file at `URL` (truncating it), sizes it to `--size-mib` MiB of zeros with
//! `File::set_len`, then makes `--count` writes of 4 KiB of pseudo-random bytes at
//! pseudo-random 4 KiB-aligned offsets in `[0, size)`. Offsets and bytes come from a SplitMix64
//! generator seeded by `--seed`, so two runs with the same seed write the same pattern.
//!
//! - `--mode cache`: every write is one `File::write_at`, awaited before the next (an
//!   application writing through the file), then `File::sync_all` and `File::close`.
//! - `--mode direct`: every write is one UNSTABLE `Client::write` of 4 KiB, with up to
//!   `--inflight` (16) in flight and never two at the same offset at once, then one COMMIT.
//!   Every WRITE must take all 4096 bytes and carry the COMMIT's verifier; otherwise the run
//!   fails with exit status 1.
//!
//! Both modes first write the same pattern into the local file `--reference` (sized with
//! `set_len` too), so that `cmp` can check the server's copy afterwards.
//!
//! Prints one line on stdout:
//!
//! ```text
//! mode=cache writes_app=100000 write_rpcs=N commit_rpcs=M elapsed_s=X.XXX
//! ```
//!
//! `write_rpcs` and `commit_rpcs` are the WRITE and COMMIT calls the client's transport saw
//! replied over the whole run; `elapsed_s` runs from the first write to the end of the close
//! (cache) or of the COMMIT (direct): connect, CREATE, SETATTR and the reference file are not
//! in it, the generation of the pseudo-random bytes is (about 1 ns per 8 bytes).

use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, ValueEnum};
use nfsio_client::proto::nfs3::{self, FileHandle, StableHow, WriteResOk, WriteVerifier};
use nfsio_client::{Client, NfsResult};
use tokio::task::JoinSet;

/// Bytes per application write, and the alignment of its offset.
const BLOCK_BYTES: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `File::write_at` per write, then `sync_all` and `close`.
    Cache,
    /// One UNSTABLE `Client::write` per write, a window in flight, then one COMMIT.
    Direct,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Cache => "cache",
            Mode::Direct => "direct",
        }
    }
}

/// Random 4 KiB writes into an NFS file, through `File` or as raw UNSTABLE WRITEs.
#[derive(Parser)]
#[command(name = "random_writes")]
struct Args {
    /// nfs://host/export/path?version=3&nfsport=N&mountport=N of the file to create.
    url: String,
    /// Size of the file in MiB (set with `set_len` before the writes).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    size_mib: u64,
    /// Number of 4 KiB writes.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Seed of the offsets and bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `cache`: through `File::write_at`; `direct`: UNSTABLE `Client::write` + one COMMIT.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Local file that receives the same writes, to compare the server's copy with.
    #[arg(long)]
    reference: PathBuf,
    /// WRITEs in flight in direct mode.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    inflight: u16,
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and every seed gives a good stream.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The sequence of writes: (offset, 4 KiB of bytes), the same for the same seed and size.
struct Pattern {
    rng: SplitMix64,
    blocks: u64,
    left: u64,
}

impl Pattern {
    fn new(seed: u64, size_bytes: u64, count: u64) -> Self {
        Self {
            rng: SplitMix64(seed),
            blocks: size_bytes / BLOCK_BYTES as u64,
            left: count,
        }
    }
}

impl Iterator for Pattern {
    type Item = (u64, Bytes);

    fn next(&mut self) -> Option<(u64, Bytes)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The modulo bias over at most 2^32 blocks is below 2^-32: irrelevant here.
        let offset = (self.rng.next_u64() % self.blocks) * BLOCK_BYTES as u64;
        let mut data = BytesMut::with_capacity(BLOCK_BYTES);
        for _ in 0..BLOCK_BYTES / 8 {
            data.put_u64_le(self.rng.next_u64());
        }
        Some((offset, data.freeze()))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("random_writes: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<String, String> {
    let size_bytes = args
        .size_mib
        .checked_mul(1 << 20)
        .ok_or("--size-mib too large")?;
    write_reference(args, size_bytes)?;

    let nfs = |what: &str, e: nfsio_client::NfsError| {
        format!("{}: {what}: {e} ({})", args.url, e.errno_name())
    };
    let client = Client::connect(&args.url)
        .await
        .map_err(|e| nfs("connect", e))?;
    let path = client.url_path().to_owned();
    if path.is_empty() {
        return Err(format!("{}: names the export, not a file", args.url));
    }
    let file = client
        .create_file(&path, 0o644)
        .await
        .map_err(|e| nfs("create", e))?;
    file.set_len(size_bytes)
        .await
        .map_err(|e| nfs("set_len", e))?;

    let pattern = Pattern::new(args.seed, size_bytes, args.count);
    let started = Instant::now();
    match args.mode {
        Mode::Cache => {
            for (offset, data) in pattern {
                let written = file
                    .write_at(&data, offset)
                    .await
                    .map_err(|e| nfs(&format!("write_at {offset}"), e))?;
                if written != data.len() {
                    return Err(format!(
                        "{}: write_at {offset} wrote {written} of {} bytes",
                        args.url,
                        data.len()
                    ));
                }
            }
            file.sync_all().await.map_err(|e| nfs("sync_all", e))?;
            file.close().await.map_err(|e| nfs("close", e))?;
        }
        Mode::Direct => {
            // Only the handle is used from here on: no File, so no cache of its own.
            let handle = file.handle().clone();
            drop(file);
            direct(&client, &handle, pattern, usize::from(args.inflight))
                .await
                .map_err(|e| format!("{}: {e}", args.url))?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let stats = client.stats();
    let calls = |proc_num| {
        stats
            .proc_stats(nfs3::PROGRAM, proc_num)
            .map_or(0, |p| p.calls)
    };
    Ok(format!(
        "mode={} writes_app={} write_rpcs={} commit_rpcs={} elapsed_s={elapsed:.3}",
        args.mode.name(),
        args.count,
        calls(nfs3::procs::WRITE),
        calls(nfs3::procs::COMMIT),
    ))
}

/// Writes the pattern into the local reference file, sized like the NFS file.
fn write_reference(args: &Args, size_bytes: u64) -> Result<(), String> {
    let what = |e: std::io::Error| format!("{}: {e}", args.reference.display());
    let reference = std::fs::File::create(&args.reference).map_err(what)?;
    reference.set_len(size_bytes).map_err(what)?;
    for (offset, data) in Pattern::new(args.seed, size_bytes, args.count) {
        reference.write_all_at(&data, offset).map_err(what)?;
    }
    Ok(())
}

/// One finished WRITE: its offset and the reply.
type Done = (u64, NfsResult<WriteResOk>);

/// Sends every write as one UNSTABLE WRITE, `window` in flight, never two at one offset at
/// once; then one COMMIT. Checks counts and verifiers.
async fn direct(
    client: &Client,
    handle: &FileHandle,
    pattern: Pattern,
    window: usize,
) -> Result<(), String> {
    let mut in_flight: JoinSet<Done> = JoinSet::new();
    let mut offsets_in_flight: HashSet<u64> = HashSet::with_capacity(window);
    let mut verifier: Option<WriteVerifier> = None;
    for (offset, data) in pattern {
        // Wait while the window is full or an earlier write to this offset is outstanding
        // (two WRITEs of one range in flight may be applied in either order).
        while in_flight.len() >= window || offsets_in_flight.contains(&offset) {
            let done = in_flight.join_next().await.ok_or("no WRITE in flight")?;
            check_write(done, &mut offsets_in_flight, &mut verifier)?;
        }
        offsets_in_flight.insert(offset);
        let client = client.clone();
        let handle = handle.clone();
        in_flight.spawn(async move {
            let reply = client
                .write(&handle, offset, data, StableHow::Unstable)
                .await;
            (offset, reply)
        });
    }
    while let Some(done) = in_flight.join_next().await {
        check_write(done, &mut offsets_in_flight, &mut verifier)?;
    }
    let commit = client
        .commit(handle, 0, 0)
        .await
        .map_err(|e| format!("COMMIT: {e} ({})", e.errno_name()))?;
    if let Some(verf) = verifier.filter(|verf| *verf != commit.verf) {
        return Err(format!(
            "COMMIT verifier {:02x?} differs from the WRITEs' {:02x?}: the server may have lost \
             unstable data",
            commit.verf.0, verf.0
        ));
    }
    Ok(())
}

/// Checks one finished WRITE: no error, all 4096 bytes taken, the same verifier as the others.
fn check_write(
    done: Result<Done, tokio::task::JoinError>,
    offsets_in_flight: &mut HashSet<u64>,
    verifier: &mut Option<WriteVerifier>,
) -> Result<(), String> {
    let (offset, reply) = done.map_err(|e| format!("WRITE task failed: {e}"))?;
    offsets_in_flight.remove(&offset);
    let reply = reply.map_err(|e| format!("WRITE at {offset}: {e} ({})", e.errno_name()))?;
    if reply.count as usize != BLOCK_BYTES {
        return Err(format!(
            "WRITE at {offset}: the server took {} of {BLOCK_BYTES} bytes",
            reply.count
        ));
    }
    match verifier {
        None => *verifier = Some(reply.verf),
        Some(verf) if *verf != reply.verf => {
            return Err(format!(
                "WRITE at {offset}: verifier {:02x?} differs from an earlier WRITE's {:02x?}: \
                 the server may have lost unstable data",
                reply.verf.0, verf.0
            ));
        }
        Some(_) => {}
    }
    Ok(())
}
