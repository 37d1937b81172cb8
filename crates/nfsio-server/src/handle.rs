//! NFS file handles: opaque to clients, meaningful and unforgeable to this server.
//!
//! A handle must survive a server restart (clients keep them across reboots), must go stale
//! when its file is removed — even if the inode number is reused — and must not be turned into
//! a way to reach other files by a client that edits bytes. The format (44 bytes, plus the
//! kernel's handle when there is one; at most 64, what NFSv3 allows):
//!
//! ```text
//! offset  size  field
//!      0     1  magic 0x6e ('n')
//!      1     1  format version (2)
//!      2     1  reserved, zero
//!      3     1  L: length of the kernel handle (0: none; at most 20)
//!      4     8  export id (random, kept in the state directory)
//!     12     8  inode number
//!     20     8  generation (without a kernel handle), or the kernel handle's type (i32)
//!               and four zero bytes
//!     28     L  the kernel's handle (`name_to_handle_at`), which names the inode and its
//!               generation to the kernel
//!   28+L    16  SipHash-2-4-128 of bytes 0..28+L, keyed with the export's secret key
//! ```
//!
//! A handle whose length, magic, version or MAC is wrong is answered `NFS3ERR_BADHANDLE`; one
//! that authenticates but names another export, or an object that no longer exists, is
//! `NFS3ERR_STALE`. Checking one costs a hash of at most 48 bytes: a flood of forged
//! handles costs the server nothing more.

use nfsio_proto::nfs3::{FileHandle, Nfs3Status};
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher24};

use crate::storage::{FileId, KernelHandle};

/// Length of a handle without a kernel handle.
pub const HANDLE_BYTES: usize = 44;

/// The longest handle this server issues.
pub const MAX_HANDLE_BYTES: usize = HANDLE_BYTES + KernelHandle::MAX_BYTES;

const MAGIC: u8 = 0x6e;
const VERSION: u8 = 2;
const HEADER_BYTES: usize = 28;
const MAC_BYTES: usize = 16;

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
        let kernel = id.kernel.as_bytes();
        let body_bytes = HEADER_BYTES + kernel.len();
        let mut out = [0u8; MAX_HANDLE_BYTES];
        out[0] = MAGIC;
        out[1] = VERSION;
        out[3] = kernel.len() as u8;
        out[4..12].copy_from_slice(&self.secret.export_id.to_be_bytes());
        out[12..20].copy_from_slice(&id.ino.to_be_bytes());
        if id.kernel.is_some() {
            out[20..24].copy_from_slice(&id.kernel.kind.to_be_bytes());
        } else {
            out[20..28].copy_from_slice(&id.generation.to_be_bytes());
        }
        out[HEADER_BYTES..body_bytes].copy_from_slice(kernel);
        let mac = self.mac(&out[..body_bytes]);
        out[body_bytes..body_bytes + MAC_BYTES].copy_from_slice(&mac);
        FileHandle::from(out[..body_bytes + MAC_BYTES].to_vec())
    }

    /// The [`FileId`] a handle names, if this server issued it.
    pub fn decode(&self, handle: &FileHandle) -> Result<FileId, Nfs3Status> {
        let bytes = handle.as_bytes();
        let bad = Err(Nfs3Status::BadHandle);
        if bytes.len() < HANDLE_BYTES || bytes[0] != MAGIC || bytes[1] != VERSION {
            return bad;
        }
        let kernel_len = usize::from(bytes[3]);
        let body_bytes = HEADER_BYTES + kernel_len;
        if kernel_len > KernelHandle::MAX_BYTES || bytes.len() != body_bytes + MAC_BYTES {
            return bad;
        }
        let expected = self.mac(&bytes[..body_bytes]);
        // Compare without an early exit, so timing says nothing about how much matched.
        let diff = expected
            .iter()
            .zip(&bytes[body_bytes..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 || bytes[2] != 0 {
            return bad;
        }
        let word = |range: std::ops::Range<usize>| {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(&bytes[range]);
            u64::from_be_bytes(buf)
        };
        if word(4..12) != self.secret.export_id {
            return Err(Nfs3Status::Stale);
        }
        let ino = word(12..20);
        if kernel_len == 0 {
            return Ok(FileId::new(ino, word(20..28)));
        }
        let kind = i32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        let kernel = KernelHandle::new(kind, &bytes[HEADER_BYTES..body_bytes])
            .ok_or(Nfs3Status::BadHandle)?;
        Ok(FileId {
            ino,
            generation: 0,
            kernel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> HandleCodec {
        HandleCodec::new(HandleSecret::from_seed(42))
    }

    fn with_kernel_handle() -> FileId {
        FileId {
            ino: 99,
            generation: 0,
            kernel: KernelHandle::new(1, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).unwrap(),
        }
    }

    #[test]
    fn round_trip() {
        let id = FileId::new(1234, 0xdead_beef_0000_0001);
        let fh = codec().encode(id);
        assert_eq!(fh.len(), HANDLE_BYTES);
        assert_eq!(codec().decode(&fh), Ok(id));
        let id = with_kernel_handle();
        let fh = codec().encode(id);
        assert_eq!(fh.len(), HANDLE_BYTES + 12);
        assert_eq!(codec().decode(&fh), Ok(id));
        let longest = FileId {
            kernel: KernelHandle::new(-7, &[0xff; KernelHandle::MAX_BYTES]).unwrap(),
            ..id
        };
        let fh = codec().encode(longest);
        assert_eq!(fh.len(), MAX_HANDLE_BYTES);
        assert!(fh.len() <= nfsio_proto::nfs3::MAX_FH_BYTES as usize);
        assert_eq!(codec().decode(&fh), Ok(longest));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        for id in [FileId::new(7, 9), with_kernel_handle()] {
            let fh = codec().encode(id);
            for bit in 0..fh.len() * 8 {
                let mut bytes = fh.as_bytes().to_vec();
                bytes[bit / 8] ^= 1 << (bit % 8);
                let result = codec().decode(&FileHandle::from(bytes));
                assert_eq!(result, Err(Nfs3Status::BadHandle), "bit {bit}");
            }
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
        let fh = other.encode(FileId::new(1, 1));
        assert_eq!(c.decode(&fh), Err(Nfs3Status::BadHandle));
        // Same key, another export id: authentic but not ours.
        let sibling = HandleCodec::new(HandleSecret {
            key: HandleSecret::from_seed(42).key,
            export_id: 5,
        });
        let fh = sibling.encode(FileId::new(1, 1));
        assert_eq!(c.decode(&fh), Err(Nfs3Status::Stale));
    }
}
