/*
 * check_proc: /proc/PID/stat parsing and the process group decisions
 * that stand between a worker's word and root's kill(2).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "proc.h"

/* Fields 4 to 21 after the state, then starttime and a few more. */
#define TAIL " 4194304 98 0 0 0 0 0 0 0 20 0 1 0 78962 3133440 358 " \
	"18446744073709551615 94085978128384 0 17 0 0"

static int
parse(const char *s, struct proc_stat *ps)
{
	memset(ps, 0x5a, sizeof(*ps));
	return proc_stat_parse(s, strlen(s), ps);
}

START_TEST(test_parse_plain)
{
	struct proc_stat ps;

	ck_assert_int_eq(parse("31810 (cat) R 31808 31810 9775 0 -1" TAIL "\n",
	    &ps), 0);
	ck_assert_int_eq(ps.pid, 31810);
	ck_assert_int_eq(ps.state, 'R');
	ck_assert_int_eq(ps.ppid, 31808);
	ck_assert_int_eq(ps.pgrp, 31810);
	ck_assert_uint_eq(ps.start, 78962);
	/* no newline at the end, and nothing after starttime */
	ck_assert_int_eq(parse("7 (a) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 "
	    "123", &ps), 0);
	ck_assert_uint_eq(ps.start, 123);
	ck_assert_int_eq(parse("7 (a) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 "
	    "18446744073709551615", &ps), 0);
	ck_assert_int_eq(ps.state, 'Z');
	ck_assert(ps.start == UINT64_MAX);
}
END_TEST

/* A command names itself: its comm may hold spaces, ')' and fake fields. */
START_TEST(test_parse_hostile_comm)
{
	struct proc_stat ps;

	ck_assert_int_eq(parse("100 (a b) S 50 100 1 0 -1" TAIL, &ps), 0);
	ck_assert_int_eq(ps.ppid, 50);
	ck_assert_int_eq(parse("100 (x) S 1 1 1) S 50 100 1 0 -1" TAIL, &ps), 0);
	ck_assert_int_eq(ps.ppid, 50);
	ck_assert_int_eq(ps.pgrp, 100);
	ck_assert_int_eq(parse("100 ()) S 50 100 1 0 -1" TAIL, &ps), 0);
	ck_assert_int_eq(ps.ppid, 50);
	ck_assert_int_eq(parse("100 ((() S 50 100 1 0 -1" TAIL, &ps), 0);
	ck_assert_int_eq(ps.ppid, 50);
	ck_assert_int_eq(parse("100 (a\nb) S 50 100 1 0 -1" TAIL, &ps), 0);
	ck_assert_int_eq(ps.ppid, 50);
	ck_assert_int_eq(parse("100 () S 50 100 1 0 -1" TAIL, &ps), 0);
	ck_assert_int_eq(ps.ppid, 50);
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *bad[] = {
		"", "\n", "100", "100 ", "100 (", "100 (cat", "100 (cat)",
		"100 (cat) ", "100 (cat) S", "100 (cat) S ", "100 (cat) S 1",
		"100 (cat) S 1 100 1 0 -1 0 0",		/* no starttime */
		"(cat) S 1 100 1 0 -1" TAIL,		/* no pid */
		"-100 (cat) S 1 100 1 0 -1" TAIL,
		"100 cat S 1 100 1 0 -1" TAIL,		/* no parentheses */
		"100 (cat) 5 1 100 1 0 -1" TAIL,	/* state not a letter */
		"100 (cat) SS 1 100 1 0 -1" TAIL,
		"100 (cat)  S 1 100 1 0 -1" TAIL,
		"100 (cat) S -1 100 1 0 -1" TAIL,	/* negative ppid */
		"100 (cat) S 1 -100 1 0 -1" TAIL,	/* negative pgrp */
		"100 (cat) S 1 2147483648 1 0 -1" TAIL,	/* pgrp past pid_t */
		"100 (cat) S 1 100 1 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 "
		    "-5",				/* negative start */
		"100 (cat) S 1 100 1 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 "
		    "18446744073709551616",		/* start overflows */
		"100 (cat) S 1x 100 1 0 -1" TAIL,
		"100 (cat) S 1  100 1 0 -1" TAIL,
		"100 (cat) S 1 100 1 0 - 1" TAIL,
		"100x (cat) S 1 100 1 0 -1" TAIL,
	};
	struct proc_stat ps;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i], &ps) == -1, "\"%s\" parsed", bad[i]);
}
END_TEST

/* Only len bytes are read; more than PROC_STAT_MAX is refused. */
START_TEST(test_parse_length)
{
	static const char line[] = "7 (a) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 "
	    "1 0 123456";
	char big[PROC_STAT_MAX + 2];
	struct proc_stat ps;

	ck_assert_int_eq(proc_stat_parse(line, sizeof(line) - 1, &ps), 0);
	ck_assert_uint_eq(ps.start, 123456);
	ck_assert_int_eq(proc_stat_parse(line, sizeof(line) - 4, &ps), 0);
	ck_assert_uint_eq(ps.start, 123);
	ck_assert_int_eq(proc_stat_parse(line, 20, &ps), -1);
	ck_assert_int_eq(proc_stat_parse(line, 0, &ps), -1);
	memset(big, ' ', sizeof(big));
	memcpy(big, line, sizeof(line) - 1);
	ck_assert_int_eq(proc_stat_parse(big, PROC_STAT_MAX, &ps), 0);
	ck_assert_int_eq(proc_stat_parse(big, PROC_STAT_MAX + 1, &ps), -1);
}
END_TEST

static struct proc_stat
st(pid_t pid, pid_t ppid, pid_t pgrp, uint64_t start)
{
	struct proc_stat ps = { pid, 'S', ppid, pgrp, start };

	return ps;
}

/* The claim of a started frame: leader = pgid, parent = the worker. */
START_TEST(test_claim_table)
{
	static const struct {
		pid_t pid, ppid, pgrp, pgid, worker;
		int ok;
	} t[] = {
		{ 500, 40, 500, 500, 40, 1 },	/* the worker's command */
		{ 500, 41, 500, 500, 40, 0 },	/* another's child */
		{ 500, 1, 500, 500, 40, 0 },	/* an orphan, or a daemon */
		{ 500, 40, 40, 500, 40, 0 },	/* a child, not a leader */
		{ 500, 40, 500, 501, 40, 0 },	/* not the process read */
		{ 1, 0, 1, 1, 40, 0 },		/* init */
		{ 0, 0, 0, 0, 40, 0 },
		{ -5, 40, -5, -5, 40, 0 },	/* would be kill(5, ...) */
		{ 40, 1, 40, 40, 40, 0 },	/* the worker's own group */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct proc_stat ps = st(t[i].pid, t[i].ppid, t[i].pgrp, 9);
		const char *why = proc_group_claim(&ps, t[i].pgid, t[i].worker);

		ck_assert_msg((why == NULL) == t[i].ok, "row %zu: %s", i,
		    why ? why : "accepted");
	}
}
END_TEST

/* The kill: same process as claimed, still the worker's unless it died. */
START_TEST(test_kill_table)
{
	static const struct {
		pid_t pid, ppid, pgrp;
		uint64_t start;
		int exited, ok;
	} t[] = {
		{ 500, 40, 500, 9, 0, 1 },	/* as claimed */
		{ 500, 1, 500, 9, 1, 1 },	/* worker died: reparented */
		{ 500, 77, 500, 9, 1, 1 },	/* ... to a subreaper */
		{ 500, 1, 500, 9, 0, 0 },	/* worker alive, not its child */
		{ 500, 40, 500, 10, 0, 0 },	/* pid reused */
		{ 500, 1, 500, 10, 1, 0 },	/* pid reused, worker gone */
		{ 500, 40, 40, 9, 0, 0 },	/* left its group */
		{ 500, 1, 600, 9, 1, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct proc_stat ps = st(t[i].pid, t[i].ppid, t[i].pgrp,
		    t[i].start);
		const char *why = proc_group_kill(&ps, 500, 9, 40, t[i].exited);

		ck_assert_msg((why == NULL) == t[i].ok, "row %zu: %s", i,
		    why ? why : "accepted");
	}
	{
		struct proc_stat ps = st(1, 0, 1, 9);

		ck_assert_ptr_nonnull(proc_group_kill(&ps, 1, 9, 40, 1));
		ps = st(0, 0, 0, 9);
		ck_assert_ptr_nonnull(proc_group_kill(&ps, 0, 9, 40, 1));
	}
}
END_TEST

START_TEST(test_read_self)
{
	struct proc_stat ps;

	ck_assert_int_eq(proc_stat_read(getpid(), &ps), 0);
	ck_assert_int_eq(ps.pid, getpid());
	ck_assert_int_eq(ps.ppid, getppid());
	ck_assert_int_eq(ps.pgrp, getpgrp());
	ck_assert_int_eq(ps.state, 'R');
	ck_assert_uint_gt(ps.start, 0);
}
END_TEST

/* What dispatch does, on a real child in a group of its own. */
START_TEST(test_real_child_group)
{
	struct proc_stat ps, again;
	pid_t kid, other;
	int status;

	if ((kid = fork()) == 0) {
		setpgid(0, 0);
		pause();
		_exit(0);
	}
	ck_assert_int_gt(kid, 0);
	setpgid(kid, kid);
	ck_assert_int_eq(proc_stat_read(kid, &ps), 0);
	ck_assert_ptr_null(proc_group_claim(&ps, kid, getpid()));
	/* a worker that names another's child, or its parent's group */
	ck_assert_ptr_nonnull(proc_group_claim(&ps, kid, getpid() + 1));
	ck_assert_int_eq(proc_stat_read(getppid(), &again), 0);
	ck_assert_ptr_nonnull(proc_group_claim(&again, getppid(), getpid()));
	ck_assert_int_eq(proc_stat_read(kid, &again), 0);
	ck_assert_ptr_null(proc_group_kill(&again, kid, ps.start, getpid(), 0));
	ck_assert_ptr_nonnull(proc_group_kill(&again, kid, ps.start + 1,
	    getpid(), 0));
	/* a zombie is still the same process */
	kill(kid, SIGKILL);
	ck_assert_int_eq(waitid(P_PID, kid, NULL, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(proc_stat_read(kid, &again), 0);
	ck_assert_int_eq(again.state, 'Z');
	ck_assert_ptr_null(proc_group_kill(&again, kid, ps.start, getpid(), 0));
	ck_assert_int_eq(waitpid(kid, &status, 0), kid);
	/* reaped: gone, and said so */
	errno = 0;
	ck_assert_int_eq(proc_stat_read(kid, &again), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* a process started later has a start time no earlier */
	if ((other = fork()) == 0)
		_exit(0);
	ck_assert_int_eq(proc_stat_read(other, &again), 0);
	ck_assert_uint_ge(again.start, ps.start);
	waitpid(other, &status, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proc");
	TCase *tc;
	SRunner *sr;
	int failed;

	tc = tcase_create("parse");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_parse_plain);
	tcase_add_test(tc, test_parse_hostile_comm);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_parse_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("decide");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_claim_table);
	tcase_add_test(tc, test_kill_table);
	tcase_add_test(tc, test_read_self);
	tcase_add_test(tc, test_real_child_group);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
