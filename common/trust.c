/*
 * trust: permission checks on what root runs, reads and writes.
 *
 * The rules are pure functions of struct stat (table-tested); the walk
 * resolves the path with realpath(3) and judges every directory from the
 * root down, then the file.  A symlinked program is judged twice: the
 * directories of the link (who may point it elsewhere) and the target.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trust.h"

const char trust_owner[] = "is owned by neither root nor the user mandrilld "
    "runs as";

static const char *
owner(const struct stat *sb, uid_t self)
{
	return sb->st_uid != 0 && sb->st_uid != self ? trust_owner : NULL;
}

const char *
trust_file(const struct stat *sb, uid_t self, enum trust_kind k)
{
	if (!S_ISREG(sb->st_mode))
		return "is not a regular file";
	if (sb->st_mode & S_IWOTH)
		return "is writable by everyone (chmod o-w)";
	if (sb->st_mode & S_IWGRP)
		return "is writable by its group (chmod g-w)";
	return owner(sb, self);
}

const char *
trust_dir(const struct stat *sb, uid_t self, enum trust_kind k, int parent)
{
	mode_t m = sb->st_mode;

	if (!S_ISDIR(m))
		return "is not a directory";
	if (owner(sb, self) != NULL)
		return trust_owner;
	if (parent && (m & S_IWOTH))
		return "is writable by everyone (chmod o-w)";
	if (parent && k == TRUST_PROGRAM && (m & S_IWGRP))
		return "is writable by its group (chmod g-w)";
	if (!parent && (m & (S_IWGRP | S_IWOTH)) &&
	    !((m & S_ISVTX) && sb->st_uid == 0))
		return "is writable by its group or others and not sticky, so "
		    "they can rename what it holds (chmod go-w)";
	return NULL;
}

static void
fail(char *err, size_t len, const char *what, const char *path,
    const char *why, const struct stat *sb)
{
	int n = snprintf(err, len, "%s%s%s %s", what, *what ? " " : "", path,
	    why);

	if (why == trust_owner && n >= 0 && (size_t)n < len)
		snprintf(err + n, len - (size_t)n, " (uid %u)",
		    (unsigned)sb->st_uid);
}

/* Every directory of dir (resolved, absolute) from / down to dir. */
static int
walk_dirs(const char *dir, enum trust_kind k, uid_t self, char *err,
    size_t len)
{
	char p[PATH_MAX];
	struct stat sb;
	const char *why;
	size_t n = 0, dlen = strlen(dir);

	if (dlen >= sizeof(p) || dir[0] != '/') {
		snprintf(err, len, "directory %s: not an absolute path", dir);
		return -1;
	}
	for (;;) {
		/* p is dir's first n bytes, or "/" */
		n = n == 0 ? 1 : n;
		memcpy(p, dir, n);
		p[n] = '\0';
		if (stat(p, &sb) < 0) {
			snprintf(err, len, "directory %s: %s", p, strerror(errno));
			return -1;
		}
		if ((why = trust_dir(&sb, self, k, n >= dlen)) != NULL) {
			fail(err, len, n >= dlen ? "its directory" :
			    "the directory", p, why, &sb);
			return -1;
		}
		if (n >= dlen)
			return 0;
		while (++n < dlen && dir[n] != '/')
			;
	}
}

/* The resolved directory that path names its file in. */
static int
resolved_dir(const char *path, char *out, char *err, size_t len)
{
	char d[PATH_MAX], *slash;

	if (strlen(path) >= sizeof(d) || path[0] != '/') {
		snprintf(err, len, "%s: not an absolute path", path);
		return -1;
	}
	memcpy(d, path, strlen(path) + 1);
	slash = strrchr(d, '/');
	if (slash == d)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (realpath(d, out) == NULL) {
		snprintf(err, len, "directory %s: %s", d, strerror(errno));
		return -1;
	}
	return 0;
}

int
trust_check(const char *path, enum trust_kind k, uid_t self, char *err,
    size_t len)
{
	char dir[PATH_MAX], real[PATH_MAX];
	struct stat sb;
	const char *why;

	if (resolved_dir(path, dir, err, len) < 0 ||
	    walk_dirs(dir, k, self, err, len) < 0)
		return -1;
	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT && k == TRUST_PROGRAM)
			return 0;
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(sb.st_mode)) {
		if (realpath(path, real) == NULL) {
			snprintf(err, len, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (resolved_dir(real, dir, err, len) < 0 ||
		    walk_dirs(dir, k, self, err, len) < 0)
			return -1;
		if (stat(real, &sb) < 0) {
			snprintf(err, len, "%s: %s", real, strerror(errno));
			return -1;
		}
		if ((why = trust_file(&sb, self, k)) != NULL) {
			fail(err, len, "its target", real, why, &sb);
			return -1;
		}
		return 0;
	}
	if ((why = trust_file(&sb, self, k)) != NULL) {
		fail(err, len, "", path, why, &sb);
		return -1;
	}
	return 0;
}

int
trust_written(const char *path, char *err, size_t len)
{
	struct stat sb;

	if (path[0] == '\0' || lstat(path, &sb) < 0)
		return 0;	/* missing: created without following links */
	if (S_ISLNK(sb.st_mode)) {
		snprintf(err, len, "%s is a symlink; refusing to write through "
		    "it as root", path);
		return -1;
	}
	return 0;
}
