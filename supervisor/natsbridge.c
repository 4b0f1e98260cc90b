/*
 * natsbridge: the one way from a foreign thread to the loop.
 *
 * cnats reads the socket on its own threads and runs every callback
 * there; the consumer's recovery runs on a thread of its own.  None of
 * them touches the supervisor: they append an event (a message, a
 * status, a connection change, a dead letter to record, the recovery's
 * end) to a locked queue and wake the loop with ev_async_send, the one
 * libev call that is safe from another thread.  The loop takes the whole
 * queue at once and acts on it.  Once closing, whatever comes is
 * dropped, so nothing is queued for a loop that no longer listens.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nats.h"

#define RECONNECT_MIN	100	/* ms, first reconnect delay */
#define RECONNECT_MAX	5000	/* ms, longest reconnect delay */

int
bridge_init(struct bridge *b, struct ev_loop *loop,
    void (*cb)(struct ev_loop *, ev_async *, int), void *data)
{
	if (pthread_mutex_init(&b->mu, NULL) != 0)
		return -1;
	STAILQ_INIT(&b->events);
	b->closing = 0;
	b->loop = loop;
	ev_async_init(&b->wake, cb);
	b->wake.data = data;
	return 0;
}

/* Before any thread can push an event. */
void
bridge_start(struct bridge *b)
{
	ev_async_start(b->loop, &b->wake);
}

struct nev *
bridge_event(enum nev_type type)
{
	struct nev *e = calloc(1, sizeof(*e));

	if (e != NULL)
		e->type = type;
	return e;
}

void
bridge_event_free(struct nev *e)
{
	if (e->msg != NULL)
		natsMsg_Destroy(e->msg);
	if (e->adv != NULL)
		natsMsg_Destroy(e->adv);
	free(e);
}

/* libev coalesces the wake-ups: a pending one costs no system call. */
void
bridge_push(struct bridge *b, struct nev *e)
{
	pthread_mutex_lock(&b->mu);
	if (b->closing) {
		pthread_mutex_unlock(&b->mu);
		bridge_event_free(e);
		return;
	}
	STAILQ_INSERT_TAIL(&b->events, e, link);
	ev_async_send(b->loop, &b->wake);
	pthread_mutex_unlock(&b->mu);
}

/* The loop itself wants its callback soon (buried messages pulled). */
void
bridge_wake(struct bridge *b)
{
	ev_async_send(b->loop, &b->wake);
}

void
bridge_take(struct bridge *b, struct nev_list *list)
{
	pthread_mutex_lock(&b->mu);
	STAILQ_CONCAT(list, &b->events);
	pthread_mutex_unlock(&b->mu);
}

void
bridge_stop(struct bridge *b)
{
	ev_async_stop(b->loop, &b->wake);
}

void
bridge_close(struct bridge *b)
{
	pthread_mutex_lock(&b->mu);
	b->closing = 1;
	pthread_mutex_unlock(&b->mu);
}

/* Messages are freed while the library is still there. */
void
bridge_free(struct bridge *b)
{
	struct nev *e;

	while ((e = STAILQ_FIRST(&b->events)) != NULL) {
		STAILQ_REMOVE_HEAD(&b->events, link);
		bridge_event_free(e);
	}
}

/* ---- cnats threads: queue and wake, nothing else ------------------- */

void
bridge_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
    void *arg)
{
	struct nats_src *s = arg;
	const char *status = NULL, *desc = NULL;
	struct nev *e;

	if ((e = bridge_event(NEV_MSG)) == NULL) {
		/* Not acked: the server sends it again after ack_wait. */
		natsMsg_Destroy(m);
		return;
	}
	if (confirm_subject(s, natsMsg_GetSubject(m), &e->req)) {
		e->type = NEV_ACKED;	/* the server applied that ack */
		natsMsg_Destroy(m);
		bridge_push(&s->bridge, e);
		return;
	}
	e->req = ledger_id_of(natsMsg_GetSubject(m));
	if (dead_delete_answer(m, e)) {
		natsMsg_Destroy(m);
		if (e->type == NEV_ERROR)
			bridge_push(&s->bridge, e);
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
	    &e->sseq, &e->pending) < 0) {
		e->type = NEV_ERROR;
		snprintf(e->text, sizeof(e->text), "ignored a message without "
		    "a JetStream ack subject on %.80s", natsMsg_GetSubject(m));
		natsMsg_Destroy(m);
	} else
		e->msg = m;
	bridge_push(&s->bridge, e);
}

static void
on_conn(void *arg, enum nev_type type)
{
	struct nats_src *s = arg;
	struct nev *e = bridge_event(type);

	if (e != NULL)
		bridge_push(&s->bridge, e);
}

static void
on_disconnected(natsConnection *nc, void *arg)
{
	on_conn(arg, NEV_DISCONNECTED);
}

static void
on_reconnected(natsConnection *nc, void *arg)
{
	on_conn(arg, NEV_RECONNECTED);
}

static void
on_closed(natsConnection *nc, void *arg)
{
	on_conn(arg, NEV_CLOSED);
}

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
    void *arg)
{
	struct nats_src *s = arg;
	struct nev *e = bridge_event(NEV_ERROR);

	if (e == NULL)
		return;
	snprintf(e->text, sizeof(e->text), "%s", natsStatus_GetText(err));
	bridge_push(&s->bridge, e);
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

natsStatus
bridge_options(struct nats_src *s, natsOptions *opts)
{
	natsStatus st;

	st = natsOptions_SetCustomReconnectDelay(opts, reconnect_delay, s);
	if (st == NATS_OK)
		st = natsOptions_SetDisconnectedCB(opts, on_disconnected, s);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectedCB(opts, on_reconnected, s);
	if (st == NATS_OK)
		st = natsOptions_SetClosedCB(opts, on_closed, s);
	if (st == NATS_OK)
		st = natsOptions_SetErrorHandler(opts, on_error, s);
	return st;
}
