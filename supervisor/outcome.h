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

enum broker_action { ACT_ACK, ACT_NACK, ACT_TERM };

#define DEFER_MIN	1000	/* ms: a deferred message comes back after */
#define DEFER_JITTER	1000	/* ... plus up to this */

enum broker_action outcome_action(enum outcome o);
const char *action_name(enum broker_action a);
/*
 * The nack delay: deferred is short and not an attempt; failed and error
 * back off by attempt.  unit is a uniform draw in [0, 1).
 */
int64_t outcome_delay(enum outcome o, uint32_t attempts, int64_t backoff_min,
    int64_t backoff_max, double unit);

#endif
