/*
 * uuid: version 7 UUIDs (RFC 9562) for msg_ids.
 *
 * The time in milliseconds first, then a counter within the millisecond,
 * then random bits: ids sort in the order they were made, so the
 * database's msg_id index grows at its right edge instead of taking a
 * random leaf per message.
 */
#ifndef MANDRILL_UUID_H
#define MANDRILL_UUID_H

#include <stdint.h>

#define UUID_LEN	36

struct uuid7 {
	int64_t		 ms;	/* last millisecond used */
	uint32_t	 seq;	/* counter within it, 12 bits */
};

/*
 * The next id after the last one of u, at now_ms or, when that is not
 * later, at the same millisecond with the counter one up (a full counter
 * moves on a millisecond): strictly increasing whatever the clock does.
 * rnd gives the random bits.  out has UUID_LEN + 1 bytes.
 */
void uuid7_next(struct uuid7 *u, int64_t now_ms, uint64_t rnd, char *out);

#endif
