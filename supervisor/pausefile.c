/*
 * pausefile: state_dir/paused, the persisted pause (see pausefile.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pausefile.h"

static void
path_of(const char *dir, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* The rename or unlink is durable once the directory is synced. */
static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
pausefile_load(const char *state_dir, char *reason, size_t len, char *err,
    size_t errlen)
{
	char path[4096];
	ssize_t n;
	int fd;

	path_of(state_dir, "paused", path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, reason, len - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	reason[n] = '\0';
	reason[strcspn(reason, "\n")] = '\0';
	/* Edited by hand, it may hold what no terminal should be sent. */
	for (char *c = reason; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	/* A pause needs a reason: an empty one would read as enabled = no. */
	if (reason[0] == '\0')
		snprintf(reason, len, "paused (%s, no reason given)", path);
	return 1;
}

int
pausefile_save(const char *state_dir, const char *reason, char *err,
    size_t errlen)
{
	char tmp[4096], path[4096];
	size_t n = strlen(reason);
	int fd, rc = 0;

	path_of(state_dir, "paused.tmp", tmp, sizeof(tmp));
	path_of(state_dir, "paused", path, sizeof(path));
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0640);
	if (fd < 0 || write(fd, reason, n) != (ssize_t)n ||
	    write(fd, "\n", 1) != 1 || fsync(fd) < 0)
		rc = -1;
	if (fd >= 0 && close(fd) < 0)
		rc = -1;
	if (rc == 0 && (rename(tmp, path) < 0 || sync_dir(state_dir) < 0))
		rc = -1;
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

int
pausefile_clear(const char *state_dir, char *err, size_t errlen)
{
	char path[4096];

	path_of(state_dir, "paused", path, sizeof(path));
	if ((unlink(path) < 0 && errno != ENOENT) || sync_dir(state_dir) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
