#!/bin/sh
# Issue 16, the error budget: every restart failing costs at most
# max_failures failed attempts (plus those already running), then
# mandrilld pauses itself and says why in status, the log and the
# metrics; nothing is lost, and mandrillctl resume starts the count again.
. "$(dirname "$0")/lib.sh"

conf() {
	write_conf <<CONF
workers = 1
jobs_per_worker = 2
max_in_flight = 4

[source]
type = sim
rate = 20
count = 0
instances = 50

[restart]
allow = cattle-*
sim_latency = 10ms..20ms
sim_failure_rate = 1
max_attempts = 100
backoff_min = 10ms
backoff_max = 20ms
$1

[metrics]
metrics_file = $T/mandrill.prom
metrics_interval = 1s
CONF
}

# --- -t refuses a bad budget with one line ----------------------------------
for bad in 0 101% -3 lots "3 %"; do
	conf "max_failures = $bad"
	"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/t.out" 2>&1
	check "-t refuses max_failures = $bad" "$?" 78
	check "and names the key: $bad" \
	    "$(grep -c '\[restart\] max_failures .*want a count from 1 to 1000000, or a percentage' "$T/t.out")" 1
done
conf "max_failures = 3
failure_window = 0s"
"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/t.out" 2>&1
check "-t refuses a failure_window of 0s" "$?" 78

# --- every restart failing: 3 failed attempts, then paused ------------------
conf "max_failures = 3
failure_window = 10m"
start_mandrilld
wait_for "error budget: 3 of 3 attempts failed in 10m (max_failures 3); pausing restarts" 30 ||
    fail "budget: not paused after 3 failures"
failed_at_pause=$(sql "SELECT count(*) FROM restarts WHERE outcome = 'failed'")
sleep 3
failed_later=$(sql "SELECT count(*) FROM restarts WHERE outcome = 'failed' OR outcome IS NULL")
note "failed attempts: $failed_at_pause at the pause, $failed_later 3 s later"
check "budget: at most max_failures plus those running (2) failed" \
    "$(test "$failed_later" -le 5 && echo yes)" yes
check "budget: no attempt starts once paused" \
    "$(sleep 2; sql "SELECT count(*) FROM restarts WHERE outcome = 'failed' OR outcome IS NULL")" \
    "$failed_later"
check "budget: status says paused and why" \
    "$(ctl status | grep -c '^PAUSED: error budget: 3 of 3 attempts failed in 10m (max_failures 3)$')" 1
sleep 1.5
check "budget: the metrics say so, with the reason" \
    "$(grep -c '^mandrill_paused{reason="error budget: 3 of 3 attempts failed in 10m (max_failures 3)"} 1$' "$T/mandrill.prom")" 1
check "budget: the pause is persisted, like mandrillctl pause" \
    "$(cat "$T/state/paused")" "error budget: 3 of 3 attempts failed in 10m (max_failures 3)"
check "budget: nothing is dead, so nothing is lost" \
    "$(sql "SELECT count(*) FROM messages WHERE state IN ('dead', 'invalid')")" 0

# --- resume starts the count again: three more, then paused again -----------
before=$(sql "SELECT count(*) FROM restarts")
check "budget: resume answers" "$(ctl resume)" "resumed"
wait_count "error budget: 3 of 3 attempts failed in 10m (max_failures 3); pausing restarts" 2 30 ||
    fail "budget: not paused again after resume"
sleep 2
after=$(sql "SELECT count(*) FROM restarts")
check "budget: after resume, 3 to 5 more attempts before the next pause" \
    "$(test $((after - before)) -ge 3 && test $((after - before)) -le 5 && echo yes)" yes

kill -TERM "$PID"
wait_exit 30
check "budget: TERM drains and exits 0" "$RC" 0
check "budget: still nothing dead or lost" \
    "$(sql "SELECT count(*) FROM messages WHERE state IN ('dead', 'invalid')")" 0
finish
