//! `File`: an open regular file with positional and streaming I/O.
//!
//! `read_at`/`write_at` are the primitives; tokio's `AsyncRead`, `AsyncWrite` and `AsyncSeek`
//! are adapters over them so a `File` works with `tokio::io::copy` and friends. This type is
//! the seam where the write-back cache slots in: its methods keep their signatures when writes
//! start landing in the cache instead of on the wire. Until then writes are sent FILE_SYNC,
//! so every `write_at` that returned Ok is durable on the server and `sync_all` has nothing
//! left to make durable.

use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use nfsio_proto::nfs3::{Fattr, FileHandle, Sattr, StableHow};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::client::Client;
use crate::error::{NfsError, NfsResult};

type BoxFuture<T> = Pin<Box<dyn Future<Output = NfsResult<T>> + Send>>;

/// The state of the streaming adapters: at most one operation in progress.
#[derive(Default)]
enum Pending {
    #[default]
    Idle,
    Read(BoxFuture<Bytes>),
    Write(BoxFuture<usize>),
    Seek(BoxFuture<u64>),
    /// The COMMIT of `poll_shutdown`.
    Commit(BoxFuture<()>),
}

/// An open regular file on an NFS export.
pub struct File {
    client: Client,
    handle: FileHandle,
    attributes: Fattr,
    /// The position of the streaming adapters.
    position: u64,
    /// Bytes read ahead of the caller's buffer by the streaming reader.
    read_leftover: Bytes,
    /// The seek target requested by `start_seek`.
    seek_target: Option<SeekFrom>,
    pending: Mutex<Pending>,
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
    pub(crate) fn new(client: Client, handle: FileHandle, attributes: Fattr) -> Self {
        Self {
            client,
            handle,
            attributes,
            position: 0,
            read_leftover: Bytes::new(),
            seek_target: None,
            pending: Mutex::new(Pending::Idle),
        }
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

    /// Fresh attributes from the server (GETATTR).
    pub async fn metadata(&self) -> NfsResult<Fattr> {
        self.client.getattr(&self.handle).await
    }

    /// Reads up to `len_bytes` at `offset`; fewer only at end of file.
    pub async fn read_bytes_at(&self, offset: u64, len_bytes: usize) -> NfsResult<Bytes> {
        read_range(&self.client, &self.handle, offset, len_bytes).await
    }

    /// Reads into `buf` at `offset`; returns the number of bytes read (fewer than `buf.len()`
    /// only at end of file).
    pub async fn read_at(&self, buf: &mut [u8], offset: u64) -> NfsResult<usize> {
        let data = self.read_bytes_at(offset, buf.len()).await?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// Writes all of `data` at `offset`.
    pub async fn write_bytes_at(&self, data: Bytes, offset: u64) -> NfsResult<()> {
        write_range(&self.client, &self.handle, data, offset).await
    }

    /// Writes all of `buf` at `offset`; returns `buf.len()`.
    pub async fn write_at(&self, buf: &[u8], offset: u64) -> NfsResult<usize> {
        self.write_bytes_at(Bytes::copy_from_slice(buf), offset)
            .await?;
        Ok(buf.len())
    }

    /// Truncates or extends the file to `len_bytes`.
    pub async fn set_len(&self, len_bytes: u64) -> NfsResult<()> {
        self.client
            .setattr(
                &self.handle,
                Sattr {
                    size: Some(len_bytes),
                    ..Sattr::default()
                },
                None,
            )
            .await
            .map(drop)
    }

    /// Makes every byte written so far durable on the server (COMMIT).
    pub async fn sync_all(&self) -> NfsResult<()> {
        self.client.commit(&self.handle, 0, 0).await.map(drop)
    }

    /// Makes the data written so far durable (the same as [`File::sync_all`] in NFSv3).
    pub async fn sync_data(&self) -> NfsResult<()> {
        self.sync_all().await
    }

    /// Closes the file, making what was written durable and reporting any error.
    pub async fn close(self) -> NfsResult<()> {
        self.sync_all().await
    }
}

/// Reads `len_bytes` at `offset` in READs of the server's transfer size.
async fn read_range(
    client: &Client,
    handle: &FileHandle,
    offset: u64,
    len_bytes: usize,
) -> NfsResult<Bytes> {
    let rsize = client.rsize_bytes() as usize;
    if len_bytes <= rsize {
        let reply = client.read(handle, offset, len_bytes as u32).await?;
        return Ok(reply.data);
    }
    let mut out = bytes::BytesMut::with_capacity(len_bytes);
    while out.len() < len_bytes {
        let want = (len_bytes - out.len()).min(rsize) as u32;
        let reply = client.read(handle, offset + out.len() as u64, want).await?;
        out.extend_from_slice(&reply.data);
        if reply.eof || reply.data.is_empty() {
            break;
        }
    }
    Ok(out.freeze())
}

/// Writes `data` at `offset` FILE_SYNC in WRITEs of the server's transfer size, resending the
/// remainder of short writes.
async fn write_range(
    client: &Client,
    handle: &FileHandle,
    mut data: Bytes,
    mut offset: u64,
) -> NfsResult<()> {
    let wsize = client.wsize_bytes() as usize;
    while !data.is_empty() {
        let chunk = data.slice(..data.len().min(wsize));
        let reply = client
            .write(handle, offset, chunk, StableHow::FileSync)
            .await?;
        if reply.count == 0 {
            return Err(NfsError::Status {
                proc_name: "WRITE",
                status: nfsio_proto::nfs3::Nfs3Status::Io,
            });
        }
        if reply.committed != StableHow::FileSync {
            return Err(NfsError::Protocol(format!(
                "FILE_SYNC WRITE answered {:?}",
                reply.committed
            )));
        }
        let _ = data.split_to(reply.count as usize);
        offset += u64::from(reply.count);
    }
    Ok(())
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
        if !this.read_leftover.is_empty() {
            let n = this.read_leftover.len().min(buf.remaining());
            buf.put_slice(&this.read_leftover.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let pending = this.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(pending, Pending::Idle) {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let client = this.client.clone();
            let handle = this.handle.clone();
            let offset = this.position;
            let len = buf.remaining().min(client.rsize_bytes() as usize);
            *pending = Pending::Read(Box::pin(async move {
                read_range(&client, &handle, offset, len).await
            }));
        }
        let Pending::Read(future) = pending else {
            return Poll::Ready(Err(io::Error::other("another operation is in progress")));
        };
        let result = ready!(future.as_mut().poll(cx));
        *pending = Pending::Idle;
        let mut data = result.map_err(to_io)?;
        this.position += data.len() as u64;
        let n = data.len().min(buf.remaining());
        buf.put_slice(&data.split_to(n));
        this.read_leftover = data;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.read_leftover.is_empty() {
            // Bytes read ahead were not consumed: the logical position is before them.
            this.position -= this.read_leftover.len() as u64;
            this.read_leftover = Bytes::new();
        }
        let pending = this.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(pending, Pending::Idle) {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let client = this.client.clone();
            let handle = this.handle.clone();
            let offset = this.position;
            let len = buf.len().min(client.wsize_bytes() as usize);
            let data = Bytes::copy_from_slice(&buf[..len]);
            *pending = Pending::Write(Box::pin(async move {
                write_range(&client, &handle, data, offset).await?;
                Ok(len)
            }));
        }
        let Pending::Write(future) = pending else {
            return Poll::Ready(Err(io::Error::other("another operation is in progress")));
        };
        let result = ready!(future.as_mut().poll(cx));
        *pending = Pending::Idle;
        let written = result.map_err(to_io)?;
        this.position += written as u64;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let pending = this.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        // A write in progress must finish before the flush counts.
        if let Pending::Write(future) = pending {
            let result = ready!(future.as_mut().poll(cx));
            *pending = Pending::Idle;
            let written = result.map_err(to_io)?;
            this.position += written as u64;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Once the COMMIT has started, only it is driven: re-flushing here would see an idle
        // file after the COMMIT completes and start another one.
        let committing = matches!(
            self.pending.get_mut().unwrap_or_else(|e| e.into_inner()),
            Pending::Commit(_)
        );
        if !committing {
            ready!(self.as_mut().poll_flush(cx))?;
        }
        let this = self.get_mut();
        let pending = this.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(pending, Pending::Idle) {
            let client = this.client.clone();
            let handle = this.handle.clone();
            *pending = Pending::Commit(Box::pin(async move {
                client.commit(&handle, 0, 0).await.map(drop)
            }));
        }
        let Pending::Commit(future) = pending else {
            return Poll::Ready(Err(io::Error::other("another operation is in progress")));
        };
        let result = ready!(future.as_mut().poll(cx));
        *pending = Pending::Idle;
        Poll::Ready(result.map_err(to_io))
    }
}

impl AsyncSeek for File {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let pending = this.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if !matches!(pending, Pending::Idle) {
            return Err(io::Error::other("another operation is in progress"));
        }
        this.seek_target = Some(position);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let pending = this.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(pending, Pending::Idle) {
            let Some(target) = this.seek_target.take() else {
                return Poll::Ready(Ok(this.position));
            };
            let relative = |base: u64, delta: i64| {
                base.checked_add_signed(delta).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "seek before start of file")
                })
            };
            let position = match target {
                SeekFrom::Start(offset) => Ok(offset),
                SeekFrom::Current(delta) => relative(
                    this.position
                        .saturating_sub(this.read_leftover.len() as u64),
                    delta,
                ),
                SeekFrom::End(delta) => {
                    let client = this.client.clone();
                    let handle = this.handle.clone();
                    *pending = Pending::Seek(Box::pin(async move {
                        let size = client.getattr(&handle).await?.size;
                        size.checked_add_signed(delta).ok_or_else(|| {
                            NfsError::InvalidArgument("seek before start of file".into())
                        })
                    }));
                    return Pin::new(this).poll_complete(cx);
                }
            }?;
            this.read_leftover = Bytes::new();
            this.position = position;
            return Poll::Ready(Ok(position));
        }
        let Pending::Seek(future) = pending else {
            return Poll::Ready(Err(io::Error::other("another operation is in progress")));
        };
        let result = ready!(future.as_mut().poll(cx));
        *pending = Pending::Idle;
        let position = result.map_err(to_io)?;
        this.read_leftover = Bytes::new();
        this.position = position;
        Poll::Ready(Ok(position))
    }
}
