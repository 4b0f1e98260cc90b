/*
 * metrics: what mandrilld has done, for machines and for people.
 *
 * Every metrics_interval the counters are written to metrics_file in the
 * Prometheus text format, atomically (a temporary file renamed over the
 * old one), for node_exporter's textfile collector.  Every
 * status_interval one status line goes to the log: rates since the last
 * line and the current state, like a daemon's progress bar.
 */
#ifndef MANDRILL_METRICS_H
#define MANDRILL_METRICS_H

#include <stdio.h>

#include <ev.h>

#include "conf.h"
#include "dispatch.h"
#include "loopwatch.h"

struct avail;

/* What it reports on is read only; its own: timers, watch, failed writes. */
struct metrics {
	struct ev_loop		*loop;
	const struct conf	*conf;
	const struct dispatch	*dispatch;
	const struct pool	*pool;
	const struct avail	*avail;
	struct loopwatch	 watch;
	ev_timer		 write_timer;
	unsigned		 write_bad;	/* writes failed in a row */
	ev_timer		 status_timer;
	struct counters		 status_last;	/* at the last status line */
	int64_t			 status_at;
	int64_t			 started_wall;	/* ms */
	int			 draining;	/* set by the supervisor */
};

void metrics_init(struct metrics *m, struct ev_loop *loop,
    const struct conf *c, const struct dispatch *d, const struct pool *p,
    const struct avail *a);
void metrics_reload(struct metrics *m);
/* Tell systemd the state now (STATUS=): on each change. */
void metrics_notify(const struct metrics *m);
void metrics_stop(struct metrics *m);
/* Write the Prometheus text to f; 0 or -1. */
int metrics_format(const struct metrics *m, FILE *f);
/* Write metrics_file now; a failure is logged once until one works. */
int metrics_write(struct metrics *m);

#endif
