/*
 * mandrill-publish: publish restart requests to the JetStream stream
 * that mandrilld consumes.
 *
 *   mandrill-publish [-c conf] [-u url] [-s subject] [-i] [-f file]
 *                    [--raw] [host ...]
 *
 * Each host becomes {"msg_id": "<uuid>", "host": "<host>"} (with -i,
 * "instance_name"), published with the msg_id as Nats-Msg-Id, so the
 * server drops a copy published again within its duplicate window.
 * Hosts come from the arguments and the file (- is standard input), or
 * from standard input when there are neither, one a line; blank lines and lines
 * starting with # are skipped.  Every name is checked before anything is
 * published.  --raw publishes each argument or line as given, unchecked:
 * for testing how mandrilld takes bad input.  The exit status is 0 only
 * if the server acknowledged every message.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
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

#define WAIT_MS		10000	/* for the next ack, at most */
#define MAX_PENDING	4096	/* publishes not yet answered, at most */

struct opts {
	const char	*conf;
	const char	*url;
	const char	*subject;
	const char	*file;
	int		 instance;
	int		 raw;
	int		 quiet;
};

struct item {
	char	*data;
	size_t	 len;
	char	 msg_id[37];
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mandrill-publish [-c conf] [-u url] [-s subject] "
	    "[-i] [-q] [-f file] [--raw] [host ...]\n"
	    "  -c, --config FILE    take url and subject from [source] of "
	    "this mandrill.conf\n"
	    "  -u, --url URL        NATS server (default "
	    "nats://127.0.0.1:4222)\n"
	    "  -s, --subject SUBJ   subject (default mandrill.restart)\n"
	    "  -i, --instance       send names as instance_name, not host\n"
	    "  -f, --file FILE      names one a line; - is standard input\n"
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
		{ "raw", no_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:u:s:f:iqVh", longopts,
	    NULL)) != -1)
		switch (ch) {
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

/* One name or raw payload; -1 (said) when a name is no host name, -2
 * out of memory. */
static int
add(struct item **v, size_t *n, size_t *cap, const char *s, size_t len,
    const struct opts *o, const char *where)
{
	struct item *it;
	const char *why;

	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct item *nv = realloc(*v, c * sizeof(*nv));

		if (nv == NULL)
			return -2;
		*v = nv;
		*cap = c;
	}
	it = &(*v)[*n];
	if (o->raw) {
		if ((it->data = malloc(len + 1)) == NULL)
			return -2;
		memcpy(it->data, s, len);
		it->len = len;
		it->msg_id[0] = '\0';
	} else {
		if ((why = hostname_check(s, len)) != NULL) {
			fprintf(stderr, "mandrill-publish: %s: \"%.*s\": %s; "
			    "nothing published\n", where, (int)len, s, why);
			return -1;
		}
		make_uuid(it->msg_id);
		if ((it->data = malloc(len + 96)) == NULL)
			return -2;
		it->len = (size_t)snprintf(it->data, len + 96,
		    "{\"msg_id\": \"%s\", \"%s\": \"%.*s\"}", it->msg_id,
		    o->instance ? "instance_name" : "host", (int)len, s);
	}
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
refusal(natsMsg *r, char *buf, size_t len)
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
	else
		buf = NULL;
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

static int
publish_all(const struct opts *o, struct natsauth *a, const char *subject,
    struct item *v, size_t n)
{
	const char *url = a->shown;
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsInbox *inbox = NULL;
	natsMsg *m, *r;
	natsStatus st;
	char prefix[128], reply[160], why[256];
	const char *no;
	size_t sent = 0, answered = 0, acked = 0;
	int rc;

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
	while (st == NATS_OK && answered < n) {
		while (st == NATS_OK && sent < n && sent - answered < MAX_PENDING) {
			snprintf(reply, sizeof(reply), "%s.%zu", prefix, sent);
			m = NULL;	/* natsMsg_Create leaves it unset on failure */
			st = natsMsg_Create(&m, subject, reply, v[sent].data,
			    (int)v[sent].len);
			if (st == NATS_OK && v[sent].msg_id[0] != '\0')
				st = natsMsgHeader_Set(m, "Nats-Msg-Id",
				    v[sent].msg_id);
			if (st == NATS_OK)
				st = natsConnection_PublishMsg(nc, m);
			natsMsg_Destroy(m);
			sent++;
		}
		if (st != NATS_OK)
			break;
		if ((st = natsSubscription_NextMsg(&r, sub, WAIT_MS)) != NATS_OK)
			break;
		answered++;
		if ((no = refusal(r, why, sizeof(why))) == NULL)
			acked++;
		else if (answered - acked == 1)
			fprintf(stderr, "mandrill-publish: the server refused a "
			    "message: %s\n", no);
		natsMsg_Destroy(r);
	}
	if (st == NATS_NO_RESPONDERS)
		fprintf(stderr, "mandrill-publish: no stream takes subject %s "
		    "on %s (start mandrilld with create = yes once, or create "
		    "the stream)\n", subject, url);
	else if (st == NATS_TIMEOUT)
		fprintf(stderr, "mandrill-publish: no answer from the server "
		    "for %zu messages after %d s\n", sent - answered,
		    WAIT_MS / 1000);
	else if (st != NATS_OK)
		fprintf(stderr, "mandrill-publish: publishing to %s: %s\n",
		    subject, natsStatus_GetText(st));
	if (!o->quiet || acked != n)
		printf("mandrill-publish: %zu of %zu acknowledged by the server\n",
		    acked, n);
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(inbox);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(WAIT_MS);
	return acked == n ? 0 : EX_UNAVAILABLE;
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
	if (o.subject == NULL)
		o.subject = c.subject;
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
