/*
 * rng: a small, seedable pseudo-random generator (splitmix64).
 *
 * For simulation and jitter only: never for anything secret.  A seed of
 * 0 asks for one from the system, so that runs differ unless a test pins
 * them.
 */
#ifndef MANDRILL_RNG_H
#define MANDRILL_RNG_H

#include <stdint.h>

struct rng {
	uint64_t	 s;
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [lo, hi]. */
int64_t rng_range(struct rng *r, int64_t lo, int64_t hi);
/* Uniform in [0, 1). */
double rng_unit(struct rng *r);

#endif
