//! XDR (RFC 4506) encoding and bounded decoding.
//!
//! Every NFS message is XDR. This module is the only place that turns values into bytes and
//! back, so it is where the two rules of the wire are enforced once for everything above it:
//!
//! - **Decoding is bounded.** Each variable-length item is checked against its protocol maximum
//!   and against what remains of the record *before* anything is sliced or allocated. Opaque data
//!   is returned as a [`Bytes`] slice of the record (no copy); counted arrays are only allocated
//!   once `count * minimum_element_size` fits in the remaining bytes.
//! - **Encoding can be vectored.** Large payloads (WRITE data, READ replies) are appended as
//!   their own [`Bytes`] segments, so a 1 MiB WRITE is sent as header + payload slices without
//!   being copied into one buffer.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Why a byte sequence is not a valid XDR encoding of the expected message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XdrError {
    /// The record ended before the item did.
    #[error("truncated: {what} needs {needed_bytes} bytes, {remaining_bytes} remain")]
    Truncated {
        /// The item being decoded.
        what: &'static str,
        /// Bytes the item needs.
        needed_bytes: usize,
        /// Bytes left in the record.
        remaining_bytes: usize,
    },
    /// A length on the wire exceeds the protocol maximum for that item.
    #[error("{what} length {len} exceeds the maximum {max}")]
    TooLong {
        /// The item being decoded.
        what: &'static str,
        /// The length read from the wire.
        len: u64,
        /// The protocol maximum.
        max: u64,
    },
    /// A discriminant (enum value, union arm, boolean) is not one the protocol defines.
    #[error("invalid {what} value {value}")]
    InvalidValue {
        /// The item being decoded.
        what: &'static str,
        /// The value read from the wire.
        value: u32,
    },
    /// Bytes were left over after a message that should have filled its record.
    #[error("{remaining_bytes} trailing bytes after the message")]
    TrailingBytes {
        /// Bytes left unread.
        remaining_bytes: usize,
    },
}

/// The result of a decode step.
pub type XdrResult<T> = Result<T, XdrError>;

/// Number of zero bytes that pad `len` to a multiple of four.
#[inline]
pub fn pad_len(len: usize) -> usize {
    (4 - (len & 3)) & 3
}

/// The XDR size of variable-length opaque data of `len` bytes: length word, data, padding.
#[inline]
pub fn opaque_size(len: usize) -> usize {
    4 + len + pad_len(len)
}

/// Builds an XDR message as a list of segments.
///
/// Small items go into an internal buffer; [`XdrEncoder::put_opaque_shared`] closes the current
/// buffer segment and appends the caller's [`Bytes`] as a segment of its own, without copying.
#[derive(Debug, Default)]
pub struct XdrEncoder {
    buf: BytesMut,
    segments: Vec<Bytes>,
    len_bytes: usize,
}

const ZERO_PAD: [u8; 4] = [0; 4];

impl XdrEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::with_capacity(256)
    }

    /// An empty encoder whose first buffer segment can hold `capacity_bytes` without growing.
    pub fn with_capacity(capacity_bytes: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity_bytes),
            segments: Vec::new(),
            len_bytes: 0,
        }
    }

    /// Total encoded length so far, over all segments.
    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    /// True when nothing has been encoded.
    pub fn is_empty(&self) -> bool {
        self.len_bytes == 0
    }

    /// Appends an unsigned 32-bit integer.
    pub fn put_u32(&mut self, value: u32) {
        self.buf.put_u32(value);
        self.len_bytes += 4;
    }

    /// Appends a signed 32-bit integer.
    pub fn put_i32(&mut self, value: i32) {
        self.buf.put_i32(value);
        self.len_bytes += 4;
    }

    /// Appends an unsigned 64-bit integer (XDR `unsigned hyper`).
    pub fn put_u64(&mut self, value: u64) {
        self.buf.put_u64(value);
        self.len_bytes += 8;
    }

    /// Appends a signed 64-bit integer (XDR `hyper`).
    pub fn put_i64(&mut self, value: i64) {
        self.buf.put_i64(value);
        self.len_bytes += 8;
    }

    /// Appends a boolean.
    pub fn put_bool(&mut self, value: bool) {
        self.put_u32(u32::from(value));
    }

    /// Appends fixed-length opaque data (no length word), padded to four bytes.
    pub fn put_opaque_fixed(&mut self, data: &[u8]) {
        self.buf.put_slice(data);
        let pad = pad_len(data.len());
        self.buf.put_slice(&ZERO_PAD[..pad]);
        self.len_bytes += data.len() + pad;
    }

    /// Appends variable-length opaque data (or a string): length word, bytes, padding.
    ///
    /// # Panics
    /// Never for data shorter than 4 GiB; longer data cannot be expressed in XDR and is a
    /// programming error of the caller (asserted).
    pub fn put_opaque(&mut self, data: &[u8]) {
        assert!(
            u32::try_from(data.len()).is_ok(),
            "XDR opaque longer than u32::MAX"
        );
        self.put_u32(data.len() as u32);
        self.put_opaque_fixed(data);
    }

    /// Appends variable-length opaque data held in `data` as a segment of its own (zero-copy).
    ///
    /// Small payloads are copied instead, where a separate segment would cost more than it saves.
    pub fn put_opaque_shared(&mut self, data: &Bytes) {
        const COPY_BELOW_BYTES: usize = 1024;
        if data.len() < COPY_BELOW_BYTES {
            self.put_opaque(data);
            return;
        }
        assert!(
            u32::try_from(data.len()).is_ok(),
            "XDR opaque longer than u32::MAX"
        );
        self.put_u32(data.len() as u32);
        if !self.buf.is_empty() {
            self.segments.push(self.buf.split().freeze());
        }
        self.segments.push(data.clone());
        let pad = pad_len(data.len());
        self.buf.put_slice(&ZERO_PAD[..pad]);
        self.len_bytes += data.len() + pad;
    }

    /// Appends variable-length opaque data given as several buffers, in order: one length word
    /// for all of them, each buffer a segment of its own (zero-copy; small ones copied, as in
    /// [`XdrEncoder::put_opaque_shared`]), then the padding. Encodes exactly as
    /// [`XdrEncoder::put_opaque`] of the concatenation would.
    ///
    /// # Panics
    /// When the buffers together reach 4 GiB, which XDR cannot express (asserted).
    pub fn put_opaque_segments(&mut self, parts: &[Bytes]) {
        const COPY_BELOW_BYTES: usize = 1024;
        let total: usize = parts.iter().map(Bytes::len).sum();
        assert!(
            u32::try_from(total).is_ok(),
            "XDR opaque longer than u32::MAX"
        );
        self.put_u32(total as u32);
        for part in parts {
            if part.len() < COPY_BELOW_BYTES {
                self.buf.put_slice(part);
            } else {
                if !self.buf.is_empty() {
                    self.segments.push(self.buf.split().freeze());
                }
                self.segments.push(part.clone());
            }
        }
        let pad = pad_len(total);
        self.buf.put_slice(&ZERO_PAD[..pad]);
        self.len_bytes += total + pad;
    }

    /// Finishes the message and returns its segments, in order.
    pub fn finish(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.segments.push(self.buf.split().freeze());
        }
        self.segments
    }

    /// Finishes the message into one contiguous buffer (copies shared segments).
    pub fn finish_contiguous(self) -> Bytes {
        let total = self.len_bytes;
        let segments = self.finish();
        match segments.len() {
            0 => Bytes::new(),
            1 => segments.into_iter().next().unwrap_or_default(),
            _ => {
                let mut out = BytesMut::with_capacity(total);
                for segment in &segments {
                    out.put_slice(segment);
                }
                out.freeze()
            }
        }
    }
}

/// Reads XDR items from one record, never past its end.
#[derive(Debug, Clone)]
pub struct XdrDecoder {
    buf: Bytes,
    max_data_bytes: u32,
}

/// Default bound on READ/WRITE payloads when the caller has negotiated nothing smaller.
pub const DEFAULT_MAX_DATA_BYTES: u32 = 64 * 1024 * 1024;

impl XdrDecoder {
    /// A decoder over `buf`, with the default payload bound.
    pub fn new(buf: Bytes) -> Self {
        Self {
            buf,
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
        }
    }

    /// Sets the bound on READ/WRITE payloads (the negotiated rtmax/wtmax).
    pub fn with_max_data_bytes(mut self, max_data_bytes: u32) -> Self {
        self.max_data_bytes = max_data_bytes;
        self
    }

    /// The bound on READ/WRITE payloads.
    pub fn max_data_bytes(&self) -> u32 {
        self.max_data_bytes
    }

    /// Bytes not yet decoded.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The undecoded rest of the record, without consuming it.
    pub fn rest(&self) -> &Bytes {
        &self.buf
    }

    /// Consumes the decoder and returns the undecoded rest of the record.
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    /// Fails unless every byte of the record has been decoded.
    pub fn finish(&self) -> XdrResult<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(XdrError::TrailingBytes {
                remaining_bytes: self.buf.len(),
            })
        }
    }

    fn need(&self, what: &'static str, needed_bytes: usize) -> XdrResult<()> {
        if self.buf.len() < needed_bytes {
            Err(XdrError::Truncated {
                what,
                needed_bytes,
                remaining_bytes: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    fn take(&mut self, what: &'static str, len: usize) -> XdrResult<Bytes> {
        self.need(what, len)?;
        Ok(self.buf.split_to(len))
    }

    /// Reads an unsigned 32-bit integer.
    pub fn get_u32(&mut self) -> XdrResult<u32> {
        self.need("u32", 4)?;
        let b = self.buf.split_to(4);
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a signed 32-bit integer.
    pub fn get_i32(&mut self) -> XdrResult<i32> {
        Ok(self.get_u32()? as i32)
    }

    /// Reads an unsigned 64-bit integer.
    pub fn get_u64(&mut self) -> XdrResult<u64> {
        self.need("u64", 8)?;
        let b = self.buf.split_to(8);
        Ok(u64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// Reads a signed 64-bit integer.
    pub fn get_i64(&mut self) -> XdrResult<i64> {
        Ok(self.get_u64()? as i64)
    }

    /// Reads a boolean; any value other than 0 or 1 is an error.
    pub fn get_bool(&mut self) -> XdrResult<bool> {
        match self.get_u32()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(XdrError::InvalidValue {
                what: "bool",
                value,
            }),
        }
    }

    /// Reads fixed-length opaque data of `len` bytes plus its padding (zero-copy).
    pub fn get_opaque_fixed(&mut self, what: &'static str, len: usize) -> XdrResult<Bytes> {
        let padded = len + pad_len(len);
        self.need(what, padded)?;
        let data = self.buf.split_to(len);
        let _ = self.buf.split_to(padded - len);
        Ok(data)
    }

    /// Reads fixed-length opaque data into an array.
    pub fn get_array_fixed<const N: usize>(&mut self, what: &'static str) -> XdrResult<[u8; N]> {
        let data = self.get_opaque_fixed(what, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&data);
        Ok(out)
    }

    /// Reads variable-length opaque data of at most `max_len` bytes (zero-copy).
    ///
    /// The length is checked against `max_len` and against the remaining record before the
    /// data is touched.
    pub fn get_opaque(&mut self, what: &'static str, max_len: u32) -> XdrResult<Bytes> {
        let len = self.get_u32()?;
        if len > max_len {
            return Err(XdrError::TooLong {
                what,
                len: u64::from(len),
                max: u64::from(max_len),
            });
        }
        self.get_opaque_fixed(what, len as usize)
    }

    /// Reads the length of a counted array of at most `max_count` elements, each at least
    /// `min_element_bytes` long on the wire, and checks that so many elements can fit in the
    /// rest of the record — so that the caller may allocate `count` elements safely.
    pub fn get_count(
        &mut self,
        what: &'static str,
        max_count: u32,
        min_element_bytes: usize,
    ) -> XdrResult<usize> {
        let count = self.get_u32()?;
        if count > max_count {
            return Err(XdrError::TooLong {
                what,
                len: u64::from(count),
                max: u64::from(max_count),
            });
        }
        let count = count as usize;
        self.need(what, count.saturating_mul(min_element_bytes))?;
        Ok(count)
    }

    /// Skips `len` bytes (already known to be present) — used by decoders of unions whose
    /// arms are opaque to this layer.
    pub fn skip(&mut self, what: &'static str, len: usize) -> XdrResult<()> {
        self.take(what, len).map(drop)
    }
}

/// Reads XDR words at known places of a byte slice without decoding a message: what the
/// peeks use that look at a record before it is decoded ([`crate::rpc::peek_message`],
/// [`crate::nfs3::peek_reply_data_bytes`]). Every step is checked against the slice; nothing
/// is allocated.
#[derive(Debug, Clone)]
pub(crate) struct XdrWords<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> XdrWords<'a> {
    /// Words from the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }

    /// How far into the slice the next word is.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// The next word, if it is whole.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        let end = self.at.checked_add(4)?;
        let word: [u8; 4] = self.buf.get(self.at..end)?.try_into().ok()?;
        self.at = end;
        Some(u32::from_be_bytes(word))
    }

    /// Steps over `len_bytes`, if the slice has them.
    pub(crate) fn skip(&mut self, len_bytes: usize) -> Option<()> {
        let end = self.at.checked_add(len_bytes)?;
        if end > self.buf.len() {
            return None;
        }
        self.at = end;
        Some(())
    }

    /// Steps over variable-length opaque data (its length word, its bytes, their padding),
    /// refusing a length above `max_len_bytes`.
    pub(crate) fn skip_opaque(&mut self, max_len_bytes: u32) -> Option<()> {
        let len = self.u32()?;
        if len > max_len_bytes {
            return None;
        }
        self.skip(len as usize + pad_len(len as usize))
    }
}

/// A value with an XDR encoding.
pub trait XdrEncode {
    /// Appends the value's encoding.
    fn encode(&self, enc: &mut XdrEncoder);
}

/// A value that can be decoded from XDR, within the bounds of its protocol.
pub trait XdrDecode: Sized {
    /// Decodes one value, consuming exactly its encoding.
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self>;
}

impl XdrEncode for u32 {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(*self);
    }
}

impl XdrDecode for u32 {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        dec.get_u32()
    }
}

impl XdrEncode for u64 {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u64(*self);
    }
}

impl XdrDecode for u64 {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        dec.get_u64()
    }
}

impl XdrEncode for bool {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_bool(*self);
    }
}

impl XdrDecode for bool {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        dec.get_bool()
    }
}

/// XDR optional data (`*T`): a boolean followed by the value when present.
impl<T: XdrEncode> XdrEncode for Option<T> {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Some(value) => {
                enc.put_bool(true);
                value.encode(enc);
            }
            None => enc.put_bool(false),
        }
    }
}

impl<T: XdrDecode> XdrDecode for Option<T> {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        if dec.get_bool()? {
            Ok(Some(T::decode(dec)?))
        } else {
            Ok(None)
        }
    }
}

/// The empty argument or result (`void`).
impl XdrEncode for () {
    fn encode(&self, _enc: &mut XdrEncoder) {}
}

impl XdrDecode for () {
    fn decode(_dec: &mut XdrDecoder) -> XdrResult<Self> {
        Ok(())
    }
}

/// Encodes a value into one contiguous buffer (tests, small messages).
pub fn to_bytes<T: XdrEncode + ?Sized>(value: &T) -> Bytes {
    let mut enc = XdrEncoder::new();
    value.encode(&mut enc);
    enc.finish_contiguous()
}

/// Decodes a value that must fill `buf` exactly.
pub fn from_bytes<T: XdrDecode>(buf: Bytes) -> XdrResult<T> {
    let mut dec = XdrDecoder::new(buf);
    let value = T::decode(&mut dec)?;
    dec.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_round_trip_with_padding() {
        let mut enc = XdrEncoder::new();
        enc.put_opaque(b"abcde");
        enc.put_u32(7);
        assert_eq!(enc.len_bytes(), 4 + 8 + 4);
        let bytes = enc.finish_contiguous();
        assert_eq!(
            &bytes[..],
            &[
                0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0, 0, 0, 0, 7
            ]
        );
        let mut dec = XdrDecoder::new(bytes);
        assert_eq!(&dec.get_opaque("x", 16).unwrap()[..], b"abcde");
        assert_eq!(dec.get_u32().unwrap(), 7);
        dec.finish().unwrap();
    }

    #[test]
    fn shared_payload_is_a_segment_of_its_own() {
        let payload = Bytes::from(vec![9u8; 4097]);
        let mut enc = XdrEncoder::new();
        enc.put_u32(1);
        enc.put_opaque_shared(&payload);
        enc.put_u32(2);
        let total = enc.len_bytes();
        let segments = enc.finish();
        assert_eq!(segments.len(), 3);
        assert_eq!(
            segments[1].as_ptr(),
            payload.as_ptr(),
            "payload must not be copied"
        );
        assert_eq!(segments.iter().map(Bytes::len).sum::<usize>(), total);
        assert_eq!(total, 4 + 4 + 4097 + 3 + 4);
    }

    #[test]
    fn lengths_are_checked_before_use() {
        let mut dec = XdrDecoder::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1, 2]));
        assert!(matches!(
            dec.get_opaque("name", 255),
            Err(XdrError::TooLong { .. })
        ));
        let mut dec = XdrDecoder::new(Bytes::from_static(&[0, 0, 0, 8, 1, 2]));
        assert!(matches!(
            dec.get_opaque("name", 255),
            Err(XdrError::Truncated { .. })
        ));
        let mut dec = XdrDecoder::new(Bytes::from_static(&[0, 1, 0, 0]));
        assert!(matches!(
            dec.get_count("list", 1 << 20, 4),
            Err(XdrError::Truncated { .. })
        ));
        let mut dec = XdrDecoder::new(Bytes::from_static(&[0, 0, 0, 2]));
        assert!(matches!(dec.get_bool(), Err(XdrError::InvalidValue { .. })));
    }
}
