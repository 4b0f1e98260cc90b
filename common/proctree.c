/*
 * proctree: the processes below this one, found in /proc, and killed.
 * See proctree.h for the contract.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "proctree.h"

#define ENVIRON_MAX	(1024 * 1024)	/* read of /proc/PID/environ */

int
proctree_subreaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/* Parent, group and start time from /proc/PID/stat; -1 when gone. */
static int
read_stat(pid_t pid, pid_t *ppid, pid_t *pgid, uint64_t *start)
{
	struct proc_stat ps;

	if (proc_stat_read(pid, &ps) < 0)
		return -1;
	*ppid = ps.ppid;
	*pgid = ps.pgrp;
	*start = ps.start;
	return 0;
}

static int
by_pid(const void *a, const void *b)
{
	const struct proc_ent *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

int
proctree_read(struct proc_table *t)
{
	struct proc_ent *v = NULL, *nv;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir;

	t->v = NULL;
	t->n = 0;
	if ((dir = opendir("/proc")) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		struct proc_ent e;
		char *end;
		long pid;

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		pid = strtol(d->d_name, &end, 10);
		if (*end != '\0' || pid <= 0)
			continue;
		e.pid = (pid_t)pid;
		if (read_stat(e.pid, &e.ppid, &e.pgid, &e.start) < 0)
			continue;	/* gone meanwhile */
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(dir);
				errno = ENOMEM;
				return -1;
			}
			v = nv;
		}
		v[n++] = e;
	}
	closedir(dir);
	qsort(v, n, sizeof(*v), by_pid);
	t->v = v;
	t->n = n;
	return 0;
}

void
proctree_free(struct proc_table *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

const struct proc_ent *
proctree_find(const struct proc_table *t, pid_t pid)
{
	struct proc_ent key = { pid, 0, 0, 0 };

	if (t->n == 0)
		return NULL;
	return bsearch(&key, t->v, t->n, sizeof(*t->v), by_pid);
}

int
proc_set_has(const struct proc_set *s, pid_t pid, uint64_t start)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].pid == pid && s->v[i].start == start)
			return 1;
	return 0;
}

int
proc_set_add(struct proc_set *s, const struct proc_ent *e)
{
	struct proc_ent *nv;

	if (proc_set_has(s, e->pid, e->start))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;

		if ((nv = realloc(s->v, cap * sizeof(*nv))) == NULL)
			return -1;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = *e;
	return 0;
}

void
proc_set_free(struct proc_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

int
proctree_below(const struct proc_table *t, const struct proc_set *roots,
    struct proc_set *out)
{
	if (roots->n == 0)
		return 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct proc_ent *p = &t->v[i];

		/* Up the parents; the depth bound guards a table read mid-change. */
		for (size_t depth = 0; p != NULL && depth <= t->n; depth++) {
			if (proc_set_has(roots, p->pid, p->start)) {
				if (proc_set_add(out, &t->v[i]) < 0)
					return -1;
				break;
			}
			if (p->ppid <= 1)
				break;
			p = proctree_find(t, p->ppid);
		}
	}
	return 0;
}

/* Whether the environment of pid holds exactly the entry env. */
static int
has_env(pid_t pid, const char *env)
{
	size_t len = strlen(env) + 1, n = 0, cap = 0;
	char path[64], *buf = NULL, *nb;
	int fd, found = 0;
	ssize_t r;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	for (;;) {
		if (n + 4096 > cap) {
			if (cap >= ENVIRON_MAX)
				break;
			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap + 1)) == NULL)
				break;
			buf = nb;
		}
		if ((r = read(fd, buf + n, cap - n)) <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	for (size_t i = 0; buf != NULL && i + len <= n + 1 && !found; ) {
		size_t elen = strnlen(buf + i, n - i);

		found = elen + 1 == len && memcmp(buf + i, env, len - 1) == 0;
		i += elen + 1;
	}
	free(buf);
	return found;
}

int
proctree_children_with_env(const struct proc_table *t, pid_t parent,
    const char *env, struct proc_set *out)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].ppid == parent && has_env(t->v[i].pid, env) &&
		    proc_set_add(out, &t->v[i]) < 0)
			return -1;
	return 0;
}

static int
pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static int
pidfd_signal_(int fd, int sig)
{
#ifdef SYS_pidfd_send_signal
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

int
proctree_signal(const struct proc_ent *e, int sig)
{
	pid_t ppid, pgid;
	uint64_t start;
	int fd, rc;

	/*
	 * The pidfd holds on to the process found by pid now: if its start
	 * time is the one seen, the signal can reach no other process.
	 * Without pidfds (before Linux 5.3) the check and the kill race.
	 */
	fd = pidfd_open_(e->pid);
	if (fd < 0 && errno != ENOSYS)
		return errno == ESRCH ? 0 : -1;
	if (read_stat(e->pid, &ppid, &pgid, &start) < 0 || start != e->start) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rc = fd >= 0 ? pidfd_signal_(fd, sig) : kill(e->pid, sig);
	if (fd >= 0) {
		int saved = errno;

		close(fd);
		errno = saved;
	}
	if (rc < 0)
		return errno == ESRCH ? 0 : -1;
	return 1;
}

size_t
proctree_signal_set(const struct proc_set *s, int sig)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		if (proctree_signal(&s->v[i], sig) > 0)
			n++;
	return n;
}

static int
spared(pid_t pid, const pid_t *spare, size_t nspare)
{
	for (size_t i = 0; i < nspare; i++)
		if (spare[i] == pid)
			return 1;
	return 0;
}

/* The processes below self, less the subtrees of spare; -1 on ENOMEM. */
static int
find_below(const struct proc_table *t, pid_t self, const pid_t *spare,
    size_t nspare, struct proc_set *below)
{
	struct proc_set roots = { 0 };
	int rc = 0;

	for (size_t i = 0; i < t->n && rc == 0; i++)
		if (t->v[i].ppid == self && !spared(t->v[i].pid, spare, nspare))
			rc = proc_set_add(&roots, &t->v[i]);
	if (rc == 0)
		rc = proctree_below(t, &roots, below);
	proc_set_free(&roots);
	return rc;
}

size_t
proctree_kill_below(pid_t self, const pid_t *spare, size_t nspare, int sig,
    size_t *found)
{
	struct proc_set below = { 0 };
	struct proc_table t;
	size_t n = 0;

	if (found != NULL)
		*found = 0;
	if (proctree_read(&t) < 0)
		return 0;
	(void)find_below(&t, self, spare, nspare, &below);
	if (found != NULL)
		*found = below.n;
	n = proctree_signal_set(&below, sig);
	proc_set_free(&below);
	proctree_free(&t);
	return n;
}

size_t
proctree_kill_all(pid_t self, const pid_t *spare, size_t nspare,
    int timeout_ms, size_t *killed)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	size_t left, n;

	if (killed != NULL)
		*killed = 0;
	for (int waited = 0;; waited += 10) {
		/* Dead children first: a zombie is below self until reaped. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		n = proctree_kill_below(self, spare, nspare, SIGKILL, &left);
		if (killed != NULL && waited == 0)
			*killed = n;
		if (left == 0 || waited >= timeout_ms)
			return left;
		nanosleep(&pause, NULL);
	}
}
