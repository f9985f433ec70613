#!/usr/bin/env bash
# tests/ceph/rgw.sh - run a throw-away single-node Ceph cluster (1 mon, 1 memstore
# OSD, radosgw/beast) on 127.0.0.1 for hylake's test suite and benchmarks.
#
#   tests/ceph/rgw.sh start  DIR   start everything under DIR, write DIR/env
#   tests/ceph/rgw.sh stop   DIR   stop the daemons started from DIR (idempotent)
#   tests/ceph/rgw.sh status DIR   exit 0 if DIR's radosgw runs and answers HTTP, else 1
#
# Environment (start):
#   RGW_PORT        radosgw HTTP port                       (default 7480)
#   MON_PORT        monitor port (msgr2)                    (default 16789)
#   RGW_ACCESS_KEY  S3 access key                           (default hylaketestaccess)
#   RGW_SECRET_KEY  S3 secret key                           (default hylaketestsecret0123...)
#   MEMSTORE_BYTES  capacity of the in-RAM OSD store, bytes (default 6 GiB)
#   START_TIMEOUT   upper bound for "start", seconds        (default 120)
#
# Nothing is written outside DIR (no /etc/ceph, /var/lib/ceph, /var/log/ceph,
# /var/run/ceph).  All daemons listen on 127.0.0.1 only.  The OSD keeps all data
# in RAM (memstore), so every "start" creates a brand new, empty cluster.
#
# After a successful start, DIR/env can be sourced by a shell:
#   RGW_ENDPOINT=http://127.0.0.1:PORT  RGW_ACCESS_KEY=...  RGW_SECRET_KEY=...  RGW_DIR=DIR
#
# Layout of DIR:
#   ceph.conf keyring monmap   configuration (cluster uses auth "none")
#   mon/ osd/ rgw/ crash/      daemon data (the OSD's objects live in RAM only)
#   run/                       admin sockets, the daemons' own pid files
#   pids/{mon,osd,rgw}.pid     PIDs recorded by this script (used by "stop")
#   log/                       daemon logs (*.log) and their stdout/stderr (*.out)
#   env                        S3 endpoint + credentials (only while running)

set -euo pipefail
umask 022

PROG=rgw.sh
usage() {
    echo "usage: $0 {start|stop|status} DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
CMD=$1
[ -n "$2" ] || usage
DIR=$(realpath -m -- "$2")

RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-16789}
RGW_ACCESS_KEY=${RGW_ACCESS_KEY:-hylaketestaccess}
RGW_SECRET_KEY=${RGW_SECRET_KEY:-hylaketestsecret0123456789abcdefghijklmn}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-6442450944}
START_TIMEOUT=${START_TIMEOUT:-120}
STOP_GRACE=5            # seconds between SIGTERM and SIGKILL

CONF=$DIR/ceph.conf
PIDS=$DIR/pids
LOG=$DIR/log
ENVFILE=$DIR/env

# Never pick up a configuration meant for some other cluster.
unset CEPH_ARGS CEPH_CONF CEPH_KEYRING

# Daemons managed by this script: short name, process name (comm), log files.
DAEMONS="rgw osd mon"             # stop order
comm_of() { case $1 in mon) echo ceph-mon ;; osd) echo ceph-osd ;; rgw) echo radosgw ;; esac; }
logs_of() { case $1 in mon) echo "$LOG/mon.out $LOG/mon.a.log" ;;
                       osd) echo "$LOG/osd.out $LOG/osd.0.log" ;;
                       rgw) echo "$LOG/rgw.out $LOG/client.rgw.log" ;; esac; }

# Our messages go to copies of the original stdout/stderr: a signal trap may
# run while some polling function has its output redirected to /dev/null.
exec {OUT_FD}>&1 {ERR_FD}>&2
say()    { echo "$PROG: $*" >&"$OUT_FD"; }
warn()   { echo "$PROG: $*" >&"$ERR_FD"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs()   { local ms=$1; printf '%d.%01d' $((ms / 1000)) $(( (ms % 1000) / 100 )); }

# Print the tail of the given log files (skipping missing/empty ones) to stderr.
show_logs() {
    local f text
    for f in "$@"; do
        text=$(grep -v '^$' "$f" 2>/dev/null | tail -n 30) || true
        [ -n "$text" ] || continue
        echo "---- last 30 lines of $f ----" >&"$ERR_FD"
        echo "$text" >&"$ERR_FD"
    done
}

# ---------------------------------------------------------------------------
# Process tracking
# ---------------------------------------------------------------------------

# is_ours PID COMM: PID is alive (not a zombie), is COMM and was started with
# our ceph.conf.  Protects against signalling a recycled PID.  Uses only bash
# builtins: it is called in polling loops.
is_ours() {
    local pid=$1 comm=$2 stat c arg
    local -a args
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    stat=${stat##*) }
    [[ $stat == Z* || $stat == X* ]] && return 1
    read -r c 2>/dev/null <"/proc/$pid/comm" && [ "$c" = "$comm" ] || return 1
    mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
    for arg in "${args[@]}"; do
        [ "$arg" = "$CONF" ] && return 0
    done
    return 1
}

# pids_of NAME: PIDs of daemon NAME belonging to DIR.  Uses the recorded PID
# file, plus a scan of /proc for processes started with "-c DIR/ceph.conf" (in
# case the script was killed between spawning a daemon and recording its PID).
pids_of() {
    local name=$1 comm pid c p
    local -A seen=()
    comm=$(comm_of "$name")
    if [ -r "$PIDS/$name.pid" ]; then
        read -r pid <"$PIDS/$name.pid" || true
        [ -n "${pid:-}" ] && seen[$pid]=1
    fi
    for p in /proc/[0-9]*; do
        read -r c 2>/dev/null <"$p/comm" && [ "$c" = "$comm" ] && seen[${p#/proc/}]=1
    done
    for pid in "${!seen[@]}"; do
        is_ours "$pid" "$comm" && echo "$pid"
    done
    return 0
}

running() { [ -n "$(pids_of "$1")" ]; }

# spawn NAME CMD...: start a daemon in the foreground mode (-f) in the
# background, detached from our session and from every inherited file
# descriptor (a caller doing out=$(rgw.sh start ...) must not hang on a pipe the
# daemons keep open; our lock fd must not be inherited either).
spawn() {
    local name=$1; shift
    (
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        cd /
        # Not a process-group leader here, so setsid(1) execs without forking
        # and $! stays the daemon's PID.
        exec setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1
    ) &
    echo $! >"$PIDS/$name.pid"
    disown $!      # no "Killed" job notices from bash when it is stopped
}

# any_ours COMM PID...: true if any of the PIDs is still our COMM process.
any_ours() {
    local comm=$1 pid; shift
    for pid in "$@"; do is_ours "$pid" "$comm" && return 0; done
    return 1
}

# stop_daemon NAME: SIGTERM, wait STOP_GRACE s, SIGKILL, wait until gone.
stop_daemon() {
    local name=$1 comm i
    local -a pids
    comm=$(comm_of "$name")
    mapfile -t pids < <(pids_of "$name")
    if [ ${#pids[@]} -gt 0 ]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for ((i = 0; i < STOP_GRACE * 20; i++)); do
            any_ours "$comm" "${pids[@]}" || break
            sleep 0.05
        done
        if any_ours "$comm" "${pids[@]}"; then
            warn "$comm (${pids[*]}) ignored SIGTERM for ${STOP_GRACE}s, sending SIGKILL"
            kill -KILL "${pids[@]}" 2>/dev/null || true
            for ((i = 0; i < 100; i++)); do
                any_ours "$comm" "${pids[@]}" || break
                sleep 0.05
            done
            if any_ours "$comm" "${pids[@]}"; then
                warn "$comm (${pids[*]}) did not exit after SIGKILL"
                return 1
            fi
        fi
        say "stopped $comm (pid ${pids[*]})"
    fi
    rm -f "$PIDS/$name.pid"
}

do_stop() {
    local rc=0 name
    rm -f "$ENVFILE"
    for name in $DAEMONS; do
        stop_daemon "$name" || rc=1
    done
    return $rc
}

# ---------------------------------------------------------------------------
# Health checks
# ---------------------------------------------------------------------------

rgw_endpoint() { echo "http://127.0.0.1:$RGW_PORT"; }

# rgw_answers URL: radosgw returns any HTTP response on URL.
rgw_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1/" 2>/dev/null) || true
    [ -n "$code" ] && [ "$code" != 000 ]
}

# Endpoint recorded in DIR/env by a successful start (empty if none).
recorded_endpoint() {
    [ -r "$ENVFILE" ] || return 0
    sed -n 's/^RGW_ENDPOINT=//p' "$ENVFILE" | head -n 1
}

do_status() {
    local ep
    ep=$(recorded_endpoint)
    if [ -n "$ep" ] && running rgw && rgw_answers "$ep"; then
        say "running: $ep"
        return 0
    fi
    say "not running (${DIR})"
    return 1
}

# port_busy PORT: print (and succeed) if some socket other than a TIME-WAIT
# leftover uses local port PORT.  Not only listeners matter: MON_PORT's default
# (40789) lies in Linux's ephemeral range (32768-60999), so an unrelated
# outgoing connection may hold it, and then the monitor cannot bind.
port_busy() {
    local p=$1 out
    if command -v ss >/dev/null; then
        out=$(ss -Htanp "( sport = :$p )" 2>/dev/null | grep -v '^TIME-WAIT') || true
        [ -n "$out" ] && { echo "$out"; return 0; }
        return 1
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && echo "127.0.0.1:$p accepts connections"
}

# Health checks that are expected on this deliberately minimal cluster and do not
# affect correctness; anything else keeps us waiting (and eventually fails).
#   MGR_DOWN                 no ceph-mgr is installed (also suppressed by the
#                            "mon mgr mkfs grace" setting below)
#   POOL_NO_REDUNDANCY       size-1 pools are intended
#   POOL_APP_NOT_ENABLED     rgw tags its pools itself
#   AUTH_INSECURE_GLOBAL_ID_RECLAIM(_ALLOWED)  irrelevant with auth "none"
#   TOO_FEW_OSDS             one OSD is intended
HARMLESS_CHECKS=(MGR_DOWN POOL_NO_REDUNDANCY POOL_APP_NOT_ENABLED TOO_FEW_OSDS
    AUTH_INSECURE_GLOBAL_ID_RECLAIM AUTH_INSECURE_GLOBAL_ID_RECLAIM_ALLOWED)

# healthy_enough JSON ("ceph health -f json" output)
healthy_enough() {
    local json=$1 check
    case $json in
    *'"status":"HEALTH_OK"'*) return 0 ;;
    *'"status":"HEALTH_WARN"'*) ;;
    *) return 1 ;;
    esac
    while read -r check; do
        [ -n "$check" ] || continue
        [[ " ${HARMLESS_CHECKS[*]} " == *" $check "* ]] || return 1
    done < <(grep -o '"[A-Z0-9_]*":{"severity"' <<<"$json" | cut -d'"' -f2)
}

# ---------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------

STARTING=0
T0=0
DEADLINE=0

# fail MSG [DAEMON]: report, show the relevant logs, stop what we started.
fail() {
    local msg=$1 name=${2:-}
    warn "start FAILED after $(secs $(( $(now_ms) - T0 )))s: $msg"
    # shellcheck disable=SC2046
    [ -n "$name" ] && show_logs $(logs_of "$name")
    exit 1
}

on_exit() {
    local rc=$?
    if [ "$STARTING" = 1 ]; then
        STARTING=0
        [ "$rc" = 0 ] && rc=1
        if running mon || running osd || running rgw; then
            warn "start did not complete; stopping what was started"
        fi
        do_stop || true
    fi
    exit "$rc"
}

remaining() { echo $(( (DEADLINE - $(now_ms)) / 1000 )); }
check_deadline() {
    [ "$(now_ms)" -lt "$DEADLINE" ] || fail "timed out (START_TIMEOUT=${START_TIMEOUT}s) waiting for $1" "${2:-}"
}
# Run a command with a timeout that never exceeds the start deadline.
bounded() {
    local t=$1; shift
    local r; r=$(remaining)
    [ "$r" -lt "$t" ] && t=$r
    [ "$t" -ge 1 ] || t=1
    timeout -k 2 "$t" "$@"
}
ceph_cli() { bounded 15 ceph -c "$CONF" --connect-timeout 10 "$@"; }

# wait_for WHAT DAEMON CMD...: poll CMD until it succeeds; fail if DAEMON dies or
# the start deadline passes.
wait_for() {
    local what=$1 name=$2; shift 2
    while ! "$@" >/dev/null 2>&1; do
        running "$name" || fail "$(comm_of "$name") exited while waiting for $what" "$name"
        check_deadline "$what" "$name"
        sleep 0.2
    done
}

write_conf() {
    local fsid=$1
    cat >"$CONF" <<EOF
# Generated by tests/ceph/rgw.sh - single-node throw-away cluster, do not edit.
[global]
fsid = $fsid

# --- network: one monitor on a fixed, non-default port; 127.0.0.1 only -----
# msgr2 only (no legacy v1 port): one listening port per daemon role.
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
ms bind ipv6 = false
ms bind msgr1 = false
# If a port is taken, retry briefly (default 3 x 5 s), then exit.
ms bind retry count = 5
ms bind retry delay = 1
# All connections in plain "crc" mode.  Essential: with the default
# ("secure crc" for mon client connections) radosgw cannot authenticate to the
# monitor under auth "none" ("get_initial_auth_request returned -13") and keeps
# retrying until "client mount timeout" (300 s by default), then exits.  The
# ceph CLI happens to work without it.
ms mon client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc

# --- no cephx: nothing to protect, and no keys to distribute ---------------
auth cluster required = none
auth service required = none
auth client required = none

# --- keep every file under $DIR --------------------------------------------
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
pid file = $DIR/run/\$name.pid
log file = $LOG/\$name.log
mon cluster log file = $LOG/ceph.log
log to stderr = false

# --- single replica ----------------------------------------------------------
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg num = 8
osd pool default pgp num = 8
# The pg autoscaler is a ceph-mgr module (and there is no mgr).
osd pool default pg autoscale mode = off
# Replicas may share a host (there is only one OSD anyway).
osd crush chooseleaf type = 0
mon allow pool delete = true

# Clients (ceph CLI, radosgw-admin, radosgw) give up after 30 s instead of
# 300 s if they cannot reach/authenticate to the monitor.
client mount timeout = 30

[mon]
mon data = $DIR/mon
admin socket = $DIR/run/mon.asok
# Commit cluster map changes every 50 ms instead of every second.  Each pool
# radosgw creates (it creates 5 on startup and more on first bucket/object/
# multipart) needs several map updates; this cuts radosgw startup from ~8 s to
# ~1 s and the first-bucket/first-object stall accordingly.
paxos propose interval = 0.05
# Health: no ceph-mgr is installed.  Without this, MGR_DOWN ("no active mgr")
# turns the cluster HEALTH_WARN 120 s after creation.
mon mgr mkfs grace = 315360000
# Size-1 pools are intended (POOL_NO_REDUNDANCY).
mon warn on pool no redundancy = false
# auth is "none": global_id reclaim warnings are meaningless.
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
# Test machines often have fairly full disks; the mon store is tiny.  Do not
# warn at 30% free, and do not shut the monitor down at 5% free.
mon data avail warn = 2
mon data avail crit = 1

[osd]
osd data = $DIR/osd
admin socket = $DIR/run/osd.asok
# Objects live in RAM.  The "device" size caps what the tests can store
# (largest objects plus overwritten data not yet garbage-collected by rgw).
# Note: the OSD's RSS is about twice the stored data (measured on 16.2.15:
# each newly written object keeps ~2x its size in buffers), so 6 GiB of data
# may need ~12 GiB of RAM.
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
# On SIGTERM exit at once (default in pacific, set explicitly because it
# matters): otherwise memstore serialises its whole content to osd/ on exit.
osd fast shutdown = true
# CRUSH weight is normally the device size in TiB (~0.006 for 6 GiB).
osd crush initial weight = 1
# Small footprint on a 2-core box: fewer op shards/threads (default 5x1 or
# 8x2 depending on the device type).
osd op num shards = 2
osd op num threads per shard = 2
# Caps cache autotuning (bluestore); memstore data is accounted separately.
osd memory target = 1073741824

[client]
# The ceph CLI and radosgw-admin need no admin socket (default would be in
# /var/run/ceph).
admin socket =

# --- radosgw (in [client] so that radosgw-admin sees the same settings) -----
rgw data = $DIR/rgw
# Path-style addressing (http://127.0.0.1:PORT/bucket/key) is used by hylake:
# requests whose Host is not "localhost" or "*.localhost" are path-style;
# bucket.localhost would also work virtual-host style.
rgw dns name = localhost
# Only the S3 API (plus admin); no swift/sts/iam/notifications.
rgw enable apis = s3, admin
# Accept any LocationConstraint in CreateBucket (boto3 may send one).
rgw relaxed region enforcement = true
# Bucket listing: the defaults are fine (11 index shards; measured ~8 ms per
# 1000-key ListObjectsV2 page server-side for a 10,000-object bucket with or
# without a delimiter, same as with 1 shard).  What must not happen is a
# dynamic reshard (which blocks writes) in the middle of a test or benchmark.
rgw dynamic resharding = false
# Up to 1000 keys per ListObjectsV2 page (the S3 maximum; default).
rgw max listing results = 1000
# Deleted/overwritten object data lives in RAM (memstore): reclaim it after
# 1 minute instead of 2 hours, so repeated large uploads do not fill the store.
rgw gc obj min wait = 60
rgw gc processor period = 60
# Not needed.
rgw enable usage log = false
rgw enable ops log = false
rgw enable quota threads = false
# Lifecycle threads are unused, and they make radosgw take 5 s to exit on
# SIGTERM (they sleep 5 s while retrying their shard locks).
rgw enable lc threads = false
# Fail instead of hanging 300 s if radosgw cannot initialise.
rgw init timeout = 60

[client.rgw]
admin socket = $DIR/run/rgw.asok
# beast on 127.0.0.1 only.  tcp_nodelay=1 is essential: without it small
# responses on keep-alive connections wait for delayed ACKs (~40 ms per GET).
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
# beast worker threads (default 512 - far more than 2 cores need).
rgw thread pool size = 128
EOF
}

# s3_smoke_test: signed S3 round trip with curl.  Verifies the credentials and
# SigV4 checking, and creates the pools rgw would otherwise create lazily on
# the first bucket / object / multipart upload (which would stall the first
# request of a test or benchmark).
s3_smoke_test() {
    local ep=$1 b="rgwsh-probe-$$" tmp=$LOG/smoke.body upload
    s3() {  # s3 USER:SECRET METHOD PATH [curl args] -> prints HTTP status
        local cred=$1 method=$2 path=$3; shift 3
        curl -sS -o "$tmp" -w '%{http_code}' --max-time 20 \
            --aws-sigv4 "aws:amz:us-east-1:s3" --user "$cred" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
            -X "$method" "$@" "$ep$path" 2>>"$LOG/smoke.out" || true
    }
    local cred="$RGW_ACCESS_KEY:$RGW_SECRET_KEY"
    expect() {  # expect WANT GOT WHAT
        [ "$1" = "$2" ] && return 0
        { echo "S3 smoke test: $3: expected HTTP $1, got $2"; cat "$tmp"; echo; } >>"$LOG/smoke.out"
        fail "S3 smoke test: $3: expected HTTP $1, got $2 (see $LOG/smoke.out)" rgw
    }
    expect 403 "$(s3 "$RGW_ACCESS_KEY:wrong$RGW_SECRET_KEY" GET /)" "request with wrong secret"
    grep -q SignatureDoesNotMatch "$tmp" || fail "wrong secret did not give SignatureDoesNotMatch" rgw
    expect 200 "$(s3 "$cred" PUT "/$b")" "create bucket"
    expect 200 "$(s3 "$cred" PUT "/$b/probe" --data-binary hylake)" "put object"
    expect 200 "$(s3 "$cred" GET "/$b/probe")" "get object"
    [ "$(cat "$tmp")" = hylake ] || fail "S3 smoke test: object content mismatch" rgw
    # "?uploads=" rather than "?uploads": curl 7.88 signs a valueless query
    # parameter differently from S3 (fixed in later curl versions).
    expect 200 "$(s3 "$cred" POST "/$b/mp?uploads=")" "initiate multipart upload"
    upload=$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$tmp")
    [ -n "$upload" ] || fail "S3 smoke test: no UploadId in response" rgw
    expect 204 "$(s3 "$cred" DELETE "/$b/mp?uploadId=$upload")" "abort multipart upload"
    expect 204 "$(s3 "$cred" DELETE "/$b/probe")" "delete object"
    expect 204 "$(s3 "$cred" DELETE "/$b")" "delete bucket"
}

do_start() {
    local ep fsid osd_uuid osd_id t name out busy

    T0=$(now_ms)
    DEADLINE=$((T0 + START_TIMEOUT * 1000))

    # Already running from this DIR?
    ep=$(recorded_endpoint)
    if [ -n "$ep" ] && running mon && running osd && running rgw && rgw_answers "$ep"; then
        say "already running from $DIR: $ep"
        cat "$ENVFILE"
        return 0
    fi
    for name in $DAEMONS; do
        if running "$name"; then
            say "cluster in $DIR is only partly running (crashed daemon or interrupted start); stopping it and starting afresh"
            do_stop
            break
        fi
    done

    STARTING=1
    for t in "$MON_PORT" "$RGW_PORT"; do
        if busy=$(port_busy "$t"); then
            echo "$busy" >&"$ERR_FD"
            fail "port $t is already in use (choose another MON_PORT / RGW_PORT)"
        fi
    done
    for t in ceph ceph-mon ceph-osd radosgw radosgw-admin rados monmaptool ceph-authtool curl uuidgen; do
        command -v "$t" >/dev/null || fail "$t not found (apt-get install ceph-mon ceph-osd radosgw ceph-common curl uuid-runtime)"
    done

    # Fresh state: memstore keeps no data across restarts, so reuse nothing.
    rm -rf "$CONF" "$DIR/keyring" "$DIR/monmap" "$DIR/mon" "$DIR/osd" "$DIR/rgw" \
           "$DIR/crash" "$DIR/run" "$PIDS" "$LOG" "$ENVFILE"
    mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/crash" "$DIR/run" "$PIDS" "$LOG"
    if [ ${#DIR} -gt 90 ]; then
        warn "warning: DIR is long; admin socket paths may exceed the 107-byte limit"
    fi

    fsid=$(uuidgen)
    write_conf "$fsid"

    # --- monitor -----------------------------------------------------------
    out=$LOG/setup.out
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >>"$out" 2>&1 ||
        { show_logs "$out"; fail "ceph-authtool failed"; }
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >>"$out" 2>&1 ||
        { show_logs "$out"; fail "monmaptool failed"; }
    bounded 30 ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >>"$LOG/mon.out" 2>&1 ||
        fail "ceph-mon --mkfs failed" mon
    spawn mon ceph-mon -c "$CONF" -f -i a
    wait_for "the monitor to form a quorum" mon ceph_cli quorum_status
    say "mon up ($(secs $(( $(now_ms) - T0 )))s)"

    # --- OSD ---------------------------------------------------------------
    osd_uuid=$(uuidgen)
    osd_id=$(ceph_cli osd new "$osd_uuid" 2>>"$out") || { show_logs "$out"; fail "ceph osd new failed" mon; }
    [ "$osd_id" = 0 ] || fail "unexpected OSD id '$osd_id' (expected 0)" mon
    bounded 30 ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$LOG/osd.out" 2>&1 ||
        fail "ceph-osd --mkfs failed" osd
    spawn osd ceph-osd -c "$CONF" -f -i 0
    osd_up_in() {
        local s; s=$(ceph_cli osd stat -f json 2>/dev/null) || return 1
        [[ $s == *'"num_up_osds":1,'* && $s == *'"num_in_osds":1,'* ]]
    }
    wait_for "osd.0 to be up and in" osd osd_up_in
    say "osd.0 up+in ($(secs $(( $(now_ms) - T0 )))s)"

    # "Healthy enough": HEALTH_OK, or HEALTH_WARN made only of HARMLESS_CHECKS,
    # with osd.0 up and in.  There are no pools (so no PGs) yet: radosgw
    # creates them; all_pgs_active below checks their PGs.
    cluster_healthy() {
        local h; h=$(ceph_cli health -f json 2>/dev/null) || return 1
        healthy_enough "$h" && osd_up_in
    }
    wait_for "HEALTH_OK" mon cluster_healthy
    say "cluster healthy ($(secs $(( $(now_ms) - T0 )))s)"

    # --- radosgw -----------------------------------------------------------
    ep=$(rgw_endpoint)
    spawn rgw radosgw -c "$CONF" -f -n client.rgw
    wait_for "radosgw to answer on $ep" rgw rgw_answers "$ep"
    say "radosgw answers on $ep ($(secs $(( $(now_ms) - T0 )))s)"

    bounded 60 radosgw-admin -c "$CONF" --rados-osd-op-timeout=30 user create \
        --uid=hylake --display-name="hylake tests" \
        --access-key="$RGW_ACCESS_KEY" --secret-key="$RGW_SECRET_KEY" >"$LOG/user.json" 2>>"$LOG/radosgw-admin.out" ||
        { show_logs "$LOG/radosgw-admin.out"; fail "radosgw-admin user create failed" rgw; }

    s3_smoke_test "$ep"

    # Every PG of every pool active.  PG states are normally reported by
    # ceph-mgr ("ceph -s" shows "0 pools, 0 pgs" without one), so ask the OSD
    # directly: listing a pool visits all its PGs and needs each one active.
    all_pgs_active() {
        local pools pool
        pools=$(bounded 10 rados -c "$CONF" lspools) || return 1
        [ -n "$pools" ] || return 1
        for pool in $pools; do
            bounded 10 rados -c "$CONF" --rados-osd-op-timeout=5 -p "$pool" ls >/dev/null || return 1
        done
    }
    wait_for "all placement groups to become active" osd all_pgs_active

    {
        printf 'RGW_ENDPOINT=%q\n' "$ep"
        printf 'RGW_ACCESS_KEY=%q\n' "$RGW_ACCESS_KEY"
        printf 'RGW_SECRET_KEY=%q\n' "$RGW_SECRET_KEY"
        printf 'RGW_DIR=%q\n' "$DIR"
    } >"$ENVFILE.tmp"
    mv -f "$ENVFILE.tmp" "$ENVFILE"
    STARTING=0
    say "started in $(secs $(( $(now_ms) - T0 )))s: $ep (env: $ENVFILE)"
    cat "$ENVFILE"
}

# ---------------------------------------------------------------------------

for t in "$RGW_PORT" "$MON_PORT" "$MEMSTORE_BYTES" "$START_TIMEOUT"; do
    [[ $t =~ ^[0-9]+$ ]] || { warn "not a number: '$t'"; exit 2; }
done

case $CMD in
stop)
    # Also works if DIR was deleted under running daemons (found via /proc).
    if [ -d "$DIR" ]; then
        exec 9>"$DIR/.lock"
        flock -w $((START_TIMEOUT + 30)) 9 || { warn "could not lock $DIR/.lock"; exit 1; }
    fi
    do_stop
    ;;
start)
    mkdir -p "$DIR"
    # Serialise start/stop on the same DIR.
    exec 9>"$DIR/.lock"
    flock -w $((START_TIMEOUT + 30)) 9 || { warn "could not lock $DIR/.lock"; exit 1; }
    trap on_exit EXIT
    trap 'fail "interrupted"' INT TERM HUP
    do_start
    ;;
status)
    do_status
    ;;
*)
    usage
    ;;
esac
