/*
 * restart: carry out one restart of one host, asynchronously.
 *
 * mode = sim draws a duration from sim_latency and fails with
 * sim_failure_rate, deterministically for a given sim_seed and job
 * order.  mode = command runs the configured argv template with {host}
 * substituted: posix_spawn, no shell, its own process group, a clean
 * environment, stdin from /dev/null, stdout and stderr into a pipe whose
 * last RESTART_OUTPUT_MAX bytes are kept.  After restart_timeout the
 * whole group gets TERM, and KILL after a grace period; that attempt
 * fails as timed out.  A command that cannot be spawned fails with the
 * reason.
 *
 * A command that leaves its group (setsid, a daemon's double fork) is
 * killed with it all the same: every kill (timeout, cancel) also goes to
 * the processes found below the command in /proc, to those reparented
 * to this worker (a child subreaper) that carry the run's MANDRILL_RUN
 * marker in their environment, and to those found by earlier kills of
 * the run.  What a command leaves running when it ends by itself is not
 * touched here; the worker kills it when it exits (proctree_kill_all).
 *
 * Every restart ends in exactly one call of the done callback, unless it
 * is cancelled first with restart_cancel() (which kills a command's
 * process group); a restart that takes no time, or cannot start, calls
 * it before restart_start() returns.  The callback may start the same
 * run again (the health check does).
 */
#ifndef MANDRILL_RESTART_H
#define MANDRILL_RESTART_H

#include <sys/types.h>

#include <ev.h>
#include <stdint.h>

#include "proctree.h"
#include "rng.h"

#define RESTART_OUTPUT_MAX	4096
#define RESTART_KILL_GRACE	5.0	/* seconds between TERM and KILL */

enum rs_mode { RS_SIM, RS_COMMAND };	/* the welcome's "sim", "command" */

struct restart_run;
/* exit_status: the command's exit status, -signal, or -1 (no status). */
typedef void (*restart_done_cb)(struct restart_run *, int exit_status,
    const char *error, const char *output);

struct restarter {
	struct ev_loop	*loop;
	int		 mode;		/* enum rs_mode */
	int64_t		 latency_min;
	int64_t		 latency_max;
	double		 failure_rate;
	int64_t		 timeout;
	double		 kill_grace;
	char		**argv;		/* mode = command: the template */
	struct rng	 rng;
	uint64_t	 runs;		/* commands started: MANDRILL_RUN */
	struct proc_table procs;	/* /proc as read at procs_at */
	ev_tstamp	 procs_at;	/* loop time; < 0: read again */
};

struct restart_run {
	struct restarter *rs;
	ev_timer	 timer;		/* sim latency, or command timeout */
	ev_child	 child;
	ev_io		 out;
	pid_t		 pid;
	uint64_t	 serial;	/* its MANDRILL_RUN */
	struct proc_set	 escaped;	/* found below it by a kill */
	int		 fd;
	int		 will_fail;
	int		 active;
	int		 timed_out;
	int		 killed;	/* KILL sent */
	size_t		 out_len;
	char		*output;	/* command mode: 2 * RESTART_OUTPUT_MAX + 1 */
	restart_done_cb	 done;
};

/* argv is the split command template (mode = command), kept by rs. */
void restart_init(struct restarter *rs, struct ev_loop *loop, int mode,
    int64_t lat_min, int64_t lat_max, double failure_rate, uint64_t seed,
    int64_t timeout, char **argv);
void restart_free(struct restarter *rs);
void restart_start(struct restarter *rs, struct restart_run *run,
    const char *host, restart_done_cb done);
void restart_cancel(struct restart_run *run);
/* The command line a restart of host would run, for logs and dry runs. */
void restart_describe(const struct restarter *rs, const char *host,
    char *buf, size_t len);

#endif
