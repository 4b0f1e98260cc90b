/*
 * check_sim: the embedded publisher and broker behave like a broker.
 *
 * Each test runs a sim source on its own libev loop with the real clock
 * (libev timers run on real time), pumping the loop with EVRUN_NOWAIT
 * for bounded stretches of at most a few seconds.  Lower bounds on time
 * ("not before the deadline") are exact; upper bounds are generous.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "clock.h"
#include "conf.h"
#include "heap.h"
#include "log.h"
#include "source.h"
#include "uuid.h"

#define MAXREC		256
#define DEADLINE	1000	/* the smallest ack_deadline allowed */

/*
 * Failure injection: check_sim is linked with --wrap=heap_push, so the
 * sim's calls come here; the next fail_pushes of them fail as a full
 * heap whose realloc failed would.
 */
int __real_heap_push(struct heap *h, struct heap_node *node, int64_t key);
int __wrap_heap_push(struct heap *h, struct heap_node *node, int64_t key);
static int fail_pushes;

int
__wrap_heap_push(struct heap *h, struct heap_node *node, int64_t key)
{
	if (fail_pushes > 0) {
		fail_pushes--;
		return -1;
	}
	return __real_heap_push(h, node, key);
}

struct got {
	struct delivery	*d;
	char		 id[40];
	char		 data[128];
	size_t		 len;
	uint32_t	 count;
	int64_t		 at;
	int		 back;		/* given back to the source */
};

struct ctx {
	struct ev_loop	*loop;
	struct source	*src;
	struct got	 g[MAXREC];
	size_t		 n;
	int		 exhausted;
	int64_t		 started;
};

static void
on_message(void *arg, struct delivery *d)
{
	struct ctx *c = arg;
	struct got *g;

	ck_assert_msg(c->n < MAXREC, "more deliveries than the test expects");
	g = &c->g[c->n++];
	memset(g, 0, sizeof(*g));
	g->d = d;
	snprintf(g->id, sizeof(g->id), "%s", d->id);
	ck_assert_uint_lt(d->len, sizeof(g->data));
	memcpy(g->data, d->data, d->len);
	g->len = d->len;
	g->count = d->count;
	g->at = clock_now();
}

static void
on_exhausted(void *arg)
{
	struct ctx *c = arg;

	c->exhausted++;
}

static void
sim_open_with(struct ctx *c, struct ev_loop *loop, uint64_t count,
    uint64_t seed, unsigned rate, int64_t deadline)
{
	struct conf conf;
	struct source_cb cb;
	char err[256] = "";

	memset(c, 0, sizeof(*c));
	conf_defaults(&conf);
	conf.ack_deadline = deadline;
	conf.rate = rate;
	conf.count = count;
	conf.seed = seed;
	cb.message = on_message;
	cb.exhausted = on_exhausted;
	cb.arg = c;
	c->loop = loop;
	c->src = source_sim_new(c->loop, &conf, &cb);
	ck_assert_ptr_nonnull(c->src);
	ck_assert_int_eq(c->src->ack_deadline, deadline);
	c->started = clock_now();
	ck_assert_msg(c->src->ops->start(c->src, err, sizeof(err)) == 0,
	    "start: %s", err);
}

static void
sim_open(struct ctx *c, uint64_t count, int64_t deadline)
{
	struct ev_loop *loop = ev_loop_new(0);

	ck_assert_ptr_nonnull(loop);
	sim_open_with(c, loop, count, 42, 0, deadline);
}

/* Give back what the test left out, stop the source, end the loop. */
static void
sim_close(struct ctx *c, int own_loop)
{
	for (size_t i = 0; i < c->n; i++)
		if (!c->g[i].back) {
			c->src->ops->nack(c->src, c->g[i].d, 0);
			c->g[i].back = 1;
		}
	c->src->ops->stop(c->src);
	if (own_loop)
		ev_loop_destroy(c->loop);
}

static void
ack(struct ctx *c, size_t i)
{
	ck_assert(!c->g[i].back);
	c->src->ops->ack(c->src, c->g[i].d);
	c->g[i].back = 1;
}

static void
nack(struct ctx *c, size_t i, int64_t delay)
{
	ck_assert(!c->g[i].back);
	c->src->ops->nack(c->src, c->g[i].d, delay);
	c->g[i].back = 1;
}

static void
term(struct ctx *c, size_t i)
{
	ck_assert(!c->g[i].back);
	c->src->ops->term(c->src, c->g[i].d, "test says so");
	c->g[i].back = 1;
}

static void
pull(struct ctx *c, unsigned n)
{
	c->src->ops->pull(c->src, n);
}

static unsigned
wanted(const struct ctx *c)
{
	return c->src->ops->wanted(c->src);
}

/* Run the loop for ms milliseconds. */
static void
pump_ms(struct ctx *c, int64_t ms)
{
	int64_t end = clock_now() + ms;

	do {
		ev_run(c->loop, EVRUN_NOWAIT);
		usleep(1000);
	} while (clock_now() < end);
}

/* Run the loop until n deliveries in all, or max_ms passed. */
static int
pump_until(struct ctx *c, size_t n, int64_t max_ms)
{
	int64_t end = clock_now() + max_ms;

	while (c->n < n && clock_now() < end) {
		ev_run(c->loop, EVRUN_NOWAIT);
		if (c->n < n)
			usleep(1000);
	}
	return c->n >= n;
}

/* The seed's payload: {"msg_id": "<uuid v4>", "instance_name": "cattle-xxxx"} */
static void
check_payload(const struct got *g)
{
	char id[40] = "", hex[8] = "";
	int end = -1;

	ck_assert_uint_eq(strlen(g->data), g->len);
	ck_assert_msg(sscanf(g->data, "{\"msg_id\": \"%36[0-9a-f-]\", "
	    "\"instance_name\": \"cattle-%4[0-9a-f]\"}%n", id, hex, &end) == 2 &&
	    end == (int)g->len, "payload: %s", g->data);
	ck_assert_uint_eq(strlen(id), 36);
	ck_assert_uint_eq(strlen(hex), 4);
	ck_assert_msg(id[8] == '-' && id[13] == '-' && id[18] == '-' &&
	    id[23] == '-' && id[14] == '7' && strchr("89ab", id[19]) != NULL,
	    "not a version 7 uuid: %s", id);
	ck_assert_str_eq(id, g->id);
}

START_TEST(test_pull_exact)
{
	struct ctx c;

	sim_open(&c, 100, DEADLINE);
	ck_assert_uint_eq(wanted(&c), 0);
	pump_ms(&c, 20);
	ck_assert_uint_eq(c.n, 0);	/* nothing unasked */

	pull(&c, 10);
	ck_assert_uint_eq(wanted(&c), 10);
	ck_assert(pump_until(&c, 10, 2000));
	pump_ms(&c, 50);
	ck_assert_uint_eq(c.n, 10);
	ck_assert_uint_eq(wanted(&c), 0);
	for (size_t i = 0; i < c.n; i++) {
		check_payload(&c.g[i]);
		ck_assert_uint_eq(c.g[i].count, 1);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(c.g[i].id, c.g[j].id);
	}
	for (size_t i = 0; i < c.n; i++)
		ack(&c, i);

	/* The next pull brings new messages. */
	pull(&c, 5);
	ck_assert(pump_until(&c, 15, 2000));
	pump_ms(&c, 20);
	ck_assert_uint_eq(c.n, 15);
	for (size_t i = 10; i < 15; i++) {
		check_payload(&c.g[i]);
		ck_assert_uint_eq(c.g[i].count, 1);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(c.g[i].id, c.g[j].id);
		ack(&c, i);
	}
	ck_assert_int_eq(c.exhausted, 0);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_count_limit)
{
	struct ctx c;

	sim_open(&c, 5, DEADLINE);
	pull(&c, 20);
	ck_assert(pump_until(&c, 5, 2000));
	pump_ms(&c, 100);
	ck_assert_uint_eq(c.n, 5);
	ck_assert_uint_eq(wanted(&c), 15);
	ck_assert_int_eq(c.exhausted, 0);
	for (size_t i = 0; i < 5; i++)
		ack(&c, i);
	ck_assert_int_eq(c.exhausted, 1);
	pump_ms(&c, 100);
	ck_assert_uint_eq(c.n, 5);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_rate)
{
	/* 50 a second: the fifth is published 80 ms after the start. */
	struct ctx c;
	struct ev_loop *loop = ev_loop_new(0);

	sim_open_with(&c, loop, 5, 42, 50, DEADLINE);
	pull(&c, 10);
	ck_assert(pump_until(&c, 5, 3000));
	ck_assert_int_ge(c.g[4].at - c.started, 80);
	pump_ms(&c, 150);
	ck_assert_uint_eq(c.n, 5);
	for (size_t i = 0; i < 5; i++) {
		check_payload(&c.g[i]);
		ack(&c, i);
	}
	ck_assert_int_eq(c.exhausted, 1);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_uuid7_increasing)
{
	struct uuid7 u = { 0, 0 };
	char prev[UUID_LEN + 1] = "", id[UUID_LEN + 1];
	/* a clock that stands still for 10 000 ids, then goes back a second */
	for (int i = 0; i < 10000; i++) {
		uuid7_next(&u, i < 9000 ? 1700000000000 : 1699999999000,
		    (uint64_t)i * 0x9e3779b97f4a7c15u, id);
		ck_assert_uint_eq(strlen(id), UUID_LEN);
		ck_assert_msg(id[8] == '-' && id[13] == '-' && id[18] == '-' &&
		    id[23] == '-' && id[14] == '7' &&
		    strchr("89ab", id[19]) != NULL, "not a version 7 uuid: %s", id);
		ck_assert_msg(strcmp(prev, id) < 0, "%s not after %s", id, prev);
		memcpy(prev, id, sizeof(id));
	}
	/* 4 096 ids a millisecond: the counter moved the clock on twice */
	ck_assert_int_eq(u.ms, 1700000000002);
	/* the time is the first 48 bits */
	u.ms = 0;
	uuid7_next(&u, INT64_C(0x0123456789ab), 0, id);
	ck_assert_str_eq(id, "01234567-89ab-7000-8000-000000000000");
}
END_TEST

START_TEST(test_seed_deterministic)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct ctx *a = calloc(1, sizeof(*a));
	struct ctx *b = calloc(1, sizeof(*b));
	struct ctx *o = calloc(1, sizeof(*o));

	sim_open_with(a, loop, 3, 7, 0, DEADLINE);
	sim_open_with(b, loop, 3, 7, 0, DEADLINE);
	sim_open_with(o, loop, 3, 8, 0, DEADLINE);
	pull(a, 3);
	pull(b, 3);
	pull(o, 3);
	ck_assert(pump_until(a, 3, 2000));
	ck_assert(pump_until(b, 3, 2000));
	ck_assert(pump_until(o, 3, 2000));
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(a->g[i].data, b->g[i].data);
		ck_assert_str_ne(a->g[i].id, o->g[i].id);
		/* version 7: time-ordered, so each sorts after the last */
		if (i > 0)
			ck_assert_int_lt(strcmp(a->g[i - 1].id, a->g[i].id), 0);
	}
	sim_close(a, 0);
	sim_close(b, 0);
	sim_close(o, 0);
	ev_loop_destroy(loop);
	free(a);
	free(b);
	free(o);
}
END_TEST

START_TEST(test_redelivered_after_deadline)
{
	struct ctx c;

	sim_open(&c, 1, DEADLINE);
	pull(&c, 2);
	ck_assert(pump_until(&c, 1, 2000));
	ck_assert_uint_eq(c.g[0].count, 1);
	/* Not before the deadline... */
	pump_ms(&c, DEADLINE / 2);
	ck_assert_uint_eq(c.n, 1);
	/* ...and after it, the same message with the next count. */
	ck_assert(pump_until(&c, 2, 3000));
	ck_assert_str_eq(c.g[1].id, c.g[0].id);
	ck_assert_str_eq(c.g[1].data, c.g[0].data);
	ck_assert_uint_eq(c.g[1].count, 2);
	/* (g[0].at is taken in the callback, a moment after the lease.) */
	ck_assert_int_ge(c.g[1].at - c.g[0].at, DEADLINE - 10);
	ack(&c, 1);
	ack(&c, 0);
	ck_assert_int_eq(c.exhausted, 1);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_extend_holds_lease)
{
	struct ctx c;
	int64_t until, last = 0;

	sim_open(&c, 1, DEADLINE);
	pull(&c, 2);
	ck_assert(pump_until(&c, 1, 2000));
	/* Extended every 400 ms for 2.2 s: more than two deadlines. */
	until = clock_now() + 2200;
	while (clock_now() < until) {
		if (clock_now() - last >= 400) {
			last = clock_now();
			ck_assert_int_eq(c.src->ops->extend(c.src, c.g[0].d,
			    DEADLINE), 0);
		}
		ev_run(c.loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_uint_eq(c.n, 1);
	/* Left alone, it is redelivered one deadline after the extension. */
	ck_assert(pump_until(&c, 2, 3000));
	ck_assert_uint_eq(c.g[1].count, 2);
	ck_assert_str_eq(c.g[1].id, c.g[0].id);
	ck_assert_int_ge(c.g[1].at - last, DEADLINE);
	ack(&c, 1);
	ack(&c, 0);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_nack_delay)
{
	struct ctx c;
	int64_t t0;

	/* A long deadline: only the nack can bring it back in time. */
	sim_open(&c, 1, 10000);
	pull(&c, 2);
	ck_assert(pump_until(&c, 1, 2000));
	t0 = clock_now();
	nack(&c, 0, 300);
	pump_ms(&c, 150);
	ck_assert_uint_eq(c.n, 1);
	ck_assert(pump_until(&c, 2, 3000));
	ck_assert_int_ge(c.g[1].at - t0, 300);
	ck_assert_uint_eq(c.g[1].count, 2);
	ck_assert_str_eq(c.g[1].id, c.g[0].id);
	ack(&c, 1);
	ck_assert_int_eq(c.exhausted, 1);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_nack_now)
{
	struct ctx c;

	sim_open(&c, 1, 10000);
	pull(&c, 2);
	ck_assert(pump_until(&c, 1, 2000));
	nack(&c, 0, 0);
	/* Ready at once: a couple of loop iterations, no timer. */
	for (int i = 0; i < 3 && c.n < 2; i++)
		ev_run(c.loop, EVRUN_NOWAIT);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_uint_eq(c.g[1].count, 2);
	ck_assert_str_eq(c.g[1].id, c.g[0].id);
	ack(&c, 1);
	sim_close(&c, 1);
}
END_TEST

/*
 * A delivery whose deadline cannot be kept is not made: the message
 * stays ready and goes out once memory is back, with a lease that
 * extend and nack can move (they once indexed the heap at SIZE_MAX).
 */
START_TEST(test_heap_push_fails)
{
	struct ctx c;

	sim_open(&c, 1, DEADLINE);
	fail_pushes = 3;
	pull(&c, 1);
	for (int i = 0; i < 100 && fail_pushes > 0; i++)
		ev_run(c.loop, EVRUN_NOWAIT);
	ck_assert_int_eq(fail_pushes, 0);
	ck_assert_uint_eq(c.n, 0);
	ck_assert_uint_eq(wanted(&c), 1);

	ck_assert(pump_until(&c, 1, 2000));
	ck_assert_uint_eq(c.g[0].count, 1);
	ck_assert_int_eq(c.src->ops->extend(c.src, c.g[0].d, DEADLINE), 0);
	pull(&c, 1);
	nack(&c, 0, 100);
	ck_assert(pump_until(&c, 2, 2000));
	ck_assert_uint_eq(c.g[1].count, 2);
	ck_assert_str_eq(c.g[1].id, c.g[0].id);
	ack(&c, 1);
	ck_assert_int_eq(c.exhausted, 1);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_ack_removes)
{
	struct ctx c;

	sim_open(&c, 5, DEADLINE);
	pull(&c, 5);
	ck_assert(pump_until(&c, 5, 2000));
	for (size_t i = 0; i < 4; i++)
		ack(&c, i);
	ck_assert_int_eq(c.exhausted, 0);
	ack(&c, 4);
	ck_assert_int_eq(c.exhausted, 1);
	/* Past the deadline: nothing comes back, nothing new. */
	pull(&c, 5);
	pump_ms(&c, DEADLINE + 300);
	ck_assert_uint_eq(c.n, 5);
	ck_assert_int_eq(c.exhausted, 1);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_term_removes)
{
	struct ctx c;

	sim_open(&c, 3, DEADLINE);
	pull(&c, 3);
	ck_assert(pump_until(&c, 3, 2000));
	term(&c, 0);
	ack(&c, 1);
	ck_assert_int_eq(c.exhausted, 0);
	term(&c, 2);
	ck_assert_int_eq(c.exhausted, 1);
	pull(&c, 3);
	pump_ms(&c, DEADLINE + 300);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_int_eq(c.exhausted, 1);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_stale_extend_and_nack)
{
	struct ctx c;

	sim_open(&c, 1, DEADLINE);
	pull(&c, 2);
	ck_assert(pump_until(&c, 1, 2000));
	ck_assert(pump_until(&c, 2, 3000));	/* d1's deadline passed */
	ck_assert_uint_eq(c.g[1].count, 2);
	ck_assert_uint_eq(wanted(&c), 0);

	/* The broker no longer holds d1's lease; d2 holds it. */
	ck_assert_int_eq(c.src->ops->extend(c.src, c.g[0].d, DEADLINE), -1);
	ck_assert_int_eq(c.src->ops->extend(c.src, c.g[1].d, DEADLINE), 0);
	/* A nack of d1 must not make the message ready a second time. */
	pull(&c, 1);
	nack(&c, 0, 0);
	pump_ms(&c, 300);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_uint_eq(wanted(&c), 1);
	ck_assert_int_eq(c.exhausted, 0);
	ack(&c, 1);
	ck_assert_int_eq(c.exhausted, 1);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_stale_ack)
{
	struct ctx c;

	sim_open(&c, 1, DEADLINE);
	pull(&c, 2);
	ck_assert(pump_until(&c, 1, 2000));
	ck_assert(pump_until(&c, 2, 3000));
	/* An ack of the older delivery still removes the message. */
	ack(&c, 0);
	ck_assert_int_eq(c.exhausted, 1);
	ck_assert_int_eq(c.src->ops->extend(c.src, c.g[1].d, DEADLINE), -1);
	pull(&c, 1);
	pump_ms(&c, DEADLINE + 300);	/* past d2's deadline */
	ck_assert_uint_eq(c.n, 2);
	/* d2's own ack later is harmless. */
	ack(&c, 1);
	ck_assert_int_eq(c.exhausted, 1);
	pump_ms(&c, 20);
	ck_assert_uint_eq(c.n, 2);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_unpull)
{
	struct ctx c;

	sim_open(&c, 0, DEADLINE);	/* unlimited */
	pull(&c, 5);
	c.src->ops->unpull(c.src);
	ck_assert_uint_eq(wanted(&c), 0);
	pump_ms(&c, 100);
	ck_assert_uint_eq(c.n, 0);

	pull(&c, 3);
	ck_assert(pump_until(&c, 3, 2000));
	pump_ms(&c, 50);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_uint_eq(wanted(&c), 0);
	/* A nacked message waits until it is asked for. */
	nack(&c, 0, 0);
	pump_ms(&c, 100);
	ck_assert_uint_eq(c.n, 3);
	pull(&c, 1);
	ck_assert(pump_until(&c, 4, 2000));
	ck_assert_str_eq(c.g[3].id, c.g[0].id);
	ck_assert_uint_eq(c.g[3].count, 2);
	for (size_t i = 1; i < 4; i++)
		ack(&c, i);
	sim_close(&c, 1);
}
END_TEST

START_TEST(test_unpull_with_backlog)
{
	struct ctx c;

	sim_open(&c, 2, DEADLINE);
	pull(&c, 5);
	ck_assert(pump_until(&c, 2, 2000));
	ck_assert_uint_eq(wanted(&c), 3);
	c.src->ops->unpull(c.src);
	ck_assert_uint_eq(wanted(&c), 0);
	nack(&c, 0, 0);
	pump_ms(&c, 100);
	ck_assert_uint_eq(c.n, 2);
	ack(&c, 1);
	sim_close(&c, 1);
}
END_TEST

static Suite *
sim_suite(void)
{
	Suite *s = suite_create("sim");
	TCase *tc;

	tc = tcase_create("pull");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_pull_exact);
	tcase_add_test(tc, test_count_limit);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_seed_deterministic);
	tcase_add_test(tc, test_uuid7_increasing);
	tcase_add_test(tc, test_unpull);
	tcase_add_test(tc, test_unpull_with_backlog);
	suite_add_tcase(s, tc);

	tc = tcase_create("lease");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_redelivered_after_deadline);
	tcase_add_test(tc, test_extend_holds_lease);
	tcase_add_test(tc, test_nack_delay);
	tcase_add_test(tc, test_nack_now);
	tcase_add_test(tc, test_heap_push_fails);
	suite_add_tcase(s, tc);

	tc = tcase_create("settle");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ack_removes);
	tcase_add_test(tc, test_term_removes);
	tcase_add_test(tc, test_stale_extend_and_nack);
	tcase_add_test(tc, test_stale_ack);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sim_suite());
	int failed;

	/* Redeliveries are logged at INFO; keep the test output readable. */
	log_set_level(LOG_WARNING);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
