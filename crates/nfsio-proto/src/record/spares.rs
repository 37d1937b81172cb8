//! Receive buffers kept for reuse: a client reading 1 MiB READ replies would otherwise
//! allocate (and fault in, page by page) a fresh megabyte for every reply.
//!
//! A large reply is handed out as a zero-copy slice of the buffer it arrived in, so the
//! buffer cannot be reused while anyone holds that slice. The decoder therefore keeps an
//! empty handle on each large buffer it moves away from; once every slice of it is dropped,
//! the handle is the buffer's only owner and [`BytesMut::try_reclaim`] gives the whole
//! allocation back. That ownership test is the one `bytes` itself makes, so a buffer still
//! read by someone is never written: reuse cannot hand one owner's bytes to another.

use bytes::BytesMut;

/// Empty handles on large receive buffers, oldest first, at most `max_count`.
#[derive(Debug, Default)]
pub(super) struct Spares {
    handles: Vec<BytesMut>,
    max_count: usize,
    reused: u64,
}

impl Spares {
    /// Keeps at most `max_count` handles (0: none, every large buffer is freed when its
    /// slices are).
    pub(super) fn new(max_count: usize) -> Self {
        Self {
            handles: Vec::with_capacity(max_count),
            max_count,
            reused: 0,
        }
    }

    /// Whether large buffers are kept at all.
    pub(super) fn enabled(&self) -> bool {
        self.max_count > 0
    }

    /// The most recently kept buffer that nobody else holds any more, with room for
    /// `needed_bytes`: the one most likely still in the processor's caches.
    pub(super) fn take(&mut self, needed_bytes: usize) -> Option<BytesMut> {
        let index = self
            .handles
            .iter_mut()
            .rposition(|handle| handle.try_reclaim(needed_bytes))?;
        self.count_reuse();
        let buffer = self.handles.remove(index);
        assert!(
            buffer.is_empty() && buffer.capacity() >= needed_bytes,
            "invariant violated: a reclaimed receive buffer holds {} bytes and room for {}, \
             {needed_bytes} were needed",
            buffer.len(),
            buffer.capacity()
        );
        Some(buffer)
    }

    /// Keeps a handle on a large buffer the decoder moves away from (its contents, already
    /// copied elsewhere or handed out, are cleared from the handle). The oldest handle goes
    /// when there are too many: its slices are the likeliest to be gone, so that frees it.
    pub(super) fn keep(&mut self, mut handle: BytesMut) {
        if !self.enabled() {
            return;
        }
        handle.clear();
        if self.handles.len() == self.max_count {
            self.handles.remove(0);
        }
        self.handles.push(handle);
    }

    /// Counts a long fragment that arrived into a buffer already allocated (a spare, or the
    /// large buffer in use, reclaimed in place).
    pub(super) fn count_reuse(&mut self) {
        self.reused += 1;
    }

    /// How many times a kept buffer was reused.
    pub(super) fn reused(&self) -> u64 {
        self.reused
    }
}
