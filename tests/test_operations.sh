#!/bin/sh
# What operators watch and ask: the metrics file (Prometheus text, written
# atomically, counters that only grow), the periodic status line, and the
# SQL views, checked against the tables they summarize.
. "$(dirname "$0")/lib.sh"

write_conf <<EOF
workers = 2

[source]
rate = 100
count = 300
exit_when_done = yes
instances = 20
seed = 3

[restart]
sim_latency = 10ms..50ms
sim_failure_rate = 0.3
sim_seed = 5
allow = cattle-*
max_attempts = 2
backoff_min = 100ms
backoff_max = 200ms

[metrics]
metrics_file = $T/mandrill.prom
metrics_interval = 1s
status_interval = 1s
EOF
start_mandrilld
n=0
while [ ! -s "$T/mandrill.prom" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
cp "$T/mandrill.prom" "$T/first.prom" 2>/dev/null
sleep 1.2
cp "$T/mandrill.prom" "$T/second.prom" 2>/dev/null
wait_exit 120
check "exit 0" "$RC" 0

# --- the metrics file -------------------------------------------------------------
check "the metrics file was written during the run" "$(test -s "$T/first.prom" && echo yes)" yes
check "no temporary file is left behind" "$(ls "$T" | grep -c 'prom.tmp')" 0
# Every sample belongs to a metric with HELP and TYPE lines, and parses.
awk '
/^# HELP / { help[$3] = 1; next }
/^# TYPE / { type[$3] = $4; next }
/^#/ { next }
{
	name = $1; sub(/\{.*/, "", name); base = name
	sub(/_(bucket|sum|count)$/, "", base)
	if (!(name in type) && !(base in type)) { print "no TYPE: " $0; bad++ }
	if (!(name in help) && !(base in help)) { print "no HELP: " $0; bad++ }
	if ($0 !~ /^[a-z_:][a-z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eE]+(Inf)?$/) {
		print "bad sample: " $0; bad++
	}
}
END { print "bad " bad + 0 }' "$T/mandrill.prom" > "$T/format.txt"
check "the file parses as the Prometheus text format" "$(tail -1 "$T/format.txt")" "bad 0"
for m in mandrill_messages_pulled_total mandrill_messages_acked_total \
    mandrill_messages_nacked_total mandrill_lease_extensions_total \
    mandrill_messages_redelivered_total mandrill_dead_letters_total \
    mandrill_messages_in_flight mandrill_workers mandrill_worker_crashes_total \
    mandrill_slow_iterations_total mandrill_pull_to_ack_seconds \
    mandrill_restart_duration_seconds mandrill_build_info \
    mandrill_start_time_seconds mandrill_paused mandrill_restarts_running \
    mandrill_jobs_in_workers mandrill_source_backlog; do
	check "metric $m is described" "$(grep -c "^# TYPE $m " "$T/mandrill.prom")" 1
done
check "outcomes by outcome" \
    "$(grep -c '^mandrill_outcomes_total{outcome="[a-z-]*"} ' "$T/mandrill.prom")" 9
# Counters never go down between two writes.
awk 'FNR == NR { if ($1 !~ /^#/) v[$1] = $2; next }
     $1 !~ /^#/ && ($1 in v) && $1 ~ /(_total|_count|_bucket)/ && $2 + 0 < v[$1] + 0 { print "down: " $1; bad++ }
     END { print "down " bad + 0 }' "$T/first.prom" "$T/second.prom" > "$T/mono.txt"
check "counters are monotonic across two writes" "$(tail -1 "$T/mono.txt")" "down 0"
# The final file agrees with the log and the database.
acked=$(grep -c 'Done. Acked' "$LOG")
check "acked total matches the log" \
    "$(awk '$1 == "mandrill_messages_acked_total" { print $2 }' "$T/mandrill.prom")" "$acked"
check "restarted outcomes match the database" \
    "$(awk '$1 == "mandrill_outcomes_total{outcome=\"restarted\"}" { print $2 }' "$T/mandrill.prom")" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted'")"
check "histogram buckets are cumulative and end at the count" \
    "$(awk -F'[ {}]' '/^mandrill_pull_to_ack_seconds_bucket/ { if ($NF + 0 < last) bad++; last = $NF + 0 }
        /^mandrill_pull_to_ack_seconds_count/ { if ($NF + 0 != last) bad++ }
        END { print bad + 0 }' "$T/mandrill.prom")" 0
check "build info names the version" \
    "$(grep -c '^mandrill_build_info{version="[0-9.]*"} 1$' "$T/mandrill.prom")" 1
check "start time is this run's, to the second" \
    "$(awk -v now="$(date +%s)" '$1 == "mandrill_start_time_seconds" { print ($2 > now - 600 && $2 <= now) }' "$T/mandrill.prom")" 1
check "not paused, so no reason" \
    "$(grep -c '^mandrill_paused 0$' "$T/mandrill.prom")" 1
check "the sim's backlog is empty at the end" \
    "$(awk '$1 == "mandrill_source_backlog" { print $2 }' "$T/mandrill.prom")" 0
check "no restart running at the end" \
    "$(awk '$1 == "mandrill_restarts_running" || $1 == "mandrill_jobs_in_workers" { s += $2 } END { print s + 0 }' "$T/mandrill.prom")" 0
check "in flight is 0 at the end" \
    "$(awk '$1 == "mandrill_messages_in_flight" { print $2 }' "$T/mandrill.prom")" 0

# --- the status line ------------------------------------------------------------------
check "a status line every status_interval" \
    "$(grep -c 'INFO Status: [0-9]* in flight, [0-9]* workers; per second: pulled' "$LOG" | awk '{print ($1 >= 2)}')" 1

# --- the views answer what the tables hold ---------------------------------------------
check "last_restart: one row per host restarted" \
    "$(sql "SELECT count(*) FROM last_restart")" \
    "$(sql "SELECT count(DISTINCT host) FROM restarts WHERE outcome = 'restarted'")"
check "last_restart: the latest successful restart of each host" \
    "$(sql "SELECT count(*) FROM last_restart l WHERE l.finished !=
        (SELECT max(finished) FROM restarts r WHERE r.host = l.host AND r.outcome = 'restarted')")" 0
check "failures_last_hour: every failed attempt of this run" \
    "$(sql "SELECT count(*) FROM failures_last_hour")" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome IN ('failed', 'lost')")"
check "failures_last_hour: some failures to show" \
    "$(sql "SELECT count(*) > 0 FROM failures_last_hour")" 1
check "in_progress: nothing left in progress" "$(sql "SELECT count(*) FROM in_progress")" 0
check "outcomes_per_minute: the settled ones sum to every message" \
    "$(sql "SELECT sum(n) FROM outcomes_per_minute WHERE state <> 'failed'")" 300
check "outcomes_per_minute: failed counts the attempts that were retried" \
    "$(sql "SELECT sum(n) FROM outcomes_per_minute WHERE state = 'failed'")" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'failed' AND attempt < 2")"
check "messages_by_state: what counting the rows says" \
    "$(sql "SELECT group_concat(state || '=' || n) FROM (SELECT * FROM messages_by_state ORDER BY state)")" \
    "$(sql "SELECT group_concat(state || '=' || n) FROM (SELECT state, count(*) AS n FROM messages GROUP BY state ORDER BY state)")"
# An old failure is not in the last hour.
sql "UPDATE restarts SET finished = '2000-01-01T00:00:00.000Z' WHERE id = (SELECT min(id) FROM restarts WHERE outcome = 'failed')"
check "failures_last_hour: an old failure is left out" \
    "$(sql "SELECT count(*) FROM failures_last_hour")" \
    "$(sql "SELECT count(*) - 1 FROM restarts WHERE outcome IN ('failed', 'lost')")"

finish
