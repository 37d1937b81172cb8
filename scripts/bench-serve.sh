#!/usr/bin/env bash
# bench-serve.sh [SIZE_MIB [RUNS]] -- libnfs's nfs-cp into and out of `nfsio serve` and nfs-ganesha.
#
# Starts one private nfs-ganesha (scripts/ganesha.sh) and one `nfsio serve` (release build),
# each on free 127.0.0.1 ports and exporting its own directory under one bench directory (so
# on the same disk). Then RUNS rounds (default 3), A/B interleaved with the order swapped every
# round, of, for each server:
#   up:   nfs-cp LOCAL -> nfs://.../file   (then cmp with the server's file on disk)
#   down: nfs-cp nfs://.../file -> LOCAL2  (then cmp with the source)
# of a SIZE_MIB MiB (default 1024) pseudo-random file. Every copy is timed (wall clock) and
# charged the server process's CPU time (utime+stime of /proc/PID/stat, in clock ticks of
# `getconf CLK_TCK`; ganesha daemonizes, its PID comes from ganesha.sh's output).
# Prints the per-copy numbers to stderr and a markdown table of medians to stdout: throughput
# in MB/s (10^6 bytes) per direction per server, the ratio nfsio/ganesha, and server CPU
# seconds per GiB copied.
#
# Needs root (ganesha), nfs-ganesha, rpcbind and libnfs-utils (scripts/install-test-deps.sh).
# The page cache is not dropped (the machine may be shared); both servers are treated alike:
# the source stays cached, each server's COMMIT makes its file durable, and the file read back
# by `down` was just written (served from the server's page cache).
#
# Env knobs:
#   BENCH_DIR  where the source, the copies and both exports go
#              default: a new /var/tmp/nfsio-bench.XXXXXX (removed at the end)
#   KEEP=1     keep BENCH_DIR
#   NFSIO_BIN  the nfsio binary   default: target/release/nfsio, built here with cargo
#   DOWN=cat   download with `nfs-cat URL | cmp - SOURCE` instead of nfs-cp to a local file:
#              the client writes nothing to disk, so the figure is the server's (and the
#              network's), not the local disk's
# Exit status: 0 ok; 1 a copy failed or differed; 2 cannot run here.
set -euo pipefail

prog=bench-serve.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

size_mib=${1:-1024}
runs=${2:-3}
[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || die 1 "SIZE_MIB must be a positive integer, not '$size_mib'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die 1 "RUNS must be a positive integer, not '$runs'"
[ "$(id -u)" = 0 ] || die 2 "must run as root (nfs-ganesha needs it)"
for tool in nfs-cp cmp getconf; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "$tool not installed (run scripts/install-test-deps.sh)"
done
size_bytes=$(( size_mib * 1048576 ))
clk_tck=$(getconf CLK_TCK)

if [ -z "${NFSIO_BIN:-}" ]; then
    echo "$prog: cargo build --release -p nfsio --bin nfsio" >&2
    cargo build --release -p nfsio --bin nfsio >&2
    NFSIO_BIN=$repo/target/release/nfsio
fi
[ -x "$NFSIO_BIN" ] || die 2 "no nfsio binary at $NFSIO_BIN"

if [ -z "${BENCH_DIR:-}" ]; then
    BENCH_DIR=$(mktemp -d /var/tmp/nfsio-bench.XXXXXX)
fi
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd -P)

ganesha_state=$BENCH_DIR/ganesha
ganesha_pid=""
nfsio_pid=""

cleanup() {
    local rc=$?
    if [ -n "$nfsio_pid" ]; then
        stop_pid "$nfsio_pid"
        wait "$nfsio_pid" 2>/dev/null || true
    fi
    if [ -n "$ganesha_pid" ]; then
        GANESHA_STATE=$ganesha_state scripts/ganesha.sh stop >/dev/null 2>&1 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "$prog: kept $BENCH_DIR" >&2
    else
        rm -rf "$BENCH_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ the servers

mkdir -p "$BENCH_DIR/ganesha-export" "$BENCH_DIR/nfsio-export" "$BENCH_DIR/nfsio-state"
start_ganesha "$ganesha_state" "$BENCH_DIR/ganesha-export"
start_nfsio_serve "$NFSIO_BIN" "$BENCH_DIR/nfsio-export" "$BENCH_DIR/nfsio-state" "$BENCH_DIR/nfsio"

echo "$prog: ganesha pid $ganesha_pid (${ganesha_base}?${ganesha_query})" >&2
echo "$prog: nfsio serve pid $nfsio_pid ($nfsio_url)" >&2

# ------------------------------------------------------------------ measuring

source_file=$BENCH_DIR/source.bin
echo "$prog: writing a ${size_mib} MiB source file" >&2
head -c "$size_bytes" /dev/urandom >"$source_file"

results=$BENCH_DIR/results.tsv    # server direction round seconds cpu_seconds
: >"$results"

# copy SERVER DIRECTION ROUND: one timed nfs-cp, checked with cmp.
copy() {
    local server=$1 direction=$2 round=$3 pid base query export name
    case "$server" in
        ganesha) pid=$ganesha_pid base=$ganesha_base query=$ganesha_query export=$BENCH_DIR/ganesha-export ;;
        nfsio) pid=$nfsio_pid base=$nfsio_base query=$nfsio_query export=$BENCH_DIR/nfsio-export ;;
    esac
    name=bench-$round.bin
    local url="$base/$name?$query" local_copy=$BENCH_DIR/down.bin from to
    if [ "$direction" = up ]; then
        rm -f "$export/$name"    # nfs-cp creates GUARDED
        from=$source_file to=$url
    else
        rm -f "$local_copy"
        from=$url to=$local_copy
    fi
    local c0 c1 t0 t1
    c0=$(cpu_ticks "$pid")
    t0=$(now_ns)
    if [ "$direction" = down ] && [ "${DOWN:-cp}" = cat ]; then
        # cmp reads the stream as it comes; the pipeline fails if either side does.
        nfs-cat "$from" | cmp - "$source_file" \
            || die 1 "$server: nfs-cat $from failed or differs from the source"
    else
        nfs-cp "$from" "$to" >/dev/null || die 1 "nfs-cp $from $to failed ($server $direction)"
    fi
    t1=$(now_ns)
    c1=$(cpu_ticks "$pid")
    if [ "$direction" = up ]; then
        cmp "$source_file" "$export/$name" || die 1 "$server: the uploaded file differs"
    else
        if [ "${DOWN:-cp}" != cat ]; then
            cmp "$source_file" "$local_copy" || die 1 "$server: the downloaded file differs"
        fi
        rm -f "$local_copy" "$export/$name"
    fi
    local seconds cpu
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v t="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / t }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$server" "$direction" "$round" "$seconds" "$cpu" >>"$results"
    awk -v s="$server" -v d="$direction" -v r="$round" -v sec="$seconds" -v cpu="$cpu" \
        -v bytes="$size_bytes" 'BEGIN { printf "round %d %-7s %-4s %8.3f s %8.1f MB/s  server CPU %6.2f s\n",
            r, s, d, sec, bytes / sec / 1e6, cpu }' >&2
}

echo "$prog: $runs rounds of ${size_mib} MiB on $(nproc) CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq 1 "$runs"); do
    if (( round % 2 )); then order="ganesha nfsio"; else order="nfsio ganesha"; fi
    for server in $order; do
        copy "$server" up "$round"
        copy "$server" down "$round"
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo "$prog: load average at the end: $load_end" >&2

# ------------------------------------------------------------------ the table

# median_of SERVER DIRECTION mbps|cpu_per_gib: the median over the rounds
median_of() {
    awk -F'\t' -v s="$1" -v d="$2" -v what="$3" -v bytes="$size_bytes" '
        $1 == s && $2 == d {
            if (what == "mbps") print bytes / $4 / 1e6
            else print $5 / (bytes / 1073741824)
        }' "$results" | median
}

declare -A med
for server in ganesha nfsio; do
    for direction in up down; do
        med[$server.$direction.mbps]=$(median_of "$server" "$direction" mbps)
        med[$server.$direction.cpu]=$(median_of "$server" "$direction" cpu)
    done
done

echo
down_tool="nfs-cp to a local file"
[ "${DOWN:-cp}" = cat ] && down_tool="nfs-cat | cmp"
echo "nfs-cp of ${size_mib} MiB over 127.0.0.1 (down: $down_tool), medians of $runs interleaved runs ($(nproc) CPUs, shared machine; load average at the end $load_end)"
echo
echo "| server | local → server MB/s | server → local MB/s | server CPU s/GiB, up | server CPU s/GiB, down |"
echo "|---|---:|---:|---:|---:|"
for server in ganesha nfsio; do
    label=$server
    [ "$server" = nfsio ] && label="nfsio serve"
    printf '| %s | %s | %s | %s | %s |\n' "$label" \
        "$(fmt "${med[$server.up.mbps]}" %.0f)" "$(fmt "${med[$server.down.mbps]}" %.0f)" \
        "$(fmt "${med[$server.up.cpu]}" %.2f)" "$(fmt "${med[$server.down.cpu]}" %.2f)"
done
printf '| nfsio / ganesha | %s× | %s× | %s× | %s× |\n' \
    "$(ratio "${med[nfsio.up.mbps]}" "${med[ganesha.up.mbps]}")" \
    "$(ratio "${med[nfsio.down.mbps]}" "${med[ganesha.down.mbps]}")" \
    "$(ratio "${med[nfsio.up.cpu]}" "${med[ganesha.up.cpu]}")" \
    "$(ratio "${med[nfsio.down.cpu]}" "${med[ganesha.down.cpu]}")"
