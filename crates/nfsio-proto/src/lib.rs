//! The NFSv3 wire protocol, sans-IO.
//!
//! This crate turns protocol values into bytes and bytes into protocol values, and does
//! nothing else: no sockets, no files, no clock, no tasks. The transport, client and server are
//! built on it; the fuzz targets and property tests exercise it directly.
//!
//! - [`xdr`]: XDR encoding (vectored, zero-copy payloads) and bounded decoding.
//! - [`record`]: RFC 5531 record marking — a decoder fed bytes, a framer of segments.
//! - [`rpc`]: ONC RPC v2 call and reply headers, AUTH_NONE and AUTH_SYS.
//! - [`portmap`]: portmap v2 (NULL, GETPORT, DUMP).
//! - [`rpcbind`]: rpcbind v3 and v4 (NULL, GETADDR, DUMP, GETTIME, GETVERSADDR).
//! - [`mount`]: MOUNT v3 (NULL, MNT, DUMP, UMNT, UMNTALL, EXPORT; the same but MNT in v1).
//! - [`nfs3`]: all 22 NFSv3 procedures (RFC 1813), arguments and results.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod mount;
pub mod nfs3;
pub mod portmap;
pub mod record;
pub mod rpc;
pub mod rpcbind;
pub mod xdr;

pub use xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrError, XdrResult};
