/*
 * pool: fork, exec, talk to and reap one mandrill-worker process.
 *
 * Mechanism only: when to spawn or retire a worker is decided in
 * supervisor.c.  The worker gets its socket as fd 3, stderr on the log,
 * its own process group (a terminal's Ctrl-C reaches only mandrilld),
 * and a clean signal mask and dispositions before exec.
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
#include "proc.h"
#include "settings.h"
#include "supervisor.h"

#define WORKER_FD		3
#define HEARTBEAT_DIVISOR	4	/* heartbeats per worker_timeout */

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
	supervisor_worker_gone(wp->sup, wp, w->rstatus);
}

static int
on_frame(struct chan *c, const struct proto_msg *m, void *arg)
{
	struct wproc *wp = arg;

	wp->last_heard = clock_now();
	return dispatch_frame(wp, m);
}

static void
on_close(struct chan *c, const char *why, void *arg)
{
	struct wproc *wp = arg;

	int eof = strcmp(why, "end of file") == 0;

	if (!eof)
		log_err("worker %" PRIu32 " (pid %d): %s; stopping it",
		    wp->slot, (int)wp->pid, why);
	pool_close(wp);
	if (!eof)
		pool_kill(wp, SIGKILL);
}

static void
send_welcome(struct wproc *wp)
{
	const struct conf *c = &wp->sup->conf;
	struct worker_settings ws;

	settings_from_conf(&ws, c);
	ws.gen = wp->gen;
	ws.slot = wp->slot;
	ws.heartbeat = c->worker_timeout / HEARTBEAT_DIVISOR;
	ws.db_dev = wp->sup->db_dev;	/* 0 until a worker has opened it */
	ws.db_ino = wp->sup->db_ino;
	proto_pack_welcome(chan_packer(wp->chan), &ws);
}

struct wproc *
pool_spawn(struct supervisor *s, uint32_t slot)
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
		exec_worker(s->conf.worker_path, sv[1], log_fd());
	/* Watch the child at once, before anything can reap it. */
	ev_child_init(&wp->child, child_cb, pid, 0);
	wp->child.data = wp;
	ev_child_start(s->loop, &wp->child);
	setpgid(pid, pid);	/* also here: no race with the exec */
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	wp->sup = s;
	wp->pid = pid;
	wp->slot = slot;
	wp->gen = s->gen;
	wp->state = WP_STARTING;
	wp->started = wp->last_heard = clock_now();
	wp->timeout = s->conf.worker_timeout;
	TAILQ_INIT(&wp->jobs);
	TAILQ_INSERT_TAIL(&s->workers, wp, link);
	if ((wp->chan = chan_new(s->loop, sv[0], on_frame, on_close, wp)) == NULL) {
		/* Still watched: the reap removes it.  Not counted as live. */
		log_err("pool: out of memory for worker %" PRIu32, slot);
		close(sv[0]);
		kill(pid, SIGKILL);
		wp->state = WP_GONE;
		return NULL;
	}
	send_welcome(wp);
	log_info("worker %" PRIu32 " started, pid %d, generation %" PRIu32,
	    slot, (int)pid, wp->gen);
	return wp;
}

/* The channel is done: give the jobs back, stop talking. */
void
pool_close(struct wproc *wp)
{
	if (wp->chan == NULL)
		return;
	chan_free(wp->chan);
	wp->chan = NULL;
	wp->state = WP_GONE;	/* before the holds: nothing may pick it */
	dispatch_worker_lost(wp->sup, wp);
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

void
pool_send_reopen(struct wproc *wp)
{
	if (wp->chan != NULL)
		proto_pack_reopen(chan_packer(wp->chan));
}

void
pool_send_drain(struct wproc *wp)
{
	if (wp->chan == NULL || wp->state == WP_DRAINING)
		return;
	proto_pack_drain(chan_packer(wp->chan));
	wp->state = WP_DRAINING;
	wp->retiring = 1;
}

unsigned
pool_count(const struct supervisor *s, enum wp_state state)
{
	const struct wproc *wp;
	unsigned n = 0;

	TAILQ_FOREACH(wp, &s->workers, link)
		if (wp->state == state)
			n++;
	return n;
}
