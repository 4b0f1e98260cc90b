/*
 * supervisor: the state of mandrilld, one struct on one libev loop.
 *
 * It owns the source (the broker connection), the worker pool and every
 * signal, and wires the modules together: each lower module reports
 * upward through callbacks set here, so the includes form a tree.  It
 * never parses a payload and never touches SQLite: workers do both.
 * Module split:
 *   supervisor.c  start-up, signals, reload, drain and shutdown
 *   avail.c       how many workers and when (policy)
 *   pool.c        fork, exec, channel and reap of workers (mechanism)
 *   dispatch.c    pulling, choosing a worker, outcomes to broker actions
 *   job.c         dispatch's table of in-flight jobs, giving one back
 *   pgroup.c      their commands' process groups, checked in /proc
 *   reload.c      reading and checking the configuration
 *   metrics.c     the metrics file and the status line
 *   statelock.c   one mandrilld per state_dir (main.c takes it)
 *   preflight.c   what start-up needs, checked by -t and before detaching
 *   lease.c, hold.c, outcome.c, backoff.c, source_*.c below those
 */
#ifndef MANDRILL_SUPERVISOR_H
#define MANDRILL_SUPERVISOR_H

#include <ev.h>

#include "avail.h"
#include "budget.h"
#include "conf.h"
#include "control.h"
#include "dispatch.h"
#include "fleet.h"
#include "metrics.h"
#include "pool.h"
#include "reload.h"
#include "source.h"

enum sup_state { SUP_RUNNING, SUP_DRAINING, SUP_STOPPING };

struct supervisor {
	struct ev_loop		*loop;
	struct conf		 conf;	/* the others point here */
	struct overrides	 ov;
	struct source		*src;
	enum sup_state		 state;
	int			 exit_code;

	struct pool		 pool;
	struct avail		 avail;
	struct dispatch		 dispatch;
	struct metrics		 metrics;
	struct control		 ctl;

	/* The effective enabled is the file's and not paused. */
	int			 file_enabled;	/* [restart] enabled */
	int			 paused;	/* by mandrillctl, persisted */
	int64_t			 started_wall;	/* ms since the epoch */
	struct budget		 budget;	/* [restart] max_failures */
	struct fleet		*fleet;		/* [fleet] coordination = nats */

	ev_timer		 tick;		/* 1 s housekeeping */
	int64_t			 last_tick;
	ev_timer		 drain_timer;
	ev_signal		 sig[8];
	int			 nsig;
};

int supervisor_init(struct supervisor *s, struct ev_loop *loop,
    const struct conf *c, const struct overrides *ov);
int supervisor_run(struct supervisor *s);
void supervisor_free(struct supervisor *s);

/* What the control socket's commands (command.c) do. */
int supervisor_reload(struct supervisor *s, const char *by, char *why,
    size_t len);
int supervisor_pause(struct supervisor *s, const char *reason, char *err,
    size_t len);
int supervisor_resume(struct supervisor *s, char *err, size_t len);
void supervisor_drain(struct supervisor *s, const char *why);
/* Handle one control request (command.c). */
json_t *command_request(void *arg, json_t *req,
    const struct control_peer *peer);

#endif
