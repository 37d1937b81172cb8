#!/usr/bin/env bash
# bench-writeback.sh -- the benchmarks of issue #4 (write-back cache), on one private ganesha,
# in one run.
#
#   scripts/bench-writeback.sh [SIZE_MIB [RUNS]]        defaults: 1024 MiB, 3 runs
#
# Builds nfsio and examples/random_writes.rs (release), starts nfs-ganesha on free loopback
# ports (scripts/ganesha.sh), then:
#
#   a. sequential (SEQ=1): a SIZE_MIB file of random bytes written durably, RUNS rounds, each
#      round timing in a rotating order (each tool goes first once in three rounds)
#          nfsio cp -q SRC URL  |  nfs-cp SRC URL  |  dd if=SRC of=EXPORT/dd-N.bin bs=1M conv=fdatasync
#      dd writes straight into ganesha's export directory, on the same disk: the physical
#      limit. Both NFS clients write UNSTABLE and COMMIT at the end, which ganesha answers
#      after fsync. Every output is checked with cmp against SRC, then removed.
#   b. random (RAND=1): RANDOM_COUNT (100000) writes of 4 KiB at random 4 KiB-aligned
#      offsets into a RANDOM_SIZE_MIB (256) MiB file, then fsync, RUNS rounds, A/B alternating:
#          random_writes --mode cache   (File::write_at each, then sync_all and close)
#          random_writes --mode direct  (one UNSTABLE WRITE each, 16 in flight, one COMMIT)
#      with the same seed (the round number) for both; each file is checked with cmp against
#      the local reference the example writes, then both are removed. WRITE and COMMIT RPC
#      counts come from the client's transport statistics. The target of the cache: direct /
#      cache WRITE RPCs >= 10x.
#   c. peak RSS (PEAK=1): /usr/bin/time -f %M of `nfsio cp -q` writing a PEAK_SIZE_MIB (4096)
#      file into ganesha, once, next to the bound BOUND_MIB (256) + 64 MiB. Skipped when
#      less than 10 GiB are free in BENCH_DIR's file system.
#
# Every sample is preceded by `sync` (the previous sample's dirty pages are not charged to
# the next one) and nothing else: no cache is dropped. Prints each sample on stderr, then
# tables of medians with the samples' range. Needs root (ganesha), python3 for arithmetic.
#
# Env knobs: SEQ=0 / RAND=0 / PEAK=0 skip a part; RANDOM_COUNT, RANDOM_SIZE_MIB,
# PEAK_SIZE_MIB, BOUND_MIB as above; BENCH_DIR (scratch dir, default a new
# /tmp/nfsio-bench.XXXXXX; it holds ganesha's export too), KEEP=1 to leave it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

size_mib=${1:-1024}
runs=${2:-3}
do_seq=${SEQ:-1}
do_random=${RAND:-1}
do_peak=${PEAK:-1}
random_count=${RANDOM_COUNT:-100000}
random_size_mib=${RANDOM_SIZE_MIB:-256}
peak_size_mib=${PEAK_SIZE_MIB:-4096}
bound_mib=${BOUND_MIB:-256}

scripts/install-test-deps.sh >/dev/null
cargo build --release --quiet --bin nfsio
cargo build --release --quiet -p nfsio --example random_writes
nfsio=$PWD/target/release/nfsio
random_writes=$PWD/target/release/examples/random_writes

bench=${BENCH_DIR:-$(mktemp -d /tmp/nfsio-bench.XXXXXX)}
mkdir -p "$bench"
bench=$(cd "$bench" && pwd -P)
state=$bench/ganesha
cleanup() {
    GANESHA_STATE=$state scripts/ganesha.sh stop >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$bench"
}
trap cleanup EXIT

# Free space in MiB of the file system holding $bench (ganesha's export is inside it).
free_mib() { df -Pm "$bench" | awk 'NR == 2 { print $4 }'; }
need_mib=0
[ "$do_seq" = 1 ] && need_mib=$(( 2 * size_mib ))
[ "$do_random" = 1 ] && [ $(( 2 * random_size_mib )) -gt "$need_mib" ] && need_mib=$(( 2 * random_size_mib ))
if [ "$(free_mib)" -lt $(( need_mib + 1024 )) ]; then
    echo "bench-writeback.sh: $(free_mib) MiB free in $bench, need $(( need_mib + 1024 )) MiB" >&2
    exit 1
fi

eval "$(GANESHA_STATE=$state scripts/ganesha.sh start)"
base="nfs://127.0.0.1/export"
query="?version=3&nfsport=$NFS_PORT&mountport=$MNT_PORT"

samples=$bench/samples.tsv
: > "$samples"
# sample SECTION LABEL COMMAND... : sync, run the command (stdout kept in $bench/out), append
# SECTION<TAB>LABEL<TAB>seconds<TAB>write_rpcs<TAB>commit_rpcs. The seconds are the wall time
# of the command, or for random_writes the elapsed_s it prints (from its first write to the
# end of its fsync: connect, CREATE, SETATTR and the local reference file left out); the RPC
# counts come from random_writes's line and are empty for other commands.
sample() {
    local section=$1 label=$2
    shift 2
    sync
    local t0 t1 seconds writes commits
    t0=$(date +%s%N)
    "$@" > "$bench/out"
    t1=$(date +%s%N)
    seconds=$(sed -n 's/.* elapsed_s=\([0-9.]*\).*/\1/p' "$bench/out")
    [ -n "$seconds" ] || seconds=$(awk -v ns="$(( t1 - t0 ))" 'BEGIN { printf "%.3f", ns / 1e9 }')
    writes=$(sed -n 's/.* write_rpcs=\([0-9]*\).*/\1/p' "$bench/out")
    commits=$(sed -n 's/.* commit_rpcs=\([0-9]*\).*/\1/p' "$bench/out")
    printf '%s\t%s\t%s\t%s\t%s\n' "$section" "$label" "$seconds" "$writes" "$commits" >> "$samples"
    awk -v l="$label" -v s="$seconds" -v w="$writes" -v c="$commits" 'BEGIN {
        printf "  %-20s %8.3f s", l, s
        if (w != "") printf "   WRITE %d  COMMIT %d", w, c
        printf "\n" }' >&2
}

# ------------------------------------------------------------------ a. sequential

if [ "$do_seq" = 1 ]; then
    src=$bench/source.bin
    head -c "$((size_mib << 20))" /dev/urandom > "$src"
    echo "sequential: $size_mib MiB, $runs rounds" >&2
    tools=(nfsio nfs-cp dd)
    for run in $(seq 1 "$runs"); do
        echo "round $run of $runs" >&2
        # Rotate the order, so that no tool always meets the disk right after another's write.
        for i in 0 1 2; do
            tool=${tools[$(( (run - 1 + i) % 3 ))]}
            out=seq-$tool-$run.bin
            case $tool in
                nfsio) sample seq "$tool" "$nfsio" cp -q "$src" "$base/$out$query" ;;
                nfs-cp) sample seq "$tool" nfs-cp "$src" "$base/$out$query" ;;
                dd) sample seq "$tool" dd if="$src" of="$EXPORT_DIR/$out" bs=1M conv=fdatasync status=none ;;
            esac
            cmp "$src" "$EXPORT_DIR/$out"
            rm -f "$EXPORT_DIR/$out"
        done
    done
    rm -f "$src"
fi

# ------------------------------------------------------------------ b. random

if [ "$do_random" = 1 ]; then
    echo "random: $random_count writes of 4 KiB into $random_size_mib MiB, $runs rounds" >&2
    for run in $(seq 1 "$runs"); do
        echo "round $run of $runs" >&2
        if [ $((run % 2)) = 1 ]; then order="cache direct"; else order="direct cache"; fi
        for mode in $order; do
            out=rand-$mode-$run.bin
            ref=$bench/ref-$mode-$run.bin
            sample random "$mode" "$random_writes" "$base/$out$query" --size-mib "$random_size_mib" \
                --count "$random_count" --seed "$run" --mode "$mode" --reference "$ref"
            cmp "$ref" "$EXPORT_DIR/$out"
            rm -f "$ref" "$EXPORT_DIR/$out"
        done
    done
fi

# ------------------------------------------------------------------ c. peak RSS

peak_line=""
if [ "$do_peak" = 1 ]; then
    free=$(free_mib)
    if [ "$free" -lt 10240 ]; then
        peak_line="peak RSS: skipped, $free MiB free in $bench (< 10 GiB)"
    else
        echo "peak RSS: nfsio cp of $peak_size_mib MiB into ganesha" >&2
        src=$bench/peak.bin
        head -c "$((peak_size_mib << 20))" /dev/urandom > "$src"
        sync
        /usr/bin/time -f %M -o "$bench/rss" "$nfsio" cp -q "$src" "$base/peak.bin$query"
        cmp "$src" "$EXPORT_DIR/peak.bin"
        rm -f "$src" "$EXPORT_DIR/peak.bin"
        rss_kib=$(tail -n 1 "$bench/rss")
        peak_line=$(awk -v k="$rss_kib" -v s="$peak_size_mib" -v b="$bound_mib" 'BEGIN {
            limit = b + 64
            printf "peak RSS of nfsio cp writing %d MiB: %.1f MiB (bound %d MiB + 64 MiB = %d MiB: %s)",
                s, k / 1024, b, limit, (k / 1024 <= limit) ? "within" : "OVER" }')
    fi
fi

# ------------------------------------------------------------------ tables

python3 - "$samples" "$size_mib" "$runs" "$random_count" "$random_size_mib" <<'EOF'
import statistics, sys
path, size_mib, runs, count, rsize = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
samples = {}
for line in open(path):
    section, label, seconds, writes, commits = line.rstrip("\n").split("\t")
    samples.setdefault((section, label), []).append(
        (float(seconds), int(writes) if writes else None, int(commits) if commits else None))

def times(key):
    return [s[0] for s in samples[key]]

def cell(key):
    t = times(key)
    return f"{statistics.median(t):.2f} s ({min(t):.2f}-{max(t):.2f})"

if ("seq", "nfsio") in samples:
    size = size_mib << 20
    print(f"\nsequential durable write, {size_mib} MiB, medians of {runs} rotated runs (range), all outputs verified with cmp\n")
    print("| writer | time | MB/s |")
    print("|---|---|---|")
    for tool, name in (("nfsio", "nfsio cp -q"), ("nfs-cp", "nfs-cp"), ("dd", "dd conv=fdatasync (export dir)")):
        m = statistics.median(times(("seq", tool)))
        print(f"| {name} | {cell(('seq', tool))} | {size / m / 1e6:.0f} |")
    a = statistics.median(times(("seq", "nfsio")))
    print(f"\nnfsio / dd time: {a / statistics.median(times(('seq', 'dd'))):.2f}x   "
          f"nfsio / nfs-cp time: {a / statistics.median(times(('seq', 'nfs-cp'))):.2f}x")

if ("random", "cache") in samples:
    print(f"\nrandom writes: {count} x 4 KiB into {rsize} MiB, then fsync; medians of {runs} alternating runs (range), "
          f"time from the first write to the end of the fsync, files verified with cmp\n")
    print("| mode | time | WRITE RPCs | COMMIT RPCs |")
    print("|---|---|---|---|")
    med = {}
    for mode in ("cache", "direct"):
        s = samples[("random", mode)]
        writes = statistics.median(x[1] for x in s)
        commits = statistics.median(x[2] for x in s)
        med[mode] = (statistics.median(times(("random", mode))), writes)
        print(f"| {mode} | {cell(('random', mode))} | {writes:.0f} | {commits:.0f} |")
    ratio = med["direct"][1] / med["cache"][1] if med["cache"][1] else float("inf")
    print(f"\nWRITE RPCs direct / cache: {ratio:.1f}x (target >= 10x: {'met' if ratio >= 10 else 'NOT met'})   "
          f"time direct / cache: {med['direct'][0] / med['cache'][0]:.2f}x")
EOF
if [ -n "$peak_line" ]; then
    echo
    echo "$peak_line"
fi
