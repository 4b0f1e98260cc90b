/*
 * command: what each control request means (control.c carries them).
 *
 * Every command answers at once, from the loop: status reads the
 * supervisor's state; pause, resume, reload, drain and workers act
 * through supervisor.c's functions, as the signals do.  Requests are
 * checked field by field; a bad one gets {"ok": false, "code":
 * "usage", ...} and changes nothing.  The codes are the contract with
 * mandrillctl, which maps them to sysexits(3): usage, denied,
 * unavailable, refused (a configuration that reload would not take),
 * software, io.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "hold.h"
#include "log.h"
#include "pausefile.h"
#include "supervisor.h"

static const char *
state_name(enum sup_state st)
{
	return st == SUP_RUNNING ? "running" : st == SUP_DRAINING ?
	    "draining" : "stopping";
}

static json_t *
held_json(const struct holds *h)
{
	json_t *o = json_object();

	json_object_set_new(o, "total", json_integer(hold_total(h)));
	for (int r = HOLD_NONE + 1; r < HOLD_COUNT; r++)
		json_object_set_new(o, hold_name((enum hold)r),
		    json_integer(h->n[r]));
	return o;
}

static json_t *
counters_json(const struct supervisor *s)
{
	const struct counters *n = &s->dispatch.n;
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "pulled", (json_int_t)n->pulled, "redelivered",
	    (json_int_t)n->redelivered, "acked", (json_int_t)n->acked,
	    "nacked", (json_int_t)n->nacked, "terminated",
	    (json_int_t)n->termed, "extended",
	    (json_int_t)s->dispatch.leases.extended, "lost",
	    (json_int_t)n->lost, "worker_crashes",
	    (json_int_t)s->avail.crashes);
	json_t *out = json_object();

	for (int i = 0; i < OUT_COUNT; i++)
		json_object_set_new(out, outcome_name((enum outcome)i),
		    json_integer((json_int_t)n->outcome[i]));
	json_object_set_new(o, "outcomes", out);
	return o;
}

/* The error budget as it stands: null when there is none. */
static json_t *
budget_json(struct supervisor *s, int64_t now)
{
	unsigned failed;
	size_t attempts;

	if (s->conf.max_failures[0] == '\0')
		return json_null();
	budget_count(&s->budget, now, s->conf.failure_window, &failed,
	    &attempts);
	return json_pack("{s:s, s:I, s:i, s:I}", "max_failures",
	    s->conf.max_failures, "failure_window_ms",
	    (json_int_t)s->conf.failure_window, "failed", (int)failed,
	    "attempts", (json_int_t)attempts);
}

/* Fleet mode: who this instance is, what it holds, whether KV answers. */
static json_t *
fleet_json(struct supervisor *s)
{
	char trouble[256];

	if (s->fleet == NULL)
		return json_null();
	return json_pack("{s:s, s:s, s:i, s:I, s:s}", "coordination", "nats",
	    "instance", fleet_instance(s->fleet), "grants",
	    (int)fleet_grants(s->fleet), "not_owner",
	    (json_int_t)s->dispatch.not_owner, "trouble",
	    fleet_trouble(s->fleet, trouble, sizeof(trouble)));
}

static json_t *
status(struct supervisor *s, json_t *req, const struct control_peer *p)
{
	const struct dispatch *d = &s->dispatch;
	const char *why = conf_pause_reason(&s->conf);
	int64_t now = clock_now();
	char started[40];

	clock_iso(s->started_wall, started, sizeof(started));
	return json_pack("{s:b, s:i, s:s, s:s, s:s, s:I, s:s, s:i, s:{s:i, "
	    "s:i}, s:i, s:i, s:i, s:o, s:b, s:s, s:b, s:b, s:I, s:o, s:o, "
	    "s:o}",
	    "ok", 1, "pid", (int)getpid(), "version", PACKAGE_VERSION,
	    "state", state_name(s->state), "started", started, "uptime_ms",
	    (json_int_t)(clock_wall() - s->started_wall), "source",
	    s->src->ops->name, "generation", (int)s->pool.gen, "workers",
	    "target", (int)s->pool.target, "live",
	    (int)pool_pids(&s->pool, NULL, 0), "in_flight",
	    (int)d->in_flight, "waiting", (int)d->nwaiting, "on_workers",
	    (int)dispatch_on_workers(d), "held",
	    held_json(&d->holds), "paused", why != NULL,
	    "pause_reason", why != NULL ? why : "", "enabled",
	    s->file_enabled, "store_ok", d->store_bad == 0,
	    "oldest_lease_ms", (json_int_t)(now - dispatch_oldest(d, now)),
	    "counters", counters_json(s), "budget", budget_json(s, now),
	    "fleet", fleet_json(s));
}

static json_t *
cmd_pause(struct supervisor *s, json_t *req, const struct control_peer *p)
{
	json_t *jr = json_object_get(req, "reason");
	char reason[PAUSE_REASON_MAX], err[512];
	const char *r;

	if (jr != NULL && !json_is_string(jr))
		return control_error("usage", "pause: reason must be a string");
	r = jr != NULL ? json_string_value(jr) : "";
	if (strlen(r) >= sizeof(reason))
		return control_error("usage", "pause: reason must be at most "
		    "%zu bytes", sizeof(reason) - 1);
	/* It is shown by status, the log, STATUS= and the metrics. */
	for (const unsigned char *c = (const unsigned char *)r; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return control_error("usage", "pause: reason must be "
			    "one line of printable text: it has control "
			    "character 0x%02x", *c);
	if (r[0] != '\0')
		snprintf(reason, sizeof(reason), "%s", r);
	else
		snprintf(reason, sizeof(reason), "paused by uid %d",
		    (int)p->uid);
	if (supervisor_pause(s, reason, err, sizeof(err)) < 0)
		return control_error("io", "pause not saved, not paused: %s",
		    err);
	return json_pack("{s:b, s:s}", "ok", 1, "message", reason);
}

static json_t *
cmd_resume(struct supervisor *s, json_t *req, const struct control_peer *p)
{
	char err[512];

	if (!s->paused)
		return json_pack("{s:b, s:s}", "ok", 1, "message", s->file_enabled
		    ? "not paused" : "not paused by mandrillctl; [restart] "
		    "enabled = no pauses it");
	if (supervisor_resume(s, err, sizeof(err)) < 0)
		return control_error("io", "resume not saved, still paused: %s",
		    err);
	return json_pack("{s:b, s:s}", "ok", 1, "message", s->file_enabled ?
	    "resumed" : "resumed; [restart] enabled = no still pauses it");
}

static json_t *
cmd_reload(struct supervisor *s, json_t *req, const struct control_peer *p)
{
	char why[CONF_ERR_MAX + CONF_PATH_MAX + 64];

	if (supervisor_reload(s, "mandrillctl reload", why, sizeof(why)) < 0)
		return control_error("refused", "%s", why);
	return json_pack("{s:b, s:s}", "ok", 1, "message", why);
}

static json_t *
cmd_workers(struct supervisor *s, json_t *req, const struct control_peer *p)
{
	json_t *jn = json_object_get(req, "n");
	json_int_t n;

	if (!json_is_integer(jn) || (n = json_integer_value(jn)) < 1 ||
	    n > 256)
		return control_error("usage", "workers: n must be an integer "
		    "from 1 to 256");
	log_info("mandrillctl: %d workers", (int)n);
	avail_set_target(&s->avail, (unsigned)n);
	return json_pack("{s:b, s:s, s:i}", "ok", 1, "message", "workers set",
	    "workers", (int)n);
}

static json_t *
cmd_drain(struct supervisor *s, json_t *req, const struct control_peer *p)
{
	supervisor_drain(s, "mandrillctl drain");
	return json_pack("{s:b, s:s}", "ok", 1, "message", "draining");
}

/*
 * retry {msg_id, payload, dead_id}: mandrillctl read a dead letter from
 * the database; its payload goes to the source again, marked with the
 * dead letter's id, and the worker gives the row another go only while
 * the message is dead and that is its newest dead letter: a retry never
 * makes a new request, and restarts a message once however often its
 * copy is delivered.  The payload must be the message it names.
 */
static json_t *
cmd_retry(struct supervisor *s, json_t *req, const struct control_peer *p)
{
	json_t *jid = json_object_get(req, "msg_id");
	json_t *jp = json_object_get(req, "payload"), *doc, *inner;
	json_t *jd = json_object_get(req, "dead_id");
	const char *id, *data;
	char said[256];
	size_t len;
	int same;

	if (!json_is_string(jid) || json_string_length(jid) == 0 ||
	    json_string_length(jid) > 256 || !json_is_string(jp) ||
	    !json_is_integer(jd) || json_integer_value(jd) < 1)
		return control_error("usage", "retry: msg_id and payload must "
		    "be strings, and dead_id the dead letter's id, above 0");
	id = json_string_value(jid);
	data = json_string_value(jp);
	len = json_string_length(jp);
	if (len == 0 || len > PROTO_DATA_MAX)
		return control_error("usage", "retry: the payload must be 1 to "
		    "%d bytes", PROTO_DATA_MAX);
	doc = json_loadb(data, len, 0, NULL);
	inner = json_object_get(doc, "msg_id");
	same = json_is_string(inner) && strcmp(json_string_value(inner), id) ==
	    0;
	json_decref(doc);
	if (!same)
		return control_error("usage", "retry: the payload is not a JSON "
		    "object with msg_id \"%.64s\"", id);
	if (s->src->ops->retry == NULL)
		return control_error("unavailable", "retry: source %s cannot "
		    "publish", s->src->ops->name);
	if (s->src->ops->retry(s->src, data, len,
	    (uint64_t)json_integer_value(jd), said, sizeof(said)) < 0)
		return control_error("io", "retry %.64s: %s", id, said);
	log_info("mandrillctl: retry msg_id=%s dead letter %" PRIu64 ": "
	    "published again to source %s", id,
	    (uint64_t)json_integer_value(jd), s->src->ops->name);
	dispatch_pull(&s->dispatch);
	return json_pack("{s:b, s:s}", "ok", 1, "message", said);
}

/* Each command; all but status act, and only while mandrilld runs. */
static const struct command {
	const char	*name;
	json_t		*(*fn)(struct supervisor *, json_t *,
			    const struct control_peer *);
	int		 acts;
} commands[] = {
	{ "status", status, 0 }, { "pause", cmd_pause, 1 },
	{ "resume", cmd_resume, 1 }, { "reload", cmd_reload, 1 },
	{ "drain", cmd_drain, 1 }, { "workers", cmd_workers, 1 },
	{ "retry", cmd_retry, 1 },
};

json_t *
command_request(void *arg, json_t *req, const struct control_peer *peer)
{
	struct supervisor *s = arg;
	json_t *jc = json_object_get(req, "cmd");
	const char *cmd;

	if (!json_is_string(jc))
		return control_error("usage", "request has no \"cmd\" string");
	cmd = json_string_value(jc);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) != 0)
			continue;
		if (commands[i].acts && s->state != SUP_RUNNING)
			return control_error("unavailable", "%s: mandrilld is "
			    "%s", cmd, state_name(s->state));
		return commands[i].fn(s, req, peer);
	}
	return control_error("usage", "unknown command \"%.64s\"", cmd);
}
