/*
 * check_conf: mandrill.conf parsing, durations and host name checks.
 *
 * Every key has its documented default and can be written in the file;
 * every bad file is refused with a message that names file, line, key and
 * the accepted form.  Durations take units; host names are RFC 1123.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "argv.h"
#include "conf.h"
#include "duration.h"
#include "hostname.h"
#include "log.h"
#include "natsurl.h"

static struct conf conf;
static char err[CONF_ERR_MAX];

static void
conf_setup(void)
{
	conf_defaults(&conf);
	err[0] = '\0';
}

static void
assert_has(const char *s, const char *want)
{
	ck_assert_msg(strstr(s, want) != NULL, "\"%s\" does not contain "
	    "\"%s\"", s, want);
}

/* Load text over the defaults and expect success. */
static void
load_ok(const char *text)
{
	int rc = conf_load_string(&conf, text, "test.conf", err, sizeof(err));

	ck_assert_msg(rc == 0, "load failed: %s", err);
}

/* Load text over the defaults, expect failure and return the message. */
static const char *
load_fails(const char *text)
{
	err[0] = '\0';
	ck_assert_int_eq(conf_load_string(&conf, text, "test.conf", err,
	    sizeof(err)), -1);
	ck_assert_str_ne(err, "");
	return err;
}

/* ---------------------------------------------------------------------
 * Defaults.
 */

START_TEST(test_defaults)
{
	ck_assert_uint_eq(conf.workers, 2);
	ck_assert_uint_eq(conf.jobs_per_worker, 64);
	ck_assert_uint_eq(conf.max_in_flight, 1000);
	ck_assert_int_eq(conf.ack_deadline, 10000);
	ck_assert_uint_eq(conf.batch, 100);
	ck_assert_int_eq(conf.drain_timeout, 30000);
	ck_assert_int_eq(conf.worker_timeout, 30000);
	ck_assert_uint_eq(conf.max_attempts, 5);
	ck_assert_int_eq(conf.backoff_min, 10000);
	ck_assert_int_eq(conf.backoff_max, 600000);
	ck_assert_int_eq(conf.max_lease, 3600000);
	ck_assert_int_eq(conf.sim_latency_min, 100);
	ck_assert_int_eq(conf.sim_latency_max, 1000);
	ck_assert_double_eq_tol(conf.sim_failure_rate, 0.1, 1e-12);
	ck_assert_int_eq(conf.synchronous, SYNC_FULL);
	ck_assert_int_eq(conf.log_level, LOG_INFO);
	ck_assert_int_eq(conf.min_interval, 0);
	ck_assert_int_eq(conf.source, SOURCE_SIM);
	ck_assert_int_eq(conf.mode, RESTART_SIM);
	ck_assert_int_eq(conf.busy_timeout, 5000);
	ck_assert_int_eq(conf.restart_timeout, 300000);
	ck_assert_uint_eq(conf.rate, 1);
	ck_assert_uint_eq(conf.count, 0);
	ck_assert_int_eq(conf.exit_when_done, 0);
	ck_assert_str_eq(conf.allow, "");	/* allows nothing */
	ck_assert_str_eq(conf.deny, "");
	ck_assert_str_eq(conf.domain, "");
	ck_assert_str_eq(conf.log_file, "");
	ck_assert_int_eq(conf.state_dir[0], '/');
	ck_assert_ptr_nonnull(strstr(conf.worker_path, "mandrill-worker"));
	ck_assert_int_eq(conf_check(&conf, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_empty_file_gives_defaults)
{
	struct conf d;

	conf_defaults(&d);
	load_ok("");
	ck_assert(memcmp(&conf, &d, sizeof(d)) == 0);
	load_ok("# only a comment\n; and another\n\n[mandrill]\n");
	ck_assert(memcmp(&conf, &d, sizeof(d)) == 0);
}
END_TEST

START_TEST(test_every_key_default_in_file)
{
	struct conf d;
	char *text = malloc(64 * 1024);
	const char *section = "";
	size_t n = 0;

	ck_assert_ptr_nonnull(text);
	text[0] = '\0';
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (strcmp(section, k->section) != 0) {
			section = k->section;
			n += (size_t)snprintf(text + n, 64 * 1024 - n,
			    "[%s]\n", section);
		}
		n += (size_t)snprintf(text + n, 64 * 1024 - n, "%s = %s\n",
		    k->name, k->def);
		ck_assert_ptr_eq(conf_key_find(k->section, k->name), k);
	}
	conf_defaults(&d);
	load_ok(text);
	ck_assert(memcmp(&conf, &d, sizeof(d)) == 0);
	free(text);
}
END_TEST

START_TEST(test_each_key_alone)
{
	/* Looped over conf_keys: one key in its own file, at its default. */
	const struct conf_key *k = &conf_keys[_i];
	struct conf d;
	char text[512];

	snprintf(text, sizeof(text), "[%s]\n%s = %s\n", k->section, k->name,
	    k->def);
	conf_defaults(&d);
	load_ok(text);
	ck_assert_msg(memcmp(&conf, &d, sizeof(d)) == 0,
	    "[%s] %s = %s changed the configuration", k->section, k->name,
	    k->def);
}
END_TEST

START_TEST(test_sample_has_every_default)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct conf d;

	ck_assert_ptr_nonnull(f);
	conf_write_sample(f);
	fclose(f);
	for (size_t i = 0; i < conf_nkeys; i++) {
		char line[512], sect[64];

		snprintf(line, sizeof(line), "\n#%s = %s\n", conf_keys[i].name,
		    conf_keys[i].def);
		snprintf(sect, sizeof(sect), "[%s]\n", conf_keys[i].section);
		assert_has(buf, line);
		assert_has(buf, sect);
	}
	/* The sample itself is a valid file that changes nothing. */
	conf_defaults(&d);
	load_ok(buf);
	ck_assert(memcmp(&conf, &d, sizeof(d)) == 0);
	free(buf);
}
END_TEST

/* ---------------------------------------------------------------------
 * Valid files.
 */

START_TEST(test_full_file)
{
	load_ok(
	    "# mandrill.conf\n"
	    "[mandrill]\n"
	    "workers = 8\n"
	    "jobs_per_worker = 128\n"
	    "max_in_flight = 5000\n"
	    "state_dir = /srv/mandrill\n"
	    "log_file = /var/log/mandrill.log\n"
	    "log_level = debug\n"
	    "drain_timeout = 45s\n"
	    "worker_timeout = 2m\n"
	    "synchronous = normal\n"
	    "busy_timeout = 250ms\n"
	    "\n"
	    "[source]\n"
	    "type = sim\n"
	    "batch = 500\n"
	    "ack_deadline = 30s\n"
	    "rate = 0\n"
	    "count = 1000000000000\n"
	    "exit_when_done = yes\n"
	    "seed = 18446744073709551615\n"
	    "\n"
	    "[restart]\n"
	    "mode = sim\n"
	    "sim_latency = 50ms..2s\n"
	    "sim_failure_rate = 0.25\n"
	    "sim_seed = 42\n"
	    "domain = example.com\n"
	    "allow = cattle-*, db*\n"
	    "deny = db1*\n"
	    "max_attempts = 3\n"
	    "backoff_min = 1s\n"
	    "backoff_max = 1h\n"
	    "min_interval = 1d\n"
	    "restart_timeout = 90s\n"
	    "\n"
	    "[lease]\n"
	    "max_lease = 2h\n");
	ck_assert_uint_eq(conf.workers, 8);
	ck_assert_uint_eq(conf.jobs_per_worker, 128);
	ck_assert_uint_eq(conf.max_in_flight, 5000);
	ck_assert_str_eq(conf.state_dir, "/srv/mandrill");
	ck_assert_str_eq(conf.log_file, "/var/log/mandrill.log");
	ck_assert_int_eq(conf.log_level, LOG_DEBUG);
	ck_assert_int_eq(conf.drain_timeout, 45000);
	ck_assert_int_eq(conf.worker_timeout, 120000);
	ck_assert_int_eq(conf.synchronous, SYNC_NORMAL);
	ck_assert_int_eq(conf.busy_timeout, 250);
	ck_assert_int_eq(conf.source, SOURCE_SIM);
	ck_assert_uint_eq(conf.batch, 500);
	ck_assert_int_eq(conf.ack_deadline, 30000);
	ck_assert_uint_eq(conf.rate, 0);
	ck_assert_uint_eq(conf.count, UINT64_C(1000000000000));
	ck_assert_int_eq(conf.exit_when_done, 1);
	ck_assert_uint_eq(conf.seed, UINT64_MAX);
	ck_assert_int_eq(conf.mode, RESTART_SIM);
	ck_assert_int_eq(conf.sim_latency_min, 50);
	ck_assert_int_eq(conf.sim_latency_max, 2000);
	ck_assert_double_eq_tol(conf.sim_failure_rate, 0.25, 1e-12);
	ck_assert_uint_eq(conf.sim_seed, 42);
	ck_assert_str_eq(conf.domain, "example.com");
	ck_assert_str_eq(conf.allow, "cattle-*, db*");
	ck_assert_str_eq(conf.deny, "db1*");
	ck_assert_uint_eq(conf.max_attempts, 3);
	ck_assert_int_eq(conf.backoff_min, 1000);
	ck_assert_int_eq(conf.backoff_max, 3600000);
	ck_assert_int_eq(conf.min_interval, 86400000);
	ck_assert_int_eq(conf.restart_timeout, 90000);
	ck_assert_int_eq(conf.max_lease, 7200000);
}
END_TEST

START_TEST(test_bounds_accepted)
{
	load_ok("[mandrill]\nworkers = 1\njobs_per_worker = 100000\n"
	    "[source]\nack_deadline = 1s\nbatch = 10000\n"
	    "[restart]\nsim_latency = 0..1h\nsim_failure_rate = 0\n");
	ck_assert_uint_eq(conf.workers, 1);
	ck_assert_uint_eq(conf.jobs_per_worker, 100000);
	ck_assert_int_eq(conf.ack_deadline, 1000);
	ck_assert_uint_eq(conf.batch, 10000);
	ck_assert_int_eq(conf.sim_latency_min, 0);
	ck_assert_int_eq(conf.sim_latency_max, 3600000);
	ck_assert_double_eq(conf.sim_failure_rate, 0.0);
	conf_defaults(&conf);
	load_ok("[mandrill]\nworkers = 256\n[restart]\n"
	    "sim_failure_rate = 1\nsim_latency = 1s..1s\n");
	ck_assert_uint_eq(conf.workers, 256);
	ck_assert_double_eq(conf.sim_failure_rate, 1.0);
	ck_assert_int_eq(conf.sim_latency_min, 1000);
	ck_assert_int_eq(conf.sim_latency_max, 1000);
}
END_TEST

START_TEST(test_bool_forms)
{
	static const char *yes[] = { "yes", "YES", "true", "on", "1" };
	static const char *no[] = { "no", "False", "off", "0" };
	char text[128];

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		conf_defaults(&conf);
		snprintf(text, sizeof(text), "[source]\ncount = 10\n"
		    "exit_when_done = %s\n", yes[i]);
		load_ok(text);
		ck_assert_msg(conf.exit_when_done == 1, "%s is not yes", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		conf_defaults(&conf);
		snprintf(text, sizeof(text), "[source]\nexit_when_done = %s\n",
		    no[i]);
		load_ok(text);
		ck_assert_msg(conf.exit_when_done == 0, "%s is not no", no[i]);
	}
}
END_TEST

START_TEST(test_enum_and_level_forms)
{
	load_ok("[mandrill]\nsynchronous = off\nlog_level = warning\n");
	ck_assert_int_eq(conf.synchronous, SYNC_OFF);
	ck_assert_int_eq(conf.log_level, LOG_WARNING);
	load_ok("[mandrill]\nlog_level = error\n");
	ck_assert_int_eq(conf.log_level, LOG_ERR);
	conf_defaults(&conf);
	load_ok("[mandrill]\nsynchronous = FULL\nlog_level = Debug\n");
	ck_assert_int_eq(conf.synchronous, SYNC_FULL);
	ck_assert_int_eq(conf.log_level, LOG_DEBUG);
}
END_TEST

START_TEST(test_comments_and_spaces)
{
	load_ok("; comment\n# comment\n  [mandrill]  \n"
	    "   workers   =   7   \n"
	    "jobs_per_worker = 9 ; inline comment\n");
	ck_assert_uint_eq(conf.workers, 7);
	ck_assert_uint_eq(conf.jobs_per_worker, 9);
}
END_TEST

START_TEST(test_list_appended)
{
	load_ok("[restart]\nallow = cattle-*\nallow = db*\ndeny = db1\n"
	    "deny = db2, db3\n");
	ck_assert_str_eq(conf.allow, "cattle-* db*");
	ck_assert_str_eq(conf.deny, "db1 db2, db3");
}
END_TEST

START_TEST(test_list_continued)
{
	load_ok("[restart]\nallow = cattle-*\n  web-*\n  db*\nmax_attempts = 2\n");
	ck_assert_str_eq(conf.allow, "cattle-* web-* db*");
	ck_assert_uint_eq(conf.max_attempts, 2);
}
END_TEST

START_TEST(test_list_long_by_appending)
{
	/* Long allow lists are built from many lines, within the limit. */
	char *text = malloc(16384);
	char glob[180];
	size_t n = 0, want = 0;

	ck_assert_ptr_nonnull(text);
	memset(glob, 'a', sizeof(glob) - 1);
	glob[sizeof(glob) - 1] = '\0';
	n += (size_t)sprintf(text, "[restart]\n");
	for (int i = 0; i < 20; i++) {
		n += (size_t)sprintf(text + n, "allow = %s\n", glob);
		want += (i > 0) + strlen(glob);
	}
	load_ok(text);
	ck_assert_uint_eq(strlen(conf.allow), want);
	free(text);
}
END_TEST

/*
 * Regression (fixed): conf.c conf_ini_cb(): when appending to a list key overflows
 * CONF_LIST_MAX, key_set(..., again=1) fails and the callback falls back
 * to conf_set(), which calls key_set(..., again=0): the list is replaced
 * by the last line alone and the file is accepted.  Every earlier allow
 * (or deny!) glob is silently dropped.  Expected: an error naming
 * [restart] allow and its accepted form.
 */
START_TEST(test_list_overflow_is_error)
{
	static char text[16384];
	char glob[191];
	size_t n = 0;
	int rc;

	memset(glob, 'a', sizeof(glob) - 1);
	glob[sizeof(glob) - 1] = '\0';
	glob[0] = 'd';				/* the first deny glob */
	n += (size_t)sprintf(text, "[restart]\n");
	for (int i = 0; i < 24; i++)		/* 24 * 191 > 4096 */
		n += (size_t)sprintf(text + n, "deny = %s\n", glob);
	rc = conf_load_string(&conf, text, "test.conf", err, sizeof(err));
	ck_assert_msg(rc == -1, "deny list overflow accepted; deny is now "
	    "%zu bytes", strlen(conf.deny));
	assert_has(err, "deny");
	assert_has(err, "expected");
}
END_TEST

START_TEST(test_line_of_198_bytes)
{
	char text[512];
	char val[200];

	/* "log_file = " is 11 bytes; 187 more make a 198-byte line, kept whole. */
	val[0] = '/';
	memset(val + 1, 'x', 186);
	val[187] = '\0';
	snprintf(text, sizeof(text), "[mandrill]\nlog_file = %s\n"
	    "workers = 3\n", val);
	load_ok(text);
	ck_assert_str_eq(conf.log_file, val);
	ck_assert_uint_eq(conf.workers, 3);
}
END_TEST

/*
 * Regression (fixed): conf.c INI_LINE_MAX was 199, but inih (INI_MAX_LINE 200) reads at
 * most 199 bytes *including* the newline.  A line of exactly 199 bytes
 * passes precheck() and is read in two pieces, its newline becoming an
 * extra empty line, so every later error is reported one line too far.
 * Expected: INI_LINE_MAX 198 (reject the line), or correct line numbers.
 */
START_TEST(test_line_numbers_after_199_byte_line)
{
	char text[512];
	char val[200];

	val[0] = '/';
	memset(val + 1, 'x', 187);
	val[188] = '\0';
	snprintf(text, sizeof(text), "[mandrill]\nlog_file = %s\n"
	    "frobnicate = 1\n", val);
	if (conf_load_string(&conf, text, "test.conf", err, sizeof(err)) == 0)
		ck_abort_msg("unknown key accepted");
	/* frobnicate is on line 3, or the long line is refused */
	ck_assert_msg(strstr(err, "test.conf:3:") != NULL ||
	    strstr(err, "longer than") != NULL, "wrong line: %s", err);
}
END_TEST

/* ---------------------------------------------------------------------
 * Errors.
 */

START_TEST(test_unknown_key)
{
	const char *e = load_fails("[mandrill]\nworkers = 2\nfrobnicate = 1\n");

	assert_has(e, "test.conf");
	assert_has(e, ":3:");
	assert_has(e, "frobnicate");
	assert_has(e, "unknown key");
	assert_has(e, "[mandrill]");
}
END_TEST

START_TEST(test_key_in_wrong_section)
{
	const char *e = load_fails("[source]\nworkers = 2\n");

	assert_has(e, ":2:");
	assert_has(e, "unknown key");
	assert_has(e, "workers");
}
END_TEST

START_TEST(test_key_before_section)
{
	const char *e = load_fails("workers = 2\n");

	assert_has(e, "test.conf:1:");
}
END_TEST

START_TEST(test_unknown_section)
{
	const char *e = load_fails("[mandrill]\nworkers = 2\n[bogus]\nx = 1\n");

	assert_has(e, "test.conf");
	assert_has(e, ":4:");
	assert_has(e, "unknown section");
	assert_has(e, "bogus");
}
END_TEST

/* Looped over bad_values: one bad value each. */
static const struct bad_value {
	const char	*text;
	const char	*want[3];
} bad_values[] = {
	{ "[mandrill]\nworkers = 0\n",
	  { "[mandrill] workers", "expected", "an integer from 1 to 256" } },
	{ "[mandrill]\nworkers = abc\n",
	  { "[mandrill] workers", "\"abc\"", "an integer from 1 to 256" } },
	{ "[mandrill]\nworkers = 300\n",
	  { "[mandrill] workers", "\"300\"", "an integer from 1 to 256" } },
	{ "[mandrill]\nworkers = -1\n",
	  { "[mandrill] workers", "expected", "an integer" } },
	{ "[mandrill]\nworkers = 2x\n",
	  { "[mandrill] workers", "expected", "an integer" } },
	{ "[mandrill]\nworkers = 99999999999999999999999\n",
	  { "[mandrill] workers", "expected", "an integer" } },
	{ "[mandrill]\nworkers =\n",
	  { "[mandrill] workers", "expected", "an integer" } },
	{ "[source]\nack_deadline = 10\n",
	  { "[source] ack_deadline", "expected a duration", "10s" } },
	{ "[source]\nack_deadline = 5x\n",
	  { "[source] ack_deadline", "expected a duration", "500ms" } },
	{ "[source]\nack_deadline = 100ms\n",
	  { "[source] ack_deadline", "expected a duration", "from 1s" } },
	{ "[source]\nack_deadline = 11m\n",
	  { "[source] ack_deadline", "expected a duration", "to 10m" } },
	{ "[source]\ncount = 2000000000000\n",
	  { "[source] count", "expected", "an integer" } },
	{ "[restart]\nsim_latency = 1s..100ms\n",
	  { "[restart] sim_latency", "expected", "MIN..MAX" } },
	{ "[restart]\nsim_latency = 1s\n",
	  { "[restart] sim_latency", "expected", "MIN..MAX" } },
	{ "[restart]\nsim_latency = 1s..2h\n",
	  { "[restart] sim_latency", "expected", "at most 1h" } },
	{ "[restart]\nsim_failure_rate = 1.5\n",
	  { "[restart] sim_failure_rate", "expected", "from 0 to 1" } },
	{ "[restart]\nsim_failure_rate = -0.1\n",
	  { "[restart] sim_failure_rate", "expected", "from 0 to 1" } },
	{ "[restart]\nsim_failure_rate = nan\n",
	  { "[restart] sim_failure_rate", "expected", "from 0 to 1" } },
	{ "[restart]\nsim_failure_rate = 0.5x\n",
	  { "[restart] sim_failure_rate", "expected", "from 0 to 1" } },
	{ "[source]\nexit_when_done = maybe\n",
	  { "[source] exit_when_done", "expected", "yes or no" } },
	{ "[mandrill]\nlog_level = loud\n",
	  { "[mandrill] log_level", "expected", "debug, info, warning or error" } },
	{ "[source]\ntype = kafka\n",
	  { "[source] type", "expected", "sim|nats" } },
	{ "[mandrill]\nsynchronous = extra\n",
	  { "[mandrill] synchronous", "expected", "off|normal|full" } },
	{ "[restart]\nmode = ssh\n",
	  { "[restart] mode", "expected", "sim|command" } },
	{ "[restart]\nmax_attempts = 0\n",
	  { "[restart] max_attempts", "expected", "from 1 to 1000" } },
	{ "[lease]\nmax_lease = 0\n",
	  { "[lease] max_lease", "expected", "a duration" } },
};

START_TEST(test_bad_value)
{
	const struct bad_value *b = &bad_values[_i];
	const char *e = load_fails(b->text);

	assert_has(e, "test.conf:2:");
	for (int i = 0; i < 3 && b->want[i] != NULL; i++)
		assert_has(e, b->want[i]);
}
END_TEST

START_TEST(test_bad_value_on_later_line)
{
	const char *e = load_fails("[mandrill]\nworkers = 2\n\n# x\n"
	    "[restart]\nsim_failure_rate = 2\n");

	assert_has(e, "test.conf:6:");
	assert_has(e, "sim_failure_rate");
}
END_TEST

START_TEST(test_given_twice)
{
	const char *e = load_fails("[mandrill]\nworkers = 2\nworkers = 3\n");

	assert_has(e, "test.conf:3:");
	assert_has(e, "workers");
	assert_has(e, "given twice");
}
END_TEST

START_TEST(test_given_twice_across_sections)
{
	const char *e = load_fails("[mandrill]\nworkers = 2\n[source]\n"
	    "batch = 1\n[mandrill]\nworkers = 3\n");

	assert_has(e, "test.conf:6:");
	assert_has(e, "given twice");
}
END_TEST

START_TEST(test_long_line)
{
	char text[512];
	char val[201];
	const char *e;

	/* "log_file = " (11 bytes) + 189 bytes: a 200-byte line. */
	val[0] = '/';
	memset(val + 1, 'x', 188);
	val[189] = '\0';
	snprintf(text, sizeof(text), "[mandrill]\n\nlog_file = %s\n", val);
	e = load_fails(text);
	assert_has(e, "test.conf:3:");
	assert_has(e, "longer than");
}
END_TEST

START_TEST(test_long_comment_line)
{
	char text[512];
	const char *e;

	memset(text, '#', 300);
	text[300] = '\0';
	e = load_fails(text);
	assert_has(e, "test.conf:1:");
	assert_has(e, "longer than");
}
END_TEST

START_TEST(test_syntax_error)
{
	const char *e = load_fails("[mandrill]\nworkers = 2\nworkers 3\n");

	assert_has(e, "test.conf:3:");
	assert_has(e, "syntax error");
}
END_TEST

START_TEST(test_syntax_error_section)
{
	const char *e = load_fails("[mandrill\nworkers = 2\n");

	assert_has(e, "test.conf:1:");
}
END_TEST

START_TEST(test_backoff_min_over_max)
{
	const char *e = load_fails("[restart]\nbackoff_min = 10m\n"
	    "backoff_max = 1m\n");

	assert_has(e, "test.conf");
	assert_has(e, "backoff_min");
	assert_has(e, "backoff_max");
}
END_TEST

START_TEST(test_backoff_min_over_default_max)
{
	const char *e = load_fails("[restart]\nbackoff_min = 1h\n");

	assert_has(e, "backoff_min");
}
END_TEST

START_TEST(test_exit_when_done_needs_count)
{
	const char *e = load_fails("[source]\nexit_when_done = yes\n");

	assert_has(e, "exit_when_done");
	assert_has(e, "count");
}
END_TEST

START_TEST(test_empty_state_dir)
{
	const char *e = load_fails("[mandrill]\nstate_dir =\n");

	assert_has(e, "state_dir");
	assert_has(e, "empty");
}
END_TEST

START_TEST(test_busy_timeout_over_half_worker_timeout)
{
	const char *e = load_fails("[mandrill]\nbusy_timeout = 20s\n"
	    "worker_timeout = 30s\n");

	assert_has(e, "busy_timeout");
	assert_has(e, "worker_timeout");
}
END_TEST

/* A glob longer than the matcher takes is refused, never skipped. */
START_TEST(test_glob_too_long)
{
	char glob[300];

	memset(glob, 'a', sizeof(glob) - 2);
	glob[sizeof(glob) - 2] = '*';
	glob[sizeof(glob) - 1] = '\0';
	ck_assert_int_eq(conf_set(&conf, "restart", "deny", glob, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(conf_check(&conf, err, sizeof(err)), -1);
	assert_has(err, "deny");
	assert_has(err, "longer than 255");
}
END_TEST

START_TEST(test_domain_must_be_a_host_name)
{
	const char *e = load_fails("[restart]\ndomain = example.com # note\n");

	assert_has(e, "domain");
	ck_assert_int_eq(conf.domain[0] == '\0' ||
	    strstr(e, "host name") != NULL, 1);
}
END_TEST

START_TEST(test_nats_settings)
{
	load_ok("[source]\ntype = nats\nurl = nats://a:4222,nats://b:4222\n"
	    "stream = JOBS\nsubject = ops.restart\ndurable = fleet\n"
	    "ack_wait = 1m\nmax_deliver = 3\nmax_ack_pending = 500\n"
	    "create = no\ndead_letter_subject = ops.dead\n");
	ck_assert_int_eq(conf.source, SOURCE_NATS);
	ck_assert_str_eq(conf.url, "nats://a:4222,nats://b:4222");
	ck_assert_str_eq(conf.stream, "JOBS");
	ck_assert_str_eq(conf.subject, "ops.restart");
	ck_assert_str_eq(conf.durable, "fleet");
	ck_assert_int_eq(conf.ack_wait, 60000);
	ck_assert_uint_eq(conf.max_deliver, 3);
	ck_assert_uint_eq(conf.max_ack_pending, 500);
	ck_assert_int_eq(conf.create, 0);
	ck_assert_str_eq(conf.dead_letter_subject, "ops.dead");
}
END_TEST

/* [fleet]: its keys, and what each refuses, naming the key. */
START_TEST(test_fleet_keys)
{
	load_ok("[source]\ntype = nats\n[fleet]\ncoordination = nats\n"
	    "instance = east-1.a\nbucket = ops_fleet\nlease = 10s\n"
	    "remember = 2d\n");
	ck_assert_int_eq(conf.coordination, COORD_NATS);
	ck_assert_str_eq(conf.instance, "east-1.a");
	ck_assert_str_eq(conf.bucket, "ops_fleet");
	ck_assert_int_eq(conf.fleet_lease, 10000);
	ck_assert_int_eq(conf.remember, 2 * 86400000);
	conf_defaults(&conf);
	ck_assert_int_eq(conf.coordination, COORD_NONE);
	ck_assert_str_eq(conf.bucket, "mandrill");
	ck_assert_int_eq(conf.fleet_lease, 30000);
	assert_has(load_fails("[fleet]\ncoordination = nats\n"),
	    "[fleet] coordination = nats needs [source] type = nats");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\n[fleet]\n"
	    "coordination = nats\nbucket = a.b\n"),
	    "[fleet] bucket \"a.b\" may hold only");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\n[fleet]\n"
	    "coordination = nats\ninstance = a b\n"), "[fleet] instance");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nack_wait = 10s\n"
	    "[lease]\nmax_lease = 20s\n[fleet]\ncoordination = nats\n"
	    "lease = 30s\n"),
	    "[fleet] lease must be from 3s to [lease] max_lease");
	conf_defaults(&conf);
	assert_has(load_fails("[fleet]\ncoordination = kv\n"),
	    "[fleet] coordination");
	conf_defaults(&conf);
	assert_has(load_fails("[fleet]\nleader = yes\n"),
	    "unknown key \"leader\" in [fleet]");
}
END_TEST

/* Regexes that would cost regcomp gigabytes are refused first (fuzz_conf). */
START_TEST(test_group_regex_cost)
{
	assert_has(load_fails("[restart]\ngroup = ^7d*++++++++\n"),
	    "stacks repetition operators");
	conf_defaults(&conf);
	assert_has(load_fails("[restart]\ngroup = ^((a{200}){200})\n"),
	    "above 64");
	conf_defaults(&conf);
	load_ok("[restart]\ngroup = ^(rack[0-9]{1,3})-[a-z+*]+\\.\n");
	load_ok("[restart]\ngroup = ^([a-z]+)-\n");
}
END_TEST

START_TEST(test_events_subject)
{
	load_ok("[source]\ntype = nats\nevents_subject = ops.events\n");
	ck_assert_str_eq(conf.events_subject, "ops.events");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nevents_subject = "
	    "mandrill.restart\n"), "events_subject is the subject itself");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nevents_subject = "
	    "ops.*\n"), "[source] events_subject \"ops.*\"");
}
END_TEST

START_TEST(test_nats_defaults)
{
	load_ok("[source]\ntype = nats\n");
	ck_assert_str_eq(conf.url, "nats://127.0.0.1:4222");
	ck_assert_str_eq(conf.stream, "RESTARTS");
	ck_assert_str_eq(conf.subject, "mandrill.restart");
	ck_assert_str_eq(conf.durable, "mandrill");
	ck_assert_int_eq(conf.create, 1);
	ck_assert_str_eq(conf.dead_letter_subject, "");
}
END_TEST

START_TEST(test_nats_bad_names)
{
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nurl = localhost:4222\n"),
	    "want nats://HOST:PORT");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\n"
	    "url = nats://a:4222,http://b:4222\n"), "want nats://HOST:PORT");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nurl = nats://a:1,\n"),
	    "want nats://HOST:PORT");
	conf_defaults(&conf);
	load_ok("[source]\ntype = nats\nurl = nats://a:1, tls://b:2\n");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nstream = A.B\n"),
	    "[source] stream \"A.B\" may not contain");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\ndurable = a*\n"),
	    "[source] durable");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nsubject = a..b\n"),
	    "has an empty token");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\nsubject = a.>\n"),
	    "may not contain spaces or wildcards");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\ntype = nats\n"
	    "dead_letter_subject = mandrill.restart\n"),
	    "dead messages would come back");
	conf_defaults(&conf);
	/* 0 is no limit now: waiting spends no delivery. */
	assert_has(load_fails("[source]\ntype = nats\nmax_deliver = -1\n"),
	    "max_deliver");
	conf_defaults(&conf);
	ck_assert_int_eq(conf_load_string(&conf, "[source]\ntype = nats\n"
	    "max_deliver = 0\n", "test.conf", err, sizeof(err)), 0);
	ck_assert_uint_eq(conf.max_deliver, 0);
	/* The sim does not care about nats keys it never uses. */
	conf_defaults(&conf);
	load_ok("[source]\nstream = A.B\n");
}
END_TEST

/* Each element is checked, and an error never shows a password. */
START_TEST(test_nats_url_elements)
{
	static const char *bad[] = {
		"nats://", "nats://:4222", "nats://a:0", "nats://a:65536",
		"nats://a:x", "nats://a:4222/path", "nats://@a:1",
		"nats://a:1,,nats://b:2", " , nats://a:1", "nats://[::1",
		"nats://a b:1",
	};
	const char *e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];

		conf_defaults(&conf);
		snprintf(text, sizeof(text), "[source]\ntype = nats\nurl = %s\n",
		    bad[i]);
		assert_has(load_fails(text), "[source] url");
	}
	conf_defaults(&conf);
	e = load_fails("[source]\ntype = nats\n"
	    "url = nats://u:hunter2@a:1, nats://b:99999\n");
	assert_has(e, "\"nats://b:99999\" has a port outside 1..65535");
	ck_assert_msg(strstr(e, "hunter2") == NULL, "%s", e);
	conf_defaults(&conf);
	e = load_fails("[source]\ntype = nats\nurl = nats://u:hunter2@a:1/x\n");
	assert_has(e, "nats://u:***@a:1/x");
	ck_assert_msg(strstr(e, "hunter2") == NULL, "%s", e);
	conf_defaults(&conf);
	load_ok("[source]\ntype = nats\nurl = nats://u:p@a:1, tls://t0k@b:2 ,"
	    "nats://[::1]:4222, nats://host.example\n");
}
END_TEST

START_TEST(test_nats_url_split_and_redact)
{
	char buf[256], out[256];
	const char *v[4];

	ck_assert_int_eq(natsurl_split(" nats://a:1 ,tls://b:2", buf,
	    sizeof(buf), v, 4), 2);
	ck_assert_str_eq(v[0], "nats://a:1");
	ck_assert_str_eq(v[1], "tls://b:2");
	ck_assert_int_eq(natsurl_split("nats://a:1,", buf, sizeof(buf), v, 4),
	    -1);
	ck_assert_int_eq(natsurl_split("a,b,c,d,e", buf, sizeof(buf), v, 4), -1);
	ck_assert_int_eq(natsurl_split("", buf, sizeof(buf), v, 4), -1);
	ck_assert_str_eq(natsurl_redact("nats://u:pw@a:1, tls://tok@b:2,"
	    "nats://c:3", out, sizeof(out)),
	    "nats://u:***@a:1, tls://***@b:2,nats://c:3");
	ck_assert_str_eq(natsurl_redact("nats://u:p@w@a:1", out, sizeof(out)),
	    "nats://u:***@a:1");
	ck_assert_int_eq(natsurl_has_secret("nats://a:1, nats://t@b:2"), 1);
	ck_assert_int_eq(natsurl_has_secret("nats://a:1,tls://b:2"), 0);
	ck_assert_int_eq(natsurl_has_tls("nats://a:1, tls://b:2"), 1);
	ck_assert_int_eq(natsurl_has_tls("nats://a:1"), 0);
	/* Truncated, it still shows no secret. */
	ck_assert_str_eq(natsurl_redact("nats://u:secret@a:1", out, 12),
	    "nats://u:**");
}
END_TEST

START_TEST(test_nats_replicas)
{
	ck_assert_uint_eq(conf.replicas, 1);
	load_ok("[source]\ntype = nats\nreplicas = 3\n");
	ck_assert_uint_eq(conf.replicas, 3);
	conf_defaults(&conf);
	assert_has(load_fails("[source]\nreplicas = 6\n"),
	    "an integer from 1 to 5");
	conf_defaults(&conf);
	assert_has(load_fails("[source]\nreplicas = 0\n"), "replicas");
}
END_TEST

START_TEST(test_argv_split_and_expand)
{
	char e[128];
	char **v = argv_split("/usr/bin/ssh -o 'BatchMode yes' \"{host}\" "
	    "sudo systemctl reboot  ", e, sizeof(e));
	char **x;

	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v[0], "/usr/bin/ssh");
	ck_assert_str_eq(v[2], "BatchMode yes");
	ck_assert_str_eq(v[3], "{host}");
	ck_assert_str_eq(v[6], "reboot");
	ck_assert_ptr_null(v[7]);
	x = argv_expand(v, "db1.example.com");
	ck_assert_ptr_nonnull(x);
	ck_assert_str_eq(x[3], "db1.example.com");
	ck_assert_str_eq(x[2], "BatchMode yes");
	argv_free(x);
	argv_free(v);
	v = argv_split("/bin/echo pre-{host}-{host}", e, sizeof(e));
	x = argv_expand(v, "h");
	ck_assert_str_eq(x[1], "pre-h-h");
	argv_free(x);
	argv_free(v);
	ck_assert_ptr_null(argv_split("/bin/echo \"{host}", e, sizeof(e)));
	assert_has(e, "unterminated");
}
END_TEST

START_TEST(test_command_needs_command)
{
	const char *e = load_fails("[restart]\nmode = command\n");

	assert_has(e, "[restart] mode = command needs a command");
}
END_TEST

START_TEST(test_command_template_checked)
{
	static const struct { const char *cmd, *why; } bad[] = {
		{ "restart {host}", "absolute path" },
		{ "/usr/bin/ssh", "must name {host}" },
		{ "/usr/bin/{host}", "program path" },
		{ "/usr/bin/ssh '{host}", "unterminated" },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf_defaults(&conf);
		snprintf(text, sizeof(text), "[restart]\nmode = command\n"
		    "command = %s\n", bad[i].cmd);
		assert_has(load_fails(text), bad[i].why);
	}
	conf_defaults(&conf);
	load_ok("[restart]\nmode = command\ncommand = /usr/bin/ssh -o "
	    "\"BatchMode yes\" {host} sudo systemctl reboot\n");
	ck_assert_int_eq(conf.mode, RESTART_COMMAND);
}
END_TEST

START_TEST(test_control_char_in_string)
{
	const char *e = load_fails("[restart]\ndomain = exa\x01mple.com\n");

	assert_has(e, "[restart] domain");
	assert_has(e, "expected");
}
END_TEST

/* ---------------------------------------------------------------------
 * conf_set, conf_load.
 */

START_TEST(test_conf_set)
{
	ck_assert_int_eq(conf_set(&conf, "mandrill", "workers", "7", err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(conf.workers, 7);
	ck_assert_int_eq(conf_set(&conf, "restart", "sim_latency", "1s..2s",
	    err, sizeof(err)), 0);
	ck_assert_int_eq(conf.sim_latency_min, 1000);
	ck_assert_int_eq(conf.sim_latency_max, 2000);
	ck_assert_int_eq(conf_set(&conf, "mandrill", "workers", "0", err,
	    sizeof(err)), -1);
	assert_has(err, "expected");
	ck_assert_uint_eq(conf.workers, 7);	/* unchanged on error */
	ck_assert_int_eq(conf_set(&conf, "mandrill", "nope", "1", err,
	    sizeof(err)), -1);
	assert_has(err, "unknown key");
	ck_assert_int_eq(conf_set(&conf, "nope", "workers", "1", err,
	    sizeof(err)), -1);
	assert_has(err, "unknown section");
	ck_assert_ptr_null(conf_key_find("mandrill", "nope"));
	ck_assert_ptr_null(conf_key_find("source", "workers"));
}
END_TEST

static char tmpl[64];

static void
file_teardown(void)
{
	if (tmpl[0] != '\0')
		unlink(tmpl);
	tmpl[0] = '\0';
}

/* A temporary file holding len bytes of text; its path is in tmpl. */
static void
write_tmp(const char *text, size_t len)
{
	int fd;

	snprintf(tmpl, sizeof(tmpl), "/tmp/check_conf.XXXXXX");
	fd = mkstemp(tmpl);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

START_TEST(test_load_file)
{
	static const char text[] = "[mandrill]\nworkers = 5\n";

	write_tmp(text, sizeof(text) - 1);
	ck_assert_int_eq(conf_load(&conf, tmpl, err, sizeof(err)), 0);
	ck_assert_uint_eq(conf.workers, 5);
}
END_TEST

START_TEST(test_load_file_error_names_path)
{
	static const char text[] = "[mandrill]\nworkers = lots\n";

	write_tmp(text, sizeof(text) - 1);
	ck_assert_int_eq(conf_load(&conf, tmpl, err, sizeof(err)), -1);
	assert_has(err, tmpl);
	assert_has(err, ":2:");
	assert_has(err, "workers");
}
END_TEST

START_TEST(test_load_missing_file)
{
	const char *path = "/nonexistent/mandrill/mandrill.conf";

	ck_assert_int_eq(conf_load(&conf, path, err, sizeof(err)), -1);
	assert_has(err, path);
	assert_has(err, strerror(ENOENT));
}
END_TEST

START_TEST(test_load_nul_byte)
{
	static const char text[] = "[mandrill]\nwork\0ers = 5\n";

	write_tmp(text, sizeof(text) - 1);
	ck_assert_int_eq(conf_load(&conf, tmpl, err, sizeof(err)), -1);
	assert_has(err, tmpl);
	assert_has(err, "NUL");
}
END_TEST

START_TEST(test_load_empty_file)
{
	struct conf d;

	write_tmp("", 0);
	conf_defaults(&d);
	ck_assert_int_eq(conf_load(&conf, tmpl, err, sizeof(err)), 0);
	ck_assert(memcmp(&conf, &d, sizeof(d)) == 0);
}
END_TEST

/* ---------------------------------------------------------------------
 * Durations.
 */

static int64_t
dur(const char *s)
{
	int64_t v = -12345;

	ck_assert_msg(duration_parse(s, &v) == 0, "\"%s\" rejected", s);
	return v;
}

START_TEST(test_duration_units)
{
	ck_assert_int_eq(dur("500ms"), 500);
	ck_assert_int_eq(dur("10s"), 10000);
	ck_assert_int_eq(dur("5m"), 300000);
	ck_assert_int_eq(dur("1h"), 3600000);
	ck_assert_int_eq(dur("7d"), 604800000);
	ck_assert_int_eq(dur("0"), 0);
	ck_assert_int_eq(dur("0ms"), 0);
	ck_assert_int_eq(dur("0s"), 0);
	ck_assert_int_eq(dur("1ms"), 1);
	ck_assert_int_eq(dur("365d"), INT64_C(31536000000));
}
END_TEST

START_TEST(test_duration_rejects)
{
	static const char *bad[] = {
		"", "10", "-1s", "1.5s", "s", "ms", "10 s", " 10s", "10s ",
		"10sec", "10S", "10ns", "1h30m", "+5s", "0x10s",
		"99999999999999d", "99999999999999999999999s", "366d",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = -12345;

		ck_assert_msg(duration_parse(bad[i], &v) == -1,
		    "\"%s\" accepted as %lld", bad[i], (long long)v);
		ck_assert_int_eq(v, -12345);
	}
}
END_TEST

START_TEST(test_duration_range)
{
	int64_t lo = -1, hi = -1;

	ck_assert_int_eq(duration_range_parse("100ms..1s", &lo, &hi), 0);
	ck_assert_int_eq(lo, 100);
	ck_assert_int_eq(hi, 1000);
	ck_assert_int_eq(duration_range_parse("0..0", &lo, &hi), 0);
	ck_assert_int_eq(lo, 0);
	ck_assert_int_eq(hi, 0);
	ck_assert_int_eq(duration_range_parse("1s..1s", &lo, &hi), 0);
	ck_assert_int_eq(lo, 1000);
	ck_assert_int_eq(hi, 1000);
}
END_TEST

START_TEST(test_duration_range_rejects)
{
	static const char *bad[] = {
		"1s..100ms", "1s", "..1s", "1s..", "..", "", "1s...2s",
		"1s..2s..3s", "1s - 2s", "1s ..2s", "10..20",
	};
	int64_t lo, hi;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(duration_range_parse(bad[i], &lo, &hi) == -1,
		    "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(test_duration_fmt)
{
	static const int64_t vals[] = {
		1, 999, 1000, 1500, 60000, 61000, 3600000, 5400000, 86400000,
		604800000, 90061001, INT64_C(31536000000),
	};
	char buf[32];

	ck_assert_str_eq(duration_fmt(60000, buf, sizeof(buf)), "1m");
	ck_assert_str_eq(duration_fmt(1500, buf, sizeof(buf)), "1500ms");
	ck_assert_str_eq(duration_fmt(0, buf, sizeof(buf)), "0s");
	ck_assert_str_eq(duration_fmt(10000, buf, sizeof(buf)), "10s");
	ck_assert_str_eq(duration_fmt(3600000, buf, sizeof(buf)), "1h");
	ck_assert_str_eq(duration_fmt(604800000, buf, sizeof(buf)), "7d");
	ck_assert_str_eq(duration_fmt(5400000, buf, sizeof(buf)), "90m");
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		duration_fmt(vals[i], buf, sizeof(buf));
		ck_assert_int_eq(dur(buf), vals[i]);
	}
	ck_assert_int_eq(dur(duration_fmt(0, buf, sizeof(buf))), 0);
}
END_TEST

/* ---------------------------------------------------------------------
 * Host names (RFC 1123).
 */

static const char *
hc(const char *s)
{
	return hostname_check(s, strlen(s));
}

START_TEST(test_hostname_valid)
{
	char label[64], name[254];

	ck_assert_ptr_null(hc("cattle-1a2b"));
	ck_assert_ptr_null(hc("db1.example.com"));
	ck_assert_ptr_null(hc("a"));
	ck_assert_ptr_null(hc("CATTLE-1A2B.Example.COM"));
	ck_assert_ptr_null(hc("a-b--c"));

	memset(label, 'a', 63);
	label[63] = '\0';
	ck_assert_ptr_null(hc(label));

	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	memset(name, 'b', 253);
	name[63] = name[127] = name[191] = '.';
	name[253] = '\0';
	ck_assert_uint_eq(strlen(name), HOSTNAME_MAX);
	ck_assert_ptr_null(hc(name));
}
END_TEST

START_TEST(test_hostname_invalid)
{
	static const char *bad[] = {
		"", "-a", "a-", "a..b", "a.", ".a", ".", "a_b", "a b",
		"a;reboot", "$(id)", "`id`", "../etc", "a/b", "a\nb", "a\tb",
		"a-.b", "a.-b", "a'b", "a\"b", "a|b", "a&b", "*", "a:22",
		"c\xd0\xb0ttle",	/* Cyrillic a */
		"caf\xc3\xa9",		/* Latin-1 e acute in UTF-8 */
		"\xff",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = hc(bad[i]);

		ck_assert_msg(why != NULL, "\"%s\" accepted", bad[i]);
		ck_assert_str_ne(why, "");
	}
	ck_assert_ptr_nonnull(strstr(hc("-a"), "hyphen"));
	ck_assert_ptr_nonnull(strstr(hc("a-"), "hyphen"));
	ck_assert_ptr_nonnull(strstr(hc(""), "empty"));
}
END_TEST

/* Every spelling of an IPv4 address is refused; names with digits pass. */
START_TEST(test_hostname_address_forms)
{
	static const char *bad[] = {
		"2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001",
		"1.2.3.4", "127.0.0.1", "10.0.0.1", "1", "0", "123.45",
		"0X7F000001", "0x", "a.0x1f", "cattle.1", "db.example.123",
		"0xA.0xB.0xC.0xD", "1.2.3.4.5",
	};
	static const char *good[] = {
		"host-1", "1host.example", "a1.b2", "cattle-1a2b", "1a",
		"0x7g", "0xdead-beef", "x0x1", "127.example.com",
		"0x7f.example.com", "1-2-3-4", "1.2.3.4a", "a.1b", "0e1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = hc(bad[i]);

		ck_assert_msg(why != NULL, "\"%s\" accepted", bad[i]);
		ck_assert_msg(strstr(why, "IPv4 address") != NULL, "\"%s\": "
		    "%s", bad[i], why);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(hc(good[i]) == NULL, "\"%s\" refused: %s",
		    good[i], hc(good[i]));
	/* Only len bytes count: "127.1x" cut to "127.1" is an address. */
	ck_assert_ptr_nonnull(hostname_check("127.1x", 5));
	ck_assert_ptr_null(hostname_check("1x.1", 2));
}
END_TEST

START_TEST(test_hostname_too_long)
{
	char label[65], name[256];

	memset(label, 'a', 64);
	label[64] = '\0';
	ck_assert_ptr_nonnull(hc(label));
	ck_assert_ptr_nonnull(strstr(hc(label), "63"));

	memset(name, 'b', 254);
	name[63] = name[127] = name[191] = '.';
	name[254] = '\0';
	ck_assert_ptr_nonnull(hc(name));
	ck_assert_ptr_nonnull(strstr(hc(name), "253"));
}
END_TEST

START_TEST(test_hostname_explicit_length)
{
	ck_assert_ptr_nonnull(hostname_check("ab\0cd", 5));
	ck_assert_ptr_nonnull(hostname_check("ab\0", 3));
	ck_assert_ptr_nonnull(hostname_check("\0", 1));
	/* Only len bytes are looked at. */
	ck_assert_ptr_null(hostname_check("abc;reboot", 3));
	ck_assert_ptr_nonnull(hostname_check("abc", 0));
}
END_TEST

/* ---------------------------------------------------------------------
 */

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("defaults");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, conf_setup, NULL);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_empty_file_gives_defaults);
	tcase_add_test(tc, test_every_key_default_in_file);
	tcase_add_loop_test(tc, test_each_key_alone, 0, (int)conf_nkeys);
	tcase_add_test(tc, test_sample_has_every_default);
	suite_add_tcase(s, tc);

	tc = tcase_create("valid");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, conf_setup, NULL);
	tcase_add_test(tc, test_full_file);
	tcase_add_test(tc, test_bounds_accepted);
	tcase_add_test(tc, test_bool_forms);
	tcase_add_test(tc, test_enum_and_level_forms);
	tcase_add_test(tc, test_comments_and_spaces);
	tcase_add_test(tc, test_list_appended);
	tcase_add_test(tc, test_list_continued);
	tcase_add_test(tc, test_list_long_by_appending);
	tcase_add_test(tc, test_list_overflow_is_error);
	tcase_add_test(tc, test_line_of_198_bytes);
	tcase_add_test(tc, test_line_numbers_after_199_byte_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, conf_setup, NULL);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_key_in_wrong_section);
	tcase_add_test(tc, test_key_before_section);
	tcase_add_test(tc, test_unknown_section);
	tcase_add_loop_test(tc, test_bad_value, 0,
	    (int)(sizeof(bad_values) / sizeof(bad_values[0])));
	tcase_add_test(tc, test_bad_value_on_later_line);
	tcase_add_test(tc, test_given_twice);
	tcase_add_test(tc, test_given_twice_across_sections);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_long_comment_line);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_syntax_error_section);
	tcase_add_test(tc, test_backoff_min_over_max);
	tcase_add_test(tc, test_backoff_min_over_default_max);
	tcase_add_test(tc, test_exit_when_done_needs_count);
	tcase_add_test(tc, test_empty_state_dir);
	tcase_add_test(tc, test_busy_timeout_over_half_worker_timeout);
	tcase_add_test(tc, test_glob_too_long);
	tcase_add_test(tc, test_domain_must_be_a_host_name);
	tcase_add_test(tc, test_nats_settings);
	tcase_add_test(tc, test_nats_defaults);
	tcase_add_test(tc, test_nats_bad_names);
	tcase_add_test(tc, test_fleet_keys);
	tcase_add_test(tc, test_events_subject);
	tcase_add_test(tc, test_group_regex_cost);
	tcase_add_test(tc, test_nats_url_elements);
	tcase_add_test(tc, test_nats_url_split_and_redact);
	tcase_add_test(tc, test_nats_replicas);
	tcase_add_test(tc, test_argv_split_and_expand);
	tcase_add_test(tc, test_command_needs_command);
	tcase_add_test(tc, test_command_template_checked);
	tcase_add_test(tc, test_control_char_in_string);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, conf_setup, file_teardown);
	tcase_add_test(tc, test_conf_set);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_file_error_names_path);
	tcase_add_test(tc, test_load_missing_file);
	tcase_add_test(tc, test_load_nul_byte);
	tcase_add_test(tc, test_load_empty_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("duration");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_duration_units);
	tcase_add_test(tc, test_duration_rejects);
	tcase_add_test(tc, test_duration_range);
	tcase_add_test(tc, test_duration_range_rejects);
	tcase_add_test(tc, test_duration_fmt);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostname");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_hostname_valid);
	tcase_add_test(tc, test_hostname_invalid);
	tcase_add_test(tc, test_hostname_address_forms);
	tcase_add_test(tc, test_hostname_too_long);
	tcase_add_test(tc, test_hostname_explicit_length);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
