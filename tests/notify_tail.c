/*
 * notify_tail: stand in for systemd's notification socket.  Binds a
 * datagram socket at PATH and prints each datagram received as one line,
 * until killed.  For the tests of what mandrilld tells systemd.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	ssize_t n;
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_tail PATH\n");
		return 64;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(argv[1]);
		return 71;
	}
	for (;;) {
		if ((n = recv(fd, buf, sizeof(buf) - 1, 0)) < 0)
			continue;
		buf[n] = '\0';
		for (char *c = buf; *c; c++)
			if (*c == '\n')
				*c = ' ';
		printf("%s\n", buf);
		fflush(stdout);
	}
}
