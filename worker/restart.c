/*
 * restart: the simulated restart and the restart command.
 */
#include "config.h"

#include <errno.h>
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
	rng_seed(&rs->rng, seed);
}

void
restart_free(struct restarter *rs)
{
	argv_free(rs->argv);
	rs->argv = NULL;
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
	char err[160];
	const char *tail;
	int code;

	drain_output(run);
	if (run->timed_out)
		kill(-run->pid, SIGKILL);	/* whatever ignored the TERM */
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
	run->done(run, run->timed_out ? (code == 0 ? -1 : code) : code,
	    code == 0 && !run->timed_out ? NULL : err, tail);
	free(run->output);
	run->output = NULL;
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
		kill(-run->pid, SIGTERM);
		ev_timer_set(w, run->rs->kill_grace, 0.);
		ev_timer_start(loop, w);
		return;
	}
	log_warn("restart pid %d still running after TERM; sending KILL",
	    (int)run->pid);
	run->killed = 1;
	kill(-run->pid, SIGKILL);
}

static int
spawn(struct restarter *rs, struct restart_run *run, char **argv,
    const char *host, char *err, size_t errlen)
{
	char hostenv[300];
	char *envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	    (char *)"LANG=C", (char *)"HOME=/", hostenv, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pfd[2], rc;

	snprintf(hostenv, sizeof(hostenv), "MANDRILL_HOST=%s", host);
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
		/* Nothing will wait for it: end the whole group now. */
		kill(-run->pid, SIGKILL);
		stop_watchers(run);
		free(run->output);
		run->output = NULL;
		return;
	}
	ev_timer_stop(run->rs->loop, &run->timer);
}
