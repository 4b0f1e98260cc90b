/*
 * settings: struct conf -> struct worker_settings, by proto_settings.
 *
 * A row whose conf field has no key of a fitting type is a programming
 * error, caught by check_proto's round trip of every setting.
 */
#include "config.h"

#include <assert.h>
#include <string.h>

#include "settings.h"

/* A worker holds what a configuration can hold. */
_Static_assert(CONF_PATH_MAX <= PROTO_PATH_MAX, "path settings too long");
_Static_assert(CONF_LIST_MAX <= PROTO_LIST_MAX, "list settings too long");

/* The key stored at offset off of struct conf. */
static const struct conf_key *
key_at(size_t off)
{
	for (size_t i = 0; i < conf_nkeys; i++)
		if (conf_keys[i].off == off || (conf_keys[i].type == CT_RANGE &&
		    conf_keys[i].off2 == off))
			return &conf_keys[i];
	return NULL;
}

/* How a value of conf type t travels. */
static enum proto_kind
kind_of(enum conf_type t)
{
	switch (t) {
	case CT_UINT: case CT_BOOL: case CT_LEVEL:
		return F_U32;
	case CT_U64:
		return F_U64;
	case CT_DUR: case CT_RANGE:
		return F_I64;
	case CT_RATIO:
		return F_DBL;
	case CT_STR: case CT_LIST: case CT_ENUM:
		break;
	}
	return F_STR;
}

/* Choice i of "a|b|c", as a string that is not NUL-terminated. */
static struct pstr
choice(const char *choices, int i)
{
	const char *p = choices;

	for (; i > 0 && strchr(p, '|') != NULL; i--)
		p = strchr(p, '|') + 1;
	assert(i == 0);
	return (struct pstr){ p, strcspn(p, "|") };
}

static void
copy_one(struct worker_settings *ws, const struct proto_setting *s,
    const struct conf *c)
{
	const struct conf_key *k = key_at(s->conf);
	const char *src = (const char *)c + s->conf;
	char *dst = (char *)ws + s->off;

	assert(k != NULL && kind_of(k->type) == s->kind);
	switch (k->type) {
	case CT_UINT:
		*(uint32_t *)dst = *(const unsigned *)src;
		break;
	case CT_BOOL:
		*(uint32_t *)dst = *(const int *)src != 0;
		break;
	case CT_LEVEL:
		*(uint32_t *)dst = (uint32_t)*(const enum log_level *)src;
		break;
	case CT_U64:
		*(uint64_t *)dst = *(const uint64_t *)src;
		break;
	case CT_DUR: case CT_RANGE:
		*(int64_t *)dst = *(const int64_t *)src;
		break;
	case CT_RATIO:
		*(double *)dst = *(const double *)src;
		break;
	case CT_STR: case CT_LIST:
		*(struct pstr *)dst = (struct pstr){ src, strlen(src) };
		break;
	case CT_ENUM:
		*(struct pstr *)dst = choice(k->choices, *(const int *)src);
		break;
	}
}

void
settings_from_conf(struct worker_settings *ws, const struct conf *c)
{
	memset(ws, 0, sizeof(*ws));
	for (size_t i = 0; i < proto_nsettings; i++)
		if (proto_settings[i].conf != PROTO_NO_CONF)
			copy_one(ws, &proto_settings[i], c);
}
