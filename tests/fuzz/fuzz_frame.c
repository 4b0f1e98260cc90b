/*
 * fuzz_frame: the wire-protocol reader, as a worker's bytes reach it.
 *
 * The input is a byte stream read as chan.c reads it: proto_next()
 * checks each frame's shape and size before msgpack-c decodes it, then
 * the frame is decoded strictly.  Nothing may crash, leak, read out of
 * bounds or allocate more than a frame's worth.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_unpacked res;
	struct proto_msg m;
	char err[256];
	size_t off = 0, used;

	msgpack_unpacked_init(&res);
	while (proto_next((const char *)data + off, size - off, &res, &m,
	    &used, err, sizeof(err)) == 1)
		off += used;
	msgpack_unpacked_destroy(&res);
	return 0;
}
