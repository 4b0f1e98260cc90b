/*
 * worker: one mandrill-worker process and its jobs.
 *
 * A job arrives in a job frame, is validated here (untrusted payload),
 * then lives through: admit (record and decide, in the next group
 * commit) -> running (restart in progress) -> finish (record the
 * outcome, in the next group commit) -> done frame.  All database work of
 * one loop iteration is one transaction, committed in an ev_prepare
 * watcher before any done frame of that iteration is queued: a done frame
 * therefore always follows the commit of what it reports.
 */
#ifndef MANDRILL_WORKER_H
#define MANDRILL_WORKER_H

#include <sys/queue.h>
#include <regex.h>

#include <ev.h>

#include "chan.h"
#include "loopwatch.h"
#include "payload.h"
#include "proto.h"
#include "restart.h"
#include "window.h"
#include "store.h"

/*
 * JS_GRANT: fleet mode, waiting for the supervisor's grant before its
 * admission; JS_SETTLE: the fleet settled it (skipped, duplicate or a
 * conflict), to be recorded without a restart.
 */
enum wjob_state { JS_ADMIT, JS_INVALID, JS_RUNNING, JS_FINISH, JS_GRANT,
	JS_SETTLE };

struct worker;

struct wjob {
	TAILQ_ENTRY(wjob) link;
	struct worker	*w;
	uint64_t	 id;
	uint32_t	 delivery;
	enum wjob_state	 state;
	char		 broker_id[257];
	struct payload	 p;
	char		*payload;
	size_t		 payload_len;
	struct store_verdict v;
	int		 exit_status;
	char		*output;	/* tail of the command's output */
	int		 cancelled;
	int		 unsaved;	/* known outcome, its commit failed */
	uint32_t	 crashes;	/* workers lost holding it, new */
	int64_t		 lost_at;	/* wall ms the last one was lost */
	uint64_t	 retry_of;	/* mandrillctl retry: this dead letter */
	int		 refused;	/* arrived after the drain began */
	char		 bury[PROTO_ERR_MAX + 1];	/* "": restart it */
	int64_t		 started;	/* us, when the restart began */
	uint64_t	 run_us;	/* how long it ran */
	struct restart_run run;
	/* [restart] check: run after the restart until it exits 0. */
	int		 checking;
	int		 checks;	/* runs of the check so far */
	int64_t		 check_began;	/* us */
	char		*check_output;
	ev_timer	 check_timer;	/* check_interval between runs */
	/* Fleet mode: the grant, and the kill before it ends (fencing). */
	int64_t		 grant_until;	/* clock_now() ms; 0: no grant */
	ev_timer	 fence_timer;
};

TAILQ_HEAD(wjob_list, wjob);

struct worker {
	struct ev_loop	*loop;
	struct chan	*chan;
	struct store	*store;
	struct restarter rs;
	struct restarter check_rs;	/* [restart] check; argv NULL: none */
	int64_t		 check_timeout;
	int64_t		 check_interval;
	struct admit_rules rules;
	struct window	 window;
	int64_t		 window_opens_at;	/* wall ms; 0: open */
	int64_t		 window_recheck;	/* wall ms to judge it again */
	int64_t		 window_judged;		/* wall ms it was judged */
	regex_t		 group_re;
	int		 has_group_re;
	struct loopwatch watch;
	char		 state_dir[PROTO_PATH_MAX];
	char		 domain[256];
	char		 allow[PROTO_LIST_MAX];
	char		 deny[PROTO_LIST_MAX];
	char		 log_file[PROTO_PATH_MAX];
	char		 command[PROTO_PATH_MAX];
	char		 user[64];
	int		 dry_run;
	int		 mode;		/* enum rs_mode */
	int		 synchronous;	/* enum store_sync */
	int		 log_format;	/* 0 text, 1 json */
	char		 owner[64];
	uint32_t	 slot;
	uint32_t	 max_jobs;
	uint32_t	 njobs;
	struct wjob_list todo;		/* waiting for the next commit */
	struct wjob_list blocked;	/* outcomes whose commit failed */
	struct wjob_list running;
	struct wjob_list granting;	/* fleet mode: asked, not yet answered */
	int		 fleet;		/* [fleet] coordination = nats */
	int64_t		 fleet_lease;	/* ms, a grant's length */
	ev_prepare	 committer;
	ev_idle		 nudge;		/* no sleeping while todo waits */
	ev_timer	 retry;
	ev_timer	 heartbeat;
	ev_timer	 pruner;	/* retain, in worker 1 */
	int64_t		 retain;	/* ms; 0: keep every row */
	uint64_t	 pruned;	/* rows deleted in this run of batches */
	ev_signal	 sigterm;
	ev_signal	 sigquit;
	uint64_t	 sent;		/* frames sent, for the heartbeat */
	uint64_t	 commits;	/* transactions committed */
	uint64_t	 changes;	/* job changes in them */
	uint64_t	 sent_at_tick;
	uint32_t	 unsaved;	/* known outcomes not committed */
	uint32_t	 unsaved_sent;
	char		 store_bad[256];	/* "" or why it cannot commit */
	char		 store_bad_sent[256];
	uint64_t	 failed_commits;
	int64_t		 wal;		/* WAL bytes, as last told */
	int		 wal_starved;	/* a reader blocks the checkpoints */
	int		 wal_starved_sent;
	int		 welcomed;
	int		 draining;
	int		 quitting;	/* SIGQUIT: start nothing more */
	int		 exit_code;
};

/* Set up on loop with the supervisor's socket; 0 or -1. */
int worker_init(struct worker *w, struct ev_loop *loop, int fd);
/* Free what is left after the loop ends. */
void worker_cleanup(struct worker *w);

#endif
