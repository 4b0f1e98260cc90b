#!/bin/sh
# Issue 14, fleet mode: three mandrilld sharing one durable consumer on a
# three-node JetStream cluster (started here on free loopback ports and
# stopped by PID), with [fleet] coordination = nats.  Each case has its
# own stream, consumer and buckets.  The restart command logs each start
# and end (runs.CASE); each instance keeps its own database, and the
# checks read the three merged: overlaps are judged on the attempts'
# recorded intervals, which enclose the command's run.
. "$(dirname "$0")/lib.sh"

TAIL=$top_builddir/tests/nats_tail

cat >"$T/restart.sh" <<'EOF'
#!/bin/sh
# restart.sh RUNS SECONDS HOST
echo "start $3 $(date +%s.%N)" >>"$1"
sleep "$2"
echo "end $3 $(date +%s.%N)" >>"$1"
EOF
chmod +x "$T/restart.sh"

# fleet_conf CASE RESTART-LINES [FLEET-LINES]: i1..i3's configurations;
# ACK_WAIT, LEASE and RUN (the command's seconds) override the defaults,
# SRC adds [source] lines,
# and COORD=none runs the cases without coordination (to see each check
# fail, and for the figures of before)
fleet_conf() {
	mkdir -p "$T/$1"
	for i in 1 2 3; do
		cat >"$T/$1/i$i.conf" <<EOF
[mandrill]
state_dir = $T/$1/i$i
worker_path = $WORKER
log_level = debug
workers = 2
jobs_per_worker = 8
max_in_flight = 64
busy_timeout = 1s
control_socket = $T/$1/i$i.sock

[source]
type = nats
url = $CLUSTER_URL
stream = $1
subject = $1.restart
durable = $1
replicas = 3
ack_wait = ${ACK_WAIT:-5s}
${SRC:-}

[restart]
mode = command
command = $T/restart.sh $T/runs.$1 ${RUN:-0.2} {host}
allow = *
backoff_min = 200ms
backoff_max = 1s
$2

[fleet]
coordination = ${COORD:-nats}
instance = i$i
bucket = $1
lease = ${LEASE:-5s}
${3:-}
EOF
	done
	: >"$T/runs.$1"
}

# start_fleet CASE: i1 first (it makes the stream, the consumer and the
# buckets), then i2 and i3; FPID_1..3
start_fleet() {
	for inst in 1 2 3; do
		"$MANDRILLD" -f -c "$T/$1/i$inst.conf" >"$T/$1/i$inst.log" 2>&1 &
		eval "FPID_$inst=\$!"
		EXTRA_PIDS="$EXTRA_PIDS $!"
		LOG=$T/$1/i$inst.log
		wait_for 'worker 2 ready' 20 ||
		    fail "$1: instance i$inst did not start: $(tail -2 "$LOG")"
	done
}

# stop_fleet CASE: TERM each, wait; each drains and exits 0
stop_fleet() {
	for i in 1 2 3; do
		eval "p=\${FPID_$i:-}"
		[ -n "$p" ] || continue
		kill -CONT "$p" 2>/dev/null
		kill -TERM "$p" 2>/dev/null
	done
	for k in 1 2 3; do
		eval "PID=\$FPID_$k"
		[ -n "$PID" ] || continue	# killed by the case
		LOG=$T/$1/i$k.log
		wait_exit 30
		check "$1: instance i$k drains and exits 0" "$RC" 0
	done
	PID=
}

pub() {
	c=$1
	shift
	"$PUBLISH" -q -u "$CLUSTER_URL" -s "$c.restart" "$@" ||
	    fail "mandrill-publish to $c.restart failed"
}

# consumer CASE: the server's view of CASE's consumer
consumer() { "$TAIL" -i "$CLUSTER_URL" "$1" "$1" 2>/dev/null; }

# wait_acked CASE N SECONDS: until N deliveries were made and none is
# pending or unacked
wait_acked() {
	i=0
	while :; do
		set -- "$1" "$2" "$3" $(consumer "$1")
		[ "${5:-0}" -ge "$2" ] && [ "${7:-1}" = 0 ] && [ "${9:-1}" = 0 ] &&
		    return 0
		i=$((i + 1))
		[ "$i" -gt $(($3 * 10)) ] && return 1
		sleep 0.1
		set -- "$1" "$2" "$3"
	done
}

# fsql CASE SQL: SQL over the three databases, restarts merged as r
fsql() {
	sqlite3 -batch -noheader "$T/$1/i1/mandrill.db" "
	    ATTACH '$T/$1/i2/mandrill.db' AS b;
	    ATTACH '$T/$1/i3/mandrill.db' AS c;
	    CREATE TEMP VIEW r AS
	        SELECT 1 AS i, id, host, msg_id, started, finished, outcome
	        FROM main.restarts
	        UNION ALL SELECT 2, id, host, msg_id, started, finished, outcome
	        FROM b.restarts
	        UNION ALL SELECT 3, id, host, msg_id, started, finished, outcome
	        FROM c.restarts;
	    $2"
}

# overlapping CASE: pairs of attempts on one host, in any two databases,
# whose recorded intervals overlap (an open one runs to now)
overlapping() {
	fsql "$1" "SELECT count(*) FROM r a JOIN r b ON a.host = b.host
	    AND (a.i, a.id) != (b.i, b.id) AND a.started <= b.started
	    AND b.started < coalesce(a.finished, '9')
	    AND NOT (a.started = b.started AND (a.i, a.id) > (b.i, b.id))"
}

# twice CASE: hosts restarted successfully more than once, fleet-wide
twice() {
	fsql "$1" "SELECT count(*) FROM (SELECT host FROM r
	    WHERE outcome = 'restarted' GROUP BY host HAVING count(*) > 1)"
}

# runs CASE: "starts hosts-started-twice most-running-at-once" from the
# command's own log
runs() {
	sort -k3,3n "$T/runs.$1" | awk '
	    $1 == "start" { n[$2]++; run++; if (run > mx) mx = run; starts++ }
	    $1 == "end" { run-- }
	    END { t = 0; for (h in n) if (n[h] > 1) t++
	        print starts + 0, t + 0, mx + 0 }'
}

# started_between CASE FROM TO: command starts with FROM <= time < TO
started_between() {
	awk -v a="$2" -v b="$3" '$1 == "start" && $3 >= a && $3 < b' \
	    "$T/runs.$1" | wc -l
}

seqhosts() { seq "$2" "$3" | sed "s/^/$1/"; }

start_cluster
note "cluster: $CLUSTER_URL"

# 1. The same hosts requested several times at once, min_interval: each
# host runs once, no two runs overlap.
# Every outcome is also an event on events_subject, read here by
# mandrill-publish --events as an operator would.
SRC="events_subject = once.events" fleet_conf once "min_interval = 1h"
start_fleet once
"$PUBLISH" --events -q -u "$CLUSTER_URL" -s once.events -n 24 -t 60 \
    >"$T/once.events" 2>"$T/once.events.err" &
READER=$!
sleep 0.5
for r in 1 2 3; do
	seqhosts h 1 8 | pub once -f -
done
wait_acked once 24 40 || fail "once: not all 24 requests acked: $(consumer once)"
check "once: 8 hosts x 3 requests: 8 runs, none twice" "$(runs once | cut -d' ' -f1-2)" "8 0"
check "once: no two attempts of a host overlap" "$(overlapping once)" 0
check "once: the copies were skipped, fleet-wide" \
    "$(fsql once "SELECT count(*) FROM r WHERE outcome = 'restarted'")" 8
wait "$READER"
check "once: mandrill-publish --events read 24 events and exited 0" \
    "$?-$(wc -l <"$T/once.events")" 0-24
check "once: 8 events say restarted, 16 skipped or duplicate" \
    "$(grep -c '"outcome":"restarted"' "$T/once.events")-$(grep -c -E '"outcome":"(skipped|duplicate)"' "$T/once.events")" 8-16
check "once: each event names its instance, host, msg_id, attempt and times" \
    "$(grep -c -E '^\{"instance":"i[123]","host":"h[1-8]","msg_id":"[^"]+","attempt":[0-9]+,"outcome":"[a-z-]+","pulled":"[0-9T:.Z-]+","at":"[0-9T:.Z-]+","duration_ms":[0-9]+,"error":' "$T/once.events")" 24
stop_fleet once

# 2. max_concurrent = 2: never more than 2 running in the fleet; and
# max_concurrent_per_group = 1 with groups by the host name's rack.
RUN=0.5 fleet_conf concurrent "max_concurrent = 2"
start_fleet concurrent
seqhosts c 1 12 | pub concurrent -f -
wait_acked concurrent 12 60 || fail "concurrent: not all acked: $(consumer concurrent)"
set -- $(runs concurrent)
check "concurrent: 12 hosts, 12 runs" "$1-$2" "12-0"
check "concurrent: at most 2 running at once, fleet-wide" "$3" 2
stop_fleet concurrent
RUN=0.4 fleet_conf group "group = ^(rack[0-9]+)-
max_concurrent_per_group = 1"
start_fleet group
{ seqhosts rack1-h 1 4; seqhosts rack2-h 1 4; } | pub group -f -
wait_acked group 8 60 || fail "group: not all acked: $(consumer group)"
most_in_rack() {
	grep "rack$1-" "$T/runs.group" | sort -k3,3n | awk '
	    $1 == "start" { run++; if (run > mx) mx = run }
	    $1 == "end" { run-- } END { print mx + 0 }'
}
check "group: 8 runs, at most 1 running at once in each rack, fleet-wide" \
    "$(runs group | cut -d' ' -f1)-$(most_in_rack 1)-$(most_in_rack 2)" 8-1-1
check "group: the two racks ran side by side" "$(runs group | cut -d' ' -f3)" 2
stop_fleet group

# 3. A pause on one instance holds every instance; a resume on another
# lets everything go, each once.
fleet_conf pause ""
start_fleet pause
"$CTL" -c "$T/pause/i1.conf" pause --reason "fleet test" >/dev/null ||
    fail "pause: mandrillctl pause on i1 failed"
LOG=$T/pause/i2.log
wait_for 'paused: fleet test' 10 || fail "pause: i2 did not hear of i1's pause"
seqhosts p 1 6 | pub pause -f -
sleep 3
check "pause: nothing restarted anywhere while paused" "$(runs pause | cut -d' ' -f1)" 0
"$CTL" -c "$T/pause/i3.conf" resume >/dev/null ||
    fail "pause: mandrillctl resume on i3 failed"
wait_acked pause 6 30 || fail "pause: not all acked after resume: $(consumer pause)"
check "pause: after the resume (on i3), 6 runs, none twice" "$(runs pause | cut -d' ' -f1-2)" "6 0"
stop_fleet pause
# An instance that starts paused on its own (state_dir/paused) while the
# fleet is not: its pause is not dropped, it becomes the fleet's.
echo "left from before" >"$T/pause/i2/paused"
start_fleet pause
LOG=$T/pause/i3.log
wait_for 'paused: left from before' 10 ||
    fail "pause: i3 did not take i2's pause from its state_dir"
pub pause p7
sleep 2
check "pause: nothing restarted while i2's old pause holds the fleet" \
    "$(runs pause | cut -d' ' -f1)" 6
"$CTL" -c "$T/pause/i1.conf" resume >/dev/null ||
    fail "pause: mandrillctl resume on i1 failed"
wait_acked pause 7 30 || fail "pause: p7 not acked after the resume: $(consumer pause)"
check "pause: after the resume, p7 ran" "$(runs pause | cut -d' ' -f1)" 7
stop_fleet pause

# 4. max_per_minute = 3: 3 starts in the first minute, not one more.
RUN=0.05 fleet_conf rate "max_per_minute = 3"
start_fleet rate
seqhosts r 1 8 | pub rate -f -
sleep 8
check "rate: max_per_minute = 3: 3 started fleet-wide in 8 s" "$(runs rate | cut -d' ' -f1)" 3
stop_fleet rate

# 5. One instance stopped (SIGSTOP) past ack_wait and the fleet lease
# while its restarts run: the worker kills them before the grant ends,
# another instance takes the messages over, and no host runs twice at
# once or is restarted successfully twice; the late instance acks nothing.
ACK_WAIT=2s LEASE=3s RUN=4 fleet_conf stop ""
start_fleet stop
seqhosts s 1 4 | pub stop -f -
LOG=$T/stop/i1.log
if wait_for 'Saved msg_id' 10; then
	kill -STOP "$FPID_1"
	sleep 7
	kill -CONT "$FPID_1"
else
	note "stop: i1 got no message to run; stopping it all the same"
	kill -STOP "$FPID_1"; sleep 7; kill -CONT "$FPID_1"
fi
wait_acked stop 4 60 || fail "stop: not all acked: $(consumer stop)"
check "stop: no two attempts of a host overlap" "$(overlapping stop)" 0
check "stop: no host restarted successfully twice" "$(twice stop)" 0
check "stop: every host restarted" \
    "$(fsql stop "SELECT count(DISTINCT host) FROM r WHERE outcome = 'restarted'")" 4
fenced=$(grep -c 'Fencing restart' "$T/stop/i1.log")
note "stop: i1 fenced $fenced restarts; not acked by it: $(grep -c 'Not acked' "$T/stop/i1.log")"
check "stop: i1's worker killed its restarts before their grants ended" \
    "$(test "$fenced" -ge 1 && echo yes)" yes
stop_fleet stop

# 5b. One instance killed (SIGKILL) while its restarts run: its workers
# see the end of their socket, nothing renews their grants, and they kill
# the restarts before the grants end; the others take the messages over
# after the lease.  Nothing is lost, and no two runs of a host overlap.
ACK_WAIT=2s LEASE=3s RUN=5 fleet_conf kill ""
start_fleet kill
seqhosts k 1 4 | pub kill -f -
LOG=$T/kill/i1.log
wait_for 'Saved msg_id' 10 || note "kill: i1 got no message to run"
kill -KILL "$FPID_1"
wait "$FPID_1" 2>/dev/null
wait_acked kill 4 60 || fail "kill: not all acked: $(consumer kill)"
check "kill: no two attempts of a host overlap" "$(overlapping kill)" 0
check "kill: every host restarted" \
    "$(fsql kill "SELECT count(DISTINCT host) FROM r WHERE outcome = 'restarted'")" 4
note "kill: hosts restarted successfully twice (an outcome i1 never told the fleet): $(twice kill)"
FPID_1=	# stop_fleet: i1 is gone
stop_fleet kill

# 6. KV unreachable (the whole cluster stopped) while requests wait:
# nothing is restarted while it is down, and everything once when back.
# The fleet lease (60 s) outlasts the outage and the cluster's recovery:
# an outcome that could not be recorded keeps its leases that long (an
# outage longer than the lease may repeat such a restart; mandrilld(8)).
RUN=0.5 LEASE=60s fleet_conf down "max_concurrent = 1"
start_fleet down
seqhosts d 1 6 | pub down -f -
sleep 1
stop_cluster
t0=$(date +%s.%N)
# While it is down, the instances that hold messages try KV and say, in
# mandrillctl status, that it fails (asked every half second, 6 s).
failing=0
for k in $(seq 1 12); do
	for inst in 1 2 3; do
		"$CTL" -c "$T/down/i$inst.conf" status 2>&1 |
		    grep -q "^fleet: instance i$inst, .*Key-Value failing" &&
		    failing=$((failing + 1))
	done
	[ "$failing" -gt 0 ] && [ "$k" -ge 8 ] && break
	sleep 0.5
done
check "down: mandrillctl status of an instance holding messages says Key-Value is failing" \
    "$(test "$failing" -ge 1 && echo yes)" yes
t1=$(date +%s.%N)
start_cluster
# A run that started before the stop may end within it; none may start.
check "down: no restart started while the cluster was down" \
    "$(started_between down "$(awk -v t="$t0" 'BEGIN { printf "%.3f", t + 0.6 }')" "$t1")" 0
wait_acked down 6 90 || fail "down: not all acked after the cluster came back: $(consumer down)"
check "down: 6 hosts, each run once" "$(runs down | cut -d' ' -f1-2)" "6 0"
check "down: no two attempts of a host overlap" "$(overlapping down)" 0
stop_fleet down

# 7. The consumer's leader node killed mid-run: nothing lost, nothing
# restarted twice (a dropped ack is a redelivery the fleet's record of
# the msg_id settles as a duplicate).
RUN=0.1 fleet_conf leader "max_concurrent = 4"
start_fleet leader
seqhosts l 1 40 | pub leader -f -
sleep 2
lname=$("$TAIL" -l "$CLUSTER_URL" leader leader 2>/dev/null)
ln=$(node_of "$lname")
if [ -n "$ln" ]; then
	note "leader: killing node $lname, the consumer's leader"
	stop_node "$ln" KILL
	sleep 3
	start_node "$ln"
else
	fail "leader: no leader named for the consumer ($lname)"
fi
wait_acked leader 40 120 || fail "leader: not all acked: $(consumer leader)"
check "leader: 40 hosts, each restarted successfully once" \
    "$(fsql leader "SELECT count(DISTINCT host) FROM r WHERE outcome = 'restarted'")-$(twice leader)" "40-0"
check "leader: no two attempts of a host overlap" "$(overlapping leader)" 0
stop_fleet leader

# 8. A dead-letter advisory that comes while no instance is connected
# waits in <stream>-advisories and is recorded by the next instance.
ACK_WAIT=1s SRC="max_deliver = 2" fleet_conf adv ""
start_fleet adv
stop_fleet adv
pub adv a1
# Two deliveries to a client that acks neither; the server gives up (and
# says so) at the next pull after the second one's ack_wait: the third.
for n in 1 2 3; do
	got=$("$TAIL" -p "$CLUSTER_URL" adv adv 1)
	[ "$n" = 3 ] || [ "$got" = 1 ] ||
	    note "adv: delivery $n to the failing consumer: $got"
	sleep 1.2
done
i=0
until [ "$("$TAIL" "$CLUSTER_URL" adv-advisories 2>/dev/null)" = 1 ] ||
    [ "$i" -gt 50 ]; do
	i=$((i + 1))
	sleep 0.1
done
check "adv: with no instance connected, the advisory is kept" \
    "$("$TAIL" "$CLUSTER_URL" adv-advisories)" 1
start_fleet adv
# Dead letters in the three databases together (they exist: started).
dead_total() {
	fsql adv "SELECT (SELECT count(*) FROM main.dead_letters) +
	    (SELECT count(*) FROM b.dead_letters) +
	    (SELECT count(*) FROM c.dead_letters)"
}
i=0
while n=$(dead_total) && [ "${n:-0}" -lt 1 ] && [ "$i" -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "adv: the next instance records it as a dead letter, once" "$n" 1
sleep 0.5
check "adv: the message and its advisory are out of their streams" \
    "$("$TAIL" "$CLUSTER_URL" adv)-$("$TAIL" "$CLUSTER_URL" adv-advisories)" 0-0
stop_fleet adv

# 9. mandrill-publish during the stream leader's election: what the
# server refuses or leaves unanswered is published again with the same
# msg_id until stored; a rerun of the batch stores nothing new.
fleet_conf pubs ""
start_fleet pubs
stop_fleet pubs
seqhosts q 1 400 >"$T/pubs.hosts"
sname=$("$TAIL" -L "$CLUSTER_URL" pubs 2>/dev/null)
sn=$(node_of "$sname")
if [ -n "$sn" ]; then
	note "pubs: killing node $sname, the stream's leader, then publishing"
	stop_node "$sn" KILL
else
	fail "pubs: no leader named for the stream ($sname)"
fi
"$PUBLISH" -u "$CLUSTER_URL" -s pubs.restart --batch b1 -t 60 \
    -f "$T/pubs.hosts" >"$T/pubs.out" 2>"$T/pubs.err"
rc=$?
note "pubs: $(tail -1 "$T/pubs.out")"
check "pubs: every request stored through the election (exit 0)" "$rc" 0
[ -n "$sn" ] && start_node "$sn"
i=0
until l=$("$TAIL" -L "$CLUSTER_URL" pubs 2>/dev/null) && [ "$l" != - ] ||
    [ "$i" -gt 100 ]; do
	i=$((i + 1))
	sleep 0.1
done
check "pubs: 400 of 400 stored" \
    "$(grep -c '400 of 400 stored' "$T/pubs.out")" 1
"$PUBLISH" -u "$CLUSTER_URL" -s pubs.restart --batch b1 -l \
    -f "$T/pubs.hosts" >"$T/pubs2.out" 2>&1
check "pubs: the same batch again: each a duplicate, nothing new" \
    "$(grep -c '^duplicate b1:q' "$T/pubs2.out")-$(grep -c '^stored' "$T/pubs2.out")" "400-0"
check "pubs: the stream holds 400 messages" "$("$TAIL" "$CLUSTER_URL" pubs)" 400

stop_cluster
finish
