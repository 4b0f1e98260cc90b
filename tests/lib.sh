# Shared helpers for the integration tests: each test runs the built
# mandrilld in its own temporary directory, stops what it started by PID,
# and judges the run by its log and by SQL on the database it left.
#
# Sourced by tests/test_*.sh; $top_builddir comes from the test harness.

set -u

: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
MANDRILLD=$top_builddir/mandrilld
WORKER=$top_builddir/mandrill-worker
T=$(mktemp -d "${TMPDIR:-/tmp}/mandrill-test.XXXXXX")
DB=$T/state/mandrill.db
LOG=$T/mandrilld.log
PID=
NATS_PID=
NATS_PORT=
EXTRA_PIDS=
FAILS=0
CHECKS=0
MOUNTS=		# file systems a test mounted (small_fs), unmounted at exit

cleanup() {
	for p in $PID $EXTRA_PIDS; do
		# Workers are in their own process groups: stop them by PID.
		for w in $(pgrep -f "^$WORKER\$" -P "$p" 2>/dev/null); do
			kill -KILL "$w" 2>/dev/null
		done
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "$NATS_PID" ] && kill -KILL "$NATS_PID" 2>/dev/null
	for p in ${NODE_PID_1:-} ${NODE_PID_2:-} ${NODE_PID_3:-}; do
		kill -KILL "$p" 2>/dev/null
	done
	for m in $MOUNTS; do
		unmount "$m"
	done
	if [ "$FAILS" -eq 0 ]; then
		rm -rf "$T"
	else
		echo "# kept $T for inspection"
	fi
}
trap cleanup EXIT

note() { echo "# $*"; }

fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}

# check DESCRIPTION ACTUAL EXPECTED
check() {
	CHECKS=$((CHECKS + 1))
	if [ "$2" = "$3" ]; then
		echo "ok - $1"
	else
		fail "$1: got '$2', expected '$3'"
	fi
}

# check_cmd DESCRIPTION COMMAND...: passes when the command succeeds
check_cmd() {
	desc=$1
	shift
	CHECKS=$((CHECKS + 1))
	if "$@"; then
		echo "ok - $desc"
	else
		fail "$desc"
	fi
}

sql() { sqlite3 -batch -noheader "$DB" "$@"; }

# write_conf [SECTION-KEY=VALUE lines appended under their sections]
# Usage: write_conf <<EOF ... EOF, with the test's own sections; the
# base settings below are prepended.
write_conf() {
	{
		cat <<CONF
[mandrill]
state_dir = $T/state
worker_path = $WORKER
log_level = ${LOG_LEVEL:-debug}
CONF
		cat
	} > "$T/mandrill.conf"
}

# start_mandrilld: in the background, log to $LOG
start_mandrilld() {
	"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1 &
	PID=$!
}

# wait_exit SECONDS: wait for mandrilld to exit; sets RC (124 on timeout)
wait_exit() {
	limit=$(($1 * 10))
	i=0
	while kill -0 "$PID" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt "$limit" ]; then
			RC=124
			kill -KILL "$PID" 2>/dev/null
			wait "$PID" 2>/dev/null
			return
		fi
		sleep 0.1
	done
	wait "$PID"
	RC=$?
	sanitizer_check
}

# Built with --enable-sanitizers, the daemons report to their log: any
# report fails the test, even when the daemon survived it.
sanitizer_check() {
	if grep -q -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' \
	    "$LOG" 2>/dev/null; then
		fail "sanitizer report in $LOG:"
		grep -E -A12 'Sanitizer|runtime error:' "$LOG" | head -40
	fi
}

# wait_for PATTERN SECONDS: wait until the log has a line matching PATTERN
wait_for() {
	limit=$(($2 * 10))
	i=0
	until grep -q -- "$1" "$LOG" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -gt "$limit" ] && return 1
		sleep 0.1
	done
	return 0
}

# wait_count PATTERN N SECONDS: wait until N log lines match PATTERN
wait_count() {
	limit=$(($3 * 10))
	i=0
	until [ "$(grep -c -- "$1" "$LOG" 2>/dev/null)" -ge "$2" ]; do
		i=$((i + 1))
		[ "$i" -gt "$limit" ] && return 1
		sleep 0.1
	done
	return 0
}

# ctl ARGS: mandrillctl on the test's configuration
CTL=$top_builddir/mandrillctl
ctl() { "$CTL" -c "$T/mandrill.conf" "$@"; }

# wait_ctl: until mandrilld answers on its control socket (10 s at most)
wait_ctl() {
	i=0
	until ctl status >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -gt 100 ] && return 1
		sleep 0.1
	done
}

# worker_pids: the live workers of mandrilld
worker_pids() { pgrep -P "$PID" 2>/dev/null; }

# The invariant, from both sides: every message the log shows acked has a
# final outcome committed, and no msg_id has two successful restarts.
check_invariant() {
	grep -o 'Done. Acked msg_id=[^ ]*' "$LOG" | sed 's/.*msg_id=//' |
	    sort -u > "$T/acked.txt"
	sql "SELECT msg_id FROM messages WHERE state IN
	    ('restarted','skipped','dead','invalid')" | sort -u > "$T/final.txt"
	check "every acked message has a committed final outcome" \
	    "$(comm -23 "$T/acked.txt" "$T/final.txt" | wc -l)" 0
	check "no msg_id has two successful restarts" \
	    "$(sql "SELECT count(*) FROM (SELECT msg_id FROM restarts
	        WHERE outcome = 'restarted' GROUP BY msg_id
	        HAVING count(*) > 1)")" 0
	# Checked once mandrilld is gone: an attempt still open (outcome NULL)
	# is one whose worker died, like 'lost' before its next delivery
	# records it so; its restart ended with the worker (a command's
	# process group is killed by the supervisor).
	check "no restart of one host overlaps another" \
	    "$(sql "SELECT count(*) FROM restarts a JOIN restarts b
	        ON a.host = b.host AND a.id < b.id
	        WHERE a.outcome IS NOT NULL AND a.outcome != 'lost'
	        AND b.outcome IS NOT NULL AND b.outcome != 'lost'
	        AND b.started < a.finished AND a.started < b.finished")" 0
}

# start_nats: a nats-server with JetStream on 127.0.0.1, its store in
# $T/js.  The first start takes a free port from the server itself
# (-p -1) and keeps it in NATS_PORT, so a restart comes back on the same
# one.  Sets NATS_PID and NATS_URL.  NATS_ARGS, when set, are more
# arguments for the server (-c FILE: a test's authentication or TLS);
# NATS_SCHEME (default nats) is NATS_URL's scheme.
start_nats() {
	if ! command -v nats-server >/dev/null 2>&1; then
		fail "nats-server is not installed (Debian package nats-server)"
		finish
		exit 1
	fi
	mkdir -p "$T/js"
	: >>"$T/nats.log"
	start_line=$(($(wc -l <"$T/nats.log") + 1))
	nats-server ${NATS_ARGS:-} -a 127.0.0.1 -p "${NATS_PORT:--1}" -js \
	    -sd "$T/js" \
	    >>"$T/nats.log" 2>&1 &
	NATS_PID=$!
	i=0
	until tail -n "+$start_line" "$T/nats.log" | grep -q 'Server is ready'; do
		i=$((i + 1))
		if [ "$i" -gt 100 ] || ! kill -0 "$NATS_PID" 2>/dev/null; then
			fail "nats-server did not start:"
			tail -5 "$T/nats.log"
			finish
			exit 1
		fi
		sleep 0.1
	done
	NATS_PORT=$(tail -n "+$start_line" "$T/nats.log" |
	    sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' |
	    head -1)
	NATS_URL=${NATS_SCHEME:-nats}://127.0.0.1:$NATS_PORT
}

# stop_nats: TERM the server by its PID and wait for it.
stop_nats() {
	kill -TERM "$NATS_PID" 2>/dev/null
	wait "$NATS_PID" 2>/dev/null
	NATS_PID=
}

PUBLISH=$top_builddir/mandrill-publish

# publish_hosts N PREFIX: publish N restart requests PREFIX1..PREFIXN.
publish_hosts() {
	seq 1 "$1" | sed "s/^/$2/" | "$PUBLISH" -q -u "$NATS_URL" -f -
}

# nats_conf SOURCE-LINES RESTART-LINES [MANDRILL-LINES]: a config for the
# nats source; URL, FAILRATE and LATENCY override the defaults.
nats_conf() {
	write_conf <<EOF
workers = 2
jobs_per_worker = 32
max_in_flight = 200
busy_timeout = 200ms
${3:-}

[source]
type = nats
url = ${URL:-$NATS_URL}
$1

[restart]
allow = *
sim_failure_rate = ${FAILRATE:-0}
sim_latency = ${LATENCY:-0..5ms}
$2
EOF
}

# final N SECONDS [QUERY]: wait until QUERY (by default: the messages
# with a final state) counts N
FINAL_SQL="SELECT count(*) FROM messages WHERE state IN
    ('restarted','skipped','dead','invalid')"
final() {
	i=0
	while n=$(sql "${3:-$FINAL_SQL}" 2>/dev/null)
	    [ "${n:-0}" -lt "$1" ]
	do
		i=$((i + 1))
		[ "$i" -gt $(($2 * 10)) ] && return 1
		sleep 0.1
	done
}

# stop_mandrilld WHAT: TERM, wait, and check the drain's exit status
stop_mandrilld() {
	kill -TERM "$PID"
	wait_exit 30
	check "$1: TERM drains and exits 0" "$RC" 0
}

# --- Waiting (issue 13): test_waiting.sh and test_waiting_nats.sh ------------

# A small tmpfs on DIR (mode 0750, as state_dir must be); 1 if it cannot
# be mounted (not root, no CAP_SYS_ADMIN), and the caller falls back.
small_fs() {
	mkdir -p "$1"
	if mount -t tmpfs -o "size=$2,mode=0750" tmpfs "$1" 2>"$T/mount.err"
	then
		MOUNTS="$1 $MOUNTS"
		return 0
	fi
	note "cannot mount a tmpfs on $1: $(cat "$T/mount.err")"
	return 1
}

unmount() {
	# A failed run keeps the test's directory: keep the database too.
	[ "$FAILS" -gt 0 ] && cp -a "$1" "$1.saved" 2>/dev/null
	umount "$1" 2>/dev/null || umount -l "$1"
	MOUNTS=$(echo " $MOUNTS " | sed "s| $1 | |")
}

# fill DIR: a file that takes every free block of DIR's file system
fill() {
	dd if=/dev/zero of="$1/fill" bs=64k 2>/dev/null
	sync "$1/fill" 2>/dev/null
}

stop_mounts() {
	for m in $MOUNTS; do
		unmount "$m"
	done
}

# count_log PATTERN: lines of the log matching PATTERN
count_log() { grep -c -- "$1" "$LOG"; }

# between FROM TO TEXT: lines with TEXT after the first line with FROM
# and before the next with TO (fixed strings)
between() {
	awk -v a="$1" -v b="$2" -v p="$3" '
	    !on && index($0, a) { on = 1; next }
	    on && index($0, b) { exit }
	    on && index($0, p) { n++ }
	    END { print n + 0 }' "$LOG"
}

# the figures every case quotes, from the database
figures() {
	note "$1: published $2, restarted $(sql "SELECT count(*) FROM messages
	    WHERE state = 'restarted'"), dead $(sql "SELECT count(*) FROM
	    messages WHERE state = 'dead'"), dead letters $(sql "SELECT count(*)
	    FROM dead_letters"), restart attempts $(sql "SELECT count(*) FROM
	    restarts"), most deliveries of one message $(sql "SELECT
	    max(deliveries) FROM messages")"
}

# no_budget_spent WHAT: the broker's delivery limit was never touched
# (the sim's broker logs a lease that ran out; nats tests ask the server)
no_budget_spent() {
	check "$1: no message delivered twice (deliveries column)" \
	    "$(sql "SELECT count(*) FROM messages WHERE deliveries > 1")" 0
	check "$1: no redelivery in the log" "$(count_log 'delivery=[2-9]')" 0
	if grep -q '^type = sim' "$T/mandrill.conf"; then
		check "$1: no ack deadline passed at the broker" \
		    "$(count_log 'ack deadline of msg_id=.* passed')" 0
	fi
	check "$1: nothing nacked" "$(count_log 'Nacked')" 0
	check "$1: nothing dead" "$(sql "SELECT count(*) FROM messages
	    WHERE state = 'dead'")-$(sql "SELECT count(*) FROM dead_letters")" 0-0
}

# acked_final WHAT N: N acked, each a final outcome in the database (the
# sim's broker ids of a payload_file are not the msg_ids, so
# check_invariant cannot match them), and no msg_id restarted twice
acked_final() {
	check "$1: $2 acked, $2 final in the database" \
	    "$(count_log 'Done. Acked')-$(sql "$FINAL_SQL")" "$2-$2"
	check "$1: no msg_id has two successful restarts" \
	    "$(sql "SELECT count(*) FROM (SELECT msg_id FROM restarts
	        WHERE outcome = 'restarted' GROUP BY msg_id
	        HAVING count(*) > 1)")" 0
}

# overlaps [HOST]: pairs of restarts (of HOST, or of any two hosts) whose
# intervals overlap; restarts still open count as running to now
OVERLAP_SQL="SELECT count(*) FROM restarts a JOIN restarts b ON a.id < b.id
    AND b.started < coalesce(a.finished, '9') AND
    a.started < coalesce(b.finished, '9')"
overlaps() {
	if [ -n "${1:-}" ]; then
		sql "$OVERLAP_SQL AND a.host = '$1' AND b.host = '$1'"
	else
		sql "$OVERLAP_SQL"
	fi
}

# log_volume WHAT FILE BYTES: the log of a failing store, in FILE, BYTES
# long: noted, and judged: the failure said once by each of the two
# workers at most, a held line once a message, and apart from the lease
# extensions (one line each, failing store or not), pulls and holds, 20
# lines at most.  Judged on what an operator sees at the default level:
# the DEBUG lines the tests log are left out.
log_volume() {
	grep -v '^[^ ]* DEBUG ' "$2" >"$2.info"
	set -- "$1" "$2.info" "$3"
	n=$(wc -l <"$2")
	ext=$(grep -c 'Extended deadline' "$2")
	store=$(grep -c -E 'store|Not recorded' "$2")
	note "$1: the log while the store failed: $3 bytes, $n lines: $ext lease extensions, $store about the store, $((n - ext - store)) others"
	grep -E 'ERROR|WARN|store' "$2" | grep -v 'Held msg_id' |
	    sed 's/^/#   /' | head -6
	check "$1: the store's failure said once by each worker, at most" \
	    "$(grep -c 'worker [0-9]*: store: cannot commit' "$2" |
	    awk '{print ($1 >= 1 && $1 <= 2)}')" 1
	check "$1: one held line per message at most, no line per retry" \
	    "$(grep 'Held msg_id=.*(store)' "$2" | sed 's/.*msg_id=//;
	    s/ .*//' | sort | uniq -d | wc -l)" 0
	# Pulls (the pull request still open at the server when the store
	# failed) and holds (once a message, checked above) are per message.
	per_msg=$(grep -c -E 'Pulled msg_id|Held msg_id' "$2")
	check "$1: apart from lease extensions, pulls and holds, 20 lines at most" \
	    "$(test $((n - ext - per_msg)) -le 20 && echo yes)" yes
}

now_iso() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

finish() {
	echo "# $CHECKS checks, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

# --- A three-node JetStream cluster (fleet mode, issue 14) ------------------

FREE_PORTS=$top_builddir/tests/free_ports

# start_node I: cluster node nI (1 to 3) on its ports, its store in
# $T/cjs/nI, routed to the other two; sets NODE_PID_I.
start_node() {
	eval "cport=\$CPORT_$1 rport=\$RPORT_$1"
	mkdir -p "$T/cjs/n$1"
	: >>"$T/node$1.log"
	nats-server -a 127.0.0.1 -p "$cport" -js -sd "$T/cjs/n$1" -n "n$1" \
	    --cluster_name mandrill --cluster "nats://127.0.0.1:$rport" \
	    --routes "nats://127.0.0.1:$RPORT_1,nats://127.0.0.1:$RPORT_2,nats://127.0.0.1:$RPORT_3" \
	    >>"$T/node$1.log" 2>&1 &
	eval "NODE_PID_$1=\$!"
}

# stop_node I [SIGNAL]: stop node nI by its PID (TERM by default)
stop_node() {
	eval "p=\${NODE_PID_$1:-}"
	[ -n "$p" ] || return 0
	kill "-${2:-TERM}" "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	eval "NODE_PID_$1="
}

# leader_lines: how many times the nodes have logged a new metadata leader
leader_lines() {
	cat "$T"/node*.log 2>/dev/null |
	    grep -c -E 'Self is new JetStream cluster metadata leader|JetStream cluster new metadata leader'
}

# start_cluster: three nodes on free ports (kept, so that a node started
# again comes back on its own), ready once they have elected a metadata
# leader; CLUSTER_URL lists the three.  start_cluster again after
# stop_cluster restarts them on their stores.
start_cluster() {
	if ! command -v nats-server >/dev/null 2>&1; then
		fail "nats-server is not installed (Debian package nats-server)"
		finish
		exit 1
	fi
	if [ -z "${CPORT_1:-}" ]; then
		set -- $("$FREE_PORTS" 6)
		CPORT_1=$1 CPORT_2=$2 CPORT_3=$3 RPORT_1=$4 RPORT_2=$5 RPORT_3=$6
	fi
	before=$(leader_lines)
	for n in 1 2 3; do
		start_node "$n"
	done
	CLUSTER_URL=nats://127.0.0.1:$CPORT_1,nats://127.0.0.1:$CPORT_2,nats://127.0.0.1:$CPORT_3
	i=0
	until [ "$(leader_lines)" -gt "$before" ]; do
		i=$((i + 1))
		if [ "$i" -gt 300 ]; then
			fail "the JetStream cluster elected no leader in 30 s:"
			tail -3 "$T"/node*.log
			finish
			exit 1
		fi
		sleep 0.1
	done
}

stop_cluster() {
	for n in 1 2 3; do
		stop_node "$n"
	done
}

# node_of NAME: the node number of server NAME (n1 .. n3)
node_of() { echo "$1" | sed -n 's/^n\([123]\)$/\1/p'; }
