#!/bin/sh
# make bench: measure the built programs (never a reimplementation) and
# print one table; each figure is the median of RUNS runs, with min and
# max.  Timing lives here, never in pass/fail tests.
#
#   RUNS=5 make bench          more runs
#   BENCH_N=200000 make bench  more messages in the throughput runs
set -u

top=${top_builddir:-$(pwd)}
MANDRILLD=$top/mandrilld
WORKER=$top/mandrill-worker
RUNS=${RUNS:-3}
N=${BENCH_N:-100000}
T=$(mktemp -d "${TMPDIR:-/tmp}/mandrill-bench.XXXXXX")
PID=
trap 'if [ -n "$PID" ]; then kill -KILL "$PID" 2>/dev/null; fi; rm -rf "$T"' EXIT

conf() {
	# $1: extra lines for [source]; $2: for [restart]; $3: for [mandrill]
	cat > "$T/b.conf" <<EOF
[mandrill]
state_dir = $T/state
worker_path = $WORKER
log_level = warning
workers = 2
jobs_per_worker = ${JOBS:-1000}
max_in_flight = ${MIF:-2000}
${3:-}
[source]
type = ${TYPE:-sim}
batch = 500
instances = 0
$1
[restart]
sim_failure_rate = 0
allow = *
$2
EOF
}

# latency RATE PREFIX: pull-to-ack quantiles at a steady rate, in ms
latency() {
	: > "$T/$2.p50"; : > "$T/$2.p99"; : > "$T/$2.p999"
	i=0
	while [ $i -lt "$RUNS" ]; do
		rm -rf "$T/state"
		conf "rate = $1
count = $(($1 * 5))
exit_when_done = yes" "sim_latency = 0..0"
		"$MANDRILLD" -f -c "$T/b.conf" > "$T/log" 2>&1
		summary_field p50 | awk '{ print $1 / 1000 }' >> "$T/$2.p50"
		summary_field p99 | awk '{ print $1 / 1000 }' >> "$T/$2.p99"
		summary_field p99.9 | awk '{ print $1 / 1000 }' >> "$T/$2.p999"
		i=$((i + 1))
	done
}

summary_field() {	# the number after "$1 " in the Summary line
	grep 'Summary:' "$T/log" | sed "s/.*$1 \([0-9.]*\).*/\1/"
}

# median, min and max of the numbers on stdin
stats() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6g (min %.6g, max %.6g)\n", m, v[1], v[NR] }'
}

# --- end-to-end throughput, sim source, durable ----------------------------
: > "$T/tput"; : > "$T/cpu_sup"; : > "$T/cpu_wrk"
i=0
while [ $i -lt "$RUNS" ]; do
	rm -rf "$T/state"
	conf "rate = 0
count = $N
exit_when_done = yes" "sim_latency = 0..0" "synchronous = full"
	start=$(date +%s%N)
	"$MANDRILLD" -f -c "$T/b.conf" > "$T/log" 2>&1
	rc=$?
	end=$(date +%s%N)
	done_n=$(sqlite3 "$T/state/mandrill.db" "SELECT count(*) FROM messages
	    WHERE state = 'restarted'")
	if [ "$rc" -ne 0 ] || [ "$done_n" -ne "$N" ]; then
		echo "throughput run failed: exit $rc, $done_n of $N committed" >&2
		tail -5 "$T/log" >&2
	fi
	echo "$done_n $start $end" | awk '{ printf "%.0f\n", $1 / (($3 - $2) / 1e9) }' >> "$T/tput"
	summary_field supervisor | awk -v n="$done_n" '{ printf "%.4f\n", $1 * 10000 / n }' >> "$T/cpu_sup"
	summary_field workers | awk -v n="$done_n" '{ printf "%.4f\n", $1 * 10000 / n }' >> "$T/cpu_wrk"
	i=$((i + 1))
done

# --- the store alone: admit and finish batches of 500, no processes ---------
: > "$T/store"; : > "$T/store_cpu"
i=0
while [ $i -lt "$RUNS" ]; do
	rm -rf "$T/state"
	"$top/tests/bench/store_bench" "$T/state" "$N" 500 2 > "$T/sb" 2>&1 ||
	    cat "$T/sb" >&2
	sed -n 's/.*; \([0-9]*\) msg\/s.*/\1/p' "$T/sb" >> "$T/store"
	sed -n 's/.*cpu \([0-9.]*\) s,.*/\1/p' "$T/sb" >> "$T/store_cpu"
	i=$((i + 1))
done

# --- pull-to-ack latency at a steady 10 000 (and 1 000) messages a second ----
latency 10000 l10k
latency 1000 l1k

# --- command mode: /bin/true as the restart command --------------------------
: > "$T/cmd"
i=0
while [ $i -lt "$RUNS" ]; do
	rm -rf "$T/state"
	conf "rate = 0
count = 5000
exit_when_done = yes" "mode = command
command = /bin/true {host}"
	start=$(date +%s%N)
	"$MANDRILLD" -f -c "$T/b.conf" > "$T/log" 2>&1
	end=$(date +%s%N)
	done_n=$(sqlite3 "$T/state/mandrill.db" "SELECT count(*) FROM restarts
	    WHERE outcome = 'restarted' AND exit_status = 0")
	echo "$done_n $start $end" | awk '{ printf "%.0f\n", $1 / (($3 - $2) / 1e9) }' >> "$T/cmd"
	i=$((i + 1))
done

# --- end-to-end throughput, nats source, durable -------------------------------
# A nats-server of its own (free port, store in $T); per run: a fresh
# stream, NN messages published before mandrilld starts, and the time from
# its start to the last final outcome committed (polled with SQL).
NN=${BENCH_NATS_N:-$N}
: > "$T/nats"; : > "$T/nats_cpu"; : > "$T/nats_srv"
if command -v nats-server >/dev/null 2>&1; then
	i=0
	while [ $i -lt "$RUNS" ]; do
		rm -rf "$T/state" "$T/js"
		nats-server -a 127.0.0.1 -p -1 -js -sd "$T/js" > "$T/nats.log" 2>&1 &
		NPID=$!
		waited=0
		until grep -q 'Server is ready' "$T/nats.log"; do
			sleep 0.1; waited=$((waited + 1))
			[ $waited -gt 100 ] && { echo "nats-server did not start" >&2; break; }
		done
		port=$(sed -n 's/.*client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$T/nats.log")
		TYPE=nats conf "url = nats://127.0.0.1:$port
ack_wait = 60s
max_ack_pending = 100000" "sim_latency = 0..0" "synchronous = full"
		# Once, to create the stream and consumer (logged at info).
		"$MANDRILLD" -f -l info -c "$T/b.conf" > "$T/log" 2>&1 &
		PID=$!
		waited=0
		until grep -q 'nats: consuming' "$T/log"; do
			sleep 0.1; waited=$((waited + 1))
			[ $waited -gt 100 ] && { echo "mandrilld did not start:" >&2; tail -3 "$T/log" >&2; break; }
		done
		kill -TERM "$PID"; wait "$PID"; PID=
		seq 1 "$NN" | sed 's/^/bench-/' |
		    "$top/mandrill-publish" -q -u "nats://127.0.0.1:$port" -f - ||
		    echo "nats: publishing failed" >&2
		rm -rf "$T/state"
		ncpu0=$(awk '{ print $14 + $15 }' /proc/"$NPID"/stat)
		start=$(date +%s%N)
		"$MANDRILLD" -f -c "$T/b.conf" > "$T/log" 2>&1 &
		PID=$!
		done_n=0
		while [ "$done_n" -lt "$NN" ] && kill -0 "$PID" 2>/dev/null &&
		    [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt 600 ]; do
			sleep 0.05
			done_n=$(sqlite3 "$T/state/mandrill.db" "SELECT count(*)
			    FROM messages WHERE state = 'restarted'" 2>/dev/null ||
			    echo 0)
		done
		end=$(date +%s%N)
		ncpu1=$(awk '{ print $14 + $15 }' /proc/"$NPID"/stat)
		kill -TERM "$PID"; wait "$PID"; PID=
		kill -TERM "$NPID"; wait "$NPID"
		echo "$ncpu0 $ncpu1 $(getconf CLK_TCK) $done_n" | awk '{ printf "%.4f\n", ($2 - $1) / $3 * 10000 / $4 }' >> "$T/nats_srv"
		[ "$done_n" -ne "$NN" ] &&
		    echo "nats run failed: $done_n of $NN committed" >&2
		echo "$done_n $start $end" | awk '{ printf "%.0f\n", $1 / (($3 - $2) / 1e9) }' >> "$T/nats"
		summary_field supervisor | awk -v n="$done_n" '{ printf "%.4f\n", $1 * 10000 / n }' >> "$T/nats_cpu"
		i=$((i + 1))
	done
else
	echo "nats-server not installed: no nats figure" >&2
fi

# --- fleet mode: a three-node JetStream cluster on loopback ------------------
# Three nats-servers (free ports from tests/free_ports, stores in $T), an
# R3 stream; FN messages published, then one mandrilld with [fleet]
# coordination = nats on R3 buckets, timed from its start to the last
# restart committed; the same with coordination = none for the figure it
# is compared with.  The grant's latency (a worker's ask to the answer,
# which is what coordination adds before a restart) is mandrilld's own
# Fleet summary line, taken from a run with at most 4 messages in flight
# (4 grants at a time, as many as the fleet's threads): under a backlog
# the grants wait for each other, which is throughput, not latency.
FN=${BENCH_FLEET_N:-3000}
: > "$T/fleet"; : > "$T/fleet_none"; : > "$T/fleet_lat"
: > "$T/grant50"; : > "$T/grant99"
fleet_run() {	# $1: none or nats; appends msg/s to $2; grant figures if $3
	rm -rf "$T/state" "$T/cjs"
	grants=${3:-}
	set -- "$1" "$2" $("$top/tests/free_ports" 6)
	routes=nats://127.0.0.1:$6,nats://127.0.0.1:$7,nats://127.0.0.1:$8
	CPIDS=
	for n in 1 2 3; do
		eval "cp=\${$((n + 2))} rp=\${$((n + 5))}"
		mkdir -p "$T/cjs/n$n"
		nats-server -a 127.0.0.1 -p "$cp" -js -sd "$T/cjs/n$n" -n "n$n" \
		    --cluster_name bench --cluster "nats://127.0.0.1:$rp" \
		    --routes "$routes" > "$T/cjs/n$n.log" 2>&1 &
		CPIDS="$CPIDS $!"
	done
	url=nats://127.0.0.1:$3,nats://127.0.0.1:$4,nats://127.0.0.1:$5
	waited=0
	until cat "$T"/cjs/n*.log | grep -q 'metadata leader'; do
		sleep 0.1; waited=$((waited + 1))
		[ $waited -gt 300 ] && { echo "cluster did not start" >&2; break; }
	done
	TYPE=nats conf "url = $url
ack_wait = 60s
replicas = 3
max_ack_pending = 100000" "sim_latency = 0..0" "synchronous = full
[fleet]
coordination = $1"
	"$MANDRILLD" -f -l info -c "$T/b.conf" > "$T/log" 2>&1 &
	PID=$!
	waited=0
	until grep -q 'nats: consuming' "$T/log"; do
		sleep 0.1; waited=$((waited + 1))
		[ $waited -gt 200 ] && { echo "mandrilld did not start:" >&2; tail -3 "$T/log" >&2; break; }
	done
	kill -TERM "$PID"; wait "$PID"; PID=
	seq 1 "$FN" | sed 's/^/fleet-/' |
	    "$top/mandrill-publish" -q -u "$url" -f - ||
	    echo "fleet: publishing failed" >&2
	rm -rf "$T/state"
	start=$(date +%s%N)
	"$MANDRILLD" -f -l info -c "$T/b.conf" > "$T/log" 2>&1 &
	PID=$!
	done_n=0
	while [ "$done_n" -lt "$FN" ] && kill -0 "$PID" 2>/dev/null &&
	    [ $(( ($(date +%s%N) - start) / 1000000000 )) -lt 300 ]; do
		sleep 0.05
		done_n=$(sqlite3 "$T/state/mandrill.db" "SELECT count(*)
		    FROM messages WHERE state = 'restarted'" 2>/dev/null || echo 0)
	done
	end=$(date +%s%N)
	kill -TERM "$PID"; wait "$PID"; PID=
	for p in $CPIDS; do kill -TERM "$p"; done
	for p in $CPIDS; do wait "$p"; done
	[ "$done_n" -ne "$FN" ] && echo "fleet run ($1) failed: $done_n of $FN" >&2
	echo "$done_n $start $end" | awk '{ printf "%.0f\n", $1 / (($3 - $2) / 1e9) }' >> "$2"
	if [ -n "$grants" ]; then
		grep 'Fleet summary' "$T/log" | sed 's/.*grant us p50 \([0-9]*\).*/\1/' |
		    awk '{ print $1 / 1000 }' >> "$T/grant50"
		grep 'Fleet summary' "$T/log" | sed 's/.* p99 \([0-9]*\).*/\1/' |
		    awk '{ print $1 / 1000 }' >> "$T/grant99"
	fi
}
if command -v nats-server >/dev/null 2>&1 && [ -x "$top/tests/free_ports" ]; then
	i=0
	while [ $i -lt "$RUNS" ]; do
		fleet_run nats "$T/fleet"
		fleet_run none "$T/fleet_none"
		MIF=4 JOBS=2 FN=1000 fleet_run nats "$T/fleet_lat" grants
		i=$((i + 1))
	done
else
	echo "nats-server or tests/free_ports (make check builds it) missing: no fleet figure" >&2
fi

# --- 100 000 messages in flight: memory, and CPU while waiting ----------------
rm -rf "$T/state"
JOBS=50000 MIF=100000 conf "rate = 0
count = 100000
ack_deadline = 10s" "sim_latency = 60s..60s
restart_timeout = 5m" "worker_timeout = 2m"
"$MANDRILLD" -f -c "$T/b.conf" > "$T/log" 2>&1 &
PID=$!
n=0
inflight=0
while [ $n -lt 120 ]; do
	sleep 1
	kill -USR2 "$PID"
	sleep 0.2
	inflight=$(grep 'state: running' "$T/log" | tail -1 |
	    sed 's/.*generation [0-9]*, \([0-9]*\) in flight.*/\1/')
	[ "${inflight:-0}" -ge 100000 ] && break
	n=$((n + 1))
done
sleep 2
rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' /proc/"$PID"/status)
t0=$(awk '{ print $14 + $15 }' /proc/"$PID"/stat)
sleep 20
t1=$(awk '{ print $14 + $15 }' /proc/"$PID"/stat)
hz=$(getconf CLK_TCK)
idle_cpu=$(echo "$t0 $t1 $hz" | awk '{ printf "%.2f", ($2 - $1) / $3 / 20 * 100 }')
kill -QUIT "$PID"
wait "$PID"
PID=

# --- history: 1 000 000 messages of it, the operator's queries on it --------
# The database is made by mandrilld itself (sim, 10 000 hosts, some
# failures, synchronous = off to make it sooner); each query is run as an
# operator would, with the sqlite3 CLI or mandrillctl (process start
# included), best of 3.
HN=${BENCH_HISTORY_N:-1000000}
rm -rf "$T/state"
conf "rate = 0
count = $HN
instances = 10000
exit_when_done = yes" "sim_latency = 0..0
sim_failure_rate = 0.02
max_attempts = 2
backoff_min = 1ms
backoff_max = 2ms" "synchronous = off"
sed -i '/^instances = 0$/d; /^sim_failure_rate = 0$/d' "$T/b.conf"
hstart=$(date +%s%N)
"$MANDRILLD" -f -c "$T/b.conf" > "$T/log" 2>&1 || tail -3 "$T/log" >&2
hend=$(date +%s%N)
HDB=$T/state/mandrill.db
hmsgs=$(sqlite3 "$HDB" "SELECT count(*) FROM messages")
hbytes=$(( $(stat -c %s "$HDB") + $(stat -c %s "$HDB-wal" 2>/dev/null || echo 0) ))
some_host=$(sqlite3 "$HDB" "SELECT host FROM hosts LIMIT 1 OFFSET 500")
some_msg=$(sqlite3 "$HDB" "SELECT msg_id FROM messages LIMIT 1 OFFSET 500000")
best_ms() {	# best of 3 wall times of the command, in ms
	for k in 1 2 3; do
		s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
		echo $(( (e - s) / 1000000 ))
	done | sort -n | head -1
}
: > "$T/queries"
q() {	# label, SQL
	printf '%s\t%s\n' "$1" "$(best_ms sqlite3 -readonly "$HDB" "$2")" >> "$T/queries"
}
q "messages_by_state" "SELECT * FROM messages_by_state"
q "in_progress" "SELECT * FROM in_progress"
q "last_restart of one host" "SELECT * FROM last_restart WHERE host = '$some_host'"
q "last_restart ORDER BY finished DESC LIMIT 10" "SELECT * FROM last_restart ORDER BY finished DESC LIMIT 10"
q "failing_now" "SELECT * FROM failing_now ORDER BY started DESC"
q "failures_last_hour, top 10 hosts" "SELECT host, count(*) AS failures FROM failures_last_hour GROUP BY host ORDER BY failures DESC LIMIT 10"
q "every attempt of one msg_id" "SELECT attempt, started, finished, exit_status, outcome, error FROM restarts WHERE msg_id = '$some_msg' ORDER BY attempt"
q "dead_letters ORDER BY created DESC LIMIT 20" "SELECT created, msg_id, broker_id, reason FROM dead_letters ORDER BY created DESC LIMIT 20"
q "outcomes_per_minute, last 10 minutes" "SELECT * FROM outcomes_per_minute WHERE minute >= strftime('%Y-%m-%dT%H:%M', 'now', '-10 minutes')"
q "host_history of one host" "SELECT * FROM host_history WHERE host = '$some_host' ORDER BY at DESC"
printf '%s\t%s\n' "mandrillctl history HOST" "$(best_ms "$top/mandrillctl" -c "$T/b.conf" history "$some_host")" >> "$T/queries"
printf '%s\t%s\n' "mandrillctl dead --since 1d" "$(best_ms "$top/mandrillctl" -c "$T/b.conf" dead --since 1d)" >> "$T/queries"
# The cost of history: the end-to-end run again, on top of it.
conf "rate = 0
count = $N
exit_when_done = yes" "sim_latency = 0..0" "synchronous = full"
start=$(date +%s%N)
"$MANDRILLD" -f -c "$T/b.conf" > "$T/log" 2>&1
end=$(date +%s%N)
on_history=$(echo "$N $start $end" | awk '{ printf "%.0f", $1 / (($3 - $2) / 1e9) }')

cpus=$(nproc)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo
echo "mandrill benchmark: $RUNS runs each, $cpus CPUs ($model)"
echo
printf '| %-52s | %-36s | %s |\n' "figure" "result" "target"
printf '|%s|%s|%s|\n' "------------------------------------------------------" "--------------------------------------" "------"
printf '| %-52s | %-36s | %s |\n' "end-to-end, sim, synchronous=full, msg/s ($N msgs)" "$(stats < "$T/tput")" ">= 100000"
printf '| %-52s | %-36s | %s |\n' "store alone, synchronous=full, msg/s ($N msgs)" "$(stats < "$T/store")" ""
printf '| %-52s | %-36s | %s |\n' "store alone, CPU s per 10 000 msgs" "$(stats < "$T/store_cpu")" ""
printf '| %-52s | %-36s | %s |\n' "pull-to-ack p50 at 10 000/s, ms" "$(stats < "$T/l10k.p50")" ""
printf '| %-52s | %-36s | %s |\n' "pull-to-ack p99 at 10 000/s, ms" "$(stats < "$T/l10k.p99")" "<= 2"
printf '| %-52s | %-36s | %s |\n' "pull-to-ack p99.9 at 10 000/s, ms" "$(stats < "$T/l10k.p999")" ""
printf '| %-52s | %-36s | %s |\n' "pull-to-ack p50 at 1 000/s, ms" "$(stats < "$T/l1k.p50")" ""
printf '| %-52s | %-36s | %s |\n' "pull-to-ack p99 at 1 000/s, ms" "$(stats < "$T/l1k.p99")" ""
printf '| %-52s | %-36s | %s |\n' "pull-to-ack p99.9 at 1 000/s, ms" "$(stats < "$T/l1k.p999")" ""
printf '| %-52s | %-36s | %s |\n' "100 000 in flight: supervisor RSS, MB" "$rss (in flight: $inflight)" "<= 100"
printf '| %-52s | %-36s | %s |\n' "100 000 in flight: supervisor CPU while waiting, %" "$idle_cpu (20 s incl. extensions)" "<= 5"
printf '| %-52s | %-36s | %s |\n' "end-to-end, nats, synchronous=full, msg/s ($NN msgs)" "$(stats < "$T/nats")" ">= 50000"
printf '| %-52s | %-36s | %s |\n' "CPU s per 10 000 msgs, supervisor, nats" "$(stats < "$T/nats_cpu")" ""
printf '| %-52s | %-36s | %s |\n' "CPU s per 10 000 msgs, nats-server itself" "$(stats < "$T/nats_srv")" ""
printf '| %-52s | %-36s | %s |\n' "fleet, R3 cluster, coordination=nats, restarts/s ($FN)" "$(stats < "$T/fleet")" ">= 200"
printf '| %-52s | %-36s | %s |\n' "the same, coordination=none, restarts/s" "$(stats < "$T/fleet_none")" ""
printf '| %-52s | %-36s | %s |\n' "fleet, 4 in flight, restarts/s (1000)" "$(stats < "$T/fleet_lat")" ""
printf '| %-52s | %-36s | %s |\n' "fleet grant, ask to answer, p50, ms" "$(stats < "$T/grant50")" ""
printf '| %-52s | %-36s | %s |\n' "fleet grant, ask to answer, p99, ms" "$(stats < "$T/grant99")" "<= 10"
printf '| %-52s | %-36s | %s |\n' "command mode, /bin/true, restarts/s (5000)" "$(stats < "$T/cmd")" ">= 1000"
printf '| %-52s | %-36s | %s |\n' "CPU s per 10 000 msgs, supervisor" "$(stats < "$T/cpu_sup")" ""
printf '| %-52s | %-36s | %s |\n' "CPU s per 10 000 msgs, workers (all)" "$(stats < "$T/cpu_wrk")" ""
echo
echo "history: $hmsgs messages made by mandrilld in $(( (hend - hstart) / 1000000000 )) s; $hbytes bytes, $(( hbytes / (hmsgs > 0 ? hmsgs : 1) )) bytes a message"
printf '| %-52s | %-36s | %s |\n' "end-to-end, sim, full, msg/s, on $hmsgs of history" "$on_history (fresh: median above)" ">= 95% of fresh"
echo
printf '| %-52s | %-8s | %s |\n' "operator query at $hmsgs messages" "ms" "target"
printf '|%s|%s|%s|\n' "------------------------------------------------------" "----------" "------"
while IFS='	' read -r label ms; do
	printf '| %-52s | %-8s | %s |\n' "$label" "$ms" "<= 50"
done < "$T/queries"
