//! A run of small application writes enters the cache with each byte copied once: from the
//! application's buffer into the cache. Growing one buffer per extent would copy the run again
//! at every doubling (a 1 MiB chunk written in 4 KiB pieces: another 1 MiB of copies, into
//! memory that must be faulted in). The reallocations are counted by this binary's allocator,
//! so this file holds one test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use nfsio_cache::{Engine, EngineConfig, ExtentState, WriteOutcome};
use nfsio_proto::nfs3::{Fattr, FileHandle};

/// The system allocator, counting the bytes that reallocations carry over (what a moving
/// reallocation copies).
struct CountingCopies;

static REALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingCopies {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let kept = layout.size().min(new_size) as u64;
        REALLOCATED_BYTES.fetch_add(kept, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingCopies = CountingCopies;

#[test]
fn a_run_of_small_writes_is_not_copied_again_as_it_grows() {
    let config = EngineConfig::default();
    let chunk_bytes = u64::from(config.wsize_bytes);
    let mut engine = Engine::new(config).unwrap();
    let file = engine.open(FileHandle::from(vec![7]), &Fattr::default(), 0);
    let written_bytes = 4 * chunk_bytes;
    let piece_bytes = 4096u64;
    let before = REALLOCATED_BYTES.load(Ordering::Relaxed);
    for i in 0..written_bytes / piece_bytes {
        let piece = [(i % 251) as u8 + 1; 4096];
        let outcome = engine.write(file, i * piece_bytes, &piece, 0).unwrap();
        assert_eq!(outcome, WriteOutcome::Accepted, "write {i}");
    }
    let copied = REALLOCATED_BYTES.load(Ordering::Relaxed) - before;
    // Nothing was sent (no call was polled): every byte is dirty, and reads back as written.
    let extents = engine.extents(file).unwrap();
    let mut at = 0u64;
    for extent in &extents {
        assert_eq!(extent.state, ExtentState::Dirty);
        assert_eq!(
            extent.offset_bytes, at,
            "extents cover the run without a gap"
        );
        for (k, byte) in extent.data.iter().enumerate() {
            let i = (at + k as u64) / piece_bytes;
            assert_eq!(*byte, (i % 251) as u8 + 1, "byte {}", at + k as u64);
        }
        at += extent.data.len() as u64;
    }
    assert_eq!(at, written_bytes);
    // A few extents per chunk, not one per write...
    assert!(
        extents.len() as u64 <= 8 * written_bytes / chunk_bytes,
        "{} extents for {} chunks",
        extents.len(),
        written_bytes / chunk_bytes
    );
    // ...and only the short start of each chunk's run is grown in place (and copied).
    assert!(
        copied <= written_bytes / 16,
        "reallocations carried over {copied} bytes while {written_bytes} bytes were written"
    );
}
