/*
 * admit: the admission table of DESIGN.md's message flow, as code.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admit.h"

static void
decide(struct admit_decision *d, enum admit_verdict v, const char *fmt, ...)
{
	va_list ap;

	d->verdict = v;
	d->hold = HOLD_NONE;
	d->retry = 0;
	va_start(ap, fmt);
	vsnprintf(d->why, sizeof(d->why), fmt, ap);
	va_end(ap);
}

static void
hold(struct admit_decision *d, enum hold h, int64_t retry)
{
	d->verdict = AV_HELD;
	d->hold = h;
	d->retry = retry;
}

int
admit_is_final(const char *state)
{
	return !strcmp(state, "restarted") || !strcmp(state, "skipped") ||
	    !strcmp(state, "dead") || !strcmp(state, "invalid") ||
	    !strcmp(state, "dry-run");
}

int
admit_lost_is_dead(uint32_t attempts, const struct admit_rules *r)
{
	return attempts >= r->max_attempts;
}

int
admit_existing(const struct admit_row *row, struct admit_decision *d)
{
	decide(d, AV_NEXT, "");
	if (!row->found)
		return 0;
	if (admit_is_final(row->state)) {
		decide(d, AV_DUPLICATE, "already %s", row->state);
		return 1;
	}
	if (strcmp(row->state, "restarting") != 0)
		return 0;
	if (row->owner_alive) {
		decide(d, AV_HELD, "msg_id is being restarted by worker %s",
		    row->owner ? row->owner : "?");
		hold(d, HOLD_MSG_ID, ADMIT_MSGID_RETRY);
	} else
		decide(d, AV_LOST, "worker died during the restart; outcome "
		    "unknown");
	return 1;
}

void
admit_row(const struct admit_row *row, const char *host,
    const struct admit_rules *r, struct admit_decision *d)
{
	/* Never merged: the first request's row and retries stay its own. */
	if (row->found && row->host != NULL && host != NULL &&
	    strcmp(row->host, host) != 0) {
		decide(d, AV_CONFLICT, "msg_id conflict: it names host %s, "
		    "but was first seen for host %s", host, row->host);
		return;
	}
	if (admit_existing(row, d))
		return;
	if (r->max_crashes > 0 && row->crashes >= r->max_crashes)
		decide(d, AV_DEAD, "%" PRIu32 " workers lost while holding it "
		    "(max_crashes %" PRIu32 ")", row->crashes, r->max_crashes);
	else if (row->found && row->attempts >= r->max_attempts)
		decide(d, AV_DEAD, "no attempts left");
}

/* A wait as an operator reads it: 8s, 12m, 3h5m, 2d4h (rounded up). */
static const char *
roughly(int64_t ms, char *buf, size_t len)
{
	int64_t sec = (ms + 999) / 1000;

	int64_t min = (sec + 59) / 60, hours = (sec + 3599) / 3600;

	if (sec < 60)
		snprintf(buf, len, "%" PRId64 "s", sec);
	else if (min < 60)
		snprintf(buf, len, "%" PRId64 "m", min);
	else if (min < 24 * 60)
		snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", min / 60,
		    min % 60);
	else
		snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", hours / 24,
		    hours % 24);
	return buf;
}

void
admit_host(const struct admit_host *h, const char *host,
    const struct admit_rules *r, struct admit_decision *d)
{
	if (!r->enabled) {
		if (r->pause_reason[0] != '\0')
			decide(d, AV_HELD, "paused: %s", r->pause_reason);
		else
			decide(d, AV_HELD, "paused ([restart] enabled = no)");
		hold(d, HOLD_PAUSED, 0);
		return;
	}
	if (r->window_opens != 0) {
		char in[32];

		if (r->window_opens > 0)
			decide(d, AV_HELD, "outside the window (%s): opens in %s",
			    r->window, roughly(r->window_opens, in, sizeof(in)));
		else
			decide(d, AV_HELD, "outside the window (%s): it does not "
			    "open within a week", r->window);
		hold(d, HOLD_WINDOW, r->window_opens > 0 &&
		    r->window_opens < ADMIT_WINDOW_RETRY ? r->window_opens :
		    ADMIT_WINDOW_RETRY);
		return;
	}
	if (h->busy) {
		decide(d, AV_HELD, "host %s is being restarted for another "
		    "message", host);
		hold(d, HOLD_HOST, 0);
		return;
	}
	if (r->min_interval > 0 && h->last_ok_age >= 0 &&
	    h->last_ok_age < r->min_interval) {
		decide(d, AV_SKIPPED, "host %s restarted at %s, within "
		    "min_interval", host, h->last_ok ? h->last_ok : "?");
		return;
	}
	if (r->max_concurrent > 0 && h->running >= r->max_concurrent) {
		decide(d, AV_HELD, "%" PRIu32 " restarts running, "
		    "max_concurrent is %" PRIu32, h->running, r->max_concurrent);
		hold(d, HOLD_CONCURRENCY, 0);
		return;
	}
	if (r->max_per_group > 0 && h->group != NULL &&
	    h->group_running >= r->max_per_group) {
		decide(d, AV_HELD, "%" PRIu32 " restarts running in group %s, "
		    "max_concurrent_per_group is %" PRIu32, h->group_running,
		    h->group, r->max_per_group);
		hold(d, HOLD_GROUP, 0);
		return;
	}
	if (r->max_per_minute > 0 && h->last_minute >= r->max_per_minute) {
		decide(d, AV_HELD, "%" PRIu32 " restarts started in the last "
		    "minute, max_per_minute is %" PRIu32, h->last_minute,
		    r->max_per_minute);
		hold(d, HOLD_RATE, h->rate_free_in > 0 ? h->rate_free_in : 1000);
		return;
	}
	decide(d, AV_GO, "");
}
