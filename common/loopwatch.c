/*
 * loopwatch: an ev_check at the highest priority starts the clock, an
 * ev_prepare at the lowest stops it, so every other watcher's work of
 * the iteration (ev_prepare work included) falls in between.
 */
#include "config.h"

#include <inttypes.h>

#include "clock.h"
#include "log.h"
#include "loopwatch.h"

static void
woke_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct loopwatch *lw = w->data;

	lw->start_us = clock_now_us();
	lw->what = "event callbacks";
	lw->quiet = 0;
}

static void
sleeps_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct loopwatch *lw = w->data;
	int64_t took;

	if (lw->start_us == 0 || lw->threshold_us == 0)
		return;
	took = clock_now_us() - lw->start_us;
	lw->start_us = 0;
	if (took > lw->threshold_us) {
		lw->slow++;
		if (!lw->quiet)
				log_warn("slow loop iteration: %" PRId64 " ms in %s "
			    "(slow_iteration is %" PRId64 " ms)", took / 1000,
			    lw->what, lw->threshold_us / 1000);
	}
}

void
loopwatch_init(struct loopwatch *lw, struct ev_loop *loop, int64_t threshold_ms)
{
	lw->loop = loop;
	lw->start_us = 0;
	lw->slow = 0;
	lw->what = "event callbacks";
	lw->quiet = 0;
	lw->threshold_us = threshold_ms * 1000;
	ev_check_init(&lw->woke, woke_cb);
	ev_set_priority(&lw->woke, EV_MAXPRI);
	ev_prepare_init(&lw->sleeps, sleeps_cb);
	ev_set_priority(&lw->sleeps, EV_MINPRI);
	lw->woke.data = lw->sleeps.data = lw;
	ev_check_start(loop, &lw->woke);
	ev_prepare_start(loop, &lw->sleeps);
	ev_unref(loop);		/* watching alone keeps no loop running */
	ev_unref(loop);
}

void
loopwatch_set(struct loopwatch *lw, int64_t threshold_ms)
{
	lw->threshold_us = threshold_ms * 1000;
}

void
loopwatch_stop(struct loopwatch *lw)
{
	if (!ev_is_active(&lw->woke))
		return;
	ev_ref(lw->loop);
	ev_ref(lw->loop);
	ev_check_stop(lw->loop, &lw->woke);
	ev_prepare_stop(lw->loop, &lw->sleeps);
}

void
loopwatch_note(struct loopwatch *lw, const char *what)
{
	lw->what = what;
}

void
loopwatch_quiet(struct loopwatch *lw)
{
	lw->quiet = 1;
}
