/*
 * source_nats: a NATS JetStream durable pull consumer (DESIGN.md's
 * design A: all broker I/O is decided on the loop thread).
 *
 * Pull requests are published to $JS.API.CONSUMER.MSG.NEXT.<stream>.
 * <durable> with a reply subject <inbox>.<request id>; acks, in-progress
 * (+WPI), naks with a delay and terms are published to each message's
 * reply subject.  Publishing is thread-safe and buffered in cnats, so the
 * loop never waits on the network after start-up.
 *
 * cnats reads the socket on its own threads and runs every callback
 * there.  Those callbacks touch nothing of the supervisor: they append an
 * event (a message, a status, a connection change, a dead letter to
 * record) to a locked queue and wake the loop with ev_async_send; the
 * loop takes the whole queue at once and acts on it.
 *
 * A pull request owes a number of messages until its expiry.  Messages
 * arrive on their own subject, so each counts against the oldest open
 * request (the server serves them in order).  A status message (408
 * expired, 409 and friends), sent to the request's own reply subject,
 * ends it; a request the
 * server may have forgotten (no status a while after its expiry, or any
 * reconnect) is ended locally.  What an ended request still owed is asked
 * for again by the supervisor's flow control (the `more` callback).
 *
 * Dead letters: a message the server stops delivering (max_deliver) is
 * announced by a MAX_DELIVERIES advisory.  The advisory's callback thread
 * fetches the message by stream sequence and queues it; the loop hands
 * it to the supervisor as a delivery marked `bury`, which a worker
 * records in dead_letters.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <nats/nats.h>

#include "clock.h"
#include "duration.h"
#include "log.h"
#include "natsauth.h"
#include "source.h"

#define REQ_MAX		32	/* pull requests outstanding, at most */
#define REQ_BATCH_MAX	10000	/* messages one request asks for */
#define REQ_EXPIRES_MS	5000	/* a pull request waits this long */
#define REQ_GRACE_MS	3000	/* ...and is forgotten this much later */
#define TICK_S		1.0
#define CONNECT_TIMEOUT	2000	/* ms, per server at start-up */
#define API_TIMEOUT	5000	/* ms, JetStream API calls at start-up */
#define FLUSH_TIMEOUT	2000	/* ms, at stop: send the last acks */
#define RECONNECT_MIN	100	/* ms, first reconnect delay */
#define RECONNECT_MAX	5000	/* ms, longest reconnect delay */
#define DRAIN_NAK_MS	(REQ_EXPIRES_MS + REQ_GRACE_MS + 2000)
#define PUBLISH_WARN_MS	10000	/* publish failures: one line this often */
#define CONSUMER_RETRY	5000	/* ms, between attempts to recreate it */

enum nev_type {
	NEV_MSG, NEV_STATUS, NEV_BURY, NEV_DISCONNECTED, NEV_RECONNECTED,
	NEV_CLOSED, NEV_ERROR,
};

/* One thing a cnats thread saw, for the loop. */
struct nev {
	STAILQ_ENTRY(nev)	 link;
	enum nev_type		 type;
	uint64_t		 req;		/* MSG, STATUS: the pull request */
	natsMsg			*msg;		/* MSG, BURY: ours to destroy */
	uint64_t		 delivered;	/* MSG, BURY */
	uint64_t		 sseq;		/* MSG, BURY */
	int			 status;	/* STATUS */
	char			 text[160];	/* STATUS, ERROR, BURY: why */
};
STAILQ_HEAD(nev_list, nev);

struct nats_delivery {
	struct delivery		 pub;
	TAILQ_ENTRY(nats_delivery) link;	/* buried, waiting */
	natsMsg			*msg;
	uint64_t		 sseq;		/* stream sequence */
	char			 id[129];	/* Nats-Msg-Id, or sequence */
	char			 why[160];	/* buried: the reason */
	int64_t			 lease_end;	/* ms: the server's deadline */
	int64_t			 due;		/* buried: retry not before */
	int			 counted;	/* buried: in buried_wanted */
};
TAILQ_HEAD(nd_list, nats_delivery);

struct pull_req {
	uint64_t		 id;
	unsigned		 left;		/* messages still owed */
	int64_t			 expires;	/* ms, monotonic */
};

struct nats_src {
	struct source		 src;

	/* Shared with cnats threads, under mu. */
	pthread_mutex_t		 mu;
	struct nev_list		 events;
	int			 closing;

	/* Loop thread only. */
	ev_async		 wake;
	ev_timer		 tick;
	natsOptions		*opts;
	natsConnection		*nc;
	jsCtx			*js;
	natsSubscription	*sub, *adv;
	char			 inbox[64];
	char			 next_subject[640];
	char			 adv_subject[640];
	char			 delete_subject[640];
	struct pull_req		 req[REQ_MAX];
	unsigned		 nreq;
	uint64_t		 req_seq;
	unsigned		 owed;		/* asked for, no request sent */
	struct nd_list		 buried;	/* dead letters to hand out */
	unsigned		 buried_wanted;	/* of them, pulled */
	int			 connected;
	int			 unpulled;	/* draining: pull nothing more */
	int			 consumer_lost;	/* 409 Consumer Deleted */
	int64_t			 consumer_retry;
	int64_t			 down_since;
	int64_t			 publish_warned;
	char			 last_status[160];

	/* Settings. */
	struct natsauth		 auth;		/* servers, secrets, TLS */
	char			 auth_err[CONF_ERR_MAX];	/* reading them */
	char			 url[CONF_PATH_MAX];	/* redacted, to print */
	char			 stream[CONF_NAME_MAX];
	char			 subject[CONF_NAME_MAX];
	char			 durable[CONF_NAME_MAX];
	char			 dlq[CONF_NAME_MAX];
	int64_t			 ack_wait;
	unsigned		 max_deliver;
	unsigned		 max_ack_pending;
	int			 create;
	unsigned		 replicas;
	int			 stream_only_ours;	/* its one subject is ours */

	/* Counts, for the dump. */
	uint64_t		 delivered, acked, nacked, termed, dead_letters;
	uint64_t		 requests, publish_errors;
};

/* ---- cnats threads: queue and wake, nothing else ------------------- */

/* libev coalesces the wake-ups: a pending one costs no system call. */
static void
push(struct nats_src *s, struct nev *e)
{
	pthread_mutex_lock(&s->mu);
	if (s->closing) {
		pthread_mutex_unlock(&s->mu);
		if (e->msg != NULL)
			natsMsg_Destroy(e->msg);
		free(e);
		return;
	}
	STAILQ_INSERT_TAIL(&s->events, e, link);
	ev_async_send(s->src.loop, &s->wake);
	pthread_mutex_unlock(&s->mu);
}

static struct nev *
nev_new(enum nev_type type)
{
	struct nev *e = calloc(1, sizeof(*e));

	if (e != NULL)
		e->type = type;
	return e;
}

/* A status's subject is the request's reply subject: <inbox>.<id>. */
static uint64_t
req_of_subject(const char *subject)
{
	const char *dot = strrchr(subject, '.');

	return dot != NULL ? strtoull(dot + 1, NULL, 10) : 0;
}

/* The answer to a delete (<inbox>.del): 1, with e an error to log or not. */
static int
delete_answer(natsMsg *m, struct nev *e)
{
	const char *subj = natsMsg_GetSubject(m);
	size_t n = strlen(subj);
	const char *data = natsMsg_GetData(m);
	int len = natsMsg_GetDataLength(m);

	if (n < 4 || strcmp(subj + n - 4, ".del") != 0)
		return 0;
	if (data != NULL && len > 0 && memmem(data, (size_t)len, "\"error\"", 7)
	    != NULL && memmem(data, (size_t)len, "no message found", 16) == NULL) {
		e->type = NEV_ERROR;
		snprintf(e->text, sizeof(e->text), "deleting a dead message "
		    "from the stream: %.*s", len > 120 ? 120 : len, data);
	}
	return 1;
}

static void
on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_src *s = arg;
	const char *status = NULL, *desc = NULL;
	struct nev *e;

	if ((e = nev_new(NEV_MSG)) == NULL) {
		/* Not acked: the server sends it again after ack_wait. */
		natsMsg_Destroy(m);
		return;
	}
	e->req = req_of_subject(natsMsg_GetSubject(m));
	if (delete_answer(m, e)) {
		natsMsg_Destroy(m);
		if (e->type == NEV_ERROR)
			push(s, e);
		else
			free(e);
		return;
	}
	if (natsMsg_GetReply(m) == NULL &&
	    natsMsgHeader_Get(m, "Status", &status) == NATS_OK) {
		e->type = NEV_STATUS;
		e->status = atoi(status);
		if (natsMsgHeader_Get(m, "Description", &desc) == NATS_OK)
			snprintf(e->text, sizeof(e->text), "%s", desc);
		natsMsg_Destroy(m);
	} else if (nats_ack_parse(natsMsg_GetReply(m), &e->delivered,
	    &e->sseq) < 0) {
		e->type = NEV_ERROR;
		snprintf(e->text, sizeof(e->text), "ignored a message without "
		    "a JetStream ack subject on %.80s", natsMsg_GetSubject(m));
		natsMsg_Destroy(m);
	} else
		e->msg = m;
	push(s, e);
}

/* The server gave up on a message: fetch it, for the dead letters. */
static void
on_advisory(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct nats_src *s = arg;
	uint64_t seq, deliveries;
	jsErrCode jerr = 0;
	natsStatus st;
	struct nev *e;

	if (nats_advisory_parse(natsMsg_GetData(m),
	    (size_t)natsMsg_GetDataLength(m), &seq, &deliveries) < 0 ||
	    (e = nev_new(NEV_BURY)) == NULL) {
		natsMsg_Destroy(m);
		return;
	}
	natsMsg_Destroy(m);
	e->sseq = seq;
	e->delivered = deliveries;
	st = js_GetMsg(&e->msg, s->js, s->stream, seq, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
		free(e);		/* gone already: recorded elsewhere */
		return;
	}
	if (st != NATS_OK) {
		e->type = NEV_ERROR;
		snprintf(e->text, sizeof(e->text), "message %" PRIu64 " reached "
		    "max_deliver but could not be read for the dead letters: "
		    "%s (%d)", seq, natsStatus_GetText(st), (int)jerr);
		e->msg = NULL;
	} else
		snprintf(e->text, sizeof(e->text), "delivered %" PRIu64
		    " times, max_deliver reached; the server gave up on it",
		    deliveries);
	push(s, e);
}

static void
on_conn(natsConnection *nc, void *arg, enum nev_type type)
{
	struct nev *e = nev_new(type);

	if (e != NULL)
		push(arg, e);
}

static void
on_disconnected(natsConnection *nc, void *arg)
{
	on_conn(nc, arg, NEV_DISCONNECTED);
}

static void
on_reconnected(natsConnection *nc, void *arg)
{
	on_conn(nc, arg, NEV_RECONNECTED);
}

static void
on_closed(natsConnection *nc, void *arg)
{
	on_conn(nc, arg, NEV_CLOSED);
}

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
    void *arg)
{
	struct nev *e = nev_new(NEV_ERROR);

	if (e == NULL)
		return;
	snprintf(e->text, sizeof(e->text), "%s", natsStatus_GetText(err));
	push(arg, e);
}

/* Reconnect backoff: 100 ms doubling to 5 s, with jitter from cnats. */
static int64_t
reconnect_delay(natsConnection *nc, int attempts, void *arg)
{
	int64_t d = RECONNECT_MIN;

	for (int i = 1; i < attempts && d < RECONNECT_MAX; i++)
		d *= 2;
	return d > RECONNECT_MAX ? RECONNECT_MAX : d;
}

/* ---- the loop thread ----------------------------------------------- */

static unsigned
requested(const struct nats_src *s)
{
	unsigned n = s->owed + s->buried_wanted;

	for (unsigned i = 0; i < s->nreq; i++)
		n += s->req[i].left;
	return n;
}

/* One line per PUBLISH_WARN_MS at most, with the count since the last. */
static void
publish_failed(struct nats_src *s, const char *what, natsStatus st)
{
	int64_t now = clock_now();

	s->publish_errors++;
	if (s->publish_warned != 0 && now - s->publish_warned < PUBLISH_WARN_MS)
		return;
	log_warn("nats: cannot publish %s: %s (%" PRIu64 " failed publishes "
	    "so far); the server redelivers what was not acked", what,
	    natsStatus_GetText(st), s->publish_errors);
	s->publish_warned = now;
}

static void
publish(struct nats_src *s, const char *subject, const char *data)
{
	natsStatus st;

	if (subject == NULL)
		return;
	st = natsConnection_PublishString(s->nc, subject, data);
	if (st != NATS_OK)
		publish_failed(s, data, st);
}

/* Send what is owed as pull requests, while connected and room left. */
static void
send_requests(struct nats_src *s)
{
	char body[96], reply[96];
	struct pull_req *r;
	natsStatus st;
	unsigned n;

	while (s->owed > 0 && s->connected && !s->consumer_lost &&
	    s->nreq < REQ_MAX) {
		n = s->owed > REQ_BATCH_MAX ? REQ_BATCH_MAX : s->owed;
		r = &s->req[s->nreq];
		r->id = ++s->req_seq;
		r->left = n;
		r->expires = clock_now() + REQ_EXPIRES_MS;
		snprintf(reply, sizeof(reply), "%s.%" PRIu64, s->inbox, r->id);
		snprintf(body, sizeof(body), "{\"batch\":%u,\"expires\":%"
		    PRId64 "}", n, (int64_t)REQ_EXPIRES_MS * 1000000);
		st = natsConnection_PublishRequestString(s->nc,
		    s->next_subject, reply, body);
		if (st != NATS_OK) {
			publish_failed(s, "a pull request", st);
			return;		/* owed stays; the tick tries again */
		}
		s->nreq++;
		s->owed -= n;
		s->requests++;
	}
}

static struct pull_req *
find_req(struct nats_src *s, uint64_t id)
{
	for (unsigned i = 0; i < s->nreq; i++)
		if (s->req[i].id == id)
			return &s->req[i];
	return NULL;
}

/* Requests stay in the order they were sent. */
static void
end_req(struct nats_src *s, struct pull_req *r)
{
	size_t i = (size_t)(r - s->req);

	memmove(r, r + 1, (s->nreq - i - 1) * sizeof(*r));
	s->nreq--;
}

/* Forget every request: the server may have, and will say nothing. */
static void
end_all_reqs(struct nats_src *s)
{
	s->nreq = 0;
}

static void
free_delivery(struct nats_delivery *d)
{
	if (d->msg != NULL)
		natsMsg_Destroy(d->msg);
	free(d);
}

/*
 * A delivery of the event's message, which it takes over; NULL when out
 * of memory (the message stays with the event).  Its id is the
 * publisher's Nats-Msg-Id when that is a printable token (mandrill-publish
 * sets it to the payload's msg_id), so that the log and the database name
 * a message alike; else the stream sequence.
 */
static struct nats_delivery *
delivery_new(struct nev *e)
{
	struct nats_delivery *d = calloc(1, sizeof(*d));
	const char *v = NULL;
	size_t n = 0;

	if (d == NULL)
		return NULL;
	d->msg = e->msg;
	e->msg = NULL;
	d->sseq = e->sseq;
	if (natsMsgHeader_Get(d->msg, "Nats-Msg-Id", &v) != NATS_OK ||
	    v == NULL || (n = strlen(v)) >= sizeof(d->id))
		n = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] > '~')
			n = 0;
	if (n > 0)
		memcpy(d->id, v, n + 1);
	else
		snprintf(d->id, sizeof(d->id), "%" PRIu64, e->sseq);
	d->pub.id = d->id;
	d->pub.data = natsMsg_GetData(d->msg);
	d->pub.len = (size_t)natsMsg_GetDataLength(d->msg);
	d->pub.count = e->delivered > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)e->delivered;
	return d;
}

static void
deliver(struct nats_src *s, struct nev *e)
{
	struct nats_delivery *d = delivery_new(e);

	/*
	 * A message carries its original subject, not the request's reply
	 * subject; the server fills its waiting requests in order, so it is
	 * counted against the oldest.
	 */
	if (s->nreq > 0 && --s->req[0].left == 0)
		end_req(s, &s->req[0]);
	if (d == NULL) {
		log_err("nats: out of memory; message %" PRIu64 " comes back "
		    "after ack_wait", e->sseq);
		return;		/* the caller destroys e->msg */
	}
	d->lease_end = clock_now() + s->ack_wait;
	s->delivered++;
	s->src.cb.message(s->src.cb.arg, &d->pub);
}

static void
status(struct nats_src *s, struct nev *e)
{
	struct pull_req *r = find_req(s, e->req);

	switch (e->status) {
	case 100:			/* heartbeat or flow control */
		return;
	case 404:			/* nothing there (no_wait) */
	case 408:			/* the request expired */
		break;
	default:
		/* 409: max waiting, consumer deleted, leadership change... */
		if (strstr(e->text, "Consumer Deleted") != NULL &&
		    !s->consumer_lost) {
			log_err("nats: consumer %s was deleted; pulling nothing "
			    "until it exists again", s->durable);
			s->consumer_lost = 1;
			s->consumer_retry = clock_now() + CONSUMER_RETRY;
			snprintf(s->last_status, sizeof(s->last_status), "%s",
			    e->text);
		} else if (strcmp(s->last_status, e->text) != 0) {
			log_warn("nats: pull request ended: %d %s", e->status,
			    e->text);
			snprintf(s->last_status, sizeof(s->last_status), "%s",
			    e->text);
		}
		break;
	}
	if (r != NULL)
		end_req(s, r);
}

static void
queue_bury(struct nats_src *s, struct nev *e)
{
	struct nats_delivery *d = delivery_new(e);

	if (d == NULL) {
		log_err("nats: out of memory; message %" PRIu64 " reached "
		    "max_deliver and is not dead-lettered", e->sseq);
		return;
	}
	snprintf(d->why, sizeof(d->why), "%s", e->text);
	d->pub.bury = d->why;
	log_warn("nats: msg_id=%s (stream sequence %" PRIu64 ") reached "
	    "max_deliver (%u); recording it as dead", d->id, e->sseq,
	    s->max_deliver);
	/*
	 * Handed out at once, a message more in flight; draining, it waits
	 * (and is logged as not recorded at exit).  A nacked one comes back
	 * through the buried list, on a later pull.
	 */
	if (!s->unpulled) {
		s->src.cb.message(s->src.cb.arg, &d->pub);
		return;
	}
	TAILQ_INSERT_TAIL(&s->buried, d, link);
}

static void
connection(struct nats_src *s, enum nev_type type)
{
	char a[32];

	switch (type) {
	case NEV_DISCONNECTED:
		if (!s->connected)
			return;
		s->connected = 0;
		s->down_since = clock_now();
		log_warn("nats: disconnected from %s; reconnecting (in-flight "
		    "work goes on, its acks wait for the connection)", s->url);
		break;
	case NEV_RECONNECTED:
		if (s->connected)
			return;
		s->connected = 1;
		log_info("nats: reconnected to %s after %s", s->url,
		    duration_fmt(clock_now() - s->down_since, a, sizeof(a)));
		s->publish_warned = 0;
		s->last_status[0] = '\0';
		break;
	case NEV_CLOSED:
		s->connected = 0;
		log_err("nats: connection closed for good");
		break;
	default:
		break;
	}
	/* Whatever was asked before the change is asked again. */
	end_all_reqs(s);
	s->owed = 0;
	if (s->src.cb.more != NULL)
		s->src.cb.more(s->src.cb.arg);
}

/* Messages that came after their request ended still count. */
static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct nats_src *s = w->data;
	struct nev_list list = STAILQ_HEAD_INITIALIZER(list);
	unsigned before = requested(s);
	struct nats_delivery *d, *next;
	struct nev *e;
	int64_t now = clock_now();

	pthread_mutex_lock(&s->mu);
	STAILQ_CONCAT(&list, &s->events);
	pthread_mutex_unlock(&s->mu);
	/* Buried messages pulled: hand them out first. */
	for (d = TAILQ_FIRST(&s->buried); d != NULL && s->buried_wanted > 0;
	    d = next) {
		next = TAILQ_NEXT(d, link);
		if (d->due > now)
			continue;
		TAILQ_REMOVE(&s->buried, d, link);
		s->buried_wanted--;
		d->counted = 0;
		s->src.cb.message(s->src.cb.arg, &d->pub);
	}
	s->buried_wanted = 0;
	TAILQ_FOREACH(d, &s->buried, link)
		d->counted = 0;
	while ((e = STAILQ_FIRST(&list)) != NULL) {
		STAILQ_REMOVE_HEAD(&list, link);
		switch (e->type) {
		case NEV_MSG:
			deliver(s, e);
			break;
		case NEV_STATUS:
			status(s, e);
			break;
		case NEV_BURY:
			queue_bury(s, e);
			break;
		case NEV_ERROR:
			log_err("nats: %s", e->text);
			break;
		default:
			connection(s, e->type);
			break;
		}
		if (e->msg != NULL)
			natsMsg_Destroy(e->msg);
		free(e);
	}
	send_requests(s);
	if (requested(s) < before && s->src.cb.more != NULL)
		s->src.cb.more(s->src.cb.arg);
}

static int ensure_consumer(struct nats_src *, char *, size_t);

/*
 * The consumer was deleted under us: make it again (create = yes) or
 * wait for an operator to (create = no), trying every CONSUMER_RETRY.
 * The JetStream call blocks the loop for API_TIMEOUT at most.
 */
static void
recover_consumer(struct nats_src *s)
{
	char err[1024];

	s->consumer_retry = clock_now() + CONSUMER_RETRY;
	if (ensure_consumer(s, err, sizeof(err)) < 0) {
		if (strcmp(s->last_status, err) != 0) {
			log_err("nats: %s", err);
			snprintf(s->last_status, sizeof(s->last_status), "%.150s",
			    err);
		}
		return;
	}
	log_info("nats: consumer %s is back; pulling again", s->durable);
	s->consumer_lost = 0;
	s->last_status[0] = '\0';
}

/* Requests the server never answered end here, a while after expiry. */
static void
tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct nats_src *s = t->data;
	int64_t now = clock_now();
	int ended = 0;

	for (unsigned i = 0; i < s->nreq;)
		if (now > s->req[i].expires + REQ_GRACE_MS) {
			end_req(s, &s->req[i]);
			ended = 1;
		} else
			i++;
	if (s->consumer_lost && s->connected && now >= s->consumer_retry)
		recover_consumer(s);
	send_requests(s);
	if ((ended || !TAILQ_EMPTY(&s->buried)) && s->src.cb.more != NULL)
		s->src.cb.more(s->src.cb.arg);
}

static void
nats_pull(struct source *src, unsigned n)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d;
	int64_t now = clock_now();

	s->unpulled = 0;
	TAILQ_FOREACH(d, &s->buried, link)
		if (n > 0 && d->due <= now && !d->counted) {
			d->counted = 1;
			s->buried_wanted++;
			n--;
		}
	if (s->buried_wanted > 0)
		ev_async_send(src->loop, &s->wake);
	s->owed += n;
	send_requests(s);
}

static unsigned
nats_wanted(const struct source *src)
{
	return requested((const struct nats_src *)src);
}

/*
 * The server cannot be told to end a pull request: messages for one still
 * open come anyway, for up to REQ_EXPIRES_MS (draining, they are nacked;
 * paused or with a store that cannot commit, held).
 */
static void
nats_unpull(struct source *src)
{
	struct nats_src *s = (struct nats_src *)src;

	end_all_reqs(s);
	s->owed = 0;
	s->buried_wanted = 0;
	s->unpulled = 1;
}

static int
nats_extend(struct source *src, struct delivery *pub, int64_t ms)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;
	int64_t now = clock_now();

	if (pub->bury != NULL)
		return 0;
	/*
	 * Disconnected, cnats keeps the +WPI for the reconnect; once the
	 * server's ack_wait has run out it has given the message to someone
	 * else, and the lease is lost.  Connected, the server does not say:
	 * a lost lease then shows as a redelivery, settled by the database.
	 */
	if (!s->connected && now >= d->lease_end)
		return -1;
	publish(s, natsMsg_GetReply(d->msg), "+WPI");
	if (s->connected)
		d->lease_end = now + s->ack_wait;
	return 0;
}

/*
 * A message the server gave up on is recorded: take it out of the work
 * queue, which no ack can do any more.  The answer comes to <inbox>.del;
 * another instance may have been first ("no message found").
 */
static void
delete_msg(struct nats_src *s, uint64_t sseq)
{
	char body[48], reply[96];
	natsStatus st;

	snprintf(body, sizeof(body), "{\"seq\":%" PRIu64 "}", sseq);
	snprintf(reply, sizeof(reply), "%s.del", s->inbox);
	st = natsConnection_PublishRequestString(s->nc, s->delete_subject,
	    reply, body);
	if (st != NATS_OK)
		log_warn("nats: cannot delete dead message %" PRIu64 " from "
		    "stream %s: %s", sseq, s->stream, natsStatus_GetText(st));
}

static void
nats_ack(struct source *src, struct delivery *pub)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;

	if (pub->bury == NULL) {
		publish(s, natsMsg_GetReply(d->msg), "+ACK");
		s->acked++;
	} else
		delete_msg(s, d->sseq);
	free_delivery(d);
}

static void
nats_nack(struct source *src, struct delivery *pub, int64_t delay_ms)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;
	char body[64];

	if (pub->bury != NULL) {
		/* Not recorded yet: try again later; the server will not. */
		d->due = clock_now() + (delay_ms > 1000 ? delay_ms : 1000);
		TAILQ_INSERT_TAIL(&s->buried, d, link);
		return;
	}
	/*
	 * Draining, the server may still hold our pull requests open: an
	 * immediate nak would come straight back to them, again and again,
	 * until max_deliver.  Out of their reach, it goes to others.
	 */
	if (s->unpulled && delay_ms < DRAIN_NAK_MS)
		delay_ms = DRAIN_NAK_MS;
	if (delay_ms > 0)
		snprintf(body, sizeof(body), "-NAK {\"delay\": %" PRId64 "}",
		    delay_ms * 1000000);
	else
		snprintf(body, sizeof(body), "-NAK");
	publish(s, natsMsg_GetReply(d->msg), body);
	s->nacked++;
	free_delivery(d);
}

static void
nats_term(struct source *src, struct delivery *pub, const char *why)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;

	if (pub->bury == NULL) {
		publish(s, natsMsg_GetReply(d->msg), "+TERM");
		s->termed++;
	} else
		delete_msg(s, d->sseq);	/* recorded as invalid: out it goes */
	free_delivery(d);
}

/* Dead or invalid, and recorded: a copy to dead_letter_subject. */
static void
nats_dead(struct source *src, struct delivery *pub, const char *why)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;
	natsMsg *m = NULL;
	natsStatus st;
	char seq[24];

	s->dead_letters++;
	if (s->dlq[0] == '\0')
		return;
	snprintf(seq, sizeof(seq), "%" PRIu64, d->sseq);
	st = natsMsg_Create(&m, s->dlq, NULL, pub->data, (int)pub->len);
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, "Mandrill-Reason", why);
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, "Mandrill-Stream-Seq", seq);
	if (st == NATS_OK)
		st = natsConnection_PublishMsg(s->nc, m);
	if (st != NATS_OK)
		log_warn("nats: cannot publish dead letter %s to %s: %s",
		    pub->id, s->dlq, natsStatus_GetText(st));
	natsMsg_Destroy(m);
}

/* ---- start-up: connect, find or create the stream and consumer ----- */

static int
fail(char *err, size_t len, const char *what, natsStatus st, jsErrCode jerr)
{
	const char *last = nats_GetLastError(NULL);

	if (jerr != 0)
		snprintf(err, len, "%s: %s (JetStream error %d)", what,
		    last && *last ? last : natsStatus_GetText(st), (int)jerr);
	else
		snprintf(err, len, "%s: %s", what,
		    last && *last ? last : natsStatus_GetText(st));
	return -1;
}

static int
ensure_stream(struct nats_src *s, char *err, size_t len)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	const char *subjects[1] = { s->subject };
	char what[1024];
	natsStatus st;
	int covered = 0;

	st = js_GetStreamInfo(&si, s->js, s->stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		if (!s->create) {
			snprintf(err, len, "stream %s does not exist on %s "
			    "(create = no)", s->stream, s->url);
			return -1;
		}
		jsStreamConfig_Init(&sc);
		sc.Name = s->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Retention = js_WorkQueuePolicy;
		sc.Replicas = (int64_t)s->replicas;
		jerr = 0;
		st = js_AddStream(NULL, s->js, &sc, NULL, &jerr);
		if (st != NATS_OK) {
			snprintf(what, sizeof(what), "cannot create stream %s "
			    "for subject %s", s->stream, s->subject);
			return fail(err, len, what, st, jerr);
		}
		log_info("nats: created stream %s (subject %s, file storage, "
		    "work queue, %u replicas)", s->stream, s->subject,
		    s->replicas);
		s->stream_only_ours = 1;
		return 0;
	}
	if (st != NATS_OK) {
		snprintf(what, sizeof(what), "stream %s", s->stream);
		return fail(err, len, what, st, jerr);
	}
	s->stream_only_ours = si->Config->SubjectsLen == 1 &&
	    strcmp(si->Config->Subjects[0], s->subject) == 0;
	for (int i = 0; i < si->Config->SubjectsLen; i++) {
		if (nats_subject_match(si->Config->Subjects[i], s->subject))
			covered = 1;
		if (s->dlq[0] != '\0' &&
		    nats_subject_match(si->Config->Subjects[i], s->dlq)) {
			snprintf(err, len, "stream %s takes dead_letter_subject "
			    "%s (by %s): dead letters would come back as work",
			    s->stream, s->dlq, si->Config->Subjects[i]);
			jsStreamInfo_Destroy(si);
			return -1;
		}
	}
	jsStreamInfo_Destroy(si);
	if (!covered) {
		snprintf(err, len, "stream %s exists but does not take subject "
		    "%s: messages published there would never arrive",
		    s->stream, s->subject);
		return -1;
	}
	return 0;
}

/* The first difference between an existing consumer and ours, or NULL. */
/* JetStream's MaxDeliver: our 0, no limit, is its -1. */
static int64_t
max_deliver(const struct nats_src *s)
{
	return s->max_deliver == 0 ? -1 : (int64_t)s->max_deliver;
}

static const char *
consumer_mismatch(const struct nats_src *s, const jsConsumerConfig *cc,
    char *buf, size_t len)
{
	char a[32], b[32];

	if (cc->DeliverSubject != NULL && cc->DeliverSubject[0] != '\0')
		return "it is a push consumer, not a pull consumer";
	if (cc->AckPolicy != js_AckExplicit)
		return "its ack policy is not explicit";
	/*
	 * It must take our subject and nothing else: any other message of
	 * the stream (a dead letter copied back, say) would be taken as a
	 * restart request.
	 */
	if (cc->FilterSubject != NULL && cc->FilterSubject[0] != '\0' ?
	    strcmp(cc->FilterSubject, s->subject) != 0 : !s->stream_only_ours) {
		snprintf(buf, len, "its filter subject is %s, not %s",
		    cc->FilterSubject && cc->FilterSubject[0] ?
		    cc->FilterSubject : "empty (every subject of the stream)",
		    s->subject);
		return buf;
	}
	if (cc->AckWait != s->ack_wait * 1000000) {
		snprintf(buf, len, "its ack_wait is %s, not %s",
		    duration_fmt(cc->AckWait / 1000000, a, sizeof(a)),
		    duration_fmt(s->ack_wait, b, sizeof(b)));
		return buf;
	}
	if (cc->MaxDeliver != max_deliver(s) &&
	    !(cc->MaxDeliver <= 0 && max_deliver(s) < 0)) {
		snprintf(buf, len, "its max_deliver is %" PRId64 ", not %u",
		    cc->MaxDeliver, s->max_deliver);
		return buf;
	}
	if (cc->MaxAckPending != (int64_t)s->max_ack_pending) {
		snprintf(buf, len, "its max_ack_pending is %" PRId64 ", not %u",
		    cc->MaxAckPending, s->max_ack_pending);
		return buf;
	}
	return NULL;
}

static void
consumer_config(const struct nats_src *s, jsConsumerConfig *cc)
{
	jsConsumerConfig_Init(cc);
	cc->Durable = s->durable;
	cc->FilterSubject = s->subject;
	cc->AckPolicy = js_AckExplicit;
	cc->AckWait = s->ack_wait * 1000000;
	cc->MaxDeliver = max_deliver(s);
	cc->MaxAckPending = s->max_ack_pending;
	cc->MaxWaiting = 512;
}

static int
ensure_consumer(struct nats_src *s, char *err, size_t len)
{
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	char what[1600], buf[640];
	const char *why;
	natsStatus st;

	st = js_GetConsumerInfo(&ci, s->js, s->stream, s->durable, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
		if (!s->create) {
			snprintf(err, len, "consumer %s of stream %s does not "
			    "exist (create = no)", s->durable, s->stream);
			return -1;
		}
		consumer_config(s, &cc);
		jerr = 0;
		if ((st = js_AddConsumer(NULL, s->js, s->stream, &cc, NULL,
		    &jerr)) != NATS_OK) {
			snprintf(what, sizeof(what), "cannot create consumer %s "
			    "of stream %s", s->durable, s->stream);
			return fail(err, len, what, st, jerr);
		}
		log_info("nats: created durable pull consumer %s", s->durable);
		return 0;
	}
	if (st != NATS_OK) {
		snprintf(what, sizeof(what), "consumer %s of stream %s",
		    s->durable, s->stream);
		return fail(err, len, what, st, jerr);
	}
	why = consumer_mismatch(s, ci->Config, buf, sizeof(buf));
	jsConsumerInfo_Destroy(ci);
	if (why == NULL)
		return 0;
	if (!s->create) {
		snprintf(err, len, "consumer %s of stream %s does not match "
		    "[source]: %s (create = no)", s->durable, s->stream, why);
		return -1;
	}
	log_warn("nats: consumer %s: %s; updating it to [source]", s->durable,
	    why);
	consumer_config(s, &cc);
	jerr = 0;
	if ((st = js_UpdateConsumer(NULL, s->js, s->stream, &cc, NULL,
	    &jerr)) != NATS_OK) {
		snprintf(what, sizeof(what), "consumer %s of stream %s does not "
		    "match [source] (%s) and cannot be updated", s->durable,
		    s->stream, why);
		return fail(err, len, what, st, jerr);
	}
	return 0;
}

static int
set_options(struct nats_src *s, char *err, size_t len)
{
	char name[128], host[64] = "";
	natsStatus st;

	gethostname(host, sizeof(host) - 1);
	snprintf(name, sizeof(name), "mandrilld %s pid %d", host, (int)getpid());
	if ((st = natsOptions_Create(&s->opts)) != NATS_OK)
		return fail(err, len, "nats options", st, 0);
	if (natsauth_apply(&s->auth, s->opts, err, len) < 0)
		return -1;
	st = natsOptions_SetName(s->opts, name);
	if (st == NATS_OK)
		st = natsOptions_SetTimeout(s->opts, CONNECT_TIMEOUT);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(s->opts, -1);
	if (st == NATS_OK)
		st = natsOptions_SetCustomReconnectDelay(s->opts,
		    reconnect_delay, s);
	if (st == NATS_OK)
		st = natsOptions_SetPingInterval(s->opts, 5000);
	if (st == NATS_OK)
		st = natsOptions_SetMaxPingsOut(s->opts, 2);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectBufSize(s->opts, 64 * 1024 * 1024);
	if (st == NATS_OK)
		st = natsOptions_SetDisconnectedCB(s->opts, on_disconnected, s);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectedCB(s->opts, on_reconnected, s);
	if (st == NATS_OK)
		st = natsOptions_SetClosedCB(s->opts, on_closed, s);
	if (st == NATS_OK)
		st = natsOptions_SetErrorHandler(s->opts, on_error, s);
	if (st != NATS_OK)
		return fail(err, len, "nats options", st, 0);
	return 0;
}

static int
nats_start(struct source *src, char *err, size_t len)
{
	struct nats_src *s = (struct nats_src *)src;
	jsOptions jo;
	natsInbox *inbox = NULL;
	natsStatus st;
	char what[CONF_PATH_MAX + 64];

	if (s->auth_err[0] != '\0') {
		snprintf(err, len, "%s", s->auth_err);
		return -1;
	}
	/* Before any cnats thread can push an event. */
	ev_async_start(src->loop, &s->wake);
	if (set_options(s, err, len) < 0)
		return -1;
	if ((st = natsConnection_Connect(&s->nc, s->opts)) != NATS_OK) {
		snprintf(what, sizeof(what), "cannot connect to %s", s->url);
		return fail(err, len, what, st, 0);
	}
	jsOptions_Init(&jo);
	jo.Wait = API_TIMEOUT;
	if ((st = natsConnection_JetStream(&s->js, s->nc, &jo)) != NATS_OK)
		return fail(err, len, "JetStream context", st, 0);
	if (ensure_stream(s, err, len) < 0 || ensure_consumer(s, err, len) < 0)
		return -1;
	if ((st = natsInbox_Create(&inbox)) != NATS_OK)
		return fail(err, len, "inbox", st, 0);
	snprintf(s->inbox, sizeof(s->inbox), "%s", (const char *)inbox);
	natsInbox_Destroy(inbox);
	snprintf(what, sizeof(what), "%s.*", s->inbox);
	st = natsConnection_Subscribe(&s->sub, s->nc, what, on_msg, s);
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(s->sub, -1, -1);
	if (st == NATS_OK)
		/* One instance of those sharing the durable takes each. */
		st = natsConnection_QueueSubscribe(&s->adv, s->nc,
		    s->adv_subject, s->durable, on_advisory, s);
	if (st == NATS_OK)
		st = natsConnection_Flush(s->nc);
	if (st != NATS_OK)
		return fail(err, len, "subscribe", st, 0);
	s->connected = 1;
	ev_timer_start(src->loop, &s->tick);
	log_info("nats: consuming %s (stream %s, durable %s) from %s, "
	    "ack_wait %" PRId64 " ms, max_deliver %u", s->subject, s->stream,
	    s->durable, s->url, s->ack_wait, s->max_deliver);
	return 0;
}

static void
nats_stop(struct source *src)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d;
	struct nev *e;

	ev_async_stop(src->loop, &s->wake);
	ev_timer_stop(src->loop, &s->tick);
	if (s->nc != NULL && s->connected)
		natsConnection_FlushTimeout(s->nc, FLUSH_TIMEOUT);
	pthread_mutex_lock(&s->mu);
	s->closing = 1;
	pthread_mutex_unlock(&s->mu);
	/* Closed first: an advisory callback inside js_GetMsg fails fast. */
	if (s->nc != NULL)
		natsConnection_Close(s->nc);
	if (s->sub != NULL)
		natsSubscription_Destroy(s->sub);
	if (s->adv != NULL)
		natsSubscription_Destroy(s->adv);
	if (s->js != NULL)
		jsCtx_Destroy(s->js);
	if (s->nc != NULL)
		natsConnection_Destroy(s->nc);
	/* Messages are freed while the library is still there. */
	while ((e = STAILQ_FIRST(&s->events)) != NULL) {
		STAILQ_REMOVE_HEAD(&s->events, link);
		if (e->msg != NULL)
			natsMsg_Destroy(e->msg);
		free(e);
	}
	if (!TAILQ_EMPTY(&s->buried))
		log_warn("nats: exiting with dead letters not yet recorded; "
		    "they stay in stream %s", s->stream);
	while ((d = TAILQ_FIRST(&s->buried)) != NULL) {
		TAILQ_REMOVE(&s->buried, d, link);
		free_delivery(d);
	}
	natsOptions_Destroy(s->opts);
	/* No cnats thread may still be inside a callback when s is freed. */
	if (nats_CloseAndWait(FLUSH_TIMEOUT) != NATS_OK) {
		log_warn("nats: the client library did not stop in time; "
		    "leaving its state as it is");
		return;
	}
	pthread_mutex_destroy(&s->mu);
	natsauth_free(&s->auth);
	free(s);
}

/* What shapes the consumer cannot change: reload.c refuses it before. */
static int
nats_reload(struct source *src, const struct conf *c, char *err, size_t len)
{
	struct nats_src *s = (struct nats_src *)src;
	struct natsauth a;
	const char *changed;

	/* The files again: one gone or open to others fails the reload. */
	if (natsauth_load(&a, c, err, len) < 0)
		return -1;
	changed = natsauth_changed(&s->auth, &a);
	natsauth_free(&a);
	if (changed != NULL) {
		snprintf(err, len, "[source] %s (or the file it names) changed: "
		    "it cannot change without restarting mandrilld", changed);
		return -1;
	}
	snprintf(s->dlq, sizeof(s->dlq), "%s", c->dead_letter_subject);
	return 0;
}

static void
nats_dump(const struct source *src)
{
	const struct nats_src *s = (const struct nats_src *)src;

	log_always(LOG_INFO, "nats: %s %s, stream %s, durable %s; delivered %"
	    PRIu64 ", acked %" PRIu64 ", nacked %" PRIu64 ", terminated %"
	    PRIu64 ", dead letters %" PRIu64 "; pull requests %" PRIu64
	    " (%u open, %u messages owed)", s->connected ? "connected to" :
	    "disconnected from", s->url, s->stream, s->durable, s->delivered,
	    s->acked, s->nacked, s->termed, s->dead_letters, s->requests,
	    s->nreq, requested(s));
}

static const struct source_ops nats_ops = {
	.name = "nats",
	.start = nats_start,
	.pull = nats_pull,
	.extend = nats_extend,
	.ack = nats_ack,
	.nack = nats_nack,
	.term = nats_term,
	.dead = nats_dead,
	.stop = nats_stop,
	.unpull = nats_unpull,
	.reload = nats_reload,
	.wanted = nats_wanted,
	.dump = nats_dump,
};

struct source *
source_nats_new(struct ev_loop *loop, const struct conf *c,
    const struct source_cb *cb)
{
	struct nats_src *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return NULL;
	}
	s->src.ops = &nats_ops;
	s->src.loop = loop;
	s->src.cb = *cb;
	s->src.ack_deadline = c->ack_wait;
	STAILQ_INIT(&s->events);
	TAILQ_INIT(&s->buried);
	natsurl_redact(c->url, s->url, sizeof(s->url));
	/* The secret files are read now; a failure is start's to report. */
	if (natsauth_load(&s->auth, c, s->auth_err, sizeof(s->auth_err)) < 0 &&
	    s->auth_err[0] == '\0')
		snprintf(s->auth_err, sizeof(s->auth_err), "[source]: cannot "
		    "read the credentials");
	snprintf(s->stream, sizeof(s->stream), "%s", c->stream);
	snprintf(s->subject, sizeof(s->subject), "%s", c->subject);
	snprintf(s->durable, sizeof(s->durable), "%s", c->durable);
	snprintf(s->dlq, sizeof(s->dlq), "%s", c->dead_letter_subject);
	snprintf(s->next_subject, sizeof(s->next_subject),
	    "$JS.API.CONSUMER.MSG.NEXT.%s.%s", s->stream, s->durable);
	snprintf(s->delete_subject, sizeof(s->delete_subject),
	    "$JS.API.STREAM.MSG.DELETE.%s", s->stream);
	snprintf(s->adv_subject, sizeof(s->adv_subject),
	    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", s->stream,
	    s->durable);
	s->ack_wait = c->ack_wait;
	s->max_deliver = c->max_deliver;
	s->max_ack_pending = c->max_ack_pending;
	s->create = c->create;
	s->replicas = c->replicas;
	ev_async_init(&s->wake, wake_cb);
	ev_timer_init(&s->tick, tick_cb, TICK_S, TICK_S);
	s->wake.data = s->tick.data = s;
	return &s->src;
}
