#!/usr/bin/env bash
# test.sh -- the project's test command: `scripts/test.sh [ARGS...]` (CI runs it via .ci/run).
#
# 1. scripts/install-test-deps.sh: installs nfs-ganesha, rpcbind, libnfs-utils, tshark,
#    fuse3, fio and acl (Debian) and fsx and pjdfstest (cargo install, pinned) when missing
#    and we are root (the interop and mount tests need them; without them they skip, or
#    fail under CI=true).
# 2. Without ARGS: the doc tests (`cargo test --workspace --doc`; nextest does not run them).
# 3. The tests: `cargo nextest run --workspace --no-fail-fast ARGS` when cargo-nextest is
#    installed (config: .config/nextest.toml), else `cargo test --workspace --no-fail-fast ARGS`.
#    ARGS go to that runner, e.g. `scripts/test.sh -E 'binary(interop_testkit)'` (nextest);
#    with -p/--package in ARGS, --workspace is left out: `scripts/test.sh -p nfsio-testkit`.
#
# Env knobs: CI=true makes tests that lack a tool or root fail instead of skipping.
#   NFSIO_TEST_RUNNER=cargo  use `cargo test` even when nextest is installed.
# Exit status: non-zero when any step failed (all test steps run regardless).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-test-deps.sh

# --workspace unless ARGS pick packages themselves (cargo lets --workspace win over -p).
scope=(--workspace)
for a in "$@"; do
    case "$a" in -p | -p* | --package | --package=*) scope=() ;; esac
done

rc=0
if [ "$#" -eq 0 ]; then
    echo "test.sh: doc tests" >&2
    cargo test --workspace --doc || rc=$?
fi

if [ "${NFSIO_TEST_RUNNER:-}" != cargo ] && cargo nextest --version >/dev/null 2>&1; then
    echo "test.sh: cargo nextest run ${scope[*]} --no-fail-fast $*" >&2
    cargo nextest run "${scope[@]}" --no-fail-fast "$@" || rc=$?
else
    echo "test.sh: cargo test ${scope[*]} --no-fail-fast $*" >&2
    cargo test "${scope[@]}" --no-fail-fast "$@" || rc=$?
fi

if [ "$rc" != 0 ]; then
    echo "test.sh: FAILED (exit $rc)" >&2
fi
exit "$rc"
