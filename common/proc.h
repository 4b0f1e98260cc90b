/*
 * proc: who a process is, from /proc/PID/stat, and whether a process
 * group a worker names may be killed as its command's.
 *
 * A worker is untrusted (it parses payloads): the process group it
 * reports for a restart command is recorded only if that group's leader
 * is the worker's own child, and killed later only if the leader is still
 * the same process (same pid, same start time), so that neither a lie
 * nor a reused pid makes root kill a stranger's group.
 */
#ifndef MANDRILL_PROC_H
#define MANDRILL_PROC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define PROC_STAT_MAX	4096	/* a longer stat line is refused */

struct proc_stat {
	pid_t		 pid;
	char		 state;		/* R, S, D, Z, ... */
	pid_t		 ppid;
	pid_t		 pgrp;
	uint64_t	 start;		/* field 22: clock ticks after boot */
};

/* Parse one stat line of len bytes; 0, or -1 if it is not one. */
int proc_stat_parse(const char *buf, size_t len, struct proc_stat *ps);
/* Read /proc/PID/stat; -1 with errno (ENOENT: no such process). */
int proc_stat_read(pid_t pid, struct proc_stat *ps);

/*
 * May pgid be recorded as the group of a command that worker started?
 * ps is the stat of process pgid.  NULL if so, else why not.
 */
const char *proc_group_claim(const struct proc_stat *ps, pid_t pgid,
    pid_t worker);
/*
 * May the group recorded as pgid with leader start time start be killed?
 * While the worker runs its leader must still be the worker's child; once
 * the worker has exited the leader has been reparented, and its identity
 * (pid and start time) is what is left to check.  NULL if so, else why.
 */
const char *proc_group_kill(const struct proc_stat *ps, pid_t pgid,
    uint64_t start, pid_t worker, int worker_exited);

#endif
