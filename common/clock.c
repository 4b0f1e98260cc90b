/*
 * clock: monotonic and wall time, with a fake mode for tests.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include "clock.h"

static int64_t fake_now = -1;

static int64_t
ts_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_now(void)
{
	return fake_now >= 0 ? fake_now : ts_ms(CLOCK_MONOTONIC);
}

int64_t
clock_now_us(void)
{
	struct timespec ts;

	if (fake_now >= 0)
		return fake_now * 1000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_real(void)
{
	return ts_ms(CLOCK_MONOTONIC);
}

int64_t
clock_wall(void)
{
	/* The fake clock starts wall time at an arbitrary fixed epoch. */
	return fake_now >= 0 ? 1796000000000LL + fake_now : ts_ms(CLOCK_REALTIME);
}

void
clock_set_fake(int64_t now_ms)
{
	fake_now = now_ms;
}

void
clock_advance(int64_t ms)
{
	if (fake_now >= 0)
		fake_now += ms;
}

void
clock_iso(int64_t wall_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}
