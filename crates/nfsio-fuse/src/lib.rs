//! A FUSE file system over [`nfsio_client`]: the engine of `nfsio mount`.
//!
//! [`mount`] puts a connected [`Client`](nfsio_client::Client)'s export on a mountpoint.
//! The design rules:
//!
//! - **No FUSE thread waits on the network.** Each request's owned arguments and its reply
//!   go to a task on the tokio runtime handed to [`mount`]; fuser's threads (several, each
//!   with its own cloned /dev/fuse fd) only read requests.
//! - **Inodes are keyed by NFS file handle** with the kernel's exact lookup counts (entry
//!   replies add one, FORGET subtracts); node 1 is the export root.
//! - **Each request acts as its caller**: its NFS calls carry the request's uid, gid and
//!   the process's supplementary groups (`callers.rs`); the server decides every access
//!   (opens ask NFSv3 ACCESS), and an open file's bytes are written back as whoever opened
//!   it. A mount shared with `allow_other` gives each user their own rights.
//! - **Errors are the client's**: every NFS failure reaches the kernel as
//!   [`NfsError::errno`](nfsio_client::NfsError::errno).
//! - **FUSE write-through over nfsio's write-back cache**: the kernel's writeback cache is
//!   off, a WRITE is answered once its bytes are in nfsio's cache, FLUSH (close) and FSYNC
//!   make them durable and answer the first write-back error, RELEASE only drops state.
//! - **The Linux NFS client's consistency rules** (`consistency.rs`): adaptive attribute
//!   lifetimes (acregmin/acregmax, acdirmin/acdirmax) as the kernel's TTLs,
//!   close-to-open (FOPEN_KEEP_CACHE only for a file that did not change), another
//!   client's changes seen in attributes and WCC data and invalidated from a thread of
//!   their own (`notify.rs`).
//!
//! What NFSv3 or this crate does not do yet is listed in the README's mount section and in
//! issue 14. Names that are not UTF-8 are answered EINVAL (the client takes `&str`).

#![warn(missing_docs)]

mod attr;
mod callers;
mod consistency;
mod core;
mod direct;
mod error;
mod fs;
mod fusermount;
mod handles;
mod hidden;
mod inodes;
mod io;
mod listing;
mod meta;
mod names;
mod notify;
mod readahead;
mod seek;
mod session;
mod silly;

pub use crate::core::{AttrTimeouts, LookupCache, Settings};
pub use crate::error::MountError;
pub use crate::fusermount::user_allow_other;
pub use crate::session::{
    MountOptions, Mounted, READY_TIMEOUT, clear_stale, detach, mount, umount2, unmount_with,
};
