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

struct supervisor;

void metrics_init(struct supervisor *s);
void metrics_reload(struct supervisor *s);
void metrics_stop(struct supervisor *s);
/* Write the Prometheus text to f; 0 or -1. */
int metrics_format(const struct supervisor *s, FILE *f);
/* Write metrics_file now. */
int metrics_write(struct supervisor *s);

#endif
