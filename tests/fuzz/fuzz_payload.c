/*
 * fuzz_payload: the restart-request parser and host checks, on
 * arbitrary bytes, with and without a domain.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "hostname.h"
#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct payload p;
	const char *why;
	char err[256];

	if (payload_parse((const char *)data, size, size, "", &p, err,
	    sizeof(err)) == 0) {
		/* A parsed host must pass the checks it was parsed with. */
		if (hostname_check(p.host, strlen(p.host)) != NULL)
			__builtin_trap();
		(void)hostname_allowed(p.host, "cattle-* db?.example.com",
		    "*.prod.example.com", &why);
	}
	(void)payload_parse((const char *)data, size, size, "example.com", &p,
	    err, sizeof(err));
	return 0;
}
