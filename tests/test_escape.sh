#!/bin/sh
# A restart command that leaves its process group (setsid) is killed all
# the same: on a timeout, on a cancel (the lease lost), when its worker is
# killed, and, for what a finished command left running, when its worker
# exits.  Each escaped process must be gone afterwards, reaped too: no
# /proc entry, not even a zombie.
. "$(dirname "$0")/lib.sh"

# escape.sh HOST MODE: start two sleeps outside the process group, then
# hang (MODE timeout, cancel, worker) or end at once (MODE exit).  The
# "chain" one stays a child of the script, with an empty environment (no
# MANDRILL_RUN: found by its parent); the "orphan" one is reparented to
# the worker at once (found by its MANDRILL_RUN).
cat > "$T/escape.sh" <<EOF
#!/bin/sh
setsid env -i sleep 300 &
echo \$! > "$T/\$2.chain.tmp" && mv "$T/\$2.chain.tmp" "$T/\$2.chain"
(setsid sleep 300 & echo \$! > "$T/\$2.orphan.tmp" &&
    mv "$T/\$2.orphan.tmp" "$T/\$2.orphan")
[ "\$2" = exit ] && exit 0
sleep 60
EOF
chmod 755 "$T/escape.sh"

# esc_conf MODE [RESTART-LINES] [LEASE-LINES]: one message, kept running
esc_conf() {
	write_conf <<EOF
workers = 1
jobs_per_worker = 4
drain_timeout = 5s

[source]
rate = 0
count = 1
instances = 0
${4:-}

[restart]
mode = command
command = $T/escape.sh {host} $1
allow = cattle-*
max_attempts = 1
${2:-}

[lease]
${3:-}
EOF
}

# wait_pids MODE: both sleeps have started and are alive; their pids
# are in CHAIN and ORPHAN (and killed at exit if the test fails)
wait_pids() {
	i=0
	until [ -s "$T/$1.chain" ] && [ -s "$T/$1.orphan" ]; do
		i=$((i + 1))
		[ "$i" -gt 100 ] && break
		sleep 0.1
	done
	CHAIN=$(cat "$T/$1.chain" 2>/dev/null)
	ORPHAN=$(cat "$T/$1.orphan" 2>/dev/null)
	EXTRA_PIDS="$EXTRA_PIDS $CHAIN $ORPHAN"
	check "$1: both escaped sleeps run, out of the command's group" \
	    "$(is_sleep "$CHAIN")$(is_sleep "$ORPHAN")" yesyes
}

is_sleep() {
	[ -n "$1" ] && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null |
	    grep -q '^sleep 300 $' && echo yes || echo no
}

# gone PID SECONDS: PID has no /proc entry (dead and reaped) in time
gone() {
	[ -n "$1" ] || return 1
	i=0
	while [ -d "/proc/$1" ]; do
		i=$((i + 1))
		[ "$i" -gt $(($2 * 10)) ] && return 1
		sleep 0.1
	done
	return 0
}

reset() { rm -rf "$T/state" "$LOG"; }

# --- restart_timeout: the escaped processes go with the group ----------------
reset
esc_conf timeout "restart_timeout = 1s"
start_mandrilld
wait_pids timeout
wait_for 'ran past restart_timeout' 10 || fail "timeout: no timeout logged"
check_cmd "timeout: the sleep that kept its parent is gone, reaped" \
    gone "$CHAIN" 10
check_cmd "timeout: the sleep reparented to the worker is gone, reaped" \
    gone "$ORPHAN" 10
check "timeout: the log says processes had left the group" \
    "$(grep -c 'of its processes had left its process group' "$LOG" |
    awk '{print ($1 >= 1)}')" 1
check "timeout: mandrilld still running" "$(kill -0 "$PID" && echo yes)" yes
check "timeout: the attempt failed as timed out" \
    "$(sql "SELECT count(*) FROM restarts WHERE error LIKE 'timed out%'")" 1
stop_mandrilld timeout

# --- a cancel (max_lease): the same, mandrilld and the worker running -------
reset
esc_conf cancel "restart_timeout = 1m" "max_lease = 2s" "ack_deadline = 1s"
start_mandrilld
wait_pids cancel
wait_for 'Cancelling restart host=' 15 || fail "cancel: no cancel logged"
check_cmd "cancel: the sleep that kept its parent is gone, reaped" \
    gone "$CHAIN" 10
check_cmd "cancel: the sleep reparented to the worker is gone, reaped" \
    gone "$ORPHAN" 10
check "cancel: no worker died (the worker itself killed them)" \
    "$(grep -c 'worker 1 (pid' "$LOG")" 0
stop_mandrilld cancel

# --- the worker killed: mandrilld kills what it left behind -----------------
reset
esc_conf worker "restart_timeout = 1m"
start_mandrilld
wait_pids worker
for w in $(worker_pids); do
	kill -KILL "$w"
done
wait_for 'killed process group' 10 || fail "worker: its group not killed"
check_cmd "worker killed: the sleep that kept its parent is gone, reaped" \
    gone "$CHAIN" 10
check_cmd "worker killed: the sleep reparented to the worker is gone, reaped" \
    gone "$ORPHAN" 10
check "worker killed: mandrilld says it killed what was left" \
    "$(grep -c 'processes left behind by worker 1' "$LOG" |
    awk '{print ($1 >= 1)}')" 1
stop_mandrilld "worker killed"

# --- a command that ends and leaves a process: killed when its worker exits --
reset
esc_conf exit "restart_timeout = 1m"
start_mandrilld
wait_pids exit
wait_for 'Restarted host=' 10 || fail "exit: the restart did not end"
sleep 0.5
check "exit: what a finished command left runs on meanwhile" \
    "$(is_sleep "$CHAIN")$(is_sleep "$ORPHAN")" yesyes
stop_mandrilld exit
check_cmd "exit: the sleep left behind (its parent gone) is gone, reaped" \
    gone "$CHAIN" 5
check_cmd "exit: the other sleep left behind is gone, reaped" \
    gone "$ORPHAN" 5
check "exit: the worker says it killed them" \
    "$(grep -c 'killed 2 processes left behind by restart commands' "$LOG")" 1

finish
