/*
 * check_natsledger: the nats source's pull requests, without a server:
 * how what is owed becomes requests, how messages, statuses, expiry and
 * reconnects end them, and what the supervisor is told is still wanted.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "natsledger.h"

/* Send every request the ledger has for us, as the source does. */
static unsigned
send_all(struct ledger *l, int64_t now)
{
	unsigned n = 0;

	while (ledger_next(l, now) != NULL) {
		ledger_sent(l);
		n++;
	}
	return n;
}

START_TEST(test_batches)
{
	struct ledger l;
	const struct pull_req *r;

	ledger_init(&l);
	ck_assert_ptr_null(ledger_next(&l, 0));
	ledger_owe(&l, 2 * LEDGER_BATCH_MAX + 5);
	ck_assert_uint_eq(ledger_wanted(&l), 2 * LEDGER_BATCH_MAX + 5);
	for (unsigned i = 0; i < 3; i++) {
		r = ledger_next(&l, 1000);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(r->id, i + 1);
		ck_assert_uint_eq(r->left, i < 2 ? LEDGER_BATCH_MAX : 5);
		ck_assert_int_eq(r->expires, 1000 + LEDGER_EXPIRES_MS);
		ledger_sent(&l);
	}
	ck_assert_ptr_null(ledger_next(&l, 1000));
	ck_assert_uint_eq(ledger_open(&l), 3);
	ck_assert_uint_eq(l.owed, 0);
	/* Sent or owed, it is all still wanted. */
	ck_assert_uint_eq(ledger_wanted(&l), 2 * LEDGER_BATCH_MAX + 5);
}
END_TEST

/* A publish that fails confirms nothing: the next try has a new id. */
START_TEST(test_unsent)
{
	struct ledger l;
	const struct pull_req *r;

	ledger_init(&l);
	ledger_owe(&l, 7);
	r = ledger_next(&l, 0);
	ck_assert_uint_eq(r->id, 1);
	r = ledger_next(&l, 0);
	ck_assert_uint_eq(r->id, 2);
	ck_assert_uint_eq(ledger_open(&l), 0);
	ck_assert_uint_eq(l.owed, 7);
	ledger_sent(&l);
	ck_assert_uint_eq(ledger_open(&l), 1);
	ck_assert_uint_eq(l.req[0].id, 2);
	ck_assert_uint_eq(l.owed, 0);
	ck_assert_uint_eq(ledger_wanted(&l), 7);
}
END_TEST

START_TEST(test_max_open)
{
	struct ledger l;
	const struct pull_req *r;

	ledger_init(&l);
	/* Asked one at a time: only LEDGER_MAX requests at once. */
	for (unsigned i = 0; i < LEDGER_MAX + 3; i++) {
		ledger_owe(&l, 1);
		send_all(&l, 0);
	}
	ck_assert_uint_eq(ledger_open(&l), LEDGER_MAX);
	ck_assert_uint_eq(l.owed, 3);
	ck_assert_ptr_null(ledger_next(&l, 0));
	ck_assert_uint_eq(ledger_wanted(&l), LEDGER_MAX + 3);
	/* One ends: room for one more, which asks for all that is owed. */
	ledger_delivered(&l);
	ck_assert_uint_eq(ledger_open(&l), LEDGER_MAX - 1);
	r = ledger_next(&l, 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->left, 3);
}
END_TEST

/* Messages count against the oldest request; the last of it ends it. */
START_TEST(test_delivered)
{
	struct ledger l;

	ledger_init(&l);
	ledger_owe(&l, 2);
	send_all(&l, 0);
	ledger_owe(&l, 3);
	send_all(&l, 0);
	ck_assert_uint_eq(ledger_wanted(&l), 5);
	ledger_delivered(&l);
	ck_assert_uint_eq(l.req[0].id, 1);
	ck_assert_uint_eq(l.req[0].left, 1);
	ledger_delivered(&l);
	ck_assert_uint_eq(ledger_open(&l), 1);
	ck_assert_uint_eq(l.req[0].id, 2);
	ck_assert_uint_eq(ledger_wanted(&l), 3);
	ledger_delivered(&l);
	ledger_delivered(&l);
	ledger_delivered(&l);
	ck_assert_uint_eq(ledger_open(&l), 0);
	/* One that came after its request ended counts against none. */
	ledger_delivered(&l);
	ck_assert_uint_eq(ledger_open(&l), 0);
	ck_assert_uint_eq(ledger_wanted(&l), 0);
}
END_TEST

/* A status ends its own request, wherever it is; the order stays. */
START_TEST(test_end)
{
	struct ledger l;

	ledger_init(&l);
	for (unsigned i = 0; i < 4; i++) {
		ledger_owe(&l, 10 + i);
		send_all(&l, 0);
	}
	ck_assert_int_eq(ledger_end(&l, 2), 1);
	ck_assert_int_eq(ledger_end(&l, 2), 0);
	ck_assert_int_eq(ledger_end(&l, 99), 0);
	ck_assert_uint_eq(ledger_open(&l), 3);
	ck_assert_uint_eq(l.req[0].id, 1);
	ck_assert_uint_eq(l.req[1].id, 3);
	ck_assert_uint_eq(l.req[2].id, 4);
	ck_assert_uint_eq(ledger_wanted(&l), 10 + 12 + 13);
	/* What the ended one owed is not asked again here. */
	ck_assert_ptr_null(ledger_next(&l, 0));
}
END_TEST

/* Unanswered requests end LEDGER_GRACE_MS after their expiry, not before. */
START_TEST(test_expire)
{
	struct ledger l;
	int64_t first = 1000 + LEDGER_EXPIRES_MS + LEDGER_GRACE_MS;

	ledger_init(&l);
	ledger_owe(&l, 1);
	send_all(&l, 1000);
	ledger_owe(&l, 1);
	send_all(&l, 2000);
	ck_assert_uint_eq(ledger_expire(&l, first), 0);
	ck_assert_uint_eq(ledger_expire(&l, first + 1), 1);
	ck_assert_uint_eq(ledger_open(&l), 1);
	ck_assert_uint_eq(l.req[0].id, 2);
	ck_assert_uint_eq(ledger_expire(&l, first + 1000), 0);
	ck_assert_uint_eq(ledger_expire(&l, first + 1001), 1);
	ck_assert_uint_eq(ledger_wanted(&l), 0);
}
END_TEST

/* A reconnect or a drain: nothing open, nothing owed, ids go on. */
START_TEST(test_forget)
{
	struct ledger l;

	ledger_init(&l);
	ledger_owe(&l, 3 * LEDGER_BATCH_MAX);
	ck_assert_uint_eq(send_all(&l, 0), 3);
	ledger_forget(&l);
	ck_assert_uint_eq(ledger_open(&l), 0);
	ck_assert_uint_eq(ledger_wanted(&l), 0);
	ck_assert_ptr_null(ledger_next(&l, 0));
	ledger_owe(&l, 1);
	ck_assert_uint_eq(ledger_next(&l, 0)->id, 4);
}
END_TEST

START_TEST(test_status)
{
	static const struct {
		int		 status;
		const char	*text;
		enum pull_status want;
	} t[] = {
		{ 100, "Idle Heartbeat", PULL_GOING },
		{ 100, "FlowControl Request", PULL_GOING },
		{ 404, "No Messages", PULL_ENDED },
		{ 408, "Request Timeout", PULL_ENDED },
		{ 409, "Consumer Deleted", PULL_CONSUMER_DELETED },
		{ 409, "Exceeded MaxWaiting", PULL_FAILED },
		{ 409, "Leadership Change", PULL_FAILED },
		{ 503, "", PULL_FAILED },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(ledger_status(t[i].status, t[i].text) == t[i].want,
		    "status %d %s", t[i].status, t[i].text);
}
END_TEST

START_TEST(test_id_of)
{
	ck_assert_uint_eq(ledger_id_of("_INBOX.abc.17"), 17);
	ck_assert_uint_eq(ledger_id_of("_INBOX.abc.18446744073709551615"),
	    UINT64_MAX);
	ck_assert_uint_eq(ledger_id_of("_INBOX.abc.del"), 0);
	ck_assert_uint_eq(ledger_id_of("nodots"), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("natsledger");
	TCase *tc = tcase_create("ledger");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_batches);
	tcase_add_test(tc, test_unsent);
	tcase_add_test(tc, test_max_open);
	tcase_add_test(tc, test_delivered);
	tcase_add_test(tc, test_end);
	tcase_add_test(tc, test_expire);
	tcase_add_test(tc, test_forget);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_id_of);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
