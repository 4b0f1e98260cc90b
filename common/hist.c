/*
 * hist: log-linear buckets (HdrHistogram's idea, in a few lines).
 */
#include "config.h"

#include "hist.h"

static unsigned
bucket_of(uint64_t v)
{
	unsigned k, idx;

	if (v < HIST_SUB)
		return (unsigned)v;
	k = 63 - (unsigned)__builtin_clzll(v);		/* v >= 2^k, k >= 4 */
	idx = (k - 3) * HIST_SUB + (unsigned)((v >> (k - 4)) & (HIST_SUB - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The largest value that falls in bucket idx. */
static uint64_t
bucket_top(unsigned idx)
{
	unsigned k, sub;

	if (idx < HIST_SUB)
		return idx;
	k = idx / HIST_SUB + 3;
	sub = idx % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub + 1) << (k - 4)) - 1;
}

void
hist_add(struct hist *h, uint64_t v)
{
	h->b[bucket_of(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(q * (double)h->n);
	if (want >= h->n)
		want = h->n - 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want) {
			uint64_t top = bucket_top(i);
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}

uint64_t
hist_count_le(const struct hist *h, uint64_t v)
{
	uint64_t n = 0;
	unsigned last = bucket_of(v);

	/* Whole buckets only: a bucket counts if its top is <= v. */
	for (unsigned i = 0; i <= last; i++)
		if (bucket_top(i) <= v || i < last)
			n += h->b[i];
	return n;
}
