/*
 * clock: monotonic and wall time, with a fake mode for tests.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static int64_t fake_now = -1;
static int64_t wall_step;	/* tests: a step of the wall clock alone */

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
	return wall_step + (fake_now >= 0 ? 1796000000000LL + fake_now :
	    ts_ms(CLOCK_REALTIME));
}

void
clock_step_wall(int64_t ms)
{
	wall_step += ms;
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

/*
 * Called several times per message by the store: the date and time of
 * day are formatted once a second (per thread: a broker library's
 * threads may log), the milliseconds by hand.
 */
void
clock_iso(int64_t wall_ms, char *buf, size_t len)
{
	static _Thread_local int64_t cached_secs = INT64_MIN;
	static _Thread_local char prefix[32];	/* "2026-11-28T10:03:56." */
	int64_t secs = wall_ms / 1000;
	int ms = (int)(wall_ms % 1000);
	char out[25];
	size_t n;

	if (ms < 0) {		/* before 1970: floor, not truncate */
		ms += 1000;
		secs--;
	}
	if (secs != cached_secs) {
		time_t t = (time_t)secs;
		struct tm tm;

		gmtime_r(&t, &tm);
		if (snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:"
		    "%02d.", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec) != 20) {
			/* Beyond year 9999: no cache, the long way. */
			snprintf(buf, len, "%s%03dZ", prefix, ms);
			cached_secs = INT64_MIN;
			return;
		}
		cached_secs = secs;
	}
	memcpy(out, prefix, 20);
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	if (len == 0)
		return;
	n = len - 1 < 24 ? len - 1 : 24;
	memcpy(buf, out, n);
	buf[n] = '\0';
}

void
clock_boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	snprintf(buf, len, "unknown");
	if (f != NULL) {
		if (fgets(buf, (int)len, f) != NULL)
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}
