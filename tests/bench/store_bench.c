/*
 * store_bench: the worker's store alone, without processes or frames.
 * Records N messages the way a worker does under load (one transaction
 * per batch: the outcomes of the last batch, the admission of the next)
 * and prints CPU and wall time per
 * 10 000 messages, so that changes to store.c can be measured with
 * perf or callgrind on a quiet, repeatable loop.
 *
 *   store_bench DIR [N [BATCH [SYNC]]]	SYNC: 0 off, 1 normal, 2 full
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "rng.h"
#include "store.h"

struct bmsg {
	char		 id[40];
	char		 host[32];
	char		 payload[128];
	struct store_msg m;
	struct store_verdict v;
};

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double
wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
make_msg(struct bmsg *b, struct rng *r, uint64_t n)
{
	uint64_t a = rng_next(r), c = rng_next(r);

	snprintf(b->id, sizeof(b->id), "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32
	    "-%04" PRIx32 "-%012" PRIx64, (uint32_t)a, (uint32_t)(a >> 32) &
	    0xffff, (uint32_t)(a >> 48) & 0xfff, (uint32_t)c & 0xffff,
	    (uint64_t)((c >> 16) & 0xffffffffffffULL));
	snprintf(b->host, sizeof(b->host), "cattle-%08" PRIx64, n);
	snprintf(b->payload, sizeof(b->payload), "{\"msg_id\": \"%s\", "
	    "\"instance_name\": \"%s\"}", b->id, b->host);
	memset(&b->m, 0, sizeof(b->m));
	b->m.msg_id = b->id;
	b->m.broker_id = b->id;
	b->m.instance = b->host;
	b->m.host = b->host;
	b->m.payload = b->payload;
	b->m.payload_len = strlen(b->payload);
	b->m.delivery = 1;
}

static int
fail(struct store *s, const char *what)
{
	fprintf(stderr, "store_bench: %s: %s\n", what, store_errmsg(s));
	return 1;
}

int
main(int argc, char **argv)
{
	struct admit_rules rules = { .max_attempts = 5, .enabled = 1 };
	struct store_opts o = { 0 };
	struct store *s;
	struct bmsg *b;
	struct rng rng;
	uint64_t n, batch, commits = 0;
	double c0, w0, cpu, wall;
	char err[512];

	if (argc < 2) {
		fprintf(stderr, "usage: store_bench DIR [N [BATCH [SYNC]]]\n");
		return 64;
	}
	n = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
	batch = argc > 3 ? strtoull(argv[3], NULL, 10) : 500;
	o.state_dir = argv[1];
	o.synchronous = argc > 4 ? atoi(argv[4]) : 2;
	o.busy_timeout = 5000;
	o.owner = "1:1";
	store_global_init();
	if ((s = store_open(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 1;
	}
	if ((b = calloc(2 * batch, sizeof(*b))) == NULL)
		return 1;
	rng_seed(&rng, 42);
	c0 = cpu_s();
	w0 = wall_s();
	/*
	 * As a worker under load: each transaction records the outcomes of
	 * the previous batch and admits the next one.
	 */
	for (uint64_t done = 0, k = 0, prev = 0; done < n || prev > 0;
	    done += k) {
		struct bmsg *cur = b + (commits % 2) * batch;
		struct bmsg *old = b + ((commits + 1) % 2) * batch;

		k = n - done < batch ? n - done : batch;
		for (uint64_t i = 0; i < k; i++)
			make_msg(&cur[i], &rng, done + i);
		if (store_begin(s) < 0)
			return fail(s, "begin");
		for (uint64_t i = 0; i < prev; i++)
			if (store_finish(s, &old[i].m, &rules, 0, NULL,
			    &old[i].v) < 0)
				return fail(s, "finish");
		for (uint64_t i = 0; i < k; i++)
			if (store_admit(s, &cur[i].m, &rules, &cur[i].v) < 0)
				return fail(s, "admit");
		if (store_commit(s) < 0)
			return fail(s, "commit");
		commits++;
		prev = k;
	}
	cpu = cpu_s() - c0;
	wall = wall_s() - w0;
	printf("%" PRIu64 " messages, batch %" PRIu64 ", %" PRIu64 " commits: "
	    "cpu %.3f s, wall %.3f s per 10 000; %.0f msg/s\n", n, batch,
	    commits, cpu * 10000 / n, wall * 10000 / n, n / wall);
	store_close(s);
	free(b);
	return 0;
}
