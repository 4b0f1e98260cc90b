/*
 * mandrillctl: the operator's tool.  It asks mandrilld over its control
 * socket (client.c) and reads the database read-only (query.c); check.c
 * puts both together into a verdict per host.
 *
 * Exit statuses follow sysexits(3); every failure is one line on
 * standard error that names what went wrong.
 */
#ifndef MANDRILL_CTL_H
#define MANDRILL_CTL_H

#include <stdint.h>

#include <jansson.h>

#include "conf.h"

#define EX_NO		1	/* check: not every host would be restarted */
#define EX_USAGE	64
#define EX_DATAERR	65
#define EX_NOINPUT	66
#define EX_UNAVAILABLE	69
#define EX_SOFTWARE	70
#define EX_OSERR	71
#define EX_IOERR	74
#define EX_NOPERM	77
#define EX_CONFIG	78

struct ctl {
	struct conf	 conf;
	const char	*conf_path;
	char		 sock[CONF_SUN_MAX];
	char		 db[CONF_PATH_MAX + 16];
	int		 json;		/* --json: print the answers as JSON */
};

/*
 * Send one request, read its answer.  0 and *ans (a new reference) for
 * {"ok": true}; otherwise the one-line error is printed and the exit
 * status returned.
 */
int ctl_request(const struct ctl *c, json_t *req, json_t **ans);
/* The exit status for an answer's "code". */
int ctl_code_status(const char *code);

void ctl_print_status(const json_t *st);
/* The status's error budget as one line into buf; NULL when none. */
const char *ctl_budget(const json_t *st, char *buf, size_t len);

/* history HOST, dead: 0 or an exit status, errors printed. */
int query_history(const struct ctl *c, const char *host, int limit);
int query_dead(const struct ctl *c, const char *since, int limit);
int query_dead_payload(const struct ctl *c, const char *msg_id,
    char **payload, size_t *len, int64_t *dead_id);

/* What the database says of a host, for check. */
struct host_facts {
	char		 last_ok[40];	/* ISO time of its last success, or "" */
	int64_t		 last_ok_age;	/* ms, -1 if none */
	char		 busy_msg[128];	/* a message restarting it, or "" */
	int64_t		 running;	/* restarts running, all hosts */
	int64_t		 last_minute;	/* restarts started in the last 60 s */
	int64_t		 group_running;	/* restarts running in its group */
};
/* Opened read-only; NULL and an error printed (*status set). */
struct sqlite3 *query_open(const struct ctl *c, int *status);
/* group: the host's group, or NULL for none. */
int query_host(struct sqlite3 *db, const char *host, const char *group,
    struct host_facts *f);

/* check HOST...: 0 if every host would be restarted now, EX_NO if not. */
int check_hosts(const struct ctl *c, int n, char **hosts);

#endif
