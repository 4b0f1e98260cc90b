/*
 * chan: buffered, framed msgpack I/O over a socket on a libev loop.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"

#define READ_CHUNK	(64 * 1024)
#define IN_CAP		(PROTO_FRAME_MAX + READ_CHUNK)

#define CHAN_CLOSED	0x1	/* on_close was called: nothing more comes */
#define CHAN_READING	0x2	/* inside read_once's callbacks */
#define CHAN_BAD	0x4	/* freed in them: remove once they return */

struct chan {
	struct ev_loop	*loop;
	int		 fd;
	ev_io		 rio;
	ev_io		 wio;
	ev_prepare	 flusher;
	char		*in;		/* bytes read, not yet a whole frame */
	size_t		 in_len;
	msgpack_unpacked result;
	msgpack_sbuffer	 out;
	size_t		 out_off;
	msgpack_packer	 pk;
	chan_frame_cb	 on_frame;
	chan_close_cb	 on_close;
	void		*arg;
	unsigned	 flags;		/* CHAN_* */
};

static void chan_close(struct chan *c, const char *why);

static void
flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct chan *c = w->data;

	ev_prepare_stop(loop, &c->flusher);
	chan_flush(c);
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	chan_flush(w->data);
}

static int
sbuffer_write(void *data, const char *buf, size_t len)
{
	struct chan *c = data;

	if (c->out.size == c->out_off && !(c->flags & CHAN_CLOSED))
		ev_prepare_start(c->loop, &c->flusher);
	return msgpack_sbuffer_write(&c->out, buf, len);
}

msgpack_packer *
chan_packer(struct chan *c)
{
	return &c->pk;
}

size_t
chan_pending(const struct chan *c)
{
	return c->out.size - c->out_off;
}

int
chan_flush(struct chan *c)
{
	ssize_t n;

	while (!(c->flags & CHAN_CLOSED) && c->out_off < c->out.size) {
		n = send(c->fd, c->out.data + c->out_off,
		    c->out.size - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->loop, &c->wio);
			return 0;
		}
		if (n < 0) {
			char why[128];

			snprintf(why, sizeof(why), "write: %s", strerror(errno));
			chan_close(c, why);
			return -1;
		}
		c->out_off += n;
	}
	/* All written: reuse the buffer from the start. */
	c->out.size = c->out_off = 0;
	if (c->out.alloc > 4 * READ_CHUNK) {
		msgpack_sbuffer_destroy(&c->out);
		msgpack_sbuffer_init(&c->out);
	}
	ev_io_stop(c->loop, &c->wio);
	return 0;
}

/* Hand out every complete frame buffered; -1 if the channel went away. */
static int
deliver(struct chan *c)
{
	char err[256];
	struct proto_msg m;
	size_t off = 0, used;
	int rc;

	while ((rc = proto_next(c->in + off, c->in_len - off, &c->result, &m,
	    &used, err, sizeof(err))) == 1) {
		off += used;
		if (c->on_frame(c, &m, c->arg) < 0 || (c->flags & CHAN_CLOSED))
			return -1;
	}
	if (rc < 0) {
		chan_close(c, err);
		return -1;
	}
	/* Keep the partial frame at the front; decoded frames are done with. */
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return 0;
}

/* One read and its frames: 1 if more may wait, 0 if not, -1 if gone. */
static int
read_once(struct chan *c)
{
	char why[128];
	ssize_t n;
	int gone;

	n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return errno == EINTR;
	if (n <= 0) {
		snprintf(why, sizeof(why), "%s", n == 0 ? "end of file" :
		    strerror(errno));
		chan_close(c, why);
		return -1;
	}
	c->in_len += (size_t)n;
	c->flags |= CHAN_READING;
	gone = deliver(c) < 0 || (c->flags & CHAN_CLOSED);
	c->flags &= ~CHAN_READING;
	if (c->flags & CHAN_BAD) {	/* let go of in a callback */
		chan_free(c);
		return -1;
	}
	return gone ? -1 : 1;
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	read_once(w->data);
}

void
chan_read_all(struct chan *c)
{
	while (!(c->flags & CHAN_CLOSED) && read_once(c) == 1)
		;
}

int
chan_flush_wait(struct chan *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

	while (!(c->flags & CHAN_CLOSED) && chan_pending(c) > 0) {
		if (chan_flush(c) < 0)
			return -1;
		if (chan_pending(c) == 0)
			break;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
	}
	return (c->flags & CHAN_CLOSED) ? -1 : 0;
}

static void
stop_watchers(struct chan *c)
{
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_prepare_stop(c->loop, &c->flusher);
}

static void
chan_close(struct chan *c, const char *why)
{
	if (c->flags & CHAN_CLOSED)
		return;
	c->flags |= CHAN_CLOSED;
	stop_watchers(c);
	c->on_close(c, why, c->arg);
}

struct chan *
chan_new(struct ev_loop *loop, int fd, chan_frame_cb on_frame,
    chan_close_cb on_close, void *arg)
{
	struct chan *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if ((c->in = malloc(IN_CAP)) == NULL) {
		free(c);
		return NULL;
	}
	msgpack_unpacked_init(&c->result);
	msgpack_sbuffer_init(&c->out);
	msgpack_packer_init(&c->pk, c, sbuffer_write);
	c->loop = loop;
	c->fd = fd;
	c->on_frame = on_frame;
	c->on_close = on_close;
	c->arg = arg;
	ev_io_init(&c->rio, read_cb, fd, EV_READ);
	ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
	ev_prepare_init(&c->flusher, flush_cb);
	c->rio.data = c->wio.data = c->flusher.data = c;
	ev_io_start(loop, &c->rio);
	return c;
}

void
chan_free(struct chan *c)
{
	if (c == NULL)
		return;
	stop_watchers(c);
	if (c->flags & CHAN_READING) {
		c->flags |= CHAN_BAD | CHAN_CLOSED;
		return;
	}
	close(c->fd);
	msgpack_unpacked_destroy(&c->result);
	free(c->in);
	msgpack_sbuffer_destroy(&c->out);
	free(c);
}
