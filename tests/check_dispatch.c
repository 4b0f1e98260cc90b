/*
 * check_dispatch: dispatch, the pool and avail, driven with fake workers.
 *
 * The test stands where supervisor.c stands: it wires the pool's
 * callbacks to dispatch and avail as supervisor.c does, takes messages
 * from the sim source, and plays every worker itself on the other end of
 * a socketpair that the pool adopts (pool_adopt: no fork, no exec).  The
 * test clock is fake and stands still unless a test moves it; the loop
 * is pumped with EVRUN_NOWAIT, and the timers that would need real time
 * (holds, respawns) are run or read directly.  The only real process is
 * a restart command's stand-in, for the process group a started frame
 * names: /proc must show it as the worker's child before it is killed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <ev.h>
#include <msgpack.h>

#include "avail.h"
#include "clock.h"
#include "conf.h"
#include "dispatch.h"
#include "log.h"
#include "loopwatch.h"
#include "pool.h"
#include "proto.h"
#include "source.h"

#define MAXFAKE		6
#define MAXJOBS		64
#define T0		1000000	/* the fake clock's start, ms */

/* A job frame as a fake worker got it. */
struct got_job {
	uint64_t	 id;
	char		 msg_id[64];
	uint32_t	 crashes;
	int		 bury;		/* it came to be recorded dead */
	int		 done;		/* the fake has answered it */
};

/* One fake worker: the far end of a socket the pool adopted. */
struct fake {
	int		 fd;
	struct wproc	*wp;
	char		 in[PROTO_FRAME_MAX];
	size_t		 in_len;
	msgpack_unpacked up;
	msgpack_sbuffer	 sb;
	msgpack_packer	 pk;
	uint32_t	 gen;		/* as its welcome said */
	uint32_t	 slot;
	int		 welcomed;
	int		 drains;
	int		 cancels;
	struct got_job	 jobs[MAXJOBS];
	unsigned	 njobs;
};

/* The test's stand-in for struct supervisor. */
struct rig {
	struct ev_loop	*loop;
	struct conf	 conf;
	struct source	*src;
	struct pool	 pool;
	struct avail	 avail;
	struct dispatch	 d;
	struct loopwatch watch;
	struct fake	 f[MAXFAKE];
	int		 nf;
	int		 gen_ready;	/* dispatch said a generation is complete */
	int		 gone;
};

/* The same wiring as supervisor.c's. */
static int
rig_frame(void *arg, struct wproc *wp, const struct proto_msg *m)
{
	struct rig *r = arg;

	return dispatch_frame(&r->d, wp, m);
}

static void
rig_lost(void *arg, struct wproc *wp)
{
	struct rig *r = arg;

	dispatch_worker_lost(&r->d, wp);
}

static void
rig_gone(void *arg, struct wproc *wp, int status)
{
	struct rig *r = arg;

	r->gone++;
	avail_worker_gone(&r->avail, wp, status);
	dispatch_pull(&r->d);
}

static void
rig_generation_ready(void *arg)
{
	struct rig *r = arg;

	r->gen_ready++;
	if (avail_take_over(&r->avail))
		dispatch_rethink(&r->d);
}

static void
rig_message(void *arg, struct delivery *d)
{
	struct rig *r = arg;

	dispatch_message(&r->d, d);
}

static void
rig_more(void *arg)
{
	struct rig *r = arg;

	dispatch_pull(&r->d);
}

/*
 * workers: the target (never reached by a fork: every worker is a fake
 * the test adopts).  A spawn that slipped through would exec nothing.
 */
static void
rig_open(struct rig *r, unsigned workers, unsigned max_in_flight,
    unsigned max_crashes)
{
	struct source_cb scb = { rig_message, NULL, rig_more, r };
	struct pool_cb pcb = { rig_frame, rig_lost, rig_gone, r };
	struct dispatch_cb dcb = { rig_generation_ready, r };
	char err[256] = "";

	memset(r, 0, sizeof(*r));
	clock_set_fake(T0);
	r->loop = ev_default_loop(EVFLAG_AUTO);
	conf_defaults(&r->conf);
	r->conf.workers = workers;
	r->conf.max_in_flight = max_in_flight;
	r->conf.max_crashes = max_crashes;
	r->conf.ack_deadline = 60000;	/* no lease is extended in a test */
	r->conf.count = 0;		/* as many messages as are pulled */
	r->conf.rate = 0;
	r->conf.seed = 7;
	snprintf(r->conf.worker_path, sizeof(r->conf.worker_path),
	    "/nonexistent/mandrill-worker");
	r->src = source_sim_new(r->loop, &r->conf, &scb);
	ck_assert_ptr_nonnull(r->src);
	ck_assert_msg(r->src->ops->start(r->src, err, sizeof(err)) == 0,
	    "sim start: %s", err);
	loopwatch_init(&r->watch, r->loop, 0);
	pool_init(&r->pool, r->loop, &r->conf, &pcb);
	avail_init(&r->avail, r->loop, &r->pool);
	dispatch_init(&r->d, r->loop, &r->conf, r->src, &r->pool, &r->watch,
	    &dcb);
}

static void
rig_close(struct rig *r)
{
	avail_stop(&r->avail);
	dispatch_stop(&r->d);
	r->src->ops->unpull(r->src);
	dispatch_nack_all(&r->d, NULL, "test over");
	dispatch_nack_running(&r->d, "test over");
	pool_free(&r->pool);
	for (int i = 0; i < r->nf; i++) {
		if (r->f[i].fd >= 0)
			close(r->f[i].fd);
		msgpack_unpacked_destroy(&r->f[i].up);
		msgpack_sbuffer_destroy(&r->f[i].sb);
	}
	r->src->ops->stop(r->src);
	dispatch_free(&r->d);
	loopwatch_stop(&r->watch);
	clock_set_fake(-1);
}

/* Read and note every frame the supervisor side sent to f. */
static void
fake_poll(struct fake *f)
{
	struct proto_msg m;
	char err[256];
	size_t used;
	ssize_t n;
	int rc;

	if (f->fd < 0)
		return;
	while ((n = read(f->fd, f->in + f->in_len,
	    sizeof(f->in) - f->in_len)) > 0)
		f->in_len += (size_t)n;
	ck_assert_msg(n == 0 || errno == EAGAIN, "read: %s", strerror(errno));
	while ((rc = proto_next(f->in, f->in_len, &f->up, &m, &used, err,
	    sizeof(err))) == 1) {
		struct got_job *j;

		switch (m.type) {
		case P_WELCOME:
			f->welcomed++;
			f->gen = m.ws.gen;
			f->slot = m.ws.slot;
			break;
		case P_JOB:
			ck_assert_uint_lt(f->njobs, MAXJOBS);
			j = &f->jobs[f->njobs++];
			memset(j, 0, sizeof(*j));
			j->id = m.id;
			snprintf(j->msg_id, sizeof(j->msg_id), "%.*s",
			    (int)m.msg_id.len, m.msg_id.p);
			j->crashes = m.crashes;
			j->bury = m.bury.len > 0;
			break;
		case P_DRAIN:
			f->drains++;
			break;
		case P_CANCEL:
			f->cancels++;
			break;
		default:
			break;
		}
		memmove(f->in, f->in + used, f->in_len - used);
		f->in_len -= used;
	}
	ck_assert_msg(rc == 0, "the supervisor sent a bad frame: %s", err);
}

/* Enough loop iterations for pulls, deliveries, flushes and reads. */
static void
pump(struct rig *r)
{
	for (int i = 0; i < 50; i++) {
		ev_run(r->loop, EVRUN_NOWAIT);
		for (int k = 0; k < r->nf; k++)
			fake_poll(&r->f[k]);
	}
}

static void
fake_send(struct fake *f)
{
	ck_assert_int_eq(write(f->fd, f->sb.data, f->sb.size),
	    (ssize_t)f->sb.size);
	msgpack_sbuffer_clear(&f->sb);
}

/* A fake worker of the pool's generation gen, welcomed, said to be pid. */
static struct fake *
fake_new_pid(struct rig *r, pid_t pid)
{
	struct fake *f;
	int sv[2];

	ck_assert_int_lt(r->nf, MAXFAKE);
	f = &r->f[r->nf++];
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	f->fd = sv[1];
	msgpack_unpacked_init(&f->up);
	msgpack_sbuffer_init(&f->sb);
	msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
	f->wp = pool_adopt(&r->pool, sv[0], pid);
	ck_assert_ptr_nonnull(f->wp);
	pump(r);
	ck_assert_int_eq(f->welcomed, 1);
	ck_assert_uint_eq(f->gen, r->pool.gen);
	return f;
}

static struct fake *
fake_new(struct rig *r)
{
	return fake_new_pid(r, 0);
}

static void
fake_ready(struct rig *r, struct fake *f, uint32_t max_jobs)
{
	proto_pack_ready(&f->pk, 4242, max_jobs, 1, 42);
	fake_send(f);
	pump(r);
}

/* Answer the i-th job f got with outcome o. */
static void
fake_done(struct rig *r, struct fake *f, unsigned i, enum outcome o)
{
	struct proto_done d;

	ck_assert_uint_lt(i, f->njobs);
	ck_assert(!f->jobs[i].done);
	memset(&d, 0, sizeof(d));
	d.id = f->jobs[i].id;
	d.outcome = o;
	d.error = o == OUT_ERROR ? "database is locked" : "";
	d.attempt = 1;
	d.duration = 1000;
	d.host = "cattle-test";
	d.hold = o == OUT_HELD ? HOLD_HOST : HOLD_NONE;
	proto_pack_done(&f->pk, &d);
	fake_send(f);
	f->jobs[i].done = 1;
	pump(r);
}

/* f says that the i-th job it got runs its command in group pgid. */
static void
fake_started(struct rig *r, struct fake *f, unsigned i, pid_t pgid)
{
	ck_assert_uint_lt(i, f->njobs);
	proto_pack_started(&f->pk, f->jobs[i].id, (uint32_t)pgid);
	fake_send(f);
	pump(r);
}

/* The worker's end closes, as when its process dies; then the reap. */
static void
fake_dies(struct rig *r, struct fake *f, int status)
{
	struct wproc *wp = f->wp;

	close(f->fd);
	f->fd = -1;
	pump(r);	/* the pool reads the end of file */
	ck_assert_int_eq(wp->state, WP_GONE);
	pool_reap(&r->pool, wp, status);
	f->wp = NULL;
}

static unsigned
open_jobs(const struct fake *f)
{
	unsigned n = 0;

	for (unsigned i = 0; i < f->njobs; i++)
		n += !f->jobs[i].done;
	return n;
}

/*
 * When the next spawn is due, in seconds; the timer is then stopped, as
 * its spawn would fork.  -1 if none is due.
 */
static double
respawn_in(struct rig *r)
{
	double left;

	if (!ev_is_active(&r->avail.respawn))
		return -1;
	left = ev_timer_remaining(r->loop, &r->avail.respawn);
	ev_timer_stop(r->loop, &r->avail.respawn);
	return left;
}

/* --- flow control ---------------------------------------------------- */

START_TEST(test_no_pull_when_in_flight_is_full)
{
	struct rig r;
	struct fake *a, *b;

	rig_open(&r, 2, 5, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	pump(&r);
	ck_assert_uint_eq(r.d.n.pulled, 0);	/* no worker ready: no room */
	fake_ready(&r, a, 8);
	fake_ready(&r, b, 8);
	ck_assert_int_eq(r.gen_ready, 1);
	/* 16 jobs of room, but max_in_flight is 5. */
	ck_assert_uint_eq(r.d.n.pulled, 5);
	ck_assert_uint_eq(r.d.in_flight, 5);
	ck_assert_uint_eq(a->njobs + b->njobs, 5);
	ck_assert_uint_eq(r.src->ops->wanted(r.src), 0);
	pump(&r);
	ck_assert_uint_eq(r.d.n.pulled, 5);	/* nothing more asked for */
	/* One acked: one more pulled, and no more. */
	fake_done(&r, a, 0, OUT_RESTARTED);
	ck_assert_uint_eq(r.d.n.acked, 1);
	ck_assert_uint_eq(r.d.n.pulled, 6);
	ck_assert_uint_eq(r.d.in_flight, 5);
	ck_assert_uint_eq(a->njobs + b->njobs, 6);
	rig_close(&r);
}
END_TEST

START_TEST(test_no_pull_when_workers_are_full)
{
	struct rig r;
	struct fake *a;

	rig_open(&r, 1, 1000, 3);
	a = fake_new(&r);
	fake_ready(&r, a, 2);
	/* max_in_flight is far off: the worker's room is the limit. */
	ck_assert_uint_eq(r.d.n.pulled, 2);
	ck_assert_uint_eq(a->njobs, 2);
	ck_assert_uint_eq(pool_room(&r.pool), 0);
	pump(&r);
	ck_assert_uint_eq(r.d.n.pulled, 2);
	ck_assert_uint_eq(r.d.nwaiting, 0);
	fake_done(&r, a, 1, OUT_RESTARTED);
	ck_assert_uint_eq(r.d.n.pulled, 3);
	ck_assert_uint_eq(open_jobs(a), 2);
	rig_close(&r);
}
END_TEST

START_TEST(test_no_pull_while_paused)
{
	struct rig r;
	struct fake *a;

	rig_open(&r, 1, 10, 3);
	r.conf.enabled = 0;
	a = fake_new(&r);
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(r.d.n.pulled, 0);
	r.conf.enabled = 1;
	dispatch_reload(&r.d);	/* a resume, as a reload applies it */
	pump(&r);
	ck_assert_uint_eq(r.d.n.pulled, 8);
	rig_close(&r);
}
END_TEST

/* --- choosing a worker ----------------------------------------------- */

START_TEST(test_least_loaded_worker_gets_the_job)
{
	struct rig r;
	struct fake *a, *b;

	rig_open(&r, 2, 4, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	fake_ready(&r, a, 8);
	/* a alone was ready: it took all four. */
	ck_assert_uint_eq(a->njobs, 4);
	fake_ready(&r, b, 8);
	ck_assert_uint_eq(b->njobs, 0);	/* in flight is full */
	/* Each job a ends makes room for one, which goes where fewest run. */
	fake_done(&r, a, 0, OUT_RESTARTED);	/* a 3, b 0: to b */
	ck_assert_uint_eq(b->njobs, 1);
	fake_done(&r, a, 1, OUT_RESTARTED);	/* a 2, b 1: to b */
	ck_assert_uint_eq(b->njobs, 2);
	ck_assert_uint_eq(a->njobs, 4);
	fake_done(&r, a, 2, OUT_RESTARTED);	/* a 1, b 2: to a */
	ck_assert_uint_eq(a->njobs, 5);
	ck_assert_uint_eq(b->njobs, 2);
	fake_done(&r, b, 0, OUT_RESTARTED);	/* a 2, b 1: to b */
	ck_assert_uint_eq(a->njobs, 5);
	ck_assert_uint_eq(b->njobs, 3);
	ck_assert_uint_eq(a->wp->njobs, 2);
	ck_assert_uint_eq(b->wp->njobs, 2);
	rig_close(&r);
}
END_TEST

START_TEST(test_pick_is_least_loaded_with_room)
{
	struct rig r;
	struct fake *a, *b, *c;

	rig_open(&r, 3, 1, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	c = fake_new(&r);
	ck_assert_ptr_null(pool_pick(&r.pool));	/* none is ready */
	fake_ready(&r, a, 2);
	fake_ready(&r, b, 2);
	fake_ready(&r, c, 2);
	/* max_in_flight 1: one job, on a, the first of the least loaded. */
	ck_assert_uint_eq(a->njobs, 1);
	ck_assert_ptr_eq(pool_pick(&r.pool), b->wp);
	/* More room: the next jobs spread by load, never above max_jobs. */
	r.conf.max_in_flight = 6;
	dispatch_pull(&r.d);
	pump(&r);
	ck_assert_uint_eq(a->njobs, 2);
	ck_assert_uint_eq(b->njobs, 2);
	ck_assert_uint_eq(c->njobs, 2);
	ck_assert_ptr_null(pool_pick(&r.pool));	/* all full */
	ck_assert_uint_eq(pool_room(&r.pool), 0);
	rig_close(&r);
}
END_TEST

/* --- a worker lost holding jobs -------------------------------------- */

START_TEST(test_lost_worker_jobs_are_held_and_counted)
{
	struct rig r;
	struct fake *a, *b;
	unsigned held, moved = 0;

	rig_open(&r, 2, 4, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	fake_ready(&r, a, 2);
	fake_ready(&r, b, 8);
	ck_assert_uint_eq(a->njobs, 2);
	ck_assert_uint_eq(b->njobs, 2);
	held = open_jobs(a);
	fake_dies(&r, a, 9);	/* killed by signal 9 */
	/* Held for another worker, not given back; each counts a crash. */
	ck_assert_uint_eq(r.d.holds.n[HOLD_CRASH], held);
	ck_assert_uint_eq(r.d.n.nacked, 0);
	ck_assert_uint_eq(r.d.in_flight, 4);
	ck_assert_uint_eq(r.avail.crashes, 1);
	ck_assert_int_eq(r.gone, 1);
	ck_assert(respawn_in(&r) > 0.5);	/* it died young */
	/* Offered again after the crash backoff, to b, with the count. */
	clock_advance(HOLD_BACKOFF_MIN + HOLD_JITTER + 1);
	hold_run(&r.d.holds, clock_now());
	pump(&r);
	ck_assert_uint_eq(r.d.holds.n[HOLD_CRASH], 0);
	for (unsigned i = 2; i < b->njobs; i++) {
		ck_assert_uint_eq(b->jobs[i].crashes, 1);
		ck_assert(!b->jobs[i].bury);
		for (unsigned k = 0; k < 2; k++)
			moved += strcmp(b->jobs[i].msg_id, a->jobs[k].msg_id) == 0;
	}
	ck_assert_uint_eq(moved, held);
	rig_close(&r);
}
END_TEST

START_TEST(test_max_crashes_buries_the_message)
{
	struct rig r;
	struct fake *a, *b;

	rig_open(&r, 2, 1, 1);	/* max_crashes 1 */
	a = fake_new(&r);
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(a->njobs, 1);
	b = fake_new(&r);
	fake_ready(&r, b, 8);
	fake_dies(&r, a, 9);
	respawn_in(&r);
	clock_advance(HOLD_BACKOFF_MIN + HOLD_JITTER + 1);
	hold_run(&r.d.holds, clock_now());
	pump(&r);
	/* One worker lost holding it reaches max_crashes: record it dead. */
	ck_assert_uint_eq(b->njobs, 1);
	ck_assert_str_eq(b->jobs[0].msg_id, a->jobs[0].msg_id);
	ck_assert_uint_eq(b->jobs[0].crashes, 1);
	ck_assert(b->jobs[0].bury);
	rig_close(&r);
}
END_TEST

/*
 * A restart command's stand-in: a child of the test leading its own
 * process group, asleep until killed (or 30 s).  *fd reads end of file
 * once it is gone.  Made before the rig, so that it holds none of the
 * fake workers' sockets open.
 */
static pid_t
victim_new(int *fd)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		close(p[0]);
		setpgid(0, 0);
		signal(SIGALRM, SIG_DFL);	/* Check's handler would outlive it */
		alarm(30);
		for (;;)
			pause();
	}
	setpgid(pid, pid);	/* also here: leading it before it is named */
	close(p[1]);
	*fd = p[0];
	return pid;
}

/* Whether the victim is gone within ms; else it is still running. */
static int
victim_gone(int fd, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char c;

	return poll(&pfd, 1, ms) == 1 && read(fd, &c, 1) == 0;
}

static void
victim_end(pid_t pid, int fd)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);	/* ECHILD if the loop reaped it first */
	close(fd);
}

START_TEST(test_lost_worker_kills_its_commands_group)
{
	struct rig r;
	struct fake *a;
	int fd;
	pid_t v = victim_new(&fd);

	rig_open(&r, 1, 1, 3);
	a = fake_new_pid(&r, getpid());	/* the victim is this one's child */
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(a->njobs, 1);
	fake_started(&r, a, 0, v);
	fake_dies(&r, a, 9);
	ck_assert_msg(victim_gone(fd, 5000),
	    "the command's group outlived its worker");
	respawn_in(&r);
	victim_end(v, fd);
	rig_close(&r);
}
END_TEST

START_TEST(test_group_not_the_workers_child_is_never_killed)
{
	struct rig r;
	struct fake *a;
	int fd;
	pid_t v = victim_new(&fd);

	rig_open(&r, 1, 1, 3);
	a = fake_new_pid(&r, getppid());	/* not the victim's parent */
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(a->njobs, 1);
	fake_started(&r, a, 0, v);	/* a lie: refused */
	fake_dies(&r, a, 9);
	ck_assert_msg(!victim_gone(fd, 200),
	    "a group killed on the worker's word alone");
	respawn_in(&r);
	victim_end(v, fd);
	rig_close(&r);
}
END_TEST

START_TEST(test_lost_worker_while_draining_gives_jobs_back)
{
	struct rig r;
	struct fake *a;

	rig_open(&r, 1, 4, 3);
	a = fake_new(&r);
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(a->njobs, 4);
	dispatch_stop(&r.d);
	avail_stop(&r.avail);
	fake_dies(&r, a, 9);
	ck_assert_uint_eq(r.d.n.nacked, 4);
	ck_assert_uint_eq(r.d.in_flight, 0);
	ck_assert_uint_eq(r.d.holds.n[HOLD_CRASH], 0);
	ck_assert_uint_eq(r.avail.crashes, 0);	/* expected while stopping */
	rig_close(&r);
}
END_TEST

/* --- reload: a new generation takes over once complete ---------------- */

START_TEST(test_generation_takes_over_when_complete)
{
	struct rig r;
	struct fake *a, *b, *n1, *n2;
	unsigned a_jobs, b_jobs;

	rig_open(&r, 2, 4, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	fake_ready(&r, a, 2);
	fake_ready(&r, b, 2);
	ck_assert_int_eq(r.gen_ready, 1);
	ck_assert_uint_eq(a->njobs + b->njobs, 4);
	/* A reload: generation 2, its workers adopted in place of a fork. */
	pool_new_generation(&r.pool, 2);
	n1 = fake_new(&r);
	n2 = fake_new(&r);
	ck_assert_uint_eq(n1->gen, 2);
	ck_assert_uint_eq(n2->gen, 2);
	ck_assert_uint_eq(pool_count(&r.pool, 2, WP_LIVE), 2);
	/* Half of it ready: generation 1 still gets the jobs. */
	fake_ready(&r, n1, 2);
	ck_assert_int_eq(r.gen_ready, 1);
	ck_assert_uint_eq(r.pool.active_gen, 1);
	fake_done(&r, a, 0, OUT_RESTARTED);
	ck_assert_uint_eq(a->njobs + b->njobs, 5);
	ck_assert_uint_eq(n1->njobs, 0);
	ck_assert_int_eq(a->drains + b->drains, 0);
	/* All of it ready: it takes over, the old one is told to drain. */
	fake_ready(&r, n2, 2);
	ck_assert_int_eq(r.gen_ready, 2);
	ck_assert_uint_eq(r.pool.active_gen, 2);
	ck_assert_int_eq(a->drains, 1);
	ck_assert_int_eq(b->drains, 1);
	ck_assert_int_eq(n1->drains + n2->drains, 0);
	ck_assert_int_eq(a->wp->state, WP_DRAINING);
	/* The old generation finishes what it holds; new jobs go to the new. */
	a_jobs = a->njobs;
	b_jobs = b->njobs;
	for (unsigned i = 0; i < a->njobs; i++)
		if (!a->jobs[i].done)
			fake_done(&r, a, i, OUT_RESTARTED);
	ck_assert_uint_eq(a->njobs, a_jobs);
	ck_assert_uint_eq(b->njobs, b_jobs);
	ck_assert_uint_eq(open_jobs(a), 0);
	ck_assert_uint_eq(n1->njobs + n2->njobs, 2);
	ck_assert_uint_eq(n1->njobs, 1);	/* spread by load */
	/* Its exit is expected: no crash, nothing spawned in its place. */
	fake_dies(&r, a, 0);
	ck_assert_uint_eq(r.avail.crashes, 0);
	ck_assert(respawn_in(&r) < 0);
	ck_assert_uint_eq(pool_count(&r.pool, POOL_ANY_GEN, WP_RUNNING), 3);
	rig_close(&r);
}
END_TEST

/* --- drain ----------------------------------------------------------- */

/* The drain, as supervisor.c begins it. */
static void
begin_drain(struct rig *r)
{
	r->src->ops->unpull(r->src);
	dispatch_stop(&r->d);
	avail_stop(&r->avail);
	dispatch_nack_all(&r->d, NULL, "draining; not yet dispatched");
}

START_TEST(test_drain_finishes_running_jobs_and_gives_back_the_rest)
{
	struct rig r;
	struct fake *a;
	uint64_t pulled;

	rig_open(&r, 1, 3, 3);
	a = fake_new(&r);
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(a->njobs, 3);
	/* One is held (its host busy): it waits on no worker. */
	fake_done(&r, a, 0, OUT_HELD);
	ck_assert_uint_eq(r.d.holds.n[HOLD_HOST], 1);
	ck_assert_uint_eq(r.d.in_flight, 3);
	pulled = r.d.n.pulled;
	begin_drain(&r);
	ck_assert_uint_eq(r.d.n.nacked, 1);
	ck_assert_uint_eq(r.d.holds.n[HOLD_HOST], 0);
	ck_assert_uint_eq(r.d.in_flight, 2);
	/* What runs finishes and is acked; nothing new is pulled. */
	for (unsigned i = 0; i < a->njobs; i++)
		if (!a->jobs[i].done)
			fake_done(&r, a, i, OUT_RESTARTED);
	ck_assert_uint_eq(r.d.in_flight, 0);
	ck_assert_uint_eq(r.d.n.pulled, pulled);
	ck_assert_uint_eq(r.d.n.acked, 2);
	/* Drained: every worker is told to go. */
	pool_drain_all(&r.pool);
	pump(&r);
	ck_assert_int_eq(a->drains, 1);
	ck_assert_int_eq(a->wp->state, WP_DRAINING);
	fake_dies(&r, a, 0);
	ck_assert_uint_eq(r.avail.crashes, 0);
	ck_assert(pool_empty(&r.pool));
	rig_close(&r);
}
END_TEST

/*
 * A job on a worker when the drain began comes back held (its worker
 * judged it after the drain: a closed window, a full group): it goes
 * back to the broker at once, never into a hold the drain waits on.
 */
START_TEST(test_held_after_the_drain_is_given_back)
{
	struct rig r;
	struct fake *a;

	rig_open(&r, 1, 3, 3);
	a = fake_new(&r);
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(a->njobs, 3);
	begin_drain(&r);
	ck_assert_uint_eq(r.d.in_flight, 3);	/* all three on the worker */
	fake_done(&r, a, 0, OUT_HELD);
	ck_assert_uint_eq(r.d.holds.n[HOLD_HOST], 0);
	ck_assert_uint_eq(r.d.n.nacked, 1);
	ck_assert_uint_eq(r.d.in_flight, 2);
	fake_done(&r, a, 1, OUT_RESTARTED);
	fake_done(&r, a, 2, OUT_HELD);
	ck_assert_uint_eq(r.d.in_flight, 0);
	ck_assert_uint_eq(hold_total(&r.d.holds), 0);
	rig_close(&r);
}
END_TEST

START_TEST(test_fast_shutdown_gives_back_running_jobs)
{
	struct rig r;
	struct fake *a, *b;

	rig_open(&r, 2, 6, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	fake_ready(&r, a, 8);
	fake_ready(&r, b, 8);
	ck_assert_uint_eq(r.d.in_flight, 6);
	dispatch_stop(&r.d);
	avail_stop(&r.avail);
	pool_quit_all(&r.pool, 5000);
	dispatch_nack_running(&r.d, "SIGQUIT");
	ck_assert_uint_eq(r.d.in_flight, 0);
	ck_assert_uint_eq(r.d.n.nacked, 6);
	ck_assert_uint_eq(a->wp->njobs + b->wp->njobs, 0);
	ck_assert_int_eq(a->wp->state, WP_DRAINING);
	/* A done frame for a job given back is no error now. */
	fake_done(&r, a, 0, OUT_RESTARTED);
	ck_assert_ptr_nonnull(a->wp->chan);
	rig_close(&r);
}
END_TEST

/* --- the pool's state machine ---------------------------------------- */

START_TEST(test_ready_twice_stops_the_worker)
{
	struct rig r;
	struct fake *a;

	rig_open(&r, 1, 4, 3);
	a = fake_new(&r);
	fake_ready(&r, a, 1);
	ck_assert_int_eq(a->wp->state, WP_READY);
	fake_ready(&r, a, 1);
	ck_assert_int_eq(a->wp->state, WP_GONE);
	ck_assert_ptr_null(a->wp->chan);
	/* Its one job waits for another worker, held with a crash. */
	ck_assert_uint_eq(r.d.holds.n[HOLD_CRASH], 1);
	rig_close(&r);
}
END_TEST

START_TEST(test_another_database_stops_the_worker)
{
	struct rig r;
	struct fake *a, *b;

	rig_open(&r, 2, 4, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	fake_ready(&r, a, 1);
	proto_pack_ready(&b->pk, 4243, 1, 1, 43);	/* another inode */
	fake_send(b);
	pump(&r);
	ck_assert_int_eq(b->wp->state, WP_GONE);
	ck_assert_int_eq(a->wp->state, WP_READY);
	rig_close(&r);
}
END_TEST

/* --- the respawn throttle -------------------------------------------- */

START_TEST(test_throttle_delays)
{
	static const struct { unsigned n; int64_t ms; } t[] = {
		{ 0, 0 }, { 1, 1000 }, { 2, 2000 }, { 3, 4000 }, { 6, 32000 },
		{ 7, 60000 }, { 8, 60000 }, { 1000, 60000 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_int_eq(avail_respawn_delay(t[i].n), t[i].ms);
}
END_TEST

START_TEST(test_bad_start_rule)
{
	static const struct {
		int64_t		 age;
		uint64_t	 finished;
		int		 bad;
	} t[] = {
		{ 0, 0, 1 },
		{ AVAIL_YOUNG_MS - 1, 5, 1 },	/* young */
		{ AVAIL_YOUNG_MS, 0, 1 },	/* old, but never finished one */
		{ 3600000, 0, 1 },
		{ AVAIL_YOUNG_MS, 1, 0 },	/* old and did work */
		{ 3600000, 100, 0 },
	};
	struct wproc wp;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&wp, 0, sizeof(wp));
		wp.started = T0;
		wp.finished = t[i].finished;
		ck_assert_int_eq(avail_bad_start(&wp, T0 + t[i].age), t[i].bad);
	}
}
END_TEST

START_TEST(test_old_worker_that_never_finished_a_job_is_throttled)
{
	struct rig r;
	struct fake *a;

	rig_open(&r, 1, 1, 3);
	a = fake_new(&r);
	fake_ready(&r, a, 8);
	ck_assert_uint_eq(a->njobs, 1);
	/* Store errors are not finished jobs. */
	fake_done(&r, a, 0, OUT_ERROR);
	ck_assert_uint_eq(a->wp->finished, 0);
	clock_advance(AVAIL_YOUNG_MS * 3);
	fake_dies(&r, a, 9);
	ck_assert_uint_eq(r.avail.crashes, 1);
	ck_assert_uint_eq(r.avail.bad_starts, 1);
	ck_assert(respawn_in(&r) > 0.5);
	rig_close(&r);
}
END_TEST

START_TEST(test_old_worker_that_did_work_is_replaced_at_once)
{
	struct rig r;
	struct fake *a, *b;
	double left;

	rig_open(&r, 1, 1, 3);
	a = fake_new(&r);
	fake_ready(&r, a, 8);
	fake_done(&r, a, 0, OUT_RESTARTED);
	ck_assert_uint_eq(a->wp->finished, 1);
	clock_advance(AVAIL_YOUNG_MS * 3);
	fake_dies(&r, a, 9);
	ck_assert_uint_eq(r.avail.crashes, 1);
	ck_assert_uint_eq(r.avail.bad_starts, 0);
	left = respawn_in(&r);
	ck_assert(left >= -0.001 && left < 0.001);	/* at once */
	/* Bad starts in a row double the delay: each of these dies young. */
	for (unsigned n = 1; n <= 3; n++) {
		b = fake_new(&r);
		fake_dies(&r, b, 9);
		ck_assert_uint_eq(r.avail.bad_starts, n);
		left = respawn_in(&r);
		ck_assert_msg(left > (double)(1u << (n - 1)) - 0.5 &&
		    left <= (double)(1u << (n - 1)), "after %u bad starts: "
		    "%.3f s", n, left);
	}
	/* One that lived and worked resets the count. */
	b = fake_new(&r);
	fake_ready(&r, b, 8);
	clock_advance(AVAIL_YOUNG_MS);	/* a's job was held meanwhile */
	hold_run(&r.d.holds, clock_now());
	pump(&r);
	ck_assert_uint_eq(b->njobs, 1);
	fake_done(&r, b, 0, OUT_RESTARTED);
	fake_dies(&r, b, 9);
	ck_assert_uint_eq(r.avail.bad_starts, 0);
	rig_close(&r);
}
END_TEST

START_TEST(test_unexpected_exit_of_draining_worker_is_expected)
{
	struct rig r;
	struct fake *a, *b;

	rig_open(&r, 2, 1, 3);
	a = fake_new(&r);
	b = fake_new(&r);
	fake_ready(&r, a, 8);
	fake_ready(&r, b, 8);
	avail_set_target(&r.avail, 1);	/* TTOU: the least loaded drains */
	pump(&r);
	ck_assert_int_eq(a->drains + b->drains, 1);
	ck_assert_int_eq(b->drains, 1);	/* a holds the one job */
	fake_dies(&r, b, 9);
	ck_assert_uint_eq(r.avail.crashes, 0);
	ck_assert(respawn_in(&r) < 0);
	rig_close(&r);
}
END_TEST

static Suite *
dispatch_suite(void)
{
	Suite *s = suite_create("dispatch");
	TCase *tc;

	tc = tcase_create("flow");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_no_pull_when_in_flight_is_full);
	tcase_add_test(tc, test_no_pull_when_workers_are_full);
	tcase_add_test(tc, test_no_pull_while_paused);
	suite_add_tcase(s, tc);

	tc = tcase_create("pick");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_least_loaded_worker_gets_the_job);
	tcase_add_test(tc, test_pick_is_least_loaded_with_room);
	suite_add_tcase(s, tc);

	tc = tcase_create("lost");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_lost_worker_jobs_are_held_and_counted);
	tcase_add_test(tc, test_max_crashes_buries_the_message);
	tcase_add_test(tc, test_lost_worker_while_draining_gives_jobs_back);
	tcase_add_test(tc, test_lost_worker_kills_its_commands_group);
	tcase_add_test(tc, test_group_not_the_workers_child_is_never_killed);
	suite_add_tcase(s, tc);

	tc = tcase_create("generation");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_generation_takes_over_when_complete);
	suite_add_tcase(s, tc);

	tc = tcase_create("drain");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_drain_finishes_running_jobs_and_gives_back_the_rest);
	tcase_add_test(tc, test_fast_shutdown_gives_back_running_jobs);
	tcase_add_test(tc, test_held_after_the_drain_is_given_back);
	suite_add_tcase(s, tc);

	tc = tcase_create("state");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_ready_twice_stops_the_worker);
	tcase_add_test(tc, test_another_database_stops_the_worker);
	suite_add_tcase(s, tc);

	tc = tcase_create("throttle");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_throttle_delays);
	tcase_add_test(tc, test_bad_start_rule);
	tcase_add_test(tc, test_old_worker_that_never_finished_a_job_is_throttled);
	tcase_add_test(tc, test_old_worker_that_did_work_is_replaced_at_once);
	tcase_add_test(tc, test_unexpected_exit_of_draining_worker_is_expected);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(dispatch_suite());
	int failed;

	log_set_level(LOG_ERR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
