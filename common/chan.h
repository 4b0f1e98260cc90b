/*
 * chan: one end of a supervisor <-> worker socket, on a libev loop.
 *
 * Reading: one callback per readable event reads what is there and hands
 * every complete, decoded frame to on_frame.  Frames are checked by
 * proto_next() before msgpack-c decodes them, so no declared length or
 * count can make the reader allocate more than one frame's worth.  A frame that does not
 * decode, a frame over PROTO_FRAME_MAX, a read error or EOF is reported
 * once through on_close, after which the channel delivers nothing more.
 *
 * Writing: chan_packer() appends frames to an output buffer; the buffer
 * is flushed once per loop iteration (an ev_prepare watcher), so frames
 * queued in one iteration leave in one write.  Write readiness is asked
 * for only while output remains.
 */
#ifndef MANDRILL_CHAN_H
#define MANDRILL_CHAN_H

#include <ev.h>
#include <msgpack.h>

#include "proto.h"

/* Opaque: only chan.c knows its fields. */
struct chan;

/* Return -1 if the channel was freed and must not be touched again. */
typedef int (*chan_frame_cb)(struct chan *, const struct proto_msg *, void *);
typedef void (*chan_close_cb)(struct chan *, const char *why, void *);

struct chan *chan_new(struct ev_loop *loop, int fd, chan_frame_cb on_frame,
    chan_close_cb on_close, void *arg);
/* The packer to append frames with; flushing is scheduled. */
msgpack_packer *chan_packer(struct chan *c);
/* Bytes queued and not yet written. */
size_t chan_pending(const struct chan *c);
/* Write what can be written now; -1 on a write error (closes). */
int chan_flush(struct chan *c);
/*
 * Read and hand out everything the peer already sent, up to EOF: for a
 * peer that has exited, before its jobs are judged lost.  The channel
 * may be closed (and freed) on return.
 */
void chan_read_all(struct chan *c);
/* Write all queued output, waiting up to timeout_ms at a time; 0 or -1. */
int chan_flush_wait(struct chan *c, int timeout_ms);
/*
 * Stop watchers, close the fd, free.  Safe inside the channel's own
 * callbacks: there the channel is marked bad, delivers nothing more, and
 * is freed once the callback has returned (tmux's PEER_BAD).
 */
void chan_free(struct chan *c);

#endif
