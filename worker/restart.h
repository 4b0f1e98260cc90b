/*
 * restart: carry out one restart of one host, asynchronously.
 *
 * mode = sim draws a duration from sim_latency and fails with
 * sim_failure_rate, deterministically for a given sim_seed and job
 * order.  Every restart ends in exactly one call of the done callback,
 * unless it is cancelled first with restart_cancel(); a restart that
 * takes no time calls it before restart_start() returns.
 */
#ifndef MANDRILL_RESTART_H
#define MANDRILL_RESTART_H

#include <ev.h>
#include <stdint.h>

#include "rng.h"

struct restart_run;
typedef void (*restart_done_cb)(struct restart_run *, int exit_status,
    const char *error, const char *output);

struct restarter {
	struct ev_loop	*loop;
	int		 mode;		/* enum restart_mode */
	int64_t		 latency_min;
	int64_t		 latency_max;
	double		 failure_rate;
	int64_t		 timeout;
	struct rng	 rng;
};

struct restart_run {
	struct restarter *rs;
	ev_timer	 timer;
	int		 will_fail;
	int		 active;
	restart_done_cb	 done;
};

void restart_init(struct restarter *rs, struct ev_loop *loop, int mode,
    int64_t lat_min, int64_t lat_max, double failure_rate, uint64_t seed,
    int64_t timeout);
void restart_start(struct restarter *rs, struct restart_run *run,
    const char *host, restart_done_cb done);
void restart_cancel(struct restart_run *run);

#endif
