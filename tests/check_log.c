/*
 * check_log: the log's formats.  JSON lines are parsed back with
 * jansson, as a shipper would; on the journal's stream each line carries
 * its priority prefix and no timestamp of its own.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "log.h"

static char path[64];

static void
setup(void)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/check_log.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void
teardown(void)
{
	unlink(path);
}

/* Line n (from 0) of the log file into buf. */
static const char *
line(int n, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	ck_assert_ptr_nonnull(f);
	for (int i = 0; i <= n; i++)
		ck_assert_msg(fgets(buf, (int)len, f) != NULL, "no line %d", n);
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static json_t *
parsed(int n)
{
	char buf[8192];
	json_error_t e;
	json_t *j = json_loads(line(n, buf, sizeof(buf)), 0, &e);

	ck_assert_msg(j != NULL, "line %d is not JSON: %s: %s", n, e.text, buf);
	return j;
}

static const char *
str(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);

	ck_assert_msg(json_is_string(v), "no string %s", key);
	return json_string_value(v);
}

START_TEST(test_json_lines)
{
	json_t *j;

	log_init("worker 2");
	ck_assert_int_eq(log_open(path), 0);
	log_set_json(1);
	log_info("Restarted host=cattle-0001 msg_id=m-1 attempt=2");
	log_warn("Invalid msg_id=m-\"2\": bad \"payload\"\x01 \\ tab\there");
	log_err("host=caf\xc3\xa9 bytes \xff\xfe and \xed\xa0\x80 end");
	log_init(NULL);
	log_info("Held msg_id=m-3 host=cattle-0003: host cattle-0003 busy");

	j = parsed(0);
	ck_assert_str_eq(str(j, "level"), "info");
	ck_assert_str_eq(str(j, "ident"), "worker 2");
	ck_assert_str_eq(str(j, "msg"),
	    "Restarted host=cattle-0001 msg_id=m-1 attempt=2");
	ck_assert_str_eq(str(j, "host"), "cattle-0001");
	ck_assert_str_eq(str(j, "msg_id"), "m-1");
	ck_assert_str_eq(str(j, "attempt"), "2");
	ck_assert_int_eq(strlen(str(j, "ts")), 24);
	json_decref(j);

	j = parsed(1);
	ck_assert_str_eq(str(j, "level"), "warning");
	ck_assert_str_eq(str(j, "msg"),
	    "Invalid msg_id=m-\"2\": bad \"payload\"\x01 \\ tab\there");
	ck_assert_str_eq(str(j, "msg_id"), "m-\"2\"");
	json_decref(j);

	/* Valid UTF-8 kept; bytes that are not become '?'. */
	j = parsed(2);
	ck_assert_str_eq(str(j, "msg"), "host=caf\xc3\xa9 bytes ?? and ??? end");
	json_decref(j);

	j = parsed(3);
	ck_assert_str_eq(str(j, "ident"), "mandrilld");
	ck_assert_str_eq(str(j, "host"), "cattle-0003");	/* no colon */
	json_decref(j);
	log_set_json(0);
	log_open(NULL);
}
END_TEST

START_TEST(test_text_lines)
{
	char buf[4096];

	log_init("worker 1");
	ck_assert_int_eq(log_open(path), 0);
	log_set_json(0);
	log_info("one\nline\x1b[31m");
	line(0, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, " INFO worker 1: one?line?[31m") != NULL,
	    "got %s", buf);
	ck_assert_int_eq(buf[4], '-');		/* a timestamp first */
	log_open(NULL);
}
END_TEST

/* stderr is the journal's stream: prefixes, and the journal's own time. */
START_TEST(test_journal_prefix)
{
	char buf[4096], env[64];
	struct stat sb;
	int fd = open(path, O_WRONLY | O_APPEND);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)sb.st_dev,
	    (unsigned long long)sb.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init(NULL);
	log_open(NULL);
	log_set_level(LOG_DEBUG);
	log_err("an error");
	log_warn("a warning");
	log_info("news");
	log_debug("detail");
	ck_assert_str_eq(line(0, buf, sizeof(buf)), "<3>ERROR an error");
	ck_assert_str_eq(line(1, buf, sizeof(buf)), "<4>WARNING a warning");
	ck_assert_str_eq(line(2, buf, sizeof(buf)), "<6>INFO news");
	ck_assert_str_eq(line(3, buf, sizeof(buf)), "<7>DEBUG detail");
	/* Another stream with the variable still set: no prefixes. */
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_init(NULL);
	log_info("plain");
	ck_assert_int_eq(line(4, buf, sizeof(buf))[0], '2');
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("formats");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_lines);
	tcase_add_test(tc, test_text_lines);
	tcase_add_test(tc, test_journal_prefix);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
