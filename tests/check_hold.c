/*
 * check_hold: when held messages are offered again.
 *
 * Driven by hold_run() with a test clock and no loop: fallbacks per
 * reason, hints, wake-ups by host and by slot, the spacing that keeps a
 * reason from becoming a tight loop, and the store and crash backoff.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "clock.h"
#include "hold.h"

static struct holds h;
static struct rng rng;
static struct hold_node *offered[16];
static int noffered;

static void
offer(void *arg, struct hold_node *n)
{
	(void)arg;
	if (noffered < 16)
		offered[noffered++] = n;
}

static void
setup(void)
{
	rng_seed(&rng, 42);
	hold_init(&h, NULL, &rng, offer, NULL);
	noffered = 0;
}

static void
teardown(void)
{
	hold_free(&h);
}

/* Run the clock forward in 10 ms steps until something is offered. */
static int64_t
time_to_offer(int64_t now, int64_t limit)
{
	for (int64_t t = now; t <= now + limit; t += 10) {
		hold_run(&h, t);
		if (noffered > 0)
			return t - now;
	}
	return -1;
}

START_TEST(test_fallbacks)
{
	static const struct { enum hold r; int64_t min, max; } want[] = {
		{ HOLD_PAUSED, 30000, 37500 }, { HOLD_HOST, 30000, 37500 },
		{ HOLD_CONCURRENCY, 10000, 12500 }, { HOLD_NONE, 1000, 1260 },
		{ HOLD_STORE, 1000, 1260 }, { HOLD_CRASH, 1000, 1260 },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct hold_node n = { 0 };
		int64_t t;

		noffered = 0;
		ck_assert_int_eq(hold_add(&h, &n, want[i].r, "a", 0, 0), 0);
		t = time_to_offer(0, 60000);
		ck_assert_msg(t >= want[i].min && t <= want[i].max,
		    "%s: offered after %lld ms", hold_name(want[i].r),
		    (long long)t);
		ck_assert_ptr_eq(offered[0], &n);
		ck_assert_int_eq(n.held, 0);
	}
	ck_assert_uint_eq(hold_total(&h), 0);
}
END_TEST

START_TEST(test_rate_hint)
{
	struct hold_node n = { 0 };
	int64_t t;

	ck_assert_int_eq(hold_add(&h, &n, HOLD_RATE, NULL, 42000, 0), 0);
	t = time_to_offer(0, 70000);
	ck_assert_int_ge(t, 42000);
	ck_assert_int_le(t, 42000 + 42000 / 4);
}
END_TEST

/*
 * A closed window's minute, a pause's 30 s: no wait may outlast half of
 * max_lease, or the lease is given up while the message waits.
 */
START_TEST(test_max_delay)
{
	struct hold_node n = { 0 }, p = { 0 };
	int64_t t;

	h.max_delay = 2500;	/* max_lease 5s */
	ck_assert_int_eq(hold_add(&h, &n, HOLD_WINDOW, NULL, 60000, 0), 0);
	t = time_to_offer(0, 70000);
	ck_assert_msg(t >= 0 && t <= 2500, "window hold offered after %lld ms",
	    (long long)t);
	noffered = 0;
	ck_assert_int_eq(hold_add(&h, &p, HOLD_PAUSED, NULL, 0, 10000), 0);
	t = time_to_offer(10000, 70000);
	ck_assert_msg(t >= 0 && t <= 2500, "pause hold offered after %lld ms",
	    (long long)t);
}
END_TEST

START_TEST(test_wake_by_host)
{
	struct hold_node a = { 0 }, b = { 0 };

	ck_assert_int_eq(hold_add(&h, &a, HOLD_HOST, "cattle-1", 0, 0), 0);
	ck_assert_int_eq(hold_add(&h, &b, HOLD_HOST, "cattle-2", 0, 0), 0);
	ck_assert_uint_eq(h.n[HOLD_HOST], 2);
	hold_wake(&h, HOLD_HOST, "cattle-2", 5000);
	ck_assert_int_le(time_to_offer(5000, 1000), HOLD_JITTER);
	ck_assert_int_eq(noffered, 1);
	ck_assert_ptr_eq(offered[0], &b);
	ck_assert_int_eq(a.held, 1);
	hold_remove(&h, &a);
	ck_assert_uint_eq(hold_total(&h), 0);
}
END_TEST

START_TEST(test_wake_one_is_oldest)
{
	struct hold_node a = { 0 }, b = { 0 };

	ck_assert_int_eq(hold_add(&h, &a, HOLD_CONCURRENCY, NULL, 0, 0), 0);
	ck_assert_int_eq(hold_add(&h, &b, HOLD_CONCURRENCY, NULL, 0, 1), 0);
	ck_assert_int_eq(hold_wake_one(&h, HOLD_CONCURRENCY, 2000), 1);
	ck_assert_int_ge(time_to_offer(2000, 1000), 0);
	ck_assert_int_eq(noffered, 1);
	ck_assert_ptr_eq(offered[0], &a);
	ck_assert_int_eq(hold_wake_one(&h, HOLD_PAUSED, 2000), 0);
}
END_TEST

/* Offered, held again and woken at once: not before HOLD_MIN_GAP. */
START_TEST(test_min_gap)
{
	struct hold_node n = { 0 };

	ck_assert_int_eq(hold_add(&h, &n, HOLD_HOST, "x", 0, 0), 0);
	hold_wake(&h, HOLD_HOST, "x", 0);
	ck_assert_int_ge(time_to_offer(0, 1000), 0);
	noffered = 0;
	ck_assert_int_eq(hold_add(&h, &n, HOLD_HOST, "x", 0, n.last_offer), 0);
	hold_wake(&h, HOLD_HOST, "x", n.last_offer);
	ck_assert_int_ge(time_to_offer(n.last_offer, 1000), HOLD_MIN_GAP - 10);
}
END_TEST

START_TEST(test_backoff_doubles_and_caps)
{
	struct hold_node n = { 0 };
	int64_t t, now = 0, prev = 0;

	for (int i = 0; i < 10; i++) {
		noffered = 0;
		ck_assert_int_eq(hold_add(&h, &n, HOLD_STORE, NULL, 0, now), 0);
		t = time_to_offer(now, 2 * HOLD_BACKOFF_MAX);
		ck_assert_int_ge(t, prev);
		ck_assert_int_le(t, HOLD_BACKOFF_MAX + HOLD_BACKOFF_MAX / 4 + 10);
		prev = t < HOLD_BACKOFF_MAX ? t : HOLD_BACKOFF_MAX;
		now += t;
	}
	ck_assert_int_ge(prev, HOLD_BACKOFF_MAX);
	hold_forget_backoff(&n);
	noffered = 0;
	ck_assert_int_eq(hold_add(&h, &n, HOLD_STORE, NULL, 0, now), 0);
	ck_assert_int_le(time_to_offer(now, 5000), 1260);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hold");
	TCase *tc = tcase_create("hold");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fallbacks);
	tcase_add_test(tc, test_rate_hint);
	tcase_add_test(tc, test_max_delay);
	tcase_add_test(tc, test_wake_by_host);
	tcase_add_test(tc, test_wake_one_is_oldest);
	tcase_add_test(tc, test_min_gap);
	tcase_add_test(tc, test_backoff_doubles_and_caps);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
