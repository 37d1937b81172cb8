//! `File`: an open regular file with positional and streaming I/O, over the write-back cache.
//!
//! `read_at`/`write_at` are the primitives; tokio's `AsyncRead`, `AsyncWrite` and `AsyncSeek`
//! are adapters over them so a `File` works with `tokio::io::copy` and friends. A write returns
//! once its bytes are in the client's write-back cache (it waits only at the cache's memory
//! bound); reads see the file's cached writes. The cache sends the bytes as UNSTABLE WRITEs
//! in the background and COMMITs them; [`File::sync_all`] and [`File::close`] return once
//! every byte written before them is durable on the server, or with the first write-back error
//! since the last report (each error is reported once). Opening a file revalidates the cache
//! against the server's attributes (close-to-open consistency).
//!
//! A file acts as the caller of the [`Client`] handle that opened it: its reads, and the
//! WRITEs and COMMITs of its bytes, carry that caller's credentials (see
//! [`Client::as_caller`]).

use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use nfsio_cache::{Advice, FileId};
use nfsio_proto::nfs3::{Fattr, FileHandle};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::client::Client;
use crate::error::{NfsError, NfsResult};
use crate::writeback::{Attempt, Cache, SyncResult, WRITE_BACK, file_error};

/// What the streaming adapters wait for: at most one thing at a time.
#[derive(Default)]
enum Pending {
    #[default]
    Idle,
    /// A read of uncached bytes: try again when the READ has answered.
    Read(oneshot::Receiver<()>),
    /// A write at the memory bound: try again when there is room.
    Write(oneshot::Receiver<()>),
    /// The `fsync` of `poll_shutdown`.
    Sync(oneshot::Receiver<SyncResult>),
}

/// An open regular file on an NFS export.
pub struct File {
    client: Client,
    cache: Arc<Cache>,
    handle: FileHandle,
    attributes: Fattr,
    id: FileId,
    /// `close` started: dropping the file must not close it again.
    closed: bool,
    /// The position of the streaming adapters.
    position: u64,
    /// The seek target requested by `start_seek`.
    seek_target: Option<SeekFrom>,
    pending: Pending,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("handle", &self.handle)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl File {
    /// Opens `handle` in the client's cache with the attributes just fetched from the server;
    /// `path` names the file in messages.
    pub(crate) fn new(
        client: Client,
        handle: FileHandle,
        attributes: Fattr,
        path: &str,
    ) -> NfsResult<Self> {
        let cache = Arc::clone(client.cache());
        let nfs = Arc::clone(client.procedures());
        let id = cache.open(handle.clone(), &attributes, Arc::from(path), nfs)?;
        Ok(Self {
            client,
            cache,
            handle,
            attributes,
            id,
            closed: false,
            position: 0,
            seek_target: None,
            pending: Pending::Idle,
        })
    }

    /// The file handle.
    pub fn handle(&self) -> &FileHandle {
        &self.handle
    }

    /// The client the file was opened through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The attributes as of open.
    pub fn attributes_at_open(&self) -> &Fattr {
        &self.attributes
    }

    /// Fresh attributes from the server (GETATTR), with the size this client sees (cached
    /// writes not yet on the server grow it; a pending truncation sets it).
    pub async fn metadata(&self) -> NfsResult<Fattr> {
        let mut attributes = self.client.getattr(&self.handle).await?;
        attributes.size = self.cache.size_bytes(self.id)?;
        Ok(attributes)
    }

    /// Revalidates the cache against `attributes` just fetched from the server, as an open
    /// does: if the file changed since the cache last saw it, its clean cached bytes are
    /// dropped and, with no write or truncation of this client pending, the server's size
    /// is taken. No RPC.
    pub fn revalidate(&self, attributes: &Fattr) -> NfsResult<()> {
        self.cache.revalidate(self.id, attributes)
    }

    /// The size of the file as this client sees it (no RPC).
    pub fn size_bytes(&self) -> NfsResult<u64> {
        self.cache.size_bytes(self.id)
    }

    /// Says how this file's reader uses what it reads. [`Advice::NoReuse`] (a copy, a
    /// checksum: each byte read once) releases the cached bytes the reader has moved past, so
    /// that a sequential read of any length holds about its readahead window of memory
    /// instead of filling the client's cache; bytes not yet durable are never released.
    pub fn advise(&self, advice: Advice) -> NfsResult<()> {
        self.cache.advise(self.id, advice)
    }

    /// Reads up to `len_bytes` at `offset`; fewer only at end of file. Cached bytes
    /// (including this client's writes not yet on the server) are served from the cache.
    pub async fn read_bytes_at(&self, offset: u64, len_bytes: usize) -> NfsResult<Bytes> {
        self.cache.read(self.id, offset, len_bytes).await
    }

    /// Reads into `buf` at `offset`; returns the number of bytes read (fewer than `buf.len()`
    /// only at end of file).
    pub async fn read_at(&self, buf: &mut [u8], offset: u64) -> NfsResult<usize> {
        let data = self.read_bytes_at(offset, buf.len()).await?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// Writes all of `data` at `offset` into the cache. When nobody else holds `data`'s
    /// buffer (a `Bytes` just read or frozen), the cache keeps it instead of copying it: a
    /// write of whole wsize-aligned chunks enters the cache, and leaves in its WRITEs, with
    /// no copy of its bytes.
    pub async fn write_bytes_at(&self, data: Bytes, offset: u64) -> NfsResult<()> {
        match data.try_into_mut() {
            Ok(buf) => self.cache.write_owned(self.id, offset, buf).await,
            Err(data) => self.cache.write(self.id, offset, &data).await,
        }
    }

    /// Writes all of `buf` at `offset` into the cache; returns `buf.len()`. Fails at once
    /// after the server ran out of space (or quota, or file size) for this file, until
    /// `sync_all` or `close` has reported that error.
    pub async fn write_at(&self, buf: &[u8], offset: u64) -> NfsResult<usize> {
        self.cache.write(self.id, offset, buf).await?;
        Ok(buf.len())
    }

    /// Truncates or extends the file to `len_bytes` (SETATTR, once no WRITE in flight reaches
    /// past the new size).
    pub async fn set_len(&self, len_bytes: u64) -> NfsResult<()> {
        self.cache.truncate(self.id, len_bytes).await
    }

    /// Makes every byte written so far durable on the server (the file's dirty bytes are sent,
    /// then COMMITted), or reports the first write-back error since the last report.
    pub async fn sync_all(&self) -> NfsResult<()> {
        let id = self.id;
        self.cache
            .sync(WRITE_BACK, |engine, now_ms| engine.fsync(id, now_ms))
            .await
    }

    /// Makes the data written so far durable (the same as [`File::sync_all`] in NFSv3).
    pub async fn sync_data(&self) -> NfsResult<()> {
        self.sync_all().await
    }

    /// Closes the file: what was written is made durable, and any write-back error not
    /// reported yet is returned.
    ///
    /// A `File` dropped without `close` (as a `tokio::fs::File` may be) hands its bytes to the
    /// client's background write-back, which goes on while any handle to the [`Client`]
    /// lives; its errors are logged (error level, with the path) and returned by
    /// [`Client::shutdown`]. Bytes still not durable when the last `Client` handle is dropped
    /// are lost, and an error line names them. A program that ends should therefore `close`
    /// its files, or call `Client::shutdown`, before it returns.
    pub async fn close(mut self) -> NfsResult<()> {
        self.closed = true;
        let id = self.id;
        let result = self
            .cache
            .sync(WRITE_BACK, |engine, now_ms| engine.close(id, now_ms))
            .await;
        self.cache.forget(id);
        result
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if !self.closed {
            self.cache.close_detached(self.id);
        }
    }
}

fn to_io(error: NfsError) -> io::Error {
    error.into()
}

impl AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Pending::Read(rx) = &mut this.pending {
                let woken = ready!(Pin::new(rx).poll(cx));
                this.pending = Pending::Idle;
                woken.map_err(|_| io::Error::other("the write-back driver stopped"))?;
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match this
                .cache
                .try_read(this.id, this.position, buf.remaining())
                .map_err(to_io)?
            {
                Attempt::Ready(data) => {
                    buf.put_slice(&data);
                    this.position += data.len() as u64;
                    return Poll::Ready(Ok(()));
                }
                Attempt::Wait(rx) => this.pending = Pending::Read(rx),
            }
        }
    }
}

impl AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if let Pending::Write(rx) = &mut this.pending {
                let woken = ready!(Pin::new(rx).poll(cx));
                this.pending = Pending::Idle;
                woken.map_err(|_| io::Error::other("the write-back driver stopped"))?;
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            match this
                .cache
                .try_write(this.id, this.position, buf)
                .map_err(to_io)?
            {
                Attempt::Ready(written) => {
                    this.position += written as u64;
                    return Poll::Ready(Ok(written));
                }
                Attempt::Wait(rx) => this.pending = Pending::Write(rx),
            }
        }
    }

    /// The bytes of every completed `poll_write` are in the cache: nothing to do (use
    /// `shutdown`, `sync_all` or `close` for durability).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// An `fsync`: every byte written so far is durable once this returns `Ok`.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !matches!(this.pending, Pending::Sync(_)) {
            let id = this.id;
            let attempt = this
                .cache
                .start_sync(WRITE_BACK, |engine, now_ms| engine.fsync(id, now_ms))
                .map_err(to_io)?;
            match attempt {
                Attempt::Ready(result) => {
                    this.pending = Pending::Idle;
                    return Poll::Ready(result.map_err(|e| to_io(file_error(WRITE_BACK, e))));
                }
                Attempt::Wait(rx) => this.pending = Pending::Sync(rx),
            }
        }
        let Pending::Sync(rx) = &mut this.pending else {
            return Poll::Ready(Err(io::Error::other("no sync in progress")));
        };
        let result = ready!(Pin::new(rx).poll(cx));
        this.pending = Pending::Idle;
        let result = result.map_err(|_| io::Error::other("the write-back driver stopped"))?;
        Poll::Ready(result.map_err(|e| to_io(file_error(WRITE_BACK, e))))
    }
}

impl AsyncSeek for File {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        this.seek_target = Some(position);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let Some(target) = this.seek_target.take() else {
            return Poll::Ready(Ok(this.position));
        };
        let relative = |base: u64, delta: i64| {
            base.checked_add_signed(delta).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "seek before start of file")
            })
        };
        let position = match target {
            SeekFrom::Start(offset) => offset,
            SeekFrom::Current(delta) => relative(this.position, delta)?,
            SeekFrom::End(delta) => {
                relative(this.cache.size_bytes(this.id).map_err(to_io)?, delta)?
            }
        };
        this.position = position;
        Poll::Ready(Ok(position))
    }
}
