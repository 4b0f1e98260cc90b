/*
 * log: timestamped records to stderr or a log file, as text or as JSON
 * lines; on the journal's stream, with its priority prefixes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static const char *names[] = { "DEBUG", "INFO", "WARNING", "ERROR" };

static const char *json_names[] = { "debug", "info", "warning", "error" };
/* sd-daemon(3) prefixes: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR. */
static const char *journal_prefix[] = { "<7>", "<6>", "<4>", "<3>" };

static struct {
	enum log_level	 level;
	int		 fd;
	int		 json;		/* log_format = json */
	int		 journal;	/* fd is the journal's stream */
	char		 path[4096];
	char		 ident[32];
} lg = { LOG_INFO, STDERR_FILENO, 0, 0, "", "" };

/*
 * systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * connected to stderr; a stderr redirected elsewhere since does not match.
 */
static int
on_journal(int fd)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat sb;

	return e != NULL && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(fd, &sb) == 0 && (unsigned long long)sb.st_dev == dev &&
	    (unsigned long long)sb.st_ino == ino;
}

void
log_set_json(int on)
{
	lg.json = on != 0;
}

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
	lg.journal = lg.fd == STDERR_FILENO && on_journal(STDERR_FILENO);
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
		lg.journal = on_journal(STDERR_FILENO);
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
	lg.journal = 0;
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

/* Length of the valid UTF-8 sequence at p (of n bytes), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 :
	    p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;

	if (p[0] >= 0xf5 || len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xf0 && p[1] < 0x90) ||
	    (p[0] == 0xed && p[1] >= 0xa0) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;	/* overlong, surrogate, beyond U+10FFFF */
	return len;
}

/* s as the body of a JSON string into out; its length, bounded by size. */
static size_t
json_str(char *out, size_t size, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, k;

	for (size_t i = 0; i < n && o + 7 < size; i++) {
		if (p[i] == '"' || p[i] == '\\') {
			out[o++] = '\\';
			out[o++] = (char)p[i];
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", p[i]);
		} else if (p[i] < 0x80) {
			out[o++] = (char)p[i];
		} else if ((k = utf8_len(p + i, n - i)) > 0 && o + k < size) {
			memcpy(out + o, p + i, k);
			o += k;
			i += k - 1;
		} else
			out[o++] = '?';	/* not UTF-8: not in a JSON text */
	}
	return o;
}

/*
 * The key=value words that a log shipper wants as fields: the value
 * runs to the next space (a colon or comma ending it is not part of it).
 */
static const char *const fields[] = {
	"msg_id", "host", "attempt", "outcome", "delivery", "instance"
};

static size_t
json_fields(char *out, size_t size, const char *msg)
{
	size_t o = 0;

	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		size_t kl = strlen(fields[f]), vl;
		const char *p = msg;

		while ((p = strstr(p, fields[f])) != NULL &&
		    ((p > msg && p[-1] != ' ') || p[kl] != '='))
			p += kl;
		if (p == NULL || o + kl + 8 >= size)
			continue;
		p += kl + 1;
		vl = strcspn(p, " ");
		while (vl > 0 && (p[vl - 1] == ':' || p[vl - 1] == ',' ||
		    p[vl - 1] == ';'))
			vl--;
		o += (size_t)snprintf(out + o, size - o, ",\"%s\":\"", fields[f]);
		o += json_str(out + o, size - o - 2, p, vl);
		out[o++] = '"';
	}
	return o;
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char msg[2048], buf[6144], ts[32];
	const char *pre = lg.journal ? journal_prefix[level] : "";
	int m;
	size_t n;
	int saved = errno;

	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	n = m < 0 ? 0 : (size_t)m >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)m;
	msg[n] = '\0';
	clock_iso(clock_wall(), ts, sizeof(ts));
	if (lg.json) {
		n = (size_t)snprintf(buf, sizeof(buf), "%s{\"ts\":\"%s\","
		    "\"level\":\"%s\",\"ident\":\"%s\",\"msg\":\"", pre, ts,
		    json_names[level], lg.ident[0] ? lg.ident : "mandrilld");
		n += json_str(buf + n, sizeof(buf) - n - 2, msg, strlen(msg));
		buf[n++] = '"';
		n += json_fields(buf + n, sizeof(buf) - n - 3, msg);
		buf[n++] = '}';
	} else {
		/* The journal stamps each line itself. */
		n = (size_t)snprintf(buf, sizeof(buf), "%s%s%s%s %s%s%s", pre,
		    lg.journal ? "" : ts, lg.journal ? "" : " ", names[level],
		    lg.ident, lg.ident[0] ? ": " : "", msg);
		if (n > sizeof(buf) - 2)
			n = sizeof(buf) - 2;
		/*
		 * Untrusted text may carry control characters: keep one
		 * record per line, and no escape sequence reaches an
		 * operator's terminal.
		 */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
				buf[i] = buf[i] == '\t' ? ' ' : '?';
	}
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
