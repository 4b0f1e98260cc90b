/*
 * query: what mandrillctl reads from the database, read-only.
 *
 * mandrilld never touches SQLite; mandrillctl reads it as an operator's
 * sqlite3 would, through the indexes and views of the schema, so that
 * every answer stays fast however long the history: a host's story by
 * messages_host and restarts_host, its last success by restarts_ok, what
 * runs now by messages_active.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "clock.h"
#include "ctl.h"
#include "duration.h"

#define BUSY_MS	2000

sqlite3 *
query_open(const struct ctl *c, int *status)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "mandrillctl: database %s: %s\n", c->db,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		*status = rc == SQLITE_CANTOPEN ? EX_NOINPUT : EX_IOERR;
		return NULL;
	}
	sqlite3_busy_timeout(db, BUSY_MS);
	return db;
}

static sqlite3_stmt *
prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "mandrillctl: %s: %s\n", sql,
		    sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

/*
 * Print every row of st (bound): the first bare columns as they are, the
 * others as name=value; NULLs are left out.
 */
static int
print_rows(sqlite3 *db, sqlite3_stmt *st, int json, const char *const *names,
    int bare, int *found)
{
	int ncol = sqlite3_column_count(st), rc;

	*found = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = json ? json_object() : NULL;

		(*found)++;
		for (int i = 0; i < ncol; i++) {
			if (json) {
				json_object_set_new(row, names[i],
				    sqlite3_column_type(st, i) == SQLITE_NULL ?
				    json_null() : sqlite3_column_type(st, i) ==
				    SQLITE_INTEGER ? json_integer(
				    sqlite3_column_int64(st, i)) :
				    json_string(col(st, i)));
			} else if (sqlite3_column_type(st, i) != SQLITE_NULL) {
				printf("%s%s%s%s", i > 0 ? "  " : "",
				    i >= bare ? names[i] : "", i >= bare ? "=" :
				    "",
				    col(st, i));
			}
		}
		if (json) {
			char *text = json_dumps(row, JSON_COMPACT);

			if (text != NULL)
				puts(text);
			free(text);
			json_decref(row);
		} else {
			putchar('\n');
		}
	}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "mandrillctl: query: %s\n", sqlite3_errmsg(db));
		return EX_IOERR;
	}
	return 0;
}

/* A listing: sql bound to (arg, limit), printed; found rows in *found. */
static int
list_rows(const struct ctl *c, const char *sql, const char *const *names,
    int bare, const char *arg, int limit, int *found)
{
	sqlite3_stmt *st;
	sqlite3 *db;
	int status;

	if ((db = query_open(c, &status)) == NULL)
		return status;
	if ((st = prepare(db, sql)) == NULL) {
		sqlite3_close(db);
		return EX_SOFTWARE;
	}
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit);
	status = print_rows(db, st, c->json, names, bare, found);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return status;
}

int
query_history(const struct ctl *c, const char *host, int limit)
{
	static const char *const names[] = { "at", "kind", "msg_id",
	    "attempt", "outcome", "ended", "detail" };
	static const char sql[] = "SELECT at, kind, msg_id, attempt, outcome,"
	    " ended, detail FROM host_history WHERE host = ?1"
	    " ORDER BY at DESC, kind DESC LIMIT ?2";
	int status, found;

	status = list_rows(c, sql, names, 2, host, limit, &found);
	if (status == 0 && found == 0 && !c->json)
		printf("no request for %s is recorded\n", host);
	return status;
}

/* --since: a duration ago (1h, 7d) or an ISO 8601 UTC time. */
static int
since_time(const char *since, char *buf, size_t len)
{
	int64_t ago;

	if (since == NULL) {
		snprintf(buf, len, "0000");
		return 0;
	}
	if (duration_parse(since, &ago) == 0) {
		clock_iso(clock_wall() - ago, buf, len);
		return 0;
	}
	if (strlen(since) >= 10 && strlen(since) < len && since[4] == '-' &&
	    since[7] == '-') {
		snprintf(buf, len, "%s", since);
		return 0;
	}
	return -1;
}

int
query_dead(const struct ctl *c, const char *since, int limit)
{
	static const char *const names[] = { "created", "msg_id", "reason",
	    "broker_id" };
	static const char sql[] = "SELECT created, msg_id, reason, broker_id"
	    " FROM dead_letters WHERE created >= ?1 ORDER BY id DESC LIMIT ?2";
	char from[40];
	int status, found;

	if (since_time(since, from, sizeof(from)) < 0) {
		fprintf(stderr, "mandrillctl: dead --since %s: not a duration "
		    "(1h, 7d) or an ISO 8601 time\n", since);
		return EX_USAGE;
	}
	status = list_rows(c, sql, names, 1, from, limit, &found);
	if (status == 0 && found == 0 && !c->json)
		printf("no dead letters%s%s\n", since ? " since " : "",
		    since ? from : "");
	return status;
}

/*
 * The first row of sql, with ?1 = text (or n when text is NULL) and
 * ?2 = n2; a statement without them leaves them unbound (SQLITE_RANGE).
 * Its first column as text in out, its last as a number in *num.  1 for
 * a row, 0 for none, -1 on error (printed).
 */
static int
one_row(sqlite3 *db, const char *sql, const char *text, int64_t n,
    int64_t n2, char *out, size_t outlen, int64_t *num)
{
	sqlite3_stmt *st = prepare(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	if (text != NULL)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, n);
	sqlite3_bind_int64(st, 2, n2);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out != NULL)
			snprintf(out, outlen, "%s", col(st, 0));
		if (num != NULL)
			*num = sqlite3_column_int64(st,	/* the last column */
			    sqlite3_column_count(st) - 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		fprintf(stderr, "mandrillctl: query: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	return rc == SQLITE_ROW;
}

/* This boot's id in boots, or 0: the minute's count is on its clock. */
static int64_t
this_boot(sqlite3 *db)
{
	char id[64];
	int64_t boot = 0;

	clock_boot_id(id, sizeof(id));
	if (one_row(db, "SELECT id FROM boots WHERE boot_id = ?1", id, 0, 0,
	    NULL, 0, &boot) <= 0)
		return 0;
	return boot;
}

int
query_host(sqlite3 *db, const char *host, const char *group,
    struct host_facts *f)
{
	int64_t boot;

	memset(f, 0, sizeof(*f));
	f->last_ok_age = -1;
	switch (one_row(db, "SELECT finished, CAST((julianday('now') -"
	    " julianday(finished)) * 86400000 AS INTEGER) FROM last_restart"
	    " WHERE host = ?1", host, 0, 0, f->last_ok,
	    sizeof(f->last_ok), &f->last_ok_age)) {
	case -1:
		return -1;
	case 0:
		f->last_ok_age = -1;
	}
	if (one_row(db, "SELECT msg_id FROM messages INDEXED BY"
	    " messages_active WHERE host = ?1 AND state = 'restarting'", host,
	    0, 0, f->busy_msg, sizeof(f->busy_msg), NULL) < 0 ||
	    one_row(db, "SELECT count(*) FROM messages INDEXED BY"
	    " messages_active WHERE state = 'restarting'", NULL, 0, 0, NULL,
	    0, &f->running) < 0)
		return -1;
	if (group != NULL && one_row(db, "SELECT count(*) FROM hosts h"
	    " INDEXED BY hosts_running JOIN messages m ON m.msg_id ="
	    " h.running_msg_id WHERE h.group_name = ?1 AND h.running_msg_id"
	    " IS NOT NULL AND m.state = 'restarting'", group, 0, 0, NULL, 0,
	    &f->group_running) < 0)
		return -1;
	if ((boot = this_boot(db)) > 0 &&
	    one_row(db, "SELECT count(*) FROM restarts WHERE boot = ?1 AND"
	    " started_mono > ?2", NULL, boot, clock_now() - 60000, NULL, 0,
	    &f->last_minute) < 0)
		return -1;
	return 0;
}

/*
 * retry MSG_ID: the dead letter's payload, as the worker kept it; the
 * message must be dead now (an invalid one has no payload to restart).
 * 0 with *payload (to free), or a sysexits status, said on stderr.
 */
int
query_dead_payload(const struct ctl *c, const char *msg_id, char **payload,
    size_t *len, int64_t *dead_id)
{
	sqlite3_stmt *st;
	char state[32] = "";
	int status = 0, rc;
	sqlite3 *db = query_open(c, &status);

	*payload = NULL;
	if (db == NULL)
		return status;
	switch (one_row(db, "SELECT state FROM messages WHERE msg_id = ?1",
	    msg_id, 0, 0, state, sizeof(state), NULL)) {
	case -1:
		sqlite3_close(db);
		return EX_IOERR;
	case 0:
		fprintf(stderr, "mandrillctl: retry: no message has msg_id "
		    "\"%s\"\n", msg_id);
		sqlite3_close(db);
		return EX_DATAERR;
	}
	if (strcmp(state, "dead") != 0) {
		fprintf(stderr, "mandrillctl: retry: msg_id %s is %s, not dead; "
		    "only a dead letter can be retried\n", msg_id, state);
		sqlite3_close(db);
		return EX_DATAERR;
	}
	/* The newest: the one the worker will reopen the message for. */
	if ((st = prepare(db, "SELECT payload, id FROM dead_letters WHERE"
	    " msg_id = ?1 ORDER BY id DESC LIMIT 1")) == NULL) {
		sqlite3_close(db);
		return EX_IOERR;
	}
	sqlite3_bind_text(st, 1, msg_id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 0) > 0) {
		*dead_id = sqlite3_column_int64(st, 1);
		*len = (size_t)sqlite3_column_bytes(st, 0);
		if ((*payload = malloc(*len + 1)) != NULL) {
			memcpy(*payload, sqlite3_column_blob(st, 0), *len);
			(*payload)[*len] = '\0';
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		fprintf(stderr, "mandrillctl: query: %s\n", sqlite3_errmsg(db));
		status = EX_IOERR;
	} else if (*payload == NULL && rc == SQLITE_ROW) {
		fprintf(stderr, "mandrillctl: retry: out of memory\n");
		status = EX_OSERR;
	}
	else if (*payload == NULL) {
		fprintf(stderr, "mandrillctl: retry: msg_id %s is dead but its "
		    "payload was not kept\n", msg_id);
		status = EX_DATAERR;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return status;
}
