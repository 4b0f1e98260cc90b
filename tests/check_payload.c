/*
 * check_payload: restart requests are untrusted JSON.
 *
 * A valid request yields msg_id, instance and host; everything else is
 * refused with a one-line reason, without crashing, and the msg_id is
 * kept whenever it could be read so that the refusal is recorded under
 * it.  The host must then pass the allow and deny globs.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "hostname.h"
#include "payload.h"

static struct payload p;
static char err[256];

static void
payload_setup(void)
{
	memset(&p, 0x5a, sizeof(p));	/* parse must not rely on zeroes */
	err[0] = '\0';
}

static int
parse_dom(const char *json, const char *domain)
{
	size_t len = strlen(json);

	err[0] = '\0';
	return payload_parse(json, len, len, domain, &p, err, sizeof(err));
}

static void
parse_ok(const char *json, const char *domain)
{
	int rc = parse_dom(json, domain);

	ck_assert_msg(rc == 0, "%s refused: %s", json, err);
}

/* Expect a refusal whose reason contains want. */
static void
refused_n(const char *data, size_t len, const char *want)
{
	int rc;

	err[0] = '\0';
	rc = payload_parse(data, len, len, "", &p, err, sizeof(err));
	ck_assert_msg(rc == -1, "%.*s accepted", (int)len, data);
	ck_assert_msg(err[0] != '\0', "no reason given");
	ck_assert_msg(strchr(err, '\n') == NULL, "reason is not one line");
	if (want != NULL)
		ck_assert_msg(strstr(err, want) != NULL, "reason \"%s\" does "
		    "not contain \"%s\"", err, want);
}

static void
refused(const char *json, const char *want)
{
	refused_n(json, strlen(json), want);
}

/* ---------------------------------------------------------------------
 * Valid payloads.
 */

START_TEST(test_valid_instance)
{
	parse_ok("{\"msg_id\":\"abc\",\"instance_name\":\"cattle-1a2b\"}", "");
	ck_assert_str_eq(p.msg_id, "abc");
	ck_assert_str_eq(p.instance, "cattle-1a2b");
	ck_assert_str_eq(p.host, "cattle-1a2b");
}
END_TEST

START_TEST(test_valid_instance_with_domain)
{
	parse_ok("{\"msg_id\":\"abc\",\"instance_name\":\"cattle-1a2b\"}",
	    "example.com");
	ck_assert_str_eq(p.msg_id, "abc");
	ck_assert_str_eq(p.instance, "cattle-1a2b");
	ck_assert_str_eq(p.host, "cattle-1a2b.example.com");
}
END_TEST

START_TEST(test_valid_host_no_domain_appended)
{
	parse_ok("{\"msg_id\":\"x\",\"host\":\"db1.example.com\"}",
	    "example.com");
	ck_assert_str_eq(p.msg_id, "x");
	ck_assert_str_eq(p.host, "db1.example.com");
}
END_TEST

START_TEST(test_valid_extra_keys_ignored)
{
	parse_ok("{\"published\":\"2026-11-28T10:03:56Z\",\"msg_id\":\"m-1\","
	    "\"n\":[1,2,{\"a\":null}],\"instance_name\":\"cattle-ief8\","
	    "\"zone\":\"eu\"}", "");
	ck_assert_str_eq(p.msg_id, "m-1");
	ck_assert_str_eq(p.host, "cattle-ief8");
}
END_TEST

START_TEST(test_valid_whitespace_and_escapes)
{
	/* "\u0061" is "a": the decoded value is what gets checked. */
	parse_ok(" \n{ \"msg_id\" : \"id\\u002d1\" ,\n\t\"instance_name\": "
	    "\"c\\u0061ttle-1\" }\n", "");
	ck_assert_str_eq(p.msg_id, "id-1");
	ck_assert_str_eq(p.host, "cattle-1");
}
END_TEST

START_TEST(test_valid_msg_id_limits)
{
	char json[512], id[MSG_ID_MAX + 1];

	memset(id, 'z', MSG_ID_MAX);
	id[MSG_ID_MAX] = '\0';
	snprintf(json, sizeof(json), "{\"msg_id\":\"%s\",\"host\":\"h\"}", id);
	parse_ok(json, "");
	ck_assert_str_eq(p.msg_id, id);
	parse_ok("{\"msg_id\":\"!~#$%&'()*+,-./:;<=>?@[]^_`{|}\","
	    "\"host\":\"h\"}", "");
	ck_assert_str_eq(p.msg_id, "!~#$%&'()*+,-./:;<=>?@[]^_`{|}");
	parse_ok("{\"msg_id\":\"1\",\"host\":\"h\"}", "");
	ck_assert_str_eq(p.msg_id, "1");
}
END_TEST

START_TEST(test_valid_len_not_nul_terminated)
{
	static const char buf[] = "{\"msg_id\":\"a\",\"host\":\"h1\"}GARBAGE";
	size_t len = strlen("{\"msg_id\":\"a\",\"host\":\"h1\"}");

	ck_assert_int_eq(payload_parse(buf, len, len, "", &p, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(p.host, "h1");
}
END_TEST

START_TEST(test_valid_size_at_limit)
{
	/* Exactly PAYLOAD_MAX bytes, padded with an ignored key. */
	char *json = malloc(PAYLOAD_MAX + 1);
	static const char head[] = "{\"msg_id\":\"m\",\"host\":\"h\",\"pad\":\"";
	size_t n = sizeof(head) - 1;

	ck_assert_ptr_nonnull(json);
	memcpy(json, head, n);
	memset(json + n, 'p', PAYLOAD_MAX - n - 2);
	memcpy(json + PAYLOAD_MAX - 2, "\"}", 3);
	ck_assert_uint_eq(strlen(json), PAYLOAD_MAX);
	parse_ok(json, "");
	ck_assert_str_eq(p.host, "h");
	free(json);
}
END_TEST

START_TEST(test_valid_long_host)
{
	/* 253 bytes with the domain: the longest name allowed. */
	char json[512], inst[64], dom[190];

	memset(inst, 'i', 63);
	inst[63] = '\0';
	snprintf(json, sizeof(json), "{\"msg_id\":\"m\",\"instance_name\":"
	    "\"%s\"}", inst);
	memset(dom, 'd', 189);			/* 63 + 1 + 189 = 253 */
	dom[189] = '\0';
	dom[50] = dom[110] = dom[170] = '.';
	parse_ok(json, dom);
	ck_assert_uint_eq(strlen(p.host), 253);
	ck_assert_str_eq(p.instance, inst);
}
END_TEST

/* ---------------------------------------------------------------------
 * Invalid payloads.
 */

START_TEST(test_empty)
{
	refused_n("", 0, "empty");
	ck_assert_str_eq(p.msg_id, "");
}
END_TEST

START_TEST(test_not_json)
{
	refused("hello", "not JSON");
	refused("{\"msg_id\":\"a\",", "not JSON");
	refused("{\"msg_id\":'a',\"host\":\"h\"}", "not JSON");
	refused("{\"msg_id\":\"a\",\"host\":\"h\"} {}", "not JSON");
	ck_assert_str_eq(p.msg_id, "");
}
END_TEST

START_TEST(test_not_object)
{
	refused("[\"msg_id\",\"a\"]", "not a JSON object");
	refused("[]", "not a JSON object");
	/* jansson itself refuses a scalar at the top ("not JSON") */
	refused("\"msg_id\"", "JSON");
	refused("42", "JSON");
	refused("null", "JSON");
	refused("true", "JSON");
}
END_TEST

START_TEST(test_msg_id_missing)
{
	refused("{\"instance_name\":\"cattle-1\"}", "no msg_id");
	refused("{}", "no msg_id");
	refused("{\"MSG_ID\":\"a\",\"host\":\"h\"}", "no msg_id");
}
END_TEST

START_TEST(test_msg_id_not_string)
{
	refused("{\"msg_id\":12,\"host\":\"h\"}", "msg_id is not a string");
	refused("{\"msg_id\":null,\"host\":\"h\"}", "msg_id is not a string");
	refused("{\"msg_id\":[\"a\"],\"host\":\"h\"}", "msg_id is not a string");
	ck_assert_str_eq(p.msg_id, "");
}
END_TEST

START_TEST(test_msg_id_empty)
{
	refused("{\"msg_id\":\"\",\"host\":\"h\"}", "msg_id is empty");
}
END_TEST

START_TEST(test_msg_id_too_long)
{
	char json[512], id[MSG_ID_MAX + 2];

	memset(id, 'z', MSG_ID_MAX + 1);
	id[MSG_ID_MAX + 1] = '\0';
	snprintf(json, sizeof(json), "{\"msg_id\":\"%s\",\"host\":\"h\"}", id);
	refused(json, "msg_id longer than 128");
	ck_assert_str_eq(p.msg_id, "");
}
END_TEST

START_TEST(test_msg_id_bad_chars)
{
	static const char *bad[] = {
		"{\"msg_id\":\"a b\",\"host\":\"h\"}",
		"{\"msg_id\":\"a\\tb\",\"host\":\"h\"}",
		"{\"msg_id\":\"a\\nb\",\"host\":\"h\"}",
		"{\"msg_id\":\"a\\u001bb\",\"host\":\"h\"}",
		"{\"msg_id\":\"a\\u007fb\",\"host\":\"h\"}",
		"{\"msg_id\":\"caf\\u00e9\",\"host\":\"h\"}",
		"{\"msg_id\":\"caf\xc3\xa9\",\"host\":\"h\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		refused(bad[i], "msg_id");
		ck_assert_str_eq(p.msg_id, "");
	}
}
END_TEST

START_TEST(test_msg_id_nul)
{
	/* jansson refuses \u0000 unless asked; either way it is refused. */
	refused("{\"msg_id\":\"a\\u0000b\",\"host\":\"h\"}", NULL);
	ck_assert_str_eq(p.msg_id, "");
}
END_TEST

START_TEST(test_no_host)
{
	refused("{\"msg_id\":\"abc\"}", "no instance_name or host");
	ck_assert_str_eq(p.msg_id, "abc");
}
END_TEST

START_TEST(test_both_instance_and_host)
{
	refused("{\"msg_id\":\"abc\",\"instance_name\":\"a\",\"host\":\"b\"}",
	    "both instance_name and host");
	ck_assert_str_eq(p.msg_id, "abc");
}
END_TEST

START_TEST(test_instance_not_string)
{
	refused("{\"msg_id\":\"abc\",\"instance_name\":7}",
	    "instance_name is not a string");
	ck_assert_str_eq(p.msg_id, "abc");
	refused("{\"msg_id\":\"abc\",\"instance_name\":null}",
	    "instance_name is not a string");
	refused("{\"msg_id\":\"abc\",\"host\":{\"name\":\"h\"}}",
	    "host is not a string");
	ck_assert_str_eq(p.msg_id, "abc");
}
END_TEST

/* Looped over bad_hosts: names that must never reach a command line. */
static const char *bad_hosts[] = {
	"a;reboot", "$(id)", "`id`", "../x", "a b", "a\\nb", "-rf",
	"--help", "a-", "", "a..b", ".a", "a.", "a_b", "a/b", "a|b", "a&b",
	"a>b", "a'b", "a\\\"b", "a\\\\b", "*", "?", "a\\tb",
	"c\\u0430ttle",		/* Cyrillic a, escaped */
	"c\xd0\xb0ttle",	/* Cyrillic a, raw UTF-8 */
	"cattle\\u2024com",	/* one dot leader */
	"\\uff43attle",		/* fullwidth c */
};

START_TEST(test_bad_instance_name)
{
	char json[256], id[16];

	snprintf(id, sizeof(id), "m-%d", _i);
	snprintf(json, sizeof(json), "{\"msg_id\":\"%s\","
	    "\"instance_name\":\"%s\"}", id, bad_hosts[_i]);
	refused(json, "host name");
	/* the msg_id was valid: kept, so the refusal is recorded under it */
	ck_assert_str_eq(p.msg_id, id);
}
END_TEST

START_TEST(test_bad_host)
{
	char json[256];

	snprintf(json, sizeof(json), "{\"msg_id\":\"h-%d\",\"host\":\"%s\"}",
	    _i, bad_hosts[_i]);
	refused(json, "host name");
}
END_TEST

START_TEST(test_host_nul)
{
	refused("{\"msg_id\":\"abc\",\"instance_name\":\"cattle\\u0000;reboot\"}",
	    NULL);
	refused("{\"msg_id\":\"abc\",\"host\":\"db1\\u0000.evil\"}", NULL);
}
END_TEST

START_TEST(test_host_too_long)
{
	char json[512], name[256];

	memset(name, 'b', 254);
	name[63] = name[127] = name[191] = '.';
	name[254] = '\0';
	snprintf(json, sizeof(json), "{\"msg_id\":\"abc\",\"host\":\"%s\"}",
	    name);
	refused(json, "253");
	ck_assert_str_eq(p.msg_id, "abc");
}
END_TEST

START_TEST(test_host_too_long_with_domain)
{
	char json[512], inst[64], dom[191];

	memset(inst, 'i', 63);
	inst[63] = '\0';
	memset(dom, 'd', 190);
	dom[190] = '\0';
	dom[50] = dom[110] = dom[170] = '.';
	snprintf(json, sizeof(json), "{\"msg_id\":\"abc\",\"instance_name\":"
	    "\"%s\"}", inst);
	ck_assert_int_eq(parse_dom(json, dom), -1);	/* 63 + 1 + 190 = 254 */
	ck_assert_ptr_nonnull(strstr(err, "253"));
	ck_assert_str_eq(p.msg_id, "abc");
}
END_TEST

START_TEST(test_label_too_long)
{
	char json[256], label[65];

	memset(label, 'l', 64);
	label[64] = '\0';
	snprintf(json, sizeof(json), "{\"msg_id\":\"abc\",\"instance_name\":"
	    "\"%s\"}", label);
	refused(json, "63");
}
END_TEST

START_TEST(test_instance_with_bad_domain)
{
	/* The combined name is checked, so a bad domain cannot slip through. */
	ck_assert_int_eq(parse_dom("{\"msg_id\":\"abc\",\"instance_name\":"
	    "\"cattle-1\"}", "example.com;reboot"), -1);
	ck_assert_ptr_nonnull(strstr(err, "host name"));
	ck_assert_str_eq(p.msg_id, "abc");
}
END_TEST

START_TEST(test_too_large)
{
	static const char json[] = "{\"msg_id\":\"a\",\"host\":\"h\"}";
	char *big;

	/* The job frame carried a truncated payload: size tells the truth. */
	ck_assert_int_eq(payload_parse(json, strlen(json), PAYLOAD_MAX + 1, "",
	    &p, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "16384"));
	ck_assert_ptr_nonnull(strstr(err, "16385"));
	ck_assert_int_eq(payload_parse(json, strlen(json), 100000, "",
	    &p, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "100000"));

	big = malloc(PAYLOAD_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', PAYLOAD_MAX + 1);
	memcpy(big, json, strlen(json));
	big[PAYLOAD_MAX + 1] = '\0';
	refused_n(big, PAYLOAD_MAX + 1, "more than 16384");
	free(big);
}
END_TEST

START_TEST(test_duplicate_keys)
{
	refused("{\"msg_id\":\"a\",\"host\":\"h\",\"host\":\"$(id)\"}",
	    "not JSON");
	refused("{\"msg_id\":\"a\",\"msg_id\":\"b\",\"host\":\"h\"}",
	    "not JSON");
}
END_TEST

START_TEST(test_invalid_utf8)
{
	refused("{\"msg_id\":\"a\xff\",\"host\":\"h\"}", "not JSON");
	refused("{\"msg_id\":\"a\",\"host\":\"h\xc3\"}", "not JSON");
	refused("{\"msg_id\":\"a\",\"host\":\"\xed\xa0\x80\"}", "not JSON");
	refused("{\"msg_id\":\"a\",\"host\":\"\xc0\xaf\"}", "not JSON");
}
END_TEST

START_TEST(test_embedded_nul_byte)
{
	static const char json[] = "{\"msg_id\":\"a\",\"host\":\"h\0x\"}";

	refused_n(json, sizeof(json) - 1, NULL);
}
END_TEST

START_TEST(test_deep_nesting)
{
	size_t depth = 5000, n = 0;
	char *json = malloc(2 * depth + 64);

	ck_assert_ptr_nonnull(json);
	for (size_t i = 0; i < depth; i++)
		json[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		json[n++] = ']';
	json[n] = '\0';
	refused(json, NULL);

	/* The same depth under a valid object's ignored key. */
	n = (size_t)sprintf(json, "{\"msg_id\":\"a\",\"host\":\"h\",\"x\":");
	for (size_t i = 0; i < depth; i++)
		json[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		json[n++] = ']';
	json[n++] = '}';
	json[n] = '\0';
	refused(json, "not JSON");
	free(json);
}
END_TEST

/* ---------------------------------------------------------------------
 * Allow and deny globs.
 */

START_TEST(test_allowed_empty_allow)
{
	const char *why = NULL;

	ck_assert_int_eq(hostname_allowed("cattle-1", "", "", &why), 0);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "allow"));
	ck_assert_int_eq(hostname_allowed("cattle-1", " , ", "", &why), 0);
}
END_TEST

START_TEST(test_allowed_glob)
{
	const char *why = NULL;

	ck_assert_int_eq(hostname_allowed("cattle-1", "cattle-*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("cattle-1a2b.example.com", "cattle-*",
	    "", &why), 1);
	ck_assert_int_eq(hostname_allowed("db1", "cattle-*", "", &why), 0);
	ck_assert_ptr_nonnull(strstr(why, "allow"));
	ck_assert_int_eq(hostname_allowed("xcattle-1", "cattle-*", "", &why), 0);
	ck_assert_int_eq(hostname_allowed("cattle", "cattle-*", "", &why), 0);
	ck_assert_int_eq(hostname_allowed("db1", "*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("db1", "db?", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("db12", "db?", "", &why), 0);
	ck_assert_int_eq(hostname_allowed("db1", "db1", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("db10", "db1", "", &why), 0);
}
END_TEST

START_TEST(test_allowed_deny_wins)
{
	const char *why = NULL;

	ck_assert_int_eq(hostname_allowed("db1", "*", "db1", &why), 0);
	ck_assert_ptr_nonnull(strstr(why, "deny"));
	ck_assert_int_eq(hostname_allowed("cattle-prod-1", "cattle-*",
	    "*-prod-*", &why), 0);
	ck_assert_ptr_nonnull(strstr(why, "deny"));
	ck_assert_int_eq(hostname_allowed("cattle-dev-1", "cattle-*",
	    "*-prod-*", &why), 1);
}
END_TEST

START_TEST(test_allowed_lists)
{
	const char *why = NULL;

	ck_assert_int_eq(hostname_allowed("db2", "cattle-*,db*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("db2", "cattle-* db*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("db2", "cattle-*, db*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("db2", "cattle-*\tdb*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("cattle-9", "  db*,,cattle-*  ", "",
	    &why), 1);
	ck_assert_int_eq(hostname_allowed("web1", "cattle-*, db*", "", &why), 0);
	ck_assert_int_eq(hostname_allowed("db2", "*", "db1, db2", &why), 0);
	ck_assert_int_eq(hostname_allowed("db3", "*", "db1 db2", &why), 1);
}
END_TEST

START_TEST(test_allowed_case_insensitive)
{
	const char *why = NULL;

	ck_assert_int_eq(hostname_allowed("CATTLE-1", "cattle-*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("cattle-1", "CATTLE-*", "", &why), 1);
	ck_assert_int_eq(hostname_allowed("DB1.Example.com", "*",
	    "db1.example.COM", &why), 0);
}
END_TEST

START_TEST(test_parse_then_allow)
{
	const char *why = NULL;

	/* The worker's path: payload, then globs on the full host name. */
	parse_ok("{\"msg_id\":\"abc\",\"instance_name\":\"cattle-1a2b\"}",
	    "example.com");
	ck_assert_int_eq(hostname_allowed(p.host, "*.example.com", "", &why), 1);
	ck_assert_int_eq(hostname_allowed(p.host, "cattle-*.example.com",
	    "*.prod.example.com", &why), 1);
	ck_assert_int_eq(hostname_allowed(p.host, "*.example.org", "", &why), 0);
}
END_TEST

/*
 * allow = * and deny = 127.* 10.* once let every numeric spelling of
 * 127.0.0.1 (and any other address) through: the payload refuses them
 * all, so they are recorded invalid and never reach the globs.
 */
static const char *address_hosts[] = {
	"2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001",
	"1.2.3.4", "10.1", "012.0.0.1", "0xa000001",
};

START_TEST(test_address_host)
{
	char json[256], id[16];

	snprintf(id, sizeof(id), "ip-%d", _i);
	snprintf(json, sizeof(json), "{\"msg_id\":\"%s\",\"host\":\"%s\"}",
	    id, address_hosts[_i]);
	refused(json, "IPv4 address");
	ck_assert_ptr_nonnull(strstr(err, "host name"));
	snprintf(json, sizeof(json), "{\"msg_id\":\"%s\","
	    "\"instance_name\":\"%s\"}", id, address_hosts[_i]);
	refused(json, "IPv4 address");
	ck_assert_str_eq(p.msg_id, id);	/* kept for the invalid row */
}
END_TEST

START_TEST(test_digit_names_pass)
{
	static const char *names[] = { "host-1", "1host.example", "a1.b2" };
	const char *why = NULL;
	char json[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(json, sizeof(json), "{\"msg_id\":\"d\",\"host\":"
		    "\"%s\"}", names[i]);
		parse_ok(json, "");
		ck_assert_str_eq(p.host, names[i]);
		ck_assert_int_eq(hostname_allowed(p.host, "*", "127.* 10.*",
		    &why), 1);
	}
	/* A numeric instance under a domain is a name, not an address. */
	parse_ok("{\"msg_id\":\"d\",\"instance_name\":\"127\"}",
	    "example.com");
	ck_assert_str_eq(p.host, "127.example.com");
}
END_TEST

/* ---------------------------------------------------------------------
 */

static Suite *
payload_suite(void)
{
	Suite *s = suite_create("payload");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, payload_setup, NULL);
	tcase_add_test(tc, test_valid_instance);
	tcase_add_test(tc, test_valid_instance_with_domain);
	tcase_add_test(tc, test_valid_host_no_domain_appended);
	tcase_add_test(tc, test_valid_extra_keys_ignored);
	tcase_add_test(tc, test_valid_whitespace_and_escapes);
	tcase_add_test(tc, test_valid_msg_id_limits);
	tcase_add_test(tc, test_valid_len_not_nul_terminated);
	tcase_add_test(tc, test_valid_size_at_limit);
	tcase_add_test(tc, test_valid_long_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, payload_setup, NULL);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_not_json);
	tcase_add_test(tc, test_not_object);
	tcase_add_test(tc, test_msg_id_missing);
	tcase_add_test(tc, test_msg_id_not_string);
	tcase_add_test(tc, test_msg_id_empty);
	tcase_add_test(tc, test_msg_id_too_long);
	tcase_add_test(tc, test_msg_id_bad_chars);
	tcase_add_test(tc, test_msg_id_nul);
	tcase_add_test(tc, test_no_host);
	tcase_add_test(tc, test_both_instance_and_host);
	tcase_add_test(tc, test_instance_not_string);
	tcase_add_loop_test(tc, test_bad_instance_name, 0,
	    (int)(sizeof(bad_hosts) / sizeof(bad_hosts[0])));
	tcase_add_loop_test(tc, test_bad_host, 0,
	    (int)(sizeof(bad_hosts) / sizeof(bad_hosts[0])));
	tcase_add_test(tc, test_host_nul);
	tcase_add_loop_test(tc, test_address_host, 0,
	    (int)(sizeof(address_hosts) / sizeof(address_hosts[0])));
	tcase_add_test(tc, test_digit_names_pass);
	tcase_add_test(tc, test_host_too_long);
	tcase_add_test(tc, test_host_too_long_with_domain);
	tcase_add_test(tc, test_label_too_long);
	tcase_add_test(tc, test_instance_with_bad_domain);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_duplicate_keys);
	tcase_add_test(tc, test_invalid_utf8);
	tcase_add_test(tc, test_embedded_nul_byte);
	tcase_add_test(tc, test_deep_nesting);
	suite_add_tcase(s, tc);

	tc = tcase_create("allowed");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, payload_setup, NULL);
	tcase_add_test(tc, test_allowed_empty_allow);
	tcase_add_test(tc, test_allowed_glob);
	tcase_add_test(tc, test_allowed_deny_wins);
	tcase_add_test(tc, test_allowed_lists);
	tcase_add_test(tc, test_allowed_case_insensitive);
	tcase_add_test(tc, test_parse_then_allow);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(payload_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
