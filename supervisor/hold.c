/*
 * hold: the set of waiting messages, on a heap of their next offers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hold.h"

/* When a reason with no hint looks again by itself. */
static int64_t
fallback(const struct hold_node *n)
{
	int64_t d;

	switch (n->reason) {
	case HOLD_PAUSED:
	case HOLD_HOST:
		return 30000;
	case HOLD_CONCURRENCY:
		return 10000;
	case HOLD_GROUP:	/* no wake-up: groups are the worker's */
		return 2000;
	case HOLD_STORE:
	case HOLD_CRASH:
		d = HOLD_BACKOFF_MIN;
		for (uint32_t i = 1; i < n->backoffs && d < HOLD_BACKOFF_MAX; i++)
			d *= 2;
		return d < HOLD_BACKOFF_MAX ? d : HOLD_BACKOFF_MAX;
	default:
		return 1000;
	}
}

static void
arm(struct holds *h, int64_t now)
{
	struct heap_node *top = heap_top(&h->heap);

	if (h->loop == NULL)
		return;
	ev_timer_stop(h->loop, &h->timer);
	if (top == NULL)
		return;
	ev_timer_set(&h->timer, top->key > now ?
	    (double)(top->key - now) / 1000.0 : 0., 0.);
	ev_timer_start(h->loop, &h->timer);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	hold_run(w->data, clock_now());
}

void
hold_init(struct holds *h, struct ev_loop *loop, struct rng *rng,
    hold_offer_fn offer, void *arg)
{
	memset(h, 0, sizeof(*h));
	heap_init(&h->heap);
	for (int i = 0; i < HOLD_COUNT; i++)
		TAILQ_INIT(&h->list[i]);
	h->loop = loop;
	h->rng = rng;
	h->offer = offer;
	h->arg = arg;
	ev_timer_init(&h->timer, timer_cb, 0., 0.);
	h->timer.data = h;
}

void
hold_free(struct holds *h)
{
	if (h->loop != NULL)
		ev_timer_stop(h->loop, &h->timer);
	heap_free(&h->heap);
}

/* Up to HOLD_JITTER ms, or a quarter of a longer delay. */
static int64_t
jitter(struct holds *h, int64_t delay)
{
	int64_t span = delay / 4 > HOLD_JITTER ? delay / 4 : HOLD_JITTER;

	return (int64_t)(rng_unit(h->rng) * (double)span);
}

int
hold_add(struct holds *h, struct hold_node *n, enum hold reason,
    const char *key, int64_t retry, int64_t now)
{
	int64_t at;

	n->key = NULL;
	if (reason == HOLD_HOST && key != NULL && (n->key = strdup(key)) == NULL)
		return -1;
	n->reason = reason;
	if (reason == HOLD_STORE || reason == HOLD_CRASH)
		n->backoffs++;
	else
		n->backoffs = 0;
	at = now + (retry > 0 ? retry : fallback(n));
	at += jitter(h, at - now);
	if (h->max_delay > 0 && at - now > h->max_delay)
		at = now + h->max_delay;
	if (at < n->last_offer + HOLD_MIN_GAP)
		at = n->last_offer + HOLD_MIN_GAP;
	n->hn.idx = HEAP_NONE;
	if (heap_push(&h->heap, &n->hn, at) < 0) {
		free(n->key);
		n->key = NULL;
		return -1;
	}
	TAILQ_INSERT_TAIL(&h->list[reason], n, link);
	h->n[reason]++;
	n->held = 1;
	arm(h, now);
	return 0;
}

void
hold_remove(struct holds *h, struct hold_node *n)
{
	if (!n->held)
		return;
	heap_remove(&h->heap, &n->hn);
	TAILQ_REMOVE(&h->list[n->reason], n, link);
	h->n[n->reason]--;
	free(n->key);
	n->key = NULL;
	n->held = 0;
}

/* Bring n's offer forward to soon, spaced from its last one. */
static void
wake(struct holds *h, struct hold_node *n, int64_t now)
{
	int64_t at = now + jitter(h, 0);

	if (at < n->last_offer + HOLD_MIN_GAP)
		at = n->last_offer + HOLD_MIN_GAP;
	if (at < n->hn.key)
		heap_update(&h->heap, &n->hn, at);
}

void
hold_wake(struct holds *h, enum hold reason, const char *key, int64_t now)
{
	struct hold_node *n;

	TAILQ_FOREACH(n, &h->list[reason], link)
		if (key == NULL || (n->key != NULL && strcmp(n->key, key) == 0))
			wake(h, n, now);
	arm(h, now);
}

int
hold_wake_one(struct holds *h, enum hold reason, int64_t now)
{
	struct hold_node *n = TAILQ_FIRST(&h->list[reason]);

	if (n == NULL)
		return 0;
	wake(h, n, now);
	arm(h, now);
	return 1;
}

void
hold_run(struct holds *h, int64_t now)
{
	struct heap_node *top;

	while ((top = heap_top(&h->heap)) != NULL && top->key <= now) {
		struct hold_node *n = (struct hold_node *)top;

		hold_remove(h, n);
		n->last_offer = now;
		h->offer(h->arg, n);
	}
	arm(h, now);
}

unsigned
hold_total(const struct holds *h)
{
	unsigned t = 0;

	for (int i = 0; i < HOLD_COUNT; i++)
		t += h->n[i];
	return t;
}

void
hold_forget_backoff(struct hold_node *n)
{
	n->backoffs = 0;
}
