/*
 * pgroup: claim and kill a restart command's process group, trusting
 * the worker's word only as far as /proc bears it out.
 *
 * A claim is kept only if the group's leader leads it and is the
 * worker's child; its start time tells it from a later process with its
 * pid.  Before the SIGKILL the leader must still be that process (same
 * pid and start time) and, while the worker runs, still its child;
 * otherwise the group is left alone and the log says why.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"
#include "pgroup.h"
#include "pool.h"
#include "proc.h"

void
pgroup_claim(struct job *j, uint32_t named)
{
	struct wproc *wp = j->wp;
	/* Above INT_MAX, kill(-pgid) would be of a negative number. */
	pid_t pgid = named <= INT_MAX ? (pid_t)named : 0;
	struct proc_stat ps = { 0 };
	const char *why;
	char buf[128];

	j->pgid = 0;
	if (pgid > 1 && proc_stat_read(pgid, &ps) < 0) {
		if (errno == ENOENT) {	/* ended and reaped already */
			log_debug("worker pid %d: process group %d of msg_id=%s "
			    "already gone", (int)wp->pid, (int)pgid, j->d->id);
			return;
		}
		snprintf(buf, sizeof(buf), "its leader's status cannot be "
		    "read: %s", strerror(errno));
		why = buf;
	} else
		why = proc_group_claim(&ps, pgid, wp->pid);
	if (why != NULL) {
		log_warn("worker pid %d named process group %" PRIu32 " for "
		    "msg_id=%s: %s; refused, it will never be killed",
		    (int)wp->pid, named, j->d->id, why);
		return;
	}
	j->pgid = pgid;
	j->pgid_start = ps.start;
}

void
pgroup_kill(struct job *j)
{
	struct proc_stat ps;
	const char *why;
	pid_t pgid = j->pgid;

	j->pgid = 0;
	if (pgid <= 1 || j->wp == NULL)
		return;
	if (proc_stat_read(pgid, &ps) < 0) {
		/* What is left of it cannot be told from a later group. */
		if (kill(-pgid, 0) == 0)
			log_warn("process group %d of msg_id=%s not killed: its "
			    "leader has exited", (int)pgid, j->d->id);
		return;
	}
	why = proc_group_kill(&ps, pgid, j->pgid_start, j->wp->pid,
	    pool_exited(j->wp));
	if (why != NULL) {
		log_warn("process group %d of msg_id=%s not killed: %s",
		    (int)pgid, j->d->id, why);
		return;
	}
	if (kill(-pgid, SIGKILL) == 0)
		log_warn("killed process group %d of msg_id=%s: its worker is "
		    "gone", (int)pgid, j->d->id);
}
