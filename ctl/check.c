/*
 * check: would each host be restarted now, and if not, which rule stops
 * it.  The rules are judged in the worker's order (admit.c): the name,
 * the allow and deny globs, the pause (mandrillctl's, enabled = no, or
 * the error budget's), the window, a restart of the host already
 * running, min_interval, max_concurrent, max_concurrent_per_group,
 * max_per_minute.  The pause and the budget come from the running
 * mandrilld, the rest from the configuration file and the database,
 * read-only.  A group named by a request's payload is not known here:
 * the host's group is the one [restart] group gives it.  It is a
 * preview: the worker's verdict, made in a transaction, is the one that
 * counts.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "argv.h"
#include "clock.h"
#include "ctl.h"
#include "duration.h"
#include "hostname.h"
#include "window.h"

struct verdict {
	const char	*what;		/* "go", "invalid", "held", "skipped" */
	char		 why[512];
	char		 command[1024];
	char		 check[1024];	/* [restart] check, or "" */
	char		 group[HOSTNAME_MAX + 1];	/* the host's group, or "" */
};

/* The command line that would run, quoted where a shell would need it. */
static void
command_line(const struct conf *c, const char *template, const char *host,
    char *buf, size_t len)
{
	char err[160], **tmpl, **argv;
	size_t off = 0;

	buf[0] = '\0';
	if (c->mode != RESTART_COMMAND) {
		snprintf(buf, len, "(mode = sim: a simulated restart)");
		return;
	}
	if ((tmpl = argv_split(template, err, sizeof(err))) == NULL) {
		snprintf(buf, len, "(%s)", err);
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
judge(const struct conf *c, const json_t *st, sqlite3 *db,
    const struct window *w, const regex_t *re, const char *name,
    struct verdict *v)
{
	char host[HOSTNAME_MAX + 1], glob[256], a[32];
	int64_t opens;
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
	command_line(c, c->command, host, v->command, sizeof(v->command));
	if (c->check[0] != '\0')
		command_line(c, c->check, host, v->check, sizeof(v->check));
	if (re != NULL)
		conf_group_of(re, host, v->group, sizeof(v->group));
	v->what = "held";
	if (json_is_true(json_object_get(st, "paused"))) {
		snprintf(v->why, sizeof(v->why), "paused: %s", json_string_value(
		    json_object_get(st, "pause_reason")));
		return;
	}
	if (!window_open_at(w, time(NULL), &opens)) {
		char at[48] = "it does not open within a week";
		time_t t = time(NULL) + (time_t)opens;
		struct tm tm;

		if (opens >= 0 && localtime_r(&t, &tm) != NULL)
			strftime(at, sizeof(at), "opens %a %Y-%m-%d %H:%M %Z", &tm);
		snprintf(v->why, sizeof(v->why), "window %.200s%s%.64s: %s",
		    c->window, c->timezone[0] ? " " : "", c->timezone, at);
		return;
	}
	if (query_host(db, host, v->group[0] ? v->group : NULL, &f) < 0) {
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
	if (c->max_concurrent_per_group > 0 && v->group[0] != '\0' &&
	    f.group_running >= c->max_concurrent_per_group) {
		snprintf(v->why, sizeof(v->why), "max_concurrent_per_group %u: "
		    "%" PRId64 " restarts running in group %s",
		    c->max_concurrent_per_group, f.group_running, v->group);
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
		json_t *o = json_pack("{s:s, s:b, s:s, s:s, s:s, s:s, s:s}",
		    "host", host, "restart", strcmp(v->what, "go") == 0,
		    "verdict", v->what, "why", v->why, "command", v->command,
		    "check", v->check, "group", v->group);
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
	if (v->check[0] != '\0')
		printf("  then check: %s\n", v->check);
	if (v->group[0] != '\0')
		printf("  group: %s\n", v->group);
}

int
check_hosts(const struct ctl *c, int n, char **hosts)
{
	json_t *req = json_pack("{s:s}", "cmd", "status"), *st = NULL;
	char err[512], budget[160];
	struct verdict v;
	struct window w;
	regex_t re;
	sqlite3 *db;
	int status, all = 1, has_re = c->conf.group[0] != '\0';

	/* mandrilld -t has judged them; read them as the workers do. */
	if (window_parse(c->conf.window, &w, err, sizeof(err)) < 0 ||
	    window_zone_check(c->conf.timezone, err, sizeof(err)) < 0 ||
	    conf_group_regex(c->conf.group, &re, err, sizeof(err)) < 0) {
		fprintf(stderr, "mandrillctl: %s: %s\n", c->conf_path, err);
		return EX_CONFIG;
	}
	window_zone_use(c->conf.timezone);
	status = ctl_request(c, req, &st);
	json_decref(req);
	if (status != 0 || (db = query_open(c, &status)) == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		judge(&c->conf, st, db, &w, has_re ? &re : NULL, hosts[i], &v);
		print_verdict(c, hosts[i], &v);
		all = all && strcmp(v.what, "go") == 0;
	}
	/* Not a verdict until it is spent (then it is the pause's). */
	if (!c->json && ctl_budget(st, budget, sizeof(budget)) != NULL)
		printf("%s\n", budget);
	sqlite3_close(db);
	status = all ? 0 : EX_NO;
out:
	json_decref(st);
	if (has_re)
		regfree(&re);
	return status;
}
