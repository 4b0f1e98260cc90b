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

# --- files root writes are never reached through a symlink ---------------------
LOG=$T/mandrilld.log
rm -rf "$T/state" "$LOG" "$MARK"
echo precious > "$T/target"
# try_t WHAT: mandrilld -t on $T/mandrill.conf, output in $T/out
try_t() {
	"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/out" 2>&1
	check "$1: refused by -t (78)" "$?" 78
	check "$1: in one line" "$(wc -l < "$T/out")" 1
}
for key in pid_file log_file; do
	sec_conf "$T/restart.sh {host}" "$key = $T/link"
	ln -sf "$T/target" "$T/link"
	try_t "symlinked $key"
	check "symlinked $key: the line names it" \
	    "$(grep -c "\[mandrill\] $key: $T/link is a symlink; refusing to write through it as root" "$T/out")" 1
	"$MANDRILLD" -f -c "$T/mandrill.conf" >"$T/out" 2>&1
	check "symlinked $key: start-up refused (78)" "$?" 78
	check "symlinked $key: the target is untouched" "$(cat "$T/target")" precious
	rm -f "$T/link"
done
sec_conf "$T/restart.sh {host}"
printf '\n[metrics]\nmetrics_file = %s\nmetrics_interval = 1s\n' "$T/link" >> "$T/mandrill.conf"
ln -sf "$T/target" "$T/link"
try_t "symlinked metrics_file"
check "symlinked metrics_file: the line names it" \
    "$(grep -c "\[metrics\] metrics_file: $T/link is a symlink" "$T/out")" 1
rm -f "$T/link"
check "symlinked metrics_file: the target is untouched" "$(cat "$T/target")" precious

# At run time: a symlink planted as the metrics temporary file is removed,
# not followed; one planted as the metrics file is refused; one planted
# as the log file is not followed when the log is reopened.
write_conf <<EOF
log_file = $LOG
workers = 1

[source]
rate = 1

[restart]
allow = cattle-*

[metrics]
metrics_file = $T/link
metrics_interval = 1s
EOF
"$MANDRILLD" -f -c "$T/mandrill.conf" >/dev/null 2>&1 &
PID=$!
n=0
while [ ! -f "$T/link" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
check "metrics: written" "$(grep -c '^mandrill_workers 1$' "$T/link")" 1
ln -s "$T/target" "$T/link.tmp"
sleep 1.5
check "metrics: a planted temporary symlink is not followed" "$(cat "$T/target")" precious
check "metrics: and is gone" "$(test -L "$T/link.tmp" && echo link || echo gone)" gone
rm -f "$T/link"
ln -s "$T/target" "$T/link"
wait_for "metrics: $T/link is a symlink; refusing to replace it; not written until that changes" 5 ||
    fail "metrics: a symlinked metrics file not refused"
check "metrics: the symlink's target is untouched" "$(cat "$T/target")" precious
check "metrics: the symlink stays" "$(test -L "$T/link" && echo link || echo gone)" link
sleep 2.2
check "metrics: the refusal is logged once, not every interval" \
    "$(grep -c 'ERROR metrics: .*refusing to replace it' "$LOG")" 1
rm -f "$T/link"
wait_for "metrics: $T/link written again" 5 || fail "metrics: not written again"
mv "$LOG" "$T/old.log"
ln -s "$T/target" "$T/mandrilld.log"
LOG=$T/old.log
kill -USR1 "$PID"
wait_for "reopen log $T/mandrilld.log: is a symlink; refusing to follow it; logging on where it was" 5 ||
    fail "log: reopening through a symlink not refused"
wait_for "worker 1: reopen $T/mandrilld.log: is a symlink; refusing to follow it" 5 ||
    fail "log: a worker reopened through a symlink"
check "log: the symlink's target is untouched" "$(cat "$T/target")" precious
kill -TERM "$PID"
wait_exit 30
check "run-time symlinks: mandrilld exits 0" "$RC" 0
check "metrics: the target is untouched at exit" "$(cat "$T/target")" precious
check "log: the old file got the last lines" "$(grep -c 'mandrilld exiting with status 0' "$LOG")" 1
rm -f "$T/link" "$LOG" "$T/mandrilld.log"
LOG=$T/mandrilld.log

# --- programs root runs, and its configuration, are nobody else's ---------------
sec_conf "$T/restart.sh {host}"
"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/out" 2>&1
check "trust: the test's own layout passes -t" "$?" 0
chmod g+w "$T/restart.sh"
try_t "a group-writable restart command"
check "a group-writable restart command: the line says so" \
    "$(grep -c "\[restart\] command: refusing to run its program: $T/restart.sh is writable by its group (chmod g-w)" "$T/out")" 1
"$MANDRILLD" -f -c "$T/mandrill.conf" >"$T/out" 2>&1
check "a group-writable restart command: start-up refused (78)" "$?" 78
check "a group-writable restart command: nothing ran" "$(test -e "$MARK" && echo ran || echo none)" none
chmod g-w "$T/restart.sh"
mkdir "$T/gw"
cp "$T/restart.sh" "$T/gw/restart.sh"
chmod 775 "$T/gw"
sec_conf "$T/gw/restart.sh {host}"
try_t "a restart command in a group-writable directory"
check "... naming the directory" \
    "$(grep -c "its directory $T/gw is writable by its group" "$T/out")" 1
# Sticky and root's, as /tmp: what lies below cannot be renamed.
chmod 1777 "$T/gw"
mkdir "$T/gw/sub"
cp "$T/restart.sh" "$T/gw/sub/restart.sh"
sec_conf "$T/gw/sub/restart.sh {host}"
"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/out" 2>&1
check "a restart command below a sticky root directory passes" "$?" 0
chmod 777 "$T/gw"
try_t "a restart command below a world-writable, non-sticky directory"
check "... naming it" "$(grep -c "the directory $T/gw is writable by its group or others and not sticky" "$T/out")" 1
# A program that does not exist yet, in a safe directory, is not refused
# here (it fails when it runs); in an unsafe one it is.
sec_conf "$T/gw/none.sh {host}"
try_t "a missing restart command in a world-writable directory"
sec_conf "$T/none.sh {host}"
"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/out" 2>&1
check "a missing restart command in a safe directory passes -t" "$?" 0
# A symlink to a safe program, itself in an unsafe directory.
chmod 755 "$T/gw"
ln -s "$T/restart.sh" "$T/gw/sub/link.sh"
chmod 777 "$T/gw/sub"
sec_conf "$T/gw/sub/link.sh {host}"
try_t "a restart command linked from a world-writable directory"
chmod 755 "$T/gw/sub"
# The worker program.
cp "$WORKER" "$T/worker"
chmod 775 "$T/worker"
sec_conf "$T/restart.sh {host}"
sed -i "s|^worker_path = .*|worker_path = $T/worker|" "$T/mandrill.conf"
try_t "a group-writable worker_path"
check "... saying why" "$(grep -c "\[mandrill\] worker_path: refusing to run it as root: $T/worker is writable by its group" "$T/out")" 1
if id nobody >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	chmod 755 "$T/worker"
	chown nobody "$T/worker"
	try_t "a worker_path owned by another user"
	check "... naming the owner" "$(grep -c "is owned by neither root nor the user mandrilld runs as (uid $(id -u nobody))" "$T/out")" 1
fi
# The configuration file.
sec_conf "$T/restart.sh {host}"
chmod g+w "$T/mandrill.conf"
try_t "a group-writable configuration file"
chmod g-w "$T/mandrill.conf"
if id nobody >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	chown nobody "$T/mandrill.conf"
	try_t "a configuration file owned by another user"
	chown 0 "$T/mandrill.conf"
fi
mkdir "$T/ww"
chmod 1777 "$T/ww"
cp "$T/mandrill.conf" "$T/ww/mandrill.conf"
"$MANDRILLD" -t -c "$T/ww/mandrill.conf" >"$T/out" 2>&1
check "a configuration file in a world-writable directory: refused (78)" "$?" 78
check "... in one line naming the directory" \
    "$(grep -c "^mandrilld: $T/ww/mandrill.conf: refusing this configuration file: its directory $T/ww is writable by everyone (chmod o-w)$" "$T/out")-$(wc -l < "$T/out")" 1-1
"$MANDRILLD" -f -c "$T/ww/mandrill.conf" >"$T/out" 2>&1
check "a configuration file in a world-writable directory: start-up refused (78)" "$?" 78

finish
