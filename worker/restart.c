/*
 * restart: the simulated restart and the restart command.
 *
 * A command is killed as a tree, not only as a process group: see
 * signal_tree() and restart.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argv.h"
#include "log.h"
#include "restart.h"

void
restart_init(struct restarter *rs, struct ev_loop *loop, int mode,
    int64_t lat_min, int64_t lat_max, double failure_rate, uint64_t seed,
    int64_t timeout, char **argv)
{
	rs->loop = loop;
	rs->mode = mode;
	rs->latency_min = lat_min;
	rs->latency_max = lat_max;
	rs->failure_rate = failure_rate;
	rs->timeout = timeout;
	rs->kill_grace = RESTART_KILL_GRACE;
	rs->argv = argv;
	rs->runs = 0;
	rs->procs.v = NULL;
	rs->procs.n = 0;
	rs->procs_at = -1;
	rng_seed(&rs->rng, seed);
}

void
restart_free(struct restarter *rs)
{
	argv_free(rs->argv);
	rs->argv = NULL;
	proctree_free(&rs->procs);
}

void
restart_describe(const struct restarter *rs, const char *host, char *buf,
    size_t len)
{
	size_t n = 0;
	char **v;

	buf[0] = '\0';
	if (rs->mode != RS_COMMAND) {
		snprintf(buf, len, "simulated restart of %s", host);
		return;
	}
	if ((v = argv_expand(rs->argv, host)) == NULL)
		return;
	for (char **p = v; *p && n < len; p++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", p == v ? "" : " ",
		    *p);
	argv_free(v);
}

/* ------------------------------------------------------------------ sim */

static void
sim_done(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct restart_run *run = w->data;

	run->active = 0;
	if (run->will_fail == 2)
		run->done(run, -1, "simulated restart timed out", NULL);
	else if (run->will_fail)
		run->done(run, 1, "simulated restart failure", NULL);
	else
		run->done(run, 0, NULL, NULL);
}

static void
sim_start(struct restarter *rs, struct restart_run *run)
{
	int64_t ms = rng_range(&rs->rng, rs->latency_min, rs->latency_max);
	double roll = rng_unit(&rs->rng);

	run->will_fail = roll < rs->failure_rate;
	if (ms > rs->timeout) {		/* the sim honours restart_timeout too */
		ms = rs->timeout;
		run->will_fail = 2;
	}
	ev_timer_init(&run->timer, sim_done, (double)ms / 1000.0, 0.);
	run->timer.data = run;
	if (ms == 0) {
		/*
		 * An instant restart ends now: a 0 s timer would cost a trip
		 * through the poll (libev waits at least a millisecond).
		 */
		sim_done(rs->loop, &run->timer, 0);
		return;
	}
	ev_timer_start(rs->loop, &run->timer);
}

/* -------------------------------------------------------------- command */

static void
keep_tail(struct restart_run *run, const char *p, size_t n)
{
	if (n >= RESTART_OUTPUT_MAX) {
		memcpy(run->output, p + n - RESTART_OUTPUT_MAX, RESTART_OUTPUT_MAX);
		run->out_len = RESTART_OUTPUT_MAX;
		return;
	}
	if (run->out_len + n > 2 * RESTART_OUTPUT_MAX) {
		size_t keep = RESTART_OUTPUT_MAX - n;

		memmove(run->output, run->output + run->out_len - keep, keep);
		run->out_len = keep;
	}
	memcpy(run->output + run->out_len, p, n);
	run->out_len += n;
}

/* Read what the command wrote; 1 at end of file. */
static int
drain_output(struct restart_run *run)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(run->fd, buf, sizeof(buf))) > 0)
		keep_tail(run, buf, (size_t)n);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

/*
 * /proc as it is now.  Kills in one loop iteration (a batch of restarts
 * timing out together) share one read: on a host with many processes a
 * read is the costly part.  A spawn makes the next kill read again.
 */
static const struct proc_table *
procs_now(struct restarter *rs)
{
	ev_tstamp now = ev_now(rs->loop);

	if (rs->procs_at == now && rs->procs.v != NULL)
		return &rs->procs;
	proctree_free(&rs->procs);
	rs->procs_at = -1;
	if (proctree_read(&rs->procs) < 0) {
		log_err("cannot read /proc to find what a restart command "
		    "left behind: %s", strerror(errno));
		return NULL;
	}
	rs->procs_at = now;
	return &rs->procs;
}

/*
 * Signal the command's process group and every process that left it:
 * those below the command (or below a process found before), and the
 * orphans reparented to this worker that carry the run's marker.
 */
static void
signal_tree(struct restart_run *run, int sig)
{
	const struct proc_table *t;
	struct proc_set roots = { 0 };
	const struct proc_ent *e;
	char marker[48];
	size_t before = run->escaped.n, outside = 0;

	/*
	 * /proc is read before the group is signalled: once the command's
	 * processes die, what they started is reparented to this worker and
	 * the chain of parents that leads to the command is gone.
	 */
	if ((t = procs_now(run->rs)) == NULL) {
		if (run->pid > 0)
			kill(-run->pid, sig);
		return;
	}
	snprintf(marker, sizeof(marker), "MANDRILL_RUN=%" PRIu64, run->serial);
	if ((e = proctree_find(t, run->pid)) != NULL)
		proc_set_add(&roots, e);
	for (size_t i = 0; i < run->escaped.n; i++)
		proc_set_add(&roots, &run->escaped.v[i]);
	if (proctree_children_with_env(t, getpid(), marker, &roots) < 0 ||
	    proctree_below(t, &roots, &run->escaped) < 0)
		log_err("restart pid %d: out of memory finding what it left "
		    "behind", (int)run->pid);
	proc_set_free(&roots);
	if (run->pid > 0)
		kill(-run->pid, sig);
	for (size_t i = before; i < run->escaped.n; i++)
		if (run->escaped.v[i].pgid != run->pid)
			outside++;
	if (outside > 0)
		log_warn("restart pid %d: %zu of its processes had left its "
		    "process group; signalling them too", (int)run->pid,
		    outside);
	proctree_signal_set(&run->escaped, sig);
}

static void
stop_watchers(struct restart_run *run)
{
	struct ev_loop *loop = run->rs->loop;

	ev_timer_stop(loop, &run->timer);
	ev_child_stop(loop, &run->child);
	ev_io_stop(loop, &run->out);
	if (run->fd >= 0) {
		close(run->fd);
		run->fd = -1;
	}
}

static void
command_finish(struct restart_run *run, int status)
{
	char err[160], *output;
	const char *tail;
	int code;

	drain_output(run);
	if (run->timed_out)
		signal_tree(run, SIGKILL);	/* whatever ignored the TERM */
	proc_set_free(&run->escaped);
	stop_watchers(run);
	run->active = 0;
	run->output[run->out_len] = '\0';
	tail = run->out_len ? run->output : NULL;
	if (run->out_len > RESTART_OUTPUT_MAX)
		tail = run->output + run->out_len - RESTART_OUTPUT_MAX;
	if (run->timed_out) {
		snprintf(err, sizeof(err), "timed out after %.3f s; process "
		    "group %s", (double)run->rs->timeout / 1000.0,
		    run->killed ? "killed" : "terminated");
		code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
	} else if (WIFEXITED(status)) {
		code = WEXITSTATUS(status);
		snprintf(err, sizeof(err), "exit status %d", code);
	} else {
		code = -WTERMSIG(status);
		snprintf(err, sizeof(err), "killed by signal %d", WTERMSIG(status));
	}
	/* The callback may start the run again (a health check): ours now. */
	output = run->output;
	run->output = NULL;
	run->done(run, run->timed_out ? (code == 0 ? -1 : code) : code,
	    code == 0 && !run->timed_out ? NULL : err, tail);
	free(output);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	command_finish(w->data, w->rstatus);
}

static void
output_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct restart_run *run = w->data;

	if (drain_output(run))
		ev_io_stop(loop, w);	/* EOF; the exit status finishes it */
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct restart_run *run = w->data;

	if (!run->timed_out) {
		run->timed_out = 1;
		log_warn("restart pid %d ran past restart_timeout; sending TERM "
		    "to its process group", (int)run->pid);
		signal_tree(run, SIGTERM);
		ev_timer_set(w, run->rs->kill_grace, 0.);
		ev_timer_start(loop, w);
		return;
	}
	log_warn("restart pid %d still running after TERM; sending KILL",
	    (int)run->pid);
	run->killed = 1;
	signal_tree(run, SIGKILL);
}

static int
spawn(struct restarter *rs, struct restart_run *run, char **argv,
    const char *host, char *err, size_t errlen)
{
	char hostenv[300], runenv[48];
	char *envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	    (char *)"LANG=C", (char *)"HOME=/", hostenv, runenv, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pfd[2], rc;

	snprintf(hostenv, sizeof(hostenv), "MANDRILL_HOST=%s", host);
	/* The mark by which its orphans are told apart once reparented. */
	run->serial = ++rs->runs;
	snprintf(runenv, sizeof(runenv), "MANDRILL_RUN=%" PRIu64, run->serial);
	rs->procs_at = -1;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	rc = posix_spawn(&run->pid, argv[0], &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
		return -1;
	}
	run->fd = pfd[0];
	fcntl(run->fd, F_SETFL, fcntl(run->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static void
command_start(struct restarter *rs, struct restart_run *run, const char *host)
{
	char err[300];
	char **argv = argv_expand(rs->argv, host);

	run->fd = -1;
	run->pid = 0;
	run->escaped = (struct proc_set){ 0 };
	run->out_len = 0;
	run->timed_out = run->killed = 0;
	run->output = malloc(2 * RESTART_OUTPUT_MAX + 1);
	if (argv == NULL || run->output == NULL ||
	    spawn(rs, run, argv, host, err, sizeof(err)) < 0) {
		if (argv == NULL || run->output == NULL)
			snprintf(err, sizeof(err), "out of memory");
		free(run->output);
		run->output = NULL;
		argv_free(argv);
		run->active = 0;
		run->done(run, -1, err, NULL);
		return;
	}
	argv_free(argv);
	/* The child watcher goes on at once: libev reaps every child. */
	ev_child_init(&run->child, child_cb, run->pid, 0);
	run->child.data = run;
	ev_child_start(rs->loop, &run->child);
	ev_io_init(&run->out, output_cb, run->fd, EV_READ);
	run->out.data = run;
	ev_io_start(rs->loop, &run->out);
	ev_timer_init(&run->timer, timeout_cb, (double)rs->timeout / 1000.0, 0.);
	run->timer.data = run;
	ev_timer_start(rs->loop, &run->timer);
}

void
restart_start(struct restarter *rs, struct restart_run *run,
    const char *host, restart_done_cb done)
{
	run->rs = rs;
	run->done = done;
	run->active = 1;
	if (rs->mode == RS_COMMAND)
		command_start(rs, run, host);
	else
		sim_start(rs, run);
}

void
restart_cancel(struct restart_run *run)
{
	if (!run->active)
		return;
	run->active = 0;
	if (run->rs->mode == RS_COMMAND) {
		/* Nothing will wait for it: end the whole tree now. */
		signal_tree(run, SIGKILL);
		proc_set_free(&run->escaped);
		stop_watchers(run);
		free(run->output);
		run->output = NULL;
		return;
	}
	ev_timer_stop(run->rs->loop, &run->timer);
}
