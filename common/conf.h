/*
 * conf: the mandrill configuration file, its keys, defaults and checks.
 *
 * One INI file with sections [mandrill], [source], [restart], [lease],
 * [metrics], [fleet].
 * Every key is described once, in conf.c's table: its type, default and
 * accepted form.  The parser, the sample file and the man page test all
 * read that table, so a key cannot exist in one and not the others.
 * Errors name file, line, key and the accepted form; unknown keys and
 * sections are errors.  struct conf holds no pointers, so a reload can
 * build a complete new one and swap it in only when it is valid.
 */
#ifndef MANDRILL_CONF_H
#define MANDRILL_CONF_H

#include <stddef.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CONF_PATH_MAX	1024
#define CONF_LIST_MAX	4096
#define CONF_NAME_MAX	256	/* NATS stream, subject, consumer names */
#define CONF_ERR_MAX	512
#define CONF_GLOB_MAX	255	/* bytes in one allow or deny glob */

enum source_type { SOURCE_SIM, SOURCE_NATS };
enum restart_mode { RESTART_SIM, RESTART_COMMAND };
enum sync_mode { SYNC_OFF, SYNC_NORMAL, SYNC_FULL };
enum coordination { COORD_NONE, COORD_NATS };

struct conf {
	/* [mandrill] */
	unsigned	 workers;
	unsigned	 jobs_per_worker;
	unsigned	 max_in_flight;
	char		 state_dir[CONF_PATH_MAX];
	char		 log_file[CONF_PATH_MAX];
	char		 pid_file[CONF_PATH_MAX];
	char		 worker_path[CONF_PATH_MAX];
	enum log_level	 log_level;
	int		 log_format;	/* 0 text, 1 json */
	int64_t		 drain_timeout;
	int64_t		 worker_timeout;
	int		 synchronous;	/* enum sync_mode */
	int64_t		 busy_timeout;
	uint64_t	 wal_limit;
	int64_t		 retain;	/* ms; 0: keep every row */
	char		 user[64];
	char		 control_socket[CONF_PATH_MAX];
	char		 control_group[64];

	/* [source] */
	int		 source;	/* enum source_type */
	unsigned	 batch;
	int64_t		 ack_deadline;
	unsigned	 rate;
	uint64_t	 count;
	int		 exit_when_done;
	uint64_t	 seed;
	uint64_t	 instances;
	char		 payload_file[CONF_PATH_MAX];
	char		 url[CONF_PATH_MAX];
	char		 stream[CONF_NAME_MAX];
	char		 subject[CONF_NAME_MAX];
	char		 durable[CONF_NAME_MAX];
	int64_t		 ack_wait;
	unsigned	 max_deliver;
	unsigned	 max_ack_pending;
	int		 create;
	unsigned	 replicas;
	char		 dead_letter_subject[CONF_NAME_MAX];
	char		 events_subject[CONF_NAME_MAX];
	char		 creds[CONF_PATH_MAX];		/* files: secrets */
	char		 nkey_seed[CONF_PATH_MAX];
	char		 token_file[CONF_PATH_MAX];
	char		 source_user[CONF_NAME_MAX];	/* [source] user */
	char		 password_file[CONF_PATH_MAX];
	char		 tls_ca[CONF_PATH_MAX];
	char		 tls_cert[CONF_PATH_MAX];
	char		 tls_key[CONF_PATH_MAX];

	/* [restart] */
	int		 mode;		/* enum restart_mode */
	char		 command[CONF_PATH_MAX];
	int		 enabled;
	int		 dry_run;
	unsigned	 max_concurrent;
	unsigned	 max_per_minute;
	int64_t		 sim_latency_min;
	int64_t		 sim_latency_max;
	double		 sim_failure_rate;
	uint64_t	 sim_seed;
	char		 domain[256];
	char		 allow[CONF_LIST_MAX];
	char		 deny[CONF_LIST_MAX];
	char		 window[CONF_PATH_MAX];	/* window.h; "" always */
	char		 timezone[256];		/* IANA name; "" local */
	char		 group[CONF_PATH_MAX];	/* ERE; "" no groups */
	unsigned	 max_concurrent_per_group;
	char		 check[CONF_PATH_MAX];	/* argv template; "" none */
	int64_t		 check_timeout;		/* ms */
	int64_t		 check_interval;	/* ms */
	char		 max_failures[16];	/* "", "N" or "N%" */
	int64_t		 failure_window;	/* ms */
	unsigned	 max_attempts;
	unsigned	 max_crashes;
	int64_t		 backoff_min;
	int64_t		 backoff_max;
	int64_t		 min_interval;
	int64_t		 restart_timeout;

	/* [lease] */
	int64_t		 max_lease;

	/* [fleet] */
	int		 coordination;	/* enum coordination */
	char		 instance[64];	/* "": the host name */
	char		 bucket[64];	/* the KV buckets' prefix */
	int64_t		 fleet_lease;	/* [fleet] lease: a grant's TTL, ms */
	int64_t		 remember;	/* how long a msg_id's record stays */

	/* [metrics] */
	char		 metrics_file[CONF_PATH_MAX];
	int64_t		 metrics_interval;
	int64_t		 status_interval;
	int64_t		 slow_iteration;

	/* Not a key: mandrilld's running state, sent to workers with the rest */
	char		 pause_reason[256];	/* paused by mandrillctl: why */
};

enum conf_type {
	CT_UINT, CT_U64, CT_DUR, CT_RANGE, CT_BOOL, CT_STR, CT_RATIO,
	CT_LEVEL, CT_ENUM, CT_LIST,
};

struct conf_key {
	const char	*section;
	const char	*name;
	enum conf_type	 type;
	size_t		 off;		/* offset in struct conf */
	size_t		 off2;		/* CT_RANGE: upper bound; CT_STR: size */
	const char	*def;		/* default, in file syntax */
	uint64_t	 min, max;	/* CT_UINT, CT_U64, CT_DUR */
	const char	*choices;	/* CT_ENUM: "a|b|c", index is the value */
	const char	*help;		/* one line, for the sample file */
};

extern const struct conf_key conf_keys[];
extern const size_t conf_nkeys;

/* Defaults for every key. */
void conf_defaults(struct conf *c);
/* Parse a file over the defaults.  0, or -1 with a one-line err. */
int conf_load(struct conf *c, const char *path, char *err, size_t errlen);
/* Same, from a string; name is used in error messages. */
int conf_load_string(struct conf *c, const char *text, const char *name,
    char *err, size_t errlen);
/* Set one key as the file would; used by tests and -o style overrides. */
int conf_set(struct conf *c, const char *section, const char *name,
    const char *value, char *err, size_t errlen);
/* Cross-key checks (min <= max and the like). */
int conf_check(const struct conf *c, char *err, size_t errlen);
/* The accepted form of a key, for error messages and the sample file. */
const char *conf_key_form(const struct conf_key *k, char *buf, size_t len);
/*
 * Make relative paths absolute from base (the directory mandrilld
 * started in) and check that the worker program can be run.
 */
int conf_resolve(struct conf *c, const char *base, char *err, size_t errlen);
/*
 * The control socket's path: control_socket, or control.sock in
 * state_dir.  0, or -1 if it is too long for a sockaddr_un.
 */
#define CONF_SUN_MAX	108	/* sizeof(sun_path) on Linux */
int conf_control_path(const struct conf *c, char *buf, size_t len);
/* Every key, commented, with its default: the sample mandrill.conf. */
void conf_write_sample(FILE *f);
const struct conf_key *conf_key_find(const char *section, const char *name);
/*
 * A NATS subject to publish on (dot-separated tokens, no spaces or
 * wildcards): NULL, or why not, to follow the subject in a message.
 */
const char *conf_subject_check(const char *subject);
/*
 * A list of NATS server URLs, each checked, as [source] url: 0, or -1
 * and err saying which element is wrong and why, its secrets redacted.
 */
int conf_url_check(const char *list, char *err, size_t errlen);

/*
 * [restart] max_failures: "" (no budget, n 0), "N" or "N%" (pct 1).
 * n or pct may be NULL; -1 when s is none of these.
 */
int conf_max_failures(const char *s, unsigned *n, int *pct);
/*
 * Why restarts are paused in this running configuration (mandrillctl
 * pause's reason, or "[restart] enabled = no"), or NULL when they are not.
 */
const char *conf_pause_reason(const struct conf *c);
/*
 * [restart] group: compile ere into re (NULL: only check it); "" is no
 * groups.  -1 with err when it does not compile or has no capture group.
 */
int conf_group_regex(const char *ere, regex_t *re, char *err, size_t len);
/* The host's group by re's first capture group; 0 and "" when none. */
int conf_group_of(const regex_t *re, const char *host, char *group,
    size_t len);

#endif
