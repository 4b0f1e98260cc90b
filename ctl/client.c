/*
 * client: one request to mandrilld's control socket, one answer back.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"

#define ANSWER_MAX	(1 << 20)
#define ANSWER_WAIT_MS	30000

static const struct {
	const char	*code;
	int		 status;
} codes[] = {
	{ "usage", EX_USAGE }, { "denied", EX_NOPERM },
	{ "unavailable", EX_UNAVAILABLE }, { "refused", EX_CONFIG },
	{ "software", EX_SOFTWARE }, { "io", EX_IOERR },
	{ "data", EX_DATAERR },
};

int
ctl_code_status(const char *code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (code != NULL && strcmp(code, codes[i].code) == 0)
			return codes[i].status;
	return EX_SOFTWARE;
}

static int
connect_to(const struct ctl *c, int *fd)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->sock);
	if ((*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		fprintf(stderr, "mandrillctl: socket: %s\n", strerror(errno));
		return EX_SOFTWARE;
	}
	if (connect(*fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return 0;
	switch (errno) {
	case ENOENT:
	case ECONNREFUSED:
		fprintf(stderr, "mandrillctl: mandrilld is not running: "
		    "nothing answers on %s (%s)\n", c->sock, strerror(errno));
		close(*fd);
		return EX_UNAVAILABLE;
	case EACCES:
	case EPERM:
		fprintf(stderr, "mandrillctl: permission denied on %s: only "
		    "root, mandrilld's user and control_group may use it\n",
		    c->sock);
		close(*fd);
		return EX_NOPERM;
	default:
		fprintf(stderr, "mandrillctl: connect %s: %s\n", c->sock,
		    strerror(errno));
		close(*fd);
		return EX_UNAVAILABLE;
	}
}

static int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line, without its newline, in a malloc'd buffer; NULL on error. */
static char *
read_line(int fd, const char *sock, int *status)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nl;
	struct pollfd pfd = { fd, POLLIN, 0 };

	*status = EX_UNAVAILABLE;
	while (buf != NULL) {
		ssize_t n;
		int r = poll(&pfd, 1, ANSWER_WAIT_MS);

		if (r == 0) {
			fprintf(stderr, "mandrillctl: no answer from %s within "
			    "%d s\n", sock, ANSWER_WAIT_MS / 1000);
			break;
		}
		if (len + 1 >= cap) {
			char *nb = cap < ANSWER_MAX ? realloc(buf, cap * 2) :
			    NULL;

			if (nb == NULL) {
				fprintf(stderr, "mandrillctl: answer too long\n");
				*status = EX_SOFTWARE;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = r < 0 ? -1 : read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "mandrillctl: %s closed without an "
			    "answer%s%s\n", sock, n < 0 ? ": " : "",
			    n < 0 ? strerror(errno) : "");
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			*status = 0;
			return buf;
		}
	}
	free(buf);
	return NULL;
}

static int
judge(json_t *a, json_t **ans)
{
	json_t *ok = json_object_get(a, "ok");
	const char *err;
	int status;

	if (json_is_true(ok)) {
		*ans = a;
		return 0;
	}
	status = ctl_code_status(json_string_value(json_object_get(a, "code")));
	err = json_string_value(json_object_get(a, "error"));
	fprintf(stderr, "mandrillctl: %s\n", err != NULL ? err :
	    "mandrilld refused the request");
	json_decref(a);
	return status;
}

int
ctl_request(const struct ctl *c, json_t *req, json_t **ans)
{
	char *text, *line;
	json_error_t jerr;
	json_t *a;
	int fd, status;

	*ans = NULL;
	if ((status = connect_to(c, &fd)) != 0)
		return status;
	if ((text = json_dumps(req, JSON_COMPACT)) == NULL) {
		close(fd);
		return EX_SOFTWARE;
	}
	if (send_all(fd, text, strlen(text)) < 0 || send_all(fd, "\n", 1) < 0) {
		fprintf(stderr, "mandrillctl: send to %s: %s\n", c->sock,
		    strerror(errno));
		free(text);
		close(fd);
		return EX_UNAVAILABLE;
	}
	free(text);
	line = read_line(fd, c->sock, &status);
	close(fd);
	if (line == NULL)
		return status;
	a = json_loads(line, 0, &jerr);
	free(line);
	if (!json_is_object(a)) {
		fprintf(stderr, "mandrillctl: the answer is not a JSON object"
		    "%s%s\n", a == NULL ? ": " : "", a == NULL ? jerr.text : "");
		json_decref(a);
		return EX_SOFTWARE;
	}
	return judge(a, ans);
}
