/*
 * pool: the worker processes, their generations and how many are wanted.
 *
 * Mechanism: fork, exec, talk to and reap mandrill-worker processes.
 * The pool owns the worker set: every worker, the generation new workers
 * join (gen), the one that gets jobs (active_gen), the newest one that
 * was complete (ready_gen) and the number of workers wanted in gen
 * (target).  Others read these fields and change them only through the
 * functions below.  A worker's state changes in one function, which
 * refuses (and logs) a transition the state machine does not have: a
 * STARTING worker becomes READY or DRAINING, a READY one DRAINING, any
 * of them GONE (its channel closed), and nothing leaves GONE.
 *
 * When to spawn or retire a worker is decided in avail.c.  The pool
 * reports upward through the callbacks its owner sets: a frame from a
 * worker, a channel that closed (the worker's jobs are lost), a worker
 * reaped.  It never gives back a job or decides a respawn itself.
 */
#ifndef MANDRILL_POOL_H
#define MANDRILL_POOL_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdint.h>

#include <ev.h>

#include "chan.h"
#include "conf.h"
#include "proto.h"

struct job;
TAILQ_HEAD(job_list, job);

enum wp_state { WP_STARTING, WP_READY, WP_DRAINING, WP_GONE };

#define WP_MASK(st)	(1u << (st))
#define WP_LIVE		(WP_MASK(WP_STARTING) | WP_MASK(WP_READY))
#define WP_RUNNING	(WP_LIVE | WP_MASK(WP_DRAINING))
#define POOL_ANY_GEN	0	/* pool_count: every generation */

/* One worker process.  A new one is STARTING. */
struct wproc {
	TAILQ_ENTRY(wproc)	 link;
	struct pool		*pool;
	pid_t			 pid;
	uint32_t		 slot;
	uint32_t		 gen;
	enum wp_state		 state;	/* changed only by pool.c's set_state */
	struct chan		*chan;	/* NULL once closed */
	ev_child		 child;	/* inactive for an adopted worker */
	unsigned		 max_jobs;	/* as it said when ready */
	int64_t			 started;
	int64_t			 last_heard;
	int64_t			 timeout;	/* its generation's worker_timeout */
	int64_t			 kill_at;	/* send KILL after this; 0 none */
	int			 retiring;	/* told to drain: its exit is expected */
	int			 spared;	/* told the log it is not killed */
	uint32_t		 unsaved;	/* known outcomes it cannot commit */
	uint64_t		 wal;		/* its WAL size, as it last said */
	uint64_t		 finished;	/* jobs it reported it recorded */

	/* Written by dispatch only: the jobs it gave this worker. */
	struct job_list		 jobs;
	unsigned		 njobs;
	int			 store_bad;	/* its store cannot commit */
};

TAILQ_HEAD(wproc_list, wproc);

struct pool_cb {
	/* A frame from wp; -1: wp must stop (the pool closes and kills it). */
	int	(*frame)(void *arg, struct wproc *wp, const struct proto_msg *m);
	/* wp's channel closed: nothing more comes from it. */
	void	(*lost)(void *arg, struct wproc *wp);
	/* wp's process was reaped (a waitpid status); freed on return. */
	void	(*gone)(void *arg, struct wproc *wp, int status);
	void	*arg;
};

struct pool {
	struct ev_loop		*loop;
	const struct conf	*conf;		/* the running configuration */
	struct wproc_list	 workers;
	uint32_t		 gen;		/* new workers join it */
	uint32_t		 active_gen;	/* its workers get the jobs */
	uint32_t		 ready_gen;	/* the newest that was complete */
	unsigned		 target;	/* workers wanted in gen */
	uint64_t		 db_dev, db_ino;	/* the database, once seen */
	struct pool_cb		 cb;
};

/* c stays the caller's: a reload changes it in place. */
void pool_init(struct pool *p, struct ev_loop *loop, const struct conf *c,
    const struct pool_cb *cb);
/* Forget every worker (at exit): no callback, no kill. */
void pool_free(struct pool *p);

/* Fork and exec a worker into generation gen; NULL on failure. */
struct wproc *pool_spawn(struct pool *p);
/*
 * Take fd (the supervisor's end of a socket) as a worker of generation
 * gen, without a process: for tests, which call pool_reap themselves.
 */
struct wproc *pool_adopt(struct pool *p, int fd, pid_t pid);
/* Its process ended: close, tell the owner (gone), free wp. */
void pool_reap(struct pool *p, struct wproc *wp, int status);
/* Its channel is done: GONE, and the owner is told (lost). */
void pool_close(struct pool *p, struct wproc *wp);
void pool_kill(struct wproc *wp, int sig);
/*
 * Has wp's process exited (reaped, a zombie, or adopted without one), so
 * that its children have been reparented?
 */
int pool_exited(struct wproc *wp);

/*
 * wp said it is ready for max_jobs jobs: 1 if that completes generation
 * gen (target workers ready, said once per generation), 0 if not, -1 if
 * wp was not STARTING.
 */
int pool_ready(struct pool *p, struct wproc *wp, unsigned max_jobs);
/* The first worker's database is everyone's: -1 if this is another. */
int pool_database(struct pool *p, uint64_t dev, uint64_t ino);

/* The least-loaded worker of the active generation with room, or NULL. */
struct wproc *pool_pick(const struct pool *p);
/* Jobs the active generation can take now. */
unsigned pool_room(const struct pool *p);
/* Workers of gen (or POOL_ANY_GEN) whose state is in the mask states. */
unsigned pool_count(const struct pool *p, uint32_t gen, unsigned states);
int pool_empty(const struct pool *p);
/*
 * The pids of the workers whose process is still watched (not yet reaped,
 * not adopted), up to len of them into pids; how many there are.
 */
size_t pool_pids(const struct pool *p, pid_t *pids, size_t len);
/* Largest WAL size any worker reported. */
uint64_t pool_max_wal(const struct pool *p);

void pool_set_target(struct pool *p, unsigned n);
/* A new generation of n workers; new workers join it. */
void pool_new_generation(struct pool *p, unsigned n);
/* Generation gen gets the jobs from now; older ones are told to drain. */
void pool_take_over(struct pool *p);
/* Tell every worker of a generation before gen to drain. */
void pool_retire_older(struct pool *p, uint32_t gen);
/* Tell the least-loaded ready worker of gen to drain; NULL if none. */
struct wproc *pool_retire_one(struct pool *p);
/* Tell every worker to drain (the end of a drain). */
void pool_drain_all(struct pool *p);
/* QUIT every worker, KILL after grace_ms (fast shutdown). */
void pool_quit_all(struct pool *p, int64_t grace_ms);
void pool_reopen_all(struct pool *p);
/*
 * Housekeeping at now: abort a silent worker (judged only when on_time),
 * KILL one whose grace ran out unless it holds outcomes it cannot record.
 */
void pool_tick(struct pool *p, int64_t now, int on_time, int64_t grace_ms);
/* One log line per worker (SIGUSR2). */
void pool_dump(const struct pool *p);

#endif
