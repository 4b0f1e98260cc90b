/*
 * log: one-line, timestamped, levelled log records.
 *
 * "2026-11-28T10:03:56.842Z INFO Pulled msg_id=... instance=cattle-ief8"
 * Each record is written with a single write(2) on an O_APPEND descriptor,
 * so that the supervisor and its workers can share one log file without
 * tearing each other's lines.  log_reopen() serves logrotate (SIGUSR1).
 */
#ifndef MANDRILL_LOG_H
#define MANDRILL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* On stderr that is the journal's stream, lines get sd-daemon prefixes. */
void log_init(const char *ident);
/* JSON lines: ts, level, ident, msg, and msg_id, host... when said. */
void log_set_json(int on);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_open(const char *path);		/* NULL or "" means stderr */
int log_reopen(void);
/* Why log_open failed, from its errno: ELOOP is a refused symlink. */
const char *log_open_error(int err);
int log_fd(void);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Whatever the level: for the one summary line at exit. */
void log_always(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_enabled(LOG_INFO)) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)

#endif
