/*
 * duration: "500ms", "10s", "5m", "1h", "7d" to milliseconds and back.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

static const struct unit {
	const char	*suffix;
	int64_t		 ms;
} units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 },
	{ "s", 1000 }, { "ms", 1 },
};

#define DURATION_MAX (INT64_C(365) * 86400000)	/* one year */

int
duration_parse(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || v < 0)
		return -1;
	if (*end == '\0') {
		if (v != 0)
			return -1;	/* a unit is required */
		*out = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].suffix) == 0) {
			if (v > DURATION_MAX / units[i].ms)
				return -1;
			*out = v * units[i].ms;
			return 0;
		}
	return -1;
}

int
duration_range_parse(const char *s, int64_t *lo, int64_t *hi)
{
	const char *dots = strstr(s, "..");
	char first[64];

	if (dots == NULL)
		return -1;
	if ((size_t)(dots - s) >= sizeof(first))
		return -1;
	memcpy(first, s, dots - s);
	first[dots - s] = '\0';
	if (duration_parse(first, lo) < 0 || duration_parse(dots + 2, hi) < 0)
		return -1;
	return *lo <= *hi ? 0 : -1;
}

const char *
duration_fmt(int64_t ms, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(buf, len, "%" PRId64 "%s", ms / units[i].ms,
			    units[i].suffix);
			return buf;
		}
	snprintf(buf, len, "0s");
	return buf;
}
