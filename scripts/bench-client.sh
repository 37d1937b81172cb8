#!/usr/bin/env bash
# bench-client.sh [SIZE_MIB [RUNS]] -- what the client costs per byte (issue 15): `nfsio cp`
# against libnfs's `nfs-cp` up (a local file into the export) and `nfsio cat` against
# `nfs-cat` down (the export's file to /dev/null), on `nfsio serve` and nfs-ganesha.
#
# Starts one `nfsio serve` (release build) and one private nfs-ganesha (scripts/ganesha.sh) on
# free 127.0.0.1 ports, each exporting its own directory, writes a SIZE_MIB MiB (default 1024)
# file of random bytes, then runs RUNS rounds (default 5) of
#   up     nfsio cp SRC URL   |  nfs-cp SRC URL          (then cmp of the server's copy)
#   down   nfsio cat URL      |  nfs-cat URL    >/dev/null (then an untimed `cat | cmp`)
# with the tools' order and the servers' order rotating every round. Each timed command runs
# under GNU time: wall seconds, client CPU (user + system) and peak RSS are the tool's own.
# Prints each sample to stderr and a table of medians to stdout, with the ratios nfsio/libnfs
# (issue 15's targets: CPU <= 1.0 in both directions against both servers, wall no worse).
#
# Needs root (ganesha), nfs-ganesha, rpcbind, libnfs-utils, GNU time
# (scripts/install-test-deps.sh installs them).
# Env knobs: BENCH_DIR (default a new /var/tmp/nfsio-bench.XXXXXX, removed at the end; room for
# 4 x SIZE_MIB), KEEP=1, NFSIO_BIN (default target/release/nfsio, built here), SERVERS
# (default "nfsio ganesha").
# Exit status: 0 ok; 1 a step failed or a copy differed; 2 cannot run here.
set -euo pipefail

prog=bench-client.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

size_mib=${1:-1024}
runs=${2:-5}
[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || die 1 "SIZE_MIB must be a positive integer, not '$size_mib'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die 1 "RUNS must be a positive integer, not '$runs'"
[ "$(id -u)" = 0 ] || die 2 "must run as root (nfs-ganesha needs it)"
for tool in nfs-cp nfs-cat cmp; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "$tool not installed (run scripts/install-test-deps.sh)"
done
[ -x /usr/bin/time ] || die 2 "GNU time (/usr/bin/time) not installed (apt-get install time)"
servers=${SERVERS:-nfsio ganesha}

ensure_nfsio_bin
start_servers "$servers"

source_file=$BENCH_DIR/source.bin
size_bytes=$(( size_mib * 1048576 ))
echo "$prog: writing a ${size_mib} MiB source file" >&2
head -c "$size_bytes" /dev/urandom >"$source_file"

results=$BENCH_DIR/results.tsv    # server direction tool round seconds cpu_seconds rss_kib
: >"$results"

# measure SERVER DIRECTION TOOL ROUND CMD...: runs CMD under GNU time, records the sample.
measure() {
    local server=$1 direction=$2 tool=$3 round=$4 tfile=$BENCH_DIR/time
    shift 4
    sync
    /usr/bin/time -f '%e %U %S %M' -o "$tfile" "$@" >/dev/null || die 1 "failed: $*"
    read -r seconds user sys rss <"$tfile"
    local cpu
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$direction" "$tool" "$round" "$seconds" "$cpu" "$rss" >>"$results"
    printf '%s: round %s %-7s %-4s %-6s %6s s  CPU %5s s  peak RSS %6.1f MiB\n' "$prog" "$round" \
        "$server" "$direction" "$tool" "$seconds" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" >&2
}

bench_up() {
    local server=$1 tool=$2 round=$3 name="up-$2-$3.bin"
    case $tool in
        nfsio) measure "$server" up "$tool" "$round" "$NFSIO_BIN" cp "$source_file" "$(url "$server" "$name")" ;;
        libnfs) measure "$server" up "$tool" "$round" nfs-cp "$source_file" "$(url "$server" "$name")" ;;
    esac
    cmp "$source_file" "${export_dir[$server]}/$name" || die 1 "$server $tool up: the copy differs"
    rm -f "${export_dir[$server]}/$name"
}

bench_down() {
    local server=$1 tool=$2 round=$3 file
    file=$(url "$server" down.bin)
    case $tool in
        nfsio) measure "$server" down "$tool" "$round" "$NFSIO_BIN" cat "$file"
               "$NFSIO_BIN" cat "$file" | cmp - "$source_file" || die 1 "$server nfsio cat differs" ;;
        libnfs) measure "$server" down "$tool" "$round" nfs-cat "$file"
               nfs-cat "$file" | cmp - "$source_file" || die 1 "$server nfs-cat differs" ;;
    esac
}

for server in $servers; do
    cp "$source_file" "${export_dir[$server]}/down.bin"
    chmod a+r "${export_dir[$server]}/down.bin"
done
sync

echo "$prog: $runs rounds on $(nproc) CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq 1 "$runs"); do
    tools=(nfsio libnfs)
    (( round % 2 )) || tools=(libnfs nfsio)
    server_order=$servers
    (( round % 3 )) || server_order=$(echo "$servers" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }')
    for server in $server_order; do
        for direction in up down; do
            for tool in "${tools[@]}"; do "bench_$direction" "$server" "$tool" "$round"; done
        done
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# med SERVER DIRECTION TOOL COLUMN: the median of a column (5 seconds, 6 CPU, 7 RSS KiB).
med() {
    awk -F'\t' -v s="$1" -v d="$2" -v t="$3" -v c="$4" '$1 == s && $2 == d && $3 == t { print $c }' "$results" | median
}

echo
echo "Client cost, medians of $runs interleaved rounds ($(nproc) CPUs, shared machine; ${size_mib} MiB; load average at the end $load_end)"
echo
echo "| server | direction | nfsio wall / CPU / peak RSS | libnfs wall / CPU / peak RSS | CPU nfsio/libnfs | RSS nfsio/libnfs | wall nfsio/libnfs |"
echo "|---|---|---|---|---:|---:|---:|"
for server in $servers; do
    for direction in up down; do
        nw=$(med "$server" "$direction" nfsio 5) nc=$(med "$server" "$direction" nfsio 6) nr=$(med "$server" "$direction" nfsio 7)
        lw=$(med "$server" "$direction" libnfs 5) lc=$(med "$server" "$direction" libnfs 6) lr=$(med "$server" "$direction" libnfs 7)
        label="$direction (nfsio cp / nfs-cp)"
        [ "$direction" = down ] && label="down (nfsio cat / nfs-cat)"
        printf '| %s | %s | %s s / %s s / %s MiB | %s s / %s s / %s MiB | %s | %s | %s |\n' "$server" "$label" \
            "$(fmt "$nw" %.2f)" "$(fmt "$nc" %.2f)" "$(fmt "$(awk -v k="$nr" 'BEGIN { print k / 1024 }')" %.1f)" \
            "$(fmt "$lw" %.2f)" "$(fmt "$lc" %.2f)" "$(fmt "$(awk -v k="$lr" 'BEGIN { print k / 1024 }')" %.1f)" \
            "$(ratio "$nc" "$lc")" "$(ratio "$nr" "$lr")" "$(ratio "$nw" "$lw")"
    done
done
echo
echo "Ratios above 1.0 mean nfsio spends more than libnfs; issue 15 asks CPU <= 1.0 and wall no worse."
