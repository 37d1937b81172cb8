//! A WRITE's payload as the buffers that already hold its bytes.
//!
//! A WRITE that joins several dirty extents (and the known zeros or clean bytes between them)
//! used to copy them into one new buffer: a second copy of every byte the application wrote,
//! and a fresh wsize buffer faulted in per WRITE. The transport writes a record as a list of
//! segments with one `writev`, so the WRITE can carry the extents' own buffers instead.

use bytes::Bytes;

/// The bytes of one WRITE: segments, in offset order, whose concatenation is the data.
#[derive(Debug, Clone, Default)]
pub struct WriteData {
    segments: Vec<Bytes>,
    len_bytes: usize,
}

/// Zeros to bridge gaps with (a gap is at most a chunk; longer ones take several segments).
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

impl WriteData {
    /// No bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `segment` (an empty one is left out).
    pub fn push(&mut self, segment: Bytes) {
        if !segment.is_empty() {
            self.len_bytes += segment.len();
            self.segments.push(segment);
        }
    }

    /// Appends `len_bytes` zeros (shared static segments, no allocation for the bytes).
    pub fn push_zeros(&mut self, mut len_bytes: usize) {
        while len_bytes > 0 {
            let n = len_bytes.min(ZEROS.len());
            self.push(Bytes::from_static(&ZEROS[..n]));
            len_bytes -= n;
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len_bytes
    }

    /// No bytes.
    pub fn is_empty(&self) -> bool {
        self.len_bytes == 0
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Bytes] {
        &self.segments
    }

    /// The bytes as one buffer: the only segment itself, else a copy of them all.
    pub fn to_bytes(&self) -> Bytes {
        match self.segments.as_slice() {
            [] => Bytes::new(),
            [only] => only.clone(),
            many => {
                let mut out = Vec::with_capacity(self.len_bytes);
                for segment in many {
                    out.extend_from_slice(segment);
                }
                Bytes::from(out)
            }
        }
    }

    /// The bytes, one at a time (for comparisons).
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.segments.iter().flat_map(|s| s.iter().copied())
    }
}

impl From<Bytes> for WriteData {
    fn from(data: Bytes) -> Self {
        let mut out = Self::new();
        out.push(data);
        out
    }
}

/// Equal when the bytes are, however they are split into segments.
impl PartialEq for WriteData {
    fn eq(&self, other: &Self) -> bool {
        self.len_bytes == other.len_bytes && self.bytes().eq(other.bytes())
    }
}

impl Eq for WriteData {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_longer_than_the_static_buffer_take_several_segments() {
        let mut data = WriteData::new();
        data.push(Bytes::from_static(b"ab"));
        data.push_zeros((64 << 10) + 3);
        data.push(Bytes::new());
        data.push(Bytes::from_static(b"c"));
        assert_eq!(data.len(), 2 + (64 << 10) + 3 + 1);
        assert_eq!(data.segments().len(), 4);
        let joined = data.to_bytes();
        assert_eq!(&joined[..2], b"ab");
        assert!(joined[2..joined.len() - 1].iter().all(|&b| b == 0));
        assert_eq!(joined[joined.len() - 1], b'c');
        assert_eq!(data, WriteData::from(joined));
    }
}
