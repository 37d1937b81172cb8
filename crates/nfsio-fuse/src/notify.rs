//! Invalidations sent to the kernel from one thread of their own.
//!
//! A FUSE notification is a write(2) on /dev/fuse that the kernel handles on the spot: an
//! inode invalidation takes the locks of the file's cached pages, and one of those pages
//! may be locked by a request waiting for our reply. Sent from inside a request, or from
//! a tokio worker that answers requests, it can deadlock the mount. So the operations only
//! queue what to invalidate (never blocking), and this thread, which answers nothing,
//! sends it.
//!
//! The one exception is [`Invalidator::attributes_now`]: an invalidation of attributes
//! only (offset -1), which the kernel handles without touching pages (it bumps the node's
//! attribute version and marks its attributes stale under a spin lock), so it cannot wait
//! on anything a request holds; an open sends it before replying, because the open reply
//! carries no attributes and the kernel must not read past a stale size afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, OnceLock};

use fuser::{INodeNo, Notifier};

/// What to drop from the kernel's caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A node's attributes and all its cached pages (a directory's: its cached listing).
    Node(u64),
    /// A name in a directory (positive or negative).
    Entry {
        /// The directory's node.
        parent: u64,
        /// The name (bytes, as the kernel's names are).
        name: Vec<u8>,
    },
}

/// The queue to the notification thread; see the module documentation.
pub struct Invalidator {
    queue: Sender<Invalidation>,
    /// Taken by [`Invalidator::start`].
    pending: Mutex<Option<Receiver<Invalidation>>>,
    queued: AtomicU64,
    /// For [`Invalidator::attributes_now`].
    notifier: OnceLock<Notifier>,
}

impl Default for Invalidator {
    fn default() -> Self {
        let (queue, pending) = channel();
        Self {
            queue,
            pending: Mutex::new(Some(pending)),
            queued: AtomicU64::new(0),
            notifier: OnceLock::new(),
        }
    }
}

impl Invalidator {
    /// Starts the thread that sends what is queued through `notifier` (once the session
    /// exists; what was queued before is sent then). It ends when the queue's sender, held
    /// by the mount's state, is dropped.
    pub fn start(&self, notifier: Notifier) -> std::io::Result<()> {
        let _ = self.notifier.set(notifier.clone());
        let Some(pending) = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        std::thread::Builder::new()
            .name("nfsio-notify".to_owned())
            .spawn(move || {
                for invalidation in pending {
                    send(&notifier, invalidation);
                }
            })?;
        Ok(())
    }

    /// Queues `invalidation` (never blocks).
    pub fn queue(&self, invalidation: Invalidation) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        // Fails only once the thread has ended: the mount is going away.
        let _ = self.queue.send(invalidation);
    }

    /// Drops the kernel's cached attributes of node `ino` at once (see the module
    /// documentation for why this one is safe from a request).
    pub fn attributes_now(&self, ino: u64) {
        if let Some(notifier) = self.notifier.get()
            && let Err(error) = notifier.inval_inode(INodeNo(ino), -1, 0)
        {
            tracing::debug!(ino, %error, "attribute invalidation not taken");
        }
    }

    /// Invalidations queued so far (for tests).
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
}

fn send(notifier: &Notifier, invalidation: Invalidation) {
    let result = match &invalidation {
        Invalidation::Node(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
        Invalidation::Entry { parent, name } => {
            let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
            notifier.inval_entry(INodeNo(*parent), name)
        }
    };
    match result {
        Ok(()) => tracing::debug!(?invalidation, "kernel cache invalidated"),
        // The kernel may have dropped the node already, or the mount is ending.
        Err(error) => tracing::debug!(?invalidation, %error, "invalidation not taken"),
    }
}
