//! The client's one error type.
//!
//! Every failure a caller can see is an [`NfsError`]; the ones that come from the server carry
//! the NFS status and the procedure, and every variant maps to the errno a kernel client would
//! have returned, so that programs (and the CLI's one-line messages) can report the real error.

use std::io;

use nfsio_proto::XdrError;
use nfsio_proto::mount::MountStatus;
use nfsio_proto::nfs3::Nfs3Status;
use nfsio_rpc::RpcError;
use thiserror::Error;

use crate::url::UrlError;

/// Anything that can go wrong in a client operation.
#[derive(Debug, Error)]
pub enum NfsError {
    /// The server answered the procedure with an error status.
    #[error("{proc_name}: {status}")]
    Status {
        /// The NFSv3 procedure that failed (e.g. "LOOKUP").
        proc_name: &'static str,
        /// The status the server returned.
        status: Nfs3Status,
    },
    /// The MOUNT service refused the export.
    #[error("MNT: {0}")]
    Mount(MountStatus),
    /// The server exports nothing that contains the requested path.
    #[error("no export of the server contains {path} (exports: {exports})")]
    NoExport {
        /// The path asked for.
        path: String,
        /// What the server exports, comma-separated.
        exports: String,
    },
    /// The portmapper does not know the program.
    #[error("the portmapper at {host} has no TCP registration for program {prog} version {vers}")]
    NotRegistered {
        /// The host asked.
        host: String,
        /// Program number.
        prog: u32,
        /// Program version.
        vers: u32,
    },
    /// A service of the server could not be reached, or refused the call at the RPC level,
    /// while connecting (the portmapper, MOUNT, or the NFS port).
    #[error("{service} at {addr}: {}{}", describe(source), hint(service, source))]
    Service {
        /// `"portmapper"`, `"MOUNT"` or `"NFS"`.
        service: &'static str,
        /// The address tried.
        addr: std::net::SocketAddr,
        /// What the transport said.
        #[source]
        source: RpcError,
    },
    /// The host name did not resolve.
    #[error("cannot resolve host {0}")]
    Resolve(String),
    /// The URL is malformed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The transport failed (connection, timeout, RPC-level rejection).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The server's reply could not be decoded.
    #[error("malformed reply: {0}")]
    Decode(#[from] XdrError),
    /// The server broke the protocol in a way the decoder cannot see (e.g. a READ that
    /// returned more bytes than asked).
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolViolation),
    /// A caller-side invalid argument (empty name, a seek before 0, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The write-back cache cannot go on: its driver stopped (the client was dropped) or it
    /// failed an internal check. Bytes not yet durable may be lost: EIO.
    #[error("write-back cache: {0}")]
    WriteBack(String),
}

/// The ways a server's well-formed reply can still break the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolViolation {
    /// A READ returned no bytes and no end of file: no progress, and taken as end of file it
    /// would silently shorten what the caller reads.
    #[error("READ of {count} bytes at {offset} returned no data and no end of file")]
    ReadWithoutProgress {
        /// The offset read at.
        offset: u64,
        /// The bytes asked for.
        count: u32,
    },
    /// A READ's count disagrees with its data, or exceeds what was asked.
    #[error("READ of {count} bytes returned count {reply_count} with {data_bytes} data bytes")]
    ReadCount {
        /// The bytes asked for.
        count: u32,
        /// The count the reply claimed.
        reply_count: u32,
        /// The bytes the reply carried.
        data_bytes: usize,
    },
    /// A WRITE's reply claims more bytes written than were sent.
    #[error("WRITE of {count} bytes answered count {reply_count}")]
    WriteCount {
        /// The bytes sent.
        count: u32,
        /// The count the reply claimed.
        reply_count: u32,
    },
    /// A READDIRPLUS page had no entries and no end of directory: the listing would never end.
    #[error("READDIRPLUS returned no entries and no end of directory")]
    ReaddirWithoutProgress,
}

/// A transport failure in a few words: `connection refused` rather than the io::Error's
/// `Connection refused (os error 111)` behind a prefix.
fn describe(error: &RpcError) -> String {
    match error {
        RpcError::Connect(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
            io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
            io::ErrorKind::TimedOut => "connection timed out".to_owned(),
            _ => format!("cannot connect: {io}"),
        },
        other => other.to_string(),
    }
}

/// What to check when connecting to `service` failed with `error`.
fn hint(service: &str, error: &RpcError) -> &'static str {
    let unreachable = matches!(
        error,
        RpcError::Connect(_) | RpcError::ConnectTimedOut { .. } | RpcError::TimedOut { .. }
    );
    match (service, unreachable) {
        ("portmapper", true) => {
            " (is the server running? give its port as nfs://HOST:PORT/..., or nfsport= and mountport=)"
        }
        (_, true) => " (is the server running, on that port?)",
        ("portmapper", false) => " (is that a portmapper?)",
        _ => "",
    }
}

impl NfsError {
    /// A failure of `service` at `addr` while connecting.
    pub(crate) fn service(
        service: &'static str,
        addr: std::net::SocketAddr,
        source: RpcError,
    ) -> Self {
        Self::Service {
            service,
            addr,
            source,
        }
    }
}

/// Result type of the client.
pub type NfsResult<T> = Result<T, NfsError>;

/// Linux errno values the client reports, and their names: the protocol crate's table
/// (NFS clients report Linux's numbers on every platform they run on, so that a message names
/// the same error everywhere).
pub use nfsio_proto::nfs3::errno;

/// The errno a Linux client reports for an NFSv3 status (0 for `NFS3_OK`): the protocol
/// crate's one table ([`Nfs3Status::errno`]).
pub fn status_errno(status: Nfs3Status) -> i32 {
    status.errno().unwrap_or(0)
}

fn mount_errno(status: MountStatus) -> i32 {
    use errno::*;
    match status {
        MountStatus::Ok => 0,
        MountStatus::Perm => EPERM,
        MountStatus::NoEnt => ENOENT,
        MountStatus::Io => EIO,
        MountStatus::Acces => EACCES,
        MountStatus::NotDir => ENOTDIR,
        MountStatus::Inval => EINVAL,
        MountStatus::NameTooLong => ENAMETOOLONG,
        MountStatus::NotSupp => EOPNOTSUPP,
        MountStatus::ServerFault => EREMOTEIO,
        MountStatus::Unknown(_) => EIO,
    }
}

/// The errno for a transport failure.
fn rpc_errno(error: &RpcError) -> i32 {
    use errno::*;
    match error {
        RpcError::Connect(io) | RpcError::Io(io) => io.raw_os_error().unwrap_or(match io.kind() {
            io::ErrorKind::ConnectionRefused => ECONNREFUSED,
            io::ErrorKind::ConnectionReset => ECONNRESET,
            io::ErrorKind::TimedOut => ETIMEDOUT,
            io::ErrorKind::HostUnreachable => EHOSTUNREACH,
            _ => EIO,
        }),
        RpcError::ConnectTimedOut { .. } | RpcError::TimedOut { .. } => ETIMEDOUT,
        RpcError::Shutdown => EIO,
        RpcError::ConnectionLost { .. } => ECONNRESET,
        RpcError::Record(_) | RpcError::Xdr(_) | RpcError::GarbageArgs => EPROTO,
        RpcError::ProgUnavail | RpcError::ProgMismatch { .. } | RpcError::ProcUnavail => EOPNOTSUPP,
        RpcError::RpcMismatch { .. } => EPROTO,
        RpcError::SystemErr => EREMOTEIO,
        RpcError::AuthError(_) => EACCES,
    }
}

impl NfsError {
    /// The NFS status, when the server returned one.
    pub fn status(&self) -> Option<Nfs3Status> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The errno a kernel client would report for this error.
    pub fn errno(&self) -> i32 {
        use errno::*;
        match self {
            Self::Status { status, .. } => status_errno(*status),
            Self::Mount(status) => mount_errno(*status),
            Self::NoExport { .. } => ENOENT,
            Self::NotRegistered { .. } => ECONNREFUSED,
            Self::Resolve(_) => EHOSTUNREACH,
            Self::Url(_) | Self::InvalidArgument(_) => EINVAL,
            Self::Rpc(error) | Self::Service { source: error, .. } => rpc_errno(error),
            Self::Decode(_) | Self::Protocol(_) => EPROTO,
            Self::WriteBack(_) => EIO,
        }
    }

    /// The `std::io::ErrorKind` for this error.
    pub fn kind(&self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self.errno() {
            errno::ENOENT => K::NotFound,
            errno::EACCES | errno::EPERM => K::PermissionDenied,
            errno::EEXIST => K::AlreadyExists,
            errno::ENOTDIR => K::NotADirectory,
            errno::EISDIR => K::IsADirectory,
            errno::ENOTEMPTY => K::DirectoryNotEmpty,
            errno::ENOSPC | errno::EDQUOT => K::StorageFull,
            errno::EROFS => K::ReadOnlyFilesystem,
            errno::EFBIG => K::FileTooLarge,
            errno::ESTALE => K::StaleNetworkFileHandle,
            errno::EINVAL => K::InvalidInput,
            errno::ENAMETOOLONG => K::InvalidFilename,
            errno::EXDEV => K::CrossesDevices,
            errno::EMLINK => K::TooManyLinks,
            errno::EOPNOTSUPP => K::Unsupported,
            errno::ETIMEDOUT => K::TimedOut,
            errno::ECONNREFUSED => K::ConnectionRefused,
            errno::ECONNRESET => K::ConnectionReset,
            errno::EHOSTUNREACH => K::HostUnreachable,
            errno::EAGAIN => K::WouldBlock,
            errno::EPROTO => K::InvalidData,
            _ => K::Other,
        }
    }

    /// The symbolic errno name ("ENOENT").
    pub fn errno_name(&self) -> &'static str {
        errno::name(self.errno())
    }
}

impl From<NfsError> for io::Error {
    fn from(error: NfsError) -> Self {
        // Keep the raw errno (for programs that look at it) only when the message adds
        // nothing; otherwise keep our message with the matching kind.
        io::Error::new(error.kind(), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_name_the_service_the_address_and_what_to_check() {
        let refused = || RpcError::Connect(io::Error::from(io::ErrorKind::ConnectionRefused));
        let addr = "127.0.0.1:111".parse().unwrap();
        let error = NfsError::service("portmapper", addr, refused());
        assert_eq!(
            error.to_string(),
            "portmapper at 127.0.0.1:111: connection refused (is the server running? give its \
             port as nfs://HOST:PORT/..., or nfsport= and mountport=)"
        );
        assert_eq!(error.errno_name(), "ECONNREFUSED");
        let error = NfsError::service("NFS", "127.0.0.1:2049".parse().unwrap(), refused());
        assert_eq!(
            error.to_string(),
            "NFS at 127.0.0.1:2049: connection refused (is the server running, on that port?)"
        );
        let error = NfsError::service("MOUNT", addr, RpcError::ProgUnavail);
        assert_eq!(
            error.to_string(),
            "MOUNT at 127.0.0.1:111: program unavailable"
        );
        assert_eq!(error.errno_name(), "EOPNOTSUPP");
    }

    #[test]
    fn statuses_map_to_linux_errnos() {
        let cases = [
            (Nfs3Status::NoEnt, "ENOENT", io::ErrorKind::NotFound),
            (Nfs3Status::Acces, "EACCES", io::ErrorKind::PermissionDenied),
            (Nfs3Status::Perm, "EPERM", io::ErrorKind::PermissionDenied),
            (Nfs3Status::Exist, "EEXIST", io::ErrorKind::AlreadyExists),
            (Nfs3Status::NotDir, "ENOTDIR", io::ErrorKind::NotADirectory),
            (Nfs3Status::IsDir, "EISDIR", io::ErrorKind::IsADirectory),
            (Nfs3Status::NoSpc, "ENOSPC", io::ErrorKind::StorageFull),
            (Nfs3Status::DQuot, "EDQUOT", io::ErrorKind::StorageFull),
            (Nfs3Status::RoFs, "EROFS", io::ErrorKind::ReadOnlyFilesystem),
            (Nfs3Status::FBig, "EFBIG", io::ErrorKind::FileTooLarge),
            (
                Nfs3Status::Stale,
                "ESTALE",
                io::ErrorKind::StaleNetworkFileHandle,
            ),
            (
                Nfs3Status::NotEmpty,
                "ENOTEMPTY",
                io::ErrorKind::DirectoryNotEmpty,
            ),
        ];
        for (status, name, kind) in cases {
            let error = NfsError::Status {
                proc_name: "LOOKUP",
                status,
            };
            assert_eq!(error.errno_name(), name, "{status}");
            assert_eq!(error.kind(), kind, "{status}");
            assert_eq!(io::Error::from(error).kind(), kind);
        }
    }
}
