/*
 * fleet: [fleet] coordination = nats.  The rules that protect a host
 * (one restart of a msg_id, one restart of a host at a time,
 * min_interval, max_concurrent, max_concurrent_per_group,
 * max_per_minute, the pause) judged for every instance sharing the
 * consumer, in JetStream Key-Value buckets, one per lifetime:
 *
 *   <bucket>-msgs     TTL remember: "running ..." or "done ..." per msg_id
 *   <bucket>-leases   TTL [fleet] lease: host.<host>, slot.<n>,
 *                     group.<group>.<n>; renewed while the restart runs
 *   <bucket>-recent   TTL min_interval: <host>, after a success
 *   <bucket>-rate     TTL 60 s: t.<n>, max_per_minute tokens
 *   <bucket>-control  no TTL: pause, watched by every instance
 *
 * Every claim is a create (refused when the key exists) and every change
 * an update or a delete conditional on the revision this instance wrote:
 * no transition is decided by a read.  The KV calls wait for the
 * cluster, so they run on threads of their own; the loop hands them
 * tasks and hears the answers through an ev_async.  Anything the threads
 * cannot decide (KV unreachable, a timeout) is a hold: nothing is ever
 * restarted blind.
 */
#ifndef MANDRILL_FLEET_H
#define MANDRILL_FLEET_H

#include <stdint.h>

#include <ev.h>

#include "conf.h"
#include "proto.h"

struct fleet;
struct fgrant;

/* What the fleet says of a grant request. */
struct fleet_answer {
	enum outcome	 outcome;	/* restarted: granted; held, skipped,
					   duplicate or invalid */
	enum hold	 hold;
	int64_t		 retry;		/* held: ask again after, ms */
	int64_t		 until;		/* granted: clock_now() ms it ends */
	char		 why[200];
};

struct fleet_cb {
	void	(*granted)(void *arg, uint64_t job,
		    const struct fleet_answer *a);
	/* A renewal: the grant now lasts until (clock_now() ms). */
	void	(*renewed)(void *arg, uint64_t job, int64_t until);
	/*
	 * A finish is recorded; owner 0: another instance holds the
	 * message now, and this one must not ack it.
	 */
	void	(*finished)(void *arg, uint64_t job, int owner);
	/*
	 * The fleet's pause changed: its reason, or NULL when resumed;
	 * first: the first look at start-up found no pause.
	 */
	void	(*paused)(void *arg, const char *reason, int first);
	void	*arg;
};

/*
 * Connect, find or make the buckets (create = yes) and start the
 * threads; blocks, for start-up.  NULL with err when KV cannot be had.
 */
struct fleet *fleet_new(struct ev_loop *loop, const struct conf *c,
    const struct fleet_cb *cb, char *err, size_t len);
void fleet_free(struct fleet *f);
/* The running configuration changed (limits only). */
void fleet_reload(struct fleet *f, const struct conf *c);

/* Ask for a grant for job; its answer comes through cb->granted. */
struct fgrant *fleet_grant(struct fleet *f, uint64_t job, const char *msg_id,
    const char *host, const char *group);
/*
 * The restart of a granted job ended (ran 1, ok: its outcome), or it
 * never ran (ran 0): record it and free what it held; cb->finished
 * follows.  g is the fleet's after this call.
 */
void fleet_finish(struct fleet *f, struct fgrant *g, int ran, int ok);
/* The job is gone without a finish: free what it held, say nothing. */
void fleet_drop(struct fleet *f, struct fgrant *g);
/*
 * The job is gone and its command may still run (its worker was lost):
 * renew nothing, give back nothing: its keys end at their TTL.
 */
void fleet_abandon(struct fleet *f, struct fgrant *g);

/* mandrillctl pause / resume and the error budget, for every instance. */
void fleet_pause(struct fleet *f, const char *reason);
void fleet_resume(struct fleet *f);

/* For status: grants held, and whether the last KV call succeeded. */
unsigned fleet_grants(const struct fleet *f);
const char *fleet_trouble(struct fleet *f, char *buf, size_t len);
const char *fleet_instance(const struct fleet *f);

/* A msg_id as a Key-Value key (letters, digits, - and _; =XX else). */
void fleet_key(const char *msg_id, char *buf, size_t len);

#endif
