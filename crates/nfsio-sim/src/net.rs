//! The simulated network as the client and server see it: turmoil's TCP behind the client's
//! [`Network`] seam and the server's [`Listener`] seam, plus connection resets.
//!
//! turmoil can cut a link (a partition) or crash a host, but it has no way to reset one TCP
//! connection while both ends live — what a middlebox timing out, or a server shedding load,
//! does to a client with calls outstanding. Both ends' streams are therefore wrapped: after
//! [`Resets::reset`], every connection made before it fails its next read or write with
//! `ConnectionReset` at both ends (a reply already on its way is lost with it), so the server
//! drops it, the client reconnects and retransmits its outstanding calls with the same XIDs,
//! and the duplicate request cache has to answer them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use nfsio_client::Network;
use nfsio_rpc::Connector;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The simulated network, for [`nfsio_client::Client::connect_via`]; its connections are
/// broken by the same [`Resets`] as the server's.
#[derive(Debug, Clone, Default)]
pub struct SimNet {
    /// Breaks the client's connections.
    pub resets: Arc<Resets>,
}

/// Connects to one address over the simulated network.
#[derive(Debug, Clone)]
pub struct SimConnector {
    addr: SocketAddr,
    resets: Arc<Resets>,
}

impl Connector for SimConnector {
    type Stream = SimStream;

    async fn connect(&self) -> io::Result<Self::Stream> {
        let inner = turmoil::net::TcpStream::connect(self.addr).await?;
        Ok(SimStream::new(inner, &self.resets))
    }
}

impl Network for SimNet {
    type Connector = SimConnector;

    fn connector(&self, addr: SocketAddr) -> SimConnector {
        SimConnector {
            addr,
            resets: Arc::clone(&self.resets),
        }
    }
}

/// A waker slot of one stream direction.
type Slot = Arc<Mutex<Option<Waker>>>;

/// Resets every connection accepted so far (see the module documentation).
#[derive(Debug, Default)]
pub struct Resets {
    epoch: AtomicU64,
    slots: Mutex<Vec<Weak<Mutex<Option<Waker>>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Resets {
    /// Resets the live connections: their next read or write fails, and a task waiting on
    /// one is woken to see it.
    pub fn reset(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for slot in lock(&self.slots).drain(..) {
            if let Some(waker) = slot.upgrade().and_then(|s| lock(&s).take()) {
                waker.wake();
            }
        }
    }

    fn register(&self) -> (u64, Slot, Slot) {
        let read = Slot::default();
        let write = Slot::default();
        let mut slots = lock(&self.slots);
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(&read));
        slots.push(Arc::downgrade(&write));
        (self.epoch.load(Ordering::SeqCst), read, write)
    }
}

/// A connection that [`Resets`] can break.
pub struct SimStream {
    inner: turmoil::net::TcpStream,
    resets: Arc<Resets>,
    epoch: u64,
    read_waker: Slot,
    write_waker: Slot,
}

impl SimStream {
    fn new(inner: turmoil::net::TcpStream, resets: &Arc<Resets>) -> Self {
        let (epoch, read_waker, write_waker) = resets.register();
        Self {
            inner,
            resets: Arc::clone(resets),
            epoch,
            read_waker,
            write_waker,
        }
    }

    fn check(&self, slot: &Slot, cx: &Context<'_>) -> io::Result<()> {
        // Register first, so that a reset between the check and the wait still wakes us.
        *lock(slot) = Some(cx.waker().clone());
        if self.resets.epoch.load(Ordering::SeqCst) != self.epoch {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        Ok(())
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(error) = this.check(&this.read_waker, cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(error) = this.check(&this.write_waker, cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The server splits a simulated connection the generic way (READ data, if a store ever put
/// it in a pipe, is copied).
impl nfsio_server::Connection for SimStream {
    type Reader = tokio::io::ReadHalf<Self>;
    type Writer = tokio::io::WriteHalf<Self>;

    fn into_split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

/// The server's listener on the simulated network.
pub struct SimListener {
    inner: turmoil::net::TcpListener,
    resets: Arc<Resets>,
}

impl SimListener {
    /// Binds `addr` on the current simulated host; `resets` can break what it accepts.
    pub async fn bind(addr: SocketAddr, resets: Arc<Resets>) -> io::Result<Self> {
        Ok(Self {
            inner: turmoil::net::TcpListener::bind(addr).await?,
            resets,
        })
    }
}

impl nfsio_server::Listener for SimListener {
    type Stream = SimStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (inner, peer) = self.inner.accept().await?;
        Ok((SimStream::new(inner, &self.resets), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
