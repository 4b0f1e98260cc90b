/*
 * loopwatch: warn about slow event-loop iterations.
 *
 * A callback that takes long delays every other event of its process:
 * leases are extended late, frames wait.  The seed's production advice
 * was to log callbacks slower than 50 ms.  loopwatch times each
 * iteration's work (from the end of the poll to the start of the next)
 * and logs one warning, naming the last activity noted, when it passes
 * the threshold; the count goes to the metrics.
 */
#ifndef MANDRILL_LOOPWATCH_H
#define MANDRILL_LOOPWATCH_H

#include <stdint.h>

#include <ev.h>

struct loopwatch {
	struct ev_loop	*loop;
	ev_check	 woke;		/* first thing after the poll */
	ev_prepare	 sleeps;	/* last thing before the next poll */
	int64_t		 start_us;
	int64_t		 threshold_us;	/* 0: off */
	const char	*what;
	int		 quiet;		/* this iteration: count, no warning */
	uint64_t	 slow;		/* iterations over the threshold */
};

void loopwatch_init(struct loopwatch *lw, struct ev_loop *loop,
    int64_t threshold_ms);
void loopwatch_set(struct loopwatch *lw, int64_t threshold_ms);
void loopwatch_stop(struct loopwatch *lw);
/* Name what is running now (a static string), for the warning. */
void loopwatch_note(struct loopwatch *lw, const char *what);
/* This iteration's time is reported already: no warning for it. */
void loopwatch_quiet(struct loopwatch *lw);

#endif
