#!/bin/sh
# The whole pipeline on the sim source: 500 messages as fast as they can
# be taken, some restarts failing and retried; mandrilld must exit 0 with
# every message's final outcome committed and nothing acked before that.
. "$(dirname "$0")/lib.sh"

N=500
write_conf <<EOF
workers = 2
jobs_per_worker = 32
max_in_flight = 64

[source]
rate = 0
count = $N
exit_when_done = yes
seed = 42

[restart]
sim_latency = 0..20ms
sim_failure_rate = 0.2
sim_seed = 7
allow = cattle-*
max_attempts = 3
backoff_min = 50ms
backoff_max = 200ms
EOF

start=$(date +%s%N)
start_mandrilld
wait_exit 120
end=$(date +%s%N)

check "mandrilld exits 0 once all messages are done" "$RC" 0
check "distinct msg_ids recorded" "$(sql "SELECT count(DISTINCT msg_id) FROM messages")" "$N"
check "every message has a final state (restarted or dead)" \
    "$(sql "SELECT count(*) FROM messages WHERE state IN ('restarted','dead')")" "$N"
check "attempts never exceed max_attempts" \
    "$(sql "SELECT count(*) FROM messages WHERE attempts > 3 OR attempts < 1")" 0
check "one restarts row per attempt" \
    "$(sql "SELECT count(*) FROM messages m WHERE attempts !=
        (SELECT count(*) FROM restarts r WHERE r.msg_id = m.msg_id)")" 0
check "every restarted message has exactly one successful restart" \
    "$(sql "SELECT count(*) FROM messages m WHERE state = 'restarted' AND
        (SELECT count(*) FROM restarts r WHERE r.msg_id = m.msg_id
         AND r.outcome = 'restarted') != 1")" 0
check "dead messages are in dead_letters" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'dead' AND msg_id NOT IN
        (SELECT msg_id FROM dead_letters WHERE msg_id IS NOT NULL)")" 0
check "some restarts failed and were retried" \
    "$(sql "SELECT count(*) > 0 FROM restarts WHERE outcome = 'failed'")" 1
check "no restart is left unfinished" \
    "$(sql "SELECT count(*) FROM restarts WHERE finished IS NULL")" 0
check "the log shows every message acked" \
    "$(grep -c 'Done. Acked' "$LOG")" "$N"
check "the log shows failed restarts nacked with a delay" \
    "$(grep -c 'outcome=failed host=[a-z0-9-]* retry in' "$LOG" | awk '{print ($1 > 0)}')" 1
check "database is in WAL mode" "$(sql "PRAGMA journal_mode")" wal
check "schema version is recorded" "$(sql "PRAGMA user_version")" 7
check "database file is 0640" "$(stat -c %a "$DB")" 640
check_invariant

# Each done frame follows its commit: the worker logs the outcome after
# committing it, the supervisor logs the ack after receiving the frame.
awk '
/ worker [0-9]+: Restarted / { for (i = 1; i <= NF; i++) if ($i ~ /^msg_id=/) seen[$i] = 1 }
/ Done. Acked .*outcome=restarted/ { for (i = 1; i <= NF; i++) if ($i ~ /^msg_id=/ && !($i in seen)) bad++ }
END { print bad + 0 }' "$LOG" > "$T/order.txt"
check "no ack is logged before its worker recorded the restart" "$(cat "$T/order.txt")" 0

note "$N messages in $(( (end - start) / 1000000 )) ms, 20% of restarts failing and retried"
finish
