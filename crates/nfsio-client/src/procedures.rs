//! The typed NFSv3 procedure layer: one call in, its decoded result out.
//!
//! Everything that sends NFSv3 procedures goes through [`Procedures`]: the [`Client`]
//! facade's methods and the write-back driver, which holds it directly (not the client) so
//! that the client's last handle is the application's: dropping it stops the write-back at
//! once, with the loss reported, instead of whenever the calls in flight happen to end.
//! Statuses come back as [`NfsError::Status`]; replies that break the protocol in ways the
//! decoder cannot see (a READ longer than asked) as [`NfsError::Protocol`].
//!
//! [`Client`]: crate::Client

use std::time::Duration;

use bytes::Bytes;
use nfsio_proto::nfs3::{
    self, CommitArgs, CommitResOk, Fattr, FileHandle, Nfs3Status, NfsRes, NfsTime, ReadArgs,
    ReadResOk, Sattr, SetattrArgs, SetattrResOk, StableHow, WccData, WriteArgs, WriteResOk, procs,
};
use nfsio_proto::rpc::OpaqueAuth;
use nfsio_proto::{XdrDecode, XdrEncode};
use nfsio_rpc::RpcClient;
use tracing::warn;

use crate::error::{NfsError, NfsResult};

/// The NFS transport and the credentials every call carries.
#[derive(Debug)]
pub(crate) struct Procedures {
    rpc: RpcClient,
    cred: OpaqueAuth,
}

impl Procedures {
    /// Calls over `rpc` with `cred`.
    pub(crate) fn new(rpc: RpcClient, cred: OpaqueAuth) -> Self {
        Self { rpc, cred }
    }

    /// The transport.
    pub(crate) fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// The credentials calls carry.
    pub(crate) fn cred(&self) -> &OpaqueAuth {
        &self.cred
    }

    /// Sends one NFSv3 call and decodes its result; NFS3ERR_JUKEBOX is retried with backoff
    /// (the server is fetching the file from slow storage), any other error status becomes
    /// [`NfsError::Status`].
    pub(crate) async fn call<A, T, F>(&self, proc_num: u32, args: &A) -> NfsResult<T>
    where
        A: XdrEncode + Sync + ?Sized,
        NfsRes<T, F>: XdrDecode,
    {
        let mut backoff_ms = 100;
        loop {
            let mut dec = self
                .rpc
                .call(nfs3::PROGRAM, nfs3::VERSION, proc_num, &self.cred, args)
                .await?;
            match NfsRes::<T, F>::decode(&mut dec)? {
                NfsRes::Ok(ok) => return Ok(ok),
                NfsRes::Fail {
                    status: Nfs3Status::Jukebox,
                    ..
                } => {
                    warn!(
                        proc = nfs3::proc_name(proc_num),
                        backoff_ms, "NFS3ERR_JUKEBOX, retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(5_000);
                }
                NfsRes::Fail { status, .. } => {
                    return Err(NfsError::Status {
                        proc_name: nfs3::proc_name(proc_num),
                        status,
                    });
                }
            }
        }
    }

    /// SETATTR: size (truncate or extend), mode, owner, times. With `guard`, the server applies
    /// the change only if the object's ctime still equals it (NFS3ERR_NOT_SYNC otherwise).
    pub(crate) async fn setattr(
        &self,
        object: &FileHandle,
        new_attributes: Sattr,
        guard: Option<NfsTime>,
    ) -> NfsResult<WccData> {
        let ok: SetattrResOk = self
            .call::<_, _, WccData>(
                procs::SETATTR,
                &SetattrArgs {
                    object: object.clone(),
                    new_attributes,
                    guard,
                },
            )
            .await?;
        Ok(ok.obj_wcc)
    }

    /// READ of at most `count` bytes at `offset` (one RPC; may return fewer bytes, but never
    /// none before the end of the file: that is [`NfsError::Protocol`]).
    pub(crate) async fn read(
        &self,
        file: &FileHandle,
        offset: u64,
        count: u32,
    ) -> NfsResult<ReadResOk> {
        let ok: ReadResOk = self
            .call::<_, _, Option<Fattr>>(
                procs::READ,
                &ReadArgs {
                    file: file.clone(),
                    offset,
                    count,
                },
            )
            .await?;
        // A READ that returns nothing before the end of the file makes no progress; taken
        // as end of file it would silently shorten what the caller reads.
        if count > 0 && ok.data.is_empty() && !ok.eof {
            return Err(NfsError::Protocol(format!(
                "READ of {count} bytes at {offset} returned no data and no end of file"
            )));
        }
        if ok.data.len() > count as usize || ok.count as usize != ok.data.len() {
            return Err(NfsError::Protocol(format!(
                "READ of {count} bytes returned count {} with {} data bytes",
                ok.count,
                ok.data.len()
            )));
        }
        Ok(ok)
    }

    /// WRITE of `data` at `offset` with the requested stability (one RPC). Returns the count
    /// the server took (possibly short), how stable it made them, and the write verifier.
    pub(crate) async fn write(
        &self,
        file: &FileHandle,
        offset: u64,
        data: Bytes,
        stable: StableHow,
    ) -> NfsResult<WriteResOk> {
        let count = u32::try_from(data.len())
            .map_err(|_| NfsError::InvalidArgument("WRITE larger than 4 GiB".into()))?;
        let ok: WriteResOk = self
            .call::<_, _, WccData>(
                procs::WRITE,
                &WriteArgs {
                    file: file.clone(),
                    offset,
                    count,
                    stable,
                    data,
                },
            )
            .await?;
        if ok.count > count {
            return Err(NfsError::Protocol(format!(
                "WRITE of {count} bytes answered count {}",
                ok.count
            )));
        }
        Ok(ok)
    }

    /// COMMIT of `count` bytes at `offset` (0, 0: the whole file). Returns the verifier that
    /// must equal the one of every UNSTABLE WRITE being committed.
    pub(crate) async fn commit(
        &self,
        file: &FileHandle,
        offset: u64,
        count: u32,
    ) -> NfsResult<CommitResOk> {
        self.call::<_, _, WccData>(
            procs::COMMIT,
            &CommitArgs {
                file: file.clone(),
                offset,
                count,
            },
        )
        .await
    }
}
