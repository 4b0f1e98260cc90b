/*
 * payload: JSON restart requests, parsed with jansson.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "hostname.h"
#include "payload.h"

static const char *
check_msg_id(const char *s, size_t len)
{
	if (len == 0)
		return "msg_id is empty";
	if (len > MSG_ID_MAX)
		return "msg_id longer than 128 bytes";
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return "msg_id has a character that is not printable "
			    "ASCII";
	return NULL;
}

/* A string member, or NULL with err set when present but not a string. */
static json_t *
member_string(json_t *obj, const char *key, int *bad)
{
	json_t *v = json_object_get(obj, key);

	*bad = v != NULL && !json_is_string(v);
	return v != NULL && json_is_string(v) ? v : NULL;
}

static int
fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

/* The optional group: a label, so that it reads well in reasons. */
static int
group_of(json_t *root, struct payload *p, char *err, size_t errlen)
{
	json_t *g;
	const char *v;
	size_t len;
	int bad;

	p->group[0] = '\0';
	if ((g = member_string(root, "group", &bad)) == NULL)
		return bad ? fail(err, errlen, "group is not a string") : 0;
	v = json_string_value(g);
	len = json_string_length(g);
	if (len == 0 || len > GROUP_MAX || strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
		return fail(err, errlen, "group must be 1 to 63 letters, "
		    "digits, '.', '_' or '-'");
	memcpy(p->group, v, len + 1);
	return 0;
}

static int
host_of(json_t *root, const char *domain, struct payload *p, char *err,
    size_t errlen)
{
	json_t *inst, *host;
	const char *why, *name;
	size_t len, dlen = strlen(domain);
	int bad_i, bad_h;

	inst = member_string(root, "instance_name", &bad_i);
	host = member_string(root, "host", &bad_h);
	if (bad_i || bad_h)
		return fail(err, errlen, bad_i ? "instance_name is not a "
		    "string" : "host is not a string");
	if (inst == NULL && host == NULL)
		return fail(err, errlen, "no instance_name or host");
	if (inst != NULL && host != NULL)
		return fail(err, errlen, "both instance_name and host given");
	name = json_string_value(inst ? inst : host);
	len = json_string_length(inst ? inst : host);
	if (strlen(name) != len)
		return fail(err, errlen, "NUL byte in host name");
	if (len >= sizeof(p->instance))
		return fail(err, errlen, "host name longer than 253 bytes");
	memcpy(p->instance, name, len + 1);
	if (inst != NULL && dlen > 0) {
		if (len + 1 + dlen >= sizeof(p->host))
			return fail(err, errlen, "host name with domain longer "
			    "than 253 bytes");
		snprintf(p->host, sizeof(p->host), "%s.%s", name, domain);
	} else
		memcpy(p->host, name, len + 1);
	if ((why = hostname_check(p->host, strlen(p->host))) != NULL)
		return fail(err, errlen, why);
	/* DNS names are case-insensitive: one host, one spelling. */
	for (char *c = p->host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return 0;
}

int
payload_parse(const char *data, size_t len, size_t size, const char *domain,
    struct payload *p, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *id;
	const char *why;
	int bad, rc = -1;

	memset(p, 0, sizeof(*p));
	if (size > PAYLOAD_MAX || len > PAYLOAD_MAX) {
		snprintf(err, errlen, "payload of %zu bytes, more than %d",
		    size > len ? size : len, PAYLOAD_MAX);
		return -1;
	}
	if (len == 0)
		return fail(err, errlen, "empty payload");
	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "payload is not JSON: %s at byte %d",
		    jerr.text, jerr.position);
		return -1;
	}
	if (!json_is_object(root)) {
		fail(err, errlen, "payload is not a JSON object");
		goto out;
	}
	id = member_string(root, "msg_id", &bad);
	if (id == NULL) {
		fail(err, errlen, bad ? "msg_id is not a string" : "no msg_id");
		goto out;
	}
	if ((why = check_msg_id(json_string_value(id),
	    json_string_length(id))) != NULL) {
		fail(err, errlen, why);
		goto out;
	}
	memcpy(p->msg_id, json_string_value(id), json_string_length(id) + 1);
	if ((rc = host_of(root, domain, p, err, errlen)) == 0)
		rc = group_of(root, p, err, errlen);
out:
	json_decref(root);
	return rc;
}
