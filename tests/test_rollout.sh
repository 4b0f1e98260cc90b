#!/bin/sh
# Issue 16, the rollout rules on the sim source: a maintenance window
# (outside it nothing starts and nothing is lost; when it opens, the
# requests go), group concurrency (no overlap within a group while other
# groups proceed), health checks (a host whose check fails is not
# restarted: the attempt fails, and counts against the budget), and -t
# refusing a bad line of each key.
. "$(dirname "$0")/lib.sh"

# conf RESTART_LINES: the sim reading $T/payloads
conf() {
	write_conf <<CONF
workers = 2
jobs_per_worker = 8
max_in_flight = 16

[source]
type = sim
rate = 50
payload_file = $T/payloads
exit_when_done = ${EXIT_WHEN_DONE:-yes}
${SOURCE_EXTRA:-}

[restart]
allow = cattle-* rack-* other-*
max_attempts = 1
$1
CONF
}

# --- -t: one clear line for each bad key --------------------------------
: >"$T/payloads"
bad_line() {	# label, [restart] lines, the words the error must hold
	conf "$2"
	"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/t.out" 2>&1
	check "-t refuses $1" "$?" 78
	check "-t says what is wrong with $1 in one line" \
	    "$(grep -c -- "$3" "$T/t.out")-$(wc -l <"$T/t.out")" 1-1
}
bad_line "a window hour 9:00" "window = Mon-Fri 9:00-17:00" \
    '\[restart\] window: span 1 "Mon-Fri 9:00-17:00": want a time range HH:MM-HH:MM'
bad_line "a window day Funday" "window = Funday 09:00-10:00" \
    '\[restart\] window: span 1 "Funday 09:00-10:00": want a day'
bad_line "an empty second window span" "window = Mon 09:00-10:00,, Tue 09:00-10:00" \
    '\[restart\] window: span 2 "": an empty span'
bad_line "an unknown timezone" "timezone = Mars/Olympus_Mons" \
    '\[restart\] timezone: unknown zone "Mars/Olympus_Mons"'
bad_line "a timezone that is a path" "timezone = ../../etc/passwd" \
    '\[restart\] timezone: "../../etc/passwd" is not an IANA zone name'
bad_line "a group regex that does not compile" "group = ^(rack" \
    '\[restart\] group: "^(rack": '
bad_line "a group regex without a capture group" "group = ^rack-" \
    '\[restart\] group: "^rack-" has no capture group'
bad_line "a check in sim mode" "mode = sim
check = /bin/true {host}" '\[restart\] check needs mode = command'
bad_line "a check with an unclosed quote" "mode = command
command = /bin/true {host}
check = /bin/echo 'up {host}" '\[restart\] check: '
bad_line "a check_timeout of 0s" "mode = command
command = /bin/true
check = /bin/true
check_timeout = 0s" 'check_timeout'

bad_line "a max_lease shorter than the lease" "[lease]
max_lease = 5s" '\[lease\] max_lease (5s) is shorter than the lease itself (\[source\] ack_deadline, 10s)'

# --- a window that is closed now: held, then restarted when it opens ----
# The clock is faketime's: a Monday at 08:59:45 UTC, the window opens at
# 09:00; the wait is longer than max_lease, which no wait may end.
command -v faketime >/dev/null || fail "faketime is not installed"
# Under --enable-sanitizers libfaketime comes before the ASan runtime.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS
: >"$T/payloads"
for i in $(seq 1 20); do
	printf '{"msg_id": "w-%d", "host": "cattle-%d"}\n' "$i" "$i" >>"$T/payloads"
done
SOURCE_EXTRA="ack_deadline = 2s"
conf "mode = sim
sim_latency = 10ms..20ms
sim_failure_rate = 0
window = Mon-Fri 09:00-17:00, Sat 10:00-12:00
timezone = UTC

[lease]
max_lease = 6s"
SOURCE_EXTRA=
faketime -f "@2026-12-07 08:59:45" "$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1 &
PID=$!
wait_exit 60
check "window: mandrilld ran to the end and exited 0" "$RC" 0
check "window: the requests were held, saying why and until when" \
    "$(grep -c 'Held msg_id=.*(window): outside the window (Mon-Fri 09:00-17:00, Sat 10:00-12:00 UTC): opens in [0-9]*s' "$LOG" |
       awk '{print ($1 >= 20)}')" 1
check "window: no restart started before 09:00" \
    "$(sql "SELECT count(*) FROM restarts WHERE started < '2026-12-07T09:00'")" 0
check "window: every request restarted once the window opened" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted' AND started >= '2026-12-07T09:00'")" 20
check "window: nothing lost, nothing dead" \
    "$(sql "SELECT count(*) FROM messages WHERE state <> 'restarted'")-$(sql "SELECT count(*) FROM dead_letters")" 0-0
check "window: every message acked" "$(count_log 'Done. Acked')" 20
check "window: no lease given up while waiting longer than max_lease" \
    "$(count_log 'Lease lost')-$(sql "SELECT max(deliveries) FROM messages")" 0-1

# --- the wall clock steps back out of the window: nothing more starts ---
# libfaketime reads the time from a file; the monotonic clock stays real.
# Inside the window at 16:59:50, the clock is stepped back to 08:00.
LOG=$T/step.log
rm -rf "$T/state"
: >"$T/payloads"
for i in $(seq 1 40); do
	printf '{"msg_id": "s-%d", "host": "cattle-%d"}\n' "$i" "$i" >>"$T/payloads"
done
EXIT_WHEN_DONE=no
SOURCE_EXTRA="rate = 4"
conf "mode = sim
sim_latency = 10ms..20ms
sim_failure_rate = 0
window = Mon-Fri 09:00-17:00
timezone = UTC"
sed -i '/^rate = 50$/d' "$T/mandrill.conf"
EXIT_WHEN_DONE=
SOURCE_EXTRA=
echo "@2026-12-07 16:59:50" >"$T/faketime"
LD_PRELOAD=$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -1) \
FAKETIME_TIMESTAMP_FILE=$T/faketime FAKETIME_NO_CACHE=1 \
FAKETIME_DONT_FAKE_MONOTONIC=1 start_mandrilld
wait_for "Done. Acked msg_id=payload-6 " 20 || fail "step: nothing restarted in the window"
echo "@2026-12-07 08:00:00" >"$T/faketime"
sleep 4
check "step: restarts started inside the window before the step" \
    "$(sql "SELECT count(*) > 0 FROM restarts WHERE started >= '2026-12-07T16:59'")" 1
check "step: none started after the clock stepped back to 08:00" \
    "$(sql "SELECT count(*) FROM restarts WHERE started < '2026-12-07T16:59'")" 0
check "step: the later requests are held by the window" \
    "$(grep -c 'Held msg_id=.*(window): outside the window' "$LOG" | awk '{print ($1 > 0)}')" 1
drain_at=$(date +%s)
ctl drain >/dev/null
wait_exit 20
check "step: a drain with requests held by the window exits 0" "$RC" 0
check "step: and does not wait for the window (nor for drain_timeout)" \
    "$(( $(date +%s) - drain_at < 10 ))" 1
check "step: nothing lost: every request not restarted is still to come" \
    "$(sql "SELECT count(*) FROM messages WHERE state NOT IN ('restarted', 'received')")-$(sql "SELECT count(*) FROM dead_letters")" 0-0

LOG=$T/groups.log
# --- groups: at most one restart at a time per group; the groups overlap -
cat >"$T/restart.sh" <<'EOF'
#!/bin/sh
sleep 0.3
EOF
chmod +x "$T/restart.sh"
rm -rf "$T/state"
: >"$T/payloads"
for g in a b c; do
	for i in 1 2 3; do
		printf '{"msg_id": "g-%s%d", "host": "rack-%s-%d"}\n' "$g" "$i" "$g" "$i" >>"$T/payloads"
	done
done
# A group longer than a payload's may be: the regex's capture of a name.
long=$(printf 'a%.0s' $(seq 1 50)).$(printf 'b%.0s' $(seq 1 20))
for i in 1 2 3; do
	printf '{"msg_id": "g-l%d", "host": "rack-%s-%d"}\n' "$i" "$long" "$i" >>"$T/payloads"
done
# Two hosts the regex does not place, in one group named by the payload.
printf '{"msg_id": "g-o1", "host": "other-1", "group": "special"}\n' >>"$T/payloads"
printf '{"msg_id": "g-o2", "host": "other-2", "group": "special"}\n' >>"$T/payloads"
printf '{"msg_id": "g-bad", "host": "other-3", "group": "no spaces"}\n' >>"$T/payloads"
conf "mode = command
command = $T/restart.sh {host}
group = ^rack-([^-]+)-
max_concurrent_per_group = 1"
start_mandrilld
wait_exit 60
check "groups: mandrilld exited 0" "$RC" 0
check "groups: every host restarted" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted'")" 14
check "groups: a 71-character group is a group too" \
    "$(sql "$OVERLAP_SQL AND a.host LIKE 'rack-aaa%' AND b.host LIKE 'rack-aaa%'")-$(sql "SELECT count(DISTINCT group_name) FROM hosts WHERE host LIKE 'rack-aaa%' AND length(group_name) = 71")" 0-1
for g in a b c; do
	check "groups: no two restarts of rack-$g overlap" \
	    "$(sql "$OVERLAP_SQL AND a.host LIKE 'rack-$g-%' AND b.host LIKE 'rack-$g-%'")" 0
done
check "groups: the payload's group is a group too" \
    "$(sql "$OVERLAP_SQL AND a.host LIKE 'other-%' AND b.host LIKE 'other-%'")" 0
check "groups: the other groups proceeded at the same time" \
    "$(overlaps | awk '{print ($1 > 0)}')" 1
check "groups: each host's group is in hosts" \
    "$(sql "SELECT group_concat(host || '=' || group_name, ' ') FROM (SELECT * FROM hosts WHERE host IN ('rack-b-2', 'other-1') ORDER BY host)")" \
    "other-1=special rack-b-2=b"
check "groups: a bad group in a payload makes it invalid, saying why" \
    "$(sql "SELECT state || ': ' || error FROM messages WHERE msg_id = 'g-bad'")" \
    "invalid: group must be 1 to 63 letters, digits, '.', '_' or '-'"
check "groups: held messages said which group was full" \
    "$(grep -c 'Held msg_id=.*(group): 1 restarts running in group [abc], max_concurrent_per_group is 1' "$LOG" |
       awk '{print ($1 > 0)}')" 1

LOG=$T/checks.log
# --- health checks: a host whose check never passes is not restarted ---
cat >"$T/check.sh" <<EOF
#!/bin/sh
case "\$1" in
cattle-sick*) echo "still down: no ssh on \$1"; exit 1 ;;
cattle-slow)	# up on its second check
	if [ -e "$T/slow-seen" ]; then exit 0; fi
	touch "$T/slow-seen"; echo booting; exit 1 ;;
esac
exit 0
EOF
chmod +x "$T/check.sh"
printf '#!/bin/sh\nexit 0\n' >"$T/restart.sh"
rm -rf "$T/state"
: >"$T/payloads"
printf '{"msg_id": "c-ok", "host": "cattle-ok"}\n' >>"$T/payloads"
printf '{"msg_id": "c-slow", "host": "cattle-slow"}\n' >>"$T/payloads"
printf '{"msg_id": "c-sick1", "host": "cattle-sick1"}\n' >>"$T/payloads"
printf '{"msg_id": "c-sick2", "host": "cattle-sick2"}\n' >>"$T/payloads"
EXIT_WHEN_DONE=no
conf "mode = command
command = $T/restart.sh {host}
check = $T/check.sh {host}
check_timeout = 1s
check_interval = 200ms
max_failures = 2"
EXIT_WHEN_DONE=
start_mandrilld
wait_for "error budget: 2 of [0-9]* attempts failed" 30 ||
    fail "checks: the failed checks did not spend the budget"
check "checks: a host whose check passes is restarted" \
    "$(sql "SELECT outcome || ' ' || (check_ms IS NOT NULL) FROM restarts WHERE host = 'cattle-ok'")" \
    "restarted 1"
check "checks: a host up on its second check is restarted, after check_interval" \
    "$(sql "SELECT outcome || ' ' || (check_ms >= 200) FROM restarts WHERE host = 'cattle-slow'")" \
    "restarted 1"
check "checks: a failing check fails the attempt, with the reason" \
    "$(sql "SELECT count(*) FROM restarts WHERE host LIKE 'cattle-sick%' AND outcome = 'failed' AND exit_status = 0 AND error LIKE 'check failed: exit status 1, % checks in %'")" 2
check "checks: the check's time and output are recorded with the attempt" \
    "$(sql "SELECT count(*) FROM restarts WHERE host = 'cattle-sick1' AND check_ms >= 800 AND check_output LIKE '%still down: no ssh on cattle-sick1%'")" 1
check "checks: a host whose check failed is not counted as restarted" \
    "$(sql "SELECT count(*) FROM hosts WHERE host LIKE 'cattle-sick%' AND last_ok IS NULL AND last_outcome = 'failed'")" 2
check "checks: the failures count against the budget: paused" \
    "$(ctl status | grep -c '^PAUSED: error budget: 2 of [0-9]* attempts failed')" 1
check "checks: status shows the budget" \
    "$(ctl status | grep -c '^error budget: 2 of [0-9]* attempts failed in the last 10m (max_failures 2)$')" 1
ctl check cattle-new >"$T/check.out"
check "check: a host held by the spent budget exits 1" "$?" 1
check "check: and says it is the budget's pause" \
    "$(grep -c '^cattle-new: held: paused: error budget: 2 of [0-9]* attempts failed in 10m (max_failures 2)' "$T/check.out")" 1
check "check: prints the check that would run" \
    "$(grep -c "^  then check: $T/check.sh cattle-new\$" "$T/check.out")" 1
ctl drain >/dev/null
wait_exit 20
check "checks: mandrilld drained and exited 0" "$RC" 0

# --- mandrillctl check: the window's and the group's verdicts -----------
LOG=$T/verdicts.log
rm -rf "$T/state"
: >"$T/payloads"
# A window of one hour, two hours from now: closed now, whatever the hour.
from=$(( ($(date -u +%H | sed 's/^0//') + 2) % 24 ))
win=$(printf '%02d:00-%02d:00' "$from" $(( from + 1 )))
EXIT_WHEN_DONE=no
conf "mode = command
command = $T/restart.sh {host}
window = $win
timezone = UTC
group = ^rack-([a-z]+)-
max_concurrent_per_group = 1
max_failures = 10%"
EXIT_WHEN_DONE=
start_mandrilld
wait_ctl || fail "verdicts: mandrilld does not answer on its control socket"
ctl check rack-a-9 >"$T/check.out"
check "check: outside the window exits 1" "$?" 1
check "check: names the window and when it opens" \
    "$(grep -c "^rack-a-9: held: window $win UTC: opens [A-Z][a-z][a-z] [0-9-]* $(printf '%02d' "$from"):00 UTC\$" "$T/check.out")" 1
check "check: names the host's group" "$(grep -c '^  group: a$' "$T/check.out")" 1
check "check: shows the budget as it stands" \
    "$(grep -c '^error budget: 0 of 0 attempts failed in the last 10m (max_failures 10%)$' "$T/check.out")" 1
check "check --json: the window's verdict" \
    "$(ctl --json check rack-a-9 | grep -c '"verdict":"held","why":"window .*"group":"a"')" 1
ctl drain >/dev/null
wait_exit 20
check "verdicts: mandrilld drained and exited 0" "$RC" 0

LOG=$T/dry-run.log
# --- a dry run shows the check that would run ---------------------------
rm -rf "$T/state"
printf '{"msg_id": "d-1", "host": "cattle-dry"}\n' >"$T/payloads"
conf "mode = command
command = $T/restart.sh {host}
check = $T/check.sh {host} --quick
dry_run = yes"
start_mandrilld
wait_exit 30
check "dry run: the log shows the command and the check" \
    "$(grep -c "Dry run: would run: $T/restart.sh cattle-dry; then check: $T/check.sh cattle-dry --quick" "$LOG")" 1
check "dry run: recorded as dry-run, with the check in its output" \
    "$(sql "SELECT state FROM messages WHERE msg_id = 'd-1'")-$(sql "SELECT count(*) FROM restarts WHERE output LIKE '%then check: $T/check.sh cattle-dry --quick'")" \
    "dry-run-1"

finish
