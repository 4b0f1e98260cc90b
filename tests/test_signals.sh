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
busy_timeout = 1s

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
check "worker KILL: its jobs were held for another worker, not nacked" \
    "$(grep -c "lost holding [0-9]* messages; each is held" "$LOG")-$(grep -c 'for redelivery: worker gone' "$LOG")" 1-0
check "worker KILL: the crash is counted against each of its messages" \
    "$(sql "SELECT count(*) > 0 FROM messages WHERE crashes = 1")" 1
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

# --- a worker that sends a malformed frame is ended and replaced ---------------
reset
cat > "$T/bad-worker" <<'EOF'
#!/bin/sh
# Answers the welcome with bytes that are not a frame, then waits.
printf '\301\301 not msgpack' >&3
exec sleep 30
EOF
chmod 755 "$T/bad-worker"
base_conf 100ms..200ms 30s 0
sed -i "s|^worker_path = .*|worker_path = $T/bad-worker|" "$T/mandrill.conf"
start_mandrilld
wait_count "frame is not a map; stopping it" 2 10 || fail "bad frames not noticed"
wait_count "worker [0-9]* started" 3 10 || fail "bad worker not replaced"
check "malformed frame: the supervisor is still running" \
    "$(kill -0 "$PID" && echo yes)" yes
check "malformed frame: the reason is logged" \
    "$(grep -c 'worker [0-9]* (pid [0-9]*): frame is not a map; stopping it' "$LOG" | awk '{print ($1 >= 2)}')" 1
kill -TERM "$PID"
wait_exit 30
check "malformed frame: clean exit" "$RC" 0

# --- a worker that always dies at start: throttled, not a fork loop -------------
reset
base_conf 100ms..200ms 30s 0
sed -i "s|^worker_path = .*|worker_path = /bin/false|" "$T/mandrill.conf"
start_mandrilld
sleep 6
check "crash loop: the supervisor is still running" \
    "$(kill -0 "$PID" && echo yes)" yes
check "crash loop: the throttle is logged" \
    "$(grep -c 'workers are dying young' "$LOG" | awk '{print ($1 >= 2)}')" 1
check "crash loop: at most a handful of spawns in 6 s, not a fork loop" \
    "$(grep -c 'worker [0-9]* started' "$LOG" | awk '{print ($1 >= 3 && $1 <= 12)}')" 1
check "crash loop: delays grow (1s, 2s, 4s...)" \
    "$(grep -c 'next spawn in 4s' "$LOG")" 1
kill -TERM "$PID"
wait_exit 30
check "crash loop: TERM still ends it with 0" "$RC" 0

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

# --- HUP: a new generation with the new settings, nothing lost --------------
reset
base_conf 100ms..300ms 30s 0
sed -i 's/^rate = 0/rate = 200/' "$T/mandrill.conf"
start_mandrilld
wait_count "worker [0-9]* ready" 2 10 || fail "HUP: workers not ready"
wait_for "Done. Acked" 10
old=$(worker_pids | sort | tr '\n' ' ')
sed -i 's/^workers = 2/workers = 3/' "$T/mandrill.conf"
kill -HUP "$PID"
wait_for "reload done: generation 2, 3 workers" 10 || fail "HUP: no reload"
wait_count "worker [0-9]* ready" 5 10 || fail "HUP: new generation not ready"
sleep 1
new=$(worker_pids | sort | tr '\n' ' ')
check "HUP: three workers now" "$(worker_pids | wc -l)" 3
common=0
for p in $old; do case " $new " in *" $p "*) common=$((common + 1));; esac; done
check "HUP: the old generation is gone" "$common" 0
acked_before=$(grep -c 'Done. Acked' "$LOG")
sleep 1
check "HUP: work continues on the new generation" \
    "$(grep -c 'Done. Acked' "$LOG" | awk -v b="$acked_before" '{print ($1 > b)}')" 1

# a broken file: logged with its line, old settings kept
printf 'wrokers = 5\n' >> "$T/mandrill.conf"
kill -HUP "$PID"
wait_for "reload failed, configuration unchanged" 10 || fail "HUP: broken file accepted"
check "HUP with a broken file: the error names file, line and key" \
    "$(grep -c "reload failed, configuration unchanged: $T/mandrill.conf:[0-9]*: unknown key \"wrokers\"" "$LOG")" 1
check "HUP with a broken file: still running" "$(kill -0 "$PID" && echo yes)" yes
check "HUP with a broken file: still three workers" "$(worker_pids | wc -l)" 3
sed -i '$d' "$T/mandrill.conf"

# a change that needs a restart is refused whole
sed -i "s|^state_dir = .*|state_dir = $T/elsewhere|" "$T/mandrill.conf"
kill -HUP "$PID"
wait_for "reload refused" 10 || fail "HUP: state_dir change accepted"
sed -i "s|^state_dir = .*|state_dir = $T/state|" "$T/mandrill.conf"

# 50 HUPs in quick succession: still running, no descriptor leaked
fds_before=$(ls /proc/"$PID"/fd | wc -l)
i=0
while [ $i -lt 50 ]; do kill -HUP "$PID"; sleep 0.02; i=$((i + 1)); done
sleep 1
wait_for "reload done: generation" 10
# settle: only the newest generation left
n=0
while [ "$(worker_pids | wc -l)" -ne 3 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
check "50 HUPs: still running" "$(kill -0 "$PID" && echo yes)" yes
check "50 HUPs: three workers after it settles" "$(worker_pids | wc -l)" 3
check "50 HUPs: same number of open descriptors" \
    "$(ls /proc/"$PID"/fd | wc -l)" "$fds_before"

# TTIN / TTOU: one worker more, one fewer
kill -TTIN "$PID"
wait_for "SIGTTIN: 4 workers" 5 || fail "TTIN ignored"
n=0
while [ "$(worker_pids | wc -l)" -ne 4 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
check "TTIN: four workers" "$(worker_pids | wc -l)" 4
kill -TTOU "$PID"
wait_for "SIGTTOU: 3 workers" 5 || fail "TTOU ignored"
n=0
while [ "$(worker_pids | wc -l)" -ne 3 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
check "TTOU: three workers" "$(worker_pids | wc -l)" 3

# HUP that lowers max_in_flight below what is in flight: the cap holds
sed -i 's/^max_in_flight = 32$/max_in_flight = 4/' "$T/mandrill.conf"
kill -HUP "$PID"
wait_for "reload done: generation .*" 10
sleep 2
: > "$T/usr2.mark"
kill -USR2 "$PID"
sleep 0.5
inflight=$(grep 'state: running' "$LOG" | tail -1 | sed 's/.*generation [0-9]*, \([0-9]*\) in flight.*/\1/')
check "HUP to max_in_flight 4: no more than 4 in flight" \
    "$([ "${inflight:-99}" -le 4 ] && echo yes || echo "no: $inflight")" yes
sed -i 's/^max_in_flight = 4$/max_in_flight = 32/' "$T/mandrill.conf"
kill -HUP "$PID"

# USR2: a state dump
kill -USR2 "$PID"
wait_for "state: running, generation" 5 || fail "USR2: no dump"
check "USR2: one line per worker with pid and jobs" \
    "$(grep -c 'state: worker [0-9]* pid [0-9]* generation' "$LOG" | awk '{print ($1 >= 3)}')" 1

kill -TERM "$PID"
wait_exit 30
check "after the reloads: clean exit" "$RC" 0
check_invariant

# --- USR1: reopen the log file (logrotate) -------------------------------------
reset
base_conf 100ms..300ms 30s 0
printf '[mandrill]\nlog_file = %s\n' "$T/file.log" > /dev/null
sed -i "s|^worker_timeout = 2s|worker_timeout = 2s\nlog_file = $T/file.log|" "$T/mandrill.conf"
sed -i 's/^rate = 0/rate = 100/' "$T/mandrill.conf"
rm -f "$T/file.log" "$T/file.log.1"
start_mandrilld
LOG=$T/file.log
wait_for "Done. Acked" 10 || fail "USR1: nothing logged to log_file"
mv "$T/file.log" "$T/file.log.1"
kill -USR1 "$PID"
wait_for "log reopened" 5 || fail "USR1: log not reopened"
wait_for "worker [0-9]*: Restarted" 5 || fail "USR1: workers do not log to the new file"
kill -TERM "$PID"
wait_exit 30
check "USR1: exit status" "$RC" 0
check "USR1: supervisor and workers write to the new file" \
    "$(grep -c 'worker [0-9]*: Restarted' "$T/file.log" | awk '{print ($1 > 0)}')" 1
LOG=$T/mandrilld.log

# --- -t checks a configuration; -p writes and removes a pid file ---------------
base_conf 100ms..300ms 30s 10
"$MANDRILLD" -t -c "$T/mandrill.conf" >/dev/null 2>&1
check "-t: a good file exits 0" "$?" 0
printf '[mandrill]\nworkers = lots\n' > "$T/bad.conf"
msg=$("$MANDRILLD" -t -c "$T/bad.conf" 2>&1)
check "-t: a bad file exits 78" "$?" 78
check "-t: the error names file, line and key" \
    "$(echo "$msg" | grep -c "$T/bad.conf:2: \[mandrill\] workers = \"lots\": expected")" 1
"$MANDRILLD" -c "$T/mandrill.conf" -x >/dev/null 2>&1
check "an unknown option exits 64" "$?" 64
reset
"$MANDRILLD" -f -c "$T/mandrill.conf" -p "$T/pid" >"$LOG" 2>&1 &
PID=$!
n=0
while [ ! -s "$T/pid" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
check "-p: the pid file holds the pid" "$(cat "$T/pid" 2>/dev/null)" "$PID"
wait_exit 30
check "-p: exit 0" "$RC" 0
check "-p: the pid file is removed at exit" "$(test -e "$T/pid" && echo left || echo removed)" removed

finish
