/*
 * check_window: [restart] window and timezone, parsed and judged.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "window.h"

/* Local broken-down time of a weekday (0 Sunday) at HH:MM. */
static struct tm
at(int wday, int hour, int min)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_wday = wday;
	tm.tm_hour = hour;
	tm.tm_min = min;
	return tm;
}

static int
open_at(const char *text, int wday, int hour, int min)
{
	struct window w;
	struct tm tm = at(wday, hour, min);
	char err[256];

	ck_assert_msg(window_parse(text, &w, err, sizeof(err)) == 0,
	    "%s: %s", text, err);
	return window_open_tm(&w, &tm);
}

START_TEST(test_parse_refuses)
{
	static const struct { const char *text, *why; } bad[] = {
		{ "Mon-Fri 9:00-17:00", "time range" },
		{ "Mon-Fri 09:00-17:60", "time range" },
		{ "Mon-Fri 09:00-25:00", "time range" },
		{ "Mon-Fri 24:00-02:00", "cannot start at 24:00" },
		{ "Funday 09:00-10:00", "want a day" },
		{ "Mon-Fry 09:00-10:00", "want a day" },
		{ "Mon 10:00-10:00", "empty" },
		{ "Mon-Fri 09:00-17:00,", "span 2" },
		{ "Mon-Fri 09:00-17:00, , Sat 10:00-12:00", "an empty span" },
		{ "Mon09:00-17:00", "space between" },
		{ "always", "want [DAYS]" },
	};
	struct window w;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(window_parse(bad[i].text, &w, err, sizeof(err)) < 0,
		    "accepted \"%s\"", bad[i].text);
		ck_assert_msg(strstr(err, bad[i].why) != NULL && strchr(err,
		    '\n') == NULL, "\"%s\": error \"%s\" does not say \"%s\"",
		    bad[i].text, err, bad[i].why);
	}
}
END_TEST

START_TEST(test_spans)
{
	const char *office = "Mon-Fri 09:00-17:00, Sat 10:00-12:00";

	ck_assert_int_eq(open_at(office, 1, 9, 0), 1);	/* Monday 09:00 */
	ck_assert_int_eq(open_at(office, 1, 8, 59), 0);
	ck_assert_int_eq(open_at(office, 5, 16, 59), 1);	/* Friday */
	ck_assert_int_eq(open_at(office, 5, 17, 0), 0);	/* the end is out */
	ck_assert_int_eq(open_at(office, 6, 11, 0), 1);	/* Saturday */
	ck_assert_int_eq(open_at(office, 6, 12, 0), 0);
	ck_assert_int_eq(open_at(office, 0, 11, 0), 0);	/* Sunday */
	/* No days: every day; 24:00 is the day's end. */
	ck_assert_int_eq(open_at("20:00-24:00", 0, 23, 59), 1);
	ck_assert_int_eq(open_at("20:00-24:00", 3, 19, 59), 0);
	/* Past midnight belongs to the day it began. */
	ck_assert_int_eq(open_at("Fri 22:00-02:00", 5, 23, 0), 1);
	ck_assert_int_eq(open_at("Fri 22:00-02:00", 6, 1, 59), 1);
	ck_assert_int_eq(open_at("Fri 22:00-02:00", 6, 2, 0), 0);
	ck_assert_int_eq(open_at("Fri 22:00-02:00", 5, 1, 0), 0);
	/* A day range that wraps over the week's end; any case. */
	ck_assert_int_eq(open_at("fri-MON 00:00-24:00", 0, 12, 0), 1);
	ck_assert_int_eq(open_at("fri-MON 00:00-24:00", 1, 12, 0), 1);
	ck_assert_int_eq(open_at("fri-MON 00:00-24:00", 2, 12, 0), 0);
	/* Empty: always. */
	ck_assert_int_eq(open_at("", 3, 3, 3), 1);
	ck_assert_int_eq(open_at("  ", 3, 3, 3), 1);
}
END_TEST

/* The next opening, in a zone with a DST change, minute by minute. */
START_TEST(test_next_opening)
{
	struct window w;
	char err[256];
	int64_t opens;
	time_t t;

	window_zone_use("UTC");
	ck_assert_int_eq(window_parse("Mon-Fri 09:00-17:00", &w, err,
	    sizeof(err)), 0);
	t = 1796634000;		/* 2026-12-07 (a Monday) 09:00:00 UTC */
	ck_assert_int_eq(window_open_at(&w, t, &opens), 1);
	ck_assert_int_eq(opens, 0);
	ck_assert_int_eq(window_open_at(&w, t - 10, &opens), 0);
	ck_assert_int_eq(opens, 10);
	/* Friday 17:00 to Monday 09:00. */
	ck_assert_int_eq(window_open_at(&w, t + 4 * 86400 + 8 * 3600, &opens),
	    0);
	ck_assert_int_eq(opens, 2 * 86400 + 16 * 3600);
	/* Berlin's clocks went forward at 2026-03-29 01:00 UTC. */
	window_zone_use("Europe/Berlin");
	ck_assert_int_eq(window_parse("Sun 03:00-04:00", &w, err, sizeof(err)),
	    0);
	t = 1774742400;		/* 2026-03-29 00:00:00 UTC, 01:00 CET */
	ck_assert_int_eq(window_open_at(&w, t, &opens), 0);
	ck_assert_int_eq(opens, 3600);	/* 03:00 CEST came an hour later */
	window_zone_use("");
}
END_TEST

START_TEST(test_zones)
{
	char err[256];

	ck_assert_int_eq(window_zone_check("", err, sizeof(err)), 0);
	ck_assert_int_eq(window_zone_check("UTC", err, sizeof(err)), 0);
	ck_assert_int_eq(window_zone_check("Europe/Berlin", err, sizeof(err)),
	    0);
	ck_assert_int_eq(window_zone_check("Mars/Olympus_Mons", err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "unknown zone \"Mars/Olympus_Mons\"") != NULL,
	    "%s", err);
	ck_assert_int_eq(window_zone_check("../../etc/passwd", err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not an IANA zone name") != NULL, "%s", err);
	ck_assert_int_eq(window_zone_check("/etc/localtime", err, sizeof(err)),
	    -1);
	/* A directory of the database is no zone. */
	ck_assert_int_eq(window_zone_check("Europe", err, sizeof(err)), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("window");
	TCase *tc = tcase_create("window");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_parse_refuses);
	tcase_add_test(tc, test_spans);
	tcase_add_test(tc, test_next_opening);
	tcase_add_test(tc, test_zones);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
