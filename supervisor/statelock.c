/*
 * statelock: the flock on state_dir/mandrilld.lock.
 *
 * Root opens the file in a directory that [mandrill] user owns, so it is
 * never followed through a symlink (O_NOFOLLOW) and must be a regular
 * file.  The lock is taken before mandrilld detaches and travels with
 * the open file across the fork, so that the parent can report a refusal
 * on the terminal; the daemon then writes its own pid over the parent's.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "statelock.h"

/* The pid the holder wrote, or 0 if there is none to read. */
static long
holder(int fd)
{
	char buf[32], *end;
	ssize_t n;
	long pid;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return pid > 0 && end != buf && (*end == '\n' || *end == '\0') ?
	    pid : 0;
}

int
statelock_take(const char *dir, int *busy, char *err, size_t len)
{
	char path[4096];
	struct stat sb;
	long pid;
	int fd;

	*busy = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
	    STATELOCK_NAME) >= sizeof(path)) {
		snprintf(err, len, "state_dir %s: path too long", dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, len, "lock file %s: %s%s", path, strerror(errno),
		    errno == ELOOP ? " (a symlink; refusing to follow it)" : "");
		return -1;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, len, "lock file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			*busy = 1;
			if ((pid = holder(fd)) > 0)
				snprintf(err, len, "state_dir %s is in use by "
				    "mandrilld pid %ld (it holds %s); one "
				    "mandrilld per state_dir", dir, pid, path);
			else
				snprintf(err, len, "state_dir %s is in use by "
				    "another mandrilld (it holds %s); one "
				    "mandrilld per state_dir", dir, path);
		} else
			snprintf(err, len, "lock file %s: flock: %s", path,
			    strerror(errno));
		close(fd);
		return -1;
	}
	if (statelock_note(fd) < 0) {
		snprintf(err, len, "lock file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
statelock_note(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return 0;
}
