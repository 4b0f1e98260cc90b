/*
 * job: dispatch's table of in-flight jobs (job.c), from a message's pull
 * to its ack, nack or term.
 *
 * The table is part of struct dispatch, and only dispatch.c and job.c
 * include this header: nobody else makes, finds or frees a job.
 */
#ifndef MANDRILL_JOB_H
#define MANDRILL_JOB_H

#include <stdint.h>

struct delivery;
struct dispatch;
struct job;

void job_table_init(struct dispatch *s);
void job_table_free(struct dispatch *s);
/* A new job for d, on no list yet; NULL if out of memory or slots. */
struct job *job_new(struct dispatch *s, struct delivery *d);
/* The live job of this id, or NULL (given back, or a stale id). */
struct job *job_find(struct dispatch *s, uint64_t id);
/* Off its worker's list or the waiting list. */
void job_unlink(struct dispatch *s, struct job *j);
/*
 * Fleet mode: what it holds in the fleet is given back (abandon: left to
 * its TTL, its command may outlive a kill), its parked done freed.
 */
void job_drop_grant(struct dispatch *s, struct job *j, int abandon);
/* Its lease ended and its slot freed; the delivery is the caller's. */
void job_release(struct dispatch *s, struct job *j);
/* Back to the broker for redelivery now, counted as nacked. */
void job_redeliver(struct dispatch *s, struct delivery *d);
/* Released, and its delivery back to the broker (job_redeliver). */
void job_give_back(struct dispatch *s, struct job *j);

#endif
