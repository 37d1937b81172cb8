//! The network seam: where connections come from and how replies leave.
//!
//! The server accepts its byte streams through [`Listener`], not from tokio's TCP listener
//! directly, so that a simulated network (turmoil) can stand in for the real one without a
//! change to the server. A listener yields a [`Connection`] and the peer's address (the
//! duplicate request cache and the allow list key on its IP). A connection splits into a
//! reader of calls and a [`ReplyWriter`]; on TCP the writer sends READ data straight from a
//! pipe to the socket ([`crate::splice`]), elsewhere it copies it.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::AsFd;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::splice::{Spliced, send_more};

/// A source of client connections.
pub trait Listener: Send + 'static {
    /// The connection type.
    type Stream: Connection;

    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address the listener is bound to (with the actual port when bound to port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A client connection: calls come in on one half, replies go out on the other.
pub trait Connection: Send + 'static {
    /// Where calls are read from.
    type Reader: AsyncRead + Unpin + Send + 'static;
    /// Where replies are written to.
    type Writer: ReplyWriter;

    /// Splits the connection into its two directions.
    fn into_split(self) -> (Self::Reader, Self::Writer);

    /// The uid that owns the other end, when the kernel can tell (a TCP connection from this
    /// machine, see `crate::peer`); `None` by default.
    fn peer_uid(&self, peer: SocketAddr) -> Option<u32> {
        let _ = peer;
        None
    }

    /// The server's end of the connection, when known; `None` by default.
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// The sending half of a connection.
pub trait ReplyWriter: AsyncWrite + Unpin + Send + 'static {
    /// Writes the slices `head` (which it may advance), then every byte of `pipe`; `more`
    /// says the record goes on after them. The default copies the pipe's bytes through memory; a socket moves them
    /// with `splice(2)`.
    fn write_head_and_pipe(
        &mut self,
        head: &mut [IoSlice<'_>],
        pipe: &mut Spliced,
        more: bool,
    ) -> impl Future<Output = io::Result<()>> + Send {
        let _ = more;
        let mut data = Vec::new();
        let copied = pipe.read_to_vec(&mut data);
        let head: Vec<Bytes> = head.iter().map(|s| Bytes::copy_from_slice(s)).collect();
        async move {
            copied?;
            for segment in head {
                self.write_all(&segment).await?;
            }
            self.write_all(&data).await
        }
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Replies are written in batches already; Nagle would only delay the last one.
        stream.set_nodelay(true)?;
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

impl Connection for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    fn into_split(self) -> (Self::Reader, Self::Writer) {
        TcpStream::into_split(self)
    }

    fn peer_uid(&self, peer: SocketAddr) -> Option<u32> {
        let local = TcpStream::local_addr(self).ok()?;
        crate::peer::loopback_socket_uid(local, peer)
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        TcpStream::local_addr(self).ok()
    }
}

impl ReplyWriter for OwnedWriteHalf {
    async fn write_head_and_pipe(
        &mut self,
        head: &mut [IoSlice<'_>],
        pipe: &mut Spliced,
        more: bool,
    ) -> io::Result<()> {
        let stream: &TcpStream = self.as_ref();
        let mut slices = head;
        while !slices.is_empty() {
            stream.writable().await?;
            match stream.try_io(Interest::WRITABLE, || send_more(stream.as_fd(), slices)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
        while !pipe.is_empty() {
            stream.writable().await?;
            match stream.try_io(Interest::WRITABLE, || pipe.splice_to(stream.as_fd(), more)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

impl<T: AsyncWrite + Send + 'static> ReplyWriter for tokio::io::WriteHalf<T> {}

/// An in-memory connection (tests): split the generic way, READ data copied.
impl Connection for tokio::io::DuplexStream {
    type Reader = tokio::io::ReadHalf<Self>;
    type Writer = tokio::io::WriteHalf<Self>;

    fn into_split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}
