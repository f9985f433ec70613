#!/usr/bin/env bash
# tests/ceph/rgw.sh - run a throw-away single-node Ceph cluster (1 mon, 1 memstore
# OSD) with two independent radosgw/beast "sites" on 127.0.0.1 for hylake's test
# suite and benchmarks.
#
#   tests/ceph/rgw.sh start  DIR   start everything under DIR, write DIR/env
#   tests/ceph/rgw.sh stop   DIR   stop the daemons started from DIR (idempotent)
#   tests/ceph/rgw.sh status DIR   exit 0 if every site's radosgw runs and answers HTTP
#
#   tests/ceph/rgw.sh stop-site   DIR b   stop site b's radosgw (SIGTERM, SIGKILL after 5 s)
#   tests/ceph/rgw.sh kill-site   DIR b   SIGKILL site b's radosgw at once
#   tests/ceph/rgw.sh start-site  DIR b   start it again; returns once it answers HTTP
#                                         (bounded by START_TIMEOUT); its data survive
#   tests/ceph/rgw.sh status-site DIR b   exit 0 if site b's radosgw runs and answers HTTP
#   (site "a" works too with these; the cluster itself keeps running)
#
# Sites.  Two radosgw daemons of one zone would share users and buckets, so each
# site is its own zone with its own pools, users and buckets:
#   a  radosgw -n client.rgw   the "default" zone/zonegroup, no realm (what a
#                              plain radosgw uses); pools default.rgw.*, .rgw.root
#   b  radosgw -n client.rgw.b realm, zonegroup and zone "b"; pools b.rgw.*, and
#                              its own configuration root pool b.rgw.root, so site a
#                              never sees realm "b" (see [client.rgw.b] below)
# Credentials of one site are unknown at the other (403 InvalidAccessKeyId); the
# same bucket name may exist at both, with different contents.
#
# Environment (start):
#   RGW_PORT          site a's radosgw HTTP port              (default 7480)
#   RGW_B_PORT        site b's radosgw HTTP port              (default RGW_PORT + 1)
#   MON_PORT          monitor port (msgr2)                    (default 16789)
#   RGW_ACCESS_KEY    site a's S3 access key                  (default hylaketestaccess)
#   RGW_SECRET_KEY    site a's S3 secret key                  (default hylaketestsecret0123...)
#   RGW_B_ACCESS_KEY  site b's S3 access key                  (default hylaketestaccessb)
#   RGW_B_SECRET_KEY  site b's S3 secret key                  (default hylaketestsecretb0123...)
#   RGW_SITE_B        1: start site b too; 0: site a only     (default 1)
#   MEMSTORE_BYTES    capacity of the in-RAM OSD store, bytes (default 6 GiB, shared
#                     by both sites)
#   START_TIMEOUT     upper bound for "start"/"start-site", s (default 120)
#
# Nothing is written outside DIR (no /etc/ceph, /var/lib/ceph, /var/log/ceph,
# /var/run/ceph).  All daemons listen on 127.0.0.1 only.  The OSD keeps all data
# in RAM (memstore), so every "start" creates a brand new, empty cluster; a
# radosgw restarted with stop-site/kill-site + start-site keeps its data (they
# live in the OSD).
#
# After a successful start, DIR/env can be sourced by a shell:
#   RGW_ENDPOINT=http://127.0.0.1:PORT  RGW_ACCESS_KEY=...  RGW_SECRET_KEY=...  RGW_DIR=DIR
#   RGW_B_ENDPOINT=http://127.0.0.1:PORT_B  RGW_B_ACCESS_KEY=...  RGW_B_SECRET_KEY=...
#   (the RGW_B_* lines only when site b was started)
#
# Layout of DIR:
#   ceph.conf keyring monmap   configuration (cluster uses auth "none")
#   mon/ osd/ rgw/ rgw.b/ crash/  daemon data (the OSD's objects live in RAM only)
#   run/                       admin sockets, the daemons' own pid files
#   pids/{mon,osd,rgw,rgw_b}.pid  PIDs recorded by this script (used by "stop")
#   log/                       daemon logs (*.log) and their stdout/stderr (*.out)
#   env                        S3 endpoints + credentials (only while running)

set -euo pipefail
umask 022

PROG=rgw.sh
usage() {
    echo "usage: $0 {start|stop|status} DIR" >&2
    echo "       $0 {stop-site|kill-site|start-site|status-site} DIR {a|b}" >&2
    exit 2
}
[ $# -ge 2 ] || usage
CMD=$1
[ -n "$2" ] || usage
DIR=$(realpath -m -- "$2")
SITE=
case $CMD in
*-site)
    [ $# -eq 3 ] || usage
    SITE=$3
    case $SITE in a | b) ;; *) usage ;; esac
    ;;
*) [ $# -eq 2 ] || usage ;;
esac

RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-16789}
RGW_ACCESS_KEY=${RGW_ACCESS_KEY:-hylaketestaccess}
RGW_SECRET_KEY=${RGW_SECRET_KEY:-hylaketestsecret0123456789abcdefghijklmn}
RGW_B_PORT=${RGW_B_PORT:-}     # default RGW_PORT + 1 (set once RGW_PORT is checked)
RGW_B_ACCESS_KEY=${RGW_B_ACCESS_KEY:-hylaketestaccessb}
RGW_B_SECRET_KEY=${RGW_B_SECRET_KEY:-hylaketestsecretb0123456789abcdefghijklm}
RGW_SITE_B=${RGW_SITE_B:-1}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-6442450944}
START_TIMEOUT=${START_TIMEOUT:-120}
STOP_GRACE=5            # seconds between SIGTERM and SIGKILL

CONF=$DIR/ceph.conf
PIDS=$DIR/pids
LOG=$DIR/log
ENVFILE=$DIR/env

# Never pick up a configuration meant for some other cluster.
unset CEPH_ARGS CEPH_CONF CEPH_KEYRING

# Daemons managed by this script: short name, process name (comm), log files,
# and for radosgw the "-n" argument that tells the two sites' processes apart.
DAEMONS="rgw_b rgw osd mon"       # stop order
comm_of() { case $1 in mon) echo ceph-mon ;; osd) echo ceph-osd ;; rgw | rgw_b) echo radosgw ;; esac; }
logs_of() { case $1 in mon) echo "$LOG/mon.out $LOG/mon.a.log" ;;
                       osd) echo "$LOG/osd.out $LOG/osd.0.log" ;;
                       rgw) echo "$LOG/rgw.out $LOG/client.rgw.log" ;;
                       rgw_b) echo "$LOG/rgw_b.out $LOG/client.rgw.b.log" ;; esac; }
tag_of()  { case $1 in rgw) echo client.rgw ;; rgw_b) echo client.rgw.b ;; *) echo "" ;; esac; }

# Sites: daemon, zone (its pools are ZONE.rgw.*), configuration root pool, admin
# socket, and the prefix of its keys in DIR/env.
site_daemon() { case $1 in a) echo rgw ;; b) echo rgw_b ;; esac; }
site_zone()   { case $1 in a) echo default ;; b) echo b ;; esac; }
site_root()   { case $1 in a) echo .rgw.root ;; b) echo b.rgw.root ;; esac; }
site_asok()   { case $1 in a) echo "$DIR/run/rgw.asok" ;; b) echo "$DIR/run/rgw.b.asok" ;; esac; }
site_env()    { case $1 in a) echo RGW_ ;; b) echo RGW_B_ ;; esac; }

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

# is_ours PID COMM [TAG]: PID is alive (not a zombie), is COMM and was started
# with our ceph.conf (and, if TAG is given, with the argument TAG, e.g.
# "client.rgw.b").  Protects against signalling a recycled PID.  Uses only bash
# builtins: it is called in polling loops.
is_ours() {
    local pid=$1 comm=$2 tag=${3:-} stat c arg conf=0
    local -a args
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    stat=${stat##*) }
    [[ $stat == Z* || $stat == X* ]] && return 1
    read -r c 2>/dev/null <"/proc/$pid/comm" && [ "$c" = "$comm" ] || return 1
    mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
    for arg in "${args[@]}"; do
        [ "$arg" = "$CONF" ] && conf=1
        [ -n "$tag" ] && [ "$arg" = "$tag" ] && tag=
    done
    [ "$conf" = 1 ] && [ -z "$tag" ]
}

# pids_of NAME: PIDs of daemon NAME belonging to DIR.  Uses the recorded PID
# file, plus a scan of /proc for processes started with "-c DIR/ceph.conf" (in
# case the script was killed between spawning a daemon and recording its PID).
pids_of() {
    local name=$1 comm tag pid c p
    local -A seen=()
    comm=$(comm_of "$name")
    tag=$(tag_of "$name")
    if [ -r "$PIDS/$name.pid" ]; then
        read -r pid <"$PIDS/$name.pid" || true
        [ -n "${pid:-}" ] && seen[$pid]=1
    fi
    for p in /proc/[0-9]*; do
        read -r c 2>/dev/null <"$p/comm" && [ "$c" = "$comm" ] && seen[${p#/proc/}]=1
    done
    for pid in "${!seen[@]}"; do
        is_ours "$pid" "$comm" "$tag" && echo "$pid"
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

# any_ours COMM PID...: true if any of the PIDs is still our COMM process, or
# still has threads besides its main one.  A dying multi-threaded daemon's main
# thread turns zombie (and its command line unreadable) first, while the other
# threads still exit and still hold its file descriptors: a SIGKILLed radosgw's
# port was seen to accept connections for up to 13 ms after that.
any_ours() {
    local comm=$1 pid t; shift
    for pid in "$@"; do
        is_ours "$pid" "$comm" && return 0
        for t in "/proc/$pid/task/"*; do
            [ -e "$t" ] && [ "${t##*/}" != "$pid" ] && return 0
        done
    done
    return 1
}

# ours_of COMM PID...: those PIDs that are still our COMM process.
ours_of() {
    local comm=$1 pid; shift
    for pid in "$@"; do is_ours "$pid" "$comm" && echo "$pid"; done
    return 0
}

# stop_daemon NAME [kill]: SIGTERM, wait STOP_GRACE s, SIGKILL, wait until gone.
# With "kill": SIGKILL at once.
stop_daemon() {
    local name=$1 how=${2:-term} comm i
    local -a pids
    comm=$(comm_of "$name")
    mapfile -t pids < <(pids_of "$name")
    if [ ${#pids[@]} -gt 0 ]; then
        if [ "$how" = term ]; then
            kill -TERM "${pids[@]}" 2>/dev/null || true
            for ((i = 0; i < STOP_GRACE * 20; i++)); do
                any_ours "$comm" "${pids[@]}" || break
                sleep 0.05
            done
        fi
        if any_ours "$comm" "${pids[@]}"; then
            [ "$how" = term ] && warn "$comm (${pids[*]}) ignored SIGTERM for ${STOP_GRACE}s, sending SIGKILL"
            # shellcheck disable=SC2046
            kill -KILL $(ours_of "$comm" "${pids[@]}") 2>/dev/null || true
            for ((i = 0; i < 100; i++)); do
                any_ours "$comm" "${pids[@]}" || break
                sleep 0.05
            done
            if any_ours "$comm" "${pids[@]}"; then
                warn "$comm (${pids[*]}) did not exit after SIGKILL"
                return 1
            fi
        fi
        if [ "$how" = term ]; then say "stopped $comm (pid ${pids[*]})"; else say "killed $comm (pid ${pids[*]})"; fi
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
recorded_endpoint() { recorded RGW_ENDPOINT; }

# recorded KEY: value of KEY in DIR/env (empty if none).
recorded() {
    [ -r "$ENVFILE" ] || return 0
    sed -n "s/^$1=//p" "$ENVFILE" | head -n 1
}

# site_ok SITE: SITE's radosgw runs and answers on the endpoint recorded in DIR/env.
site_ok() {
    local ep
    ep=$(recorded "$(site_env "$1")ENDPOINT")
    [ -n "$ep" ] && running "$(site_daemon "$1")" && rgw_answers "$ep"
}

do_status() {
    local ep ep_b
    ep=$(recorded_endpoint)
    ep_b=$(recorded RGW_B_ENDPOINT)
    if [ -n "$ep" ] && site_ok a && { [ -z "$ep_b" ] || site_ok b; }; then
        say "running: $ep${ep_b:+ (site b: $ep_b)}"
        return 0
    fi
    say "not running (${DIR})"
    return 1
}

do_status_site() {
    local site=$1
    if site_ok "$site"; then
        say "site $site running: $(recorded "$(site_env "$site")ENDPOINT")"
        return 0
    fi
    say "site $site not running (${DIR})"
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
STARTING_SITE=          # daemon name while start-site runs
T0=0
DEADLINE=0

# fail MSG [DAEMON]: report, show the relevant logs, stop what we started.
fail() {
    local msg=$1 name=${2:-}
    warn "$CMD${SITE:+ $SITE} FAILED after $(secs $(( $(now_ms) - T0 )))s: $msg"
    # shellcheck disable=SC2046
    [ -n "$name" ] && show_logs $(logs_of "$name")
    exit 1
}

on_exit() {
    local rc=$?
    if [ "$STARTING" = 1 ]; then
        STARTING=0
        [ "$rc" = 0 ] && rc=1
        if running mon || running osd || running rgw || running rgw_b; then
            warn "start did not complete; stopping what was started"
        fi
        do_stop || true
    elif [ -n "$STARTING_SITE" ]; then
        # start-site: stop only that radosgw; the cluster and the other site stay.
        local name=$STARTING_SITE
        STARTING_SITE=
        [ "$rc" = 0 ] && rc=1
        stop_daemon "$name" || true
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

[client.rgw.b]
# Site b: a second radosgw with its own realm, zonegroup and zone "b" (created
# by radosgw-admin -n client.rgw.b at start), hence its own pools b.rgw.* and
# its own users and buckets.  Its realm/zonegroup/zone/period objects live in
# their own root pool: in the shared .rgw.root the first realm ever created
# becomes the cluster's default realm (even without --default), which site a's
# realm-less radosgw and radosgw-admin would then pick up.
rgw realm root pool = b.rgw.root
rgw zonegroup root pool = b.rgw.root
rgw zone root pool = b.rgw.root
rgw period root pool = b.rgw.root
rgw region root pool = b.rgw.root
rgw realm = b
rgw zonegroup = b
rgw zone = b
# One zone: nothing to sync from.
rgw run sync thread = false
rgw data = $DIR/rgw.b
# radosgw-admin -n client.rgw.b is run with --admin-socket '' (the daemon may
# hold this socket).
admin socket = $DIR/run/rgw.b.asok
rgw frontends = beast endpoint=127.0.0.1:$RGW_B_PORT tcp_nodelay=1
rgw thread pool size = 128
EOF
}

# s3_smoke_test EP ACCESS SECRET DAEMON [SUFFIX]: signed S3 round trip with
# curl.  Verifies the credentials and SigV4 checking, and creates the pools rgw
# would otherwise create lazily on the first bucket / object / multipart upload
# (which would stall the first request of a test or benchmark).  Details go to
# LOG/smokeSUFFIX.out.
s3_smoke_test() {
    local ep=$1 ak=$2 sk=$3 name=$4 sfx=${5:-}
    local b="rgwsh-probe-$$" tmp=$LOG/smoke$sfx.body sout=$LOG/smoke$sfx.out upload
    s3() {  # s3 USER:SECRET METHOD PATH [curl args] -> prints HTTP status
        local cred=$1 method=$2 path=$3; shift 3
        curl -sS -o "$tmp" -w '%{http_code}' --max-time 20 \
            --aws-sigv4 "aws:amz:us-east-1:s3" --user "$cred" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
            -X "$method" "$@" "$ep$path" 2>>"$sout" || true
    }
    local cred="$ak:$sk"
    expect() {  # expect WANT GOT WHAT
        [ "$1" = "$2" ] && return 0
        { echo "S3 smoke test: $3: expected HTTP $1, got $2"; cat "$tmp"; echo; } >>"$sout"
        fail "S3 smoke test ($ep): $3: expected HTTP $1, got $2 (see $sout)" "$name"
    }
    expect 403 "$(s3 "$ak:wrong$sk" GET /)" "request with wrong secret"
    grep -q SignatureDoesNotMatch "$tmp" || fail "wrong secret did not give SignatureDoesNotMatch" "$name"
    expect 200 "$(s3 "$cred" PUT "/$b")" "create bucket"
    expect 200 "$(s3 "$cred" PUT "/$b/probe" --data-binary hylake)" "put object"
    expect 200 "$(s3 "$cred" GET "/$b/probe")" "get object"
    [ "$(cat "$tmp")" = hylake ] || fail "S3 smoke test: object content mismatch" "$name"
    # "?uploads=" rather than "?uploads": curl 7.88 signs a valueless query
    # parameter differently from S3 (fixed in later curl versions).
    expect 200 "$(s3 "$cred" POST "/$b/mp?uploads=")" "initiate multipart upload"
    upload=$(sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p' "$tmp")
    [ -n "$upload" ] || fail "S3 smoke test: no UploadId in response" "$name"
    expect 204 "$(s3 "$cred" DELETE "/$b/mp?uploadId=$upload")" "abort multipart upload"
    expect 204 "$(s3 "$cred" DELETE "/$b/probe")" "delete object"
    expect 204 "$(s3 "$cred" DELETE "/$b")" "delete bucket"
}

# cross_site_check EP_A EP_B: each site rejects the other site's credentials
# (the two sites do not share a user namespace).
cross_site_check() {
    local ep_a=$1 ep_b=$2 tmp=$LOG/smoke-x.body code
    rejects() {  # rejects EP ACCESS:SECRET WHAT
        code=$(curl -sS -o "$tmp" -w '%{http_code}' --max-time 20 \
            --aws-sigv4 "aws:amz:us-east-1:s3" --user "$2" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$1/" 2>>"$LOG/smoke-x.out") || true
        if [ "$code" != 403 ] || ! grep -q InvalidAccessKeyId "$tmp"; then
            { echo "$3: expected HTTP 403 InvalidAccessKeyId, got $code"; cat "$tmp"; echo; } >>"$LOG/smoke-x.out"
            fail "sites are not separate: $3 gave HTTP $code, not 403 InvalidAccessKeyId (see $LOG/smoke-x.out)" rgw_b
        fi
    }
    rejects "$ep_b" "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" "site a's credentials at site b"
    rejects "$ep_a" "$RGW_B_ACCESS_KEY:$RGW_B_SECRET_KEY" "site b's credentials at site a"
}

# rgw_admin_b ARGS...: radosgw-admin as site b (its realm/zone and root pool from
# [client.rgw.b]; no admin socket: the daemon may hold that one).
rgw_admin_b() {
    bounded 60 radosgw-admin -c "$CONF" -n client.rgw.b --admin-socket '' \
        --log-file "$LOG/radosgw-admin.b.log" --rados-osd-op-timeout=30 "$@"
}

# setup_site_b: realm, zonegroup and zone "b" (master, the only zone), committed
# as the realm's first period.  Creates the pools b.rgw.root, .log, .control, .meta.
setup_site_b() {
    local ep=$1 out=$LOG/site-b-setup.out
    {
        rgw_admin_b realm create --rgw-realm=b --default &&
        rgw_admin_b zonegroup create --rgw-realm=b --rgw-zonegroup=b --master --default \
            --endpoints="$ep" &&
        rgw_admin_b zone create --rgw-realm=b --rgw-zonegroup=b --rgw-zone=b --master --default \
            --endpoints="$ep" &&
        rgw_admin_b period update --commit --rgw-realm=b
    } >>"$out" 2>&1 || { show_logs "$out" "$LOG/radosgw-admin.b.log"; fail "setting up realm/zonegroup/zone b failed"; }
}

# list_watchers SITE: addresses of the clients watching SITE's control objects
# (radosgw watches ZONE.rgw.control/notify.* and, with a realm, the realm's
# control object in its root pool).
list_watchers() {
    local zone root pool obj
    zone=$(site_zone "$1")
    root=$(site_root "$1")
    for pool in "$zone.rgw.control" "$root"; do
        for obj in $(bounded 10 rados -c "$CONF" -p "$pool" ls 2>/dev/null); do
            [ "$pool" = "$root" ] && [[ $obj != *.control ]] && continue
            bounded 10 rados -c "$CONF" -p "$pool" listwatchers "$obj" 2>/dev/null || true
        done
    done | sed -n 's/^watcher=\([^ ]*\) .*/\1/p' | sort -u
}

# fence_site SITE (SITE's radosgw not running): blocklist the clients that still
# watch SITE's control objects.  A radosgw killed with SIGKILL leaves its watches
# behind until the OSD times them out (osd_client_watch_timeout, 30 s), and
# until then every request of the restarted radosgw that notifies its peers
# (creating a bucket, for one) waits for the dead watcher: measured 26 s.  A
# blocklisted client's watches are dropped at once; the new radosgw has a new
# address (nonce), so the blocklist never affects it.
fence_site() {
    local site=$1 addr i
    local -a addrs
    mapfile -t addrs < <(list_watchers "$site")
    [ ${#addrs[@]} -gt 0 ] || return 0
    for addr in "${addrs[@]}"; do
        ceph_cli osd blocklist add "$addr" 3600 >>"$LOG/setup.out" 2>&1 ||
            warn "could not blocklist $addr (stale watcher of site $site)"
    done
    for ((i = 0; i < 50; i++)); do
        [ -z "$(list_watchers "$site")" ] && break
        sleep 0.1
    done
    say "dropped stale watches of site $site's killed radosgw (blocklisted ${addrs[*]})"
}

do_start() {
    local ep ep_b fsid osd_uuid osd_id t name out busy

    T0=$(now_ms)
    DEADLINE=$((T0 + START_TIMEOUT * 1000))

    # Already running from this DIR (with site b if wanted)?
    ep=$(recorded_endpoint)
    ep_b=$(recorded RGW_B_ENDPOINT)
    site_b_as_wanted() {
        if [ "$RGW_SITE_B" = 1 ]; then [ -n "$ep_b" ] && site_ok b; else [ -z "$ep_b" ]; fi
    }
    if [ -n "$ep" ] && running mon && running osd && running rgw && rgw_answers "$ep" && site_b_as_wanted; then
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
    local ports=("$MON_PORT" "$RGW_PORT")
    if [ "$RGW_SITE_B" = 1 ]; then
        ports+=("$RGW_B_PORT")
        [ "$RGW_B_PORT" != "$RGW_PORT" ] && [ "$RGW_B_PORT" != "$MON_PORT" ] ||
            fail "RGW_B_PORT ($RGW_B_PORT) must differ from RGW_PORT and MON_PORT"
        [ "$RGW_B_ACCESS_KEY" != "$RGW_ACCESS_KEY" ] ||
            fail "RGW_B_ACCESS_KEY must differ from RGW_ACCESS_KEY (the sites must not share users)"
    fi
    for t in "${ports[@]}"; do
        if busy=$(port_busy "$t"); then
            echo "$busy" >&"$ERR_FD"
            fail "port $t is already in use (choose another MON_PORT / RGW_PORT / RGW_B_PORT)"
        fi
    done
    for t in ceph ceph-mon ceph-osd radosgw radosgw-admin rados monmaptool ceph-authtool curl uuidgen; do
        command -v "$t" >/dev/null || fail "$t not found (apt-get install ceph-mon ceph-osd radosgw ceph-common curl uuid-runtime)"
    done

    # Fresh state: memstore keeps no data across restarts, so reuse nothing.
    rm -rf "$CONF" "$DIR/keyring" "$DIR/monmap" "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/rgw.b" \
           "$DIR/crash" "$DIR/run" "$PIDS" "$LOG" "$ENVFILE"
    mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/rgw.b" "$DIR/crash" "$DIR/run" "$PIDS" "$LOG"
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
    # Site b's realm/zone setup and radosgw start overlap site a's radosgw
    # start-up (which mostly waits for the monitor to create its pools).
    ep=$(rgw_endpoint)
    spawn rgw radosgw -c "$CONF" -f -n client.rgw
    if [ "$RGW_SITE_B" = 1 ]; then
        ep_b=http://127.0.0.1:$RGW_B_PORT
        setup_site_b "$ep_b"
        say "realm/zonegroup/zone b set up ($(secs $(( $(now_ms) - T0 )))s)"
        spawn rgw_b radosgw -c "$CONF" -f -n client.rgw.b
    fi
    wait_for "radosgw to answer on $ep" rgw rgw_answers "$ep"
    say "radosgw answers on $ep ($(secs $(( $(now_ms) - T0 )))s)"

    bounded 60 radosgw-admin -c "$CONF" --rados-osd-op-timeout=30 user create \
        --uid=hylake --display-name="hylake tests" \
        --access-key="$RGW_ACCESS_KEY" --secret-key="$RGW_SECRET_KEY" >"$LOG/user.json" 2>>"$LOG/radosgw-admin.out" ||
        { show_logs "$LOG/radosgw-admin.out"; fail "radosgw-admin user create failed" rgw; }

    s3_smoke_test "$ep" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY" rgw

    if [ "$RGW_SITE_B" = 1 ]; then
        wait_for "radosgw (site b) to answer on $ep_b" rgw_b rgw_answers "$ep_b"
        say "radosgw (site b) answers on $ep_b ($(secs $(( $(now_ms) - T0 )))s)"
        rgw_admin_b user create --uid=hylake-b --display-name="hylake tests (site b)" \
            --access-key="$RGW_B_ACCESS_KEY" --secret-key="$RGW_B_SECRET_KEY" >"$LOG/user.b.json" 2>>"$LOG/radosgw-admin.b.out" ||
            { show_logs "$LOG/radosgw-admin.b.out" "$LOG/radosgw-admin.b.log"; fail "radosgw-admin user create (site b) failed" rgw_b; }
        s3_smoke_test "$ep_b" "$RGW_B_ACCESS_KEY" "$RGW_B_SECRET_KEY" rgw_b -b
        cross_site_check "$ep" "$ep_b"
    fi

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
        if [ "$RGW_SITE_B" = 1 ]; then
            printf 'RGW_B_ENDPOINT=%q\n' "$ep_b"
            printf 'RGW_B_ACCESS_KEY=%q\n' "$RGW_B_ACCESS_KEY"
            printf 'RGW_B_SECRET_KEY=%q\n' "$RGW_B_SECRET_KEY"
        fi
    } >"$ENVFILE.tmp"
    mv -f "$ENVFILE.tmp" "$ENVFILE"
    STARTING=0
    say "started in $(secs $(( $(now_ms) - T0 )))s: $ep${ep_b:+ and $ep_b (site b)} (env: $ENVFILE)"
    cat "$ENVFILE"
}

# --- single sites --------------------------------------------------------------

# port_refuses PORT: a connection to 127.0.0.1:PORT is refused.
port_refuses() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port_closed ENDPOINT: wait (5 s at most) until nothing accepts on the
# endpoint's port.  The kernel closes a dead daemon's listening socket a
# little after its last thread is gone from /proc (seen: one kill in 25 left
# the port accepting for a moment), and a stopped site must refuse at once.
wait_port_closed() {
    local port=${1##*:} i
    port=${port%%/*}
    for ((i = 0; i < 500; i++)); do
        port_refuses "$port" && { [ "$i" -gt 0 ] && say "port $port closed $((i * 10)) ms after the radosgw was gone"; return 0; }
        sleep 0.01
    done
    warn "port $port still accepts connections 5 s after the radosgw was gone:"
    port_busy "$port" >&"$ERR_FD" || true
    return 1
}

do_stop_site() {  # do_stop_site SITE term|kill
    local ep
    stop_daemon "$(site_daemon "$1")" "$2" || return 1
    ep=$(recorded "$(site_env "$1")ENDPOINT")
    [ -z "$ep" ] || wait_port_closed "$ep"
}

do_start_site() {
    local site=$1 name ep
    name=$(site_daemon "$site")
    T0=$(now_ms)
    DEADLINE=$((T0 + START_TIMEOUT * 1000))
    ep=$(recorded "$(site_env "$site")ENDPOINT")
    if [ -z "$ep" ]; then
        warn "site $site was not started from $DIR (no $(site_env "$site")ENDPOINT in $ENVFILE)"
        return 1
    fi
    if ! running mon || ! running osd; then
        warn "the cluster in $DIR is not running (use: $0 start $DIR)"
        return 1
    fi
    STARTING_SITE=$name
    if running "$name"; then
        wait_for "radosgw (site $site) to answer on $ep" "$name" rgw_answers "$ep"
        STARTING_SITE=
        say "site $site already running: $ep"
        return 0
    fi
    fence_site "$site"
    rm -f "$(site_asok "$site")"     # left behind by SIGKILL; would block the new one
    spawn "$name" radosgw -c "$CONF" -f -n "$(tag_of "$name")"
    wait_for "radosgw (site $site) to answer on $ep" "$name" rgw_answers "$ep"
    STARTING_SITE=
    say "site $site started in $(secs $(( $(now_ms) - T0 )))s: $ep"
}

# ---------------------------------------------------------------------------

for t in "$RGW_PORT" "$MON_PORT" "$MEMSTORE_BYTES" "$START_TIMEOUT" "${RGW_B_PORT:-0}"; do
    [[ $t =~ ^[0-9]+$ ]] || { warn "not a number: '$t'"; exit 2; }
done
RGW_B_PORT=${RGW_B_PORT:-$((RGW_PORT + 1))}
case $RGW_SITE_B in 0 | 1) ;; *) warn "RGW_SITE_B must be 0 or 1"; exit 2 ;; esac

# lock_dir: serialise start/stop/*-site on the same DIR.
lock_dir() {
    exec 9>"$DIR/.lock"
    flock -w $((START_TIMEOUT + 30)) 9 || { warn "could not lock $DIR/.lock"; exit 1; }
}

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
stop-site | kill-site)
    [ -d "$DIR" ] && lock_dir
    if [ "$CMD" = kill-site ]; then do_stop_site "$SITE" kill; else do_stop_site "$SITE" term; fi
    ;;
start-site)
    [ -d "$DIR" ] || { warn "no such directory: $DIR"; exit 1; }
    lock_dir
    trap on_exit EXIT
    trap 'fail "interrupted"' INT TERM HUP
    do_start_site "$SITE"
    ;;
status-site)
    do_status_site "$SITE"
    ;;
*)
    usage
    ;;
esac
