#!/usr/bin/env bash
# bench-cp.sh -- nfsio cp against libnfs's nfs-cp, on one private ganesha, in one run.
#
#   scripts/bench-cp.sh [SIZE_MIB [RUNS]]        defaults: 1024 MiB, 4 runs
#
# Builds nfsio (release), starts nfs-ganesha on free loopback ports (scripts/ganesha.sh),
# makes a SIZE_MIB file of random bytes, then runs RUNS rounds; each round times, A/B
# interleaved, the four copies
#     local -> ganesha   nfsio cp   |  nfs-cp
#     ganesha -> local   nfsio cp   |  nfs-cp
# and checks every copy byte-exact (cmp). Prints each sample, then a table of medians as
# throughput (MB/s, 10^6 bytes) and the ratio nfsio/nfs-cp of throughputs (> 1: nfsio is
# faster). Both tools copy into ganesha with UNSTABLE WRITEs and a COMMIT at the end, so
# both pay ganesha's flush to disk. Needs root (ganesha), python3 for the arithmetic.
#
# Each round begins its downloads with one untimed download (the first read of a freshly
# written file is slower here whichever client makes it), and the order of the tools rotates
# from round to round.
#
# Env knobs: BASELINE=PATH adds a third tool, another nfsio binary (e.g. a build of an earlier
# commit), timed the same way in the same rounds, and a column nfsio / baseline; BENCH_DIR
# (scratch dir, default a new /tmp/nfsio-bench.XXXXXX; it needs room for 5 x SIZE_MIB), KEEP=1
# to leave it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

size_mib=${1:-1024}
runs=${2:-4}
scripts/install-test-deps.sh >/dev/null
cargo build --release --quiet --bin nfsio
nfsio=$PWD/target/release/nfsio

bench=${BENCH_DIR:-$(mktemp -d /tmp/nfsio-bench.XXXXXX)}
mkdir -p "$bench"
state=$bench/ganesha
cleanup() {
    GANESHA_STATE=$state scripts/ganesha.sh stop >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$bench"
}
trap cleanup EXIT

eval "$(GANESHA_STATE=$state scripts/ganesha.sh start)"
base="nfs://127.0.0.1/export"
query="?version=3&nfsport=$NFS_PORT&mountport=$MNT_PORT"

src=$bench/source.bin
head -c "$((size_mib << 20))" /dev/urandom > "$src"
bytes=$(stat -c %s "$src")

samples=$bench/samples.tsv
: > "$samples"
# time_copy LABEL COMMAND... : runs the command, appends LABEL<TAB>seconds.
time_copy() {
    local label=$1
    shift
    sync
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    printf '%s\t%s\n' "$label" "$(( t1 - t0 ))" >> "$samples"
    awk -v l="$label" -v ns="$(( t1 - t0 ))" 'BEGIN { printf "  %-24s %8.3f s\n", l, ns / 1e9 }' >&2
}

tools="nfsio nfs-cp"
if [ -n "${BASELINE:-}" ]; then
    [ -x "$BASELINE" ] || { echo "bench-cp.sh: BASELINE=$BASELINE is not an executable" >&2; exit 2; }
    tools="$tools baseline"
fi
# run_tool TOOL SRC DST: one copy with TOOL.
run_tool() {
    case $1 in
        nfsio) "$nfsio" cp -q "$2" "$3" ;;
        baseline) "$BASELINE" cp -q "$2" "$3" ;;
        nfs-cp) nfs-cp "$2" "$3" ;;
    esac
}
# rotated N: the tools, starting with the (N mod count)-th.
rotated() {
    local list=($tools) i n=${#list[@]}
    for i in $(seq 0 $((n - 1))); do printf '%s ' "${list[$(( (i + $1) % n ))]}"; done
}

for run in $(seq 1 "$runs"); do
    echo "round $run of $runs" >&2
    order=$(rotated "$run")
    for tool in $order; do
        name="up-$tool-$run.bin"
        time_copy "local->ganesha $tool" run_tool "$tool" "$src" "$base/$name$query"
        cmp "$src" "$EXPORT_DIR/$name"
    done
    # Untimed: the first download of a freshly written file pays for something neither
    # client controls; this one pays it.
    nfs-cp "$base/up-nfs-cp-$run.bin$query" "$bench/warm.bin" >/dev/null
    rm -f "$bench/warm.bin"
    for tool in $order; do
        out=$bench/down-$tool-$run.bin
        time_copy "ganesha->local $tool" run_tool "$tool" "$base/up-nfs-cp-$run.bin$query" "$out"
        cmp "$src" "$out"
        rm -f "$out"
    done
    rm -f "$EXPORT_DIR"/up-*-"$run".bin
done

python3 - "$samples" "$bytes" "$runs" <<'EOF'
import statistics, sys
path, size, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
samples = {}
for line in open(path):
    label, ns = line.rstrip("\n").split("\t")
    samples.setdefault(label, []).append(int(ns) / 1e9)
print(f"\n{size / 2**20:.0f} MiB, medians of {runs} rotated runs, one ganesha, all copies verified with cmp\n")
baseline = any(label.endswith(" baseline") for label in samples)
head = "| direction | nfsio cp | nfs-cp | nfsio / nfs-cp (throughput) |"
rule = "|---|---|---|---|"
if baseline:
    head += " baseline nfsio cp | nfsio / baseline (throughput) |"
    rule += "---|---|"
print(head)
print(rule)
for direction in ("local->ganesha", "ganesha->local"):
    a = statistics.median(samples[f"{direction} nfsio"])
    b = statistics.median(samples[f"{direction} nfs-cp"])
    row = f"| {direction} | {a:.2f} s ({size / a / 1e6:.0f} MB/s) | {b:.2f} s ({size / b / 1e6:.0f} MB/s) | {b / a:.2f}x |"
    if baseline:
        c = statistics.median(samples[f"{direction} baseline"])
        row += f" {c:.2f} s ({size / c / 1e6:.0f} MB/s) | {c / a:.2f}x |"
    print(row)
EOF
