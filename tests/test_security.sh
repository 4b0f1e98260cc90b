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

finish
