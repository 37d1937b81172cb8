# bench-lib.sh -- shell functions the benchmark scripts share (sourced, not run).
#
# Every benchmark starts its own servers on free loopback ports, stops them by PID, charges
# processes their CPU from /proc and prints medians; these are the pieces they have in common,
# so that each script says only what it measures. The caller sets `prog` (its name, for
# messages) and `set -euo pipefail` before sourcing.

die() { local rc=$1; shift; echo "$prog: $*" >&2; exit "$rc"; }

# SIGTERM PID $1, wait up to 5 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    echo "$prog: $pid still running 5 s after SIGTERM, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

# utime+stime of process $1, in clock ticks (every thread of the process).
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat") || die 1 "process $1 is gone"
    stat=${stat##*) }    # after "pid (comm) ": field 3 (state) is first
    # shellcheck disable=SC2086
    set -- $stat
    echo $(( ${12} + ${13} ))
}

now_ns() { date +%s%N; }

# median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# start_nfsio_serve BIN EXPORT_DIR STATE_DIR OUT_PREFIX: runs `BIN serve` on a free loopback
# port in the background; sets nfsio_pid, nfsio_url (the short form it prints first),
# nfsio_base and nfsio_query (the libnfs form: base URL and query naming both ports).
start_nfsio_serve() {
    local bin=$1 export_dir=$2 state_dir=$3 out=$4
    "$bin" serve "$export_dir" --listen 127.0.0.1:0 --squash none --state-dir "$state_dir" \
        </dev/null >"$out.url" 2>"$out.log" &
    nfsio_pid=$!
    for _ in $(seq 1 400); do
        [ -s "$out.url" ] && break
        kill -0 "$nfsio_pid" 2>/dev/null || die 1 "nfsio serve exited: $(cat "$out.log")"
        sleep 0.025
    done
    nfsio_url=$(head -n1 "$out.url")
    # The short form nfs://127.0.0.1:PORT/export (nfsio serve since it answers MOUNT on its
    # NFS port), or the libnfs form nfs://127.0.0.1/export?nfsport=N&mountport=M (older
    # builds): libnfs's tools need the latter.
    if [[ "$nfsio_url" =~ ^nfs://127\.0\.0\.1:([0-9]+)(/[^?]*)$ ]]; then
        nfsio_base="nfs://127.0.0.1${BASH_REMATCH[2]}"
        nfsio_query="version=3&nfsport=${BASH_REMATCH[1]}&mountport=${BASH_REMATCH[1]}"
    elif [[ "$nfsio_url" == nfs://*\?* ]]; then
        nfsio_base=${nfsio_url%%\?*}
        nfsio_query="version=3&${nfsio_url#*\?}"
    else
        die 1 "nfsio serve printed no URL: $(cat "$out.log")"
    fi
}

# start_ganesha STATE_DIR EXPORT_DIR: a private nfs-ganesha (scripts/ganesha.sh); sets
# ganesha_pid, ganesha_base and ganesha_query.
start_ganesha() {
    local env
    env=$(GANESHA_STATE=$1 EXPORT_DIR=$2 scripts/ganesha.sh start) || die 1 "ganesha did not start"
    GANESHA_PID="" NFS_PORT="" MNT_PORT=""
    eval "$env"
    ganesha_pid=$GANESHA_PID
    [ -n "$ganesha_pid" ] || die 1 "no GANESHA_PID in ganesha.sh's output"
    ganesha_base="nfs://127.0.0.1/export"
    ganesha_query="version=3&nfsport=$NFS_PORT&mountport=$MNT_PORT"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf f, v }'; }

# ensure_nfsio_bin: NFSIO_BIN, built here (release) when unset; dies if it is not executable.
ensure_nfsio_bin() {
    if [ -z "${NFSIO_BIN:-}" ]; then
        echo "$prog: cargo build --release -p nfsio --bin nfsio" >&2
        cargo build --release -p nfsio --bin nfsio >&2
        NFSIO_BIN=$repo/target/release/nfsio
    fi
    [ -x "$NFSIO_BIN" ] || die 2 "no nfsio binary at $NFSIO_BIN"
}

# start_servers "SERVERS": BENCH_DIR (a new /var/tmp/nfsio-bench.XXXXXX unless given; removed
# at exit unless KEEP=1), an exit trap that stops the servers it started, and each server
# named in SERVERS (nfsio, ganesha) exporting $BENCH_DIR/SERVER-export. Sets export_dir[S],
# base[S] and query[S]; `url S NAME` prints the URL of NAME in S's export in the form both
# nfsio and libnfs's tools take.
start_servers() {
    BENCH_DIR=${BENCH_DIR:-$(mktemp -d /var/tmp/nfsio-bench.XXXXXX)}
    mkdir -p "$BENCH_DIR"
    BENCH_DIR=$(cd "$BENCH_DIR" && pwd -P)
    ganesha_state=$BENCH_DIR/ganesha
    ganesha_pid="" nfsio_pid=""
    trap stop_servers EXIT
    trap 'exit 1' INT TERM
    declare -gA base query export_dir
    local server
    for server in $1; do
        export_dir[$server]=$BENCH_DIR/$server-export
        mkdir -p "${export_dir[$server]}"
    done
    if [[ " $1 " == *" nfsio "* ]]; then
        mkdir -p "$BENCH_DIR/nfsio-state"
        start_nfsio_serve "$NFSIO_BIN" "${export_dir[nfsio]}" "$BENCH_DIR/nfsio-state" "$BENCH_DIR/nfsio"
        base[nfsio]=$nfsio_base query[nfsio]=$nfsio_query
        echo "$prog: nfsio serve pid $nfsio_pid ($nfsio_url)" >&2
    fi
    if [[ " $1 " == *" ganesha "* ]]; then
        start_ganesha "$ganesha_state" "${export_dir[ganesha]}"
        base[ganesha]=$ganesha_base query[ganesha]=$ganesha_query
        echo "$prog: ganesha pid $ganesha_pid" >&2
    fi
}

# The exit trap of start_servers.
stop_servers() {
    local rc=$?
    [ -z "$nfsio_pid" ] || stop_pid "$nfsio_pid"
    [ -z "$ganesha_pid" ] || GANESHA_STATE=$ganesha_state scripts/ganesha.sh stop >/dev/null 2>&1 || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$BENCH_DIR"
    exit "$rc"
}

url() { echo "${base[$1]}/$2?${query[$1]}"; }
