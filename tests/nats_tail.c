/*
 * A test helper for the nats source.
 *
 * nats_tail URL SUBJECT COUNT SECONDS: print the messages published on
 * SUBJECT, one line each ("<Mandrill-Reason header> | <payload>"), until
 * COUNT have come or SECONDS have passed.  Prints "ready" once
 * subscribed.  Exit 0 if COUNT came, 1 if not.
 *
 * nats_tail URL STREAM: print how many messages the stream holds.
 *
 * nats_tail URL STREAM DURABLE: delete that consumer of the stream.
 *
 * nats_tail -i URL STREAM DURABLE: print the consumer's state as the
 * server keeps it: "deliveries D pending P ack_pending A redelivered R"
 * (deliveries made, redeliveries included; messages not yet delivered;
 * delivered and not acked; delivered more than once and not acked).
 *
 * nats_tail -l URL STREAM DURABLE: print the name of the server that
 * leads the consumer (a cluster), or "-" when it has none.
 *
 * nats_tail -L URL STREAM: print the name of the server that leads the
 * stream, or "-".
 *
 * nats_tail -p URL STREAM DURABLE N: take up to N messages from that
 * pull consumer and ack none (a consumer that fails them all: after
 * max_deliver of these the server gives up, with an advisory); print how
 * many came.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

static int
js_open(const char *url, natsConnection **nc, jsCtx **js)
{
	return natsConnection_ConnectTo(nc, url) == NATS_OK &&
	    natsConnection_JetStream(js, *nc, NULL) == NATS_OK ? 0 : -1;
}

/* The stream's message count, or (leader) the server leading it. */
static int
stream_info(const char *url, const char *stream, int leader)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;

	if (js_open(url, &nc, &js) < 0 ||
	    js_GetStreamInfo(&si, js, stream, NULL, &jerr) != NATS_OK) {
		fprintf(stderr, "nats_tail: stream %s: %s\n", stream,
		    nats_GetLastError(NULL));
		return 2;
	}
	if (leader)
		printf("%s\n", si->Cluster != NULL && si->Cluster->Leader !=
		    NULL && *si->Cluster->Leader ? si->Cluster->Leader : "-");
	else
		printf("%llu\n", (unsigned long long)si->State.Msgs);
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

static int
delete_consumer(const char *url, const char *stream, const char *durable)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsErrCode jerr = 0;

	if (js_open(url, &nc, &js) < 0 ||
	    js_DeleteConsumer(js, stream, durable, NULL, &jerr) != NATS_OK) {
		fprintf(stderr, "nats_tail: delete %s: %s\n", durable,
		    nats_GetLastError(NULL));
		return 2;
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

static int
consumer_info(const char *url, const char *stream, const char *durable,
    int leader)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;

	if (js_open(url, &nc, &js) < 0 ||
	    js_GetConsumerInfo(&ci, js, stream, durable, NULL, &jerr) !=
	    NATS_OK) {
		fprintf(stderr, "nats_tail: consumer %s: %s\n", durable,
		    nats_GetLastError(NULL));
		return 2;
	}
	if (leader)
		printf("%s\n", ci->Cluster != NULL && ci->Cluster->Leader != NULL &&
		    *ci->Cluster->Leader ? ci->Cluster->Leader : "-");
	else
		printf("deliveries %llu pending %llu ack_pending %lld "
		    "redelivered %lld\n",
		    (unsigned long long)ci->Delivered.Consumer,
		    (unsigned long long)ci->NumPending,
		    (long long)ci->NumAckPending, (long long)ci->NumRedelivered);
	jsConsumerInfo_Destroy(ci);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

static int
fetch_no_ack(const char *url, const char *stream, const char *durable, int n)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsMsgList list = { 0 };
	jsSubOptions so;
	jsErrCode jerr = 0;
	jsCtx *js = NULL;
	natsStatus st;

	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = durable;
	if (js_open(url, &nc, &js) < 0 || js_PullSubscribe(&sub, js, NULL,
	    durable, NULL, &so, &jerr) != NATS_OK) {
		fprintf(stderr, "nats_tail: bind %s: %s\n", durable,
		    nats_GetLastError(NULL));
		return 2;
	}
	st = natsSubscription_Fetch(&list, sub, n, 2000, &jerr);
	printf("%d\n", st == NATS_OK ? list.Count : 0);
	natsMsgList_Destroy(&list);	/* not acked */
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

int
main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsMsg *m = NULL;
	int want, got = 0;
	int64_t deadline;

	if (argc == 5 && (strcmp(argv[1], "-i") == 0 ||
	    strcmp(argv[1], "-l") == 0))
		return consumer_info(argv[2], argv[3], argv[4],
		    argv[1][1] == 'l');
	if (argc == 4 && strcmp(argv[1], "-L") == 0)
		return stream_info(argv[2], argv[3], 1);
	if (argc == 6 && strcmp(argv[1], "-p") == 0)
		return fetch_no_ack(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (argc == 3)
		return stream_info(argv[1], argv[2], 0);
	if (argc == 4)
		return delete_consumer(argv[1], argv[2], argv[3]);
	if (argc != 5) {
		fprintf(stderr, "usage: nats_tail URL SUBJECT COUNT SECONDS\n"
		    "       nats_tail URL STREAM [DURABLE]\n"
		    "       nats_tail -i|-l URL STREAM DURABLE\n"
		    "       nats_tail -p URL STREAM DURABLE N\n"
		    "       nats_tail -L URL STREAM\n");
		return 2;
	}
	want = atoi(argv[3]);
	if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK ||
	    natsConnection_SubscribeSync(&sub, nc, argv[2]) != NATS_OK ||
	    natsConnection_Flush(nc) != NATS_OK) {
		fprintf(stderr, "nats_tail: cannot subscribe: %s\n",
		    nats_GetLastError(NULL));
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	deadline = nats_Now() + (int64_t)atoi(argv[4]) * 1000;
	while (got < want && nats_Now() < deadline) {
		const char *reason = "-";

		if (natsSubscription_NextMsg(&m, sub, 100) != NATS_OK)
			continue;
		natsMsgHeader_Get(m, "Mandrill-Reason", &reason);
		printf("%s | %.*s\n", reason, natsMsg_GetDataLength(m),
		    natsMsg_GetData(m));
		fflush(stdout);
		natsMsg_Destroy(m);
		got++;
	}
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
	return got >= want ? 0 : 1;
}
