/*
 * natsdead: the nats source's dead letters.
 *
 * A message the server stops delivering (max_deliver) is announced by a
 * MAX_DELIVERIES advisory.  The advisory's callback thread fetches the
 * message by stream sequence and queues it; the loop hands it to the
 * supervisor as a delivery marked `bury`, which a worker records in
 * dead_letters.  The advisories are kept in a stream of their own
 * (<stream>-advisories, made with create = yes) and read through a
 * durable consumer shared by the instances: one that comes while no
 * instance is connected waits there, and each is acked only once its
 * burial is recorded.  Once recorded it is deleted from the stream (no ack can
 * take it out of the work queue any more); one not yet recorded waits on
 * the buried list and is handed out again on a later pull.  Every dead
 * or invalid message, once recorded, is also copied to
 * dead_letter_subject when one is set.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "nats.h"

/* ---- cnats threads ------------------------------------------------- */

/* The server gave up on a message: fetch it, for the dead letters. */
void
dead_on_advisory(natsConnection *nc, natsSubscription *sub, natsMsg *m,
    void *arg)
{
	struct nats_src *s = arg;
	uint64_t seq, deliveries;
	jsErrCode jerr = 0;
	natsStatus st;
	struct nev *e;
	int durable = s->spec.adv_stream[0] != '\0';

	if (nats_advisory_parse(natsMsg_GetData(m),
	    (size_t)natsMsg_GetDataLength(m), &seq, &deliveries) < 0) {
		if (durable)	/* not one: out of the stream with it */
			natsMsg_Term(m, NULL);
		natsMsg_Destroy(m);
		return;
	}
	if ((e = bridge_event(NEV_BURY)) == NULL) {
		natsMsg_Destroy(m);	/* not acked: it comes again */
		return;
	}
	e->sseq = seq;
	e->delivered = deliveries;
	st = js_GetMsg(&e->msg, s->js, s->spec.stream, seq, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
		if (durable)	/* gone already: recorded elsewhere */
			natsMsg_Ack(m, NULL);
		natsMsg_Destroy(m);
		free(e);
		return;
	}
	if (durable && st == NATS_OK)
		e->adv = m;	/* acked when the burial is recorded */
	else
		natsMsg_Destroy(m);	/* an error: it comes again */
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
	bridge_push(&s->bridge, e);
}

/* The answer to a delete (<inbox>.del): 1, with e an error to log or not. */
int
dead_delete_answer(natsMsg *m, struct nev *e)
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

/* ---- the loop thread ----------------------------------------------- */

void
dead_bury(struct nats_src *s, struct nev *e)
{
	struct nats_delivery *d;

	/*
	 * The advisory again (its ack waits for the burial, which waits
	 * here): one burial of the message, acked with the newer advisory.
	 */
	TAILQ_FOREACH(d, &s->buried, link)
		if (d->sseq == e->sseq) {
			if (e->adv != NULL) {
				if (d->adv != NULL)
					natsMsg_Destroy(d->adv);
				d->adv = e->adv;
				e->adv = NULL;
			}
			return;
		}
	d = nats_delivery_new(e);

	if (d == NULL) {
		log_err("nats: out of memory; message %" PRIu64 " reached "
		    "max_deliver and is not dead-lettered", e->sseq);
		return;
	}
	snprintf(d->why, sizeof(d->why), "%s", e->text);
	d->pub.bury = d->why;
	log_warn("nats: msg_id=%s (stream sequence %" PRIu64 ") reached "
	    "max_deliver (%u); recording it as dead", d->id, e->sseq,
	    s->spec.max_deliver);
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

/* Buried messages pulled (and due): hand them out, before anything else. */
void
dead_hand_out(struct nats_src *s, int64_t now)
{
	struct nats_delivery *d, *next;

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
}

/* A pull of *n takes buried messages that are due first; *n is the rest. */
void
dead_pull(struct nats_src *s, unsigned *n, int64_t now)
{
	struct nats_delivery *d;

	TAILQ_FOREACH(d, &s->buried, link)
		if (*n > 0 && d->due <= now && !d->counted) {
			d->counted = 1;
			s->buried_wanted++;
			(*n)--;
		}
	if (s->buried_wanted > 0)
		bridge_wake(&s->bridge);
}

/* Not recorded yet: try again later; the server will not. */
void
dead_later(struct nats_src *s, struct nats_delivery *d, int64_t delay_ms)
{
	d->due = clock_now() + (delay_ms > 1000 ? delay_ms : 1000);
	TAILQ_INSERT_TAIL(&s->buried, d, link);
}

/*
 * A message the server gave up on is recorded: take it out of the work
 * queue, which no ack can do any more.  The answer comes to <inbox>.del;
 * another instance may have been first ("no message found").
 */
void
dead_delete(struct nats_src *s, uint64_t sseq)
{
	char body[48], reply[96];
	natsStatus st;

	snprintf(body, sizeof(body), "{\"seq\":%" PRIu64 "}", sseq);
	snprintf(reply, sizeof(reply), "%s.del", s->inbox);
	st = natsConnection_PublishRequestString(s->nc, s->delete_subject,
	    reply, body);
	if (st != NATS_OK)
		log_warn("nats: cannot delete dead message %" PRIu64 " from "
		    "stream %s: %s", sseq, s->spec.stream,
		    natsStatus_GetText(st));
}

/* A buried message is recorded: out of the stream, its advisory acked. */
void
dead_recorded(struct nats_src *s, struct nats_delivery *d)
{
	dead_delete(s, d->sseq);
	if (d->adv != NULL) {
		natsMsg_Ack(d->adv, NULL);
		natsMsg_Destroy(d->adv);
		d->adv = NULL;
	}
}

/* Dead or invalid, and recorded: a copy to dead_letter_subject. */
void
nats_dead(struct source *src, struct delivery *pub, const char *why)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_delivery *d = (struct nats_delivery *)pub;
	natsMsg *m = NULL;
	natsStatus st;
	char seq[24];

	s->dead_letters++;
	if (s->spec.dlq[0] == '\0')
		return;
	snprintf(seq, sizeof(seq), "%" PRIu64, d->sseq);
	st = natsMsg_Create(&m, s->spec.dlq, NULL, pub->data, (int)pub->len);
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, "Mandrill-Reason", why);
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, "Mandrill-Stream-Seq", seq);
	if (st == NATS_OK)
		st = natsConnection_PublishMsg(s->nc, m);
	if (st != NATS_OK)
		log_warn("nats: cannot publish dead letter %s to %s: %s",
		    pub->id, s->spec.dlq, natsStatus_GetText(st));
	natsMsg_Destroy(m);
}

/*
 * A dead letter again, on the stream's subject with the retry header
 * naming the dead letter (and no Nats-Msg-Id, so that the stream's
 * duplicate window does not drop it).  A core publish: buffered, never
 * blocking the loop, and not confirmed by JetStream; the answer says so.
 */
int
nats_retry(struct source *src, const char *data, size_t len, uint64_t dead_id,
    char *msg, size_t msglen)
{
	struct nats_src *s = (struct nats_src *)src;
	natsMsg *m = NULL;
	natsStatus st;
	char id[24];

	if (s->nc == NULL) {
		snprintf(msg, msglen, "not connected to NATS");
		return -1;
	}
	snprintf(id, sizeof(id), "%" PRIu64, dead_id);
	st = natsMsg_Create(&m, s->spec.subject, NULL, data, (int)len);
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, NATS_RETRY_HEADER, id);
	if (st == NATS_OK)
		st = natsConnection_PublishMsg(s->nc, m);
	natsMsg_Destroy(m);
	if (st != NATS_OK) {
		snprintf(msg, msglen, "publish to %s: %s", s->spec.subject,
		    natsStatus_GetText(st));
		return -1;
	}
	snprintf(msg, msglen, "published again (a core publish: JetStream "
	    "does not confirm it)");
	return 0;
}

int
dead_waiting(const struct nats_src *s)
{
	return !TAILQ_EMPTY(&s->buried);
}

void
dead_free(struct nats_src *s)
{
	struct nats_delivery *d;

	if (!TAILQ_EMPTY(&s->buried))
		log_warn("nats: exiting with dead letters not yet recorded; "
		    "they stay in stream %s", s->spec.stream);
	while ((d = TAILQ_FIRST(&s->buried)) != NULL) {
		TAILQ_REMOVE(&s->buried, d, link);
		nats_delivery_free(d);
	}
}
