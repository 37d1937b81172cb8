//! Who is at the other end of a connection, as far as the kernel can vouch for it.
//!
//! AUTH_SYS credentials are claims: any process can send uid 0. For a connection from this
//! machine, though, the kernel knows which user owns the client's socket, and lists it in
//! `/proc/net/tcp` (and `tcp6`). The default squash policy uses that to trust root only where
//! it is provably root: a root process on this machine keeps uid 0, while a local ordinary
//! user, or anyone remote, who claims uid 0 is squashed. This is the TCP analogue of
//! `SO_PEERCRED` on a Unix socket.

use std::net::{IpAddr, SocketAddr};

/// The caller of an RPC, as the connection layer knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub ip: IpAddr,
    /// For a connection from this machine: the uid that owns the client's socket, as the
    /// kernel reports it; `None` for remote clients or when it cannot be told.
    pub local_uid: Option<u32>,
    /// The server's address the call arrived at, when known (rpcbind answers addresses on
    /// it).
    pub local: Option<SocketAddr>,
    /// The call came in a datagram (UDP): only the portmapper and MOUNT are served that way.
    pub datagram: bool,
}

impl Peer {
    /// A peer the kernel says nothing about (remote, simulated, or not looked up), over a
    /// stream.
    pub fn remote(ip: IpAddr) -> Self {
        Self {
            ip,
            local_uid: None,
            local: None,
            datagram: false,
        }
    }
}

/// True when `ip` is a loopback address (also an IPv4-mapped one).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The uid owning the socket at `client` connected to `server`, for a loopback connection;
/// `None` for any other connection or when the kernel's table does not list it.
pub fn loopback_socket_uid(server: SocketAddr, client: SocketAddr) -> Option<u32> {
    if !is_loopback(client.ip()) {
        return None;
    }
    let table = match client {
        SocketAddr::V4(_) => "/proc/net/tcp",
        // An IPv4-mapped peer of an IPv6 listener is listed in tcp6 as well.
        SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    find_owner(&text, client, server)
}

/// In the text of a `/proc/net/tcp{,6}` table, the uid of the socket whose local address is
/// `local` and whose remote address is `remote`.
fn find_owner(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let _slot = fields.next()?;
        let local_field = fields.next()?;
        let remote_field = fields.next()?;
        if parse_address(local_field)? != local || parse_address(remote_field)? != remote {
            return None;
        }
        // st, tx_queue:rx_queue, tr:tm->when, retrnsmt, then uid.
        fields.nth(4)?.parse().ok()
    })
}

/// Parses `0100007F:0801` (IPv4) or 32 hex digits and a port (IPv6), as the kernel prints
/// them: the address as 32-bit words in host byte order, the port as a number.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::from(word(addr)?),
        32 => {
            let mut octets = [0u8; 16];
            for (i, chunk) in octets.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(std::net::Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_format() {
        let v4 = parse_address(&format!("{:08X}:0801", u32::from_ne_bytes([127, 0, 0, 1])));
        assert_eq!(v4, Some("127.0.0.1:2049".parse().unwrap()));
        assert_eq!(parse_address("zz:0801"), None);
        assert_eq!(parse_address("0100007F"), None);
    }

    #[test]
    fn finds_the_socket_of_a_real_loopback_connection() {
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let stream = std::net::TcpStream::connect(server).unwrap();
        let (_accepted, client) = listener.accept().unwrap();
        assert_eq!(stream.local_addr().unwrap(), client);
        let me = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(loopback_socket_uid(server, client), Some(me));
        assert_eq!(
            loopback_socket_uid(server, "127.0.0.1:1".parse().unwrap()),
            None
        );
        assert_eq!(
            loopback_socket_uid(server, "192.0.2.1:5000".parse().unwrap()),
            None,
            "only loopback peers are looked up"
        );
    }
}
