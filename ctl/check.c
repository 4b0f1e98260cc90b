/*
 * check: would each host be restarted now, and if not, which rule stops
 * it.  The rules are judged in the worker's order (admit.c): the name,
 * the allow and deny globs, the pause, a restart of the host already
 * running, min_interval, max_concurrent, max_per_minute.  The pause
 * comes from the running mandrilld, the rest from the configuration
 * file and the database, read-only.  It is a preview: the worker's
 * verdict, made in a transaction, is the one that counts.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "argv.h"
#include "clock.h"
#include "ctl.h"
#include "duration.h"
#include "hostname.h"

struct verdict {
	const char	*what;		/* "go", "invalid", "held", "skipped" */
	char		 why[512];
	char		 command[1024];
};

/* The command line that would run, quoted where a shell would need it. */
static void
command_line(const struct conf *c, const char *host, char *buf, size_t len)
{
	char err[160], **tmpl, **argv;
	size_t off = 0;

	buf[0] = '\0';
	if (c->mode != RESTART_COMMAND) {
		snprintf(buf, len, "(mode = sim: a simulated restart)");
		return;
	}
	if ((tmpl = argv_split(c->command, err, sizeof(err))) == NULL) {
		snprintf(buf, len, "(command: %s)", err);
		return;
	}
	if ((argv = argv_expand(tmpl, host)) != NULL)
		for (char **a = argv; *a != NULL && off < len; a++) {
			int plain = **a != '\0' && strspn(*a, "abcdefghijklmnop"
			    "qrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "-_./=:@,+") == strlen(*a);

			off += (size_t)snprintf(buf + off, len - off, "%s%s%s%s",
			    a == argv ? "" : " ", plain ? "" : "'", *a,
			    plain ? "" : "'");
		}
	argv_free(argv);
	argv_free(tmpl);
	if (c->dry_run && off < len)
		snprintf(buf + off, len - off, "  (dry_run = yes: recorded, "
		    "not run)");
}

static void
judge(const struct conf *c, const json_t *st, sqlite3 *db, const char *name,
    struct verdict *v)
{
	char host[HOSTNAME_MAX + 1], glob[256], a[32];
	const char *why;
	struct host_facts f;

	memset(v, 0, sizeof(*v));
	v->what = "invalid";
	if ((why = hostname_check(name, strlen(name))) != NULL) {
		snprintf(v->why, sizeof(v->why), "not an RFC 1123 name: %s",
		    why);
		return;
	}
	for (size_t i = 0; i <= strlen(name); i++)
		host[i] = (char)tolower((unsigned char)name[i]);
	if (!hostname_match(host, c->allow, glob, sizeof(glob))) {
		snprintf(v->why, sizeof(v->why), "no allow glob matches%s",
		    c->allow[0] == '\0' ? " ([restart] allow is empty)" : "");
		return;
	}
	if (hostname_match(host, c->deny, glob, sizeof(glob))) {
		snprintf(v->why, sizeof(v->why), "deny glob %s", glob);
		return;
	}
	command_line(c, host, v->command, sizeof(v->command));
	v->what = "held";
	if (json_is_true(json_object_get(st, "paused"))) {
		snprintf(v->why, sizeof(v->why), "paused: %s", json_string_value(
		    json_object_get(st, "pause_reason")));
		return;
	}
	if (query_host(db, host, &f) < 0) {
		snprintf(v->why, sizeof(v->why), "the database could not be "
		    "read");
		return;
	}
	if (f.busy_msg[0] != '\0') {
		snprintf(v->why, sizeof(v->why), "being restarted for msg_id "
		    "%s", f.busy_msg);
		return;
	}
	if (c->min_interval > 0 && f.last_ok_age >= 0 &&
	    f.last_ok_age < c->min_interval) {
		v->what = "skipped";
		snprintf(v->why, sizeof(v->why), "min_interval %s: restarted at "
		    "%s, again in %s", duration_fmt(c->min_interval, a,
		    sizeof(a)), f.last_ok, duration_fmt(c->min_interval -
		    f.last_ok_age, glob, sizeof(glob)));
		return;
	}
	if (c->max_concurrent > 0 && f.running >= c->max_concurrent) {
		snprintf(v->why, sizeof(v->why), "max_concurrent %u: %" PRId64
		    " restarts running", c->max_concurrent, f.running);
		return;
	}
	if (c->max_per_minute > 0 && f.last_minute >= c->max_per_minute) {
		snprintf(v->why, sizeof(v->why), "max_per_minute %u: %" PRId64
		    " restarts started in the last minute", c->max_per_minute,
		    f.last_minute);
		return;
	}
	v->what = "go";
}

static void
print_verdict(const struct ctl *c, const char *host, const struct verdict *v)
{
	if (c->json) {
		json_t *o = json_pack("{s:s, s:b, s:s, s:s, s:s}", "host", host,
		    "restart", strcmp(v->what, "go") == 0, "verdict", v->what,
		    "why", v->why, "command", v->command);
		char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

		if (text != NULL)
			puts(text);
		free(text);
		json_decref(o);
		return;
	}
	if (strcmp(v->what, "go") == 0)
		printf("%s: would be restarted now\n", host);
	else
		printf("%s: %s: %s\n", host, v->what, v->why);
	if (v->command[0] != '\0')
		printf("  command: %s\n", v->command);
}

int
check_hosts(const struct ctl *c, int n, char **hosts)
{
	json_t *req = json_pack("{s:s}", "cmd", "status"), *st = NULL;
	struct verdict v;
	sqlite3 *db;
	int status, all = 1;

	status = ctl_request(c, req, &st);
	json_decref(req);
	if (status != 0)
		return status;
	if ((db = query_open(c, &status)) == NULL) {
		json_decref(st);
		return status;
	}
	for (int i = 0; i < n; i++) {
		judge(&c->conf, st, db, hosts[i], &v);
		print_verdict(c, hosts[i], &v);
		all = all && strcmp(v.what, "go") == 0;
	}
	sqlite3_close(db);
	json_decref(st);
	return all ? 0 : EX_NO;
}
