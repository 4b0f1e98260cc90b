/*
 * check_budget: the error budget's window, by count and by percentage.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "budget.h"
#include "conf.h"

#define MIN	60000

START_TEST(test_count)
{
	struct budget b;
	char why[160];

	budget_init(&b);
	/* Successes never spend it; the third failure in 10m does. */
	ck_assert_int_eq(budget_note(&b, 1000, 0, 3, 0, 10 * MIN, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(budget_note(&b, 2000, 1, 3, 0, 10 * MIN, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(budget_note(&b, 3000, 1, 3, 0, 10 * MIN, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(budget_note(&b, 4000, 1, 3, 0, 10 * MIN, why,
	    sizeof(why)), 1);
	ck_assert_str_eq(why, "error budget: 3 of 4 attempts failed in 10m "
	    "(max_failures 3)");
	/* Out of the window, the old failures no longer count. */
	ck_assert_int_eq(budget_note(&b, 4000 + 10 * MIN, 1, 3, 0, 10 * MIN,
	    why, sizeof(why)), 0);
	ck_assert_uint_eq(b.failed, 1);	/* all four are a window old: gone */
	budget_reset(&b);
	ck_assert_uint_eq(b.failed, 0);
	ck_assert_int_eq(budget_note(&b, 1, 1, 0, 0, MIN, why, sizeof(why)),
	    0);	/* no budget */
	budget_free(&b);
}
END_TEST

START_TEST(test_percentage_and_growth)
{
	struct budget b;
	char why[160];
	int spent = 0, at = 0;

	budget_init(&b);
	/* 1 in 3 fails: 40% is never spent, over a window of 1000. */
	for (int i = 1; i <= 1000; i++)
		spent |= budget_note(&b, i, i % 3 == 0, 40, 1, 10 * MIN, why,
		    sizeof(why));
	ck_assert_int_eq(spent, 0);
	ck_assert_uint_eq(b.len, 1000);
	budget_reset(&b);
	/* Every one fails: judged only from the tenth attempt on. */
	for (int i = 1; i <= 20 && !at; i++)
		if (budget_note(&b, i, 1, 40, 1, 10 * MIN, why, sizeof(why)))
			at = i;
	ck_assert_int_eq(at, BUDGET_MIN_ATTEMPTS);
	ck_assert_str_eq(why, "error budget: 10 of 10 attempts failed in 10m "
	    "(max_failures 40%)");
	budget_free(&b);
}
END_TEST

START_TEST(test_conf_syntax)
{
	unsigned n;
	int pct;

	ck_assert_int_eq(conf_max_failures("", &n, &pct), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(conf_max_failures("4", &n, &pct), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(pct, 0);
	ck_assert_int_eq(conf_max_failures("25%", &n, &pct), 0);
	ck_assert_uint_eq(n, 25);
	ck_assert_int_eq(pct, 1);
	ck_assert_int_eq(conf_max_failures("0", NULL, NULL), -1);
	ck_assert_int_eq(conf_max_failures("101%", NULL, NULL), -1);
	ck_assert_int_eq(conf_max_failures("-3", NULL, NULL), -1);
	ck_assert_int_eq(conf_max_failures("3 %", NULL, NULL), -1);
	ck_assert_int_eq(conf_max_failures("lots", NULL, NULL), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("budget");
	TCase *tc = tcase_create("budget");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_count);
	tcase_add_test(tc, test_percentage_and_growth);
	tcase_add_test(tc, test_conf_syntax);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
