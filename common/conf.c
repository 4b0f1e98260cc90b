/*
 * conf: table-driven parsing of mandrill.conf with inih.
 *
 * The file is read whole and checked for over-long lines and NUL bytes
 * before inih sees it: the Debian build of inih truncates lines at 200
 * bytes without saying so, and a silently cut command or allow list is
 * exactly the kind of surprise a restart service must not have.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <regex.h>

#include <ini.h>

#include "conf.h"
#include "argv.h"
#include "duration.h"
#include "hostname.h"
#include "natsurl.h"
#include "window.h"

#define OFF(f)		offsetof(struct conf, f)
#define STR(f)		OFF(f), sizeof(((struct conf *)0)->f)
#define INI_LINE_MAX	198	/* inih's INI_MAX_LINE less newline and NUL */

#ifndef PKGLIBEXECDIR
#define PKGLIBEXECDIR "/usr/local/libexec/mandrill"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif

const struct conf_key conf_keys[] = {
	{ "mandrill", "workers", CT_UINT, OFF(workers), 0, "2", 1, 256, NULL,
	  "worker processes" },
	{ "mandrill", "jobs_per_worker", CT_UINT, OFF(jobs_per_worker), 0, "64",
	  1, 100000, NULL, "jobs one worker runs at once" },
	{ "mandrill", "max_in_flight", CT_UINT, OFF(max_in_flight), 0, "1000",
	  1, 1000000, NULL, "messages pulled and not yet acked, at most" },
	{ "mandrill", "state_dir", CT_STR, STR(state_dir),
	  LOCALSTATEDIR "/lib/mandrill", 0, 0, NULL,
	  "directory of the SQLite database mandrill.db" },
	{ "mandrill", "log_file", CT_STR, STR(log_file), "", 0, 0, NULL,
	  "log file; empty logs to standard error" },
	{ "mandrill", "pid_file", CT_STR, STR(pid_file), "", 0, 0, NULL,
	  "pid file; empty writes none" },
	{ "mandrill", "worker_path", CT_STR, STR(worker_path),
	  PKGLIBEXECDIR "/mandrill-worker", 0, 0, NULL,
	  "the mandrill-worker program" },
	{ "mandrill", "log_level", CT_LEVEL, OFF(log_level), 0, "info", 0, 0,
	  NULL, "debug, info, warning or error" },
	{ "mandrill", "log_format", CT_ENUM, OFF(log_format), 0, "text", 0, 0,
	  "text|json", "text lines, or JSON lines for log shippers" },
	{ "mandrill", "drain_timeout", CT_DUR, OFF(drain_timeout), 0, "30s",
	  0, 86400000, NULL, "how long TERM waits for in-flight jobs" },
	{ "mandrill", "worker_timeout", CT_DUR, OFF(worker_timeout), 0, "30s",
	  1000, 86400000, NULL, "a worker silent this long is killed" },
	{ "mandrill", "user", CT_STR, STR(user), "", 0, 0, NULL,
	  "started as root: workers run as this user; empty keeps root" },
	{ "mandrill", "synchronous", CT_ENUM, OFF(synchronous), 0, "full", 0, 0,
	  "off|normal|full", "SQLite synchronous mode" },
	{ "mandrill", "wal_limit", CT_U64, OFF(wal_limit), 0, "67108864",
	  1048576, UINT64_C(1) << 40, NULL, "bytes the WAL is truncated to "
	  "after a checkpoint; above it a starving reader is reported" },
	{ "mandrill", "retain", CT_DUR, OFF(retain), 0, "90d", 0,
	  UINT64_C(3650) * 86400000, NULL, "finished rows older than this are "
	  "pruned; 0 keeps them all" },
	{ "mandrill", "control_socket", CT_STR, STR(control_socket), "", 0, 0,
	  NULL, "mandrillctl's Unix socket; empty is control.sock in "
	  "state_dir" },
	{ "mandrill", "control_group", CT_STR, STR(control_group), "", 0, 0,
	  NULL, "group whose members may use the control socket, besides "
	  "root and user" },
	{ "mandrill", "busy_timeout", CT_DUR, OFF(busy_timeout), 0, "5s",
	  0, 3600000, NULL, "how long a worker waits for the database lock" },

	{ "source", "type", CT_ENUM, OFF(source), 0, "sim", 0, 0, "sim|nats",
	  "where messages come from" },
	{ "source", "batch", CT_UINT, OFF(batch), 0, "100", 1, 10000, NULL,
	  "messages asked for in one pull, at most" },
	{ "source", "ack_deadline", CT_DUR, OFF(ack_deadline), 0, "10s",
	  1000, 600000, NULL, "sim: the broker's ack deadline" },
	{ "source", "rate", CT_UINT, OFF(rate), 0, "1", 0, 10000000, NULL,
	  "sim: messages published a second; 0 is as fast as they are taken" },
	{ "source", "count", CT_U64, OFF(count), 0, "0", 0, UINT64_C(1) << 40,
	  NULL, "sim: stop publishing after this many; 0 never stops" },
	{ "source", "exit_when_done", CT_BOOL, OFF(exit_when_done), 0, "no",
	  0, 0, NULL, "sim: exit 0 once all count messages are acked" },
	{ "source", "instances", CT_U64, OFF(instances), 0, "65536", 0,
	  UINT64_C(1) << 32, NULL, "sim: distinct instance names drawn from; "
	  "0 gives every message its own" },
	{ "source", "payload_file", CT_STR, STR(payload_file), "", 0, 0, NULL,
	  "sim: publish these payloads, one a line, \\xHH for any byte, "
	  "instead of generated ones" },
	{ "source", "seed", CT_U64, OFF(seed), 0, "0", 0, UINT64_MAX, NULL,
	  "sim: publisher seed; 0 seeds from the system" },
	{ "source", "url", CT_STR, STR(url), "nats://127.0.0.1:4222", 0, 0,
	  NULL, "nats: server URLs, separated by commas" },
	{ "source", "stream", CT_STR, STR(stream), "RESTARTS", 0, 0, NULL,
	  "nats: the JetStream stream" },
	{ "source", "subject", CT_STR, STR(subject), "mandrill.restart", 0, 0,
	  NULL, "nats: the subject restart requests are published on" },
	{ "source", "durable", CT_STR, STR(durable), "mandrill", 0, 0, NULL,
	  "nats: the durable pull consumer all mandrilld share" },
	{ "source", "ack_wait", CT_DUR, OFF(ack_wait), 0, "30s", 1000,
	  3600000, NULL, "nats: the consumer's ack wait (lease length)" },
	{ "source", "max_deliver", CT_UINT, OFF(max_deliver), 0, "0", 0,
	  100000, NULL, "deliveries of a message before the broker gives up "
	  "on it; 0 is no limit (waiting spends none)" },
	{ "source", "max_ack_pending", CT_UINT, OFF(max_ack_pending), 0,
	  "100000", 1, 10000000, NULL,
	  "nats: unacked messages across all instances, at most" },
	{ "source", "replicas", CT_UINT, OFF(replicas), 0, "1", 1, 5, NULL,
	  "nats: replicas of the stream that create = yes makes" },
	{ "source", "create", CT_BOOL, OFF(create), 0, "yes", 0, 0, NULL,
	  "nats: create the stream and consumer when missing" },
	{ "source", "dead_letter_subject", CT_STR, STR(dead_letter_subject), "",
	  0, 0, NULL, "nats: also publish dead and invalid messages here; "
	  "empty publishes none" },
	{ "source", "events_subject", CT_STR, STR(events_subject), "", 0, 0,
	  NULL, "nats: also publish every outcome here, as a JSON event; "
	  "empty publishes none" },
	{ "source", "creds", CT_STR, STR(creds), "", 0, 0, NULL,
	  "nats: credentials file (user JWT and nkey seed); must not be "
	  "readable by others" },
	{ "source", "nkey_seed", CT_STR, STR(nkey_seed), "", 0, 0, NULL,
	  "nats: file holding a user nkey seed (SU...); must not be readable "
	  "by others" },
	{ "source", "token_file", CT_STR, STR(token_file), "", 0, 0, NULL,
	  "nats: file holding an authentication token; must not be readable "
	  "by others" },
	{ "source", "user", CT_STR, STR(source_user), "", 0, 0, NULL,
	  "nats: user name, with password_file" },
	{ "source", "password_file", CT_STR, STR(password_file), "", 0, 0,
	  NULL, "nats: file holding the password of user; must not be "
	  "readable by others" },
	{ "source", "tls_ca", CT_STR, STR(tls_ca), "", 0, 0, NULL,
	  "nats: CA certificates to verify the server by; set, TLS is used" },
	{ "source", "tls_cert", CT_STR, STR(tls_cert), "", 0, 0, NULL,
	  "nats: client certificate (chain), with tls_key" },
	{ "source", "tls_key", CT_STR, STR(tls_key), "", 0, 0, NULL,
	  "nats: private key of tls_cert; must not be readable by others" },

	{ "restart", "mode", CT_ENUM, OFF(mode), 0, "sim", 0, 0, "sim|command",
	  "how hosts are restarted" },
	{ "restart", "command", CT_STR, STR(command), "", 0, 0, NULL,
	  "command: program and arguments, {host} replaced; no shell" },
	{ "restart", "enabled", CT_BOOL, OFF(enabled), 0, "yes", 0, 0, NULL,
	  "no: pause: pull nothing, start no restart, hold what is in "
	  "flight" },
	{ "restart", "dry_run", CT_BOOL, OFF(dry_run), 0, "no", 0, 0, NULL,
	  "yes: record and log what would run, run nothing" },
	{ "restart", "max_concurrent", CT_UINT, OFF(max_concurrent), 0, "0",
	  0, 1000000, NULL, "restarts running at once, at most; 0 is no limit" },
	{ "restart", "max_per_minute", CT_UINT, OFF(max_per_minute), 0, "0",
	  0, 1000000, NULL, "restarts started in any minute, at most; 0 is "
	  "no limit" },
	{ "restart", "sim_latency", CT_RANGE, OFF(sim_latency_min),
	  OFF(sim_latency_max), "100ms..1s", 0, 3600000, NULL,
	  "sim: restart duration range" },
	{ "restart", "sim_failure_rate", CT_RATIO, OFF(sim_failure_rate), 0,
	  "0.1", 0, 0, NULL, "sim: share of restarts that fail, 0 to 1" },
	{ "restart", "sim_seed", CT_U64, OFF(sim_seed), 0, "0", 0, UINT64_MAX,
	  NULL, "sim: restart seed; 0 seeds from the system" },
	{ "restart", "domain", CT_STR, STR(domain), "", 0, 0, NULL,
	  "appended to instance names with a dot" },
	{ "restart", "allow", CT_LIST, STR(allow), "", 0, 0, NULL,
	  "host globs that may be restarted; empty allows nothing" },
	{ "restart", "deny", CT_LIST, STR(deny), "", 0, 0, NULL,
	  "host globs that may never be restarted" },
	{ "restart", "window", CT_STR, STR(window), "", 0, 0, NULL,
	  "when restarts may start: spans such as Mon-Fri 09:00-17:00, "
	  "Sat 10:00-12:00; empty is always" },
	{ "restart", "timezone", CT_STR, STR(timezone), "", 0, 0, NULL,
	  "the IANA zone window is read in; empty is the system's local "
	  "time" },
	{ "restart", "group", CT_STR, STR(group), "", 0, 0, NULL,
	  "POSIX extended regex; its first capture group of the host name "
	  "names the host's group (a payload's group field wins)" },
	{ "restart", "max_concurrent_per_group", CT_UINT,
	  OFF(max_concurrent_per_group), 0, "0", 0, 1000000, NULL,
	  "restarts running at once within one group, at most; 0 is no "
	  "limit" },
	{ "restart", "check", CT_STR, STR(check), "", 0, 0, NULL,
	  "health check after a restart: program and arguments, {host} "
	  "replaced, run until it exits 0; empty is none" },
	{ "restart", "check_timeout", CT_DUR, OFF(check_timeout), 0, "5m",
	  1000, 86400000, NULL, "a check that has not exited 0 by then fails "
	  "the attempt" },
	{ "restart", "check_interval", CT_DUR, OFF(check_interval), 0, "10s",
	  100, 3600000, NULL, "between the end of one check and the next" },
	{ "restart", "max_failures", CT_STR, STR(max_failures), "", 0, 0, NULL,
	  "error budget: N failed attempts, or N% of the attempts, within "
	  "failure_window pause restarts; empty is no budget" },
	{ "restart", "failure_window", CT_DUR, OFF(failure_window), 0, "10m",
	  1000, 86400000, NULL, "the window max_failures counts in" },
	{ "restart", "max_crashes", CT_UINT, OFF(max_crashes), 0, "3", 0,
	  1000, NULL, "workers lost while holding a message before it is "
	  "dead; 0 is no limit" },
	{ "restart", "max_attempts", CT_UINT, OFF(max_attempts), 0, "5", 1, 1000,
	  NULL, "failed attempts before a message is dead" },
	{ "restart", "backoff_min", CT_DUR, OFF(backoff_min), 0, "10s",
	  0, 86400000, NULL, "first retry delay" },
	{ "restart", "backoff_max", CT_DUR, OFF(backoff_max), 0, "10m",
	  0, 86400000, NULL, "longest retry delay" },
	{ "restart", "min_interval", CT_DUR, OFF(min_interval), 0, "0",
	  0, INT64_C(31536000000), NULL,
	  "skip a host restarted successfully less than this ago; 0 is off" },
	{ "restart", "restart_timeout", CT_DUR, OFF(restart_timeout), 0, "5m",
	  1, 86400000, NULL, "a restart running longer fails" },

	{ "metrics", "metrics_file", CT_STR, STR(metrics_file), "", 0, 0, NULL,
	  "Prometheus text file, rewritten atomically; empty writes none" },
	{ "metrics", "metrics_interval", CT_DUR, OFF(metrics_interval), 0,
	  "15s", 1000, 3600000, NULL, "how often metrics_file is written" },
	{ "metrics", "status_interval", CT_DUR, OFF(status_interval), 0, "1m",
	  0, 86400000, NULL, "how often a status line is logged; 0 is never" },
	{ "metrics", "slow_iteration", CT_DUR, OFF(slow_iteration), 0, "50ms",
	  0, 3600000, NULL, "warn when one loop iteration takes longer; 0 "
	  "is never" },
	{ "lease", "max_lease", CT_DUR, OFF(max_lease), 0, "1h",
	  1000, 86400000, NULL, "longest time a message's lease is extended" },

	{ "fleet", "coordination", CT_ENUM, OFF(coordination), 0, "none", 0, 0,
	  "none|nats", "none: the rules hold per instance; nats: across every "
	  "instance sharing the consumer, in JetStream Key-Value" },
	{ "fleet", "instance", CT_STR, STR(instance), "", 0, 0, NULL,
	  "this instance's name in the fleet's records; empty is the host "
	  "name" },
	{ "fleet", "bucket", CT_STR, STR(bucket), "mandrill", 0, 0, NULL,
	  "prefix of the Key-Value buckets: <bucket>-msgs, -leases, -recent, "
	  "-rate, -control" },
	{ "fleet", "lease", CT_DUR, OFF(fleet_lease), 0, "30s", 3000, 3600000,
	  NULL, "how long a fleet grant lasts unless renewed; a restart whose "
	  "grant cannot be renewed is killed before it ends" },
	{ "fleet", "remember", CT_DUR, OFF(remember), 0, "7d", 60000,
	  INT64_C(31536000000), NULL, "how long the fleet remembers that a "
	  "msg_id was restarted (exactly once across instances)" },
};
const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);

struct parse_ctx {
	struct conf	*conf;
	const char	*name;
	char		*err;
	size_t		 errlen;
	int		 failed;
	unsigned char	 seen[sizeof(conf_keys) / sizeof(conf_keys[0])];
};

const struct conf_key *
conf_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < conf_nkeys; i++)
		if (strcmp(conf_keys[i].section, section) == 0 &&
		    strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

const char *
conf_key_form(const struct conf_key *k, char *buf, size_t len)
{
	char a[32], b[32];

	switch (k->type) {
	case CT_UINT:
	case CT_U64:
		snprintf(buf, len, "an integer from %" PRIu64 " to %" PRIu64,
		    k->min, k->max);
		break;
	case CT_DUR:
		snprintf(buf, len, "a duration from %s to %s, such as 500ms, "
		    "10s, 5m, 1h or 7d", duration_fmt(k->min, a, sizeof(a)),
		    duration_fmt(k->max, b, sizeof(b)));
		break;
	case CT_RANGE:
		snprintf(buf, len, "a range of durations MIN..MAX, such as "
		    "100ms..1s, at most %s", duration_fmt(k->max, a, sizeof(a)));
		break;
	case CT_BOOL:
		snprintf(buf, len, "yes or no");
		break;
	case CT_RATIO:
		snprintf(buf, len, "a number from 0 to 1");
		break;
	case CT_LEVEL:
		snprintf(buf, len, "debug, info, warning or error");
		break;
	case CT_ENUM:
		snprintf(buf, len, "one of %s", k->choices);
		break;
	case CT_STR:
		snprintf(buf, len, "text without control characters, at most "
		    "%zu bytes", k->off2 - 1);
		break;
	case CT_LIST:
		snprintf(buf, len, "globs separated by spaces or commas, "
		    "%zu bytes at most", k->off2 - 1);
		break;
	}
	return buf;
}

static int
parse_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int
parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcasecmp(v, "off") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int
parse_enum(const char *v, const char *choices, int *out)
{
	size_t n = strlen(v);
	int i = 0;

	for (const char *p = choices; *p; i++) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && strncasecmp(p, v, n) == 0) {
			*out = i;
			return 0;
		}
		p += len + (bar != NULL);
	}
	return -1;
}

static int
parse_ratio(const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || !(d >= 0.0 && d <= 1.0))
		return -1;
	*out = d;
	return 0;
}

static int
set_string(char *dst, size_t size, const char *v, int append)
{
	size_t have = append ? strlen(dst) : 0;
	size_t n = strlen(v);

	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	if (have + (have > 0) + n + 1 > size)
		return -1;
	if (have > 0)
		dst[have++] = ' ';
	memcpy(dst + have, v, n + 1);
	return 0;
}

/* Store one value; -1 when it does not have the key's form. */
static int
key_set(struct conf *c, const struct conf_key *k, const char *v, int again)
{
	char *base = (char *)c;
	uint64_t u;
	int64_t d, d2;
	int b;

	switch (k->type) {
	case CT_UINT:
		if (parse_uint(v, k->min, k->max, &u) < 0)
			return -1;
		*(unsigned *)(base + k->off) = (unsigned)u;
		return 0;
	case CT_U64:
		if (parse_uint(v, k->min, k->max, &u) < 0)
			return -1;
		*(uint64_t *)(base + k->off) = u;
		return 0;
	case CT_DUR:
		if (duration_parse(v, &d) < 0 || (uint64_t)d < k->min ||
		    (uint64_t)d > k->max)
			return -1;
		*(int64_t *)(base + k->off) = d;
		return 0;
	case CT_RANGE:
		if (duration_range_parse(v, &d, &d2) < 0 || (uint64_t)d2 > k->max)
			return -1;
		*(int64_t *)(base + k->off) = d;
		*(int64_t *)(base + k->off2) = d2;
		return 0;
	case CT_BOOL:
		if (parse_bool(v, &b) < 0)
			return -1;
		*(int *)(base + k->off) = b;
		return 0;
	case CT_RATIO:
		return parse_ratio(v, (double *)(base + k->off));
	case CT_LEVEL:
		return log_level_parse(v, (enum log_level *)(base + k->off));
	case CT_ENUM:
		return parse_enum(v, k->choices, (int *)(base + k->off));
	case CT_STR:
		return set_string(base + k->off, k->off2, v, 0);
	case CT_LIST:
		return set_string(base + k->off, k->off2, v, again);
	}
	return -1;
}

void
conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < conf_nkeys; i++)
		if (key_set(c, &conf_keys[i], conf_keys[i].def, 0) < 0)
			abort();	/* a default that does not parse is a bug */
}

static void
bad_value(const struct conf_key *k, const char *value, char *err,
    size_t errlen)
{
	char form[160];

	snprintf(err, errlen, "[%s] %s = \"%.64s\": expected %s", k->section,
	    k->name, value, conf_key_form(k, form, sizeof(form)));
}

int
conf_set(struct conf *c, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	const struct conf_key *k = conf_key_find(section, name);

	if (k == NULL) {
		if (conf_key_find(section, "workers") == NULL &&
		    conf_key_find(section, "type") == NULL &&
		    conf_key_find(section, "mode") == NULL &&
		    conf_key_find(section, "max_lease") == NULL &&
		    conf_key_find(section, "metrics_file") == NULL &&
		    conf_key_find(section, "coordination") == NULL)
			snprintf(err, errlen, "unknown section [%s]", section);
		else
			snprintf(err, errlen, "unknown key \"%s\" in [%s]",
			    name, section);
		return -1;
	}
	if (key_set(c, k, value, 0) < 0) {
		bad_value(k, value, err, errlen);
		return -1;
	}
	return 0;
}

static int
conf_ini_cb(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse_ctx *p = user;
	const struct conf_key *k;
	char msg[CONF_ERR_MAX - 64];
	size_t i;

	if (p->failed)
		return 0;
	k = conf_key_find(section, name);
	if (k != NULL) {
		i = (size_t)(k - conf_keys);
		if (p->seen[i] && k->type != CT_LIST) {
			snprintf(msg, sizeof(msg), "[%s] %s given twice (or "
			    "continued on an indented line, which only allow "
			    "and deny may be)", section, name);
			goto fail;
		}
		if (key_set(p->conf, k, value, p->seen[i]) == 0) {
			p->seen[i] = 1;
			return 1;
		}
		bad_value(k, value, msg, sizeof(msg));
		goto fail;
	}
	conf_set(p->conf, section, name, value, msg, sizeof(msg));	/* words it */
fail:
	snprintf(p->err, p->errlen, "%s", msg);
	p->failed = 1;
	return 0;
}

static int
precheck(const char *text, const char *name, char *err, size_t errlen)
{
	unsigned line = 1;
	size_t col = 0;

	for (const char *p = text; *p; p++) {
		if (*p == '\n') {
			line++;
			col = 0;
			continue;
		}
		if (++col > INI_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes",
			    name, line, INI_LINE_MAX);
			return -1;
		}
	}
	return 0;
}

int
conf_load_string(struct conf *c, const char *text, const char *name,
    char *err, size_t errlen)
{
	struct parse_ctx p;
	char msg[CONF_ERR_MAX];
	int line;

	if (precheck(text, name, err, errlen) < 0)
		return -1;
	memset(&p, 0, sizeof(p));
	p.conf = c;
	p.err = msg;
	p.errlen = sizeof(msg);
	p.name = name;
	msg[0] = '\0';
	line = ini_parse_string(text, conf_ini_cb, &p);
	if (line != 0) {
		if (msg[0] == '\0')
			snprintf(msg, sizeof(msg), "syntax error: expected "
			    "[section] or key = value");
		snprintf(err, errlen, "%s:%d: %s", name, line, msg);
		return -1;
	}
	if (conf_check(c, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", name, msg);
		return -1;
	}
	return 0;
}

int
conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *text;
	long size;
	int rc;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || size > 1024 * 1024) {
		snprintf(err, errlen, "%s: not a regular file of at most 1 MiB",
		    path);
		fclose(f);
		return -1;
	}
	if ((text = malloc(size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		fclose(f);
		return -1;
	}
	if (fread(text, 1, size, f) != (size_t)size) {
		snprintf(err, errlen, "%s: read error", path);
		rc = -1;
	} else if (memchr(text, '\0', size) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		rc = -1;
	} else {
		text[size] = '\0';
		rc = conf_load_string(c, text, path, err, errlen);
	}
	free(text);
	fclose(f);
	return rc;
}

/* Globs are matched with a 255-byte buffer: refuse longer ones. */
static int
check_globs(const char *key, const char *list, char *err, size_t errlen)
{
	while (*list) {
		size_t n = strcspn(list, " ,\t");

		if (n > CONF_GLOB_MAX) {
			snprintf(err, errlen, "[restart] %s: glob \"%.32s...\" "
			    "longer than %d bytes", key, list, CONF_GLOB_MAX);
			return -1;
		}
		list += n;
		list += strspn(list, " ,\t");
	}
	return 0;
}

/* An argv template, [restart] command or check: a program to run. */
static int
check_template(const char *key, const char *tmpl, char *err, size_t errlen)
{
	char msg[160];
	const char *why;
	char **argv;

	if ((argv = argv_split(tmpl, msg, sizeof(msg))) == NULL) {
		snprintf(err, errlen, "[restart] %s: %s", key, msg);
		return -1;
	}
	why = argv_check_command(argv);
	argv_free(argv);
	if (why != NULL) {
		snprintf(err, errlen, "[restart] %s: %s", key, why);
		return -1;
	}
	return 0;
}

static int
check_command(const struct conf *c, char *err, size_t errlen)
{
	if (c->command[0] == '\0') {
		snprintf(err, errlen, "[restart] mode = command needs a command");
		return -1;
	}
	return check_template("command", c->command, err, errlen);
}

/*
 * glibc's regcomp copies a subexpression once per repetition, and again
 * for every operator stacked on it: "a*++++..." or "(a{200}){200}" takes
 * gigabytes (found by fuzz_conf).  A host name's group needs none of
 * that: at most REGEX_MAX bytes, no repetition operator directly after
 * another, and at most REGEX_BOUNDS bounds {m,n}, each at most
 * REGEX_BOUND.  NULL, or why not.
 */
#define REGEX_MAX	256
#define REGEX_BOUNDS	4
#define REGEX_BOUND	64
static const char *
regex_cost_check(const char *ere)
{
	int bounds = 0, after_rep = 0, in_class = 0;

	if (strlen(ere) > REGEX_MAX)
		return "is longer than 256 bytes";
	for (const char *p = ere; *p != '\0'; p++) {
		if (in_class) {		/* [...]: no operators inside */
			if (*p == ']' && p[-1] != '[' && !(p[-1] == '^' &&
			    p[-2] == '['))
				in_class = 0;
			continue;
		}
		if (*p == '\\' && p[1] != '\0') {
			p++;
			after_rep = 0;
			continue;
		}
		if (*p == '[') {
			in_class = 1;
			after_rep = 0;
			continue;
		}
		if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
			if (after_rep)
				return "stacks repetition operators (as in a*+), "
				    "which costs the regex library memory without "
				    "bound";
			after_rep = 1;
			if (*p == '{') {
				char *end;
				long lo = strtol(p + 1, &end, 10), hi = lo;

				if (*end == ',')
					hi = end[1] == '}' ? REGEX_BOUND + 1 :
					    strtol(end + 1, &end, 10);
				if (++bounds > REGEX_BOUNDS || lo > REGEX_BOUND ||
				    hi > REGEX_BOUND)
					return "has more than 4 bounds {m,n}, or one "
					    "above 64";
				while (*p != '\0' && *p != '}')
					p++;
				if (*p == '\0')
					break;
			}
			continue;
		}
		after_rep = 0;
	}
	return NULL;
}

int
conf_group_regex(const char *ere, regex_t *re, char *err, size_t len)
{
	regex_t tmp, *r = re != NULL ? re : &tmp;
	const char *why;
	int rc;

	if (ere[0] == '\0')
		return 0;
	if ((why = regex_cost_check(ere)) != NULL) {
		snprintf(err, len, "\"%.64s\": %s", ere, why);
		return -1;
	}
	if ((rc = regcomp(r, ere, REG_EXTENDED | REG_ICASE)) != 0) {
		char msg[160];

		regerror(rc, r, msg, sizeof(msg));
		snprintf(err, len, "\"%.64s\": %s", ere, msg);
		return -1;
	}
	if (r->re_nsub < 1) {
		regfree(r);
		snprintf(err, len, "\"%.64s\" has no capture group: the first "
		    "one names the host's group, as in ^([a-z]+)-", ere);
		return -1;
	}
	if (re == NULL)
		regfree(r);
	return 0;
}

int
conf_group_of(const regex_t *re, const char *host, char *group, size_t len)
{
	regmatch_t m[2];
	size_t n;

	group[0] = '\0';
	if (regexec(re, host, 2, m, 0) != 0 || m[1].rm_so < 0)
		return 0;
	n = (size_t)(m[1].rm_eo - m[1].rm_so);
	if (n == 0 || n >= len)
		return 0;
	memcpy(group, host + m[1].rm_so, n);
	group[n] = '\0';
	return 1;
}

/* A NATS name token: no spaces, dots, wildcards or '>' (ADR-6). */
static const char *
nats_name_check(const char *s)
{
	if (*s == '\0')
		return "is empty";
	for (; *s; s++)
		if (*s == ' ' || *s == '.' || *s == '*' || *s == '>' ||
		    *s == '/' || *s == '\\')
			return "may not contain spaces, dots, '*', '>', '/' "
			    "or '\\'";
	return NULL;
}

const char *
conf_subject_check(const char *s)
{
	const char *tok = s;

	if (*s == '\0')
		return "is empty";
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (p == tok)
				return "has an empty token";
			if (*p == '\0')
				break;
			tok = p + 1;
		} else if (*p == ' ' || *p == '*' || *p == '>')
			return "may not contain spaces or wildcards";
	}
	return NULL;
}

/* Every element of a url list; printed redacted, as everywhere. */
int
conf_url_check(const char *list, char *err, size_t errlen)
{
	char buf[CONF_PATH_MAX], shown[CONF_PATH_MAX];
	const char *v[NATSURL_MAX], *why = NULL;
	int n;

	if (*list == '\0') {
		snprintf(err, errlen, "is not set: want nats://HOST:PORT (or "
		    "tls://), at most %d separated by commas", NATSURL_MAX);
		return -1;
	}
	if ((n = natsurl_split(list, buf, sizeof(buf), v, NATSURL_MAX)) < 0) {
		natsurl_redact(list, shown, sizeof(shown));
		why = "is empty, has an empty element or too many";
	} else
		for (int i = 0; i < n && why == NULL; i++)
			if ((why = natsurl_check(v[i])) != NULL)
				natsurl_redact(v[i], shown, sizeof(shown));
	explicit_bzero(buf, sizeof(buf));
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "\"%s\" %s: want nats://HOST:PORT (or tls://), "
	    "at most %d separated by commas", shown, why, NATSURL_MAX);
	return -1;
}

/* One way to authenticate, and the keys that go in pairs, in pairs. */
static int
check_auth(const struct conf *c, char *err, size_t errlen)
{
	int ways = (c->creds[0] != '\0') + (c->nkey_seed[0] != '\0') +
	    (c->token_file[0] != '\0') + (c->source_user[0] != '\0');

	if (ways > 1) {
		snprintf(err, errlen, "[source] creds, nkey_seed, token_file and "
		    "user are ways to authenticate: set one of them");
		return -1;
	}
	if ((c->source_user[0] != '\0') != (c->password_file[0] != '\0')) {
		snprintf(err, errlen, "[source] user and password_file go "
		    "together: set both or neither");
		return -1;
	}
	if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0')) {
		snprintf(err, errlen, "[source] tls_cert and tls_key go "
		    "together: set both or neither");
		return -1;
	}
	return 0;
}

static int
check_nats(const struct conf *c, char *err, size_t errlen)
{
	char msg[CONF_ERR_MAX - 32];
	const char *why;

	if (conf_url_check(c->url, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "[source] url %s", msg);
		return -1;
	}
	if ((why = nats_name_check(c->stream)) != NULL) {
		snprintf(err, errlen, "[source] stream \"%s\" %s", c->stream, why);
		return -1;
	}
	if ((why = nats_name_check(c->durable)) != NULL) {
		snprintf(err, errlen, "[source] durable \"%s\" %s", c->durable,
		    why);
		return -1;
	}
	if ((why = conf_subject_check(c->subject)) != NULL) {
		snprintf(err, errlen, "[source] subject \"%s\" %s", c->subject,
		    why);
		return -1;
	}
	if (c->dead_letter_subject[0] != '\0' &&
	    (why = conf_subject_check(c->dead_letter_subject)) != NULL) {
		snprintf(err, errlen, "[source] dead_letter_subject \"%s\" %s",
		    c->dead_letter_subject, why);
		return -1;
	}
	if (check_auth(c, err, errlen) < 0)
		return -1;
	if (c->events_subject[0] != '\0' &&
	    (why = conf_subject_check(c->events_subject)) != NULL) {
		snprintf(err, errlen, "[source] events_subject \"%s\" %s",
		    c->events_subject, why);
		return -1;
	}
	if (c->events_subject[0] != '\0' &&
	    (strcmp(c->events_subject, c->subject) == 0 ||
	    strcmp(c->events_subject, c->dead_letter_subject) == 0)) {
		snprintf(err, errlen, "[source] events_subject is the %s: "
		    "events would be taken for requests", strcmp(c->events_subject,
		    c->subject) == 0 ? "subject itself" : "dead_letter_subject");
		return -1;
	}
	if (c->dead_letter_subject[0] != '\0' &&
	    strcmp(c->dead_letter_subject, c->subject) == 0) {
		snprintf(err, errlen, "[source] dead_letter_subject is the "
		    "subject itself: dead messages would come back");
		return -1;
	}
	return 0;
}

/* A Key-Value bucket or key token: letters, digits, - and _; NULL if ok. */
static const char *
kv_token_check(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0)
		return "is empty";
	if (n > max)
		return "is too long";
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return "may hold only letters, digits, - and _";
	return NULL;
}

static int
check_fleet(const struct conf *c, char *err, size_t errlen)
{
	const char *why;

	if (c->coordination == COORD_NONE)
		return 0;
	if (c->source != SOURCE_NATS) {
		snprintf(err, errlen, "[fleet] coordination = nats needs "
		    "[source] type = nats: the fleet's rules live in its "
		    "JetStream");
		return -1;
	}
	if ((why = kv_token_check(c->bucket, 48)) != NULL) {
		snprintf(err, errlen, "[fleet] bucket \"%s\" %s", c->bucket,
		    why);
		return -1;
	}
	for (const char *p = c->instance; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("-_.:", *p) == NULL) {
			snprintf(err, errlen, "[fleet] instance \"%s\" may "
			    "hold only letters, digits and - _ . :", c->instance);
			return -1;
		}
	if (c->fleet_lease < 3 * 1000 || c->fleet_lease > c->max_lease) {
		snprintf(err, errlen, "[fleet] lease must be from 3s to "
		    "[lease] max_lease");
		return -1;
	}
	return 0;
}

int
conf_check(const struct conf *c, char *err, size_t errlen)
{
	char why_buf[512];
	struct window w;
	const char *why;

	if (c->backoff_min > c->backoff_max) {
		snprintf(err, errlen, "[restart] backoff_min is longer than "
		    "backoff_max");
		return -1;
	}
	if (c->domain[0] != '\0' &&
	    (why = hostname_check(c->domain, strlen(c->domain))) != NULL) {
		snprintf(err, errlen, "[restart] domain \"%s\": %s", c->domain,
		    why);
		return -1;
	}
	if (conf_max_failures(c->max_failures, NULL, NULL) < 0) {
		snprintf(err, errlen, "[restart] max_failures \"%s\": want a "
		    "count from 1 to 1000000, or a percentage from 1%% to 100%%",
		    c->max_failures);
		return -1;
	}
	if (window_parse(c->window, &w, why_buf, sizeof(why_buf)) < 0) {
		snprintf(err, errlen, "[restart] window: %s", why_buf);
		return -1;
	}
	if (window_zone_check(c->timezone, why_buf, sizeof(why_buf)) < 0) {
		snprintf(err, errlen, "[restart] timezone: %s", why_buf);
		return -1;
	}
	if (conf_group_regex(c->group, NULL, why_buf, sizeof(why_buf)) < 0) {
		snprintf(err, errlen, "[restart] group: %s", why_buf);
		return -1;
	}
	if (c->check[0] != '\0' && c->mode != RESTART_COMMAND) {
		snprintf(err, errlen, "[restart] check needs mode = command");
		return -1;
	}
	if (c->check[0] != '\0' &&
	    check_template("check", c->check, err, errlen) < 0)
		return -1;
	if (check_globs("allow", c->allow, err, errlen) < 0 ||
	    check_globs("deny", c->deny, err, errlen) < 0)
		return -1;
	if (c->busy_timeout * 2 > c->worker_timeout) {
		snprintf(err, errlen, "[mandrill] busy_timeout must be at most "
		    "half of worker_timeout: a starting worker waits up to "
		    "busy_timeout to open the database, before its first frame");
		return -1;
	}
	if (c->retain > 0 && c->retain < 3600000) {
		snprintf(err, errlen, "[mandrill] retain must be 0 (keep every "
		    "row) or at least 1h");
		return -1;
	}
	if (c->state_dir[0] == '\0') {
		snprintf(err, errlen, "[mandrill] state_dir is empty");
		return -1;
	}
	if (c->max_lease < (c->source == SOURCE_NATS ? c->ack_wait :
	    c->ack_deadline)) {
		char a[32], b[32];

		snprintf(err, errlen, "[lease] max_lease (%s) is shorter than "
		    "the lease itself ([source] %s, %s): no lease could be "
		    "extended", duration_fmt(c->max_lease, a, sizeof(a)),
		    c->source == SOURCE_NATS ? "ack_wait" : "ack_deadline",
		    duration_fmt(c->source == SOURCE_NATS ? c->ack_wait :
		    c->ack_deadline, b, sizeof(b)));
		return -1;
	}
	if (c->source == SOURCE_NATS && check_nats(c, err, errlen) < 0)
		return -1;
	if (check_fleet(c, err, errlen) < 0)
		return -1;
	if (c->mode == RESTART_COMMAND && check_command(c, err, errlen) < 0)
		return -1;
	if (c->exit_when_done && c->count == 0 && c->payload_file[0] == '\0') {
		snprintf(err, errlen, "[source] exit_when_done needs a count "
		    "or a payload_file");
		return -1;
	}
	return 0;
}

void
conf_write_sample(FILE *f)
{
	const char *section = "";
	char form[160];

	fprintf(f, "# mandrill.conf: every key with its default; see "
	    "mandrill.conf(5).\n# Lines starting with # or ; are comments.\n");
	for (size_t i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(f, "\n[%s]\n", section);
		}
		fprintf(f, "\n# %s\n# %s\n#%s = %s\n", k->help,
		    conf_key_form(k, form, sizeof(form)), k->name, k->def);
	}
}

int
conf_control_path(const struct conf *c, char *buf, size_t len)
{
	char tmp[CONF_PATH_MAX + 16];

	if (c->control_socket[0] != '\0')
		snprintf(tmp, sizeof(tmp), "%s", c->control_socket);
	else
		snprintf(tmp, sizeof(tmp), "%s/control.sock", c->state_dir);
	if (strlen(tmp) >= CONF_SUN_MAX)
		return -1;
	if (buf != NULL)
		snprintf(buf, len, "%s", tmp);
	return 0;
}

static int
resolve_one(char *path, size_t size, const char *base)
{
	char tmp[CONF_PATH_MAX * 2];

	if (path[0] == '\0' || path[0] == '/')
		return 0;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", base, path) >= size)
		return -1;
	memcpy(path, tmp, strlen(tmp) + 1);
	return 0;
}

int
conf_resolve(struct conf *c, const char *base, char *err, size_t errlen)
{
	if (resolve_one(c->worker_path, sizeof(c->worker_path), base) < 0 ||
	    resolve_one(c->state_dir, sizeof(c->state_dir), base) < 0 ||
	    resolve_one(c->log_file, sizeof(c->log_file), base) < 0 ||
	    resolve_one(c->pid_file, sizeof(c->pid_file), base) < 0 ||
	    resolve_one(c->payload_file, sizeof(c->payload_file), base) < 0 ||
	    resolve_one(c->metrics_file, sizeof(c->metrics_file), base) < 0 ||
	    resolve_one(c->control_socket, sizeof(c->control_socket),
	    base) < 0 ||
	    resolve_one(c->creds, sizeof(c->creds), base) < 0 ||
	    resolve_one(c->nkey_seed, sizeof(c->nkey_seed), base) < 0 ||
	    resolve_one(c->token_file, sizeof(c->token_file), base) < 0 ||
	    resolve_one(c->password_file, sizeof(c->password_file), base) < 0 ||
	    resolve_one(c->tls_ca, sizeof(c->tls_ca), base) < 0 ||
	    resolve_one(c->tls_cert, sizeof(c->tls_cert), base) < 0 ||
	    resolve_one(c->tls_key, sizeof(c->tls_key), base) < 0) {
		snprintf(err, errlen, "a path is too long once made absolute "
		    "from %s", base);
		return -1;
	}
	if (conf_control_path(c, NULL, 0) < 0) {
		snprintf(err, errlen, "[mandrill] control_socket: the path is "
		    "longer than a Unix socket's %d bytes", CONF_SUN_MAX - 1);
		return -1;
	}
	if (access(c->worker_path, X_OK) < 0) {
		snprintf(err, errlen, "[mandrill] worker_path %s: %s",
		    c->worker_path, strerror(errno));
		return -1;
	}
	return 0;
}

int
conf_max_failures(const char *s, unsigned *n, int *pct)
{
	unsigned long v;
	char *end;

	if (n != NULL)
		*n = 0;
	if (pct != NULL)
		*pct = 0;
	if (s[0] == '\0')
		return 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end == '%' && end[1] == '\0') {
		if (v < 1 || v > 100)
			return -1;
		if (pct != NULL)
			*pct = 1;
	} else if (*end != '\0' || v < 1 || v > 1000000)
		return -1;
	if (n != NULL)
		*n = (unsigned)v;
	return 0;
}

const char *
conf_pause_reason(const struct conf *c)
{
	if (c->enabled)
		return NULL;
	return c->pause_reason[0] ? c->pause_reason : "[restart] enabled = no";
}
