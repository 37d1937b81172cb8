//! RFC 5531 record marking over an async stream: bounded reading, vectored and batched writing.
//!
//! The bytes of record marking — marks, the bound on a record's length, reassembly of
//! fragments, the framing of segments — are `nfsio-proto`'s ([`nfsio_proto::record`]); this
//! module moves them between that codec and a tokio stream, for the client and any server:
//!
//! - **A hostile or broken peer controls the lengths.** [`read_record`] and
//!   [`RecordReader::read_record`] have each announced length checked against the caller's
//!   maximum *before* reading or allocating anything for it, and then grow their buffers only
//!   as bytes actually arrive, so a peer announcing a 2 GiB fragment and sending nothing costs
//!   us nothing.
//! - **Copies and syscalls cost.** The writer side sends a record given as [`Bytes`] segments
//!   (as produced by `XdrEncoder::finish`) with vectored writes: the 4-byte marks are separate
//!   I/O slices, the payload is never copied. [`write_records`] sends a whole batch of records
//!   in as few `writev` calls as the kernel allows. The buffered [`RecordReader`] reads as much
//!   as is available into the decoder's buffer, so many small replies cost one syscall.

use std::io::{self, IoSlice};

use bytes::Bytes;
pub use nfsio_proto::record::{
    FragmentMark, LAST_FRAGMENT_FLAG, MAX_FRAGMENT_BYTES, RECORD_MARK_BYTES, parse_record_mark,
    record_mark,
};
use nfsio_proto::record::{RecordDecoder, RecordFrames};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most I/O slices handed to one vectored write (Linux `IOV_MAX`).
const MAX_IO_SLICES: usize = 1024;

/// Why a record could not be read.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The underlying stream failed.
    #[error("i/o error reading a record: {0}")]
    Io(#[from] io::Error),
    /// The stream ended inside a record (in a mark or a fragment body).
    #[error("stream ended inside a record after {received_bytes} bytes of it")]
    UnexpectedEof {
        /// Bytes of the record (marks included) received before the end.
        received_bytes: u64,
    },
    /// The peer announced a record longer than the allowed maximum.
    #[error("record of at least {len_bytes} bytes exceeds the maximum of {max_bytes} bytes")]
    TooLarge {
        /// The record length so far, including the fragment just announced.
        len_bytes: u64,
        /// The maximum the reader allows.
        max_bytes: u32,
    },
}

impl From<nfsio_proto::record::RecordError> for RecordError {
    fn from(err: nfsio_proto::record::RecordError) -> Self {
        use nfsio_proto::record::RecordError as Codec;
        match err {
            Codec::UnexpectedEof { received_bytes } => Self::UnexpectedEof { received_bytes },
            Codec::TooLarge {
                len_bytes,
                max_bytes,
            } => Self::TooLarge {
                len_bytes,
                max_bytes,
            },
        }
    }
}

/// Reads one record from `r`, reassembling its fragments.
///
/// Returns `Ok(None)` when the stream ends cleanly at a record boundary. Each fragment's
/// announced length is checked against `max_record_bytes` (for the record as a whole) before
/// any of its body is read; the record buffer then grows only as data arrives.
///
/// This reads exactly the record's bytes and nothing beyond, so it issues at least one read
/// per fragment; wrap `r` in a [`tokio::io::BufReader`], or use [`RecordReader`], to avoid a
/// syscall per small record.
pub async fn read_record<R: AsyncRead + Unpin>(
    r: &mut R,
    max_record_bytes: u32,
) -> Result<Option<Bytes>, RecordError> {
    let mut decoder = RecordDecoder::new(max_record_bytes);
    loop {
        if let Some(record) = decoder.next_record()? {
            return Ok(Some(record));
        }
        // Exactly the rest of the mark or of the fragment: nothing beyond the record.
        let want_bytes = decoder.missing_bytes();
        let room = decoder.read_buffer(want_bytes);
        if (&mut *r).take(want_bytes as u64).read_buf(room).await? == 0 {
            decoder.end_of_stream()?;
            return Ok(None);
        }
    }
}

/// A buffered record reader over a stream: [`nfsio_proto::record::RecordDecoder`] fed from
/// the stream, one buffer reused across records.
///
/// Each read asks the kernel for everything available (up to the buffer's free space), so a
/// burst of small replies is parsed out of one syscall's worth of data. A single-fragment
/// record is returned as a zero-copy slice of the buffer; multi-fragment records are
/// reassembled into a buffer of their own.
#[derive(Debug)]
pub struct RecordReader<R> {
    inner: R,
    decoder: RecordDecoder,
}

impl<R: AsyncRead + Unpin> RecordReader<R> {
    /// A reader that rejects records longer than `max_record_bytes`.
    pub fn new(inner: R, max_record_bytes: u32) -> Self {
        Self {
            inner,
            decoder: RecordDecoder::new(max_record_bytes),
        }
    }

    /// A reader that also keeps up to `spare_count` large receive buffers for reuse (see
    /// [`RecordDecoder::with_spare_buffers`]).
    pub fn with_spare_buffers(inner: R, max_record_bytes: u32, spare_count: usize) -> Self {
        Self {
            inner,
            decoder: RecordDecoder::with_spare_buffers(max_record_bytes, spare_count),
        }
    }

    /// How many long fragments arrived into a kept buffer rather than a new one.
    pub fn spare_buffers_reused(&self) -> u64 {
        self.decoder.spare_buffers_reused()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying stream, mutably (reading from it directly would lose buffered data).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes read from the stream but not yet returned as part of a record.
    pub fn buffered_bytes(&self) -> usize {
        self.decoder.buffered_bytes()
    }

    /// Allocated capacity of the read buffer (for tests of the allocation bounds).
    pub fn buffer_capacity_bytes(&self) -> usize {
        self.decoder.buffer_capacity_bytes()
    }

    /// Consumes the reader, returning the stream and the bytes buffered but not yet returned.
    pub fn into_parts(self) -> (R, Bytes) {
        (self.inner, self.decoder.into_buffered())
    }

    /// Reads what the stream has into the decoder, first making room for `want_bytes` (see
    /// [`RecordDecoder::read_buffer`]). Returns the number of bytes read; 0 means end of
    /// stream.
    async fn fill(&mut self, want_bytes: usize) -> io::Result<usize> {
        let buf = self.decoder.read_buffer(want_bytes);
        self.inner.read_buf(buf).await
    }

    /// Waits for the next record's first fragment mark and returns it without consuming
    /// anything: a server charges a record against its memory bound before it reads the
    /// body. `Ok(None)` on a clean end of stream. Cancel-safe.
    pub async fn peek_mark(&mut self) -> Result<Option<FragmentMark>, RecordError> {
        loop {
            if let Some(mark) = self.decoder.peek_mark() {
                return Ok(Some(mark));
            }
            if self.fill(self.decoder.missing_bytes()).await? == 0 {
                self.decoder.end_of_stream()?;
                return Ok(None);
            }
        }
    }

    /// Makes room for `len_bytes` more bytes at once: a server that has charged a record of
    /// that size against its memory bound lets it arrive without the buffer's growth steps
    /// (which could leave it up to twice the size).
    pub fn reserve(&mut self, len_bytes: usize) {
        self.decoder.reserve(len_bytes);
    }

    /// Waits for the next fragment's mark and makes room for the whole fragment at once
    /// (see [`RecordDecoder::reserve_fragment`]): a client that keeps large replies as
    /// zero-copy slices reads them into allocations of their own size. Cancel-safe.
    pub async fn reserve_next_fragment(&mut self) -> Result<(), RecordError> {
        if self.peek_mark().await?.is_some() {
            self.decoder.reserve_fragment();
        }
        Ok(())
    }

    /// Reads the next record; `Ok(None)` on a clean end of stream at a record boundary.
    ///
    /// The length announced by each fragment mark is checked against the maximum before the
    /// fragment's body is waited for; the buffer grows by at most the larger of 64 KiB and
    /// the data that has arrived, so it never exceeds about twice what the peer really sent.
    /// Cancel-safe: the decoder keeps the part of a record already read.
    pub async fn read_record(&mut self) -> Result<Option<Bytes>, RecordError> {
        loop {
            if let Some(record) = self.decoder.next_record()? {
                return Ok(Some(record));
            }
            if self.fill(self.decoder.missing_bytes()).await? == 0 {
                self.decoder.end_of_stream()?;
                return Ok(None);
            }
        }
    }
}

/// Writes every slice, looping over partial vectored writes.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !slices.is_empty() {
        let end = slices.len().min(MAX_IO_SLICES);
        let n = w.write_vectored(&slices[..end]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Writes one record given as segments, split into fragments of at most `max_fragment_bytes`
/// (clamped to 1..=[`MAX_FRAGMENT_BYTES`]). Does not flush.
///
/// See [`write_records`] for how the bytes are written.
pub async fn write_record<W: AsyncWrite + Unpin>(
    w: &mut W,
    segments: &[Bytes],
    max_fragment_bytes: u32,
) -> io::Result<()> {
    write_records(w, &[segments], max_fragment_bytes).await
}

/// Writes a batch of records, each given as segments, with as few writes as possible. Does
/// not flush.
///
/// On a stream that supports vectored writes (a TCP socket), marks and payload segments are
/// handed to the kernel as I/O slices, up to 1024 per `writev`, and the payload is never
/// copied. On a stream that does not (some simulated networks), the batch is gathered into one
/// buffer and written with one write: a copy is then cheaper than one write per slice.
pub async fn write_records<W, S>(
    w: &mut W,
    records: &[S],
    max_fragment_bytes: u32,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    S: AsRef<[Bytes]>,
{
    let frames = RecordFrames::new(records, max_fragment_bytes);
    let mut slices = frames.io_slices(records);
    if w.is_write_vectored() {
        write_all_vectored(w, &mut slices).await
    } else {
        let mut gathered = Vec::with_capacity(frames.wire_len_bytes());
        for slice in &slices {
            gathered.extend_from_slice(slice);
        }
        w.write_all(&gathered).await
    }
}

#[cfg(test)]
mod tests {
    /// How much the decoder reserves at a time while a long fragment arrives.
    const READ_CHUNK_BYTES: usize = 64 * 1024;

    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    /// A reader that serves `data` and then reports end of stream, recording the largest
    /// buffer space it was ever offered.
    struct Spy {
        data: Vec<u8>,
        pos: usize,
        max_offered_bytes: usize,
    }

    impl AsyncRead for Spy {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.max_offered_bytes = self.max_offered_bytes.max(buf.remaining());
            let n = buf.remaining().min(self.data.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.data[start..start + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn huge_announcement_allocates_only_what_arrives() {
        // A legal-looking 2 GiB - 1 fragment, allowed by a maximum of 4 GiB - 1, of which only
        // 100 bytes ever arrive.
        let mut data = record_mark(MAX_FRAGMENT_BYTES, true).to_vec();
        data.extend_from_slice(&[7u8; 100]);
        let mut spy = Spy {
            data: data.clone(),
            pos: 0,
            max_offered_bytes: 0,
        };
        let err = read_record(&mut spy, u32::MAX).await.unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::UnexpectedEof {
                    received_bytes: 104
                }
            ),
            "{err:?}"
        );
        assert!(
            spy.max_offered_bytes <= 2 * READ_CHUNK_BYTES,
            "offered {} bytes",
            spy.max_offered_bytes
        );

        let spy = Spy {
            data,
            pos: 0,
            max_offered_bytes: 0,
        };
        let mut reader = RecordReader::new(spy, u32::MAX);
        let err = reader.read_record().await.unwrap_err();
        assert!(matches!(err, RecordError::UnexpectedEof { .. }), "{err:?}");
        assert!(reader.buffer_capacity_bytes() <= 2 * READ_CHUNK_BYTES);
        assert!(reader.get_ref().max_offered_bytes <= 2 * READ_CHUNK_BYTES);
    }
}
