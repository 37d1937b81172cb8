//! `nfsio demo`: the whole path in one command, on the embedded server.
//!
//! Starts `nfsio serve` in-process on a temporary directory, writes a generated file through
//! the client (UNSTABLE WRITEs, then COMMIT, verifiers checked), reads it back through a
//! second client (so the bytes come from the server) and from the server's disk, compares checksums, prints throughput and the RPC
//! statistics, and stops the server. It needs nothing installed and no privileges.

use std::path::PathBuf;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use nfsio_server::{Server, ServerConfig, Squash};

use crate::copy::{ChunkSink, FileReader, NfsWriter, open_nfs, progress_bar};
use crate::output::{out, outln};
use crate::report::Failure;
use crate::signals::Termination;

/// Arguments of `nfsio demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Size of the generated file: bytes, or with a K, M or G suffix (binary units).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    size: u64,
    /// No progress bars.
    #[arg(short, long)]
    quiet: bool,
    /// Where to create the temporary export (default: the system's temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the temporary export (its path is printed) instead of removing it.
    #[arg(long)]
    keep: bool,
}

/// A size in bytes, or with a K, M or G suffix (binary units).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: {text:?}"))
}

/// Reproducible pseudo-random content (xorshift64*), generated chunk by chunk.
struct Generator {
    state: u64,
    left_bytes: u64,
    chunk_bytes: usize,
}

impl Generator {
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.left_bytes == 0 {
            return None;
        }
        let len = (self.chunk_bytes as u64).min(self.left_bytes) as usize;
        let mut chunk = BytesMut::zeroed(len.next_multiple_of(8));
        for word in chunk.chunks_exact_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            word.copy_from_slice(&self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        chunk.truncate(len);
        self.left_bytes -= len as u64;
        Some(chunk.freeze())
    }
}

fn rate(bytes: u64, seconds: f64) -> String {
    format!("{:.1} MB/s", bytes as f64 / seconds.max(1e-9) / 1e6)
}

pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    let base = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!(
            "nfsio-demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
    let export = base.join("export");
    let state = base.join("state");
    let shown = base.display().to_string();
    // Before the server line is printed: a signal after it stops the demo cleanly (the
    // temporary export is removed) instead of killing it.
    let mut termination = Termination::install()
        .map_err(|e| Failure::message(format!("cannot watch SIGINT and SIGTERM: {e}")))?;
    std::fs::create_dir_all(&export).map_err(|e| Failure::io(&shown, e))?;
    let result = tokio::select! {
        biased;
        stop = termination.wait() => Err(Failure::message(format!("demo: interrupted by {}", stop.name()))),
        result = demo(&args, &export, state) => result,
    };
    if args.keep {
        outln!("kept {}", export.display())?;
    } else if let Err(error) = std::fs::remove_dir_all(&base) {
        tracing::warn!(%error, dir = %shown, "cannot remove the demo directory");
    }
    result
}

async fn demo(args: &DemoArgs, export: &std::path::Path, state: PathBuf) -> Result<(), Failure> {
    let mut config = ServerConfig::new(export);
    config.listen = ([127, 0, 0, 1], 0).into();
    config.state_dir = state;
    config.service.squash = Squash::None;
    let server = Server::bind(config)
        .await
        .map_err(|e| Failure::message(format!("{}: {e}", export.display())))?;
    let url = server.url();
    outln!("nfsio serve {} at {url}", export.display())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let outcome = transfer(args, export, &url).await;
    let _ = stop.send(());
    match server_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Failure::message(format!("server: {e}"))),
        Err(e) => return Err(Failure::message(format!("server task: {e}"))),
    }
    outcome
}

async fn transfer(args: &DemoArgs, export: &std::path::Path, url: &str) -> Result<(), Failure> {
    let client = crate::connect(url).await?;
    let file_url = format!("{url}/demo.bin");
    let size = args.size;

    // Write: generated chunks -> the write-back cache -> UNSTABLE WRITEs in flight, COMMITs
    // as unstable bytes pile up, close: everything durable, verifiers checked.
    let file = client
        .create_file("demo.bin", 0o644)
        .await
        .map_err(|e| Failure::nfs(&file_url, e))?;
    let mut generator = Generator {
        state: 0x9e37_79b9_7f4a_7c15,
        left_bytes: size,
        chunk_bytes: client.wsize_bytes() as usize,
    };
    let bar = progress_bar(Some(size), args.quiet);
    bar.set_prefix("write");
    let started = Instant::now();
    let mut writer = NfsWriter::new(file, file_url.clone());
    let mut written_crc = crc32fast::Hasher::new();
    let mut written = 0u64;
    while let Some(chunk) = generator.next_chunk() {
        written_crc.update(&chunk);
        written += chunk.len() as u64;
        writer.write_chunk(chunk).await?;
        bar.set_position(written);
    }
    writer.finish().await?;
    let write_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let written_crc = written_crc.finalize();

    // Read back through a second client (the library's File and its readahead).
    let bar = progress_bar(Some(size), args.quiet);
    let started = Instant::now();
    // A client of its own, so that the bytes come from the server, not from the cache that
    // wrote them.
    let read_file = open_nfs(&file_url, None).await?;
    let mut reader = FileReader::new(&read_file, &file_url);
    let mut read_crc = crc32fast::Hasher::new();
    let mut read = 0u64;
    while let Some(chunk) = reader.next_chunk().await? {
        read_crc.update(&chunk);
        read += chunk.len() as u64;
        bar.set_position(read);
    }
    let read_seconds = started.elapsed().as_secs_f64();
    let read_stats = read_file.client().stats();
    read_file
        .close()
        .await
        .map_err(|e| Failure::nfs(&file_url, e))?;
    bar.finish_and_clear();
    let read_crc = read_crc.finalize();

    // And from the server's disk, independently of the NFS read path.
    let on_disk = export.join("demo.bin");
    let disk_crc = {
        use std::io::Read;
        let mut file = std::fs::File::open(&on_disk)
            .map_err(|e| Failure::io(&on_disk.display().to_string(), e))?;
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Failure::io(&on_disk.display().to_string(), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hasher.finalize()
    };

    outln!(
        "wrote {written} bytes in {write_seconds:.3} s ({}), durable (closed: written back, COMMITted, verifiers checked)",
        rate(written, write_seconds)
    )?;
    outln!(
        "read  {read} bytes in {read_seconds:.3} s ({})",
        rate(read, read_seconds)
    )?;
    outln!(
        "crc32 written {written_crc:08x}, read back {read_crc:08x}, on the server's disk {disk_crc:08x}"
    )?;
    out!("{}", crate::report::stats_table(&client.stats()))?;
    outln!("{}", crate::report::cache_line(&client.cache_stats()))?;
    outln!("read back by a client of its own:")?;
    out!("{}", crate::report::stats_table(&read_stats))?;
    if read != size || read_crc != written_crc || disk_crc != written_crc {
        return Err(Failure::message(format!(
            "{file_url}: content differs: wrote {written} bytes crc {written_crc:08x}, read {read} bytes crc {read_crc:08x}, disk crc {disk_crc:08x} (EIO)"
        )));
    }
    outln!("verified: all three checksums agree")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn generator_is_reproducible_and_exact() {
        let make = || Generator {
            state: 7,
            left_bytes: 10_001,
            chunk_bytes: 4096,
        };
        let (mut a, mut b) = (make(), make());
        let mut total = 0;
        while let Some(chunk) = a.next_chunk() {
            assert_eq!(Some(chunk.clone()), b.next_chunk());
            total += chunk.len();
        }
        assert_eq!(total, 10_001);
    }
}
