#!/usr/bin/env bash
# bench-tree.sh [RUNS] -- copies of whole trees (issue 16): `nfsio cp -r` against a shell loop
# of libnfs's `nfs-cp` per file and against `cp -r` onto local disk, into `nfsio serve` and
# nfs-ganesha.
#
# Starts one `nfsio serve` (release build) and one private nfs-ganesha (scripts/ganesha.sh) on
# free 127.0.0.1 ports, each exporting its own directory under one bench directory (the same
# disk as the local copies), makes two source trees
#   small  SMALL_FILES (default 10000) files of 4 KiB of random bytes in SMALL_DIRS (100)
#          directories
#   large  LARGE_FILES (default 1000) files of 1 MiB in 10 directories
# and one file of the large tree's total size, then runs RUNS rounds (default 3), the tools'
# order rotating every round, of, for each tree and server:
#   nfsio     nfsio cp -r -q TREE URL
#   nfs-cp    for each file: nfs-cp FILE URL (its directories made on the server's disk
#             beforehand, untimed, as the loop cannot make them)
#   local     cp -r TREE onto local disk (then sync, timed with it)
# and, for the large tree, `nfsio cp -q` of the single file of the same size. Every copy is
# checked with `diff -r` (cmp for the single file). No copy is removed before the end (the
# large tree's files are emptied at once, to give their space back): on ext4 without a
# journal (this machine's root file system) the inode allocator skips, by scanning past them,
# inodes freed in the last minute (six while their block is dirty), so removing 10,000 files
# made the next copy pay for the benchmark's own cleanup (one copy into `nfsio serve` took
# 2.2-2.4 s in a fresh area and 4.9-5.9 s just after such a removal), and removing the large
# tree's copies still slowed the next round's small copies. Prints each sample on stderr
# and a table of medians with issue 16's targets: nfsio cp -r >= 20x the nfs-cp loop and
# within 3x of local cp -r for the small tree; within 1.2x of the single-file copy for the
# large one.
#
# Needs root (ganesha), nfs-ganesha, rpcbind, libnfs-utils (scripts/install-test-deps.sh).
# Env knobs: BENCH_DIR (default a new /var/tmp/nfsio-bench.XXXXXX, removed at the end), KEEP=1,
# NFSIO_BIN (default target/release/nfsio, built here), SERVERS (default "nfsio ganesha"),
# SMALL_FILES, SMALL_DIRS, LARGE_FILES, LOOP_FILES (default SMALL_FILES: the nfs-cp loop
# copies only the first LOOP_FILES files of the small tree and its time is scaled to the
# whole tree, because 10,000 processes take minutes per round; the table says when).
# Exit status: 0 ok; 1 a step failed or a copy differed; 2 cannot run here.
set -euo pipefail

prog=bench-tree.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

runs=${1:-3}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die 1 "RUNS must be a positive integer, not '$runs'"
small_files=${SMALL_FILES:-10000}
small_dirs=${SMALL_DIRS:-100}
large_files=${LARGE_FILES:-1000}
loop_files=${LOOP_FILES:-$small_files}
(( loop_files <= small_files )) || loop_files=$small_files
[ "$(id -u)" = 0 ] || die 2 "must run as root (nfs-ganesha needs it)"
command -v nfs-cp >/dev/null 2>&1 || die 2 "nfs-cp not installed (run scripts/install-test-deps.sh)"
servers=${SERVERS:-nfsio ganesha}

ensure_nfsio_bin
start_servers "$servers"

# The trees (random bytes: nothing compresses or deduplicates).
make_tree() { # DIR FILES DIRS BYTES
    local dir=$1 files=$2 dirs=$3 bytes=$4 i
    for i in $(seq 0 $(( dirs - 1 ))); do mkdir -p "$dir/d$i"; done
    head -c $(( files * bytes )) /dev/urandom | split -a 6 -d -b "$bytes" - "$dir/all."
    i=0
    for f in "$dir"/all.*; do
        mv "$f" "$dir/d$(( i % dirs ))/f$i"
        i=$(( i + 1 ))
    done
}
echo "$prog: making the trees ($small_files x 4 KiB in $small_dirs dirs, $large_files x 1 MiB)" >&2
make_tree "$BENCH_DIR/small" "$small_files" "$small_dirs" 4096
make_tree "$BENCH_DIR/large" "$large_files" 10 1048576
find "$BENCH_DIR/large" -type f | sort | xargs cat >"$BENCH_DIR/large.bin"
(cd "$BENCH_DIR/small" && find . -type f | sort | awk -v n="$loop_files" 'NR <= n') >"$BENCH_DIR/loop-list"
(cd "$BENCH_DIR/large" && find . -type f | sort) >"$BENCH_DIR/large-list"
chmod -R a+rX "$BENCH_DIR/small" "$BENCH_DIR/large"
sync

results=$BENCH_DIR/results.tsv    # server tree tool round seconds
: >"$results"
record() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
    printf '%s: round %s %-7s %-5s %-7s %8.3f s\n' "$prog" "$4" "$1" "$2" "$3" "$5" >&2
}
elapsed() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# A checked copy stays until the bench directory is removed at the end (see the header: no
# freshly freed inodes before the next copy); a large one is emptied now, for its space.
discard() { # PATH TREE
    [ "$2" = large ] && find "${1:?}" -type f -exec truncate -s 0 {} +
    return 0
}

bench() { # SERVER TREE TOOL ROUND
    local server=$1 tree=$2 tool=$3 round=$4 name="copy-$2-$3-$4" t0 exp
    exp=${export_dir[$server]:-}
    sync
    case $tool in
        nfsio)
            t0=$(now_ns)
            "$NFSIO_BIN" cp -r -q "$BENCH_DIR/$tree" "$(url "$server" "$name")" || die 1 "nfsio cp -r failed"
            record "$server" "$tree" "$tool" "$round" "$(elapsed "$t0")"
            diff -r "$BENCH_DIR/$tree" "$exp/$name" >/dev/null || die 1 "$server nfsio cp -r: the tree differs"
            discard "$exp/$name" "$tree" ;;
        nfs-cp)
            local list=$BENCH_DIR/loop-list seconds
            [ "$tree" = large ] && list=$BENCH_DIR/large-list
            (cd "$BENCH_DIR/$tree" && find . -type d | while read -r d; do mkdir -p "$exp/$name/$d"; done)
            chmod -R a+rwX "$exp/$name"
            t0=$(now_ns)
            while read -r f; do
                nfs-cp "$BENCH_DIR/$tree/${f#./}" "$(url "$server" "$name/${f#./}")" >/dev/null || die 1 "nfs-cp $f failed"
            done <"$list"
            seconds=$(elapsed "$t0")
            if [ "$tree" = small ] && (( loop_files < small_files )); then
                seconds=$(awk -v s="$seconds" -v n="$loop_files" -v t="$small_files" 'BEGIN { printf "%.3f", s * t / n }')
            fi
            record "$server" "$tree" "$tool" "$round" "$seconds"
            while read -r f; do cmp "$BENCH_DIR/$tree/${f#./}" "$exp/$name/${f#./}" || die 1 "nfs-cp $f differs"; done <"$list"
            discard "$exp/$name" "$tree" ;;
        local)
            t0=$(now_ns)
            cp -r "$BENCH_DIR/$tree" "$BENCH_DIR/$name" && sync
            record local "$tree" "$tool" "$round" "$(elapsed "$t0")"
            diff -r "$BENCH_DIR/$tree" "$BENCH_DIR/$name" >/dev/null || die 1 "local cp -r differs"
            discard "$BENCH_DIR/$name" "$tree" ;;
        single)
            t0=$(now_ns)
            "$NFSIO_BIN" cp -q "$BENCH_DIR/large.bin" "$(url "$server" "$name.bin")" || die 1 "nfsio cp failed"
            record "$server" "$tree" "$tool" "$round" "$(elapsed "$t0")"
            cmp "$BENCH_DIR/large.bin" "$exp/$name.bin" || die 1 "$server single copy differs"
            truncate -s 0 "$exp/$name.bin" ;;
    esac
}

echo "$prog: $runs rounds on $(nproc) CPUs; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq 1 "$runs"); do
    tools=(nfsio nfs-cp)
    (( round % 2 )) || tools=(nfs-cp nfsio)
    for server in $servers; do
        for tool in "${tools[@]}"; do bench "$server" small "$tool" "$round"; done
        bench "$server" large nfsio "$round"
        bench "$server" large single "$round"
        bench "$server" large nfs-cp "$round"
    done
    bench local small local "$round"
    bench local large local "$round"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

med() { awk -F'\t' -v s="$1" -v t="$2" -v o="$3" '$1 == s && $2 == t && $3 == o { print $5 }' "$results" | median; }
echo
echo "Tree copies, medians of $runs rounds ($(nproc) CPUs, shared machine; load average at the end $load_end)"
note=""
(( loop_files < small_files )) && note=" (loop of $loop_files files, scaled to $small_files)"
echo
echo "| server | tree | nfsio cp -r | nfs-cp loop | local cp -r | nfsio cp (one file) | loop / nfsio | nfsio / local | nfsio / one file |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
for server in $servers; do
    for tree in small large; do
        n=$(med "$server" "$tree" nfsio) l=$(med "$server" "$tree" nfs-cp) c=$(med local "$tree" local)
        s=n/a one=n/a
        [ "$tree" = large ] && s=$(med "$server" large single) && one=$(ratio "$n" "$s")
        label="$small_files x 4 KiB$note"
        [ "$tree" = large ] && label="$large_files x 1 MiB"
        printf '| %s | %s | %s s | %s s | %s s | %s | %s | %s | %s |\n' "$server" "$label" \
            "$(fmt "$n" %.2f)" "$(fmt "$l" %.2f)" "$(fmt "$c" %.2f)" "$( [ "$s" = n/a ] && echo - || echo "$(fmt "$s" %.2f) s")" \
            "$(ratio "$l" "$n")" "$(ratio "$n" "$c")" "$one"
    done
done
echo
echo "Targets (issue 16): loop / nfsio >= 20 and nfsio / local <= 3 for the small tree; nfsio / one file <= 1.2 for the large."
