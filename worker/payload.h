/*
 * payload: parse and validate a restart request (untrusted JSON).
 *
 *   {"msg_id": "...", "instance_name": "cattle-1a2b"}
 *   {"msg_id": "...", "host": "db1.example.com"}
 *
 * The payload must be at most PAYLOAD_MAX bytes of UTF-8 JSON, an object
 * with a string msg_id (1 to 128 printable ASCII characters, no spaces)
 * and exactly one of instance_name or host.  The host is instance_name,
 * plus "." and the domain when one is configured, or host as given; it
 * must then be an RFC 1123 name; it is kept in lower case, so that one
 * host has one spelling in the database.  An optional group (1 to 63
 * letters, digits, '.', '_' or '-') names the host's group for
 * max_concurrent_per_group, before [restart] group's regex.  Other keys
 * are ignored.
 */
#ifndef MANDRILL_PAYLOAD_H
#define MANDRILL_PAYLOAD_H

#include <stddef.h>

#define PAYLOAD_MAX	16384
#define MSG_ID_MAX	128
#define GROUP_MAX	63

struct payload {
	char	msg_id[MSG_ID_MAX + 1];	/* "" when none could be read */
	char	instance[254];
	char	host[254];
	/*
	 * The payload's (at most GROUP_MAX), or [restart] group's capture
	 * of the host name, which is at most as long as the name.
	 */
	char	group[254];		/* "": in no group */
};

/* 0, or -1 with a one-line reason; p->msg_id is kept when it was read. */
int payload_parse(const char *data, size_t len, size_t size,
    const char *domain, struct payload *p, char *err, size_t errlen);

#endif
