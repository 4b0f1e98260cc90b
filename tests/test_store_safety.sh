#!/bin/bash
# The database under mandrilld: one deleted while it runs is noticed and
# never silently replaced by a fresh one; a reader that holds a
# transaction open cannot make the WAL grow for good.
. "$(dirname "$0")/lib.sh"

conf() {
	# $1: extra [mandrill] lines, $2: rate
	write_conf <<EOF2
workers = 2
jobs_per_worker = 16
max_in_flight = 64
$1
[source]
type = sim
batch = 16
rate = $2
count = 0
instances = 4
[restart]
mode = sim
sim_latency = 1ms..5ms
allow = cattle-*
min_interval = 1h
EOF2
}

# --- the database deleted under a running mandrilld --------------------------
# All four hosts are restarted first: after that min_interval skips every
# request, so no restart can be running when the file goes (that case,
# an outcome known but not recordable, is the next section's).
conf "" 20
start_mandrilld
wait_count "Restarted host=" 4 20 || fail "deleted db: four hosts not restarted first"
wait_for "Done. Acked msg_id.*outcome=skipped" 20 ||
    fail "deleted db: nothing skipped first"
restarted=$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted'")
rm -f "$DB" "$DB-wal" "$DB-shm"
wait_for "was deleted under the running mandrilld" 20 ||
    fail "deleted db: the worker did not notice"
wait_for "holding messages and pulling none" 20 ||
    fail "deleted db: the supervisor did not stop pulling"
kill -TTIN "$PID"
wait_for "the database mandrilld started with is gone" 20 ||
    fail "deleted db: a new worker did not refuse to make a fresh one"
sleep 1
check "deleted db: no fresh database was created" \
    "$(test -e "$DB" && echo created || echo none)" none
check "deleted db: the log says it once per worker, not per message" \
    "$(grep -c 'store: cannot commit: database .* was deleted' "$LOG" | awk '{print ($1 >= 1 && $1 <= 3)}')" 1
kill -TERM "$PID"
wait_exit 30
check "deleted db: a drain still exits 0" "$RC" 0
check "deleted db: all four hosts were restarted before, none after" \
    "$restarted" 4
check "deleted db: no host restarted after the file went" \
    "$(grep -c 'Restarted host=' "$LOG")" 4

# --- moved away while restarts run, then put back -----------------------------
# A restart that ended while the file was gone has an outcome that only
# the database may settle: mandrilld waits for it, past drain_timeout,
# and records it once the file is back; it never acks it unrecorded.
rm -rf "$T/state"
rm -f "$LOG"
conf "drain_timeout = 2s" 20
sed -i 's/^sim_latency = .*/sim_latency = 1500ms..1500ms/' "$T/mandrill.conf"
start_mandrilld
wait_for "Saved msg_id" 20 || fail "moved db: nothing saved first"
mv "$DB" "$T/aside.db"
wait_for "was deleted under the running mandrilld" 20 ||
    fail "moved db: the worker did not notice"
kill -TERM "$PID"
wait_for "restart outcomes it cannot record yet; not killing it" 20 ||
    fail "moved db: the worker holding outcomes was not spared"
check "moved db: mandrilld waits for the outcomes past drain_timeout" \
    "$(kill -0 "$PID" 2>/dev/null && echo running)" running
check "moved db: nothing acked while the file was away" \
    "$(grep -c 'Done. Acked' "$LOG")" 0
mv "$T/aside.db" "$DB"
wait_exit 30
check "moved db: exits 0 once the outcomes are recorded" "$RC" 0
check "moved db: the log says the store commits again" \
    "$(grep -c 'store: commits again' "$LOG" | awk '{print ($1 >= 1)}')" 1
check "moved db: every restart that ran is recorded" \
    "$(sql "SELECT count(*) FROM restarts WHERE outcome = 'restarted'")" \
    "$(grep -c 'Restarted host=' "$LOG")"
check "moved db: at least one restart ran while the file was away" \
    "$(grep -c 'Restarted host=' "$LOG" | awk '{print ($1 >= 1)}')" 1

# --- a reader holding a transaction: the WAL shrinks back after it ends ------
rm -rf "$T/state"
rm -f "$LOG"
conf "wal_limit = 8388608" 0
start_mandrilld
wait_for "Done. Acked msg_id" 20 || fail "wal: nothing done first"
printf 'BEGIN;\nSELECT count(*) FROM messages;\n.shell sleep 8\nCOMMIT;\n' |
    sqlite3 "$DB" >/dev/null &
reader=$!
wait_for "a reader keeps the checkpoint from finishing" 30 ||
    fail "wal: the starved checkpoint was not reported"
wal_during=$(stat -c %s "$DB-wal")
wait "$reader"
wait_for "checkpoints finish again" 30 || fail "wal: no recovery reported"
# The truncation comes at a worker's next heartbeat that finds every frame
# checkpointed: poll for it, up to 20 s, while the load goes on.
i=0
while :; do
	wal_after=$(stat -c %s "$DB-wal")
	[ "$wal_after" -le 8388608 ] || [ $i -ge 40 ] && break
	sleep 0.5
	i=$((i + 1))
done
note "WAL during the reader $wal_during bytes, $wal_after $((i / 2)) s after it ended"
check "wal: it grew past the limit while the reader lasted" \
    "$(test "$wal_during" -gt 8388608 && echo yes)" yes
check "wal: back under the limit after the reader ended" \
    "$(test "$wal_after" -le 8388608 && echo yes)" yes
# Once by each worker whose checkpoint the reader starved (one of the two
# may commit nothing while it lasts, on a loaded machine): not per message.
check "wal: reported once by a worker at most, not per message" \
    "$(grep -c 'a reader keeps the checkpoint' "$LOG" | awk '{print ($1 >= 1 && $1 <= 2)}')" 1
kill -TERM "$PID"
wait_exit 30
check "wal: exit 0" "$RC" 0

# --- retain: old finished rows pruned while it runs, the rest kept ------------
rm -rf "$T/state"
rm -f "$LOG"
# Rows are pruned in row id order, which is time order: the old rows go
# in first, made while nothing was pulled.
conf "retain = 90d" 20
echo "enabled = no" >>"$T/mandrill.conf"
start_mandrilld
wait_for "worker 1 ready" 20 || fail "retain: no worker ready"
kill -TERM "$PID"
wait_exit 30
old="strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-200 days')"
sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
     INSERT INTO messages (msg_id, instance, host, state, attempts, first_seen, updated)
     SELECT 'old-' || i, 'cattle-0001', 'cattle-0001', 'restarted', 1, $old, $old FROM n;
     INSERT INTO restarts (msg_id, host, attempt, started, finished, outcome)
     SELECT msg_id, host, 1, first_seen, updated, 'restarted' FROM messages;
     INSERT INTO messages (msg_id, instance, host, state, attempts, first_seen, updated)
     VALUES ('old-failed', 'cattle-0002', 'cattle-0002', 'failed', 1, $old, $old),
            ('young', 'cattle-0003', 'cattle-0003', 'restarted', 1,
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-89 days'),
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-89 days'));
     INSERT INTO dead_letters (msg_id, reason, created) VALUES ('old-7', 'x', $old);" >/dev/null
sed -i '/^enabled = no$/d' "$T/mandrill.conf"
start_mandrilld
wait_for "retain: pruned" 30 || fail "retain: nothing pruned"
check "retain: the old finished rows are gone, in batches" \
    "$(sql "SELECT count(*) FROM messages WHERE msg_id LIKE 'old-%' AND state = 'restarted'")" 0
check "retain: their attempts and dead letters too" \
    "$(sql "SELECT (SELECT count(*) FROM restarts WHERE msg_id LIKE 'old-%') + (SELECT count(*) FROM dead_letters WHERE msg_id LIKE 'old-%')")" 0
check "retain: this run's rows are kept" \
    "$(sql "SELECT count(*) > 0 FROM messages WHERE msg_id NOT LIKE 'old-%' AND msg_id <> 'young'")" 1
check "retain: a message still on its way is kept" \
    "$(sql "SELECT state FROM messages WHERE msg_id = 'old-failed'")" failed
check "retain: a row younger than retain is kept" \
    "$(sql "SELECT count(*) FROM messages WHERE msg_id = 'young'")" 1
check "retain: the log says how many, once" \
    "$(grep 'retain: pruned' "$LOG" | sed 's/.*retain: //')" "pruned 2401 finished rows older than 90d"
kill -TERM "$PID"
wait_exit 30
check "retain: exit 0" "$RC" 0

finish
