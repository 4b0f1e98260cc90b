/*
 * control: mandrillctl's Unix stream socket, served by the loop.
 *
 * The protocol is JSON lines: a client writes one JSON object per line,
 * {"cmd": "status"} say, and reads exactly one JSON object line back for
 * each, {"ok": true, ...} or {"ok": false, "code": "usage", "error":
 * "..."}.  A request is at most CONTROL_REQ_MAX bytes; a longer one, one
 * that is not a JSON object, or a client that stays silent for
 * CONTROL_IDLE_MS gets one error line and is closed.  Only root, the
 * daemon's user and members of control_group may connect: the socket's
 * mode says so to the kernel, SO_PEERCRED is checked at each accept.
 * What a request means is the owner's (a callback): this module knows
 * sockets and lines, not commands.
 */
#ifndef MANDRILL_CONTROL_H
#define MANDRILL_CONTROL_H

#include <stdint.h>
#include <sys/types.h>

#include <ev.h>
#include <jansson.h>

#include "conf.h"

#define CONTROL_REQ_MAX		65536
#define CONTROL_IDLE_MS		10000
#define CONTROL_CLIENTS_MAX	32

struct control_peer {
	pid_t		 pid;
	uid_t		 uid;
	gid_t		 gid;
};

/*
 * The answer to one request, a new reference; NULL answers "internal
 * error".  req is an object.
 */
typedef json_t *(*control_fn)(void *arg, json_t *req,
    const struct control_peer *peer);

struct control_cb {
	control_fn	 request;
	void		*arg;
};

struct cclient;

struct control {
	struct ev_loop	*loop;
	int		 fd;
	ev_io		 accept_w;
	char		 path[CONF_SUN_MAX];
	uid_t		 user;		/* the daemon's user; euid if none */
	gid_t		 gid;
	int		 has_gid;	/* control_group is set */
	struct control_cb cb;
	struct cclient	*clients;
	unsigned	 nclients;
	uint64_t	 requests, denied;
};

/*
 * Listen on path (a stale socket there is replaced, a live one or
 * anything else is an error), owned by user, in group if not empty.
 * 0, or -1 with err.
 */
int control_open(struct control *c, struct ev_loop *loop, const char *path,
    const char *user, const char *group, const struct control_cb *cb,
    char *err, size_t len);
/* Close every client and the socket, and remove it. */
void control_close(struct control *c);
/* An error answer: {"ok": false, "code": code, "error": text}. */
json_t *control_error(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
