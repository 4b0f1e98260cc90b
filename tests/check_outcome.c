/*
 * check_outcome: DESIGN.md's outcome table and retry delays.
 */
#include "config.h"

#include <stdlib.h>

#include <check.h>

#include "outcome.h"

START_TEST(test_table)
{
	static const struct { enum outcome o; enum broker_action a; } want[] = {
		{ OUT_RESTARTED, ACT_ACK }, { OUT_SKIPPED, ACT_ACK },
		{ OUT_DRY_RUN, ACT_ACK },
		{ OUT_DUPLICATE, ACT_ACK }, { OUT_DEAD, ACT_ACK },
		{ OUT_INVALID, ACT_TERM }, { OUT_FAILED, ACT_NACK },
		{ OUT_HELD, ACT_HOLD }, { OUT_ERROR, ACT_HOLD },
	};

	ck_assert_int_eq(sizeof(want) / sizeof(want[0]), OUT_COUNT);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(outcome_action(want[i].o) == want[i].a,
		    "%s: %s, want %s", outcome_name(want[i].o),
		    action_name(outcome_action(want[i].o)),
		    action_name(want[i].a));
}
END_TEST

START_TEST(test_failed_backs_off)
{
	ck_assert_int_eq(outcome_delay(OUT_FAILED, 1, 10000, 600000, 0.0), 10000);
	ck_assert_int_eq(outcome_delay(OUT_FAILED, 2, 10000, 600000, 0.0), 20000);
	ck_assert_int_eq(outcome_delay(OUT_FAILED, 3, 10000, 600000, 0.0), 40000);
	ck_assert_int_eq(outcome_delay(OUT_FAILED, 30, 10000, 600000, 0.9), 600000);
	/* jitter adds up to a quarter */
	ck_assert_int_ge(outcome_delay(OUT_FAILED, 1, 10000, 600000, 0.99), 12400);
	ck_assert_int_le(outcome_delay(OUT_FAILED, 1, 10000, 600000, 0.99), 12500);
	/* an error (nothing recorded) backs off the same way */
	ck_assert_int_eq(outcome_delay(OUT_ERROR, 2, 10000, 600000, 0.0), 20000);
	/* attempt 0 (nothing attempted) is treated as the first */
	ck_assert_int_eq(outcome_delay(OUT_ERROR, 0, 10000, 600000, 0.0), 10000);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("outcome");
	TCase *tc = tcase_create("table");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_failed_backs_off);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
