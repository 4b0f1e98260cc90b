/*
 * natsparse: the pieces of JetStream's wire conventions the nats source
 * reads, as pure functions the tests can reach without a server.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "source.h"

#define ACK_TOKENS_MAX	16

static int
parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

int
nats_ack_parse(const char *reply, uint64_t *delivered, uint64_t *sseq,
    uint64_t *pending)
{
	const char *tok[ACK_TOKENS_MAX];
	size_t len[ACK_TOKENS_MAX], n = 0, first;
	const char *p = reply;

	if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0)
		return -1;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (n == ACK_TOKENS_MAX || l == 0)
			return -1;
		tok[n] = p;
		len[n++] = l;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	/*
	 * 9 tokens: $JS ACK stream consumer delivered sseq cseq ts pending.
	 * 11 or 12: $JS ACK domain account stream consumer delivered sseq
	 * cseq ts pending [token].
	 */
	if (n == 9)
		first = 4;
	else if (n == 11 || n == 12)
		first = 6;
	else
		return -1;
	if (parse_u64(tok[first], len[first], delivered) < 0 ||
	    parse_u64(tok[first + 1], len[first + 1], sseq) < 0 ||
	    *delivered == 0)
		return -1;
	if (pending != NULL &&
	    parse_u64(tok[first + 4], len[first + 4], pending) < 0)
		return -1;
	return 0;
}

int
nats_subject_match(const char *filter, const char *subject)
{
	const char *f = filter, *s = subject;

	for (;;) {
		size_t fl = strcspn(f, "."), sl = strcspn(s, ".");

		if (fl == 1 && f[0] == '>')
			return sl > 0;
		if (!(fl == 1 && f[0] == '*') &&
		    (fl != sl || memcmp(f, s, fl) != 0))
			return 0;
		if (f[fl] == '\0' || s[sl] == '\0')
			return f[fl] == '\0' && s[sl] == '\0';
		f += fl + 1;
		s += sl + 1;
	}
}

int
nats_advisory_parse(const char *json, size_t len, uint64_t *sseq,
    uint64_t *deliveries)
{
	json_t *root, *seq, *dl;
	int rc = -1;

	if ((root = json_loadb(json, len, 0, NULL)) == NULL)
		return -1;
	seq = json_object_get(root, "stream_seq");
	dl = json_object_get(root, "deliveries");
	if (json_is_integer(seq) && json_integer_value(seq) > 0) {
		*sseq = (uint64_t)json_integer_value(seq);
		*deliveries = json_is_integer(dl) && json_integer_value(dl) > 0 ?
		    (uint64_t)json_integer_value(dl) : 0;
		rc = 0;
	}
	json_decref(root);
	return rc;
}
