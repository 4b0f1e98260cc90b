/*
 * argv: split a command template and substitute {host}.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"

void
argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

char **
argv_split(const char *s, char *err, size_t errlen)
{
	char **v = calloc(ARGV_MAX_WORDS + 1, sizeof(*v));
	char *word = malloc(strlen(s) + 1);
	size_t n = 0, len;
	char quote;

	if (v == NULL || word == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		if (n == ARGV_MAX_WORDS) {
			snprintf(err, errlen, "more than %d words", ARGV_MAX_WORDS);
			goto fail;
		}
		len = 0;
		quote = 0;
		for (; *s && (quote || (*s != ' ' && *s != '\t')); s++) {
			if (quote && *s == quote)
				quote = 0;
			else if (!quote && (*s == '\'' || *s == '"'))
				quote = *s;
			else
				word[len++] = *s;
		}
		if (quote) {
			snprintf(err, errlen, "unterminated %c quote", quote);
			goto fail;
		}
		word[len] = '\0';
		if ((v[n++] = strdup(word)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	free(word);
	return v;
fail:
	free(word);
	argv_free(v);
	return NULL;
}

static char *
expand_word(const char *w, const char *host)
{
	static const char key[] = "{host}";
	size_t n = 0, hl = strlen(host);
	const char *p;
	char *out, *o;

	for (p = w; (p = strstr(p, key)) != NULL; p += sizeof(key) - 1)
		n++;
	if ((out = malloc(strlen(w) + n * hl + 1)) == NULL)
		return NULL;
	for (o = out; *w;) {
		if (strncmp(w, key, sizeof(key) - 1) == 0) {
			memcpy(o, host, hl);
			o += hl;
			w += sizeof(key) - 1;
		} else
			*o++ = *w++;
	}
	*o = '\0';
	return out;
}

char **
argv_expand(char *const *tmpl, const char *host)
{
	size_t n = 0;
	char **v;

	while (tmpl[n] != NULL)
		n++;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((v[i] = expand_word(tmpl[i], host)) == NULL) {
			argv_free(v);
			return NULL;
		}
	return v;
}

const char *
argv_check_command(char *const *argv)
{
	int has_host = 0;

	if (argv[0] == NULL)
		return "command is empty";
	if (argv[0][0] != '/')
		return "command must start with an absolute path";
	if (strstr(argv[0], "{host}") != NULL)
		return "{host} cannot be in the program path";
	for (char *const *p = argv; *p; p++)
		if (strstr(*p, "{host}") != NULL)
			has_host = 1;
	if (!has_host)
		return "command must name {host}";
	return NULL;
}
