//! Fuzz target: an RPC call record as a server receives it.
//!
//! Decodes the RPC header and, for the NFSv3, MOUNT and portmap programs, the procedure's
//! arguments. Decoding must never panic or hang; whatever decodes must re-encode to bytes that
//! decode to the same value (the codec is a bijection on what it accepts).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nfsio_proto::rpc::MessageHeader;
use nfsio_proto::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, mount, nfs3, portmap};

fn round_trip<T: XdrEncode + PartialEq + std::fmt::Debug>(
    value: &T,
    decode: impl Fn(&mut XdrDecoder) -> Option<T>,
) {
    let mut enc = XdrEncoder::new();
    value.encode(&mut enc);
    let mut dec = XdrDecoder::new(enc.finish_contiguous());
    let again = decode(&mut dec);
    assert_eq!(again.as_ref(), Some(value), "re-encoded call does not decode to itself");
    assert_eq!(dec.remaining(), 0, "re-encoded call has trailing bytes");
}

fuzz_target!(|data: &[u8]| {
    let mut dec = XdrDecoder::new(Bytes::copy_from_slice(data)).with_max_data_bytes(1 << 20);
    let Ok(MessageHeader::Call(call)) = MessageHeader::decode(&mut dec) else {
        return;
    };
    let proc_num = call.proc_num;
    match (call.prog, call.vers) {
        (nfs3::PROGRAM, nfs3::VERSION) => {
            if let Ok(Some(args)) = nfs3::decode_call(proc_num, &mut dec) {
                round_trip(&args, |d| nfs3::decode_call(proc_num, d).ok().flatten());
            }
        }
        (mount::PROGRAM, mount::VERSION) => {
            if let Ok(Some(args)) = mount::decode_call(proc_num, &mut dec) {
                round_trip(&args, |d| mount::decode_call(proc_num, d).ok().flatten());
            }
        }
        (portmap::PROGRAM, portmap::VERSION) => {
            if let Ok(Some(args)) = portmap::decode_call(proc_num, &mut dec) {
                round_trip(&args, |d| portmap::decode_call(proc_num, d).ok().flatten());
            }
        }
        _ => {}
    }
});
