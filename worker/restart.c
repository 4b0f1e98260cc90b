/*
 * restart: the simulated restart (mode = sim).
 */
#include "config.h"

#include "conf.h"
#include "restart.h"

void
restart_init(struct restarter *rs, struct ev_loop *loop, int mode,
    int64_t lat_min, int64_t lat_max, double failure_rate, uint64_t seed,
    int64_t timeout)
{
	rs->loop = loop;
	rs->mode = mode;
	rs->latency_min = lat_min;
	rs->latency_max = lat_max;
	rs->failure_rate = failure_rate;
	rs->timeout = timeout;
	rng_seed(&rs->rng, seed);
}

static void
sim_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct restart_run *run = w->data;

	run->active = 0;
	if (run->will_fail == 2)
		run->done(run, -1, "simulated restart timed out", NULL);
	else if (run->will_fail)
		run->done(run, 1, "simulated restart failure", NULL);
	else
		run->done(run, 0, NULL, NULL);
}

void
restart_start(struct restarter *rs, struct restart_run *run,
    const char *host, restart_done_cb done)
{
	int64_t ms = rng_range(&rs->rng, rs->latency_min, rs->latency_max);
	double roll = rng_unit(&rs->rng);

	run->rs = rs;
	run->done = done;
	run->will_fail = roll < rs->failure_rate;
	run->active = 1;
	if (ms > rs->timeout) {		/* the sim honours restart_timeout too */
		ms = rs->timeout;
		run->will_fail = 2;
	}
	ev_timer_init(&run->timer, sim_done, (double)ms / 1000.0, 0.);
	run->timer.data = run;
	if (ms == 0) {
		/*
		 * An instant restart ends now: a 0 s timer would cost a trip
		 * through the poll (libev waits at least a millisecond).
		 */
		sim_done(rs->loop, &run->timer, 0);
		return;
	}
	ev_timer_start(rs->loop, &run->timer);
}

void
restart_cancel(struct restart_run *run)
{
	if (run->active)
		ev_timer_stop(run->rs->loop, &run->timer);
	run->active = 0;
}
