/*
 * hist: a latency histogram with bounded relative error.
 *
 * Values (microseconds) fall in buckets of 16 per power of two, so any
 * quantile is reported within about 6% of the truth, in constant memory
 * and O(1) per sample: cheap enough to record every message.
 */
#ifndef MANDRILL_HIST_H
#define MANDRILL_HIST_H

#include <stdint.h>

#define HIST_SUB	16
#define HIST_BUCKETS	(60 * HIST_SUB)

struct hist {
	uint64_t	 n;
	uint64_t	 sum;
	uint64_t	 max;
	uint64_t	 b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);
/* The value below which a fraction q of the samples fall (0 if none). */
uint64_t hist_quantile(const struct hist *h, double q);
/* Samples <= v, for cumulative (Prometheus) buckets. */
uint64_t hist_count_le(const struct hist *h, uint64_t v);

#endif
