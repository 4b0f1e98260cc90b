/*
 * nats: the inside of the nats source, shared by the files it is split
 * into, one job each:
 *   source_nats.c  the vtable: start, stop, pull, reload, dump, and the
 *                  loop's side of every event
 *   natsbridge.c   cnats threads to the loop: a locked queue and an
 *                  ev_async, and the callbacks that fill it
 *   natsledger.c   the pull requests (pure, natsledger.h)
 *   natsack.c      deliveries, and ack, nack, extend and term on them
 *   natsconfirm.c  acks the server confirms, sent again until it does
 *   natsdead.c     dead letters: advisories, buried messages, deleting
 *                  them from the stream, dead_letter_subject
 *   natssetup.c    connection options, the stream and the consumer
 *                  (create = yes), remaking a deleted consumer off the
 *                  loop thread
 * Nothing outside these files includes this header.
 */
#ifndef MANDRILL_NATS_H
#define MANDRILL_NATS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include <nats/nats.h>

#include "log.h"
#include "natsauth.h"
#include "natsledger.h"
#include "source.h"

#define CONNECT_TIMEOUT	2000	/* ms, per server at start-up */
#define API_TIMEOUT	5000	/* ms, JetStream API calls */
#define CONSUMER_RETRY	5000	/* ms, between attempts to recreate it */

enum nev_type {
	NEV_MSG, NEV_STATUS, NEV_BURY, NEV_DISCONNECTED, NEV_RECONNECTED,
	NEV_CLOSED, NEV_ERROR, NEV_CONSUMER, NEV_ACKED,
};

/* One thing a cnats thread (or the recovery thread) saw, for the loop. */
struct nev {
	STAILQ_ENTRY(nev)	 link;
	enum nev_type		 type;
	uint64_t		 req;		/* MSG, STATUS: the pull request;
						   ACKED: the ack's token */
	natsMsg			*msg;		/* MSG, BURY: ours to destroy */
	natsMsg			*adv;		/* BURY: its advisory, from the
						   advisories stream: acked once
						   the burial is recorded */
	uint64_t		 delivered;	/* MSG, BURY */
	uint64_t		 sseq;		/* MSG, BURY */
	uint64_t		 pending;	/* MSG: the consumer's backlog */
	int			 status;	/* STATUS */
	char			 text[160];	/* STATUS, ERROR, BURY: why */
};
STAILQ_HEAD(nev_list, nev);

/* The queue from foreign threads to the loop (natsbridge.c). */
struct bridge {
	pthread_mutex_t		 mu;
	struct nev_list		 events;	/* under mu */
	int			 closing;	/* under mu: drop what comes */
	struct ev_loop		*loop;
	ev_async		 wake;
};

struct nats_delivery {
	struct delivery		 pub;
	TAILQ_ENTRY(nats_delivery) link;	/* buried, waiting */
	natsMsg			*msg;
	natsMsg			*adv;		/* buried: its durable advisory */
	uint64_t		 sseq;		/* stream sequence */
	char			 id[129];	/* Nats-Msg-Id, or sequence */
	char			 why[160];	/* buried: the reason */
	int64_t			 lease_end;	/* ms: the server's deadline */
	int64_t			 due;		/* buried: retry not before */
	int			 counted;	/* buried: in buried_wanted */
};
TAILQ_HEAD(nd_list, nats_delivery);

/*
 * What the stream and the consumer must be.  Written only before start
 * (and dlq on reload): the advisory callback reads stream, the recovery
 * thread a copy of its own.
 */
struct nats_spec {
	char			 url[CONF_PATH_MAX];	/* redacted, to print */
	char			 stream[CONF_NAME_MAX];
	char			 subject[CONF_NAME_MAX];
	char			 durable[CONF_NAME_MAX];
	char			 dlq[CONF_NAME_MAX];
	char			 events[CONF_NAME_MAX];	/* "": none */
	int64_t			 ack_wait;
	unsigned		 max_deliver;
	unsigned		 max_ack_pending;
	int			 create;
	unsigned		 replicas;
	int			 stream_only_ours;	/* its one subject is ours */
	char			 adv_stream[CONF_NAME_MAX + 16];	/* "": none */
};

/* A line provisioning would have logged, for the loop to log. */
struct nats_note {
	int			 said;		/* 0: nothing to log */
	enum log_level		 level;
	char			 line[1200];
};

/* Remaking the consumer on a thread of its own (natssetup.c). */
struct recovery {
	pthread_t		 thread;
	int			 running;	/* loop thread only */
	/* The thread's, from its start until its NEV_CONSUMER. */
	struct nev		*done;		/* that event, pushed at its end */
	jsCtx			*js;
	struct nats_spec	 spec;
	int			 rc;
	char			 err[1024];
	struct nats_note	 note;
};

/* Acks waiting for the server's answer (natsconfirm.c). */
#define CONFIRM_HASH	4096
struct pending_ack;
struct confirms {
	TAILQ_HEAD(, pending_ack) list;
	struct pending_ack	*hash[CONFIRM_HASH];
	uint64_t		 next_token;
	unsigned		 n;
	uint64_t		 confirmed, retried, unconfirmed, unconfirmed_new;
	int64_t			 warned;
};

struct nats_src {
	struct source		 src;
	struct bridge		 bridge;	/* the only state threads touch */

	/* Loop thread only. */
	ev_timer		 tick;
	natsOptions		*opts;
	natsConnection		*nc;
	jsCtx			*js;
	natsSubscription	*sub, *adv;
	char			 inbox[64];
	char			 next_subject[640];
	char			 adv_subject[640];
	char			 delete_subject[640];
	struct ledger		 ledger;
	struct nd_list		 buried;	/* dead letters to hand out */
	struct confirms		 confirms;	/* acks not yet answered */
	unsigned		 buried_wanted;	/* of them, pulled */
	int			 connected;
	int			 unpulled;	/* draining: pull nothing more */
	int			 consumer_lost;	/* 409 Consumer Deleted */
	int64_t			 consumer_retry;
	struct recovery		 recovery;
	int64_t			 down_since;
	int64_t			 publish_warned;
	char			 last_status[160];

	/* Settings. */
	struct natsauth		 auth;		/* servers, secrets, TLS */
	char			 auth_err[CONF_ERR_MAX];	/* reading them */
	struct nats_spec	 spec;

	/* Counts, for the dump. */
	uint64_t		 delivered, acked, nacked, termed, dead_letters;
	uint64_t		 requests, publish_errors;
};

/* natsbridge.c: a foreign thread calls only push and the callbacks. */
int bridge_init(struct bridge *b, struct ev_loop *loop,
    void (*cb)(struct ev_loop *, ev_async *, int), void *data);
void bridge_start(struct bridge *b);
struct nev *bridge_event(enum nev_type type);
void bridge_push(struct bridge *b, struct nev *e);
void bridge_wake(struct bridge *b);
void bridge_take(struct bridge *b, struct nev_list *list);
void bridge_event_free(struct nev *e);
void bridge_stop(struct bridge *b);	/* the loop is told no more */
void bridge_close(struct bridge *b);	/* what is pushed now is dropped */
void bridge_free(struct bridge *b);	/* the events left, and the lock */
/* The connection's callbacks, set on opts. */
natsStatus bridge_options(struct nats_src *s, natsOptions *opts);
void bridge_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
    void *arg);

/* natsack.c */
struct nats_delivery *nats_delivery_new(struct nev *e);
void nats_delivery_free(struct nats_delivery *d);
void nats_publish_failed(struct nats_src *s, const char *what,
    natsStatus st);
int nats_extend(struct source *src, struct delivery *pub, int64_t ms);
void nats_ack(struct source *src, struct delivery *pub);
void nats_nack(struct source *src, struct delivery *pub, int64_t delay_ms);
void nats_term(struct source *src, struct delivery *pub, const char *why);
void nats_forget(struct source *src, struct delivery *pub);
void nats_event(struct source *src, const char *json, size_t len);

/* natsconfirm.c */
void confirm_ack(struct nats_src *s, const char *reply, int64_t lease_end);
void confirm_answer(struct nats_src *s, uint64_t token);
void confirm_tick(struct nats_src *s, int64_t now);
void confirm_free(struct nats_src *s);
int confirm_subject(const struct nats_src *s, const char *subject,
    uint64_t *token);

/* natsdead.c */
void dead_on_advisory(natsConnection *nc, natsSubscription *sub,
    natsMsg *m, void *arg);
int dead_delete_answer(natsMsg *m, struct nev *e);	/* a cnats thread */
void dead_bury(struct nats_src *s, struct nev *e);
void dead_hand_out(struct nats_src *s, int64_t now);
void dead_pull(struct nats_src *s, unsigned *n, int64_t now);
void dead_later(struct nats_src *s, struct nats_delivery *d,
    int64_t delay_ms);
void dead_delete(struct nats_src *s, uint64_t sseq);
void dead_recorded(struct nats_src *s, struct nats_delivery *d);
void nats_dead(struct source *src, struct delivery *pub, const char *why);
/* mandrillctl retry: the payload published again to subject, marked. */
#define NATS_RETRY_HEADER	"Mandrill-Retry"
int nats_retry(struct source *src, const char *data, size_t len,
    uint64_t dead_id, char *msg, size_t msglen);
int dead_waiting(const struct nats_src *s);
void dead_free(struct nats_src *s);

/* natssetup.c */
int setup_options(struct nats_src *s, char *err, size_t len);
int setup_fail(char *err, size_t len, const char *what, natsStatus st,
    jsErrCode jerr);
int setup_stream(jsCtx *js, struct nats_spec *sp, char *err, size_t len);
/*
 * The stream that keeps the MAX_DELIVERIES advisories of subject for an
 * instance that is not connected: found, or made (create = yes); sets
 * sp->adv_stream, or leaves it "" (then they are heard only live).
 */
int setup_advisories(jsCtx *js, struct nats_spec *sp, const char *subject,
    char *err, size_t len);
int setup_consumer(jsCtx *js, const struct nats_spec *sp, char *err,
    size_t len, struct nats_note *note);
void setup_note_log(const struct nats_note *note);
/* Remake a deleted consumer on a thread; its end is a NEV_CONSUMER. */
void setup_recover(struct nats_src *s);
void setup_recovered(struct nats_src *s);
void setup_recover_wait(struct nats_src *s);	/* at stop */

#endif
