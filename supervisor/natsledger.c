/*
 * natsledger: which pull requests are open and what each still owes.
 * Pure: the nats source feeds it what it sends and what it hears.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "natsledger.h"

void
ledger_init(struct ledger *l)
{
	memset(l, 0, sizeof(*l));
}

void
ledger_owe(struct ledger *l, unsigned n)
{
	l->owed += n;
}

const struct pull_req *
ledger_next(struct ledger *l, int64_t now)
{
	struct pull_req *r;

	if (l->owed == 0 || l->nreq >= LEDGER_MAX)
		return NULL;
	r = &l->req[l->nreq];
	r->id = ++l->seq;
	r->left = l->owed > LEDGER_BATCH_MAX ? LEDGER_BATCH_MAX : l->owed;
	r->expires = now + LEDGER_EXPIRES_MS;
	return r;
}

void
ledger_sent(struct ledger *l)
{
	l->owed -= l->req[l->nreq].left;
	l->nreq++;
}

/* Requests stay in the order they were sent. */
static void
end_at(struct ledger *l, unsigned i)
{
	memmove(&l->req[i], &l->req[i + 1], (l->nreq - i - 1) *
	    sizeof(l->req[0]));
	l->nreq--;
}

/*
 * A message carries its original subject, not the request's reply
 * subject; the server fills its waiting requests in order, so it is
 * counted against the oldest.  One that came after its request ended
 * counts against none.
 */
void
ledger_delivered(struct ledger *l)
{
	if (l->nreq > 0 && --l->req[0].left == 0)
		end_at(l, 0);
}

int
ledger_end(struct ledger *l, uint64_t id)
{
	for (unsigned i = 0; i < l->nreq; i++)
		if (l->req[i].id == id) {
			end_at(l, i);
			return 1;
		}
	return 0;
}

unsigned
ledger_expire(struct ledger *l, int64_t now)
{
	unsigned ended = 0;

	for (unsigned i = 0; i < l->nreq;)
		if (now > l->req[i].expires + LEDGER_GRACE_MS) {
			end_at(l, i);
			ended++;
		} else
			i++;
	return ended;
}

void
ledger_forget(struct ledger *l)
{
	l->nreq = 0;
	l->owed = 0;
}

unsigned
ledger_wanted(const struct ledger *l)
{
	unsigned n = l->owed;

	for (unsigned i = 0; i < l->nreq; i++)
		n += l->req[i].left;
	return n;
}

unsigned
ledger_open(const struct ledger *l)
{
	return l->nreq;
}

uint64_t
ledger_id_of(const char *subject)
{
	const char *dot = strrchr(subject, '.');

	return dot != NULL ? strtoull(dot + 1, NULL, 10) : 0;
}

enum pull_status
ledger_status(int status, const char *description)
{
	switch (status) {
	case 100:
		return PULL_GOING;
	case 404:
	case 408:
		return PULL_ENDED;
	default:
		/* 409: max waiting, consumer deleted, leadership change... */
		if (strstr(description, "Consumer Deleted") != NULL)
			return PULL_CONSUMER_DELETED;
		return PULL_FAILED;
	}
}
