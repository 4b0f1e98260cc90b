/*
 * fuzz_conf: the configuration parser (inih plus mandrill's checks) on
 * arbitrary text; errors must be reported, never crash.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONF_ERR_MAX];
	struct conf c;
	char *text;

	if (size > 65536 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';	/* conf_load() refuses NUL bytes before this */
	conf_defaults(&c);
	if (conf_load_string(&c, text, "fuzz.conf", err, sizeof(err)) < 0 &&
	    err[0] == '\0')
		__builtin_trap();	/* a failure must say why */
	free(text);
	return 0;
}
