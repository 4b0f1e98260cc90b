/*
 * fleet: grants across instances in JetStream Key-Value (fleet.h).
 *
 * A grant is claimed in this order, so that a refusal frees at once what
 * it took and holds nothing for long: the pause (read, cached for
 * PAUSE_CACHE_MS), min_interval (a read of <bucket>-recent), the host's
 * lease, a max_concurrent slot, a group slot, a rate token, and last the
 * msg_id's record.  Each claim is a create; one that exists names its
 * holder.  A rate token is never given back: it frees itself 60 s after
 * it was taken, so that no 60 s window sees more than max_per_minute.
 * The record of a msg_id says "running" while a grant of it lives and
 * "done" once it was restarted; a "running" record whose host lease is
 * gone (its instance died or was stopped) is taken over by update on
 * its revision, and an instance that finds its revision gone is no
 * longer the message's owner: it must not ack it.
 *
 * Threads: FLEET_THREADS take tasks from one queue, and one watches the
 * control bucket.  A grant is touched by at most one task at a time
 * (busy); between tasks only the loop touches it.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <nats/nats.h>

#include "clock.h"
#include "duration.h"
#include "fleet.h"
#include "log.h"
#include "natsauth.h"

#define FLEET_THREADS	4
#define KV_WAIT_MS	2000	/* one Key-Value call, at most */
#define CONNECT_MS	2000
#define SLOT_TRIES	32	/* slots tried before a limit holds */
#define RATE_TTL_MS	60000
#define FLEET_RETRY_MS	1000	/* a hold because KV could not be had */
#define RATE_RETRY_MS	2000
/* Another instance's restart ending wakes nothing here: look again. */
#define FLEET_POLL_MS	1000
#define PAUSE_CACHE_MS	200	/* a read of the pause serves this long */
#define TROUBLE_LOG_MS	10000	/* KV errors: one line this often */
#define CONFIRM_TRIES	3	/* an update whose answer was lost */
#define DRAIN_MS	2000	/* at exit, for what is on its way */

enum fop { OP_GRANT, OP_RENEW, OP_FINISH, OP_PAUSE, OP_RESUME, OP_SEEN };
enum bucket { B_MSGS, B_LEASES, B_RECENT, B_RATE, B_CONTROL, B_COUNT };

static const char *const bucket_suffix[B_COUNT] = {
	"msgs", "leases", "recent", "rate", "control",
};

/* A key this instance created, and the revision it last wrote. */
struct claim {
	char		 key[320];
	uint64_t	 rev;	/* 0: not held */
};

struct fgrant {
	TAILQ_ENTRY(fgrant)	 link;	/* the loop's list of grants */
	uint64_t		 job;
	int			 busy;	/* a task has it */
	int			 live;	/* granted, not yet finished */
	int			 lost;	/* a renewal was refused */
	int			 dropped;	/* its job is gone */
	int			 abandoned;	/* dropped, its keys left to their TTL */
	int			 finish, ran, ok;	/* a finish is wanted */
	int			 unrecorded;	/* the finish could not write */
	int			 recent_put;	/* finish: <bucket>-recent written */
	char			 done_val[600];	/* finish: the record's done value */
	int			 retry_said;
	int64_t			 until;	/* clock_now() ms the grant ends */
	int64_t			 sent;	/* clock_now() ms the last task was queued */

	/* Written by the task that has it. */
	char			 msg[400];	/* the msg_id, as a key */
	char			 host[256];
	char			 group[256];
	char			 val[512];	/* what its leases say */
	struct claim		 hostc, slot, gslot;
	uint64_t		 msg_rev;
	int64_t			 claimed;	/* clock_now() of the host's claim */
	int			 renewed;	/* renew: every claim */
	int			 owner;		/* finish: still ours */
	struct fleet_answer	 a;
};
TAILQ_HEAD(fgrant_list, fgrant);

struct ftask {
	STAILQ_ENTRY(ftask)	 link;
	enum fop		 op;
	struct fgrant		*g;
	int			 has_text;
	int			 first;		/* seen: the first watch, no key */
	uint64_t		 seq;		/* pause, resume: the ask's number */
	char			 text[256];	/* pause: the reason */
	char			 err[256];	/* a KV call that failed */
};
STAILQ_HEAD(ftask_list, ftask);

struct limits {
	unsigned		 max_concurrent;
	unsigned		 per_group;
	unsigned		 per_minute;
	int64_t			 min_interval;
};

struct fleet {
	struct ev_loop		*loop;
	struct fleet_cb		 cb;
	ev_async		 wake;
	ev_timer		 renew;
	ev_timer		 retry;
	int64_t			 lease;
	char			 instance[64];
	char			 bname[B_COUNT][80];

	pthread_mutex_t		 mu;
	pthread_mutex_t		 control_mu;	/* a pause or resume written */
	uint64_t		 control_asked;	/* under mu: the newest ask */
	pthread_cond_t		 cv;
	struct ftask_list	 todo;		/* under mu */
	struct ftask_list	 done;		/* under mu */
	int			 stopping;	/* under mu */
	int			 active;	/* under mu: tasks being done */
	struct limits		 lim;		/* under mu */
	int64_t			 pause_read;	/* under mu: clock_now(); 0 none */
	int			 paused;	/* under mu */
	char			 pause_reason[256];	/* under mu */

	pthread_t		 th[FLEET_THREADS];
	int			 nth;
	pthread_t		 watcher;
	int			 watching;

	struct natsauth		 auth;
	natsOptions		*opts;
	natsConnection		*nc;
	jsCtx			*js;
	kvStore			*kv[B_COUNT];

	/* Loop thread only. */
	struct fgrant_list	 grants;
	unsigned		 ngrants;
	char			 trouble[256];	/* the last KV failure, "" */
	int64_t			 trouble_logged;
	uint64_t		 troubles;	/* since it was logged */
};

/* What a failed call says, for the task's err. */
static void
kv_err(char *err, size_t len, const char *what, const char *key,
    natsStatus st)
{
	const char *last = nats_GetLastError(NULL);

	if (err[0] != '\0')
		return;		/* the first failure says most */
	snprintf(err, len, "%s %s: %s", what, key,
	    last != NULL && *last ? last : natsStatus_GetText(st));
}

void
fleet_key(const char *msg_id, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)msg_id;
	    *p != '\0' && o + 4 < len; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
			buf[o++] = (char)*p;
		else {
			buf[o++] = '=';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 15];
		}
	}
	buf[o] = '\0';
}

/* The value of key=... in a record, into buf; "" when absent. */
static const char *
field(const char *rec, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);
	const char *p = rec;

	buf[0] = '\0';
	while ((p = strstr(p, name)) != NULL) {
		if ((p == rec || p[-1] == ' ') && p[n] == '=') {
			p += n + 1;
			snprintf(buf, len, "%.*s", (int)strcspn(p, " "), p);
			break;
		}
		p += n;
	}
	return buf;
}

/*
 * Free a key this instance wrote at revision rev, by deleting that
 * message from the bucket's stream: nobody else's write is undone (a
 * newer revision replaced ours, which is then gone already, *stale), and
 * the key is left with no message at all, not a delete marker.  That
 * matters: on a replicated bucket of nats-server 2.9, an update
 * conditional on a revision (which a create over a delete marker is)
 * can be won by several clients at once, while a create of a key with no
 * message cannot (measured: README, fleet mode).
 */
static natsStatus
kv_delete_if(struct fleet *f, enum bucket b, const char *key, uint64_t rev,
    int *stale)
{
	char subj[256], body[48];
	natsMsg *r = NULL;
	natsStatus st;
	const char *d;
	int n;

	(void)key;
	*stale = 0;
	snprintf(subj, sizeof(subj), "$JS.API.STREAM.MSG.DELETE.KV_%s",
	    f->bname[b]);
	snprintf(body, sizeof(body), "{\"seq\":%" PRIu64 "}", rev);
	if ((st = natsConnection_RequestString(&r, f->nc, subj, body,
	    KV_WAIT_MS)) != NATS_OK)
		return st;
	d = natsMsg_GetData(r);
	n = natsMsg_GetDataLength(r);
	if (d != NULL && memmem(d, (size_t)n, "\"success\":true", 14) != NULL)
		st = NATS_OK;
	else if (d != NULL && (memmem(d, (size_t)n, "10037", 5) != NULL ||
	    memmem(d, (size_t)n, "no message found", 16) != NULL ||
	    memmem(d, (size_t)n, "store EOF", 9) != NULL)) {
		/* Not there (2.9.10 says "stream store EOF"): replaced, expired. */
		*stale = 1;
		st = NATS_ERR;
	} else
		st = NATS_ERR;
	natsMsg_Destroy(r);
	return st;
}

/*
 * Create key with val: 0 when it is ours now (c->rev set), 1 when it
 * exists (who: its value, when wanted), -1 when KV cannot say.
 */
static int
claim(struct fleet *f, enum bucket b, const char *key, const char *val,
    struct claim *c, char *who, size_t wholen, char *err, size_t errlen)
{
	kvEntry *e = NULL;
	natsStatus st, gst;
	uint64_t rev = 0;

	for (int tries = 0; tries < 2; tries++) {
		st = kvStore_Create(&rev, f->kv[b], key, val, (int)strlen(val));
		if (st == NATS_OK) {
			snprintf(c->key, sizeof(c->key), "%s", key);
			c->rev = rev;
			return 0;
		}
		if (st == NATS_ERR && who == NULL)
			return 1;	/* wrong last sequence: it exists */
		gst = kvStore_Get(&e, f->kv[b], key);
		if (gst == NATS_OK) {
			const char *v = kvEntry_ValueString(e);
			int ours = v != NULL && strcmp(v, val) == 0;

			if (ours) {	/* our create landed; its answer did not */
				snprintf(c->key, sizeof(c->key), "%s", key);
				c->rev = kvEntry_Revision(e);
			} else if (who != NULL)
				snprintf(who, wholen, "%s", v ? v : "");
			kvEntry_Destroy(e);
			return ours ? 0 : 1;
		}
		if (gst != NATS_NOT_FOUND || st != NATS_ERR) {
			kv_err(err, errlen, "create", key, st != NATS_ERR ? st :
			    gst);
			return -1;
		}
		/* Refused, and gone since: it was being deleted; again. */
	}
	kv_err(err, errlen, "create", key, st);
	return -1;
}

static void
release(struct fleet *f, enum bucket b, struct claim *c)
{
	int stale;

	if (c->rev == 0)
		return;
	/* A delete that fails leaves the key to its TTL: held longer, no more. */
	kv_delete_if(f, b, c->key, c->rev, &stale);
	c->rev = 0;
}

static void
release_leases(struct fleet *f, struct fgrant *g)
{
	release(f, B_LEASES, &g->gslot);
	release(f, B_LEASES, &g->slot);
	release(f, B_LEASES, &g->hostc);
}

/* One of n slots under prefix, tried from a random one: as claim(). */
static int
claim_slot(struct fleet *f, enum bucket b, const char *prefix, unsigned n,
    const char *val, struct claim *c, unsigned *seed, char *err,
    size_t errlen)
{
	unsigned start = (unsigned)rand_r(seed) % n;
	unsigned tries = n < SLOT_TRIES ? n : SLOT_TRIES;
	char key[320];
	int rc;

	for (unsigned i = 0; i < tries; i++) {
		snprintf(key, sizeof(key), "%s.%u", prefix, (start + i) % n);
		if ((rc = claim(f, b, key, val, c, NULL, 0, err, errlen)) <= 0)
			return rc;
	}
	return 1;
}

/*
 * Update key to val if its revision is still *rev: 0 (and *rev the new
 * one), 1 when another wrote it since, -1 when KV cannot say.  An
 * answer lost on the way is looked for in the key itself.
 */
static int
update_if(struct fleet *f, enum bucket b, const char *key, const char *val,
    uint64_t *rev, char *err, size_t errlen)
{
	natsStatus st = NATS_OK, gst;
	kvEntry *e = NULL;
	uint64_t nrev = 0;

	for (int tries = 0; tries < CONFIRM_TRIES; tries++) {
		st = kvStore_Update(&nrev, f->kv[b], key, val, (int)strlen(val),
		    *rev);
		if (st == NATS_OK) {
			*rev = nrev;
			return 0;
		}
		gst = kvStore_Get(&e, f->kv[b], key);
		if (gst == NATS_NOT_FOUND)
			return 1;	/* deleted (or expired): not ours */
		if (gst != NATS_OK)
			continue;	/* KV cannot say: again, then -1 */
		{
			const char *v = kvEntry_ValueString(e);
			uint64_t r = kvEntry_Revision(e);
			int same = v != NULL && strcmp(v, val) == 0;

			kvEntry_Destroy(e);
			/*
			 * A newer revision with our value: our update landed
			 * and its answer was lost (values are unique to a
			 * grant).  The revision we had: it did not land, and
			 * is tried again.  Anything else is someone else's.
			 */
			if (r != *rev && same) {
				*rev = r;
				return 0;
			}
			if (r != *rev)
				return 1;
		}
	}
	kv_err(err, errlen, "update", key, st);
	return -1;
}

/* The fleet's pause, read at most every PAUSE_CACHE_MS: 1, 0 or -1. */
static int
pause_read(struct fleet *f, char *why, size_t len, char *err, size_t errlen)
{
	int64_t now = clock_now();
	kvEntry *e = NULL;
	natsStatus st;
	int paused;

	pthread_mutex_lock(&f->mu);
	if (f->pause_read != 0 && now - f->pause_read >= 0 &&
	    now - f->pause_read < PAUSE_CACHE_MS) {
		paused = f->paused;
		snprintf(why, len, "%s", f->pause_reason);
		pthread_mutex_unlock(&f->mu);
		return paused;
	}
	pthread_mutex_unlock(&f->mu);
	st = kvStore_Get(&e, f->kv[B_CONTROL], "pause");
	if (st != NATS_OK && st != NATS_NOT_FOUND) {
		kv_err(err, errlen, "get", "pause", st);
		return -1;
	}
	paused = st == NATS_OK;
	snprintf(why, len, "%s", paused && kvEntry_ValueString(e) ?
	    kvEntry_ValueString(e) : "");
	if (e != NULL)
		kvEntry_Destroy(e);
	pthread_mutex_lock(&f->mu);
	f->pause_read = now;
	f->paused = paused;
	snprintf(f->pause_reason, sizeof(f->pause_reason), "%s", why);
	pthread_mutex_unlock(&f->mu);
	return paused;
}

static void hold(struct fleet_answer *a, enum hold h, int64_t retry,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
hold(struct fleet_answer *a, enum hold h, int64_t retry, const char *fmt,
    ...)
{
	va_list ap;

	a->outcome = OUT_HELD;
	a->hold = h;
	a->retry = retry;
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

/*
 * The host's lease was claimed more than half a lease ago (the process
 * was stopped, or KV answered that slowly): it may have ended, and
 * another instance may hold the host now.  Nothing may be decided on it.
 */
#define STALE_WHY	"fleet: the grant took longer than half its lease " \
			"(was mandrilld stopped?); again"
static int
lease_stale(const struct fleet *f, const struct fgrant *g)
{
	return clock_now() - g->claimed >= f->lease / 2;
}

/* The msg_id's record: 0 when it is this grant's, -1 with the answer. */
static int
claim_msg(struct fleet *f, struct fgrant *g, char *err, size_t errlen)
{
	struct fleet_answer *a = &g->a;
	char val[512], rec[512], h[256], who[80];
	struct claim c = { "", 0 };
	int rc;

	snprintf(val, sizeof(val), "running instance=%s host=%s %s",
	    f->instance, g->host, strrchr(g->val, ' ') + 1);
	rc = claim(f, B_MSGS, g->msg, val, &c, rec, sizeof(rec), err, errlen);
	if (rc == 0) {
		g->msg_rev = c.rev;
		return 0;
	}
	if (rc < 0) {
		hold(a, HOLD_FLEET, FLEET_RETRY_MS, "fleet: %.150s", err);
		return -1;
	}
	field(rec, "host", h, sizeof(h));
	field(rec, "instance", who, sizeof(who));
	if (strncmp(rec, "done ", 5) == 0) {
		if (strcmp(h, g->host) != 0) {
			a->outcome = OUT_INVALID;
			snprintf(a->why, sizeof(a->why), "conflict: the fleet "
			    "restarted this msg_id for host %.100s", h);
		} else {
			a->outcome = OUT_DUPLICATE;
			snprintf(a->why, sizeof(a->why), "already restarted by "
			    "instance %.64s (fleet)", who);
		}
		return -1;
	}
	if (strcmp(h, g->host) != 0) {
		hold(a, HOLD_MSG_ID, FLEET_POLL_MS, "being restarted for host "
		    "%.100s by instance %.64s (fleet)", h, who);
		return -1;
	}
	/*
	 * Running, for our host, whose lease we hold: the grant it was
	 * under has ended (its instance died, or stopped past its lease).
	 * Taken over on the revision read; whoever comes second loses.
	 */
	{
		kvEntry *e = NULL;
		uint64_t rev;

		if (kvStore_Get(&e, f->kv[B_MSGS], g->msg) != NATS_OK) {
			hold(a, HOLD_MSG_ID, FLEET_RETRY_MS, "%s", "its fleet "
			    "record changed under the grant; again soon");
			return -1;
		}
		rev = kvEntry_Revision(e);
		kvEntry_Destroy(e);
		if (lease_stale(f, g)) {
			/* Our host lease may have ended meanwhile: no takeover. */
			hold(a, HOLD_FLEET, FLEET_RETRY_MS, "%s", STALE_WHY);
			return -1;
		}
		if (update_if(f, B_MSGS, g->msg, val, &rev, err, errlen) != 0) {
			hold(a, HOLD_MSG_ID, FLEET_RETRY_MS, "%s", "another "
			    "instance took its fleet record; again soon");
			return -1;
		}
		g->msg_rev = rev;
		snprintf(a->why, sizeof(a->why), "taken over from instance "
		    "%.64s, whose grant ended", who);
		return 0;
	}
}

/*
 * The grant, in the order of fleet.c's head: every claim is held before
 * what it guards is read (the host's lease before min_interval's record,
 * which a finish writes before it lets the lease go), and the msg_id's
 * record before the slots and the rate token, so that a duplicate takes
 * no token.  A refusal gives back what was claimed, but a token.
 */
static void
do_grant(struct fleet *f, struct fgrant *g, struct ftask *t, unsigned *seed)
{
	struct fleet_answer *a = &g->a;
	char why[256], who[512], inst[80], at[32], prefix[320];
	struct limits lim;
	kvEntry *e = NULL;
	natsStatus st;
	int rc, stale;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&f->mu);
	lim = f->lim;
	pthread_mutex_unlock(&f->mu);
	if ((rc = pause_read(f, why, sizeof(why), t->err, sizeof(t->err))) != 0) {
		if (rc < 0)
			hold(a, HOLD_FLEET, FLEET_RETRY_MS, "fleet: %.150s", t->err);
		else
			hold(a, HOLD_PAUSED, FLEET_POLL_MS, "paused fleet-wide: "
			    "%.150s", why);
		return;
	}
	snprintf(prefix, sizeof(prefix), "host.%s", g->host);
	g->claimed = clock_now();	/* the lease counts from about now */
	rc = claim(f, B_LEASES, prefix, g->val, &g->hostc, who, sizeof(who),
	    t->err, sizeof(t->err));
	if (rc != 0) {
		if (rc < 0)
			hold(a, HOLD_FLEET, FLEET_RETRY_MS, "fleet: %.150s", t->err);
		else
			hold(a, HOLD_HOST, FLEET_POLL_MS, "being restarted by "
			    "instance %.64s (fleet)", field(who, "instance", inst,
			    sizeof(inst)));
		return;
	}
	if (lim.min_interval > 0) {
		st = kvStore_Get(&e, f->kv[B_RECENT], g->host);
		if (st == NATS_OK) {
			const char *v = kvEntry_ValueString(e);
			int64_t ago = clock_wall() - strtoll(field(v ? v : "",
			    "at", at, sizeof(at)), NULL, 10);

			field(v ? v : "", "instance", inst, sizeof(inst));
			kvEntry_Destroy(e);
			a->outcome = OUT_SKIPPED;
			snprintf(a->why, sizeof(a->why), "restarted %s ago by "
			    "instance %.64s, within min_interval (fleet)",
			    duration_fmt(ago < 0 ? 0 : ago, at, sizeof(at)), inst);
			goto refused;
		}
		if (st != NATS_NOT_FOUND) {
			kv_err(t->err, sizeof(t->err), "get", g->host, st);
			hold(a, HOLD_FLEET, FLEET_RETRY_MS, "fleet: %.150s", t->err);
			goto refused;
		}
	}
	if (claim_msg(f, g, t->err, sizeof(t->err)) < 0)
		goto refused;
	rc = 0;
	if (lim.max_concurrent > 0 && (rc = claim_slot(f, B_LEASES, "slot",
	    lim.max_concurrent, g->val, &g->slot, seed, t->err,
	    sizeof(t->err))) > 0)
		hold(a, HOLD_CONCURRENCY, FLEET_POLL_MS, "%s", "max_concurrent "
		    "restarts running in the fleet");
	if (rc == 0 && lim.per_group > 0 && g->group[0] != '\0') {
		snprintf(prefix, sizeof(prefix), "group.%s", g->group);
		if ((rc = claim_slot(f, B_LEASES, prefix, lim.per_group, g->val,
		    &g->gslot, seed, t->err, sizeof(t->err))) > 0)
			hold(a, HOLD_GROUP, FLEET_POLL_MS, "max_concurrent_per_group "
			    "restarts running in group %.64s (fleet)", g->group);
	}
	if (rc == 0 && lim.per_minute > 0) {
		struct claim token = { "", 0 };	/* kept for its 60 s */

		if ((rc = claim_slot(f, B_RATE, "t", lim.per_minute, g->val,
		    &token, seed, t->err, sizeof(t->err))) > 0)
			hold(a, HOLD_RATE, RATE_RETRY_MS, "%s", "max_per_minute "
			    "restarts started in the fleet in the last minute");
	}
	if (rc < 0)
		hold(a, HOLD_FLEET, FLEET_RETRY_MS, "fleet: %.150s", t->err);
	if (rc == 0 && lease_stale(f, g))
		hold(a, HOLD_FLEET, FLEET_RETRY_MS, "%s", STALE_WHY);
	else if (rc == 0) {
		a->outcome = OUT_RESTARTED;
		return;
	}
refused:
	if (g->msg_rev != 0)	/* back to no record: another may try */
		kv_delete_if(f, B_MSGS, g->msg, g->msg_rev, &stale);
	g->msg_rev = 0;
	release_leases(f, g);
}

static void
do_renew(struct fleet *f, struct fgrant *g, struct ftask *t)
{
	struct claim *c[] = { &g->hostc, &g->slot, &g->gslot };

	g->renewed = 1;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (c[i]->rev == 0)
			continue;
		switch (update_if(f, B_LEASES, c[i]->key, g->val, &c[i]->rev,
		    t->err, sizeof(t->err))) {
		case 0:
			break;
		case 1:
			g->lost = 1;
			c[i]->rev = 0;	/* someone else's now */
			/* FALLTHROUGH */
		default:
			g->renewed = 0;
			break;
		}
	}
}

/*
 * The end of a granted restart, in steps that each happen once, also
 * across retries: the record of the success in <bucket>-recent first (the
 * host is never free and unrecorded at once), then the msg_id's record
 * (done, with one value for every try; or, not restarted, deleted), then
 * the leases.  A step that cannot be had keeps the leases, renewed, and
 * the finish is tried again.
 */
static void
do_finish(struct fleet *f, struct fgrant *g, struct ftask *t)
{
	int64_t min_interval;
	natsStatus st;
	kvEntry *e = NULL;
	char val[512];
	int stale = 0;

	g->owner = 1;
	if (g->unrecorded)	/* again: the leases still guard the host */
		do_renew(f, g, t);
	g->unrecorded = 0;
	pthread_mutex_lock(&f->mu);
	min_interval = f->lim.min_interval;
	pthread_mutex_unlock(&f->mu);
	if (g->done_val[0] == '\0')
		snprintf(g->done_val, sizeof(g->done_val), "done instance=%s "
		    "host=%s at=%" PRId64 " %s", f->instance, g->host,
		    clock_wall(), strrchr(g->val, ' ') + 1);
	if (g->ran && g->ok && min_interval > 0 && !g->recent_put) {
		snprintf(val, sizeof(val), "instance=%s %s at=%" PRId64,
		    f->instance, strchr(g->val, ' ') + 1, clock_wall());
		if ((st = kvStore_PutString(NULL, f->kv[B_RECENT], g->host,
		    val)) != NATS_OK) {
			kv_err(t->err, sizeof(t->err), "put", g->host, st);
			g->unrecorded = 1;
			return;
		}
		g->recent_put = 1;
	}
	if (g->ran && g->ok && g->msg_rev != 0) {
		switch (update_if(f, B_MSGS, g->msg, g->done_val, &g->msg_rev,
		    t->err, sizeof(t->err))) {
		case 0:
			g->msg_rev = 0;		/* recorded: never again */
			break;
		case 1:
			g->owner = 0;
			g->msg_rev = 0;
			break;
		default:
			g->unrecorded = 1;
			return;
		}
	} else if (g->msg_rev != 0) {
		/* Not restarted: another attempt, anywhere, may start it. */
		st = kv_delete_if(f, B_MSGS, g->msg, g->msg_rev, &stale);
		if (st != NATS_OK && stale) {
			/* Gone (our own delete, its answer lost), or another's. */
			natsStatus gst = kvStore_Get(&e, f->kv[B_MSGS], g->msg);

			if (gst == NATS_OK) {
				g->owner = 0;
				kvEntry_Destroy(e);
			} else if (gst != NATS_NOT_FOUND) {
				kv_err(t->err, sizeof(t->err), "get", g->msg, gst);
				g->unrecorded = 1;
				return;
			}
		} else if (st != NATS_OK) {
			kv_err(t->err, sizeof(t->err), "delete", g->msg, st);
			g->unrecorded = 1;
			return;
		}
		g->msg_rev = 0;
	}
	release_leases(f, g);
}

/*
 * A pause or a resume, in the order mandrilld asked for them: the
 * threads may take two in either order, so the write is made under
 * control_mu, and one that a later ask has already overtaken is not made
 * at all.
 */
static void
do_pause(struct fleet *f, struct ftask *t)
{
	natsStatus st = NATS_OK;
	uint64_t newest;

	pthread_mutex_lock(&f->control_mu);
	pthread_mutex_lock(&f->mu);
	newest = f->control_asked;
	pthread_mutex_unlock(&f->mu);
	if (t->seq >= newest && (st = t->op == OP_PAUSE ? kvStore_PutString(NULL,
	    f->kv[B_CONTROL], "pause", t->text) : kvStore_Delete(
	    f->kv[B_CONTROL], "pause")) != NATS_OK)
		kv_err(t->err, sizeof(t->err), t->op == OP_PAUSE ? "put" :
		    "delete", "pause", st);
	pthread_mutex_unlock(&f->control_mu);
	pthread_mutex_lock(&f->mu);
	f->pause_read = 0;	/* read it again */
	pthread_mutex_unlock(&f->mu);
}

static void
push_done(struct fleet *f, struct ftask *t)
{
	pthread_mutex_lock(&f->mu);
	STAILQ_INSERT_TAIL(&f->done, t, link);
	pthread_mutex_unlock(&f->mu);
	ev_async_send(f->loop, &f->wake);
}

static void *
task_thread(void *arg)
{
	struct fleet *f = arg;
	unsigned seed = (unsigned)getpid() ^ (unsigned)(uintptr_t)&seed ^
	    (unsigned)clock_now_us();
	struct ftask *t;

	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (!f->stopping && STAILQ_EMPTY(&f->todo))
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->stopping) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		t = STAILQ_FIRST(&f->todo);
		STAILQ_REMOVE_HEAD(&f->todo, link);
		f->active++;
		pthread_mutex_unlock(&f->mu);
		switch (t->op) {
		case OP_GRANT:
			do_grant(f, t->g, t, &seed);
			break;
		case OP_RENEW:
			do_renew(f, t->g, t);
			break;
		case OP_FINISH:
			do_finish(f, t->g, t);
			break;
		case OP_PAUSE: case OP_RESUME:
			do_pause(f, t);
			break;
		case OP_SEEN:
			break;
		}
		push_done(f, t);
		pthread_mutex_lock(&f->mu);
		f->active--;
		pthread_mutex_unlock(&f->mu);
	}
	nats_ReleaseThreadMemory();
	return NULL;
}

static int
stopping(struct fleet *f)
{
	int s;

	pthread_mutex_lock(&f->mu);
	s = f->stopping;
	pthread_mutex_unlock(&f->mu);
	return s;
}

static void
seen(struct fleet *f, int put, const char *text, int first)
{
	struct ftask *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		t->op = OP_SEEN;
		t->has_text = put;
		t->first = first;
		snprintf(t->text, sizeof(t->text), "%s", text ? text : "");
		push_done(f, t);
	}
	pthread_mutex_lock(&f->mu);
	f->pause_read = 0;
	pthread_mutex_unlock(&f->mu);
}

/*
 * Every change of the pause key, by any instance, to the loop.  A watch
 * begins with the key as it is (or, when there is none, only the end of
 * the initial values): the first one tells the loop either way, and one
 * made again after an error does too, since a delete may have been
 * missed meanwhile.
 */
static void *
watch_thread(void *arg)
{
	struct fleet *f = arg;
	kvWatcher *w = NULL;
	kvEntry *e;
	natsStatus st;
	int first = 1, initial = 0, put = 0;
	char text[256] = "";

	while (!stopping(f)) {
		if (w == NULL) {
			if (kvStore_Watch(&w, f->kv[B_CONTROL], "pause", NULL) !=
			    NATS_OK) {
				w = NULL;
				nats_Sleep(1000);
				continue;
			}
			initial = 1;
			put = 0;
		}
		e = NULL;
		st = kvWatcher_Next(&e, w, 500);
		if (st == NATS_TIMEOUT)
			continue;
		if (st != NATS_OK) {
			kvWatcher_Destroy(w);
			w = NULL;
			nats_Sleep(1000);
			continue;
		}
		if (e == NULL) {	/* the end of the initial values */
			if (initial)	/* a delete marker is no pause either */
				seen(f, put, text, first && !put);
			initial = first = 0;
			continue;
		}
		if (initial) {		/* the key as it is: said at the end */
			put = kvEntry_Operation(e) == kvOp_Put;
			snprintf(text, sizeof(text), "%s", put &&
			    kvEntry_ValueString(e) ? kvEntry_ValueString(e) : "");
		} else
			seen(f, kvEntry_Operation(e) == kvOp_Put,
			    kvEntry_ValueString(e), 0);
		kvEntry_Destroy(e);
	}
	if (w != NULL)
		kvWatcher_Destroy(w);
	nats_ReleaseThreadMemory();
	return NULL;
}

static void
launch(struct fleet *f, enum fop op, struct fgrant *g)
{
	struct ftask *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		log_err("fleet: out of memory for a task; it will be asked "
		    "again");
		return;
	}
	t->op = op;
	t->g = g;
	if (g != NULL) {
		g->busy = 1;
		g->sent = clock_now();	/* monotonic: the worker judges it alike */
	}
	pthread_mutex_lock(&f->mu);
	/*
	 * What keeps a running restart's grant alive, or records its end,
	 * goes before new grants: a backlog of asks must never delay a
	 * renewal until its worker fences the restart.
	 */
	if (op == OP_GRANT)
		STAILQ_INSERT_TAIL(&f->todo, t, link);
	else
		STAILQ_INSERT_HEAD(&f->todo, t, link);
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void
grant_free(struct fleet *f, struct fgrant *g)
{
	TAILQ_REMOVE(&f->grants, g, link);
	f->ngrants--;
	free(g);
}

/* A KV failure, logged once per TROUBLE_LOG_MS; a recovery once. */
static void
note_trouble(struct fleet *f, const char *err)
{
	int64_t now = clock_now();

	if (err[0] == '\0') {
		if (f->trouble[0] != '\0')
			log_info("fleet: Key-Value answers again");
		f->trouble[0] = '\0';
		f->troubles = 0;
		f->trouble_logged = 0;
		return;
	}
	f->troubles++;
	snprintf(f->trouble, sizeof(f->trouble), "%s", err);
	if (f->trouble_logged == 0 || now - f->trouble_logged >= TROUBLE_LOG_MS) {
		log_err("fleet: %s (%" PRIu64 " failed calls); holding what "
		    "needs a grant, restarting nothing blind", err, f->troubles);
		f->trouble_logged = now;
		f->troubles = 0;
	}
}

static void
settled(struct fleet *f, struct ftask *t)
{
	struct fgrant *g = t->g;

	/* A watch event or a renewal with nothing to renew says nothing of KV. */
	if (t->err[0] != '\0' || t->op == OP_GRANT || t->op == OP_FINISH ||
	    (t->op == OP_RENEW && g->renewed && g->hostc.rev != 0))
		note_trouble(f, t->err);
	/*
	 * The callbacks may drop or finish the grant (a frame that cannot be
	 * sent loses its worker, whose jobs drop their grants at once): it
	 * stays busy through them, so that what they ask is only noted, and
	 * done once here after them.
	 */
	switch (t->op) {
	case OP_GRANT:
		if (g->a.outcome == OUT_RESTARTED) {
			g->live = 1;
			g->until = g->a.until = g->sent + f->lease;
		}
		if (!g->dropped)
			f->cb.granted(f->cb.arg, g->job, &g->a);
		g->busy = 0;
		if (!g->live || g->abandoned)
			grant_free(f, g);
		else if (g->dropped || g->finish)
			launch(f, OP_FINISH, g);
		break;
	case OP_RENEW:
		if (g->lost && !g->dropped)
			log_err("fleet: the grant of job %" PRIu64 " (host %s) "
			    "was taken by another instance; its worker kills "
			    "the restart before the grant ends", g->job, g->host);
		if (g->renewed) {
			g->until = g->sent + f->lease;
			if (!g->dropped && !g->finish)
				f->cb.renewed(f->cb.arg, g->job, g->until);
		}
		g->busy = 0;
		if (g->abandoned)
			grant_free(f, g);
		else if (g->dropped || g->finish)
			launch(f, OP_FINISH, g);
		break;
	case OP_FINISH:
		if (g->unrecorded) {
			g->busy = 0;
			if (!g->retry_said++)
				log_warn("fleet: the outcome of job %" PRIu64 " (host "
				    "%s) is not recorded in the fleet yet; its ack "
				    "waits, and it is written again", g->job,
				    g->host);
			break;	/* retry_cb writes it again */
		}
		if (!g->dropped)
			f->cb.finished(f->cb.arg, g->job, g->owner);
		grant_free(f, g);
		break;
	case OP_SEEN:
		f->cb.paused(f->cb.arg, t->has_text ? t->text : NULL, t->first);
		break;
	case OP_PAUSE: case OP_RESUME:
		if (t->err[0] != '\0')
			log_err("fleet: could not %s the fleet: %s; this "
			    "instance alone is %s", t->op == OP_PAUSE ? "pause" :
			    "resume", t->err, t->op == OP_PAUSE ? "paused" :
			    "resumed");
		break;
	}
	free(t);
}

static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct fleet *f = w->data;
	struct ftask_list list = STAILQ_HEAD_INITIALIZER(list);
	struct ftask *t;

	pthread_mutex_lock(&f->mu);
	STAILQ_CONCAT(&list, &f->done);
	pthread_mutex_unlock(&f->mu);
	while ((t = STAILQ_FIRST(&list)) != NULL) {
		STAILQ_REMOVE_HEAD(&list, link);
		settled(f, t);
	}
}

/* Every live grant renewed a few times per lease. */
static void
renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fleet *f = w->data;
	struct fgrant *g;

	TAILQ_FOREACH(g, &f->grants, link)
		if (g->live && !g->busy && !g->lost && !g->dropped &&
		    !g->finish)
			launch(f, OP_RENEW, g);
}

/* Outcomes the fleet could not record, written again each second. */
static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fleet *f = w->data;
	struct fgrant *g;

	TAILQ_FOREACH(g, &f->grants, link)
		if (g->unrecorded && !g->busy)
			launch(f, OP_FINISH, g);
}

struct fgrant *
fleet_grant(struct fleet *f, uint64_t job, const char *msg_id,
    const char *host, const char *group)
{
	struct fgrant *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->job = job;
	fleet_key(msg_id, g->msg, sizeof(g->msg));
	snprintf(g->host, sizeof(g->host), "%s", host);
	snprintf(g->group, sizeof(g->group), "%s", group ? group : "");
	/* Unique to this grant: a create whose answer was lost is known. */
	snprintf(g->val, sizeof(g->val), "instance=%s msg=%.300s job=%" PRIu64
	    ".%" PRId64, f->instance, g->msg, job, clock_now_us());
	TAILQ_INSERT_TAIL(&f->grants, g, link);
	f->ngrants++;
	launch(f, OP_GRANT, g);
	return g;
}

void
fleet_finish(struct fleet *f, struct fgrant *g, int ran, int ok)
{
	g->finish = 1;
	g->ran = ran;
	g->ok = ok;
	if (!g->busy)
		launch(f, OP_FINISH, g);
}

void
fleet_drop(struct fleet *f, struct fgrant *g)
{
	if (g->dropped)
		return;
	g->dropped = 1;
	if (g->busy)
		return;		/* settled() finishes it */
	if (g->live && !g->finish) {
		g->finish = 1;
		launch(f, OP_FINISH, g);
	} else if (!g->live)
		grant_free(f, g);
}

void
fleet_abandon(struct fleet *f, struct fgrant *g)
{
	if (g->dropped)
		return;
	g->dropped = g->abandoned = 1;
	if (!g->busy)
		grant_free(f, g);	/* settled() frees a busy one */
}

static void
launch_pause(struct fleet *f, enum fop op, const char *reason)
{
	struct ftask *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		log_err("fleet: out of memory: the pause stays this instance's");
		return;
	}
	t->op = op;
	snprintf(t->text, sizeof(t->text), "%s", reason ? reason : "");
	pthread_mutex_lock(&f->mu);
	t->seq = ++f->control_asked;
	STAILQ_INSERT_HEAD(&f->todo, t, link);	/* before any grant */
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void
fleet_pause(struct fleet *f, const char *reason)
{
	launch_pause(f, OP_PAUSE, reason);
}

void
fleet_resume(struct fleet *f)
{
	launch_pause(f, OP_RESUME, NULL);
}

unsigned
fleet_grants(const struct fleet *f)
{
	unsigned n = 0;
	const struct fgrant *g;

	TAILQ_FOREACH(g, &f->grants, link)
		n += g->live;
	return n;
}

const char *
fleet_trouble(struct fleet *f, char *buf, size_t len)
{
	snprintf(buf, len, "%s", f->trouble);
	return buf;
}

const char *
fleet_instance(const struct fleet *f)
{
	return f->instance;
}

void
fleet_reload(struct fleet *f, const struct conf *c)
{
	pthread_mutex_lock(&f->mu);
	f->lim.max_concurrent = c->max_concurrent;
	f->lim.per_group = c->max_concurrent_per_group;
	f->lim.per_minute = c->max_per_minute;
	f->lim.min_interval = c->min_interval;
	pthread_mutex_unlock(&f->mu);
}

static int
fail(char *err, size_t len, const char *what, natsStatus st)
{
	const char *last = nats_GetLastError(NULL);

	snprintf(err, len, "fleet: %s: %s", what, last != NULL && *last ? last :
	    natsStatus_GetText(st));
	return -1;
}

/*
 * A bucket's stream as js_CreateKeyValue makes it, but for deletes: the
 * fleet frees a key by deleting its message (kv_delete_if), which a
 * bucket made by cnats or the nats tool (DenyDelete) refuses.
 */
static natsStatus
make_bucket(struct fleet *f, const struct conf *c, enum bucket b,
    int64_t ttl)
{
	char name[96], subject[96];
	const char *subjects[1] = { subject };
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus st;

	snprintf(name, sizeof(name), "KV_%s", f->bname[b]);
	snprintf(subject, sizeof(subject), "$KV.%s.>", f->bname[b]);
	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.MaxMsgsPerSubject = 1;
	sc.MaxAge = ttl * 1000000;		/* nanoseconds */
	sc.Duplicates = ttl > 0 && ttl < 120000 ? ttl * 1000000 :
	    INT64_C(120000000000);
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)c->replicas;
	sc.Discard = js_DiscardNew;
	sc.AllowRollup = true;
	sc.AllowDirect = true;
	sc.DenyDelete = false;
	if ((st = js_AddStream(NULL, f->js, &sc, NULL, &jerr)) != NATS_OK)
		return st;
	return js_KeyValue(&f->kv[b], f->js, f->bname[b]);
}

/* Find bucket b, or make it (create = yes); its TTL must be ttl. */
static int
bind_bucket(struct fleet *f, const struct conf *c, enum bucket b,
    int64_t ttl, char *err, size_t len)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	kvStatus *sts = NULL;
	natsStatus st;
	char a[32], w[32], name[96];
	int64_t have;
	int deny;

	st = js_KeyValue(&f->kv[b], f->js, f->bname[b]);
	if (st == NATS_NOT_FOUND && c->create) {
		if ((st = make_bucket(f, c, b, ttl)) == NATS_OK) {
			log_info("fleet: made Key-Value bucket %s (TTL %s, %u "
			    "replicas)", f->bname[b], ttl ? duration_fmt(ttl, a,
			    sizeof(a)) : "none", c->replicas);
			return 0;
		}
	}
	if (st == NATS_NOT_FOUND) {
		snprintf(err, len, "fleet: Key-Value bucket %s does not exist "
		    "and [source] create = no", f->bname[b]);
		return -1;
	}
	if (st != NATS_OK)
		return fail(err, len, f->bname[b], st);
	if ((st = kvStore_Status(&sts, f->kv[b])) != NATS_OK)
		return fail(err, len, f->bname[b], st);
	have = kvStatus_TTL(sts) / 1000000;
	kvStatus_Destroy(sts);
	if (have != ttl) {
		snprintf(err, len, "fleet: Key-Value bucket %s keeps keys for %s, "
		    "this configuration wants %s: every instance must agree "
		    "(delete the bucket to change it)", f->bname[b],
		    have ? duration_fmt(have, a, sizeof(a)) : "ever",
		    ttl ? duration_fmt(ttl, w, sizeof(w)) : "ever");
		return -1;
	}
	snprintf(name, sizeof(name), "KV_%s", f->bname[b]);
	if ((st = js_GetStreamInfo(&si, f->js, name, NULL, &jerr)) != NATS_OK)
		return fail(err, len, name, st);
	deny = si->Config->DenyDelete;
	jsStreamInfo_Destroy(si);
	if (deny) {
		snprintf(err, len, "fleet: Key-Value bucket %s denies message "
		    "deletes (made by another tool): fleet mode frees keys by "
		    "deleting their messages; delete the bucket and let "
		    "mandrilld make it (create = yes)", f->bname[b]);
		return -1;
	}
	return 0;
}

static int
connect_kv(struct fleet *f, const struct conf *c, char *err, size_t len)
{
	int64_t ttl[B_COUNT] = { c->remember, f->lease, c->min_interval,
	    RATE_TTL_MS, 0 };
	char name[160];
	jsOptions jo;
	natsStatus st;

	if (natsauth_load(&f->auth, c, err, len) < 0)
		return -1;
	if ((st = natsOptions_Create(&f->opts)) != NATS_OK)
		return fail(err, len, "options", st);
	if (natsauth_apply(&f->auth, f->opts, err, len) < 0)
		return -1;
	snprintf(name, sizeof(name), "mandrilld fleet %s pid %d", f->instance,
	    (int)getpid());
	st = natsOptions_SetName(f->opts, name);
	if (st == NATS_OK)
		st = natsOptions_SetTimeout(f->opts, CONNECT_MS);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(f->opts, -1);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectWait(f->opts, 250);
	if (st == NATS_OK)
		st = natsOptions_SetPingInterval(f->opts, 5000);
	if (st != NATS_OK)
		return fail(err, len, "options", st);
	if ((st = natsConnection_Connect(&f->nc, f->opts)) != NATS_OK)
		return fail(err, len, "connect", st);
	jsOptions_Init(&jo);
	jo.Wait = KV_WAIT_MS;
	if ((st = natsConnection_JetStream(&f->js, f->nc, &jo)) != NATS_OK)
		return fail(err, len, "JetStream", st);
	for (int b = 0; b < B_COUNT; b++) {
		snprintf(f->bname[b], sizeof(f->bname[b]), "%s-%s", c->bucket,
		    bucket_suffix[b]);
		/* min_interval 0: no record of recent restarts is kept. */
		if (b == B_RECENT && c->min_interval == 0)
			continue;
		if (bind_bucket(f, c, (enum bucket)b, ttl[b], err, len) < 0)
			return -1;
	}
	return 0;
}

struct fleet *
fleet_new(struct ev_loop *loop, const struct conf *c,
    const struct fleet_cb *cb, char *err, size_t len)
{
	struct fleet *f = calloc(1, sizeof(*f));
	char a[32];

	if (f == NULL) {
		snprintf(err, len, "fleet: out of memory");
		return NULL;
	}
	f->loop = loop;
	f->cb = *cb;
	f->lease = c->fleet_lease;
	TAILQ_INIT(&f->grants);
	STAILQ_INIT(&f->todo);
	STAILQ_INIT(&f->done);
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->control_mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (c->instance[0] != '\0')
		snprintf(f->instance, sizeof(f->instance), "%s", c->instance);
	else if (gethostname(f->instance, sizeof(f->instance) - 1) < 0)
		snprintf(f->instance, sizeof(f->instance), "unnamed");
	for (char *p = f->instance; *p != '\0'; p++)	/* a record's token */
		if (*p == ' ' || *p == '=')
			*p = '_';
	fleet_reload(f, c);
	ev_async_init(&f->wake, wake_cb);
	f->wake.data = f;
	ev_async_start(loop, &f->wake);
	ev_timer_init(&f->renew, renew_cb, f->lease / 4000.0, f->lease / 4000.0);
	f->renew.data = f;
	ev_timer_start(loop, &f->renew);
	ev_timer_init(&f->retry, retry_cb, 1., 1.);
	f->retry.data = f;
	ev_timer_start(loop, &f->retry);
	if (connect_kv(f, c, err, len) < 0) {
		fleet_free(f);
		return NULL;
	}
	for (; f->nth < FLEET_THREADS; f->nth++)
		if (pthread_create(&f->th[f->nth], NULL, task_thread, f) != 0)
			break;
	if (f->nth == 0 || pthread_create(&f->watcher, NULL, watch_thread,
	    f) != 0) {
		snprintf(err, len, "fleet: cannot start its threads");
		fleet_free(f);
		return NULL;
	}
	f->watching = 1;
	log_info("fleet: coordinating as instance %s in buckets %s-*, grants "
	    "of %s", f->instance, c->bucket, duration_fmt(f->lease, a,
	    sizeof(a)));
	return f;
}

void
fleet_free(struct fleet *f)
{
	struct ftask *t;
	struct fgrant *g;

	if (f == NULL)
		return;
	/*
	 * The outcomes and renewals on their way are written first, for
	 * DRAIN_MS at most (a restart's record must not be lost to a fast
	 * exit); grants not yet asked are not asked.
	 */
	pthread_mutex_lock(&f->mu);
	{
		struct ftask_list keep = STAILQ_HEAD_INITIALIZER(keep);

		while ((t = STAILQ_FIRST(&f->todo)) != NULL) {
			STAILQ_REMOVE_HEAD(&f->todo, link);
			if (t->op == OP_GRANT)
				free(t);
			else
				STAILQ_INSERT_TAIL(&keep, t, link);
		}
		STAILQ_CONCAT(&f->todo, &keep);
	}
	for (int waited = 0; waited < DRAIN_MS && (f->active > 0 ||
	    !STAILQ_EMPTY(&f->todo)); waited += 20) {
		pthread_mutex_unlock(&f->mu);
		nats_Sleep(20);
		pthread_mutex_lock(&f->mu);
	}
	f->stopping = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	for (int i = 0; i < f->nth; i++)
		pthread_join(f->th[i], NULL);
	if (f->watching)
		pthread_join(f->watcher, NULL);
	ev_async_stop(f->loop, &f->wake);
	ev_timer_stop(f->loop, &f->renew);
	ev_timer_stop(f->loop, &f->retry);
	/* What is still held frees itself at its TTL. */
	STAILQ_CONCAT(&f->todo, &f->done);
	while ((t = STAILQ_FIRST(&f->todo)) != NULL) {
		STAILQ_REMOVE_HEAD(&f->todo, link);
		free(t);
	}
	while ((g = TAILQ_FIRST(&f->grants)) != NULL)
		grant_free(f, g);
	for (int b = 0; b < B_COUNT; b++)
		if (f->kv[b] != NULL)
			kvStore_Destroy(f->kv[b]);
	if (f->js != NULL)
		jsCtx_Destroy(f->js);
	if (f->nc != NULL) {
		natsConnection_Close(f->nc);
		natsConnection_Destroy(f->nc);
	}
	if (f->opts != NULL)
		natsOptions_Destroy(f->opts);
	natsauth_free(&f->auth);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->control_mu);
	pthread_mutex_destroy(&f->mu);
	free(f);
}
