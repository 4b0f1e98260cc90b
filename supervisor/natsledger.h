/*
 * natsledger: the nats source's pull requests, as pure bookkeeping.
 *
 * The supervisor asks for messages (owe); the source turns what is owed
 * into pull requests of at most LEDGER_BATCH_MAX messages, LEDGER_MAX
 * open at once, each waiting LEDGER_EXPIRES_MS on the server.  Messages
 * arrive on their own subject, so each counts against the oldest open
 * request (the server fills its waiting requests in order).  A status
 * (408 expired, 409 and friends) ends the request it answers; one the
 * server may have forgotten ends LEDGER_GRACE_MS after its expiry; a
 * connection change forgets them all.  What an ended request still owed
 * is not asked for again here: the supervisor's flow control does it.
 *
 * No clock, no network, no allocation: times come from the caller, so
 * tests/check_natsledger.c drives it as a table.
 */
#ifndef MANDRILL_NATSLEDGER_H
#define MANDRILL_NATSLEDGER_H

#include <stdint.h>

#define LEDGER_MAX		32	/* pull requests open, at most */
#define LEDGER_BATCH_MAX	10000	/* messages one request asks for */
#define LEDGER_EXPIRES_MS	5000	/* a pull request waits this long */
#define LEDGER_GRACE_MS		3000	/* ...and is forgotten this much later */

struct pull_req {
	uint64_t	 id;
	unsigned	 left;		/* messages still owed */
	int64_t		 expires;	/* ms, monotonic */
};

struct ledger {
	struct pull_req	 req[LEDGER_MAX];	/* oldest first */
	unsigned	 nreq;
	uint64_t	 seq;		/* the last request id handed out */
	unsigned	 owed;		/* asked for, no request sent */
};

/* What a status message says of the request it answers. */
enum pull_status {
	PULL_GOING,		/* 100: heartbeat or flow control */
	PULL_ENDED,		/* 404 nothing there, 408 expired */
	PULL_FAILED,		/* 409 and others: worth a line */
	PULL_CONSUMER_DELETED,	/* 409 Consumer Deleted */
};

void ledger_init(struct ledger *l);
void ledger_owe(struct ledger *l, unsigned n);
/*
 * The next request to send (a new id, up to LEDGER_BATCH_MAX of what is
 * owed, expiring LEDGER_EXPIRES_MS after now), or NULL when nothing is
 * owed or LEDGER_MAX are open.  It counts only after ledger_sent; a
 * request that could not be sent is simply not confirmed.
 */
const struct pull_req *ledger_next(struct ledger *l, int64_t now);
void ledger_sent(struct ledger *l);
/* A message arrived: one less owed by the oldest open request. */
void ledger_delivered(struct ledger *l);
/* A status ended request id; 0 if it was not open. */
int ledger_end(struct ledger *l, uint64_t id);
/* End the requests the server never answered; how many ended. */
unsigned ledger_expire(struct ledger *l, int64_t now);
/* Forget every request and what is owed (the server may have, too). */
void ledger_forget(struct ledger *l);
/* Asked for and not yet delivered: owed plus what open requests owe. */
unsigned ledger_wanted(const struct ledger *l);
unsigned ledger_open(const struct ledger *l);
/* A status's subject is the request's reply subject, <inbox>.<id>. */
uint64_t ledger_id_of(const char *subject);
enum pull_status ledger_status(int status, const char *description);

#endif
