//! How the service's replies are encoded: a reply header and body into segments, the
//! accepted-but-failed replies (PROG_UNAVAIL, PROC_UNAVAIL, GARBAGE_ARGS, ...), and a READ
//! reply around data that waits in a pipe, byte for byte what a copy would send.

use bytes::{BufMut, Bytes, BytesMut};
use nfsio_proto::nfs3::{self, Nfs3Status};
use nfsio_proto::rpc::{AcceptError, OpaqueAuth, ReplyHeader, ReplyStatus};
use nfsio_proto::{XdrEncode, XdrEncoder};

use super::Response;
use crate::splice::SplicedReply;
use crate::storage::SplicedRead;

/// Encodes a reply header and body into segments.
pub(super) fn encode_reply(
    xid: u32,
    status: ReplyStatus,
    body: Option<&dyn XdrEncodeDyn>,
) -> Vec<Bytes> {
    let mut enc = XdrEncoder::with_capacity(512);
    ReplyHeader { xid, status }.encode(&mut enc);
    if let Some(body) = body {
        body.encode_dyn(&mut enc);
    }
    enc.finish()
}

/// Object-safe [`XdrEncode`].
pub(super) trait XdrEncodeDyn {
    fn encode_dyn(&self, enc: &mut XdrEncoder);
}

impl<T: XdrEncode> XdrEncodeDyn for T {
    fn encode_dyn(&self, enc: &mut XdrEncoder) {
        self.encode(enc);
    }
}

/// An accepted call that failed: `error`, no body.
pub(super) fn accept_error(xid: u32, error: AcceptError) -> Response {
    Response::Reply(encode_reply(
        xid,
        ReplyStatus::AcceptError {
            verf: OpaqueAuth::none(),
            error,
        },
        None,
    ))
}

/// A successful reply with `body`.
pub(super) fn success(xid: u32, body: &dyn XdrEncodeDyn) -> Vec<Bytes> {
    encode_reply(
        xid,
        ReplyStatus::Success {
            verf: OpaqueAuth::none(),
        },
        Some(body),
    )
}

/// The reply to a successful READ. Its data may wait in a pipe: then the reply is encoded
/// around it, exactly as [`success`] would encode `READ3resok` with the data in memory.
pub(super) fn read_reply(xid: u32, read: SplicedRead) -> Response {
    let len_bytes = read.len_bytes();
    let Some(pipe) = read.pipe else {
        let ok = nfs3::ReadResOk {
            file_attributes: Some(read.attr),
            count: len_bytes as u32,
            eof: read.eof,
            data: read.rest,
        };
        return Response::Reply(success(xid, &nfs3::Nfs3Reply::Read(nfs3::NfsRes::Ok(ok))));
    };
    // The store read at most `max_io_bytes` (a u32).
    let Ok(count) = u32::try_from(len_bytes) else {
        return accept_error(xid, AcceptError::SystemErr);
    };
    let mut enc = XdrEncoder::with_capacity(160);
    ReplyHeader {
        xid,
        status: ReplyStatus::Success {
            verf: OpaqueAuth::none(),
        },
    }
    .encode(&mut enc);
    Nfs3Status::Ok.encode(&mut enc);
    Some(read.attr).encode(&mut enc);
    count.encode(&mut enc);
    read.eof.encode(&mut enc);
    // The opaque's length; its bytes are the pipe's, then `rest`, then the XDR padding.
    count.encode(&mut enc);
    let mut tail = Vec::with_capacity(2);
    if !read.rest.is_empty() {
        tail.push(read.rest);
    }
    let pad_bytes = (4 - len_bytes % 4) % 4;
    if pad_bytes > 0 {
        tail.push(Bytes::from_static(&[0u8; 3][..pad_bytes]));
    }
    Response::Spliced(SplicedReply {
        head: enc.finish(),
        pipe,
        tail,
    })
}

/// The segments of a reply as one buffer (what the duplicate cache keeps).
pub(super) fn contiguous(segments: Vec<Bytes>) -> Bytes {
    if segments.len() == 1 {
        return segments.into_iter().next().unwrap_or_default();
    }
    let len = segments.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(len);
    for segment in &segments {
        out.put_slice(segment);
    }
    out.freeze()
}
