//! Serves a directory until Ctrl-C: `cargo run --release -p nfsio-server --example serve --
//! DIR [NFS_PORT]`. Prints the URL for libnfs tools (`nfs-cp FILE URL/name`).

use nfsio_server::{Server, ServerConfig, Squash};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: serve DIR [PORT]")?;
    let port: u16 = args.next().map_or(Ok(0), |p| p.parse())?;
    let mut config = ServerConfig::new(&dir);
    config.listen = ([127, 0, 0, 1], port).into();
    config.service.squash = Squash::None;
    let server = Server::bind(config).await?;
    println!("{}", server.url());
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
