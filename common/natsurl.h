/*
 * natsurl: the [source] url list, a comma-separated list of NATS
 * servers (nats://[user[:password]@]host[:port], or tls://).
 *
 * Pure string code, shared by the config check, mandrilld's nats source
 * and mandrill-publish: split the list for natsOptions_SetServers, check
 * each element, and redact the secret an element may carry (a password,
 * or a token given as the user part) before anything prints it.
 */
#ifndef MANDRILL_NATSURL_H
#define MANDRILL_NATSURL_H

#include <stddef.h>

#define NATSURL_MAX	32	/* servers in one list, at most */

/*
 * Split list into at most max elements, trimmed of spaces, pointing into
 * buf (a copy of list).  The count, or -1 when the list is empty, has an
 * empty element, has more than max, or does not fit buf.
 */
int natsurl_split(const char *list, char *buf, size_t buflen,
    const char **v, int max);
/* NULL when url is one well-formed server URL, else why not. */
const char *natsurl_check(const char *url);
/* 1 when an element of list carries a password or a token. */
int natsurl_has_secret(const char *list);
/* list with every password or token replaced by "***", for printing. */
const char *natsurl_redact(const char *list, char *out, size_t len);
/* 1 when an element of list is a tls:// URL. */
int natsurl_has_tls(const char *list);

#endif
