/*
 * proto: strict msgpack encoding and decoding of protocol frames.
 *
 * Each frame type is a table of fields (name, kind, offset in struct
 * proto_msg); one decoder walks any map against its table, so that a new
 * field is one line here and cannot be half-checked.  The welcome frame's
 * settings are one more table, proto_settings, which its encoder walks
 * too, and which says where in struct conf each setting comes from.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "proto.h"

struct field {
	const char	*name;
	enum proto_kind	 kind;
	size_t		 off;
};

#define M(f)	offsetof(struct proto_msg, f)
#define S(f)	offsetof(struct worker_settings, f)
#define C(f)	offsetof(struct conf, f)
/* A setting named as its field and its conf key's field. */
#define SET(f, kind)	{ #f, kind, S(f), C(f) }
#define SENDER(f, kind)	{ #f, kind, S(f), PROTO_NO_CONF }

const struct proto_setting proto_settings[] = {
	SENDER(gen, F_U32),
	SENDER(slot, F_U32),
	{ "max_jobs", F_U32, S(max_jobs), C(jobs_per_worker) },
	SET(log_level, F_U32),
	SET(synchronous, F_STR),
	SET(mode, F_STR),
	SET(max_attempts, F_U32),
	SET(busy_timeout, F_I64),
	SENDER(heartbeat, F_I64),	/* from worker_timeout */
	SET(sim_latency_min, F_I64),
	SET(sim_latency_max, F_I64),
	SET(sim_failure_rate, F_DBL),
	SET(sim_seed, F_U64),
	SET(min_interval, F_I64),
	SET(restart_timeout, F_I64),
	SET(state_dir, F_STR),
	SET(domain, F_STR),
	SET(allow, F_STR),
	SET(deny, F_STR),
	SET(log_file, F_STR),
	SET(command, F_STR),
	SET(user, F_STR),
	SET(enabled, F_U32),
	SET(dry_run, F_U32),
	SET(max_concurrent, F_U32),
	SET(max_per_minute, F_U32),
	SET(slow_iteration, F_I64),
	SET(max_crashes, F_U32),
	SET(wal_limit, F_U64),
	SET(retain, F_I64),
	SET(log_format, F_STR),
	SENDER(db_dev, F_U64),		/* the database the first worker opened */
	SENDER(db_ino, F_U64),
	SENDER(pause_reason, F_STR),	/* from the supervisor's pause */
	SET(window, F_STR),
	SET(timezone, F_STR),
	SET(group, F_STR),
	SET(max_concurrent_per_group, F_U32),
	SET(check, F_STR),
	SET(check_timeout, F_I64),
	SET(check_interval, F_I64),
	SET(coordination, F_STR),
	SET(fleet_lease, F_I64),
};
#define NSETTINGS	(sizeof(proto_settings) / sizeof(proto_settings[0]))
const size_t proto_nsettings = NSETTINGS;
/* "v" and the settings, each a bit in decode_fields' masks. */
_Static_assert(NSETTINGS + 1 <= PROTO_MAP_MAX, "too many settings");

static const struct field f_welcome[] = {
	{ "v", F_U32, M(v) }, { NULL, 0, 0 }	/* then proto_settings */
};
static const struct field f_job[] = {
	{ "id", F_U64, M(id) }, { "msg_id", F_STR, M(msg_id) },
	{ "data", F_BIN, M(data) }, { "size", F_U64, M(size) },
	{ "attempt", F_U32, M(attempt) }, { "deadline", F_I64, M(deadline) },
	{ "bury", F_STR, M(bury) }, { "crashes", F_U32, M(crashes) },
	{ "lost_at", F_I64, M(lost_at) }, { "retry_of", F_U64, M(retry_of) },
	{ NULL, 0, 0 }
};
static const struct field f_cancel[] = { { "id", F_U64, M(id) }, { NULL, 0, 0 } };
static const struct field f_none[] = { { NULL, 0, 0 } };
static const struct field f_ready[] = {
	{ "v", F_U32, M(v) }, { "pid", F_U32, M(pid) },
	{ "max_jobs", F_U32, M(max_jobs) }, { "db_dev", F_U64, M(db_dev) },
	{ "db_ino", F_U64, M(db_ino) }, { NULL, 0, 0 }
};
static const struct field f_started[] = {
	{ "id", F_U64, M(id) }, { "pgid", F_U32, M(pgid) }, { NULL, 0, 0 }
};
static const struct field f_done[] = {
	{ "id", F_U64, M(id) }, { "outcome", F_OUTCOME, M(outcome) },
	{ "error", F_STR, M(error) }, { "attempt", F_U32, M(attempt) },
	{ "duration", F_U64, M(duration) }, { "host", F_STR, M(host) },
	{ "hold", F_HOLD, M(hold) }, { "retry", F_I64, M(retry) },
	{ NULL, 0, 0 }
};
static const struct field f_state[] = {
	{ "unsaved", F_U32, M(unsaved) }, { "store", F_STR, M(store) },
	{ "wal", F_U64, M(wal) }, { NULL, 0, 0 }
};

static const struct field f_grant[] = {
	{ "id", F_U64, M(id) }, { "msg_id", F_STR, M(msg_id) },
	{ "host", F_STR, M(host) }, { "group", F_STR, M(group) },
	{ NULL, 0, 0 }
};
static const struct field f_granted[] = {
	{ "id", F_U64, M(id) }, { "outcome", F_OUTCOME, M(outcome) },
	{ "hold", F_HOLD, M(hold) }, { "retry", F_I64, M(retry) },
	{ "error", F_STR, M(error) }, { "until", F_I64, M(until) },
	{ NULL, 0, 0 }
};

static const struct ftype {
	const char		*name;
	enum proto_type		 type;
	const struct field	*fields;
	int			 settings;	/* then proto_settings, in ws */
} types[] = {
	{ "welcome", P_WELCOME, f_welcome, 1 }, { "job", P_JOB, f_job, 0 },
	{ "cancel", P_CANCEL, f_cancel, 0 }, { "drain", P_DRAIN, f_none, 0 },
	{ "reopen", P_REOPEN, f_none, 0 },
	{ "ready", P_READY, f_ready, 0 }, { "done", P_DONE, f_done, 0 },
	{ "heartbeat", P_HEARTBEAT, f_none, 0 },
	{ "started", P_STARTED, f_started, 0 },
	{ "state", P_STATE, f_state, 0 },
	{ "grant", P_GRANT, f_grant, 0 },
	{ "granted", P_GRANTED, f_granted, 0 },
};

static const char *outcomes[OUT_COUNT] = {
	"restarted", "skipped", "duplicate", "failed", "dead", "invalid",
	"held", "error", "dry-run",
};

static const char *holds[HOLD_COUNT] = {
	"", "paused", "host", "msg_id", "concurrency", "rate", "store",
	"crash", "window", "group", "fleet",
};

/* The index of a name in a table of n names, or -1. */
static int
name_index(const char *const *names, int n, const char *s, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return i;
	return -1;
}

const char *
outcome_name(enum outcome o)
{
	return (unsigned)o < OUT_COUNT ? outcomes[o] : "?";
}

int
outcome_parse(const char *s, size_t len, enum outcome *out)
{
	int i = name_index(outcomes, OUT_COUNT, s, len);

	if (i < 0)
		return -1;
	*out = (enum outcome)i;
	return 0;
}

const char *
hold_name(enum hold h)
{
	return (unsigned)h < HOLD_COUNT ? holds[h] : "?";
}

int
hold_parse(const char *s, size_t len, enum hold *out)
{
	int i = name_index(holds, HOLD_COUNT, s, len);

	if (i < 0)
		return -1;
	*out = (enum hold)i;
	return 0;
}

static int
streq(const msgpack_object_str *s, const char *lit)
{
	size_t n = strlen(lit);

	return s->size == n && memcmp(s->ptr, lit, n) == 0;
}

static const char *
kind_name(enum proto_kind k)
{
	static const char *n[] = { "unsigned 32-bit integer",
	    "unsigned integer", "integer", "float", "string", "binary",
	    "outcome string", "hold reason string" };
	return n[k];
}

/* Store one value; NULL or what was wrong with it. */
static const char *
field_set(struct proto_msg *m, const struct field *f, const msgpack_object *v)
{
	char *dst = (char *)m + f->off;
	struct pstr *ps = (struct pstr *)dst;

	switch (f->kind) {
	case F_U32:
		if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    v->via.u64 > UINT32_MAX)
			return "wrong type";
		*(uint32_t *)dst = (uint32_t)v->via.u64;
		return NULL;
	case F_U64:
		if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return "wrong type";
		*(uint64_t *)dst = v->via.u64;
		return NULL;
	case F_I64:
		if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			*(int64_t *)dst = v->via.i64;
		else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    v->via.u64 <= INT64_MAX)
			*(int64_t *)dst = (int64_t)v->via.u64;
		else
			return "wrong type";
		return NULL;
	case F_DBL:
		if (v->type != MSGPACK_OBJECT_FLOAT64 &&
		    v->type != MSGPACK_OBJECT_FLOAT32)
			return "wrong type";
		*(double *)dst = v->via.f64;
		return NULL;
	case F_STR:
		if (v->type != MSGPACK_OBJECT_STR)
			return "wrong type";
		if (memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL)
			return "NUL byte in string";
		ps->p = v->via.str.ptr;
		ps->len = v->via.str.size;
		return NULL;
	case F_BIN:
		if (v->type != MSGPACK_OBJECT_BIN)
			return "wrong type";
		if (v->via.bin.size > PROTO_DATA_MAX)
			return "binary too long";
		ps->p = v->via.bin.ptr;
		ps->len = v->via.bin.size;
		return NULL;
	case F_OUTCOME:
		if (v->type != MSGPACK_OBJECT_STR)
			return "wrong type";
		if (outcome_parse(v->via.str.ptr, v->via.str.size,
		    (enum outcome *)dst) < 0)
			return "unknown outcome";
		return NULL;
	case F_HOLD:
		if (v->type != MSGPACK_OBJECT_STR)
			return "wrong type";
		if (hold_parse(v->via.str.ptr, v->via.str.size,
		    (enum hold *)dst) < 0)
			return "unknown hold reason";
		return NULL;
	}
	return "bad field";
}

/* Key j of a frame type with own fields of its own, then its settings. */
static struct field
key_at(const struct ftype *ft, size_t own, size_t j)
{
	const struct proto_setting *s;

	if (j < own)
		return ft->fields[j];
	s = &proto_settings[j - own];
	return (struct field){ s->name, s->kind, M(ws) + s->off };
}

static int
decode_fields(const msgpack_object_map *map, const struct ftype *ft,
    struct proto_msg *m, char *err, size_t errlen)
{
	uint64_t seen = 0;
	size_t own = 0, nf;

	while (ft->fields[own].name != NULL)
		own++;
	nf = own + (ft->settings ? NSETTINGS : 0);

	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object_kv *kv = &map->ptr[i];
		const msgpack_object_str *k = &kv->key.via.str;
		struct field f;
		const char *why;
		size_t j;

		if (streq(k, "t"))
			continue;
		for (j = 0; j < nf; j++)
			if (streq(k, key_at(ft, own, j).name))
				break;
		if (j == nf) {
			snprintf(err, errlen, "%s frame: unknown key \"%.*s\"",
			    ft->name, (int)(k->size > 32 ? 32 : k->size), k->ptr);
			return -1;
		}
		f = key_at(ft, own, j);
		if (seen & (UINT64_C(1) << j)) {
			snprintf(err, errlen, "%s frame: key \"%s\" repeated",
			    ft->name, f.name);
			return -1;
		}
		if ((why = field_set(m, &f, &kv->val)) != NULL) {
			snprintf(err, errlen, "%s frame: \"%s\": %s, want %s",
			    ft->name, f.name, why, kind_name(f.kind));
			return -1;
		}
		seen |= UINT64_C(1) << j;
	}
	for (size_t j = 0; j < nf; j++)
		if (!(seen & (UINT64_C(1) << j))) {
			snprintf(err, errlen, "%s frame: missing key \"%s\"",
			    ft->name, key_at(ft, own, j).name);
			return -1;
		}
	return 0;
}

int
proto_decode(const msgpack_object *o, struct proto_msg *m, char *err,
    size_t errlen)
{
	const msgpack_object_map *map;
	const msgpack_object *t = NULL;

	memset(m, 0, sizeof(*m));
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "frame is not a map");
		return -1;
	}
	map = &o->via.map;
	for (uint32_t i = 0; i < map->size; i++) {
		if (map->ptr[i].key.type != MSGPACK_OBJECT_STR) {
			snprintf(err, errlen, "frame has a key that is not a "
			    "string");
			return -1;
		}
		if (streq(&map->ptr[i].key.via.str, "t")) {
			if (t != NULL) {
				snprintf(err, errlen, "frame has two \"t\" keys");
				return -1;
			}
			t = &map->ptr[i].val;
		}
	}
	if (t == NULL) {
		snprintf(err, errlen, "frame has no \"t\" key");
		return -1;
	}
	if (t->type != MSGPACK_OBJECT_STR) {
		snprintf(err, errlen, "frame \"t\" is not a string");
		return -1;
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (streq(&t->via.str, types[i].name)) {
			m->type = types[i].type;
			return decode_fields(map, &types[i], m, err, errlen);
		}
	snprintf(err, errlen, "unknown frame type \"%.*s\"",
	    (int)(t->via.str.size > 32 ? 32 : t->via.str.size), t->via.str.ptr);
	return -1;
}

static void
pack_str(msgpack_packer *pk, const char *s, size_t len)
{
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s, len);
}

static void
pack_key(msgpack_packer *pk, const char *key)
{
	pack_str(pk, key, strlen(key));
}

static void
pack_head(msgpack_packer *pk, const char *type, size_t nkeys)
{
	msgpack_pack_map(pk, nkeys + 1);
	pack_key(pk, "t");
	pack_key(pk, type);
}

static void
pack_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
	pack_key(pk, key);
	msgpack_pack_uint64(pk, v);
}

static void
pack_i64(msgpack_packer *pk, const char *key, int64_t v)
{
	pack_key(pk, key);
	msgpack_pack_int64(pk, v);
}

/* One value of a table-driven frame, read from p. */
static void
pack_value(msgpack_packer *pk, enum proto_kind kind, const void *p)
{
	const struct pstr *ps = p;

	switch (kind) {
	case F_U32:
		msgpack_pack_uint64(pk, *(const uint32_t *)p);
		break;
	case F_U64:
		msgpack_pack_uint64(pk, *(const uint64_t *)p);
		break;
	case F_I64:
		msgpack_pack_int64(pk, *(const int64_t *)p);
		break;
	case F_DBL:
		msgpack_pack_double(pk, *(const double *)p);
		break;
	case F_STR:
		pack_str(pk, ps->p ? ps->p : "", ps->p ? ps->len : 0);
		break;
	case F_BIN:
		msgpack_pack_bin(pk, ps->p ? ps->len : 0);
		msgpack_pack_bin_body(pk, ps->p ? ps->p : "", ps->p ? ps->len : 0);
		break;
	case F_OUTCOME:
		pack_key(pk, outcome_name(*(const enum outcome *)p));
		break;
	case F_HOLD:
		pack_key(pk, hold_name(*(const enum hold *)p));
		break;
	}
}

void
proto_pack_welcome(msgpack_packer *pk, const struct worker_settings *ws)
{
	pack_head(pk, "welcome", 1 + NSETTINGS);
	pack_u64(pk, "v", PROTO_VERSION);
	for (size_t i = 0; i < NSETTINGS; i++) {
		pack_key(pk, proto_settings[i].name);
		pack_value(pk, proto_settings[i].kind,
		    (const char *)ws + proto_settings[i].off);
	}
}

static void
pack_bounded(msgpack_packer *pk, const char *key, const char *s, size_t max)
{
	size_t len = s ? strlen(s) : 0;

	pack_key(pk, key);
	pack_str(pk, s ? s : "", len > max ? max : len);
}

void
proto_pack_job(msgpack_packer *pk, const struct proto_job *j)
{
	size_t len = j->len, idlen = j->msg_id_len;

	if (len > PROTO_DATA_MAX)
		len = PROTO_DATA_MAX;	/* the worker sees size and rejects */
	if (idlen > 256)
		idlen = 256;
	pack_head(pk, "job", 10);
	pack_u64(pk, "id", j->id);
	pack_key(pk, "msg_id");
	pack_str(pk, j->msg_id, idlen);
	pack_key(pk, "data");
	msgpack_pack_bin(pk, len);
	msgpack_pack_bin_body(pk, j->data, len);
	pack_u64(pk, "size", j->len);
	pack_u64(pk, "attempt", j->attempt);
	pack_i64(pk, "deadline", j->deadline);
	pack_bounded(pk, "bury", j->bury, PROTO_ERR_MAX);
	pack_u64(pk, "crashes", j->crashes);
	pack_i64(pk, "lost_at", j->lost_at);
	pack_u64(pk, "retry_of", j->retry_of);
}

void
proto_pack_cancel(msgpack_packer *pk, uint64_t id)
{
	pack_head(pk, "cancel", 1);
	pack_u64(pk, "id", id);
}

void
proto_pack_drain(msgpack_packer *pk)
{
	pack_head(pk, "drain", 0);
}

void
proto_pack_reopen(msgpack_packer *pk)
{
	pack_head(pk, "reopen", 0);
}

void
proto_pack_ready(msgpack_packer *pk, uint32_t pid, uint32_t max_jobs,
    uint64_t db_dev, uint64_t db_ino)
{
	pack_head(pk, "ready", 5);
	pack_u64(pk, "v", PROTO_VERSION);
	pack_u64(pk, "pid", pid);
	pack_u64(pk, "max_jobs", max_jobs);
	pack_u64(pk, "db_dev", db_dev);
	pack_u64(pk, "db_ino", db_ino);
}

void
proto_pack_done(msgpack_packer *pk, const struct proto_done *d)
{
	pack_head(pk, "done", 8);
	pack_u64(pk, "id", d->id);
	pack_key(pk, "outcome");
	pack_key(pk, outcome_name(d->outcome));
	pack_bounded(pk, "error", d->error, PROTO_ERR_MAX);
	pack_u64(pk, "attempt", d->attempt);
	pack_u64(pk, "duration", d->duration);
	pack_bounded(pk, "host", d->host, 253);
	pack_key(pk, "hold");
	pack_key(pk, hold_name(d->hold));
	pack_i64(pk, "retry", d->retry);
}

void
proto_pack_state(msgpack_packer *pk, uint32_t unsaved, const char *store,
    uint64_t wal)
{
	pack_head(pk, "state", 3);
	pack_u64(pk, "unsaved", unsaved);
	pack_bounded(pk, "store", store, PROTO_ERR_MAX);
	pack_u64(pk, "wal", wal);
}

void
proto_pack_started(msgpack_packer *pk, uint64_t id, uint32_t pgid)
{
	pack_head(pk, "started", 2);
	pack_u64(pk, "id", id);
	pack_u64(pk, "pgid", pgid);
}

void
proto_pack_grant(msgpack_packer *pk, const struct proto_grant *g)
{
	pack_head(pk, "grant", 4);
	pack_u64(pk, "id", g->id);
	pack_bounded(pk, "msg_id", g->msg_id, 256);
	pack_bounded(pk, "host", g->host, 253);
	pack_bounded(pk, "group", g->group, 253);
}

void
proto_pack_granted(msgpack_packer *pk, const struct proto_granted *g)
{
	pack_head(pk, "granted", 6);
	pack_u64(pk, "id", g->id);
	pack_key(pk, "outcome");
	pack_key(pk, outcome_name(g->outcome));
	pack_key(pk, "hold");
	pack_key(pk, hold_name(g->hold));
	pack_i64(pk, "retry", g->retry);
	pack_bounded(pk, "error", g->error, PROTO_ERR_MAX);
	pack_i64(pk, "until", g->until);
}

void
proto_pack_heartbeat(msgpack_packer *pk)
{
	pack_head(pk, "heartbeat", 0);
}

/*
 * Size of the msgpack object at p (n bytes available): 0 if it does not
 * fit yet, -1 if it is not a scalar, string or binary, -2 if it declares
 * more than PROTO_FRAME_MAX bytes (refused at once), else its size.
 */
static int64_t
scalar_size(const unsigned char *p, size_t n)
{
	uint64_t len;
	size_t hdr;

	if (n == 0)
		return 0;
	if (p[0] <= 0x7f || p[0] >= 0xe0 || p[0] == 0xc0 || p[0] == 0xc2 ||
	    p[0] == 0xc3)
		return 1;				/* fixint, nil, bool */
	if (p[0] >= 0xa0 && p[0] <= 0xbf)
		return 1 + (p[0] & 0x1f);		/* fixstr */
	switch (p[0]) {
	case 0xcc: case 0xd0: return 2;
	case 0xcd: case 0xd1: return 3;
	case 0xca: case 0xce: case 0xd2: return 5;
	case 0xcb: case 0xcf: case 0xd3: return 9;
	case 0xc4: case 0xd9: hdr = 2; break;	/* bin8, str8 */
	case 0xc5: case 0xda: hdr = 3; break;	/* bin16, str16 */
	case 0xc6: case 0xdb: hdr = 5; break;	/* bin32, str32 */
	default:
		return -1;	/* array, map, ext, never-used */
	}
	if (n < hdr)
		return 0;
	len = 0;
	for (size_t i = 1; i < hdr; i++)
		len = len << 8 | p[i];
	if (len > PROTO_FRAME_MAX)
		return -2;
	return (int64_t)(hdr + len);
}

/* 1 and *len when a whole flat map is there, 0 for more, -1 bad. */
static int
scan_frame(const unsigned char *p, size_t n, size_t *len, char *err,
    size_t errlen)
{
	size_t off, count;
	int64_t sz;

	if (n == 0)
		return 0;
	if (p[0] >= 0x80 && p[0] <= 0x8f) {
		count = p[0] & 0x0f;
		off = 1;
	} else if (p[0] == 0xde) {
		if (n < 3)
			return 0;
		count = (size_t)p[1] << 8 | p[2];
		off = 3;
	} else if (p[0] == 0xdf) {
		if (n < 5)
			return 0;
		count = (size_t)p[1] << 24 | (size_t)p[2] << 16 |
		    (size_t)p[3] << 8 | p[4];
		off = 5;
	} else {
		snprintf(err, errlen, "frame is not a map");
		return -1;
	}
	if (count > PROTO_MAP_MAX) {
		snprintf(err, errlen, "frame has %zu keys, more than %d", count,
		    PROTO_MAP_MAX);
		return -1;
	}
	for (size_t i = 0; i < 2 * count; i++) {
		if (off >= n)
			return 0;
		if ((sz = scalar_size(p + off, n - off)) == -2)
			goto big;
		if (sz < 0) {
			snprintf(err, errlen, "frame holds a nested or unknown "
			    "msgpack type 0x%02x", p[off]);
			return -1;
		}
		if (sz == 0 || off + (size_t)sz > n) {
			if (off + (size_t)(sz > 0 ? sz : 0) > PROTO_FRAME_MAX)
				goto big;
			return 0;
		}
		off += (size_t)sz;
		if (off > PROTO_FRAME_MAX)
			goto big;
	}
	*len = off;
	return 1;
big:
	snprintf(err, errlen, "frame larger than %d bytes", PROTO_FRAME_MAX);
	return -1;
}

int
proto_next(const char *p, size_t n, msgpack_unpacked *res,
    struct proto_msg *m, size_t *used, char *err, size_t errlen)
{
	size_t len, off = 0;
	int rc;

	if ((rc = scan_frame((const unsigned char *)p, n, &len, err,
	    errlen)) <= 0) {
		if (rc == 0 && n > PROTO_FRAME_MAX) {
			snprintf(err, errlen, "frame larger than %d bytes",
			    PROTO_FRAME_MAX);
			return -1;
		}
		return rc;
	}
	if (msgpack_unpack_next(res, p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len) {
		snprintf(err, errlen, "malformed msgpack");
		return -1;
	}
	*used = len;
	return proto_decode(&res->data, m, err, errlen) < 0 ? -1 : 1;
}
