//! The client contract: what nfsio's client must get right against every NFSv3 server, written
//! once (client_contract/cases.rs) and run against each implementation
//! (client_contract/targets.rs):
//!
//! - `ganesha::*`: nfs-ganesha 4.3 on loopback (without it the tests print one skip line, and
//!   fail under CI=true);
//! - `serve::*`: `nfsio serve`, the binary, as a child process on a fresh directory (the
//!   local store);
//! - `memory::*`: nfsio's server in-process over the memory store (what the simulation runs).
//!
//! Every client operation, with the error cases a user meets (NOENT, EXIST, NOTEMPTY, NOTDIR,
//! ISDIR, NAMETOOLONG, STALE, ROFS), honest stability (UNSTABLE answered UNSTABLE, one write
//! verifier per instance), the `File` API and its tokio adapters, AUTH_SYS credentials, and a
//! restart (for the servers this suite can restart: not ganesha, whose harness cannot
//! restart it on the same ports).
//!
//! What only one implementation has stays with it: the portmapper and the short URL of
//! ganesha (tests/ganesha_client.rs: the system's rpcbind), the flags, signals and subcommands
//! of the binary (tests/serve_client.rs), fault injection and crashes of the memory store
//! (tests/writeback.rs, crates/nfsio-server/tests/stability.rs).

#[path = "client_contract/cases.rs"]
mod cases;
mod common;
#[path = "client_contract/targets.rs"]
mod targets;

/// Stamps out one `#[tokio::test]` per case for the target `$target` in the module
/// `$module`: the contract's cases, then the extra ones named (cases whose bound is a
/// capability only some targets have, e.g. `Restart`).
macro_rules! contract_tests {
    ($module:ident, $target:ty $(, $extra:ident)* $(,)?) => {
        mod $module {
            contract_tests!(@cases $target;
                file_operations,
                directory_operations,
                read_only_export_refuses_changes,
                unknown_export_and_bad_port_fail_cleanly,
                auth_sys_credentials_from_the_url,
                file_async_read_write_seek,
                symlink_targets_longer_than_1024_bytes_are_read,
                $($extra,)*
            );
        }
    };
    (@cases $target:ty; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::cases::$case::<$target>().await;
            }
        )*
    };
}

contract_tests!(ganesha, crate::targets::GaneshaTarget);
contract_tests!(
    serve,
    crate::targets::ServeTarget,
    restart_keeps_handles_and_changes_the_verifier
);
contract_tests!(
    memory,
    crate::targets::MemoryTarget,
    restart_keeps_handles_and_changes_the_verifier
);
