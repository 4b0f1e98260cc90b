/*
 * simpayload: read the sim's payload_file into memory, one payload a
 * line.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "simpayload.h"

/* One line of a payload file: \\xHH is any byte, \\\\ a backslash. */
static size_t
unescape(char *line)
{
	char *in = line, *out = line;
	unsigned v;

	while (*in) {
		if (in[0] == '\\' && in[1] == '\\') {
			*out++ = '\\';
			in += 2;
		} else if (in[0] == '\\' && in[1] == 'x' &&
		    isxdigit((unsigned char)in[2]) &&
		    isxdigit((unsigned char)in[3]) &&
		    sscanf(in + 2, "%2x", &v) == 1) {
			*out++ = (char)v;
			in += 4;
		} else
			*out++ = *in++;
	}
	return (size_t)(out - line);
}

int
payloads_load(struct payloads *p, const char *path, char *err, size_t len)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, n;
	ssize_t got;

	if (f == NULL) {
		snprintf(err, len, "payload_file %s: %s", path, strerror(errno));
		return -1;
	}
	while ((got = getline(&line, &cap, f)) >= 0) {
		if (got > 0 && line[got - 1] == '\n')
			line[--got] = '\0';
		char **dv;
		size_t *lv;

		n = p->n + 1;
		if ((dv = realloc(p->data, n * sizeof(*dv))) != NULL)
			p->data = dv;
		if ((lv = realloc(p->len, n * sizeof(*lv))) != NULL)
			p->len = lv;
		if (dv == NULL || lv == NULL ||
		    (p->data[p->n] = strdup(line)) == NULL) {
			snprintf(err, len, "payload_file %s: out of memory", path);
			free(line);
			fclose(f);
			return -1;
		}
		p->len[p->n] = unescape(p->data[p->n]);
		p->n = n;
	}
	free(line);
	fclose(f);
	return 0;
}

void
payloads_free(struct payloads *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->data[i]);
	free(p->data);
	free(p->len);
	p->data = NULL;
	p->len = NULL;
	p->n = 0;
}
