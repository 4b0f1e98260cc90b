/*
 * avail: how many workers, and when (policy), after Postfix's
 * master_avail.c.
 *
 * It keeps the newest generation at its target, throttles respawns
 * after workers that start badly (Postfix's master_throttle), hands the
 * jobs to a new generation once it is complete, and counts crashes.  It
 * changes the worker set only through pool.h and modifies no data that
 * another module maintains.
 */
#ifndef MANDRILL_AVAIL_H
#define MANDRILL_AVAIL_H

#include <stdint.h>

#include <ev.h>

#include "pool.h"

#define AVAIL_YOUNG_MS		10000	/* dying younger is a bad start */
#define AVAIL_THROTTLE_MIN	1000
#define AVAIL_THROTTLE_MAX	60000

struct avail {
	struct ev_loop	*loop;
	struct pool	*pool;
	ev_timer	 respawn;
	unsigned	 bad_starts;	/* unexpected deaths in a row, of
					   workers that started badly */
	uint64_t	 crashes;	/* unexpected deaths in all */
	int		 stopped;	/* draining or stopping: no spawns */
};

void avail_init(struct avail *a, struct ev_loop *loop, struct pool *p);
/* No more spawns from now (a drain or a shutdown). */
void avail_stop(struct avail *a);
/* Spawn until the newest generation has its target of live workers. */
void avail_spawn_missing(struct avail *a);
/* Want n workers: spawn the missing, or retire the surplus. */
void avail_set_target(struct avail *a, unsigned n);
/* A reload: a new generation of n workers, the throttle forgotten. */
void avail_reload(struct avail *a, unsigned n);
/*
 * The newest generation is complete: it takes over from older ones.
 * 1 if it did, 0 if it had the jobs already (the first generation).
 */
int avail_take_over(struct avail *a);
/* wp was reaped: judge its exit, count a crash, respawn or throttle. */
void avail_worker_gone(struct avail *a, const struct wproc *wp, int status);

/*
 * The throttle's rules, pure: whether a worker that died unexpectedly
 * at now started badly (it was young, or it never recorded a job), and
 * the delay before the next spawn after n bad starts in a row.
 */
int avail_bad_start(const struct wproc *wp, int64_t now);
int64_t avail_respawn_delay(unsigned n);

#endif
