/*
 * window: the hours restarts may start in; see window.h.
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "window.h"

#define ZONEINFO	"/usr/share/zoneinfo"

/* Monday first, as operators write them; the value is tm_wday's. */
static const struct { const char *name; int wday; } day_names[] = {
	{ "Mon", 1 }, { "Tue", 2 }, { "Wed", 3 }, { "Thu", 4 }, { "Fri", 5 },
	{ "Sat", 6 }, { "Sun", 0 },
};

static int
day_of(const char *p, size_t len)
{
	if (len != 3)
		return -1;
	for (size_t i = 0; i < sizeof(day_names) / sizeof(day_names[0]); i++)
		if (strncasecmp(p, day_names[i].name, 3) == 0)
			return day_names[i].wday;
	return -1;
}

/* HH:MM at p, 00:00 to 24:00, into minutes; the characters used, or 0. */
static size_t
hhmm(const char *p, uint16_t *min)
{
	int h, m;

	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) ||
	    p[2] != ':' || !isdigit((unsigned char)p[3]) ||
	    !isdigit((unsigned char)p[4]))
		return 0;
	h = (p[0] - '0') * 10 + (p[1] - '0');
	m = (p[3] - '0') * 10 + (p[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return 0;
	*min = (uint16_t)(h * 60 + m);
	return 5;
}

/* The days part, "" or Day or Day-Day, into a mask of tm_wday bits. */
static int
days_of(const char *p, size_t len, uint8_t *mask)
{
	int a, b;

	if (len == 0) {
		*mask = 0x7f;
		return 0;
	}
	if (len == 3 && (a = day_of(p, 3)) >= 0) {
		*mask = (uint8_t)(1u << a);
		return 0;
	}
	if (len != 7 || p[3] != '-' || (a = day_of(p, 3)) < 0 ||
	    (b = day_of(p + 4, 3)) < 0)
		return -1;
	*mask = 0;
	for (int d = a;; d = (d + 1) % 7) {
		*mask |= (uint8_t)(1u << d);
		if (d == b)
			break;
	}
	return 0;
}

/* One span, trimmed, as "[DAYS ]HH:MM-HH:MM". */
static const char *
span_parse(const char *p, size_t len, struct window_span *s)
{
	const char *t;
	size_t dlen;

	/* The time range is the last 11 characters. */
	if (len < 11)
		return "want [DAYS] HH:MM-HH:MM";
	t = p + len - 11;
	if (hhmm(t, &s->from) != 5 || t[5] != '-' ||
	    hhmm(t + 6, &s->to) != 5)
		return "want a time range HH:MM-HH:MM, 00:00 to 24:00";
	if (s->from == s->to)
		return "the time range is empty";
	if (s->from == 1440)
		return "a range cannot start at 24:00";
	dlen = (size_t)(t - p);
	if (dlen > 0 && t[-1] != ' ' && t[-1] != '\t')
		return "want a space between the days and the hours";
	while (dlen > 0 && (p[dlen - 1] == ' ' || p[dlen - 1] == '\t'))
		dlen--;
	if (days_of(p, dlen, &s->days) < 0)
		return "want a day (Mon ... Sun) or a day range such as Mon-Fri";
	return NULL;
}

int
window_parse(const char *text, struct window *w, char *err, size_t len)
{
	const char *p = text, *why;

	memset(w, 0, sizeof(*w));
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 0;
	for (unsigned item = 1;; item++) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (w->n == WINDOW_MAX)
			why = "too many spans (at most 32)";
		else
			why = n == 0 ? "an empty span" :
			    span_parse(p, n, &w->span[w->n]);
		if (why != NULL) {
			snprintf(err, len, "span %u \"%.*s\": %s", item,
			    (int)(n > 64 ? 64 : n), p, why);
			return -1;
		}
		w->n++;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

int
window_open_tm(const struct window *w, const struct tm *tm)
{
	int day = tm->tm_wday, yesterday = (tm->tm_wday + 6) % 7;
	int min = tm->tm_hour * 60 + tm->tm_min;

	if (w->n == 0)
		return 1;
	for (unsigned i = 0; i < w->n; i++) {
		const struct window_span *s = &w->span[i];

		if (s->to > s->from) {
			if ((s->days & (1u << day)) && min >= s->from &&
			    min < s->to)
				return 1;
			continue;
		}
		/* Past midnight: from its start today, or until its end. */
		if ((s->days & (1u << day)) && min >= s->from)
			return 1;
		if ((s->days & (1u << yesterday)) && min < s->to)
			return 1;
	}
	return 0;
}

int
window_open_at(const struct window *w, time_t now, int64_t *opens)
{
	struct tm tm;
	time_t t;

	*opens = 0;
	if (localtime_r(&now, &tm) == NULL || window_open_tm(w, &tm))
		return 1;
	/* Minute by minute, so that a DST change is read as the wall's. */
	t = now - tm.tm_sec;
	for (int k = 1; k <= WINDOW_SCAN; k++) {
		t += 60;
		if (localtime_r(&t, &tm) != NULL && window_open_tm(w, &tm)) {
			*opens = (int64_t)(t - now);
			return 0;
		}
	}
	*opens = -1;
	return 0;
}

int
window_zone_check(const char *zone, char *err, size_t len)
{
	char path[512], magic[4];
	int fd;

	if (zone[0] == '\0')
		return 0;
	if (zone[0] == '/' || strstr(zone, "..") != NULL ||
	    strspn(zone, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789/_+-") != strlen(zone) || strlen(zone) > 255) {
		snprintf(err, len, "\"%.64s\" is not an IANA zone name (such as "
		    "Europe/Berlin or UTC)", zone);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", ZONEINFO, zone);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, len, "unknown zone \"%s\": no %s", zone, path);
		return -1;
	}
	if (read(fd, magic, sizeof(magic)) != (ssize_t)sizeof(magic) ||
	    memcmp(magic, "TZif", 4) != 0) {
		close(fd);
		snprintf(err, len, "unknown zone \"%s\": %s is not a tz "
		    "database file", zone, path);
		return -1;
	}
	close(fd);
	return 0;
}

void
window_zone_use(const char *zone)
{
	static char *orig;	/* TZ as the process began, or NULL */
	static int saved;

	if (!saved) {
		const char *tz = getenv("TZ");

		orig = tz != NULL ? strdup(tz) : NULL;
		saved = 1;
	}
	if (zone[0] != '\0')
		setenv("TZ", zone, 1);
	else if (orig != NULL)
		setenv("TZ", orig, 1);
	else
		unsetenv("TZ");
	tzset();
}
