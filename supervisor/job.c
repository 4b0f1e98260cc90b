/*
 * job: dispatch's table of in-flight jobs, one per message the
 * supervisor holds, from its pull to its ack, nack or term.
 *
 * A job's id is a sequence number shifted over its slot, so a worker's
 * frame finds its job in O(1) and a stale id (a slot used again) finds
 * nothing.  Released slots keep their struct on a free list.  A job is
 * on exactly one list while it lives: its worker's, the waiting list, or
 * held (hold.c); job_release takes it off whichever and ends its lease.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "job.h"

#define SLOT_BITS	21	/* job ids: sequence << SLOT_BITS | slot */
#define SLOT_MASK	((UINT64_C(1) << SLOT_BITS) - 1)
#define SLOT_NONE	UINT32_MAX

void
job_table_init(struct dispatch *s)
{
	s->free_slot = SLOT_NONE;
}

void
job_table_free(struct dispatch *s)
{
	for (uint32_t i = 0; i < s->nslots; i++)
		free(s->slots[i]);
	free(s->slots);
	s->slots = NULL;
	s->nslots = 0;
}

struct job *
job_new(struct dispatch *s, struct delivery *d)
{
	struct job *j;
	uint32_t slot;

	if (s->free_slot != SLOT_NONE) {
		slot = s->free_slot;
		j = s->slots[slot];
		s->free_slot = j->next_free;
	} else {
		if (s->nslots > SLOT_MASK)
			return NULL;
		if ((s->nslots & (s->nslots - 1)) == 0) {
			uint32_t cap = s->nslots ? s->nslots * 2 : 256;
			struct job **v = realloc(s->slots, cap * sizeof(*v));

			if (v == NULL)
				return NULL;
			s->slots = v;
		}
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return NULL;
		slot = s->nslots++;
		s->slots[slot] = j;
	}
	memset(j, 0, sizeof(*j));
	j->slot = slot;
	j->id = (++s->job_seq << SLOT_BITS) | slot;
	j->d = d;
	j->lease.hn.idx = HEAP_NONE;
	return j;
}

/* Off its worker's list or the waiting list. */
void
job_unlink(struct dispatch *s, struct job *j)
{
	if (j->wp != NULL) {
		TAILQ_REMOVE(&j->wp->jobs, j, link);
		j->wp->njobs--;
		j->wp = NULL;
	} else {
		TAILQ_REMOVE(&s->waiting, j, link);
		s->nwaiting--;
	}
}

void
job_drop_grant(struct dispatch *s, struct job *j, int abandon)
{
	if (j->grant != NULL && abandon)
		fleet_abandon(s->fleet, j->grant);
	else if (j->grant != NULL)
		fleet_drop(s->fleet, j->grant);
	j->grant = NULL;
	free(j->parked);
	j->parked = NULL;
}

/* A released slot keeps its struct, on the free list. */
void
job_release(struct dispatch *s, struct job *j)
{
	job_drop_grant(s, j, 0);
	lease_remove(&s->leases, &j->lease);
	if (j->hold.held)
		hold_remove(&s->holds, &j->hold);
	else
		job_unlink(s, j);
	j->d = NULL;
	j->wp = NULL;
	j->next_free = s->free_slot;
	s->free_slot = j->slot;
	s->in_flight--;
}

/* Back to the broker for redelivery now, counted. */
void
job_redeliver(struct dispatch *s, struct delivery *d)
{
	s->n.nacked++;
	s->src->ops->nack(s->src, d, 0);
}

void
job_give_back(struct dispatch *s, struct job *j)
{
	struct delivery *d = j->d;

	job_release(s, j);	/* the source still owns d until the nack */
	job_redeliver(s, d);
}

struct job *
job_find(struct dispatch *s, uint64_t id)
{
	uint32_t slot = (uint32_t)(id & SLOT_MASK);

	if (slot >= s->nslots || s->slots[slot]->d == NULL ||
	    s->slots[slot]->id != id)
		return NULL;
	return s->slots[slot];
}
