/*
 * check_control: the control socket's mechanism, with hostile clients.
 *
 * A real socket in a temporary directory, served by control.c on a loop
 * that the test turns by hand; the callback echoes the command.  Each
 * bad request gets one error line and leaves the server answering.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "control.h"

static struct ev_loop *loop;
static struct control ctl;
static char dir[64], path[96];
static int calls;

static json_t *
echo(void *arg, json_t *req, const struct control_peer *peer)
{
	(void)arg;
	calls++;
	ck_assert_int_eq((int)peer->uid, (int)geteuid());
	return json_pack("{s:b, s:O}", "ok", 1, "echo",
	    json_object_get(req, "cmd"));
}

static void
setup(void)
{
	struct control_cb cb = { echo, NULL };
	char err[256];

	snprintf(dir, sizeof(dir), "/tmp/check_control.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_int_eq(control_open(&ctl, loop, path, "", "", &cb, err,
	    sizeof(err)), 0);
	calls = 0;
}

static void
teardown(void)
{
	control_close(&ctl);
	ev_loop_destroy(loop);
	rmdir(dir);
}

static int
client(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Turn the loop until n answer lines (or EOF) came; the text read. */
static char *
answers(int fd, int n, int *eof)
{
	static char buf[4096];
	size_t len = 0;
	int lines = 0;

	*eof = 0;
	for (int i = 0; i < 2000 && lines < n && !*eof; i++) {
		ssize_t r;

		ev_run(loop, EVRUN_NOWAIT);
		r = read(fd, buf + len, sizeof(buf) - len - 1);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			*eof = 1;
		if (r > 0) {
			len += (size_t)r;
			buf[len] = '\0';
			lines = 0;
			for (char *p = buf; (p = strchr(p, '\n')) != NULL; p++)
				lines++;
		}
		usleep(1000);
	}
	buf[len] = '\0';
	return buf;
}

static void
say(int fd, const char *s)
{
	ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

START_TEST(test_one_answer_each_in_order)
{
	int fd = client(), eof;
	char *a;

	say(fd, "{\"cmd\":\"a\"}\n{\"cmd\":\"b\"}\n");
	a = answers(fd, 2, &eof);
	ck_assert_str_eq(a, "{\"ok\":true,\"echo\":\"a\"}\n"
	    "{\"ok\":true,\"echo\":\"b\"}\n");
	ck_assert_int_eq(calls, 2);
	close(fd);
}
END_TEST

START_TEST(test_bad_requests_get_one_line_and_the_server_goes_on)
{
	static const char *bad[] = { "not json\n", "[1]\n", "\"x\"\n",
	    "{\"cmd\":1,\"cmd\":2}\n", "\xff\xfe\n" };
	int eof;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = client();
		char *a;

		say(fd, bad[i]);
		a = answers(fd, 1, &eof);
		ck_assert_msg(strncmp(a, "{\"ok\":false,\"code\":\"usage\","
		    "\"error\":\"request is not", 45) == 0, "%s: %s", bad[i], a);
		ck_assert_int_eq((int)(strchr(a, '\n') - a) + 1, (int)strlen(a));
		close(fd);
	}
	ck_assert_int_eq(calls, 0);
	{
		int fd = client();

		say(fd, "{\"cmd\":\"still\"}\n");
		ck_assert_str_eq(answers(fd, 1, &eof),
		    "{\"ok\":true,\"echo\":\"still\"}\n");
		close(fd);
	}
}
END_TEST

START_TEST(test_an_oversized_request_is_refused_and_closed)
{
	int fd = client(), eof;
	char *big = malloc(CONTROL_REQ_MAX + 10), *a;
	size_t off = 0;

	memset(big, 'x', CONTROL_REQ_MAX + 10);
	/* Written in pieces as the server drains them. */
	for (int i = 0; i < 2000 && off < CONTROL_REQ_MAX + 10; i++) {
		ssize_t w = write(fd, big + off, CONTROL_REQ_MAX + 10 - off);

		if (w > 0)
			off += (size_t)w;
		ev_run(loop, EVRUN_NOWAIT);
	}
	a = answers(fd, 1, &eof);
	ck_assert_str_eq(a, "{\"ok\":false,\"code\":\"usage\",\"error\":"
	    "\"request longer than 65536 bytes\"}\n");
	answers(fd, 2, &eof);
	ck_assert_int_eq(eof, 1);
	ck_assert_int_eq(calls, 0);
	free(big);
	close(fd);
}
END_TEST

START_TEST(test_a_last_line_without_newline_is_answered_at_eof)
{
	int fd = client(), eof;

	say(fd, "{\"cmd\":\"last\"}");
	shutdown(fd, SHUT_WR);
	ck_assert_str_eq(answers(fd, 1, &eof),
	    "{\"ok\":true,\"echo\":\"last\"}\n");
	close(fd);
}
END_TEST

START_TEST(test_socket_mode_and_stale_socket)
{
	struct control other;
	struct control_cb cb = { echo, NULL };
	struct stat sb;
	char err[256];

	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	/* A live socket is another mandrilld's: refused. */
	ck_assert_int_eq(control_open(&other, loop, path, "", "", &cb, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "another mandrilld answers on it"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_one_answer_each_in_order);
	tcase_add_test(tc, test_bad_requests_get_one_line_and_the_server_goes_on);
	tcase_add_test(tc, test_an_oversized_request_is_refused_and_closed);
	tcase_add_test(tc, test_a_last_line_without_newline_is_answered_at_eof);
	tcase_add_test(tc, test_socket_mode_and_stale_socket);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
