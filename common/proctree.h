/*
 * proctree: the processes below this one, found in /proc, and killed.
 *
 * A restart command runs in its own process group, but a command that
 * calls setsid(2), or daemonizes, leaves the group, and a kill of the
 * group misses it.  A process that is a child subreaper
 * (PR_SET_CHILD_SUBREAPER) inherits every orphan of its descendants
 * instead of init, so such a process stays below it, where a walk of
 * /proc (each process's parent, followed up) finds it.
 *
 * A process is named by its pid and its start time (field 22 of
 * /proc/PID/stat), so that a pid reused by an unrelated process is never
 * signalled: proctree_signal() opens a pidfd and checks the start time
 * before it sends anything.  Only what the caller may signal anyway is
 * touched; nothing here needs privileges.
 */
#ifndef MANDRILL_PROCTREE_H
#define MANDRILL_PROCTREE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct proc_ent {
	pid_t		 pid;
	pid_t		 ppid;
	pid_t		 pgid;
	uint64_t	 start;		/* clock ticks after boot */
};

/* A snapshot of /proc: every process this one can see, sorted by pid. */
struct proc_table {
	struct proc_ent	*v;
	size_t		 n;
};

/* A set of processes, as (pid, start time). */
struct proc_set {
	struct proc_ent	*v;
	size_t		 n;
	size_t		 cap;
};

/* Become a child subreaper; -1 with errno when the kernel refuses. */
int proctree_subreaper(void);

/* Read /proc; -1 with errno (out of memory, no /proc). */
int proctree_read(struct proc_table *t);
void proctree_free(struct proc_table *t);
const struct proc_ent *proctree_find(const struct proc_table *t, pid_t pid);

/*
 * Add to out every process of t whose chain of parents reaches one of
 * roots (roots themselves included when in t).  -1 when out of memory;
 * what was added stays.
 */
int proctree_below(const struct proc_table *t, const struct proc_set *roots,
    struct proc_set *out);

/* The children of parent in t whose environment holds the entry env. */
int proctree_children_with_env(const struct proc_table *t, pid_t parent,
    const char *env, struct proc_set *out);

int proc_set_add(struct proc_set *s, const struct proc_ent *e);
int proc_set_has(const struct proc_set *s, pid_t pid, uint64_t start);
void proc_set_free(struct proc_set *s);

/*
 * Send sig to e if it is still the process it was; 1 when sent, 0 when
 * it is gone (or another process has its pid), -1 with errno.
 */
int proctree_signal(const struct proc_ent *e, int sig);

/* Signal every member of s; the number signalled. */
size_t proctree_signal_set(const struct proc_set *s, int sig);

/*
 * Send sig to every process below self but for the subtrees of the
 * children listed in spare (live workers, say); the number signalled,
 * and in *found (when not NULL) the number found, zombies included.
 */
size_t proctree_kill_below(pid_t self, const pid_t *spare, size_t nspare,
    int sig, size_t *found);

/*
 * At exit: SIGKILL everything below self (less spare's subtrees) and
 * reap every child that dies, spared ones included, until nothing is left
 * or timeout_ms has passed.  The number left: 0, or the processes that
 * would not die (another user's, or stuck in the kernel); in *killed
 * (when not NULL) the number the first pass signalled.
 */
size_t proctree_kill_all(pid_t self, const pid_t *spare, size_t nspare,
    int timeout_ms, size_t *killed);

#endif
