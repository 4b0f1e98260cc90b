/*
 * window: [restart] window, the hours restarts may start in, and
 * timezone, the zone they are read in.
 *
 *   window = Mon-Fri 09:00-17:00, Sat 10:00-12:00
 *
 * A list of spans, each an optional day or day range (Mon..Sun, a range
 * may wrap, as Fri-Mon; none is every day) and a time range HH:MM-HH:MM
 * in the zone's local time.  A span whose end is not after its start
 * runs past midnight into the next day (Fri 22:00-02:00 ends on Saturday
 * at 02:00); 24:00 is the end of the day.  An empty window is always open.
 * Local time comes from localtime_r(), so a DST change moves the hours
 * with the clock on the wall, as an operator reads them.
 */
#ifndef MANDRILL_WINDOW_H
#define MANDRILL_WINDOW_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WINDOW_MAX	32	/* spans in one window */
#define WINDOW_SCAN	(8 * 1440)	/* minutes looked ahead for an opening */

struct window_span {
	uint8_t		 days;		/* bit n: tm_wday n (0 is Sunday) */
	uint16_t	 from, to;	/* minutes after midnight, 0..1440 */
};

struct window {
	unsigned		 n;	/* 0: always open */
	struct window_span	 span[WINDOW_MAX];
};

/* Parse text; -1 with one line in err naming the bad span. */
int window_parse(const char *text, struct window *w, char *err, size_t len);
/* Is the window open at local time tm? */
int window_open_tm(const struct window *w, const struct tm *tm);
/*
 * Is it open at wall time now (seconds)?  When not, *opens is the
 * seconds until the next minute it is open, or -1 if none is within
 * WINDOW_SCAN minutes (a window that never opens).
 */
int window_open_at(const struct window *w, time_t now, int64_t *opens);
/*
 * A zone for [restart] timezone: "" (the system's local time) or an IANA
 * name with a TZif file in the system's tz database; -1 with err.
 */
int window_zone_check(const char *zone, char *err, size_t len);
/* Read local times in zone from now on ("" leaves the process's own). */
void window_zone_use(const char *zone);

#endif
