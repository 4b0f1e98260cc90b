/*
 * check_proto: the supervisor <-> worker wire protocol and its channel.
 *
 * Every frame type survives a pack/unpack/decode round trip with all its
 * fields; malformed frames are rejected with a reason that names the
 * problem; a chan on a socketpair delivers frames in order, reassembles
 * split frames and reports garbage, oversize frames and EOF exactly once.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <ev.h>
#include <msgpack.h>

#include "chan.h"
#include "conf.h"
#include "proto.h"
#include "settings.h"

/* ---------------------------------------------------------------------
 * Frame fixture: one buffer, one packer, one decoded message per test.
 */

/* The frame builders with the fields most tests do not care about. */
static void
pack_job(msgpack_packer *p, uint64_t id, const char *msg_id, size_t idlen,
    const char *data, size_t len, uint32_t attempt, int64_t deadline,
    const char *bury)
{
	struct proto_job j = { id, msg_id, idlen, data, len, attempt, deadline,
	    bury, 0, 0 };

	proto_pack_job(p, &j);
}

static void
pack_done(msgpack_packer *p, uint64_t id, enum outcome o, const char *error,
    uint32_t attempt, uint64_t duration)
{
	struct proto_done d = { id, o, error, attempt, duration, NULL,
	    HOLD_NONE, 0 };

	proto_pack_done(p, &d);
}

static msgpack_sbuffer sb;
static msgpack_packer pk;
static msgpack_unpacked up;
static struct proto_msg msg;
static char err[256];

static void
frame_setup(void)
{
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&up);
	memset(&msg, 0, sizeof(msg));
	err[0] = '\0';
}

static void
frame_teardown(void)
{
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

/* Unpack the one frame in sb (it must be complete msgpack) and decode it. */
static int
decode(void)
{
	size_t off = 0;
	msgpack_unpack_return rc;

	rc = msgpack_unpack_next(&up, sb.data, sb.size, &off);
	ck_assert_int_eq(rc, MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, sb.size);
	err[0] = '\0';
	return proto_decode(&up.data, &msg, err, sizeof(err));
}

/* Decode and expect a rejection whose reason contains want. */
static void
decode_fails(const char *want)
{
	ck_assert_int_eq(decode(), -1);
	ck_assert_msg(strstr(err, want) != NULL,
	    "error \"%s\" does not contain \"%s\"", err, want);
}

static void
decode_ok(void)
{
	int rc = decode();

	ck_assert_msg(rc == 0, "decode failed: %s", err);
}

static void
pk_str(const char *s)
{
	msgpack_pack_str(&pk, strlen(s));
	msgpack_pack_str_body(&pk, s, strlen(s));
}

static void
pk_strn(const char *s, size_t n)
{
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, s, n);
}

static void
pk_bin(const char *s, size_t n)
{
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, s, n);
}

static void
pk_kv_u64(const char *k, uint64_t v)
{
	pk_str(k);
	msgpack_pack_uint64(&pk, v);
}

static void
pk_kv_i64(const char *k, int64_t v)
{
	pk_str(k);
	msgpack_pack_int64(&pk, v);
}

static void
pk_kv_str(const char *k, const char *v)
{
	pk_str(k);
	pk_str(v);
}

static void
assert_pstr(struct pstr s, const char *want, size_t wantlen)
{
	ck_assert_uint_eq(s.len, wantlen);
	ck_assert_msg(wantlen == 0 || memcmp(s.p, want, wantlen) == 0,
	    "string differs from \"%.*s\"", (int)wantlen, want);
}

/* ---------------------------------------------------------------------
 * Round trips.
 */

START_TEST(test_welcome_roundtrip)
{
	struct worker_settings ws;

	memset(&ws, 0, sizeof(ws));
	ws.gen = 7;
	ws.slot = 3;
	ws.max_jobs = 64;
	ws.log_level = 2;
	ws.synchronous = (struct pstr){ "normal", 6 };
	ws.mode = (struct pstr){ "sim", 3 };
	ws.max_attempts = 5;
	ws.busy_timeout = 5000;
	ws.heartbeat = 1500;
	ws.sim_latency_min = 100;
	ws.sim_latency_max = 1000;
	ws.sim_failure_rate = 0.37;
	ws.sim_seed = UINT64_MAX;
	ws.min_interval = -1;		/* negative integers survive */
	ws.restart_timeout = INT64_MAX;
	ws.state_dir.p = "/var/lib/mandrill";
	ws.state_dir.len = strlen(ws.state_dir.p);
	ws.domain.p = "example.com";
	ws.domain.len = strlen(ws.domain.p);
	ws.allow.p = "cattle-* db*";
	ws.allow.len = strlen(ws.allow.p);
	/* deny left NULL: sent as an empty string */

	proto_pack_welcome(&pk, &ws);
	decode_ok();
	ck_assert_int_eq(msg.type, P_WELCOME);
	ck_assert_uint_eq(msg.v, PROTO_VERSION);
	ck_assert_uint_eq(msg.ws.gen, 7);
	ck_assert_uint_eq(msg.ws.slot, 3);
	ck_assert_uint_eq(msg.ws.max_jobs, 64);
	ck_assert_uint_eq(msg.ws.log_level, 2);
	assert_pstr(msg.ws.synchronous, "normal", 6);
	assert_pstr(msg.ws.mode, "sim", 3);
	ck_assert_uint_eq(msg.ws.max_attempts, 5);
	ck_assert_int_eq(msg.ws.busy_timeout, 5000);
	ck_assert_int_eq(msg.ws.heartbeat, 1500);
	ck_assert_int_eq(msg.ws.sim_latency_min, 100);
	ck_assert_int_eq(msg.ws.sim_latency_max, 1000);
	ck_assert_double_eq(msg.ws.sim_failure_rate, 0.37);
	ck_assert_uint_eq(msg.ws.sim_seed, UINT64_MAX);
	ck_assert_int_eq(msg.ws.min_interval, -1);
	ck_assert_int_eq(msg.ws.restart_timeout, INT64_MAX);
	assert_pstr(msg.ws.state_dir, "/var/lib/mandrill", 17);
	assert_pstr(msg.ws.domain, "example.com", 11);
	assert_pstr(msg.ws.allow, "cattle-* db*", 12);
	assert_pstr(msg.ws.deny, "", 0);
}
END_TEST

/* A value for setting i that no other setting has. */
static void
fill_setting(struct worker_settings *ws, size_t i)
{
	const struct proto_setting *s = &proto_settings[i];
	char *dst = (char *)ws + s->off;

	switch (s->kind) {
	case F_U32:
		*(uint32_t *)dst = UINT32_MAX - (uint32_t)i;
		break;
	case F_U64:
		*(uint64_t *)dst = UINT64_MAX - i;
		break;
	case F_I64:
		*(int64_t *)dst = i % 2 ? INT64_MIN + (int64_t)i : -(int64_t)i - 1;
		break;
	case F_DBL:
		*(double *)dst = 0.125 + (double)i;
		break;
	case F_STR:
		*(struct pstr *)dst = (struct pstr){ s->name, strlen(s->name) };
		break;
	default:
		ck_abort_msg("setting %s has kind %d", s->name, (int)s->kind);
	}
}

static void
assert_setting(const struct worker_settings *got,
    const struct worker_settings *want, size_t i)
{
	const struct proto_setting *s = &proto_settings[i];
	const char *g = (const char *)got + s->off;
	const char *w = (const char *)want + s->off;
	const struct pstr *gs = (const void *)g, *ws = (const void *)w;

	switch (s->kind) {
	case F_U32:
		ck_assert_msg(*(const uint32_t *)g == *(const uint32_t *)w,
		    "%s differs", s->name);
		break;
	case F_U64:
		ck_assert_msg(*(const uint64_t *)g == *(const uint64_t *)w,
		    "%s differs", s->name);
		break;
	case F_I64:
		ck_assert_msg(*(const int64_t *)g == *(const int64_t *)w,
		    "%s differs", s->name);
		break;
	case F_DBL:
		ck_assert_msg(*(const double *)g == *(const double *)w,
		    "%s differs", s->name);
		break;
	default:
		ck_assert_msg(gs->len == ws->len &&
		    memcmp(gs->p, ws->p, ws->len) == 0, "%s: \"%.*s\", want "
		    "\"%.*s\"", s->name, (int)gs->len, gs->p, (int)ws->len, ws->p);
		break;
	}
}

/* Every row of the settings table, each with its own value, survives. */
START_TEST(test_welcome_every_setting)
{
	struct worker_settings ws;

	memset(&ws, 0, sizeof(ws));
	for (size_t i = 0; i < proto_nsettings; i++)
		fill_setting(&ws, i);
	proto_pack_welcome(&pk, &ws);
	decode_ok();
	ck_assert_int_eq(msg.type, P_WELCOME);
	ck_assert_uint_eq(msg.v, PROTO_VERSION);
	ck_assert_uint_eq(up.data.via.map.size, proto_nsettings + 2);
	for (size_t i = 0; i < proto_nsettings; i++)
		assert_setting(&msg.ws, &ws, i);
}
END_TEST

/* Each setting has a distinct key and a place of its own. */
START_TEST(test_settings_table)
{
	for (size_t i = 0; i < proto_nsettings; i++) {
		const struct proto_setting *s = &proto_settings[i];

		ck_assert_msg(strcmp(s->name, "v") != 0 &&
		    strcmp(s->name, "t") != 0, "%s is a frame key", s->name);
		ck_assert(s->off < sizeof(struct worker_settings));
		for (size_t j = 0; j < i; j++) {
			ck_assert_str_ne(s->name, proto_settings[j].name);
			ck_assert_uint_ne(s->off, proto_settings[j].off);
			ck_assert(s->conf == PROTO_NO_CONF ||
			    s->conf != proto_settings[j].conf);
		}
	}
}
END_TEST

/* The copy from the configuration, through the wire, into a worker. */
START_TEST(test_settings_from_conf)
{
	static const char text[] =
	    "[mandrill]\njobs_per_worker = 7\nlog_level = debug\n"
	    "synchronous = normal\nbusy_timeout = 2s\nstate_dir = /srv/m\n"
	    "user = nobody\nlog_file = /var/log/m.log\n"
	    "[metrics]\nslow_iteration = 75ms\n"
	    "[restart]\nmode = command\ncommand = /bin/true {host}\n"
	    "enabled = no\ndry_run = yes\nmax_concurrent = 3\n"
	    "max_per_minute = 9\nsim_latency = 2s..3s\n"
	    "sim_failure_rate = 0.25\nsim_seed = 18446744073709551615\n"
	    "domain = example.com\nallow = db* web*\ndeny = db0\n"
	    "max_attempts = 4\nmin_interval = 1h\nrestart_timeout = 90s\n";
	struct conf c;
	struct worker_settings ws;
	char cerr[CONF_ERR_MAX];

	conf_defaults(&c);
	ck_assert_msg(conf_load_string(&c, text, "test", cerr,
	    sizeof(cerr)) == 0, "%s", cerr);
	settings_from_conf(&ws, &c);
	ws.gen = 2;
	ws.slot = 1;
	ws.heartbeat = 500;
	proto_pack_welcome(&pk, &ws);
	decode_ok();
	ck_assert_uint_eq(msg.ws.max_jobs, 7);
	ck_assert_uint_eq(msg.ws.log_level, LOG_DEBUG);
	assert_pstr(msg.ws.synchronous, "normal", 6);
	assert_pstr(msg.ws.mode, "command", 7);
	ck_assert_int_eq(msg.ws.busy_timeout, 2000);
	assert_pstr(msg.ws.state_dir, "/srv/m", 6);
	assert_pstr(msg.ws.user, "nobody", 6);
	assert_pstr(msg.ws.log_file, "/var/log/m.log", 14);
	ck_assert_int_eq(msg.ws.slow_iteration, 75);
	assert_pstr(msg.ws.command, "/bin/true {host}", 16);
	ck_assert_uint_eq(msg.ws.enabled, 0);
	ck_assert_uint_eq(msg.ws.dry_run, 1);
	ck_assert_uint_eq(msg.ws.max_concurrent, 3);
	ck_assert_uint_eq(msg.ws.max_per_minute, 9);
	ck_assert_int_eq(msg.ws.sim_latency_min, 2000);
	ck_assert_int_eq(msg.ws.sim_latency_max, 3000);
	ck_assert_double_eq(msg.ws.sim_failure_rate, 0.25);
	ck_assert_uint_eq(msg.ws.sim_seed, UINT64_MAX);
	assert_pstr(msg.ws.domain, "example.com", 11);
	assert_pstr(msg.ws.allow, "db* web*", 8);
	assert_pstr(msg.ws.deny, "db0", 3);
	ck_assert_uint_eq(msg.ws.max_attempts, 4);
	ck_assert_int_eq(msg.ws.min_interval, 3600000);
	ck_assert_int_eq(msg.ws.restart_timeout, 90000);
	ck_assert_uint_eq(msg.ws.gen, 2);
	ck_assert_uint_eq(msg.ws.slot, 1);
	ck_assert_int_eq(msg.ws.heartbeat, 500);
}
END_TEST

/* The first and last choice of an enumerated key travel by name. */
START_TEST(test_settings_enum_names)
{
	struct conf c;
	struct worker_settings ws;
	char cerr[CONF_ERR_MAX];

	conf_defaults(&c);
	settings_from_conf(&ws, &c);
	assert_pstr(ws.mode, "sim", 3);
	assert_pstr(ws.synchronous, "full", 4);
	ck_assert_int_eq(conf_set(&c, "mandrill", "synchronous", "off", cerr,
	    sizeof(cerr)), 0);
	settings_from_conf(&ws, &c);
	assert_pstr(ws.synchronous, "off", 3);
}
END_TEST

START_TEST(test_job_roundtrip)
{
	static const char data[] = "{\"a\":\0\"b\"}\0\xff\x00tail";
	size_t dlen = sizeof(data) - 1;

	pack_job(&pk, UINT64_MAX, "msg-1", 5, data, dlen, 3,
	    INT64_C(1764324236842), NULL);
	decode_ok();
	ck_assert_int_eq(msg.type, P_JOB);
	ck_assert_uint_eq(msg.id, UINT64_MAX);
	assert_pstr(msg.msg_id, "msg-1", 5);
	assert_pstr(msg.data, data, dlen);
	ck_assert_uint_eq(msg.size, dlen);
	ck_assert_uint_eq(msg.attempt, 3);
	ck_assert_int_eq(msg.deadline, INT64_C(1764324236842));
	ck_assert_uint_eq(msg.bury.len, 0);
}
END_TEST

START_TEST(test_job_bury)
{
	pack_job(&pk, 9, "17", 2, "{}", 2, 5, 1, "max_deliver reached");
	decode_ok();
	ck_assert_int_eq(msg.type, P_JOB);
	assert_pstr(msg.bury, "max_deliver reached", 19);
	ck_assert_uint_eq(msg.attempt, 5);
}
END_TEST

START_TEST(test_job_empty_data)
{
	pack_job(&pk, 1, "m", 1, "", 0, 1, 0, NULL);
	decode_ok();
	ck_assert_int_eq(msg.type, P_JOB);
	ck_assert_uint_eq(msg.data.len, 0);
	ck_assert_uint_eq(msg.size, 0);
}
END_TEST

START_TEST(test_job_data_truncated)
{
	size_t n = PROTO_DATA_MAX + 7232;
	char *data = malloc(n);

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 31 + 7);
	pack_job(&pk, 42, "big", 3, data, n, 1, 1000, NULL);
	decode_ok();
	ck_assert_uint_eq(msg.data.len, PROTO_DATA_MAX);
	ck_assert_uint_eq(msg.size, n);
	ck_assert(memcmp(msg.data.p, data, PROTO_DATA_MAX) == 0);
	free(data);
}
END_TEST

START_TEST(test_job_data_at_limit)
{
	char *data = calloc(1, PROTO_DATA_MAX);

	ck_assert_ptr_nonnull(data);
	pack_job(&pk, 1, "m", 1, data, PROTO_DATA_MAX, 1, 1, NULL);
	decode_ok();
	ck_assert_uint_eq(msg.data.len, PROTO_DATA_MAX);
	ck_assert_uint_eq(msg.size, PROTO_DATA_MAX);
	free(data);
}
END_TEST

START_TEST(test_job_long_msg_id_bounded)
{
	char id[300];

	memset(id, 'x', sizeof(id));
	pack_job(&pk, 1, id, sizeof(id), "{}", 2, 1, 1, NULL);
	decode_ok();
	ck_assert_uint_eq(msg.msg_id.len, 256);
	ck_assert(memcmp(msg.msg_id.p, id, 256) == 0);
}
END_TEST

START_TEST(test_cancel_roundtrip)
{
	proto_pack_cancel(&pk, UINT64_C(1234567890123));
	decode_ok();
	ck_assert_int_eq(msg.type, P_CANCEL);
	ck_assert_uint_eq(msg.id, UINT64_C(1234567890123));
}
END_TEST

START_TEST(test_drain_roundtrip)
{
	proto_pack_drain(&pk);
	decode_ok();
	ck_assert_int_eq(msg.type, P_DRAIN);
}
END_TEST

START_TEST(test_heartbeat_roundtrip)
{
	proto_pack_heartbeat(&pk);
	decode_ok();
	ck_assert_int_eq(msg.type, P_HEARTBEAT);
}
END_TEST

START_TEST(test_ready_roundtrip)
{
	proto_pack_ready(&pk, UINT32_MAX, 64, 0, 0);
	decode_ok();
	ck_assert_int_eq(msg.type, P_READY);
	ck_assert_uint_eq(msg.v, PROTO_VERSION);
	ck_assert_uint_eq(msg.pid, UINT32_MAX);
	ck_assert_uint_eq(msg.max_jobs, 64);
}
END_TEST

START_TEST(test_started_roundtrip)
{
	proto_pack_started(&pk, 77, 4242);
	decode_ok();
	ck_assert_int_eq(msg.type, P_STARTED);
	ck_assert_uint_eq(msg.id, 77);
	ck_assert_uint_eq(msg.pgid, 4242);
}
END_TEST

/* Fleet mode's question and its answers, each outcome and hold. */
START_TEST(test_grant_roundtrip)
{
	struct proto_grant g = { 41, "b1:db7", "db7.example", "rack-3" };

	proto_pack_grant(&pk, &g);
	decode_ok();
	ck_assert_int_eq(msg.type, P_GRANT);
	ck_assert_uint_eq(msg.id, 41);
	assert_pstr(msg.msg_id, "b1:db7", 6);
	assert_pstr(msg.host, "db7.example", 11);
	assert_pstr(msg.group, "rack-3", 6);
}
END_TEST

START_TEST(test_granted_roundtrip)
{
	struct proto_granted g = { 42, (enum outcome)(_i % OUT_COUNT),
	    (enum hold)(_i % HOLD_COUNT), 1000, "being restarted by instance "
	    "i2 (fleet)", INT64_C(1796410516708) };

	proto_pack_granted(&pk, &g);
	decode_ok();
	ck_assert_int_eq(msg.type, P_GRANTED);
	ck_assert_uint_eq(msg.id, 42);
	ck_assert_int_eq(msg.outcome, _i % OUT_COUNT);
	ck_assert_int_eq(msg.hold, _i % HOLD_COUNT);
	ck_assert_int_eq(msg.retry, 1000);
	ck_assert_int_eq(msg.until, INT64_C(1796410516708));
	assert_pstr(msg.error, g.error, strlen(g.error));
}
END_TEST

/* A granted frame without its end is refused: a worker must not guess. */
START_TEST(test_bad_granted_without_until)
{
	msgpack_pack_map(&pk, 6);
	pk_kv_str("t", "granted");
	pk_kv_u64("id", 1);
	pk_kv_str("outcome", "restarted");
	pk_kv_str("hold", "");
	pk_kv_i64("retry", 0);
	pk_kv_str("error", "");
	decode_fails("missing key");
	ck_assert_ptr_nonnull(strstr(err, "\"until\""));
}
END_TEST

START_TEST(test_bad_grant_unknown_hold)
{
	msgpack_pack_map(&pk, 7);
	pk_kv_str("t", "granted");
	pk_kv_u64("id", 1);
	pk_kv_str("outcome", "held");
	pk_kv_str("hold", "later");
	pk_kv_i64("retry", 0);
	pk_kv_str("error", "");
	pk_kv_i64("until", 0);
	decode_fails("\"hold\"");
}
END_TEST

/* Looped over every outcome (tcase_add_loop_test). */
START_TEST(test_done_roundtrip)
{
	enum outcome o = (enum outcome)_i;

	pack_done(&pk, 99 + _i, o, "exit status 1", 4, 1234567 + _i);
	decode_ok();
	ck_assert_int_eq(msg.type, P_DONE);
	ck_assert_uint_eq(msg.id, 99 + _i);
	ck_assert_int_eq(msg.outcome, o);
	assert_pstr(msg.error, "exit status 1", 13);
	ck_assert_uint_eq(msg.attempt, 4);
	ck_assert_uint_eq(msg.duration, 1234567 + _i);
}
END_TEST

/* Every hold reason, the host and the retry hint survive the wire. */
START_TEST(test_done_hold_roundtrip)
{
	struct proto_done d = { 5, OUT_HELD, "busy", 0, 0, "cattle-1.example",
	    (enum hold)_i, 1500 };

	proto_pack_done(&pk, &d);
	decode_ok();
	ck_assert_int_eq(msg.outcome, OUT_HELD);
	ck_assert_int_eq(msg.hold, _i);
	ck_assert_int_eq(msg.retry, 1500);
	assert_pstr(msg.host, "cattle-1.example", 16);
}
END_TEST

START_TEST(test_job_crashes_roundtrip)
{
	struct proto_job j = { 8, "m", 1, "{}", 2, 1, 10, NULL, 3,
	    1796000000123LL };

	proto_pack_job(&pk, &j);
	decode_ok();
	ck_assert_uint_eq(msg.crashes, 3);
	ck_assert_int_eq(msg.lost_at, 1796000000123LL);
}
END_TEST

START_TEST(test_state_roundtrip)
{
	proto_pack_state(&pk, 2, "disk I/O error", 1234567);
	decode_ok();
	ck_assert_int_eq(msg.type, P_STATE);
	ck_assert_uint_eq(msg.unsaved, 2);
	assert_pstr(msg.store, "disk I/O error", 14);
	ck_assert_uint_eq(msg.wal, 1234567);
}
END_TEST

START_TEST(test_hold_names)
{
	enum hold h;

	for (int i = 0; i < HOLD_COUNT; i++) {
		const char *n = hold_name((enum hold)i);

		ck_assert_int_eq(hold_parse(n, strlen(n), &h), 0);
		ck_assert_int_eq(h, i);
	}
	ck_assert_int_eq(hold_parse("later", 5, &h), -1);
	ck_assert_str_eq(hold_name(HOLD_RATE), "rate");
	ck_assert_str_eq(hold_name(HOLD_FLEET), "fleet");
}
END_TEST

START_TEST(test_done_null_error)
{
	pack_done(&pk, 1, OUT_RESTARTED, NULL, 1, 0);
	decode_ok();
	ck_assert_int_eq(msg.outcome, OUT_RESTARTED);
	ck_assert_uint_eq(msg.error.len, 0);
}
END_TEST

START_TEST(test_done_long_error_bounded)
{
	char e[PROTO_ERR_MAX + 100];

	memset(e, 'e', sizeof(e) - 1);
	e[sizeof(e) - 1] = '\0';
	pack_done(&pk, 1, OUT_FAILED, e, 2, 0);
	decode_ok();
	ck_assert_uint_eq(msg.error.len, PROTO_ERR_MAX);
	ck_assert(memcmp(msg.error.p, e, PROTO_ERR_MAX) == 0);
}
END_TEST

START_TEST(test_several_frames_one_buffer)
{
	size_t off = 0;

	proto_pack_cancel(&pk, 5);
	proto_pack_drain(&pk);
	ck_assert_int_eq(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(proto_decode(&up.data, &msg, err, sizeof(err)), 0);
	ck_assert_int_eq(msg.type, P_CANCEL);
	ck_assert_uint_eq(msg.id, 5);
	ck_assert_int_eq(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(proto_decode(&up.data, &msg, err, sizeof(err)), 0);
	ck_assert_int_eq(msg.type, P_DRAIN);
	ck_assert_uint_eq(off, sb.size);
}
END_TEST

/* ---------------------------------------------------------------------
 * Malformed frames.
 */

START_TEST(test_bad_not_map)
{
	msgpack_pack_array(&pk, 2);
	pk_str("t");
	pk_str("drain");
	decode_fails("not a map");
}
END_TEST

START_TEST(test_bad_not_map_scalar)
{
	msgpack_pack_uint64(&pk, 7);
	decode_fails("not a map");
}
END_TEST

START_TEST(test_bad_no_type)
{
	msgpack_pack_map(&pk, 1);
	pk_kv_u64("id", 1);
	decode_fails("no \"t\"");
}
END_TEST

START_TEST(test_bad_empty_map)
{
	msgpack_pack_map(&pk, 0);
	decode_fails("no \"t\"");
}
END_TEST

START_TEST(test_bad_type_not_string)
{
	msgpack_pack_map(&pk, 1);
	pk_kv_u64("t", 3);
	decode_fails("\"t\" is not a string");
}
END_TEST

START_TEST(test_bad_unknown_type)
{
	msgpack_pack_map(&pk, 1);
	pk_kv_str("t", "reboot");
	decode_fails("unknown frame type");
	ck_assert_ptr_nonnull(strstr(err, "reboot"));
}
END_TEST

START_TEST(test_bad_type_prefix)
{
	/* "drai" is not "drain": names compare by length too */
	msgpack_pack_map(&pk, 1);
	pk_kv_str("t", "drai");
	decode_fails("unknown frame type");
}
END_TEST

START_TEST(test_bad_nonstring_key)
{
	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "drain");
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_uint64(&pk, 2);
	decode_fails("key that is not a string");
}
END_TEST

START_TEST(test_bad_unknown_key)
{
	msgpack_pack_map(&pk, 3);
	pk_kv_str("t", "cancel");
	pk_kv_u64("id", 1);
	pk_kv_u64("force", 1);
	decode_fails("unknown key");
	ck_assert_ptr_nonnull(strstr(err, "\"force\""));
	ck_assert_ptr_nonnull(strstr(err, "cancel"));
}
END_TEST

START_TEST(test_bad_key_on_empty_type)
{
	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "drain");
	pk_kv_u64("now", 1);
	decode_fails("unknown key");
	ck_assert_ptr_nonnull(strstr(err, "\"now\""));
}
END_TEST

START_TEST(test_bad_repeated_key)
{
	msgpack_pack_map(&pk, 3);
	pk_kv_str("t", "cancel");
	pk_kv_u64("id", 1);
	pk_kv_u64("id", 2);
	decode_fails("repeated");
	ck_assert_ptr_nonnull(strstr(err, "\"id\""));
}
END_TEST

START_TEST(test_bad_missing_key)
{
	msgpack_pack_map(&pk, 6);
	pk_kv_str("t", "job");
	pk_kv_u64("id", 1);
	pk_kv_str("msg_id", "m");
	pk_str("data");
	pk_bin("{}", 2);
	pk_kv_u64("size", 2);
	pk_kv_i64("deadline", 1000);
	decode_fails("missing key");
	ck_assert_ptr_nonnull(strstr(err, "\"attempt\""));
}
END_TEST

START_TEST(test_bad_missing_only_key)
{
	msgpack_pack_map(&pk, 1);
	pk_kv_str("t", "cancel");
	decode_fails("missing key \"id\"");
}
END_TEST

START_TEST(test_bad_string_for_integer)
{
	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "cancel");
	pk_kv_str("id", "1");
	decode_fails("wrong type");
	ck_assert_ptr_nonnull(strstr(err, "\"id\""));
	ck_assert_ptr_nonnull(strstr(err, "unsigned integer"));
}
END_TEST

START_TEST(test_bad_negative_for_unsigned)
{
	msgpack_pack_map(&pk, 4);
	pk_kv_str("t", "ready");
	pk_kv_u64("v", 1);
	pk_kv_i64("pid", -1);
	pk_kv_u64("max_jobs", 4);
	decode_fails("wrong type");
	ck_assert_ptr_nonnull(strstr(err, "\"pid\""));
}
END_TEST

START_TEST(test_bad_negative_for_u64)
{
	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "cancel");
	pk_kv_i64("id", -5);
	decode_fails("wrong type");
}
END_TEST

START_TEST(test_bad_u32_overflow)
{
	msgpack_pack_map(&pk, 4);
	pk_kv_str("t", "ready");
	pk_kv_u64("v", 1);
	pk_kv_u64("pid", UINT64_C(1) + UINT32_MAX);
	pk_kv_u64("max_jobs", 4);
	decode_fails("wrong type");
	ck_assert_ptr_nonnull(strstr(err, "\"pid\""));
	ck_assert_ptr_nonnull(strstr(err, "32-bit"));
}
END_TEST

START_TEST(test_bad_i64_overflow)
{
	msgpack_pack_map(&pk, 7);
	pk_kv_str("t", "job");
	pk_kv_u64("id", 1);
	pk_kv_str("msg_id", "m");
	pk_str("data");
	pk_bin("{}", 2);
	pk_kv_u64("size", 2);
	pk_kv_u64("attempt", 1);
	pk_kv_u64("deadline", UINT64_C(1) + INT64_MAX);
	decode_fails("wrong type");
	ck_assert_ptr_nonnull(strstr(err, "\"deadline\""));
}
END_TEST

START_TEST(test_bad_str_for_bin)
{
	msgpack_pack_map(&pk, 7);
	pk_kv_str("t", "job");
	pk_kv_u64("id", 1);
	pk_kv_str("msg_id", "m");
	pk_kv_str("data", "{}");
	pk_kv_u64("size", 2);
	pk_kv_u64("attempt", 1);
	pk_kv_i64("deadline", 1);
	decode_fails("wrong type");
	ck_assert_ptr_nonnull(strstr(err, "\"data\""));
	ck_assert_ptr_nonnull(strstr(err, "binary"));
}
END_TEST

START_TEST(test_bad_bin_for_str)
{
	msgpack_pack_map(&pk, 7);
	pk_kv_str("t", "job");
	pk_kv_u64("id", 1);
	pk_str("msg_id");
	pk_bin("m", 1);
	pk_str("data");
	pk_bin("{}", 2);
	pk_kv_u64("size", 2);
	pk_kv_u64("attempt", 1);
	pk_kv_i64("deadline", 1);
	decode_fails("wrong type");
	ck_assert_ptr_nonnull(strstr(err, "\"msg_id\""));
}
END_TEST

START_TEST(test_bad_bin_too_long)
{
	char *data = calloc(1, PROTO_DATA_MAX + 1);

	ck_assert_ptr_nonnull(data);
	msgpack_pack_map(&pk, 7);
	pk_kv_str("t", "job");
	pk_kv_u64("id", 1);
	pk_kv_str("msg_id", "m");
	pk_str("data");
	pk_bin(data, PROTO_DATA_MAX + 1);
	pk_kv_u64("size", PROTO_DATA_MAX + 1);
	pk_kv_u64("attempt", 1);
	pk_kv_i64("deadline", 1);
	decode_fails("too long");
	free(data);
}
END_TEST

START_TEST(test_bad_int_for_float)
{
	struct worker_settings ws;
	size_t off = 0;
	msgpack_object *o;

	/* Pack a valid welcome, then turn its float into an integer. */
	memset(&ws, 0, sizeof(ws));
	proto_pack_welcome(&pk, &ws);
	ck_assert_int_eq(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	o = &up.data;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.via.str.size == 16 &&
		    memcmp(kv->key.via.str.ptr, "sim_failure_rate", 16) == 0) {
			kv->val.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
			kv->val.via.u64 = 0;
		}
	}
	ck_assert_int_eq(proto_decode(o, &msg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "\"sim_failure_rate\""));
	ck_assert_ptr_nonnull(strstr(err, "float"));
}
END_TEST

START_TEST(test_bad_unknown_outcome)
{
	msgpack_pack_map(&pk, 5);
	pk_kv_str("t", "done");
	pk_kv_u64("id", 1);
	pk_kv_str("outcome", "exploded");
	pk_kv_str("error", "");
	pk_kv_u64("attempt", 1);
	decode_fails("unknown outcome");
}
END_TEST

START_TEST(test_bad_outcome_not_string)
{
	msgpack_pack_map(&pk, 5);
	pk_kv_str("t", "done");
	pk_kv_u64("id", 1);
	pk_kv_u64("outcome", OUT_RESTARTED);
	pk_kv_str("error", "");
	pk_kv_u64("attempt", 1);
	decode_fails("wrong type");
	ck_assert_ptr_nonnull(strstr(err, "\"outcome\""));
}
END_TEST

START_TEST(test_bad_nul_in_string)
{
	msgpack_pack_map(&pk, 5);
	pk_kv_str("t", "done");
	pk_kv_u64("id", 1);
	pk_kv_str("outcome", "failed");
	pk_str("error");
	pk_strn("exit\0status", 11);
	pk_kv_u64("attempt", 1);
	decode_fails("NUL");
	ck_assert_ptr_nonnull(strstr(err, "\"error\""));
}
END_TEST

START_TEST(test_bad_two_types)
{
	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "drain");
	pk_kv_str("t", "drain");
	decode_fails("two \"t\"");
}
END_TEST

START_TEST(test_bad_two_different_types)
{
	msgpack_pack_map(&pk, 3);
	pk_kv_str("t", "cancel");
	pk_kv_u64("id", 1);
	pk_kv_str("t", "drain");
	decode_fails("two \"t\"");
}
END_TEST

/* ---------------------------------------------------------------------
 * Outcome names.
 */

START_TEST(test_outcome_names_roundtrip)
{
	const char *seen[OUT_COUNT];

	for (int i = 0; i < OUT_COUNT; i++) {
		const char *n = outcome_name((enum outcome)i);
		enum outcome o = OUT_COUNT;

		ck_assert_ptr_nonnull(n);
		ck_assert_str_ne(n, "?");
		ck_assert_int_eq(outcome_parse(n, strlen(n), &o), 0);
		ck_assert_int_eq(o, i);
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(seen[j], n);
		seen[i] = n;
	}
	ck_assert_str_eq(outcome_name(OUT_RESTARTED), "restarted");
	ck_assert_str_eq(outcome_name(OUT_HELD), "held");
	ck_assert_str_eq(outcome_name(OUT_INVALID), "invalid");
}
END_TEST

START_TEST(test_outcome_parse_rejects)
{
	enum outcome o = OUT_DEAD;

	ck_assert_int_eq(outcome_parse("exploded", 8, &o), -1);
	ck_assert_int_eq(outcome_parse("", 0, &o), -1);
	ck_assert_int_eq(outcome_parse("restart", 7, &o), -1);
	ck_assert_int_eq(outcome_parse("restarted!", 10, &o), -1);
	ck_assert_int_eq(outcome_parse("RESTARTED", 9, &o), -1);
	ck_assert_int_eq(outcome_parse("dead\0x", 6, &o), -1);
	ck_assert_int_eq(o, OUT_DEAD);		/* untouched on failure */
	ck_assert_str_eq(outcome_name(OUT_COUNT), "?");
}
END_TEST

START_TEST(test_outcome_parse_uses_length)
{
	enum outcome o = OUT_COUNT;

	/* Not NUL-terminated: msgpack strings point into a buffer. */
	ck_assert_int_eq(outcome_parse("deadbeef", 4, &o), 0);
	ck_assert_int_eq(o, OUT_DEAD);
}
END_TEST

/* ---------------------------------------------------------------------
 * chan: framing on a real socketpair and libev loop.
 */

#define REC_MAX	16

struct rec {
	int		 nframes;
	enum proto_type	 type[REC_MAX];
	uint64_t	 id[REC_MAX];
	char		 msg_id[REC_MAX][64];
	size_t		 data_len[REC_MAX];
	int		 ncloses;
	char		 why[256];
	int		 free_on_frame;
	int		 free_on_close;
};

static struct ev_loop *loop;
static int sv[2];
static struct chan *ch;
static struct rec rec;

static int
on_frame(struct chan *c, const struct proto_msg *m, void *arg)
{
	struct rec *r = arg;
	int i = r->nframes++;

	if (i < REC_MAX) {
		r->type[i] = m->type;
		r->id[i] = m->id;
		snprintf(r->msg_id[i], sizeof(r->msg_id[i]), "%.*s",
		    (int)m->msg_id.len, m->msg_id.p ? m->msg_id.p : "");
		r->data_len[i] = m->data.len;
	}
	if (r->free_on_frame) {
		chan_free(c);
		ch = NULL;
		return -1;
	}
	return 0;
}

static void
on_close(struct chan *c, const char *why, void *arg)
{
	struct rec *r = arg;

	r->ncloses++;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "(null)");
	if (r->free_on_close) {
		chan_free(c);
		ch = NULL;
	}
}

static void
chan_setup(void)
{
	memset(&rec, 0, sizeof(rec));
	loop = ev_loop_new(0);
	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	ch = chan_new(loop, sv[0], on_frame, on_close, &rec);
	ck_assert_ptr_nonnull(ch);
}

static void
chan_teardown(void)
{
	if (ch != NULL)
		chan_free(ch);		/* closes sv[0] */
	ch = NULL;
	if (sv[1] >= 0)
		close(sv[1]);
	ev_loop_destroy(loop);
}

/* Run the loop without blocking until cond holds or a bound is reached. */
static void
pump(const int *counter, int want)
{
	for (int i = 0; i < 200 && *counter < want; i++)
		ev_run(loop, EVRUN_NOWAIT);
	/* and a few more turns, so that extra callbacks would show */
	for (int i = 0; i < 5; i++)
		ev_run(loop, EVRUN_NOWAIT);
}

static void
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		ck_assert_msg(n > 0, "write to peer failed");
		p += n;
		len -= (size_t)n;
	}
}

static void
write_sb(void)
{
	write_all(sv[1], sb.data, sb.size);
}

START_TEST(test_chan_several_frames_one_write)
{
	proto_pack_cancel(&pk, 1);
	pack_job(&pk, 2, "m-2", 3, "{}", 2, 1, 10, NULL);
	proto_pack_drain(&pk);
	proto_pack_cancel(&pk, 4);
	write_sb();
	pump(&rec.nframes, 4);
	ck_assert_int_eq(rec.nframes, 4);
	ck_assert_int_eq(rec.ncloses, 0);
	ck_assert_int_eq(rec.type[0], P_CANCEL);
	ck_assert_uint_eq(rec.id[0], 1);
	ck_assert_int_eq(rec.type[1], P_JOB);
	ck_assert_uint_eq(rec.id[1], 2);
	ck_assert_str_eq(rec.msg_id[1], "m-2");
	ck_assert_uint_eq(rec.data_len[1], 2);
	ck_assert_int_eq(rec.type[2], P_DRAIN);
	ck_assert_int_eq(rec.type[3], P_CANCEL);
	ck_assert_uint_eq(rec.id[3], 4);
}
END_TEST

START_TEST(test_chan_split_frame)
{
	size_t half;

	pack_job(&pk, 77, "split-me", 8, "{\"msg_id\":\"x\"}", 14, 2, 5, NULL);
	half = sb.size / 2;
	write_all(sv[1], sb.data, half);
	pump(&rec.nframes, 1);
	ck_assert_int_eq(rec.nframes, 0);	/* nothing until complete */
	ck_assert_int_eq(rec.ncloses, 0);
	write_all(sv[1], sb.data + half, sb.size - half);
	pump(&rec.nframes, 1);
	ck_assert_int_eq(rec.nframes, 1);
	ck_assert_int_eq(rec.ncloses, 0);
	ck_assert_int_eq(rec.type[0], P_JOB);
	ck_assert_uint_eq(rec.id[0], 77);
	ck_assert_str_eq(rec.msg_id[0], "split-me");
	ck_assert_uint_eq(rec.data_len[0], 14);
}
END_TEST

START_TEST(test_chan_byte_by_byte)
{
	proto_pack_cancel(&pk, 300);
	proto_pack_heartbeat(&pk);
	for (size_t i = 0; i < sb.size; i++) {
		write_all(sv[1], sb.data + i, 1);
		ev_run(loop, EVRUN_NOWAIT);
	}
	pump(&rec.nframes, 2);
	ck_assert_int_eq(rec.nframes, 2);
	ck_assert_int_eq(rec.type[0], P_CANCEL);
	ck_assert_uint_eq(rec.id[0], 300);
	ck_assert_int_eq(rec.type[1], P_HEARTBEAT);
	ck_assert_int_eq(rec.ncloses, 0);
}
END_TEST

START_TEST(test_chan_garbage)
{
	static const unsigned char junk[] = { 0xc1, 0xc1, 0x00, 0xc1 };

	proto_pack_cancel(&pk, 1);		/* a good frame first */
	write_sb();
	write_all(sv[1], junk, sizeof(junk));
	pump(&rec.ncloses, 1);
	ck_assert_int_eq(rec.nframes, 1);
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_str_ne(rec.why, "");
	ck_assert_ptr_nonnull(strstr(rec.why, "not a map"));
	/* Nothing more is delivered once closed. */
	msgpack_sbuffer_clear(&sb);
	proto_pack_drain(&pk);
	write_sb();
	write_all(sv[1], junk, sizeof(junk));
	pump(&rec.ncloses, 2);
	ck_assert_int_eq(rec.nframes, 1);
	ck_assert_int_eq(rec.ncloses, 1);
}
END_TEST

START_TEST(test_chan_bad_frame_closes_with_reason)
{
	msgpack_pack_map(&pk, 1);
	pk_kv_str("t", "reboot");
	write_sb();
	pump(&rec.ncloses, 1);
	ck_assert_int_eq(rec.nframes, 0);
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_ptr_nonnull(strstr(rec.why, "unknown frame type"));
}
END_TEST

START_TEST(test_chan_oversize_incomplete_bin)
{
	char chunk[8192];
	size_t sent = 0;

	/* A map whose binary announces 1 MiB; send 80 KiB of it. */
	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "job");
	pk_str("data");
	msgpack_pack_bin(&pk, 1024 * 1024);
	write_sb();
	memset(chunk, 'x', sizeof(chunk));
	while (sent < 80 * 1024 && rec.ncloses == 0) {
		write_all(sv[1], chunk, sizeof(chunk));
		sent += sizeof(chunk);
		pump(&rec.ncloses, 1);
	}
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_int_eq(rec.nframes, 0);
	ck_assert_msg(strstr(rec.why, "65536") != NULL,
	    "reason \"%s\" does not name the size", rec.why);
}
END_TEST

/*
 * Regression (fixed): chan.c deliver() measured an incomplete frame as
 * msgpack_unpacker_message_size() - msgpack_unpacker_parsed_size(), which
 * is only the bytes the parser has not consumed yet.  msgpack-c consumes
 * small elements (here, nils in an array) as they arrive, so that
 * difference stays near 0 and an endless incomplete frame is buffered
 * without limit.  The frame's size so far is message_size() itself.
 */
START_TEST(test_chan_oversize_incomplete_array)
{
	char chunk[8192];
	size_t sent = 0;

	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "job");
	pk_str("data");
	msgpack_pack_array(&pk, 1000000);
	write_sb();
	memset(chunk, 0xc0, sizeof(chunk));	/* nil, nil, nil, ... */
	while (sent < 160 * 1024 && rec.ncloses == 0) {
		write_all(sv[1], chunk, sizeof(chunk));
		sent += sizeof(chunk);
		pump(&rec.ncloses, 1);
	}
	ck_assert_msg(rec.ncloses == 1, "%zu bytes of one frame buffered "
	    "without on_close", sent);
	ck_assert_int_eq(rec.nframes, 0);
	/* Refused at the array header, before any element is buffered. */
	ck_assert_msg(strstr(rec.why, "nested") != NULL,
	    "reason \"%s\" does not name the nested array", rec.why);
	ck_assert_uint_le(sent, sizeof(chunk));
}
END_TEST

/* A header declaring 4 billion keys is refused without allocating them. */
START_TEST(test_chan_map_count_bomb)
{
	static const unsigned char bomb[] = { 0xdf, 0xff, 0xff, 0xff, 0xff,
	    0xa1, 't' };

	write_all(sv[1], bomb, sizeof(bomb));
	pump(&rec.ncloses, 1);
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_msg(strstr(rec.why, "keys, more than 64") != NULL,
	    "reason \"%s\"", rec.why);
}
END_TEST

START_TEST(test_chan_oversize_complete_frame)
{
	char *big = calloc(1, 70000);

	/* A complete but oversize frame, arriving in one write. */
	ck_assert_ptr_nonnull(big);
	msgpack_pack_map(&pk, 2);
	pk_kv_str("t", "job");
	pk_str("data");
	pk_bin(big, 70000);
	write_sb();
	pump(&rec.ncloses, 1);
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_int_eq(rec.nframes, 0);
	ck_assert_msg(strstr(rec.why, "65536") != NULL,
	    "reason \"%s\" does not name the size", rec.why);
	free(big);
}
END_TEST

START_TEST(test_chan_eof)
{
	proto_pack_heartbeat(&pk);
	write_sb();
	close(sv[1]);
	sv[1] = -1;
	pump(&rec.ncloses, 1);
	ck_assert_int_eq(rec.nframes, 1);
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_str_eq(rec.why, "end of file");
}
END_TEST

START_TEST(test_chan_free_in_on_close)
{
	rec.free_on_close = 1;
	close(sv[1]);
	sv[1] = -1;
	pump(&rec.ncloses, 1);
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_ptr_null(ch);
}
END_TEST

START_TEST(test_chan_free_in_on_close_from_decode)
{
	rec.free_on_close = 1;
	msgpack_pack_map(&pk, 0);		/* no "t": decode error */
	write_sb();
	pump(&rec.ncloses, 1);
	ck_assert_int_eq(rec.ncloses, 1);
	ck_assert_ptr_nonnull(strstr(rec.why, "no \"t\""));
	ck_assert_ptr_null(ch);
}
END_TEST

START_TEST(test_chan_free_in_on_frame)
{
	rec.free_on_frame = 1;
	proto_pack_cancel(&pk, 1);
	proto_pack_cancel(&pk, 2);
	write_sb();
	pump(&rec.nframes, 1);
	/* Freed after the first: the second is never delivered. */
	ck_assert_int_eq(rec.nframes, 1);
	ck_assert_uint_eq(rec.id[0], 1);
	ck_assert_int_eq(rec.ncloses, 0);
	ck_assert_ptr_null(ch);
}
END_TEST

/* Read everything the peer end has, up to cap bytes, with a bound. */
static size_t
peer_read(char *buf, size_t cap, size_t want)
{
	size_t got = 0;

	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	for (int i = 0; i < 1000 && got < want; i++) {
		ssize_t n = read(sv[1], buf + got, cap - got);

		if (n > 0)
			got += (size_t)n;
		else
			ev_run(loop, EVRUN_NOWAIT);
	}
	return got;
}

START_TEST(test_chan_flush_writes_frames)
{
	msgpack_packer *cpk = chan_packer(ch);
	char buf[4096];
	size_t got, off = 0;

	ck_assert_ptr_nonnull(cpk);
	ck_assert_uint_eq(chan_pending(ch), 0);
	proto_pack_ready(cpk, 4242, 64, 0, 0);
	pack_done(cpk, 9, OUT_SKIPPED, "recent", 2, 0);
	ck_assert_uint_gt(chan_pending(ch), 0);
	ck_assert_int_eq(chan_flush(ch), 0);
	ck_assert_uint_eq(chan_pending(ch), 0);

	got = peer_read(buf, sizeof(buf), 1);
	ck_assert_uint_gt(got, 0);
	ck_assert_int_eq(msgpack_unpack_next(&up, buf, got, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(proto_decode(&up.data, &msg, err, sizeof(err)), 0);
	ck_assert_int_eq(msg.type, P_READY);
	ck_assert_uint_eq(msg.pid, 4242);
	ck_assert_uint_eq(msg.max_jobs, 64);
	ck_assert_int_eq(msgpack_unpack_next(&up, buf, got, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(proto_decode(&up.data, &msg, err, sizeof(err)), 0);
	ck_assert_int_eq(msg.type, P_DONE);
	ck_assert_uint_eq(msg.id, 9);
	ck_assert_int_eq(msg.outcome, OUT_SKIPPED);
	assert_pstr(msg.error, "recent", 6);
	ck_assert_uint_eq(off, got);
}
END_TEST

START_TEST(test_chan_loop_flushes)
{
	char buf[4096];
	size_t got, off = 0;

	/* No explicit flush: one loop iteration sends what was queued. */
	proto_pack_cancel(chan_packer(ch), 11);
	proto_pack_drain(chan_packer(ch));
	ev_run(loop, EVRUN_NOWAIT);
	ck_assert_uint_eq(chan_pending(ch), 0);
	got = peer_read(buf, sizeof(buf), 1);
	ck_assert_int_eq(msgpack_unpack_next(&up, buf, got, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(proto_decode(&up.data, &msg, err, sizeof(err)), 0);
	ck_assert_int_eq(msg.type, P_CANCEL);
	ck_assert_uint_eq(msg.id, 11);
	ck_assert_int_eq(msgpack_unpack_next(&up, buf, got, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(proto_decode(&up.data, &msg, err, sizeof(err)), 0);
	ck_assert_int_eq(msg.type, P_DRAIN);
}
END_TEST

START_TEST(test_chan_large_output)
{
	/* More than the socket buffer holds: the rest leaves as the peer reads. */
	char *data = calloc(1, PROTO_DATA_MAX);
	char *buf;
	size_t want = 0, got, off = 0;
	int n = 0;

	ck_assert_ptr_nonnull(data);
	for (int i = 0; i < 40; i++)
		pack_job(chan_packer(ch), (uint64_t)i, "m", 1, data,
		    PROTO_DATA_MAX, 1, 1, NULL);
	want = chan_pending(ch);
	ck_assert_int_eq(chan_flush(ch), 0);
	buf = malloc(want);
	ck_assert_ptr_nonnull(buf);
	got = peer_read(buf, want, want);
	ck_assert_uint_eq(got, want);
	ck_assert_uint_eq(chan_pending(ch), 0);
	while (msgpack_unpack_next(&up, buf, got, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		ck_assert_int_eq(proto_decode(&up.data, &msg, err,
		    sizeof(err)), 0);
		ck_assert_uint_eq(msg.id, (uint64_t)n);
		n++;
	}
	ck_assert_int_eq(n, 40);
	free(buf);
	free(data);
}
END_TEST

/* ---------------------------------------------------------------------
 */

static Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, frame_setup, frame_teardown);
	tcase_add_test(tc, test_welcome_roundtrip);
	tcase_add_test(tc, test_welcome_every_setting);
	tcase_add_test(tc, test_settings_table);
	tcase_add_test(tc, test_settings_from_conf);
	tcase_add_test(tc, test_settings_enum_names);
	tcase_add_test(tc, test_job_roundtrip);
	tcase_add_test(tc, test_job_bury);
	tcase_add_test(tc, test_job_empty_data);
	tcase_add_test(tc, test_job_data_truncated);
	tcase_add_test(tc, test_job_data_at_limit);
	tcase_add_test(tc, test_job_long_msg_id_bounded);
	tcase_add_test(tc, test_cancel_roundtrip);
	tcase_add_test(tc, test_drain_roundtrip);
	tcase_add_test(tc, test_heartbeat_roundtrip);
	tcase_add_test(tc, test_ready_roundtrip);
	tcase_add_test(tc, test_started_roundtrip);
	tcase_add_test(tc, test_grant_roundtrip);
	tcase_add_loop_test(tc, test_granted_roundtrip, 0, OUT_COUNT * HOLD_COUNT);
	tcase_add_test(tc, test_bad_granted_without_until);
	tcase_add_test(tc, test_bad_grant_unknown_hold);
	tcase_add_loop_test(tc, test_done_roundtrip, 0, OUT_COUNT);
	tcase_add_loop_test(tc, test_done_hold_roundtrip, 0, HOLD_COUNT);
	tcase_add_test(tc, test_job_crashes_roundtrip);
	tcase_add_test(tc, test_state_roundtrip);
	tcase_add_test(tc, test_hold_names);
	tcase_add_test(tc, test_done_null_error);
	tcase_add_test(tc, test_done_long_error_bounded);
	tcase_add_test(tc, test_several_frames_one_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, frame_setup, frame_teardown);
	tcase_add_test(tc, test_bad_not_map);
	tcase_add_test(tc, test_bad_not_map_scalar);
	tcase_add_test(tc, test_bad_no_type);
	tcase_add_test(tc, test_bad_empty_map);
	tcase_add_test(tc, test_bad_type_not_string);
	tcase_add_test(tc, test_bad_unknown_type);
	tcase_add_test(tc, test_bad_type_prefix);
	tcase_add_test(tc, test_bad_nonstring_key);
	tcase_add_test(tc, test_bad_unknown_key);
	tcase_add_test(tc, test_bad_key_on_empty_type);
	tcase_add_test(tc, test_bad_repeated_key);
	tcase_add_test(tc, test_bad_missing_key);
	tcase_add_test(tc, test_bad_missing_only_key);
	tcase_add_test(tc, test_bad_string_for_integer);
	tcase_add_test(tc, test_bad_negative_for_unsigned);
	tcase_add_test(tc, test_bad_negative_for_u64);
	tcase_add_test(tc, test_bad_u32_overflow);
	tcase_add_test(tc, test_bad_i64_overflow);
	tcase_add_test(tc, test_bad_str_for_bin);
	tcase_add_test(tc, test_bad_bin_for_str);
	tcase_add_test(tc, test_bad_bin_too_long);
	tcase_add_test(tc, test_bad_int_for_float);
	tcase_add_test(tc, test_bad_unknown_outcome);
	tcase_add_test(tc, test_bad_outcome_not_string);
	tcase_add_test(tc, test_bad_nul_in_string);
	tcase_add_test(tc, test_bad_two_types);
	tcase_add_test(tc, test_bad_two_different_types);
	suite_add_tcase(s, tc);

	tc = tcase_create("outcome");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_outcome_names_roundtrip);
	tcase_add_test(tc, test_outcome_parse_rejects);
	tcase_add_test(tc, test_outcome_parse_uses_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("chan");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, frame_setup, frame_teardown);
	tcase_add_checked_fixture(tc, chan_setup, chan_teardown);
	tcase_add_test(tc, test_chan_several_frames_one_write);
	tcase_add_test(tc, test_chan_split_frame);
	tcase_add_test(tc, test_chan_byte_by_byte);
	tcase_add_test(tc, test_chan_garbage);
	tcase_add_test(tc, test_chan_bad_frame_closes_with_reason);
	tcase_add_test(tc, test_chan_oversize_incomplete_bin);
	tcase_add_test(tc, test_chan_map_count_bomb);
	tcase_add_test(tc, test_chan_oversize_incomplete_array);
	tcase_add_test(tc, test_chan_oversize_complete_frame);
	tcase_add_test(tc, test_chan_eof);
	tcase_add_test(tc, test_chan_free_in_on_close);
	tcase_add_test(tc, test_chan_free_in_on_close_from_decode);
	tcase_add_test(tc, test_chan_free_in_on_frame);
	tcase_add_test(tc, test_chan_flush_writes_frames);
	tcase_add_test(tc, test_chan_loop_flushes);
	tcase_add_test(tc, test_chan_large_output);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
