#!/bin/sh
# Issue 13 on the sim source: waiting never loses a request, and a known
# outcome is never repeated.  Every case reads its figures (published,
# restarted, dead) from the database with the sqlite3 CLI and prints them
# with note.  The sim broker is given a small max_deliver and a short
# ack_deadline throughout, so that a wait that spent the broker's
# delivery budget would show as a redelivery or a dead letter.
#
# The max_per_minute case needs a real minute to pass (the rate window is
# judged on the monotonic clock, in the database, by every worker; a
# faketime speed-up runs each process on its own fake clock, so it would
# not be the same window).  It runs in the background, on a mandrilld of
# its own, while the other cases run.
. "$(dirname "$0")/lib.sh"

reset() {
	rm -rf "$T/state" "$LOG" "$T/runs"
}

# conf SOURCE-LINES RESTART-LINES [MANDRILL-LINES]: the base of every
# case: ack_deadline 1s and max_deliver 2 unless the case says otherwise.
conf() {
	write_conf <<EOF
workers = 2
jobs_per_worker = 16
max_in_flight = 64
busy_timeout = 1s
${3:-}

[source]
type = sim
instances = 0
${1}

[restart]
allow = cattle-*
sim_failure_rate = 0
backoff_min = 100ms
backoff_max = 500ms
${2}
EOF
}

# payloads FILE HOST MSG_ID...: one payload line per msg_id, for HOST
payloads() {
	f=$1
	h=$2
	shift 2
	: >"$f"
	for id in "$@"; do
		printf '{"msg_id": "%s", "host": "%s"}\n' "$id" "$h" >>"$f"
	done
}

# --- 1. pause: held in flight and waiting at the broker, none lost ------------
# Four are pulled before the pause: one restart runs (max_concurrent = 1,
# 1 s each) and three wait for a slot.  enabled = no comes with a HUP,
# the publisher's count is raised by 20 at the same time, and the pause
# lasts 10 s: five times max_deliver (2) times ack_deadline (1s).  The
# resume also shortens the restarts, so that 24 finish quickly.
pause_conf() {
	conf "rate = 50
count = $1
ack_deadline = 1s
max_deliver = 2" "enabled = $2
$3"
}

case_pause() {
	reset
	pause_conf 4 yes "max_concurrent = 1
sim_latency = 1s..1s"
	start_mandrilld
	wait_count "Pulled msg_id" 4 10 || fail "pause: 4 not pulled before it"
	wait_for "Saved msg_id" 10 || fail "pause: no restart before it"
	pause_conf 24 no "max_concurrent = 1
sim_latency = 1s..1s"
	kill -HUP "$PID"
	wait_for "reload done: generation 2" 10 || fail "pause: reload not done"
	wait_for "generation 2 ready" 10 || fail "pause: generation 2 not ready"
	sleep 10
	restarts_paused=$(sql "SELECT count(*) FROM restarts")
	kill -USR2 "$PID"
	wait_for "sim: published" 5 || fail "pause: no dump"
	pause_conf 24 yes "sim_latency = 10ms..50ms"
	kill -HUP "$PID"
	wait_for "reload done: generation 3" 10 || fail "pause: no resume"
	final 24 20 || fail "pause: not all 24 final within 20 s of the resume"
	pulled_paused=$(between 'reload done: generation 2' \
	    'SIGHUP: reloading' 'Pulled msg_id')
	note "pause: $(grep -m1 'state: running' "$LOG" | sed 's/.*state: //')"
	note "pause: $(grep -m1 'sim: published' "$LOG" | sed 's/.*sim: //')"
	figures "pause" 24
	check "pause: nothing pulled while paused" "$pulled_paused" 0
	check "pause: the dump at its end: 4 pulled, 24 published" \
	    "$(grep -m1 -c 'state: running.*pulled 4,' "$LOG")-$(grep -m1 -c \
	    'sim: published 24, unacked 23,' "$LOG")" 1-1
	check "pause: no restart started while paused (the one running ended)" \
	    "$restarts_paused" 1
	check "pause: the three in flight were held as paused" \
	    "$(grep 'Held msg_id=.*(paused)' "$LOG" | sed 's/.*Held msg_id=//;
	    s/ .*//' | sort -u | wc -l | awk '{print ($1 >= 3)}')" 1
	check "pause: all 24 restarted after the resume" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 24
	check "pause: one attempt each, all restarted" \
	    "$(sql "SELECT count(*) || '-' || count(DISTINCT msg_id) FROM
	    restarts WHERE outcome = 'restarted'")" 24-24
	no_budget_spent pause
	stop_mandrilld pause
	check_invariant
}

# --- 2. a busy host: its requests wait their turn ---------------------------
# Six requests for one host, each restart 2 to 3 s: the later ones wait
# up to 15 s, far past max_deliver (2) times ack_deadline (1s).
case_busy() {
	reset
	payloads "$T/busy.txt" cattle-busy busy-1 busy-2 busy-3 busy-4 \
	    busy-5 busy-6
	conf "rate = 0
payload_file = $T/busy.txt
exit_when_done = yes
ack_deadline = 1s
max_deliver = 2" "sim_latency = 2s..3s"
	start_mandrilld
	wait_exit 60
	figures "busy host" 6
	check "busy host: exit 0 once all are done" "$RC" 0
	check "busy host: 6 restarted, in 6 attempts" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")-$(
	    sql "SELECT count(*) FROM restarts WHERE host = 'cattle-busy' AND
	    outcome = 'restarted'")" 6-6
	check "busy host: no two of its restarts overlap" \
	    "$(overlaps cattle-busy)" 0
	check "busy host: the five later ones were held for the host" \
	    "$(grep -v 'worker [0-9]*: Held' "$LOG" | grep 'Held msg_id=.* host=cattle-busy (host)' |
	    sed 's/.*msg_id=//; s/ .*//' | sort -u | wc -l)" 5
	note "busy host: restarts of cattle-busy, started .. finished:"
	sql "SELECT '#   ' || msg_id || ' ' || substr(started, 12) || ' .. ' ||
	    substr(finished, 12) FROM restarts ORDER BY id"
	no_budget_spent "busy host"
	acked_final "busy host" 6
}

# --- 3. max_per_minute and max_concurrent: held for the window -----------------
# max_per_minute = 4 with 8 hosts, max_concurrent = 1: four restarts, one
# at a time, then four held until the first leaves the 60 s window.  (2 a
# minute would take three windows, over 2 minutes: one is enough to show
# a held message waits out the window and is then restarted.)  It has its
# own directory, database and log, and runs while the other cases do.
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
type = sim
rate = 0
count = 8
instances = 0
exit_when_done = yes
ack_deadline = 2s
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
}

rate_check() {
	i=0
	while kill -0 "$RATE_PID" 2>/dev/null && [ "$i" -lt 900 ]; do
		i=$((i + 1))
		sleep 0.1
	done
	if kill -0 "$RATE_PID" 2>/dev/null; then
		fail "rate: mandrilld still running after 90 s more"
		kill -KILL "$RATE_PID"
	fi
	wait "$RATE_PID"
	rc=$?
	# The helpers read $DB and $LOG: point them at this instance.
	save_db=$DB save_log=$LOG
	DB=$RT/state/mandrill.db LOG=$RT/mandrilld.log
	sanitizer_check
	figures "rate" 8
	check "rate: exit 0 once all are done" "$rc" 0
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
	check_invariant
	DB=$save_db LOG=$save_log
}

# --- 4. the database cannot commit for longer than the broker would wait -------
# The disk holding state_dir fills while requests arrive (10 a second,
# restarts of 1 to 3 s, so about 20 in flight, some of them finishing
# while nothing can be recorded) and stays full 30 s: five times
# max_deliver (3) times ack_deadline (2s), the budget that nacking on
# every store error used to spend.
disk_conf() {
	conf "rate = 10
count = $1
exit_when_done = yes
ack_deadline = 2s
max_deliver = 3" "sim_latency = 1s..3s"
}

case_disk_full() {
	reset
	if small_fs "$T/state" 16m; then
		how=disk
	else
		# No tmpfs here: a writer holding the lock instead.
		note "disk full: FALLBACK: the database is write-locked for 30 s instead"
		how=lock
	fi
	disk_conf 400
	start_mandrilld
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
	sleep 15
	kill -USR2 "$PID"
	sleep 15
	lines1=$(wc -l <"$LOG")
	bytes1=$(wc -c <"$LOG")
	t_free=$(now_iso)
	if [ "$how" = disk ]; then
		rm -f "$T/state/fill"
	else
		wait "$locker"
	fi
	sed -n "${lines0},${lines1}p" "$LOG" >"$T/full.log"
	wait_exit 60
	note "disk full: halfway: $(grep 'state: running' "$T/full.log" |
	    sed 's/.*state: running, //; s/, oldest.*//') and $(grep 'state: held' \
	    "$T/full.log" | sed 's/.*state: //; s/ (.*store/; store/; s/,.*//')"
	figures "disk full" 400
	check "disk full: exit 0 once all are done" "$RC" 0
	log_volume "disk full (30 s)" "$T/full.log" $((bytes1 - bytes0))
	kept=$(sql "SELECT count(*) FROM restarts WHERE started < '$t_fill'
	    AND finished > '$t_free'")
	note "disk full: $kept restarts began before it and were recorded only after it (their outcomes waited in the workers)"
	check "disk full: outcomes of restarts that ended meanwhile were kept" \
	    "$(test "$kept" -gt 0 && echo yes)" yes
	check "disk full: nothing pulled while it could not commit" \
	    "$(between 'store cannot commit (worker' \
	    'store commits again; pulling' 'Pulled msg_id')" 0
	check "disk full: it cleared, and said so" \
	    "$(count_log 'store commits again; pulling' | awk '{print ($1 >= 1)}')" 1
	check "disk full: all 400 restarted once it cleared" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 400
	check "disk full: nothing restarted twice (one attempt a message)" \
	    "$(sql "SELECT count(*) || '/' || count(DISTINCT msg_id) || '/' ||
	    count(DISTINCT host) FROM restarts")" 400/400/400
	check "disk full: no attempt lost" \
	    "$(sql "SELECT count(*) FROM restarts WHERE outcome IS NOT 'restarted'")" 0
	no_budget_spent "disk full"
	check_invariant
	stop_mounts
}

# --- 4b. an operator holds the write lock 15 s ---------------------------------
# BEGIN IMMEDIATE in the sqlite3 CLI: every worker's transaction waits
# busy_timeout (1s) and fails, for 15 s.
case_lock() {
	reset
	disk_conf 200
	start_mandrilld
	wait_count "Done. Acked" 10 20 || fail "lock: nothing done first"
	printf '.timeout 5000\nBEGIN IMMEDIATE;\n.shell sleep 15\nCOMMIT;\n' |
	    sqlite3 "$DB" &
	locker=$!
	wait_for "store cannot commit (worker .*: database is locked)" 10 ||
	    fail "lock: the locked store was not reported"
	wait "$locker"
	# From the first failure to the first worker that commits again.
	awk 'index($0, ": store: cannot commit") { on = 1 }
	    on && index($0, ": store: commits again") { exit } on { print }' \
	    "$LOG" >"$T/lock.log"
	pulled_end=$(grep -c 'Pulled msg_id' "$T/lock.log")
	acked_end=$(grep -c 'Done. Acked' "$T/lock.log")
	wait_exit 60
	figures "lock" 200
	note "lock: while locked: $pulled_end pulled, $acked_end acked"
	check "lock: exit 0 once all are done" "$RC" 0
	log_volume "lock (15 s)" "$T/lock.log" "$(wc -c <"$T/lock.log")"
	check "lock: nothing pulled or acked while locked" \
	    "$pulled_end-$acked_end" 0-0
	check "lock: pulling stopped and resumed, each said once" \
	    "$(count_log 'store cannot commit (worker')-$(count_log \
	    'store commits again; pulling')" 1-1
	check "lock: all 200 restarted after, one attempt each" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")-$(
	    sql "SELECT count(*) || '/' || count(DISTINCT msg_id) FROM restarts
	    WHERE outcome = 'restarted'")" 200-200/200
	no_budget_spent lock
	check_invariant
}

# --- 5. a drain ends while a known outcome cannot be recorded --------------------
# The restart command (2 s) runs; the disk fills; TERM with
# drain_timeout = 3s.  The command ends, its outcome cannot be committed,
# the drain times out and the fast shutdown would kill the worker 5 s
# later: it must not, since it holds the outcome.  The space comes back,
# the outcome is recorded, and a second mandrilld given the same request
# (the sim publishes the payload file again: a redelivery) restarts
# nothing.
case_drain() {
	reset
	cat >"$T/restart.sh" <<EOF
#!/bin/sh
echo "run \$1 \$(date +%s.%N)" >>"$T/runs"
sleep 2
exit 0
EOF
	chmod 755 "$T/restart.sh"
	payloads "$T/drain.txt" cattle-drain drain-1
	if small_fs "$T/state" 16m; then
		how=full
	else
		note "drain: FALLBACK: the database is write-locked instead of a full disk"
		how=locked
	fi
	conf "rate = 0
payload_file = $T/drain.txt
ack_deadline = 1s
max_deliver = 2" "mode = command
command = $T/restart.sh {host}" "drain_timeout = 3s"
	start_mandrilld
	wait_for "Saved msg_id=drain-1" 10 || fail "drain: the restart did not start"
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
	    "$(sql "SELECT state FROM messages WHERE msg_id = 'drain-1'")" restarted
	# The same request again, to a new mandrilld.
	mv "$LOG" "$T/drain-first.log"
	conf "rate = 0
payload_file = $T/drain.txt
exit_when_done = yes" "mode = command
command = $T/restart.sh {host}"
	start_mandrilld
	wait_exit 20
	check "drain: the second mandrilld calls it a duplicate" \
	    "$(count_log 'Done. Acked msg_id=payload-1 outcome=duplicate')" 1
	figures "drain" 1
	note "drain: the command ran $(wc -l <"$T/runs") time(s)"
	check "drain: the host's restart command ran exactly once" \
	    "$(wc -l <"$T/runs")" 1
	check "drain: one attempt row, restarted, none lost" \
	    "$(sql "SELECT group_concat(outcome) FROM restarts
	    WHERE host = 'cattle-drain'")" restarted
	stop_mounts
}

# --- 6. one msg_id, two hosts ----------------------------------------------------
# The second payload comes half a second after the first (rate 2).
case_conflict() {
	reset
	printf '%s\n' '{"msg_id": "conflict-1", "host": "cattle-first"}' \
	    '{"msg_id": "conflict-1", "host": "cattle-second"}' >"$T/conflict.txt"
	conf "rate = 2
payload_file = $T/conflict.txt
exit_when_done = yes" "sim_latency = 1s..1s"
	start_mandrilld
	wait_exit 20
	figures "conflict" 2
	check "conflict: exit 0" "$RC" 0
	check "conflict: the second is dead-lettered, naming both hosts" \
	    "$(sql "SELECT broker_id || ': ' || reason FROM dead_letters")" \
	    "payload-2: msg_id conflict: it names host cattle-second, but was first seen for host cattle-first"
	check "conflict: ... and terminated as invalid" \
	    "$(count_log 'Done. Terminated msg_id=payload-2 outcome=invalid host=cattle-second: msg_id conflict')" 1
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
}

rate_start
case_pause
case_busy
case_disk_full
case_lock
case_drain
case_conflict
rate_check
finish
