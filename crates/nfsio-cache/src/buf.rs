//! An extent's bytes, in the one of two shapes that costs no copy at the moment it matters.
//!
//! Dirty bytes are growable (appends and overwrites in place, no copy per application write);
//! once a WRITE carries them, or they came from a READ, they are an immutable slice of that
//! call's payload, which is how an in-flight extent *is* its WRITE's snapshot.

use bytes::{Bytes, BytesMut};

use crate::write_data::WriteData;

/// An extent's bytes: growable while dirty, shared and immutable once a call carries them.
#[derive(Debug)]
pub(crate) enum Buf {
    /// Owned and growable.
    Mut(BytesMut),
    /// A slice of a shared buffer (a WRITE's payload, a READ's reply).
    Shared(Bytes),
}

impl Buf {
    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Buf::Mut(buf) => buf.len(),
            Buf::Shared(bytes) => bytes.len(),
        }
    }

    /// Bytes that can be appended without reallocating (0 when shared: appending copies).
    pub(crate) fn spare_capacity(&self) -> usize {
        match self {
            Buf::Mut(buf) => buf.capacity() - buf.len(),
            Buf::Shared(_) => 0,
        }
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Buf::Mut(buf) => buf,
            Buf::Shared(bytes) => bytes,
        }
    }

    /// Splits off the bytes from `at`, keeping `[0, at)` (no copy).
    pub(crate) fn split_off(&mut self, at: usize) -> Buf {
        match self {
            Buf::Mut(buf) => Buf::Mut(buf.split_off(at)),
            Buf::Shared(bytes) => Buf::Shared(bytes.split_off(at)),
        }
    }

    /// Makes the bytes immutable in place and returns them. No copy, except that a buffer
    /// grown by appends gives back its spare capacity first (a frozen extent can stay cached
    /// for long, and the memory bound counts its bytes, not its capacity).
    pub(crate) fn freeze(&mut self) -> Bytes {
        if let Buf::Mut(buf) = self {
            let buf = std::mem::take(buf);
            let frozen = if buf.capacity() - buf.len() > buf.len() / 4 {
                let mut exact = Vec::from(buf);
                exact.shrink_to_fit();
                Bytes::from(exact)
            } else {
                buf.freeze()
            };
            *self = Buf::Shared(frozen);
        }
        match self {
            Buf::Shared(bytes) => bytes.clone(),
            Buf::Mut(_) => unreachable!("frozen above"),
        }
    }

    /// `[start, end)` as an immutable buffer: a slice when shared, a copy when mutable.
    pub(crate) fn bytes_range(&self, start: usize, end: usize) -> Bytes {
        match self {
            Buf::Mut(buf) => Bytes::copy_from_slice(&buf[start..end]),
            Buf::Shared(bytes) => bytes.slice(start..end),
        }
    }

    /// The bytes as a mutable buffer, copying them once if they are shared.
    pub(crate) fn make_mut(&mut self) -> &mut BytesMut {
        if let Buf::Shared(bytes) = self {
            let owned = std::mem::take(bytes);
            let buf = match owned.try_into_mut() {
                Ok(buf) => buf,
                Err(shared) => BytesMut::from(&shared[..]),
            };
            *self = Buf::Mut(buf);
        }
        match self {
            Buf::Mut(buf) => buf,
            Buf::Shared(_) => unreachable!("converted above"),
        }
    }

    /// True when these are the very bytes of `payload` at `offset` (same memory, within one
    /// of its segments), which is how an in-flight extent proves it is the WRITE's snapshot.
    pub(crate) fn is_slice_of(&self, payload: &WriteData, offset: usize) -> bool {
        let Buf::Shared(bytes) = self else {
            return false;
        };
        let mut segment_start = 0;
        for segment in payload.segments() {
            let segment_end = segment_start + segment.len();
            if offset < segment_end {
                return offset >= segment_start
                    && offset + bytes.len() <= segment_end
                    && std::ptr::eq(bytes.as_ptr(), segment[offset - segment_start..].as_ptr());
            }
            segment_start = segment_end;
        }
        false
    }
}
