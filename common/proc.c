/*
 * proc: /proc/PID/stat parsing and the process group decisions.
 *
 * The stat line is "PID (COMM) STATE PPID PGRP ..." where COMM is up to
 * 15 bytes of anything but NUL, spaces and parentheses included: the
 * fields after it start after the last ')' of the line, never the first.
 * The parser and the decisions are pure; proc_stat_read is the only I/O.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#define START_FIELD	22

/* One decimal field at *p, maybe negative, then a space or the end. */
static int
field(const char **p, const char *end, int *neg, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	*neg = s < end && *s == '-';
	if (*neg)
		s++;
	if (s == end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (s < end && *s != ' ' && *s != '\n')
		return -1;
	*v = n;
	*p = s < end ? s + 1 : s;
	return 0;
}

static int
pid_field(int neg, uint64_t v, pid_t *out)
{
	if (neg || v > INT_MAX)
		return -1;
	*out = (pid_t)v;
	return 0;
}

int
proc_stat_parse(const char *buf, size_t len, struct proc_stat *ps)
{
	const char *p = buf, *end = buf + len, *close;
	uint64_t v;
	int neg;

	if (len == 0 || len > PROC_STAT_MAX)
		return -1;
	if (field(&p, end, &neg, &v) < 0 || pid_field(neg, v, &ps->pid) < 0 ||
	    p >= end || *p != '(')
		return -1;
	for (close = end; close > p && close[-1] != ')'; close--)
		;
	if (close == p)
		return -1;
	/* close is just past the last ')': " S PPID PGRP ..." follows */
	if (end - close < 3 || close[0] != ' ' || close[2] != ' ' ||
	    !((close[1] >= 'A' && close[1] <= 'Z') ||
	    (close[1] >= 'a' && close[1] <= 'z')))
		return -1;
	ps->state = close[1];
	p = close + 3;
	for (int f = 4; f <= START_FIELD; f++) {
		if (field(&p, end, &neg, &v) < 0)
			return -1;
		if ((f == 4 && pid_field(neg, v, &ps->ppid) < 0) ||
		    (f == 5 && pid_field(neg, v, &ps->pgrp) < 0) ||
		    (f == START_FIELD && neg))
			return -1;
		if (f == START_FIELD)
			ps->start = v;
	}
	return 0;
}

int
proc_stat_read(pid_t pid, struct proc_stat *ps)
{
	char path[64], buf[PROC_STAT_MAX + 1];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -1;	/* ESRCH: it went between the open and read */
	if (proc_stat_parse(buf, (size_t)n, ps) < 0 || ps->pid != pid) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

const char *
proc_group_claim(const struct proc_stat *ps, pid_t pgid, pid_t worker)
{
	if (pgid <= 1)
		return "not a process group that can be killed";
	if (ps->pid != pgid)
		return "the status read is not that process's";
	if (ps->pgrp != pgid)
		return "its process is not a group leader";
	if (ps->ppid != worker)
		return "its leader is not a child of the worker";
	return NULL;
}

const char *
proc_group_kill(const struct proc_stat *ps, pid_t pgid, uint64_t start,
    pid_t worker, int worker_exited)
{
	if (pgid <= 1)
		return "not a process group that can be killed";
	if (ps->pid != pgid)
		return "the status read is not that process's";
	if (ps->start != start)
		return "its pid now belongs to another process";
	if (ps->pgrp != pgid)
		return "its leader left the group";
	if (!worker_exited && ps->ppid != worker)
		return "its leader is no longer a child of the worker";
	return NULL;
}
