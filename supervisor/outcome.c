/*
 * outcome: outcome -> broker action, and the retry delay.
 */
#include "config.h"

#include "backoff.h"
#include "outcome.h"

enum broker_action
outcome_action(enum outcome o)
{
	switch (o) {
	case OUT_RESTARTED:
	case OUT_SKIPPED:
	case OUT_DUPLICATE:
	case OUT_DRY_RUN:	/* recorded as such: the request is used up */
	case OUT_DEAD:		/* dead-lettered by the worker, then acked */
		return ACT_ACK;
	case OUT_INVALID:	/* dead-lettered; no redelivery can help */
		return ACT_TERM;
	case OUT_HELD:		/* waits, keeping its lease: no nack */
	case OUT_ERROR:		/* nothing recorded: held, backing off */
		return ACT_HOLD;
	case OUT_FAILED:
	default:
		return ACT_NACK;
	}
}

const char *
action_name(enum broker_action a)
{
	return a == ACT_ACK ? "ack" : a == ACT_TERM ? "term" :
	    a == ACT_HOLD ? "hold" : "nack";
}

int64_t
outcome_delay(enum outcome o, uint32_t attempts, int64_t backoff_min,
    int64_t backoff_max, double unit)
{
	(void)o;
	return backoff_delay(backoff_min, backoff_max, attempts ? attempts : 1,
	    unit);
}
