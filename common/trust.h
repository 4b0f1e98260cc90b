/*
 * trust: the files root runs, takes as its configuration, or writes.
 *
 * Whoever can change a program mandrilld runs can run anything as root;
 * whoever can change its configuration can restart any allowed host or
 * name another program; whoever can plant a symlink where root writes
 * can have root overwrite any file.  So:
 *
 *   - a program (worker_path, the restart command's program) is a
 *     regular file owned by root or by the user mandrilld runs as, that
 *     neither its group nor others can write, in a directory that
 *     neither its group nor others can write (sticky or not);
 *   - a configuration file is the same, in a directory that is not
 *     writable by everyone;
 *   - every directory above either is owned by root or that user, and
 *     one that its group or others can write must be sticky and owned by
 *     root (as /tmp), so that nobody else can rename what lies below;
 *   - a file root writes (pid_file, log_file, metrics_file) is never a
 *     symlink.
 *
 * A program that does not exist yet passes if its directories do: only
 * who may write them could put one there.
 */
#ifndef MANDRILL_TRUST_H
#define MANDRILL_TRUST_H

#include <sys/stat.h>
#include <sys/types.h>

#include <stddef.h>

enum trust_kind { TRUST_PROGRAM, TRUST_CONFIG };

/* The reason given for an owner that is neither root nor self. */
extern const char trust_owner[];

/* Pure: what is wrong with the file, or NULL. */
const char *trust_file(const struct stat *sb, uid_t self, enum trust_kind k);
/* Pure: with its directory (parent = 1) or one above (parent = 0). */
const char *trust_dir(const struct stat *sb, uid_t self, enum trust_kind k,
    int parent);
/* Walk an absolute path: 0, or -1 with a one-line reason in err. */
int trust_check(const char *path, enum trust_kind k, uid_t self, char *err,
    size_t len);
/* A file root writes: 0 if it is missing or no symlink, else -1 and err. */
int trust_written(const char *path, char *err, size_t len);

#endif
