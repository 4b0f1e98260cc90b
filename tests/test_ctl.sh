#!/bin/sh
# Issue 15: mandrillctl against a running mandrilld on the sim source:
# each command, bad input (an unknown command, a bad argument, a bad host
# name, a daemon that is not running, an ordinary user), a pause that
# survives a restart of mandrilld, a check verdict for each rule, and a
# reload that answers with the validation result.
. "$(dirname "$0")/lib.sh"

# 40 requests over 20 hosts, one invalid, one denied; restarts by
# /bin/true, min_interval 1h so that a second request for a host is
# skipped.
: >"$T/payloads"
# One that fails while $T/broken exists: dead at once (max_attempts 1),
# for retry.
printf '{"msg_id": "fail-1", "host": "cattle-fail1"}\n' >>"$T/payloads"
touch "$T/broken"
cat >"$T/restart.sh" <<EOF
#!/bin/sh
[ "\$1" = cattle-fail1 ] && [ -e "$T/broken" ] && exit 1
exit 0
EOF
chmod +x "$T/restart.sh"
for i in $(seq 1 20); do
	printf '{"msg_id": "a-%d", "host": "cattle-%d"}\n' "$i" "$i" >>"$T/payloads"
done
printf '{"msg_id": "bad-1", "host": "nothost"}\n' >>"$T/payloads"
printf '{"msg_id": "deny-1", "host": "cattle-dead1"}\n' >>"$T/payloads"
for i in $(seq 1 18); do
	printf '{"msg_id": "b-%d", "host": "cattle-%d"}\n' "$i" "$i" >>"$T/payloads"
done

conf() {
	write_conf <<CONF
workers = 2
max_in_flight = 8
${1:-}

[metrics]
metrics_file = $T/mandrill.prom
metrics_interval = 1s

[source]
type = sim
rate = ${RATE:-10}
payload_file = $T/payloads

[restart]
mode = command
command = $T/restart.sh {host}
allow = cattle-*
deny = cattle-dead*
min_interval = 1h
max_attempts = 1
CONF
}

conf
# What systemd would be told (STATUS=), on a stand-in for its socket.
"$top_builddir/tests/notify_tail" "$T/notify" >"$T/notified" &
EXTRA_PIDS="$EXTRA_PIDS $!"
i=0
until [ -S "$T/notify" ] || [ "$i" -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
NOTIFY_SOCKET=$T/notify start_mandrilld
check_cmd "mandrilld answers on its control socket" wait_ctl

out=$(ctl status)
check "status exits 0" "$?" 0
check "status says running" "$(echo "$out" | grep -c ', running since ')" 1
check "status --json is one JSON object with the state" \
    "$(ctl status --json | grep -c '^{"ok":true,.*"state":"running"')" 1

ctl frobnicate 2>"$T/err"
check "an unknown command exits 64" "$?" 64
check "an unknown command says so in one line" \
    "$(grep -c 'unknown command "frobnicate"' "$T/err")" 1
ctl workers lots 2>/dev/null
check "workers with a bad number exits 64" "$?" 64
ctl status extra 2>/dev/null
check "status with an argument exits 64" "$?" 64

# --- pause: nothing starts, and it survives a restart -------------------
wait_for "Done. Acked msg_id=a-5 " 20
ans=$(ctl pause --reason "change 4711")
check "pause answers with its reason" "$ans" "change 4711"
sleep 1	# what a worker admitted before the pause may still start
before=$(sql "SELECT count(*) FROM restarts")
check "status shows the pause and its reason" \
    "$(ctl status | grep -c '^PAUSED: change 4711$')" 1
sleep 3
check "nothing starts while paused" "$(sql "SELECT count(*) FROM restarts")" \
    "$before"
check "the pause is persisted" "$(cat "$T/state/paused")" "change 4711"
check "the metrics say paused, with the reason" \
    "$(grep -c '^mandrill_paused{reason="change 4711"} 1$' "$T/mandrill.prom")" 1
check "systemd is told it is paused, and why" \
    "$(grep -c '^STATUS=[0-9]* in flight, [0-9]* held; paused: change 4711$' "$T/notified")" 1
ctl pause --reason "$(printf 'tab\there')" 2>"$T/err"
check "a reason with a control character exits 64" "$?" 64
check "and says which character" \
    "$(grep -c 'printable text: it has control character 0x09' "$T/err")" 1
check "and the pause keeps its reason" \
    "$(ctl status | grep -c '^PAUSED: change 4711$')" 1

check "drain answers" "$(ctl drain)" "draining"
wait_exit 20
check "mandrilld drained and exited 0" "$RC" 0
check "systemd was told it was ready, then stopping, and the drain's status" \
    "$(sed -n 's/^\(READY=1\|STOPPING=1\).*/\1/p; s/^STATUS=draining: [0-9]* in flight, [0-9]* held; paused: change 4711$/draining/p' \
       "$T/notified" | uniq | tr '\n' ' ')" \
    "READY=1 STOPPING=1 draining "
ctl status 2>"$T/err"
check "status of a daemon that is not running exits 69" "$?" 69
check "and says it is not running" "$(grep -c 'mandrilld is not running' "$T/err")" 1

start_mandrilld
check_cmd "mandrilld answers again" wait_ctl
check "a restarted mandrilld is still paused" \
    "$(ctl status | grep -c '^PAUSED: change 4711$')" 1
wait_for "paused by mandrillctl (change 4711)" 5
sleep 2
check "nothing starts after the restart while paused" \
    "$(sql "SELECT count(*) FROM restarts")" "$before"
held=$(sql "SELECT count(*) FROM messages WHERE held = 'paused: change 4711'")
note "messages held with the pause's reason: $held"

# --- check: a verdict for each rule -------------------------------------
ok_host=$(sql "SELECT host FROM restarts WHERE outcome = 'restarted' LIMIT 1")
ctl check cattle-999 >"$T/check" 2>&1
check "check of a host while paused exits 1" "$?" 1
check "check says paused and why" \
    "$(grep -c '^cattle-999: held: paused: change 4711$' "$T/check")" 1

check "resume answers" "$(ctl resume)" "resumed"
check "resume removes the pause file" "$(test -e "$T/state/paused"; echo $?)" 1
ctl check cattle-999 >"$T/check"
check "check of a host that may go exits 0" "$?" 0
check "check says it would be restarted" \
    "$(grep -c '^cattle-999: would be restarted now$' "$T/check")" 1
check "check prints the command line" \
    "$(grep -c "^  command: $T/restart.sh cattle-999\$" "$T/check")" 1
ctl check "$ok_host" nothost cattle-dead7 'bad_name' cattle-999 >"$T/check"
check "check of several hosts exits 1 when one may not go" "$?" 1
check "min_interval verdict" \
    "$(grep -c "^$ok_host: skipped: min_interval 1h: restarted at " "$T/check")" 1
check "allow verdict" "$(grep -c '^nothost: invalid: no allow glob matches$' "$T/check")" 1
check "deny verdict names the glob" \
    "$(grep -c '^cattle-dead7: invalid: deny glob cattle-dead\*$' "$T/check")" 1
check "name verdict" \
    "$(grep -c '^bad_name: invalid: not an RFC 1123 name: ' "$T/check")" 1

# --- history and dead ---------------------------------------------------
wait_for "Done. Acked msg_id=b-18 " 30
ctl history cattle-3 >"$T/hist"
check "history exits 0" "$?" 0
check "history lists each request and attempt" "$(wc -l <"$T/hist")" \
    "$(sql "SELECT (SELECT count(*) FROM messages WHERE host = 'cattle-3') +
        (SELECT count(*) FROM restarts WHERE host = 'cattle-3')")"
check "history is newest first" "$(head -1 "$T/hist" | grep -c 'msg_id=b-3 ')" 1
check "history --json gives one object a row" \
    "$(ctl --json history cattle-3 | grep -c '^{"at":')" "$(wc -l <"$T/hist")"
ctl history 2>/dev/null
check "history without a host exits 64" "$?" 64
ctl dead >"$T/dead"
check "dead lists the invalid and the denied" \
    "$(grep -c -E 'msg_id=(bad-1|deny-1) ' "$T/dead")" 2
ctl dead --since yesterday 2>/dev/null
check "dead with a bad --since exits 64" "$?" 64

# --- retry: a dead letter gets another go -------------------------------
check "the failing host's request is dead" \
    "$(sql "SELECT state FROM messages WHERE msg_id = 'fail-1'")" dead
rm -f "$T/broken"
check "retry answers" "$(ctl retry fail-1)" "published again"
wait_for "Done. Acked msg_id=retry-1 outcome=restarted host=cattle-fail1" 20 ||
    fail "retry: the dead letter was not restarted"
check "the retried message is restarted, under its own msg_id" \
    "$(sql "SELECT state || ' ' || attempts FROM messages WHERE msg_id = 'fail-1'")" "restarted 1"
check "its history keeps the failed attempt and adds the new one" \
    "$(sql "SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM restarts WHERE msg_id = 'fail-1' ORDER BY id)")" "failed,restarted"
ctl retry fail-1 2>"$T/err"
check "a retry of a message that is not dead exits 65" "$?" 65
check "and says what it is" \
    "$(grep -c 'msg_id fail-1 is restarted, not dead' "$T/err")" 1
ctl retry no-such-id 2>"$T/err"
check "a retry of an unknown msg_id exits 65" "$?" 65
check "and says so" "$(grep -c 'no message has msg_id "no-such-id"' "$T/err")" 1
ctl retry 2>/dev/null
check "retry without a MSG_ID exits 64" "$?" 64

# --- reload answers with the validation result --------------------------
cp "$T/mandrill.conf" "$T/good.conf"
echo "bogus_key = 1" >>"$T/mandrill.conf"
ctl reload >"$T/reload" 2>&1
check "a reload of a file mandrillctl cannot read exits 78" "$?" 78
check "and names the file, line and key" \
    "$(grep -c "reload refused, configuration unchanged: $T/mandrill.conf:[0-9]*: .*bogus_key" "$T/reload")" 1
# One only the daemon can judge: its user does not exist.
sed 's/^workers = 2$/workers = 2\nuser = no-such-user-mandrill/' "$T/good.conf" \
    >"$T/mandrill.conf"
ctl reload >"$T/reload" 2>&1
check "a reload the daemon refuses exits 78" "$?" 78
check "and its answer says why" \
    "$(grep -c "reload failed, configuration unchanged: .*user no-such-user-mandrill: no such user" "$T/reload")" 1
check "the daemon runs on after a refused reload" \
    "$(ctl status | grep -c ', running since ')" 1
cp "$T/good.conf" "$T/mandrill.conf"
check "a reload of a good file answers" "$(ctl reload | grep -c '^reload done: generation ')" 1
check "workers N answers" "$(ctl workers 3)" "workers set"
i=0
until ctl status | grep -q 'workers 3 of 3'; do
	i=$((i + 1)); [ "$i" -gt 50 ] && break; sleep 0.1
done
check "status shows 3 workers" "$(ctl status | grep -c 'workers 3 of 3')" 1

# --- an ordinary user is refused ----------------------------------------
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	chmod o+x "$T" "$T/state"
	chmod o+r "$T/mandrill.conf"
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$CTL" -c "$T/mandrill.conf" status 2>"$T/err"
	check "an ordinary user gets exit 77" "$?" 77
	check "and a line saying permission denied" \
	    "$(grep -c 'permission denied' "$T/err")" 1
else
	note "not root: the ordinary-user case needs setpriv to nobody"
fi

kill -TERM "$PID"
wait_exit 20
check "mandrilld exits 0 after TERM" "$RC" 0
check "the control socket is removed at exit" \
    "$(test -e "$T/state/control.sock"; echo $?)" 1
check "no msg_id has two successful restarts" \
    "$(sql "SELECT count(*) FROM (SELECT msg_id FROM restarts
        WHERE outcome = 'restarted' GROUP BY msg_id HAVING count(*) > 1)")" 0
check "every request is final: none lost to the pause or the restart" \
    "$(sql "SELECT count(*) FROM messages WHERE state IN
        ('restarted','skipped','invalid')")" 41
finish
