#!/bin/sh
# Issue 13 on the nats source, against a real nats-server (JetStream on
# 127.0.0.1, started here and stopped by its PID): waiting never loses a
# request, and a known outcome is never repeated.  The consumers have a
# short ack_wait and a small max_deliver, so that a wait that spent the
# server's delivery budget would show as a redelivery or a dead letter;
# besides the database, the server is asked (nats_tail -i) how many
# deliveries it made and what it still holds.  Each case has a stream,
# subject and durable consumer of its own.
#
# As in test_waiting.sh, the max_per_minute case needs a real minute: it
# runs in the background, on a mandrilld of its own, during the others.
. "$(dirname "$0")/lib.sh"

TAIL=$top_builddir/tests/nats_tail

reset() {
	rm -rf "$T/state" "$LOG" "$T/runs"
}

# nconf NAME SOURCE-LINES RESTART-LINES [MANDRILL-LINES]: stream NAME,
# subject NAME.restart, durable NAME
nconf() {
	write_conf <<EOF
workers = 2
jobs_per_worker = 16
max_in_flight = 64
busy_timeout = 1s
${4:-}

[source]
type = nats
url = $NATS_URL
stream = $1
subject = $1.restart
durable = $1
$2

[restart]
allow = cattle-*
sim_failure_rate = 0
backoff_min = 100ms
backoff_max = 500ms
$3
EOF
}

# pub NAME HOST...: one request for each HOST on NAME's subject
pub() {
	s=$1
	shift
	"$PUBLISH" -q -u "$NATS_URL" -s "$s.restart" "$@" ||
	    fail "mandrill-publish to $s.restart failed"
}

# seqhosts PREFIX FROM TO: PREFIXFROM .. PREFIXTO
seqhosts() { seq "$2" "$3" | sed "s/^/$1/"; }

# consumer NAME: the server's view of NAME's consumer
consumer() { "$TAIL" -i "$NATS_URL" "$1" "$1"; }

# server_figures WHAT NAME PUBLISHED: the consumer made one delivery a
# message, and holds nothing
server_figures() {
	c=$(consumer "$2")
	note "$1: server: $c"
	check "$1: the server delivered each of the $3 once, holds nothing" \
	    "$c" "deliveries $3 pending 0 ack_pending 0 redelivered 0"
}

start_and_wait() {
	start_mandrilld
	wait_for "nats: consuming" 15 || fail "$1: not consuming"
}

# --- 1. pause: held in flight and waiting at the server, none lost -------------
# Four are pulled before the pause: one restart runs (max_concurrent = 1,
# 1 s each) and three wait for a slot.  enabled = no comes with a HUP;
# 6 s later (the pull request open at the server when the pause came
# expires after 5 s, and the server cannot be told to end it sooner) 20
# more are published; the pause lasts 30 s in all: 7 times max_deliver
# (2) times ack_wait (2s).  The resume also shortens the restarts.
pause_conf() {
	nconf P "ack_wait = 2s
max_deliver = 2" "enabled = $1
$2"
}

case_pause() {
	reset
	pause_conf yes "max_concurrent = 1
sim_latency = 1s..1s"
	start_and_wait pause
	pub P $(seqhosts cattle-p 1 4)
	wait_count "Pulled msg_id" 4 10 || fail "pause: 4 not pulled before it"
	wait_for "Saved msg_id" 10 || fail "pause: no restart before it"
	pause_conf no "max_concurrent = 1
sim_latency = 1s..1s"
	kill -HUP "$PID"
	wait_for "reload done: generation 2" 10 || fail "pause: reload not done"
	wait_for "generation 2 ready" 10 || fail "pause: generation 2 not ready"
	sleep 6
	pub P $(seqhosts cattle-p 5 24)
	sleep 24
	at_end=$(consumer P)
	restarts_paused=$(sql "SELECT count(*) FROM restarts")
	kill -USR2 "$PID"
	wait_for "state: held" 5 || fail "pause: no dump"
	pause_conf yes "sim_latency = 10ms..50ms"
	kill -HUP "$PID"
	wait_for "reload done: generation 3" 10 || fail "pause: no resume"
	final 24 20 || fail "pause: not all 24 final within 20 s of the resume"
	note "pause: at its end, the server: $at_end"
	note "pause: $(grep -m1 'state: held' "$LOG" | sed 's/.*state: //')"
	figures pause 24
	check "pause: nothing pulled while paused" \
	    "$(between 'reload done: generation 2' 'SIGHUP: reloading' \
	    'Pulled msg_id')" 0
	check "pause: at its end the server had delivered 4, held 20 back" \
	    "$at_end" "deliveries 4 pending 20 ack_pending 3 redelivered 0"
	check "pause: no restart started while paused (the one running ended)" \
	    "$restarts_paused" 1
	check "pause: the three in flight were held as paused" \
	    "$(grep 'Held msg_id=.*(paused)' "$LOG" | sed 's/.*Held msg_id=//;
	    s/ .*//' | sort -u | wc -l | awk '{print ($1 >= 3)}')" 1
	check "pause: all 24 restarted after the resume, one attempt each" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")-$(
	    sql "SELECT count(*) || '/' || count(DISTINCT msg_id) FROM restarts
	    WHERE outcome = 'restarted'")" 24-24/24
	no_budget_spent pause
	server_figures pause P 24
	stop_mandrilld pause
	check_invariant
}

# --- 2. a busy host: its requests wait their turn ------------------------------
case_busy() {
	reset
	nconf B "ack_wait = 2s
max_deliver = 2" "sim_latency = 2s..3s"
	start_and_wait "busy host"
	pub B cattle-busy cattle-busy cattle-busy cattle-busy cattle-busy \
	    cattle-busy
	final 6 40 || fail "busy host: not all 6 final within 40 s"
	figures "busy host" 6
	check "busy host: 6 restarted, in 6 attempts" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")-$(
	    sql "SELECT count(*) FROM restarts WHERE host = 'cattle-busy' AND
	    outcome = 'restarted'")" 6-6
	check "busy host: no two of its restarts overlap" \
	    "$(overlaps cattle-busy)" 0
	check "busy host: the five later ones were held for the host" \
	    "$(grep 'Held msg_id=.* host=cattle-busy (host)' "$LOG" |
	    sed 's/.*msg_id=//; s/ .*//' | sort -u | wc -l)" 5
	note "busy host: restarts of cattle-busy, started .. finished:"
	sql "SELECT '#   ' || substr(started, 12) || ' .. ' ||
	    substr(finished, 12) FROM restarts ORDER BY id"
	no_budget_spent "busy host"
	server_figures "busy host" B 6
	stop_mandrilld "busy host"
	check_invariant
}

# --- 3. max_per_minute and max_concurrent: held for the window ------------------
# max_per_minute = 4 with 8 hosts, max_concurrent = 1 (see test_waiting.sh
# for why not 2 a minute).  Its own directory, database, log and stream.
RT=$T/rate
rate_start() {
	mkdir -p "$RT"
	cat >"$RT/mandrill.conf" <<EOF
[mandrill]
state_dir = $RT/state
worker_path = $WORKER
log_level = debug
workers = 2
jobs_per_worker = 16
busy_timeout = 1s

[source]
type = nats
url = $NATS_URL
stream = R
subject = R.restart
durable = R
ack_wait = 2s
max_deliver = 2

[restart]
allow = cattle-*
sim_failure_rate = 0
sim_latency = 100ms..300ms
max_per_minute = 4
max_concurrent = 1
EOF
	chmod 600 "$RT/mandrill.conf"
	"$MANDRILLD" -f -c "$RT/mandrill.conf" >"$RT/mandrilld.log" 2>&1 &
	RATE_PID=$!
	EXTRA_PIDS="$EXTRA_PIDS $RATE_PID"
	i=0
	until grep -q "nats: consuming" "$RT/mandrilld.log" || [ "$i" -gt 150 ]
	do
		i=$((i + 1))
		sleep 0.1
	done
	pub R $(seqhosts cattle-r 1 8)
}

rate_check() {
	save_db=$DB save_log=$LOG save_pid=$PID
	DB=$RT/state/mandrill.db LOG=$RT/mandrilld.log PID=$RATE_PID
	final 8 90 || fail "rate: not all 8 final within 90 s more"
	stop_mandrilld rate
	figures rate 8
	check "rate: all 8 restarted, one attempt each" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")-$(
	    sql "SELECT count(DISTINCT msg_id) || '/' || count(*) FROM restarts
	    WHERE outcome = 'restarted'")" 8-8/8
	check "rate: no 60 s window holds more than 4 starts" \
	    "$(sql "SELECT max(n) FROM (SELECT (SELECT count(*) FROM restarts b
	    WHERE b.started_mono >= a.started_mono AND
	    b.started_mono < a.started_mono + 60000) AS n FROM restarts a)")" 4
	gap=$(sql "SELECT (SELECT started_mono FROM restarts ORDER BY
	    started_mono LIMIT 1 OFFSET 4) - min(started_mono) FROM restarts")
	note "rate: the fifth restart started $gap ms after the first"
	# The rate hold wakes when the window frees, plus up to a quarter of
	# the wait in jitter (hold.c).
	check "rate: the fifth waited for the window (60 s after the first)" \
	    "$(test "$gap" -ge 60000 && test "$gap" -lt 80000 && echo yes)" yes
	check "rate: four held for the rate" \
	    "$(grep 'Held msg_id=.*(rate)' "$LOG" | sed 's/.*msg_id=//; s/ .*//' |
	    sort -u | wc -l)" 4
	check "rate: held for the single slot too (max_concurrent = 1)" \
	    "$(grep -c 'Held msg_id=.*(concurrency)' "$LOG" |
	    awk '{print ($1 > 0)}')" 1
	check "rate: no two restarts overlap (max_concurrent = 1)" \
	    "$(overlaps)" 0
	no_budget_spent rate
	server_figures rate R 8
	check_invariant
	DB=$save_db LOG=$save_log PID=$save_pid
}

# --- 4. the database cannot commit for longer than the server would wait ---------
# The disk holding state_dir fills while requests arrive (10 a second for
# 32 s, restarts of 1 to 3 s) and stays full 30 s: five times max_deliver
# (3) times ack_wait (2s).  The pull request open at the server when the
# store failed may still deliver for 5 s; those messages are held, and
# nothing is pulled after that.
disk_conf() {
	nconf "$1" "ack_wait = 2s
max_deliver = 3" "sim_latency = 1s..3s"
}

# publish_over NAME SECONDS: 10 requests a second, cattle-N-1..10, in the
# background (sets PUBLISHER)
publish_over() {
	(
		for i in $(seq 1 "$2"); do
			"$PUBLISH" -q -u "$NATS_URL" -s "$1.restart" \
			    $(seqhosts "cattle-$i-" 1 10) ||
			    echo "publish $i failed" >>"$T/publish.err"
			sleep 1
		done
	) &
	PUBLISHER=$!
	EXTRA_PIDS="$EXTRA_PIDS $PUBLISHER"
}

case_disk_full() {
	reset
	rm -f "$T/publish.err"
	if small_fs "$T/state" 16m; then
		how=disk
	else
		note "disk full: FALLBACK: the database is write-locked for 30 s instead"
		how=lock
	fi
	disk_conf D
	start_and_wait "disk full"
	publish_over D 32
	wait_count "Done. Acked" 10 20 || fail "disk full: nothing done first"
	t_fill=$(now_iso)
	if [ "$how" = disk ]; then
		fill "$T/state"
		note "disk full: $(df -k "$T/state" | tail -1)"
	else
		printf '.timeout 5000\nBEGIN IMMEDIATE;\n.shell sleep 33\nCOMMIT;\n' |
		    sqlite3 "$DB" &
		locker=$!
	fi
	wait_for "store cannot commit (worker" 15 ||
	    fail "disk full: the failing store was not reported"
	lines0=$(grep -n -m1 ': store: cannot commit' "$LOG" | cut -d: -f1)
	bytes0=$(head -n "$((lines0 - 1))" "$LOG" | wc -c)
	pulled0=$(count_log "Pulled msg_id")
	sleep 6
	pulled6=$(count_log "Pulled msg_id")
	sleep 9
	kill -USR2 "$PID"
	sleep 15
	pulled30=$(count_log "Pulled msg_id")
	lines1=$(wc -l <"$LOG")
	bytes1=$(wc -c <"$LOG")
	t_free=$(now_iso)
	if [ "$how" = disk ]; then
		rm -f "$T/state/fill"
	else
		wait "$locker"
	fi
	sed -n "${lines0},${lines1}p" "$LOG" >"$T/full.log"
	wait "$PUBLISHER"
	final 320 60 || fail "disk full: not all 320 final within 60 s after"
	note "disk full: halfway: $(grep 'state: running' "$T/full.log" |
	    sed 's/.*state: running, //; s/, oldest.*//') and $(grep 'state: held' \
	    "$T/full.log" | sed 's/.*state: //; s/ (.*store/; store/; s/,.*//')"
	note "disk full: pulled in its first 6 s (the open pull request): $((pulled6 - pulled0)), in the 24 s after: $((pulled30 - pulled6))"
	figures "disk full" 320
	check "disk full: every request published" \
	    "$(cat "$T/publish.err" 2>/dev/null | wc -l)" 0
	log_volume "disk full (30 s)" "$T/full.log" $((bytes1 - bytes0))
	kept=$(sql "SELECT count(*) FROM restarts WHERE started < '$t_fill'
	    AND finished > '$t_free'")
	note "disk full: $kept restarts began before it and were recorded only after it (their outcomes waited in the workers)"
	check "disk full: outcomes of restarts that ended meanwhile were kept" \
	    "$(test "$kept" -gt 0 && echo yes)" yes
	check "disk full: nothing pulled once the open pull request ended" \
	    "$((pulled30 - pulled6))" 0
	check "disk full: it cleared, and said so" \
	    "$(count_log 'store commits again; pulling' | awk '{print ($1 >= 1)}')" 1
	check "disk full: all 320 restarted once it cleared" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 320
	check "disk full: nothing restarted twice (one attempt a message)" \
	    "$(sql "SELECT count(*) || '/' || count(DISTINCT msg_id) || '/' ||
	    count(DISTINCT host) FROM restarts")" 320/320/320
	check "disk full: no attempt lost" \
	    "$(sql "SELECT count(*) FROM restarts WHERE outcome IS NOT 'restarted'")" 0
	no_budget_spent "disk full"
	server_figures "disk full" D 320
	stop_mandrilld "disk full"
	check_invariant
	stop_mounts
}

# --- 4b. an operator holds the write lock 15 s -----------------------------------
case_lock() {
	reset
	rm -f "$T/publish.err"
	disk_conf L
	start_and_wait lock
	publish_over L 20
	wait_count "Done. Acked" 10 20 || fail "lock: nothing done first"
	printf '.timeout 5000\nBEGIN IMMEDIATE;\n.shell sleep 15\nCOMMIT;\n' |
	    sqlite3 "$DB" &
	locker=$!
	wait_for "store cannot commit (worker .*: database is locked)" 10 ||
	    fail "lock: the locked store was not reported"
	sleep 6
	pulled6=$(count_log "Pulled msg_id")
	wait "$locker"
	# From the first failure to the first worker that commits again.
	awk 'index($0, ": store: cannot commit") { on = 1 }
	    on && index($0, ": store: commits again") { exit } on { print }' \
	    "$LOG" >"$T/lock.log"
	pulled_end=$(between 'store cannot commit (worker' \
	    ': store: commits again' 'Pulled msg_id')
	pulled_first=$(grep -c 'Pulled msg_id' "$T/lock.log")
	acked=$(grep -c 'Done. Acked' "$T/lock.log")
	wait "$PUBLISHER"
	final 200 60 || fail "lock: not all 200 final within 60 s after"
	figures lock 200
	note "lock: while locked: $pulled_first pulled (from the open pull request), $acked acked"
	log_volume "lock (15 s)" "$T/lock.log" "$(wc -c <"$T/lock.log")"
	check "lock: every request published" \
	    "$(cat "$T/publish.err" 2>/dev/null | wc -l)" 0
	check "lock: nothing acked while locked" "$acked" 0
	check "lock: nothing pulled once the open pull request ended" \
	    "$(awk -v n="$pulled6" 'index($0, "Pulled msg_id") { c++ }
	    index($0, ": store: commits again") { print (c > n ? c - n : 0);
	    exit }' "$LOG")" 0
	check "lock: pulling stopped and resumed, each said once" \
	    "$(count_log 'store cannot commit (worker')-$(count_log \
	    'store commits again; pulling')" 1-1
	check "lock: all 200 restarted after, one attempt each" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")-$(
	    sql "SELECT count(*) || '/' || count(DISTINCT msg_id) FROM restarts
	    WHERE outcome = 'restarted'")" 200-200/200
	no_budget_spent lock
	server_figures lock L 200
	stop_mandrilld lock
	check_invariant
}

# --- 5. a drain ends while a known outcome cannot be recorded ---------------------
# As in test_waiting.sh; the message the fast shutdown gives back comes
# again to a second mandrilld (a real redelivery), which must call it a
# duplicate and run nothing.
case_drain() {
	reset
	cat >"$T/restart.sh" <<EOF
#!/bin/sh
echo "run \$1 \$(date +%s.%N)" >>"$T/runs"
sleep 2
exit 0
EOF
	chmod 755 "$T/restart.sh"
	if small_fs "$T/state" 16m; then
		how=full
	else
		note "drain: FALLBACK: the database is write-locked instead of a full disk"
		how=locked
	fi
	nconf E "ack_wait = 2s
max_deliver = 3" "mode = command
command = $T/restart.sh {host}" "drain_timeout = 3s"
	start_and_wait drain
	pub E cattle-drain
	wait_for "Saved msg_id" 10 || fail "drain: the restart did not start"
	i=0
	until [ -s "$T/runs" ] || [ "$i" -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
	if [ "$how" = full ]; then
		fill "$T/state"
	else
		printf '.timeout 5000\nBEGIN IMMEDIATE;\n.shell sleep 12\nCOMMIT;\n' |
		    sqlite3 "$DB" &
		locker=$!
		sleep 0.5
	fi
	kill -TERM "$PID"
	wait_for "Fast shutdown (drain_timeout passed)" 10 ||
	    fail "drain: the drain did not time out"
	wait_for "holds 1 restart outcomes it cannot record yet; not killing it" 10 ||
	    fail "drain: the worker holding the outcome was not spared"
	sleep 2
	alive=$(worker_pids | wc -l)
	if [ "$how" = full ]; then
		rm -f "$T/state/fill"
	else
		wait "$locker"
	fi
	wait_exit 20
	check "drain: mandrilld exits 0 once the outcome is recorded" "$RC" 0
	check "drain: the worker was alive 2 s after it would have been killed" \
	    "$alive" 1
	check "drain: it was never killed" \
	    "$(count_log 'still running; killing it')-$(count_log 'killed by signal')" 0-0
	check "drain: the outcome was recorded after the space came back" \
	    "$(sql "SELECT state FROM messages")" restarted
	# Nacked with a delay by the fast shutdown: not acked, to come again.
	check "drain: the server still holds the message, unacked" \
	    "$(consumer E | sed 's/ redelivered.*//')" \
	    "deliveries 1 pending 0 ack_pending 1"
	# The server delivers it again, to a new mandrilld.
	mv "$LOG" "$T/drain-first.log"
	nconf E "ack_wait = 2s
max_deliver = 3" "mode = command
command = $T/restart.sh {host}"
	start_and_wait "drain, again"
	wait_for "outcome=duplicate" 30 || fail "drain: no redelivery came"
	figures drain 1
	note "drain: the command ran $(wc -l <"$T/runs") time(s); server: $(consumer E)"
	check "drain: the second mandrilld calls the redelivery a duplicate" \
	    "$(count_log 'Pulled msg_id=.* delivery=2')-$(count_log \
	    'Done. Acked msg_id=.* outcome=duplicate')" 1-1
	check "drain: the host's restart command ran exactly once" \
	    "$(wc -l <"$T/runs")" 1
	check "drain: one attempt row, restarted, none lost" \
	    "$(sql "SELECT group_concat(outcome) FROM restarts
	    WHERE host = 'cattle-drain'")" restarted
	stop_mandrilld "drain, again"
	stop_mounts
}

# --- 6. one msg_id, two hosts ------------------------------------------------------
# Raw payloads (no Nats-Msg-Id: the log names them by stream sequence);
# the second is published once the first is recorded.
case_conflict() {
	reset
	nconf C "" "sim_latency = 1s..1s"
	start_and_wait conflict
	"$PUBLISH" -q -u "$NATS_URL" -s C.restart --raw \
	    '{"msg_id": "conflict-1", "host": "cattle-first"}'
	wait_for "Saved msg_id=conflict-1" 10 || fail "conflict: first not saved"
	"$PUBLISH" -q -u "$NATS_URL" -s C.restart --raw \
	    '{"msg_id": "conflict-1", "host": "cattle-second"}'
	final 1 10 || fail "conflict: the first not final"
	wait_for "Done. Terminated msg_id=2 " 10 ||
	    fail "conflict: the second not terminated"
	figures conflict 2
	check "conflict: the second is dead-lettered, naming both hosts" \
	    "$(sql "SELECT broker_id || ': ' || reason FROM dead_letters")" \
	    "2: msg_id conflict: it names host cattle-second, but was first seen for host cattle-first"
	check "conflict: ... and terminated as invalid" \
	    "$(count_log 'Done. Terminated msg_id=2 outcome=invalid host=cattle-second: msg_id conflict')" 1
	check "conflict: the dead letter keeps the second payload" \
	    "$(sql "SELECT CAST(payload AS TEXT) FROM dead_letters")" \
	    '{"msg_id": "conflict-1", "host": "cattle-second"}'
	check "conflict: the first host restarted exactly once" \
	    "$(sql "SELECT count(*) FROM restarts WHERE host = 'cattle-first'
	    AND outcome = 'restarted'")" 1
	check "conflict: the second host never" \
	    "$(sql "SELECT count(*) FROM restarts WHERE host = 'cattle-second'")" 0
	check "conflict: the msg_id's row is still the first's" \
	    "$(sql "SELECT host || ' ' || state FROM messages")" \
	    "cattle-first restarted"
	server_figures conflict C 2
	stop_mandrilld conflict
}

start_nats
rate_start
case_pause
case_busy
case_disk_full
case_lock
case_drain
case_conflict
rate_check
stop_nats
finish
