//! Writes a file through the client and ends the way a program must: with every byte that a
//! `File` accepted durable on the server before `main` returns.
//!
//! ```sh
//! nfsio serve /tmp/share --listen 127.0.0.1:2049 &
//! cargo run -p nfsio-client --example write_and_finish -- nfs://127.0.0.1:2049/export/greeting.txt
//! ```
//!
//! Writes land in the client's write-back cache and return at once; they reach the server in
//! the background. Two endings make them durable: `File::close` for one file (it returns the
//! file's first write error), `Client::shutdown` for everything the client holds, files
//! dropped without `close` included. Returning without either loses what is still cached,
//! and the client says so on its way out.

use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: write_and_finish nfs://HOST:PORT/EXPORT/FILE")?;
    let client = nfsio_client::Client::connect(&url).await?;
    let path = client.url_path().to_owned();

    // One file, ended with close: durable, or the error.
    let mut file = client.create_file(&path, 0o644).await?;
    file.write_all(b"hello from nfsio\n").await?;
    file.close().await?;

    // A log whose File is dropped where it goes out of scope, as code using tokio::fs::File
    // often does: the client writes it back in the background...
    {
        let log_path = [&path[..], b".log"].concat();
        let mut log = client.create_file(&log_path, 0o644).await?;
        for line in 0..1000 {
            log.write_all(format!("line {line}\n").as_bytes()).await?;
        }
    }
    // ...and shutdown waits until that is durable too, or returns the first error.
    client.shutdown().await?;
    let shown = nfsio_client::encode_path(&path);
    println!("{url} and {shown}.log are durable on the server");
    Ok(())
}
