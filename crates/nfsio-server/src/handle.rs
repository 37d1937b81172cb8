//! NFS file handles: opaque to clients, meaningful and unforgeable to this server.
//!
//! A handle must survive a server restart (clients keep them across reboots), must go stale
//! when its file is removed — even if the inode number is reused — and must not be turned into
//! a way to reach other files by a client that edits bytes. The format (44 bytes, within the
//! 64 that NFSv3 allows):
//!
//! ```text
//! offset  size  field
//!      0     1  magic 0x6e ('n')
//!      1     1  format version (1)
//!      2     2  reserved, zero
//!      4     8  export id (random, kept in the state directory)
//!     12     8  inode number
//!     20     8  generation (see `storage::LocalStore`: the file's birth time in ns)
//!     28    16  SipHash-2-4-128 of bytes 0..28, keyed with the export's secret key
//! ```
//!
//! A handle whose length, magic, version or MAC is wrong is answered `NFS3ERR_BADHANDLE`; one
//! that authenticates but names another export, or an object that no longer exists, is
//! `NFS3ERR_STALE`.

use nfsio_proto::nfs3::{FileHandle, Nfs3Status};
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher24};

use crate::storage::FileId;

/// Length of every handle this server issues.
pub const HANDLE_BYTES: usize = 44;

const MAGIC: u8 = 0x6e;
const VERSION: u8 = 1;
const BODY_BYTES: usize = 28;

/// The secret that authenticates handles, and the export they belong to.
#[derive(Clone, PartialEq, Eq)]
pub struct HandleSecret {
    /// The MAC key.
    pub key: [u8; 16],
    /// The export id carried in every handle.
    pub export_id: u64,
}

impl std::fmt::Debug for HandleSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleSecret")
            .field("key", &"<secret>")
            .field("export_id", &format_args!("{:016x}", self.export_id))
            .finish()
    }
}

impl HandleSecret {
    /// A secret derived from a seed: for simulations and tests, never for a real export
    /// (anyone who knows the seed can forge handles).
    pub fn from_seed(seed: u64) -> Self {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..].copy_from_slice(&(!seed).rotate_left(17).to_le_bytes());
        Self {
            key,
            export_id: seed ^ 0x6e66_7369_6f65_7870,
        }
    }
}

/// Encodes [`FileId`]s into handles and checks handles back into [`FileId`]s.
#[derive(Debug, Clone)]
pub struct HandleCodec {
    secret: HandleSecret,
}

impl HandleCodec {
    /// A codec for handles of the export `secret` describes.
    pub fn new(secret: HandleSecret) -> Self {
        Self { secret }
    }

    /// The export id.
    pub fn export_id(&self) -> u64 {
        self.secret.export_id
    }

    fn mac(&self, body: &[u8]) -> [u8; 16] {
        let mut hasher = SipHasher24::new_with_key(&self.secret.key);
        hasher.write(body);
        hasher.finish128().as_bytes()
    }

    /// The handle of `id`.
    pub fn encode(&self, id: FileId) -> FileHandle {
        let mut out = [0u8; HANDLE_BYTES];
        out[0] = MAGIC;
        out[1] = VERSION;
        out[4..12].copy_from_slice(&self.secret.export_id.to_be_bytes());
        out[12..20].copy_from_slice(&id.ino.to_be_bytes());
        out[20..28].copy_from_slice(&id.generation.to_be_bytes());
        let mac = self.mac(&out[..BODY_BYTES]);
        out[BODY_BYTES..].copy_from_slice(&mac);
        FileHandle::from(out.to_vec())
    }

    /// The [`FileId`] a handle names, if this server issued it.
    pub fn decode(&self, handle: &FileHandle) -> Result<FileId, Nfs3Status> {
        let bytes = handle.as_bytes();
        if bytes.len() != HANDLE_BYTES || bytes[0] != MAGIC || bytes[1] != VERSION {
            return Err(Nfs3Status::BadHandle);
        }
        let expected = self.mac(&bytes[..BODY_BYTES]);
        // Compare without an early exit, so timing says nothing about how much matched.
        let diff = expected
            .iter()
            .zip(&bytes[BODY_BYTES..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 || bytes[2] != 0 || bytes[3] != 0 {
            return Err(Nfs3Status::BadHandle);
        }
        let word = |range: std::ops::Range<usize>| {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(&bytes[range]);
            u64::from_be_bytes(buf)
        };
        if word(4..12) != self.secret.export_id {
            return Err(Nfs3Status::Stale);
        }
        Ok(FileId {
            ino: word(12..20),
            generation: word(20..28),
        })
    }
}

/// A 64-bit hash of a path, stable across runs and builds (names the default state
/// directory).
pub(crate) fn path_hash(path: &[u8]) -> u64 {
    let mut hasher = SipHasher24::new_with_key(b"nfsio state dir\0");
    hasher.write(path);
    hasher.finish128().h1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> HandleCodec {
        HandleCodec::new(HandleSecret::from_seed(42))
    }

    #[test]
    fn round_trip() {
        let id = FileId {
            ino: 1234,
            generation: 0xdead_beef_0000_0001,
        };
        let fh = codec().encode(id);
        assert_eq!(fh.len(), HANDLE_BYTES);
        assert!(fh.len() <= nfsio_proto::nfs3::MAX_FH_BYTES as usize);
        assert_eq!(codec().decode(&fh), Ok(id));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let id = FileId {
            ino: 7,
            generation: 9,
        };
        let fh = codec().encode(id);
        for bit in 0..HANDLE_BYTES * 8 {
            let mut bytes = fh.as_bytes().to_vec();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let result = codec().decode(&FileHandle::from(bytes));
            assert_eq!(result, Err(Nfs3Status::BadHandle), "bit {bit}");
        }
    }

    #[test]
    fn forged_and_foreign_handles_are_rejected() {
        let c = codec();
        assert_eq!(c.decode(&FileHandle::default()), Err(Nfs3Status::BadHandle));
        assert_eq!(
            c.decode(&FileHandle::from(vec![0u8; 64])),
            Err(Nfs3Status::BadHandle)
        );
        let other = HandleCodec::new(HandleSecret::from_seed(43));
        let fh = other.encode(FileId {
            ino: 1,
            generation: 1,
        });
        assert_eq!(c.decode(&fh), Err(Nfs3Status::BadHandle));
        // Same key, another export id: authentic but not ours.
        let sibling = HandleCodec::new(HandleSecret {
            key: HandleSecret::from_seed(42).key,
            export_id: 5,
        });
        let fh = sibling.encode(FileId {
            ino: 1,
            generation: 1,
        });
        assert_eq!(c.decode(&fh), Err(Nfs3Status::Stale));
    }
}
