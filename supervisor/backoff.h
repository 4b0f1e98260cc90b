/*
 * backoff: retry delays, as Pub/Sub's retry policy computes them.
 *
 * The delay doubles with each attempt from min to max, then jitter adds
 * up to a quarter more (capped at max), so that messages that failed
 * together do not come back together.
 */
#ifndef MANDRILL_BACKOFF_H
#define MANDRILL_BACKOFF_H

#include <stdint.h>

/* attempt counts from 1; unit is a uniform draw in [0, 1). */
int64_t backoff_delay(int64_t min, int64_t max, uint32_t attempt, double unit);

#endif
