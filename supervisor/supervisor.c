/*
 * supervisor: start-up, signals, worker policy, drain and shutdown.
 *
 * Signal handlers do no work: libev's ev_signal turns each signal into a
 * callback on the loop.  TERM/INT drain (a second one escalates to the
 * fast path), QUIT is the fast path, USR1 reopens the log, USR2 dumps
 * state, TTIN/TTOU add or retire a worker.  Workers that die are reaped,
 * their jobs nacked for redelivery, and respawned with a throttle that
 * doubles the delay while they keep dying young (Postfix's
 * master_throttle).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "duration.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "proctree.h"
#include "supervisor.h"

#define YOUNG_MS	10000	/* a worker dying younger than this is throttled */
#define THROTTLE_MAX	60000
#define KILL_GRACE_MS	5000	/* TERM or ABRT, then KILL after this */
#define TICK_MS		1000	/* housekeeping */


static unsigned
live_workers(const struct supervisor *s)
{
	const struct wproc *wp;
	unsigned n = 0;

	TAILQ_FOREACH(wp, &s->workers, link)
		if (wp->gen == s->gen && (wp->state == WP_STARTING ||
		    wp->state == WP_READY))
			n++;
	return n;
}

static uint32_t
free_slot_number(const struct supervisor *s)
{
	const struct wproc *wp;
	uint32_t slot = 1;

again:
	TAILQ_FOREACH(wp, &s->workers, link)
		if (wp->slot == slot && wp->state != WP_GONE) {
			slot++;
			goto again;
		}
	return slot;
}

void
supervisor_spawn_missing(struct supervisor *s)
{
	if (s->state != SUP_RUNNING)
		return;
	while (live_workers(s) < s->target_workers)
		if (pool_spawn(s, free_slot_number(s)) == NULL) {
			/* fork or memory failed: try again after a while */
			if (!ev_is_active(&s->respawn)) {
				ev_timer_set(&s->respawn, 1., 0.);
				ev_timer_start(s->loop, &s->respawn);
			}
			break;
		}
}

static void
respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	supervisor_spawn_missing(t->data);
}

static void
stop_everything(struct supervisor *s)
{
	metrics_stop(s);
	ev_timer_stop(s->loop, &s->tick);
	ev_timer_stop(s->loop, &s->respawn);
	ev_timer_stop(s->loop, &s->drain_timer);
	for (int i = 0; i < s->nsig; i++)
		ev_signal_stop(s->loop, &s->sig[i]);
	ev_break(s->loop, EVBREAK_ALL);
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
throttle(struct supervisor *s, const struct wproc *wp)
{
	int64_t delay = 0;
	char a[32];

	if (clock_now() - wp->started < YOUNG_MS)
		s->fast_deaths++;
	else
		s->fast_deaths = 0;
	if (s->fast_deaths > 0) {
		delay = 1000;
		for (unsigned i = 1; i < s->fast_deaths && delay < THROTTLE_MAX; i++)
			delay *= 2;
		if (delay > THROTTLE_MAX)
			delay = THROTTLE_MAX;
		log_warn("workers are dying young (%u in a row); next spawn "
		    "in %s", s->fast_deaths, duration_fmt(delay, a, sizeof(a)));
	}
	if (!ev_is_active(&s->respawn)) {
		ev_timer_set(&s->respawn, (double)delay / 1000.0, 0.);
		ev_timer_start(s->loop, &s->respawn);
	}
}

/*
 * mandrilld is a child subreaper too: what a worker that died leaves
 * behind (its commands once their groups are killed, what they started
 * out of their groups) is reparented here rather than to init, and is
 * killed.  Live workers, and all that is below them, are spared.
 */
static void
kill_strays(struct supervisor *s, const struct wproc *gone)
{
	struct wproc *wp;
	size_t n = 0, killed, found;
	char why[64];
	pid_t *spare;

	if (gone != NULL)
		snprintf(why, sizeof(why), "worker %" PRIu32 " (pid %d)",
		    gone->slot, (int)gone->pid);
	else
		snprintf(why, sizeof(why), "workers");

	TAILQ_FOREACH(wp, &s->workers, link)
		n++;
	if ((spare = calloc(n + 1, sizeof(*spare))) == NULL) {
		log_err("out of memory looking for what %s left behind", why);
		return;
	}
	n = 0;
	TAILQ_FOREACH(wp, &s->workers, link)
		if (ev_is_active(&wp->child))
			spare[n++] = wp->pid;
	killed = proctree_kill_below(getpid(), spare, n, SIGKILL, &found);
	if (killed > 0)
		log_warn("killed %zu processes left behind by %s", killed, why);
	free(spare);
}

void
supervisor_worker_gone(struct supervisor *s, struct wproc *wp, int status)
{
	int expected = wp->retiring || s->state != SUP_RUNNING ||
	    wp->gen != s->gen;

	log_exit(wp, status, expected);
	if (!expected)
		s->n.crashes++;
	pool_close(wp);
	TAILQ_REMOVE(&s->workers, wp, link);
	if (!expected)
		throttle(s, wp);
	kill_strays(s, wp);
	free(wp);
	if (expected)
		supervisor_spawn_missing(s);
	dispatch_pull(s);
	supervisor_check_done(s);
}

void
supervisor_check_done(struct supervisor *s)
{
	struct wproc *wp;

	if (s->state == SUP_DRAINING && s->in_flight == 0) {
		log_info("Drained: nothing in flight; stopping workers");
		s->state = SUP_STOPPING;
		ev_timer_stop(s->loop, &s->drain_timer);
		TAILQ_FOREACH(wp, &s->workers, link)
			pool_send_drain(wp);
	}
	if (s->state == SUP_STOPPING && TAILQ_EMPTY(&s->workers)) {
		log_info("All workers stopped; exiting");
		stop_everything(s);
	}
}

/* Nack everything now and ask the workers to go, KILL after a grace. */
static void
fast_shutdown(struct supervisor *s, const char *why)
{
	struct wproc *wp;
	int64_t now = clock_now();

	log_warn("Fast shutdown (%s): nacking %u in-flight messages", why,
	    s->in_flight);
	notify_send("STOPPING=1");
	s->state = SUP_STOPPING;
	s->src->ops->unpull(s->src);
	ev_timer_stop(s->loop, &s->drain_timer);
	dispatch_nack_all(s, NULL, why);
	TAILQ_FOREACH(wp, &s->workers, link) {
		/* QUIT: the worker stops its commands and records them. */
		pool_kill(wp, SIGQUIT);
		if (wp->njobs > 0)
			dispatch_nack_all(s, wp, why);
		wp->kill_at = now + KILL_GRACE_MS;
		if (wp->state != WP_GONE)
			wp->state = WP_DRAINING;
	}
	supervisor_check_done(s);
}

void
supervisor_begin_drain(struct supervisor *s, const char *why)
{
	char a[32];

	if (s->state != SUP_RUNNING)
		return;
	s->state = SUP_DRAINING;
	notify_send("STOPPING=1");
	s->src->ops->unpull(s->src);
	log_info("Draining (%s): %u in flight, up to %s", why, s->in_flight,
	    duration_fmt(s->conf.drain_timeout, a, sizeof(a)));
	dispatch_nack_all(s, NULL, "draining; not yet dispatched");
	ev_timer_set(&s->drain_timer, (double)s->conf.drain_timeout / 1000.0, 0.);
	ev_timer_start(s->loop, &s->drain_timer);
	supervisor_check_done(s);
}

static void
drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	fast_shutdown(t->data, "drain_timeout passed");
}

static void
dump_state(struct supervisor *s)
{
	static const char *states[] = { "starting", "ready", "draining", "gone" };
	struct wproc *wp;
	struct job *j;
	int64_t now = clock_now(), oldest = now;

	/* Each list is in pull order: its head is its oldest lease. */
	if ((j = TAILQ_FIRST(&s->waiting)) != NULL && j->lease.start < oldest)
		oldest = j->lease.start;
	TAILQ_FOREACH(wp, &s->workers, link)
		if ((j = TAILQ_FIRST(&wp->jobs)) != NULL && j->lease.start < oldest)
			oldest = j->lease.start;
	log_always(LOG_INFO, "state: %s, generation %" PRIu32 ", %u in flight (%u waiting),"
	    " oldest lease %" PRId64 " ms old, pulled %" PRIu64 ", acked %"
	    PRIu64 ", nacked %" PRIu64 ", terminated %" PRIu64 ", leases "
	    "extended %" PRIu64 ", lost %" PRIu64 ", worker crashes %" PRIu64,
	    s->state == SUP_RUNNING ? "running" : s->state == SUP_DRAINING ?
	    "draining" : "stopping", s->gen, s->in_flight, s->nwaiting,
	    now - oldest, s->n.pulled, s->n.acked, s->n.nacked, s->n.termed,
	    s->leases.extended, s->n.lost, s->n.crashes);
	log_always(LOG_INFO, "state: held %u (paused %u, host %u, msg_id %u, "
	    "concurrency %u, rate %u, store %u, crash %u)%s%s",
	    hold_total(&s->holds), s->holds.n[HOLD_PAUSED],
	    s->holds.n[HOLD_HOST], s->holds.n[HOLD_MSG_ID],
	    s->holds.n[HOLD_CONCURRENCY], s->holds.n[HOLD_RATE],
	    s->holds.n[HOLD_STORE], s->holds.n[HOLD_CRASH],
	    s->conf.enabled ? "" : "; paused ([restart] enabled = no)",
	    s->store_bad ? "; the store cannot commit, pulling nothing" : "");
	TAILQ_FOREACH(wp, &s->workers, link)
		log_always(LOG_INFO, "state: worker %" PRIu32 " pid %d generation %" PRIu32
		    " %s, %u/%u jobs, heard %" PRId64 " ms ago", wp->slot,
		    (int)wp->pid, wp->gen, states[wp->state], wp->njobs,
		    wp->max_jobs, clock_now() - wp->last_heard);
	s->src->ops->dump(s->src);
}

static void
retire_one(struct supervisor *s)
{
	struct wproc *wp, *best = NULL;

	TAILQ_FOREACH(wp, &s->workers, link)
		if (wp->gen == s->gen && wp->state == WP_READY &&
		    (best == NULL || wp->njobs < best->njobs))
			best = wp;
	if (best != NULL) {
		log_info("retiring worker %" PRIu32 " (pid %d)", best->slot,
		    (int)best->pid);
		pool_send_drain(best);
	}
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct supervisor *s = w->data;
	struct wproc *wp;

	switch (w->signum) {
	case SIGTERM:
	case SIGINT:
		if (s->state == SUP_RUNNING)
			supervisor_begin_drain(s, strsignal(w->signum));
		else if (s->state == SUP_DRAINING)
			fast_shutdown(s, "second signal during drain");
		break;
	case SIGQUIT:
		if (s->state != SUP_STOPPING)
			fast_shutdown(s, "SIGQUIT");
		break;
	case SIGHUP:
		if (s->state == SUP_RUNNING)
			supervisor_reload(s);
		else
			log_warn("SIGHUP ignored: shutting down");
		break;
	case SIGUSR1:
		if (log_reopen() < 0)
			log_err("reopen log %s: %s; logging on where it was",
			    s->conf.log_file, log_open_error(errno));
		else
			log_info("log reopened");
		TAILQ_FOREACH(wp, &s->workers, link)
			pool_send_reopen(wp);
		break;
	case SIGUSR2:
		dump_state(s);
		break;
	case SIGTTIN:
		if (s->state == SUP_RUNNING && s->target_workers < 256) {
			s->target_workers++;
			log_info("SIGTTIN: %u workers", s->target_workers);
			supervisor_spawn_missing(s);
		}
		break;
	case SIGTTOU:
		if (s->state == SUP_RUNNING && s->target_workers > 1) {
			s->target_workers--;
			log_info("SIGTTOU: %u workers", s->target_workers);
			retire_one(s);
		}
		break;
	}
}

/* Housekeeping: silent workers and overdue kills.  Workers are few. */
static void
tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct supervisor *s = t->data;
	struct wproc *wp;
	int64_t now = clock_now();
	/*
	 * After a stall of mandrilld itself (stopped, swapped, a slow
	 * iteration) the workers' heartbeats are still unread in their
	 * sockets: judge silence only on a tick that came on time.
	 */
	int on_time = now - s->last_tick < 2 * TICK_MS;

	s->last_tick = now;
	TAILQ_FOREACH(wp, &s->workers, link) {
		if (!on_time && wp->kill_at == 0)
			continue;
		if (wp->kill_at > 0 && now >= wp->kill_at && wp->unsaved > 0) {
			/* A known outcome is never lost to a kill. */
			if (!wp->spared)
				log_warn("worker %" PRIu32 " (pid %d) holds %" PRIu32
				    " restart outcomes it cannot record yet; not "
				    "killing it", wp->slot, (int)wp->pid,
				    wp->unsaved);
			wp->spared = 1;
		} else if (wp->kill_at > 0 && now >= wp->kill_at) {
			log_warn("worker %" PRIu32 " (pid %d) still running; "
			    "killing it", wp->slot, (int)wp->pid);
			pool_kill(wp, SIGKILL);
			wp->kill_at = 0;
		} else if (wp->kill_at == 0 && wp->state != WP_GONE &&
		    now - wp->last_heard > wp->timeout) {
			log_err("worker %" PRIu32 " (pid %d) silent for %" PRId64
			    " ms; aborting it", wp->slot, (int)wp->pid,
			    now - wp->last_heard);
			pool_close(wp);
			pool_kill(wp, SIGABRT);
			wp->kill_at = now + KILL_GRACE_MS;
		}
	}
}

static void
exhausted_cb(void *arg)
{
	struct supervisor *s = arg;

	if (s->conf.exit_when_done) {
		log_info("All messages are done (%" PRIu64 " acked)", s->n.acked);
		supervisor_begin_drain(s, "exit_when_done");
	}
}

static void
more_cb(void *arg)
{
	dispatch_pull(arg);
}

static void
watch_signals(struct supervisor *s)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1,
	    SIGUSR2, SIGTTIN, SIGTTOU };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ev_signal_init(&s->sig[i], signal_cb, sigs[i]);
		s->sig[i].data = s;
		ev_signal_start(s->loop, &s->sig[i]);
	}
	s->nsig = sizeof(sigs) / sizeof(sigs[0]);
}

int
supervisor_init(struct supervisor *s, struct ev_loop *loop,
    const struct conf *c, const struct overrides *ov)
{
	struct source_cb cb = { dispatch_message, exhausted_cb, more_cb, s };
	char err[256];

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->conf = *c;
	s->ov = *ov;
	rng_seed(&s->rng, 0);
	TAILQ_INIT(&s->workers);
	s->gen = s->active_gen = 1;
	s->target_workers = c->workers;
	s->src = c->source == SOURCE_NATS ? source_nats_new(loop, c, &cb) :
	    source_sim_new(loop, c, &cb);
	if (s->src == NULL) {
		log_err("source: out of memory");
		return -1;
	}
	if (c->allow[0] == '\0')
		log_warn("[restart] allow is empty: no host may be restarted, "
		    "and every message will be invalid");
	dispatch_init(s);
	metrics_init(s);
	watch_signals(s);
	ev_timer_init(&s->tick, tick_cb, TICK_MS / 1000.0, TICK_MS / 1000.0);
	s->last_tick = clock_now();
	ev_timer_init(&s->respawn, respawn_cb, 0., 0.);
	ev_timer_init(&s->drain_timer, drain_timeout_cb, 0., 0.);
	s->tick.data = s->respawn.data = s->drain_timer.data = s;
	ev_timer_start(loop, &s->tick);
	if (s->src->ops->start(s->src, err, sizeof(err)) < 0) {
		log_err("source %s: %s", s->src->ops->name, err);
		return -1;
	}
	supervisor_spawn_missing(s);
	return 0;
}

static double
tv_seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* One line at exit: what was done, how fast, at what CPU cost. */
static void
log_summary(const struct supervisor *s)
{
	const struct hist *h = &s->n.ack_latency;
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	log_always(LOG_INFO, "Summary: pulled %" PRIu64 ", acked %" PRIu64 " (restarted %"
	    PRIu64 ", skipped %" PRIu64 ", duplicate %" PRIu64 ", dead %" PRIu64
	    "), nacked %" PRIu64 ", terminated %" PRIu64 "; pull-to-ack us "
	    "p50 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64 " max %" PRIu64
	    "; cpu s supervisor %.3f workers %.3f", s->n.pulled, s->n.acked,
	    s->n.outcome[OUT_RESTARTED], s->n.outcome[OUT_SKIPPED],
	    s->n.outcome[OUT_DUPLICATE], s->n.outcome[OUT_DEAD], s->n.nacked,
	    s->n.termed, hist_quantile(h, 0.5), hist_quantile(h, 0.99),
	    hist_quantile(h, 0.999), h->max,
	    tv_seconds(self.ru_utime) + tv_seconds(self.ru_stime),
	    tv_seconds(kids.ru_utime) + tv_seconds(kids.ru_stime));
}

int
supervisor_run(struct supervisor *s)
{
	ev_run(s->loop, 0);
	log_summary(s);
	return s->exit_code;
}

void
supervisor_free(struct supervisor *s)
{
	struct wproc *wp;

	kill_strays(s, NULL);

	/* Anything still held goes back to the broker before it stops. */
	if (s->src != NULL && s->in_flight > 0) {
		dispatch_nack_all(s, NULL, "exiting");
		TAILQ_FOREACH(wp, &s->workers, link)
			dispatch_nack_all(s, wp, "exiting");
	}
	while ((wp = TAILQ_FIRST(&s->workers)) != NULL) {
		TAILQ_REMOVE(&s->workers, wp, link);
		if (wp->chan != NULL)
			chan_free(wp->chan);
		ev_child_stop(s->loop, &wp->child);
		free(wp);
	}
	if (s->src != NULL)
		s->src->ops->stop(s->src);
	dispatch_free(s);
}
