//! Deliberate protocol violations, for testing clients against a server that breaks the rules.
//!
//! A client must not trust a server to be correct about durability: RFC 1813 lets it answer a
//! WRITE more stable than asked but never less, and a WRITE and the COMMIT that follows carry
//! the same verifier only if nothing was lost in between — yet servers in the field have got
//! both wrong (Linux's client warns "faulty NFS server" and copes). The simulation switches
//! these violations on for a number of replies to check that our client copes too: it commits
//! bytes a WRITE answered less stable than asked, and resends bytes whose verifiers disagree.
//! `nfsio serve` never sets a [`Misbehavior`]; without one the server keeps every rule.
//!
//! The violations wrap the service rather than live in it: a service given a switch runs its
//! NFSv3 calls through [`Misbehaving`], which alters a WRITE's call or a WRITE's or COMMIT's
//! reply as the switch says and otherwise hands everything to the procedures untouched, so
//! that `crate::nfs` has no test branch. It sits below the duplicate request cache: a
//! retransmission is answered the (wrong) reply its original got.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nfsio_proto::nfs3::{Nfs3Call, Nfs3Reply, NfsRes, StableHow, WriteArgs, WriteVerifier};

use crate::storage::Caller;

/// Counts of replies still to send wrongly; shared between a test and the servers it starts
/// (one switch can outlive a server instance, as a misbehaving server build would).
#[derive(Debug, Default)]
pub struct Misbehavior {
    weaker_stability: AtomicU64,
    skewed_write_verifiers: AtomicU64,
    skewed_commit_verifiers: AtomicU64,
}

/// XORed into the verifier of a skewed reply: the reply carries a value the instance never
/// hands out otherwise (the real verifier only ever changes by a fixed odd step).
const SKEW: [u8; 8] = *b"skewed!!";

impl Misbehavior {
    /// A switch with every violation off.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The next `count` WRITEs asked for DATA_SYNC or FILE_SYNC are done UNSTABLE and answered
    /// UNSTABLE (the bytes really are only in volatile storage: a crash loses them unless the
    /// client commits them).
    pub fn answer_weaker_stability(&self, count: u64) {
        self.weaker_stability.fetch_add(count, Ordering::Relaxed);
    }

    /// The next `count` WRITE replies carry a verifier that differs from the instance's.
    pub fn skew_write_verifiers(&self, count: u64) {
        self.skewed_write_verifiers
            .fetch_add(count, Ordering::Relaxed);
    }

    /// The next `count` COMMIT replies carry a verifier that differs from the instance's (the
    /// data was committed all the same).
    pub fn skew_commit_verifiers(&self, count: u64) {
        self.skewed_commit_verifiers
            .fetch_add(count, Ordering::Relaxed);
    }

    /// Switches every violation off.
    pub fn stop(&self) {
        self.weaker_stability.store(0, Ordering::Relaxed);
        self.skewed_write_verifiers.store(0, Ordering::Relaxed);
        self.skewed_commit_verifiers.store(0, Ordering::Relaxed);
    }

    /// Whether this WRITE (asked stable) is to be done and answered UNSTABLE.
    fn take_weaker_stability(&self) -> bool {
        take(&self.weaker_stability)
    }

    /// Whether this WRITE's reply is to carry a skewed verifier.
    fn take_skewed_write(&self) -> bool {
        take(&self.skewed_write_verifiers)
    }

    /// Whether this COMMIT's reply is to carry a skewed verifier.
    fn take_skewed_commit(&self) -> bool {
        take(&self.skewed_commit_verifiers)
    }
}

/// Takes one from `counter` if it is not zero.
fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// `verf` as a skewed reply carries it.
fn skewed(verf: WriteVerifier) -> WriteVerifier {
    let mut bytes = verf.0;
    for (byte, mask) in bytes.iter_mut().zip(SKEW) {
        *byte ^= mask;
    }
    WriteVerifier(bytes)
}

/// What a [`Misbehaving`] wraps: the NFSv3 procedures of a service (the service implements
/// it; this module names no type of the request path, so that the configuration can carry a
/// switch without a circle of imports).
pub(crate) trait Nfs3Procedures {
    /// Runs one NFSv3 call for `caller`.
    fn nfs_call(&self, caller: &Caller, call: Nfs3Call) -> Nfs3Reply;
    /// Whether a WRITE would reach the store (is not refused before it).
    fn write_reaches_store(&self, args: &WriteArgs) -> bool;
}

/// A service's NFSv3 procedures with `switch` in force (see the module's documentation).
pub(crate) struct Misbehaving<'a, P> {
    /// The service whose procedures run the calls.
    pub(crate) service: &'a P,
    /// What to break, and how often.
    pub(crate) switch: &'a Misbehavior,
}

impl<P: Nfs3Procedures> Misbehaving<'_, P> {
    /// Runs one NFSv3 call for `caller`, as the service would but for the switch's violations.
    pub(crate) fn nfs_call(&self, caller: &Caller, call: Nfs3Call) -> Nfs3Reply {
        match call {
            // A WRITE refused before it reaches the store (bad handle, read-only export, short
            // data) breaks no rule and uses up no violation.
            Nfs3Call::Write(args) if self.service.write_reaches_store(&args) => {
                self.write(caller, args)
            }
            Nfs3Call::Commit(args) => {
                let mut reply = self.service.nfs_call(caller, Nfs3Call::Commit(args));
                if let Nfs3Reply::Commit(NfsRes::Ok(ok)) = &mut reply {
                    if self.switch.take_skewed_commit() {
                        ok.verf = skewed(ok.verf);
                    }
                }
                reply
            }
            call => self.service.nfs_call(caller, call),
        }
    }

    /// A WRITE the store is to see: done UNSTABLE and answered so although asked stable, or
    /// answered with a skewed verifier (whether or not the store then fails it, the violation
    /// is used up).
    fn write(&self, caller: &Caller, mut args: WriteArgs) -> Nfs3Reply {
        if args.stable != StableHow::Unstable && self.switch.take_weaker_stability() {
            // Deliberately less stable than asked (and honestly so: only volatile).
            args.stable = StableHow::Unstable;
            let mut reply = self.service.nfs_call(caller, Nfs3Call::Write(args));
            if let Nfs3Reply::Write(NfsRes::Ok(ok)) = &mut reply {
                ok.committed = StableHow::Unstable;
            }
            return reply;
        }
        let skew = self.switch.take_skewed_write();
        let mut reply = self.service.nfs_call(caller, Nfs3Call::Write(args));
        if let Nfs3Reply::Write(NfsRes::Ok(ok)) = &mut reply {
            if skew {
                ok.verf = skewed(ok.verf);
            }
        }
        reply
    }
}

/// A [`Misbehavior`] in a [`crate::ServerConfig`]: configurations compare equal when they
/// share the same switch.
#[derive(Debug, Clone)]
pub struct MisbehaviorSwitch(pub Arc<Misbehavior>);

impl PartialEq for MisbehaviorSwitch {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use nfsio_proto::nfs3::{CommitArgs, FileHandle, Sattr, WriteResOk};

    use super::*;
    use crate::storage::{CreateMode, Storage};
    use crate::{HandleSecret, MemStore, Service, ServiceConfig};

    #[test]
    fn counts_down_and_stops() {
        let m = Misbehavior::new();
        assert!(!m.take_skewed_write());
        m.skew_write_verifiers(2);
        assert!(m.take_skewed_write());
        assert!(m.take_skewed_write());
        assert!(!m.take_skewed_write());
        m.skew_commit_verifiers(1);
        assert!(m.take_skewed_commit());
        assert!(!m.take_skewed_commit());
        m.answer_weaker_stability(5);
        assert!(m.take_weaker_stability());
        m.stop();
        assert!(!m.take_weaker_stability());
    }

    /// A service over a memory store with one empty file, its handle, and a switch.
    fn misbehaving_service() -> (Service, FileHandle, Arc<Misbehavior>) {
        let store = Arc::new(MemStore::new());
        let created = store
            .create(
                &Caller::root(),
                store.root(),
                b"f",
                CreateMode::Guarded(&Sattr::default()),
            )
            .expect("create");
        let m = Misbehavior::new();
        let mut service = Service::new(
            store,
            ServiceConfig::for_tests(7),
            HandleSecret::from_seed(7),
        );
        service.misbehavior = Some(MisbehaviorSwitch(Arc::clone(&m)));
        let handle = service.handle_of(created.id);
        (service, handle, m)
    }

    fn write(file: &FileHandle, stable: StableHow) -> Nfs3Call {
        Nfs3Call::Write(WriteArgs {
            file: file.clone(),
            offset: 0,
            count: 4,
            stable,
            data: Bytes::from_static(b"data"),
        })
    }

    fn write_ok(reply: Nfs3Reply) -> WriteResOk {
        match reply {
            Nfs3Reply::Write(NfsRes::Ok(ok)) => ok,
            other => panic!("not a successful WRITE: {other:?}"),
        }
    }

    #[test]
    fn writes_and_commits_are_answered_as_the_switch_says() {
        let (service, file, m) = misbehaving_service();
        let wrapped = Misbehaving {
            service: &service,
            switch: &m,
        };
        let caller = Caller::root();
        let real = service.write_verifier();
        m.answer_weaker_stability(1);
        m.skew_write_verifiers(1);
        // Weaker stability first, with the true verifier; the skew waits for the next WRITE.
        let ok = write_ok(wrapped.nfs_call(&caller, write(&file, StableHow::FileSync)));
        assert_eq!((ok.committed, ok.verf), (StableHow::Unstable, real));
        let ok = write_ok(wrapped.nfs_call(&caller, write(&file, StableHow::FileSync)));
        assert_eq!((ok.committed, ok.verf), (StableHow::FileSync, skewed(real)));
        let ok = write_ok(wrapped.nfs_call(&caller, write(&file, StableHow::FileSync)));
        assert_eq!((ok.committed, ok.verf), (StableHow::FileSync, real));
        // A WRITE refused before the store uses up nothing.
        m.skew_write_verifiers(1);
        let bad = FileHandle::from(vec![0u8; 8]);
        let reply = wrapped.nfs_call(&caller, write(&bad, StableHow::Unstable));
        assert!(!reply.status().is_ok());
        let ok = write_ok(wrapped.nfs_call(&caller, write(&file, StableHow::Unstable)));
        assert_eq!(ok.verf, skewed(real));
        m.skew_commit_verifiers(1);
        for expected in [skewed(real), real] {
            let commit = Nfs3Call::Commit(CommitArgs {
                file: file.clone(),
                offset: 0,
                count: 0,
            });
            match wrapped.nfs_call(&caller, commit) {
                Nfs3Reply::Commit(NfsRes::Ok(ok)) => assert_eq!(ok.verf, expected),
                other => panic!("not a successful COMMIT: {other:?}"),
            }
        }
    }

    #[test]
    fn a_skewed_verifier_differs_and_skews_back() {
        let verf = WriteVerifier([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_ne!(skewed(verf), verf);
        assert_eq!(skewed(skewed(verf)), verf);
    }
}
