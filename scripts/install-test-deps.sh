#!/usr/bin/env bash
# install-test-deps.sh -- make sure the programs the interop tests drive are present.
#
# What: the tests run a real NFSv3 server (nfs-ganesha 4.3 with its VFS FSAL), need a
# portmapper while that server starts (rpcbind, rpcinfo), use a real NFSv3 client
# (libnfs-utils: nfs-cp, nfs-cat, nfs-ls) and check our bytes on the wire with tshark; an
# ordinary user's FUSE mount goes through fusermount3 (fuse3), and needs /dev/fuse at the
# kernel's mode, 0666 (set here when it is not); the FUSE mount's fio suite runs fio
# (crates/nfsio-fuse/tests/fio.rs), and pjdfstest needs libacl (to build) and acl.
# When one of them is missing and we are root, this installs the Debian packages
#   nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils tshark fuse3 fio libacl1-dev acl
# with apt-get (noninteractive; a temporary /usr/sbin/policy-rc.d keeps the packages'
# services from being started by the install; tshark's "allow non-root capture"
# question is preseeded to "no"). Running it again when all is present does nothing.
#
# The FUSE suites' tools are Rust programs: fsx (fsx-rs, pinned) is installed with
# `cargo install --locked` into cargo's default bin directory when missing, as any user
# (a few minutes to build). When that fails, fsx's test skips (fails under CI=true).
# pjdfstest (pinned) likewise, once libacl1-dev is there (after the apt-get step).
#
# Not root and something missing: prints one "missing: TOOL" line per missing tool
# on stderr and exits 0 -- the tests then skip (or fail, under CI=true).
#
# Env knobs:
#   APT_LOCK_TIMEOUT  seconds apt-get waits for the dpkg lock   default 300
#
# Output: progress on stderr; exit 0 when all is present (or could not be installed
# for want of root), non-zero when an apt-get install was attempted and failed.
set -euo pipefail

APT_LOCK_TIMEOUT=${APT_LOCK_TIMEOUT:-300}
say() { echo "install-test-deps: $*" >&2; }

# Prints the names of the missing tools, one per line.
missing_tools() {
    local t
    for t in ganesha.nfsd rpcbind rpcinfo nfs-cp nfs-cat nfs-ls tshark fusermount3 fio; do
        # rpcbind and rpcinfo live in /usr/sbin, which a non-root PATH may lack.
        command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || echo "$t"
    done
    # ganesha loads its VFS backend from a plugin directory (separate package).
    compgen -G '/usr/lib/*/ganesha/libfsalvfs.so' >/dev/null || echo "libfsalvfs.so (nfs-ganesha-vfs)"
    # pjdfstest links libacl; its build needs the header.
    [ -e /usr/include/sys/acl.h ] || echo "sys/acl.h (libacl1-dev)"
    command -v setfacl >/dev/null 2>&1 || echo "setfacl (acl)"
    # The crash test of the server's metadata makes, checks and reads an ext4 image.
    command -v debugfs >/dev/null 2>&1 || [ -x /usr/sbin/debugfs ] || echo "debugfs (e2fsprogs)"
    # libnfs-utils 4.0 (Debian 12) ships no nfs-stat; newer ones do. Not required.
}

# The Rust tools: `cargo install` needs no root. Looked for where the tests look: PATH,
# then cargo's bin directory.
FSX_VERSION=0.3.2
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
if ! command -v fsx >/dev/null 2>&1 && [ ! -x "$cargo_bin/fsx" ]; then
    say "missing: fsx -- installing fsx $FSX_VERSION with cargo install into $cargo_bin (a few minutes)"
    cargo install fsx --version "$FSX_VERSION" --locked --quiet >&2 ||
        say "cargo install fsx $FSX_VERSION failed; the fsx test will skip (fail under CI=true)"
fi

# An ordinary user's FUSE mount: fusermount3 opens /dev/fuse with the user's file-system
# identity, so the device must be 0666 -- the mode the kernel gives it (devtmpfs). A
# container's hand-made /dev may have it 0600; as root, give it the kernel's mode back.
if [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then
    if [ "$(id -u)" = 0 ]; then
        say "/dev/fuse is $(stat -c %a /dev/fuse): chmod 0666 (the kernel's own mode)"
        chmod 0666 /dev/fuse
    else
        echo "missing: a /dev/fuse ordinary users may open (it is $(stat -c %a /dev/fuse))" >&2
    fi
fi

# pjdfstest: built once libacl1-dev is installed (it links libacl).
PJDFSTEST_VERSION=0.2.2
install_pjdfstest() {
    if command -v pjdfstest >/dev/null 2>&1 || [ -x "$cargo_bin/pjdfstest" ]; then
        return 0
    fi
    if [ ! -e /usr/include/sys/acl.h ]; then
        say "missing: pjdfstest, and libacl1-dev to build it; the pjdfstest test will skip"
        return 0
    fi
    say "missing: pjdfstest -- installing pjdfstest $PJDFSTEST_VERSION with cargo install into $cargo_bin (a few minutes)"
    cargo install pjdfstest --version "$PJDFSTEST_VERSION" --locked --quiet >&2 ||
        say "cargo install pjdfstest $PJDFSTEST_VERSION failed; the pjdfstest test will skip (fail under CI=true)"
}

missing=$(missing_tools)
if [ -z "$missing" ]; then
    install_pjdfstest
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    while IFS= read -r t; do
        echo "missing: $t (not root, cannot install; tests needing it will skip)" >&2
    done <<<"$missing"
    install_pjdfstest
    exit 0
fi

say "missing: $(echo "$missing" | tr '\n' ' ')-- installing"

# policy-rc.d exit code 101 = "action not allowed": invoke-rc.d will not start the
# services the packages ship (rpcbind, nfs-ganesha). Only remove the file we made.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from nfsio scripts/install-test-deps.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections

apt_get() { apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" "$@"; }
apt_get update -qq
apt_get install -y -qq --no-install-recommends \
    nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils tshark fuse3 fio libacl1-dev acl e2fsprogs >&2

missing=$(missing_tools)
if [ -n "$missing" ]; then
    say "still missing after install: $(echo "$missing" | tr '\n' ' ')"
    exit 1
fi
install_pjdfstest
say "done"
