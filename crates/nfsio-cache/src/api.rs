//! The values that cross the engine's boundary: identifiers, the RPCs it asks for, the replies
//! it is fed, the events it emits, and its errors.
//!
//! They are plain data so that the async shell can move them between tasks and a test can
//! build and match them without any runtime.

use bytes::{Bytes, BytesMut};
use nfsio_proto::nfs3::{Fattr, FileHandle, Nfs3Status, StableHow, WriteVerifier};
use thiserror::Error;

use crate::write_data::WriteData;

/// An open file: one `open` of a file handle. Errors are recorded and reported per open file;
/// the cached data is shared by all opens of the same handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// An RPC the engine asked for; the reply is fed back with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RpcId(pub u64);

/// A caller told to wait (a blocked writer, a reader of uncached data). [`Event::Wake`]
/// carries it when the caller should try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaitToken(pub u64);

/// A pending `fsync`, `close` or `truncate`; [`Event::SyncDone`] carries it when
/// [`Engine::poll_sync`](crate::Engine::poll_sync) has its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyncTicket(pub u64);

/// What happened to an application write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The bytes are in the cache; reads see them at once.
    Accepted,
    /// The cache is at its memory bound: nothing was written. Try again after
    /// [`Event::Wake`] with this token.
    Blocked(WaitToken),
}

/// What happened to an application write of a buffer the cache may keep
/// ([`Engine::write_owned`](crate::Engine::write_owned)).
#[derive(Debug, PartialEq, Eq)]
pub enum OwnedWrite {
    /// The bytes are in the cache (the buffer with them, when it could be kept).
    Accepted,
    /// The cache is at its memory bound: nothing was written, and here is the buffer back.
    /// Try again after [`Event::Wake`] with this token.
    Blocked(WaitToken, BytesMut),
}

/// How an open file's reader will use what it reads, like `posix_fadvise`'s advice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Advice {
    /// No advice: read bytes stay cached until the memory bound evicts the oldest.
    #[default]
    Normal,
    /// Each byte is read once (`POSIX_FADV_NOREUSE`: a copy, a checksum, a stream): the clean
    /// bytes the reader has moved past are released at once instead of filling the cache, so
    /// a sequential read holds about its readahead window, however long the file.
    NoReuse,
}

/// What an application read got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The bytes, all that were asked for unless the file ends first (empty at or past the end).
    Data(Bytes),
    /// Part of the range is not cached; READs are on their way. Try again after
    /// [`Event::Wake`] with this token.
    Wait(WaitToken),
}

/// A call the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Feed the reply back with this id.
    pub id: RpcId,
    /// The file.
    pub handle: FileHandle,
    /// The procedure and its arguments.
    pub op: Op,
}

/// The NFSv3 procedures the engine uses, with the arguments that vary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// WRITE `data` at `offset_bytes`.
    Write {
        /// Where the data goes.
        offset_bytes: u64,
        /// An immutable snapshot, as the cached buffers that hold it; at most `wsize_bytes`.
        data: WriteData,
        /// The stability asked for.
        stable: StableHow,
    },
    /// COMMIT `count_bytes` at `offset_bytes` (count 0: to the end of the file).
    Commit {
        /// Start of the range.
        offset_bytes: u64,
        /// Length of the range; 0 means "to the end of the file".
        count_bytes: u32,
    },
    /// READ `count_bytes` at `offset_bytes`.
    Read {
        /// Start of the range.
        offset_bytes: u64,
        /// At most `rsize_bytes`.
        count_bytes: u32,
    },
    /// SETATTR of the size only (truncate or extend).
    Setattr {
        /// The new size.
        size_bytes: u64,
    },
}

/// The outcome of a call, fed back with [`Engine::on_reply`](crate::Engine::on_reply).
///
/// Every call must get exactly one reply: an answer of its own kind, an error status, or
/// [`Reply::Retry`]. A failure not worth retrying (the transport shut down, an RPC-level
/// rejection) should be fed as `Status(Nfs3Status::Io)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `WRITE3resok`.
    Write {
        /// Bytes the server took (possibly fewer than sent).
        count_bytes: u32,
        /// How stable the server made them.
        committed: StableHow,
        /// The server's write verifier.
        verf: WriteVerifier,
        /// `file_wcc.after`, if the server sent it.
        post_op_attrs: Option<Fattr>,
    },
    /// `COMMIT3resok`.
    Commit {
        /// The server's write verifier.
        verf: WriteVerifier,
        /// `file_wcc.after`, if the server sent it.
        post_op_attrs: Option<Fattr>,
    },
    /// `READ3resok`.
    Read {
        /// The bytes read (at most the count asked).
        data: Bytes,
        /// The read reached the end of the file.
        eof: bool,
        /// `file_attributes`, if the server sent them.
        post_op_attrs: Option<Fattr>,
    },
    /// `SETATTR3resok`.
    Setattr {
        /// `obj_wcc.after`, if the server sent it.
        post_op_attrs: Option<Fattr>,
    },
    /// The server answered with an error status (`NFS3ERR_JUKEBOX` is retried with back-off;
    /// any other is recorded for the file and reported at its next `fsync` or `close`).
    Status(Nfs3Status),
    /// No answer (timeout, connection lost): the call may or may not have been executed. It
    /// is retried with back-off (the engine sends it again, possibly merged differently).
    /// Feed it only once the call can no longer be executed later (the transport retransmits
    /// with the same XID until then): a WRITE executed after its retry could put old bytes
    /// over newer ones.
    Retry,
}

/// Something the async shell must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The caller holding this token should try its write or read again.
    Wake(WaitToken),
    /// [`Engine::poll_sync`](crate::Engine::poll_sync) now has the result for this ticket.
    SyncDone(SyncTicket),
}

/// Why an application call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FileError {
    /// The server failed a WRITE, COMMIT, READ or SETATTR of this file with this status. For
    /// writes this is the error recorded earlier and reported once, at this `fsync` or
    /// `close`; after `NFS3ERR_NOSPC`, `NFS3ERR_DQUOT` or `NFS3ERR_FBIG` it is also how
    /// later writes are refused until it has been reported.
    #[error("server error {0:?}")]
    Status(Nfs3Status),
    /// The file is not open (never opened, closed, or being closed).
    #[error("the file is not open")]
    NotOpen,
    /// `offset + length` does not fit in 64 bits.
    #[error("offset {offset_bytes} plus length {len_bytes} overflows")]
    OffsetOverflow {
        /// The offset asked for.
        offset_bytes: u64,
        /// The length asked for.
        len_bytes: u64,
    },
}

/// The state of one cached extent, for inspection ([`Engine::extents`](crate::Engine::extents)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentState {
    /// Written by the application, not yet sent.
    Dirty,
    /// Carried by this WRITE, not yet answered.
    InFlight(RpcId),
    /// Written UNSTABLE under this verifier; needs a COMMIT.
    Unstable(WriteVerifier),
    /// Known durable on the server, or read from it.
    Clean,
}

/// One cached extent, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentInfo {
    /// Start in the file.
    pub offset_bytes: u64,
    /// The bytes.
    pub data: Bytes,
    /// The state.
    pub state: ExtentState,
    /// The oldest application write whose bytes this extent holds (for non-clean extents;
    /// 0 for clean ones). A `fsync` waits for every non-clean extent at or below its version.
    pub since_version: u64,
}

/// Counters, for tests, benchmarks and the shell's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bytes written by the application and not yet sent.
    pub dirty_bytes: u64,
    /// Bytes carried by WRITEs in flight and still current in the cache.
    pub inflight_bytes: u64,
    /// Bytes awaiting COMMIT.
    pub unstable_bytes: u64,
    /// Clean cached bytes.
    pub clean_bytes: u64,
    /// Bytes held by WRITEs in flight that the cache has since overwritten or truncated.
    pub orphan_bytes: u64,
    /// Extents in the cache.
    pub extents: u64,
    /// WRITE calls sent.
    pub writes_sent: u64,
    /// Bytes sent in WRITEs.
    pub write_bytes_sent: u64,
    /// COMMIT calls sent.
    pub commits_sent: u64,
    /// READ calls sent.
    pub reads_sent: u64,
    /// SETATTR calls sent.
    pub setattrs_sent: u64,
    /// Replies whose verifier showed that the server lost bytes awaiting COMMIT.
    pub verifier_mismatches: u64,
    /// Application writes accepted.
    pub app_writes: u64,
    /// Application writes told to wait at the memory bound.
    pub app_writes_blocked: u64,
    /// Application writes told to wait at their stream's window.
    pub stream_writes_blocked: u64,
    /// Committed bytes of streams dropped from the cache at once (drop-behind).
    pub stream_bytes_dropped: u64,
}

impl EngineStats {
    /// Every byte the engine holds: dirty, in flight (also overwritten), awaiting COMMIT, clean.
    pub fn total_bytes(&self) -> u64 {
        self.dirty_bytes
            + self.inflight_bytes
            + self.unstable_bytes
            + self.clean_bytes
            + self.orphan_bytes
    }

    /// Bytes not known durable on the server, plus overwritten in-flight snapshots.
    pub fn nonclean_bytes(&self) -> u64 {
        self.dirty_bytes + self.inflight_bytes + self.unstable_bytes + self.orphan_bytes
    }
}
