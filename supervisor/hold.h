/*
 * hold: messages that wait, and when to offer each one again.
 *
 * A held message keeps its lease (the lease table goes on extending it)
 * and sits here until its reason may have cleared: a restart of its host
 * ended (woken by key), a restart slot freed (the oldest one held for
 * concurrency), the rate window moved (the worker's hint), the store
 * commits again, a reload.  Every held message also has a fallback time,
 * so that a missed wake-up delays it and never strands it.  Offers are
 * spaced and jittered: a message is never offered twice within
 * HOLD_MIN_GAP, so no reason can turn into a tight loop.  One heap keyed
 * by the next offer, behind one ev_timer: O(log n) per operation.
 *
 * Mechanism only: the owner says why a message waits and is called back
 * (offer) when it is due; hold decides nothing else.
 */
#ifndef MANDRILL_HOLD_H
#define MANDRILL_HOLD_H

#include <stdint.h>
#include <sys/queue.h>

#include <ev.h>

#include "heap.h"
#include "proto.h"
#include "rng.h"

#define HOLD_MIN_GAP	250	/* ms between two offers of one message */
#define HOLD_JITTER	250	/* ms, at most, added to a wake-up */
#define HOLD_BACKOFF_MIN 1000	/* ms: the store and crash backoff */
#define HOLD_BACKOFF_MAX 60000

struct hold_node {
	struct heap_node	 hn;	/* key: when to offer it next */
	TAILQ_ENTRY(hold_node)	 link;	/* in its reason's list, oldest first */
	enum hold		 reason;
	char			*key;	/* HOLD_HOST: the host */
	int64_t			 last_offer;
	uint32_t		 backoffs;	/* store and crash holds in a row */
	int			 held;
};

TAILQ_HEAD(hold_list, hold_node);

typedef void (*hold_offer_fn)(void *arg, struct hold_node *n);

struct holds {
	struct heap	 heap;
	struct ev_loop	*loop;		/* NULL: only hold_run() drives it */
	ev_timer	 timer;
	struct hold_list list[HOLD_COUNT];
	unsigned	 n[HOLD_COUNT];
	struct rng	*rng;
	hold_offer_fn	 offer;
	void		*arg;
	/*
	 * The longest wait between two offers, jitter included, so that a
	 * message is offered again (and max_lease counts again) before its
	 * lease is given up: dispatch sets it from max_lease; 0 is none.
	 */
	int64_t		 max_delay;
};

void hold_init(struct holds *h, struct ev_loop *loop, struct rng *rng,
    hold_offer_fn offer, void *arg);
void hold_free(struct holds *h);
/*
 * Hold n for reason; key is the host for HOLD_HOST (copied); retry is
 * the owner's hint in ms (0: the reason's own fallback).  -1 when out of
 * memory (n is then not held).
 */
int hold_add(struct holds *h, struct hold_node *n, enum hold reason,
    const char *key, int64_t retry, int64_t now);
/* Take n out (its offer or its end); a no-op when it is not held. */
void hold_remove(struct holds *h, struct hold_node *n);
/* Offer soon every one held for reason (all of them when key is NULL). */
void hold_wake(struct holds *h, enum hold reason, const char *key,
    int64_t now);
/* Offer soon the oldest one held for reason; 0 if none. */
int hold_wake_one(struct holds *h, enum hold reason, int64_t now);
/* Offer those due at now; re-arms the timer. */
void hold_run(struct holds *h, int64_t now);
unsigned hold_total(const struct holds *h);
/* A new message that comes after holds clears the backoff count. */
void hold_forget_backoff(struct hold_node *n);

#endif
