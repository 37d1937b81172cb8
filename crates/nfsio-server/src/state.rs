//! What the server keeps on disk between runs: the file handle secret.
//!
//! Handles must mean the same after a restart, so the key that authenticates them and the
//! export id they carry are generated once, written to `<state_dir>/handle.key` (mode 0600, in
//! a 0700 directory, outside the export) and read back at every start. Nothing else is kept:
//! the write verifier is new at every start on purpose, and the inode → path map is rebuilt on
//! demand.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tracing::{info, warn};

use crate::handle::HandleSecret;

const KEY_FILE: &str = "handle.key";
const KEY_MAGIC: &[u8; 8] = b"nfsiok01";
const KEY_FILE_BYTES: usize = 8 + 16 + 8;

/// Reads `N` bytes from the system's random source.
pub(crate) fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0u8; N];
    fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}

/// Loads the handle secret from `state_dir`, creating the directory and the secret the first
/// time.
pub fn load_or_create_secret(state_dir: &Path) -> io::Result<HandleSecret> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)?;
    let path = state_dir.join(KEY_FILE);
    match fs::File::open(&path) {
        Ok(mut file) => {
            let mode = file.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                warn!(path = %path.display(), mode = format_args!("{mode:o}"), "handle key was readable by others; restricting to 0600");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            }
            let mut buf = Vec::with_capacity(KEY_FILE_BYTES);
            Read::by_ref(&mut file)
                .take(KEY_FILE_BYTES as u64 + 1)
                .read_to_end(&mut buf)?;
            parse(&buf).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not an nfsio handle key", path.display()),
                )
            })
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let random = random_bytes::<24>()?;
            let mut key = [0u8; 16];
            key.copy_from_slice(&random[..16]);
            let mut id = [0u8; 8];
            id.copy_from_slice(&random[16..]);
            let secret = HandleSecret {
                key,
                export_id: u64::from_be_bytes(id),
            };
            let mut content = Vec::with_capacity(KEY_FILE_BYTES);
            content.extend_from_slice(KEY_MAGIC);
            content.extend_from_slice(&secret.key);
            content.extend_from_slice(&secret.export_id.to_be_bytes());
            let tmp = state_dir.join(format!("{KEY_FILE}.tmp.{}", std::process::id()));
            {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                file.write_all(&content)?;
                file.sync_all()?;
            }
            fs::rename(&tmp, &path)?;
            fs::File::open(state_dir)?.sync_all()?;
            info!(path = %path.display(), "created a new file handle key");
            Ok(secret)
        }
        Err(err) => Err(err),
    }
}

fn parse(buf: &[u8]) -> Option<HandleSecret> {
    if buf.len() != KEY_FILE_BYTES || &buf[..8] != KEY_MAGIC {
        return None;
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&buf[8..24]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&buf[24..32]);
    Some(HandleSecret {
        key,
        export_id: u64::from_be_bytes(id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_created_once_with_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        let first = load_or_create_secret(&state).unwrap();
        let mode = fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let second = load_or_create_secret(&state).unwrap();
        assert_eq!(first, second);
        let other = load_or_create_secret(&dir.path().join("c")).unwrap();
        assert_ne!(first, other);
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"garbage").unwrap();
        let err = load_or_create_secret(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
