/*
 * dispatch: the jobs in flight, from their pull to their broker action.
 *
 * It owns the job table (job.c), the waiting list, the leases and the
 * holds, the process groups of the jobs' commands (pgroup.c), and the
 * counters of what was pulled and what became of it.  It picks workers
 * through pool.h, and tells its owner through callbacks: that the
 * newest generation of workers is complete.
 */
#ifndef MANDRILL_DISPATCH_H
#define MANDRILL_DISPATCH_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdint.h>

#include <ev.h>

#include "conf.h"
#include "fleet.h"
#include "hist.h"
#include "hold.h"
#include "lease.h"
#include "loopwatch.h"
#include "pool.h"
#include "proto.h"
#include "rng.h"
#include "source.h"

/* One in-flight message. */
struct job {
	struct lease		 lease;	/* first: lease callbacks cast back */
	uint64_t		 id;
	uint32_t		 slot;
	uint32_t		 next_free;	/* free list of slots */
	struct delivery		*d;
	int64_t			 pulled_us;
	pid_t			 pgid;	/* its restart command's group, if any */
	uint64_t		 pgid_start;	/* its leader's start time */
	struct wproc		*wp;	/* NULL while waiting or held */
	TAILQ_ENTRY(job)	 link;	/* in wp->jobs or the waiting list */
	struct hold_node	 hold;	/* held: waiting for its reason */
	uint32_t		 crashes;	/* workers lost holding it */
	uint32_t		 crashes_new;	/* not yet recorded by a worker */
	int64_t			 lost_at;	/* wall ms of the last such loss */
	uint32_t		 n_holds;	/* times held */
	struct fgrant		*grant;	/* fleet mode: asked for or held */
	struct parked		*parked;	/* its done, while the fleet records it */
	int64_t			 grant_asked;	/* us: when its worker asked */
};

struct counters {
	uint64_t	 pulled;
	uint64_t	 redelivered;
	uint64_t	 outcome[OUT_COUNT];
	uint64_t	 acked;
	uint64_t	 nacked;
	uint64_t	 termed;
	uint64_t	 lost;
	uint64_t	 held[HOLD_COUNT];	/* times held, by reason */
	struct hist	 ack_latency;	/* pull to ack, microseconds */
	struct hist	 restart_time;	/* restarts' run time, microseconds */
	struct hist	 grant_time;	/* fleet: ask to answer, microseconds */
};

struct dispatch_cb {
	void	(*generation_ready)(void *arg);	/* once per generation */
	void	*arg;
	/* An attempt ended (restarted, failed or dead); may be NULL. */
	void	(*attempt_ended)(void *arg, enum outcome o);
};

struct dispatch {
	struct ev_loop		*loop;
	const struct conf	*conf;		/* the running configuration */
	struct source		*src;
	struct pool		*pool;
	struct loopwatch	*watch;
	struct dispatch_cb	 cb;
	int			 running;	/* 0: pulls nothing, takes nothing */
	struct lease_table	 leases;
	struct rng		 rng;

	/* jobs: a slot table indexed by the low bits of the job id */
	struct job		**slots;
	uint32_t		 nslots;
	uint32_t		 free_slot;	/* head of the free list */
	uint64_t		 job_seq;
	unsigned		 in_flight;
	struct job_list		 waiting;	/* pulled, no worker yet */
	unsigned		 nwaiting;
	struct holds		 holds;		/* waiting for their reason */
	unsigned		 store_bad;	/* workers whose store fails */
	struct counters		 n;
	struct fleet		*fleet;		/* NULL: coordination = none */
	char			 instance[64];	/* in events: [fleet] instance */
	uint64_t		 not_owner;	/* finished after another took it */
};

void dispatch_init(struct dispatch *s, struct ev_loop *loop,
    const struct conf *c, struct source *src, struct pool *pool,
    struct loopwatch *watch, const struct dispatch_cb *cb);
void dispatch_free(struct dispatch *s);
/* Stop taking messages (a drain or a shutdown); late ones go back. */
void dispatch_stop(struct dispatch *s);
/* The configuration changed: leases, held messages and pulls follow. */
void dispatch_reload(struct dispatch *s);
void dispatch_pull(struct dispatch *s);
void dispatch_message(struct dispatch *s, struct delivery *d);
void dispatch_waiting(struct dispatch *s);
/* A frame from a worker; -1: the worker must stop. */
int dispatch_frame(struct dispatch *s, struct wproc *wp,
    const struct proto_msg *m);
/* Give back every job of a worker (or, wp NULL, those on no worker). */
void dispatch_nack_all(struct dispatch *s, struct wproc *wp,
    const char *why);
/* Jobs in flight on a worker: neither waiting for one nor held. */
unsigned dispatch_on_workers(const struct dispatch *s);
/* Jobs whose restart command runs now, as the workers reported. */
unsigned dispatch_commands_running(const struct dispatch *s);
/* Give back every job any worker holds (fast shutdown, exit). */
void dispatch_nack_running(struct dispatch *s, const char *why);
/*
 * A worker was lost holding jobs: end their commands, count the crash
 * against each message and hold it for another worker, with backoff.
 */
void dispatch_worker_lost(struct dispatch *s, struct wproc *wp);
/* New rules took over (a reload's generation): look at every held message. */
void dispatch_rethink(struct dispatch *s);
/* The fleet's answers (fleet.h's callbacks, through the supervisor). */
void dispatch_granted(struct dispatch *s, uint64_t job,
    const struct fleet_answer *a);
void dispatch_renewed(struct dispatch *s, uint64_t job, int64_t until);
void dispatch_finished(struct dispatch *s, uint64_t job, int owner);
/* When the oldest lease of a job that waits or runs began; now if none. */
int64_t dispatch_oldest(const struct dispatch *s, int64_t now);

#endif
