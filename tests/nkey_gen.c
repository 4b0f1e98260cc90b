/*
 * nkey_gen: print a new user nkey seed and its public key, one a line,
 * for the tests that start a nats-server configured for nkey users
 * (nats-server has no command that makes one).  Test code only.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>

#include "nkey.h"

int
main(void)
{
	uint8_t raw[32];
	char seed[NKEY_SEED_LEN + 1], pub[NKEY_PUB_LEN + 1];
	const char *why;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		perror("nkey_gen: getrandom");
		return 1;
	}
	nkey_user_seed(raw, seed);
	if ((why = nkey_user_public(seed, pub)) != NULL) {
		fprintf(stderr, "nkey_gen: the new seed %s\n", why);
		return 1;
	}
	printf("%s\n%s\n", seed, pub);
	return 0;
}
