/*
 * check_admit: the admission table, one row per rule.
 *
 * Every way a message's row and the rules can stand, and the verdict
 * each must give: the table users rely on (a duplicate is never
 * restarted, a conflict is never merged, waiting is a hold and never an
 * attempt, crashes and attempts end in dead), checked without SQLite.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "admit.h"

static const struct admit_rules base = {
	.max_attempts = 3, .max_crashes = 2, .min_interval = 60000,
	.enabled = 1, .max_concurrent = 2, .max_per_minute = 5,
};

START_TEST(test_row_table)
{
	static const struct {
		const char *name;
		struct admit_row row;
		const char *host;
		enum admit_verdict want;
		enum hold hold;
		const char *why;	/* a part of the reason */
	} t[] = {
		{ "new message", { 0 }, "a", AV_NEXT, HOLD_NONE, "" },
		{ "received, retried", { 1, "received", "a", 0, 0, 0, NULL },
		  "a", AV_NEXT, HOLD_NONE, "" },
		{ "failed, attempts left", { 1, "failed", "a", 2, 0, 0, NULL },
		  "a", AV_NEXT, HOLD_NONE, "" },
		{ "restarted: duplicate", { 1, "restarted", "a", 1, 0, 0, NULL },
		  "a", AV_DUPLICATE, HOLD_NONE, "already restarted" },
		{ "skipped: duplicate", { 1, "skipped", "a", 0, 0, 0, NULL },
		  "a", AV_DUPLICATE, HOLD_NONE, "already skipped" },
		{ "dead: duplicate", { 1, "dead", "a", 3, 0, 0, NULL },
		  "a", AV_DUPLICATE, HOLD_NONE, "already dead" },
		{ "invalid: duplicate", { 1, "invalid", "a", 0, 0, 0, NULL },
		  "a", AV_DUPLICATE, HOLD_NONE, "already invalid" },
		{ "another host: conflict", { 1, "restarted", "a", 1, 0, 0, NULL },
		  "b", AV_CONFLICT, HOLD_NONE, "names host b, but was first "
		  "seen for host a" },
		{ "conflict while running", { 1, "restarting", "a", 1, 0, 1,
		  "7:1" }, "b", AV_CONFLICT, HOLD_NONE, "conflict" },
		{ "restarting, owner alive", { 1, "restarting", "a", 1, 0, 1,
		  "7:1" }, "a", AV_HELD, HOLD_MSG_ID, "worker 7:1" },
		{ "restarting, owner dead", { 1, "restarting", "a", 1, 0, 0,
		  "7:1" }, "a", AV_LOST, HOLD_NONE, "outcome unknown" },
		{ "out of attempts", { 1, "failed", "a", 3, 0, 0, NULL },
		  "a", AV_DEAD, HOLD_NONE, "no attempts left" },
		{ "crashes reached", { 1, "received", "a", 0, 2, 0, NULL },
		  "a", AV_DEAD, HOLD_NONE, "2 workers lost" },
		{ "new, crashes reached", { 0, NULL, NULL, 0, 2, 0, NULL },
		  "a", AV_DEAD, HOLD_NONE, "max_crashes 2" },
		{ "one crash short", { 1, "received", "a", 0, 1, 0, NULL },
		  "a", AV_NEXT, HOLD_NONE, "" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct admit_decision d;

		admit_row(&t[i].row, t[i].host, &base, &d);
		ck_assert_msg(d.verdict == t[i].want, "%s: verdict %d, want %d",
		    t[i].name, d.verdict, t[i].want);
		ck_assert_msg(d.hold == t[i].hold, "%s: hold %s", t[i].name,
		    hold_name(d.hold));
		ck_assert_msg(strstr(d.why, t[i].why) != NULL, "%s: \"%s\"",
		    t[i].name, d.why);
	}
}
END_TEST

START_TEST(test_host_table)
{
	struct admit_rules paused = base, nolimits = base, closed = base;
	struct admit_rules closed_long = base, closed_never = base;
	struct admit_rules grouped = base, closed_paused = base;

	closed.window_opens = 7000;
	closed_long.window_opens = 3600000;
	closed_never.window_opens = -1;
	closed_paused.window_opens = 7000;
	closed_paused.enabled = 0;
	grouped.max_per_group = 1;
	paused.enabled = 0;
	nolimits.min_interval = 0;
	nolimits.max_concurrent = nolimits.max_per_minute = 0;
	{
	const struct {
		const char *name;
		const struct admit_rules *r;
		struct admit_host h;
		enum admit_verdict want;
		enum hold hold;
		int64_t retry;
	} t[] = {
		{ "idle host: go", &base, { 0, -1, NULL, 0, 0, 0 }, AV_GO,
		  HOLD_NONE, 0 },
		{ "paused", &paused, { 0, -1, NULL, 0, 0, 0 }, AV_HELD,
		  HOLD_PAUSED, 0 },
		{ "paused beats busy", &paused, { 1, -1, NULL, 0, 0, 0 },
		  AV_HELD, HOLD_PAUSED, 0 },
		{ "host busy", &base, { 1, -1, NULL, 0, 0, 0 }, AV_HELD,
		  HOLD_HOST, 0 },
		{ "busy beats recent", &base, { 1, 10, "t", 0, 0, 0 }, AV_HELD,
		  HOLD_HOST, 0 },
		{ "restarted 10 s ago", &base, { 0, 10000, "t", 0, 0, 0 },
		  AV_SKIPPED, HOLD_NONE, 0 },
		{ "restarted 60 s ago", &base, { 0, 60000, "t", 0, 0, 0 },
		  AV_GO, HOLD_NONE, 0 },
		{ "recent beats the limits", &base, { 0, 5, "t", 2, 5, 100 },
		  AV_SKIPPED, HOLD_NONE, 0 },
		{ "2 running of 2", &base, { 0, -1, NULL, 2, 0, 0 }, AV_HELD,
		  HOLD_CONCURRENCY, 0 },
		{ "1 running of 2", &base, { 0, -1, NULL, 1, 0, 0 }, AV_GO,
		  HOLD_NONE, 0 },
		{ "5 this minute of 5", &base, { 0, -1, NULL, 0, 5, 4200 },
		  AV_HELD, HOLD_RATE, 4200 },
		{ "rate without a hint", &base, { 0, -1, NULL, 0, 5, 0 },
		  AV_HELD, HOLD_RATE, 1000 },
		{ "4 this minute of 5", &base, { 0, -1, NULL, 0, 4, 100 },
		  AV_GO, HOLD_NONE, 0 },
		{ "no limits", &nolimits, { 0, 5, "t", 99, 99, 1 }, AV_GO,
		  HOLD_NONE, 0 },
		{ "outside the window: held until it opens", &closed,
		  { 0, -1, NULL, 0, 0, 0 }, AV_HELD, HOLD_WINDOW, 7000 },
		{ "outside for an hour: looked at each minute", &closed_long,
		  { 0, -1, NULL, 0, 0, 0 }, AV_HELD, HOLD_WINDOW, 60000 },
		{ "a window that does not open", &closed_never,
		  { 0, -1, NULL, 0, 0, 0 }, AV_HELD, HOLD_WINDOW, 60000 },
		{ "the window beats min_interval", &closed,
		  { 0, 5, "t", 0, 0, 0 }, AV_HELD, HOLD_WINDOW, 7000 },
		{ "paused beats the window", &closed_paused,
		  { 0, -1, NULL, 0, 0, 0 }, AV_HELD, HOLD_PAUSED, 0 },
		{ "1 running in the group of 1", &grouped,
		  { 0, -1, NULL, 0, 0, 0, "rack-a", 1 }, AV_HELD, HOLD_GROUP, 0 },
		{ "0 running in the group of 1", &grouped,
		  { 0, -1, NULL, 1, 0, 0, "rack-a", 0 }, AV_GO, HOLD_NONE, 0 },
		{ "no group: the group limit does not apply", &grouped,
		  { 0, -1, NULL, 1, 0, 0, NULL, 5 }, AV_GO, HOLD_NONE, 0 },
		{ "max_concurrent beats the group", &grouped,
		  { 0, -1, NULL, 2, 0, 0, "rack-a", 1 }, AV_HELD,
		  HOLD_CONCURRENCY, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct admit_decision d;

		admit_host(&t[i].h, "cattle-1", t[i].r, &d);
		ck_assert_msg(d.verdict == t[i].want, "%s: verdict %d, want %d",
		    t[i].name, d.verdict, t[i].want);
		ck_assert_msg(d.hold == t[i].hold, "%s: hold %s", t[i].name,
		    hold_name(d.hold));
		ck_assert_msg(d.retry == t[i].retry, "%s: retry %lld",
		    t[i].name, (long long)d.retry);
		if (d.verdict != AV_GO)
			ck_assert_msg(d.why[0] != '\0', "%s: no reason",
			    t[i].name);
	}
	}
}
END_TEST

START_TEST(test_lost_attempt)
{
	ck_assert_int_eq(admit_lost_is_dead(2, &base), 0);
	ck_assert_int_eq(admit_lost_is_dead(3, &base), 1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("admit");
	TCase *tc = tcase_create("table");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_row_table);
	tcase_add_test(tc, test_host_table);
	tcase_add_test(tc, test_lost_attempt);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
