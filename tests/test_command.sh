#!/bin/sh
# Real restarts (mode = command), the safety limits and hostile input.
# The restart command is a script that appends to a marker file, so the
# marker proves what was, and was not, ever run.
. "$(dirname "$0")/lib.sh"

MARK=$T/marker
cat > "$T/restart.sh" <<EOF
#!/bin/sh
# usage: restart.sh HOST [sleep-seconds]
echo "restart \$1 as uid \$(id -u) MANDRILL_HOST=\$MANDRILL_HOST PATH=\$PATH"
echo "start \$1 \$(date +%s%N)" >> "$MARK"
[ -n "\${2:-}" ] && sleep "\$2"
echo "end \$1 \$(date +%s%N)" >> "$MARK"
case "\$1" in *fail*) echo "it broke" >&2; exit 3;; esac
exit 0
EOF
cat > "$T/stubborn.sh" <<'EOF'
#!/bin/sh
# Ignores TERM, and so does its child: only KILL of the group ends them.
trap '' TERM
sh -c "trap '' TERM; sleep 30; echo child-survived" &
sleep 30
EOF
chmod 755 "$T/restart.sh" "$T/stubborn.sh"

# cmd_conf COUNT COMMAND [SOURCE-LINES] [RESTART-LINES] [MANDRILL-LINES]
cmd_conf() {
	write_conf <<EOF
workers = 2
jobs_per_worker = 8
max_in_flight = 16
busy_timeout = 1s
${5:-}

[source]
rate = 0
count = $1
exit_when_done = yes
instances = 0
${3:-}

[restart]
mode = command
command = $2
allow = cattle-*
max_attempts = ${MAXATT:-2}
backoff_min = 100ms
backoff_max = 200ms
${4:-}
EOF
}

reset() { rm -rf "$T/state" "$LOG" "$MARK"; }

# --- the command runs, its status and output are recorded -----------------------
reset
cmd_conf 10 "$T/restart.sh {host}"
start_mandrilld
wait_exit 60
check "command: exit 0" "$RC" 0
check "command: every message restarted" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 10
check "command: run once per message" "$(grep -c '^start ' "$MARK")" 10
check "command: exit status recorded" \
    "$(sql "SELECT count(*) FROM restarts WHERE exit_status = 0 AND outcome = 'restarted'")" 10
check "command: output tail recorded" \
    "$(sql "SELECT count(*) FROM restarts WHERE output LIKE 'restart cattle-% as uid %'")" 10
check "command: clean environment with MANDRILL_HOST" \
    "$(sql "SELECT count(*) FROM restarts WHERE output LIKE '%MANDRILL_HOST=' || host || ' PATH=/usr/sbin:/usr/bin:/sbin:/bin%'")" 10

# --- a failing command: exit status and stderr, retried, then dead --------------
reset
cmd_conf 3 "$T/restart.sh {host}-fail"
# the allow list matches the host, not the argument: cattle-* still holds
start_mandrilld
wait_exit 60
check "failing command: exit 0" "$RC" 0
check "failing command: dead after 2 attempts" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'dead' AND attempts = 2")" 3
check "failing command: status 3 and stderr recorded" \
    "$(sql "SELECT count(*) FROM restarts WHERE exit_status = 3 AND error = 'exit status 3' AND output LIKE '%it broke%'")" 6

# --- a command that cannot be spawned ------------------------------------------
reset
MAXATT=1 cmd_conf 2 "$T/no-such-program {host}"
start_mandrilld
wait_exit 60
check "spawn failure: exit 0" "$RC" 0
check "spawn failure: a failed attempt with the reason" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'failed' AND error LIKE 'cannot run $T/no-such-program: No such file or directory'")" 2

# --- restart_timeout: TERM to the group, KILL after the grace period -----------
reset
MAXATT=1 cmd_conf 1 "$T/stubborn.sh {host}" "" "restart_timeout = 500ms"
start_mandrilld
wait_exit 60
check "timeout: exit 0" "$RC" 0
check "timeout: failed as timed out, group killed" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'failed' AND error LIKE 'timed out after 0.500 s; process group killed'")" 1
check "timeout: TERM then KILL logged" \
    "$(grep -c 'ran past restart_timeout; sending TERM' "$LOG")-$(grep -c 'still running after TERM; sending KILL' "$LOG")" 1-1
check "timeout: no process of the group survives" \
    "$(pgrep -f "$T/stubborn.sh" | wc -l)-$(pgrep -f 'sleep 30' -P 1 | wc -l)" 0-0

# --- a worker killed mid-restart: its command's process group goes too ----------
reset
MAXATT=3 cmd_conf 1 "$T/restart.sh {host} 30" "" "restart_timeout = 1m"
sed -i 's/^backoff_min = 100ms$/backoff_min = 1s/; s/^backoff_max = 200ms$/backoff_max = 2s/' "$T/mandrill.conf"
start_mandrilld
n=0
while ! grep -q '^start ' "$MARK" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
sleep 0.3
for w in $(worker_pids); do
	pgrep -P "$w" >/dev/null 2>&1 && kill -KILL "$w"
done
wait_for "killed process group [0-9]* of msg_id=" 10 || fail "command group not killed"
sleep 0.5
check "worker killed: the restart command did not survive it" \
    "$(pgrep -f "$T/restart.sh" | wc -l)" 0
kill -QUIT "$PID"
wait_exit 30
check "worker killed: clean exit" "$RC" 0
check "worker killed: the attempt is recorded as lost or failed, never as restarted" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted'")" 0

# --- hostile payloads: all invalid, nothing ever spawned ------------------------
reset
corpus=$top_srcdir/tests/hostile/payloads.txt
n=$(wc -l < "$corpus")
cmd_conf 1 "$T/restart.sh {host}" "payload_file = $corpus"
start_mandrilld
wait_exit 60
check "hostile: exit 0" "$RC" 0
check "hostile: the corpus has at least 40 payloads" "$([ "$n" -ge 40 ] && echo yes)" yes
check "hostile: every payload dead-lettered" "$(sql "SELECT count(*) FROM dead_letters")" "$n"
check "hostile: every one with a reason" \
    "$(sql "SELECT count(*) FROM dead_letters WHERE reason IS NULL OR reason = ''")" 0
check "hostile: every one terminated as invalid" \
    "$(grep -c 'Done. Terminated .*outcome=invalid' "$LOG")" "$n"
check "hostile: rows with a msg_id are invalid" \
    "$(sql "SELECT count(*) FROM messages WHERE state != 'invalid'")" 0
check "hostile: nothing restarted" "$(sql "SELECT count(*) FROM restarts")" 0
check "hostile: nothing ever spawned" "$(test -e "$MARK" && echo spawned || echo none)" none
check "hostile: payload bytes kept in dead_letters" \
    "$(sql "SELECT count(*) FROM dead_letters WHERE payload IS NULL")" 1
check "hostile: one log line per record (no raw newline or escape)" \
    "$(grep -c "$(printf '\033')" "$LOG")" 0

# --- numeric host forms: never run, even with allow = * ------------------------
# deny = 127.* 10.* cannot know every spelling of an address; the host
# check refuses them all, and the reason reaches the dead letter.
reset
cat > "$T/numeric.txt" <<'EOF'
{"msg_id": "n1", "host": "2130706433"}
{"msg_id": "n2", "host": "0x7f.1"}
{"msg_id": "n3", "host": "127.1"}
{"msg_id": "n4", "host": "0177.0.0.1"}
{"msg_id": "n5", "host": "0x7f000001"}
{"msg_id": "n6", "host": "1.2.3.4"}
{"msg_id": "n7", "host": "host-1"}
{"msg_id": "n8", "host": "1host.example"}
{"msg_id": "n9", "host": "a1.b2"}
EOF
cmd_conf 1 "$T/restart.sh {host}" "payload_file = $T/numeric.txt"
sed -i 's/^allow = cattle-\*$/allow = *\ndeny = 127.* 10.*/' "$T/mandrill.conf"
start_mandrilld
wait_exit 60
check "numeric hosts: exit 0" "$RC" 0
check "numeric hosts: the six address forms are invalid" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'invalid'")" 6
check "numeric hosts: each dead letter says why" \
    "$(sql "SELECT count(*) FROM dead_letters WHERE reason LIKE '%resolves as an IPv4 address%'")" 6
check "numeric hosts: only the names ran" \
    "$(grep '^start ' "$MARK" | cut -d' ' -f2 | sort | tr '\n' ' ')" \
    "1host.example a1.b2 host-1 "

# a reload while publishing from a file: the file's payloads stay the set
reset
cmd_conf 1 "$T/restart.sh {host}" "payload_file = $corpus
rate = 20"
sed -i '0,/^rate = 0$/{/^rate = 0$/d}' "$T/mandrill.conf"
start_mandrilld
wait_for "Done. Terminated" 10
kill -HUP "$PID"
wait_exit 60
check "hostile + HUP: exit 0, all $n dead-lettered once" \
    "$RC-$(sql "SELECT count(*) FROM dead_letters")" "0-$n"

# --- max_concurrent: never more than one restart at a time ----------------------
reset
cmd_conf 6 "$T/restart.sh {host} 0.3" "" "max_concurrent = 1"
start_mandrilld
wait_exit 120
check "max_concurrent: exit 0" "$RC" 0
check "max_concurrent: all restarted" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 6
check "max_concurrent: others were held, not nacked" \
    "$(grep -c 'Held msg_id=.*(concurrency): .*max_concurrent is 1' "$LOG" | awk '{print ($1 > 0)}')-$(grep -c 'Nacked' "$LOG")" 1-0
awk '$1 == "start" { if (running > 0) overlap++; running++ } $1 == "end" { running-- }
    END { print overlap + 0 }' "$MARK" > "$T/overlap"
check "max_concurrent: the marker shows no overlap" "$(cat "$T/overlap")" 0

# --- max_per_minute: judged from the database, across a restart of mandrilld ----
reset
cmd_conf 3 "$T/restart.sh {host}" "" "max_per_minute = 3"
start_mandrilld
wait_exit 60
check "max_per_minute: first run restarts 3" "$(grep -c '^start ' "$MARK")" 3
sed -i 's/^count = 3$/count = 0/; s/^exit_when_done = yes$/exit_when_done = no/' "$T/mandrill.conf"
rm -f "$LOG"
start_mandrilld
wait_for "Held msg_id=.*(rate): .*max_per_minute is 3" 20 || fail "max_per_minute: not held after the restart"
check "max_per_minute: the held reason is in the database" \
    "$(sql "SELECT count(*) > 0 FROM messages WHERE held = 'rate' AND held_since IS NOT NULL")" 1
kill -TERM "$PID"
wait_exit 30
check "max_per_minute: nothing more ran in the same minute" "$(grep -c '^start ' "$MARK")" 3

# --- dry_run: recorded and logged, nothing run ------------------------------------
reset
cmd_conf 4 "$T/restart.sh {host} --now" "" "dry_run = yes"
start_mandrilld
wait_exit 60
check "dry run: exit 0" "$RC" 0
check "dry run: nothing spawned" "$(test -e "$MARK" && echo spawned || echo none)" none
check "dry run: attempts recorded as dry-run with the command line" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'dry-run' AND output = '$T/restart.sh ' || host || ' --now'")" 4
check "dry run: logged" "$(grep -c 'Dry run: would run: ' "$LOG")" 4
check "dry run: not a real restart for min_interval" \
    "$(sql "SELECT count(*) FROM last_restart")" 0
check "dry run: the requests are used up, in a state of their own" \
    "$(sql "SELECT group_concat(state) FROM (SELECT DISTINCT state FROM messages)")" dry-run
check "dry run: acked as dry-run, not as restarted" \
    "$(grep -c 'Done. Acked msg_id=.* outcome=dry-run' "$LOG")" 4

# --- enabled = no: nothing pulled, nothing lost; HUP turns it back on -----------
reset
cmd_conf 5 "$T/restart.sh {host}" "" "enabled = no"
start_mandrilld
wait_for "worker [0-9]* ready" 20 || fail "kill switch: no worker ready"
sleep 2
check "kill switch: nothing pulled while paused" "$(grep -c 'Pulled msg_id' "$LOG")" 0
check "kill switch: nothing spawned" "$(test -e "$MARK" && echo spawned || echo none)" none
sed -i 's/^enabled = no$/enabled = yes/' "$T/mandrill.conf"
kill -HUP "$PID"
wait_exit 60
check "kill switch: after HUP all restarted, exit 0" \
    "$RC-$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 0-5

# --- refusals at start-up ------------------------------------------------------------
reset
cmd_conf 1 "$T/restart.sh"
"$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
check "a command without {host} is refused (78)" "$?" 78
check "... naming the problem" "$(grep -c 'command must name {host}' "$T/out")" 1
cmd_conf 1 "restart.sh {host}"
"$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
check "a relative command is refused" "$(grep -c 'absolute path' "$T/out")" 1
cmd_conf 1 "$T/restart.sh {host}"
chmod o+w "$T/mandrill.conf"
"$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
check "a world-writable config file is refused (78)" "$?" 78
chmod o-w "$T/mandrill.conf"
mkdir -p "$T/state"
chmod 777 "$T/state"
"$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
check "a world-writable state_dir is refused, by -t too (78)" "$?" 78
check "... naming it" "$(grep -c 'writable by everyone' "$T/out")" 1
rm -rf "$T/state"

# --- mandrilld -t: what start-up would fail on, found before it -------------------
# as_user CMD...: run CMD as a user that is not root (nobody when we are
# root, ourselves otherwise), so that permissions count
as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
	else
		"$@"
	fi
}
reset
cmd_conf 1 "$T/restart.sh {host}"
sed -i "s|^state_dir = .*|state_dir = $T/no/such/dir/state|" "$T/mandrill.conf"
"$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
check "-t: a state_dir whose parent is missing is refused (78)" "$?" 78
check "... naming the parent" \
    "$(grep -c "state_dir $T/no/such/dir/state cannot be made in $T/no/such/dir: No such file or directory" "$T/out")" 1
"$MANDRILLD" -f -c "$T/mandrill.conf" > "$T/out" 2>&1
check "... on which start-up does fail (73)" "$?" 73
cmd_conf 1 "$T/restart.sh {host}" "" "" "log_file = $T/no-logs/mandrilld.log"
"$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
check "-t: a log_file in a missing directory is refused (78)" \
    "$?-$(grep -c "log_file $T/no-logs/mandrilld.log: cannot be created in $T/no-logs" "$T/out")" 78-1
cmd_conf 1 "$T/restart.sh {host}" "" "" "pid_file = $T/no-run/mandrilld.pid"
"$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
check "-t: a pid_file in a missing directory is refused (78)" "$?" 78
if [ "$(id -u)" -ne 0 ] || id nobody >/dev/null 2>&1; then
	# A log directory the user cannot write, the state directory its own.
	reset
	chmod 755 "$T"
	mkdir -p "$T/logs" "$T/state"
	chmod 555 "$T/logs"
	[ "$(id -u)" -eq 0 ] && chown nobody "$T/state"
	cmd_conf 1 "$T/restart.sh {host}" "" "" "log_file = $T/logs/mandrilld.log"
	chmod 644 "$T/mandrill.conf"
	as_user "$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
	check "-t: a log directory the user cannot write is refused (78)" "$?" 78
	check "... naming it" \
	    "$(grep -c "log_file $T/logs/mandrilld.log: cannot be created in $T/logs: Permission denied" "$T/out")" 1
	as_user "$MANDRILLD" -f -c "$T/mandrill.conf" > "$T/out" 2>&1
	check "... on which start-up does fail (73)" "$?" 73
	chmod 755 "$T/logs"
	[ "$(id -u)" -eq 0 ] && chown nobody "$T/logs"
	as_user "$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
	check "-t: the same, once the directory is the user's, passes" "$?" 0
	# A state directory the workers could not write the database in.
	chmod 555 "$T/state"
	sed -i '/^log_file = /d' "$T/mandrill.conf"
	as_user "$MANDRILLD" -t -c "$T/mandrill.conf" > "$T/out" 2>&1
	check "-t: a state_dir the workers cannot write is refused (78)" \
	    "$?-$(grep -c "could not write the database there: Permission denied" "$T/out")" 78-1
	chmod 755 "$T/state"
	chmod 700 "$T"
	rm -rf "$T/logs" "$T/state"
else
	note "root, and no user nobody: unwritable directories not tested"
fi

# --- user = nobody: workers and commands drop root --------------------------------
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	reset
	chmod 755 "$T"
	cmd_conf 2 "$T/restart.sh {host}" "" "" "user = nobody"
	chmod 644 "$T/mandrill.conf"
	touch "$MARK"; chmod 666 "$MARK"
	start_mandrilld
	wait_exit 60
	check "user: exit 0" "$RC" 0
	check "user: commands ran as nobody" \
	    "$(sql "SELECT count(*) FROM restarts WHERE output LIKE '%as uid $(id -u nobody) %'")" 2
	check "user: state_dir owned by nobody" "$(stat -c %U "$T/state")" nobody
	check "user: database 0640, owned by nobody" "$(stat -c '%a %U' "$DB")" "640 nobody"
	check "user: workers run as nobody" \
	    "$(grep -c 'cannot become\|no such user' "$LOG")" 0
else
	note "not root: privilege drop not tested"
fi

finish
