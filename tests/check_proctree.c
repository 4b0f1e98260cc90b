/*
 * check_proctree: a process that left its parent's session is still found
 * below the subreaper, by its parent chain or its environment mark; a
 * stale (pid, start time) is never signalled; kill_all leaves nothing,
 * not even a zombie, and spares what it is told to.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "proctree.h"

/*
 * A child that starts a grandchild in a new session (setsid), which
 * sleeps; the grandchild's pid comes back over a pipe.  With orphan set
 * the child exits at once, so the grandchild is reparented to us.
 */
static pid_t
spawn_escaper(int orphan, const char *env, pid_t *grandchild)
{
	int p[2];
	pid_t child, gc;

	ck_assert_int_eq(pipe(p), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		if ((gc = fork()) == 0) {
			char *const argv[] = { (char *)"sleep", (char *)"60", NULL };
			char *const envp[] = { (char *)env, NULL };

			setsid();
			close(p[0]);
			close(p[1]);
			execve("/bin/sleep", argv, env ? envp : envp + 1);
			_exit(127);
		}
		(void)!write(p[1], &gc, sizeof(gc));
		if (orphan)
			_exit(0);
		pause();
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &gc, sizeof(gc)), (ssize_t)sizeof(gc));
	close(p[0]);
	if (orphan)
		ck_assert_int_eq(waitpid(child, NULL, 0), child);
	*grandchild = gc;
	usleep(100 * 1000);	/* the exec */
	return child;
}

static int
in_set(const struct proc_set *s, pid_t pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].pid == pid)
			return 1;
	return 0;
}

START_TEST(test_below_by_chain)
{
	struct proc_set roots = { 0 }, out = { 0 };
	struct proc_table t;
	const struct proc_ent *e;
	pid_t child, gc;

	ck_assert_int_eq(proctree_subreaper(), 0);
	child = spawn_escaper(0, NULL, &gc);
	ck_assert_int_eq(proctree_read(&t), 0);
	ck_assert_ptr_nonnull(e = proctree_find(&t, child));
	ck_assert_int_eq(proc_set_add(&roots, e), 0);
	ck_assert_int_eq(proctree_below(&t, &roots, &out), 0);
	ck_assert(in_set(&out, child));
	ck_assert(in_set(&out, gc));	/* another session, same chain */
	ck_assert_int_eq(out.n, 2);
	ck_assert_ptr_nonnull(e = proctree_find(&t, gc));
	ck_assert_int_ne(e->pgid, child);
	ck_assert_uint_eq(proctree_signal_set(&out, SIGKILL), 2);
	ck_assert_int_eq(waitpid(child, NULL, 0), child);
	ck_assert_int_eq(waitpid(gc, NULL, 0), gc);	/* reparented to us */
	proc_set_free(&roots);
	proc_set_free(&out);
	proctree_free(&t);
}
END_TEST

START_TEST(test_orphan_by_env)
{
	struct proc_set out = { 0 };
	struct proc_table t;
	pid_t gc;

	ck_assert_int_eq(proctree_subreaper(), 0);
	spawn_escaper(1, "MANDRILL_RUN=42", &gc);
	ck_assert_int_eq(proctree_read(&t), 0);
	ck_assert_int_eq(proctree_find(&t, gc)->ppid, getpid());
	ck_assert_int_eq(proctree_children_with_env(&t, getpid(),
	    "MANDRILL_RUN=4", &out), 0);
	ck_assert_uint_eq(out.n, 0);	/* a prefix is not the entry */
	ck_assert_int_eq(proctree_children_with_env(&t, getpid(),
	    "MANDRILL_RUN=42", &out), 0);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.v[0].pid, gc);
	ck_assert_int_eq(proctree_signal(&out.v[0], SIGKILL), 1);
	ck_assert_int_eq(waitpid(gc, NULL, 0), gc);
	/* Dead and reaped: no longer there to signal. */
	ck_assert_int_eq(proctree_signal(&out.v[0], SIGKILL), 0);
	proc_set_free(&out);
	proctree_free(&t);
}
END_TEST

START_TEST(test_stale_start_time)
{
	struct proc_table t;
	struct proc_ent e;
	pid_t child, gc;
	int status;

	child = spawn_escaper(0, NULL, &gc);
	ck_assert_int_eq(proctree_read(&t), 0);
	e = *proctree_find(&t, child);
	e.start++;		/* as if the pid had been reused */
	ck_assert_int_eq(proctree_signal(&e, SIGKILL), 0);
	ck_assert_int_eq(waitpid(child, &status, WNOHANG), 0);	/* alive */
	e.start--;
	ck_assert_int_eq(proctree_signal(&e, SIGKILL), 1);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFSIGNALED(status));
	kill(gc, SIGKILL);
	proctree_free(&t);
}
END_TEST

START_TEST(test_kill_all)
{
	pid_t child, gc, gc2, keep;
	size_t killed;
	int status;

	ck_assert_int_eq(proctree_subreaper(), 0);
	child = spawn_escaper(0, NULL, &gc);
	spawn_escaper(1, NULL, &gc2);
	if ((keep = fork()) == 0) {
		pause();
		_exit(0);
	}
	ck_assert_uint_eq(proctree_kill_all(getpid(), &keep, 1, 2000,
	    &killed), 0);
	ck_assert_uint_eq(killed, 3);
	/* All reaped: none is our child any more, the spared one is. */
	ck_assert_int_eq(waitpid(child, NULL, WNOHANG), -1);
	ck_assert_int_eq(waitpid(gc, NULL, WNOHANG), -1);
	ck_assert_int_eq(waitpid(gc2, NULL, WNOHANG), -1);
	ck_assert_int_eq(waitpid(keep, &status, WNOHANG), 0);
	kill(keep, SIGKILL);
	ck_assert_int_eq(waitpid(keep, &status, 0), keep);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("proctree");
	TCase *tc = tcase_create("proctree");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_below_by_chain);
	tcase_add_test(tc, test_orphan_by_env);
	tcase_add_test(tc, test_stale_start_time);
	tcase_add_test(tc, test_kill_all);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
