/*
 * natsack: a delivery of the nats source and what the supervisor says of
 * it: ack (+ACK), extend (+WPI), nack with a delay (-NAK) and term
 * (+TERM), each published to the message's reply subject.  Publishing is
 * thread-safe and buffered in cnats, so the loop never waits on the
 * network; a publish that fails is counted and logged at most once per
 * PUBLISH_WARN_MS, and the server redelivers what was not acked.  A
 * buried delivery (a dead letter) is not the consumer's any more: its
 * ack and term delete it from the stream instead (natsdead.c).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "nats.h"

#define PUBLISH_WARN_MS	10000	/* publish failures: one line this often */
#define DRAIN_NAK_MS	(LEDGER_EXPIRES_MS + LEDGER_GRACE_MS + 2000)

/*
 * A delivery of the event's message, which it takes over; NULL when out
 * of memory (the message stays with the event).  Its id is the
 * publisher's Nats-Msg-Id when that is a printable token (mandrill-publish
 * sets it to the payload's msg_id), so that the log and the database name
 * a message alike; else the stream sequence.
 */
struct nats_delivery *
nats_delivery_new(struct nev *e)
{
	struct nats_delivery *d = calloc(1, sizeof(*d));
	const char *v = NULL;
	size_t n = 0;

	if (d == NULL)
		return NULL;
	d->msg = e->msg;
	e->msg = NULL;
	d->adv = e->adv;
	e->adv = NULL;
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
	if (natsMsgHeader_Get(d->msg, NATS_RETRY_HEADER, &v) == NATS_OK &&
	    v != NULL)
		d->pub.retry_of = strtoull(v, NULL, 10);
	return d;
}

void
nats_delivery_free(struct nats_delivery *d)
{
	if (d->adv != NULL)	/* not recorded: the advisory comes again */
		natsMsg_Destroy(d->adv);
	if (d->msg != NULL)
		natsMsg_Destroy(d->msg);
	free(d);
}

/* One line per PUBLISH_WARN_MS at most, with the count since the last. */
void
nats_publish_failed(struct nats_src *s, const char *what, natsStatus st)
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
		nats_publish_failed(s, data, st);
}

int
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
		d->lease_end = now + s->spec.ack_wait;
	return 0;
}

void
nats_ack(struct source *src, struct delivery *pub)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;

	if (pub->bury == NULL) {
		confirm_ack(s, natsMsg_GetReply(d->msg), d->lease_end);
		s->acked++;
	} else
		dead_recorded(s, d);
	nats_delivery_free(d);
}

void
nats_nack(struct source *src, struct delivery *pub, int64_t delay_ms)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;
	char body[64];

	if (pub->bury != NULL) {
		dead_later(s, d, delay_ms);
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
	nats_delivery_free(d);
}

void
nats_event(struct source *src, const char *json, size_t len)
{
	struct nats_src *s = (struct nats_src *)src;
	natsStatus st;

	if (s->spec.events[0] == '\0')
		return;
	st = natsConnection_Publish(s->nc, s->spec.events, json, (int)len);
	if (st != NATS_OK)
		nats_publish_failed(s, "an event", st);
}

void
nats_forget(struct source *src, struct delivery *pub)
{
	nats_delivery_free((struct nats_delivery *)pub);
}

void
nats_term(struct source *src, struct delivery *pub, const char *why)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;

	if (pub->bury == NULL) {
		publish(s, natsMsg_GetReply(d->msg), "+TERM");
		s->termed++;
	} else
		dead_recorded(s, d);	/* recorded as invalid: out it goes */
	nats_delivery_free(d);
}
