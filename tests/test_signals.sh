#!/bin/sh
# Signals under load on the sim source: TERM drains and loses nothing,
# a second TERM and QUIT take the fast path, a killed or hung worker has
# its jobs redelivered and is replaced.
. "$(dirname "$0")/lib.sh"

base_conf() {
	# $1: sim_latency, $2: drain_timeout, $3: count, then extra [restart] lines
	write_conf <<EOF
workers = 2
jobs_per_worker = 16
max_in_flight = 32
drain_timeout = $2
worker_timeout = 2s

[source]
rate = 0
count = $3
exit_when_done = $( [ "$3" -gt 0 ] && echo yes || echo no )

[restart]
sim_latency = $1
sim_failure_rate = 0
allow = cattle-*
max_attempts = 5
backoff_min = 100ms
backoff_max = 500ms
EOF
}

reset() {
	rm -rf "$T/state" "$LOG"
}

# --- TERM mid-load: drain, exit 0, nothing half-done ------------------------
reset
base_conf 200ms..400ms 30s 0
start_mandrilld
wait_for "Done. Acked" 20 || fail "no message acked before TERM"
kill -TERM "$PID"
wait_exit 30
check "TERM: exit status" "$RC" 0
check "TERM: the log says it drained" "$(grep -c 'Drained: nothing in flight' "$LOG")" 1
check "TERM: no restart left unfinished" \
    "$(sql "SELECT count(*) FROM restarts WHERE finished IS NULL")" 0
check "TERM: no message left restarting" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarting'")" 0
check "TERM: workers exited 0" \
    "$(grep -c 'exited with status 0' "$LOG")" 2
check_invariant

# --- a second TERM during a long drain takes the fast path --------------------
reset
base_conf 20s..20s 60s 0
start_mandrilld
wait_for "Saved msg_id" 20 || fail "nothing started before TERM"
kill -TERM "$PID"
wait_for "Draining" 10 || fail "no drain after the first TERM"
kill -TERM "$PID"
wait_exit 15
check "second TERM: exit status, well before drain_timeout" "$RC" 0
check "second TERM: fast shutdown logged" \
    "$(grep -c 'Fast shutdown (second signal during drain)' "$LOG")" 1
check "second TERM: nothing acked (no restart had finished)" \
    "$(grep -c 'Done. Acked' "$LOG")" 0
check_invariant

# --- QUIT: nack everything now ------------------------------------------------
reset
base_conf 20s..20s 60s 0
start_mandrilld
wait_for "Saved msg_id" 20 || fail "nothing started before QUIT"
kill -QUIT "$PID"
wait_exit 15
check "QUIT: exit status" "$RC" 0
check "QUIT: fast shutdown logged" "$(grep -c 'Fast shutdown (SIGQUIT)' "$LOG")" 1
check "QUIT: in-flight messages nacked" \
    "$(grep -c 'Nacked [0-9]* in-flight messages' "$LOG" | awk '{print ($1 > 0)}')" 1

# --- SIGKILL of a busy worker: its jobs are redelivered and finished ----------
reset
base_conf 300ms..600ms 30s 200
start_mandrilld
wait_for "Saved msg_id" 20 || fail "nothing started before the kill"
victim=$(worker_pids | head -1)
kill -KILL "$victim"
wait_exit 90
check "worker KILL: mandrilld still finishes all messages and exits 0" "$RC" 0
check "worker KILL: the death is logged" \
    "$(grep -c "(pid $victim) killed by signal 9" "$LOG")" 1
check "worker KILL: its jobs were nacked for redelivery" \
    "$(grep -c 'in-flight messages for redelivery: worker gone' "$LOG")" 1
check "worker KILL: a new worker was started" \
    "$(grep -c 'worker [0-9]* started' "$LOG")" 3
check "worker KILL: all 200 messages have a final state" \
    "$(sql "SELECT count(*) FROM messages WHERE state IN ('restarted','dead')")" 200
check "worker KILL: its unfinished attempts are recorded as lost" \
    "$(sql "SELECT count(*) > 0 FROM restarts WHERE outcome = 'lost'")" 1
check_invariant

# --- a hung worker (SIGSTOP) is aborted after worker_timeout ------------------
reset
base_conf 100ms..200ms 30s 0
start_mandrilld
wait_for "Done. Acked" 20 || fail "nothing done before the stop"
victim=$(worker_pids | head -1)
kill -STOP "$victim"
wait_for "(pid $victim) silent for" 10 || fail "hung worker not noticed"
wait_for "(pid $victim) killed by signal" 15 || fail "hung worker not killed"
kill -CONT "$victim" 2>/dev/null
wait_count "worker [0-9]* ready" 3 10 || fail "hung worker: no replacement became ready"
kill -TERM "$PID"
wait_exit 30
check "hung worker: mandrilld survives and drains" "$RC" 0
check "hung worker: it was replaced" \
    "$(grep -c 'worker [0-9]* started' "$LOG")" 3
check_invariant

# --- Ctrl-C reaches only mandrilld: workers have their own process group ------
reset
base_conf 100ms..200ms 30s 0
start_mandrilld
wait_for "ready" 10
pg_sup=$(ps -o pgid= -p "$PID" | tr -d ' ')
same=0
for w in $(worker_pids); do
	[ "$(ps -o pgid= -p "$w" | tr -d ' ')" = "$pg_sup" ] && same=$((same + 1))
done
check "workers are not in mandrilld's process group" "$same" 0
kill -TERM "$PID"
wait_exit 30
check "clean exit after the process group check" "$RC" 0

finish
