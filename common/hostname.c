/*
 * hostname: RFC 1123 checks and allow/deny globs.
 */
#include "config.h"

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
	return NULL;
}

/* Does host match any glob of the space- or comma-separated list? */
static int
list_match(const char *host, const char *list)
{
	char glob[256];

	while (*list) {
		size_t n = strcspn(list, " ,\t");

		/* conf_check() refuses longer globs; never match a cut one. */
		if (n > 0 && n < sizeof(glob)) {
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
