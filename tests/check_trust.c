/*
 * check_trust: who may change what root runs and reads, as tables over
 * struct stat, and the walk on a real tree.
 */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "trust.h"

#define SELF	1000

static struct stat
st(mode_t mode, uid_t uid)
{
	struct stat sb;

	memset(&sb, 0, sizeof(sb));
	sb.st_mode = mode;
	sb.st_uid = uid;
	return sb;
}

START_TEST(test_file_table)
{
	static const struct { mode_t mode; uid_t uid; int ok; } t[] = {
		{ S_IFREG | 0755, 0, 1 },
		{ S_IFREG | 0700, SELF, 1 },
		{ S_IFREG | 04755, 0, 1 },
		{ S_IFREG | 0775, 0, 0 },	/* group may write */
		{ S_IFREG | 0757, 0, 0 },	/* others may write */
		{ S_IFREG | 0777, 0, 0 },
		{ S_IFREG | 0755, 1001, 0 },	/* someone else's */
		{ S_IFDIR | 0755, 0, 0 },
		{ S_IFIFO | 0644, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (int k = TRUST_PROGRAM; k <= TRUST_CONFIG; k++) {
			struct stat sb = st(t[i].mode, t[i].uid);
			const char *why = trust_file(&sb, SELF, k);

			ck_assert_msg((why == NULL) == t[i].ok, "row %zu kind "
			    "%d: %s", i, k, why ? why : "accepted");
		}
	{
		struct stat sb = st(S_IFREG | 0755, 1001);

		ck_assert_ptr_eq(trust_file(&sb, SELF, TRUST_PROGRAM),
		    trust_owner);
	}
}
END_TEST

START_TEST(test_dir_table)
{
	static const struct {
		mode_t mode;
		uid_t uid;
		int parent, ok_program, ok_config;
	} t[] = {
		{ S_IFDIR | 0755, 0, 1, 1, 1 },
		{ S_IFDIR | 0700, SELF, 1, 1, 1 },
		{ S_IFDIR | 0775, 0, 1, 0, 1 },		/* group may write */
		{ S_IFDIR | 0757, 0, 1, 0, 0 },		/* others may write */
		{ S_IFDIR | 01777, 0, 1, 0, 0 },	/* /tmp itself */
		{ S_IFDIR | 0755, 1001, 1, 0, 0 },	/* someone else's */
		{ S_IFDIR | 0755, 0, 0, 1, 1 },		/* above */
		{ S_IFDIR | 01777, 0, 0, 1, 1 },	/* /tmp, above */
		{ S_IFDIR | 01775, 0, 0, 1, 1 },
		{ S_IFDIR | 01777, SELF, 0, 0, 0 },	/* sticky, not root's */
		{ S_IFDIR | 0777, 0, 0, 0, 0 },		/* not sticky */
		{ S_IFDIR | 02775, 0, 0, 0, 0 },	/* setgid, not sticky */
		{ S_IFDIR | 0755, 1001, 0, 0, 0 },
		{ S_IFREG | 0755, 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct stat sb = st(t[i].mode, t[i].uid);
		const char *p = trust_dir(&sb, SELF, TRUST_PROGRAM, t[i].parent);
		const char *c = trust_dir(&sb, SELF, TRUST_CONFIG, t[i].parent);

		ck_assert_msg((p == NULL) == t[i].ok_program, "row %zu program: "
		    "%s", i, p ? p : "accepted");
		ck_assert_msg((c == NULL) == t[i].ok_config, "row %zu config: "
		    "%s", i, c ? c : "accepted");
	}
}
END_TEST

static char dir[64];

static void
mk(const char *rel, mode_t mode, int is_dir)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (is_dir)
		ck_assert_int_eq(mkdir(p, mode), 0);
	else {
		ck_assert_ptr_nonnull(f = fopen(p, "w"));
		fclose(f);
	}
	ck_assert_int_eq(chmod(p, mode), 0);
}

static int
check_rel(const char *rel, enum trust_kind k, char *err, size_t len)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	err[0] = '\0';
	return trust_check(p, k, geteuid(), err, len);
}

/* mkdtemp gives a 0700 directory: the rules below it are the test's. */
START_TEST(test_walk)
{
	char err[512], p[256], q[256];

	snprintf(dir, sizeof(dir), "/tmp/check_trust.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	mk("ok", 0755, 1);
	mk("ok/prog", 0755, 0);
	mk("ok/gw", 0775, 0);
	mk("gw", 0775, 1);
	mk("gw/prog", 0755, 0);
	mk("ww", 0777, 1);
	mk("ww/sub", 0755, 1);
	mk("ww/sub/prog", 0755, 0);
	mk("sticky", 01777, 1);
	mk("sticky/sub", 0755, 1);
	mk("sticky/sub/prog", 0755, 0);

	ck_assert_int_eq(check_rel("ok/prog", TRUST_PROGRAM, err, sizeof(err)),
	    0);
	ck_assert_int_eq(check_rel("ok/gw", TRUST_PROGRAM, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "ok/gw is writable by its group") != NULL,
	    "%s", err);
	ck_assert_int_eq(check_rel("gw/prog", TRUST_PROGRAM, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "its directory ") != NULL, "%s", err);
	/* a configuration may sit in a group-writable directory */
	ck_assert_int_eq(check_rel("gw/prog", TRUST_CONFIG, err, sizeof(err)),
	    0);
	ck_assert_int_eq(check_rel("ww/sub/prog", TRUST_PROGRAM, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not sticky") != NULL, "%s", err);
	ck_assert_int_eq(check_rel("sticky/sub/prog", TRUST_PROGRAM, err,
	    sizeof(err)), 0);
	/* missing: judged by its directories; a config must exist */
	ck_assert_int_eq(check_rel("ok/none", TRUST_PROGRAM, err, sizeof(err)),
	    0);
	ck_assert_int_eq(check_rel("gw/none", TRUST_PROGRAM, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(check_rel("ok/none", TRUST_CONFIG, err, sizeof(err)),
	    -1);
	/* a link is judged where it is and where it points */
	snprintf(p, sizeof(p), "%s/ok/prog", dir);
	snprintf(q, sizeof(q), "%s/gw/link", dir);
	ck_assert_int_eq(symlink(p, q), 0);
	ck_assert_int_eq(check_rel("gw/link", TRUST_PROGRAM, err, sizeof(err)),
	    -1);
	snprintf(p, sizeof(p), "%s/ok/gw", dir);
	snprintf(q, sizeof(q), "%s/ok/link", dir);
	ck_assert_int_eq(symlink(p, q), 0);
	ck_assert_int_eq(check_rel("ok/link", TRUST_PROGRAM, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "its target ") != NULL, "%s", err);
	snprintf(p, sizeof(p), "%s/ok/prog", dir);
	snprintf(q, sizeof(q), "%s/ok/good", dir);
	ck_assert_int_eq(symlink(p, q), 0);
	ck_assert_int_eq(check_rel("ok/good", TRUST_PROGRAM, err, sizeof(err)),
	    0);
	ck_assert_int_eq(trust_check("relative", TRUST_PROGRAM, 0, err,
	    sizeof(err)), -1);

	/* files root writes */
	ck_assert_int_eq(trust_written(q, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "symlink") != NULL, "%s", err);
	ck_assert_int_eq(trust_written(p, err, sizeof(err)), 0);
	ck_assert_int_eq(trust_written("", err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/ok/missing", dir);
	ck_assert_int_eq(trust_written(p, err, sizeof(err)), 0);

	snprintf(p, sizeof(p), "rm -rf %s", dir);
	ck_assert_int_eq(system(p), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("trust");
	TCase *tc = tcase_create("rules");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_file_table);
	tcase_add_test(tc, test_dir_table);
	tcase_add_test(tc, test_walk);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
