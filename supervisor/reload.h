/*
 * reload: read the configuration file, at start and on SIGHUP.
 *
 * A new configuration is read and checked completely before anything
 * old is retired; applying it is the supervisor's.
 */
#ifndef MANDRILL_RELOAD_H
#define MANDRILL_RELOAD_H

#include <stddef.h>

#include "conf.h"
#include "source.h"

/* What the command line sets over the file, at start and at each reload. */
struct overrides {
	char		 conf_path[CONF_PATH_MAX];
	char		 cwd[CONF_PATH_MAX];	/* relative paths start here */
	char		 pid_file[CONF_PATH_MAX];	/* "" if not given */
	int		 level;			/* enum log_level, -1 if not given */
};

/* The file with the overrides, checked as start-up would; 0 or -1 and err. */
int config_read(const struct overrides *ov, struct conf *c, char *err,
    size_t len);
/*
 * A reload's new configuration in *c, checked against the running one
 * (old) and taken by the source: 0 if it can be applied; -1, logged and
 * told to systemd, if it is invalid, changes a setting that needs a
 * restart, or the source refuses it; why says which, in one line.  A new log_file is opened here (the
 * old one stays if it cannot be).
 */
int reload_prepare(const struct overrides *ov, const struct conf *old,
    struct source *src, struct conf *c, char *why, size_t whylen);

#endif
