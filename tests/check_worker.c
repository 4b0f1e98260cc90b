/*
 * check_worker: the worker's job loop, driven by a fake supervisor.
 *
 * The worker runs on the default loop (it owns signal watchers) with
 * its socket on one end of a socketpair; the test writes frames to the
 * other end and reads the answers, pumping the loop with EVRUN_NOWAIT.
 * No fork, no mandrilld.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <ev.h>
#include <msgpack.h>

#include "clock.h"
#include "log.h"
#include "proto.h"
#include "store.h"
#include "worker.h"

struct fake {
	struct ev_loop	*loop;
	struct worker	 w;
	int		 fd;		/* the supervisor's end */
	char		 dir[64];
	char		 in[PROTO_FRAME_MAX];
	size_t		 in_len;
	msgpack_unpacked up;
};

static void
send_sbuf(struct fake *f, msgpack_sbuffer *sb)
{
	ck_assert_int_eq(write(f->fd, sb->data, sb->size), (ssize_t)sb->size);
	msgpack_sbuffer_clear(sb);
}

static void
fake_start(struct fake *f)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/check_worker.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	f->fd = sv[0];
	f->loop = ev_default_loop(EVFLAG_AUTO);
	msgpack_unpacked_init(&f->up);
	store_global_init();
	ck_assert_int_eq(worker_init(&f->w, f->loop, sv[1]), 0);
}

static void
fake_stop(struct fake *f, msgpack_sbuffer *sb)
{
	static const char *const files[] = { "mandrill.db", "mandrill.db-wal",
	    "mandrill.db-shm" };
	char path[128];

	worker_cleanup(&f->w);
	close(f->fd);
	msgpack_unpacked_destroy(&f->up);
	msgpack_sbuffer_destroy(sb);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	ck_assert_msg(rmdir(f->dir) == 0, "rmdir %s: %s", f->dir,
	    strerror(errno));
}

static struct pstr
ps(const char *s)
{
	return (struct pstr){ s, strlen(s) };
}

static int fleet_welcome;	/* the next welcome: coordination = nats */

/* A sim worker whose restarts take 5 s: long enough to be seen running. */
static void
send_welcome(struct fake *f, msgpack_packer *pk, msgpack_sbuffer *sb)
{
	struct worker_settings ws;

	memset(&ws, 0, sizeof(ws));
	ws.gen = 1;
	ws.max_jobs = 8;
	ws.log_level = LOG_WARNING;
	ws.synchronous = ps("off");
	ws.log_format = ps("text");
	ws.mode = ps("sim");
	ws.max_attempts = 5;
	ws.busy_timeout = 1000;
	ws.heartbeat = 10000;
	ws.sim_latency_min = ws.sim_latency_max = 5000;
	ws.restart_timeout = 60000;
	ws.state_dir = ps(f->dir);
	ws.allow = ps("cattle-*");
	ws.enabled = 1;
	ws.coordination = ps(fleet_welcome ? "nats" : "none");
	ws.fleet_lease = 3000;
	proto_pack_welcome(pk, &ws);
	send_sbuf(f, sb);
}

static void
send_job(struct fake *f, msgpack_packer *pk, msgpack_sbuffer *sb,
    uint64_t id, const char *msg_id)
{
	char data[128];
	int n = snprintf(data, sizeof(data), "{\"msg_id\": \"%s\", "
	    "\"instance_name\": \"cattle-%" PRIu64 "\"}", msg_id, id);

	struct proto_job j = { id, msg_id, strlen(msg_id), data, (size_t)n, 1,
	    clock_wall() + 60000, NULL, 0, 0 };

	proto_pack_job(pk, &j);
	send_sbuf(f, sb);
}

/* The next frame from the worker within max_ms; 0 if none came. */
static int
next_frame(struct fake *f, struct proto_msg *m, int64_t max_ms)
{
	int64_t end = clock_now() + max_ms;
	char err[256];
	size_t used;
	ssize_t r;
	int rc;

	for (;;) {
		rc = proto_next(f->in, f->in_len, &f->up, m, &used, err,
		    sizeof(err));
		ck_assert_msg(rc >= 0, "worker sent a bad frame: %s", err);
		if (rc == 1) {
			/* m points into up, not into in: shift freely. */
			memmove(f->in, f->in + used, f->in_len - used);
			f->in_len -= used;
			return 1;
		}
		if (clock_now() >= end)
			return 0;
		ev_run(f->loop, EVRUN_NOWAIT);
		r = read(f->fd, f->in + f->in_len, sizeof(f->in) - f->in_len);
		if (r > 0)
			f->in_len += (size_t)r;
		else if (r < 0 && errno != EAGAIN)
			ck_abort_msg("read: %s", strerror(errno));
		else
			usleep(1000);
	}
}

/*
 * SIGQUIT handled after a job frame was read but before that job's
 * commit (the same loop iteration): the job is refused, reported as not
 * started, and the worker exits, whatever order libev ran the two in.
 */
START_TEST(test_sigquit_refuses_read_job)
{
	struct fake f;
	struct proto_msg m;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fake_start(&f);
	send_welcome(&f, &pk, &sb);
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_READY);

	send_job(&f, &pk, &sb, 7, "quit-1");
	/* One iteration reads the job; its commit waits for the next. */
	for (int i = 0; i < 100 && f.w.njobs == 0; i++) {
		ev_run(f.loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_uint_eq(f.w.njobs, 1);
	ck_assert(TAILQ_EMPTY(&f.w.running));
	/* The signal callback runs now, after the frame's. */
	ev_invoke(f.loop, &f.w.sigquit, EV_SIGNAL);

	ck_assert_msg(next_frame(&f, &m, 2000), "no done frame: the job "
	    "was started after SIGQUIT");
	ck_assert_int_eq(m.type, P_DONE);
	ck_assert_uint_eq(m.id, 7);
	ck_assert_int_eq(m.outcome, OUT_HELD);
	ck_assert(m.error.len == strlen("worker is stopping") &&
	    memcmp(m.error.p, "worker is stopping", m.error.len) == 0);
	ck_assert(TAILQ_EMPTY(&f.w.running));
	ck_assert_uint_eq(f.w.njobs, 0);
	ck_assert_int_eq(f.w.quitting, 1);

	fake_stop(&f, &sb);
}
END_TEST

/* After SIGQUIT a newly read job is refused too. */
START_TEST(test_sigquit_refuses_later_job)
{
	struct fake f;
	struct proto_msg m;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fake_start(&f);
	send_welcome(&f, &pk, &sb);
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_READY);
	send_job(&f, &pk, &sb, 1, "run-1");
	/* The first job is committed and running before the signal. */
	for (int i = 0; i < 1000 && TAILQ_EMPTY(&f.w.running); i++) {
		ev_run(f.loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	ck_assert(!TAILQ_EMPTY(&f.w.running));
	ev_invoke(f.loop, &f.w.sigquit, EV_SIGNAL);
	send_job(&f, &pk, &sb, 2, "late-1");

	for (int seen = 0; seen < 2;) {
		ck_assert(next_frame(&f, &m, 2000));
		ck_assert_int_eq(m.type, P_DONE);
		if (m.id == 1)
			ck_assert_int_eq(m.outcome, OUT_FAILED);
		else {
			ck_assert_uint_eq(m.id, 2);
			ck_assert_int_eq(m.outcome, OUT_HELD);
		}
		seen++;
	}
	ck_assert(TAILQ_EMPTY(&f.w.running));
	fake_stop(&f, &sb);
}
END_TEST

static void
send_granted(struct fake *f, msgpack_packer *pk, msgpack_sbuffer *sb,
    uint64_t id, enum outcome o, enum hold h, int64_t until)
{
	struct proto_granted g = { id, o, h, 500, "by the fleet", until };

	proto_pack_granted(pk, &g);
	send_sbuf(f, sb);
}

/* The worker's restarts row count: nothing is recorded before a grant. */
static int
restarts_rows(struct fake *f)
{
	char cmd[256];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "sqlite3 %s/mandrill.db "
	    "'SELECT count(*) FROM restarts' 2>/dev/null", f->dir);
	if ((p = popen(cmd, "r")) != NULL) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void
fleet_start(struct fake *f, msgpack_packer *pk, msgpack_sbuffer *sb)
{
	struct proto_msg m;

	fleet_welcome = 1;
	fake_start(f);
	send_welcome(f, pk, sb);
	fleet_welcome = 0;
	ck_assert(next_frame(f, &m, 2000));
	ck_assert_int_eq(m.type, P_READY);
}

/*
 * Fleet mode: a job asks for a grant before anything is recorded; a
 * refusal is a hold with the fleet's reason, a skip is recorded as one,
 * and a grant that has already ended starts nothing.
 */
START_TEST(test_fleet_grant_first)
{
	struct fake f;
	struct proto_msg m;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fleet_start(&f, &pk, &sb);

	send_job(&f, &pk, &sb, 1, "g-1");
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_GRANT);
	ck_assert_uint_eq(m.id, 1);
	ck_assert(m.msg_id.len == 3 && memcmp(m.msg_id.p, "g-1", 3) == 0);
	ck_assert(m.host.len == 8 && memcmp(m.host.p, "cattle-1", 8) == 0);
	ck_assert(!next_frame(&f, &m, 200));	/* it waits for the answer */
	ck_assert_int_eq(restarts_rows(&f), 0);

	send_granted(&f, &pk, &sb, 1, OUT_HELD, HOLD_HOST, 0);
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_DONE);
	ck_assert_int_eq(m.outcome, OUT_HELD);
	ck_assert_int_eq(m.hold, HOLD_HOST);
	ck_assert_int_eq(m.retry, 500);

	send_job(&f, &pk, &sb, 2, "g-2");
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_GRANT);
	send_granted(&f, &pk, &sb, 2, OUT_SKIPPED, HOLD_NONE, 0);
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_DONE);
	ck_assert_int_eq(m.outcome, OUT_SKIPPED);

	/* Granted, but ended before it came: held, nothing recorded. */
	send_job(&f, &pk, &sb, 3, "g-3");
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_GRANT);
	send_granted(&f, &pk, &sb, 3, OUT_RESTARTED, HOLD_NONE,
	    clock_now() - 10);
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_DONE);
	ck_assert_int_eq(m.outcome, OUT_HELD);
	ck_assert_int_eq(m.hold, HOLD_FLEET);
	ck_assert_int_eq(restarts_rows(&f), 0);
	ck_assert_uint_eq(f.w.njobs, 0);
	fake_stop(&f, &sb);
}
END_TEST

/*
 * A granted restart whose grant is not renewed is killed a fifth of the
 * lease before the grant ends (fenced) and recorded as failed; one that
 * is renewed runs on.
 */
START_TEST(test_fleet_fence)
{
	struct fake f;
	struct proto_msg m;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int64_t t0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fleet_start(&f, &pk, &sb);

	send_job(&f, &pk, &sb, 1, "f-1");
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_GRANT);
	t0 = clock_now();
	/* Ends in 1.6 s: fenced at 1.0 s (lease 3 s / 5 before). */
	send_granted(&f, &pk, &sb, 1, OUT_RESTARTED, HOLD_NONE, t0 + 1600);
	send_job(&f, &pk, &sb, 2, "f-2");
	ck_assert(next_frame(&f, &m, 2000));
	ck_assert_int_eq(m.type, P_GRANT);
	send_granted(&f, &pk, &sb, 2, OUT_RESTARTED, HOLD_NONE, t0 + 1600);
	/* Job 2's grant is renewed; job 1's is not. */
	send_granted(&f, &pk, &sb, 2, OUT_RESTARTED, HOLD_NONE, t0 + 30000);
	ck_assert(next_frame(&f, &m, 3000));
	ck_assert_int_eq(m.type, P_DONE);
	ck_assert_uint_eq(m.id, 1);
	ck_assert_int_eq(m.outcome, OUT_FAILED);
	ck_assert_msg(m.error.len > 7 && memcmp(m.error.p, "fenced:", 7) == 0,
	    "error: %.*s", (int)m.error.len, m.error.p);
	ck_assert_int_ge(clock_now() - t0, 900);
	ck_assert_int_lt(clock_now() - t0, 1600);
	/* Job 2 is still running (its restart takes 5 s). */
	ck_assert(!TAILQ_EMPTY(&f.w.running));
	ck_assert_uint_eq(TAILQ_FIRST(&f.w.running)->id, 2);
	fake_stop(&f, &sb);
}
END_TEST

static Suite *
worker_suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("quit");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sigquit_refuses_read_job);
	tcase_add_test(tc, test_sigquit_refuses_later_job);
	tcase_add_test(tc, test_fleet_grant_first);
	tcase_add_test(tc, test_fleet_fence);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(worker_suite());
	int failed;

	log_set_level(LOG_WARNING);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
