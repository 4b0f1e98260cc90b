/*
 * preflight: what start-up needs of the file system, checked by
 * mandrilld -t without changing anything, and made at start-up.
 *
 * preflight_check() fails on each thing that would make start-up fail
 * once the file has parsed: a state_dir that is not a directory, or
 * cannot be made (its parent missing, or not writable), or whose database
 * could not be written; a log_file or pid_file that could not be opened
 * for writing (the file not writable, its directory missing or not
 * writable).  It judges with the credentials of the process that runs
 * it, so run mandrilld -t as the user mandrilld will run as; as root,
 * only a missing directory, a wrong file type or a read-only file system
 * are seen.  What would not stop start-up but fail later (metrics_file's
 * directory) goes to warn.
 *
 * preflight_state_dir() makes the state directory at start-up (0750,
 * owned by [mandrill] user when started as root); it logs why it cannot.
 */
#ifndef MANDRILL_PREFLIGHT_H
#define MANDRILL_PREFLIGHT_H

#include <stddef.h>

#include "conf.h"

typedef void (*preflight_warn_cb)(void *arg, const char *msg);

int preflight_check(const struct conf *c, char *err, size_t errlen,
    preflight_warn_cb warn, void *arg);
int preflight_state_dir(const struct conf *c);

#endif
