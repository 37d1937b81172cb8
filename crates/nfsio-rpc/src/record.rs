//! RFC 5531 record marking: how RPC messages are delimited on a byte stream.
//!
//! TCP carries bytes, not messages, so ONC RPC prefixes every *fragment* of a message with a
//! 4-byte mark: the high bit says "last fragment of the record", the low 31 bits give the
//! fragment's length. A record (one RPC call or reply) is one or more fragments.
//!
//! This module is shared by the client and any server, and is where the stream's two hazards
//! are handled once:
//!
//! - **A hostile or broken peer controls the lengths.** [`read_record`] and
//!   [`RecordReader::read_record`] check the announced record length against the caller's
//!   maximum *before* reading or allocating anything for it, and then grow their buffers only
//!   as bytes actually arrive, so a peer announcing a 2 GiB fragment and sending nothing costs
//!   us nothing.
//! - **Copies and syscalls cost.** The writer side sends a record given as [`Bytes`] segments
//!   (as produced by `XdrEncoder::finish`) with vectored writes: the 4-byte marks are separate
//!   I/O slices, the payload is never copied. [`write_records`] sends a whole batch of records
//!   in as few `writev` calls as the kernel allows. The buffered [`RecordReader`] reads as much
//!   as is available into one reused buffer, so many small replies cost one syscall.

use std::io::{self, IoSlice};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The bit of a record mark that flags the last fragment of a record.
pub const LAST_FRAGMENT_FLAG: u32 = 0x8000_0000;

/// The largest fragment a record mark can describe (2^31 - 1 bytes).
pub const MAX_FRAGMENT_BYTES: u32 = 0x7fff_ffff;

/// Size of a record mark on the wire.
pub const RECORD_MARK_BYTES: usize = 4;

/// How much a reader asks the kernel for at a time, and the step by which buffers grow while
/// a long fragment arrives.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Below this much free buffer space the buffered reader makes room before reading, so that a
/// read is never uselessly small.
const MIN_READ_SPACE_BYTES: usize = 16 * 1024;

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

/// Encodes a record mark for a fragment of `len_bytes` (at most [`MAX_FRAGMENT_BYTES`]).
#[inline]
pub fn record_mark(len_bytes: u32, last: bool) -> [u8; 4] {
    let flag = if last { LAST_FRAGMENT_FLAG } else { 0 };
    ((len_bytes & MAX_FRAGMENT_BYTES) | flag).to_be_bytes()
}

/// Decodes a record mark into (last fragment?, fragment length in bytes).
#[inline]
pub fn parse_record_mark(mark: [u8; 4]) -> (bool, u32) {
    let word = u32::from_be_bytes(mark);
    (word & LAST_FRAGMENT_FLAG != 0, word & MAX_FRAGMENT_BYTES)
}

/// Checks that a record grown to `len_bytes` is still within `max_record_bytes`.
fn check_len(len_bytes: u64, max_record_bytes: u32) -> Result<(), RecordError> {
    if len_bytes > u64::from(max_record_bytes) {
        Err(RecordError::TooLarge {
            len_bytes,
            max_bytes: max_record_bytes,
        })
    } else {
        Ok(())
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
    let mut record = BytesMut::new();
    let mut received_bytes: u64 = 0;
    loop {
        let mut mark = [0u8; RECORD_MARK_BYTES];
        let mut filled = 0;
        while filled < mark.len() {
            let n = r.read(&mut mark[filled..]).await?;
            if n == 0 {
                if filled == 0 && received_bytes == 0 {
                    return Ok(None);
                }
                return Err(RecordError::UnexpectedEof {
                    received_bytes: received_bytes + filled as u64,
                });
            }
            filled += n;
        }
        received_bytes += RECORD_MARK_BYTES as u64;
        let (last, fragment_len) = parse_record_mark(mark);
        check_len(
            record.len() as u64 + u64::from(fragment_len),
            max_record_bytes,
        )?;
        let mut left_bytes = fragment_len as usize;
        while left_bytes > 0 {
            record.reserve(left_bytes.min(READ_CHUNK_BYTES));
            let n = r.read_buf(&mut (&mut record).limit(left_bytes)).await?;
            if n == 0 {
                return Err(RecordError::UnexpectedEof { received_bytes });
            }
            left_bytes -= n;
            received_bytes += n as u64;
        }
        if last {
            return Ok(Some(record.freeze()));
        }
    }
}

/// A buffered record reader over a stream, reusing one buffer across records.
///
/// Each read asks the kernel for everything available (up to the buffer's free space), so a
/// burst of small replies is parsed out of one syscall's worth of data. A single-fragment
/// record is returned as a zero-copy slice of the buffer; multi-fragment records are
/// reassembled into a buffer of their own.
#[derive(Debug)]
pub struct RecordReader<R> {
    inner: R,
    buf: BytesMut,
    max_record_bytes: u32,
}

impl<R: AsyncRead + Unpin> RecordReader<R> {
    /// A reader that rejects records longer than `max_record_bytes`.
    pub fn new(inner: R, max_record_bytes: u32) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            max_record_bytes,
        }
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
        self.buf.len()
    }

    /// Allocated capacity of the read buffer (for tests of the allocation bounds).
    pub fn buffer_capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Consumes the reader, returning the stream and the bytes buffered but not yet returned.
    pub fn into_parts(self) -> (R, Bytes) {
        (self.inner, self.buf.freeze())
    }

    /// Reads into the buffer, first making room for `want_bytes` (clamped between
    /// [`MIN_READ_SPACE_BYTES`] and [`READ_CHUNK_BYTES`]). Returns the number of bytes read;
    /// 0 means end of stream.
    async fn fill(&mut self, want_bytes: usize) -> io::Result<usize> {
        // Grow geometrically: by at most what has already arrived (and at least 64 KiB), so a
        // large record is read with O(log n) reallocations instead of one per 64 KiB — a
        // shared `BytesMut` grows by exactly what is reserved and copies on every growth —
        // while a peer that announces much and sends little still cannot make us allocate
        // more than twice what it sent.
        let limit_bytes = READ_CHUNK_BYTES.max(self.buf.len());
        let want_bytes = want_bytes.clamp(MIN_READ_SPACE_BYTES, limit_bytes);
        if self.buf.capacity() - self.buf.len() < want_bytes {
            self.buf.reserve(want_bytes);
        }
        self.inner.read_buf(&mut self.buf).await
    }

    /// Waits for the next record's first fragment mark and returns the length it announces
    /// and whether it is the last fragment, without consuming anything: a server charges a
    /// record against its memory bound before it reads the body. `Ok(None)` on a clean end
    /// of stream. Cancel-safe.
    pub async fn peek_mark(&mut self) -> Result<Option<(bool, u32)>, RecordError> {
        while self.buf.len() < RECORD_MARK_BYTES {
            if self.fill(MIN_READ_SPACE_BYTES).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(RecordError::UnexpectedEof {
                    received_bytes: self.buf.len() as u64,
                });
            }
        }
        let mark = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        Ok(Some(parse_record_mark(mark)))
    }

    /// Makes room for `len_bytes` more bytes at once: a server that has charged a record of
    /// that size against its memory bound lets it arrive without the buffer's growth steps
    /// (which could leave it up to twice the size).
    pub fn reserve(&mut self, len_bytes: usize) {
        let free = self.buf.capacity() - self.buf.len();
        if free < len_bytes {
            self.buf.reserve(len_bytes);
        }
    }

    /// Reads the next record; `Ok(None)` on a clean end of stream at a record boundary.
    ///
    /// The length announced by each fragment mark is checked against the maximum before the
    /// fragment's body is waited for; the buffer grows by at most the larger of 64 KiB and
    /// the data that has arrived, so it never exceeds about twice what the peer really sent.
    ///
    /// Not cancel-safe across a multi-fragment record: dropping the future after some
    /// fragments have been consumed loses them.
    pub async fn read_record(&mut self) -> Result<Option<Bytes>, RecordError> {
        let mut assembled: Option<BytesMut> = None;
        let mut record_len_bytes: u64 = 0;
        let mut marks_bytes: u64 = 0;
        loop {
            while self.buf.len() < RECORD_MARK_BYTES {
                if self.fill(MIN_READ_SPACE_BYTES).await? == 0 {
                    if self.buf.is_empty() && marks_bytes == 0 {
                        return Ok(None);
                    }
                    return Err(RecordError::UnexpectedEof {
                        received_bytes: record_len_bytes + marks_bytes + self.buf.len() as u64,
                    });
                }
            }
            let mark = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
            let (last, fragment_len) = parse_record_mark(mark);
            let new_len_bytes = record_len_bytes + u64::from(fragment_len);
            check_len(new_len_bytes, self.max_record_bytes)?;
            self.buf.advance(RECORD_MARK_BYTES);
            marks_bytes += RECORD_MARK_BYTES as u64;
            let fragment_len = fragment_len as usize;
            while self.buf.len() < fragment_len {
                let missing_bytes = fragment_len - self.buf.len();
                if self.fill(missing_bytes).await? == 0 {
                    return Err(RecordError::UnexpectedEof {
                        received_bytes: record_len_bytes + marks_bytes + self.buf.len() as u64,
                    });
                }
            }
            let fragment = self.buf.split_to(fragment_len);
            record_len_bytes = new_len_bytes;
            match (last, assembled.as_mut()) {
                (true, None) => return Ok(Some(fragment.freeze())),
                (true, Some(record)) => {
                    record.extend_from_slice(&fragment);
                    let record = std::mem::take(record);
                    return Ok(Some(record.freeze()));
                }
                (false, None) => assembled = Some(fragment),
                (false, Some(record)) => record.extend_from_slice(&fragment),
            }
        }
    }
}

/// Fragment lengths of a record of `total_bytes` split at `max_fragment_bytes`.
///
/// A record always has at least one fragment (an empty record is one empty last fragment).
fn fragment_len(remaining_bytes: usize, max_fragment_bytes: usize) -> usize {
    remaining_bytes.min(max_fragment_bytes)
}

/// Appends the marks of a record of `total_bytes` to `marks`.
fn push_marks(total_bytes: usize, max_fragment_bytes: usize, marks: &mut Vec<[u8; 4]>) {
    let mut remaining_bytes = total_bytes;
    loop {
        let len = fragment_len(remaining_bytes, max_fragment_bytes);
        remaining_bytes -= len;
        let last = remaining_bytes == 0;
        // `len` <= max_fragment_bytes <= MAX_FRAGMENT_BYTES, so it fits the mark.
        marks.push(record_mark(len as u32, last));
        if last {
            return;
        }
    }
}

/// Appends the I/O slices of one record (marks interleaved with payload slices, no copies).
fn push_record_slices<'a>(
    segments: &'a [Bytes],
    total_bytes: usize,
    max_fragment_bytes: usize,
    marks: &mut std::slice::Iter<'a, [u8; 4]>,
    slices: &mut Vec<IoSlice<'a>>,
) {
    let mut remaining_bytes = total_bytes;
    let mut fragment_left_bytes = 0usize;
    let mut mark_written = false;
    for segment in segments {
        let mut data: &'a [u8] = segment;
        while !data.is_empty() {
            if fragment_left_bytes == 0 {
                if let Some(mark) = marks.next() {
                    slices.push(IoSlice::new(mark));
                }
                mark_written = true;
                fragment_left_bytes = fragment_len(remaining_bytes, max_fragment_bytes);
            }
            let take = fragment_left_bytes.min(data.len());
            slices.push(IoSlice::new(&data[..take]));
            data = &data[take..];
            fragment_left_bytes -= take;
            remaining_bytes -= take;
        }
    }
    if !mark_written {
        // An empty record: a single empty last fragment.
        if let Some(mark) = marks.next() {
            slices.push(IoSlice::new(mark));
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
    let max_fragment_bytes = max_fragment_bytes.clamp(1, MAX_FRAGMENT_BYTES) as usize;
    let totals: Vec<usize> = records
        .iter()
        .map(|r| r.as_ref().iter().map(Bytes::len).sum())
        .collect();
    let mut marks = Vec::with_capacity(records.len());
    for &total_bytes in &totals {
        push_marks(total_bytes, max_fragment_bytes, &mut marks);
    }
    let mut slices = Vec::with_capacity(marks.len() + records.len() * 2);
    let mut mark_iter = marks.iter();
    for (record, &total_bytes) in records.iter().zip(&totals) {
        push_record_slices(
            record.as_ref(),
            total_bytes,
            max_fragment_bytes,
            &mut mark_iter,
            &mut slices,
        );
    }
    if w.is_write_vectored() {
        write_all_vectored(w, &mut slices).await
    } else {
        let len_bytes = slices.iter().map(|s| s.len()).sum();
        let mut gathered = Vec::with_capacity(len_bytes);
        for slice in &slices {
            gathered.extend_from_slice(slice);
        }
        w.write_all(&gathered).await
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn marks_round_trip() {
        assert_eq!(record_mark(0, true), [0x80, 0, 0, 0]);
        assert_eq!(record_mark(0x1234, false), [0, 0, 0x12, 0x34]);
        assert_eq!(
            parse_record_mark([0xff, 0xff, 0xff, 0xff]),
            (true, MAX_FRAGMENT_BYTES)
        );
        assert_eq!(parse_record_mark([0, 0, 0, 5]), (false, 5));
    }

    #[test]
    fn slices_interleave_marks_without_copying() {
        let a = Bytes::from_static(b"0123456789");
        let b = Bytes::from_static(b"abcde");
        let segments = [a.clone(), b.clone()];
        let mut marks = Vec::new();
        push_marks(15, 4, &mut marks);
        assert_eq!(marks.len(), 4);
        let mut slices = Vec::new();
        push_record_slices(&segments, 15, 4, &mut marks.iter(), &mut slices);
        // mark,0123 mark,4567 mark,89,ab mark,cde
        let lens: Vec<usize> = slices.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [4, 4, 4, 4, 4, 2, 2, 4, 3]);
        assert_eq!(slices[1].as_ptr(), a.as_ptr(), "payload must be borrowed");
        assert_eq!(&slices[8][..], b"cde");
        assert_eq!(slices[8].as_ptr(), b[2..].as_ptr());
    }
}
