//! How much reply an NFSv3 call asks for, read from its arguments before they are decoded.
//!
//! A server charges each call against its memory bound for the largest reply it can produce
//! before it runs the call (and before a blocking thread is spent on it); for READ, READDIR
//! and READDIRPLUS that is what the arguments ask. This reads those counts at their places in
//! the XDR, stepping over the file handle by its length, without decoding anything else.

use super::procs;
use crate::xdr::XdrWords;

/// Bytes of a `cookie3` and a `cookieverf3`, between a directory's handle and its counts.
const COOKIE_AND_VERIFIER_BYTES: usize = 8 + 8;

/// Bytes of READ's `offset`, between the file's handle and `count`.
const OFFSET_BYTES: usize = 8;

/// Bytes of READDIRPLUS's `dircount`, before `maxcount`.
const DIRCOUNT_BYTES: usize = 4;

/// The bulk of the reply an NFSv3 call asks for, at most `max_bytes`: READ's `count`,
/// READDIR's `count`, READDIRPLUS's `maxcount` (or `max_bytes` when the arguments are cut
/// short before it). `None`: a procedure whose reply carries no bulk data.
///
/// `args` are the call's arguments, from [`CallPeek::args_offset`](crate::rpc::CallPeek) on.
/// The handle's length is not checked against [`MAX_FH_BYTES`](super::MAX_FH_BYTES) here: a
/// call with a longer one is refused when it is decoded, and meanwhile charged for what it
/// asks, like any other.
pub fn peek_reply_data_bytes(proc_num: u32, args: &[u8], max_bytes: u32) -> Option<u32> {
    let before_count_bytes = match proc_num {
        procs::READ => OFFSET_BYTES,
        procs::READDIR => COOKIE_AND_VERIFIER_BYTES,
        procs::READDIRPLUS => COOKIE_AND_VERIFIER_BYTES + DIRCOUNT_BYTES,
        _ => return None,
    };
    let asked = || {
        let mut words = XdrWords::new(args);
        words.skip_opaque(u32::MAX)?;
        words.skip(before_count_bytes)?;
        words.u32()
    };
    Some(asked().unwrap_or(max_bytes).min(max_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfs3::{CookieVerifier, FileHandle, ReadArgs, ReaddirArgs, ReaddirplusArgs};
    use crate::xdr::to_bytes;

    #[test]
    fn the_counts_asked_are_read_where_they_stand() {
        let fh = FileHandle::from(vec![7; 45]);
        let read = to_bytes(&ReadArgs {
            file: fh.clone(),
            offset: 9,
            count: 4096,
        });
        assert_eq!(
            peek_reply_data_bytes(procs::READ, &read, 1 << 20),
            Some(4096)
        );
        assert_eq!(peek_reply_data_bytes(procs::READ, &read, 1000), Some(1000));
        let readdir = to_bytes(&ReaddirArgs {
            dir: fh.clone(),
            cookie: 3,
            cookieverf: CookieVerifier([1; 8]),
            count: 777,
        });
        assert_eq!(
            peek_reply_data_bytes(procs::READDIR, &readdir, 1 << 20),
            Some(777)
        );
        let plus = to_bytes(&ReaddirplusArgs {
            dir: fh,
            cookie: 3,
            cookieverf: CookieVerifier([1; 8]),
            dircount: 5,
            maxcount: 8192,
        });
        assert_eq!(
            peek_reply_data_bytes(procs::READDIRPLUS, &plus, 1 << 20),
            Some(8192)
        );
        // Cut short: the most there can be; another procedure: no bulk.
        for len in 0..read.len() {
            assert_eq!(
                peek_reply_data_bytes(procs::READ, &read[..len], 500),
                Some(500)
            );
        }
        assert_eq!(peek_reply_data_bytes(procs::GETATTR, &read, 500), None);
        assert_eq!(
            peek_reply_data_bytes(procs::READ, &[0xff; 8], 500),
            Some(500)
        );
    }
}
