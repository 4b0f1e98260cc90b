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
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "store.h"

enum stmt {
	S_SEL_MSG, S_INS_MSG, S_UPD_MSG, S_SEL_BUSY, S_SEL_LAST_OK,
	S_INS_RESTART, S_FIN_RESTART, S_LOST_RESTART, S_INS_DEAD,
	S_SEL_RUNNING, S_COUNT_MINUTE,
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_COUNT
};

static const char *sql[S_COUNT] = {
	[S_SEL_MSG] = "SELECT state, attempts, owner FROM messages "
	    "WHERE msg_id = ?1",
	[S_INS_MSG] = "INSERT INTO messages (msg_id, instance, host, state, "
	    "attempts, deliveries, first_seen, updated, error, payload, owner) "
	    "VALUES (?1, ?2, ?3, ?4, ?9, ?5, ?6, ?6, ?7, ?8, ?10)",
	[S_UPD_MSG] = "UPDATE messages SET state = ?2, attempts = ?3, "
	    "owner = ?4, error = ?5, updated = ?6, "
	    "deliveries = max(deliveries, ?7) WHERE msg_id = ?1",
	[S_SEL_BUSY] = "SELECT owner FROM messages INDEXED BY messages_active "
	    "WHERE host = ?1 AND state = 'restarting' AND msg_id <> ?2",
	[S_SEL_LAST_OK] = "SELECT max(finished) FROM restarts WHERE "
	    "host = ?1 AND outcome = 'restarted'",
	[S_INS_RESTART] = "INSERT INTO restarts (msg_id, host, attempt, "
	    "started) VALUES (?1, ?2, ?3, ?4)",
	[S_FIN_RESTART] = "UPDATE restarts SET finished = ?2, "
	    "exit_status = ?3, outcome = ?4, error = ?5, output = ?6 "
	    "WHERE id = ?1 AND finished IS NULL",
	[S_LOST_RESTART] = "UPDATE restarts SET finished = ?2, "
	    "outcome = 'lost', error = ?3 WHERE msg_id = ?1 AND "
	    "finished IS NULL",
	[S_INS_DEAD] = "INSERT INTO dead_letters (msg_id, broker_id, reason, "
	    "payload, created) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_SEL_RUNNING] = "SELECT owner FROM messages INDEXED BY "
	    "messages_active WHERE state = 'restarting'",
	[S_COUNT_MINUTE] = "SELECT count(*) FROM restarts WHERE started >= ?1",
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

/* A new database: the current schema at once. */
static const char *const schema_new[] = {
	schema_tables, schema_dead_letters, schema_indexes, schema_views, NULL
};

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

/* upgrades[v]: from version v to v + 1. */
static const char *const *const upgrades[STORE_SCHEMA_VERSION] = {
	[1] = upgrade_v1,
};

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
	int		 in_txn;
};

const char *
store_errmsg(struct store *s)
{
	return sqlite3_errmsg(s->db);
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
	/* A new database goes straight to the current version. */
	if (have == 0) {
		if (apply_steps(s->db, schema_new, want, &msg) < 0)
			goto fail;
	} else
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
	int fd;

	if (mkdir(o->state_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, len, "store: mkdir %s: %s", o->state_dir,
		    strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/mandrill.db", o->state_dir);
	/* Create the file ourselves so that it is 0640 whatever the umask. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		snprintf(err, len, "store: open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0640) < 0) {	/* open() applied the umask */
		snprintf(err, len, "store: chmod %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
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
	    "PRAGMA mmap_size = 268435456",
	    syncs[o->synchronous]);
	if (exec_patiently(s->db, pragmas, o->busy_timeout, &msg) != SQLITE_OK) {
		snprintf(err, len, "store: %s: %s", path, msg);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
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
	if (open_db(s, o, err, len) < 0 || migrate(s, o->busy_timeout, err, len) < 0)
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

/* Run a statement that returns no rows; binds are already set. */
static int
run(struct store *s, enum stmt i)
{
	int rc = sqlite3_step(s->st[i]);

	sqlite3_reset(s->st[i]);
	sqlite3_clear_bindings(s->st[i]);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_begin(struct store *s)
{
	if (run(s, S_BEGIN) < 0)
		return -1;
	s->in_txn = 1;
	return 0;
}

int
store_commit(struct store *s)
{
	if (run(s, S_COMMIT) < 0)
		return -1;
	s->in_txn = 0;
	return 0;
}

void
store_rollback(struct store *s)
{
	/* A failed COMMIT may have rolled back already. */
	if (!sqlite3_get_autocommit(s->db))
		run(s, S_ROLLBACK);
	s->in_txn = 0;
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

/* Field 22 of /proc/PID/stat: when the process started; -1 if gone. */
static int
proc_starttime(int pid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Counted after the ")" that ends comm, which may hold spaces. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", start) != 1)
		return -1;
	return 0;
}

int
store_owner_alive(const char *owner)
{
	unsigned long long start, want;
	int pid;

	if (owner == NULL || sscanf(owner, "%d:%llu", &pid, &want) != 2 ||
	    pid <= 0)
		return 0;
	return proc_starttime(pid, &start) == 0 && start == want;
}

int
store_owner_self(char *buf, size_t len)
{
	unsigned long long start = 0;

	if (proc_starttime((int)getpid(), &start) < 0)
		return -1;
	snprintf(buf, len, "%d:%llu", (int)getpid(), start);
	return 0;
}

static int
set_msg(struct store *s, const struct store_msg *m, const char *state,
    uint32_t attempts, const char *owner, const char *error)
{
	sqlite3_stmt *st = s->st[S_UPD_MSG];
	char now[32];

	now_iso(now, sizeof(now));
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, state);
	sqlite3_bind_int64(st, 3, attempts);
	bind_text(st, 4, owner);
	bind_text(st, 5, error && *error ? error : NULL);
	bind_text(st, 6, now);
	sqlite3_bind_int64(st, 7, m->delivery);
	return run(s, S_UPD_MSG);
}

static int
insert_msg(struct store *s, const struct store_msg *m, const char *state,
    uint32_t attempts, const char *owner, const char *error)
{
	sqlite3_stmt *st = s->st[S_INS_MSG];
	char now[32];

	now_iso(now, sizeof(now));
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, m->instance);
	bind_text(st, 3, m->host);
	bind_text(st, 4, state);
	sqlite3_bind_int64(st, 5, m->delivery);
	bind_text(st, 6, now);
	bind_text(st, 7, error);
	/* An invalid payload may not be text; dead_letters keeps its bytes. */
	if (m->payload != NULL && strcmp(state, "invalid") != 0)
		sqlite3_bind_text(st, 8, m->payload, (int)m->payload_len,
		    SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, attempts);
	bind_text(st, 10, owner);
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

/* A message's row: 1 found (state, attempts, owner filled), 0 none, -1. */
static int
read_msg(struct store *s, const char *msg_id, char *state, size_t slen,
    uint32_t *attempts, char *owner, size_t olen)
{
	sqlite3_stmt *st = s->st[S_SEL_MSG];
	int rc;

	bind_text(st, 1, msg_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		snprintf(state, slen, "%s", sqlite3_column_text(st, 0));
		*attempts = (uint32_t)sqlite3_column_int64(st, 1);
		if (sqlite3_column_type(st, 2) == SQLITE_TEXT)
			snprintf(owner, olen, "%s", sqlite3_column_text(st, 2));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	return rc == SQLITE_ROW;
}

static int
is_final(const char *state)
{
	return !strcmp(state, "restarted") || !strcmp(state, "skipped") ||
	    !strcmp(state, "dead") || !strcmp(state, "invalid");
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
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return busy;
}

/* Was the host restarted successfully less than min_interval ago? */
static int
host_recent(struct store *s, const struct store_msg *m, int64_t min_interval,
    char *last, size_t len)
{
	sqlite3_stmt *st = s->st[S_SEL_LAST_OK];
	char since[32];
	int rc, recent = 0;

	if (min_interval <= 0)
		return 0;
	clock_iso(clock_wall() - min_interval, since, sizeof(since));
	bind_text(st, 1, m->host);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT) {
		snprintf(last, len, "%s", sqlite3_column_text(st, 0));
		recent = strcmp(last, since) > 0;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		recent = -1;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return recent;
}

/*
 * A previous attempt started and its worker died before recording the
 * outcome.  Whether the host restarted is unknown: record the attempt as
 * lost and treat it as failed, so that the ordinary retry policy (and
 * max_attempts) decides, never an immediate blind second restart.
 */
#define LOST_WHY	"worker died during the restart; outcome unknown"

/* Close the open attempt of a message whose worker died as lost. */
static int
mark_lost(struct store *s, const struct store_msg *m)
{
	sqlite3_stmt *st = s->st[S_LOST_RESTART];
	char now[32];

	now_iso(now, sizeof(now));
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, now);
	bind_text(st, 3, LOST_WHY);
	return run(s, S_LOST_RESTART);
}

static int
recover_lost(struct store *s, const struct store_msg *m,
    const struct store_rules *r, uint32_t attempts, struct store_verdict *v)
{
	const char *why = LOST_WHY;

	if (mark_lost(s, m) < 0)
		return -1;
	v->attempts = attempts;
	snprintf(v->error, sizeof(v->error), "%s", why);
	if (attempts >= r->max_attempts) {
		v->outcome = OUT_DEAD;
		if (dead_letter(s, m, why) < 0)
			return -1;
		return set_msg(s, m, "dead", attempts, NULL, why);
	}
	v->outcome = OUT_FAILED;
	return set_msg(s, m, "failed", attempts, NULL, why);
}

/* Write the message's row: an update if it exists, else its first insert. */
static int
record(struct store *s, const struct store_msg *m, int found,
    const char *state, uint32_t attempts, const char *owner,
    const char *error)
{
	if (found)
		return set_msg(s, m, state, attempts, owner, error);
	return insert_msg(s, m, state, attempts, owner, error);
}

static int
start_attempt(struct store *s, const struct store_msg *m, int found,
    uint32_t attempts, struct store_verdict *v)
{
	sqlite3_stmt *st = s->st[S_INS_RESTART];
	char now[32];

	now_iso(now, sizeof(now));
	bind_text(st, 1, m->msg_id);
	bind_text(st, 2, m->host);
	sqlite3_bind_int64(st, 3, attempts + 1);
	bind_text(st, 4, now);
	if (run(s, S_INS_RESTART) < 0)
		return -1;
	v->restart_id = sqlite3_last_insert_rowid(s->db);
	v->attempts = attempts + 1;
	v->outcome = OUT_RESTARTED;
	return record(s, m, found, "restarting", attempts + 1, s->owner, NULL);
}

/* Decide for a message whose row exists; state and owner as read. */
static int
admit_known(struct store *s, const struct store_msg *m,
    const struct store_rules *r, const char *state, uint32_t attempts,
    const char *owner, struct store_verdict *v)
{
	v->attempts = attempts;
	if (is_final(state)) {
		v->outcome = OUT_DUPLICATE;
		snprintf(v->error, sizeof(v->error), "already %s", state);
		return 0;
	}
	if (strcmp(state, "restarting") == 0) {
		if (store_owner_alive(owner)) {
			v->outcome = OUT_DEFERRED;
			snprintf(v->error, sizeof(v->error), "msg_id is being "
			    "restarted by worker %s", owner);
			return 0;
		}
		return recover_lost(s, m, r, attempts, v);
	}
	if (attempts >= r->max_attempts) {
		v->outcome = OUT_DEAD;
		snprintf(v->error, sizeof(v->error), "no attempts left");
		if (dead_letter(s, m, v->error) < 0)
			return -1;
		return set_msg(s, m, "dead", attempts, NULL, v->error);
	}
	return 1;	/* go on: check the host */
}

/* Live restarts, by any worker of this database; -1 on error. */
static int
count_running(struct store *s)
{
	sqlite3_stmt *st = s->st[S_SEL_RUNNING];
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		n += store_owner_alive((const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? n : -1;
}

/* Restarts started in the last minute; -1 on error. */
static int
count_last_minute(struct store *s)
{
	sqlite3_stmt *st = s->st[S_COUNT_MINUTE];
	char since[32];
	int rc, n = -1;

	clock_iso(clock_wall() - 60000, since, sizeof(since));
	bind_text(st, 1, since);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return n;
}

/* The kill switch and the blast-radius limits: 1 over, 0 not, -1 error. */
static int
over_limit(struct store *s, const struct store_rules *r, char *why,
    size_t len)
{
	int n;

	if (!r->enabled) {
		snprintf(why, len, "restarts are disabled ([restart] enabled = no)");
		return 1;
	}
	if (r->max_concurrent > 0) {
		if ((n = count_running(s)) < 0)
			return -1;
		if ((uint32_t)n >= r->max_concurrent) {
			snprintf(why, len, "%d restarts running, max_concurrent "
			    "is %u", n, r->max_concurrent);
			return 1;
		}
	}
	if (r->max_per_minute > 0) {
		if ((n = count_last_minute(s)) < 0)
			return -1;
		if ((uint32_t)n >= r->max_per_minute) {
			snprintf(why, len, "%d restarts started in the last "
			    "minute, max_per_minute is %u", n, r->max_per_minute);
			return 1;
		}
	}
	return 0;
}

int
store_admit(struct store *s, const struct store_msg *m,
    const struct store_rules *r, struct store_verdict *v)
{
	char state[16] = "", owner[64] = "", last[32];
	uint32_t attempts = 0;
	int rc, found, busy, recent;

	memset(v, 0, sizeof(*v));
	if ((found = read_msg(s, m->msg_id, state, sizeof(state), &attempts,
	    owner, sizeof(owner))) < 0)
		return -1;
	if (found &&
	    (rc = admit_known(s, m, r, state, attempts, owner, v)) <= 0)
		return rc;
	/* A new message's row is written once, with the decision. */
	if ((busy = host_busy(s, m)) != 0) {
		if (busy < 0)
			return -1;
		v->outcome = OUT_DEFERRED;
		snprintf(v->error, sizeof(v->error), "host %s is being "
		    "restarted for another message", m->host);
		return found ? 0 : record(s, m, 0, "received", 0, NULL, NULL);
	}
	if ((rc = over_limit(s, r, v->error, sizeof(v->error))) != 0) {
		if (rc < 0)
			return -1;
		v->outcome = OUT_DEFERRED;
		return found ? 0 : record(s, m, 0, "received", 0, NULL, NULL);
	}
	if ((recent = host_recent(s, m, r->min_interval, last,
	    sizeof(last))) != 0) {
		if (recent < 0)
			return -1;
		v->outcome = OUT_SKIPPED;
		snprintf(v->error, sizeof(v->error), "host %s restarted at %s, "
		    "within min_interval", m->host, last);
		return record(s, m, found, "skipped", attempts, NULL, v->error);
	}
	return start_attempt(s, m, found, attempts, v);
}

int
store_finish(struct store *s, const struct store_msg *m,
    const struct store_rules *r, int exit_status, const char *output,
    struct store_verdict *v)
{
	sqlite3_stmt *st = s->st[S_FIN_RESTART];
	int ok = v->outcome == OUT_RESTARTED;
	char now[32];

	now_iso(now, sizeof(now));
	sqlite3_bind_int64(st, 1, v->restart_id);
	bind_text(st, 2, now);
	if (!v->dry_run)
		sqlite3_bind_int(st, 3, exit_status);
	bind_text(st, 4, !ok ? "failed" : v->dry_run ? "dry-run" : "restarted");
	bind_text(st, 5, ok || v->error[0] == '\0' ? NULL : v->error);
	bind_text(st, 6, output);
	if (run(s, S_FIN_RESTART) < 0)
		return -1;
	if (ok)
		return set_msg(s, m, "restarted", v->attempts, NULL,
		    v->dry_run ? "dry run: nothing was run" : NULL);
	if (v->attempts >= r->max_attempts) {
		v->outcome = OUT_DEAD;
		if (dead_letter(s, m, v->error) < 0)
			return -1;
		return set_msg(s, m, "dead", v->attempts, NULL, v->error);
	}
	v->outcome = OUT_FAILED;
	return set_msg(s, m, "failed", v->attempts, NULL, v->error);
}

int
store_invalid(struct store *s, const struct store_msg *m, const char *reason,
    struct store_verdict *v)
{
	char why[sizeof(v->error)], state[16] = "", owner[64] = "";
	uint32_t attempts = 0;
	int found = 0;

	snprintf(why, sizeof(why), "%s", reason);	/* reason may be v->error */
	memset(v, 0, sizeof(*v));
	v->outcome = OUT_INVALID;
	snprintf(v->error, sizeof(v->error), "%s", why);
	if (m->msg_id == NULL)
		return dead_letter(s, m, why);
	if ((found = read_msg(s, m->msg_id, state, sizeof(state), &attempts,
	    owner, sizeof(owner))) < 0)
		return -1;
	if (found && is_final(state)) {
		v->outcome = OUT_DUPLICATE;
		v->attempts = attempts;
		return 0;
	}
	/* A live restart of this msg_id is not undone by a bad copy of it. */
	if (found && strcmp(state, "restarting") == 0 &&
	    store_owner_alive(owner)) {
		v->outcome = OUT_DEFERRED;
		v->attempts = attempts;
		snprintf(v->error, sizeof(v->error), "msg_id is being restarted "
		    "by worker %s", owner);
		return 0;
	}
	/*
	 * A bad copy of a message that is still on its way (received, failed,
	 * or restarting by a worker that died) is dead-lettered by itself;
	 * the row stays for the good copy's next delivery.
	 */
	v->attempts = attempts;
	if (!found && insert_msg(s, m, "invalid", 0, NULL, why) < 0)
		return -1;
	return dead_letter(s, m, why);
}

int
store_bury(struct store *s, const struct store_msg *m, const char *reason,
    struct store_verdict *v)
{
	char why[sizeof(v->error)], state[16] = "", owner[64] = "";
	uint32_t attempts = 0;
	int found;

	snprintf(why, sizeof(why), "%s", reason);
	memset(v, 0, sizeof(*v));
	if ((found = read_msg(s, m->msg_id, state, sizeof(state), &attempts,
	    owner, sizeof(owner))) < 0)
		return -1;
	v->attempts = attempts;
	if (found && is_final(state)) {
		v->outcome = OUT_DUPLICATE;
		snprintf(v->error, sizeof(v->error), "already %s", state);
		return 0;
	}
	if (found && strcmp(state, "restarting") == 0) {
		if (store_owner_alive(owner)) {
			v->outcome = OUT_DEFERRED;
			snprintf(v->error, sizeof(v->error), "msg_id is being "
			    "restarted by worker %s", owner);
			return 0;
		}
		if (mark_lost(s, m) < 0)
			return -1;
	}
	v->outcome = OUT_DEAD;
	snprintf(v->error, sizeof(v->error), "%s", why);
	if (dead_letter(s, m, why) < 0)
		return -1;
	return record(s, m, found, "dead", attempts, NULL, why);
}
