/*
 * source: where messages come from, as a small vtable over one loop.
 *
 * A source hands the supervisor deliveries (one message, one delivery
 * attempt) only while the supervisor has asked for more (pull), and
 * takes back each delivery exactly once: ack, nack (with a delay) or
 * term.  After that call the delivery is freed by the source and must
 * not be touched.  extend() pushes the delivery's ack deadline out; it
 * fails when the broker no longer holds the lease for this delivery.
 */
#ifndef MANDRILL_SOURCE_H
#define MANDRILL_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "conf.h"

struct delivery {
	const char	*id;		/* the broker's message id */
	const char	*data;
	size_t		 len;
	uint32_t	 count;		/* delivery count, 1 on first */
	/*
	 * Not NULL: the broker gave up on this message (why): the worker
	 * records it as dead without restarting anything.  Acking such a
	 * delivery only tells the source it is recorded.
	 */
	const char	*bury;
	/*
	 * mandrillctl retry: the dead_letters id of the dead letter this
	 * publishes again, or 0.  Its message starts over only while that
	 * is its newest dead letter: once, however often it is delivered.
	 */
	uint64_t	 retry_of;
};

struct source;

struct source_cb {
	void	(*message)(void *arg, struct delivery *d);
	/* sim with a count: every published message is acked. */
	void	(*exhausted)(void *arg);
	/* Pulls ended without delivering all they asked for: pull again. */
	void	(*more)(void *arg);
	void	*arg;
};

struct source_ops {
	const char *name;
	int	(*start)(struct source *, char *err, size_t len);
	void	(*pull)(struct source *, unsigned n);
	int	(*extend)(struct source *, struct delivery *, int64_t ms);
	void	(*ack)(struct source *, struct delivery *);
	void	(*nack)(struct source *, struct delivery *, int64_t delay_ms);
	void	(*term)(struct source *, struct delivery *, const char *why);
	/*
	 * Let go of a delivery and tell the broker nothing: another
	 * instance holds its message now (fleet mode), and an ack or a nak
	 * from here would settle or disturb that instance's delivery.
	 * NULL: the source cannot; a nack is used.
	 */
	void	(*forget)(struct source *, struct delivery *);
	/*
	 * [source] events_subject: publish one outcome's JSON event, fire
	 * and forget.  NULL: the source has no such subject.
	 */
	void	(*event)(struct source *, const char *json, size_t len);
	/*
	 * The delivery's outcome is dead or invalid and recorded; called
	 * before its ack or term.  NULL: the source keeps no dead letters.
	 */
	void	(*dead)(struct source *, struct delivery *, const char *why);
	void	(*stop)(struct source *);	/* stops and frees */
	/* Take new settings (SIGHUP); -1 with err if they cannot apply. */
	int	(*reload)(struct source *, const struct conf *, char *err,
		    size_t len);
	/* Forget what was asked for and not yet delivered. */
	void	(*unpull)(struct source *);
	/* Asked for and not yet delivered. */
	unsigned (*wanted)(const struct source *);
	void	(*dump)(const struct source *);	/* one log line of state */
	/*
	 * mandrillctl retry: publish a dead letter's payload again, marked
	 * with dead_id; 0 with what that publish means for the operator in
	 * msg, or -1 with why not.  NULL: the source cannot.
	 */
	int	(*retry)(struct source *, const char *data, size_t len,
		    uint64_t dead_id, char *msg, size_t msglen);
};

struct source {
	const struct source_ops	*ops;
	struct ev_loop		*loop;
	struct source_cb	 cb;
	int64_t			 ack_deadline;	/* lease length, ms */
	/*
	 * Messages the broker still has for us, not yet delivered, as of
	 * the latest delivery (nats: the consumer's pending count in its
	 * ack subject); -1 when not known.
	 */
	int64_t			 backlog;
};

struct source *source_sim_new(struct ev_loop *loop, const struct conf *c,
    const struct source_cb *cb);
struct source *source_nats_new(struct ev_loop *loop, const struct conf *c,
    const struct source_cb *cb);

/*
 * A JetStream ack subject, $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.
 * <cseq>.<ts>.<pending> or the newer form with domain and account hash
 * after $JS.ACK: the delivery count, stream sequence and the consumer's
 * pending count (pending may be NULL); -1 when reply is not one.
 */
int nats_ack_parse(const char *reply, uint64_t *delivered, uint64_t *sseq,
    uint64_t *pending);
/* Does a NATS subject filter (with * and >) match a subject? */
int nats_subject_match(const char *filter, const char *subject);
/* The stream sequence and delivery count in a MAX_DELIVERIES advisory. */
int nats_advisory_parse(const char *json, size_t len, uint64_t *sseq,
    uint64_t *deliveries);

#endif
