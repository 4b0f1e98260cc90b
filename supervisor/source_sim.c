/*
 * source_sim: the embedded publisher and broker (the seed's publish()).
 *
 * The publisher makes restart requests for random cattle-xxxx instances
 * with uuid msg_ids, at `rate` a second (0: as fast as they are pulled),
 * up to `count` (0: forever).  The broker gives them real semantics: a
 * delivery holds a lease until its ack deadline; extend() moves the
 * deadline; an expired lease makes the message ready again with a higher
 * delivery count; nack() makes it ready after a delay; ack() and term()
 * remove it.  An ack of an older delivery still removes the message (as
 * JetStream does); a nack or extend of an older delivery is refused.
 * With max_deliver, a message delivered that many times is given up on
 * as JetStream does: its next delivery says so (bury), and the worker
 * records it dead without restarting anything.
 * All deadlines live in one heap behind one ev_timer.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "clock.h"
#include "heap.h"
#include "log.h"
#include "rng.h"
#include "simpayload.h"
#include "source.h"
#include "uuid.h"

#define DELIVER_SLICE	1024	/* deliveries per loop iteration, at most */
#define BACKLOG_MAX	1000000	/* the publisher pauses above this */
#define PUBLISH_TICK	0.01

enum sim_state { M_READY, M_LEASED, M_DELAYED };

struct sim_delivery;

struct sim_msg {
	struct heap_node	 hn;	/* LEASED: deadline; DELAYED: ready at */
	TAILQ_ENTRY(sim_msg)	 q;	/* READY */
	enum sim_state		 state;
	int			 acked;
	unsigned		 refs;	/* deliveries not yet given back */
	uint32_t		 deliveries;
	struct sim_delivery	*cur;	/* the delivery holding the lease */
	char			 id[37];
	char			*data;
	size_t			 len;
	char			 inline_data[96];
	uint64_t		 retry_of;	/* mandrillctl retry */
};

struct sim_delivery {
	struct delivery		 pub;
	struct sim_msg		*m;
};

struct sim {
	struct source		 src;
	struct heap		 timers;
	TAILQ_HEAD(, sim_msg)	 ready;
	ev_timer		 timer;
	ev_idle			 deliverer;
	ev_timer		 publisher;
	struct rng		 rng;
	int			 seeded;
	struct uuid7		 uuid;		/* the msg_ids' clock */
	unsigned		 want;
	unsigned		 rate;
	unsigned		 max_deliver;	/* 0: no limit */
	uint64_t		 count;
	uint64_t		 instances;	/* 0: a new one per message */
	char			 payload_file[CONF_PATH_MAX];
	struct payloads		 file;		/* payload_file, one per message */
	uint64_t		 published;
	uint64_t		 live;		/* published, not acked */
	uint64_t		 retries;	/* mandrillctl retry, published */
	uint64_t		 expired, nacked, acked, termed;
	int64_t			 pub_start;
	uint64_t		 pub_base;	/* published when the rate was set */
	int			 exhausted;
};

static void sim_arm(struct sim *s);

/*
 * A seeded publisher runs on a clock of its own, from a fixed start, so
 * that it publishes the same ids every run.
 */
static void
make_uuid(struct sim *s, char *out)
{
	uuid7_next(&s->uuid, s->seeded ? s->uuid.ms : clock_wall(),
	    rng_next(&s->rng), out);
}

static int
can_publish(const struct sim *s)
{
	return (s->count == 0 || s->published < s->count) &&
	    s->live < BACKLOG_MAX;
}

static void
publish_one(struct sim *s)
{
	struct sim_msg *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		log_err("sim: out of memory publishing");
		return;
	}
	make_uuid(s, m->id);
	if (s->file.n > 0) {
		/* A payload from the file: given as is, however broken. */
		snprintf(m->id, sizeof(m->id), "payload-%" PRIu64,
		    s->published + 1);
		m->data = s->file.data[s->published];
		m->len = s->file.len[s->published];
		goto queue;
	}
	m->data = m->inline_data;
	m->len = (size_t)snprintf(m->data, sizeof(m->inline_data),
	    "{\"msg_id\": \"%s\", \"instance_name\": \"cattle-%0*" PRIx64
	    "\"}", m->id, s->instances > 65536 || s->instances == 0 ? 8 : 4,
	    s->instances ? rng_next(&s->rng) % s->instances : s->published);
queue:
	m->hn.idx = HEAP_NONE;
	m->state = M_READY;
	TAILQ_INSERT_TAIL(&s->ready, m, q);
	s->src.backlog++;
	s->published++;
	s->live++;
	log_debug("sim: published msg_id=%s", m->id);
}

/*
 * Lease m to a new delivery.  -1 when out of memory: m stays ready,
 * outside the heap, so that nothing updates a deadline it does not have.
 */
static int
deliver_one(struct sim *s, struct sim_msg *m)
{
	struct sim_delivery *d = calloc(1, sizeof(*d));

	if (d == NULL || heap_push(&s->timers, &m->hn,
	    clock_now() + s->src.ack_deadline) < 0) {
		log_err("sim: out of memory delivering msg_id=%s; will retry",
		    m->id);
		free(d);
		return -1;
	}
	TAILQ_REMOVE(&s->ready, m, q);
	s->src.backlog--;
	m->state = M_LEASED;
	m->deliveries++;
	m->refs++;
	m->cur = d;
	d->m = m;
	d->pub.id = m->id;
	d->pub.data = m->data;
	d->pub.len = m->len;
	d->pub.count = m->deliveries;
	d->pub.retry_of = m->retry_of;
	if (s->max_deliver > 0 && m->deliveries > s->max_deliver)
		d->pub.bury = "delivered max_deliver times; the broker gave "
		    "up on it";
	s->want--;
	s->src.cb.message(s->src.cb.arg, &d->pub);
	return 0;
}

static void
deliver_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct sim *s = w->data;
	struct sim_msg *m;

	for (int n = 0; n < DELIVER_SLICE && s->want > 0; n++) {
		if (TAILQ_EMPTY(&s->ready)) {
			if (s->rate != 0 || !can_publish(s))
				break;
			publish_one(s);
		}
		if ((m = TAILQ_FIRST(&s->ready)) == NULL ||
		    deliver_one(s, m) < 0)
			break;	/* a failed one is tried next iteration */
	}
	sim_arm(s);
	if (s->want == 0 || (TAILQ_EMPTY(&s->ready) &&
	    (s->rate != 0 || !can_publish(s))))
		ev_idle_stop(loop, w);
}

static void
wake_deliverer(struct sim *s)
{
	if (s->want > 0 && (!TAILQ_EMPTY(&s->ready) ||
	    (s->rate == 0 && can_publish(s))))
		ev_idle_start(s->src.loop, &s->deliverer);
}

static void
make_ready(struct sim *s, struct sim_msg *m)
{
	heap_remove(&s->timers, &m->hn);
	m->state = M_READY;
	TAILQ_INSERT_TAIL(&s->ready, m, q);
	s->src.backlog++;
}

/* Leases that ran out and nack delays that passed. */
static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim *s = w->data;
	struct heap_node *top;
	int64_t now = clock_now();

	while ((top = heap_top(&s->timers)) != NULL && top->key <= now) {
		struct sim_msg *m = (struct sim_msg *)top;

		if (m->state == M_LEASED) {
			s->expired++;
			m->cur = NULL;	/* that delivery is stale now */
			log_info("sim: ack deadline of msg_id=%s passed; "
			    "redelivering", m->id);
		}
		make_ready(s, m);
	}
	sim_arm(s);
	wake_deliverer(s);
}

static void
sim_arm(struct sim *s)
{
	struct heap_node *top = heap_top(&s->timers);
	double after;

	ev_timer_stop(s->src.loop, &s->timer);
	if (top == NULL)
		return;
	after = (double)(top->key - clock_now()) / 1000.0;
	ev_timer_set(&s->timer, after > 0 ? after : 0., 0.);
	ev_timer_start(s->src.loop, &s->timer);
}

static void
publish_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sim *s = w->data;
	int64_t elapsed = clock_now() - s->pub_start;
	uint64_t due = s->pub_base + (uint64_t)elapsed * s->rate / 1000 + 1;

	if (s->count != 0 && due > s->count)
		due = s->count;
	while (s->published < due && can_publish(s))
		publish_one(s);
	if (s->count != 0 && s->published >= s->count)
		ev_timer_stop(loop, w);
	wake_deliverer(s);
}

static int
sim_start(struct source *src, char *err, size_t len)
{
	struct sim *s = (struct sim *)src;
	char limit[64];

	if (s->payload_file[0] != '\0') {
		if (payloads_load(&s->file, s->payload_file, err, len) < 0)
			return -1;
		s->count = s->file.n;
	}
	s->pub_start = clock_now();
	if (s->rate > 0) {
		ev_timer_set(&s->publisher, 0., PUBLISH_TICK);
		ev_timer_start(src->loop, &s->publisher);
	}
	if (s->count > 0)
		snprintf(limit, sizeof(limit), "%" PRIu64 " messages", s->count);
	else
		snprintf(limit, sizeof(limit), "messages without end");
	if (s->rate > 0)
		log_info("sim: publishing %s, %u a second", limit, s->rate);
	else
		log_info("sim: publishing %s, as fast as they are pulled", limit);
	return 0;
}

static void
sim_pull(struct source *src, unsigned n)
{
	struct sim *s = (struct sim *)src;

	s->want += n;
	wake_deliverer(s);
}

static void
sim_unpull(struct source *src)
{
	struct sim *s = (struct sim *)src;

	s->want = 0;
	ev_idle_stop(src->loop, &s->deliverer);
}

static unsigned
sim_wanted(const struct source *src)
{
	return ((const struct sim *)src)->want;
}

static void
check_exhausted(struct sim *s)
{
	if (!s->exhausted && s->count != 0 && s->published >= s->count &&
	    s->live == 0) {
		s->exhausted = 1;
		if (s->src.cb.exhausted)
			s->src.cb.exhausted(s->src.cb.arg);
	}
}

/* Give a delivery back; free the message once removed and unreferenced. */
static void
release(struct sim *s, struct sim_delivery *d)
{
	struct sim_msg *m = d->m;

	if (m->cur == d)
		m->cur = NULL;
	free(d);
	if (--m->refs == 0 && m->acked)
		free(m);
}

static void
remove_msg(struct sim *s, struct sim_msg *m)
{
	if (m->acked)
		return;
	m->acked = 1;
	if (m->state == M_READY) {
		TAILQ_REMOVE(&s->ready, m, q);
		s->src.backlog--;
	} else
		heap_remove(&s->timers, &m->hn);
	s->live--;
}

static void
sim_ack(struct source *src, struct delivery *pub)
{
	struct sim *s = (struct sim *)src;
	struct sim_delivery *d = (struct sim_delivery *)pub;

	if (!d->m->acked)
		s->acked++;
	remove_msg(s, d->m);
	release(s, d);
	check_exhausted(s);
}

static void
sim_term(struct source *src, struct delivery *pub, const char *why)
{
	struct sim *s = (struct sim *)src;
	struct sim_delivery *d = (struct sim_delivery *)pub;

	if (!d->m->acked) {
		s->termed++;
		log_info("sim: msg_id=%s terminated: %s", d->m->id, why);
	}
	remove_msg(s, d->m);
	release(s, d);
	check_exhausted(s);
}

static void
sim_nack(struct source *src, struct delivery *pub, int64_t delay)
{
	struct sim *s = (struct sim *)src;
	struct sim_delivery *d = (struct sim_delivery *)pub;
	struct sim_msg *m = d->m;

	if (!m->acked && m->cur == d) {
		s->nacked++;
		if (delay <= 0)
			make_ready(s, m);
		else {
			m->state = M_DELAYED;
			heap_update(&s->timers, &m->hn, clock_now() + delay);
		}
		sim_arm(s);
		wake_deliverer(s);
	}
	release(s, d);
}

static int
sim_extend(struct source *src, struct delivery *pub, int64_t ms)
{
	struct sim *s = (struct sim *)src;
	struct sim_delivery *d = (struct sim_delivery *)pub;

	if (d->m->acked || d->m->cur != d)
		return -1;
	heap_update(&s->timers, &d->m->hn, clock_now() + ms);
	sim_arm(s);
	return 0;
}

static void
sim_stop(struct source *src)
{
	struct sim *s = (struct sim *)src;
	struct sim_msg *m;

	ev_timer_stop(src->loop, &s->timer);
	ev_timer_stop(src->loop, &s->publisher);
	ev_idle_stop(src->loop, &s->deliverer);
	/* Messages still referenced by deliveries are the caller's leak. */
	while ((m = TAILQ_FIRST(&s->ready)) != NULL) {
		TAILQ_REMOVE(&s->ready, m, q);
		s->src.backlog--;
		if (m->refs == 0)
			free(m);
		else
			m->acked = 1;
	}
	while (heap_top(&s->timers) != NULL) {
		m = (struct sim_msg *)heap_pop(&s->timers);
		if (m->refs == 0)
			free(m);
		else
			m->acked = 1;
	}
	heap_free(&s->timers);
	payloads_free(&s->file);
	free(s);
}

/* Publisher settings apply at once, ack_deadline to new deliveries. */
static int
sim_reload(struct source *src, const struct conf *c, char *err, size_t len)
{
	struct sim *s = (struct sim *)src;

	if (s->file.n > 0) {
		/* The file fixed the messages; only the rate may change. */
	} else if (c->count != 0 && c->count < s->published) {
		snprintf(err, len, "count %" PRIu64 " is below the %" PRIu64
		    " messages already published", c->count, s->published);
		return -1;
	}
	src->ack_deadline = c->ack_deadline;
	if (s->file.n == 0)
		s->count = c->count;
	s->instances = c->instances;
	if (s->rate > 0 && c->rate == s->rate &&
	    !ev_is_active(&s->publisher) && can_publish(s)) {
		/* count was raised after publishing had stopped */
		ev_timer_set(&s->publisher, 0., PUBLISH_TICK);
		ev_timer_start(src->loop, &s->publisher);
	}
	s->max_deliver = c->max_deliver;
	if (c->rate != s->rate) {
		s->rate = c->rate;
		s->pub_start = clock_now();
		s->pub_base = s->published;
		ev_timer_stop(src->loop, &s->publisher);
		if (s->rate > 0) {
			ev_timer_set(&s->publisher, 0., PUBLISH_TICK);
			ev_timer_start(src->loop, &s->publisher);
		}
	}
	wake_deliverer(s);
	return 0;
}

static void
sim_dump(const struct source *src)
{
	const struct sim *s = (const struct sim *)src;

	log_always(LOG_INFO, "sim: published %" PRIu64 ", unacked %" PRIu64 ", acked %"
	    PRIu64 ", terminated %" PRIu64 ", nacked %" PRIu64 ", expired %"
	    PRIu64 ", wanted %u", s->published, s->live, s->acked, s->termed,
	    s->nacked, s->expired, s->want);
}

/*
 * A dead letter again: a new message of the broker, with its payload
 * (and so its msg_id), outside count; the data lives after the struct.
 */
static int
sim_retry(struct source *src, const char *data, size_t len, uint64_t dead_id,
    char *msg, size_t msglen)
{
	struct sim *s = (struct sim *)src;
	struct sim_msg *m;

	if (s->live >= BACKLOG_MAX) {
		snprintf(msg, msglen, "the simulated broker holds %" PRIu64
		    " messages already", s->live);
		return -1;
	}
	if ((m = calloc(1, sizeof(*m) + len + 1)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	snprintf(m->id, sizeof(m->id), "retry-%" PRIu64, ++s->retries);
	m->data = (char *)(m + 1);
	memcpy(m->data, data, len);
	m->len = len;
	m->retry_of = dead_id;
	m->hn.idx = HEAP_NONE;
	m->state = M_READY;
	TAILQ_INSERT_TAIL(&s->ready, m, q);
	s->src.backlog++;
	s->live++;
	wake_deliverer(s);
	snprintf(msg, msglen, "published again");
	return 0;
}

static const struct source_ops sim_ops = {
	.retry = sim_retry,
	.name = "sim",
	.start = sim_start,
	.pull = sim_pull,
	.extend = sim_extend,
	.ack = sim_ack,
	.nack = sim_nack,
	.term = sim_term,
	.stop = sim_stop,
	.unpull = sim_unpull,
	.reload = sim_reload,
	.wanted = sim_wanted,
	.dump = sim_dump,
};

struct source *
source_sim_new(struct ev_loop *loop, const struct conf *c,
    const struct source_cb *cb)
{
	struct sim *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->src.ops = &sim_ops;
	s->src.loop = loop;
	s->src.cb = *cb;
	s->src.ack_deadline = c->ack_deadline;
	heap_init(&s->timers);
	TAILQ_INIT(&s->ready);
	rng_seed(&s->rng, c->seed);
	s->seeded = c->seed != 0;
	if (s->seeded)
		s->uuid.ms = INT64_C(1700000000000);	/* 2023-11-14 */
	s->rate = c->rate;
	s->max_deliver = c->max_deliver;
	s->count = c->count;
	s->instances = c->instances;
	snprintf(s->payload_file, sizeof(s->payload_file), "%s", c->payload_file);
	ev_timer_init(&s->timer, timer_cb, 0., 0.);
	ev_idle_init(&s->deliverer, deliver_cb);
	ev_set_priority(&s->deliverer, EV_MAXPRI);
	ev_timer_init(&s->publisher, publish_cb, 0., PUBLISH_TICK);
	s->timer.data = s->deliverer.data = s->publisher.data = s;
	return &s->src;
}
