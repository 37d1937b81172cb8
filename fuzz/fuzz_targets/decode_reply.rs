//! Fuzz target: an RPC reply record as a client receives it.
//!
//! The first input byte picks the program (NFSv3, MOUNT, portmap) and the second the
//! procedure the reply answers — what a client knows from the XID it matched; the rest is the
//! record. Decoding must never panic or hang; whatever decodes must re-encode to bytes that
//! decode to the same value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nfsio_proto::rpc::{MessageHeader, ReplyStatus};
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, mount, nfs3, portmap};

fn round_trip<T: XdrEncode + PartialEq + std::fmt::Debug>(
    value: &T,
    decode: impl Fn(&mut XdrDecoder) -> Option<T>,
) {
    let mut enc = XdrEncoder::new();
    value.encode(&mut enc);
    let mut dec = XdrDecoder::new(enc.finish_contiguous());
    let again = decode(&mut dec);
    assert_eq!(again.as_ref(), Some(value), "re-encoded reply does not decode to itself");
    assert_eq!(dec.remaining(), 0, "re-encoded reply has trailing bytes");
}

fuzz_target!(|data: &[u8]| {
    let [program, proc_byte, record @ ..] = data else {
        return;
    };
    let proc_num = u32::from(*proc_byte);
    let mut dec = XdrDecoder::new(Bytes::copy_from_slice(record)).with_max_data_bytes(1 << 20);
    let Ok(MessageHeader::Reply(reply)) = MessageHeader::decode(&mut dec) else {
        return;
    };
    if !matches!(reply.status, ReplyStatus::Success { .. }) {
        return;
    }
    match program % 3 {
        0 => {
            if let Ok(Some(res)) = nfs3::decode_reply(proc_num, &mut dec) {
                round_trip(&res, |d| nfs3::decode_reply(proc_num, d).ok().flatten());
            }
        }
        1 => {
            if let Ok(Some(res)) = mount::decode_reply(proc_num, &mut dec) {
                round_trip(&res, |d| mount::decode_reply(proc_num, d).ok().flatten());
            }
        }
        _ => {
            if let Ok(Some(res)) = portmap::decode_reply(proc_num, &mut dec) {
                round_trip(&res, |d| portmap::decode_reply(proc_num, d).ok().flatten());
            }
        }
    }
});
