/*
 * dispatch: pull messages, hand them to workers, act on outcomes.
 *
 * Flow control: the supervisor asks the source for at most
 * min(batch, max_in_flight - in_flight, free worker room - waiting), so
 * nothing is pulled while the pool is full and no queue grows without
 * bound; held messages count in flight.  Nothing is pulled while paused
 * or while a worker's store cannot commit.  A job goes to the
 * least-loaded ready worker of the active generation.  A done frame
 * maps the worker's outcome to a broker action (DESIGN.md's outcome
 * table); the worker sends it only after it has committed the outcome,
 * so an ack here always follows the commit.  A message that must wait
 * (held, a store error, a worker lost under it) is not given back: it
 * keeps its lease and waits in hold.c until it is offered again.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "outcome.h"
#include "clock.h"
#include "duration.h"
#include "log.h"
#include "dispatch.h"
#include "job.h"
#include "pgroup.h"

static void hold_offer(void *arg, struct hold_node *n);

/* A done frame, kept while the fleet records what it says. */
struct parked {
	enum outcome	 outcome;
	uint32_t	 attempt;
	enum hold	 hold;
	int64_t		 retry;
	int		 old_gen;	/* from a worker of an older generation */
	uint64_t	 duration;	/* us, the restart's run */
	char		 host[256];
	char		 error[PROTO_ERR_MAX + 1];
};

static int
lease_extend(void *arg, struct lease *l, int64_t ms)
{
	struct dispatch *s = arg;
	struct job *j = (struct job *)l;
	char a[32];

	if (s->src->ops->extend(s->src, j->d, ms) < 0)
		return -1;
	log_debug("Extended deadline msg_id=%s by %s", j->d->id,
	    duration_fmt(ms, a, sizeof(a)));
	return 0;
}

static void
lease_lost(void *arg, struct lease *l, const char *why)
{
	struct dispatch *s = arg;
	struct job *j = (struct job *)l;

	s->n.lost++;
	log_warn("Lease lost msg_id=%s: %s; the broker will redeliver it",
	    j->d->id, why);
	if (j->wp == NULL) {		/* waiting or held: give it back */
		job_give_back(s, j);
		return;
	}
	/* Stop the work; the worker records it and reports as usual. */
	if (j->wp->chan != NULL)
		proto_pack_cancel(chan_packer(j->wp->chan), j->id);
}

void
dispatch_init(struct dispatch *s, struct ev_loop *loop,
    const struct conf *c, struct source *src, struct pool *pool,
    struct loopwatch *watch, const struct dispatch_cb *cb)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->conf = c;
	s->src = src;
	s->pool = pool;
	s->watch = watch;
	s->cb = *cb;
	s->running = 1;
	rng_seed(&s->rng, 0);
	lease_table_init(&s->leases, s->loop, s->src->ack_deadline,
	    s->conf->max_lease, lease_extend, lease_lost, s);
	TAILQ_INIT(&s->waiting);
	hold_init(&s->holds, s->loop, &s->rng, hold_offer, s);
	s->holds.max_delay = c->max_lease / 2;
	job_table_init(s);
	if (c->instance[0] != '\0')
		snprintf(s->instance, sizeof(s->instance), "%s", c->instance);
	else if (gethostname(s->instance, sizeof(s->instance) - 1) < 0)
		snprintf(s->instance, sizeof(s->instance), "unnamed");
}

void
dispatch_stop(struct dispatch *s)
{
	s->running = 0;
}

void
dispatch_reload(struct dispatch *s)
{
	s->leases.window = s->src->ack_deadline;
	s->leases.max_lease = s->conf->max_lease;
	s->holds.max_delay = s->conf->max_lease / 2;
	/* Held messages meet the new rules when its generation takes over. */
	if (!s->conf->enabled)	/* nothing more may come of earlier pulls */
		s->src->ops->unpull(s->src);
	dispatch_pull(s);	/* a resume pulls again */
}

void
dispatch_free(struct dispatch *s)
{
	job_table_free(s);
	lease_table_free(&s->leases);
	hold_free(&s->holds);
}

void
dispatch_pull(struct dispatch *s)
{
	unsigned wanted, room, n;

	if (!s->running || s->in_flight >= s->conf->max_in_flight)
		return;		/* a reload may have lowered the cap */
	if (!s->conf->enabled || s->store_bad > 0)
		return;		/* paused, or nothing could be recorded */
	wanted = s->src->ops->wanted(s->src);
	room = pool_room(s->pool);
	n = s->conf->max_in_flight - s->in_flight;
	if (room < n)
		n = room;
	if (n <= s->nwaiting + wanted)
		return;
	n -= s->nwaiting + wanted;
	if (n > s->conf->batch)
		n = s->conf->batch;
	/* Ask in batches: a trickle of 1-message pulls wastes round trips. */
	if (n < s->conf->batch && wanted > 0)
		return;
	s->src->ops->pull(s->src, n);
}

static void
send_job(struct dispatch *s, struct job *j, struct wproc *wp)
{
	char why[64];
	struct proto_job pj = { j->id, j->d->id, strlen(j->d->id), j->d->data,
	    j->d->len, j->d->count, clock_wall() + (j->lease.end - clock_now()),
	    j->d->bury, j->crashes_new, j->lost_at, j->d->retry_of };

	/*
	 * A message that keeps killing workers before any of them could
	 * record it is buried instead: recorded dead, nothing restarted.
	 */
	if (pj.bury == NULL && s->conf->max_crashes > 0 &&
	    j->crashes >= s->conf->max_crashes) {
		snprintf(why, sizeof(why), "%" PRIu32 " workers lost while "
		    "holding it", j->crashes);
		pj.bury = why;
	}
	j->wp = wp;
	j->pgid = 0;	/* this worker's claim, if any, comes in started */
	wp->njobs++;
	TAILQ_INSERT_TAIL(&wp->jobs, j, link);
	proto_pack_job(chan_packer(wp->chan), &pj);
}

void
dispatch_waiting(struct dispatch *s)
{
	struct wproc *wp;
	struct job *j;

	while ((j = TAILQ_FIRST(&s->waiting)) != NULL &&
	    (wp = pool_pick(s->pool)) != NULL) {
		TAILQ_REMOVE(&s->waiting, j, link);
		s->nwaiting--;
		send_job(s, j, wp);
	}
}

/* A held message is due: back to the waiting list, with a fresh limit. */
static void
hold_offer(void *arg, struct hold_node *n)
{
	struct dispatch *s = arg;
	struct job *j = (struct job *)((char *)n - offsetof(struct job, hold));

	lease_renew_limit(&j->lease, clock_now());
	TAILQ_INSERT_TAIL(&s->waiting, j, link);
	s->nwaiting++;
	dispatch_waiting(s);
}

/*
 * The job waits for its reason, keeping its lease; key is its host.  If
 * even that fails (out of memory) it goes back to the broker.
 */
static void
hold_job(struct dispatch *s, struct job *j, enum hold reason,
    const char *key, int64_t retry, const char *why)
{
	/* One line when a message starts waiting or its reason changes. */
	log_msg(j->n_holds++ == 0 || j->hold.reason != reason ? LOG_INFO :
	    LOG_DEBUG, "Held msg_id=%s%s%s (%s): %s", j->d->id,
	    key && *key ? " host=" : "", key ? key : "", hold_name(reason), why);
	job_unlink(s, j);
	s->n.held[reason]++;
	if (hold_add(&s->holds, &j->hold, reason, key, retry, clock_now()) < 0) {
		log_err("dispatch: out of memory holding msg_id=%s; giving it "
		    "back", j->d->id);
		job_give_back(s, j);
	}
}

/* A restart ended: what waited for its host or for a slot may go. */
static void
restart_ended(struct dispatch *s, const char *host)
{
	if (host[0] != '\0')
		hold_wake(&s->holds, HOLD_HOST, host, clock_now());
	hold_wake_one(&s->holds, HOLD_CONCURRENCY, clock_now());
}

void
dispatch_rethink(struct dispatch *s)
{
	for (int r = 0; r < HOLD_COUNT; r++)
		if (r != HOLD_STORE && r != HOLD_CRASH)
			hold_wake(&s->holds, (enum hold)r, NULL, clock_now());
}

void
dispatch_message(struct dispatch *s, struct delivery *d)
{
	struct job *j;

	s->n.pulled++;
	if (d->count > 1)
		s->n.redelivered++;
	/* Draining or stopping: a late delivery goes straight back. */
	if (!s->running || (j = job_new(s, d)) == NULL) {
		if (s->running)
			log_err("dispatch: out of memory; nacking msg_id=%s",
			    d->id);
		job_redeliver(s, d);
		return;
	}
	s->in_flight++;
	j->pulled_us = clock_now_us();
	TAILQ_INSERT_TAIL(&s->waiting, j, link);
	s->nwaiting++;
	if (lease_add(&s->leases, &j->lease, clock_now()) < 0) {
		/* Unextended, it would come back while running: give it back. */
		log_err("dispatch: out of memory; nacking msg_id=%s", d->id);
		job_give_back(s, j);
		return;
	}
	if (d->bury != NULL)
		log_debug("Pulled msg_id=%s delivery=%" PRIu32 " to record as "
		    "dead: %s", d->id, d->count, d->bury);
	else
		log_debug("Pulled msg_id=%s delivery=%" PRIu32, d->id, d->count);
	dispatch_waiting(s);
	/* The last of a pull arrived: ask for more while there is room. */
	if (s->src->ops->wanted(s->src) == 0)
		dispatch_pull(s);
}

/*
 * [source] events_subject: one JSON event per outcome, for a view of
 * the whole fleet: instance, host, msg_id, attempt, outcome, and when it
 * was pulled and settled (and how long its restart ran).
 */
static void
publish_event(struct dispatch *s, const struct job *j, enum outcome o,
    uint32_t attempts, const struct pstr *error, const char *host,
    uint64_t duration_us)
{
	int64_t now = clock_wall();
	int64_t pulled = now - (clock_now_us() - j->pulled_us) / 1000;
	char at[32], from[32];
	json_t *ev;
	char *text;

	if (s->src->ops->event == NULL || s->conf->events_subject[0] == '\0')
		return;
	clock_iso(now, at, sizeof(at));
	clock_iso(pulled, from, sizeof(from));
	ev = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:I, s:s#}",
	    "instance", s->instance, "host", host, "msg_id", j->d->id,
	    "attempt", (int)attempts, "outcome", outcome_name(o),
	    "pulled", from, "at", at, "duration_ms",
	    (json_int_t)(duration_us / 1000), "error",
	    error->p ? error->p : "", error->p ? error->len : 0);
	if (ev == NULL || (text = json_dumps(ev, JSON_COMPACT)) == NULL) {
		json_decref(ev);
		return;
	}
	s->src->ops->event(s->src, text, strlen(text));
	free(text);
	json_decref(ev);
}

/* DESIGN.md's table: what the broker is told for each outcome. */
/* host: the worker's word, "" when it had none. */
static void
settle(struct dispatch *s, struct job *j, enum outcome o,
    uint32_t attempts, const struct pstr *error, const char *host,
    uint64_t duration_us)
{
	const char *hk = host[0] != '\0' ? " host=" : "";
	struct delivery *d = j->d;
	int64_t pulled_us = j->pulled_us;
	char a[32];
	int64_t delay;

	s->n.outcome[o]++;
	if (outcome_action(o) == ACT_HOLD)
		return;		/* on_done holds it */
	publish_event(s, j, o, attempts, error, host, duration_us);
	job_release(s, j);
	if ((o == OUT_DEAD || o == OUT_INVALID) && s->src->ops->dead != NULL) {
		char why[PROTO_ERR_MAX + 1];

		snprintf(why, sizeof(why), "%s: %.*s", outcome_name(o),
		    (int)(error->len > PROTO_ERR_MAX ? PROTO_ERR_MAX : error->len),
		    error->p ? error->p : "");
		s->src->ops->dead(s->src, d, why);
	}
	switch (outcome_action(o)) {
	case ACT_ACK:
		log_info("Done. Acked msg_id=%s outcome=%s%s%s", d->id,
		    outcome_name(o), hk, host);
		s->n.acked++;
		s->src->ops->ack(s->src, d);
		hist_add(&s->n.ack_latency, (uint64_t)(clock_now_us() - pulled_us));
		break;
	case ACT_TERM:
		log_warn("Done. Terminated msg_id=%s outcome=invalid%s%s: %.*s",
		    d->id, hk, host, (int)error->len, error->p);
		s->n.termed++;
		s->src->ops->term(s->src, d, "invalid");
		break;
	case ACT_NACK:
		delay = outcome_delay(o, attempts, s->conf->backoff_min,
		    s->conf->backoff_max, rng_unit(&s->rng));
		log_info("Done. Nacked msg_id=%s outcome=%s%s%s retry in %s%s%.*s",
		    d->id, outcome_name(o), hk, host,
		    duration_fmt(delay, a, sizeof(a)),
		    error->len ? ": " : "", (int)error->len, error->p);
		s->n.nacked++;
		s->src->ops->nack(s->src, d, delay);
		break;
	case ACT_HOLD:
		break;
	}
}

static int
on_ready(struct dispatch *s, struct wproc *wp, const struct proto_msg *m)
{
	int complete;

	if (wp->state != WP_STARTING) {
		log_err("worker %" PRIu32 ": ready frame twice; stopping it",
		    wp->slot);
		return -1;
	}
	if (m->v != PROTO_VERSION) {
		log_err("worker %" PRIu32 ": protocol version %" PRIu32
		    ", expected %d; stopping it", wp->slot, m->v, PROTO_VERSION);
		return -1;
	}
	if (m->max_jobs == 0) {
		log_err("worker %" PRIu32 ": ready with max_jobs 0; stopping it",
		    wp->slot);
		return -1;
	}
	/* The first worker's database: later ones must open the same. */
	if (pool_database(s->pool, m->db_dev, m->db_ino) < 0) {
		log_err("worker %" PRIu32 ": opened another database than "
		    "the first worker; stopping it", wp->slot);
		return -1;
	}
	if ((complete = pool_ready(s->pool, wp, m->max_jobs)) < 0)
		return -1;
	log_info("worker %" PRIu32 " ready, pid %" PRIu32 ", %" PRIu32 " jobs",
	    wp->slot, m->pid, m->max_jobs);
	if (complete)
		s->cb.generation_ready(s->cb.arg);
	return 0;
}

/* The worker's word on its command's group is checked in pgroup.c. */
static int
on_started(struct dispatch *s, struct wproc *wp, const struct proto_msg *m)
{
	struct job *j = job_find(s, m->id);

	if (j != NULL && j->wp == wp)
		pgroup_claim(j, m->pgid);
	return 0;	/* a job already given back is no error */
}

static void done_apply(struct dispatch *s, struct job *j,
    const struct parked *p);

static int
on_done(struct dispatch *s, struct wproc *wp, const struct proto_msg *m)
{
	struct job *j = job_find(s, m->id);
	struct parked p;

	if (j != NULL && j->wp == wp)
		j->pgid = 0;	/* its command has ended */
	if (j == NULL && !s->running) {
		/* Given back at shutdown; the worker recorded it anyway. */
		log_debug("worker %" PRIu32 ": done for job %" PRIu64
		    " already given back", wp->slot, m->id);
		return 0;
	}
	if (j == NULL || j->wp != wp || j->parked != NULL) {
		log_err("worker %" PRIu32 ": done for %s job %" PRIu64
		    "; stopping it", wp->slot, j != NULL && j->wp == wp ?
		    "an already done" : "an unknown", m->id);
		return -1;
	}
	/* The host is the worker's word, used only as a key and in logs. */
	snprintf(p.host, sizeof(p.host), "%.*s", (int)(m->host.len <
	    sizeof(p.host) ? m->host.len : 0), m->host.p ? m->host.p : "");
	snprintf(p.error, sizeof(p.error), "%.*s", (int)m->error.len,
	    m->error.p ? m->error.p : "");
	p.outcome = m->outcome;
	p.attempt = m->attempt;
	p.hold = m->hold;
	p.retry = m->retry;
	p.duration = m->duration;
	p.old_gen = wp->gen != s->pool->active_gen;
	if (m->duration > 0)
		hist_add(&s->n.restart_time, m->duration);
	if (j->grant != NULL) {
		/*
		 * Fleet mode: the outcome goes to the fleet's records first,
		 * and its broker action waits for them (dispatch_finished).
		 */
		int ran = p.outcome == OUT_RESTARTED || p.outcome == OUT_FAILED ||
		    p.outcome == OUT_DEAD;

		if ((j->parked = malloc(sizeof(*j->parked))) == NULL) {
			log_err("dispatch: out of memory keeping the outcome of "
			    "msg_id=%s; it is recorded, and redelivered",
			    j->d->id);
			job_give_back(s, j);
			return 0;
		}
		*j->parked = p;
		fleet_finish(s->fleet, j->grant, ran, p.outcome == OUT_RESTARTED);
		return 0;
	}
	done_apply(s, j, &p);
	return 0;
}

/* What a done frame means for the job, once it may be acted on. */
static void
done_apply(struct dispatch *s, struct job *j, const struct parked *p)
{
	struct pstr error = { p->error, strlen(p->error) };

	if (p->outcome != OUT_ERROR) {
		j->crashes_new = 0;	/* the worker recorded them */
		hold_forget_backoff(&j->hold);
	}
	settle(s, j, p->outcome, p->attempt, &error, p->host, p->duration);
	if (p->outcome == OUT_HELD && !s->running) {
		/*
		 * Draining: it would wait past the drain for a window or a
		 * slot.  Nothing was done for it; back to the broker.
		 */
		log_debug("Nacked msg_id=%s: held (%s) while draining",
		    j->d->id, hold_name(p->hold));
		job_give_back(s, j);
	} else if (p->outcome == OUT_HELD && p->old_gen)
		hold_job(s, j, p->hold, p->host, 1, p->error);	/* old rules: again soon */
	else if (p->outcome == OUT_HELD)
		hold_job(s, j, p->hold, p->host, p->retry, p->error);
	else if (p->outcome == OUT_ERROR)
		hold_job(s, j, HOLD_STORE, p->host, 0, p->error);
	else if (p->outcome == OUT_RESTARTED || p->outcome == OUT_FAILED ||
	    p->outcome == OUT_DEAD || p->outcome == OUT_DRY_RUN) {
		restart_ended(s, p->host);
		if (s->cb.attempt_ended != NULL && p->outcome != OUT_DRY_RUN)
			s->cb.attempt_ended(s->cb.arg, p->outcome);
	}
}

/* The fleet's word on a grant, for the worker that asked. */
static void
send_granted(struct job *j, const struct fleet_answer *a)
{
	struct proto_granted g = { j->id, a->outcome, a->hold, a->retry,
	    a->why, a->until };

	if (j->wp != NULL && j->wp->chan != NULL)
		proto_pack_granted(chan_packer(j->wp->chan), &g);
}

/* A worker asks: may this restart start, fleet-wide? */
static int
on_grant(struct dispatch *s, struct wproc *wp, const struct proto_msg *m)
{
	struct job *j = job_find(s, m->id);
	char msg_id[257], host[254], group[254];
	struct fleet_answer a;

	memset(&a, 0, sizeof(a));
	a.outcome = OUT_HELD;
	a.hold = HOLD_FLEET;
	if (s->fleet == NULL || j == NULL || j->wp != wp || j->grant != NULL ||
	    j->parked != NULL) {
		if (j == NULL && !s->running)
			return 0;	/* given back at shutdown */
		log_err("worker %" PRIu32 ": %s for job %" PRIu64 "; stopping it",
		    wp->slot, s->fleet == NULL ? "grant frame without [fleet] "
		    "coordination" : j == NULL || j->wp != wp ? "grant frame "
		    "for an unknown job" : "second grant frame", m->id);
		return -1;
	}
	if (m->msg_id.len >= sizeof(msg_id) || m->host.len == 0 ||
	    m->host.len >= sizeof(host) || m->group.len >= sizeof(group)) {
		log_err("worker %" PRIu32 ": grant frame with a bad msg_id, "
		    "host or group; stopping it", wp->slot);
		return -1;
	}
	snprintf(msg_id, sizeof(msg_id), "%.*s", (int)m->msg_id.len, m->msg_id.p);
	snprintf(host, sizeof(host), "%.*s", (int)m->host.len, m->host.p);
	snprintf(group, sizeof(group), "%.*s", (int)m->group.len,
	    m->group.p ? m->group.p : "");
	j->grant_asked = clock_now_us();
	if ((j->grant = fleet_grant(s->fleet, j->id, msg_id, host, group)) ==
	    NULL) {
		snprintf(a.why, sizeof(a.why), "fleet: out of memory");
		a.retry = 1000;
		send_granted(j, &a);
	}
	return 0;
}

void
dispatch_granted(struct dispatch *s, uint64_t job, const struct fleet_answer *a)
{
	struct job *j = job_find(s, job);

	if (j == NULL)
		return;
	hist_add(&s->n.grant_time, (uint64_t)(clock_now_us() - j->grant_asked));
	if (a->outcome != OUT_RESTARTED)
		j->grant = NULL;	/* the fleet holds nothing for it */
	log_debug("Fleet %s msg_id=%s%s%s", a->outcome == OUT_RESTARTED ?
	    "granted" : outcome_name(a->outcome), j->d->id,
	    a->why[0] ? ": " : "", a->why);
	send_granted(j, a);
	if (j->wp != NULL && j->wp->chan != NULL)
		chan_flush(j->wp->chan);
}

void
dispatch_renewed(struct dispatch *s, uint64_t job, int64_t until)
{
	struct job *j = job_find(s, job);
	struct fleet_answer a;

	if (j == NULL || j->grant == NULL || j->parked != NULL)
		return;
	memset(&a, 0, sizeof(a));
	a.outcome = OUT_RESTARTED;
	a.until = until;
	send_granted(j, &a);
}

void
dispatch_finished(struct dispatch *s, uint64_t job, int owner)
{
	struct job *j = job_find(s, job);
	struct parked *p;

	if (j == NULL || (p = j->parked) == NULL)
		return;
	j->parked = NULL;
	j->grant = NULL;
	if (!owner && (p->outcome == OUT_RESTARTED || p->outcome == OUT_FAILED ||
	    p->outcome == OUT_DEAD)) {
		/*
		 * Another instance took the message over while this one ran
		 * it (this one was stopped past its grant): its ack or nak
		 * would settle that instance's delivery.  Let go silently.
		 */
		struct delivery *d = j->d;

		struct pstr error = { p->error, strlen(p->error) };

		s->not_owner++;
		log_warn("Not acked msg_id=%s host=%s outcome=%s: another "
		    "instance holds it now (fleet)", d->id, p->host,
		    outcome_name(p->outcome));
		publish_event(s, j, p->outcome, p->attempt, &error, p->host,
		    p->duration);
		job_release(s, j);
		if (s->src->ops->forget != NULL)
			s->src->ops->forget(s->src, d);
		else
			s->src->ops->nack(s->src, d, 0);
		restart_ended(s, p->host);
	} else
		done_apply(s, j, p);
	free(p);
	dispatch_waiting(s);
	dispatch_pull(s);
}

/*
 * A worker's store: while any cannot commit nothing is pulled, and the
 * log says so once per change, not once per message.
 */
static int
on_state(struct dispatch *s, struct wproc *wp, const struct proto_msg *m)
{
	int bad = m->store.len > 0;

	if (bad == wp->store_bad)
		return 0;
	wp->store_bad = bad;
	if (bad && s->store_bad++ == 0) {
		log_err("store cannot commit (worker %" PRIu32 ": %.*s); "
		    "holding messages and pulling none until it can", wp->slot,
		    (int)m->store.len, m->store.p);
		s->src->ops->unpull(s->src);	/* nor what was asked before */
	}
	if (!bad && --s->store_bad == 0) {
		log_info("store commits again; pulling");
		hold_wake(&s->holds, HOLD_STORE, NULL, clock_now());
	}
	return 0;
}

int
dispatch_frame(struct dispatch *s, struct wproc *wp,
    const struct proto_msg *m)
{
	int rc;

	loopwatch_note(s->watch, "frames from workers");
	switch (m->type) {
	case P_READY:
		rc = on_ready(s, wp, m);
		break;
	case P_DONE:
		rc = wp->state == WP_STARTING ? -1 : on_done(s, wp, m);
		break;
	case P_HEARTBEAT:
		return 0;
	case P_STARTED:
		rc = on_started(s, wp, m);
		break;
	case P_STATE:
		rc = on_state(s, wp, m);
		break;
	case P_GRANT:
		rc = wp->state == WP_STARTING ? -1 : on_grant(s, wp, m);
		break;
	default:
		log_err("worker %" PRIu32 ": unexpected frame from a worker; "
		    "stopping it", wp->slot);
		rc = -1;
		break;
	}
	if (rc < 0)
		return -1;	/* the pool closes and kills it */
	dispatch_waiting(s);
	dispatch_pull(s);
	return 0;
}

static unsigned
give_back_list(struct dispatch *s, struct job_list *list)
{
	struct job *j;
	unsigned n = 0;

	while ((j = TAILQ_FIRST(list)) != NULL) {
		pgroup_kill(j);
		job_give_back(s, j);
		n++;
	}
	return n;
}

void
dispatch_nack_all(struct dispatch *s, struct wproc *wp, const char *why)
{
	struct hold_node *hn;
	unsigned n;

	if (wp != NULL)
		n = give_back_list(s, &wp->jobs);
	else {
		n = give_back_list(s, &s->waiting);
		for (int r = 0; r < HOLD_COUNT; r++)
			while ((hn = TAILQ_FIRST(&s->holds.list[r])) != NULL) {
				job_give_back(s, (struct job *)((char *)hn -
				    offsetof(struct job, hold)));
				n++;
			}
	}
	if (n > 0)
		log_warn("Nacked %u in-flight messages for redelivery: %s", n, why);
}

void
dispatch_worker_lost(struct dispatch *s, struct wproc *wp)
{
	struct job *j;
	unsigned n = 0;

	if (wp->store_bad) {	/* its word on the store goes with it */
		wp->store_bad = 0;
		if (--s->store_bad == 0)
			hold_wake(&s->holds, HOLD_STORE, NULL, clock_now());
	}
	if (!s->running) {
		dispatch_nack_all(s, wp, "worker gone");
		return;
	}
	while ((j = TAILQ_FIRST(&wp->jobs)) != NULL) {
		pgroup_kill(j);
		/* Its command's kill is not known to have worked: no release. */
		job_drop_grant(s, j, 1);
		j->crashes++;
		j->crashes_new++;
		j->lost_at = clock_wall();
		hold_job(s, j, HOLD_CRASH, NULL, 0, "its worker was lost");
		n++;
	}
	if (n > 0)
		log_warn("worker %" PRIu32 " lost holding %u messages; each is "
		    "held and offered again after a backoff", wp->slot, n);
}

void
dispatch_nack_running(struct dispatch *s, const char *why)
{
	struct job *j;
	unsigned n = 0;

	for (uint32_t i = 0; i < s->nslots; i++)
		if ((j = s->slots[i])->d != NULL && j->wp != NULL) {
			pgroup_kill(j);
			job_give_back(s, j);
			n++;
		}
	if (n > 0)
		log_warn("Nacked %u in-flight messages for redelivery: %s", n, why);
}

int64_t
dispatch_oldest(const struct dispatch *s, int64_t now)
{
	const struct job *j;
	int64_t oldest = now;

	for (uint32_t i = 0; i < s->nslots; i++)
		if ((j = s->slots[i])->d != NULL && !j->hold.held &&
		    j->lease.start < oldest)
			oldest = j->lease.start;
	return oldest;
}

unsigned
dispatch_commands_running(const struct dispatch *s)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < s->nslots; i++)
		if (s->slots[i]->d != NULL && s->slots[i]->wp != NULL &&
		    s->slots[i]->pgid != 0)
			n++;
	return n;
}

unsigned
dispatch_on_workers(const struct dispatch *s)
{
	unsigned off = s->nwaiting + hold_total(&s->holds);

	return s->in_flight > off ? s->in_flight - off : 0;
}
