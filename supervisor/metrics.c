/*
 * metrics: the Prometheus text file and the periodic status line.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "avail.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "pool.h"

/* Histogram buckets, seconds: from a fast ack to a slow reboot. */
static const double buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
};

static void
counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name,
	    help, name, name, v);
}

static void
gauge(FILE *f, const char *name, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name,
	    name, v);
}

/* A histogram kept in microseconds, published in seconds. */
static void
histogram(FILE *f, const char *name, const char *help, const struct hist *h)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++)
		fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		    buckets[i], hist_count_le(h, (uint64_t)(buckets[i] * 1e6)));
	fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n"
	    "%s_count %" PRIu64 "\n", name, h->n, name, (double)h->sum / 1e6,
	    name, h->n);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

/* Worker processes with an open channel, of every generation. */
static unsigned
running_workers(const struct metrics *m)
{
	return pool_count(m->pool, POOL_ANY_GEN, WP_RUNNING);
}

int
metrics_format(const struct metrics *m, FILE *f)
{
	const struct dispatch *s = m->dispatch;
	const struct counters *n = &s->n;
	const char *why;

	fprintf(f, "# HELP mandrill_build_info The running mandrilld's version."
	    "\n# TYPE mandrill_build_info gauge\n"
	    "mandrill_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	fprintf(f, "# HELP mandrill_start_time_seconds When mandrilld started, "
	    "in seconds since the epoch.\n# TYPE mandrill_start_time_seconds "
	    "gauge\nmandrill_start_time_seconds %.3f\n",
	    (double)m->started_wall / 1000.0);
	counter(f, "mandrill_messages_pulled_total",
	    "Messages received from the source.", n->pulled);
	counter(f, "mandrill_messages_redelivered_total",
	    "Messages received again (delivery count above 1).",
	    n->redelivered);
	fprintf(f, "# HELP mandrill_outcomes_total Outcomes reported by "
	    "workers, by outcome.\n# TYPE mandrill_outcomes_total counter\n");
	for (int o = 0; o < OUT_COUNT; o++)
		fprintf(f, "mandrill_outcomes_total{outcome=\"%s\"} %" PRIu64
		    "\n", outcome_name((enum outcome)o), n->outcome[o]);
	counter(f, "mandrill_messages_acked_total",
	    "Messages acknowledged after their outcome was recorded.",
	    n->acked);
	counter(f, "mandrill_messages_nacked_total",
	    "Messages given back for redelivery.", n->nacked);
	counter(f, "mandrill_messages_terminated_total",
	    "Messages terminated as invalid.", n->termed);
	counter(f, "mandrill_dead_letters_total",
	    "Messages dead-lettered (dead or invalid).",
	    n->outcome[OUT_DEAD] + n->outcome[OUT_INVALID]);
	counter(f, "mandrill_lease_extensions_total",
	    "Ack deadlines extended.", s->leases.extended);
	counter(f, "mandrill_leases_lost_total",
	    "Leases given up (max_lease) or taken back by the broker.",
	    n->lost);
	counter(f, "mandrill_worker_crashes_total",
	    "Workers that exited unexpectedly.", m->avail->crashes);
	counter(f, "mandrill_slow_iterations_total",
	    "Supervisor loop iterations slower than slow_iteration.",
	    m->watch.slow);
	gauge(f, "mandrill_messages_in_flight",
	    "Messages pulled and not yet acked or nacked.", s->in_flight);
	fprintf(f, "# HELP mandrill_messages_held Messages in flight that "
	    "wait, by reason.\n# TYPE mandrill_messages_held gauge\n");
	for (int r = 1; r < HOLD_COUNT; r++)
		fprintf(f, "mandrill_messages_held{reason=\"%s\"} %u\n",
		    hold_name((enum hold)r), s->holds.n[r]);
	fprintf(f, "# HELP mandrill_holds_total Times a message was held, "
	    "by reason.\n# TYPE mandrill_holds_total counter\n");
	for (int r = 1; r < HOLD_COUNT; r++)
		fprintf(f, "mandrill_holds_total{reason=\"%s\"} %" PRIu64 "\n",
		    hold_name((enum hold)r), n->held[r]);
	fprintf(f, "# HELP mandrill_paused 1 while restarts are paused "
	    "([restart] enabled = no, or mandrillctl pause), with the reason."
	    "\n# TYPE mandrill_paused gauge\n");
	if ((why = conf_pause_reason(m->conf)) != NULL) {
		fputs("mandrill_paused{reason=\"", f);
		label_value(f, why);
		fputs("\"} 1\n", f);
	} else
		fputs("mandrill_paused 0\n", f);
	gauge(f, "mandrill_restarts_running", "Restart commands running "
	    "now (mode = command; a simulated restart has no process).",
	    dispatch_commands_running(s));
	gauge(f, "mandrill_jobs_in_workers", "Messages given to a worker and "
	    "not yet settled.", dispatch_on_workers(s));
	gauge(f, "mandrill_source_backlog", "Messages the source still has, "
	    "not yet delivered (nats: the consumer's pending count at the "
	    "latest delivery); -1 before one is known.",
	    (double)s->src->backlog);
	gauge(f, "mandrill_store_failing",
	    "Workers whose database cannot commit now.", s->store_bad);
	gauge(f, "mandrill_wal_bytes", "Size of the database's WAL, as the "
	    "workers last saw it.", (double)pool_max_wal(m->pool));
	gauge(f, "mandrill_workers", "Worker processes running.",
	    running_workers(m));
	histogram(f, "mandrill_pull_to_ack_seconds",
	    "Time from pulling a message to acking it.", &n->ack_latency);
	histogram(f, "mandrill_restart_duration_seconds",
	    "Run time of restarts that were carried out.", &n->restart_time);
	return ferror(f) ? -1 : 0;
}

/*
 * Root writes the file, in a directory others may share (a textfile
 * collector's): a stale temporary file, or a symlink put in its place,
 * is removed, never followed, and the new one must be ours alone.
 */
static FILE *
open_tmp(const char *tmp, char *err, size_t len)
{
	FILE *f;
	int fd;

	if (unlink(tmp) < 0 && errno != ENOENT) {
		snprintf(err, len, "cannot remove the stale %s: %s", tmp,
		    strerror(errno));
		return NULL;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, len, "%s: %s", tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return NULL;
	}
	return f;
}

static int
write_file(const struct metrics *m, const char *path, char *err,
    size_t len)
{
	char tmp[CONF_PATH_MAX + 16];
	struct stat sb;
	FILE *f;
	int rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = open_tmp(tmp, err, len)) == NULL)
		return -1;
	errno = 0;
	rc = metrics_format(m, f);
	if (fclose(f) != 0 || rc < 0) {
		snprintf(err, len, "%s: %s", tmp, errno ? strerror(errno) :
		    "write error");
		unlink(tmp);
		return -1;
	}
	/* rename(2) would replace a symlink, not follow it: refuse it. */
	if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
		snprintf(err, len, "%s is a symlink; refusing to replace it",
		    path);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A failure is logged when it starts, not at every interval. */
int
metrics_write(struct metrics *m)
{
	const char *path = m->conf->metrics_file;
	char err[CONF_PATH_MAX + 128];

	if (path[0] == '\0')
		return 0;
	if (write_file(m, path, err, sizeof(err)) < 0) {
		log_msg(m->write_bad++ == 0 ? LOG_ERR : LOG_DEBUG,
		    "metrics: %s; not written until that changes", err);
		return -1;
	}
	if (m->write_bad > 0)
		log_info("metrics: %s written again", path);
	m->write_bad = 0;
	return 0;
}

static void
write_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	metrics_write(t->data);
}

/*
 * systemctl status shows it: draining, what is in flight, held and why
 * restarts wait.  Sent with each status line and on each change.
 */
void
metrics_notify(const struct metrics *m)
{
	const struct dispatch *s = m->dispatch;
	const char *why = conf_pause_reason(m->conf);
	char buf[512];

	snprintf(buf, sizeof(buf), "STATUS=%s%u in flight, %u held%s%s",
	    m->draining ? "draining: " : "", s->in_flight,
	    hold_total(&s->holds), why ? "; paused: " : "", why ? why : "");
	notify_send(buf);
}

static void
status_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct metrics *m = t->data;
	const struct dispatch *s = m->dispatch;
	struct counters *last = &m->status_last;
	int64_t now = clock_now();
	double secs = (double)(now - m->status_at) / 1000.0;

	if (secs <= 0)
		return;
	log_always(LOG_INFO, "Status: %u in flight, %u workers; per second: "
	    "pulled %.1f, acked %.1f, nacked %.1f, terminated %.1f; "
	    "restarted %" PRIu64 ", failed %" PRIu64 ", dead %" PRIu64
	    ", crashes %" PRIu64 " in all", s->in_flight, running_workers(m),
	    (double)(s->n.pulled - last->pulled) / secs,
	    (double)(s->n.acked - last->acked) / secs,
	    (double)(s->n.nacked - last->nacked) / secs,
	    (double)(s->n.termed - last->termed) / secs,
	    s->n.outcome[OUT_RESTARTED], s->n.outcome[OUT_FAILED],
	    s->n.outcome[OUT_DEAD], m->avail->crashes);
	metrics_notify(m);
	last->pulled = s->n.pulled;
	last->acked = s->n.acked;
	last->nacked = s->n.nacked;
	last->termed = s->n.termed;
	m->status_at = now;
}

static void
arm(struct ev_loop *loop, ev_timer *t, int64_t ms, int on)
{
	ev_timer_stop(loop, t);
	if (on && ms > 0) {
		ev_timer_set(t, (double)ms / 1000.0, (double)ms / 1000.0);
		ev_timer_start(loop, t);
	}
}

void
metrics_reload(struct metrics *m)
{
	arm(m->loop, &m->write_timer, m->conf->metrics_interval,
	    m->conf->metrics_file[0] != '\0');
	arm(m->loop, &m->status_timer, m->conf->status_interval, 1);
	loopwatch_set(&m->watch, m->conf->slow_iteration);
}

void
metrics_init(struct metrics *m, struct ev_loop *loop, const struct conf *c,
    const struct dispatch *d, const struct pool *p, const struct avail *a)
{
	memset(m, 0, sizeof(*m));
	m->loop = loop;
	m->conf = c;
	m->dispatch = d;
	m->pool = p;
	m->avail = a;
	ev_timer_init(&m->write_timer, write_cb, 0., 0.);
	ev_timer_init(&m->status_timer, status_cb, 0., 0.);
	m->write_timer.data = m->status_timer.data = m;
	m->status_at = clock_now();
	m->started_wall = clock_wall();
	loopwatch_init(&m->watch, m->loop, m->conf->slow_iteration);
	metrics_reload(m);
}

void
metrics_stop(struct metrics *m)
{
	ev_timer_stop(m->loop, &m->write_timer);
	ev_timer_stop(m->loop, &m->status_timer);
	loopwatch_stop(&m->watch);
	metrics_write(m);	/* the final counts */
}
