/*
 * check_store: the worker's SQLite store and its exactly-once decisions.
 *
 * Every test works in its own directory under one mkdtemp() root that
 * main() removes at the end, so a failing (forked) test leaves nothing
 * behind.  The database is inspected with a separate sqlite3 connection
 * and the same queries an operator would type into the sqlite3 CLI.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <sqlite3.h>

#include "clock.h"
#include "conf.h"
#include "proto.h"
#include "store.h"

#define DEAD_OWNER	"999999999:1"
#define NO_VALUE	INT64_MIN

static char root[64];

/* One store under test, in its own directory. */
struct fx {
	char		 dir[256];
	char		 owner[64];
	struct store	*s;
};

static void
fresh_dir(char *dir, size_t len)
{
	snprintf(dir, len, "%s/t-XXXXXX", root);
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir,
	    strerror(errno));
}

static struct store *
open_as(const char *dir, const char *owner, int64_t busy_timeout)
{
	struct store_opts o;
	struct store *s;
	char err[CONF_ERR_MAX] = "";

	memset(&o, 0, sizeof(o));
	o.state_dir = dir;
	o.synchronous = STORE_SYNC_NORMAL;
	o.busy_timeout = busy_timeout;
	o.owner = owner;
	s = store_open(&o, err, sizeof(err));
	ck_assert_msg(s != NULL, "store_open %s: %s", dir, err);
	return s;
}

static void
fx_open(struct fx *f)
{
	fresh_dir(f->dir, sizeof(f->dir));
	store_owner_self(f->owner, sizeof(f->owner));
	f->s = open_as(f->dir, f->owner, 2000);
}

static int64_t q_int(const char *dir, const char *sql, const char *p1);

/*
 * messages_by_state is kept by the worker from what it changed: at the
 * end of every test it must say what counting the rows says.
 */
static void
expect_totals(const char *dir)
{
	static const char *const diff[2] = {
		"SELECT count(*) FROM (SELECT state, count(*) FROM messages"
		" GROUP BY state EXCEPT SELECT state, n FROM messages_by_state)",
		"SELECT count(*) FROM (SELECT state, n FROM messages_by_state"
		" EXCEPT SELECT state, count(*) FROM messages GROUP BY state)",
	};

	for (int i = 0; i < 2; i++)
		ck_assert_msg(q_int(dir, diff[i], NULL) == 0,
		    "messages_by_state disagrees with messages (%s)",
		    i == 0 ? "a count missing or wrong" : "a count too many");
}

static void
fx_close(struct fx *f)
{
	store_close(f->s);
	f->s = NULL;
	expect_totals(f->dir);
}

static struct store_msg
msg(const char *msg_id, const char *host)
{
	static char payload[8][160];
	static unsigned next;
	struct store_msg m;
	char *p = payload[next++ % 8];

	memset(&m, 0, sizeof(m));
	snprintf(p, 160, "{\"msg_id\": \"%s\", \"instance_name\": \"%s\"}",
	    msg_id ? msg_id : "", host);
	m.msg_id = msg_id;
	m.broker_id = "broker-1";
	m.instance = host;
	m.host = host;
	m.payload = p;
	m.payload_len = strlen(p);
	m.delivery = 1;
	return m;
}

static struct admit_rules
rules(uint32_t max_attempts, int64_t min_interval)
{
	struct admit_rules r = { .max_attempts = max_attempts,
	    .min_interval = min_interval, .enabled = 1 };

	return r;
}

/* One admit in its own transaction, as the worker does per iteration. */
static struct store_verdict
admit(struct store *s, const struct store_msg *m, const struct admit_rules *r)
{
	struct store_verdict v;

	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_msg(store_admit(s, m, r, &v) == 0, "store_admit %s: %s",
	    m->msg_id, store_errmsg(s));
	ck_assert_int_eq(store_commit(s), 0);
	return v;
}

/* End the attempt in v: success (error NULL) or failure with error. */
static void
finish(struct store *s, const struct store_msg *m, const struct admit_rules *r,
    struct store_verdict *v, int exit_status, const char *error)
{
	v->outcome = exit_status == 0 ? OUT_RESTARTED : OUT_FAILED;
	snprintf(v->error, sizeof(v->error), "%s", error ? error : "");
	ck_assert_int_eq(store_begin(s), 0);
	ck_assert_msg(store_finish(s, m, r, exit_status, "tail of output", v) ==
	    0, "store_finish %s: %s", m->msg_id, store_errmsg(s));
	ck_assert_int_eq(store_commit(s), 0);
}

/* Operator's view: a separate connection to the same file. */
static sqlite3 *
raw_open(const char *dir)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/mandrill.db", dir);
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static sqlite3_stmt *
raw_query(sqlite3 *db, const char *sql, const char *p1)
{
	sqlite3_stmt *st;

	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK,
	    "prepare %s: %s", sql, sqlite3_errmsg(db));
	if (p1 != NULL)
		sqlite3_bind_text(st, 1, p1, -1, SQLITE_TRANSIENT);
	return st;
}

/* First column of the first row; NO_VALUE when no row or NULL. */
static int64_t
q_int(const char *dir, const char *sql, const char *p1)
{
	sqlite3 *db = raw_open(dir);
	sqlite3_stmt *st = raw_query(db, sql, p1);
	int64_t r = NO_VALUE;
	int rc = sqlite3_step(st);

	ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s", sql,
	    sqlite3_errmsg(db));
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/* First column of the first row as text into buf; NULL when none. */
static const char *
q_text(char *buf, size_t len, const char *dir, const char *sql,
    const char *p1)
{
	sqlite3 *db = raw_open(dir);
	sqlite3_stmt *st = raw_query(db, sql, p1);
	const char *r = NULL;
	int rc = sqlite3_step(st);

	ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s", sql,
	    sqlite3_errmsg(db));
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		snprintf(buf, len, "%s", sqlite3_column_text(st, 0));
		r = buf;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

static const char *
state_of(char *buf, size_t len, const char *dir, const char *msg_id)
{
	return q_text(buf, len, dir,
	    "SELECT state FROM messages WHERE msg_id = ?1", msg_id);
}

static int64_t
count_restarts(const char *dir, const char *msg_id)
{
	return q_int(dir, "SELECT count(*) FROM restarts WHERE msg_id = ?1",
	    msg_id);
}

static int64_t
count_dead(const char *dir, const char *msg_id)
{
	return q_int(dir, "SELECT count(*) FROM dead_letters WHERE msg_id = ?1",
	    msg_id);
}

/* Does str contain n as a whole number (not part of a longer one)? */
static int
has_number(const char *str, long n)
{
	for (const char *p = str; *p; p++) {
		char *end;
		long v;

		if (*p < '0' || *p > '9' || (p > str && p[-1] >= '0' &&
		    p[-1] <= '9'))
			continue;
		v = strtol(p, &end, 10);
		if (v == n)
			return 1;
	}
	return 0;
}

static void
expect_state(const char *dir, const char *msg_id, const char *want)
{
	char buf[32];
	const char *got = state_of(buf, sizeof(buf), dir, msg_id);

	ck_assert_msg(got != NULL, "no messages row for %s", msg_id);
	ck_assert_str_eq(got, want);
}

/* Opening --------------------------------------------------------------- */

START_TEST(test_open_creates_db)
{
	char dir[256], state[300], path[320], wal[330], buf[64];
	struct store *s;
	struct stat st;
	mode_t old = umask(022);

	fresh_dir(dir, sizeof(dir));
	/* state_dir itself does not exist yet: the store makes it. */
	snprintf(state, sizeof(state), "%s/state", dir);
	s = open_as(state, "1:1", 2000);
	umask(old);

	snprintf(path, sizeof(path), "%s/mandrill.db", state);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg((st.st_mode & 0777) == 0640, "mandrill.db mode %o",
	    (unsigned)(st.st_mode & 0777));
	/* The WAL holds committed rows too: no wider than the database. */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &st) == 0)
		ck_assert_msg((st.st_mode & 0077) == 0040, "-wal mode %o",
		    (unsigned)(st.st_mode & 0777));
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), state,
	    "PRAGMA journal_mode", NULL));
	ck_assert_str_eq(buf, "wal");
	ck_assert_int_eq(q_int(state, "PRAGMA user_version", NULL),
	    STORE_SCHEMA_VERSION);
	store_close(s);
}
END_TEST

START_TEST(test_open_mode_ignores_umask)
{
	/*
	 * Regression (fixed): worker/store.c open_db() said "Create the file ourselves so
	 * that it is 0640 whatever the umask", but open(path, ..., 0640) is
	 * masked by the umask: under umask 077 the file is 0600 and the
	 * operators' group (DESIGN.md: "Created with mode 0640") cannot
	 * read the audit log.  Needs an fchmod(fd, 0640) after creating.
	 */
	char dir[256], path[320];
	struct store *s;
	struct stat st;
	mode_t old = umask(077);

	fresh_dir(dir, sizeof(dir));
	s = open_as(dir, "1:1", 2000);
	umask(old);
	snprintf(path, sizeof(path), "%s/mandrill.db", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	store_close(s);
	ck_assert_msg((st.st_mode & 0777) == 0640,
	    "mandrill.db created %o under umask 077, want 640",
	    (unsigned)(st.st_mode & 0777));
}
END_TEST

START_TEST(test_open_schema_objects)
{
	static const struct { const char *type, *name; } want[] = {
		{ "table", "messages" }, { "table", "restarts" },
		{ "table", "dead_letters" }, { "view", "last_restart" },
		{ "view", "failures_last_hour" }, { "view", "in_progress" },
		{ "view", "outcomes_per_minute" }, { "view", "host_history" },
		{ "view", "messages_by_state" }, { "table", "state_totals" },
		{ "table", "outcome_minutes" },
		{ "table", "hosts" }, { "view", "failing_now" },
	};
	struct fx f;

	fx_open(&f);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char sql[160];
		char name[64];

		snprintf(sql, sizeof(sql), "SELECT name FROM sqlite_master "
		    "WHERE type = '%s' AND name = ?1", want[i].type);
		ck_assert_msg(q_text(name, sizeof(name), f.dir, sql,
		    want[i].name) != NULL, "no %s %s", want[i].type,
		    want[i].name);
		/* And it can be queried, as an operator would. */
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
		    want[i].name);
		ck_assert_int_eq(q_int(f.dir, sql, NULL), 0);
	}
	fx_close(&f);
}
END_TEST

START_TEST(test_reopen_keeps_data)
{
	struct fx f;
	struct store_msg m = msg("m-reopen", "cattle-0001");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;

	fx_open(&f);
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	finish(f.s, &m, &r, &v, 0, NULL);
	fx_close(&f);

	f.s = open_as(f.dir, f.owner, 2000);
	ck_assert_int_eq(q_int(f.dir, "PRAGMA user_version", NULL),
	    STORE_SCHEMA_VERSION);
	expect_state(f.dir, "m-reopen", "restarted");
	/* The reopened store still knows the message is final. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_restarts(f.dir, "m-reopen"), 1);
	fx_close(&f);
}
END_TEST

/*
 * A database made by version 1 (its schema as it shipped, with an IN list
 * in each CHECK and a separate messages_restarting index) is migrated on
 * open: its rows are kept and still decide, as a restart in progress on
 * a host does.
 */
static const char schema_v1[] =
    "CREATE TABLE messages (msg_id TEXT PRIMARY KEY NOT NULL,"
    " instance TEXT, host TEXT, state TEXT NOT NULL CHECK (state IN"
    " ('received', 'restarting', 'restarted', 'skipped', 'failed', 'dead',"
    " 'invalid')), attempts INTEGER NOT NULL DEFAULT 0,"
    " deliveries INTEGER NOT NULL DEFAULT 0, first_seen TEXT NOT NULL,"
    " updated TEXT NOT NULL, error TEXT, owner TEXT, payload TEXT);"
    "CREATE INDEX messages_restarting ON messages (host)"
    " WHERE state = 'restarting';"
    "CREATE INDEX messages_active ON messages (state)"
    " WHERE state IN ('received', 'restarting', 'failed');"
    "CREATE TABLE restarts (id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL,"
    " host TEXT NOT NULL, attempt INTEGER NOT NULL, started TEXT NOT NULL,"
    " finished TEXT, exit_status INTEGER, outcome TEXT CHECK (outcome IN"
    " ('restarted', 'failed', 'lost', 'dry-run')), error TEXT, output TEXT);"
    "CREATE INDEX restarts_open ON restarts (msg_id) WHERE finished IS NULL;"
    "CREATE INDEX restarts_ok ON restarts (host, finished)"
    " WHERE outcome = 'restarted';"
    "CREATE INDEX restarts_started ON restarts (started);"
    "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, msg_id TEXT,"
    " broker_id TEXT, reason TEXT NOT NULL, payload BLOB,"
    " created TEXT NOT NULL);"
    "CREATE VIEW last_restart AS SELECT host, max(finished) AS finished,"
    " msg_id FROM restarts WHERE outcome = 'restarted' GROUP BY host;"
    "CREATE VIEW failures_last_hour AS SELECT msg_id, host, attempt,"
    " finished, outcome, error FROM restarts WHERE outcome IN ('failed',"
    " 'lost') AND finished >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now',"
    " '-1 hour');"
    "CREATE VIEW in_progress AS SELECT msg_id, host, state, attempts,"
    " first_seen, updated FROM messages WHERE state IN ('received',"
    " 'restarting', 'failed');"
    "CREATE VIEW outcomes_per_minute AS SELECT substr(updated, 1, 16) AS"
    " minute, state, count(*) AS n FROM messages GROUP BY minute, state;"
    "PRAGMA user_version = 1;";

START_TEST(test_open_migrates_v1)
{
	struct store_msg busy = msg("m-v1-new", "cattle-v1");
	struct store_msg done = msg("m-v1-done", "cattle-v1done");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char path[320], sql[1024], buf[64];
	struct fx f;
	sqlite3 *db;

	fresh_dir(f.dir, sizeof(f.dir));
	store_owner_self(f.owner, sizeof(f.owner));
	snprintf(path, sizeof(path), "%s/mandrill.db", f.dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO messages VALUES ('m-v1-busy', 'cattle-v1',"
	    " 'cattle-v1', 'restarting', 1, 1, '2026-01-01T00:00:00.000Z',"
	    " '2026-01-01T00:00:00.000Z', NULL, '%s', '{}');"
	    "INSERT INTO messages VALUES ('m-v1-done', 'cattle-v1done',"
	    " 'cattle-v1done', 'restarted', 1, 1, '2026-01-01T00:00:00.000Z',"
	    " '2026-01-01T00:00:01.000Z', NULL, NULL, '{}');"
	    "INSERT INTO restarts VALUES (7, 'm-v1-busy', 'cattle-v1', 1,"
	    " '2026-01-01T00:00:00.000Z', NULL, NULL, NULL, NULL, NULL);"
	    "INSERT INTO restarts VALUES (8, 'm-v1-done', 'cattle-v1done', 1,"
	    " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 0,"
	    " 'restarted', NULL, NULL);"
	    "INSERT INTO messages VALUES ('m-v1-dry', 'cattle-v1dry',"
	    " 'cattle-v1dry', 'restarted', 1, 1, '2026-01-01T00:00:00.000Z',"
	    " '2026-01-01T00:00:01.000Z', 'dry run: nothing was run', NULL,"
	    " '{}');"
	    "INSERT INTO restarts VALUES (9, 'm-v1-dry', 'cattle-v1dry', 1,"
	    " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', NULL,"
	    " 'dry-run', NULL, NULL);", f.owner);
	ck_assert_int_eq(sqlite3_exec(db, schema_v1, NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	f.s = open_as(f.dir, f.owner, 2000);
	ck_assert_int_eq(q_int(f.dir, "PRAGMA user_version", NULL),
	    STORE_SCHEMA_VERSION);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages", NULL), 3);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts", NULL), 3);
	/* Version 5: a dry run's state, and hosts made from the history. */
	expect_state(f.dir, "m-v1-dry", "dry-run");
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM hosts", NULL), 3);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM hosts WHERE "
	    "running_msg_id = 'm-v1-busy' AND last_ok IS NULL", NULL), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM hosts WHERE "
	    "host = 'cattle-v1dry' AND last_ok IS NULL AND "
	    "last_outcome = 'dry-run'", NULL), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM in_progress",
	    NULL), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'messages_restarting' OR name LIKE '%_v1'", NULL), 0);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT finished FROM last_restart WHERE host = ?1",
	    "cattle-v1done"));
	ck_assert_str_eq(buf, "2026-01-01T00:00:01.000Z");
	/* Version 6: the settled rows counted at the minute of their update. */
	ck_assert_int_eq(q_int(f.dir, "SELECT sum(n) FROM outcomes_per_minute "
	    "WHERE minute = '2026-01-01T00:00'", NULL), 2);
	ck_assert_int_eq(q_int(f.dir, "SELECT sum(n) FROM messages_by_state",
	    NULL), 3);
	/* The migrated rows still decide. */
	v = admit(f.s, &busy, &r);
	ck_assert_int_eq(v.outcome, OUT_HELD);
	v = admit(f.s, &done, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	/* The last success, read from hosts now, still starts min_interval. */
	r.min_interval = 1000LL * 86400 * 365 * 100;
	done = msg("m-v1-again", "cattle-v1done");
	v = admit(f.s, &done, &r);
	ck_assert_int_eq(v.outcome, OUT_SKIPPED);
	/* And the new CHECK still refuses a state that does not exist. */
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE messages SET state = 'bogus'",
	    NULL, NULL, NULL) & 0xff, SQLITE_CONSTRAINT);
	sqlite3_close(db);
	fx_close(&f);
}
END_TEST

START_TEST(test_open_refuses_newer_schema)
{
	char dir[256], path[320], err[CONF_ERR_MAX] = "";
	struct store_opts o;
	sqlite3 *db;

	fresh_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/mandrill.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE future (x); "
	    "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	memset(&o, 0, sizeof(o));
	o.state_dir = dir;
	o.synchronous = STORE_SYNC_FULL;
	o.busy_timeout = 1000;
	o.owner = "1:1";
	ck_assert_ptr_null(store_open(&o, err, sizeof(err)));
	ck_assert_msg(has_number(err, 99) &&
	    has_number(err, STORE_SCHEMA_VERSION),
	    "error does not name both versions: %s", err);
	/* Nothing was migrated over the newer database. */
	ck_assert_int_eq(q_int(dir, "PRAGMA user_version", NULL), 99);
	ck_assert_int_eq(q_int(dir, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'messages'", NULL), 0);
}
END_TEST

/* Owners ---------------------------------------------------------------- */

START_TEST(test_owner_self)
{
	char own[64], wrong[80];
	int pid;
	unsigned long long start;

	store_owner_self(own, sizeof(own));
	ck_assert_int_eq(sscanf(own, "%d:%llu", &pid, &start), 2);
	ck_assert_int_eq(pid, (int)getpid());
	ck_assert_msg(start > 0, "starttime missing in %s", own);
	ck_assert(store_owner_alive(own));

	/* Same pid, other start time: a recycled pid is not our worker. */
	snprintf(wrong, sizeof(wrong), "%d:%llu", pid, start + 1);
	ck_assert(!store_owner_alive(wrong));
	ck_assert(!store_owner_alive(DEAD_OWNER));
	ck_assert(!store_owner_alive("garbage"));
	ck_assert(!store_owner_alive(""));
	ck_assert(!store_owner_alive(":"));
	ck_assert(!store_owner_alive("-1:5"));
	ck_assert(!store_owner_alive(NULL));
}
END_TEST

START_TEST(test_owner_other_process)
{
	int tochild[2], fromchild[2], status;
	char own[64] = "", c = 'x';
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(tochild), 0);
	ck_assert_int_eq(pipe(fromchild), 0);
	if ((pid = fork()) == 0) {
		char buf[64];

		/* A command name with ") " must not confuse the parser. */
		prctl(PR_SET_NAME, "w) 1 2 (x", 0, 0, 0);
		store_owner_self(buf, sizeof(buf));
		if (write(fromchild[1], buf, strlen(buf) + 1) < 0)
			_exit(1);
		if (read(tochild[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	n = read(fromchild[0], own, sizeof(own) - 1);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(store_owner_alive(own), "live child %s seen dead", own);
	ck_assert_int_eq(write(tochild[1], &c, 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!store_owner_alive(own), "exited child %s seen alive",
	    own);
	close(tochild[0]);
	close(tochild[1]);
	close(fromchild[0]);
	close(fromchild[1]);
}
END_TEST

/* Admission ------------------------------------------------------------- */

START_TEST(test_admit_new)
{
	struct fx f;
	struct store_msg m = msg("m-new", "cattle-00a1");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char buf[64];

	fx_open(&f);
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	ck_assert_uint_eq(v.attempts, 1);
	ck_assert_int_gt(v.restart_id, 0);

	expect_state(f.dir, "m-new", "restarting");
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT owner FROM messages WHERE msg_id = ?1", "m-new"));
	ck_assert_str_eq(buf, f.owner);
	ck_assert_int_eq(q_int(f.dir, "SELECT attempts FROM messages "
	    "WHERE msg_id = ?1", "m-new"), 1);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT host FROM messages WHERE msg_id = ?1", "m-new"));
	ck_assert_str_eq(buf, "cattle-00a1");
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT payload FROM messages WHERE msg_id = ?1", "m-new"));
	ck_assert_str_eq(buf, m.payload);

	/* The restarts row of this attempt: started, not finished. */
	ck_assert_int_eq(count_restarts(f.dir, "m-new"), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT id FROM restarts "
	    "WHERE msg_id = ?1", "m-new"), v.restart_id);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts WHERE "
	    "msg_id = ?1 AND started IS NOT NULL AND finished IS NULL AND "
	    "outcome IS NULL AND attempt = 1", "m-new"), 1);
	/* Operators see it in progress. */
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM in_progress "
	    "WHERE msg_id = ?1", "m-new"), 1);
	fx_close(&f);
}
END_TEST

START_TEST(test_finish_success_then_duplicate)
{
	struct fx f;
	struct store_msg m = msg("m-ok", "cattle-00b2");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char buf[64];

	fx_open(&f);
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	finish(f.s, &m, &r, &v, 0, NULL);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);

	expect_state(f.dir, "m-ok", "restarted");
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts WHERE "
	    "msg_id = ?1 AND finished IS NOT NULL AND outcome = 'restarted' "
	    "AND exit_status = 0", "m-ok"), 1);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT host FROM last_restart WHERE msg_id = ?1", "m-ok"));
	ck_assert_str_eq(buf, "cattle-00b2");
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM in_progress "
	    "WHERE msg_id = ?1", "m-ok"), 0);

	/* Redelivered after the outcome is final: no second restart. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_restarts(f.dir, "m-ok"), 1);
	expect_state(f.dir, "m-ok", "restarted");
	fx_close(&f);
}
END_TEST

/*
 * A dry run is recorded as one: its own state, an attempt with nothing
 * run, and no start of min_interval, so a real request right after it
 * restarts the host.
 */
START_TEST(test_dry_run_state)
{
	struct fx f;
	struct store_msg a = msg("m-dry-a", "cattle-00d1");
	struct store_msg b = msg("m-dry-b", "cattle-00d1");
	struct admit_rules r = rules(3, 3600000);
	struct store_verdict v;

	fx_open(&f);
	v = admit(f.s, &a, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	v.dry_run = 1;
	finish(f.s, &a, &r, &v, 0, NULL);
	ck_assert_int_eq(v.outcome, OUT_DRY_RUN);
	expect_state(f.dir, "m-dry-a", "dry-run");
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts WHERE "
	    "msg_id = ?1 AND outcome = 'dry-run' AND exit_status IS NULL",
	    "m-dry-a"), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM last_restart "
	    "WHERE host = ?1", "cattle-00d1"), 0);
	/* Final: its redelivery is a duplicate, not a second dry run. */
	v = admit(f.s, &a, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	/* Not a restart for min_interval. */
	v = admit(f.s, &b, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	fx_close(&f);
}
END_TEST

/*
 * hosts: one row per host, with the restart in progress, the last
 * success kept when a later attempt fails, and failing_now listing a
 * host only while its latest attempt failed.
 */
START_TEST(test_hosts_row)
{
	struct fx f;
	struct store_msg a = msg("m-h-a", "cattle-00e1");
	struct store_msg b = msg("m-h-b", "cattle-00e1");
	struct store_msg c = msg("m-h-c", "cattle-00e1");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char buf[300];

	fx_open(&f);
	v = admit(f.s, &a, &r);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir, "SELECT "
	    "running_msg_id FROM hosts WHERE host = ?1", "cattle-00e1"));
	ck_assert_str_eq(buf, "m-h-a");
	finish(f.s, &a, &r, &v, 0, NULL);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM hosts WHERE host "
	    "= ?1 AND running_msg_id IS NULL AND last_ok IS NOT NULL AND "
	    "last_ok_msg_id = 'm-h-a' AND last_outcome = 'restarted'",
	    "cattle-00e1"), 1);

	v = admit(f.s, &b, &r);
	finish(f.s, &b, &r, &v, 1, "exit status 1");
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir, "SELECT error "
	    "FROM failing_now WHERE host = ?1", "cattle-00e1"));
	ck_assert_str_eq(buf, "exit status 1");
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir, "SELECT msg_id "
	    "FROM last_restart WHERE host = ?1", "cattle-00e1"));
	ck_assert_str_eq(buf, "m-h-a");

	v = admit(f.s, &c, &r);
	finish(f.s, &c, &r, &v, 0, NULL);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM failing_now", NULL),
	    0);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM hosts", NULL), 1);
	fx_close(&f);
}
END_TEST

/*
 * retain: finished rows older than retain go, in batches; a message
 * still on its way, a young one, and the host's last success stay.
 */
START_TEST(test_prune)
{
	struct fx f;
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char id[32];
	uint64_t total = 0;
	int n, batches = 0;

	clock_set_fake(1000);
	fx_open(&f);
	for (int i = 0; i < 25; i++) {
		struct store_msg m;

		snprintf(id, sizeof(id), "m-old-%02d", i);
		m = msg(id, "cattle-0f01");
		v = admit(f.s, &m, &r);
		finish(f.s, &m, &r, &v, 0, NULL);
	}
	{
		struct store_msg m = msg("m-old-failed", "cattle-0f02");

		v = admit(f.s, &m, &r);
		finish(f.s, &m, &r, &v, 1, "exit status 1");	/* will retry */
	}
	clock_advance(10LL * 86400000);
	{
		struct store_msg m = msg("m-young", "cattle-0f03");

		v = admit(f.s, &m, &r);
		finish(f.s, &m, &r, &v, 0, NULL);
	}
	clock_advance(1000);
	while ((n = store_prune(f.s, 5LL * 86400000, 10, &total)) > 0) {
		batches++;
		ck_assert_int_le(batches, 10);
	}
	ck_assert_int_eq(n, 0);
	/* 25 restarted and their attempts, and the failed one's attempt. */
	ck_assert_int_eq(total, 51);
	ck_assert_int_ge(batches, 3);	/* 26 messages, 10 at a time */
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages", NULL), 2);
	expect_state(f.dir, "m-old-failed", "failed");
	expect_state(f.dir, "m-young", "restarted");
	/* The failed message's attempt is finished and old: it goes. */
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts", NULL), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM last_restart WHERE "
	    "host = 'cattle-0f01' AND msg_id = 'm-old-24'", NULL), 1);
	/* The old minutes went with them; the young one's stays. */
	ck_assert_int_eq(q_int(f.dir, "SELECT sum(n) FROM outcomes_per_minute",
	    NULL), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT n FROM messages_by_state WHERE "
	    "state = 'restarted'", NULL), 1);
	/* Nothing more to find, and nothing young goes later by mistake. */
	total = 0;
	for (int k = 0; store_prune(f.s, 5LL * 86400000, 10, &total) > 0; k++)
		ck_assert_int_lt(k, 3);	/* past the old failed one, then done */
	ck_assert_int_eq(total, 0);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages", NULL), 2);
	/*
	 * Everything ages out, then new rows reuse the freed row ids, below
	 * where the cursor was: they are pruned in their turn.
	 */
	clock_advance(10LL * 86400000);
	{
		struct store_msg m = msg("m-old-failed", "cattle-0f02");

		v = admit(f.s, &m, &r);
		finish(f.s, &m, &r, &v, 0, NULL);
	}
	clock_advance(10LL * 86400000);
	while (store_prune(f.s, 5LL * 86400000, 10, &total) > 0)
		;
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages", NULL), 0);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts", NULL), 0);
	for (int i = 0; i < 5; i++) {
		struct store_msg m;

		snprintf(id, sizeof(id), "m-new-%02d", i);
		m = msg(id, "cattle-0f04");
		v = admit(f.s, &m, &r);
		finish(f.s, &m, &r, &v, 0, NULL);
	}
	ck_assert_int_le(q_int(f.dir, "SELECT max(rowid) FROM messages", NULL),
	    27);
	clock_advance(10LL * 86400000);
	while (store_prune(f.s, 5LL * 86400000, 10, &total) > 0)
		;
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages", NULL), 0);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts", NULL), 0);
	fx_close(&f);
	clock_set_fake(-1);
}
END_TEST

/*
 * mandrillctl retry: a dead row starts over when its message comes
 * marked with its newest dead letter; unmarked it stays a duplicate, a
 * copy of the same retry once the message is dead again is a duplicate
 * too, and a retry of a msg_id never recorded is refused, not a request.
 */
START_TEST(test_retry_dead)
{
	struct fx f;
	struct store_msg m = msg("m-retry", "cattle-00f1");
	struct admit_rules r = rules(1, 0);
	struct store_verdict v;

	fx_open(&f);
	v = admit(f.s, &m, &r);
	finish(f.s, &m, &r, &v, 1, "exit status 1");
	ck_assert_int_eq(v.outcome, OUT_DEAD);
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);

	m.retry_of = (uint64_t)q_int(f.dir, "SELECT max(id) FROM dead_letters "
	    "WHERE msg_id = ?1", "m-retry");
	ck_assert_uint_gt(m.retry_of, 0);
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	ck_assert_int_eq(v.attempts, 1);
	expect_state(f.dir, "m-retry", "restarting");
	/* It fails again: dead again, with a newer dead letter. */
	finish(f.s, &m, &r, &v, 1, "exit status 1");
	ck_assert_int_eq(v.outcome, OUT_DEAD);
	ck_assert_int_eq(count_restarts(f.dir, "m-retry"), 2);
	/* The same retry's copy, redelivered: not another go. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_restarts(f.dir, "m-retry"), 2);
	/* A second retry, of the newest dead letter: one more go. */
	m.retry_of = (uint64_t)q_int(f.dir, "SELECT max(id) FROM dead_letters "
	    "WHERE msg_id = ?1", "m-retry");
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	finish(f.s, &m, &r, &v, 0, NULL);
	expect_state(f.dir, "m-retry", "restarted");
	ck_assert_int_eq(count_restarts(f.dir, "m-retry"), 3);
	/* Retried again once it is restarted: a duplicate, no more tries. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_restarts(f.dir, "m-retry"), 3);
	/* A retry of a msg_id never recorded makes no request. */
	{
		struct store_msg n = msg("m-never", "cattle-00f2");

		n.retry_of = 7;
		v = admit(f.s, &n, &r);
		ck_assert_int_eq(v.outcome, OUT_INVALID);
		ck_assert_int_eq(count_restarts(f.dir, "m-never"), 0);
		ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages "
		    "WHERE msg_id = 'm-never'", NULL), 0);
	}
	fx_close(&f);
}
END_TEST

START_TEST(test_failures_until_dead)
{
	struct fx f;
	struct store_msg m = msg("m-fail", "cattle-00c3");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char buf[300];

	fx_open(&f);
	for (uint32_t attempt = 1; attempt <= 3; attempt++) {
		v = admit(f.s, &m, &r);
		ck_assert_int_eq(v.outcome, OUT_RESTARTED);
		ck_assert_uint_eq(v.attempts, attempt);
		finish(f.s, &m, &r, &v, 1, "exit status 1: ssh refused");
		if (attempt < 3) {
			ck_assert_int_eq(v.outcome, OUT_FAILED);
			expect_state(f.dir, "m-fail", "failed");
			ck_assert_int_eq(count_dead(f.dir, "m-fail"), 0);
		}
	}
	ck_assert_int_eq(v.outcome, OUT_DEAD);
	expect_state(f.dir, "m-fail", "dead");
	ck_assert_int_eq(q_int(f.dir, "SELECT attempts FROM messages "
	    "WHERE msg_id = ?1", "m-fail"), 3);
	ck_assert_int_eq(count_restarts(f.dir, "m-fail"), 3);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts WHERE "
	    "msg_id = ?1 AND outcome = 'failed' AND exit_status = 1 AND "
	    "finished IS NOT NULL", "m-fail"), 3);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts WHERE "
	    "msg_id = ?1 AND error = 'exit status 1: ssh refused'", "m-fail"),
	    3);
	ck_assert_int_eq(count_dead(f.dir, "m-fail"), 1);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT reason FROM dead_letters WHERE msg_id = ?1", "m-fail"));
	ck_assert_msg(strstr(buf, "ssh refused") != NULL, "reason: %s", buf);

	/* Dead is final. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_restarts(f.dir, "m-fail"), 3);
	ck_assert_int_eq(count_dead(f.dir, "m-fail"), 1);
	/* Two failed attempts that were retried, then the death. */
	ck_assert_int_eq(q_int(f.dir, "SELECT sum(n) FROM outcomes_per_minute"
	    " WHERE state = 'failed'", NULL), 2);
	ck_assert_int_eq(q_int(f.dir, "SELECT sum(n) FROM outcomes_per_minute"
	    " WHERE state = 'dead'", NULL), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM outcomes_per_minute"
	    " WHERE state <> 'failed' AND state <> 'dead'", NULL), 0);
	fx_close(&f);
}
END_TEST

START_TEST(test_same_msg_in_progress_deferred)
{
	struct fx f;
	struct store_msg m = msg("m-busy", "cattle-00d4");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v, v2;

	fx_open(&f);
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	/* A redelivery while we (alive) still restart it. */
	v2 = admit(f.s, &m, &r);
	ck_assert_int_eq(v2.outcome, OUT_HELD);
	ck_assert_uint_eq(v2.attempts, 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT attempts FROM messages "
	    "WHERE msg_id = ?1", "m-busy"), 1);
	ck_assert_int_eq(count_restarts(f.dir, "m-busy"), 1);
	expect_state(f.dir, "m-busy", "restarting");
	fx_close(&f);
}
END_TEST

START_TEST(test_same_host_deferred)
{
	struct fx f;
	struct store_msg a = msg("m-host-a", "cattle-00e5");
	struct store_msg b = msg("m-host-b", "cattle-00e5");
	struct store_msg c = msg("m-host-c", "cattle-00e6");
	struct admit_rules r = rules(3, 0);
	struct store_verdict va, vb, vc;

	fx_open(&f);
	va = admit(f.s, &a, &r);
	ck_assert_int_eq(va.outcome, OUT_RESTARTED);
	vb = admit(f.s, &b, &r);
	ck_assert_int_eq(vb.outcome, OUT_HELD);
	ck_assert_int_eq(count_restarts(f.dir, "m-host-b"), 0);
	/* Deferred is not an attempt. */
	ck_assert_int_eq(q_int(f.dir, "SELECT attempts FROM messages "
	    "WHERE msg_id = ?1", "m-host-b"), 0);
	/* Another host is not held up. */
	vc = admit(f.s, &c, &r);
	ck_assert_int_eq(vc.outcome, OUT_RESTARTED);

	finish(f.s, &a, &r, &va, 0, NULL);
	vb = admit(f.s, &b, &r);
	ck_assert_int_eq(vb.outcome, OUT_RESTARTED);
	ck_assert_uint_eq(vb.attempts, 1);
	expect_state(f.dir, "m-host-b", "restarting");
	fx_close(&f);
}
END_TEST

START_TEST(test_same_host_in_one_transaction)
{
	/* Group commit: two messages for one host in one batch. */
	struct fx f;
	struct store_msg a = msg("m-txn-a", "cattle-00f7");
	struct store_msg b = msg("m-txn-b", "cattle-00f7");
	struct admit_rules r = rules(3, 0);
	struct store_verdict va, vb, va2;

	fx_open(&f);
	ck_assert_int_eq(store_begin(f.s), 0);
	ck_assert_int_eq(store_admit(f.s, &a, &r, &va), 0);
	ck_assert_int_eq(store_admit(f.s, &b, &r, &vb), 0);
	ck_assert_int_eq(store_admit(f.s, &a, &r, &va2), 0);
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(va.outcome, OUT_RESTARTED);
	ck_assert_int_eq(vb.outcome, OUT_HELD);
	ck_assert_int_eq(va2.outcome, OUT_HELD);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts "
	    "WHERE host = 'cattle-00f7'", NULL), 1);
	fx_close(&f);
}
END_TEST

/* Lost attempts --------------------------------------------------------- */

/* Leave msg_id "restarting" under an owner that no longer runs. */
static void
leave_restarting(const char *dir, const struct store_msg *m,
    const struct admit_rules *r)
{
	struct store *dead = open_as(dir, DEAD_OWNER, 2000);
	struct store_verdict v = admit(dead, m, r);
	char buf[64];

	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	store_close(dead);
	expect_state(dir, m->msg_id, "restarting");
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), dir,
	    "SELECT owner FROM messages WHERE msg_id = ?1", m->msg_id));
	ck_assert_str_eq(buf, DEAD_OWNER);
}

START_TEST(test_lost_attempt_retried)
{
	struct fx f;
	struct store_msg m = msg("m-lost", "cattle-0108");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char buf[300];

	fresh_dir(f.dir, sizeof(f.dir));
	leave_restarting(f.dir, &m, &r);
	store_owner_self(f.owner, sizeof(f.owner));
	f.s = open_as(f.dir, f.owner, 2000);

	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_FAILED);
	ck_assert_uint_eq(v.attempts, 1);
	ck_assert_msg(strstr(v.error, "worker died") != NULL, "error: %s",
	    v.error);
	expect_state(f.dir, "m-lost", "failed");
	/* The old attempt is closed as lost; no new attempt started. */
	ck_assert_int_eq(count_restarts(f.dir, "m-lost"), 1);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT outcome FROM restarts WHERE msg_id = ?1", "m-lost"));
	ck_assert_str_eq(buf, "lost");
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts WHERE "
	    "msg_id = ?1 AND finished IS NOT NULL", "m-lost"), 1);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM failures_last_hour"
	    " WHERE msg_id = ?1", "m-lost"), 1);
	ck_assert_int_eq(count_dead(f.dir, "m-lost"), 0);

	/* The redelivery after the backoff is the second attempt. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	ck_assert_uint_eq(v.attempts, 2);
	ck_assert_int_eq(count_restarts(f.dir, "m-lost"), 2);
	fx_close(&f);
}
END_TEST

START_TEST(test_lost_attempt_dead)
{
	struct fx f;
	struct store_msg m = msg("m-lost1", "cattle-0109");
	struct admit_rules r = rules(1, 0);
	struct store_verdict v;
	char buf[300];

	fresh_dir(f.dir, sizeof(f.dir));
	leave_restarting(f.dir, &m, &r);
	store_owner_self(f.owner, sizeof(f.owner));
	f.s = open_as(f.dir, f.owner, 2000);

	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DEAD);
	expect_state(f.dir, "m-lost1", "dead");
	ck_assert_int_eq(count_dead(f.dir, "m-lost1"), 1);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT reason FROM dead_letters WHERE msg_id = ?1", "m-lost1"));
	ck_assert_msg(strstr(buf, "worker died") != NULL, "reason: %s", buf);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT outcome FROM restarts WHERE msg_id = ?1", "m-lost1"));
	ck_assert_str_eq(buf, "lost");
	ck_assert_int_eq(count_restarts(f.dir, "m-lost1"), 1);

	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_restarts(f.dir, "m-lost1"), 1);
	fx_close(&f);
}
END_TEST

START_TEST(test_dead_owner_does_not_hold_host)
{
	struct fx f;
	struct store_msg a = msg("m-orphan-a", "cattle-010a");
	struct store_msg b = msg("m-orphan-b", "cattle-010a");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;

	fresh_dir(f.dir, sizeof(f.dir));
	leave_restarting(f.dir, &a, &r);
	store_owner_self(f.owner, sizeof(f.owner));
	f.s = open_as(f.dir, f.owner, 2000);

	v = admit(f.s, &b, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	ck_assert_uint_eq(v.attempts, 1);
	expect_state(f.dir, "m-orphan-b", "restarting");
	fx_close(&f);
}
END_TEST

/* min_interval ---------------------------------------------------------- */

START_TEST(test_min_interval_skips)
{
	struct fx f;
	struct store_msg a = msg("m-min-a", "cattle-020a");
	struct store_msg b = msg("m-min-b", "cattle-020a");
	struct store_msg c = msg("m-min-c", "cattle-020a");
	struct store_msg d = msg("m-min-d", "cattle-020b");
	struct admit_rules r = rules(3, 60000);
	struct store_verdict v;

	clock_set_fake(5000000);
	fx_open(&f);
	v = admit(f.s, &a, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	clock_advance(2000);
	finish(f.s, &a, &r, &v, 0, NULL);

	clock_advance(30000);
	v = admit(f.s, &b, &r);
	ck_assert_int_eq(v.outcome, OUT_SKIPPED);
	expect_state(f.dir, "m-min-b", "skipped");
	ck_assert_int_eq(count_restarts(f.dir, "m-min-b"), 0);
	/* Skipped is final: the redelivery is a duplicate. */
	v = admit(f.s, &b, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);

	/* Other hosts are not affected. */
	v = admit(f.s, &d, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);

	/* Still within 60 s of the finish: skipped. */
	clock_advance(29000);
	v = admit(f.s, &c, &r);
	ck_assert_int_eq(v.outcome, OUT_SKIPPED);

	/* 60 s after the finish: allowed again. */
	clock_advance(1001);
	c = msg("m-min-e", "cattle-020a");
	v = admit(f.s, &c, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	fx_close(&f);
	clock_set_fake(-1);
}
END_TEST

/*
 * Wall-clock steps: max_per_minute and min_interval judge this boot's
 * rows on the monotonic clock, so a step back does not count the rows
 * "from the future" for an hour, and a step forward releases nothing.
 */
START_TEST(test_clock_steps)
{
	struct fx f;
	struct admit_rules r = rules(3, 3600000);
	struct store_msg a = msg("m-step-a", "cattle-030a");
	struct store_msg b = msg("m-step-b", "cattle-030b");
	struct store_msg c = msg("m-step-c", "cattle-030c");
	struct store_msg a2 = msg("m-step-a2", "cattle-030a");
	struct store_verdict v;

	r.max_per_minute = 2;
	clock_set_fake(7000000);
	fx_open(&f);
	v = admit(f.s, &a, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	finish(f.s, &a, &r, &v, 0, NULL);
	v = admit(f.s, &b, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	finish(f.s, &b, &r, &v, 0, NULL);

	/* Forward an hour: still two restarts in this minute, and cattle-030a
	 * was restarted seconds ago, not an hour ago. */
	clock_step_wall(3600000);
	v = admit(f.s, &c, &r);
	ck_assert_int_eq(v.outcome, OUT_HELD);
	ck_assert_int_eq(v.hold, HOLD_RATE);
	ck_assert_int_gt(v.retry, 50000);
	ck_assert_int_le(v.retry, 60000);
	clock_advance(61000);
	v = admit(f.s, &a2, &r);
	ck_assert_int_eq(v.outcome, OUT_SKIPPED);

	/* Back two hours: the rows now look an hour in the future; a minute
	 * after them the window is free again all the same. */
	clock_step_wall(-7200000);
	v = admit(f.s, &c, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	fx_close(&f);
	clock_step_wall(3600000);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_min_interval_survives_reopen)
{
	/* "from SQLite, so a restart of mandrilld does not reset it" */
	struct fx f;
	struct store_msg a = msg("m-mr-a", "cattle-030a");
	struct store_msg b = msg("m-mr-b", "cattle-030a");
	struct admit_rules r = rules(3, 60000);
	struct store_verdict v;

	clock_set_fake(7000000);
	fx_open(&f);
	v = admit(f.s, &a, &r);
	finish(f.s, &a, &r, &v, 0, NULL);
	fx_close(&f);
	clock_advance(10000);
	f.s = open_as(f.dir, f.owner, 2000);
	v = admit(f.s, &b, &r);
	ck_assert_int_eq(v.outcome, OUT_SKIPPED);
	fx_close(&f);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_min_interval_zero)
{
	struct fx f;
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char id[32];

	clock_set_fake(1000);
	fx_open(&f);
	for (int i = 0; i < 5; i++) {
		struct store_msg m;

		snprintf(id, sizeof(id), "m-zero-%d", i);
		m = msg(id, "cattle-040a");
		v = admit(f.s, &m, &r);
		ck_assert_int_eq(v.outcome, OUT_RESTARTED);
		finish(f.s, &m, &r, &v, 0, NULL);
	}
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts WHERE "
	    "host = 'cattle-040a' AND outcome = 'restarted'", NULL), 5);
	fx_close(&f);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_failed_restart_does_not_start_min_interval)
{
	/* Only a successful restart counts as the host's last restart. */
	struct fx f;
	struct store_msg a = msg("m-fi-a", "cattle-050a");
	struct store_msg b = msg("m-fi-b", "cattle-050a");
	struct admit_rules r = rules(3, 60000);
	struct store_verdict v;

	clock_set_fake(9000000);
	fx_open(&f);
	v = admit(f.s, &a, &r);
	finish(f.s, &a, &r, &v, 255, "timed out");
	clock_advance(1000);
	v = admit(f.s, &b, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	fx_close(&f);
	clock_set_fake(-1);
}
END_TEST

/* Invalid messages ------------------------------------------------------ */

START_TEST(test_invalid_without_msg_id)
{
	static const char bytes[] = "\xff\xfe{\"msg_id\": \x80\x00 tail";
	const size_t blen = sizeof(bytes) - 1;
	struct fx f;
	struct store_msg m;
	struct store_verdict v;
	sqlite3 *db;
	sqlite3_stmt *st;

	fx_open(&f);
	memset(&m, 0, sizeof(m));
	m.msg_id = NULL;
	m.broker_id = "broker-77";
	m.payload = bytes;
	m.payload_len = blen;
	m.delivery = 1;
	ck_assert_int_eq(store_begin(f.s), 0);
	ck_assert_int_eq(store_invalid(f.s, &m, "payload is not JSON", &v), 0);
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(v.outcome, OUT_INVALID);

	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages", NULL),
	    0);
	db = raw_open(f.dir);
	st = raw_query(db, "SELECT broker_id, reason, payload, msg_id "
	    "FROM dead_letters", NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "broker-77");
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 1),
	    "payload is not JSON");
	ck_assert_int_eq(sqlite3_column_type(st, 2), SQLITE_BLOB);
	ck_assert_int_eq(sqlite3_column_bytes(st, 2), (int)blen);
	ck_assert_mem_eq(sqlite3_column_blob(st, 2), bytes, blen);
	ck_assert_int_eq(sqlite3_column_type(st, 3), SQLITE_NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	fx_close(&f);
}
END_TEST

START_TEST(test_invalid_with_msg_id)
{
	struct fx f;
	struct store_msg m = msg("m-inv", "bad_host!");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char buf[128];

	fx_open(&f);
	ck_assert_int_eq(store_begin(f.s), 0);
	ck_assert_int_eq(store_invalid(f.s, &m, "host name is not RFC 1123",
	    &v), 0);
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(v.outcome, OUT_INVALID);
	expect_state(f.dir, "m-inv", "invalid");
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT error FROM messages WHERE msg_id = ?1", "m-inv"));
	ck_assert_str_eq(buf, "host name is not RFC 1123");
	ck_assert_int_eq(count_dead(f.dir, "m-inv"), 1);
	ck_assert_int_eq(count_restarts(f.dir, "m-inv"), 0);

	/* Invalid is final: redelivered, it is a duplicate, not restarted. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_restarts(f.dir, "m-inv"), 0);
	ck_assert_int_eq(store_begin(f.s), 0);
	ck_assert_int_eq(store_invalid(f.s, &m, "host name is not RFC 1123",
	    &v), 0);
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	ck_assert_int_eq(count_dead(f.dir, "m-inv"), 1);
	fx_close(&f);
}
END_TEST

START_TEST(test_invalid_keeps_attempts)
{
	/*
	 * A failed message whose retry no longer validates (reload): the bad
	 * copy is dead-lettered by itself, and the row stays as it was for
	 * the next good copy of the message.
	 */
	struct fx f;
	struct store_msg m = msg("m-inv-failed", "cattle-061a");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	char buf[128];

	fx_open(&f);
	v = admit(f.s, &m, &r);
	finish(f.s, &m, &r, &v, 1, "exit status 1");
	ck_assert_int_eq(v.outcome, OUT_FAILED);
	/* The worker passes the reason in the verdict it fills. */
	snprintf(v.error, sizeof(v.error), "host not allowed");
	ck_assert_int_eq(store_begin(f.s), 0);
	ck_assert_int_eq(store_invalid(f.s, &m, v.error, &v), 0);
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(v.outcome, OUT_INVALID);
	ck_assert_str_eq(v.error, "host not allowed");
	expect_state(f.dir, "m-inv-failed", "failed");
	ck_assert_int_eq(q_int(f.dir, "SELECT attempts FROM messages "
	    "WHERE msg_id = ?1", "m-inv-failed"), 1);
	ck_assert_ptr_nonnull(q_text(buf, sizeof(buf), f.dir,
	    "SELECT reason FROM dead_letters WHERE msg_id = ?1",
	    "m-inv-failed"));
	ck_assert_str_eq(buf, "host not allowed");
	fx_close(&f);
}
END_TEST

START_TEST(test_invalid_while_restarting)
{
	/* A bad copy does not undo a restart a live worker is running. */
	struct fx f;
	struct store_msg m = msg("m-inv-busy", "cattle-062a");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v, vi;

	fx_open(&f);
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	ck_assert_int_eq(store_begin(f.s), 0);
	ck_assert_int_eq(store_invalid(f.s, &m, "host not allowed", &vi), 0);
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(vi.outcome, OUT_HELD);
	expect_state(f.dir, "m-inv-busy", "restarting");
	ck_assert_int_eq(count_dead(f.dir, "m-inv-busy"), 0);
	/* The running restart still records its outcome. */
	finish(f.s, &m, &r, &v, 0, NULL);
	expect_state(f.dir, "m-inv-busy", "restarted");
	fx_close(&f);
}
END_TEST

START_TEST(test_invalid_after_final_is_duplicate)
{
	struct fx f;
	struct store_msg m = msg("m-inv-final", "cattle-060a");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;

	fx_open(&f);
	v = admit(f.s, &m, &r);
	finish(f.s, &m, &r, &v, 0, NULL);
	ck_assert_int_eq(store_begin(f.s), 0);
	ck_assert_int_eq(store_invalid(f.s, &m, "host not allowed", &v), 0);
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(v.outcome, OUT_DUPLICATE);
	expect_state(f.dir, "m-inv-final", "restarted");
	ck_assert_int_eq(count_dead(f.dir, "m-inv-final"), 0);
	fx_close(&f);
}
END_TEST

/* Transactions ---------------------------------------------------------- */

START_TEST(test_rollback_persists_nothing)
{
	struct fx f;
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;

	fx_open(&f);
	ck_assert_int_eq(store_begin(f.s), 0);
	for (int i = 0; i < 200; i++) {
		char id[32], host[32];
		struct store_msg m;

		snprintf(id, sizeof(id), "m-rb-%d", i);
		snprintf(host, sizeof(host), "cattle-%04x", i);
		m = msg(id, host);
		ck_assert_int_eq(store_admit(f.s, &m, &r, &v), 0);
		ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	}
	store_rollback(f.s);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages", NULL),
	    0);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM restarts", NULL),
	    0);

	/* The store is usable after a rollback, and commits atomically. */
	ck_assert_int_eq(store_begin(f.s), 0);
	for (int i = 0; i < 200; i++) {
		char id[32], host[32];
		struct store_msg m;

		snprintf(id, sizeof(id), "m-rb-%d", i);
		snprintf(host, sizeof(host), "cattle-%04x", i);
		m = msg(id, host);
		ck_assert_int_eq(store_admit(f.s, &m, &r, &v), 0);
		ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	}
	ck_assert_int_eq(store_commit(f.s), 0);
	ck_assert_int_eq(q_int(f.dir, "SELECT count(*) FROM messages "
	    "WHERE state = 'restarting'", NULL), 200);
	fx_close(&f);
}
END_TEST

START_TEST(test_locked_database)
{
	struct fx f;
	struct store_msg m = msg("m-locked", "cattle-070a");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;
	sqlite3 *db;

	fresh_dir(f.dir, sizeof(f.dir));
	store_owner_self(f.owner, sizeof(f.owner));
	f.s = open_as(f.dir, f.owner, 50);

	db = raw_open(f.dir);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(store_begin(f.s), -1);
	ck_assert_ptr_nonnull(store_errmsg(f.s));
	ck_assert_msg(store_errmsg(f.s)[0] != '\0', "empty error message");
	ck_assert_msg(strstr(store_errmsg(f.s), "lock") != NULL,
	    "error does not say the database is locked: %s",
	    store_errmsg(f.s));
	store_rollback(f.s);
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	/* Once the other writer is gone the store works again. */
	v = admit(f.s, &m, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	fx_close(&f);
}
END_TEST

START_TEST(test_two_stores_share_decisions)
{
	/* Two live workers on one database: the host lock holds across. */
	struct fx f;
	struct store *other;
	struct store_msg a = msg("m-two-a", "cattle-080a");
	struct store_msg b = msg("m-two-b", "cattle-080a");
	struct admit_rules r = rules(3, 0);
	struct store_verdict v;

	fx_open(&f);
	other = open_as(f.dir, f.owner, 2000);
	v = admit(f.s, &a, &r);
	ck_assert_int_eq(v.outcome, OUT_RESTARTED);
	ck_assert_int_eq(admit(other, &a, &r).outcome, OUT_HELD);
	ck_assert_int_eq(admit(other, &b, &r).outcome, OUT_HELD);
	finish(f.s, &a, &r, &v, 0, NULL);
	ck_assert_int_eq(admit(other, &a, &r).outcome, OUT_DUPLICATE);
	ck_assert_int_eq(admit(other, &b, &r).outcome, OUT_RESTARTED);
	store_close(other);
	fx_close(&f);
}
END_TEST

START_TEST(test_busy_timeout_real_time)
{
	/*
	 * Regression (fixed): worker/store.c busy_wait() measured busy_timeout with
	 * clock_now(), the clock tests drive.  With the fake clock set (as
	 * the min_interval tests do) time never advances inside the busy
	 * handler, so a locked database makes store_begin() wait forever
	 * instead of failing after busy_timeout.  The wait is real time
	 * (usleep): it should be measured on the real monotonic clock.
	 * Checked in a child so that the hang costs 3 s, not the timeout.
	 */
	struct fx f;
	sqlite3 *db;
	pid_t pid;
	int ready[2], go[2], status = 0, done = 0;
	char c = 0;

	fx_open(&f);
	fx_close(&f);
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	if ((pid = fork()) == 0) {
		/* Its own connection, opened before the lock is taken. */
		struct store_opts o = { .state_dir = f.dir,
		    .synchronous = STORE_SYNC_NORMAL, .busy_timeout = 50,
		    .owner = f.owner };
		char err[CONF_ERR_MAX];
		struct store *s = store_open(&o, err, sizeof(err));

		if (s == NULL || write(ready[1], "r", 1) != 1 ||
		    read(go[0], &c, 1) != 1)
			_exit(2);
		clock_set_fake(1000);
		_exit(store_begin(s) == -1 ? 0 : 1);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	db = raw_open(f.dir);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	for (int i = 0; i < 300 && !done; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			done = 1;
		else
			usleep(10000);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	ck_assert_msg(done, "store_begin() on a locked database still waiting "
	    "after 3 s (busy_timeout 50 ms) with the fake clock set");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "store_begin() on a locked database did not fail (status %d)",
	    status);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = tcase_create("open");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_open_creates_db);
	tcase_add_test(tc, test_open_mode_ignores_umask);
	tcase_add_test(tc, test_open_schema_objects);
	tcase_add_test(tc, test_reopen_keeps_data);
	tcase_add_test(tc, test_open_refuses_newer_schema);
	tcase_add_test(tc, test_open_migrates_v1);
	suite_add_tcase(s, tc);

	tc = tcase_create("owner");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_owner_self);
	tcase_add_test(tc, test_owner_other_process);
	suite_add_tcase(s, tc);

	tc = tcase_create("admit");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_admit_new);
	tcase_add_test(tc, test_finish_success_then_duplicate);
	tcase_add_test(tc, test_dry_run_state);
	tcase_add_test(tc, test_hosts_row);
	tcase_add_test(tc, test_prune);
	tcase_add_test(tc, test_retry_dead);
	tcase_add_test(tc, test_failures_until_dead);
	tcase_add_test(tc, test_same_msg_in_progress_deferred);
	tcase_add_test(tc, test_same_host_deferred);
	tcase_add_test(tc, test_same_host_in_one_transaction);
	tcase_add_test(tc, test_two_stores_share_decisions);
	suite_add_tcase(s, tc);

	tc = tcase_create("lost");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_lost_attempt_retried);
	tcase_add_test(tc, test_lost_attempt_dead);
	tcase_add_test(tc, test_dead_owner_does_not_hold_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("min_interval");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_min_interval_skips);
	tcase_add_test(tc, test_clock_steps);
	tcase_add_test(tc, test_min_interval_survives_reopen);
	tcase_add_test(tc, test_min_interval_zero);
	tcase_add_test(tc, test_failed_restart_does_not_start_min_interval);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_invalid_without_msg_id);
	tcase_add_test(tc, test_invalid_with_msg_id);
	tcase_add_test(tc, test_invalid_after_final_is_duplicate);
	tcase_add_test(tc, test_invalid_keeps_attempts);
	tcase_add_test(tc, test_invalid_while_restarting);
	suite_add_tcase(s, tc);

	tc = tcase_create("transaction");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_rollback_persists_nothing);
	tcase_add_test(tc, test_locked_database);
	tcase_add_test(tc, test_busy_timeout_real_time);
	suite_add_tcase(s, tc);
	return s;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
main(void)
{
	SRunner *sr;
	int failed;

	snprintf(root, sizeof(root), "/tmp/check_store-XXXXXX");
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	sr = srunner_create(store_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
