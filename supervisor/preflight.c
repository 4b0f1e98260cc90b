/*
 * preflight: what start-up needs of the file system; see preflight.h.
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "preflight.h"

/* The directory part of path, in buf. */
static const char *
dir_of(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s", path);
	return dirname(buf);
}

/* A directory that files can be made in; NULL or why not. */
static const char *
dir_writable(const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb) < 0)
		return strerror(errno);
	if (!S_ISDIR(sb.st_mode))
		return "not a directory";
	if (access(dir, W_OK | X_OK) < 0)
		return strerror(errno);
	return NULL;
}

/*
 * A file that open(O_WRONLY | O_CREAT) would get: the file writable if
 * it is there, else its directory.  0, or -1 with the reason in err.
 */
static int
file_writable(const char *key, const char *path, char *err, size_t errlen)
{
	char buf[CONF_PATH_MAX];
	const char *why, *dir;
	struct stat sb;

	if (path[0] == '\0')
		return 0;
	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			why = "is a directory";
		else if (access(path, W_OK) < 0)
			why = strerror(errno);
		else
			return 0;
		snprintf(err, errlen, "[mandrill] %s %s: %s", key, path, why);
		return -1;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "[mandrill] %s %s: %s", key, path,
		    strerror(errno));
		return -1;
	}
	dir = dir_of(path, buf, sizeof(buf));
	if ((why = dir_writable(dir)) != NULL) {
		snprintf(err, errlen, "[mandrill] %s %s: cannot be created in "
		    "%s: %s", key, path, dir, why);
		return -1;
	}
	return 0;
}

/* As start-up would find state_dir: there and writable, or makeable. */
static int
state_dir_ok(const struct conf *c, char *err, size_t errlen)
{
	char buf[CONF_PATH_MAX], db[CONF_PATH_MAX + 16];
	const char *why, *parent;
	struct stat sb;

	if (stat(c->state_dir, &sb) < 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "[mandrill] state_dir %s: %s",
			    c->state_dir, strerror(errno));
			return -1;
		}
		parent = dir_of(c->state_dir, buf, sizeof(buf));
		if ((why = dir_writable(parent)) != NULL) {
			snprintf(err, errlen, "[mandrill] state_dir %s cannot be "
			    "made in %s: %s", c->state_dir, parent, why);
			return -1;
		}
		return 0;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "[mandrill] state_dir %s: not a directory",
		    c->state_dir);
		return -1;
	}
	/* Started as root with user set, the directory is given to the user. */
	if (c->user[0] != '\0' && geteuid() == 0)
		return 0;
	if ((why = dir_writable(c->state_dir)) != NULL) {
		snprintf(err, errlen, "[mandrill] state_dir %s: the workers could "
		    "not write the database there: %s", c->state_dir, why);
		return -1;
	}
	snprintf(db, sizeof(db), "%s/mandrill.db", c->state_dir);
	if (access(db, F_OK) == 0 && access(db, R_OK | W_OK) < 0) {
		snprintf(err, errlen, "[mandrill] state_dir %s: mandrill.db: %s",
		    c->state_dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
preflight_check(const struct conf *c, char *err, size_t errlen,
    preflight_warn_cb warn, void *arg)
{
	char buf[CONF_PATH_MAX], msg[CONF_PATH_MAX * 2 + 64];
	const char *why, *dir;

	if (state_dir_ok(c, err, errlen) < 0 ||
	    file_writable("log_file", c->log_file, err, errlen) < 0 ||
	    file_writable("pid_file", c->pid_file, err, errlen) < 0)
		return -1;
	if (c->metrics_file[0] != '\0') {
		dir = dir_of(c->metrics_file, buf, sizeof(buf));
		if ((why = dir_writable(dir)) != NULL) {
			snprintf(msg, sizeof(msg), "[metrics] metrics_file %s: "
			    "%s: %s; no metrics would be written",
			    c->metrics_file, dir, why);
			warn(arg, msg);
		}
	}
	return 0;
}

int
preflight_state_dir(const struct conf *c)
{
	struct passwd *pw = NULL;
	struct stat sb;

	if (mkdir(c->state_dir, 0750) < 0 && errno != EEXIST) {
		log_err("state_dir %s: %s", c->state_dir, strerror(errno));
		return -1;
	}
	if (stat(c->state_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		log_err("state_dir %s: not a directory", c->state_dir);
		return -1;
	}
	if (sb.st_mode & S_IWOTH) {
		log_err("state_dir %s is writable by everyone; refusing to "
		    "keep the audit log there (chmod o-w)", c->state_dir);
		return -1;
	}
	if (c->user[0] == '\0' || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(c->user)) == NULL) {
		log_err("[mandrill] user %s: no such user", c->user);
		return -1;
	}
	if (sb.st_uid != pw->pw_uid && chown(c->state_dir, pw->pw_uid,
	    pw->pw_gid) < 0) {
		log_err("state_dir %s: chown to %s: %s", c->state_dir, c->user,
		    strerror(errno));
		return -1;
	}
	return 0;
}
