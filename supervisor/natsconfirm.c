/*
 * natsconfirm: acks the server confirms (JetStream's double ack).
 *
 * Each +ACK is published with a reply subject, <inbox>.ack<token>; the
 * server answers it once it has applied the ack.  An ack it did not
 * answer within CONFIRM_RETRY_MS is sent again, until it is answered or
 * the message's lease at the server has ended, after which the server
 * redelivers it anyway (and a redelivery of a known outcome is settled
 * as a duplicate: by the database, or in fleet mode by the fleet's
 * record of the msg_id).  So an ack sent while a consumer has no leader
 * (an election in a cluster) is not simply lost.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "nats.h"

#define CONFIRM_RETRY_MS	1000
#define CONFIRM_WARN_MS		10000	/* unconfirmed acks: one line this often */

struct pending_ack {
	TAILQ_ENTRY(pending_ack) link;	/* oldest first */
	struct pending_ack	*next;	/* hash chain */
	uint64_t		 token;
	int64_t			 sent;	/* ms */
	int64_t			 until;	/* ms: the lease ends at the server */
	char			 reply[];
};

static unsigned
slot(uint64_t token)
{
	return (unsigned)(token % CONFIRM_HASH);
}

static void
send_ack(struct nats_src *s, struct pending_ack *p)
{
	char inbox[96];
	natsStatus st;

	snprintf(inbox, sizeof(inbox), "%s.ack%" PRIu64, s->inbox, p->token);
	p->sent = clock_now();
	st = natsConnection_PublishRequestString(s->nc, p->reply, inbox, "+ACK");
	if (st != NATS_OK)
		nats_publish_failed(s, "+ACK", st);
}

void
confirm_ack(struct nats_src *s, const char *reply, int64_t lease_end)
{
	size_t n = strlen(reply) + 1;
	struct pending_ack *p = malloc(sizeof(*p) + n);
	struct confirms *c = &s->confirms;

	if (p == NULL) {	/* acked all the same, without confirmation */
		natsConnection_PublishString(s->nc, reply, "+ACK");
		return;
	}
	memcpy(p->reply, reply, n);
	p->token = ++c->next_token;
	p->until = lease_end;
	p->next = c->hash[slot(p->token)];
	c->hash[slot(p->token)] = p;
	TAILQ_INSERT_TAIL(&c->list, p, link);
	c->n++;
	send_ack(s, p);
}

static void
forget(struct confirms *c, struct pending_ack *p)
{
	struct pending_ack **pp = &c->hash[slot(p->token)];

	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	TAILQ_REMOVE(&c->list, p, link);
	c->n--;
	free(p);
}

/* The answer to <inbox>.ack<token>: that ack is applied. */
void
confirm_answer(struct nats_src *s, uint64_t token)
{
	struct confirms *c = &s->confirms;
	struct pending_ack *p;

	for (p = c->hash[slot(token)]; p != NULL; p = p->next)
		if (p->token == token) {
			c->confirmed++;
			forget(c, p);
			return;
		}
	/* An answer to an ack sent twice, or after its lease: no news. */
}

/* Each tick: again what was not answered; given up once its lease ended. */
void
confirm_tick(struct nats_src *s, int64_t now)
{
	struct confirms *c = &s->confirms;
	struct pending_ack *p, *next;
	uint64_t gave_up = 0;

	for (p = TAILQ_FIRST(&c->list); p != NULL; p = next) {
		next = TAILQ_NEXT(p, link);
		if (now - p->sent < CONFIRM_RETRY_MS)
			break;		/* sent in order: the rest are newer */
		if (now >= p->until) {
			gave_up++;
			forget(c, p);
			continue;
		}
		if (!s->connected)
			continue;	/* cnats holds what was sent for the reconnect */
		c->retried++;
		TAILQ_REMOVE(&c->list, p, link);	/* newest now */
		TAILQ_INSERT_TAIL(&c->list, p, link);
		send_ack(s, p);
	}
	c->unconfirmed += gave_up;
	c->unconfirmed_new += gave_up;
	if (c->unconfirmed_new > 0 && (c->warned == 0 ||
	    now - c->warned >= CONFIRM_WARN_MS)) {
		log_warn("nats: %" PRIu64 " acks were never confirmed before "
		    "their leases ended; the server will deliver those messages "
		    "again, and their recorded outcomes settle them as "
		    "duplicates", c->unconfirmed_new);
		c->unconfirmed_new = 0;
		c->warned = now;
	}
}

void
confirm_free(struct nats_src *s)
{
	struct confirms *c = &s->confirms;
	struct pending_ack *p;

	if (c->n > 0)
		log_info("nats: %u acks not yet confirmed at exit; the server "
		    "delivers again any it did not apply", c->n);
	while ((p = TAILQ_FIRST(&c->list)) != NULL)
		forget(c, p);
}

/*
 * <inbox>.ack<token>: 1 and *token, or 0 for another subject (a delivered
 * message's own subject may end in .ack1 too: only our inbox counts).
 */
int
confirm_subject(const struct nats_src *s, const char *subject,
    uint64_t *token)
{
	size_t n = strlen(s->inbox);
	const char *p = subject + n;
	char *end;

	if (n == 0 || strncmp(subject, s->inbox, n) != 0 ||
	    strncmp(p, ".ack", 4) != 0)
		return 0;
	*token = strtoull(p + 4, &end, 10);
	return *end == '\0' && end != p + 4;
}
