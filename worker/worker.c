/*
 * worker: jobs, group commit and the done frames of one worker process.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"
#include "clock.h"
#include "conf.h"
#include "duration.h"
#include "hostname.h"
#include "log.h"
#include "worker.h"

#define RETRY_SECONDS	1.0	/* after a failed commit of outcomes */
#define EXIT_FLUSH_MS	10000	/* waiting for the supervisor to read */
/*
 * A granted restart is killed this share of the fleet lease before its
 * grant ends, unless renewed: the kill must land before another
 * instance may start the host.
 */
#define FENCE_SHARE	5

static void schedule_commit(struct worker *w);
static void maybe_exit(struct worker *w);
static void ask_grant(struct worker *w, struct wjob *j);
static void fence_arm(struct worker *w, struct wjob *j);

static void
job_free(struct wjob *j)
{
	ev_timer_stop(j->w->loop, &j->check_timer);
	ev_timer_stop(j->w->loop, &j->fence_timer);
	free(j->check_output);
	free(j->output);
	free(j->payload);
	free(j);
}

static void
send_done(struct worker *w, struct wjob *j)
{
	struct proto_done d = { j->id, j->v.outcome, j->v.error,
	    j->v.attempts, j->run_us, j->p.host, j->v.hold, j->v.retry };

	if (w->chan != NULL) {
		proto_pack_done(chan_packer(w->chan), &d);
		w->sent++;
	}
	w->njobs--;
	job_free(j);
}

/*
 * Tell the supervisor what it must know of this worker's store: known
 * outcomes it holds uncommitted (it must not be killed for them), and
 * whether the database commits.  Sent when either changes.
 */
static void
send_state(struct worker *w)
{
	if (w->chan == NULL || (w->unsaved == w->unsaved_sent &&
	    strcmp(w->store_bad, w->store_bad_sent) == 0))
		return;
	proto_pack_state(chan_packer(w->chan), w->unsaved, w->store_bad,
	    (uint64_t)w->wal);
	w->sent++;
	w->unsaved_sent = w->unsaved;
	snprintf(w->store_bad_sent, sizeof(w->store_bad_sent), "%s",
	    w->store_bad);
}

static void
log_verdict(struct worker *w, const struct wjob *j)
{
	const char *id = j->p.msg_id[0] ? j->p.msg_id : j->broker_id;

	switch (j->v.outcome) {
	case OUT_RESTARTED:
		log_debug("Restarted host=%s msg_id=%s attempt=%" PRIu32,
		    j->p.host, id, j->v.attempts);
		break;
	case OUT_DRY_RUN:
		log_debug("Dry run host=%s msg_id=%s attempt=%" PRIu32
		    ": nothing was run", j->p.host, id, j->v.attempts);
		break;
	case OUT_DEAD:
		if (j->bury[0] != '\0') {
			log_warn("Dead msg_id=%s host=%s: %s", id, j->p.host,
			    j->v.error);
			break;
		}
		/* FALLTHROUGH */
	case OUT_FAILED:
		log_warn("Restart %s host=%s msg_id=%s attempt=%" PRIu32
		    ": %s", j->v.outcome == OUT_DEAD ? "dead" : "failed",
		    j->p.host, id, j->v.attempts, j->v.error);
		break;
	case OUT_INVALID:
		log_warn("Invalid msg_id=%s: %s", id, j->v.error);
		break;
	case OUT_ERROR:		/* the store's state is logged once */
		log_debug("Not recorded msg_id=%s: %s", id, j->v.error);
		break;
	case OUT_HELD:
		log_debug("Held msg_id=%s host=%s (%s): %s", id, j->p.host,
		    hold_name(j->v.hold), j->v.error);
		break;
	default:
		log_debug("%s msg_id=%s host=%s: %s",
		    j->v.outcome == OUT_SKIPPED ? "Skipped" : "Duplicate",
		    id, j->p.host, j->v.error);
		break;
	}
}

/* The attempt is over: its outcome goes to the next commit. */
static void
attempt_over(struct wjob *j, int exit_status, enum outcome outcome,
    const char *error)
{
	struct worker *w = j->w;

	ev_timer_stop(w->loop, &j->check_timer);
	ev_timer_stop(w->loop, &j->fence_timer);
	TAILQ_REMOVE(&w->running, j, link);
	j->run_us = (uint64_t)(clock_now_us() - j->started);
	j->exit_status = exit_status;
	j->v.outcome = outcome;
	snprintf(j->v.error, sizeof(j->v.error), "%s", error ? error : "");
	if (j->checking) {
		j->v.checked = 1;
		j->v.check_ms = (clock_now_us() - j->check_began) / 1000;
		j->v.check_output = j->check_output;
	}
	j->state = JS_FINISH;
	TAILQ_INSERT_TAIL(&w->todo, j, link);
	schedule_commit(w);
}

static void check_done(struct restart_run *run, int exit_status,
    const char *error, const char *output);

/*
 * If this worker dies, the supervisor ends the command too: it learns of
 * the group now, not when the batch has spawned; each check's too.
 */
static void
announce_started(struct worker *w, struct wjob *j)
{
	if (j->state == JS_RUNNING && j->run.active && j->run.pid > 0 &&
	    w->chan != NULL) {
		proto_pack_started(chan_packer(w->chan), j->id,
		    (uint32_t)j->run.pid);
		w->sent++;
		chan_flush(w->chan);
	}
}

/* One run of the health check, with what is left of check_timeout. */
static void
check_run(struct wjob *j)
{
	struct worker *w = j->w;

	w->check_rs.timeout = w->check_timeout -
	    (clock_now_us() - j->check_began) / 1000;
	if (w->check_rs.timeout < 1)
		w->check_rs.timeout = 1;
	j->checks++;
	log_debug("Checking msg_id=%s host=%s (check %d)", j->p.msg_id,
	    j->p.host, j->checks);
	restart_start(&w->check_rs, &j->run, j->p.host, check_done);
	announce_started(w, j);
}

static void
check_again(struct ev_loop *loop, ev_timer *t, int revents)
{
	check_run(t->data);
}

static struct wjob *
job_of_run(struct restart_run *run)
{
	return (struct wjob *)((char *)run - offsetof(struct wjob, run));
}

/*
 * A run of the check ended: 0 is the host back, and the attempt a
 * success; else it runs again after check_interval while check_timeout
 * allows, and then the attempt has failed.
 */
static void
check_done(struct restart_run *run, int exit_status, const char *error,
    const char *output)
{
	struct wjob *j = job_of_run(run);
	struct worker *w = j->w;
	int64_t spent = (clock_now_us() - j->check_began) / 1000;
	char why[PROTO_ERR_MAX], in[32];

	free(j->check_output);
	j->check_output = output != NULL ? strdup(output) : NULL;
	if (exit_status == 0) {
		attempt_over(j, 0, OUT_RESTARTED, NULL);
		return;
	}
	if (spent + w->check_interval < w->check_timeout) {
		ev_timer_set(&j->check_timer, w->check_interval / 1000.0, 0.);
		ev_timer_start(w->loop, &j->check_timer);
		return;
	}
	snprintf(why, sizeof(why), "check failed: %s, %d checks in %s",
	    error != NULL && *error ? error : "no success", j->checks,
	    duration_fmt(spent, in, sizeof(in)));
	attempt_over(j, 0, OUT_FAILED, why);
}

static void
restart_done(struct restart_run *run, int exit_status, const char *error,
    const char *output)
{
	struct wjob *j = job_of_run(run);
	struct worker *w = j->w;

	if (output != NULL && j->output == NULL &&
	    (j->output = strdup(output)) == NULL)
		log_err("out of memory keeping the output of %s", j->p.host);
	/* A success is one once the check says the host is back. */
	if (exit_status == 0 && w->check_rs.argv != NULL && !j->checking &&
	    !j->v.dry_run) {
		j->checking = 1;
		j->check_began = clock_now_us();
		check_run(j);
		return;
	}
	attempt_over(j, exit_status, exit_status == 0 ? OUT_RESTARTED :
	    OUT_FAILED, error);
}

static void
store_msg_of(const struct wjob *j, struct store_msg *m)
{
	m->msg_id = j->p.msg_id[0] ? j->p.msg_id : NULL;
	m->broker_id = j->broker_id;
	m->instance = j->p.instance[0] ? j->p.instance : NULL;
	m->host = j->p.host[0] ? j->p.host : NULL;
	m->payload = j->payload;
	m->payload_len = j->payload_len;
	m->delivery = j->delivery;
	m->crashes = j->crashes;
	m->lost_at = j->lost_at;
	m->retry_of = j->retry_of;
	m->group = j->p.group[0] ? j->p.group : NULL;
}

/* One job's share of the transaction; -1 on a database error. */
static int
apply(struct worker *w, struct wjob *j)
{
	struct store_msg m;

	store_msg_of(j, &m);
	switch (j->state) {
	case JS_ADMIT:
		if (j->cancelled) {
			j->v.outcome = OUT_HELD;
			snprintf(j->v.error, sizeof(j->v.error),
			    "cancelled before it started: lease lost");
			return 0;
		}
		if (j->refused || w->quitting || w->chan == NULL) {
			/*
			 * It came after the drain, SIGQUIT came before its
			 * commit (even in the iteration that read it), or the
			 * supervisor is gone: start nothing new.  Not an
			 * attempt; redelivered.
			 */
			j->v.outcome = OUT_HELD;
			snprintf(j->v.error, sizeof(j->v.error),
			    "worker is stopping");
			return 0;
		}
		if (j->bury[0] != '\0')
			return store_bury(w->store, &m, j->bury, &j->v);
		return store_admit(w->store, &m, &w->rules, &j->v);
	case JS_INVALID:
		return store_invalid(w->store, &m, j->v.error, &j->v);
	case JS_SETTLE:
		return store_settle(w->store, &m, j->v.outcome, j->v.error,
		    &j->v);
	case JS_FINISH:
		return store_finish(w->store, &m, &w->rules, j->exit_status,
		    j->output, &j->v);
	case JS_GRANT:		/* never in a batch */
	case JS_RUNNING:
		break;
	}
	return 0;
}

/*
 * Fleet mode: the running restart (or its check) is killed when its
 * grant is about to end unrenewed, and the attempt recorded as failed:
 * after the grant ends another instance may start the same host.
 */
static void
fence_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct wjob *j = t->data;
	char left[32];

	if (j->state != JS_RUNNING)
		return;
	log_err("Fencing restart host=%s msg_id=%s: its fleet grant was not "
	    "renewed and ends in %s; killing its process group", j->p.host,
	    j->p.msg_id, duration_fmt(j->grant_until - clock_now(), left,
	    sizeof(left)));
	restart_cancel(&j->run);
	restart_done(&j->run, -1, "fenced: its fleet grant could not be "
	    "renewed", NULL);
}

/* Fleet mode: too late to start under this grant (or to go on). */
static int
grant_ended(const struct worker *w, const struct wjob *j)
{
	return j->grant_until > 0 &&
	    clock_now() >= j->grant_until - w->fleet_lease / FENCE_SHARE;
}

static void
fence_arm(struct worker *w, struct wjob *j)
{
	int64_t lease, at;

	if (j->grant_until <= 0 || j->state != JS_RUNNING)
		return;
	lease = w->fleet_lease;
	at = j->grant_until - lease / FENCE_SHARE - clock_now();
	ev_timer_stop(w->loop, &j->fence_timer);
	ev_timer_set(&j->fence_timer, at > 0 ? at / 1000.0 : 0., 0.);
	ev_timer_start(w->loop, &j->fence_timer);
}

/* After the commit: start what was admitted, report the rest. */
static void
settle(struct worker *w, struct wjob *j)
{
	if (j->state == JS_ADMIT && j->v.outcome == OUT_RESTARTED) {
		log_debug("Saved msg_id=%s instance=%s host=%s attempt=%" PRIu32,
		    j->p.msg_id, j->p.instance, j->p.host, j->v.attempts);
		j->state = JS_RUNNING;
		j->started = clock_now_us();
		TAILQ_INSERT_TAIL(&w->running, j, link);
		if (w->dry_run) {
			char cmd[1024];
			size_t n;

			restart_describe(&w->rs, j->p.host, cmd, sizeof(cmd));
			if (w->check_rs.argv != NULL &&
			    (n = strlen(cmd)) + 16 < sizeof(cmd)) {
				snprintf(cmd + n, sizeof(cmd) - n, "; then check: ");
				n = strlen(cmd);
				restart_describe(&w->check_rs, j->p.host, cmd + n,
				    sizeof(cmd) - n);
			}
			log_info("Dry run: would run: %s", cmd);
			j->v.dry_run = 1;
			j->run.rs = &w->rs;
			restart_done(&j->run, 0, NULL, cmd);
			return;
		}
		if (grant_ended(w, j)) {
			/*
			 * Its grant ended before it could start (the answer
			 * came late: mandrilld was stopped, or the commit
			 * slow): another instance may have the host now.
			 */
			j->run.rs = &w->rs;
			restart_done(&j->run, -1, "fenced: its fleet grant ended "
			    "before the restart could start", NULL);
			return;
		}
		restart_start(&w->rs, &j->run, j->p.host, restart_done);
		announce_started(w, j);
		fence_arm(w, j);
		return;
	}
	log_verdict(w, j);
	send_done(w, j);
}

/* The transaction failed: nothing of it happened. */
static void
unwind(struct worker *w, struct wjob_list *batch, const char *why)
{
	struct wjob *j;

	while ((j = TAILQ_FIRST(batch)) != NULL) {
		TAILQ_REMOVE(batch, j, link);
		if (j->state == JS_FINISH) {
			/* The restart happened; keep its outcome until recorded. */
			j->v.outcome = j->exit_status == 0 ? OUT_RESTARTED :
			    OUT_FAILED;
			if (!j->unsaved) {
				j->unsaved = 1;
				w->unsaved++;
			}
			TAILQ_INSERT_TAIL(&w->blocked, j, link);
			continue;
		}
		j->v.outcome = OUT_ERROR;
		j->v.hold = HOLD_STORE;
		snprintf(j->v.error, sizeof(j->v.error), "store: %.200s", why);
		log_verdict(w, j);
		send_done(w, j);
	}
	if (!TAILQ_EMPTY(&w->blocked) && !ev_is_active(&w->retry)) {
		ev_timer_set(&w->retry, RETRY_SECONDS, 0.);
		ev_timer_start(w->loop, &w->retry);
	}
}

/*
 * One log line per change of the store's state, not one per message or
 * per transaction: a full disk must not fill the log as well.
 */
static void
store_health(struct worker *w, const char *why)
{
	if (why == NULL) {
		if (w->store_bad[0] != '\0')
			log_info("store: commits again, after %" PRIu64
			    " failed transactions", w->failed_commits);
		w->store_bad[0] = '\0';
		w->failed_commits = 0;
		return;
	}
	w->failed_commits++;
	if (strcmp(w->store_bad, why) != 0)
		log_err("store: cannot commit: %s; holding what it cannot "
		    "record, and retrying", why);
	else	/* a retry: its wait for the lock is no news either */
		loopwatch_quiet(&w->watch);
	snprintf(w->store_bad, sizeof(w->store_bad), "%s", why);
}

/*
 * The window for this batch's admissions: judged again at each minute
 * (the window's grain) and when it opens, else read from the last one.
 */
static void
judge_window(struct worker *w)
{
	int64_t now = clock_wall(), opens;

	if (w->window.n == 0)
		return;
	/* A step of the wall clock back is judged again at once too. */
	if (now >= w->window_recheck || now < w->window_judged) {
		w->window_judged = now;
		if (window_open_at(&w->window, (time_t)(now / 1000), &opens))
			w->window_opens_at = 0;
		else
			w->window_opens_at = opens < 0 ? -1 :
			    (now / 1000 + opens) * 1000;
		w->window_recheck = now - now % 60000 + 60000;
		if (w->window_opens_at > 0 && w->window_opens_at < w->window_recheck)
			w->window_recheck = w->window_opens_at;
	}
	if (w->window_opens_at <= 0)
		w->rules.window_opens = w->window_opens_at;
	else if ((w->rules.window_opens = w->window_opens_at - now) <= 0)
		w->rules.window_opens = 1;
}

/* One transaction over everything waiting; then act on it. */
static void
commit_batch(struct worker *w)
{
	struct wjob_list batch = TAILQ_HEAD_INITIALIZER(batch);
	struct wjob *j;
	char why[256];

	TAILQ_CONCAT(&batch, &w->todo, link);
	judge_window(w);
	if (store_begin(w->store) < 0)
		goto fail;
	TAILQ_FOREACH(j, &batch, link)
		if (apply(w, j) < 0)
			goto fail;
	if (store_commit(w->store) < 0)
		goto fail;
	w->commits++;
	store_health(w, NULL);
	while ((j = TAILQ_FIRST(&batch)) != NULL) {
		TAILQ_REMOVE(&batch, j, link);
		w->changes++;
		if (j->unsaved) {
			j->unsaved = 0;
			w->unsaved--;
		}
		settle(w, j);
	}
	send_state(w);
	return;
fail:
	snprintf(why, sizeof(why), "%s", store_errmsg(w->store));
	store_rollback(w->store);
	store_health(w, why);
	unwind(w, &batch, why);
	send_state(w);
}

/*
 * Group commit, once per loop iteration.  Outcomes of restarts that end
 * at once (settle() may finish a simulated restart, a dry run or a spawn
 * error synchronously) wait for the next iteration's commit and ride
 * with the jobs that came in meanwhile: one transaction, one fsync, per
 * iteration.  The idle watcher keeps the loop from sleeping until then.
 */
static void
commit_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct worker *w = p->data;

	ev_prepare_stop(loop, p);
	loopwatch_note(&w->watch, "the group commit");
	if (!TAILQ_EMPTY(&w->todo))
		commit_batch(w);
	if (!TAILQ_EMPTY(&w->todo))
		ev_idle_start(loop, &w->nudge);
	if (w->chan != NULL)
		chan_flush(w->chan);
	maybe_exit(w);
}

static void
nudge_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
	ev_idle_stop(loop, i);
}

static void
schedule_commit(struct worker *w)
{
	if (!ev_is_active(&w->committer))
		ev_prepare_start(w->loop, &w->committer);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	TAILQ_CONCAT(&w->todo, &w->blocked, link);
	schedule_commit(w);
}

static void
maybe_exit(struct worker *w)
{
	if (w->draining && w->njobs == 0) {
		/* Committed outcomes are reported before the process goes. */
		if (w->chan != NULL && chan_pending(w->chan) > 0 &&
		    chan_flush_wait(w->chan, EXIT_FLUSH_MS) < 0)
			log_err("could not report every outcome before exiting; "
			    "they are recorded and will be found on redelivery");
		log_info("no jobs left, exiting; %" PRIu64 " changes recorded "
		    "in %" PRIu64 " transactions", w->changes, w->commits);
		ev_break(w->loop, EVBREAK_ALL);
	}
}

static void
begin_drain(struct worker *w, const char *why)
{
	if (!w->draining)
		log_info("draining (%s), %" PRIu32 " jobs left", why,
		    w->njobs);
	w->draining = 1;
	maybe_exit(w);
}

static int
copy_pstr(char *dst, size_t size, const struct pstr *s)
{
	if (s->len >= size)
		return -1;
	memcpy(dst, s->p, s->len);
	dst[s->len] = '\0';
	return 0;
}

/*
 * A reader that holds a transaction open (a forgotten BEGIN in the
 * sqlite3 CLI, a long .dump) keeps every checkpoint from finishing, and
 * the WAL grows while it lasts.  Said once per change, and to the
 * supervisor for the metrics; the WAL is truncated once the reader is
 * gone.
 */
static void
watch_wal(struct worker *w)
{
	int64_t wal = store_wal_bytes(w->store);
	int starved = wal > store_wal_limit(w->store) &&
	    store_checkpoint_starved(w->store);

	if (starved != w->wal_starved) {
		if (starved)
			log_warn("store: the WAL is %" PRId64 " MB and a reader "
			    "keeps the checkpoint from finishing; end that "
			    "transaction (see mandrilld(8), FILES)",
			    wal / (1024 * 1024));
		else
			log_info("store: checkpoints finish again (WAL %" PRId64
			    " MB)", wal / (1024 * 1024));
		w->wal_starved = starved;
	}
	if (w->chan != NULL && (wal / (1024 * 1024) != w->wal / (1024 * 1024) ||
	    starved != w->wal_starved_sent)) {
		w->wal = wal;
		w->wal_starved_sent = starved;
		proto_pack_state(chan_packer(w->chan), w->unsaved, w->store_bad,
		    (uint64_t)wal);
		w->sent++;
	}
}

static void
heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	watch_wal(w);
	if (w->chan != NULL && w->sent == w->sent_at_tick) {
		proto_pack_heartbeat(chan_packer(w->chan));
		w->sent++;
	}
	w->sent_at_tick = w->sent;
}

/*
 * retain: worker 1 deletes old finished rows, a small batch per
 * transaction, each its own turn at the write lock between the group
 * commits, so that writes wait for one batch at most.  While batches
 * find rows it goes on at once; when none are left it looks again a
 * minute later.
 */
#define PRUNE_BATCH	500
#define PRUNE_IDLE	60.0
#define PRUNE_BUSY	0.05

static void
prune_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;
	char d[32];
	int n = 0;

	if (!w->draining && w->store_bad[0] == '\0' &&
	    (n = store_prune(w->store, w->retain, PRUNE_BATCH,
	    &w->pruned)) < 0)
		log_warn("retain: pruning failed: %s; trying again in a minute",
		    store_errmsg(w->store));
	if (n <= 0 && w->pruned > 0) {
		log_info("retain: pruned %" PRIu64 " finished rows older than %s",
		    w->pruned, duration_fmt(w->retain, d, sizeof(d)));
		w->pruned = 0;
	}
	ev_timer_set(t, n > 0 ? PRUNE_BUSY : PRUNE_IDLE, 0.);
	ev_timer_start(loop, t);
}

/*
 * Waiting for the database lock held by another worker: still alive.
 * Only a heartbeat is queued and written here; what the supervisor may
 * say back waits for the loop.
 */
static void
waiting_alive(void *arg)
{
	struct worker *w = arg;

	if (w->chan == NULL)
		return;
	proto_pack_heartbeat(chan_packer(w->chan));
	w->sent++;
	chan_flush(w->chan);
}

/*
 * Started as root with [mandrill] user set: become that user, with its
 * groups, before opening the database or running anything.
 */
static int
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user[0] == '\0')
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_err("user %s: no such user", user);
		return -1;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return 0;
		log_err("user %s: cannot become that user without root", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_err("user %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {		/* must not be able to go back */
		log_err("user %s: privileges could be regained", user);
		return -1;
	}
	log_debug("running as %s (uid %d)", user, (int)pw->pw_uid);
	return 0;
}

/* The index of s among n words, or -1. */
static int
word_index(const struct pstr *s, const char *const *words, int n)
{
	for (int i = 0; i < n; i++)
		if (strlen(words[i]) == s->len &&
		    memcmp(words[i], s->p, s->len) == 0)
			return i;
	return -1;
}

/* The window, its zone and the group regex; -1 if one is bad. */
static int
take_rollout(struct worker *w, const struct worker_settings *ws)
{
	char text[PROTO_PATH_MAX], zone[256], err[256] = "too long";

	if (copy_pstr(text, sizeof(text), &ws->window) < 0 ||
	    window_parse(text, &w->window, err, sizeof(err)) < 0) {
		log_err("welcome frame: window: %s", err);
		return -1;
	}
	if (copy_pstr(zone, sizeof(zone), &ws->timezone) < 0 ||
	    window_zone_check(zone, err, sizeof(err)) < 0) {
		log_err("welcome frame: timezone: %s", err);
		return -1;
	}
	window_zone_use(zone);
	/* For the reasons held messages give: the window and its zone. */
	snprintf(w->rules.window, sizeof(w->rules.window), "%.86s%s%.40s",
	    text, zone[0] ? " " : "", zone);
	if (copy_pstr(text, sizeof(text), &ws->group) < 0 ||
	    conf_group_regex(text, &w->group_re, err, sizeof(err)) < 0) {
		log_err("welcome frame: group: %s", err);
		return -1;
	}
	w->has_group_re = text[0] != '\0';
	return 0;
}

/* Take the settings of a welcome frame; -1 if any is out of range. */
static int
take_settings(struct worker *w, const struct worker_settings *ws)
{
	static const char *const modes[] = { "sim", "command" };
	static const char *const syncs[] = { "off", "normal", "full" };
	static const char *const formats[] = { "text", "json" };

	w->mode = word_index(&ws->mode, modes, 2);
	w->fleet = ws->coordination.len == 4 &&
	    memcmp(ws->coordination.p, "nats", 4) == 0;
	w->fleet_lease = ws->fleet_lease;
	w->synchronous = word_index(&ws->synchronous, syncs, 3);
	w->log_format = word_index(&ws->log_format, formats, 2);
	if (copy_pstr(w->state_dir, sizeof(w->state_dir), &ws->state_dir) ||
	    copy_pstr(w->domain, sizeof(w->domain), &ws->domain) ||
	    copy_pstr(w->allow, sizeof(w->allow), &ws->allow) ||
	    copy_pstr(w->deny, sizeof(w->deny), &ws->deny) ||
	    copy_pstr(w->log_file, sizeof(w->log_file), &ws->log_file) ||
	    copy_pstr(w->command, sizeof(w->command), &ws->command) ||
	    copy_pstr(w->user, sizeof(w->user), &ws->user) ||
	    ws->max_jobs == 0 || w->synchronous < 0 || w->mode < 0 ||
	    w->log_format < 0 ||
	    ws->log_level > LOG_ERR ||
	    ws->max_attempts == 0 || ws->heartbeat <= 0) {
		log_err("welcome frame has settings out of range");
		return -1;
	}
	w->slot = ws->slot;
	w->max_jobs = ws->max_jobs;
	w->rules.max_attempts = ws->max_attempts;
	w->rules.max_crashes = ws->max_crashes;
	w->rules.min_interval = ws->min_interval;
	w->rules.enabled = ws->enabled != 0;
	snprintf(w->rules.pause_reason, sizeof(w->rules.pause_reason), "%.*s",
	    (int)ws->pause_reason.len, ws->pause_reason.p);
	w->rules.max_concurrent = ws->max_concurrent;
	w->rules.max_per_minute = ws->max_per_minute;
	w->rules.max_per_group = ws->max_concurrent_per_group;
	w->dry_run = ws->dry_run != 0;
	w->check_timeout = ws->check_timeout;
	w->check_interval = ws->check_interval;
	return take_rollout(w, ws);
}

/* Logging as "worker N", on our own descriptor (so a reopen reaches us). */
static void
setup_log(struct worker *w, const struct worker_settings *ws)
{
	char ident[32];

	log_set_level((enum log_level)ws->log_level);
	log_set_json(w->log_format == 1);
	snprintf(ident, sizeof(ident), "worker %" PRIu32, ws->slot);
	log_init(ident);
	if (log_open(w->log_file) < 0)
		log_err("log_file %s: %s; logging to stderr", w->log_file,
		    log_open_error(errno));
}

/* Become the configured user, then open the database as that user. */
static int
open_store(struct worker *w, const struct worker_settings *ws)
{
	struct store_opts so;
	char err[512];

	if (drop_privileges(w->user) < 0)
		return -1;
	if (store_owner_self(w->owner, sizeof(w->owner)) < 0) {
		log_err("cannot read this process's start time in /proc; "
		    "refusing to run without a way to tell live owners");
		return -1;
	}
	so.db_dev = ws->db_dev;
	so.wal_limit = ws->wal_limit;
	so.db_ino = ws->db_ino;
	so.state_dir = w->state_dir;
	so.synchronous = w->synchronous;
	so.busy_timeout = ws->busy_timeout;
	so.owner = w->owner;
	so.alive = waiting_alive;
	so.alive_arg = w;
	so.alive_interval = ws->heartbeat;
	if ((w->store = store_open(&so, err, sizeof(err))) == NULL) {
		log_err("%s", err);
		return -1;
	}
	return 0;
}

static int
welcome(struct worker *w, const struct proto_msg *m)
{
	const struct worker_settings *ws = &m->ws;
	uint64_t dev, ino;
	char **argv = NULL;
	char err[512];

	if (m->v != PROTO_VERSION) {
		log_err("protocol version %" PRIu32 ", expected %d",
		    m->v, PROTO_VERSION);
		return -1;
	}
	if (take_settings(w, ws) < 0)
		return -1;
	setup_log(w, ws);
	if (w->mode == RS_COMMAND &&
	    (argv = argv_split(w->command, err, sizeof(err))) == NULL) {
		log_err("command: %s", err);
		return -1;
	}
	if (open_store(w, ws) < 0) {
		argv_free(argv);
		return -1;
	}
	restart_init(&w->rs, w->loop, w->mode, ws->sim_latency_min,
	    ws->sim_latency_max, ws->sim_failure_rate,
	    ws->sim_seed ? ws->sim_seed + ws->slot : 0, ws->restart_timeout,
	    argv);
	argv = NULL;
	if (ws->check.len > 0) {
		char tmpl[PROTO_PATH_MAX];

		snprintf(err, sizeof(err), "too long");
		if (copy_pstr(tmpl, sizeof(tmpl), &ws->check) < 0 ||
		    (argv = argv_split(tmpl, err, sizeof(err))) == NULL) {
			log_err("check: %s", err);
			return -1;
		}
	}
	restart_init(&w->check_rs, w->loop, RS_COMMAND, 0, 0, 0, 0,
	    ws->check_timeout, argv);
	/* Its runs' MANDRILL_RUN markers must not be the restarts'. */
	w->check_rs.runs = UINT64_C(1) << 62;
	loopwatch_init(&w->watch, w->loop, ws->slow_iteration);
	ev_timer_init(&w->heartbeat, heartbeat_cb, ws->heartbeat / 1000.0,
	    ws->heartbeat / 1000.0);
	w->heartbeat.data = w;
	ev_timer_start(w->loop, &w->heartbeat);
	w->retain = ws->retain;
	if (w->retain > 0 && ws->slot == 1) {
		/* Not in the first seconds: the backlog comes first. */
		ev_timer_init(&w->pruner, prune_cb, 5., 0.);
		w->pruner.data = w;
		ev_timer_start(w->loop, &w->pruner);
	}
	w->welcomed = 1;
	store_identity(w->store, &dev, &ino);
	proto_pack_ready(chan_packer(w->chan), (uint32_t)getpid(), w->max_jobs,
	    dev, ino);
	w->sent++;
	log_debug("ready, generation %" PRIu32 ", %" PRIu32 " jobs",
	    ws->gen, w->max_jobs);
	return 0;
}

/* Validate the payload now; the database decides in the next commit. */
static void
job_accept(struct worker *w, const struct proto_msg *m)
{
	struct wjob *j = calloc(1, sizeof(*j));
	const char *why;
	char err[256];

	if (j == NULL || (m->data.len > 0 &&
	    (j->payload = malloc(m->data.len)) == NULL)) {
		log_err("out of memory for job %" PRIu64, m->id);
		free(j);
		if (w->chan) {	/* tell the supervisor: held, not lost */
			struct proto_done d = { m->id, OUT_ERROR,
			    "worker out of memory", 0, 0, NULL, HOLD_STORE, 0 };

			proto_pack_done(chan_packer(w->chan), &d);
			w->sent++;
		}
		return;
	}
	j->w = w;
	ev_timer_init(&j->check_timer, check_again, 0., 0.);
	j->check_timer.data = j;
	ev_timer_init(&j->fence_timer, fence_cb, 0., 0.);
	j->fence_timer.data = j;
	j->id = m->id;
	j->delivery = m->attempt;
	j->crashes = m->crashes;
	j->lost_at = m->lost_at;
	j->retry_of = m->retry_of;
	/* Jobs sent before a TERM drain still run; none after SIGQUIT. */
	j->refused = w->draining || w->quitting;
	copy_pstr(j->broker_id, sizeof(j->broker_id), &m->msg_id);
	if (copy_pstr(j->bury, sizeof(j->bury), &m->bury) < 0)
		snprintf(j->bury, sizeof(j->bury), "%.*s",
		    (int)(sizeof(j->bury) - 1), m->bury.p);
	if (m->data.len > 0)
		memcpy(j->payload, m->data.p, m->data.len);
	j->payload_len = m->data.len;
	w->njobs++;
	j->state = JS_ADMIT;
	if (payload_parse(m->data.p, m->data.len, m->size, w->domain, &j->p,
	    err, sizeof(err)) < 0)
		j->state = JS_INVALID;
	else if (!hostname_allowed(j->p.host, w->allow, w->deny, &why)) {
		snprintf(err, sizeof(err), "%s: %s", why, j->p.host);
		j->state = JS_INVALID;
	}
	if (j->state != JS_INVALID && j->p.group[0] == '\0' && w->has_group_re)
		conf_group_of(&w->group_re, j->p.host, j->p.group,
		    sizeof(j->p.group));
	if (j->state == JS_INVALID)
		snprintf(j->v.error, sizeof(j->v.error), "%s", err);
	else
		log_debug("Received msg_id=%s instance=%s", j->p.msg_id,
		    j->p.instance);
	if (j->state == JS_ADMIT && w->fleet && j->bury[0] == '\0' &&
	    !j->refused && w->chan != NULL) {
		ask_grant(w, j);
		return;
	}
	TAILQ_INSERT_TAIL(&w->todo, j, link);
	schedule_commit(w);
}

/*
 * Fleet mode: before its admission, a restart asks the supervisor for
 * the fleet's grant (the host, a slot, a rate token, the msg_id), and
 * waits on the granting list for the answer.
 */
static void
ask_grant(struct worker *w, struct wjob *j)
{
	struct proto_grant g = { j->id, j->p.msg_id[0] ? j->p.msg_id :
	    j->broker_id, j->p.host, j->p.group };

	j->state = JS_GRANT;
	TAILQ_INSERT_TAIL(&w->granting, j, link);
	proto_pack_grant(chan_packer(w->chan), &g);
	w->sent++;
}

/* Answer to a grant, or the renewal of one: until moves on. */
static void
on_granted(struct worker *w, const struct proto_msg *m)
{
	struct wjob *j;

	TAILQ_FOREACH(j, &w->running, link)
		if (j->id == m->id) {
			if (m->outcome == OUT_RESTARTED && m->until > j->grant_until) {
				j->grant_until = m->until;
				fence_arm(w, j);
			}
			return;
		}
	TAILQ_FOREACH(j, &w->todo, link)	/* granted, its commit to come */
		if (j->id == m->id && j->state == JS_ADMIT && j->grant_until > 0) {
			if (m->outcome == OUT_RESTARTED && m->until > j->grant_until)
				j->grant_until = m->until;
			return;
		}
	TAILQ_FOREACH(j, &w->granting, link)
		if (j->id == m->id)
			break;
	if (j == NULL) {
		log_debug("granted for job %" PRIu64 ": not waiting for one",
		    m->id);
		return;
	}
	TAILQ_REMOVE(&w->granting, j, link);
	copy_pstr(j->v.error, sizeof(j->v.error), &m->error);
	switch (m->outcome) {
	case OUT_RESTARTED:
		j->grant_until = m->until;
		if (grant_ended(w, j)) {
			/* Late: nothing is recorded, the message waits. */
			j->grant_until = 0;
			j->v.outcome = OUT_HELD;
			j->v.hold = HOLD_FLEET;
			j->v.retry = 1000;
			snprintf(j->v.error, sizeof(j->v.error), "its fleet "
			    "grant had ended when it came");
			log_verdict(w, j);
			send_done(w, j);
			maybe_exit(w);
			return;
		}
		j->state = JS_ADMIT;
		break;
	case OUT_SKIPPED: case OUT_DUPLICATE: case OUT_INVALID:
		j->v.outcome = m->outcome;
		j->state = JS_SETTLE;
		break;
	default:
		j->v.outcome = OUT_HELD;
		j->v.hold = m->outcome == OUT_HELD ? m->hold : HOLD_FLEET;
		j->v.retry = m->retry;
		log_verdict(w, j);
		send_done(w, j);
		maybe_exit(w);
		return;
	}
	TAILQ_INSERT_TAIL(&w->todo, j, link);
	schedule_commit(w);
}

/* No answer will come: the supervisor is gone. */
static void
forget_grants(struct worker *w)
{
	struct wjob *j;

	while ((j = TAILQ_FIRST(&w->granting)) != NULL) {
		TAILQ_REMOVE(&w->granting, j, link);
		j->v.outcome = OUT_HELD;
		j->v.hold = HOLD_FLEET;
		snprintf(j->v.error, sizeof(j->v.error), "the supervisor went "
		    "away before its fleet grant came");
		send_done(w, j);
	}
}

/*
 * The supervisor lost the message's lease (max_lease, or the broker took
 * it back): stop a running restart, which is recorded as a failed
 * attempt, or do not start one that is waiting for its commit.
 */
static void
job_cancel(struct worker *w, uint64_t id)
{
	struct wjob *j;

	TAILQ_FOREACH(j, &w->running, link)
		if (j->id == id) {
			log_warn("Cancelling restart host=%s msg_id=%s: lease "
			    "lost", j->p.host, j->p.msg_id);
			restart_cancel(&j->run);
			restart_done(&j->run, -1, "cancelled: the message's "
			    "lease was lost", NULL);
			return;
		}
	TAILQ_FOREACH(j, &w->todo, link)
		if (j->id == id && j->state == JS_ADMIT) {
			j->cancelled = 1;
			return;
		}
	TAILQ_FOREACH(j, &w->granting, link)
		if (j->id == id) {
			j->cancelled = 1;	/* whatever the answer */
			return;
		}
	log_debug("cancel of job %" PRIu64 ": nothing running", id);
}

static int
on_frame(struct chan *c, const struct proto_msg *m, void *arg)
{
	struct worker *w = arg;

	if (!w->welcomed && m->type != P_WELCOME) {
		log_err("first frame is not welcome");
		goto fatal;
	}
	switch (m->type) {
	case P_WELCOME:
		if (w->welcomed) {
			log_err("second welcome frame");
			goto fatal;
		}
		if (welcome(w, m) < 0)
			goto fatal;
		return 0;
	case P_JOB:
		if (w->njobs >= w->max_jobs)
			log_warn("job %" PRIu64 " beyond max_jobs %"
			    PRIu32, m->id, w->max_jobs);
		job_accept(w, m);
		return 0;
	case P_DRAIN:
		begin_drain(w, "asked by the supervisor");
		return 0;
	case P_REOPEN:
		if (log_reopen() < 0)
			log_err("reopen %s: %s", w->log_file,
			    log_open_error(errno));
		return 0;
	case P_CANCEL:
		job_cancel(w, m->id);
		return 0;
	case P_GRANTED:
		on_granted(w, m);
		return 0;
	default:
		log_err("unexpected frame type from the supervisor");
		goto fatal;
	}
fatal:
	w->exit_code = 70;
	chan_free(w->chan);
	w->chan = NULL;
	forget_grants(w);
	begin_drain(w, "protocol error");
	return -1;
}

static void
on_close(struct chan *c, const char *why, void *arg)
{
	struct worker *w = arg;

	if (strcmp(why, "end of file") == 0)
		log_info("supervisor closed the socket");
	else {
		log_err("supervisor socket: %s", why);
		w->exit_code = 70;
	}
	chan_free(w->chan);
	w->chan = NULL;
	forget_grants(w);
	begin_drain(w, "supervisor gone");
}

static void
signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct worker *w = s->data;
	struct wjob *j;

	if (s->signum == SIGTERM) {
		begin_drain(w, "SIGTERM");
		return;
	}
	/*
	 * SIGQUIT: stop running restarts now, record them failed, exit;
	 * jobs read but not yet committed are refused by apply().
	 */
	w->quitting = 1;
	while ((j = TAILQ_FIRST(&w->running)) != NULL) {
		restart_cancel(&j->run);
		restart_done(&j->run, -1, "worker stopped by SIGQUIT", NULL);
	}
	begin_drain(w, "SIGQUIT");
}

int
worker_init(struct worker *w, struct ev_loop *loop, int fd)
{
	memset(w, 0, sizeof(*w));
	w->loop = loop;
	TAILQ_INIT(&w->todo);
	TAILQ_INIT(&w->blocked);
	TAILQ_INIT(&w->running);
	TAILQ_INIT(&w->granting);
	ev_prepare_init(&w->committer, commit_cb);
	w->committer.data = w;
	ev_idle_init(&w->nudge, nudge_cb);
	ev_timer_init(&w->retry, retry_cb, RETRY_SECONDS, 0.);
	w->retry.data = w;
	ev_signal_init(&w->sigterm, signal_cb, SIGTERM);
	ev_signal_init(&w->sigquit, signal_cb, SIGQUIT);
	w->sigterm.data = w->sigquit.data = w;
	ev_signal_start(loop, &w->sigterm);
	ev_signal_start(loop, &w->sigquit);
	w->chan = chan_new(loop, fd, on_frame, on_close, w);
	return w->chan != NULL ? 0 : -1;
}

void
worker_cleanup(struct worker *w)
{
	struct wjob *j;

	while ((j = TAILQ_FIRST(&w->todo)) != NULL) {
		TAILQ_REMOVE(&w->todo, j, link);
		job_free(j);
	}
	while ((j = TAILQ_FIRST(&w->blocked)) != NULL) {
		TAILQ_REMOVE(&w->blocked, j, link);
		job_free(j);
	}
	while ((j = TAILQ_FIRST(&w->granting)) != NULL) {
		TAILQ_REMOVE(&w->granting, j, link);
		job_free(j);
	}
	while ((j = TAILQ_FIRST(&w->running)) != NULL) {
		TAILQ_REMOVE(&w->running, j, link);
		restart_cancel(&j->run);
		job_free(j);
	}
	if (w->chan != NULL)
		chan_free(w->chan);
	store_close(w->store);
	restart_free(&w->rs);
	restart_free(&w->check_rs);
	if (w->has_group_re)
		regfree(&w->group_re);
	if (w->welcomed)
		loopwatch_stop(&w->watch);
}
