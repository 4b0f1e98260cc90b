/*
 * pgroup: the process group of a job's restart command, which mandrilld
 * kills if the worker running the job goes (issue 17, item 1).
 *
 * The worker names the group in its started frame, and a worker is
 * untrusted: the group is recorded only if /proc shows its leader to be
 * the worker's child, along with the leader's start time, and killed
 * only if that leader is still the same process.  Part of dispatch: only
 * dispatch.c includes it, and it writes only a job's pgid and pgid_start.
 */
#ifndef MANDRILL_PGROUP_H
#define MANDRILL_PGROUP_H

#include <stdint.h>

struct job;

/* j's worker named pgid for j's command: record it, or log the refusal. */
void pgroup_claim(struct job *j, uint32_t pgid);
/* j's worker is gone or going: kill j's recorded group if still its own. */
void pgroup_kill(struct job *j);

#endif
