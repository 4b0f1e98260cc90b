/*
 * mandrill-publish: publish restart requests to the JetStream stream
 * that mandrilld consumes.
 *
 *   mandrill-publish [-c conf] [-u url] [-s subject] [-i] [-f file]
 *                    [-b batch] [-t timeout] [-l] [--raw] [host ...]
 *
 * Each host becomes {"msg_id": "<id>", "host": "<host>"} (with -i,
 * "instance_name"), published with the msg_id as Nats-Msg-Id, so the
 * server drops a copy published again within its duplicate window.
 * Hosts come from the arguments and the file (- is standard input), or
 * from standard input when there are neither, one a line, optionally
 * followed by the line's msg_id; blank lines and lines starting with #
 * are skipped.  A msg_id not given is <batch>:<host> with --batch (so
 * that running the same batch again publishes nothing new), else a new
 * time-ordered uuid.  Every name is checked before anything is
 * published.  A refusal or a lost answer (a stream leader election) is
 * published again, with the same id, until --timeout; what was stored
 * and what not is reported (--list: each message).  --raw publishes each
 * argument or line as given, unchecked: for testing how mandrilld takes
 * bad input.  The exit status is 0 only if the server stored every
 * message.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nats/nats.h>

#include "conf.h"
#include "hostname.h"
#include "natsauth.h"
#include "uuid.h"

#define ANSWER_MS	5000	/* an answer not come by then: publish again */
#define TIMEOUT_MS	30000	/* --timeout's default: retries end */
#define BACKOFF_MIN_MS	100	/* after a refusal; doubling */
#define BACKOFF_MAX_MS	2000
#define MAX_PENDING	4096	/* publishes not yet answered, at most */
#define ID_MAX		128	/* bytes of a msg_id (payload.c's limit) */

struct opts {
	const char	*conf;
	const char	*url;
	const char	*subject;
	const char	*file;
	const char	*batch;
	int64_t		 timeout;	/* ms */
	int		 instance;
	int		 raw;
	int		 quiet;
	int		 list;
	int		 events;	/* --events: read them, publish nothing */
	int		 timeout_set;
	long		 count;		/* --events: stop after this many; 0 */
};

enum item_state { IT_WAITING, IT_SENT, IT_STORED, IT_DUPLICATE, IT_FAILED };

struct item {
	char		*data;
	size_t		 len;
	char		 msg_id[ID_MAX + 1];
	char		 host[254];
	enum item_state	 state;
	int64_t		 due;		/* ms: publish (again) not before */
	int64_t		 sent;		/* ms */
	unsigned	 tries;
	uint64_t	 seq;		/* stored: its stream sequence */
	char		 why[160];	/* the last refusal */
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mandrill-publish [-c conf] [-u url] [-s subject] "
	    "[-i] [-q] [-l] [-f file] [-b batch] [-t timeout] [--raw] "
	    "[host [msg_id]] ...\n"
	    "  -c, --config FILE    take url and subject from [source] of "
	    "this mandrill.conf\n"
	    "  -u, --url URL        NATS server (default "
	    "nats://127.0.0.1:4222)\n"
	    "  -s, --subject SUBJ   subject (default mandrill.restart)\n"
	    "  -i, --instance       send names as instance_name, not host\n"
	    "  -f, --file FILE      names one a line (a msg_id may follow "
	    "each); - is standard input\n"
	    "  -b, --batch ID       msg_ids ID:HOST, so that a rerun "
	    "publishes nothing new\n"
	    "  -t, --timeout SECS   publish again what was refused or not "
	    "answered, until then (default 30)\n"
	    "  -l, --list           print each message: stored, duplicate or "
	    "not stored\n"
	    "  -e, --events         publish nothing: print the events of "
	    "[source] events_subject\n"
	    "                       (or -s), one JSON line each, until -n "
	    "of them or -t seconds\n"
	    "  -n, --count N        --events: stop after N events\n"
	    "      --raw            publish each argument or line as given\n"
	    "  -q, --quiet          print nothing on success\n"
	    "  -V, --version        print the version and exit\n"
	    "  -h, --help           print this help and exit\n");
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "url", required_argument, NULL, 'u' },
		{ "subject", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "instance", no_argument, NULL, 'i' },
		{ "batch", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "list", no_argument, NULL, 'l' },
		{ "events", no_argument, NULL, 'e' },
		{ "count", required_argument, NULL, 'n' },
		{ "raw", no_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	char *end;

	o->timeout = TIMEOUT_MS;
	while ((ch = getopt_long(argc, argv, "c:u:s:f:b:t:n:eilqVh", longopts,
	    NULL)) != -1)
		switch (ch) {
		case 'e': o->events = 1; break;
		case 'n':
			o->count = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || o->count < 1) {
				fprintf(stderr, "mandrill-publish: --count \"%s\": "
				    "want a positive number\n", optarg);
				return -1;
			}
			break;
		case 'b': o->batch = optarg; break;
		case 't':
			o->timeout_set = 1;
			o->timeout = (int64_t)(strtod(optarg, &end) * 1000);
			if (end == optarg || *end != '\0' || o->timeout < 0 ||
			    o->timeout > 86400000) {
				fprintf(stderr, "mandrill-publish: --timeout "
				    "\"%s\": want seconds, 0 to 86400\n", optarg);
				return -1;
			}
			break;
		case 'l': o->list = 1; break;
		case 'c': o->conf = optarg; break;
		case 'u': o->url = optarg; break;
		case 's': o->subject = optarg; break;
		case 'f': o->file = optarg; break;
		case 'i': o->instance = 1; break;
		case 'r': o->raw = 1; break;
		case 'q': o->quiet = 1; break;
		case 'V':
			printf("mandrill-publish %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	return 0;
}

/* A time-ordered msg_id (see uuid.h), its random bits from getrandom. */
static void
make_uuid(char out[37])
{
	static struct uuid7 u;
	struct timespec ts;
	uint64_t rnd;

	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		fprintf(stderr, "mandrill-publish: getrandom: %s\n",
		    strerror(errno));
		exit(EX_OSERR);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	uuid7_next(&u, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, rnd,
	    out);
}

/* A msg_id given or made: letters, digits and . _ : - only; NULL if ok. */
static const char *
id_check(const char *s, size_t len)
{
	if (len == 0)
		return "is empty";
	if (len > ID_MAX)
		return "is longer than 128 bytes";
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("._:-", s[i]) != NULL))
			return "may hold only letters, digits and . _ : -";
	return NULL;
}

/*
 * One name (and its msg_id, after blanks, if given), or a raw payload;
 * -1 (said) when a name or an id is wrong, -2 out of memory.
 */
static int
add(struct item **v, size_t *n, size_t *cap, const char *s, size_t len,
    const struct opts *o, const char *where)
{
	struct item *it;
	const char *why, *id = NULL;
	size_t hlen = len, idlen = 0;

	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct item *nv = realloc(*v, c * sizeof(*nv));

		if (nv == NULL)
			return -2;
		*v = nv;
		*cap = c;
	}
	it = &(*v)[*n];
	memset(it, 0, sizeof(*it));
	if (o->raw) {
		if ((it->data = malloc(len + 1)) == NULL)
			return -2;
		memcpy(it->data, s, len);
		it->len = len;
		(*n)++;
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] == ' ' || s[i] == '\t') {
			hlen = i;
			id = s + i;
			while (id < s + len && (*id == ' ' || *id == '\t'))
				id++;
			idlen = (size_t)(s + len - id);
			break;
		}
	if ((why = hostname_check(s, hlen)) != NULL) {
		fprintf(stderr, "mandrill-publish: %s: \"%.*s\": %s; "
		    "nothing published\n", where, (int)hlen, s, why);
		return -1;
	}
	snprintf(it->host, sizeof(it->host), "%.*s", (int)hlen, s);
	if (id != NULL)
		snprintf(it->msg_id, sizeof(it->msg_id), "%.*s", (int)idlen, id);
	else if (o->batch != NULL && hlen <= 63)
		snprintf(it->msg_id, sizeof(it->msg_id), "%.64s:%.63s", o->batch,
		    it->host);
	else if (o->batch != NULL) {	/* too long: the host's FNV-1a hash */
		uint64_t h = UINT64_C(14695981039346656037);

		for (size_t i = 0; i < hlen; i++)
			h = (h ^ (unsigned char)s[i]) * UINT64_C(1099511628211);
		snprintf(it->msg_id, sizeof(it->msg_id), "%.64s:h%016" PRIx64,
		    o->batch, h);
	}
	else
		make_uuid(it->msg_id);
	if ((why = id_check(id != NULL ? id : it->msg_id, id != NULL ? idlen :
	    strlen(it->msg_id))) != NULL) {
		fprintf(stderr, "mandrill-publish: %s: msg_id \"%.*s\" %s; "
		    "nothing published\n", where, id != NULL ? (int)idlen :
		    (int)strlen(it->msg_id), id != NULL ? id : it->msg_id, why);
		return -1;
	}
	if ((it->data = malloc(hlen + ID_MAX + 64)) == NULL)
		return -2;
	it->len = (size_t)snprintf(it->data, hlen + ID_MAX + 64,
	    "{\"msg_id\": \"%s\", \"%s\": \"%s\"}", it->msg_id,
	    o->instance ? "instance_name" : "host", it->host);
	(*n)++;
	return 0;
}

static int
read_lines(FILE *f, const char *name, struct item **v, size_t *n,
    size_t *cap, const struct opts *o)
{
	char *line = NULL, where[1100];
	size_t lcap = 0, lineno = 0;
	ssize_t got;
	int rc = 0;

	while (rc == 0 && (got = getline(&line, &lcap, f)) >= 0) {
		lineno++;
		if (got > 0 && line[got - 1] == '\n')
			line[--got] = '\0';
		if (!o->raw) {
			while (got > 0 && (line[got - 1] == ' ' ||
			    line[got - 1] == '\t' || line[got - 1] == '\r'))
				line[--got] = '\0';
			if (got == 0 || line[0] == '#')
				continue;
		}
		snprintf(where, sizeof(where), "%s:%zu", name, lineno);
		rc = add(v, n, cap, line, (size_t)got, o, where);
	}
	free(line);
	return rc;
}

/*
 * A JetStream publish ack is the reply {"stream": ..., "seq": ...}; an
 * error is {"error": {"description": ...}}, and a subject no stream takes
 * gets a 503 status (no responders).  NULL if acked, else why not.
 */
static const char *
refusal(natsMsg *r, char *buf, size_t len, uint64_t *seq, int *dup)
{
	const char *status = NULL;
	json_t *root, *err, *desc;

	if (natsMsgHeader_Get(r, "Status", &status) == NATS_OK) {
		snprintf(buf, len, "status %s%s", status, strcmp(status, "503") == 0 ?
		    " (no stream takes this subject)" : "");
		return buf;
	}
	root = json_loadb(natsMsg_GetData(r), (size_t)natsMsg_GetDataLength(r),
	    0, NULL);
	if (root == NULL) {
		snprintf(buf, len, "an answer that is not JSON");
		return buf;
	}
	if ((err = json_object_get(root, "error")) != NULL) {
		desc = json_object_get(err, "description");
		snprintf(buf, len, "%s", json_is_string(desc) ?
		    json_string_value(desc) : "an error");
	} else if (!json_is_integer(json_object_get(root, "seq")))
		snprintf(buf, len, "an answer without a sequence");
	else {
		*seq = (uint64_t)json_integer_value(json_object_get(root, "seq"));
		*dup = json_is_true(json_object_get(root, "duplicate"));
		buf = NULL;
	}
	json_decref(root);
	return buf;
}

/*
 * Publish with a reply subject each, MAX_PENDING at most unanswered, and
 * count the acks as they come.  Plain request/reply on one synchronous
 * subscription: what JetStream's async publish does, without its threads.
 */
/* Servers, credentials and TLS as mandrilld takes them. */
static int
connect_to(natsConnection **nc, struct natsauth *a)
{
	natsOptions *opts = NULL;
	natsStatus st;
	char err[CONF_ERR_MAX];

	if ((st = natsOptions_Create(&opts)) != NATS_OK) {
		fprintf(stderr, "mandrill-publish: nats options: %s\n",
		    natsStatus_GetText(st));
		return EX_SOFTWARE;
	}
	if (natsauth_apply(a, opts, err, sizeof(err)) < 0) {
		fprintf(stderr, "mandrill-publish: %s\n", err);
		natsOptions_Destroy(opts);
		return EX_CONFIG;
	}
	st = natsConnection_Connect(nc, opts);
	natsOptions_Destroy(opts);
	if (st != NATS_OK) {
		fprintf(stderr, "mandrill-publish: cannot connect to %s: %s\n",
		    a->shown, natsStatus_GetText(st));
		return EX_UNAVAILABLE;
	}
	return 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
publish_one(natsConnection *nc, const char *subject, const char *prefix,
    struct item *it, size_t i)
{
	char reply[160];
	natsMsg *m = NULL;	/* natsMsg_Create leaves it unset on failure */
	natsStatus st;

	snprintf(reply, sizeof(reply), "%s.%zu", prefix, i);
	st = natsMsg_Create(&m, subject, reply, it->data, (int)it->len);
	if (st == NATS_OK && it->msg_id[0] != '\0')
		st = natsMsgHeader_Set(m, "Nats-Msg-Id", it->msg_id);
	if (st == NATS_OK)
		st = natsConnection_PublishMsg(nc, m);
	natsMsg_Destroy(m);
	it->state = IT_SENT;
	it->sent = now_ms();
	it->tries++;
	if (st != NATS_OK)	/* the connection is down: its answer will not come */
		snprintf(it->why, sizeof(it->why), "%s", natsStatus_GetText(st));
	return st == NATS_OK ? 0 : -1;
}

/*
 * Refused, or no answer: again after a backoff, with the same msg_id,
 * while the timeout allows; after it, not stored.
 */
static void
again(struct item *it, int64_t now, int64_t retry_end)
{
	int64_t d = BACKOFF_MIN_MS;

	if (now >= retry_end) {
		it->state = IT_FAILED;
		return;
	}
	for (unsigned i = 1; i < it->tries && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	it->state = IT_WAITING;
	it->due = now + (d > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d);
}

/* What became of each message, and a summary; 0 if all are stored. */
static int
report(const struct opts *o, const struct item *v, size_t n,
    const char *subject)
{
	size_t stored = 0, dup = 0, retried = 0;

	for (size_t i = 0; i < n; i++) {
		const struct item *it = &v[i];
		int ok = it->state == IT_STORED || it->state == IT_DUPLICATE;

		stored += ok;
		dup += it->state == IT_DUPLICATE;
		retried += it->tries > 1;
		if (o->list || !ok)
			fprintf(ok ? stdout : stderr, "%s %s %s%s%s\n", ok ?
			    (it->state == IT_DUPLICATE ? "duplicate" : "stored") :
			    "not-stored", it->msg_id[0] ? it->msg_id : "-",
			    it->host[0] ? it->host : "-", ok ? "" : ": ",
			    ok ? "" : it->why[0] ? it->why : "no answer");
	}
	if (!o->quiet || stored != n)
		printf("mandrill-publish: %zu of %zu stored on %s (%zu were "
		    "stored already, %zu needed more than one try)%s\n", stored,
		    n, subject, dup, retried, stored == n ? "" : "; publishing "
		    "the same msg_ids again (the same --batch) stores only the "
		    "rest");
	return stored == n ? 0 : EX_UNAVAILABLE;
}

/*
 * Publish with a reply subject each, MAX_PENDING at most unanswered, and
 * take the answers as they come: what JetStream's async publish does,
 * without its threads.  A refusal or an answer not come within
 * ANSWER_MS is published again until the timeout: the server keeps one
 * copy of a msg_id, so a retry of one that was stored is a duplicate.
 */
static int
publish_all(const struct opts *o, struct natsauth *a, const char *subject,
    struct item *v, size_t n)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsInbox *inbox = NULL;
	natsMsg *r;
	natsStatus st;
	char prefix[128], reply[160], why[256];
	const char *no, *dot;
	int64_t end, now;
	size_t done = 0, inflight = 0, i;
	uint64_t seq;
	int rc, dup, said = 0, noresp = 0;

	if ((rc = connect_to(&nc, a)) != 0)
		return rc;
	st = natsInbox_Create(&inbox);
	if (st == NATS_OK) {
		snprintf(prefix, sizeof(prefix), "%s", (const char *)inbox);
		snprintf(reply, sizeof(reply), "%s.*", prefix);
		st = natsConnection_SubscribeSync(&sub, nc, reply);
	}
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (st != NATS_OK) {
		fprintf(stderr, "mandrill-publish: subscribing for the answers: "
		    "%s\n", natsStatus_GetText(st));
		rc = EX_UNAVAILABLE;
		goto out;
	}
	/*
	 * Every message is published once, whatever the timeout; until it
	 * has passed, what is refused or not answered within ANSWER_MS is
	 * published again.  The loop ends when each is stored or given up.
	 */
	end = now_ms() + o->timeout;
	while (done < n) {
		now = now_ms();
		for (i = 0; i < n && inflight < MAX_PENDING; i++)
			if (v[i].state == IT_WAITING && v[i].due <= now) {
				if (publish_one(nc, subject, prefix, &v[i], i) < 0) {
					again(&v[i], now, end);
					done += v[i].state == IT_FAILED;
				} else
					inflight++;
			}
		for (i = 0; i < n; i++)
			if (v[i].state == IT_SENT && now - v[i].sent >= ANSWER_MS) {
				snprintf(v[i].why, sizeof(v[i].why), noresp ? "no "
				    "stream took the subject" : "no answer in %d s",
				    ANSWER_MS / 1000);
				again(&v[i], now, end);
				done += v[i].state == IT_FAILED;
				inflight--;
			}
		if (done >= n)
			break;
		st = natsSubscription_NextMsg(&r, sub, 100);
		if (st == NATS_TIMEOUT)
			continue;
		if (st == NATS_NO_RESPONDERS) {
			/*
			 * No stream takes the subject now (none, or its leader
			 * is being elected); cnats does not say whose answer
			 * it was: each is published again after ANSWER_MS.
			 */
			if (!noresp++)
				fprintf(stderr, "mandrill-publish: no stream "
				    "takes %s right now (a leader election, or "
				    "none: start mandrilld with create = yes "
				    "once); publishing again for %.0f s\n",
				    subject, o->timeout / 1000.0);
			continue;
		}
		if (st != NATS_OK)
			break;
		dot = strrchr(natsMsg_GetSubject(r), '.');
		i = dot != NULL ? strtoul(dot + 1, NULL, 10) : n;
		if (i < n && v[i].state != IT_STORED &&
		    v[i].state != IT_DUPLICATE) {
			seq = 0;
			dup = 0;
			if ((no = refusal(r, why, sizeof(why), &seq, &dup)) == NULL) {
				if (v[i].state == IT_SENT)
					inflight--;
				/* A late answer to a given-up one: stored after all. */
				if (v[i].state != IT_FAILED)
					done++;
				v[i].state = dup ? IT_DUPLICATE : IT_STORED;
				v[i].seq = seq;
			} else if (v[i].state == IT_SENT) {
				if (!said++)
					fprintf(stderr, "mandrill-publish: the server "
					    "refused a message (%s); publishing again "
					    "what it refuses, for %.0f s\n", no,
					    o->timeout / 1000.0);
				snprintf(v[i].why, sizeof(v[i].why), "%.150s", no);
				again(&v[i], now_ms(), end);
				done += v[i].state == IT_FAILED;
				inflight--;
			}
		}
		natsMsg_Destroy(r);
	}
	if (st != NATS_OK && st != NATS_TIMEOUT && st != NATS_NO_RESPONDERS)
		fprintf(stderr, "mandrill-publish: publishing to %s: %s\n",
		    subject, natsStatus_GetText(st));
	rc = report(o, v, n, subject);
out:
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(inbox);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(ANSWER_MS);
	return rc;
}

/*
 * --events: every outcome any instance publishes on the events subject,
 * one JSON line each, as it comes; 0 after count events (or, with no
 * count, at the timeout or forever), 69 when the server is lost.
 */
static int
read_events(const struct opts *o, struct natsauth *a, const char *subject)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsMsg *m;
	natsStatus st;
	int64_t end = o->timeout_set ? now_ms() + o->timeout : INT64_MAX;
	long got = 0;
	int rc;

	if ((rc = connect_to(&nc, a)) != 0)
		return rc;
	st = natsConnection_SubscribeSync(&sub, nc, subject);
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (st == NATS_OK)
		st = natsConnection_Flush(nc);
	if (st != NATS_OK) {
		fprintf(stderr, "mandrill-publish: subscribing to %s: %s\n",
		    subject, natsStatus_GetText(st));
		rc = EX_UNAVAILABLE;
	}
	if (!o->quiet && rc == 0)
		fprintf(stderr, "mandrill-publish: reading events on %s\n",
		    subject);
	while (rc == 0 && (o->count == 0 || got < o->count)) {
		int64_t left = end - now_ms();

		if (left <= 0)
			break;
		st = natsSubscription_NextMsg(&m, sub, left > 1000 ? 1000 :
		    left);
		if (st == NATS_TIMEOUT)
			continue;
		if (st != NATS_OK) {
			fprintf(stderr, "mandrill-publish: reading %s: %s\n",
			    subject, natsStatus_GetText(st));
			rc = EX_UNAVAILABLE;
			break;
		}
		printf("%.*s\n", natsMsg_GetDataLength(m), natsMsg_GetData(m));
		fflush(stdout);
		natsMsg_Destroy(m);
		got++;
	}
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(ANSWER_MS);
	if (rc == 0 && o->count > 0 && got < o->count) {
		fprintf(stderr, "mandrill-publish: %ld of %ld events came\n",
		    got, o->count);
		rc = EX_UNAVAILABLE;
	}
	return rc;
}

/* -u: checked as [source] url is, then taken. */
static int
set_url(struct conf *c, const char *list)
{
	char err[CONF_ERR_MAX];

	if (conf_url_check(list, err, sizeof(err)) < 0) {
		fprintf(stderr, "mandrill-publish: -u %s\n", err);
		return -1;
	}
	snprintf(c->url, sizeof(c->url), "%s", list);
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct conf c;
	struct natsauth auth;
	struct item *v = NULL;
	size_t n = 0, cap = 0;
	char err[CONF_ERR_MAX];
	const char *why;
	int rc = 0;

	if (parse_args(argc, argv, &o) < 0)
		return EX_USAGE;
	conf_defaults(&c);
	if (o.conf != NULL && conf_load(&c, o.conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "mandrill-publish: %s\n", err);
		return EX_CONFIG;
	}
	if (o.url != NULL && set_url(&c, o.url) < 0)
		return EX_USAGE;
	if (o.events) {
		const char *subj = o.subject != NULL ? o.subject :
		    c.events_subject;

		if (*subj == '\0') {
			fprintf(stderr, "mandrill-publish: --events needs -s or "
			    "a -c file with [source] events_subject\n");
			return EX_USAGE;
		}
		if ((why = conf_subject_check(subj)) != NULL &&
		    strchr(subj, '*') == NULL && strchr(subj, '>') == NULL) {
			fprintf(stderr, "mandrill-publish: subject \"%s\" %s\n",
			    subj, why);
			return EX_USAGE;
		}
		if ((o.conf != NULL &&
		    natsauth_check_conf(&c, o.conf, err, sizeof(err)) < 0) ||
		    natsauth_load(&auth, &c, err, sizeof(err)) < 0) {
			fprintf(stderr, "mandrill-publish: %s\n", err);
			return EX_CONFIG;
		}
		rc = read_events(&o, &auth, subj);
		natsauth_free(&auth);
		return rc;
	}
	if (o.subject == NULL)
		o.subject = c.subject;
	if (o.batch != NULL && (strlen(o.batch) > 64 ||
	    id_check(o.batch, strlen(o.batch)) != NULL)) {
		fprintf(stderr, "mandrill-publish: --batch \"%s\": want 1 to "
		    "64 letters, digits and . _ : -\n", o.batch);
		return EX_USAGE;
	}
	if ((why = conf_subject_check(o.subject)) != NULL) {
		fprintf(stderr, "mandrill-publish: subject \"%s\" %s; nothing "
		    "published\n", o.subject, why);
		return EX_USAGE;
	}
	for (int i = optind; rc == 0 && i < argc; i++)
		rc = add(&v, &n, &cap, argv[i], strlen(argv[i]), &o, "argument");
	if (rc == 0 && (o.file != NULL || optind == argc)) {
		const char *name = o.file && strcmp(o.file, "-") ? o.file : "-";
		FILE *f = strcmp(name, "-") ? fopen(name, "re") : stdin;

		if (f == NULL) {
			fprintf(stderr, "mandrill-publish: %s: %s\n", name,
			    strerror(errno));
			return EX_NOINPUT;
		}
		rc = read_lines(f, strcmp(name, "-") ? name : "stdin", &v, &n,
		    &cap, &o);
		if (f != stdin)
			fclose(f);
	}
	if (rc == -2) {
		fprintf(stderr, "mandrill-publish: out of memory\n");
		return EX_OSERR;
	}
	if (rc < 0)
		return EX_DATAERR;
	if (n == 0) {
		fprintf(stderr, "mandrill-publish: nothing to publish\n");
		return EX_NOINPUT;
	}
	if ((o.conf != NULL &&
	    natsauth_check_conf(&c, o.conf, err, sizeof(err)) < 0) ||
	    natsauth_load(&auth, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "mandrill-publish: %s\n", err);
		return EX_CONFIG;
	}
	rc = publish_all(&o, &auth, o.subject, v, n);
	natsauth_free(&auth);
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
	return rc;
}
