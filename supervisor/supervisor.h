/*
 * supervisor: the state of mandrilld, one struct on one libev loop.
 *
 * It owns the source (the broker connection), the lease table, the
 * worker processes and every signal.  It never parses a payload and never
 * touches SQLite: workers do both.  Module split:
 *   supervisor.c  start-up, signals, drain and shutdown (lifecycle)
 *   pool.c        fork/exec, channel and reaping of one worker (mechanism)
 *   dispatch.c    pulling, choosing a worker, outcomes to broker actions
 *   job.c         the table of in-flight jobs, giving one back
 *   lease.c       ack deadlines
 *   backoff.c     retry delays
 */
#ifndef MANDRILL_SUPERVISOR_H
#define MANDRILL_SUPERVISOR_H

#include <sys/queue.h>
#include <sys/types.h>

#include <ev.h>

#include "chan.h"
#include "conf.h"
#include "hist.h"
#include "hold.h"
#include "lease.h"
#include "loopwatch.h"
#include "proto.h"
#include "rng.h"
#include "source.h"

struct wproc;

/* What the command line sets over the file, at start and at each reload. */
struct overrides {
	char		 conf_path[CONF_PATH_MAX];
	char		 cwd[CONF_PATH_MAX];	/* relative paths start here */
	char		 pid_file[CONF_PATH_MAX];	/* "" if not given */
	int		 level;			/* enum log_level, -1 if not given */
};

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
	TAILQ_ENTRY(job)	 link;	/* in wp->jobs or sup->waiting */
	struct hold_node	 hold;	/* held: waiting for its reason */
	uint32_t		 crashes;	/* workers lost holding it */
	uint32_t		 crashes_new;	/* not yet recorded by a worker */
	int64_t			 lost_at;	/* wall ms of the last such loss */
	uint32_t		 n_holds;	/* times held */
};

TAILQ_HEAD(job_list, job);

enum wp_state { WP_STARTING, WP_READY, WP_DRAINING, WP_GONE };

/* One worker process. */
struct wproc {
	TAILQ_ENTRY(wproc)	 link;
	struct supervisor	*sup;
	pid_t			 pid;
	uint32_t		 slot;
	uint32_t		 gen;
	enum wp_state		 state;
	struct chan		*chan;
	ev_child		 child;
	struct job_list		 jobs;
	unsigned		 njobs;
	unsigned		 max_jobs;
	int64_t			 started;
	int64_t			 last_heard;
	int64_t			 timeout;	/* its generation's worker_timeout */
	int64_t			 kill_at;	/* send KILL after this; 0 none */
	int			 retiring;	/* told to drain: its exit is expected */
	uint32_t		 unsaved;	/* known outcomes it cannot commit */
	int			 store_bad;	/* its store cannot commit */
	int			 spared;	/* told the log it is not killed */
	uint64_t		 wal;		/* its WAL size, as it last said */
};

TAILQ_HEAD(wproc_list, wproc);

enum sup_state { SUP_RUNNING, SUP_DRAINING, SUP_STOPPING };

struct counters {
	uint64_t	 pulled;
	uint64_t	 redelivered;
	uint64_t	 outcome[OUT_COUNT];
	uint64_t	 acked;
	uint64_t	 nacked;
	uint64_t	 termed;
	uint64_t	 lost;
	uint64_t	 crashes;
	uint64_t	 held[HOLD_COUNT];	/* times held, by reason */
	struct hist	 ack_latency;	/* pull to ack, microseconds */
	struct hist	 restart_time;	/* restarts' run time, microseconds */
};

struct supervisor {
	struct ev_loop		*loop;
	struct conf		 conf;
	struct overrides	 ov;
	struct source		*src;
	struct lease_table	 leases;
	struct rng		 rng;
	enum sup_state		 state;
	int			 exit_code;

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
	uint64_t		 db_dev, db_ino;	/* the database, once seen */

	struct wproc_list	 workers;
	uint32_t		 gen;
	uint32_t		 ready_gen;	/* generation announced ready */
	uint32_t		 active_gen;	/* generation that gets jobs */
	unsigned		 target_workers;
	unsigned		 fast_deaths;	/* consecutive young deaths */
	ev_timer		 respawn;
	ev_timer		 tick;		/* 1 s housekeeping */
	int64_t			 last_tick;
	ev_timer		 drain_timer;

	ev_signal		 sig[8];
	int			 nsig;
	struct counters		 n;
	struct loopwatch	 watch;
	ev_timer		 metrics_timer;
	unsigned		 metrics_bad;	/* writes failed in a row */
	ev_timer		 status_timer;
	struct counters		 status_last;	/* at the last status line */
	int64_t			 status_at;
};

/* supervisor.c */
int supervisor_init(struct supervisor *s, struct ev_loop *loop,
    const struct conf *c, const struct overrides *ov);
int supervisor_run(struct supervisor *s);
void supervisor_free(struct supervisor *s);
void supervisor_begin_drain(struct supervisor *s, const char *why);
void supervisor_worker_gone(struct supervisor *s, struct wproc *wp,
    int status);
void supervisor_check_done(struct supervisor *s);

/* reload.c */
int config_read(const struct overrides *ov, struct conf *c, char *err,
    size_t len);
void supervisor_reload(struct supervisor *s);
void supervisor_spawn_missing(struct supervisor *s);
/* Drain the workers of every generation before gen. */
void supervisor_retire_generation(struct supervisor *s, uint32_t gen);

/* pool.c */
struct wproc *pool_spawn(struct supervisor *s, uint32_t slot);
void pool_close(struct wproc *wp);
void pool_kill(struct wproc *wp, int sig);
int pool_exited(struct wproc *wp);
void pool_send_drain(struct wproc *wp);
void pool_send_reopen(struct wproc *wp);
unsigned pool_count(const struct supervisor *s, enum wp_state state);

/* job.c */
void job_table_init(struct supervisor *s);
void job_table_free(struct supervisor *s);
struct job *job_new(struct supervisor *s, struct delivery *d);
/* The live job of this id, or NULL (given back, or a stale id). */
struct job *job_find(struct supervisor *s, uint64_t id);
/* Off its worker's list or the waiting list. */
void job_unlink(struct supervisor *s, struct job *j);
/* Its lease ended and its slot freed; the delivery is the caller's. */
void job_release(struct supervisor *s, struct job *j);
/* Back to the broker for redelivery now, counted as nacked. */
void job_redeliver(struct supervisor *s, struct delivery *d);
void job_give_back(struct supervisor *s, struct job *j);

/* dispatch.c */
void dispatch_init(struct supervisor *s);
void dispatch_free(struct supervisor *s);
void dispatch_pull(struct supervisor *s);
void dispatch_message(void *arg, struct delivery *d);
void dispatch_waiting(struct supervisor *s);
int dispatch_frame(struct wproc *wp, const struct proto_msg *m);
/* Give back every job of a worker (or all when wp is NULL) to the broker. */
void dispatch_nack_all(struct supervisor *s, struct wproc *wp,
    const char *why);
/*
 * A worker was lost holding jobs: end their commands, count the crash
 * against each message and hold it for another worker, with backoff.
 */
void dispatch_worker_lost(struct supervisor *s, struct wproc *wp);

#endif
