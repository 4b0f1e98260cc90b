/*
 * hostname: RFC 1123 checks and allow/deny globs.
 *
 * A name that the resolver would take for an IPv4 address (an all-numeric
 * last label, a hex 0x... label, anything inet_aton(3) parses: 2130706433,
 * 127.1, 0177.0.0.1, 0x7f.1) is refused before the globs see it, since
 * "deny = 127.*" cannot know all the spellings of one address.
 */
#include "config.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <fnmatch.h>
#include <string.h>

#include "hostname.h"

static int
ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

/* Is the label of n bytes all digits, or 0x and hex digits? */
static const char *
numeric_label(const char *s, size_t n)
{
	size_t i = 0;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (i = 2; i < n && isxdigit((unsigned char)s[i]); i++)
			;
		return i == n ? "host name ends in a hex number label "
		    "(0x...), a form that resolves as an IPv4 address" : NULL;
	}
	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	return i == n ? "host name ends in an all-numeric label, a form "
	    "that resolves as an IPv4 address" : NULL;
}

/* The name has passed the syntax checks: len <= HOSTNAME_MAX, no NUL. */
static const char *
address_form(const char *name, size_t len)
{
	char buf[HOSTNAME_MAX + 1];
	struct in_addr in;
	const char *last = name, *why;

	for (size_t i = 0; i < len; i++)
		if (name[i] == '.')
			last = name + i + 1;
	if ((why = numeric_label(last, len - (size_t)(last - name))) != NULL)
		return why;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (inet_aton(buf, &in) != 0)
		return "host name is an IPv4 address";
	return NULL;
}

const char *
hostname_check(const char *name, size_t len)
{
	size_t label = 0;

	if (len == 0)
		return "empty host name";
	if (len > HOSTNAME_MAX)
		return "host name longer than 253 bytes";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = name[i];

		if (c == '.') {
			if (label == 0)
				return "empty label in host name";
			if (name[i - 1] == '-')
				return "host name label ends with a hyphen";
			label = 0;
			continue;
		}
		if (!ldh(c))
			return "host name has a character other than letters, "
			    "digits, hyphens and dots";
		if (label == 0 && c == '-')
			return "host name label starts with a hyphen";
		if (++label > 63)
			return "host name label longer than 63 bytes";
	}
	if (label == 0)
		return "host name ends with a dot";
	if (name[len - 1] == '-')
		return "host name label ends with a hyphen";
	return address_form(name, len);
}

int
hostname_match(const char *host, const char *list, char *glob, size_t len)
{
	while (*list) {
		size_t n = strcspn(list, " ,\t");

		/* conf_check() refuses longer globs; never match a cut one. */
		if (n > 0 && n < len) {
			memcpy(glob, list, n);
			glob[n] = '\0';
			if (fnmatch(glob, host, FNM_CASEFOLD) == 0)
				return 1;
		}
		list += n;
		list += strspn(list, " ,\t");
	}
	return 0;
}

static int
list_match(const char *host, const char *list)
{
	char glob[256];

	return hostname_match(host, list, glob, sizeof(glob));
}

int
hostname_allowed(const char *host, const char *allow, const char *deny,
    const char **why)
{
	if (!list_match(host, allow)) {
		*why = "host not in the allow list";
		return 0;
	}
	if (list_match(host, deny)) {
		*why = "host in the deny list";
		return 0;
	}
	return 1;
}
