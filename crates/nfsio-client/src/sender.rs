//! Starting the write-back engine's calls in the engine's order.
//!
//! The engine emits a flush's WRITEs in ascending offset order, and servers expect them so on
//! the wire (sequential detection, allocation, readahead; some refuse a WRITE that starts
//! past their end of file). A task per call, spawned in that order, does not keep it: tokio
//! runs the last task spawned first (its LIFO slot) and other workers steal the rest, so a
//! 16 MiB copy left as MiB 0, 15, 1..14. A call takes its transport slot and is queued on the
//! connection at its first poll, so [`start`] gives each call that first poll itself, in
//! order, before the task that waits for the reply exists.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use nfsio_cache::{Op, Reply, Transmit};
use nfsio_proto::nfs3::{Nfs3Status, Sattr};
use tracing::warn;

use crate::error::NfsError;
use crate::procedures::Procedures;

/// A call in flight, waiting for its reply.
pub(crate) type Call = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What starting a call gave.
pub(crate) enum Started {
    /// It is queued on the connection (or waits, in order, for a transport slot).
    Waiting(Call),
    /// It ended at once (the transport refused it): the engine's reply.
    Answered(Reply),
}

/// Starts `transmit` through `nfs`: its first poll happens here, with a waker that does
/// nothing (the task that then awaits the call polls it again with its own, which the
/// transport's slot queue and reply channel take over), so calls reach the connection in
/// the order they are started.
pub(crate) fn start(nfs: Arc<Procedures>, transmit: Transmit) -> Started {
    let mut call: Call = Box::pin(async move { send(&nfs, transmit).await });
    let mut cx = Context::from_waker(Waker::noop());
    match call.as_mut().poll(&mut cx) {
        Poll::Ready(reply) => Started::Answered(reply),
        Poll::Pending => Started::Waiting(call),
    }
}

/// Sends one call the engine asked for and turns the outcome into the engine's [`Reply`].
pub(crate) async fn send(client: &Procedures, transmit: Transmit) -> Reply {
    let Transmit { handle, op, .. } = transmit;
    let result = match op {
        Op::Write {
            offset_bytes,
            data,
            stable,
        } => client
            .write_segments(&handle, offset_bytes, data.segments(), stable)
            .await
            .map(|ok| Reply::Write {
                count_bytes: ok.count,
                committed: ok.committed,
                verf: ok.verf,
                post_op_attrs: ok.file_wcc.after,
            }),
        Op::Commit {
            offset_bytes,
            count_bytes,
        } => client
            .commit(&handle, offset_bytes, count_bytes)
            .await
            .map(|ok| Reply::Commit {
                verf: ok.verf,
                post_op_attrs: ok.file_wcc.after,
            }),
        Op::Read {
            offset_bytes,
            count_bytes,
        } => client
            .read(&handle, offset_bytes, count_bytes)
            .await
            .map(|ok| Reply::Read {
                data: ok.data,
                eof: ok.eof,
                post_op_attrs: ok.file_attributes,
            }),
        Op::Setattr { size_bytes } => client
            .setattr(
                &handle,
                Sattr {
                    size: Some(size_bytes),
                    ..Sattr::default()
                },
                None,
            )
            .await
            .map(|wcc| Reply::Setattr {
                post_op_attrs: wcc.after,
            }),
    };
    match result {
        Ok(reply) => reply,
        Err(NfsError::Status { status, .. }) => Reply::Status(status),
        // The transport gave up (a soft mount's retries ran out, the client is shutting
        // down) or the server broke the protocol: the call may have run or not, and nothing
        // will retry it at this XID. The engine records EIO for the file.
        Err(error) => {
            warn!(%error, "write-back call failed");
            Reply::Status(Nfs3Status::Io)
        }
    }
}
