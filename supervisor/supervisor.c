/*
 * supervisor: start-up, signals, reload, drain and shutdown (lifecycle),
 * and the wiring of the modules below it.
 *
 * Signal handlers do no work: libev's ev_signal turns each signal into a
 * callback on the loop.  TERM/INT drain (a second one escalates to the
 * fast path), QUIT is the fast path, HUP reloads, USR1 reopens the log,
 * USR2 dumps state, TTIN/TTOU add or retire a worker.  The pool, avail
 * and dispatch never call up: the pool's callbacks (a frame, a closed
 * channel, a reaped worker) and dispatch's (a generation complete) are
 * set here and hand each event to the module it is for.
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

#include "avail.h"
#include "clock.h"
#include "dispatch.h"
#include "duration.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "pausefile.h"
#include "pool.h"
#include "proctree.h"
#include "reload.h"
#include "supervisor.h"

#define KILL_GRACE_MS	5000	/* TERM or ABRT, then KILL after this */
#define TICK_MS		1000	/* housekeeping */

static void check_done(struct supervisor *s);

static void
stop_everything(struct supervisor *s)
{
	control_close(&s->ctl);
	metrics_stop(&s->metrics);
	avail_stop(&s->avail);
	ev_timer_stop(s->loop, &s->tick);
	ev_timer_stop(s->loop, &s->drain_timer);
	for (int i = 0; i < s->nsig; i++)
		ev_signal_stop(s->loop, &s->sig[i]);
	ev_break(s->loop, EVBREAK_ALL);
}

/* The pool's callbacks: a worker's frames, its channel's end, its reap. */
static int
worker_frame(void *arg, struct wproc *wp, const struct proto_msg *m)
{
	struct supervisor *s = arg;

	if (dispatch_frame(&s->dispatch, wp, m) < 0)
		return -1;
	check_done(s);
	return 0;
}

static void
worker_lost(void *arg, struct wproc *wp)
{
	struct supervisor *s = arg;

	dispatch_worker_lost(&s->dispatch, wp);
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
	size_t n, killed, found;
	char why[64];
	pid_t *spare;

	if (gone != NULL)
		snprintf(why, sizeof(why), "worker %" PRIu32 " (pid %d)",
		    gone->slot, (int)gone->pid);
	else
		snprintf(why, sizeof(why), "workers");
	n = pool_pids(&s->pool, NULL, 0);
	if ((spare = calloc(n + 1, sizeof(*spare))) == NULL) {
		log_err("out of memory looking for what %s left behind", why);
		return;
	}
	n = pool_pids(&s->pool, spare, n);
	killed = proctree_kill_below(getpid(), spare, n, SIGKILL, &found);
	if (killed > 0)
		log_warn("killed %zu processes left behind by %s", killed, why);
	free(spare);
}

static void
worker_gone(void *arg, struct wproc *wp, int status)
{
	struct supervisor *s = arg;

	avail_worker_gone(&s->avail, wp, status);
	kill_strays(s, wp);	/* wp is off the pool's list: not spared */
	dispatch_pull(&s->dispatch);
	check_done(s);
}

/*
 * dispatch's callback: an attempt ended.  When the error budget is
 * spent, mandrilld pauses itself as mandrillctl pause would (persisted,
 * held, never lost); what runs finishes, and mandrillctl resume, which
 * starts the count again, ends it.
 */
static void
attempt_ended(void *arg, enum outcome o)
{
	struct supervisor *s = arg;
	char why[160], err[256];
	unsigned max;
	int pct;

	if (conf_max_failures(s->conf.max_failures, &max, &pct) < 0 ||
	    budget_note(&s->budget, clock_now(), o != OUT_RESTARTED, max, pct,
	    s->conf.failure_window, why, sizeof(why)) <= 0 || s->paused ||
	    s->state != SUP_RUNNING)
		return;
	log_err("%s; pausing restarts until mandrillctl resume", why);
	if (supervisor_pause(s, why, err, sizeof(err)) < 0)
		log_err("error budget: cannot pause: %s", err);
}

/* dispatch's callback: the newest generation is complete. */
static void
generation_ready(void *arg)
{
	struct supervisor *s = arg;

	if (avail_take_over(&s->avail))
		dispatch_rethink(&s->dispatch);	/* held under the old rules */
	if (notify_send("READY=1\nSTATUS=workers ready") < 0)
		log_warn("sd_notify READY: %s", strerror(errno));
}

static void
check_done(struct supervisor *s)
{
	if (s->state == SUP_DRAINING && s->dispatch.in_flight == 0) {
		log_info("Drained: nothing in flight; stopping workers");
		s->state = SUP_STOPPING;
		ev_timer_stop(s->loop, &s->drain_timer);
		pool_drain_all(&s->pool);
	}
	if (s->state == SUP_STOPPING && pool_empty(&s->pool)) {
		log_info("All workers stopped; exiting");
		stop_everything(s);
	}
}

/* Pulling stops; nothing new is spawned or taken. */
static void
stop_taking(struct supervisor *s, enum sup_state state)
{
	s->state = state;
	notify_send("STOPPING=1");
	s->src->ops->unpull(s->src);
	dispatch_stop(&s->dispatch);
	avail_stop(&s->avail);
}

/* Nack everything now and ask the workers to go, KILL after a grace. */
static void
fast_shutdown(struct supervisor *s, const char *why)
{
	log_warn("Fast shutdown (%s): nacking %u in-flight messages", why,
	    s->dispatch.in_flight);
	stop_taking(s, SUP_STOPPING);
	ev_timer_stop(s->loop, &s->drain_timer);
	dispatch_nack_all(&s->dispatch, NULL, why);
	/* QUIT first: the workers stop their commands and record them. */
	pool_quit_all(&s->pool, KILL_GRACE_MS);
	dispatch_nack_running(&s->dispatch, why);
	check_done(s);
}

static void
begin_drain(struct supervisor *s, const char *why)
{
	char a[32];

	if (s->state != SUP_RUNNING)
		return;
	stop_taking(s, SUP_DRAINING);
	s->metrics.draining = 1;
	metrics_notify(&s->metrics);
	log_info("Draining (%s): %u in flight, up to %s", why,
	    s->dispatch.in_flight, duration_fmt(s->conf.drain_timeout, a,
	    sizeof(a)));
	dispatch_nack_all(&s->dispatch, NULL, "draining; not yet dispatched");
	ev_timer_set(&s->drain_timer, (double)s->conf.drain_timeout / 1000.0, 0.);
	ev_timer_start(s->loop, &s->drain_timer);
	check_done(s);
}

static void
drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	fast_shutdown(t->data, "drain_timeout passed");
}

static void
dump_state(struct supervisor *s)
{
	const struct dispatch *d = &s->dispatch;
	const struct holds *h = &d->holds;
	int64_t now = clock_now();

	log_always(LOG_INFO, "state: %s, generation %" PRIu32 ", %u in flight (%u waiting),"
	    " oldest lease %" PRId64 " ms old, pulled %" PRIu64 ", acked %"
	    PRIu64 ", nacked %" PRIu64 ", terminated %" PRIu64 ", leases "
	    "extended %" PRIu64 ", lost %" PRIu64 ", worker crashes %" PRIu64,
	    s->state == SUP_RUNNING ? "running" : s->state == SUP_DRAINING ?
	    "draining" : "stopping", s->pool.gen, d->in_flight, d->nwaiting,
	    now - dispatch_oldest(d, now), d->n.pulled, d->n.acked,
	    d->n.nacked, d->n.termed, d->leases.extended, d->n.lost,
	    s->avail.crashes);
	log_always(LOG_INFO, "state: held %u (paused %u, host %u, msg_id %u, "
	    "concurrency %u, rate %u, store %u, crash %u)%s%s%s%s",
	    hold_total(h), h->n[HOLD_PAUSED], h->n[HOLD_HOST],
	    h->n[HOLD_MSG_ID], h->n[HOLD_CONCURRENCY], h->n[HOLD_RATE],
	    h->n[HOLD_STORE], h->n[HOLD_CRASH],
	    s->paused ? "; paused by mandrillctl: " : "",
	    s->paused ? s->conf.pause_reason : "",
	    s->file_enabled ? "" : "; paused ([restart] enabled = no)",
	    d->store_bad ? "; the store cannot commit, pulling nothing" : "");
	pool_dump(&s->pool);
	s->src->ops->dump(s->src);
}

/*
 * A configuration that was found good takes over: its settings, with
 * the operator's pause over [restart] enabled, go to a new generation.
 */
static void
apply_conf(struct supervisor *s, const struct conf *c)
{
	s->conf = *c;
	s->file_enabled = c->enabled;
	if (s->paused)
		s->conf.enabled = 0;
	else
		s->conf.pause_reason[0] = '\0';
	log_set_level(s->conf.log_level);
	log_set_json(s->conf.log_format == 1);
	avail_reload(&s->avail, s->conf.workers);
	metrics_reload(&s->metrics);
	dispatch_reload(&s->dispatch);
	if (s->fleet != NULL)
		fleet_reload(s->fleet, &s->conf);
	metrics_notify(&s->metrics);	/* paused or not, and why */
}

int
supervisor_reload(struct supervisor *s, const char *by, char *why,
    size_t len)
{
	struct conf c;

	log_info("%s: reloading %s", by, s->ov.conf_path);
	notify_reloading();
	if (reload_prepare(&s->ov, &s->conf, s->src, &c, why, len) < 0)
		return -1;
	snprintf(c.pause_reason, sizeof(c.pause_reason), "%s",
	    s->conf.pause_reason);
	apply_conf(s, &c);
	if (c.allow[0] == '\0')
		log_warn("[restart] allow is empty: no host may be restarted, "
		    "and every message will be invalid");
	snprintf(why, len, "reload done: generation %" PRIu32 ", %u workers of "
	    "%u jobs, %u in flight carried over", s->pool.gen, c.workers,
	    c.jobs_per_worker, s->dispatch.in_flight);
	log_info("%s", why);
	return 0;
}

/* The running configuration as the file has it, without the pause. */
static struct conf
file_conf(const struct supervisor *s)
{
	struct conf c = s->conf;

	c.enabled = s->file_enabled;
	return c;
}

/* The pause of this instance alone (the fleet's comes through here too). */
static int
pause_here(struct supervisor *s, const char *reason, char *err, size_t len)
{
	struct conf c = file_conf(s);

	if (pausefile_save(s->conf.state_dir, reason, err, len) < 0)
		return -1;
	s->paused = 1;
	snprintf(c.pause_reason, sizeof(c.pause_reason), "%s", reason);
	log_warn("paused: %s; pulling nothing, starting no "
	    "restart, holding %u in flight", reason, s->dispatch.in_flight);
	apply_conf(s, &c);
	return 0;
}

static int
resume_here(struct supervisor *s, const char *by, char *err, size_t len)
{
	struct conf c = file_conf(s);

	if (pausefile_clear(s->conf.state_dir, err, len) < 0)
		return -1;
	s->paused = 0;
	budget_reset(&s->budget);
	log_info("resumed by %s%s", by, s->file_enabled ? "" :
	    "; [restart] enabled = no still pauses");
	apply_conf(s, &c);
	return 0;
}

/* mandrillctl pause and the error budget: the whole fleet's, in fleet mode. */
int
supervisor_pause(struct supervisor *s, const char *reason, char *err,
    size_t len)
{
	if (pause_here(s, reason, err, len) < 0)
		return -1;
	if (s->fleet != NULL)
		fleet_pause(s->fleet, reason);
	return 0;
}

int
supervisor_resume(struct supervisor *s, char *err, size_t len)
{
	if (resume_here(s, "mandrillctl", err, len) < 0)
		return -1;
	if (s->fleet != NULL)
		fleet_resume(s->fleet);
	return 0;
}

void
supervisor_drain(struct supervisor *s, const char *why)
{
	begin_drain(s, why);
}

static void
reload(struct supervisor *s)
{
	char why[CONF_ERR_MAX + CONF_PATH_MAX + 64];

	supervisor_reload(s, "SIGHUP", why, sizeof(why));
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct supervisor *s = w->data;
	unsigned n = s->pool.target;

	switch (w->signum) {
	case SIGTERM:
	case SIGINT:
		if (s->state == SUP_RUNNING)
			begin_drain(s, strsignal(w->signum));
		else if (s->state == SUP_DRAINING)
			fast_shutdown(s, "second signal during drain");
		break;
	case SIGQUIT:
		if (s->state != SUP_STOPPING)
			fast_shutdown(s, "SIGQUIT");
		break;
	case SIGHUP:
		if (s->state == SUP_RUNNING)
			reload(s);
		else
			log_warn("SIGHUP ignored: shutting down");
		break;
	case SIGUSR1:
		if (log_reopen() < 0)
			log_err("reopen log %s: %s; logging on where it was",
			    s->conf.log_file, log_open_error(errno));
		else
			log_info("log reopened");
		pool_reopen_all(&s->pool);
		break;
	case SIGUSR2:
		dump_state(s);
		break;
	case SIGTTIN:
		if (s->state == SUP_RUNNING && n < 256) {
			log_info("SIGTTIN: %u workers", n + 1);
			avail_set_target(&s->avail, n + 1);
		}
		break;
	case SIGTTOU:
		if (s->state == SUP_RUNNING && n > 1) {
			log_info("SIGTTOU: %u workers", n - 1);
			avail_set_target(&s->avail, n - 1);
		}
		break;
	}
}

/* Housekeeping: silent workers and overdue kills.  Workers are few. */
static void
tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct supervisor *s = t->data;
	int64_t now = clock_now();
	/*
	 * After a stall of mandrilld itself (stopped, swapped, a slow
	 * iteration) the workers' heartbeats are still unread in their
	 * sockets: judge silence only on a tick that came on time.
	 */
	int on_time = now - s->last_tick < 2 * TICK_MS;

	s->last_tick = now;
	pool_tick(&s->pool, now, on_time, KILL_GRACE_MS);
}

/* The fleet's callbacks. */
static void
fleet_granted_cb(void *arg, uint64_t job, const struct fleet_answer *a)
{
	struct supervisor *s = arg;

	dispatch_granted(&s->dispatch, job, a);
}

static void
fleet_renewed_cb(void *arg, uint64_t job, int64_t until)
{
	struct supervisor *s = arg;

	dispatch_renewed(&s->dispatch, job, until);
}

static void
fleet_finished_cb(void *arg, uint64_t job, int owner)
{
	struct supervisor *s = arg;

	dispatch_finished(&s->dispatch, job, owner);
	check_done(s);
}

/* Another instance (or this one) paused or resumed the fleet. */
static void
fleet_paused_cb(void *arg, const char *reason, int first)
{
	struct supervisor *s = arg;
	char err[256];

	if (first && s->paused) {
		/*
		 * Paused here (state_dir/paused) and not in the fleet: a
		 * pause never ends by itself, so the fleet takes this one.
		 */
		log_warn("fleet: this instance is paused (%s) and the fleet is "
		    "not; pausing the fleet with it: mandrillctl resume ends it",
		    s->conf.pause_reason);
		fleet_pause(s->fleet, s->conf.pause_reason);
		return;
	}
	if (reason != NULL && !s->paused) {
		if (pause_here(s, reason, err, sizeof(err)) < 0)
			log_err("fleet pause: %s", err);
	} else if (reason == NULL && s->paused &&
	    resume_here(s, "the fleet (mandrillctl resume)", err,
	    sizeof(err)) < 0)
		log_err("fleet resume: %s", err);
}

static void
exhausted_cb(void *arg)
{
	struct supervisor *s = arg;

	if (s->conf.exit_when_done) {
		log_info("All messages are done (%" PRIu64 " acked)",
		    s->dispatch.n.acked);
		begin_drain(s, "exit_when_done");
	}
}

static void
message_cb(void *arg, struct delivery *d)
{
	struct supervisor *s = arg;

	dispatch_message(&s->dispatch, d);
}

static void
more_cb(void *arg)
{
	struct supervisor *s = arg;

	dispatch_pull(&s->dispatch);
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
	struct source_cb cb = { message_cb, exhausted_cb, more_cb, s };
	struct pool_cb pcb = { worker_frame, worker_lost, worker_gone, s };
	struct dispatch_cb dcb = { .generation_ready = generation_ready,
	    .arg = s, .attempt_ended = attempt_ended };
	char err[256];

	struct control_cb ccb = { command_request, s };
	char sock[CONF_SUN_MAX];
	int paused;

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->conf = *c;
	s->ov = *ov;
	s->ctl.fd = -1;
	s->file_enabled = c->enabled;
	s->started_wall = clock_wall();
	budget_init(&s->budget);
	paused = pausefile_load(c->state_dir, s->conf.pause_reason,
	    sizeof(s->conf.pause_reason), err, sizeof(err));
	if (paused < 0) {
		log_err("pause: %s", err);
		return -1;
	}
	if (paused) {
		s->paused = 1;
		s->conf.enabled = 0;
		log_warn("paused by mandrillctl (%s): holding everything until "
		    "mandrillctl resume", s->conf.pause_reason);
	}
	s->src = c->source == SOURCE_NATS ? source_nats_new(loop, c, &cb) :
	    source_sim_new(loop, c, &cb);
	if (s->src == NULL) {
		log_err("source: out of memory");
		return -1;
	}
	if (c->allow[0] == '\0')
		log_warn("[restart] allow is empty: no host may be restarted, "
		    "and every message will be invalid");
	pool_init(&s->pool, loop, &s->conf, &pcb);
	avail_init(&s->avail, loop, &s->pool);
	dispatch_init(&s->dispatch, loop, &s->conf, s->src, &s->pool,
	    &s->metrics.watch, &dcb);
	metrics_init(&s->metrics, loop, &s->conf, &s->dispatch, &s->pool,
	    &s->avail);
	watch_signals(s);
	conf_control_path(&s->conf, sock, sizeof(sock));
	if (control_open(&s->ctl, loop, sock, s->conf.user,
	    s->conf.control_group, &ccb, err, sizeof(err)) < 0) {
		log_err("control socket: %s", err);
		return -1;
	}
	ev_timer_init(&s->tick, tick_cb, TICK_MS / 1000.0, TICK_MS / 1000.0);
	s->last_tick = clock_now();
	ev_timer_init(&s->drain_timer, drain_timeout_cb, 0., 0.);
	s->tick.data = s->drain_timer.data = s;
	ev_timer_start(loop, &s->tick);
	if (s->src->ops->start(s->src, err, sizeof(err)) < 0) {
		log_err("source %s: %s", s->src->ops->name, err);
		return -1;
	}
	if (c->coordination == COORD_NATS) {
		struct fleet_cb fcb = { fleet_granted_cb, fleet_renewed_cb,
		    fleet_finished_cb, fleet_paused_cb, s };
		char ferr[CONF_ERR_MAX];

		if ((s->fleet = fleet_new(loop, c, &fcb, ferr,
		    sizeof(ferr))) == NULL) {
			log_err("%s", ferr);
			return -1;
		}
		s->dispatch.fleet = s->fleet;
	}
	avail_spawn_missing(&s->avail);
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
	const struct counters *n = &s->dispatch.n;
	const struct hist *h = &n->ack_latency;
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	log_always(LOG_INFO, "Summary: pulled %" PRIu64 ", acked %" PRIu64 " (restarted %"
	    PRIu64 ", skipped %" PRIu64 ", duplicate %" PRIu64 ", dead %" PRIu64
	    "), nacked %" PRIu64 ", terminated %" PRIu64 "; pull-to-ack us "
	    "p50 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64 " max %" PRIu64
	    "; cpu s supervisor %.3f workers %.3f", n->pulled, n->acked,
	    n->outcome[OUT_RESTARTED], n->outcome[OUT_SKIPPED],
	    n->outcome[OUT_DUPLICATE], n->outcome[OUT_DEAD], n->nacked,
	    n->termed, hist_quantile(h, 0.5), hist_quantile(h, 0.99),
	    hist_quantile(h, 0.999), h->max,
	    tv_seconds(self.ru_utime) + tv_seconds(self.ru_stime),
	    tv_seconds(kids.ru_utime) + tv_seconds(kids.ru_stime));
	if (s->fleet != NULL) {
		const struct hist *g = &n->grant_time;

		log_always(LOG_INFO, "Fleet summary: %" PRIu64 " grants asked; "
		    "grant us p50 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64
		    " max %" PRIu64 "; %" PRIu64 " outcomes left to another "
		    "instance", g->n, hist_quantile(g, 0.5),
		    hist_quantile(g, 0.99), hist_quantile(g, 0.999), g->max,
		    s->dispatch.not_owner);
	}
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
	if (s->src == NULL)
		return;		/* nothing was set up */
	kill_strays(s, NULL);
	/* Anything still held goes back to the broker before it stops. */
	if (s->dispatch.in_flight > 0) {
		dispatch_nack_all(&s->dispatch, NULL, "exiting");
		dispatch_nack_running(&s->dispatch, "exiting");
	}
	control_close(&s->ctl);
	budget_free(&s->budget);
	pool_free(&s->pool);
	/* Its connection first: the source's stop waits for cnats to end. */
	fleet_free(s->fleet);
	s->fleet = s->dispatch.fleet = NULL;
	s->src->ops->stop(s->src);
	dispatch_free(&s->dispatch);
}
