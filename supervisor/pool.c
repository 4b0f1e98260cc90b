/*
 * pool: fork, exec, talk to and reap mandrill-worker processes, and keep
 * the set they form.
 *
 * Mechanism only: when to spawn or retire a worker is decided in
 * avail.c, what a frame means and what becomes of a lost worker's jobs
 * in dispatch.c; both hear from the pool through the callbacks its owner
 * set.  The worker gets its socket as fd 3, stderr on the log, its own
 * process group (a terminal's Ctrl-C reaches only mandrilld), and a
 * clean signal mask and dispositions before exec.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "pool.h"
#include "proc.h"
#include "settings.h"

#define WORKER_FD		3
#define HEARTBEAT_DIVISOR	4	/* heartbeats per worker_timeout */

static const char *const state_names[] = {
	[WP_STARTING] = "starting", [WP_READY] = "ready",
	[WP_DRAINING] = "draining", [WP_GONE] = "gone",
};

/* The one place a worker's state changes: refuses a move it lacks. */
static int
set_state(struct wproc *wp, enum wp_state to)
{
	static const unsigned legal[] = {
		[WP_STARTING] = WP_MASK(WP_READY) | WP_MASK(WP_DRAINING) |
		    WP_MASK(WP_GONE),
		[WP_READY] = WP_MASK(WP_DRAINING) | WP_MASK(WP_GONE),
		[WP_DRAINING] = WP_MASK(WP_GONE),
		[WP_GONE] = 0,
	};

	if ((legal[wp->state] & WP_MASK(to)) == 0) {
		log_err("pool: worker %" PRIu32 " (pid %d): %s to %s refused",
		    wp->slot, (int)wp->pid, state_names[wp->state],
		    state_names[to]);
		return -1;
	}
	wp->state = to;
	return 0;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void
exec_worker(const char *path, int fd, int logfd)
{
	static const char msg[] = "mandrilld: cannot exec the worker\n";
	char *const argv[] = { (char *)"mandrill-worker", NULL };
	sigset_t all;
	int sig;

	setpgid(0, 0);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (logfd != STDERR_FILENO && dup2(logfd, STDERR_FILENO) < 0)
		_exit(71);
	if (fd == WORKER_FD) {
		if (fcntl(fd, F_SETFD, 0) < 0)
			_exit(71);
	} else if (dup2(fd, WORKER_FD) < 0)
		_exit(71);
	/*
	 * Nothing else of the supervisor's goes along: a broker library's
	 * sockets are not always close-on-exec, and a worker holding the
	 * broker connection would keep it open after mandrilld is gone.
	 */
	if (close_range(WORKER_FD + 1, ~0U, 0) < 0)
		for (int i = WORKER_FD + 1; i < 1024; i++)
			close(i);
	execv(path, argv);
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(127);
}

static void
child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct wproc *wp = w->data;

	ev_child_stop(loop, w);
	/*
	 * libev runs child watchers first: the worker's last frames (its
	 * committed outcomes) may still wait in the socket.  Act on them
	 * before its remaining jobs are given back as lost.
	 */
	if (wp->chan != NULL)
		chan_read_all(wp->chan);
	pool_reap(wp->pool, wp, w->rstatus);
}

static int
on_frame(struct chan *c, const struct proto_msg *m, void *arg)
{
	struct wproc *wp = arg;
	struct pool *p = wp->pool;

	wp->last_heard = clock_now();
	if (m->type == P_STATE) {
		wp->unsaved = m->unsaved;
		wp->wal = m->wal;
	}
	if (p->cb.frame(p->cb.arg, wp, m) < 0) {
		pool_close(p, wp);
		pool_kill(wp, SIGKILL);
		return -1;
	}
	/* Postfix's use_count: a worker that records nothing starts badly. */
	if (m->type == P_DONE && m->outcome != OUT_ERROR)
		wp->finished++;
	return 0;
}

static void
on_close(struct chan *c, const char *why, void *arg)
{
	struct wproc *wp = arg;
	int eof = strcmp(why, "end of file") == 0;

	if (!eof)
		log_err("worker %" PRIu32 " (pid %d): %s; stopping it",
		    wp->slot, (int)wp->pid, why);
	pool_close(wp->pool, wp);
	if (!eof)
		pool_kill(wp, SIGKILL);
}

static void
send_welcome(const struct pool *p, struct wproc *wp)
{
	struct worker_settings ws;

	settings_from_conf(&ws, p->conf);
	ws.gen = wp->gen;
	ws.slot = wp->slot;
	ws.heartbeat = p->conf->worker_timeout / HEARTBEAT_DIVISOR;
	ws.db_dev = p->db_dev;	/* 0 until a worker has opened it */
	ws.db_ino = p->db_ino;
	ws.pause_reason.p = p->conf->pause_reason;
	ws.pause_reason.len = strlen(p->conf->pause_reason);
	proto_pack_welcome(chan_packer(wp->chan), &ws);
}

/* The lowest slot number no live worker has: logs stay readable. */
static uint32_t
free_slot(const struct pool *p)
{
	const struct wproc *wp;
	uint32_t slot = 1;

again:
	TAILQ_FOREACH(wp, &p->workers, link)
		if (wp->slot == slot && wp->state != WP_GONE) {
			slot++;
			goto again;
		}
	return slot;
}

/*
 * wp joins generation gen on fd.  On failure it stays in the list as
 * GONE, for its reap to remove, and NULL is returned.
 */
static struct wproc *
attach(struct pool *p, struct wproc *wp, int fd, pid_t pid)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	wp->pool = p;
	wp->pid = pid;
	wp->slot = free_slot(p);
	wp->gen = p->gen;
	wp->started = wp->last_heard = clock_now();
	wp->timeout = p->conf->worker_timeout;
	TAILQ_INIT(&wp->jobs);
	TAILQ_INSERT_TAIL(&p->workers, wp, link);
	if ((wp->chan = chan_new(p->loop, fd, on_frame, on_close, wp)) == NULL) {
		log_err("pool: out of memory for worker %" PRIu32, wp->slot);
		close(fd);
		pool_kill(wp, SIGKILL);
		set_state(wp, WP_GONE);
		return NULL;
	}
	send_welcome(p, wp);
	return wp;
}

struct wproc *
pool_spawn(struct pool *p)
{
	struct wproc *wp;
	int sv[2];
	pid_t pid;

	if ((wp = calloc(1, sizeof(*wp))) == NULL) {
		log_err("pool: out of memory");
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("pool: socketpair: %s", strerror(errno));
		free(wp);
		return NULL;
	}
	if ((pid = fork()) < 0) {
		log_err("pool: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(wp);
		return NULL;
	}
	if (pid == 0)
		exec_worker(p->conf->worker_path, sv[1], log_fd());
	/* Watch the child at once, before anything can reap it. */
	ev_child_init(&wp->child, child_cb, pid, 0);
	wp->child.data = wp;
	ev_child_start(p->loop, &wp->child);
	setpgid(pid, pid);	/* also here: no race with the exec */
	close(sv[1]);
	if (attach(p, wp, sv[0], pid) == NULL)
		return NULL;	/* still watched: the reap removes it */
	log_info("worker %" PRIu32 " started, pid %d, generation %" PRIu32,
	    wp->slot, (int)pid, wp->gen);
	return wp;
}

struct wproc *
pool_adopt(struct pool *p, int fd, pid_t pid)
{
	struct wproc *wp;

	if ((wp = calloc(1, sizeof(*wp))) == NULL) {
		log_err("pool: out of memory");
		return NULL;
	}
	ev_child_init(&wp->child, child_cb, pid, 0);	/* never started */
	wp->child.data = wp;
	if (attach(p, wp, fd, pid) == NULL) {
		TAILQ_REMOVE(&p->workers, wp, link);
		free(wp);
		return NULL;
	}
	log_info("worker %" PRIu32 " adopted, fd %d, generation %" PRIu32,
	    wp->slot, fd, wp->gen);
	return wp;
}

void
pool_reap(struct pool *p, struct wproc *wp, int status)
{
	pool_close(p, wp);
	TAILQ_REMOVE(&p->workers, wp, link);
	p->cb.gone(p->cb.arg, wp, status);
	free(wp);
}

void
pool_close(struct pool *p, struct wproc *wp)
{
	if (wp->chan == NULL)
		return;
	chan_free(wp->chan);
	wp->chan = NULL;
	set_state(wp, WP_GONE);	/* before the owner hears: nothing may pick it */
	p->cb.lost(p->cb.arg, wp);
}

void
pool_kill(struct wproc *wp, int sig)
{
	if (ev_is_active(&wp->child) && wp->pid > 0)
		kill(wp->pid, sig);
}

/* Has the worker exited (reaped, or a zombie), its children reparented? */
int
pool_exited(struct wproc *wp)
{
	struct proc_stat ps;

	if (!ev_is_active(&wp->child) || wp->pid <= 0)
		return 1;
	if (proc_stat_read(wp->pid, &ps) < 0)
		return errno == ENOENT;
	return ps.state == 'Z' || ps.state == 'X';
}

static void
send_drain(struct wproc *wp)
{
	if (wp->chan == NULL || wp->state == WP_DRAINING)
		return;
	proto_pack_drain(chan_packer(wp->chan));
	set_state(wp, WP_DRAINING);
	wp->retiring = 1;
}

int
pool_ready(struct pool *p, struct wproc *wp, unsigned max_jobs)
{
	if (set_state(wp, WP_READY) < 0)
		return -1;
	wp->max_jobs = max_jobs;
	if (p->ready_gen == p->gen ||
	    pool_count(p, p->gen, WP_MASK(WP_READY)) < p->target)
		return 0;
	p->ready_gen = p->gen;
	return 1;
}

int
pool_database(struct pool *p, uint64_t dev, uint64_t ino)
{
	if (p->db_ino == 0) {
		p->db_dev = dev;
		p->db_ino = ino;
		return 0;
	}
	return dev == p->db_dev && ino == p->db_ino ? 0 : -1;
}

/* The least-loaded READY worker of gen; one with room if need_room. */
static struct wproc *
least_loaded(const struct pool *p, uint32_t gen, int need_room)
{
	struct wproc *wp, *best = NULL;

	TAILQ_FOREACH(wp, &p->workers, link)
		if (wp->state == WP_READY && wp->gen == gen &&
		    (!need_room || wp->njobs < wp->max_jobs) &&
		    (best == NULL || wp->njobs < best->njobs))
			best = wp;
	return best;
}

struct wproc *
pool_pick(const struct pool *p)
{
	return least_loaded(p, p->active_gen, 1);
}

unsigned
pool_room(const struct pool *p)
{
	const struct wproc *wp;
	unsigned room = 0;

	TAILQ_FOREACH(wp, &p->workers, link)
		if (wp->state == WP_READY && wp->gen == p->active_gen &&
		    wp->max_jobs > wp->njobs)
			room += wp->max_jobs - wp->njobs;
	return room;
}

unsigned
pool_count(const struct pool *p, uint32_t gen, unsigned states)
{
	const struct wproc *wp;
	unsigned n = 0;

	TAILQ_FOREACH(wp, &p->workers, link)
		if ((gen == POOL_ANY_GEN || wp->gen == gen) &&
		    (states & WP_MASK(wp->state)))
			n++;
	return n;
}

int
pool_empty(const struct pool *p)
{
	return TAILQ_EMPTY(&p->workers);
}

size_t
pool_pids(const struct pool *p, pid_t *pids, size_t len)
{
	const struct wproc *wp;
	size_t n = 0;

	TAILQ_FOREACH(wp, &p->workers, link) {
		if (!ev_is_active(&wp->child) || wp->pid <= 0)
			continue;
		if (n < len)
			pids[n] = wp->pid;
		n++;
	}
	return n;
}

uint64_t
pool_max_wal(const struct pool *p)
{
	const struct wproc *wp;
	uint64_t m = 0;

	TAILQ_FOREACH(wp, &p->workers, link)
		if (wp->wal > m)
			m = wp->wal;
	return m;
}

void
pool_set_target(struct pool *p, unsigned n)
{
	p->target = n;
}

void
pool_new_generation(struct pool *p, unsigned n)
{
	p->gen++;
	p->target = n;
}

void
pool_take_over(struct pool *p)
{
	pool_retire_older(p, p->gen);
	p->active_gen = p->gen;
}

void
pool_retire_older(struct pool *p, uint32_t gen)
{
	struct wproc *wp;

	TAILQ_FOREACH(wp, &p->workers, link)
		if (wp->gen < gen)
			send_drain(wp);
}

struct wproc *
pool_retire_one(struct pool *p)
{
	struct wproc *wp = least_loaded(p, p->gen, 0);

	if (wp != NULL) {
		log_info("retiring worker %" PRIu32 " (pid %d)", wp->slot,
		    (int)wp->pid);
		send_drain(wp);
	}
	return wp;
}

void
pool_drain_all(struct pool *p)
{
	pool_retire_older(p, p->gen + 1);
}

void
pool_quit_all(struct pool *p, int64_t grace_ms)
{
	struct wproc *wp;
	int64_t now = clock_now();

	TAILQ_FOREACH(wp, &p->workers, link) {
		/* QUIT: the worker stops its commands and records them. */
		pool_kill(wp, SIGQUIT);
		wp->kill_at = now + grace_ms;
		if (wp->state == WP_STARTING || wp->state == WP_READY)
			set_state(wp, WP_DRAINING);
	}
}

void
pool_reopen_all(struct pool *p)
{
	struct wproc *wp;

	TAILQ_FOREACH(wp, &p->workers, link)
		if (wp->chan != NULL)
			proto_pack_reopen(chan_packer(wp->chan));
}

void
pool_tick(struct pool *p, int64_t now, int on_time, int64_t grace_ms)
{
	struct wproc *wp;

	TAILQ_FOREACH(wp, &p->workers, link) {
		if (!on_time && wp->kill_at == 0)
			continue;
		if (wp->kill_at > 0 && now >= wp->kill_at && wp->unsaved > 0) {
			/* A known outcome is never lost to a kill. */
			if (!wp->spared)
				log_warn("worker %" PRIu32 " (pid %d) holds %" PRIu32
				    " restart outcomes it cannot record yet; not "
				    "killing it", wp->slot, (int)wp->pid,
				    wp->unsaved);
			wp->spared = 1;
		} else if (wp->kill_at > 0 && now >= wp->kill_at) {
			log_warn("worker %" PRIu32 " (pid %d) still running; "
			    "killing it", wp->slot, (int)wp->pid);
			pool_kill(wp, SIGKILL);
			wp->kill_at = 0;
		} else if (wp->kill_at == 0 && wp->state != WP_GONE &&
		    now - wp->last_heard > wp->timeout) {
			log_err("worker %" PRIu32 " (pid %d) silent for %" PRId64
			    " ms; aborting it", wp->slot, (int)wp->pid,
			    now - wp->last_heard);
			pool_close(p, wp);
			pool_kill(wp, SIGABRT);
			wp->kill_at = now + grace_ms;
		}
	}
}

void
pool_dump(const struct pool *p)
{
	const struct wproc *wp;
	int64_t now = clock_now();

	TAILQ_FOREACH(wp, &p->workers, link)
		log_always(LOG_INFO, "state: worker %" PRIu32 " pid %d "
		    "generation %" PRIu32 " %s, %u/%u jobs, heard %" PRId64
		    " ms ago", wp->slot, (int)wp->pid, wp->gen,
		    state_names[wp->state], wp->njobs, wp->max_jobs,
		    now - wp->last_heard);
}

void
pool_init(struct pool *p, struct ev_loop *loop, const struct conf *c,
    const struct pool_cb *cb)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->conf = c;
	TAILQ_INIT(&p->workers);
	p->gen = p->active_gen = 1;
	p->target = c->workers;
	p->cb = *cb;
}

void
pool_free(struct pool *p)
{
	struct wproc *wp;

	while ((wp = TAILQ_FIRST(&p->workers)) != NULL) {
		TAILQ_REMOVE(&p->workers, wp, link);
		if (wp->chan != NULL)
			chan_free(wp->chan);
		ev_child_stop(p->loop, &wp->child);
		free(wp);
	}
}
