/*
 * A test helper: free_ports N prints N TCP ports of 127.0.0.1 that were
 * free a moment ago, one a line, all different (each is bound, to port
 * 0, before any is let go).  For servers that must know each other's
 * ports before they start, as a JetStream cluster's routes do.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	int n = argc == 2 ? atoi(argv[1]) : 0, fd[64];
	struct sockaddr_in sa;
	socklen_t len;

	if (n < 1 || n > 64) {
		fprintf(stderr, "usage: free_ports N (1 to 64)\n");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		sa = (struct sockaddr_in){ .sin_family = AF_INET,
		    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		len = sizeof(sa);
		if ((fd[i] = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    bind(fd[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(fd[i], (struct sockaddr *)&sa, &len) < 0) {
			perror("free_ports");
			return 1;
		}
		printf("%d\n", ntohs(sa.sin_port));
	}
	for (int i = 0; i < n; i++)
		close(fd[i]);
	return 0;
}
