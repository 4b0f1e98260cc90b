/*
 * avail: how many workers, and when.
 *
 * The newest generation is kept at its target of live (starting or
 * ready) workers.  A worker that exits while expected to (told to
 * drain, of an older generation, or mandrilld stopping) is simply
 * replaced if still wanted.  Any other exit is a crash: counted, and if
 * the worker started badly (it died younger than 10 s, or before it had
 * recorded a single job: Postfix's use_count) the next spawn waits 1 s,
 * doubling with each further bad start in a row up to 60 s (Postfix's
 * master_throttle), so a worker that cannot start, or that dies on
 * every job, never becomes a fork loop.  A new generation gets the jobs
 * only once complete: until then the old one keeps working, so a reload
 * to workers that cannot start leaves the service running as it was.
 */
#include "config.h"

#include <inttypes.h>
#include <sys/wait.h>

#include "avail.h"
#include "clock.h"
#include "duration.h"
#include "log.h"

static void
respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	avail_spawn_missing(t->data);
}

static void
arm(struct avail *a, int64_t ms)
{
	if (ev_is_active(&a->respawn))
		return;
	ev_timer_set(&a->respawn, (double)ms / 1000.0, 0.);
	ev_timer_start(a->loop, &a->respawn);
}

void
avail_init(struct avail *a, struct ev_loop *loop, struct pool *p)
{
	a->loop = loop;
	a->pool = p;
	a->bad_starts = 0;
	a->crashes = 0;
	a->stopped = 0;
	ev_timer_init(&a->respawn, respawn_cb, 0., 0.);
	a->respawn.data = a;
}

void
avail_stop(struct avail *a)
{
	a->stopped = 1;
	ev_timer_stop(a->loop, &a->respawn);
}

void
avail_spawn_missing(struct avail *a)
{
	struct pool *p = a->pool;

	if (a->stopped)
		return;
	while (pool_count(p, p->gen, WP_LIVE) < p->target)
		if (pool_spawn(p) == NULL) {
			arm(a, 1000);	/* fork or memory failed: later */
			break;
		}
}

void
avail_set_target(struct avail *a, unsigned n)
{
	struct pool *p = a->pool;

	while (p->target > n) {
		pool_set_target(p, p->target - 1);
		pool_retire_one(p);
	}
	pool_set_target(p, n);
	avail_spawn_missing(a);
}

void
avail_reload(struct avail *a, unsigned n)
{
	a->bad_starts = 0;
	pool_new_generation(a->pool, n);
	avail_spawn_missing(a);	/* it takes over once ready */
}

int
avail_take_over(struct avail *a)
{
	struct pool *p = a->pool;

	if (p->active_gen == p->gen)
		return 0;
	pool_take_over(p);
	log_info("generation %" PRIu32 " ready; older generations draining",
	    p->gen);
	return 1;
}

int
avail_bad_start(const struct wproc *wp, int64_t now)
{
	return now - wp->started < AVAIL_YOUNG_MS || wp->finished == 0;
}

int64_t
avail_respawn_delay(unsigned n)
{
	int64_t delay;

	if (n == 0)
		return 0;
	delay = AVAIL_THROTTLE_MIN;
	for (unsigned i = 1; i < n && delay < AVAIL_THROTTLE_MAX; i++)
		delay *= 2;
	return delay > AVAIL_THROTTLE_MAX ? AVAIL_THROTTLE_MAX : delay;
}

static void
log_exit(const struct wproc *wp, int status, int expected)
{
	enum log_level level = expected ? LOG_INFO : LOG_ERR;

	if (WIFSIGNALED(status))
		log_msg(level, "worker %" PRIu32 " (pid %d) killed by signal %d%s",
		    wp->slot, (int)wp->pid, WTERMSIG(status),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else
		log_msg(level, "worker %" PRIu32 " (pid %d) exited with status %d",
		    wp->slot, (int)wp->pid, WEXITSTATUS(status));
}

static void
throttle(struct avail *a, const struct wproc *wp)
{
	int64_t now = clock_now(), delay;
	char d[32];

	if (avail_bad_start(wp, now))
		a->bad_starts++;
	else
		a->bad_starts = 0;
	delay = avail_respawn_delay(a->bad_starts);
	if (delay > 0 && now - wp->started < AVAIL_YOUNG_MS)
		log_warn("workers are dying young (%u in a row); next spawn "
		    "in %s", a->bad_starts, duration_fmt(delay, d, sizeof(d)));
	else if (delay > 0)
		log_warn("workers are dying before recording a job (%u in a "
		    "row); next spawn in %s", a->bad_starts,
		    duration_fmt(delay, d, sizeof(d)));
	arm(a, delay);
}

void
avail_worker_gone(struct avail *a, const struct wproc *wp, int status)
{
	int expected = wp->retiring || a->stopped ||
	    wp->gen != a->pool->gen;

	log_exit(wp, status, expected);
	if (expected) {
		avail_spawn_missing(a);
		return;
	}
	a->crashes++;
	throttle(a, wp);
}
