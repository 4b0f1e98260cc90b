/*
 * natsurl: split, check and redact the list of NATS server URLs.
 *
 * An element is SCHEME://[USERINFO@]HOST[:PORT] with SCHEME nats or tls.
 * USERINFO is user:password, or a token alone; both are secrets to cnats
 * and to us, so natsurl_redact prints "user:***" or "***" in their place
 * and nothing else here ever returns them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natsurl.h"

/* Length of the scheme and "://", or 0 when it is neither of ours. */
static size_t
scheme_len(const char *u)
{
	if (strncmp(u, "nats://", 7) == 0)
		return 7;
	if (strncmp(u, "tls://", 6) == 0)
		return 6;
	return 0;
}

int
natsurl_split(const char *list, char *buf, size_t buflen, const char **v,
    int max)
{
	int n = 0;
	char *p, *end;

	if (strlen(list) >= buflen)
		return -1;
	memcpy(buf, list, strlen(list) + 1);
	for (p = buf;; p = end + 1) {
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strcspn(p, ",");
		for (char *q = end; q > p && (q[-1] == ' ' || q[-1] == '\t');)
			*--q = '\0';
		if (*p == '\0' || *p == ',' || n == max)
			return -1;
		v[n++] = p;
		if (*end == '\0')
			return n;
		*end = '\0';
	}
}

/* NULL when s[0..n) is a port number from 1 to 65535. */
static const char *
port_check(const char *s, size_t n)
{
	unsigned long port = 0;

	if (n == 0 || n > 5)
		return "has an empty or over-long port";
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return "has a port that is not a number";
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port >= 1 && port <= 65535 ? NULL :
	    "has a port outside 1..65535";
}

/* HOST[:PORT], HOST a name or address, or [IPv6] in brackets. */
static const char *
hostport_check(const char *h)
{
	const char *colon;
	size_t hn;

	if (*h == '[') {
		const char *close = strchr(h, ']');

		if (close == NULL || close == h + 1)
			return "has an unclosed or empty [address]";
		if (close[1] == '\0')
			return NULL;
		if (close[1] != ':')
			return "has text after its [address]";
		return port_check(close + 2, strlen(close + 2));
	}
	colon = strchr(h, ':');
	hn = colon != NULL ? (size_t)(colon - h) : strlen(h);
	if (hn == 0)
		return "has no host";
	for (size_t i = 0; i < hn; i++)
		if (h[i] == '/' || h[i] == '?' || h[i] == '#' || h[i] == '@')
			return "has a path or stray characters after the host";
	return colon != NULL ? port_check(colon + 1, strlen(colon + 1)) : NULL;
}

const char *
natsurl_check(const char *url)
{
	size_t sl = scheme_len(url);
	const char *auth, *at;

	if (sl == 0)
		return "does not start with nats:// or tls://";
	auth = url + sl;
	for (const char *p = auth; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == ',')
			return "contains a space";
	if ((at = strrchr(auth, '@')) != NULL) {
		if (at == auth)
			return "has an empty user part before '@'";
		auth = at + 1;
	}
	return hostport_check(auth);
}

/* The user part of one element: its start and length, 0 when none. */
static size_t
userinfo(const char *u, size_t n, const char **start)
{
	const char *at = NULL, *end = u + n;
	size_t sl;

	while (u < end && (*u == ' ' || *u == '\t'))
		u++;
	n = (size_t)(end - u);
	sl = scheme_len(u);
	if (sl == 0 || sl >= n)
		return 0;
	for (const char *p = u + sl; p < u + n; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return 0;
	*start = u + sl;
	return (size_t)(at - *start);
}

int
natsurl_has_secret(const char *list)
{
	const char *ui;

	for (const char *u = list;; u++) {
		size_t n = strcspn(u, ",");

		if (userinfo(u, n, &ui) > 0)
			return 1;
		if (u[n] == '\0')
			return 0;
		u += n;
	}
}

int
natsurl_has_tls(const char *list)
{
	for (const char *u = list;; u++) {
		u += strspn(u, " \t");
		if (strncmp(u, "tls://", 6) == 0)
			return 1;
		if ((u = strchr(u, ',')) == NULL)
			return 0;
	}
}

/* Append s[0..n) to out, truncating; the length written so far. */
static size_t
put(char *out, size_t len, size_t at, const char *s, size_t n)
{
	if (at + 1 >= len)
		return at;
	if (n > len - at - 1)
		n = len - at - 1;
	memcpy(out + at, s, n);
	out[at + n] = '\0';
	return at + n;
}

const char *
natsurl_redact(const char *list, char *out, size_t len)
{
	const char *ui, *colon;
	size_t at = 0, un;

	if (len == 0)
		return out;
	out[0] = '\0';
	for (const char *u = list;; u++) {
		size_t n = strcspn(u, ",");

		if ((un = userinfo(u, n, &ui)) == 0)
			at = put(out, len, at, u, n);
		else {
			colon = memchr(ui, ':', un);
			at = put(out, len, at, u, (size_t)(ui - u));
			if (colon != NULL)
				at = put(out, len, at, ui, (size_t)(colon - ui) + 1);
			at = put(out, len, at, "***", 3);
			at = put(out, len, at, ui + un, n - (size_t)(ui + un - u));
		}
		if (u[n] == '\0')
			return out;
		at = put(out, len, at, ",", 1);
		u += n;
	}
}
