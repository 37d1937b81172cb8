//! The internal identity of a cached file, by which every part of the engine's state is
//! keyed: a room of its own, so that the store, the extent map, the call table and the timers
//! can all name a file without importing each other.

/// Internal identity of a cached file (one per file handle; never reused).
pub(crate) type InodeId = u64;
