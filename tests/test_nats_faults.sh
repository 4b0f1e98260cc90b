#!/bin/sh
# The nats source when things break, against a real nats-server: mandrilld
# killed with SIGKILL mid-run and started again; two mandrilld sharing one
# durable consumer, one of them killed; nats-server restarted mid-run;
# a server that stops answering while a deleted consumer is made again.
# Every published message must end with exactly one final outcome, and no
# msg_id may have two successful restarts (per instance: each instance
# has its own state_dir, and the rules hold per database).
. "$(dirname "$0")/lib.sh"

TAIL=$top_builddir/tests/nats_tail
N=1500

reset() {
	rm -rf "$T/state" "$T/state2" "$LOG" "$T/b.log"
	[ -n "$NATS_PID" ] && stop_nats
	rm -rf "$T/js"
	start_nats
}

# --- SIGKILL mid-run, then start again ------------------------------------------
reset
LATENCY=5ms..20ms nats_conf "ack_wait = 2s" ""
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts $N kill-
check "kill: published $N" "$?" 0
final 300 60 || fail "kill: 300 not done within 60 s"
kill -KILL "$PID"
wait "$PID" 2>/dev/null
note "killed mandrilld with $(sql "$FINAL_SQL") of $N final"
# Its workers lose their socket, record what they started, and exit.
i=0
while pgrep -f "^$WORKER\$" >/dev/null 2>&1 &&
    [ "$(pgrep -f "^$WORKER\$" | xargs -r ps -o ppid= -p | grep -c '^ *1$')" -gt 0 ]; do
	i=$((i + 1)); [ "$i" -gt 100 ] && break; sleep 0.1
done
mv "$LOG" "$T/first.log"
start_mandrilld
final $N 120 || fail "kill: not all $N final within 120 s after the restart"
check "kill: every message has exactly one final row" \
    "$(sql "SELECT count(*), count(DISTINCT host) FROM messages WHERE
        state IN ('restarted','skipped','dead','invalid')")" "$N|$N"
check "kill: no msg_id has two successful restarts" \
    "$(sql "SELECT count(*) FROM (SELECT msg_id FROM restarts
        WHERE outcome = 'restarted' GROUP BY msg_id HAVING count(*) > 1)")" 0
# What the dead one held unacked comes back once ack_wait has passed; the
# work may already be recorded (its workers finished it): then duplicate.
check_cmd "kill: the restarted mandrilld got redeliveries of unacked work" \
    wait_for 'delivery=[2-9]' 10
stop_mandrilld kill
check_invariant

# --- two mandrilld on one durable consumer, one killed --------------------------
reset
LATENCY=5ms..20ms nats_conf "ack_wait = 2s" ""
sed "s#$T/state#$T/state2#" "$T/mandrill.conf" >"$T/b.conf"
start_mandrilld
wait_for "nats: consuming" 10
"$MANDRILLD" -f -c "$T/b.conf" >"$T/b.log" 2>&1 &
PID_B=$!
i=0
until grep -q "nats: consuming" "$T/b.log"; do
	i=$((i + 1)); [ "$i" -gt 100 ] && break; sleep 0.1
done
publish_hosts $N pair-
EXTRA_PIDS=$PID_B
DB_B=$T/state2/mandrill.db
i=0
until [ "$(sqlite3 "$DB_B" "$FINAL_SQL" 2>/dev/null || echo 0)" -gt 50 ] &&
    [ "$(sql "$FINAL_SQL" 2>/dev/null || echo 0)" -gt 50 ]; do
	i=$((i + 1)); [ "$i" -gt 300 ] && break; sleep 0.1
done
a=$(sql "$FINAL_SQL")
b=$(sqlite3 "$DB_B" "$FINAL_SQL")
check "pair: both instances took messages (A $a, B $b)" \
    "$([ "$a" -gt 50 ] && [ "$b" -gt 50 ] && echo yes)" yes
kill -KILL "$PID"
wait "$PID" 2>/dev/null
PID=$PID_B
LOG=$T/b.log
# Every host, across both databases, must end final.
UNION="SELECT count(DISTINCT host) FROM (SELECT host FROM messages
    WHERE state IN ('restarted','skipped','dead','invalid') UNION ALL
    SELECT host FROM a.messages WHERE state IN
    ('restarted','skipped','dead','invalid'))"
union() { sqlite3 -batch -noheader "$DB_B" "ATTACH '$DB' AS a; $UNION"; }
i=0
until [ "$(union 2>/dev/null)" = "$N" ]; do
	i=$((i + 1)); [ "$i" -gt 1200 ] && break; sleep 0.1
done
check "pair: B finished everything A left (all $N hosts final)" "$(union)" "$N"
check_cmd "pair: B took over A's unacked messages after ack_wait" \
    wait_for 'delivery=[2-9]' 10
check "pair: no msg_id restarted twice by B" \
    "$(sqlite3 "$DB_B" "SELECT count(*) FROM (SELECT msg_id FROM restarts
        WHERE outcome = 'restarted' GROUP BY msg_id HAVING count(*) > 1)")" 0
stop_mandrilld pair
DB=$DB_B check_invariant
LOG=$T/mandrilld.log

# --- nats-server restarted mid-run ----------------------------------------------
reset
LATENCY=5ms..20ms nats_conf "ack_wait = 3s" ""
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts $N bounce-
final 300 60 || fail "bounce: 300 not done within 60 s"
stop_nats
note "server stopped with $(sql "$FINAL_SQL") of $N final"
wait_for "nats: disconnected" 10 || fail "bounce: disconnection not logged"
sleep 1
start_nats
wait_for "nats: reconnected" 30 || fail "bounce: no reconnection logged"
final $N 120 || fail "bounce: not all $N final within 120 s of the restart"
check "bounce: every message has exactly one final row" \
    "$(sql "SELECT count(*), count(DISTINCT host) FROM messages WHERE
        state IN ('restarted','skipped','dead','invalid')")" "$N|$N"
check "bounce: the outage was logged once, not per retry" \
    "$(grep -c 'nats: disconnected' "$LOG")" 1
check "bounce: mandrilld is still running" \
    "$(kill -0 "$PID" 2>/dev/null && echo yes)" yes
stop_mandrilld bounce
check_invariant

# --- making a deleted consumer again does not block the loop ---------------------
# The server stops answering (SIGSTOP) just before mandrilld tries to make
# the deleted consumer again, 5 to 6 s after it heard of the deletion: the
# JetStream call waits 5 s for an answer, on a thread of its own.  The loop
# goes on meanwhile: a running job's lease is extended on time, USR2 is
# answered at once, and no loop iteration is slow.
reset
LATENCY=20s..20s nats_conf "ack_wait = 4s" ""
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts 1 slow-
wait_for "Pulled msg_id=" 10 || fail "stalled: nothing pulled"
"$TAIL" "$NATS_URL" RESTARTS mandrill
wait_for 'consumer mandrill was deleted' 15 || fail "stalled: deletion not seen"
# Stopped 1.5 s before the attempt, and for little more than it lasts, so
# that the client's pings do not end the connection meanwhile.
sleep 3.5
kill -STOP "$NATS_PID"
sleep 3.5
dumps=$(grep -c 'nats: connected to' "$LOG")
kill -USR2 "$PID"
sleep 1.5
check "stalled: USR2 answered while the consumer is being made again" \
    "$(grep -c 'nats: connected to' "$LOG")" $((dumps + 1))
check_cmd "stalled: the attempt timed out and said so" \
    wait_for 'nats: consumer mandrill of stream RESTARTS: ' 15
kill -CONT "$NATS_PID"
check_cmd "stalled: made again once the server answers" \
    wait_for 'consumer mandrill is back' 20
check "stalled: no loop iteration took a second" \
    "$(grep -cE 'slow loop iteration: [0-9]{4,} ms' "$LOG")" 0
# Extended every 2/3 of ack_wait (about 2.7 s); a blocked loop leaves 5 s.
gap=$(awk '/Extended deadline/ { split(substr($1, 12, 12), t, ":");
    ms = (t[1] * 3600 + t[2] * 60 + t[3]) * 1000;
    if (prev != "" && ms - prev > max) max = ms - prev; prev = ms; n++ }
    END { print (n >= 3 && max < 4500) ? "on time" : n " lines, gap " max " ms" }' "$LOG")
check "stalled: the running job's lease was extended on time" "$gap" "on time"
check "stalled: the job was not lost" "$(grep -c 'Lease lost' "$LOG")" 0
stop_mandrilld stalled

finish
