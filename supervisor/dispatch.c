/*
 * dispatch: pull messages, hand them to workers, act on outcomes.
 *
 * Flow control: the supervisor asks the source for at most
 * min(batch, max_in_flight - in_flight, free worker room - waiting), so
 * nothing is pulled while the pool is full and no queue grows without
 * bound.  A job goes to the least-loaded ready worker of the current
 * generation.  A done frame maps the worker's outcome to a broker action
 * (DESIGN.md's outcome table); the worker sends it only after it has
 * committed the outcome, so an ack here always follows the commit.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
#include "clock.h"
#include "duration.h"
#include "log.h"
#include "notify.h"
#include "supervisor.h"

#define SLOT_BITS	21	/* job ids: sequence << SLOT_BITS | slot */
#define SLOT_MASK	((UINT64_C(1) << SLOT_BITS) - 1)
#define SLOT_NONE	UINT32_MAX

/* Lease callbacks: the lease is the first member of struct job. */
static void job_release(struct supervisor *s, struct job *j);
static void job_give_back(struct supervisor *s, struct job *j);

static int
lease_extend(void *arg, struct lease *l, int64_t ms)
{
	struct supervisor *s = arg;
	struct job *j = (struct job *)l;
	char a[32];

	if (s->src->ops->extend(s->src, j->d, ms) < 0)
		return -1;
	log_info("Extended deadline msg_id=%s by %s", j->d->id,
	    duration_fmt(ms, a, sizeof(a)));
	return 0;
}

static void
lease_lost(void *arg, struct lease *l, const char *why)
{
	struct supervisor *s = arg;
	struct job *j = (struct job *)l;

	s->n.lost++;
	log_warn("Lease lost msg_id=%s: %s; the broker will redeliver it",
	    j->d->id, why);
	if (j->wp == NULL) {		/* not started anywhere: give it back */
		job_give_back(s, j);
		return;
	}
	/* Stop the work; the worker records it and reports as usual. */
	if (j->wp->chan != NULL)
		proto_pack_cancel(chan_packer(j->wp->chan), j->id);
}

void
dispatch_init(struct supervisor *s)
{
	lease_table_init(&s->leases, s->loop, s->src->ack_deadline,
	    s->conf.max_lease, lease_extend, lease_lost, s);
	TAILQ_INIT(&s->waiting);
	s->free_slot = SLOT_NONE;
}

void
dispatch_free(struct supervisor *s)
{
	for (uint32_t i = 0; i < s->nslots; i++)
		free(s->slots[i]);
	free(s->slots);
	s->slots = NULL;
	s->nslots = 0;
	lease_table_free(&s->leases);
}

static struct job *
job_new(struct supervisor *s, struct delivery *d)
{
	struct job *j;
	uint32_t slot;

	if (s->free_slot != SLOT_NONE) {
		slot = s->free_slot;
		j = s->slots[slot];
		s->free_slot = j->next_free;
	} else {
		if (s->nslots > SLOT_MASK)
			return NULL;
		if ((s->nslots & (s->nslots - 1)) == 0) {
			uint32_t cap = s->nslots ? s->nslots * 2 : 256;
			struct job **v = realloc(s->slots, cap * sizeof(*v));

			if (v == NULL)
				return NULL;
			s->slots = v;
		}
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return NULL;
		slot = s->nslots++;
		s->slots[slot] = j;
	}
	memset(j, 0, sizeof(*j));
	j->slot = slot;
	j->id = (++s->job_seq << SLOT_BITS) | slot;
	j->d = d;
	j->lease.hn.idx = HEAP_NONE;
	return j;
}

/* A released slot keeps its struct, on the free list. */
static void
job_release(struct supervisor *s, struct job *j)
{
	lease_remove(&s->leases, &j->lease);
	if (j->wp != NULL) {
		TAILQ_REMOVE(&j->wp->jobs, j, link);
		j->wp->njobs--;
	} else {
		TAILQ_REMOVE(&s->waiting, j, link);
		s->nwaiting--;
	}
	j->d = NULL;
	j->wp = NULL;
	j->next_free = s->free_slot;
	s->free_slot = j->slot;
	s->in_flight--;
}

/* Back to the broker for redelivery now, counted. */
static void
give_back(struct supervisor *s, struct delivery *d)
{
	s->n.nacked++;
	s->src->ops->nack(s->src, d, 0);
}

static void
job_give_back(struct supervisor *s, struct job *j)
{
	struct delivery *d = j->d;

	job_release(s, j);	/* the source still owns d until the nack */
	give_back(s, d);
}

static struct job *
job_find(struct supervisor *s, uint64_t id)
{
	uint32_t slot = (uint32_t)(id & SLOT_MASK);

	if (slot >= s->nslots || s->slots[slot]->d == NULL ||
	    s->slots[slot]->id != id)
		return NULL;
	return s->slots[slot];
}

static unsigned
free_room(const struct supervisor *s)
{
	const struct wproc *wp;
	unsigned room = 0;

	TAILQ_FOREACH(wp, &s->workers, link)
		if (wp->state == WP_READY && wp->gen == s->active_gen &&
		    wp->max_jobs > wp->njobs)
			room += wp->max_jobs - wp->njobs;
	return room;
}

void
dispatch_pull(struct supervisor *s)
{
	unsigned wanted, room, n;

	if (s->state != SUP_RUNNING || s->in_flight >= s->conf.max_in_flight)
		return;		/* a reload may have lowered the cap */
	wanted = s->src->ops->wanted(s->src);
	room = free_room(s);
	n = s->conf.max_in_flight - s->in_flight;
	if (room < n)
		n = room;
	if (n <= s->nwaiting + wanted)
		return;
	n -= s->nwaiting + wanted;
	if (n > s->conf.batch)
		n = s->conf.batch;
	/* Ask in batches: a trickle of 1-message pulls wastes round trips. */
	if (n < s->conf.batch && wanted > 0)
		return;
	s->src->ops->pull(s->src, n);
}

static struct wproc *
pick_worker(struct supervisor *s)
{
	struct wproc *wp, *best = NULL;

	TAILQ_FOREACH(wp, &s->workers, link)
		if (wp->state == WP_READY && wp->gen == s->active_gen &&
		    wp->njobs < wp->max_jobs &&
		    (best == NULL || wp->njobs < best->njobs))
			best = wp;
	return best;
}

static void
send_job(struct supervisor *s, struct job *j, struct wproc *wp)
{
	int64_t deadline = clock_wall() + (j->lease.end - clock_now());

	j->wp = wp;
	wp->njobs++;
	TAILQ_INSERT_TAIL(&wp->jobs, j, link);
	proto_pack_job(chan_packer(wp->chan), j->id, j->d->id,
	    strlen(j->d->id), j->d->data, j->d->len, j->d->count, deadline,
	    j->d->bury);
}

void
dispatch_waiting(struct supervisor *s)
{
	struct wproc *wp;
	struct job *j;

	while ((j = TAILQ_FIRST(&s->waiting)) != NULL &&
	    (wp = pick_worker(s)) != NULL) {
		TAILQ_REMOVE(&s->waiting, j, link);
		s->nwaiting--;
		send_job(s, j, wp);
	}
}

void
dispatch_message(void *arg, struct delivery *d)
{
	struct supervisor *s = arg;
	struct job *j;

	s->n.pulled++;
	if (d->count > 1)
		s->n.redelivered++;
	/* Draining or stopping: a late delivery goes straight back. */
	if (s->state != SUP_RUNNING || (j = job_new(s, d)) == NULL) {
		if (s->state == SUP_RUNNING)
			log_err("dispatch: out of memory; nacking msg_id=%s",
			    d->id);
		give_back(s, d);
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
		log_info("Pulled msg_id=%s delivery=%" PRIu32 " to record as "
		    "dead: %s", d->id, d->count, d->bury);
	else
		log_info("Pulled msg_id=%s delivery=%" PRIu32, d->id, d->count);
	dispatch_waiting(s);
	/* The last of a pull arrived: ask for more while there is room. */
	if (s->src->ops->wanted(s->src) == 0)
		dispatch_pull(s);
}

/* DESIGN.md's table: what the broker is told for each outcome. */
static void
settle(struct supervisor *s, struct job *j, enum outcome o,
    uint32_t attempts, const struct pstr *error)
{
	struct delivery *d = j->d;
	int64_t pulled_us = j->pulled_us;
	char a[32];
	int64_t delay;

	s->n.outcome[o]++;
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
		log_info("Done. Acked msg_id=%s outcome=%s", d->id,
		    outcome_name(o));
		s->n.acked++;
		s->src->ops->ack(s->src, d);
		hist_add(&s->n.ack_latency, (uint64_t)(clock_now_us() - pulled_us));
		break;
	case ACT_TERM:
		log_warn("Done. Terminated msg_id=%s outcome=invalid: %.*s",
		    d->id, (int)error->len, error->p);
		s->n.termed++;
		s->src->ops->term(s->src, d, "invalid");
		break;
	case ACT_NACK:
		delay = outcome_delay(o, attempts, s->conf.backoff_min,
		    s->conf.backoff_max, rng_unit(&s->rng));
		log_info("Done. Nacked msg_id=%s outcome=%s retry in %s%s%.*s",
		    d->id, outcome_name(o), duration_fmt(delay, a, sizeof(a)),
		    error->len ? ": " : "", (int)error->len, error->p);
		s->n.nacked++;
		s->src->ops->nack(s->src, d, delay);
		break;
	}
}

/* The whole current generation is ready: tell systemd, once per reload. */
static void
announce_ready(struct supervisor *s)
{
	const struct wproc *wp;
	unsigned ready = 0;

	if (s->ready_gen == s->gen)
		return;
	TAILQ_FOREACH(wp, &s->workers, link)
		if (wp->gen == s->gen && wp->state == WP_READY)
			ready++;
	if (ready < s->target_workers)
		return;
	s->ready_gen = s->gen;
	/*
	 * The new generation takes over only now: until it is ready the old
	 * one keeps getting jobs, so a reload to workers that cannot start
	 * leaves the service running as it was.
	 */
	if (s->active_gen != s->gen) {
		supervisor_retire_generation(s, s->gen);
		s->active_gen = s->gen;
		log_info("generation %" PRIu32 " ready; older generations "
		    "draining", s->gen);
	}
	if (notify_send("READY=1\nSTATUS=workers ready") < 0)
		log_warn("sd_notify READY: %s", strerror(errno));
}

static int
on_ready(struct wproc *wp, const struct proto_msg *m)
{
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
	wp->max_jobs = m->max_jobs;
	wp->state = WP_READY;
	log_info("worker %" PRIu32 " ready, pid %" PRIu32 ", %" PRIu32 " jobs",
	    wp->slot, m->pid, m->max_jobs);
	announce_ready(wp->sup);
	return 0;
}

static int
on_started(struct wproc *wp, const struct proto_msg *m)
{
	struct job *j = job_find(wp->sup, m->id);

	if (j != NULL && j->wp == wp && m->pgid > 1)
		j->pgid = (pid_t)m->pgid;
	return 0;	/* a job already given back is no error */
}

static int
on_done(struct wproc *wp, const struct proto_msg *m)
{
	struct supervisor *s = wp->sup;
	struct job *j = job_find(s, m->id);

	if (j == NULL && s->state != SUP_RUNNING) {
		/* Given back at shutdown; the worker recorded it anyway. */
		log_debug("worker %" PRIu32 ": done for job %" PRIu64
		    " already given back", wp->slot, m->id);
		return 0;
	}
	if (j == NULL || j->wp != wp) {
		log_err("worker %" PRIu32 ": done for unknown job %" PRIu64
		    "; stopping it", wp->slot, m->id);
		return -1;
	}
	if (m->duration > 0)
		hist_add(&s->n.restart_time, m->duration);
	settle(s, j, m->outcome, m->attempt, &m->error);
	return 0;
}

int
dispatch_frame(struct wproc *wp, const struct proto_msg *m)
{
	struct supervisor *s = wp->sup;
	int rc;

	loopwatch_note(&s->watch, "frames from workers");
	switch (m->type) {
	case P_READY:
		rc = on_ready(wp, m);
		break;
	case P_DONE:
		rc = wp->state == WP_STARTING ? -1 : on_done(wp, m);
		break;
	case P_HEARTBEAT:
		return 0;
	case P_STARTED:
		rc = on_started(wp, m);
		break;
	default:
		log_err("worker %" PRIu32 ": unexpected frame from a worker; "
		    "stopping it", wp->slot);
		rc = -1;
		break;
	}
	if (rc < 0) {
		pool_close(wp);
		pool_kill(wp, SIGKILL);
		return -1;
	}
	dispatch_waiting(s);
	dispatch_pull(s);
	supervisor_check_done(s);
	return 0;
}

void
dispatch_nack_all(struct supervisor *s, struct wproc *wp, const char *why)
{
	struct job_list *list = wp ? &wp->jobs : &s->waiting;
	struct job *j;
	unsigned n = 0;

	while ((j = TAILQ_FIRST(list)) != NULL) {
		/*
		 * Its worker is gone or going: a command it started must not
		 * go on restarting the host while the message comes back.
		 */
		if (j->pgid > 1 && kill(-j->pgid, SIGKILL) == 0)
			log_warn("killed process group %d of msg_id=%s: its "
			    "worker is gone", (int)j->pgid, j->d->id);
		job_give_back(s, j);
		n++;
	}
	if (n > 0)
		log_warn("Nacked %u in-flight messages for redelivery: %s", n, why);
}
