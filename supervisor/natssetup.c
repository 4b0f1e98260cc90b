/*
 * natssetup: the connection's options, and the stream and the durable
 * pull consumer the nats source reads: found and checked against
 * [source], or made (create = yes).  A stream that does not take our
 * subject, or that takes dead_letter_subject, is refused; a consumer that
 * does not match is updated (create = yes) or refused.
 *
 * These JetStream calls wait for the server (API_TIMEOUT each).  At
 * start-up that is the loop's business; a consumer deleted under a
 * running mandrilld is made again on a thread of its own, with its own
 * copy of the settings, so that leases are extended and workers heard
 * meanwhile.  The thread logs nothing: what it would have said comes
 * back with its NEV_CONSUMER event, through the bridge, and the loop
 * logs it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "duration.h"
#include "log.h"
#include "nats.h"

int
setup_fail(char *err, size_t len, const char *what, natsStatus st,
    jsErrCode jerr)
{
	const char *last = nats_GetLastError(NULL);	/* this thread's */

	if (jerr != 0)
		snprintf(err, len, "%s: %s (JetStream error %d)", what,
		    last && *last ? last : natsStatus_GetText(st), (int)jerr);
	else
		snprintf(err, len, "%s: %s", what,
		    last && *last ? last : natsStatus_GetText(st));
	return -1;
}

int
setup_options(struct nats_src *s, char *err, size_t len)
{
	char name[128], host[64] = "";
	natsStatus st;

	gethostname(host, sizeof(host) - 1);
	snprintf(name, sizeof(name), "mandrilld %s pid %d", host, (int)getpid());
	if ((st = natsOptions_Create(&s->opts)) != NATS_OK)
		return setup_fail(err, len, "nats options", st, 0);
	if (natsauth_apply(&s->auth, s->opts, err, len) < 0)
		return -1;
	st = natsOptions_SetName(s->opts, name);
	if (st == NATS_OK)
		st = natsOptions_SetTimeout(s->opts, CONNECT_TIMEOUT);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(s->opts, -1);
	if (st == NATS_OK)
		st = natsOptions_SetPingInterval(s->opts, 5000);
	if (st == NATS_OK)
		st = natsOptions_SetMaxPingsOut(s->opts, 2);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectBufSize(s->opts, 64 * 1024 * 1024);
	if (st == NATS_OK)
		st = bridge_options(s, s->opts);
	if (st != NATS_OK)
		return setup_fail(err, len, "nats options", st, 0);
	return 0;
}

static int
create_stream(jsCtx *js, struct nats_spec *sp, char *err, size_t len)
{
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	const char *subjects[1] = { sp->subject };
	char what[1024];
	natsStatus st;

	if (!sp->create) {
		snprintf(err, len, "stream %s does not exist on %s "
		    "(create = no)", sp->stream, sp->url);
		return -1;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = sp->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Retention = js_WorkQueuePolicy;
	sc.Replicas = (int64_t)sp->replicas;
	st = js_AddStream(NULL, js, &sc, NULL, &jerr);
	if (st != NATS_OK) {
		snprintf(what, sizeof(what), "cannot create stream %s "
		    "for subject %s", sp->stream, sp->subject);
		return setup_fail(err, len, what, st, jerr);
	}
	log_info("nats: created stream %s (subject %s, file storage, "
	    "work queue, %u replicas)", sp->stream, sp->subject,
	    sp->replicas);
	sp->stream_only_ours = 1;
	return 0;
}

int
setup_advisories(jsCtx *js, struct nats_spec *sp, const char *subject,
    char *err, size_t len)
{
	const char *subjects[1] = { subject };
	char name[sizeof(sp->adv_stream)], what[1024];
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus st;

	sp->adv_stream[0] = '\0';
	snprintf(name, sizeof(name), "%s-advisories", sp->stream);
	st = js_GetStreamInfo(&si, js, name, NULL, &jerr);
	if (st == NATS_OK) {
		jsStreamInfo_Destroy(si);
		snprintf(sp->adv_stream, sizeof(sp->adv_stream), "%s", name);
		return 0;
	}
	if (st != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
		snprintf(what, sizeof(what), "stream %s", name);
		return setup_fail(err, len, what, st, jerr);
	}
	if (!sp->create) {
		log_warn("nats: no stream %s keeps the dead-letter advisories "
		    "(subject %s) and create = no: one that comes while no "
		    "instance is connected is lost, and its message stays in "
		    "%s", name, subject, sp->stream);
		return 0;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Retention = js_WorkQueuePolicy;
	sc.Replicas = (int64_t)sp->replicas;
	if ((st = js_AddStream(NULL, js, &sc, NULL, &jerr)) != NATS_OK) {
		snprintf(what, sizeof(what), "cannot create stream %s for the "
		    "advisories %s", name, subject);
		return setup_fail(err, len, what, st, jerr);
	}
	log_info("nats: created stream %s, which keeps the dead-letter "
	    "advisories until an instance records them", name);
	snprintf(sp->adv_stream, sizeof(sp->adv_stream), "%s", name);
	return 0;
}

/* Start-up only (it logs): the stream exists, or is made, and fits. */
int
setup_stream(jsCtx *js, struct nats_spec *sp, char *err, size_t len)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	char what[1024];
	natsStatus st;
	int covered = 0;

	st = js_GetStreamInfo(&si, js, sp->stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
		return create_stream(js, sp, err, len);
	if (st != NATS_OK) {
		snprintf(what, sizeof(what), "stream %s", sp->stream);
		return setup_fail(err, len, what, st, jerr);
	}
	sp->stream_only_ours = si->Config->SubjectsLen == 1 &&
	    strcmp(si->Config->Subjects[0], sp->subject) == 0;
	for (int i = 0; i < si->Config->SubjectsLen; i++) {
		if (nats_subject_match(si->Config->Subjects[i], sp->subject))
			covered = 1;
		if (sp->dlq[0] != '\0' &&
		    nats_subject_match(si->Config->Subjects[i], sp->dlq)) {
			snprintf(err, len, "stream %s takes dead_letter_subject "
			    "%s (by %s): dead letters would come back as work",
			    sp->stream, sp->dlq, si->Config->Subjects[i]);
			jsStreamInfo_Destroy(si);
			return -1;
		}
	}
	jsStreamInfo_Destroy(si);
	if (!covered) {
		snprintf(err, len, "stream %s exists but does not take subject "
		    "%s: messages published there would never arrive",
		    sp->stream, sp->subject);
		return -1;
	}
	return 0;
}

/* JetStream's MaxDeliver: our 0, no limit, is its -1. */
static int64_t
max_deliver(const struct nats_spec *sp)
{
	return sp->max_deliver == 0 ? -1 : (int64_t)sp->max_deliver;
}

/* The first difference between an existing consumer and ours, or NULL. */
static const char *
consumer_mismatch(const struct nats_spec *sp, const jsConsumerConfig *cc,
    char *buf, size_t len)
{
	char a[32], b[32];

	if (cc->DeliverSubject != NULL && cc->DeliverSubject[0] != '\0')
		return "it is a push consumer, not a pull consumer";
	if (cc->AckPolicy != js_AckExplicit)
		return "its ack policy is not explicit";
	/*
	 * It must take our subject and nothing else: any other message of
	 * the stream (a dead letter copied back, say) would be taken as a
	 * restart request.
	 */
	if (cc->FilterSubject != NULL && cc->FilterSubject[0] != '\0' ?
	    strcmp(cc->FilterSubject, sp->subject) != 0 :
	    !sp->stream_only_ours) {
		snprintf(buf, len, "its filter subject is %s, not %s",
		    cc->FilterSubject && cc->FilterSubject[0] ?
		    cc->FilterSubject : "empty (every subject of the stream)",
		    sp->subject);
		return buf;
	}
	if (cc->AckWait != sp->ack_wait * 1000000) {
		snprintf(buf, len, "its ack_wait is %s, not %s",
		    duration_fmt(cc->AckWait / 1000000, a, sizeof(a)),
		    duration_fmt(sp->ack_wait, b, sizeof(b)));
		return buf;
	}
	if (cc->MaxDeliver != max_deliver(sp) &&
	    !(cc->MaxDeliver <= 0 && max_deliver(sp) < 0)) {
		snprintf(buf, len, "its max_deliver is %" PRId64 ", not %u",
		    cc->MaxDeliver, sp->max_deliver);
		return buf;
	}
	if (cc->MaxAckPending != (int64_t)sp->max_ack_pending) {
		snprintf(buf, len, "its max_ack_pending is %" PRId64 ", not %u",
		    cc->MaxAckPending, sp->max_ack_pending);
		return buf;
	}
	return NULL;
}

static void
consumer_config(const struct nats_spec *sp, jsConsumerConfig *cc)
{
	jsConsumerConfig_Init(cc);
	cc->Durable = sp->durable;
	cc->FilterSubject = sp->subject;
	cc->AckPolicy = js_AckExplicit;
	cc->AckWait = sp->ack_wait * 1000000;
	cc->MaxDeliver = max_deliver(sp);
	cc->MaxAckPending = sp->max_ack_pending;
	cc->MaxWaiting = 512;
}

static int
create_consumer(jsCtx *js, const struct nats_spec *sp, char *err,
    size_t len, struct nats_note *note)
{
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	char what[1600];
	natsStatus st;

	if (!sp->create) {
		snprintf(err, len, "consumer %s of stream %s does not "
		    "exist (create = no)", sp->durable, sp->stream);
		return -1;
	}
	consumer_config(sp, &cc);
	if ((st = js_AddConsumer(NULL, js, sp->stream, &cc, NULL,
	    &jerr)) != NATS_OK) {
		snprintf(what, sizeof(what), "cannot create consumer %s "
		    "of stream %s", sp->durable, sp->stream);
		return setup_fail(err, len, what, st, jerr);
	}
	note->said = 1;
	note->level = LOG_INFO;
	snprintf(note->line, sizeof(note->line), "nats: created durable pull "
	    "consumer %s", sp->durable);
	return 0;
}

static int
update_consumer(jsCtx *js, const struct nats_spec *sp, const char *why,
    char *err, size_t len, struct nats_note *note)
{
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	char what[1600];
	natsStatus st;

	if (!sp->create) {
		snprintf(err, len, "consumer %s of stream %s does not match "
		    "[source]: %s (create = no)", sp->durable, sp->stream, why);
		return -1;
	}
	note->said = 1;
	note->level = LOG_WARNING;
	snprintf(note->line, sizeof(note->line), "nats: consumer %s: %s; "
	    "updating it to [source]", sp->durable, why);
	consumer_config(sp, &cc);
	if ((st = js_UpdateConsumer(NULL, js, sp->stream, &cc, NULL,
	    &jerr)) != NATS_OK) {
		snprintf(what, sizeof(what), "consumer %s of stream %s does not "
		    "match [source] (%s) and cannot be updated", sp->durable,
		    sp->stream, why);
		return setup_fail(err, len, what, st, jerr);
	}
	return 0;
}

/*
 * Any thread: the consumer exists, or is made, and fits.  It logs
 * nothing; what it would log is in note, to log before err.
 */
int
setup_consumer(jsCtx *js, const struct nats_spec *sp, char *err, size_t len,
    struct nats_note *note)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	char what[1600], buf[640];
	const char *why;
	natsStatus st;

	note->said = 0;
	st = js_GetConsumerInfo(&ci, js, sp->stream, sp->durable, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr)
		return create_consumer(js, sp, err, len, note);
	if (st != NATS_OK) {
		snprintf(what, sizeof(what), "consumer %s of stream %s",
		    sp->durable, sp->stream);
		return setup_fail(err, len, what, st, jerr);
	}
	why = consumer_mismatch(sp, ci->Config, buf, sizeof(buf));
	jsConsumerInfo_Destroy(ci);
	if (why == NULL)
		return 0;
	return update_consumer(js, sp, why, err, len, note);
}

void
setup_note_log(const struct nats_note *note)
{
	if (note->said)
		log_msg(note->level, "%s", note->line);
}

/* ---- the consumer deleted under us --------------------------------- */

/* The recovery thread: one attempt, then its result to the loop. */
static void *
recover_main(void *arg)
{
	struct nats_src *s = arg;
	struct recovery *r = &s->recovery;

	r->rc = setup_consumer(r->js, &r->spec, r->err, sizeof(r->err),
	    &r->note);
	bridge_push(&s->bridge, r->done);	/* the loop's from now on */
	return NULL;
}

/*
 * Make the consumer again (create = yes) or wait for an operator to
 * (create = no), trying every CONSUMER_RETRY, one attempt at a time.
 */
void
setup_recover(struct nats_src *s)
{
	struct recovery *r = &s->recovery;
	int rc;

	s->consumer_retry = clock_now() + CONSUMER_RETRY;
	/* Made here, so that the thread's end always reaches the loop. */
	if ((r->done = bridge_event(NEV_CONSUMER)) == NULL) {
		log_err("nats: out of memory; consumer %s is not made again "
		    "yet", s->spec.durable);
		return;
	}
	r->js = s->js;
	r->spec = s->spec;
	r->rc = -1;
	r->err[0] = '\0';
	r->note.said = 0;
	if ((rc = pthread_create(&r->thread, NULL, recover_main, s)) != 0) {
		log_err("nats: cannot start a thread to make consumer %s "
		    "again: %s", s->spec.durable, strerror(rc));
		bridge_event_free(r->done);
		return;
	}
	r->running = 1;
}

static void
recover_join(struct recovery *r)
{
	int rc;

	if ((rc = pthread_join(r->thread, NULL)) != 0)
		log_err("nats: waiting for the consumer's recovery thread: %s",
		    strerror(rc));
	r->running = 0;
}

/* Its NEV_CONSUMER came: it has ended, or is about to. */
void
setup_recovered(struct nats_src *s)
{
	struct recovery *r = &s->recovery;

	if (!r->running)
		return;
	recover_join(r);
	setup_note_log(&r->note);
	if (r->rc < 0) {
		if (strcmp(s->last_status, r->err) != 0) {
			log_err("nats: %s", r->err);
			snprintf(s->last_status, sizeof(s->last_status), "%.150s",
			    r->err);
		}
		return;
	}
	log_info("nats: consumer %s is back; pulling again", s->spec.durable);
	s->consumer_lost = 0;
	s->last_status[0] = '\0';
}

/* At stop, with the connection closed: its calls fail fast. */
void
setup_recover_wait(struct nats_src *s)
{
	if (s->recovery.running)
		recover_join(&s->recovery);
}
