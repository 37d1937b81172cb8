//! `client_allocs`: how many heap allocations the client makes per GiB it moves, each way.
//!
//! ```text
//! client_allocs URL --size-mib 1024
//! ```
//!
//! Creates the file at `URL`, writes `--size-mib` MiB into it in 1 MiB buffers handed over
//! with `File::write_bytes_at` (as `nfsio cp` does), closes it (COMMIT), then opens it again
//! and reads it back in 1 MiB `File::read_bytes_at` calls (advised `NoReuse`, as `nfsio cp` reads), checking every byte. A counting
//! global allocator counts the allocations (and reallocations) of this process only (run the
//! server as another process), over the write phase and over the read phase; the filling of
//! each buffer with the pattern and the check are outside the counted parts' allocations
//! (they allocate nothing). Prints one line on stdout:
//!
//! ```text
//! up_allocs_per_gib=N up_allocs_per_write_rpc=X down_allocs_per_gib=N down_allocs_per_read_rpc=Y write_rpcs=W read_rpcs=R
//! ```
//!
//! The buffers themselves count: one 1 MiB buffer per write is the application's, and each
//! READ reply arrives in a buffer of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use clap::Parser;
use nfsio_client::proto::nfs3;
use nfsio_client::rpc::TransportStats;
use nfsio_client::{Advice, Client};

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

/// Bytes per application write and read.
const BLOCK_BYTES: usize = 1 << 20;

#[derive(Parser)]
struct Args {
    /// nfs:// URL of the file to create (it is truncated).
    url: String,
    /// Size of the file in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
}

/// The calls of NFS procedure `proc_num` that were answered, in `stats`.
fn calls(stats: &TransportStats, proc_num: u32) -> u64 {
    stats
        .proc_stats(nfs3::PROGRAM, proc_num)
        .map_or(0, |p| p.calls)
}

/// The byte at `offset` of the file.
fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 24) as u8
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("client_allocs: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<String, String> {
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
    let blocks = args.size_mib;
    let gib = blocks as f64 / 1024.0;
    let before = client.stats();

    let file = client
        .create_file(&path, 0o644)
        .await
        .map_err(|e| nfs("create", e))?;
    let up_start = ALLOCATIONS.load(Ordering::Relaxed);
    for block in 0..blocks {
        let offset = block * BLOCK_BYTES as u64;
        let mut buf = BytesMut::with_capacity(BLOCK_BYTES);
        buf.extend((0..BLOCK_BYTES as u64).map(|i| pattern_byte(offset + i)));
        file.write_bytes_at(buf.freeze(), offset)
            .await
            .map_err(|e| nfs("write", e))?;
    }
    file.close().await.map_err(|e| nfs("close", e))?;
    let up_allocs = ALLOCATIONS.load(Ordering::Relaxed) - up_start;
    let middle = client.stats();

    let file = client.open(&path).await.map_err(|e| nfs("open", e))?;
    // As `nfsio cp` and `cat` do: each byte is read once.
    file.advise(Advice::NoReuse).map_err(|e| nfs("advise", e))?;
    let down_start = ALLOCATIONS.load(Ordering::Relaxed);
    for block in 0..blocks {
        let offset = block * BLOCK_BYTES as u64;
        let data = file
            .read_bytes_at(offset, BLOCK_BYTES)
            .await
            .map_err(|e| nfs("read", e))?;
        let intact = data.len() == BLOCK_BYTES
            && data
                .iter()
                .zip(offset..)
                .all(|(&b, at)| b == pattern_byte(at));
        if !intact {
            return Err(format!("{}: the MiB at {offset} read back wrong", args.url));
        }
    }
    file.close().await.map_err(|e| nfs("close", e))?;
    let down_allocs = ALLOCATIONS.load(Ordering::Relaxed) - down_start;
    let after = client.stats();

    let write_rpcs = calls(&middle, nfs3::procs::WRITE) - calls(&before, nfs3::procs::WRITE);
    let read_rpcs = calls(&after, nfs3::procs::READ) - calls(&middle, nfs3::procs::READ);
    let reused = after.receive_buffers_reused - middle.receive_buffers_reused;
    Ok(format!(
        "up_allocs_per_gib={:.0} up_allocs_per_write_rpc={:.1} down_allocs_per_gib={:.0} down_allocs_per_read_rpc={:.1} write_rpcs={write_rpcs} read_rpcs={read_rpcs} reads_into_reused_buffers={reused}",
        up_allocs as f64 / gib,
        up_allocs as f64 / write_rpcs.max(1) as f64,
        down_allocs as f64 / gib,
        down_allocs as f64 / read_rpcs.max(1) as f64,
    ))
}
