//! ONC RPC version 2 messages (RFC 5531) and the AUTH_NONE and AUTH_SYS flavors.
//!
//! Every NFS, MOUNT and portmap message is an RPC call or reply; this module encodes and decodes
//! their headers and leaves the decoder positioned at the procedure's arguments or results, so
//! the transport can match replies by XID without knowing anything about NFS.

use bytes::Bytes;

use crate::xdr::{XdrDecode, XdrDecoder, XdrEncode, XdrEncoder, XdrError, XdrResult, XdrWords};

/// The only RPC protocol version there is.
pub const RPC_VERSION: u32 = 2;

/// Maximum length of an authentication body (RFC 5531).
pub const MAX_AUTH_BODY_BYTES: u32 = 400;

/// Maximum length of the AUTH_SYS machine name.
pub const MAX_MACHINE_NAME_BYTES: u32 = 255;

/// Maximum number of supplementary groups in AUTH_SYS.
pub const MAX_AUTH_SYS_GIDS: u32 = 16;

/// Authentication flavor numbers.
pub mod auth_flavor {
    /// No authentication.
    pub const AUTH_NONE: u32 = 0;
    /// UNIX-style uid/gid credentials.
    pub const AUTH_SYS: u32 = 1;
    /// Short-hand credentials handed back by a server.
    pub const AUTH_SHORT: u32 = 2;
}

/// An authentication field: flavor and opaque body (at most 400 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpaqueAuth {
    /// The flavor (see [`auth_flavor`]).
    pub flavor: u32,
    /// The flavor-specific body.
    pub body: Bytes,
}

impl OpaqueAuth {
    /// AUTH_NONE with an empty body.
    pub fn none() -> Self {
        Self::default()
    }

    /// AUTH_SYS credentials with `params` as the body.
    pub fn sys(params: &AuthSysParams) -> Self {
        let mut enc = XdrEncoder::new();
        params.encode(&mut enc);
        Self {
            flavor: auth_flavor::AUTH_SYS,
            body: enc.finish_contiguous(),
        }
    }

    /// The AUTH_SYS parameters carried in the body, if the flavor is AUTH_SYS.
    pub fn as_sys(&self) -> Option<XdrResult<AuthSysParams>> {
        (self.flavor == auth_flavor::AUTH_SYS)
            .then(|| crate::xdr::from_bytes::<AuthSysParams>(self.body.clone()))
    }
}

impl XdrEncode for OpaqueAuth {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.flavor);
        enc.put_opaque(&self.body);
    }
}

impl XdrDecode for OpaqueAuth {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        let flavor = dec.get_u32()?;
        let body = dec.get_opaque("auth body", MAX_AUTH_BODY_BYTES)?;
        Ok(Self { flavor, body })
    }
}

/// AUTH_SYS credentials (`authsys_parms`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSysParams {
    /// An arbitrary stamp chosen by the caller.
    pub stamp: u32,
    /// The caller's host name (at most 255 bytes).
    pub machine_name: Bytes,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Supplementary groups (at most 16).
    pub gids: Vec<u32>,
}

impl XdrEncode for AuthSysParams {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.stamp);
        enc.put_opaque(&self.machine_name);
        enc.put_u32(self.uid);
        enc.put_u32(self.gid);
        let gids = &self.gids[..self.gids.len().min(MAX_AUTH_SYS_GIDS as usize)];
        enc.put_u32(gids.len() as u32);
        for gid in gids {
            enc.put_u32(*gid);
        }
    }
}

impl XdrDecode for AuthSysParams {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        let stamp = dec.get_u32()?;
        let machine_name = dec.get_opaque("machine name", MAX_MACHINE_NAME_BYTES)?;
        let uid = dec.get_u32()?;
        let gid = dec.get_u32()?;
        let count = dec.get_count("gids", MAX_AUTH_SYS_GIDS, 4)?;
        let mut gids = Vec::with_capacity(count);
        for _ in 0..count {
            gids.push(dec.get_u32()?);
        }
        Ok(Self {
            stamp,
            machine_name,
            uid,
            gid,
            gids,
        })
    }
}

/// The header of an RPC call; the procedure's arguments follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallHeader {
    /// Transaction id, echoed by the reply.
    pub xid: u32,
    /// Program number (100003 NFS, 100005 MOUNT, 100000 portmap).
    pub prog: u32,
    /// Program version.
    pub vers: u32,
    /// Procedure number.
    pub proc_num: u32,
    /// Credentials.
    pub cred: OpaqueAuth,
    /// Verifier.
    pub verf: OpaqueAuth,
}

const MSG_CALL: u32 = 0;
const MSG_REPLY: u32 = 1;
const REPLY_ACCEPTED: u32 = 0;
const REPLY_DENIED: u32 = 1;

impl XdrEncode for CallHeader {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.xid);
        enc.put_u32(MSG_CALL);
        enc.put_u32(RPC_VERSION);
        enc.put_u32(self.prog);
        enc.put_u32(self.vers);
        enc.put_u32(self.proc_num);
        self.cred.encode(enc);
        self.verf.encode(enc);
    }
}

/// Why an accepted call did not run (`accept_stat` other than SUCCESS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// The program is not served here.
    ProgUnavail,
    /// The program is served, but not this version.
    ProgMismatch {
        /// Lowest version served.
        low: u32,
        /// Highest version served.
        high: u32,
    },
    /// The program has no such procedure.
    ProcUnavail,
    /// The arguments could not be decoded.
    GarbageArgs,
    /// The server failed for a reason of its own (memory, ...).
    SystemErr,
}

/// `auth_stat`: why the server rejected the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStat {
    /// Success (never sent in a rejection, kept for completeness).
    Ok,
    /// Bad credential (seal broken).
    BadCred,
    /// The client must begin a new session.
    RejectedCred,
    /// Bad verifier (seal broken).
    BadVerf,
    /// Verifier expired or replayed.
    RejectedVerf,
    /// Rejected for security reasons.
    TooWeak,
    /// Bogus response verifier.
    InvalidResp,
    /// Reason unknown.
    Failed,
    /// Any other value (kept rather than rejected, as new ones exist for RPCSEC_GSS).
    Other(u32),
}

impl AuthStat {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Ok => 0,
            Self::BadCred => 1,
            Self::RejectedCred => 2,
            Self::BadVerf => 3,
            Self::RejectedVerf => 4,
            Self::TooWeak => 5,
            Self::InvalidResp => 6,
            Self::Failed => 7,
            Self::Other(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u32(value: u32) -> Self {
        match value {
            0 => Self::Ok,
            1 => Self::BadCred,
            2 => Self::RejectedCred,
            3 => Self::BadVerf,
            4 => Self::RejectedVerf,
            5 => Self::TooWeak,
            6 => Self::InvalidResp,
            7 => Self::Failed,
            v => Self::Other(v),
        }
    }
}

/// The header of an RPC reply; on [`ReplyStatus::Success`] the procedure's results follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHeader {
    /// Transaction id of the call answered.
    pub xid: u32,
    /// What became of the call.
    pub status: ReplyStatus,
}

/// What became of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyStatus {
    /// Accepted and run: the results follow.
    Success {
        /// The server's verifier.
        verf: OpaqueAuth,
    },
    /// Accepted but not run.
    AcceptError {
        /// The server's verifier.
        verf: OpaqueAuth,
        /// Why it did not run.
        error: AcceptError,
    },
    /// The server speaks another RPC version.
    RpcMismatch {
        /// Lowest version supported.
        low: u32,
        /// Highest version supported.
        high: u32,
    },
    /// The credentials were rejected.
    AuthError(AuthStat),
}

impl XdrEncode for ReplyHeader {
    fn encode(&self, enc: &mut XdrEncoder) {
        enc.put_u32(self.xid);
        enc.put_u32(MSG_REPLY);
        match &self.status {
            ReplyStatus::Success { verf } => {
                enc.put_u32(REPLY_ACCEPTED);
                verf.encode(enc);
                enc.put_u32(0);
            }
            ReplyStatus::AcceptError { verf, error } => {
                enc.put_u32(REPLY_ACCEPTED);
                verf.encode(enc);
                match *error {
                    AcceptError::ProgUnavail => enc.put_u32(1),
                    AcceptError::ProgMismatch { low, high } => {
                        enc.put_u32(2);
                        enc.put_u32(low);
                        enc.put_u32(high);
                    }
                    AcceptError::ProcUnavail => enc.put_u32(3),
                    AcceptError::GarbageArgs => enc.put_u32(4),
                    AcceptError::SystemErr => enc.put_u32(5),
                }
            }
            ReplyStatus::RpcMismatch { low, high } => {
                enc.put_u32(REPLY_DENIED);
                enc.put_u32(0);
                enc.put_u32(*low);
                enc.put_u32(*high);
            }
            ReplyStatus::AuthError(stat) => {
                enc.put_u32(REPLY_DENIED);
                enc.put_u32(1);
                enc.put_u32(stat.to_u32());
            }
        }
    }
}

/// A decoded RPC message header: a call or a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageHeader {
    /// A call; the arguments follow.
    Call(CallHeader),
    /// A reply; on success the results follow.
    Reply(ReplyHeader),
}

impl MessageHeader {
    /// The transaction id.
    pub fn xid(&self) -> u32 {
        match self {
            Self::Call(call) => call.xid,
            Self::Reply(reply) => reply.xid,
        }
    }
}

impl XdrEncode for MessageHeader {
    fn encode(&self, enc: &mut XdrEncoder) {
        match self {
            Self::Call(call) => call.encode(enc),
            Self::Reply(reply) => reply.encode(enc),
        }
    }
}

impl XdrDecode for MessageHeader {
    fn decode(dec: &mut XdrDecoder) -> XdrResult<Self> {
        let xid = dec.get_u32()?;
        match dec.get_u32()? {
            MSG_CALL => {
                let rpcvers = dec.get_u32()?;
                let prog = dec.get_u32()?;
                let vers = dec.get_u32()?;
                let proc_num = dec.get_u32()?;
                let cred = OpaqueAuth::decode(dec)?;
                let verf = OpaqueAuth::decode(dec)?;
                if rpcvers != RPC_VERSION {
                    // Reported to the caller as a distinct error so a server can answer
                    // RPC_MISMATCH with the XID it has read.
                    return Err(XdrError::InvalidValue {
                        what: "rpc version",
                        value: rpcvers,
                    });
                }
                Ok(Self::Call(CallHeader {
                    xid,
                    prog,
                    vers,
                    proc_num,
                    cred,
                    verf,
                }))
            }
            MSG_REPLY => {
                let status = match dec.get_u32()? {
                    REPLY_ACCEPTED => {
                        let verf = OpaqueAuth::decode(dec)?;
                        let error = match dec.get_u32()? {
                            0 => {
                                return Ok(Self::Reply(ReplyHeader {
                                    xid,
                                    status: ReplyStatus::Success { verf },
                                }));
                            }
                            1 => AcceptError::ProgUnavail,
                            2 => AcceptError::ProgMismatch {
                                low: dec.get_u32()?,
                                high: dec.get_u32()?,
                            },
                            3 => AcceptError::ProcUnavail,
                            4 => AcceptError::GarbageArgs,
                            5 => AcceptError::SystemErr,
                            value => {
                                return Err(XdrError::InvalidValue {
                                    what: "accept_stat",
                                    value,
                                });
                            }
                        };
                        ReplyStatus::AcceptError { verf, error }
                    }
                    REPLY_DENIED => match dec.get_u32()? {
                        0 => ReplyStatus::RpcMismatch {
                            low: dec.get_u32()?,
                            high: dec.get_u32()?,
                        },
                        1 => ReplyStatus::AuthError(AuthStat::from_u32(dec.get_u32()?)),
                        value => {
                            return Err(XdrError::InvalidValue {
                                what: "reject_stat",
                                value,
                            });
                        }
                    },
                    value => {
                        return Err(XdrError::InvalidValue {
                            what: "reply_stat",
                            value,
                        });
                    }
                };
                Ok(Self::Reply(ReplyHeader { xid, status }))
            }
            value => Err(XdrError::InvalidValue {
                what: "msg_type",
                value,
            }),
        }
    }
}

/// What a connection needs to know of a call before decoding it: who it is for and where its
/// arguments start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPeek {
    /// The XID.
    pub xid: u32,
    /// Program number.
    pub prog: u32,
    /// Program version.
    pub vers: u32,
    /// Procedure number.
    pub proc_num: u32,
    /// Offset of the procedure's arguments in the record (after the credentials and the
    /// verifier).
    pub args_offset: usize,
}

/// What the first words of a record say it is (see [`peek_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePeek {
    /// A call of RPC version 2 whose header is whole.
    Call(CallPeek),
    /// A reply, to the call of this XID.
    Reply {
        /// The XID of the call answered.
        xid: u32,
    },
    /// A call of another RPC version (a server answers `RPC_MISMATCH`).
    RpcMismatch {
        /// The XID.
        xid: u32,
        /// The version the call names.
        rpc_version: u32,
    },
    /// A call whose header is cut short, or whose credentials or verifier are longer than
    /// [`MAX_AUTH_BODY_BYTES`] (a server answers `GARBAGE_ARGS`).
    BadCall {
        /// The XID.
        xid: u32,
    },
}

/// Reads what a record is from its first words, without decoding it: the XID and direction,
/// and of a call the program, version and procedure and where its arguments start (stepping
/// over the credentials and the verifier by their lengths, each checked against the record
/// and [`MAX_AUTH_BODY_BYTES`]). The server's dispatch and connection reader and the
/// simulation's wire tap all look at records through this one peek.
///
/// `None`: fewer than 8 bytes, or a message type that is neither CALL nor REPLY — not an RPC
/// message at all.
pub fn peek_message(record: &[u8]) -> Option<MessagePeek> {
    let mut words = XdrWords::new(record);
    let xid = words.u32()?;
    match words.u32()? {
        MSG_CALL => {}
        MSG_REPLY => return Some(MessagePeek::Reply { xid }),
        _ => return None,
    }
    let Some(rpc_version) = words.u32() else {
        return Some(MessagePeek::BadCall { xid });
    };
    if rpc_version != RPC_VERSION {
        return Some(MessagePeek::RpcMismatch { xid, rpc_version });
    }
    Some(match peek_call_fields(xid, &mut words) {
        Some(call) => MessagePeek::Call(call),
        None => MessagePeek::BadCall { xid },
    })
}

/// The rest of a call header after the RPC version: program, version, procedure, then the
/// credentials and the verifier stepped over.
fn peek_call_fields(xid: u32, words: &mut XdrWords<'_>) -> Option<CallPeek> {
    let (prog, vers, proc_num) = (words.u32()?, words.u32()?, words.u32()?);
    for _ in 0..2 {
        let _flavor = words.u32()?;
        words.skip_opaque(MAX_AUTH_BODY_BYTES)?;
    }
    Some(CallPeek {
        xid,
        prog,
        vers,
        proc_num,
        args_offset: words.offset(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::{from_bytes, to_bytes};

    #[test]
    fn peek_call_finds_the_arguments() {
        let cred = OpaqueAuth::sys(&AuthSysParams {
            stamp: 7,
            machine_name: Bytes::from_static(b"a-host"),
            uid: 1,
            gid: 2,
            gids: vec![3],
        });
        let call = MessageHeader::Call(CallHeader {
            xid: 99,
            prog: 100003,
            vers: 3,
            proc_num: 6,
            cred,
            verf: OpaqueAuth::none(),
        });
        let mut record = to_bytes(&call).to_vec();
        let header_len = record.len();
        record.extend_from_slice(&[0xab; 12]);
        let Some(MessagePeek::Call(peek)) = peek_message(&record) else {
            panic!("a call")
        };
        assert_eq!(
            (
                peek.xid,
                peek.prog,
                peek.vers,
                peek.proc_num,
                peek.args_offset
            ),
            (99, 100003, 3, 6, header_len)
        );
        // Truncated anywhere in the header: not RPC before the message type, a bad call after.
        for len in 0..header_len {
            let want = (len >= 8).then_some(MessagePeek::BadCall { xid: 99 });
            assert_eq!(peek_message(&record[..len]), want, "{len}");
        }
        // Another RPC version.
        let mut other = record.clone();
        other[8..12].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(
            peek_message(&other[..12]),
            Some(MessagePeek::RpcMismatch {
                xid: 99,
                rpc_version: 3
            })
        );
        // Credentials longer than RPC allows.
        let mut long = record.clone();
        long[28..32].copy_from_slice(&(MAX_AUTH_BODY_BYTES + 4).to_be_bytes());
        assert_eq!(peek_message(&long), Some(MessagePeek::BadCall { xid: 99 }));
        // A reply is not a call; a message type of neither is not RPC.
        record[4..8].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(peek_message(&record), Some(MessagePeek::Reply { xid: 99 }));
        record[4..8].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(peek_message(&record), None);
    }

    #[test]
    fn call_header_round_trip() {
        let cred = OpaqueAuth::sys(&AuthSysParams {
            stamp: 1,
            machine_name: Bytes::from_static(b"host"),
            uid: 1000,
            gid: 100,
            gids: vec![4, 24],
        });
        let call = MessageHeader::Call(CallHeader {
            xid: 0x1234,
            prog: 100003,
            vers: 3,
            proc_num: 7,
            cred,
            verf: OpaqueAuth::none(),
        });
        let bytes = to_bytes(&call);
        assert!(matches!(
            peek_message(&bytes),
            Some(MessagePeek::Call(CallPeek { xid: 0x1234, .. }))
        ));
        let back: MessageHeader = from_bytes(bytes).unwrap();
        assert_eq!(back, call);
        let MessageHeader::Call(c) = back else {
            unreachable!()
        };
        let sys = c.cred.as_sys().unwrap().unwrap();
        assert_eq!(
            (sys.uid, sys.gid, sys.gids.as_slice()),
            (1000, 100, &[4, 24][..])
        );
    }

    #[test]
    fn every_reply_status_round_trips() {
        let statuses = [
            ReplyStatus::Success {
                verf: OpaqueAuth::none(),
            },
            ReplyStatus::AcceptError {
                verf: OpaqueAuth::none(),
                error: AcceptError::ProgUnavail,
            },
            ReplyStatus::AcceptError {
                verf: OpaqueAuth::none(),
                error: AcceptError::ProgMismatch { low: 3, high: 3 },
            },
            ReplyStatus::AcceptError {
                verf: OpaqueAuth::none(),
                error: AcceptError::ProcUnavail,
            },
            ReplyStatus::AcceptError {
                verf: OpaqueAuth::none(),
                error: AcceptError::GarbageArgs,
            },
            ReplyStatus::AcceptError {
                verf: OpaqueAuth::none(),
                error: AcceptError::SystemErr,
            },
            ReplyStatus::RpcMismatch { low: 2, high: 2 },
            ReplyStatus::AuthError(AuthStat::TooWeak),
        ];
        for status in statuses {
            let reply = MessageHeader::Reply(ReplyHeader { xid: 9, status });
            let back: MessageHeader = from_bytes(to_bytes(&reply)).unwrap();
            assert_eq!(back, reply);
        }
    }
}
