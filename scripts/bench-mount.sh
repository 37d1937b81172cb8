#!/usr/bin/env bash
# bench-mount.sh [SIZE_MIB [RUNS]] -- an `nfsio mount` against the library (`nfsio cp`,
# `nfsio cat`, libnfs's `nfs-cp`) and against local disk, on `nfsio serve` and nfs-ganesha.
#
# Starts one `nfsio serve` (release build) and one private nfs-ganesha (scripts/ganesha.sh) on
# free 127.0.0.1 ports, each exporting its own directory under one bench directory (the same
# disk as the local-disk runs), mounts each with `nfsio mount`, then runs RUNS rounds (default
# 3), servers and tools in an order that rotates every round, of:
#   write   SIZE_MIB MiB (default 1024) of random bytes: `dd bs=1M conv=fsync` onto the mount
#           | `nfsio cp` | dd onto local disk                                   (MB/s)
#   read    that file, cold on the client (the mount is remounted first): `dd bs=1M | cmp`
#           from the mount | `nfsio cat | cmp` | `dd iflag=direct | cmp` of the local file (MB/s)
#   random  fio, 4 KiB random writes with an fsync after each, 8 s, on the mount | local (IOPS)
#   unpack  a source tree (TARBALL, default the largest tokio .crate in cargo's registry cache)
#           with `tar xzf` onto the mount | one `nfs-cp` per file into directories made on the
#           server's disk beforehand (untimed) | tar onto local disk            (files/s)
#   ls      `ls -l` of a directory of 10,000 files made on the server's disk, the mount freshly
#           remounted (cold) | `nfsio ls -l` | `ls -l` on local disk             (seconds)
# Every result is checked: cmp of every copy with its source, `diff -r` of every unpacked tree
# with the local one, the line count of every listing. Client CPU is charged for write and read:
# the tool's (GNU time) plus, through the mount, the `nfsio mount` process's (/proc/PID/stat).
# Prints each sample to stderr and a table of medians to stdout, with the targets of issue 14:
# mount/library >= 0.80 for write and read, unpack >= 3x the nfs-cp loop and within 3x of local
# disk, ls -l of 10,000 entries under 1 s.
#
# The server's page cache is not dropped (the machine may be shared): reads come from the
# server's memory, so the figures are the client's and the transport's, alike for all tools.
# The unpacked trees are kept until the end: on ext4 without a journal (this machine's root
# file system) the inode allocator skips, by scanning past them, inodes freed in the last
# minute, so removing a round's trees would slow the next round's unpacks (see bench-tree.sh).
#
# Needs root (ganesha; FUSE mount), nfs-ganesha, rpcbind, libnfs-utils, fio, GNU time
# (scripts/install-test-deps.sh installs them).
# Env knobs: BENCH_DIR (default a new /var/tmp/nfsio-bench.XXXXXX, removed at the end; room for
# 4 x SIZE_MIB), KEEP=1, NFSIO_BIN (default target/release/nfsio, built here), TARBALL,
# SERVERS (default "nfsio ganesha").
# Exit status: 0 ok; 1 a step failed or a result differed; 2 cannot run here.
set -euo pipefail

prog=bench-mount.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

size_mib=${1:-1024}
runs=${2:-3}
[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || die 1 "SIZE_MIB must be a positive integer, not '$size_mib'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die 1 "RUNS must be a positive integer, not '$runs'"
[ "$(id -u)" = 0 ] || die 2 "must run as root (nfs-ganesha and the FUSE mount need it)"
for tool in nfs-cp fio cmp diff tar getconf; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "$tool not installed (run scripts/install-test-deps.sh)"
done
[ -x /usr/bin/time ] || die 2 "GNU time (/usr/bin/time) not installed (apt-get install time)"
[ -e /dev/fuse ] || die 2 "no /dev/fuse"
servers=${SERVERS:-nfsio ganesha}
size_bytes=$(( size_mib * 1048576 ))
clk_tck=$(getconf CLK_TCK)

if [ -z "${TARBALL:-}" ]; then
    TARBALL=$(ls -S "$HOME"/.cargo/registry/cache/*/tokio-1.*.crate 2>/dev/null | head -n1 || true)
fi
[ -f "${TARBALL:-}" ] || die 2 "no source tarball: set TARBALL=PATH.tar.gz"

ensure_nfsio_bin

BENCH_DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/nfsio-bench.XXXXXX)}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd -P)
ganesha_state=$BENCH_DIR/ganesha
ganesha_pid="" nfsio_pid=""
declare -A mount_pid=()

cleanup() {
    local rc=$? server
    for server in "${!mount_pid[@]}"; do
        "$NFSIO_BIN" umount "$BENCH_DIR/mnt-$server" >/dev/null 2>&1 || true
    done
    if [ -n "$nfsio_pid" ]; then
        stop_pid "$nfsio_pid"
        wait "$nfsio_pid" 2>/dev/null || true
    fi
    if [ -n "$ganesha_pid" ]; then
        GANESHA_STATE=$ganesha_state scripts/ganesha.sh stop >/dev/null 2>&1 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "$prog: kept $BENCH_DIR" >&2; else rm -rf "$BENCH_DIR"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ servers and mounts

declare -A url export_dir
for server in $servers; do
    export_dir[$server]=$BENCH_DIR/$server-export
    mkdir -p "${export_dir[$server]}" "$BENCH_DIR/mnt-$server"
done
if [[ " $servers " == *" nfsio "* ]]; then
    mkdir -p "$BENCH_DIR/nfsio-state"
    start_nfsio_serve "$NFSIO_BIN" "${export_dir[nfsio]}" "$BENCH_DIR/nfsio-state" "$BENCH_DIR/nfsio"
    url[nfsio]=$nfsio_url
    echo "$prog: nfsio serve pid $nfsio_pid ($nfsio_url)" >&2
fi
if [[ " $servers " == *" ganesha "* ]]; then
    start_ganesha "$ganesha_state" "${export_dir[ganesha]}"
    url[ganesha]="$ganesha_base?$ganesha_query"
    echo "$prog: ganesha pid $ganesha_pid (${url[ganesha]})" >&2
fi

# mount_fresh SERVER: (re)mounts SERVER's export on $BENCH_DIR/mnt-SERVER; sets mount_pid.
mount_fresh() {
    local server=$1 mnt=$BENCH_DIR/mnt-$1 line
    if [ -n "${mount_pid[$server]:-}" ]; then
        "$NFSIO_BIN" umount "$mnt" >&2 || die 1 "umount $mnt failed"
        unset "mount_pid[$server]"
    fi
    line=$("$NFSIO_BIN" mount "${url[$server]}" "$mnt") || die 1 "mount of ${url[$server]} failed"
    [[ "$line" =~ \(pid\ ([0-9]+)\) ]] || die 1 "no pid in the mount's ready line: $line"
    mount_pid[$server]=${BASH_REMATCH[1]}
}

# ------------------------------------------------------------------ measuring

results=$BENCH_DIR/results.tsv    # server work tool round value cpu_seconds
: >"$results"
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
    printf '%s: round %s %-7s %-6s %-7s %12s  client CPU %s s\n' "$prog" "$4" "$1" "$2" "$3" "$5" "$6" >&2
}

# timed TOOL_TIME_FILE CPU_PID CMD...: runs CMD under GNU time; prints "seconds cpu_seconds",
# the CPU being CMD's plus the CPU process CPU_PID (0: none) used meanwhile.
timed() {
    local tfile=$1 pid=$2 c0=0 c1=0 t0 t1
    shift 2
    [ "$pid" = 0 ] || c0=$(cpu_ticks "$pid")
    t0=$(now_ns)
    /usr/bin/time -f '%U %S' -o "$tfile" "$@" || die 1 "failed: $*"
    t1=$(now_ns)
    [ "$pid" = 0 ] || c1=$(cpu_ticks "$pid")
    awk -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v t="$clk_tck" -v f="$tfile" 'BEGIN {
        getline tool < f; split(tool, u, " ")
        printf "%.6f %.2f\n", (b - a) / 1e9, u[1] + u[2] + (c1 - c0) / t }'
}

source_file=$BENCH_DIR/source.bin
echo "$prog: writing a ${size_mib} MiB source file" >&2
head -c "$size_bytes" /dev/urandom >"$source_file"
mkdir -p "$BENCH_DIR/local"

bench_write() {
    local server=$1 tool=$2 round=$3 mnt=$BENCH_DIR/mnt-$1 out dst
    case $tool in
        mount) dst=$mnt/w-$round.bin
               out=$(timed "$BENCH_DIR/t" "${mount_pid[$server]}" \
                   dd if="$source_file" of="$dst" bs=1M conv=fsync status=none) ;;
        library) dst=${export_dir[$server]}/c-$round.bin
               out=$(timed "$BENCH_DIR/t" 0 "$NFSIO_BIN" cp "$source_file" "${url[$server]%%\?*}/c-$round.bin${url[$server]#"${url[$server]%%\?*}"}") ;;
        local) dst=$BENCH_DIR/local/w-$round.bin
               out=$(timed "$BENCH_DIR/t" 0 dd if="$source_file" of="$dst" bs=1M conv=fsync status=none) ;;
    esac
    [ "$tool" = mount ] && dst=${export_dir[$server]}/w-$round.bin
    cmp "$source_file" "$dst" || die 1 "$server $tool write: $dst differs from the source"
    read -r seconds cpu <<<"$out"
    record "$server" write "$tool" "$round" "$(awk -v s="$seconds" -v b="$size_bytes" 'BEGIN { printf "%.1f", b / s / 1e6 }')" "$cpu"
}

bench_read() {
    local server=$1 tool=$2 round=$3 out file
    case $tool in
        mount) mount_fresh "$server"
               file=$BENCH_DIR/mnt-$server/w-$round.bin
               out=$(timed "$BENCH_DIR/t" "${mount_pid[$server]}" \
                   sh -c 'dd if="$1" bs=1M status=none | cmp - "$2"' sh "$file" "$source_file") ;;
        library) file="${url[$server]%%\?*}/w-$round.bin${url[$server]#"${url[$server]%%\?*}"}"
               out=$(timed "$BENCH_DIR/t" 0 \
                   sh -c '"$1" cat "$2" | cmp - "$3"' sh "$NFSIO_BIN" "$file" "$source_file") ;;
        local) file=$BENCH_DIR/local/w-$round.bin
               out=$(timed "$BENCH_DIR/t" 0 \
                   sh -c 'dd if="$1" bs=1M iflag=direct status=none | cmp - "$2"' sh "$file" "$source_file") ;;
    esac
    read -r seconds cpu <<<"$out"
    record "$server" read "$tool" "$round" "$(awk -v s="$seconds" -v b="$size_bytes" 'BEGIN { printf "%.1f", b / s / 1e6 }')" "$cpu"
}

bench_random() {
    local server=$1 tool=$2 round=$3 dir json iops
    case $tool in
        mount) dir=$BENCH_DIR/mnt-$server ;;
        local) dir=$BENCH_DIR/local ;;
        *) return 0 ;;
    esac
    json=$BENCH_DIR/fio.json
    fio --name=random --directory="$dir" --filename="fio-$round.bin" --rw=randwrite --bs=4k \
        --size=64M --fsync=1 --runtime=8 --time_based --ioengine=psync --output-format=json \
        --output="$json" >/dev/null || die 1 "fio on $dir failed"
    iops=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; assert j["error"]==0; print("%.0f" % j["write"]["iops"])' "$json") \
        || die 1 "fio on $dir reported an error"
    rm -f "$dir/fio-$round.bin"
    record "$server" random "$tool" "$round" "$iops" "-"
}

tree=$BENCH_DIR/tree    # the tarball unpacked once on local disk: the reference
mkdir -p "$tree"
tar xzf "$TARBALL" -C "$tree"
tree_files=$(find "$tree" -type f | wc -l)

bench_unpack() {
    local server=$1 tool=$2 round=$3 dst t0 t1 f rel base
    case $tool in
        mount) dst=$BENCH_DIR/mnt-$server/u-$round ;;
        library) dst=${export_dir[$server]}/n-$round ;;
        local) dst=$BENCH_DIR/local/u-$round ;;
    esac
    mkdir -p "$dst"
    if [ "$tool" = library ]; then
        (cd "$tree" && find . -type d -print0 | (cd "$dst" && xargs -0 mkdir -p))
        chmod -R a+rwX "$dst"
        base=${url[$server]%%\?*}
        local query=${url[$server]#"$base"}
        [ "$server" = nfsio ] && query="?$nfsio_query" && base=$nfsio_base
        t0=$(now_ns)
        while IFS= read -r -d '' f; do
            rel=${f#./}
            nfs-cp "$tree/$rel" "$base/n-$round/$rel$query" >/dev/null || die 1 "nfs-cp of $rel failed"
        done < <(cd "$tree" && find . -type f -print0)
        t1=$(now_ns)
    else
        t0=$(now_ns)
        tar xzf "$TARBALL" -C "$dst" || die 1 "tar onto $dst failed"
        t1=$(now_ns)
    fi
    [ "$tool" = mount ] && dst=${export_dir[$server]}/u-$round
    diff -r "$tree" "$dst" >/dev/null || die 1 "$server $tool: the unpacked tree differs from the local one"
    record "$server" unpack "$tool" "$round" \
        "$(awk -v a="$t0" -v b="$t1" -v n="$tree_files" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')" "-"
}

bench_ls() {
    local server=$1 tool=$2 round=$3 t0 t1 lines
    case $tool in
        mount) mount_fresh "$server"
               t0=$(now_ns); lines=$(ls -l "$BENCH_DIR/mnt-$server/big" | wc -l); t1=$(now_ns) ;;
        library) t0=$(now_ns)
               lines=$("$NFSIO_BIN" ls -l "${url[$server]%%\?*}/big${url[$server]#"${url[$server]%%\?*}"}" | wc -l)
               t1=$(now_ns) ;;
        local) t0=$(now_ns); lines=$(ls -l "${export_dir[$server]}/big" | wc -l); t1=$(now_ns) ;;
    esac
    (( lines >= 10000 )) || die 1 "$server $tool: ls -l listed $lines lines, not 10,000"
    record "$server" ls "$tool" "$round" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" "-"
}

for server in $servers; do
    mkdir -p "${export_dir[$server]}/big"
    (cd "${export_dir[$server]}/big" && seq -f 'entry-%05g' 1 10000 | xargs touch)
    mount_fresh "$server"
done

echo "$prog: $runs rounds on $(nproc) CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
tools=(mount library local)
for round in $(seq 1 "$runs"); do
    # rotate the tools by the round, and swap the servers every other round
    order=("${tools[@]:round%3}" "${tools[@]:0:round%3}")
    server_order=$servers
    (( round % 2 )) || server_order=$(echo "$servers" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }')
    for server in $server_order; do
        for work in write read random unpack ls; do
            for tool in "${order[@]}"; do "bench_$work" "$server" "$tool" "$round"; done
        done
        # The 1 GiB files go now, for their space; the unpacked trees stay until the bench
        # directory is removed at the end (see the header).
        rm -f "${export_dir[$server]}"/w-"$round".bin "${export_dir[$server]}"/c-"$round".bin
    done
    rm -f "$BENCH_DIR"/local/w-"$round".bin
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ the table

med() {
    awk -F'\t' -v s="$1" -v w="$2" -v t="$3" -v c="$4" '$1 == s && $2 == w && $3 == t { print (c ? $6 : $5) }' "$results" | median
}

echo
echo "nfsio mount, medians of $runs interleaved rounds ($(nproc) CPUs, shared machine; ${size_mib} MiB; $tree_files files from $(basename "$TARBALL"); load average at the end $load_end)"
echo
echo "| server | work | mount | library | local disk | mount / library | mount / local | target |"
echo "|---|---|---:|---:|---:|---:|---:|---|"
for server in $servers; do
    for work in write read random unpack ls; do
        m=$(med "$server" "$work" mount 0) l=$(med "$server" "$work" library 0) d=$(med "$server" "$work" local 0)
        case $work in
            write|read) unit="MB/s" target="mount/library >= 0.80"
                        cm=$(med "$server" "$work" mount 1) cl=$(med "$server" "$work" library 1)
                        m="$(fmt "$m" %.0f) (CPU $(fmt "$cm" %.2f) s)" l="$(fmt "$l" %.0f) (CPU $(fmt "$cl" %.2f) s)"
                        r1=$(ratio "${m%% *}" "${l%% *}") ;;
            random) unit=IOPS target="-"; r1="-" ;;
            unpack) unit="files/s" target="mount/nfs-cp loop >= 3, mount/local >= 0.33"; r1=$(ratio "$m" "$l") ;;
            ls) unit=s target="mount < 1 s"; r1=$(ratio "$l" "$m") ;;
        esac
        r2=$(ratio "${m%% *}" "$d")
        [ "$work" = ls ] && r2=$(ratio "$d" "$m")
        [ "$work" = random ] && l="-"
        [ "$work" = unpack ] && l="$l (nfs-cp loop)"
        printf '| %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n' "$server" "$work" "$unit" "$m" "$l" "$d" "$r1" "$r2" "$target"
    done
done
echo
echo "Ratios are of speeds (higher is better for the mount); for ls, of times inverted (library time / mount time)."
