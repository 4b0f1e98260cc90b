/*
 * lease: extension schedule of in-flight messages on a heap.
 */
#include "config.h"

#include "clock.h"
#include "lease.h"

static int64_t
extend_at(const struct lease_table *lt, const struct lease *l)
{
	return l->end - lt->window / 3;
}

static void
arm(struct lease_table *lt, int64_t now)
{
	struct heap_node *top = heap_top(&lt->heap);

	if (lt->loop == NULL)
		return;
	if (top == NULL) {
		ev_timer_stop(lt->loop, &lt->timer);
		lt->armed = -1;
		return;
	}
	if (lt->armed == top->key)
		return;
	ev_timer_stop(lt->loop, &lt->timer);
	ev_timer_set(&lt->timer, top->key > now ?
	    (double)(top->key - now) / 1000.0 : 0., 0.);
	ev_timer_start(lt->loop, &lt->timer);
	lt->armed = top->key;
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lease_table *lt = w->data;

	lt->armed = -1;
	lease_run(lt, clock_now());
}

void
lease_table_init(struct lease_table *lt, struct ev_loop *loop, int64_t window,
    int64_t max_lease, lease_extend_fn extend, lease_lost_fn lost, void *arg)
{
	heap_init(&lt->heap);
	lt->loop = loop;
	lt->armed = -1;
	lt->window = window;
	lt->max_lease = max_lease;
	lt->extend = extend;
	lt->lost = lost;
	lt->arg = arg;
	lt->extended = lt->expired = 0;
	ev_timer_init(&lt->timer, timer_cb, 0., 0.);
	lt->timer.data = lt;
}

void
lease_table_free(struct lease_table *lt)
{
	if (lt->loop != NULL)
		ev_timer_stop(lt->loop, &lt->timer);
	heap_free(&lt->heap);
}

int
lease_add(struct lease_table *lt, struct lease *l, int64_t now)
{
	l->start = now;
	l->end = now + lt->window;
	if (heap_push(&lt->heap, &l->hn, extend_at(lt, l)) < 0)
		return -1;
	/* Only a lease due before the armed time moves the timer. */
	if (lt->armed < 0 || l->hn.key < lt->armed)
		arm(lt, now);
	return 0;
}

void
lease_remove(struct lease_table *lt, struct lease *l)
{
	/* The timer may fire early for a removed lease; that is harmless. */
	heap_remove(&lt->heap, &l->hn);
}

void
lease_renew_limit(struct lease *l, int64_t now)
{
	l->start = now;
}

static void
run_one(struct lease_table *lt, struct lease *l, int64_t now)
{
	int64_t limit = l->start + lt->max_lease;
	int64_t ms = lt->window;

	if (now >= limit) {
		heap_remove(&lt->heap, &l->hn);
		lt->expired++;
		lt->lost(lt->arg, l, "max_lease reached");
		return;
	}
	if (now + ms > limit)
		ms = limit - now;
	if (lt->extend(lt->arg, l, ms) < 0) {
		heap_remove(&lt->heap, &l->hn);
		lt->expired++;
		lt->lost(lt->arg, l, "the broker no longer holds the lease");
		return;
	}
	lt->extended++;
	l->end = now + ms;
	if (!heap_contains(&l->hn))	/* the callback gave it up */
		return;
	/* At the cap, come back when max_lease is reached to give it up. */
	heap_update(&lt->heap, &l->hn, l->end >= limit ? limit :
	    extend_at(lt, l));
}

void
lease_run(struct lease_table *lt, int64_t now)
{
	struct heap_node *top;

	while ((top = heap_top(&lt->heap)) != NULL && top->key <= now)
		run_one(lt, (struct lease *)top, now);
	arm(lt, now);
}

size_t
lease_count(const struct lease_table *lt)
{
	return lt->heap.n;
}

int64_t
lease_next_due(const struct lease_table *lt)
{
	struct heap_node *top = heap_top(&lt->heap);

	return top ? top->key : -1;
}
