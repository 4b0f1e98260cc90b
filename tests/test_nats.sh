#!/bin/sh
# The nats source against a real nats-server (JetStream, 127.0.0.1, a
# free port, a store in the test's directory), judged by SQL and the log:
# start-up errors exit 69; 1000 published, 1000 final outcomes; restarts
# longer than ack_wait are extended, not redelivered; a failed restart
# comes back after its backoff (nak with delay); max_deliver and invalid
# payloads end in dead_letters and on dead_letter_subject.
. "$(dirname "$0")/lib.sh"

TAIL=$top_builddir/tests/nats_tail

reset() {
	[ -n "$PID" ] && pkill -KILL -P "$PID" 2>/dev/null
	[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	PID=
	rm -rf "$T/state" "$LOG"
	[ -n "$NATS_PID" ] && stop_nats
	rm -rf "$T/js"
	start_nats
}

# --- start-up errors: exit 69 with one clear line -------------------------------
start_nats
port=$NATS_PORT
stop_nats
NATS_URL=nats://127.0.0.1:$port
nats_conf "" ""
"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1
check "no server: exit 69" "$?" 69
check "no server: the log names the URL" \
    "$(grep -c "cannot connect to nats://127.0.0.1:$port" "$LOG")" 1
# As a daemon: the parent waits for the start-up and exits with its status.
nats_conf "" "" "log_file = $T/daemon.log"
"$MANDRILLD" -c "$T/mandrill.conf" >"$T/daemon.out" 2>&1
check "no server, daemon mode: the starting command exits 69" "$?" 69
check "no server, daemon mode: it says so and where to look" \
    "$(grep -c "start-up failed (status 69); see $T/daemon.log" "$T/daemon.out")" 1

reset
nats_conf "create = no" ""
"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1
check "create = no, no stream: exit 69" "$?" 69
check "create = no, no stream: said so" \
    "$(grep -c 'stream RESTARTS does not exist' "$LOG")" 1

nats_conf "stream = OTHER
subject = other.subject" ""
"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1 &
PID=$!
check_cmd "stream OTHER created for other.subject" \
    wait_for "consuming other.subject" 10
kill -TERM "$PID"
wait_exit 10
nats_conf "stream = OTHER" ""
"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1
check "a stream that does not take the subject: exit 69" "$?" 69
check "a stream that does not take the subject: said so" \
    "$(grep -c 'stream OTHER exists but does not take subject mandrill.restart' "$LOG")" 1

URL=http://127.0.0.1:$NATS_PORT nats_conf "" ""
check "url must be nats:// (config check)" \
    "$("$MANDRILLD" -t -c "$T/mandrill.conf" 2>&1 | grep -c 'want nats://HOST:PORT')" 1
nats_conf "stream = A.B" ""
check "stream names cannot have dots (config check)" \
    "$("$MANDRILLD" -t -c "$T/mandrill.conf" 2>&1 | grep -c 'may not contain')" 1

# --- mandrill-publish refuses a bad subject before it publishes -----------------
# (an empty one once reached natsMsg_Destroy with an unset pointer)
for subj in '' 'a..b' 'mandrill.*' 'a b'; do
	"$PUBLISH" -u "$NATS_URL" -s "$subj" host1 >"$T/pub.out" 2>&1
	check "publish -s '$subj': exit 64" "$?" 64
	check "publish -s '$subj': one line naming the subject" \
	    "$(wc -l <"$T/pub.out") $(grep -c "subject \"$subj\"" "$T/pub.out")" "1 1"
done
printf '[source]\nsubject = a..b\n' >"$T/pub.conf"
"$PUBLISH" -c "$T/pub.conf" -u "$NATS_URL" host1 >"$T/pub.out" 2>&1
check "publish -c with a bad subject: refused, naming it" \
    "$? $(grep -c 'subject "a..b"' "$T/pub.out")" "64 1"

# --- 1000 published, 1000 final outcomes ----------------------------------------
reset
nats_conf "ack_wait = 10s" ""
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts 1000 host-
check "1000: mandrill-publish exits 0" "$?" 0
final 1000 60 || fail "1000: not all final within 60 s"
check "1000: every message restarted once" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 1000
check "1000: 1000 distinct hosts" \
    "$(sql "SELECT count(DISTINCT host) FROM restarts")" 1000
check "1000: nothing redelivered" "$(grep -c 'delivery=[2-9]' "$LOG")" 0
# A reload may not reshape the consumer under running work; batch it may.
nats_conf "ack_wait = 20s" ""
kill -HUP "$PID"
check_cmd "reload: a new ack_wait is refused, said in one line" \
    wait_for 'reload refused, configuration unchanged: \[source\] ack_wait cannot change' 10
nats_conf "ack_wait = 10s
batch = 50" ""
kill -HUP "$PID"
check_cmd "reload: a new batch is taken" wait_for 'reload done: generation 2' 10
stop_mandrilld 1000
check_invariant
check "1000: acked 1000 in the summary" \
    "$(grep -c 'Summary: pulled 1000, acked 1000' "$LOG")" 1

# --- a url list: a dead server first, the live one second -----------------------
reset
dead=1		# nothing listens there: connection refused
URL="nats://127.0.0.1:$dead, $NATS_URL" nats_conf "" ""
check "url list: mandrilld -t accepts it" \
    "$("$MANDRILLD" -t -c "$T/mandrill.conf" 2>&1 | grep -c 'configuration OK')" 1
start_mandrilld
check_cmd "url list: connects past the dead first server" \
    wait_for "nats: consuming" 15
seq 1 20 | sed 's/^/listed-/' |
    "$PUBLISH" -q -u "nats://127.0.0.1:$dead,$NATS_URL" -f -
check "url list: mandrill-publish takes the list too" "$?" 0
final 20 30 || fail "url list: not final within 30 s"
check "url list: every message restarted" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 20
URL="nats://127.0.0.1:$dead, $NATS_URL" nats_conf "replicas = 3" ""
kill -HUP "$PID"
check_cmd "reload: a new replicas is refused, said in one line" \
    wait_for 'reload refused, configuration unchanged: \[source\] replicas cannot change' 10
stop_mandrilld "url list"
URL="nats://127.0.0.1:$dead,,$NATS_URL" nats_conf "" ""
check "url list: an empty element is refused by -t" \
    "$("$MANDRILLD" -t -c "$T/mandrill.conf" 2>&1 | grep -c 'has an empty element')" 1
URL="$NATS_URL,nats://127.0.0.1:99999" nats_conf "" ""
check "url list: -t checks every element" \
    "$("$MANDRILLD" -t -c "$T/mandrill.conf" 2>&1 | grep -c '"nats://127.0.0.1:99999" has a port outside')" 1
"$PUBLISH" -u "$NATS_URL,nats://127.0.0.1:99999" h1 >"$T/pub.out" 2>&1
check "url list: mandrill-publish checks every element of -u" \
    "$? $(grep -c 'has a port outside' "$T/pub.out")" "64 1"

# --- replicas is what create = yes asks for ---------------------------------------
reset
nats_conf "replicas = 3" ""
"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1
check "replicas = 3 on a single server: exit 69" "$?" 69
check "replicas = 3 on a single server: the server's refusal, in one line" \
    "$(grep -c 'cannot create stream RESTARTS.*replicas' "$LOG")" 1

# --- restarts longer than ack_wait are extended, not redelivered ----------------
reset
LATENCY=5s..5s nats_conf "ack_wait = 2s" ""
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts 3 slow-
final 3 30 || fail "extend: not final within 30 s"
check "extend: three restarts, one attempt each" \
    "$(sql "SELECT count(*), sum(attempts) FROM messages WHERE state = 'restarted'")" "3|3"
check "extend: leases were extended" \
    "$(grep -c 'Extended deadline' "$LOG" | awk '{print ($1 >= 3)}')" 1
check "extend: nothing redelivered" "$(grep -c 'delivery=[2-9]' "$LOG")" 0
stop_mandrilld extend

# --- a failed restart comes back after its backoff (nak with delay) -------------
reset
cat >"$T/fail-once.sh" <<EOF
#!/bin/sh
[ -e "$T/failed-\$1" ] && exit 0
touch "$T/failed-\$1"
exit 1
EOF
chmod +x "$T/fail-once.sh"
nats_conf "" "mode = command
command = $T/fail-once.sh {host}
backoff_min = 2s
backoff_max = 2s"
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts 1 flaky-
final 1 30 || fail "nak delay: not final within 30 s"
check "nak delay: failed once, then restarted" \
    "$(sql "SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM restarts ORDER BY id)")" \
    "failed,restarted"
check "nak delay: the second delivery came after the 2 s backoff" \
    "$(sql "SELECT (julianday(b.started) - julianday(a.finished)) * 86400 >= 1.9
        FROM restarts a, restarts b WHERE a.attempt = 1 AND b.attempt = 2")" 1
check "nak delay: redelivered by the server as delivery 2" \
    "$(grep -c 'delivery=2' "$LOG")" 1
stop_mandrilld "nak delay"

# --- max_deliver and invalid payloads: dead_letters and dead_letter_subject -----
reset
"$TAIL" "$NATS_URL" mandrill.dead 3 60 >"$T/dead.txt" 2>&1 &
tail_pid=$!
EXTRA_PIDS=$tail_pid
i=0
until grep -q ready "$T/dead.txt"; do
	i=$((i + 1)); [ "$i" -gt 50 ] && break; sleep 0.1
done
FAILRATE=1 nats_conf "max_deliver = 2
dead_letter_subject = mandrill.dead" "max_attempts = 10
backoff_min = 100ms
backoff_max = 100ms"
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts 1 doomed-
"$PUBLISH" -q -u "$NATS_URL" --raw 'not json' \
    '{"msg_id": "bad-host", "host": "no_such_host!"}'
check "raw: mandrill-publish --raw exits 0" "$?" 0
final 2 30 || fail "dead letters: not final within 30 s"
check "max_deliver: the message is dead after 2 deliveries" \
    "$(sql "SELECT state, attempts FROM messages WHERE host = 'doomed-1'")" "dead|2"
check "max_deliver: in dead_letters with the server's reason" \
    "$(sql "SELECT count(*) FROM dead_letters WHERE reason LIKE '%max_deliver reached%'
        AND CAST(payload AS TEXT) LIKE '%doomed-1%'")" 1
check "invalid: both bad payloads in dead_letters" \
    "$(sql "SELECT count(*) FROM dead_letters WHERE reason NOT LIKE '%max_deliver%'")" 2
check "invalid: terminated, not redelivered" \
    "$(grep -c 'Terminated msg_id=' "$LOG")" 2
stream_empty() {
	i=0
	until [ "$("$TAIL" "$NATS_URL" RESTARTS)" = 0 ]; do
		i=$((i + 1)); [ "$i" -gt 50 ] && return 1; sleep 0.1
	done
}
check_cmd "max_deliver: the recorded dead message left the work queue" \
    stream_empty
wait "$tail_pid"
check "dead_letter_subject: all three published there" "$?" 0
check "dead_letter_subject: with the reason header" \
    "$(grep -c '^dead: .*max_deliver reached.*doomed-1' "$T/dead.txt")" 1
check "dead_letter_subject: the unparsable payload as it was" \
    "$(grep -c '^invalid: payload is not JSON.* | not json$' "$T/dead.txt")" 1
stop_mandrilld "dead letters"

# --- a consumer deleted under a running mandrilld is made again ---------------
reset
nats_conf "" ""
start_mandrilld
wait_for "nats: consuming" 10
"$TAIL" "$NATS_URL" RESTARTS mandrill
check_cmd "consumer deleted: said once" wait_for 'consumer mandrill was deleted' 15
check_cmd "consumer deleted: made again" wait_for 'consumer mandrill is back' 15
publish_hosts 20 again-
final 20 30 || fail "consumer deleted: not final within 30 s"
check "consumer deleted: the work goes on" \
    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 20
stop_mandrilld "consumer deleted"

# --- what arrives while draining goes back without burning deliveries -----------
reset
LATENCY=4s..4s nats_conf "max_deliver = 3" ""
start_mandrilld
wait_for "nats: consuming" 10
publish_hosts 1 draining-
wait_for "Pulled msg_id=" 10
kill -TERM "$PID"
wait_for "Draining (" 5
publish_hosts 2 late-
wait_exit 30
check "drain: exits 0 after its restart" "$RC" 0
check "drain: the late messages did not reach max_deliver" \
    "$(grep -c 'reached max_deliver' "$LOG")" 0
check "drain: the late messages are still in the stream for others" \
    "$("$TAIL" "$NATS_URL" RESTARTS)" 2
check "drain: the one in flight was restarted" \
    "$(sql "SELECT count(*) FROM messages WHERE host = 'draining-1' AND state = 'restarted'")" 1

finish
