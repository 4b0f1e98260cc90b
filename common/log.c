/*
 * log: timestamped records to stderr or a log file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static const char *names[] = { "DEBUG", "INFO", "WARNING", "ERROR" };

static struct {
	enum log_level	 level;
	int		 fd;
	char		 path[4096];
	char		 ident[32];
} lg = { LOG_INFO, STDERR_FILENO, "", "" };

int
log_level_parse(const char *s, enum log_level *out)
{
	static const struct { const char *name; enum log_level level; } tab[] = {
		{ "debug", LOG_DEBUG }, { "info", LOG_INFO },
		{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "error", LOG_ERR },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcasecmp(s, tab[i].name) == 0) {
			*out = tab[i].level;
			return 0;
		}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return names[level];
}

void
log_init(const char *ident)
{
	snprintf(lg.ident, sizeof(lg.ident), "%s", ident ? ident : "");
}

void
log_set_level(enum log_level level)
{
	lg.level = level;
}

enum log_level
log_get_level(void)
{
	return lg.level;
}

int
log_enabled(enum log_level level)
{
	return level >= lg.level;
}

int
log_fd(void)
{
	return lg.fd;
}

int
log_open(const char *path)
{
	int fd;

	if (path == NULL || *path == '\0') {
		if (lg.fd != STDERR_FILENO)
			close(lg.fd);
		lg.fd = STDERR_FILENO;
		lg.path[0] = '\0';
		return 0;
	}
	/* Root writes it: a symlink put in its place is not followed. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd < 0)
		return -1;
	if (lg.fd != STDERR_FILENO)
		close(lg.fd);
	lg.fd = fd;
	snprintf(lg.path, sizeof(lg.path), "%s", path);
	return 0;
}

const char *
log_open_error(int err)
{
	return err == ELOOP ? "is a symlink; refusing to follow it" :
	    strerror(err);
}

int
log_reopen(void)
{
	char path[sizeof(lg.path)];

	if (lg.path[0] == '\0')
		return 0;
	memcpy(path, lg.path, sizeof(path));
	return log_open(path);
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char buf[2048], ts[32];
	int n, m;
	int saved = errno;

	clock_iso(clock_wall(), ts, sizeof(ts));
	n = snprintf(buf, sizeof(buf), "%s %s %s%s", ts, names[level],
	    lg.ident, lg.ident[0] ? ": " : "");
	m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	n = (m < 0) ? n : (n + m > (int)sizeof(buf) - 2 ? (int)sizeof(buf) - 2 : n + m);
	/*
	 * Untrusted text may carry control characters: keep one record per
	 * line, and no escape sequence reaches an operator's terminal.
	 */
	for (int i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = buf[i] == '\t' ? ' ' : '?';
	buf[n++] = '\n';
	(void)!write(lg.fd, buf, n);
	errno = saved;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

void
log_always(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}
