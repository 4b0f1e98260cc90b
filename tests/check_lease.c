/*
 * check_lease: the deadline heap, the lease table and retry backoff.
 *
 * The lease table runs without a loop here (loop = NULL): the tests
 * drive it with lease_run() and the fake clock, so that two thirds of a
 * window, max_lease and lost leases are checked without sleeping.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "backoff.h"
#include "clock.h"
#include "heap.h"
#include "lease.h"

/* Heap ------------------------------------------------------------------ */

struct item {
	struct heap_node hn;
	int		 id;
};

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Every parent is no later than its children; indexes are right. */
static void
check_heap(const struct heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		ck_assert_msg(h->v[i]->idx == i, "node at %zu has idx %zu", i,
		    h->v[i]->idx);
		if (i > 0)
			ck_assert_msg(h->v[(i - 1) / 2]->key <= h->v[i]->key,
			    "heap order broken at %zu", i);
	}
}

/* Pop everything: keys come out sorted, and the count is right. */
static void
drain_sorted(struct heap *h, size_t expect)
{
	struct heap_node *n;
	int64_t last = INT64_MIN;
	size_t got = 0;

	while ((n = heap_pop(h)) != NULL) {
		ck_assert_msg(n->key >= last, "popped %" PRId64 " after %"
		    PRId64, n->key, last);
		ck_assert(n->idx == HEAP_NONE);
		last = n->key;
		got++;
	}
	ck_assert_uint_eq(got, expect);
	ck_assert_uint_eq(h->n, 0);
	ck_assert_ptr_null(heap_top(h));
}

START_TEST(test_heap_sorted)
{
	enum { N = 1000 };
	struct item *it = calloc(N, sizeof(*it));
	struct heap h;
	uint64_t seed = 88172645463325252ULL;

	heap_init(&h);
	ck_assert_ptr_null(heap_top(&h));
	ck_assert_ptr_null(heap_pop(&h));
	for (int i = 0; i < N; i++) {
		/* Small range: many equal keys too. */
		ck_assert_int_eq(heap_push(&h, &it[i].hn,
		    (int64_t)(xorshift(&seed) % 500) - 250), 0);
		ck_assert(heap_contains(&it[i].hn));
	}
	check_heap(&h);
	drain_sorted(&h, N);
	for (int i = 0; i < N; i++)
		ck_assert(!heap_contains(&it[i].hn));
	heap_free(&h);
	free(it);
}
END_TEST

START_TEST(test_heap_remove_middle)
{
	enum { N = 2000 };
	struct item *it = calloc(N, sizeof(*it));
	struct heap h;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	size_t left = N;

	heap_init(&h);
	for (int i = 0; i < N; i++) {
		it[i].id = i;
		ck_assert_int_eq(heap_push(&h, &it[i].hn,
		    (int64_t)(xorshift(&seed) % 100000)), 0);
	}
	/* Remove every third item, wherever it sits in the heap. */
	for (int i = 0; i < N; i += 3) {
		heap_remove(&h, &it[i].hn);
		ck_assert(it[i].hn.idx == HEAP_NONE);
		left--;
		check_heap(&h);
	}
	ck_assert_uint_eq(h.n, left);
	/* Removing twice is harmless (a lease given back after it was lost). */
	heap_remove(&h, &it[0].hn);
	ck_assert_uint_eq(h.n, left);
	/* Removing the last slot and the top. */
	heap_remove(&h, h.v[h.n - 1]);
	heap_remove(&h, h.v[0]);
	left -= 2;
	check_heap(&h);
	drain_sorted(&h, left);
	heap_free(&h);
	free(it);
}
END_TEST

START_TEST(test_heap_update)
{
	enum { N = 500 };
	struct item *it = calloc(N, sizeof(*it));
	struct heap h;
	uint64_t seed = 12345;

	heap_init(&h);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(heap_push(&h, &it[i].hn,
		    1000 + (int64_t)(xorshift(&seed) % 100000)), 0);

	/* Up: a node deep in the heap becomes the earliest. */
	heap_update(&h, &it[N - 1].hn, 5);
	check_heap(&h);
	ck_assert_ptr_eq(heap_top(&h), &it[N - 1].hn);
	/* Down: the top becomes the latest. */
	heap_update(&h, &it[N - 1].hn, 1000000);
	check_heap(&h);
	ck_assert_ptr_ne(heap_top(&h), &it[N - 1].hn);
	/* Many random moves both ways keep the heap valid. */
	for (int r = 0; r < 5000; r++) {
		struct item *x = &it[xorshift(&seed) % N];

		heap_update(&h, &x->hn, (int64_t)(xorshift(&seed) % 200000));
	}
	check_heap(&h);
	/* The latest key comes out last. */
	heap_update(&h, &it[7].hn, INT64_MAX);
	{
		struct heap_node *n, *last = NULL;

		while ((n = heap_pop(&h)) != NULL)
			last = n;
		ck_assert_ptr_eq(last, &it[7].hn);
	}
	heap_free(&h);
	free(it);
}
END_TEST

START_TEST(test_heap_large)
{
	enum { N = 100000 };
	struct item *it = calloc(N, sizeof(*it));
	struct heap h;
	uint64_t seed = 0xdeadbeefULL;

	heap_init(&h);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(heap_push(&h, &it[i].hn,
		    (int64_t)(xorshift(&seed) % 3600000)), 0);
	ck_assert_uint_eq(h.n, N);
	check_heap(&h);
	/* Half out from anywhere, half popped in order. */
	for (int i = 1; i < N; i += 2)
		heap_remove(&h, &it[i].hn);
	check_heap(&h);
	drain_sorted(&h, N / 2);
	heap_free(&h);
	ck_assert_ptr_null(h.v);
	free(it);
}
END_TEST

/* Leases ---------------------------------------------------------------- */

#define WINDOW		10000
#define MAX_LEASE	60000

struct rec {
	int		 extends;
	int		 losts;
	int		 fail;		/* extend answers -1 */
	int64_t		 last_ms;
	int64_t		 last_now;
	struct lease	*last;
	char		 why[128];
};

static int
rec_extend(void *arg, struct lease *l, int64_t ms)
{
	struct rec *r = arg;

	r->extends++;
	r->last_ms = ms;
	r->last_now = clock_now();
	r->last = l;
	return r->fail ? -1 : 0;
}

static void
rec_lost(void *arg, struct lease *l, const char *why)
{
	struct rec *r = arg;

	r->losts++;
	r->last = l;
	snprintf(r->why, sizeof(r->why), "%s", why);
}

static void
table_max(struct lease_table *lt, struct rec *r, int64_t max_lease)
{
	memset(r, 0, sizeof(*r));
	lease_table_init(lt, NULL, WINDOW, max_lease, rec_extend, rec_lost, r);
}

static void
table(struct lease_table *lt, struct rec *r)
{
	table_max(lt, r, MAX_LEASE);
}

/* The fake clock and the table move together. */
static void
run_at(struct lease_table *lt, int64_t t)
{
	clock_set_fake(t);
	lease_run(lt, clock_now());
}

START_TEST(test_lease_two_thirds)
{
	struct lease_table lt;
	struct rec r;
	struct lease l;
	int64_t due;

	table(&lt, &r);
	clock_set_fake(0);
	ck_assert_int_eq(lease_next_due(&lt), -1);
	ck_assert_int_eq(lease_add(&lt, &l, clock_now()), 0);
	ck_assert_uint_eq(lease_count(&lt), 1);
	ck_assert_int_eq(l.start, 0);
	ck_assert_int_eq(l.end, WINDOW);
	due = lease_next_due(&lt);
	ck_assert_int_eq(due, WINDOW - WINDOW / 3);	/* 6667 */

	run_at(&lt, 6000);
	ck_assert_int_eq(r.extends, 0);
	run_at(&lt, due - 1);
	ck_assert_int_eq(r.extends, 0);

	run_at(&lt, due);
	ck_assert_int_eq(r.extends, 1);
	ck_assert_ptr_eq(r.last, &l);
	ck_assert_int_eq(r.last_ms, WINDOW);
	ck_assert_int_eq(l.end, due + WINDOW);
	ck_assert_uint_eq(lt.extended, 1);
	/* Running again at the same time does not extend twice. */
	run_at(&lt, due);
	ck_assert_int_eq(r.extends, 1);
	/* The next extension is again two thirds into the new window. */
	ck_assert_int_eq(lease_next_due(&lt), l.end - WINDOW / 3);
	ck_assert_int_gt(lease_next_due(&lt), due);
	ck_assert_int_lt(lease_next_due(&lt), l.end);

	/* It stays alive, always before the broker's deadline. */
	for (int i = 0; i < 5; i++) {
		int64_t before = l.end;

		due = lease_next_due(&lt);
		ck_assert_int_lt(due, before);
		run_at(&lt, due);
		ck_assert_int_eq(l.end, due + WINDOW);
	}
	ck_assert_int_eq(r.extends, 6);
	ck_assert_uint_eq(lt.extended, (uint64_t)r.extends);
	ck_assert_int_eq(r.losts, 0);
	ck_assert_uint_eq(lease_count(&lt), 1);
	lease_table_free(&lt);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_lease_late_run)
{
	/* A late timer still extends from now, by a whole window. */
	struct lease_table lt;
	struct rec r;
	struct lease l;

	table(&lt, &r);
	clock_set_fake(1000);
	lease_add(&lt, &l, clock_now());
	run_at(&lt, 9000);
	ck_assert_int_eq(r.extends, 1);
	ck_assert_int_eq(r.last_ms, WINDOW);
	ck_assert_int_eq(l.end, 9000 + WINDOW);
	lease_table_free(&lt);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_lease_max_lease)
{
	struct lease_table lt;
	struct rec r;
	struct lease l, other;
	int64_t due, limit = 500 + MAX_LEASE;
	int guard = 0;

	table(&lt, &r);
	clock_set_fake(500);
	lease_add(&lt, &l, clock_now());
	clock_set_fake(501);
	lease_add(&lt, &other, clock_now());
	lease_remove(&lt, &other);	/* only l in this test */

	while (r.losts == 0 && guard++ < 100) {
		due = lease_next_due(&lt);
		ck_assert_int_ge(due, 0);
		run_at(&lt, due);
		ck_assert_msg(l.end <= limit, "end %" PRId64 " beyond start + "
		    "max_lease %" PRId64, l.end, limit);
	}
	ck_assert_int_eq(r.losts, 1);
	ck_assert_msg(strstr(r.why, "max_lease") != NULL, "why: %s", r.why);
	ck_assert_ptr_eq(r.last, &l);
	/* Given up exactly at start + max_lease, not earlier. */
	ck_assert_int_eq(clock_now(), limit);
	/* The last extension was cut short to end at the limit. */
	ck_assert_int_eq(r.last_now + r.last_ms, limit);
	ck_assert_int_lt(r.last_ms, WINDOW);
	ck_assert_int_eq(l.end, limit);
	ck_assert_uint_eq(lt.extended, (uint64_t)r.extends);
	ck_assert_uint_eq(lt.expired, 1);
	ck_assert_uint_eq(lease_count(&lt), 0);
	ck_assert_int_eq(lease_next_due(&lt), -1);

	/* Nothing more happens to it. */
	run_at(&lt, limit + 100000);
	ck_assert_int_eq(r.losts, 1);
	/* The owner removing it afterwards is harmless. */
	lease_remove(&lt, &l);
	ck_assert_uint_eq(lease_count(&lt), 0);
	lease_table_free(&lt);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_lease_extend_fails)
{
	struct lease_table lt;
	struct rec r;
	struct lease a, b;

	table(&lt, &r);
	clock_set_fake(0);
	lease_add(&lt, &a, 0);
	lease_add(&lt, &b, 5000);
	ck_assert_uint_eq(lease_count(&lt), 2);

	r.fail = 1;
	run_at(&lt, lease_next_due(&lt));
	ck_assert_int_eq(r.extends, 1);
	ck_assert_int_eq(r.losts, 1);
	ck_assert_ptr_eq(r.last, &a);
	ck_assert_msg(r.why[0] != '\0', "lost without a reason");
	ck_assert_uint_eq(lease_count(&lt), 1);
	ck_assert_uint_eq(lt.expired, 1);
	ck_assert_uint_eq(lt.extended, 0);

	/* The other lease is unaffected. */
	r.fail = 0;
	run_at(&lt, lease_next_due(&lt));
	ck_assert_int_eq(r.extends, 2);
	ck_assert_ptr_eq(r.last, &b);
	ck_assert_int_eq(r.losts, 1);
	ck_assert_uint_eq(lease_count(&lt), 1);
	lease_table_free(&lt);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_lease_remove_before_due)
{
	struct lease_table lt;
	struct rec r;
	struct lease l;

	table(&lt, &r);
	clock_set_fake(0);
	lease_add(&lt, &l, 0);
	run_at(&lt, 3000);
	lease_remove(&lt, &l);
	ck_assert_uint_eq(lease_count(&lt), 0);
	ck_assert_int_eq(lease_next_due(&lt), -1);
	run_at(&lt, 2 * MAX_LEASE);
	ck_assert_int_eq(r.extends, 0);
	ck_assert_int_eq(r.losts, 0);
	lease_table_free(&lt);
	clock_set_fake(-1);
}
END_TEST

START_TEST(test_lease_many)
{
	enum { N = 100000 };
	struct lease *ls = calloc(N, sizeof(*ls));
	int64_t *ends = calloc(N / 2, sizeof(*ends));
	struct lease_table lt;
	struct rec r;
	int64_t t;

	/* max_lease well past the test, so that only the window matters. */
	table_max(&lt, &r, 3600000);
	/* Lease i is pulled at i ms, so it is due at i + 6667. */
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(lease_add(&lt, &ls[i], i), 0);
	ck_assert_uint_eq(lease_count(&lt), N);
	ck_assert_int_eq(lease_next_due(&lt), WINDOW - WINDOW / 3);

	/* One run extends exactly the due ones: those pulled at 0..49999. */
	t = WINDOW - WINDOW / 3 + 49999;
	run_at(&lt, t);
	ck_assert_int_eq(r.extends, 50000);
	ck_assert_uint_eq(lt.extended, 50000);
	ck_assert_int_eq(r.losts, 0);
	ck_assert_uint_eq(lease_count(&lt), N);
	ck_assert_int_eq(lease_next_due(&lt), t + 1);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(ls[i].end, i < 50000 ? t + WINDOW : i + WINDOW);

	/* A run one millisecond later extends exactly one more. */
	run_at(&lt, t + 1);
	ck_assert_int_eq(r.extends, 50001);

	for (int i = 0; i < N; i += 2) {
		lease_remove(&lt, &ls[i]);
		ends[i / 2] = ls[i].end;
	}
	ck_assert_uint_eq(lease_count(&lt), N / 2);
	/*
	 * Removed leases are never extended again; of the others, the odd
	 * ones pulled at 0..59999 are due by t + WINDOW: 30000 of them.
	 */
	run_at(&lt, t + WINDOW);
	for (int i = 0; i < N; i += 2)
		ck_assert_int_eq(ls[i].end, ends[i / 2]);
	ck_assert_int_eq(r.extends, 50001 + 30000);
	ck_assert_int_eq(r.losts, 0);
	free(ends);
	lease_table_free(&lt);
	free(ls);
	clock_set_fake(-1);
}
END_TEST

/* With a loop: the table's own ev_timer drives it on the real clock. */
struct timed {
	struct rec	 r;
	int64_t		 lost_at;
	int		 early;		/* extended at or after the deadline */
	struct ev_loop	*loop;
};

static int
timed_extend(void *arg, struct lease *l, int64_t ms)
{
	struct timed *t = arg;

	if (clock_now() >= l->end)
		t->early++;
	return rec_extend(&t->r, l, ms);
}

static void
timed_lost(void *arg, struct lease *l, const char *why)
{
	struct timed *t = arg;

	rec_lost(&t->r, l, why);
	t->lost_at = clock_now();
	ev_break(t->loop, EVBREAK_ALL);
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

START_TEST(test_lease_timer)
{
	struct lease_table lt;
	struct timed t;
	struct lease l, gone;
	ev_timer guard;
	int64_t start;

	memset(&t, 0, sizeof(t));
	clock_set_fake(-1);
	t.loop = ev_loop_new(0);
	ck_assert_ptr_nonnull(t.loop);
	lease_table_init(&lt, t.loop, 900, 1200, timed_extend, timed_lost, &t);
	start = clock_now();
	ck_assert_int_eq(lease_add(&lt, &gone, start), 0);
	ck_assert_int_eq(lease_add(&lt, &l, start), 0);
	/* A removed lease may wake the timer; it is never called back. */
	lease_remove(&lt, &gone);
	ev_timer_init(&guard, guard_cb, 5., 0.);
	ev_timer_start(t.loop, &guard);
	ev_run(t.loop, 0);

	ck_assert_int_eq(t.r.losts, 1);
	ck_assert_ptr_eq(t.r.last, &l);
	ck_assert_msg(strstr(t.r.why, "max_lease") != NULL, "why: %s",
	    t.r.why);
	ck_assert_int_ge(t.lost_at, start + 1200);
	/* Extended once, at about 600 ms, before the deadline, to the cap. */
	ck_assert_int_eq(t.r.extends, 1);
	ck_assert_int_eq(t.early, 0);
	ck_assert_int_eq(l.end, start + 1200);
	ck_assert_uint_eq(lease_count(&lt), 0);
	lease_table_free(&lt);
	ev_timer_stop(t.loop, &guard);
	ev_loop_destroy(t.loop);
}
END_TEST

/* Backoff --------------------------------------------------------------- */

START_TEST(test_backoff_doubles)
{
	ck_assert_int_eq(backoff_delay(10000, 600000, 1, 0.), 10000);
	ck_assert_int_eq(backoff_delay(10000, 600000, 2, 0.), 20000);
	ck_assert_int_eq(backoff_delay(10000, 600000, 3, 0.), 40000);
	ck_assert_int_eq(backoff_delay(10000, 600000, 4, 0.), 80000);
	ck_assert_int_eq(backoff_delay(10000, 600000, 6, 0.), 320000);
	ck_assert_int_eq(backoff_delay(10000, 600000, 7, 0.), 600000);
	ck_assert_int_eq(backoff_delay(10000, 600000, 100, 0.), 600000);
	ck_assert_int_eq(backoff_delay(10000, 600000, UINT32_MAX, 0.), 600000);
}
END_TEST

START_TEST(test_backoff_bounds)
{
	int64_t prev = 0;

	for (uint32_t a = 1; a <= 200; a++) {
		int64_t d = backoff_delay(10000, 600000, a, 0.);

		ck_assert_int_ge(d, prev);
		ck_assert_int_ge(d, 10000);
		ck_assert_int_le(d, 600000);
		prev = d;
	}
	/* Odd bounds: clamped at max, not at a power of two. */
	ck_assert_int_eq(backoff_delay(3000, 7000, 2, 0.), 6000);
	ck_assert_int_eq(backoff_delay(3000, 7000, 3, 0.), 7000);
	ck_assert_int_eq(backoff_delay(5000, 5000, 9, 0.), 5000);
	ck_assert_int_eq(backoff_delay(0, 600000, 1, 0.), 0);
	ck_assert_int_eq(backoff_delay(0, 600000, 50, 0.999), 0);
}
END_TEST

START_TEST(test_backoff_jitter)
{
	/* Up to a quarter more, never past max. */
	int64_t d = backoff_delay(10000, 600000, 1, 0.999);

	ck_assert_int_gt(d, 10000);
	ck_assert_int_le(d, 12500);
	ck_assert_int_ge(d, 12490);
	d = backoff_delay(10000, 600000, 3, 0.5);
	ck_assert_int_eq(d, 45000);
	for (uint32_t a = 1; a <= 40; a++)
		for (double u = 0.; u < 1.; u += 0.0625) {
			int64_t base = backoff_delay(10000, 600000, a, 0.);

			d = backoff_delay(10000, 600000, a, u);
			ck_assert_int_ge(d, base);
			ck_assert_int_le(d, base + base / 4);
			ck_assert_int_le(d, 600000);
		}
	ck_assert_int_eq(backoff_delay(10000, 600000, 7, 0.999), 600000);
	/* 320 s plus a quarter is still under the cap. */
	d = backoff_delay(10000, 600000, 6, 0.999);
	ck_assert_int_gt(d, 320000);
	ck_assert_int_le(d, 400000);
}
END_TEST

static Suite *
lease_suite(void)
{
	Suite *s = suite_create("lease");
	TCase *tc;

	tc = tcase_create("heap");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_heap_sorted);
	tcase_add_test(tc, test_heap_remove_middle);
	tcase_add_test(tc, test_heap_update);
	tcase_add_test(tc, test_heap_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("lease");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_lease_two_thirds);
	tcase_add_test(tc, test_lease_late_run);
	tcase_add_test(tc, test_lease_max_lease);
	tcase_add_test(tc, test_lease_extend_fails);
	tcase_add_test(tc, test_lease_remove_before_due);
	tcase_add_test(tc, test_lease_many);
	tcase_add_test(tc, test_lease_timer);
	suite_add_tcase(s, tc);

	tc = tcase_create("backoff");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_backoff_doubles);
	tcase_add_test(tc, test_backoff_bounds);
	tcase_add_test(tc, test_backoff_jitter);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(lease_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
