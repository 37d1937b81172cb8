//! MOUNT and the portmapper (v2, and rpcbind v3 and v4) over UDP.
//!
//! Linux's `rpcinfo` and `showmount` find and ask services over UDP as readily as over TCP,
//! and libtirpc falls back to UDP when TCP fails. Each datagram is one call; the reply goes
//! back to its sender. NFS itself is served over TCP only (its replies do not fit datagrams):
//! an NFS call here is answered PROG_UNAVAIL. Calls are bounded like the others: at most
//! `max_requests_total` at once over every transport, and a datagram is never larger than
//! 64 KiB.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::debug;

use super::Shared;
use crate::peer::Peer;
use crate::service::Response;

/// The largest UDP datagram.
const MAX_DATAGRAM_BYTES: usize = 65_536;

/// Answers calls on `socket` until the server stops.
pub(super) async fn serve_udp(
    socket: UdpSocket,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let socket = Arc::new(socket);
    let local = socket.local_addr().ok();
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        let received = tokio::select! {
            biased;
            _ = stop.changed() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, from) = match received {
            Ok(received) => received,
            Err(err) => {
                debug!(%err, "UDP receive failed");
                continue;
            }
        };
        let Ok(permit) = shared.requests.clone().acquire_owned().await else {
            return;
        };
        let record = Bytes::copy_from_slice(&buf[..len]);
        let peer = Peer {
            ip: from.ip(),
            local_uid: None,
            local,
            datagram: true,
        };
        let service = shared.service.clone();
        let socket = socket.clone();
        let work = move || {
            let response = service.handle_from(peer, record);
            drop(permit);
            response
        };
        let response = if shared.service.is_blocking() {
            match tokio::task::spawn_blocking(work).await {
                Ok(response) => response,
                Err(_) => continue,
            }
        } else {
            work()
        };
        if let Response::Reply(segments) = response {
            let mut datagram = BytesMut::new();
            for segment in &segments {
                datagram.put_slice(segment);
            }
            if datagram.len() <= MAX_DATAGRAM_BYTES
                && let Err(err) = socket.send_to(&datagram, from).await
            {
                debug!(%err, %from, "UDP reply not sent");
            }
        }
    }
}
