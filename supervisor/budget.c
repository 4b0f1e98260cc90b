/*
 * budget: a window of attempt ends, as a ring of their times.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "duration.h"

void
budget_init(struct budget *b)
{
	memset(b, 0, sizeof(*b));
}

void
budget_free(struct budget *b)
{
	free(b->at);
	budget_init(b);
}

void
budget_reset(struct budget *b)
{
	b->head = b->len = 0;
	b->failed = 0;
}

static int64_t
when(int64_t v)
{
	return v < 0 ? -v : v;
}

static int
push(struct budget *b, int64_t v)
{
	if (b->len == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		int64_t *at = malloc(cap * sizeof(*at));

		if (at == NULL)
			return -1;
		for (size_t i = 0; i < b->len; i++)
			at[i] = b->at[(b->head + i) % b->cap];
		free(b->at);
		b->at = at;
		b->cap = cap;
		b->head = 0;
	}
	b->at[(b->head + b->len++) % b->cap] = v;
	return 0;
}

/* Forget the attempts that left the window. */
static void
expire(struct budget *b, int64_t now, int64_t window)
{
	while (b->len > 0 && now - when(b->at[b->head]) >= window) {
		if (b->at[b->head] < 0)
			b->failed--;
		b->head = (b->head + 1) % b->cap;
		b->len--;
	}
}

void
budget_count(struct budget *b, int64_t now, int64_t window,
    unsigned *failed, size_t *attempts)
{
	expire(b, now, window);
	*failed = b->failed;
	*attempts = b->len;
}

int
budget_note(struct budget *b, int64_t now, int failed, unsigned max,
    int pct, int64_t window, char *why, size_t len)
{
	char d[32];
	int spent;

	if (max == 0)
		return 0;
	/* Times are kept negative for failures: 0 is never a time here. */
	if (now < 1)
		now = 1;
	expire(b, now, window);
	if (push(b, failed ? -now : now) < 0)
		return -1;
	if (failed)
		b->failed++;
	spent = pct ? b->len >= BUDGET_MIN_ATTEMPTS &&
	    (uint64_t)b->failed * 100 >= (uint64_t)max * b->len :
	    b->failed >= max;
	if (!spent || !failed)
		return 0;
	snprintf(why, len, "error budget: %u of %zu attempts failed in %s "
	    "(max_failures %u%s)", b->failed, b->len,
	    duration_fmt(window, d, sizeof(d)), max, pct ? "%" : "");
	return 1;
}
