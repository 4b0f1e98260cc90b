/*
 * pgid_liar: a worker that lies about its command's process group, for
 * test_security.sh.  Test code only.
 *
 * mandrilld runs it as its worker; it runs the real mandrill-worker
 * ($LIAR_WORKER) on a socketpair of its own and relays the frames both
 * ways unchanged, except that every started frame names the process
 * group $LIAR_PGID instead of the command's: what a compromised worker
 * would send to have root kill someone else's processes.  TERM and QUIT
 * go on to the real worker, whose end of file ends the relay.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "proto.h"

#define UP	3	/* to mandrilld */

static volatile pid_t worker;

/* mandrilld's TERM and QUIT are for the real worker; its EOF ends us. */
static void
forward(int sig)
{
	if (worker > 0)
		kill(worker, sig);
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The value of key in map o, or NULL. */
static const msgpack_object *
get(const msgpack_object *o, const char *key)
{
	size_t n = strlen(key);

	if (o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == n &&
		    memcmp(kv->key.via.str.ptr, key, n) == 0)
			return &kv->val;
	}
	return NULL;
}

/* Frames from the real worker: re-packed, started ones with the lie. */
static int
relay_up(msgpack_unpacker *u, uint32_t pgid)
{
	msgpack_unpacked r;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = 0;

	msgpack_unpacked_init(&r);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	while (msgpack_unpacker_next(u, &r) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *t = get(&r.data, "t"), *id;

		if (t != NULL && t->type == MSGPACK_OBJECT_STR &&
		    t->via.str.size == 7 &&
		    memcmp(t->via.str.ptr, "started", 7) == 0 &&
		    (id = get(&r.data, "id")) != NULL &&
		    id->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			fprintf(stderr, "pgid_liar: started: naming process "
			    "group %u\n", pgid);
			proto_pack_started(&pk, id->via.u64, pgid);
		} else
			msgpack_pack_object(&pk, r.data);
	}
	if (sb.size > 0)
		rc = write_all(UP, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	msgpack_unpacked_destroy(&r);
	return rc;
}

static void
run_worker(const char *path, int fd)
{
	char *const argv[] = { (char *)"mandrill-worker", NULL };

	if (dup2(fd, UP) < 0)
		_exit(71);
	close(fd);
	execv(path, argv);
	_exit(127);
}

int
main(void)
{
	const char *path = getenv("LIAR_WORKER"), *pg = getenv("LIAR_PGID");
	struct pollfd pfd[2];
	msgpack_unpacker u;
	char buf[65536];
	int sv[2];
	pid_t pid;

	if (path == NULL || pg == NULL) {
		fprintf(stderr, "pgid_liar: LIAR_WORKER and LIAR_PGID must be "
		    "set\n");
		return 64;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    (pid = fork()) < 0) {
		perror("pgid_liar");
		return 71;
	}
	if (pid == 0) {
		close(UP);
		run_worker(path, sv[1]);
	}
	close(sv[1]);
	worker = pid;
	signal(SIGTERM, forward);
	signal(SIGQUIT, forward);
	signal(SIGINT, forward);
	fprintf(stderr, "pgid_liar: real worker pid %d\n", (int)pid);
	msgpack_unpacker_init(&u, sizeof(buf));
	pfd[0].fd = UP;
	pfd[1].fd = sv[0];
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 71;
		}
		if (pfd[0].revents) {
			if ((n = read(UP, buf, sizeof(buf))) <= 0 ||
			    write_all(sv[0], buf, (size_t)n) < 0)
				return 0;
		}
		if (pfd[1].revents) {
			if (!msgpack_unpacker_reserve_buffer(&u, sizeof(buf)))
				return 70;
			n = read(sv[0], msgpack_unpacker_buffer(&u), sizeof(buf));
			if (n <= 0)
				return 0;
			msgpack_unpacker_buffer_consumed(&u, (size_t)n);
			if (relay_up(&u, (uint32_t)strtoul(pg, NULL, 10)) < 0)
				return 0;
		}
	}
}
