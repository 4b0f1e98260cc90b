/*
 * source_nats: a NATS JetStream durable pull consumer (DESIGN.md's
 * design A: all broker I/O is decided on the loop thread).
 *
 * Pull requests are published to $JS.API.CONSUMER.MSG.NEXT.<stream>.
 * <durable> with a reply subject <inbox>.<request id>; natsledger.c
 * keeps what each still owes.  Acks, in-progress (+WPI), naks with a
 * delay and terms are published to each message's reply subject
 * (natsack.c).  Publishing is thread-safe and buffered in cnats, so the
 * loop never waits on the network after start-up: a consumer deleted
 * under us is made again on a thread (natssetup.c).
 *
 * Every cnats callback only queues an event (natsbridge.c); this file is
 * the loop's side: it takes the queue and acts on each event, asks for
 * messages, and keeps the connection's state.  What an ended request
 * still owed is asked for again by the supervisor's flow control (the
 * `more` callback).  Dead letters are natsdead.c's.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "duration.h"
#include "log.h"
#include "nats.h"

#define TICK_S		1.0
#define FLUSH_TIMEOUT	2000	/* ms, at stop: send the last acks */

static unsigned
requested(const struct nats_src *s)
{
	return ledger_wanted(&s->ledger) + s->buried_wanted;
}

/* Send what is owed as pull requests, while connected and room left. */
static void
send_requests(struct nats_src *s)
{
	char body[96], reply[96];
	const struct pull_req *r;
	natsStatus st;

	while (s->connected && !s->consumer_lost &&
	    (r = ledger_next(&s->ledger, clock_now())) != NULL) {
		snprintf(reply, sizeof(reply), "%s.%" PRIu64, s->inbox, r->id);
		snprintf(body, sizeof(body), "{\"batch\":%u,\"expires\":%"
		    PRId64 "}", r->left, (int64_t)LEDGER_EXPIRES_MS * 1000000);
		st = natsConnection_PublishRequestString(s->nc,
		    s->next_subject, reply, body);
		if (st != NATS_OK) {
			nats_publish_failed(s, "a pull request", st);
			return;		/* owed stays; the tick tries again */
		}
		ledger_sent(&s->ledger);
		s->requests++;
	}
}

static void
deliver(struct nats_src *s, struct nev *e)
{
	struct nats_delivery *d = nats_delivery_new(e);

	ledger_delivered(&s->ledger);
	if (d == NULL) {
		log_err("nats: out of memory; message %" PRIu64 " comes back "
		    "after ack_wait", e->sseq);
		return;		/* the caller destroys e->msg */
	}
	d->lease_end = clock_now() + s->spec.ack_wait;
	s->delivered++;
	s->src.backlog = e->pending > INT64_MAX ? INT64_MAX :
	    (int64_t)e->pending;
	s->src.cb.message(s->src.cb.arg, &d->pub);
}

static void
status(struct nats_src *s, struct nev *e)
{
	enum pull_status ps = ledger_status(e->status, e->text);

	if (ps == PULL_GOING)
		return;
	if (ps == PULL_CONSUMER_DELETED && !s->consumer_lost) {
		log_err("nats: consumer %s was deleted; pulling nothing "
		    "until it exists again", s->spec.durable);
		s->consumer_lost = 1;
		s->consumer_retry = clock_now() + CONSUMER_RETRY;
		snprintf(s->last_status, sizeof(s->last_status), "%s", e->text);
	} else if (ps != PULL_ENDED && strcmp(s->last_status, e->text) != 0) {
		log_warn("nats: pull request ended: %d %s", e->status, e->text);
		snprintf(s->last_status, sizeof(s->last_status), "%s", e->text);
	}
	ledger_end(&s->ledger, e->req);
}

static void
connection(struct nats_src *s, enum nev_type type)
{
	char a[32];

	switch (type) {
	case NEV_DISCONNECTED:
		if (!s->connected)
			return;
		s->connected = 0;
		s->down_since = clock_now();
		log_warn("nats: disconnected from %s; reconnecting (in-flight "
		    "work goes on, its acks wait for the connection)",
		    s->spec.url);
		break;
	case NEV_RECONNECTED:
		if (s->connected)
			return;
		s->connected = 1;
		log_info("nats: reconnected to %s after %s", s->spec.url,
		    duration_fmt(clock_now() - s->down_since, a, sizeof(a)));
		s->publish_warned = 0;
		s->last_status[0] = '\0';
		break;
	case NEV_CLOSED:
		s->connected = 0;
		log_err("nats: connection closed for good");
		break;
	default:
		break;
	}
	/* Whatever was asked before the change is asked again. */
	ledger_forget(&s->ledger);
	if (s->src.cb.more != NULL)
		s->src.cb.more(s->src.cb.arg);
}

static void
event(struct nats_src *s, struct nev *e)
{
	switch (e->type) {
	case NEV_MSG:
		deliver(s, e);
		break;
	case NEV_STATUS:
		status(s, e);
		break;
	case NEV_BURY:
		dead_bury(s, e);
		break;
	case NEV_ERROR:
		log_err("nats: %s", e->text);
		break;
	case NEV_CONSUMER:
		setup_recovered(s);
		break;
	case NEV_ACKED:
		confirm_answer(s, e->req);
		break;
	default:
		connection(s, e->type);
		break;
	}
}

/* Messages that came after their request ended still count. */
static void
wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct nats_src *s = w->data;
	struct nev_list list = STAILQ_HEAD_INITIALIZER(list);
	unsigned before = requested(s);
	struct nev *e;
	int64_t now = clock_now();

	bridge_take(&s->bridge, &list);
	dead_hand_out(s, now);
	while ((e = STAILQ_FIRST(&list)) != NULL) {
		STAILQ_REMOVE_HEAD(&list, link);
		event(s, e);
		bridge_event_free(e);
	}
	send_requests(s);
	if (requested(s) < before && s->src.cb.more != NULL)
		s->src.cb.more(s->src.cb.arg);
}

/*
 * Requests the server never answered end here, a while after expiry; a
 * deleted consumer is looked for again every CONSUMER_RETRY, one attempt
 * at a time, off the loop thread.
 */
static void
tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct nats_src *s = t->data;
	int64_t now = clock_now();
	int ended;

	ended = ledger_expire(&s->ledger, now) > 0;
	confirm_tick(s, now);
	if (s->consumer_lost && s->connected && !s->recovery.running &&
	    now >= s->consumer_retry)
		setup_recover(s);
	send_requests(s);
	if ((ended || dead_waiting(s)) && s->src.cb.more != NULL)
		s->src.cb.more(s->src.cb.arg);
}

static void
nats_pull(struct source *src, unsigned n)
{
	struct nats_src *s = (struct nats_src *)src;

	s->unpulled = 0;
	dead_pull(s, &n, clock_now());
	ledger_owe(&s->ledger, n);
	send_requests(s);
}

static unsigned
nats_wanted(const struct source *src)
{
	return requested((const struct nats_src *)src);
}

/*
 * The server cannot be told to end a pull request: messages for one still
 * open come anyway, for up to REQ_EXPIRES_MS (draining, they are nacked;
 * paused or with a store that cannot commit, held).
 */
static void
nats_unpull(struct source *src)
{
	struct nats_src *s = (struct nats_src *)src;

	ledger_forget(&s->ledger);
	s->buried_wanted = 0;
	s->unpulled = 1;
}

/* Subscribe to our inbox (pull answers) and to the dead-letter advisories. */
static int
subscribe(struct nats_src *s, char *err, size_t len)
{
	natsInbox *inbox = NULL;
	natsStatus st;
	char what[128];

	if ((st = natsInbox_Create(&inbox)) != NATS_OK)
		return setup_fail(err, len, "inbox", st, 0);
	snprintf(s->inbox, sizeof(s->inbox), "%s", (const char *)inbox);
	natsInbox_Destroy(inbox);
	snprintf(what, sizeof(what), "%s.*", s->inbox);
	st = natsConnection_Subscribe(&s->sub, s->nc, what, bridge_on_msg, s);
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(s->sub, -1, -1);
	if (st == NATS_OK && s->spec.adv_stream[0] != '\0') {
		/*
		 * Kept in their stream: one instance of those sharing the
		 * durable takes each, and acks it once the burial is
		 * recorded; one that came while none was connected waits.
		 */
		jsSubOptions so;
		jsErrCode jerr = 0;
		char durable[CONF_NAME_MAX + 16];

		jsSubOptions_Init(&so);
		snprintf(durable, sizeof(durable), "%s-advisories",
		    s->spec.durable);
		so.Stream = s->spec.adv_stream;
		so.Queue = durable;
		so.Config.Durable = durable;
		/* Long: its ack waits for the burial, on the buried list. */
		so.Config.AckWait = 600 * INT64_C(1000000000);
		so.ManualAck = true;
		st = js_Subscribe(&s->adv, s->js, s->adv_subject,
		    dead_on_advisory, s, NULL, &so, &jerr);
		if (st != NATS_OK)
			return setup_fail(err, len, "subscribe to the advisories",
			    st, jerr);
	} else if (st == NATS_OK)
		/* Heard live only: one instance of those sharing takes each. */
		st = natsConnection_QueueSubscribe(&s->adv, s->nc,
		    s->adv_subject, s->spec.durable, dead_on_advisory, s);
	if (st == NATS_OK)
		st = natsConnection_Flush(s->nc);
	if (st != NATS_OK)
		return setup_fail(err, len, "subscribe", st, 0);
	return 0;
}

static int
nats_start(struct source *src, char *err, size_t len)
{
	struct nats_src *s = (struct nats_src *)src;
	struct nats_note note;
	jsOptions jo;
	natsStatus st;
	char what[CONF_PATH_MAX + 64];
	int rc;

	if (s->auth_err[0] != '\0') {
		snprintf(err, len, "%s", s->auth_err);
		return -1;
	}
	bridge_start(&s->bridge);
	if (setup_options(s, err, len) < 0)
		return -1;
	if ((st = natsConnection_Connect(&s->nc, s->opts)) != NATS_OK) {
		snprintf(what, sizeof(what), "cannot connect to %s", s->spec.url);
		return setup_fail(err, len, what, st, 0);
	}
	jsOptions_Init(&jo);
	jo.Wait = API_TIMEOUT;
	if ((st = natsConnection_JetStream(&s->js, s->nc, &jo)) != NATS_OK)
		return setup_fail(err, len, "JetStream context", st, 0);
	if (setup_stream(s->js, &s->spec, err, len) < 0)
		return -1;
	rc = setup_consumer(s->js, &s->spec, err, len, &note);
	setup_note_log(&note);
	if (rc < 0 || setup_advisories(s->js, &s->spec, s->adv_subject, err,
	    len) < 0 || subscribe(s, err, len) < 0)
		return -1;
	s->connected = 1;
	ev_timer_start(src->loop, &s->tick);
	log_info("nats: consuming %s (stream %s, durable %s) from %s, "
	    "ack_wait %" PRId64 " ms, max_deliver %u", s->spec.subject,
	    s->spec.stream, s->spec.durable, s->spec.url, s->spec.ack_wait,
	    s->spec.max_deliver);
	return 0;
}

static void
nats_stop(struct source *src)
{
	struct nats_src *s = (struct nats_src *)src;

	bridge_stop(&s->bridge);
	ev_timer_stop(src->loop, &s->tick);
	if (s->nc != NULL && s->connected)
		natsConnection_FlushTimeout(s->nc, FLUSH_TIMEOUT);
	bridge_close(&s->bridge);
	/*
	 * Closed first: an advisory callback inside js_GetMsg and the
	 * recovery thread inside a JetStream call fail fast.
	 */
	if (s->nc != NULL)
		natsConnection_Close(s->nc);
	setup_recover_wait(s);
	if (s->sub != NULL)
		natsSubscription_Destroy(s->sub);
	if (s->adv != NULL)
		natsSubscription_Destroy(s->adv);
	if (s->js != NULL)
		jsCtx_Destroy(s->js);
	if (s->nc != NULL)
		natsConnection_Destroy(s->nc);
	bridge_free(&s->bridge);
	dead_free(s);
	confirm_free(s);
	natsOptions_Destroy(s->opts);
	/* No cnats thread may still be inside a callback when s is freed. */
	if (nats_CloseAndWait(FLUSH_TIMEOUT) != NATS_OK) {
		log_warn("nats: the client library did not stop in time; "
		    "leaving its state as it is");
		return;
	}
	pthread_mutex_destroy(&s->bridge.mu);
	natsauth_free(&s->auth);
	free(s);
}

/* What shapes the consumer cannot change: reload.c refuses it before. */
static int
nats_reload(struct source *src, const struct conf *c, char *err, size_t len)
{
	struct nats_src *s = (struct nats_src *)src;
	struct natsauth a;
	const char *changed;

	/* The files again: one gone or open to others fails the reload. */
	if (natsauth_load(&a, c, err, len) < 0)
		return -1;
	changed = natsauth_changed(&s->auth, &a);
	natsauth_free(&a);
	if (changed != NULL) {
		snprintf(err, len, "[source] %s (or the file it names) changed: "
		    "it cannot change without restarting mandrilld", changed);
		return -1;
	}
	snprintf(s->spec.dlq, sizeof(s->spec.dlq), "%s", c->dead_letter_subject);
	snprintf(s->spec.events, sizeof(s->spec.events), "%s",
	    c->events_subject);
	return 0;
}

static void
nats_dump(const struct source *src)
{
	const struct nats_src *s = (const struct nats_src *)src;

	log_always(LOG_INFO, "nats: %s %s, stream %s, durable %s; delivered %"
	    PRIu64 ", acked %" PRIu64 ", nacked %" PRIu64 ", terminated %"
	    PRIu64 ", dead letters %" PRIu64 "; pull requests %" PRIu64
	    " (%u open, %u messages owed); acks confirmed %" PRIu64 ", sent "
	    "again %" PRIu64 ", never confirmed %" PRIu64 ", waiting %u",
	    s->connected ? "connected to" : "disconnected from", s->spec.url,
	    s->spec.stream, s->spec.durable, s->delivered, s->acked, s->nacked,
	    s->termed, s->dead_letters, s->requests, ledger_open(&s->ledger),
	    requested(s), s->confirms.confirmed, s->confirms.retried,
	    s->confirms.unconfirmed, s->confirms.n);
}

static const struct source_ops nats_ops = {
	.name = "nats",
	.start = nats_start,
	.pull = nats_pull,
	.extend = nats_extend,
	.ack = nats_ack,
	.nack = nats_nack,
	.term = nats_term,
	.forget = nats_forget,
	.event = nats_event,
	.dead = nats_dead,
	.retry = nats_retry,
	.stop = nats_stop,
	.unpull = nats_unpull,
	.reload = nats_reload,
	.wanted = nats_wanted,
	.dump = nats_dump,
};

static void
spec_init(struct nats_spec *sp, const struct conf *c)
{
	natsurl_redact(c->url, sp->url, sizeof(sp->url));
	snprintf(sp->stream, sizeof(sp->stream), "%s", c->stream);
	snprintf(sp->subject, sizeof(sp->subject), "%s", c->subject);
	snprintf(sp->durable, sizeof(sp->durable), "%s", c->durable);
	snprintf(sp->dlq, sizeof(sp->dlq), "%s", c->dead_letter_subject);
	snprintf(sp->events, sizeof(sp->events), "%s", c->events_subject);
	sp->ack_wait = c->ack_wait;
	sp->max_deliver = c->max_deliver;
	sp->max_ack_pending = c->max_ack_pending;
	sp->create = c->create;
	sp->replicas = c->replicas;
}

struct source *
source_nats_new(struct ev_loop *loop, const struct conf *c,
    const struct source_cb *cb)
{
	struct nats_src *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (bridge_init(&s->bridge, loop, wake_cb, s) < 0) {
		free(s);
		return NULL;
	}
	s->src.ops = &nats_ops;
	s->src.loop = loop;
	s->src.cb = *cb;
	s->src.ack_deadline = c->ack_wait;
	s->src.backlog = -1;
	TAILQ_INIT(&s->buried);
	TAILQ_INIT(&s->confirms.list);
	ledger_init(&s->ledger);
	/* The secret files are read now; a failure is start's to report. */
	if (natsauth_load(&s->auth, c, s->auth_err, sizeof(s->auth_err)) < 0 &&
	    s->auth_err[0] == '\0')
		snprintf(s->auth_err, sizeof(s->auth_err), "[source]: cannot "
		    "read the credentials");
	spec_init(&s->spec, c);
	snprintf(s->next_subject, sizeof(s->next_subject),
	    "$JS.API.CONSUMER.MSG.NEXT.%s.%s", s->spec.stream, s->spec.durable);
	snprintf(s->delete_subject, sizeof(s->delete_subject),
	    "$JS.API.STREAM.MSG.DELETE.%s", s->spec.stream);
	snprintf(s->adv_subject, sizeof(s->adv_subject),
	    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.%s.%s", s->spec.stream,
	    s->spec.durable);
	ev_timer_init(&s->tick, tick_cb, TICK_S, TICK_S);
	s->tick.data = s;
	return &s->src;
}
