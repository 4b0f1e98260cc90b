#!/bin/sh
# Security and install hygiene: what root does on a worker's word, the
# files it writes, the programs and configuration it trusts, and one
# daemon per state_dir.
. "$(dirname "$0")/lib.sh"

LIAR=$top_builddir/tests/pgid_liar
MARK=$T/marker
cat > "$T/restart.sh" <<EOF
#!/bin/sh
echo "start \$1 \$\$" >> "$MARK"
[ -n "\${2:-}" ] && sleep "\$2"
exit 0
EOF
chmod 755 "$T/restart.sh"

# sec_conf COMMAND [MANDRILL-LINES] [RESTART-LINES]
sec_conf() {
	write_conf <<EOF
workers = 1
busy_timeout = 1s
${2:-}

[source]
rate = 0
count = 1
exit_when_done = yes
instances = 0

[restart]
mode = command
command = $1
allow = cattle-*
restart_timeout = 1m
backoff_min = 100ms
backoff_max = 200ms
${3:-}
EOF
}

# --- a worker names someone else's process group: never killed -----------------
# The victim leads a group of its own, and is no child of any worker.
setsid sleep 300 </dev/null >/dev/null 2>&1 &
VICTIM=$!
EXTRA_PIDS=$VICTIM
sleep 0.2
check "liar: the victim leads its own process group" \
    "$(ps -o pgid= -p "$VICTIM" | tr -d ' ')" "$VICTIM"
sec_conf "$T/restart.sh {host} 30"
sed -i "s|^worker_path = .*|worker_path = $LIAR|" "$T/mandrill.conf"
LIAR_WORKER=$WORKER LIAR_PGID=$VICTIM \
    "$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1 &
PID=$!
wait_for "named process group $VICTIM" 15 || fail "liar: no refusal logged"
LIAR_PID=$(worker_pids | head -1)
check "liar: one line, naming the worker's pid and the group" \
    "$(grep -c "worker pid $LIAR_PID named process group $VICTIM for msg_id=.*: its leader is not a child of the worker; refused" "$LOG")" 1
# The worker goes: the supervisor kills the groups of its commands, but
# not one it was told of and refused.
kill -KILL "$LIAR_PID"
wait_for "lost holding 1 messages" 10 || fail "liar: worker loss not seen"
sleep 0.5
check_cmd "liar: the victim survived its worker's loss" kill -0 "$VICTIM"
check "liar: no group killed on its word" \
    "$(grep -c "killed process group $VICTIM " "$LOG")" 0
kill -QUIT "$PID"
wait_exit 30
check "liar: clean exit" "$RC" 0
check_cmd "liar: the victim survived mandrilld" kill -0 "$VICTIM"
# What the relays left behind, by PID: a real worker whose relay was
# killed finishes its restart alone; each command leads its own group.
for p in $(awk '/^start /{print $3}' "$MARK"); do
	kill -9 "-$p" 2>/dev/null
done
for w in $(sed -n 's/^pgid_liar: real worker pid //p' "$LOG"); do
	kill -KILL "$w" 2>/dev/null
done
kill -KILL "$VICTIM"
wait "$VICTIM" 2>/dev/null
EXTRA_PIDS=

# --- one mandrilld per state_dir ------------------------------------------------
# The first runs as a daemon: the lock it took before detaching names
# the daemon's pid, not the parent's.
lock_conf() {
	write_conf <<EOF
pid_file = $T/mandrilld.pid
log_file = $T/first.log
workers = 1

[source]
rate = 2

[restart]
allow = cattle-*
sim_latency = 0..5ms
EOF
}
rm -rf "$T/state"
lock_conf
"$MANDRILLD" -c "$T/mandrill.conf" >"$T/first.out" 2>&1
check "lock: the first starts as a daemon" "$?" 0
PID=$(cat "$T/mandrilld.pid")
LOG=$T/first.log
wait_for "worker 1 ready" 10 || fail "lock: the first has no worker"
check "lock: the lock file names the daemon" \
    "$(cat "$T/state/mandrilld.lock")" "$PID"
"$MANDRILLD" -f -c "$T/mandrill.conf" -p "$T/second.pid" >"$T/second.out" 2>&1
check "lock: a second on the same state_dir exits 69" "$?" 69
check "lock: in one line naming the first's pid" \
    "$(grep -c "state_dir $T/state is in use by mandrilld pid $PID " "$T/second.out")-$(wc -l < "$T/second.out")" 1-1
check_cmd "lock: the first still runs" kill -0 "$PID"
check "lock: its pid file is intact" "$(cat "$T/mandrilld.pid")" "$PID"
check "lock: the second wrote no pid file" "$(test -e "$T/second.pid" && echo yes || echo no)" no
# A second daemon says it on the terminal too, not only in the log.
"$MANDRILLD" -c "$T/mandrill.conf" >"$T/second.out" 2>&1
check "lock: a second daemon exits 69 too" "$?" 69
check "lock: and says why on its terminal" \
    "$(grep -c "^mandrilld: state_dir $T/state is in use by mandrilld pid $PID " "$T/second.out")" 1
check "lock: the first's pid file is still its own" "$(cat "$T/mandrilld.pid")" "$PID"
n=$(sql "SELECT count(*) FROM messages")
sleep 1
check_cmd "lock: the first goes on working" \
    test "$(sql "SELECT count(*) FROM messages")" -gt "$n"
kill -TERM "$PID"
wait_gone() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	! kill -0 "$1" 2>/dev/null
}
check_cmd "lock: the first drains and exits" wait_gone "$PID"
# Its lock went with it: the next one starts.
LOG=$T/third.log
sed -i "s|^log_file = .*|log_file = $LOG|" "$T/mandrill.conf"
start_mandrilld
wait_for "worker 1 ready" 10 || fail "lock: no start after the first exited"
check_cmd "lock: a new one starts once the first is gone" kill -0 "$PID"
stop_mandrilld "lock: the new one"

finish
