//! RFC 5531 record marking, sans-IO: how RPC messages are delimited on a byte stream.
//!
//! TCP carries bytes, not messages, so ONC RPC prefixes every *fragment* of a message with a
//! 4-byte mark: the high bit says "last fragment of the record", the low 31 bits give the
//! fragment's length. A record (one RPC call or reply) is one or more fragments.
//!
//! This module owns those bytes for every reader and writer of them — the client transport
//! and the server (through `nfsio-rpc`'s reader and writer) and the simulation's wire tap —
//! and does no I/O itself:
//!
//! - [`RecordDecoder`] is fed the bytes that arrived and yields whole records. A hostile or
//!   broken peer controls the lengths, so each fragment's announced length is checked against
//!   the record bound *before* the decoder waits for its body or makes room for it, and its
//!   buffer grows only by what arrives ([`RecordDecoder::read_buffer`]): a peer announcing a
//!   2 GiB fragment and sending nothing costs nothing.
//! - [`fragments`] walks the whole fragments at the start of a buffer, borrowed (what a tap
//!   looking at one segment needs).
//! - [`RecordFrames`] frames records given as [`Bytes`] segments: the marks are computed
//!   once, and the I/O slices interleave them with the payload, which is never copied.

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

mod spares;
use spares::Spares;

/// The bit of a record mark that flags the last fragment of a record.
pub const LAST_FRAGMENT_FLAG: u32 = 0x8000_0000;

/// The largest fragment a record mark can describe (2^31 - 1 bytes).
pub const MAX_FRAGMENT_BYTES: u32 = 0x7fff_ffff;

/// Size of a record mark on the wire.
pub const RECORD_MARK_BYTES: usize = 4;

/// The step by which the decoder's buffer grows while a long fragment arrives (and the most
/// it offers one read before that much has arrived).
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Below this much free buffer space the decoder makes room before a read, so that a read is
/// never uselessly small.
const MIN_READ_SPACE_BYTES: usize = 16 * 1024;

/// The mark that opens a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentMark {
    /// The fragment ends its record.
    pub last: bool,
    /// The fragment's length, mark excluded (at most [`MAX_FRAGMENT_BYTES`]).
    pub len_bytes: u32,
}

impl FragmentMark {
    /// The mark of a fragment of `len_bytes` (bits above [`MAX_FRAGMENT_BYTES`] are dropped).
    pub fn new(len_bytes: u32, last: bool) -> Self {
        Self {
            last,
            len_bytes: len_bytes & MAX_FRAGMENT_BYTES,
        }
    }

    /// The mark's four bytes on the wire.
    pub fn to_bytes(self) -> [u8; RECORD_MARK_BYTES] {
        let flag = if self.last { LAST_FRAGMENT_FLAG } else { 0 };
        (self.len_bytes | flag).to_be_bytes()
    }

    /// The mark these four bytes encode.
    pub fn from_bytes(mark: [u8; RECORD_MARK_BYTES]) -> Self {
        let word = u32::from_be_bytes(mark);
        Self {
            last: word & LAST_FRAGMENT_FLAG != 0,
            len_bytes: word & MAX_FRAGMENT_BYTES,
        }
    }

    /// The mark at the start of `buf`, once its four bytes are there.
    pub fn peek(buf: &[u8]) -> Option<Self> {
        let mark: [u8; RECORD_MARK_BYTES] = buf.get(..RECORD_MARK_BYTES)?.try_into().ok()?;
        Some(Self::from_bytes(mark))
    }
}

/// Encodes a record mark for a fragment of `len_bytes` (at most [`MAX_FRAGMENT_BYTES`]).
#[inline]
pub fn record_mark(len_bytes: u32, last: bool) -> [u8; RECORD_MARK_BYTES] {
    FragmentMark::new(len_bytes, last).to_bytes()
}

/// Decodes a record mark into (last fragment?, fragment length in bytes).
#[inline]
pub fn parse_record_mark(mark: [u8; RECORD_MARK_BYTES]) -> (bool, u32) {
    let mark = FragmentMark::from_bytes(mark);
    (mark.last, mark.len_bytes)
}

/// Why a byte stream is not a sequence of acceptable records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
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
        /// The maximum allowed.
        max_bytes: u32,
    },
}

/// Checks that a record grown to `len_bytes` is still within `max_record_bytes`: what every
/// reader does with a fragment's mark before it reads or allocates anything for the body.
pub fn check_record_len(len_bytes: u64, max_record_bytes: u32) -> Result<(), RecordError> {
    if len_bytes > u64::from(max_record_bytes) {
        Err(RecordError::TooLarge {
            len_bytes,
            max_bytes: max_record_bytes,
        })
    } else {
        Ok(())
    }
}

/// Reassembles records from the bytes of a stream, fed as they arrive.
///
/// A record that is one fragment is returned as a zero-copy slice of the decoder's buffer;
/// one of several fragments is reassembled into a buffer of its own. The decoder keeps its
/// place between calls, so a caller may stop waiting for a record at any point (it is
/// cancel-safe) and go on later.
#[derive(Debug)]
pub struct RecordDecoder {
    /// Bytes fed and not yet taken.
    buf: BytesMut,
    max_record_bytes: u32,
    /// The fragment whose mark has been taken and whose body is awaited.
    fragment: Option<FragmentMark>,
    /// The fragments of the record so far, when it has more than one.
    assembled: Option<BytesMut>,
    /// Payload bytes of the fragments of this record taken so far.
    record_len_bytes: u64,
    /// Bytes of the marks of this record taken so far.
    marks_bytes: u64,
    /// Large buffers handed out as records, kept to be reused once their records are gone.
    spares: Spares,
    /// `buf` is a large buffer [`RecordDecoder::reserve_fragment`] made room in, to be kept
    /// among the spares when the decoder moves on.
    buf_is_large: bool,
}

impl RecordDecoder {
    /// A decoder that refuses records longer than `max_record_bytes`.
    pub fn new(max_record_bytes: u32) -> Self {
        Self {
            buf: BytesMut::new(),
            max_record_bytes,
            fragment: None,
            assembled: None,
            record_len_bytes: 0,
            marks_bytes: 0,
            spares: Spares::new(0),
            buf_is_large: false,
        }
    }

    /// A decoder that also keeps up to `max_count` large receive buffers (those
    /// [`RecordDecoder::reserve_fragment`] made for long fragments) and reads the next long
    /// fragment into one that nobody holds any more, instead of a fresh allocation. A
    /// client keeping READ replies as slices sets `max_count` above the replies it may hold
    /// at once; the memory kept beyond them is at most `max_count` buffers of at most the
    /// record bound each.
    pub fn with_spare_buffers(max_record_bytes: u32, max_count: usize) -> Self {
        Self {
            spares: Spares::new(max_count),
            ..Self::new(max_record_bytes)
        }
    }

    /// How many long fragments arrived into a kept buffer rather than a new one.
    pub fn spare_buffers_reused(&self) -> u64 {
        self.spares.reused()
    }

    /// The longest record accepted.
    pub fn max_record_bytes(&self) -> u32 {
        self.max_record_bytes
    }

    /// Feeds bytes that arrived (copied into the decoder's buffer).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer to read arriving bytes into, without a copy: bytes appended to it are fed.
    ///
    /// Room is made first for `want_bytes` (say [`RecordDecoder::missing_bytes`]), clamped
    /// between 16 KiB and the larger of 64 KiB and what is buffered: the buffer grows
    /// geometrically, so a large record is read with O(log n) reallocations, while a peer
    /// that announces much and sends little cannot make it more than about twice what it
    /// sent. A buffer that already has room for the rest of the fragment being read (say,
    /// room reserved for it) is left as it is.
    pub fn read_buffer(&mut self, want_bytes: usize) -> &mut BytesMut {
        let free_bytes = self.buf.capacity() - self.buf.len();
        if self.fragment.is_some() && want_bytes > 0 && free_bytes >= want_bytes {
            return &mut self.buf;
        }
        let limit_bytes = READ_CHUNK_BYTES.max(self.buf.len());
        let want_bytes = want_bytes.clamp(MIN_READ_SPACE_BYTES, limit_bytes);
        if self.buf.capacity() - self.buf.len() < want_bytes {
            if self.buf_is_large {
                self.move_to_buffer(want_bytes, false);
            } else {
                self.buf.reserve(want_bytes);
            }
        }
        &mut self.buf
    }

    /// Makes room for `additional` bytes by moving what is buffered into another buffer (a
    /// spare when `large` and one is free, else a new one), keeping the large buffer it
    /// leaves. The buffer in use is reclaimed in place instead when nobody else holds it.
    fn move_to_buffer(&mut self, additional: usize, large: bool) {
        if self.buf.try_reclaim(additional) {
            if large && self.buf_is_large {
                self.spares.count_reuse();
            }
            return;
        }
        let needed_bytes = self.buf.len() + additional;
        let spare = if large {
            self.spares.take(needed_bytes)
        } else {
            None
        };
        let mut next = spare.unwrap_or_else(|| BytesMut::with_capacity(needed_bytes));
        next.extend_from_slice(&self.buf);
        let left = std::mem::replace(&mut self.buf, next);
        if self.buf_is_large {
            self.spares.keep(left);
        }
        self.buf_is_large = large;
    }

    /// Makes room for `len_bytes` more bytes at once: a server that has charged a record of
    /// that size against its memory bound lets it arrive without the buffer's growth steps
    /// (which could leave it up to twice the size).
    pub fn reserve(&mut self, len_bytes: usize) {
        let free_bytes = self.buf.capacity() - self.buf.len();
        if free_bytes >= len_bytes {
            return;
        }
        if self.spares.enabled() {
            self.move_to_buffer(len_bytes, true);
        } else {
            self.buf.reserve(len_bytes);
        }
    }

    /// Makes room at once for the rest of the fragment being read (or whose mark is here)
    /// and the next mark, when that is more than one read's growth step: a large record then
    /// arrives into an allocation of its own size, not one up to twice as big, which a caller
    /// keeping the record as a zero-copy slice (a client caching a READ reply) would pin.
    /// Nothing is reserved for a fragment the record bound refuses, so a peer can make the
    /// decoder hold at most the bound.
    pub fn reserve_fragment(&mut self) {
        let Some(mark) = self.peek_mark() else {
            return;
        };
        let mark_taken = self.fragment.is_some();
        if !mark_taken
            && check_record_len(
                self.record_len_bytes + u64::from(mark.len_bytes),
                self.max_record_bytes,
            )
            .is_err()
        {
            return;
        }
        let mark_bytes = if mark_taken { 0 } else { RECORD_MARK_BYTES };
        let want_bytes = mark_bytes + mark.len_bytes as usize + RECORD_MARK_BYTES;
        if want_bytes <= READ_CHUNK_BYTES {
            return;
        }
        self.reserve(want_bytes.saturating_sub(self.buf.len()));
    }

    /// The mark of the fragment being read, or of the next one once its four bytes are
    /// here: a server charges a record against its memory bound before its body arrives.
    pub fn peek_mark(&self) -> Option<FragmentMark> {
        self.fragment.or_else(|| FragmentMark::peek(&self.buf))
    }

    /// Bytes still to arrive before [`RecordDecoder::next_record`] can make progress: the
    /// rest of a mark, or of the fragment body being read.
    pub fn missing_bytes(&self) -> usize {
        let needed_bytes = match self.fragment {
            Some(mark) => mark.len_bytes as usize,
            None => RECORD_MARK_BYTES,
        };
        needed_bytes.saturating_sub(self.buf.len())
    }

    /// The next whole record, once it has arrived (`Ok(None)`: not yet).
    ///
    /// Each fragment's announced length is checked against the maximum, for the record as a
    /// whole, before its mark is taken: after [`RecordError::TooLarge`] nothing has been
    /// consumed or allocated for it.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordError> {
        loop {
            let mark = match self.fragment {
                Some(mark) => mark,
                None => {
                    let Some(mark) = FragmentMark::peek(&self.buf) else {
                        return Ok(None);
                    };
                    check_record_len(
                        self.record_len_bytes + u64::from(mark.len_bytes),
                        self.max_record_bytes,
                    )?;
                    self.buf.advance(RECORD_MARK_BYTES);
                    self.marks_bytes += RECORD_MARK_BYTES as u64;
                    self.fragment = Some(mark);
                    mark
                }
            };
            let len_bytes = mark.len_bytes as usize;
            if self.buf.len() < len_bytes {
                return Ok(None);
            }
            let fragment = self.buf.split_to(len_bytes);
            self.fragment = None;
            self.record_len_bytes += u64::from(mark.len_bytes);
            let record = match (mark.last, self.assembled.as_mut()) {
                (true, None) => fragment,
                (true, Some(record)) => {
                    record.extend_from_slice(&fragment);
                    std::mem::take(record)
                }
                (false, None) => {
                    self.assembled = Some(fragment);
                    continue;
                }
                (false, Some(record)) => {
                    record.extend_from_slice(&fragment);
                    continue;
                }
            };
            self.assembled = None;
            self.record_len_bytes = 0;
            self.marks_bytes = 0;
            return Ok(Some(record.freeze()));
        }
    }

    /// Says whether the stream may end here: `Ok` at a record boundary with nothing
    /// buffered, [`RecordError::UnexpectedEof`] inside a record.
    pub fn end_of_stream(&self) -> Result<(), RecordError> {
        if self.buf.is_empty() && self.marks_bytes == 0 {
            return Ok(());
        }
        Err(RecordError::UnexpectedEof {
            received_bytes: self.record_len_bytes + self.marks_bytes + self.buf.len() as u64,
        })
    }

    /// Bytes fed but not yet taken as part of a record.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Allocated capacity of the buffer (for tests of the allocation bounds).
    pub fn buffer_capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// The bytes fed but not yet taken, giving the decoder up.
    pub fn into_buffered(self) -> Bytes {
        self.buf.freeze()
    }
}

/// The whole fragments at the start of `buf`, in order, borrowed (see [`Fragments`]).
pub fn fragments(buf: &[u8]) -> Fragments<'_> {
    Fragments { rest: buf }
}

/// An iterator over the whole fragments at the start of a buffer: each mark and the body it
/// announces. It stops at the first fragment that is not whole; nothing is copied or
/// allocated, so no bound is needed.
#[derive(Debug, Clone)]
pub struct Fragments<'a> {
    rest: &'a [u8],
}

impl<'a> Fragments<'a> {
    /// What follows the fragments walked so far.
    pub fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Fragments<'a> {
    type Item = (FragmentMark, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let mark = FragmentMark::peek(self.rest)?;
        let body = self.rest[RECORD_MARK_BYTES..].get(..mark.len_bytes as usize)?;
        self.rest = &self.rest[RECORD_MARK_BYTES + body.len()..];
        Some((mark, body))
    }
}

/// The framing of a batch of records, each given as [`Bytes`] segments, cut into fragments
/// of at most a given length: the marks, computed once, and the I/O slices that put them on
/// the wire with the payload borrowed, never copied.
#[derive(Debug)]
pub struct RecordFrames {
    marks: Vec<[u8; RECORD_MARK_BYTES]>,
    records_len_bytes: Vec<usize>,
    max_fragment_bytes: usize,
}

impl RecordFrames {
    /// Frames `records` in fragments of at most `max_fragment_bytes` (clamped to
    /// 1..=[`MAX_FRAGMENT_BYTES`]). An empty record is one empty last fragment.
    pub fn new<S: AsRef<[Bytes]>>(records: &[S], max_fragment_bytes: u32) -> Self {
        let max_fragment_bytes = max_fragment_bytes.clamp(1, MAX_FRAGMENT_BYTES) as usize;
        let records_len_bytes: Vec<usize> = records
            .iter()
            .map(|r| r.as_ref().iter().map(Bytes::len).sum())
            .collect();
        let mut marks = Vec::with_capacity(records.len());
        for &len_bytes in &records_len_bytes {
            let mut remaining_bytes = len_bytes;
            loop {
                let fragment_bytes = remaining_bytes.min(max_fragment_bytes);
                remaining_bytes -= fragment_bytes;
                let last = remaining_bytes == 0;
                // `fragment_bytes` <= max_fragment_bytes <= MAX_FRAGMENT_BYTES: it fits.
                marks.push(record_mark(fragment_bytes as u32, last));
                if last {
                    break;
                }
            }
        }
        Self {
            marks,
            records_len_bytes,
            max_fragment_bytes,
        }
    }

    /// The marks of every fragment, in order.
    pub fn marks(&self) -> &[[u8; RECORD_MARK_BYTES]] {
        &self.marks
    }

    /// Bytes the batch takes on the wire, marks included.
    pub fn wire_len_bytes(&self) -> usize {
        self.marks.len() * RECORD_MARK_BYTES + self.records_len_bytes.iter().sum::<usize>()
    }

    /// The I/O slices of `records` (the records framed, in the same order): each mark, then
    /// the payload of its fragment as slices of the records' segments.
    pub fn io_slices<'a, S: AsRef<[Bytes]>>(&'a self, records: &'a [S]) -> Vec<IoSlice<'a>> {
        debug_assert_eq!(
            records.len(),
            self.records_len_bytes.len(),
            "the records framed"
        );
        let mut slices = Vec::with_capacity(self.marks.len() + records.len() * 2);
        let mut marks = self.marks.iter();
        for (record, &len_bytes) in records.iter().zip(&self.records_len_bytes) {
            self.push_record(record.as_ref(), len_bytes, &mut marks, &mut slices);
        }
        slices
    }

    /// Appends the slices of one record: marks interleaved with payload slices.
    fn push_record<'a>(
        &self,
        segments: &'a [Bytes],
        len_bytes: usize,
        marks: &mut std::slice::Iter<'a, [u8; RECORD_MARK_BYTES]>,
        slices: &mut Vec<IoSlice<'a>>,
    ) {
        let mut remaining_bytes = len_bytes;
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
                    fragment_left_bytes = remaining_bytes.min(self.max_fragment_bytes);
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
}

#[cfg(test)]
mod tests;
