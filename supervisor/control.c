/*
 * control: the control socket's mechanism: listen, check who connects,
 * cut the stream into request lines, hand each to the owner's callback
 * and write its one answer back.
 *
 * Everything runs on the loop, nonblocking: a client that sends slowly
 * or reads slowly costs a buffer, never a stall.  While an answer is
 * unsent nothing more is read from that client, so one client holds at
 * most one request and one answer.  A client that goes bad inside a
 * callback is only marked; it is freed once the callback is done.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "log.h"

struct cclient {
	struct cclient		*next;
	struct control		*ctl;
	int			 fd;
	ev_io			 rw, ww;
	ev_timer		 idle;
	struct control_peer	 peer;
	char			*in;		/* CONTROL_REQ_MAX + 1 */
	size_t			 inlen;
	char			*out;
	size_t			 outlen, outoff;
	int			 closing;	/* close once out is sent */
};

json_t *
control_error(const char *code, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error",
	    text);
}

static void
client_free(struct cclient *cl)
{
	struct control *c = cl->ctl;
	struct cclient **pp;

	for (pp = &c->clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	c->nclients--;
	ev_io_stop(c->loop, &cl->rw);
	ev_io_stop(c->loop, &cl->ww);
	ev_timer_stop(c->loop, &cl->idle);
	close(cl->fd);
	free(cl->in);
	free(cl->out);
	free(cl);
}

/* Queue one answer line; the caller owns ans. */
static void
client_answer(struct cclient *cl, json_t *ans)
{
	static const char oom[] = "{\"ok\": false, \"code\": \"software\", "
	    "\"error\": \"out of memory\"}";
	char *text = ans != NULL ? json_dumps(ans, JSON_COMPACT) : NULL;
	const char *line = text != NULL ? text : oom;
	size_t n = strlen(line);
	char *out;

	if ((out = realloc(cl->out, cl->outlen + n + 1)) == NULL) {
		cl->closing = 1;
	} else {
		cl->out = out;
		memcpy(out + cl->outlen, line, n);
		out[cl->outlen + n] = '\n';
		cl->outlen += n + 1;
	}
	free(text);
	ev_io_stop(cl->ctl->loop, &cl->rw);
	ev_io_start(cl->ctl->loop, &cl->ww);
}

static void
client_error(struct cclient *cl, const char *code, const char *text)
{
	json_t *ans = control_error(code, "%s", text);

	client_answer(cl, ans);
	json_decref(ans);
	cl->closing = 1;
}

static void
client_request(struct cclient *cl, const char *line, size_t len)
{
	struct control *c = cl->ctl;
	json_error_t jerr;
	json_t *req, *ans;

	c->requests++;
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL || !json_is_object(req)) {
		ans = req == NULL ? control_error("usage", "request is not "
		    "JSON: %s", jerr.text) : control_error("usage",
		    "request is not a JSON object");
	} else if ((ans = c->cb.request(c->cb.arg, req, &cl->peer)) == NULL) {
		ans = control_error("software", "internal error");
	}
	client_answer(cl, ans);
	json_decref(ans);
	json_decref(req);
}

/* The first complete line in, if any, is answered and taken out. */
static void
client_lines(struct cclient *cl)
{
	char *nl = memchr(cl->in, '\n', cl->inlen);
	size_t n;

	if (nl == NULL) {
		if (cl->inlen >= CONTROL_REQ_MAX)
			client_error(cl, "usage", "request longer than 65536 "
			    "bytes");
		return;
	}
	n = (size_t)(nl - cl->in);
	client_request(cl, cl->in, n);
	memmove(cl->in, nl + 1, cl->inlen - n - 1);
	cl->inlen -= n + 1;
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cclient *cl = w->data;
	ssize_t n;

	n = read(cl->fd, cl->in + cl->inlen, CONTROL_REQ_MAX - cl->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n == 0 && cl->inlen > 0)	/* a last line without \n */
			client_request(cl, cl->in, cl->inlen);
		cl->inlen = 0;
		if (cl->outlen == 0) {
			client_free(cl);
			return;
		}
		cl->closing = 1;
		return;
	}
	cl->inlen += (size_t)n;
	ev_timer_again(loop, &cl->idle);
	client_lines(cl);
}

static void
client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cclient *cl = w->data;
	ssize_t n;

	n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff,
	    MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		client_free(cl);
		return;
	}
	cl->outoff += (size_t)n;
	if (cl->outoff < cl->outlen)
		return;
	cl->outoff = cl->outlen = 0;
	ev_io_stop(loop, &cl->ww);
	if (cl->closing) {
		client_free(cl);
		return;
	}
	ev_io_start(loop, &cl->rw);
	client_lines(cl);	/* a pipelined request already read */
}

static void
client_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct cclient *cl = t->data;

	if (cl->outlen > 0) {		/* it does not read its answer */
		client_free(cl);
		return;
	}
	client_error(cl, "usage", "no complete request within 10 s");
}

/* Is uid in gid, as a primary or supplementary group? */
static int
uid_in_group(uid_t uid, gid_t gid)
{
	struct passwd *pw = getpwuid(uid);
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));

	if (pw == NULL)
		return 0;
	if (pw->pw_gid == gid)
		return 1;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

static int
peer_allowed(const struct control *c, const struct control_peer *p)
{
	if (p->uid == 0 || p->uid == geteuid() || p->uid == c->user)
		return 1;
	return c->has_gid && (p->gid == c->gid || uid_in_group(p->uid,
	    c->gid));
}

static struct cclient *
client_new(struct control *c, int fd)
{
	struct cclient *cl;

	if ((cl = calloc(1, sizeof(*cl))) == NULL ||
	    (cl->in = malloc(CONTROL_REQ_MAX + 1)) == NULL) {
		free(cl);
		return NULL;
	}
	cl->ctl = c;
	cl->fd = fd;
	ev_io_init(&cl->rw, client_read_cb, fd, EV_READ);
	ev_io_init(&cl->ww, client_write_cb, fd, EV_WRITE);
	ev_timer_init(&cl->idle, client_idle_cb, 0.,
	    CONTROL_IDLE_MS / 1000.0);
	cl->rw.data = cl->ww.data = cl->idle.data = cl;
	cl->next = c->clients;
	c->clients = cl;
	c->nclients++;
	return cl;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *c = w->data;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct cclient *cl;
	int fd;

	fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("control: accept: %s", strerror(errno));
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cl = client_new(c, fd)) == NULL) {
		log_warn("control: a client could not be taken: %s",
		    strerror(errno));
		close(fd);
		return;
	}
	cl->peer.pid = cred.pid;
	cl->peer.uid = cred.uid;
	cl->peer.gid = cred.gid;
	ev_timer_again(loop, &cl->idle);
	if (!peer_allowed(c, &cl->peer)) {
		c->denied++;
		log_warn("control: refused uid %d (pid %d): not root, the "
		    "daemon's user or in control_group", (int)cred.uid,
		    (int)cred.pid);
		client_error(cl, "denied", "permission denied: only root, the "
		    "daemon's user and control_group may control mandrilld");
	} else if (c->nclients > CONTROL_CLIENTS_MAX) {
		client_error(cl, "unavailable", "too many control clients; "
		    "try again");
	} else {
		ev_io_start(loop, &cl->rw);
	}
}

/*
 * What is at path may be replaced only if it is a socket nobody answers
 * on: a live one is another mandrilld's.
 */
static int
clear_path(const char *path, const struct sockaddr_un *sun, char *err,
    size_t len)
{
	struct stat sb;
	int fd, live;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(sb.st_mode)) {
		snprintf(err, len, "%s exists and is not a socket", path);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	if (live) {
		snprintf(err, len, "%s: another mandrilld answers on it", path);
		return -1;
	}
	return unlink(path);
}

static int
owner_of(struct control *c, const char *user, const char *group,
    uid_t *uid, char *err, size_t len)
{
	struct passwd *pw;
	struct group *gr;

	*uid = geteuid();
	c->user = *uid;
	if (user[0] != '\0') {
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, len, "user %s: no such user", user);
			return -1;
		}
		if (geteuid() == 0)
			*uid = pw->pw_uid;
		c->user = pw->pw_uid;
	}
	if (group[0] != '\0') {
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, len, "control_group %s: no such group",
			    group);
			return -1;
		}
		c->gid = gr->gr_gid;
		c->has_gid = 1;
	}
	return 0;
}

static int
listen_on(struct control *c, const struct sockaddr_un *sun, uid_t uid,
    char *err, size_t len)
{
	mode_t mask;
	int rc;

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	mask = umask(0177);	/* never reachable before its chmod */
	rc = bind(c->fd, (const struct sockaddr *)sun, sizeof(*sun));
	umask(mask);
	if (rc < 0)
		return -1;
	if (chown(c->path, uid, c->has_gid ? c->gid : (gid_t)-1) < 0 ||
	    chmod(c->path, c->has_gid ? 0660 : 0600) < 0 ||
	    listen(c->fd, 16) < 0) {
		unlink(c->path);
		return -1;
	}
	return 0;
}

int
control_open(struct control *c, struct ev_loop *loop, const char *path,
    const char *user, const char *group, const struct control_cb *cb,
    char *err, size_t len)
{
	struct sockaddr_un sun;
	uid_t uid;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->loop = loop;
	c->cb = *cb;
	err[0] = '\0';
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, len, "%s: too long for a Unix socket", path);
		return -1;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (owner_of(c, user, group, &uid, err, len) < 0)
		return -1;
	if (clear_path(path, &sun, err, len) < 0 ||
	    listen_on(c, &sun, uid, err, len) < 0) {
		if (err[0] == '\0')
			snprintf(err, len, "%s: %s", path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return -1;
	}
	ev_io_init(&c->accept_w, accept_cb, c->fd, EV_READ);
	c->accept_w.data = c;
	ev_io_start(loop, &c->accept_w);
	return 0;
}

void
control_close(struct control *c)
{
	if (c->fd < 0)
		return;
	while (c->clients != NULL)
		client_free(c->clients);
	ev_io_stop(c->loop, &c->accept_w);
	close(c->fd);
	c->fd = -1;
	unlink(c->path);
}
