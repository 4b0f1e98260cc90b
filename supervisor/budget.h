/*
 * budget: the error budget ([restart] max_failures within
 * failure_window).  The attempts that ended, as the workers reported
 * them, are kept for one window; when too many failed, mandrilld pauses
 * itself, as mandrillctl pause would, and says why.
 */
#ifndef MANDRILL_BUDGET_H
#define MANDRILL_BUDGET_H

#include <stddef.h>
#include <stdint.h>

/* A percentage is judged once the window holds this many attempts. */
#define BUDGET_MIN_ATTEMPTS	10

struct budget {
	int64_t		*at;		/* ms an attempt ended; < 0: it failed */
	size_t		 head, len, cap;
	unsigned	 failed;	/* in the window */
};

void budget_init(struct budget *b);
void budget_free(struct budget *b);
/* Forget every attempt (a resume starts the count again). */
void budget_reset(struct budget *b);
/*
 * An attempt ended at now (ms, monotonic), failed or not.  1 with why
 * filled in ("error budget: 4 of 10 attempts failed in 10m") when the
 * budget of max_failures (pct: a percentage) in window is spent, else 0;
 * max 0 is no budget.  -1 when out of memory (the attempt is not kept).
 */
int budget_note(struct budget *b, int64_t now, int failed, unsigned max,
    int pct, int64_t window, char *why, size_t len);

/* The failed attempts and all attempts in the window ending now. */
void budget_count(struct budget *b, int64_t now, int64_t window,
    unsigned *failed, size_t *attempts);

#endif
