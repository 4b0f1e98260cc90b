/*
 * pausefile: the operator's pause, kept in state_dir/paused so that a
 * restarted mandrilld stays paused.
 *
 * The file holds one line, the reason.  It is written atomically (a
 * temporary file, fsync, rename) and never through a symlink.
 */
#ifndef MANDRILL_PAUSEFILE_H
#define MANDRILL_PAUSEFILE_H

#include <stddef.h>

#define PAUSE_REASON_MAX	256

/* 1 and the reason if paused, 0 if not, -1 with err if it cannot tell. */
int pausefile_load(const char *state_dir, char *reason, size_t len,
    char *err, size_t errlen);
/* 0, or -1 with err. */
int pausefile_save(const char *state_dir, const char *reason, char *err,
    size_t errlen);
int pausefile_clear(const char *state_dir, char *err, size_t errlen);

#endif
