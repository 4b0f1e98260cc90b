/*
 * backoff: exponential delay with jitter.
 */
#include "config.h"

#include "backoff.h"

int64_t
backoff_delay(int64_t min, int64_t max, uint32_t attempt, double unit)
{
	int64_t d = min;

	for (uint32_t i = 1; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	d += (int64_t)((double)d * 0.25 * unit);
	return d > max ? max : d;
}
