/*
 * status: mandrilld's status answer, for a person.  Scripts use --json,
 * whose fields are documented in mandrillctl(8).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "duration.h"

static json_int_t
num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *
str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "?";
}

static void
print_held(const json_t *held)
{
	const char *key;
	json_t *v;
	int first = 1;

	printf("held %" JSON_INTEGER_FORMAT, num(held, "total"));
	json_object_foreach((json_t *)held, key, v) {
		if (strcmp(key, "total") == 0 || json_integer_value(v) == 0)
			continue;
		printf("%s%s %" JSON_INTEGER_FORMAT, first ? " (" : ", ", key,
		    json_integer_value(v));
		first = 0;
	}
	printf("%s\n", first ? "" : ")");
}

const char *
ctl_budget(const json_t *st, char *buf, size_t len)
{
	const json_t *b = json_object_get(st, "budget");
	char win[32];

	if (!json_is_object(b))
		return NULL;
	snprintf(buf, len, "error budget: %" JSON_INTEGER_FORMAT " of %"
	    JSON_INTEGER_FORMAT " attempts failed in the last %s "
	    "(max_failures %s)", num(b, "failed"), num(b, "attempts"),
	    duration_fmt(num(b, "failure_window_ms"), win, sizeof(win)),
	    str(b, "max_failures"));
	return buf;
}

void
ctl_print_status(const json_t *st)
{
	char budget[160];
	const json_t *w = json_object_get(st, "workers");
	const json_t *n = json_object_get(st, "counters");
	const json_t *out = json_object_get(n, "outcomes");
	char up[32], old[32];

	printf("mandrilld %s, pid %" JSON_INTEGER_FORMAT ", %s since %s (%s)\n",
	    str(st, "version"), num(st, "pid"), str(st, "state"),
	    str(st, "started"), duration_fmt(num(st, "uptime_ms"), up,
	    sizeof(up)));
	if (json_is_true(json_object_get(st, "paused")))
		printf("PAUSED: %s\n", str(st, "pause_reason"));
	printf("source %s; generation %" JSON_INTEGER_FORMAT ", workers %"
	    JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT "\n",
	    str(st, "source"), num(st, "generation"), num(w, "live"),
	    num(w, "target"));
	printf("in flight %" JSON_INTEGER_FORMAT ": on workers %"
	    JSON_INTEGER_FORMAT ", waiting for one %" JSON_INTEGER_FORMAT
	    "; oldest lease %s\n", num(st, "in_flight"),
	    num(st, "on_workers"), num(st, "waiting"),
	    duration_fmt(num(st, "oldest_lease_ms"), old, sizeof(old)));
	print_held(json_object_get(st, "held"));
	if (ctl_budget(st, budget, sizeof(budget)) != NULL)
		printf("%s\n", budget);
	if (json_is_object(json_object_get(st, "fleet"))) {
		const json_t *f = json_object_get(st, "fleet");
		const char *t = str(f, "trouble");

		printf("fleet: instance %s, %" JSON_INTEGER_FORMAT " grants held, "
		    "%" JSON_INTEGER_FORMAT " outcomes left to another instance; "
		    "Key-Value %s%s\n", str(f, "instance"), num(f, "grants"),
		    num(f, "not_owner"), *t ? "failing: " : "answers", t);
	}
	if (!json_is_true(json_object_get(st, "store_ok")))
		printf("the store cannot commit: pulling nothing\n");
	printf("pulled %" JSON_INTEGER_FORMAT ", acked %" JSON_INTEGER_FORMAT
	    " (restarted %" JSON_INTEGER_FORMAT ", skipped %"
	    JSON_INTEGER_FORMAT ", duplicate %" JSON_INTEGER_FORMAT ", dead %"
	    JSON_INTEGER_FORMAT ", invalid %" JSON_INTEGER_FORMAT "), nacked %"
	    JSON_INTEGER_FORMAT ", lost %" JSON_INTEGER_FORMAT
	    ", worker crashes %" JSON_INTEGER_FORMAT "\n", num(n, "pulled"),
	    num(n, "acked"), num(out, "restarted"), num(out, "skipped"),
	    num(out, "duplicate"), num(out, "dead"), num(out, "invalid"),
	    num(n, "nacked"), num(n, "lost"), num(n, "worker_crashes"));
}
