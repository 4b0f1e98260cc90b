/*
 * statelock: one mandrilld per state_dir.
 *
 * Two daemons on one state directory would pull, hold and restart as if
 * each were alone, and no limit of the database would hold.  The first
 * to start takes an flock(2) on state_dir/mandrilld.lock and keeps it
 * for its life; the file says its pid, so that a second one can say whom
 * it found there.  The kernel drops the lock when its holder exits,
 * however it exits: there is never a stale lock to clear by hand.
 */
#ifndef MANDRILL_STATELOCK_H
#define MANDRILL_STATELOCK_H

#include <stddef.h>

#define STATELOCK_NAME	"mandrilld.lock"

/*
 * Take the lock of dir: the descriptor (close-on-exec; nothing else may
 * close it), or -1 with err set and *busy 1 when another process holds
 * it (err names its pid), 0 when the file cannot be had.
 */
int statelock_take(const char *dir, int *busy, char *err, size_t len);
/* Write this process's pid into the lock file (again, after a fork). */
int statelock_note(int fd);

#endif
