/*
 * check_nats: the JetStream conventions the nats source reads (ack
 * subjects, subject filters, MAX_DELIVERIES advisories), without a
 * server.  The source itself is tested against a real nats-server in
 * tests/test_nats.sh and tests/test_nats_faults.sh.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "fleet.h"
#include "source.h"

START_TEST(test_ack_v1)
{
	uint64_t d = 0, seq = 0;

	uint64_t pending = 0;

	ck_assert_int_eq(nats_ack_parse("$JS.ACK.RESTARTS.mandrill.3.1234.99."
	    "1795847047793121796.7", &d, &seq, &pending), 0);
	ck_assert_uint_eq(d, 3);
	ck_assert_uint_eq(seq, 1234);
	ck_assert_uint_eq(pending, 7);
}
END_TEST

START_TEST(test_ack_v2)
{
	uint64_t d = 0, seq = 0, pending = 0;

	/* $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>... */
	ck_assert_int_eq(nats_ack_parse("$JS.ACK.hub.ACCHASH.RESTARTS.mandrill."
	    "2.77.5.1795847047793121796.0.rnd", &d, &seq, NULL), 0);
	ck_assert_uint_eq(d, 2);
	ck_assert_uint_eq(seq, 77);
	ck_assert_int_eq(nats_ack_parse("$JS.ACK._.ACCHASH.S.c.1.8.5.17.42",
	    &d, &seq, &pending), 0);
	ck_assert_uint_eq(pending, 42);
	ck_assert_uint_eq(d, 1);
	ck_assert_uint_eq(seq, 8);
}
END_TEST

START_TEST(test_ack_rejects)
{
	static const char *bad[] = {
		NULL, "", "_INBOX.abc.1", "$JS.ACK", "$JS.ACK.S.c.1.2.3.4",
		"$JS.ACK.S.c.x.2.3.4.5", "$JS.ACK.S.c.0.2.3.4.5",
		"$JS.ACK.S.c.1..3.4.5", "$JS.ACK.S.c.1.2.3.4.5.6",
		"$JS.ACK.a.b.S.c.1.2.3.4.5.6.7",
		"$JS.ACK.S.c.99999999999999999999999.2.3.4.5",
		"$JS.API.S.c.1.2.3.4.5", "$JS.ACK.S.c.1.2.3.4.5.",
	};
	uint64_t d, seq;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(nats_ack_parse(bad[i], &d, &seq, NULL) == -1,
		    "accepted %s", bad[i] ? bad[i] : "NULL");
}
END_TEST

START_TEST(test_subject_match)
{
	ck_assert_int_eq(nats_subject_match("mandrill.restart",
	    "mandrill.restart"), 1);
	ck_assert_int_eq(nats_subject_match("mandrill.*", "mandrill.restart"), 1);
	ck_assert_int_eq(nats_subject_match("mandrill.>", "mandrill.restart"), 1);
	ck_assert_int_eq(nats_subject_match(">", "a.b.c"), 1);
	ck_assert_int_eq(nats_subject_match("*.restart", "mandrill.restart"), 1);
	ck_assert_int_eq(nats_subject_match("mandrill.>", "mandrill"), 0);
	ck_assert_int_eq(nats_subject_match("mandrill.*", "mandrill.a.b"), 0);
	ck_assert_int_eq(nats_subject_match("mandrill", "mandrill.restart"), 0);
	ck_assert_int_eq(nats_subject_match("mandrill.restart", "mandrill"), 0);
	ck_assert_int_eq(nats_subject_match("mandrill.restar", "mandrill.restart"), 0);
	ck_assert_int_eq(nats_subject_match("other", "mandrill.restart"), 0);
}
END_TEST

START_TEST(test_advisory)
{
	static const char adv[] = "{\"type\":\"io.nats.jetstream.advisory.v1."
	    "max_deliver\",\"id\":\"x\",\"timestamp\":\"2026-11-28T06:00:00Z\","
	    "\"stream\":\"RESTARTS\",\"consumer\":\"mandrill\",\"stream_seq\":"
	    "42,\"deliveries\":2}";
	uint64_t seq = 0, dl = 0;

	ck_assert_int_eq(nats_advisory_parse(adv, strlen(adv), &seq, &dl), 0);
	ck_assert_uint_eq(seq, 42);
	ck_assert_uint_eq(dl, 2);
	ck_assert_int_eq(nats_advisory_parse("{}", 2, &seq, &dl), -1);
	ck_assert_int_eq(nats_advisory_parse("{\"stream_seq\":0}", 16, &seq,
	    &dl), -1);
	ck_assert_int_eq(nats_advisory_parse("{\"stream_seq\":\"1\"}", 18, &seq,
	    &dl), -1);
	ck_assert_int_eq(nats_advisory_parse("not json", 8, &seq, &dl), -1);
}
END_TEST

/* A msg_id as a Key-Value key: only key-safe bytes, one token, no two alike. */
START_TEST(test_fleet_key)
{
	char k[400];

	fleet_key("019ac9f1-2c4e_7000", k, sizeof(k));
	ck_assert_str_eq(k, "019ac9f1-2c4e_7000");
	fleet_key("b1:db7.example", k, sizeof(k));
	ck_assert_str_eq(k, "b1=3Adb7=2Eexample");
	fleet_key("a=b", k, sizeof(k));
	ck_assert_str_eq(k, "a=3Db");		/* = itself is escaped */
	fleet_key("x y/*>", k, sizeof(k));
	ck_assert_str_eq(k, "x=20y=2F=2A=3E");
	fleet_key("abcdefgh", k, 6);	/* bounded, never split an escape */
	ck_assert_str_eq(k, "ab");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("nats");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_ack_v1);
	tcase_add_test(tc, test_ack_v2);
	tcase_add_test(tc, test_ack_rejects);
	tcase_add_test(tc, test_subject_match);
	tcase_add_test(tc, test_advisory);
	tcase_add_test(tc, test_fleet_key);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
