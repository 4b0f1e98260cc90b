/*
 * outcome: DESIGN.md's outcome table as code.
 *
 * What the broker is told for each outcome a worker reports, and after
 * what delay a nacked message comes back.  Pure functions: the tests
 * check the table itself.
 */
#ifndef MANDRILL_OUTCOME_H
#define MANDRILL_OUTCOME_H

#include <stdint.h>

#include "proto.h"

/* ACT_HOLD: nothing is said to the broker; the lease is kept. */
enum broker_action { ACT_ACK, ACT_NACK, ACT_TERM, ACT_HOLD };

enum broker_action outcome_action(enum outcome o);
const char *action_name(enum broker_action a);
/*
 * The nack delay of a failed attempt: backoff by attempt.  unit is a
 * uniform draw in [0, 1).
 */
int64_t outcome_delay(enum outcome o, uint32_t attempts, int64_t backoff_min,
    int64_t backoff_max, double unit);

#endif
