/*
 * simpayload: the sim's payload_file, read whole at start: one payload a
 * line, given as is however broken (the hostile corpus), with \xHH for
 * any byte and \\ for a backslash.
 */
#ifndef MANDRILL_SIMPAYLOAD_H
#define MANDRILL_SIMPAYLOAD_H

#include <stddef.h>

struct payloads {
	char		**data;		/* one per line, unescaped */
	size_t		 *len;
	size_t		  n;
};

/* Appends the file's lines to p; -1 with err (p keeps what was read). */
int payloads_load(struct payloads *p, const char *path, char *err,
    size_t len);
void payloads_free(struct payloads *p);

#endif
