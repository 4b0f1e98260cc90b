/*
 * hostname: host names are untrusted input.
 *
 * A host is restarted only if its name is an RFC 1123 name (labels of
 * letters, digits and hyphens, no label starting or ending with a hyphen,
 * 63 bytes a label, 253 in all) that cannot be taken for an IPv4
 * address (no all-numeric or 0x-hex last label, nothing inet_aton(3)
 * accepts), matches one of the allow globs and none of the deny globs.
 * An empty allow list allows nothing.
 */
#ifndef MANDRILL_HOSTNAME_H
#define MANDRILL_HOSTNAME_H

#include <stddef.h>

#define HOSTNAME_MAX 253

/* NULL if valid, else a short reason ("label starts with a hyphen"). */
const char *hostname_check(const char *name, size_t len);
/* 1 if allowed; 0 with *why set to the reason. */
int hostname_allowed(const char *host, const char *allow, const char *deny,
    const char **why);

/*
 * Does host match a glob of the space- or comma-separated list?  1 and
 * the glob in glob, or 0.
 */
int hostname_match(const char *host, const char *list, char *glob,
    size_t len);

#endif
