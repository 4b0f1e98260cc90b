/*
 * argv: restart command templates.
 *
 * A template is split once, at configuration load, into words at spaces
 * and tabs; single or double quotes keep spaces inside a word (no escapes,
 * no variables, no shell).  Each "{host}" in a word is replaced by the
 * host name when the command runs; host names are RFC 1123 names, so the
 * substitution can never add a word or a shell metacharacter.
 */
#ifndef MANDRILL_ARGV_H
#define MANDRILL_ARGV_H

#include <stddef.h>

#define ARGV_MAX_WORDS	64

/* Split s into a NULL-terminated vector; -1 with err on bad syntax. */
char **argv_split(const char *s, char *err, size_t errlen);
/* A copy of tmpl with {host} replaced in every word. */
char **argv_expand(char *const *tmpl, const char *host);
void argv_free(char **argv);
/* Checks a template for use as a restart command; NULL or the reason. */
const char *argv_check_command(char *const *argv);

#endif
