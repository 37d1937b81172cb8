#!/usr/bin/env bash
# ganesha.sh start|stop -- a private nfs-ganesha 4.3 NFSv3 server on 127.0.0.1 for tests.
#
# start: writes a config into $GANESHA_STATE and runs ganesha.nfsd as an NFSv3-only,
#   TCP-only server bound to 127.0.0.1, with one VFS export (no NLM, no RQUOTA, no grace
#   period, no root squash, AUTH_SYS). Several starts may run at once (different state
#   dirs and ports): the part that needs the portmapper is serialised with flock.
#   ganesha registers with rpcbind while it starts, so when no portmapper answers on
#   127.0.0.1 this starts `rpcbind -f` (listening on *:111) and, once ganesha is ready,
#   stops it again by its PID -- unless KEEP_RPCBIND=1, in which case `stop` stops it.
#   A kept rpcbind holds the start lock until then: other starts and stops wait for it
#   (a stopping ganesha unregisters NFS/MOUNT from whatever portmapper answers), so do
#   not start a second ganesha from the test that keeps rpcbind.
#   Clients need no portmapper: the libnfs URL printed names both ports.
# stop: stops what `start` recorded in $GANESHA_STATE, by PID only (SIGTERM, up to 5 s,
#   then SIGKILL); never by process name. Leaves $GANESHA_STATE in place.
#
# Env knobs:
#   GANESHA_STATE  state dir: config, log, pid files, env  start: default a new
#                  /tmp/nfsio-ganesha.XXXXXX; stop: required
#   NFS_PORT       NFS (100003 v3) TCP port        default: a free port picked here
#   MNT_PORT       MOUNT (100005 v3) TCP port      default: a free port picked here
#   EXPORT_DIR     directory exported              default $GANESHA_STATE/export
#   PSEUDO         export path clients mount       default /export
#   EXPORT_EXTRA   extra lines for the EXPORT block, e.g. 'Access_Type = RO;' or
#                  'Attr_Expiration_Time = 0;'; a key set here replaces our default for it
#                  (Protocols, Transports, Access_Type = RW, Squash, SecType)
#   KEEP_RPCBIND   1 = leave an rpcbind we started running until `stop`   default 0
#   READY_TIMEOUT  seconds to wait for ganesha to answer                  default 30
#   LOCK_FILE      start lock                 default /tmp/nfsio-ganesha-start.lock
#
# Output of start (stdout, also written to $GANESHA_STATE/env, which sh can source):
#   GANESHA_PID=  RPCBIND_PID= (empty unless we started rpcbind and it is kept)
#   NFS_PORT=  MNT_PORT=  EXPORT_DIR=  GANESHA_STATE=  GANESHA_LOG=
#   NFS_URL='nfs://127.0.0.1/export?version=3&nfsport=N&mountport=M'
# Values with characters outside [A-Za-z0-9_./:-] are single-quoted.
# Exit status: 0 ok; 1 failed; 2 cannot run here (not root, or ganesha not installed:
# see scripts/install-test-deps.sh); 3 a port was taken meanwhile (pick others, retry).
set -euo pipefail

prog=ganesha.sh
die() { local rc=$1; shift; echo "$prog: $*" >&2; exit "$rc"; }
PATH=$PATH:/usr/sbin:/sbin

# ------------------------------------------------------------------ helpers

# Quote a value for a KEY=VALUE line when it needs it.
kv() {
    local k=$1 v=$2
    if [[ "$v" =~ ^[A-Za-z0-9_./:-]*$ ]]; then
        printf '%s=%s\n' "$k" "$v"
    else
        printf "%s='%s'\n" "$k" "${v//\'/\'\\\'\'}"
    fi
}

# Is some TCP socket bound to local port $1 (any address, v4 or v6)?
port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2" "}' | grep -qF "$hex"
}

# A TCP port nothing is bound to, from the range below the usual ephemeral ports.
pick_port() {
    local p i
    for i in $(seq 1 200); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
        if ! port_in_use "$p" && [ "$p" != "${1:-}" ]; then
            echo "$p"
            return 0
        fi
    done
    die 1 "no free TCP port found"
}

# NULL call to program $1 version 3 straight at port $2: no portmapper involved.
rpc_ping() { rpcinfo -n "$2" -t 127.0.0.1 "$1" 3 >/dev/null 2>&1; }

portmapper_up() { rpcinfo -p 127.0.0.1 >/dev/null 2>&1; }

# Is PID $1 alive (not a zombie) and running the program named $2?
pid_is() {
    local pid=$1 name=$2 comm state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$name" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ] && [ "$state" != X ]
}

# SIGTERM PID $1 (if it still runs program $2), wait up to 5 s, then SIGKILL.
stop_pid() {
    local pid=$1 name=$2 i
    pid_is "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        pid_is "$pid" "$name" || return 0
        sleep 0.05
    done
    echo "$prog: $name ($pid) still running 5 s after SIGTERM, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

# "    KEY = VALUE;" for the EXPORT block, unless EXPORT_EXTRA sets KEY itself (ganesha
# keeps the first of two settings of a key, so EXPORT_EXTRA could not override it).
export_default() {
    if ! grep -qiE "(^|[;{[:space:]])$1[[:space:]]*=" <<<"${EXPORT_EXTRA:-}"; then
        printf '    %s = %s;\n' "$1" "$2"
    fi
}

# Take the start lock on fd 9. Children must not inherit fd 9 (they would hold the
# lock for as long as they live), hence the 9>&- on every background command.
take_lock() {
    exec 9>>"$LOCK_FILE"
    flock -w 300 9 || die 1 "could not take $LOCK_FILE within 300 s"
}

# ------------------------------------------------------------------ start

cmd_start() {
    [ "$(id -u)" = 0 ] || die 2 "must run as root (ganesha's VFS backend needs it)"
    command -v ganesha.nfsd >/dev/null 2>&1 \
        || die 2 "ganesha.nfsd not installed (run scripts/install-test-deps.sh)"
    command -v rpcbind >/dev/null 2>&1 && command -v rpcinfo >/dev/null 2>&1 \
        || die 2 "rpcbind/rpcinfo not installed (run scripts/install-test-deps.sh)"
    local fsal
    fsal=$(compgen -G '/usr/lib/*/ganesha/libfsalvfs.so' | head -n1) \
        || die 2 "nfs-ganesha-vfs not installed (run scripts/install-test-deps.sh)"
    local plugins_dir=${fsal%/*}

    if [ -z "${GANESHA_STATE:-}" ]; then
        GANESHA_STATE=$(mktemp -d /tmp/nfsio-ganesha.XXXXXX)
    fi
    mkdir -p "$GANESHA_STATE"
    GANESHA_STATE=$(cd "$GANESHA_STATE" && pwd -P)
    EXPORT_DIR=${EXPORT_DIR:-$GANESHA_STATE/export}
    mkdir -p "$EXPORT_DIR" "$GANESHA_STATE/recovery"
    EXPORT_DIR=$(cd "$EXPORT_DIR" && pwd -P)
    local pseudo=${PSEUDO:-/export}
    local ready_timeout=${READY_TIMEOUT:-30}
    local conf=$GANESHA_STATE/ganesha.conf log=$GANESHA_STATE/ganesha.log
    local pidfile=$GANESHA_STATE/ganesha.pid envfile=$GANESHA_STATE/env

    # Already running from this state dir? Then just report it.
    if [ -s "$envfile" ] && [ -s "$GANESHA_STATE/ganesha.pid.saved" ] \
        && pid_is "$(cat "$GANESHA_STATE/ganesha.pid.saved")" ganesha.nfsd; then
        echo "$prog: already running from $GANESHA_STATE" >&2
        cat "$envfile"
        return 0
    fi

    NFS_PORT=${NFS_PORT:-$(pick_port)}
    MNT_PORT=${MNT_PORT:-$(pick_port "$NFS_PORT")}
    [ "$NFS_PORT" != "$MNT_PORT" ] || die 1 "NFS_PORT and MNT_PORT must differ"
    local p
    for p in "$NFS_PORT" "$MNT_PORT"; do
        port_in_use "$p" && die 3 "TCP port $p is already in use"
    done

    cat >"$conf" <<EOF
# written by nfsio scripts/ganesha.sh
NFS_CORE_PARAM {
    Protocols = 3;              # NFSv3 only
    Enable_UDP = false;         # TCP only
    Bind_addr = 127.0.0.1;
    NFS_Port = $NFS_PORT;
    MNT_Port = $MNT_PORT;       # fixed, so clients need no portmapper
    Enable_NLM = false;         # no lock manager, no rpc.statd
    Enable_RQUOTA = false;
    mount_path_pseudo = true;   # MOUNT takes the Pseudo path below
    Plugins_Dir = "$plugins_dir";
}
NFSV4 {
    Graceless = true;           # no grace period after start
    RecoveryRoot = "$GANESHA_STATE/recovery";
}
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
    Export_Id = 1;
    Path = "$EXPORT_DIR";
    Pseudo = "$pseudo";
$(export_default Protocols 3)
$(export_default Transports TCP)
$(export_default Access_Type RW)
$(export_default Squash No_Root_Squash)
$(export_default SecType sys)
    ${EXPORT_EXTRA:-}
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
EOF

    rm -f "$pidfile" "$GANESHA_STATE/ganesha.pid.saved" "$GANESHA_STATE/rpcbind.pid" "$envfile"
    : >"$log"

    take_lock
    local rpcbind_pid=""
    if ! portmapper_up; then
        # -f: stay in the foreground, so $! is rpcbind itself. No -w (warm start
        # would bring back stale registrations). No -h: it crashes Debian's 1.2.6.
        if [ "${KEEP_RPCBIND:-0}" = 1 ]; then
            # A kept rpcbind inherits fd 9 and so holds the start lock until `stop`
            # kills it: while a test looks names up in this portmapper, no other
            # ganesha may start (it would take over the registrations) or stop (a
            # stopping ganesha unregisters program 100003 whoever registered it).
            rpcbind -f </dev/null >"$GANESHA_STATE/rpcbind.log" 2>&1 &
        else
            rpcbind -f </dev/null >"$GANESHA_STATE/rpcbind.log" 2>&1 9>&- &
        fi
        rpcbind_pid=$!
        echo "$rpcbind_pid" >"$GANESHA_STATE/rpcbind.pid"
        local i
        for i in $(seq 1 200); do
            portmapper_up && break
            kill -0 "$rpcbind_pid" 2>/dev/null || break
            sleep 0.025
        done
        portmapper_up || {
            stop_pid "$rpcbind_pid" rpcbind
            die 1 "rpcbind did not come up: $(cat "$GANESHA_STATE/rpcbind.log")"
        }
    fi

    # Without -F ganesha daemonizes and writes its PID to -p.
    local t0 t1
    t0=$(date +%s%N)
    ganesha.nfsd -f "$conf" -L "$log" -p "$pidfile" -N NIV_EVENT \
        </dev/null >>"$log" 2>&1 9>&- || true

    local deadline=$(( $(date +%s) + ready_timeout )) why=""
    until [ -s "$pidfile" ] && rpc_ping 100003 "$NFS_PORT" && rpc_ping 100005 "$MNT_PORT"; do
        if grep -qE ':(FATAL|MAJ) :' "$log"; then why="failed to start"; break; fi
        if [ -s "$pidfile" ] && ! pid_is "$(cat "$pidfile")" ganesha.nfsd; then
            why="exited"; break
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then why="not ready after ${ready_timeout}s"; break; fi
        sleep 0.02
    done
    local gpid=""
    [ -s "$pidfile" ] && gpid=$(cat "$pidfile")
    # ganesha removes its pid file when it exits; keep our own copy for `stop`.
    [ -n "$gpid" ] && echo "$gpid" >"$GANESHA_STATE/ganesha.pid.saved"

    # ganesha no longer needs the portmapper once it has registered.
    if [ -n "$rpcbind_pid" ] && { [ "${KEEP_RPCBIND:-0}" != 1 ] || [ -n "$why" ]; }; then
        stop_pid "$rpcbind_pid" rpcbind
        rm -f "$GANESHA_STATE/rpcbind.pid"
        rpcbind_pid=""
    fi
    exec 9>&-    # close, not unlock: a kept rpcbind shares this lock and holds it

    if [ -n "$why" ]; then
        [ -n "$gpid" ] && stop_pid "$gpid" ganesha.nfsd
        rm -f "$GANESHA_STATE/ganesha.pid.saved"
        echo "$prog: --- last lines of $log:" >&2
        tail -n 20 "$log" >&2
        if grep -qiE 'address already in use|cannot bind' "$log"; then
            die 3 "ganesha $why: port $NFS_PORT or $MNT_PORT taken"
        fi
        die 1 "ganesha $why (log: $log)"
    fi
    t1=$(date +%s%N)

    # ganesha only warns about config mistakes and carries on: show them.
    grep -E ':CONFIG :(WARN|CRIT|MAJ)' "$log" | grep -v RADOS | cut -d: -f6- >&2 || true

    local url="nfs://127.0.0.1$pseudo?version=3&nfsport=$NFS_PORT&mountport=$MNT_PORT"
    {
        kv GANESHA_PID "$gpid"
        kv RPCBIND_PID "$rpcbind_pid"
        kv NFS_PORT "$NFS_PORT"
        kv MNT_PORT "$MNT_PORT"
        kv EXPORT_DIR "$EXPORT_DIR"
        kv GANESHA_STATE "$GANESHA_STATE"
        kv GANESHA_LOG "$log"
        kv NFS_URL "$url"
    } >"$envfile"
    echo "$prog: ready in $(( (t1 - t0) / 1000000 )) ms, state in $GANESHA_STATE" >&2
    cat "$envfile"
}

# ------------------------------------------------------------------ stop

cmd_stop() {
    [ -n "${GANESHA_STATE:-}" ] || die 1 "stop: set GANESHA_STATE to the state dir of start"
    [ -d "$GANESHA_STATE" ] || { echo "$prog: no state dir $GANESHA_STATE, nothing to stop" >&2; return 0; }
    local f gpid=""
    for f in ganesha.pid ganesha.pid.saved; do
        if [ -z "$gpid" ] && [ -s "$GANESHA_STATE/$f" ]; then gpid=$(cat "$GANESHA_STATE/$f"); fi
    done
    if [ -s "$GANESHA_STATE/rpcbind.pid" ]; then
        # Our own kept rpcbind holds the start lock (see start): no lock to take.
        local rpid
        rpid=$(cat "$GANESHA_STATE/rpcbind.pid")
        [ -n "$gpid" ] && stop_pid "$gpid" ganesha.nfsd
        stop_pid "$rpid" rpcbind
        rm -f "$GANESHA_STATE/rpcbind.pid"
        echo "$prog: ganesha (${gpid:-none}) and rpcbind ($rpid) stopped" >&2
    elif [ -n "$gpid" ]; then
        # A stopping ganesha unregisters NFS and MOUNT from whatever portmapper
        # answers, so wait while another instance keeps one for a lookup test.
        exec 9>>"$LOCK_FILE"
        flock -w 300 9 || echo "$prog: $LOCK_FILE still held after 300 s, stopping anyway" >&2
        stop_pid "$gpid" ganesha.nfsd
        exec 9>&-
        echo "$prog: ganesha ($gpid) stopped" >&2
    fi
    rm -f "$GANESHA_STATE/ganesha.pid" "$GANESHA_STATE/ganesha.pid.saved"
}

LOCK_FILE=${LOCK_FILE:-/tmp/nfsio-ganesha-start.lock}
case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    *) die 1 "usage: $prog start|stop   (knobs: see the top of this script)" ;;
esac
