/*
 * uuid: version 7 UUIDs, strictly increasing per generator.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "uuid.h"

void
uuid7_next(struct uuid7 *u, int64_t now_ms, uint64_t rnd, char *out)
{
	uint64_t a, b;

	if (now_ms <= u->ms) {
		if (++u->seq > 0xfff) {
			u->seq = 0;
			u->ms++;
		}
	} else {
		u->ms = now_ms;
		u->seq = 0;
	}
	a = ((uint64_t)u->ms << 16) | UINT64_C(0x7000) | u->seq;
	b = (rnd & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62);	/* variant */
	snprintf(out, UUID_LEN + 1, "%08" PRIx32 "-%04" PRIx32 "-%04" PRIx32
	    "-%04" PRIx32 "-%012" PRIx64, (uint32_t)(a >> 32),
	    (uint32_t)(a >> 16) & 0xffff, (uint32_t)a & 0xffff,
	    (uint32_t)(b >> 48), b & UINT64_C(0xffffffffffff));
}
