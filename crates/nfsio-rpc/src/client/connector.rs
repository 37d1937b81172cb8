//! How the transport opens a connection: the seam where a simulated network replaces TCP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Opens connections to the server: the seam where a simulated network can replace TCP.
pub trait Connector: Send + Sync + 'static {
    /// The byte stream of one connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Connects over TCP to a fixed address, with `TCP_NODELAY` set (RPC requests are complete
/// messages; Nagle's algorithm would only delay them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConnector {
    addr: SocketAddr,
}

impl TcpConnector {
    /// A connector to `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Connector for TcpConnector {
    type Stream = TcpStream;

    fn connect(&self) -> impl Future<Output = io::Result<TcpStream>> + Send {
        let addr = self.addr;
        async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }
    }
}
