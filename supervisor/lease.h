/*
 * lease: the ack deadlines of every in-flight message.
 *
 * Each lease starts when its message is pulled and ends at the broker's
 * ack deadline.  The table extends it when two thirds of the window have
 * passed (the seed's "extend by 3 s every 2 s"), by one window, but never
 * past max_lease after the pull; at max_lease the lease is given up and
 * the owner is told.  Leases sit in one heap keyed by their next
 * extension, behind one ev_timer: O(log n) per operation and no scan.
 */
#ifndef MANDRILL_LEASE_H
#define MANDRILL_LEASE_H

#include <stdint.h>

#include <ev.h>

#include "heap.h"

struct lease {
	struct heap_node hn;	/* key: when to extend next */
	int64_t		 start;
	int64_t		 end;	/* the broker's deadline as we know it */
};

struct lease_table;

/* 0 if extended to now + ms; -1 if the broker no longer holds it. */
typedef int (*lease_extend_fn)(void *arg, struct lease *l, int64_t ms);
typedef void (*lease_lost_fn)(void *arg, struct lease *l, const char *why);

struct lease_table {
	struct heap	 heap;
	struct ev_loop	*loop;
	ev_timer	 timer;
	int64_t		 armed;		/* when the timer fires; -1 idle */
	int64_t		 window;	/* ack deadline, ms */
	int64_t		 max_lease;
	lease_extend_fn	 extend;
	lease_lost_fn	 lost;
	void		*arg;
	uint64_t	 extended;	/* extensions made, for metrics */
	uint64_t	 expired;	/* leases given up */
};

/* loop may be NULL: then only lease_run() drives it (tests). */
void lease_table_init(struct lease_table *lt, struct ev_loop *loop,
    int64_t window, int64_t max_lease, lease_extend_fn extend,
    lease_lost_fn lost, void *arg);
void lease_table_free(struct lease_table *lt);
int lease_add(struct lease_table *lt, struct lease *l, int64_t now);
void lease_remove(struct lease_table *lt, struct lease *l);
/*
 * max_lease counts from now: a held message offered again (it waited,
 * which no lease limit should end).
 */
void lease_renew_limit(struct lease *l, int64_t now);
/* Extend or give up every lease due at now; re-arms the timer. */
void lease_run(struct lease_table *lt, int64_t now);
size_t lease_count(const struct lease_table *lt);
/* When the next extension is due, or -1. */
int64_t lease_next_due(const struct lease_table *lt);

#endif
