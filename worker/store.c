/*
 * store: schema, migrations and the exactly-once decisions in SQLite.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "proc.h"
#include "store.h"

enum stmt {
	S_SEL_MSG, S_INS_MSG, S_UPD_MSG, S_SEL_BUSY, S_SEL_LAST_OK,
	S_INS_RESTART, S_FIN_RESTART, S_LOST_RESTART, S_INS_DEAD,
	S_SEL_RUNNING, S_COUNT_MINUTE, S_PREV_BOOT_RECENT, S_HOST_START,
	S_HOST_END, S_PRUNE_SCAN_MSG, S_PRUNE_DEL_MSG, S_PRUNE_SCAN_RST,
	S_PRUNE_DEL_RST, S_PRUNE_SCAN_DEAD, S_PRUNE_DEL_DEAD, S_DEAD_NEWEST,
	S_TOTAL_ADD, S_MINUTE_ADD, S_PRUNE_MINUTES, S_GROUP_RUNNING,
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_COUNT
};

static const char *sql[S_COUNT] = {
	[S_SEL_MSG] = "SELECT state, attempts, owner, host, crashes, held "
	    "FROM messages WHERE msg_id = ?1",
	[S_INS_MSG] = "INSERT INTO messages (msg_id, instance, host, state, "
	    "attempts, deliveries, first_seen, updated, error, payload, owner, "
	    "crashes, held, held_since) VALUES (?1, ?2, ?3, ?4, ?9, ?5, ?6, "
	    "?6, ?7, ?8, ?10, ?11, ?12, CASE WHEN ?12 IS NULL THEN NULL "
	    "ELSE ?6 END)",
	[S_UPD_MSG] = "UPDATE messages SET state = ?2, attempts = ?3, "
	    "owner = ?4, error = ?5, updated = ?6, "
	    "deliveries = max(deliveries, ?7), crashes = ?8, "
	    "held_since = CASE WHEN ?9 IS NULL THEN NULL WHEN held IS ?9 "
	    "THEN held_since ELSE ?6 END, held = ?9 WHERE msg_id = ?1",
	[S_SEL_BUSY] = "SELECT owner FROM messages INDEXED BY messages_active "
	    "WHERE host = ?1 AND state = 'restarting' AND msg_id <> ?2",
	/* The newest success in commit order, whatever the clock did. */
	[S_SEL_LAST_OK] = "SELECT last_ok, last_ok_mono, last_ok_boot FROM "
	    "hosts WHERE host = ?1",
	[S_HOST_START] = "INSERT INTO hosts (host, running_msg_id, "
	    "running_since, last_attempt, group_name) VALUES (?1, ?2, ?3, ?3, "
	    "?4) ON CONFLICT (host) DO UPDATE SET running_msg_id = ?2, "
	    "running_since = ?3, last_attempt = ?3, group_name = ?4",
	/* Restarts running in a group, with their owners to judge. */
	[S_GROUP_RUNNING] = "SELECT m.owner FROM hosts h INDEXED BY "
	    "hosts_running JOIN messages m ON m.msg_id = h.running_msg_id "
	    "WHERE h.group_name = ?1 AND h.running_msg_id IS NOT NULL AND "
	    "h.host <> ?2 AND m.state = 'restarting'",
	/*
	 * An attempt's end (?3: its outcome); a lost one (?8 = 1) only
	 * when it is the host's latest, the one the row says is running.
	 */
	[S_HOST_END] = "UPDATE hosts SET "
	    "running_msg_id = iif(running_msg_id = ?2, NULL, running_msg_id), "
	    "running_since = iif(running_msg_id = ?2, NULL, running_since), "
	    "last_outcome = ?3, last_error = ?4, "
	    "last_ok = iif(?3 = 'restarted', ?5, last_ok), "
	    "last_ok_mono = iif(?3 = 'restarted', ?6, last_ok_mono), "
	    "last_ok_boot = iif(?3 = 'restarted', ?7, last_ok_boot), "
	    "last_ok_msg_id = iif(?3 = 'restarted', ?2, last_ok_msg_id) "
	    "WHERE host = ?1 AND (?8 = 0 OR running_msg_id = ?2)",
	[S_INS_RESTART] = "INSERT INTO restarts (msg_id, host, attempt, "
	    "started, boot, started_mono) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_FIN_RESTART] = "UPDATE restarts SET finished = ?2, "
	    "exit_status = ?3, outcome = ?4, error = ?5, output = ?6, "
	    "finished_mono = ?7, check_ms = ?8, check_output = ?9 "
	    "WHERE id = ?1 AND finished IS NULL",
	[S_LOST_RESTART] = "UPDATE restarts SET finished = ?2, "
	    "outcome = 'lost', error = ?3 WHERE msg_id = ?1 AND "
	    "finished IS NULL",
	[S_INS_DEAD] = "INSERT INTO dead_letters (msg_id, broker_id, reason, "
	    "payload, created) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_SEL_RUNNING] = "SELECT owner FROM messages INDEXED BY "
	    "messages_active WHERE state = 'restarting'",
	[S_COUNT_MINUTE] = "SELECT count(*), min(started_mono) FROM restarts "
	    "WHERE boot = ?1 AND started_mono > ?2",
	[S_PREV_BOOT_RECENT] = "SELECT started FROM restarts WHERE boot = ?1 "
	    "ORDER BY started_mono DESC LIMIT ?2",
	/*
	 * retain: rows are in time order by row id, so a batch is a range
	 * of row ids from a cursor, up to the first row young enough to
	 * keep; only finished rows in that range go.
	 */
	[S_PRUNE_SCAN_MSG] = "SELECT rowid, first_seen < ?2 FROM messages "
	    "WHERE rowid > ?1 ORDER BY rowid LIMIT ?3",
	[S_PRUNE_DEL_MSG] = "DELETE FROM messages WHERE rowid > ?1 AND "
	    "rowid <= ?2 AND updated < ?3 AND (state = 'restarted' OR "
	    "state = 'skipped' OR state = 'dead' OR state = 'invalid' OR "
	    "state = 'dry-run') RETURNING state",
	[S_PRUNE_SCAN_RST] = "SELECT id, started < ?2 FROM restarts "
	    "WHERE id > ?1 ORDER BY id LIMIT ?3",
	[S_PRUNE_DEL_RST] = "DELETE FROM restarts WHERE id > ?1 AND "
	    "id <= ?2 AND finished < ?3 RETURNING NULL",
	[S_PRUNE_SCAN_DEAD] = "SELECT id, created < ?2 FROM dead_letters "
	    "WHERE id > ?1 ORDER BY id LIMIT ?3",
	[S_PRUNE_DEL_DEAD] = "DELETE FROM dead_letters WHERE id > ?1 AND "
	    "id <= ?2 AND created < ?3 RETURNING NULL",
	[S_DEAD_NEWEST] = "SELECT max(id) FROM dead_letters WHERE msg_id = ?1",
	[S_TOTAL_ADD] = "INSERT INTO state_totals (state, n) VALUES (?1, ?2) "
	    "ON CONFLICT (state) DO UPDATE SET n = n + excluded.n",
	[S_MINUTE_ADD] = "INSERT INTO outcome_minutes (minute, state, n) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (minute, state) DO UPDATE SET "
	    "n = n + excluded.n",
	[S_PRUNE_MINUTES] = "DELETE FROM outcome_minutes WHERE minute < ?1",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
};

/*
 * Version 2.  Times are ISO 8601 UTC text, which sorts as time does.
 * msg_id and host are random keys: every index on them costs a random
 * page write per row, so the hot indexes are partial and hold only the
 * few rows in progress (active messages, open attempts).
 *
 * Lists of allowed values are spelled with OR, not IN: SQLite builds a
 * temporary B-tree for an IN list of more than two constants each time
 * a statement evaluates it, and CHECK constraints and partial indexes
 * are evaluated on every write (version 1 spent half its time there).
 * A query that should use messages_active must repeat its WHERE clause
 * exactly, as in_progress does, or name it with INDEXED BY.
 */
static const char schema_tables[] =
    "CREATE TABLE messages ("
    " msg_id TEXT PRIMARY KEY NOT NULL,"
    " instance TEXT,"
    " host TEXT,"
    " state TEXT NOT NULL CHECK (state = 'received' OR"
    "  state = 'restarting' OR state = 'restarted' OR state = 'skipped' OR"
    "  state = 'failed' OR state = 'dead' OR state = 'invalid'),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " deliveries INTEGER NOT NULL DEFAULT 0,"
    " first_seen TEXT NOT NULL,"
    " updated TEXT NOT NULL,"
    " error TEXT,"
    " owner TEXT,"
    " payload TEXT);"
    "CREATE TABLE restarts ("
    " id INTEGER PRIMARY KEY,"
    " msg_id TEXT NOT NULL,"
    " host TEXT NOT NULL,"
    " attempt INTEGER NOT NULL,"
    " started TEXT NOT NULL,"
    " finished TEXT,"
    " exit_status INTEGER,"
    " outcome TEXT CHECK (outcome = 'restarted' OR outcome = 'failed' OR"
    "  outcome = 'lost' OR outcome = 'dry-run'),"
    " error TEXT,"
    " output TEXT);";

static const char schema_dead_letters[] =
    "CREATE TABLE dead_letters ("
    " id INTEGER PRIMARY KEY,"
    " msg_id TEXT,"
    " broker_id TEXT,"
    " reason TEXT NOT NULL,"
    " payload BLOB,"
    " created TEXT NOT NULL);";

static const char schema_indexes[] =
    "CREATE INDEX messages_active ON messages (host, state)"
    " WHERE state = 'received' OR state = 'restarting' OR state = 'failed';"
    "CREATE INDEX restarts_open ON restarts (msg_id) WHERE finished IS NULL;"
    "CREATE INDEX restarts_ok ON restarts (host, finished)"
    " WHERE outcome = 'restarted';"
    "CREATE INDEX restarts_started ON restarts (started);";

static const char schema_views[] =
    "CREATE VIEW last_restart AS"
    " SELECT host, max(finished) AS finished, msg_id FROM restarts"
    " WHERE outcome = 'restarted' GROUP BY host;"
    "CREATE VIEW failures_last_hour AS"
    " SELECT msg_id, host, attempt, finished, outcome, error FROM restarts"
    " WHERE outcome IN ('failed', 'lost') AND finished >="
    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour');"
    "CREATE VIEW in_progress AS"
    " SELECT msg_id, host, state, attempts, first_seen, updated FROM"
    " messages WHERE state = 'received' OR state = 'restarting' OR"
    " state = 'failed';"
    "CREATE VIEW outcomes_per_minute AS"
    " SELECT substr(updated, 1, 16) AS minute, state, count(*) AS n"
    " FROM messages GROUP BY minute, state;";

/* A new database: version 2 at once, then the upgrades from there. */
static const char *const schema_new[] = {
	schema_tables, schema_dead_letters, schema_indexes, schema_views, NULL
};

/* Views made again by more than one version's steps, as they are now. */
#define VIEW_HOST_HISTORY \
	" CREATE VIEW host_history AS" \
	" SELECT host, first_seen AS at, 'request' AS kind, msg_id," \
	" attempts AS attempt, state AS outcome, updated AS ended," \
	" coalesce(error, held) AS detail FROM messages" \
	" UNION ALL" \
	" SELECT host, started AS at, 'attempt' AS kind, msg_id, attempt," \
	" coalesce(outcome, 'running') AS outcome, finished AS ended," \
	" error AS detail FROM restarts;"
/* Named, so that the planner never prefers a host index for GROUP BY host. */
#define VIEW_FAILURES_LAST_HOUR \
	" CREATE VIEW failures_last_hour AS" \
	" SELECT msg_id, host, attempt, finished, outcome, error FROM restarts" \
	" INDEXED BY restarts_failed WHERE (outcome = 'failed' OR" \
	" outcome = 'lost') AND finished >=" \
	" strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour');"
#define VIEW_IN_PROGRESS \
	" CREATE VIEW in_progress AS" \
	" SELECT msg_id, host, state, attempts, held, held_since, crashes," \
	" first_seen, updated FROM messages WHERE state = 'received' OR" \
	" state = 'restarting' OR state = 'failed';"

/*
 * Version 1 to 2: the tables are rebuilt for their CHECK constraints
 * (SQLite cannot alter one), messages_restarting is folded into
 * messages_active, and the views follow.  The rows are kept as they are.
 */
static const char *const upgrade_v1[] = {
	"DROP VIEW last_restart; DROP VIEW failures_last_hour;"
	" DROP VIEW in_progress; DROP VIEW outcomes_per_minute;"
	" DROP INDEX messages_restarting; DROP INDEX messages_active;"
	" DROP INDEX restarts_open; DROP INDEX restarts_ok;"
	" DROP INDEX restarts_started;"
	" ALTER TABLE messages RENAME TO messages_v1;"
	" ALTER TABLE restarts RENAME TO restarts_v1;",
	schema_tables,
	"INSERT INTO messages SELECT * FROM messages_v1;"
	" INSERT INTO restarts SELECT * FROM restarts_v1;"
	" DROP TABLE messages_v1; DROP TABLE restarts_v1;",
	schema_indexes,
	schema_views,
	NULL
};

/*
 * Version 2 to 3: why a message waits and since when, the workers lost
 * holding it, and restart times on the monotonic clock of the boot that
 * wrote them (boots), so that a step of the wall clock neither stalls nor
 * unleashes restarts.  The newest success of a host is found by row id.
 */
static const char *const upgrade_v2[] = {
	"ALTER TABLE messages ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;"
	" ALTER TABLE messages ADD COLUMN held TEXT;"
	" ALTER TABLE messages ADD COLUMN held_since TEXT;"
	" ALTER TABLE restarts ADD COLUMN boot INTEGER;"
	" ALTER TABLE restarts ADD COLUMN started_mono INTEGER;"
	" ALTER TABLE restarts ADD COLUMN finished_mono INTEGER;"
	" CREATE TABLE boots (id INTEGER PRIMARY KEY,"
	"  boot_id TEXT NOT NULL UNIQUE);"
	" DROP INDEX restarts_ok; DROP INDEX restarts_started;"
	" CREATE INDEX restarts_ok ON restarts (host)"
	"  WHERE outcome = 'restarted';"
	" CREATE INDEX restarts_mono ON restarts (boot, started_mono);"
	" DROP VIEW in_progress;"
	VIEW_IN_PROGRESS,
	NULL
};

/*
 * Version 3 to 4: a host's story (mandrillctl history) found by index,
 * not by scanning every message, and told by one view, newest first:
 * each request (its message) and each attempt (its restart row).
 */
static const char *const upgrade_v3[] = {
	"CREATE INDEX messages_host ON messages (host);"
	" CREATE INDEX restarts_host ON restarts (host);"
	VIEW_HOST_HISTORY,
	NULL
};

/*
 * Version 4 to 5, for operators: a dry run is a state of its own, which
 * min_interval does not count (the table is rebuilt for its CHECK);
 * hosts holds one row per host, its last success and the restart in
 * progress, so that min_interval, last_restart and failing_now read one
 * row per host instead of scanning restarts; restarts_ok goes with it.
 * The hosts rows are made from the history there is.
 */
static const char *const upgrade_v4[] = {
	"DROP VIEW in_progress; DROP VIEW outcomes_per_minute;"
	" DROP VIEW host_history; DROP VIEW last_restart;"
	" DROP INDEX messages_active; DROP INDEX messages_host;"
	" DROP INDEX restarts_ok; DROP INDEX restarts_open;"
	" DROP VIEW failures_last_hour;"
	" ALTER TABLE messages RENAME TO messages_v4;"
	" CREATE TABLE messages ("
	"  msg_id TEXT PRIMARY KEY NOT NULL,"
	"  instance TEXT,"
	"  host TEXT,"
	"  state TEXT NOT NULL CHECK (state = 'received' OR"
	"   state = 'restarting' OR state = 'restarted' OR state = 'skipped' OR"
	"   state = 'failed' OR state = 'dead' OR state = 'invalid' OR"
	"   state = 'dry-run'),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  deliveries INTEGER NOT NULL DEFAULT 0,"
	"  first_seen TEXT NOT NULL,"
	"  updated TEXT NOT NULL,"
	"  error TEXT,"
	"  owner TEXT,"
	"  payload TEXT,"
	"  crashes INTEGER NOT NULL DEFAULT 0,"
	"  held TEXT,"
	"  held_since TEXT);"
	" INSERT INTO messages SELECT * FROM messages_v4 ORDER BY rowid;"
	" DROP TABLE messages_v4;"
	" UPDATE messages SET state = 'dry-run' WHERE state = 'restarted' AND"
	"  error = 'dry run: nothing was run';",
	"CREATE INDEX messages_active ON messages (host, state)"
	" WHERE state = 'received' OR state = 'restarting' OR state = 'failed';"
	" CREATE INDEX messages_host ON messages (host);"
	/*
	 * Every attempt of a msg_id, open or not: msg_ids are mostly in
	 * time order, so this index grows at its right edge; and the
	 * failed attempts by time, few, for failures_last_hour.
	 */
	" CREATE INDEX restarts_msg ON restarts (msg_id);"
	" CREATE INDEX restarts_failed ON restarts (finished)"
	"  WHERE outcome = 'failed' OR outcome = 'lost';"
	" CREATE TABLE hosts ("
	"  host TEXT PRIMARY KEY NOT NULL,"
	"  last_ok TEXT,"
	"  last_ok_mono INTEGER,"
	"  last_ok_boot INTEGER,"
	"  last_ok_msg_id TEXT,"
	"  running_msg_id TEXT,"
	"  running_since TEXT,"
	"  last_attempt TEXT,"
	"  last_outcome TEXT,"
	"  last_error TEXT,"
	"  group_name TEXT) WITHOUT ROWID;"
	" INSERT INTO hosts (host) SELECT DISTINCT host FROM restarts;"
	" UPDATE hosts SET (last_ok, last_ok_mono, last_ok_boot,"
	"  last_ok_msg_id) = (SELECT finished, finished_mono, boot, msg_id"
	"  FROM restarts r WHERE r.host = hosts.host AND"
	"  r.outcome = 'restarted' ORDER BY r.id DESC LIMIT 1);"
	" UPDATE hosts SET (last_attempt, last_outcome, last_error,"
	"  running_msg_id, running_since) = (SELECT started, outcome, error,"
	"  CASE WHEN finished IS NULL THEN msg_id END,"
	"  CASE WHEN finished IS NULL THEN started END"
	"  FROM restarts r WHERE r.host = hosts.host ORDER BY r.id DESC"
	"  LIMIT 1);",
	VIEW_IN_PROGRESS
	" CREATE VIEW outcomes_per_minute AS"
	" SELECT substr(updated, 1, 16) AS minute, state, count(*) AS n"
	" FROM messages GROUP BY minute, state;"
	VIEW_HOST_HISTORY
	VIEW_FAILURES_LAST_HOUR
	" CREATE VIEW last_restart AS"
	" SELECT host, last_ok AS finished, last_ok_msg_id AS msg_id FROM hosts"
	" WHERE last_ok IS NOT NULL;"
	" CREATE VIEW failing_now AS"
	" SELECT host, last_attempt AS started, last_outcome AS outcome,"
	" last_error AS error, last_ok FROM hosts"
	" WHERE last_outcome = 'failed' OR last_outcome = 'lost';",
	NULL
};

/*
 * Version 5 to 6: how many messages are in each state, and how many
 * reached each outcome in each minute, are tables the worker keeps in
 * each transaction from what it changed (summed in memory first, so a
 * batch costs a few rows however many messages it holds), instead of
 * scans of messages that grow with the history.  Rows already there are
 * counted once here; their minute is that of their last update.
 */
static const char *const upgrade_v5[] = {
	"CREATE TABLE state_totals ("
	"  state TEXT PRIMARY KEY,"
	"  n INTEGER NOT NULL) WITHOUT ROWID;"
	" INSERT INTO state_totals SELECT state, count(*) FROM messages"
	"  GROUP BY state;"
	" CREATE TABLE outcome_minutes ("
	"  minute TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  PRIMARY KEY (minute, state)) WITHOUT ROWID;"
	" INSERT INTO outcome_minutes SELECT substr(updated, 1, 16), state,"
	"  count(*) FROM messages WHERE state <> 'received' AND"
	"  state <> 'restarting' GROUP BY 1, 2;"
	" CREATE VIEW messages_by_state AS"
	" SELECT state, n FROM state_totals WHERE n <> 0;"
	" DROP VIEW outcomes_per_minute;"
	" CREATE VIEW outcomes_per_minute AS"
	" SELECT minute, state, n FROM outcome_minutes;",
	NULL
};

/*
 * Version 6 to 7: the rollout rules.  hosts_running finds the restarts
 * running in a group (few rows: only hosts being restarted); an attempt
 * keeps its health check's time and output.  restarts_failed holds the
 * host too, so that counting an hour's failures by host reads the index
 * alone (62 ms for 20 000 failures at 1 M messages before, 25 after).
 */
static const char *const upgrade_v6[] = {
	"CREATE INDEX hosts_running ON hosts (group_name)"
	"  WHERE running_msg_id IS NOT NULL;"
	" DROP VIEW failures_last_hour; DROP INDEX restarts_failed;"
	" CREATE INDEX restarts_failed ON restarts (finished, host)"
	"  WHERE outcome = 'failed' OR outcome = 'lost';"
	VIEW_FAILURES_LAST_HOUR
	" ALTER TABLE restarts ADD COLUMN check_ms INTEGER;"
	" ALTER TABLE restarts ADD COLUMN check_output TEXT;",
	NULL
};

/* upgrades[v]: from version v to v + 1. */
static const char *const *const upgrades[STORE_SCHEMA_VERSION] = {
	[1] = upgrade_v1,
	[2] = upgrade_v2,
	[3] = upgrade_v3,
	[4] = upgrade_v4,
	[5] = upgrade_v5,
	[6] = upgrade_v6,
};

/*
 * The states of a message row, as state_totals counts them; from
 * STATE_SETTLED on, reaching one is counted in outcome_minutes too
 * (failed: an attempt that failed and will be retried).
 */
static const char *const states[] = {
	"received", "restarting", "failed", "restarted", "skipped", "dead",
	"invalid", "dry-run"
};
#define N_STATES	((int)(sizeof(states) / sizeof(states[0])))
#define STATE_SETTLED	2
#define TALLY_MAX	16

struct store {
	sqlite3		*db;
	int64_t		 busy_timeout;
	int64_t		 busy_since;
	int64_t		 alive_at;
	void		(*alive)(void *);
	void		*alive_arg;
	int64_t		 alive_interval;
	sqlite3_stmt	*st[S_COUNT];
	char		 owner[64];
	char		 path[PROTO_PATH_MAX + 16];
	uint64_t	 dev, ino;	/* the file we opened */
	uint64_t	 wal_limit;
	char		 err[PROTO_PATH_MAX + 160];	/* ours, not SQLite's */
	int64_t		 boot;		/* this boot's row in boots */
	int64_t		 prev_boot;	/* the one before, or 0 */
	int64_t		 prune_at[3];	/* retain: last row id looked at */
	/* This transaction's changes to state_totals and outcome_minutes. */
	int64_t		 state_delta[N_STATES];
	struct minute_tally {
		char	 minute[17];	/* YYYY-MM-DDTHH:MM */
		int	 state;
		int64_t	 n;
	}		 tally[TALLY_MAX];
	int		 ntally;
};

const char *
store_errmsg(struct store *s)
{
	return s->err[0] != '\0' ? s->err : sqlite3_errmsg(s->db);
}

/*
 * Is the file at our path still the one we opened?  A database deleted
 * or replaced under a running mandrilld must stop it recording, not go
 * on into an unlinked inode or a stranger's file.
 */
static int
still_ours(struct store *s)
{
	struct stat sb;
	int found = stat(s->path, &sb) == 0;

	if (found && (uint64_t)sb.st_dev == s->dev &&
	    (uint64_t)sb.st_ino == s->ino)
		return 1;
	snprintf(s->err, sizeof(s->err), "database %s was %s under the "
	    "running mandrilld; restore it or restart mandrilld (see "
	    "mandrilld(8), FILES)", s->path, found ? "replaced" : "deleted");
	return 0;
}

void
store_identity(const struct store *s, uint64_t *dev, uint64_t *ino)
{
	*dev = s->dev;
	*ino = s->ino;
}

int64_t
store_wal_bytes(struct store *s)
{
	char path[sizeof(s->path) + 8];
	struct stat sb;

	snprintf(path, sizeof(path), "%s-wal", s->path);
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int64_t
store_wal_limit(const struct store *s)
{
	return (int64_t)s->wal_limit;
}

int
store_checkpoint_starved(struct store *s)
{
	int log = 0, done = 0;

	if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log, &done) != SQLITE_OK)
		return 0;	/* busy with a writer: judged next time */
	if (done < log)
		return 1;
	/*
	 * Every frame is back in the database, but with other workers
	 * writing all the time the log may never be reset, and only a
	 * reset truncates it: do it here, once the readers have let go.
	 */
	if (store_wal_bytes(s) > (int64_t)s->wal_limit)
		(void)sqlite3_wal_checkpoint_v2(s->db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);	/* or next time */
	return 0;
}

/*
 * SQLite's own busy handler sleeps for up to 100 ms at a time, which
 * leaves the database idle while workers take turns at the write lock.
 * Transactions here are short (one loop iteration's changes), so poll
 * the lock every 100 us instead, up to busy_timeout.
 */
static int
busy_wait(void *arg, int count)
{
	struct store *s = arg;
	int64_t now = clock_real();	/* a real wait, even under a test clock */

	if (count == 0)
		s->busy_since = s->alive_at = now;
	if (now - s->busy_since >= s->busy_timeout)
		return 0;
	if (s->alive != NULL && now - s->alive_at >= s->alive_interval) {
		s->alive_at = now;
		s->alive(s->alive_arg);
	}
	usleep(count < 100 ? 100 : 1000);
	return 1;
}

/*
 * Switching to WAL needs an exclusive lock and does not wait on the busy
 * handler: workers starting together retry here for up to busy_timeout.
 */
static int
exec_patiently(sqlite3 *db, const char *stmts, int64_t busy_ms, char **msg)
{
	int rc;

	for (int64_t waited = 0;; waited += 10) {
		rc = sqlite3_exec(db, stmts, NULL, NULL, msg);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= busy_ms)
			return rc;
		sqlite3_free(*msg);
		*msg = NULL;
		usleep(10000);
	}
}

/* Run one version's statements and record the version reached. */
static int
apply_steps(sqlite3 *db, const char *const *steps, int version, char **msg)
{
	char pragma[64];

	for (; *steps != NULL; steps++)
		if (sqlite3_exec(db, *steps, NULL, NULL, msg) != SQLITE_OK)
			return -1;
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version);
	return sqlite3_exec(db, pragma, NULL, NULL, msg) == SQLITE_OK ? 0 : -1;
}

static int
migrate(struct store *s, int64_t busy_ms, char *err, size_t len)
{
	const int want = STORE_SCHEMA_VERSION;
	sqlite3_stmt *st;
	char *msg = NULL;
	int have;

	if (exec_patiently(s->db, "BEGIN IMMEDIATE", busy_ms, &msg) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (have < 0 || have > want) {
		snprintf(err, len, "store: schema version %d is newer than "
		    "this mandrill (%d)", have, want);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	/* A new database is made at version 2, then upgraded as any other. */
	if (have == 0) {
		if (apply_steps(s->db, schema_new, 2, &msg) < 0)
			goto fail;
		have = 2;
	}
	for (int v = have; v < want; v++)
		if (apply_steps(s->db, upgrades[v], v + 1, &msg) < 0)
			goto fail;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, len, "store: migrate schema: %s",
	    msg ? msg : sqlite3_errmsg(s->db));
	sqlite3_free(msg);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
open_db(struct store *s, const struct store_opts *o, char *err, size_t len)
{
	static const char *syncs[] = { "OFF", "NORMAL", "FULL" };
	char path[PROTO_PATH_MAX + 16], pragmas[256];
	char *msg = NULL;
	struct stat sb;
	int fd;

	s->wal_limit = o->wal_limit ? o->wal_limit : 64 * 1024 * 1024;
	if (mkdir(o->state_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, len, "store: mkdir %s: %s", o->state_dir,
		    strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/mandrill.db", o->state_dir);
	snprintf(s->path, sizeof(s->path), "%s", path);
	/*
	 * Create the file ourselves so that it is 0640 whatever the umask;
	 * but once mandrilld has seen its database, never a fresh one.
	 */
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW |
	    (o->db_ino ? 0 : O_CREAT), 0640)) < 0) {
		snprintf(err, len, "store: open %s: %s%s", path, strerror(errno),
		    o->db_ino && errno == ENOENT ? "; the database mandrilld "
		    "started with is gone, and a fresh one is not made under "
		    "it (see mandrilld(8), FILES)" : "");
		return -1;
	}
	if (fstat(fd, &sb) < 0 || fchmod(fd, 0640) < 0) {
		snprintf(err, len, "store: chmod %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	s->dev = (uint64_t)sb.st_dev;
	s->ino = (uint64_t)sb.st_ino;
	if (o->db_ino && (s->dev != o->db_dev || s->ino != o->db_ino)) {
		snprintf(err, len, "store: %s is not the database mandrilld "
		    "started with (it was replaced); refusing it (see "
		    "mandrilld(8), FILES)", path);
		return -1;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, len, "store: open %s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		return -1;
	}
	sqlite3_extended_result_codes(s->db, 1);
	s->busy_timeout = o->busy_timeout;
	sqlite3_busy_handler(s->db, busy_wait, s);
	/*
	 * SQLite's checkpoint every 1 000 WAL pages: with time-ordered
	 * msg_ids a commit writes few pages, and a longer WAL (10 000 was
	 * tried) only made each checkpoint a longer stall: p99 at 10 000
	 * messages a second 31-39 ms against 20 ms, for the same throughput.
	 */
	snprintf(pragmas, sizeof(pragmas), "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = %s; PRAGMA foreign_keys = OFF; "
	    "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 1000; "
	    "PRAGMA mmap_size = 268435456; PRAGMA journal_size_limit = %lld",
	    syncs[o->synchronous], (long long)s->wal_limit);
	if (exec_patiently(s->db, pragmas, o->busy_timeout, &msg) != SQLITE_OK) {
		snprintf(err, len, "store: %s: %s", path, msg);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *t);

/*
 * This boot's row in boots, and the one before it: restart times are
 * compared on the monotonic clock of the boot that wrote them.
 */
static int
register_boot(struct store *s, char *err, size_t len)
{
	static const char ins[] = "INSERT OR IGNORE INTO boots (boot_id) "
	    "VALUES (?1)";
	static const char sel[] = "SELECT id, (SELECT max(id) FROM boots "
	    "WHERE id < b.id) FROM boots b WHERE boot_id = ?1";
	sqlite3_stmt *st = NULL;
	char id[64];
	int rc = -1;

	clock_boot_id(id, sizeof(id));
	for (int i = 0; i < 2; i++) {
		if (sqlite3_prepare_v2(s->db, i ? sel : ins, -1, &st, NULL) !=
		    SQLITE_OK)
			break;
		bind_text(st, 1, id);
		rc = sqlite3_step(st);
		if (i == 1 && rc == SQLITE_ROW) {
			s->boot = sqlite3_column_int64(st, 0);
			s->prev_boot = sqlite3_column_int64(st, 1);
		}
		sqlite3_finalize(st);
		if (rc != (i ? SQLITE_ROW : SQLITE_DONE)) {
			rc = -1;
			break;
		}
		rc = 0;
	}
	if (rc < 0)
		snprintf(err, len, "store: record this boot: %s",
		    sqlite3_errmsg(s->db));
	return rc;
}

void
store_global_init(void)
{
	sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_initialize();
}

struct store *
store_open(const struct store_opts *o, char *err, size_t len)
{
	struct store *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, len, "store: out of memory");
		return NULL;
	}
	snprintf(s->owner, sizeof(s->owner), "%s", o->owner);
	s->alive = o->alive;
	s->alive_arg = o->alive_arg;
	s->alive_interval = o->alive_interval;
	if (open_db(s, o, err, len) < 0 ||
	    migrate(s, o->busy_timeout, err, len) < 0 ||
	    register_boot(s, err, len) < 0)
		goto fail;
	for (int i = 0; i < S_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &s->st[i], NULL) != SQLITE_OK) {
			snprintf(err, len, "store: prepare: %s",
			    sqlite3_errmsg(s->db));
			goto fail;
		}
	return s;
fail:
	store_close(s);
	return NULL;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

static void
done_with(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows; binds are already set. */
static int
run(struct store *s, enum stmt i)
{
	int rc = sqlite3_step(s->st[i]);

	done_with(s->st[i]);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_begin(struct store *s)
{
	s->err[0] = '\0';
	if (!still_ours(s))
		return -1;
	return run(s, S_BEGIN);
}

static void
forget_counts(struct store *s)
{
	memset(s->state_delta, 0, sizeof(s->state_delta));
	s->ntally = 0;
}

static int
flush_tallies(struct store *s)
{
	sqlite3_stmt *st = s->st[S_MINUTE_ADD];
	int rc = 0;

	for (int i = 0; i < s->ntally && rc == 0; i++) {
		bind_text(st, 1, s->tally[i].minute);
		bind_text(st, 2, states[s->tally[i].state]);
		sqlite3_bind_int64(st, 3, s->tally[i].n);
		rc = run(s, S_MINUTE_ADD);
	}
	s->ntally = 0;
	return rc;
}

/* The transaction's counts into state_totals and outcome_minutes. */
static int
flush_counts(struct store *s)
{
	sqlite3_stmt *st = s->st[S_TOTAL_ADD];
	int rc = 0;

	for (int i = 0; i < N_STATES && rc == 0; i++) {
		if (s->state_delta[i] == 0)
			continue;
		bind_text(st, 1, states[i]);
		sqlite3_bind_int64(st, 2, s->state_delta[i]);
		rc = run(s, S_TOTAL_ADD);
	}
	if (rc == 0)
		rc = flush_tallies(s);
	forget_counts(s);
	return rc;
}

static int
state_index(const char *state)
{
	if (state == NULL)
		return -1;
	for (int i = 0; i < N_STATES; i++)
		if (strcmp(states[i], state) == 0)
			return i;
	return -1;
}

/*
 * A row goes from state was (NULL: a new row) to state at time at (ISO
 * 8601), in this transaction.
 */
static int
count_change(struct store *s, const char *was, const char *state,
    const char *at)
{
	int to = state_index(state), i;

	if (was != NULL && strcmp(was, state) == 0)
		return 0;
	if (was != NULL && (i = state_index(was)) >= 0)
		s->state_delta[i]--;
	if (to < 0)
		return 0;
	s->state_delta[to]++;
	if (to < STATE_SETTLED)
		return 0;
	for (i = 0; i < s->ntally; i++)
		if (s->tally[i].state == to &&
		    strncmp(s->tally[i].minute, at, 16) == 0)
			break;
	if (i == TALLY_MAX) {
		if (flush_tallies(s) < 0)
			return -1;
		i = 0;
	}
	if (i == s->ntally) {
		snprintf(s->tally[i].minute, sizeof(s->tally[i].minute),
		    "%.16s", at);
		s->tally[i].state = to;
		s->tally[i].n = 0;
		s->ntally++;
	}
	s->tally[i].n++;
	return 0;
}

int
store_commit(struct store *s)
{
	if (flush_counts(s) < 0)
		return -1;
	return run(s, S_COMMIT);
}

void
store_rollback(struct store *s)
{
	forget_counts(s);
	/* A failed COMMIT may have rolled back already. */
	if (!sqlite3_get_autocommit(s->db))
		run(s, S_ROLLBACK);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *t)
{
	if (t == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
}

static void
now_iso(char *buf, size_t len)
{
	clock_iso(clock_wall(), buf, len);
}

int
store_owner_alive(const char *owner)
{
	struct proc_stat ps;
	unsigned long long want;
	int pid;

	if (owner == NULL || sscanf(owner, "%d:%llu", &pid, &want) != 2 ||
	    pid <= 0)
		return 0;
	return proc_stat_read((pid_t)pid, &ps) == 0 && ps.start == want;
}

int
store_owner_self(char *buf, size_t len)
{
	struct proc_stat ps;

	if (proc_stat_read(getpid(), &ps) < 0)
		return -1;
	snprintf(buf, len, "%d:%llu", (int)getpid(),
	    (unsigned long long)ps.start);
	return 0;
}

/* Step a one-row query; 1 row, 0 none, -1 error.  Reset by the caller. */
static int
step_row(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* "2026-11-28T10:03:56.842Z" to wall ms; -1 if it is not that form. */
static int64_t
iso_ms(const char *t)
{
	struct tm tm;
	int ms = 0;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
	    &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/*
 * How long ago a row's moment was: on this boot by the monotonic clock,
 * which no wall-clock step moves; on another by the wall clock, where a
 * moment from the future counts as now.
 */
static int64_t
age_of(const struct store *s, int64_t boot, int64_t mono, const char *wall)
{
	int64_t then;

	if (boot == s->boot && mono > 0)
		return clock_now() > mono ? clock_now() - mono : 0;
	if ((then = iso_ms(wall)) < 0)
		return 0;
	return clock_wall() > then ? clock_wall() - then : 0;
}

/* Bind a text column's value as a string, or NULL. */
static const char *
col_text(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_TEXT ?
	    (const char *)sqlite3_column_text(st, i) : NULL;
}

static void
bind_held(sqlite3_stmt *st, int i, enum hold h)
{
	bind_text(st, i, h == HOLD_NONE ? NULL : hold_name(h));
}

/* The row as the decision leaves it. */
struct row_write {
	const char	*state;
	uint32_t	 attempts;
	const char	*owner;
	const char	*error;
	uint32_t	 crashes;
	enum hold	 held;
};

/* The row of a message, in state was now, as w says. */
static int
set_msg(struct store *s, const struct store_msg *m, const char *was,
    const struct row_write *w)
{
	sqlite3_stmt *st = s->st[S_UPD_MSG];
	char now[32];

	now_iso(now, sizeof(now));
	if (count_change(s, was, w->state, now) < 0)
		return -1;
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, w->state);
	sqlite3_bind_int64(st, 3, w->attempts);
	bind_text(st, 4, w->owner);
	bind_text(st, 5, w->error && *w->error ? w->error : NULL);
	bind_text(st, 6, now);
	sqlite3_bind_int64(st, 7, m->delivery);
	sqlite3_bind_int64(st, 8, w->crashes);
	bind_held(st, 9, w->held);
	return run(s, S_UPD_MSG);
}

static int
insert_msg(struct store *s, const struct store_msg *m,
    const struct row_write *w)
{
	sqlite3_stmt *st = s->st[S_INS_MSG];
	char now[32];

	now_iso(now, sizeof(now));
	if (count_change(s, NULL, w->state, now) < 0)
		return -1;
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, m->instance);
	bind_text(st, 3, m->host);
	bind_text(st, 4, w->state);
	sqlite3_bind_int64(st, 5, m->delivery);
	bind_text(st, 6, now);
	bind_text(st, 7, w->error && *w->error ? w->error : NULL);
	/* An invalid payload may not be text; dead_letters keeps its bytes. */
	if (m->payload != NULL && strcmp(w->state, "invalid") != 0)
		sqlite3_bind_text(st, 8, m->payload, (int)m->payload_len,
		    SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, w->attempts);
	bind_text(st, 10, w->owner);
	sqlite3_bind_int64(st, 11, w->crashes);
	bind_held(st, 12, w->held);
	return run(s, S_INS_MSG);
}


static int
dead_letter(struct store *s, const struct store_msg *m, const char *reason)
{
	sqlite3_stmt *st = s->st[S_INS_DEAD];
	char now[32];

	now_iso(now, sizeof(now));
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, m->broker_id);
	bind_text(st, 3, reason);
	if (m->payload != NULL)
		sqlite3_bind_blob(st, 4, m->payload, (int)m->payload_len,
		    SQLITE_STATIC);
	bind_text(st, 5, now);
	return run(s, S_INS_DEAD);
}

/* What read_msg() found; the strings live here. */
struct msg_row {
	struct admit_row a;
	char		 state[16];
	char		 host[256];
	char		 owner[64];
	enum hold	 held;
};

/* Write the message's row: an update if it exists, else its first insert. */
static int
record(struct store *s, const struct store_msg *m, const struct msg_row *r,
    const struct row_write *w)
{
	return r->a.found ? set_msg(s, m, r->state, w) : insert_msg(s, m, w);
}

/* A message's row into r, with its owner judged; -1 on error. */
static int
read_msg(struct store *s, const struct store_msg *m, struct msg_row *r)
{
	sqlite3_stmt *st = s->st[S_SEL_MSG];
	const char *t;
	int rc;

	memset(r, 0, sizeof(*r));
	bind_text(st, 1, m->msg_id);
	if ((rc = step_row(st)) == 1) {
		snprintf(r->state, sizeof(r->state), "%s", col_text(st, 0));
		r->a.attempts = (uint32_t)sqlite3_column_int64(st, 1);
		if ((t = col_text(st, 2)) != NULL)
			snprintf(r->owner, sizeof(r->owner), "%s", t);
		if ((t = col_text(st, 3)) != NULL) {
			snprintf(r->host, sizeof(r->host), "%s", t);
			r->a.host = r->host;
		}
		r->a.crashes = (uint32_t)sqlite3_column_int64(st, 4);
		if ((t = col_text(st, 5)) == NULL ||
		    hold_parse(t, strlen(t), &r->held) < 0)
			r->held = HOLD_NONE;
	}
	done_with(st);
	if (rc < 0)
		return -1;
	r->a.found = rc;
	r->a.state = r->state;
	r->a.owner = r->owner;
	r->a.crashes += m->crashes;
	if (rc == 1 && strcmp(r->state, "restarting") == 0)
		r->a.owner_alive = store_owner_alive(r->owner);
	return 0;
}

/* Is another live worker restarting this host? -1 on error. */
static int
host_busy(struct store *s, const struct store_msg *m)
{
	sqlite3_stmt *st = s->st[S_SEL_BUSY];
	int rc, busy = 0;

	bind_text(st, 1, m->host);
	bind_text(st, 2, m->msg_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (store_owner_alive((const char *)sqlite3_column_text(st, 0))) {
			busy = 1;
			break;
		}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		busy = -1;
	done_with(st);
	return busy;
}

/* The host's newest success: its age in h (-1 if none); -1 on error. */
static int
last_success(struct store *s, const struct store_msg *m,
    struct admit_host *h, char *last, size_t len)
{
	sqlite3_stmt *st = s->st[S_SEL_LAST_OK];
	int rc;

	h->last_ok_age = -1;
	bind_text(st, 1, m->host);
	if ((rc = step_row(st)) == 1 && col_text(st, 0) != NULL) {
		snprintf(last, len, "%s", col_text(st, 0));
		h->last_ok = last;
		h->last_ok_age = age_of(s, sqlite3_column_int64(st, 2),
		    sqlite3_column_int64(st, 1), last);
	}
	done_with(st);
	return rc < 0 ? -1 : 0;
}

/* The rows of a bound statement whose owner (column 0) lives; -1 on error. */
static int
count_alive(struct store *s, enum stmt i)
{
	sqlite3_stmt *st = s->st[i];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		n += store_owner_alive((const char *)sqlite3_column_text(st, 0));
	done_with(st);
	return rc == SQLITE_DONE ? n : -1;
}

/* Live restarts, by any worker of this database. */
static int
count_running(struct store *s)
{
	return count_alive(s, S_SEL_RUNNING);
}

/* Live restarts of other hosts in m's group. */
static int
count_group(struct store *s, const struct store_msg *m)
{
	bind_text(s->st[S_GROUP_RUNNING], 1, m->group);
	bind_text(s->st[S_GROUP_RUNNING], 2, m->host);
	return count_alive(s, S_GROUP_RUNNING);
}

/*
 * The previous boot's last restarts that its wall clock puts inside the
 * window (the monotonic clock began again at the reboot).
 */
static int
count_prev_boot(struct store *s, uint32_t limit, uint32_t *n)
{
	sqlite3_stmt *st = s->st[S_PREV_BOOT_RECENT];
	int rc;

	if (s->prev_boot == 0)
		return 0;
	sqlite3_bind_int64(st, 1, s->prev_boot);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (age_of(s, s->prev_boot, 0, col_text(st, 0)) <
		    ADMIT_RATE_WINDOW)
			(*n)++;
	done_with(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Restarts started in the window, and when the oldest leaves it. */
static int
count_window(struct store *s, uint32_t limit, struct admit_host *h)
{
	sqlite3_stmt *st = s->st[S_COUNT_MINUTE];
	int rc;

	sqlite3_bind_int64(st, 1, s->boot);
	sqlite3_bind_int64(st, 2, clock_now() - ADMIT_RATE_WINDOW);
	if ((rc = step_row(st)) == 1) {
		h->last_minute = (uint32_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) == SQLITE_INTEGER)
			h->rate_free_in = sqlite3_column_int64(st, 1) +
			    ADMIT_RATE_WINDOW - clock_now();
	}
	done_with(st);
	if (rc < 0 || count_prev_boot(s, limit, &h->last_minute) < 0)
		return -1;
	return 0;
}

/* The facts admit_host() needs for these rules; -1 on error. */
static int
gather_host(struct store *s, const struct store_msg *m,
    const struct admit_rules *r, struct admit_host *h, char *last,
    size_t len)
{
	int n;

	memset(h, 0, sizeof(*h));
	h->last_ok_age = -1;
	if (!r->enabled)
		return 0;
	if ((h->busy = host_busy(s, m)) < 0)
		return -1;
	if (h->busy)
		return 0;
	if (r->min_interval > 0 && last_success(s, m, h, last, len) < 0)
		return -1;
	if (r->max_concurrent > 0) {
		if ((n = count_running(s)) < 0)
			return -1;
		h->running = (uint32_t)n;
	}
	if (r->max_per_group > 0 && m->group != NULL) {
		if ((n = count_group(s, m)) < 0)
			return -1;
		h->group = m->group;
		h->group_running = (uint32_t)n;
	}
	if (r->max_per_minute > 0 && count_window(s, r->max_per_minute, h) < 0)
		return -1;
	return 0;
}

/*
 * The host's row follows its attempts: one running, then how it ended.
 * outcome NULL: started at "at".
 */
static int
host_row(struct store *s, const struct store_msg *m, const char *outcome,
    const char *error, const char *at, int lost)
{
	sqlite3_stmt *st;

	if (m->host == NULL)
		return 0;
	if (outcome == NULL) {
		st = s->st[S_HOST_START];
		bind_text(st, 1, m->host);
		bind_text(st, 2, m->msg_id);
		bind_text(st, 3, at);
		bind_text(st, 4, m->group);
		return run(s, S_HOST_START);
	}
	st = s->st[S_HOST_END];
	bind_text(st, 1, m->host);
	bind_text(st, 2, m->msg_id);
	bind_text(st, 3, outcome);
	bind_text(st, 4, error && *error ? error : NULL);
	bind_text(st, 5, at);
	sqlite3_bind_int64(st, 6, clock_now());
	sqlite3_bind_int64(st, 7, s->boot);
	sqlite3_bind_int(st, 8, lost);
	return run(s, S_HOST_END);
}

/*
 * Close the open attempt of a message whose worker died as lost, at the
 * moment its command was seen to end or killed, when the supervisor saw
 * that; else now.
 */
static int
mark_lost(struct store *s, const struct store_msg *m, const char *why)
{
	sqlite3_stmt *st = s->st[S_LOST_RESTART];
	char at[32];

	clock_iso(m->lost_at > 0 ? m->lost_at : clock_wall(), at, sizeof(at));
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, at);
	bind_text(st, 3, why);
	if (run(s, S_LOST_RESTART) < 0)
		return -1;
	return host_row(s, m, "lost", why, at, 1);
}

/* Dead: the dead letter, then the row. */
static int
bury(struct store *s, const struct store_msg *m, const struct msg_row *r,
    struct store_verdict *v)
{
	struct row_write w = { "dead", r->a.attempts, NULL, v->error,
	    r->a.crashes, HOLD_NONE };

	v->outcome = OUT_DEAD;
	if (dead_letter(s, m, v->error) < 0)
		return -1;
	return record(s, m, r, &w);
}

/*
 * A previous attempt started and its worker died before recording the
 * outcome.  Whether the host restarted is unknown: record the attempt as
 * lost and treat it as failed, so that the ordinary retry policy (and
 * max_attempts) decides, never an immediate blind second restart.
 */
static int
recover_lost(struct store *s, const struct store_msg *m,
    const struct admit_rules *r, const struct msg_row *row,
    struct store_verdict *v)
{
	struct row_write w = { "failed", row->a.attempts, NULL, v->error,
	    row->a.crashes, HOLD_NONE };

	if (mark_lost(s, m, v->error) < 0)
		return -1;
	if (admit_lost_is_dead(row->a.attempts, r))
		return bury(s, m, row, v);
	v->outcome = OUT_FAILED;
	return set_msg(s, m, row->state, &w);
}

static int
start_attempt(struct store *s, const struct store_msg *m,
    const struct msg_row *r, struct store_verdict *v)
{
	sqlite3_stmt *st = s->st[S_INS_RESTART];
	struct row_write w = { "restarting", r->a.attempts + 1, s->owner, NULL,
	    r->a.crashes, HOLD_NONE };
	char now[32];

	now_iso(now, sizeof(now));
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, m->host);
	sqlite3_bind_int64(st, 3, r->a.attempts + 1);
	bind_text(st, 4, now);
	sqlite3_bind_int64(st, 5, s->boot);
	sqlite3_bind_int64(st, 6, clock_now());
	if (run(s, S_INS_RESTART) < 0 || host_row(s, m, NULL, NULL, now, 0) < 0)
		return -1;
	v->restart_id = sqlite3_last_insert_rowid(s->db);
	v->attempts = r->a.attempts + 1;
	v->crashes = r->a.crashes;
	v->outcome = OUT_RESTARTED;
	return record(s, m, r, &w);
}

/*
 * Held: the row keeps its state and says why it waits, and since when.
 * An unchanged reason is not written again.
 */
static int
record_held(struct store *s, const struct store_msg *m,
    const struct msg_row *r, const struct admit_decision *d,
    struct store_verdict *v)
{
	struct row_write w = { r->a.found ? r->state : "received",
	    r->a.attempts, NULL, NULL, r->a.crashes, d->hold };

	v->outcome = OUT_HELD;
	v->hold = d->hold;
	v->retry = d->retry;
	if (r->a.found && r->held == d->hold && m->crashes == 0)
		return 0;
	return record(s, m, r, &w);
}

/* The row's verdict recorded; 1 when the rules must decide. */
static int
apply_row(struct store *s, const struct store_msg *m,
    const struct admit_rules *r, const struct msg_row *row,
    const struct admit_decision *d, struct store_verdict *v)
{
	struct row_write w = { row->state, row->a.attempts, NULL, NULL,
	    row->a.crashes, HOLD_NONE };

	snprintf(v->error, sizeof(v->error), "%s", d->why);
	switch (d->verdict) {
	case AV_CONFLICT:
		v->outcome = OUT_INVALID;
		return dead_letter(s, m, v->error);
	case AV_DUPLICATE:
		v->outcome = OUT_DUPLICATE;
		return 0;
	case AV_HELD:	/* its restart runs elsewhere: its row is not ours */
		v->outcome = OUT_HELD;
		v->hold = d->hold;
		v->retry = d->retry;
		return 0;
	case AV_LOST:
		return recover_lost(s, m, r, row, v);
	case AV_DEAD:
		return bury(s, m, row, v);
	default:
		break;
	}
	/* Crashes are counted as soon as they are known. */
	if (row->a.found && m->crashes > 0 && set_msg(s, m, row->state, &w) < 0)
		return -1;
	return 1;
}

/*
 * mandrillctl retry: a dead message comes again marked with the dead
 * letter it retries, and while that is the message's newest dead letter
 * its row starts over (attempts and crashes from 0, as a new request's
 * would) under the same msg_id; its earlier attempts stay in restarts.
 * Dead again later, it has a newer dead letter, so a late copy of the
 * same retry is a duplicate; a retry of a message that is not dead is an
 * ordinary redelivery.  1 when a retry names no message recorded: never
 * a new request by that road.
 */
static int
reopen_dead(struct store *s, const struct store_msg *m, struct msg_row *row)
{
	struct row_write w = { "received", 0, NULL,
	    "dead, retried by mandrillctl", 0, HOLD_NONE };
	sqlite3_stmt *st = s->st[S_DEAD_NEWEST];
	int64_t newest = 0;
	int rc;

	if (m->retry_of == 0)
		return 0;
	if (!row->a.found)
		return 1;
	if (strcmp(row->state, "dead") != 0)
		return 0;
	bind_text(st, 1, m->msg_id);
	if ((rc = step_row(st)) == 1)
		newest = sqlite3_column_int64(st, 0);
	done_with(st);
	if (rc < 0)
		return -1;
	if ((uint64_t)newest != m->retry_of)
		return 0;
	if (set_msg(s, m, row->state, &w) < 0)
		return -1;
	snprintf(row->state, sizeof(row->state), "received");
	row->a.attempts = 0;
	row->a.crashes = m->crashes;
	return 0;
}

int
store_admit(struct store *s, const struct store_msg *m,
    const struct admit_rules *r, struct store_verdict *v)
{
	struct admit_decision d;
	struct admit_host h;
	struct msg_row row;
	struct row_write w;
	char last[32] = "";
	int rc;

	memset(v, 0, sizeof(*v));
	if (read_msg(s, m, &row) < 0 || (rc = reopen_dead(s, m, &row)) < 0)
		return -1;
	if (rc == 1) {
		v->outcome = OUT_INVALID;
		snprintf(v->error, sizeof(v->error), "a retry of msg_id %.128s, "
		    "which is not recorded: a retry makes no new request",
		    m->msg_id ? m->msg_id : "");
		return dead_letter(s, m, v->error);
	}
	v->attempts = row.a.attempts;
	admit_row(&row.a, m->host, r, &d);
	if ((rc = apply_row(s, m, r, &row, &d, v)) <= 0)
		return rc;
	if (gather_host(s, m, r, &h, last, sizeof(last)) < 0)
		return -1;
	admit_host(&h, m->host, r, &d);
	snprintf(v->error, sizeof(v->error), "%s", d.why);
	switch (d.verdict) {
	case AV_HELD:
		return record_held(s, m, &row, &d, v);
	case AV_SKIPPED:
		v->outcome = OUT_SKIPPED;
		w = (struct row_write){ "skipped", row.a.attempts, NULL, v->error,
		    row.a.crashes, HOLD_NONE };
		return record(s, m, &row, &w);
	default:
		return start_attempt(s, m, &row, v);
	}
}

int
store_finish(struct store *s, const struct store_msg *m,
    const struct admit_rules *r, int exit_status, const char *output,
    struct store_verdict *v)
{
	sqlite3_stmt *st = s->st[S_FIN_RESTART];
	int ok = v->outcome == OUT_RESTARTED;
	const char *state = !ok ? "failed" : v->dry_run ? "dry-run" :
	    "restarted";
	struct row_write w = { state, v->attempts, NULL,
	    ok ? (v->dry_run ? "dry run: nothing was run" : NULL) : v->error,
	    v->crashes, HOLD_NONE };
	struct msg_row row;
	char now[32];

	now_iso(now, sizeof(now));
	sqlite3_bind_int64(st, 1, v->restart_id);
	bind_text(st, 2, now);
	if (!v->dry_run)
		sqlite3_bind_int(st, 3, exit_status);
	bind_text(st, 4, state);
	bind_text(st, 5, ok || v->error[0] == '\0' ? NULL : v->error);
	bind_text(st, 6, output);
	sqlite3_bind_int64(st, 7, clock_now());
	if (v->checked) {
		sqlite3_bind_int64(st, 8, v->check_ms);
		bind_text(st, 9, v->check_output);
	}
	if (run(s, S_FIN_RESTART) < 0 ||
	    host_row(s, m, state, ok ? NULL : v->error, now, 0) < 0)
		return -1;
	if (ok || v->attempts < r->max_attempts) {
		v->outcome = !ok ? OUT_FAILED : v->dry_run ? OUT_DRY_RUN :
		    OUT_RESTARTED;
		return set_msg(s, m, "restarting", &w);
	}
	/* An attempt is finished by the worker whose restart it was. */
	memset(&row, 0, sizeof(row));
	snprintf(row.state, sizeof(row.state), "restarting");
	row.a.found = 1;
	row.a.attempts = v->attempts;
	row.a.crashes = v->crashes;
	return bury(s, m, &row, v);
}

/*
 * A bad copy or a burial meets a row that exists: a final one is a
 * duplicate and a live restart holds it.  1 when that decides.
 */
static int
existing(const struct msg_row *row, struct admit_decision *d,
    struct store_verdict *v)
{
	if (!admit_existing(&row->a, d) || d->verdict == AV_LOST)
		return 0;
	v->outcome = d->verdict == AV_DUPLICATE ? OUT_DUPLICATE : OUT_HELD;
	v->hold = d->hold;
	v->retry = d->retry;
	snprintf(v->error, sizeof(v->error), "%s", d->why);
	return 1;
}

int
store_invalid(struct store *s, const struct store_msg *m, const char *reason,
    struct store_verdict *v)
{
	struct row_write w = { "invalid", 0, NULL, NULL, 0, HOLD_NONE };
	char why[sizeof(v->error)];
	struct admit_decision d;
	struct msg_row row;

	snprintf(why, sizeof(why), "%s", reason);	/* reason may be v->error */
	memset(v, 0, sizeof(*v));
	v->outcome = OUT_INVALID;
	snprintf(v->error, sizeof(v->error), "%s", why);
	if (m->msg_id == NULL)
		return dead_letter(s, m, why);
	if (read_msg(s, m, &row) < 0)
		return -1;
	v->attempts = row.a.attempts;
	/* A final row, or a live restart, is not undone by a bad copy. */
	if (existing(&row, &d, v))
		return 0;
	/*
	 * A bad copy of a message that is still on its way (received, failed,
	 * or restarting by a worker that died) is dead-lettered by itself;
	 * the row stays for the good copy's next delivery.
	 */
	w.error = why;
	if (!row.a.found && insert_msg(s, m, &w) < 0)
		return -1;
	return dead_letter(s, m, why);
}

int
store_settle(struct store *s, const struct store_msg *m, enum outcome o,
    const char *reason, struct store_verdict *v)
{
	struct admit_decision d;
	struct msg_row row;
	struct row_write w;
	char why[sizeof(v->error)];

	snprintf(why, sizeof(why), "%s", reason);	/* reason may be v->error */
	memset(v, 0, sizeof(*v));
	if (read_msg(s, m, &row) < 0)
		return -1;
	v->attempts = row.a.attempts;
	if (existing(&row, &d, v))
		return 0;
	snprintf(v->error, sizeof(v->error), "%s", why);
	v->outcome = o;
	if (o == OUT_INVALID)	/* a conflict, as admit_row says of one here */
		return dead_letter(s, m, why);
	if (d.verdict == AV_LOST && mark_lost(s, m, d.why) < 0)
		return -1;
	w = (struct row_write){ "skipped", row.a.attempts, NULL, v->error,
	    row.a.crashes, HOLD_NONE };
	return record(s, m, &row, &w);
}

int
store_bury(struct store *s, const struct store_msg *m, const char *reason,
    struct store_verdict *v)
{
	struct admit_decision d;
	struct msg_row row;

	memset(v, 0, sizeof(*v));
	if (read_msg(s, m, &row) < 0)
		return -1;
	v->attempts = row.a.attempts;
	if (existing(&row, &d, v))
		return 0;
	snprintf(v->error, sizeof(v->error), "%s", reason);
	if (d.verdict == AV_LOST && mark_lost(s, m, d.why) < 0)
		return -1;
	return bury(s, m, &row, v);
}

/*
 * One table's batch: the row ids after its cursor that are older than
 * the cutoff, and in that range the rows finished before it.  The
 * cursor moves past what it looked at, so an old row that is not
 * finished yet is looked at again only by the next worker.
 */
static int
prune_table(struct store *s, int t, enum stmt scan, const char *cutoff,
    unsigned batch, uint64_t *deleted)
{
	sqlite3_stmt *st = s->st[scan];
	int64_t from = s->prune_at[t], to = from;
	int rc, n, i;

	sqlite3_bind_int64(st, 1, from);
	bind_text(st, 2, cutoff);
	sqlite3_bind_int64(st, 3, batch);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_int(st, 1))
		to = sqlite3_column_int64(st, 0);
	done_with(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (to == from)
		return 0;
	/* Each row deleted is returned, with its state for messages. */
	st = s->st[scan + 1];
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	bind_text(st, 3, cutoff);
	for (n = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; n++)
		if (t == 0 && (i = state_index(col_text(st, 0))) >= 0)
			s->state_delta[i]--;
	done_with(st);
	if (rc != SQLITE_DONE)
		return -1;
	*deleted += (uint64_t)n;
	s->prune_at[t] = to;
	return 1;	/* looked at something: there may be more */
}

int
store_prune(struct store *s, int64_t retain, unsigned batch,
    uint64_t *deleted)
{
	static const enum stmt scans[3] = {
		S_PRUNE_SCAN_MSG, S_PRUNE_SCAN_RST, S_PRUNE_SCAN_DEAD
	};
	char cutoff[32];
	uint64_t gone = 0;
	int n, more = 0;

	clock_iso(clock_wall() - retain, cutoff, sizeof(cutoff));
	if (store_begin(s) < 0)
		return -1;
	sqlite3_bind_text(s->st[S_PRUNE_MINUTES], 1, cutoff, 16,
	    SQLITE_STATIC);
	if (run(s, S_PRUNE_MINUTES) < 0) {
		store_rollback(s);
		return -1;
	}
	for (int t = 0; t < 3; t++) {
		if ((n = prune_table(s, t, scans[t], cutoff, batch,
		    &gone)) < 0) {
			store_rollback(s);
			return -1;
		}
		more |= n;
	}
	if (store_commit(s) < 0) {
		store_rollback(s);
		return -1;
	}
	*deleted += gone;
	/*
	 * Nothing left to look at: the next run starts from the first row
	 * again, for the rows ids were reused for (none is AUTOINCREMENT,
	 * so once the newest rows are pruned new ones may take their ids)
	 * and for old rows that were not finished when the cursor passed.
	 */
	if (!more)
		memset(s->prune_at, 0, sizeof(s->prune_at));
	return more;
}
