#!/bin/sh
# Every outcome of DESIGN.md's table on the sim source, judged by SQL on
# the database and by the log: retries up to max_attempts, dead letters,
# duplicates on redelivery, per-host serialization, min_interval, invalid
# hosts, lease extension and loss, restart_timeout, and a database that
# cannot be written (error, nack, never an ack).
. "$(dirname "$0")/lib.sh"

# run_conf COUNT SOURCE-LINES RESTART-LINES [MANDRILL-LINES]
run_conf() {
	write_conf <<EOF
workers = 2
jobs_per_worker = 16
max_in_flight = 32
busy_timeout = 200ms
${4:-}

[source]
rate = 0
count = $1
exit_when_done = yes
$2

[restart]
sim_failure_rate = ${FAILRATE:-0}
allow = ${ALLOW:-cattle-*}
backoff_min = 50ms
backoff_max = 200ms
$3
EOF
}

reset() { rm -rf "$T/state" "$LOG"; }

# --- half the restarts fail, three attempts at most -----------------------------
reset
FAILRATE=0.5 run_conf 300 "seed = 11" "sim_latency = 0..10ms
sim_seed = 3
max_attempts = 3"
start_mandrilld
wait_exit 120
check "failure 0.5: exit 0" "$RC" 0
check "failure 0.5: every message restarted or dead" \
    "$(sql "SELECT count(*) FROM messages WHERE state IN ('restarted','dead')")" 300
check "failure 0.5: attempts never exceed 3" \
    "$(sql "SELECT count(*) FROM messages WHERE attempts > 3")" 0
check "failure 0.5: dead only after 3 failed attempts" \
    "$(sql "SELECT count(*) FROM messages m WHERE state = 'dead' AND
        (SELECT count(*) FROM restarts r WHERE r.msg_id = m.msg_id
         AND r.outcome = 'failed') != 3")" 0
check "failure 0.5: some messages are dead, in dead_letters" \
    "$(sql "SELECT count(*) > 0 FROM dead_letters d JOIN messages m
        ON m.msg_id = d.msg_id WHERE m.state = 'dead'")" 1
check "failure 0.5: dead messages were acked, not left circulating" \
    "$(grep -c 'outcome=dead' "$LOG" | awk '{print ($1 > 0)}')" 1
check_invariant

# --- the same messages again: only duplicates, no second restart ----------------
restarts_before=$(sql "SELECT count(*) FROM restarts")
rm -f "$LOG"
start_mandrilld
wait_exit 60
check "redelivery: exit 0" "$RC" 0
check "redelivery: every message is a duplicate" \
    "$(grep -c 'Done. Acked .*outcome=duplicate' "$LOG")" 300
check "redelivery: no new restarts" "$(sql "SELECT count(*) FROM restarts")" \
    "$restarts_before"

# --- few hosts: restarts of one host never overlap -----------------------------
reset
run_conf 60 "instances = 3
seed = 5" "sim_latency = 50ms..150ms"
start_mandrilld
wait_exit 120
check "3 hosts: exit 0" "$RC" 0
check "3 hosts: all 60 restarted" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 60
check "3 hosts: later messages for a busy host were held, not nacked" \
    "$(grep -c 'Held msg_id=.*(host): host .* is being restarted' "$LOG" | awk '{print ($1 > 0)}')" 1
check "3 hosts: deferring is not an attempt" \
    "$(sql "SELECT max(attempts) FROM messages")" 1
check_invariant

# --- min_interval: a host restarted recently is skipped -------------------------
reset
run_conf 40 "instances = 2
seed = 9" "sim_latency = 0..5ms
min_interval = 1h"
start_mandrilld
wait_exit 120
check "min_interval: exit 0" "$RC" 0
check "min_interval: one restart per host" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted'")" 2
check "min_interval: the others skipped, and acked" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'skipped'")" 38
check "min_interval: skip reason recorded" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'skipped' AND error LIKE '%within min_interval%'")" 38

# --- hosts not allowed: invalid, dead-lettered, terminated, never restarted ----
reset
ALLOW='db-*' run_conf 20 "" "sim_latency = 0..5ms"
start_mandrilld
wait_exit 60
check "not allowed: exit 0" "$RC" 0
check "not allowed: every message invalid" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'invalid' AND error LIKE 'host not in the allow list%'")" 20
check "not allowed: every message dead-lettered" \
    "$(sql "SELECT count(*) FROM dead_letters WHERE reason LIKE 'host not in the allow list%'")" 20
check "not allowed: nothing restarted" "$(sql "SELECT count(*) FROM restarts")" 0
check "not allowed: terminated, not acked" \
    "$(grep -c 'Done. Terminated .*outcome=invalid' "$LOG")" 20

# --- leases are extended while a restart outlives the ack deadline --------------
reset
run_conf 6 "ack_deadline = 1s" "sim_latency = 2500ms..3s"
start_mandrilld
wait_exit 60
check "extension: exit 0" "$RC" 0
check "extension: deadlines were extended" \
    "$(grep -c 'Extended deadline msg_id=.* by 1s' "$LOG" | awk '{print ($1 >= 6)}')" 1
check "extension: nothing redelivered" "$(grep -c 'delivery=2' "$LOG")" 0
check "extension: the broker never saw a deadline pass" \
    "$(grep -c 'ack deadline of msg_id=.* passed' "$LOG")" 0
check "extension: all restarted once" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted'")" 6

# --- max_lease: the lease is given up and the restart cancelled -----------------
reset
run_conf 2 "ack_deadline = 1s" "sim_latency = 20s..20s
max_attempts = 1" "[lease]
max_lease = 2s"
# [lease] must come after the other sections' keys: move it to the end
sed -i '/^\[lease\]$/d; /^max_lease = 2s$/d' "$T/mandrill.conf"
printf '\n[lease]\nmax_lease = 2s\n' >> "$T/mandrill.conf"
start_mandrilld
wait_exit 60
check "max_lease: exit 0" "$RC" 0
check "max_lease: the lease loss is logged" \
    "$(grep -c 'Lease lost msg_id=.*max_lease reached' "$LOG" | awk '{print ($1 >= 2)}')" 1
check "max_lease: the running restarts were cancelled" \
    "$(grep -c 'Cancelling restart host=' "$LOG" | awk '{print ($1 >= 2)}')" 1
check "max_lease: cancelled attempts recorded as failed" \
    "$(sql "SELECT count(*) >= 2 FROM restarts WHERE outcome = 'failed' AND error LIKE 'cancelled%'")" 1

# --- restart_timeout: a restart that runs too long fails ------------------------
reset
run_conf 3 "" "sim_latency = 10s..10s
restart_timeout = 500ms
max_attempts = 1"
start_mandrilld
wait_exit 60
check "restart_timeout: exit 0" "$RC" 0
check "restart_timeout: every attempt failed as timed out" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'failed' AND error LIKE '%timed out%'")" 3
check "restart_timeout: dead after max_attempts" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'dead'")" 3

# --- a database that cannot be written: error and nack, never an ack ------------
reset
run_conf 150 "rate = 50" "sim_latency = 20ms..50ms"
sed -i '0,/^rate = 0$/{/^rate = 0$/d}' "$T/mandrill.conf"
start_mandrilld
wait_for "Done. Acked" 20 || fail "db lock: nothing done before the lock"
# Another process takes the write lock for 3 s: workers cannot record.
printf '.timeout 5000\nBEGIN EXCLUSIVE;\n.shell sleep 3\nCOMMIT;\n' | sqlite3 "$DB" &
lockpid=$!
sleep 0.5
acked_at_lock=$(grep -c 'Done. Acked' "$LOG")
sleep 2
acked_during=$(grep -c 'Done. Acked' "$LOG")
wait "$lockpid"
wait_exit 120
check "db lock: exit 0 once the lock is gone" "$RC" 0
check "db lock: said once per worker that the store cannot commit" \
    "$(grep -c 'store: cannot commit: database is locked' "$LOG" | awk '{print ($1 > 0 && $1 <= 4)}')" 1
check "db lock: those messages were held, not nacked" \
    "$(grep -c 'Held msg_id=.*(store)' "$LOG" | awk '{print ($1 > 0)}')-$(grep -c 'Nacked' "$LOG")" 1-0
check "db lock: pulling stopped and resumed, each said once" \
    "$(grep -c 'store cannot commit (worker' "$LOG")-$(grep -c 'store commits again; pulling' "$LOG")" 1-1
check "db lock: nothing acked while the database was locked" \
    "$acked_during" "$acked_at_lock"
check "db lock: outcomes of finished restarts were kept and recorded later" \
    "$(grep -c 'Done. Acked' "$LOG")" 150
check "db lock: all 150 messages restarted in the end, once" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 150
check_invariant

finish
