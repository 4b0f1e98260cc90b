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
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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

static json_t *
any_peer(void *arg, json_t *req, const struct control_peer *peer)
{
	(void)arg;
	(void)req;
	return json_pack("{s:b, s:i, s:i}", "ok", 1, "uid", (int)peer->uid,
	    "gid", (int)peer->gid);
}

/*
 * A child as uid, with gid as its only group, asks once on sock; the
 * parent turns the loop meanwhile.  What the child got back, or
 * "connect: <errno>" when the socket's mode kept it out.
 */
static const char *
ask_as(const char *sock, uid_t uid, gid_t gid, char *out, size_t len)
{
	int p[2], status;
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		char buf[512];
		int fd;

		close(p[0]);
		alarm(10);
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(2);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			n = snprintf(buf, sizeof(buf), "connect: %s",
			    strerror(errno));
			(void)!write(p[1], buf, (size_t)n);
			_exit(0);
		}
		(void)!write(fd, "{\"cmd\":\"x\"}\n", 12);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			(void)!write(p[1], buf, (size_t)n);
		_exit(0);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 5000; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		while (got + 1 < len && (n = read(p[0], out + got,
		    len - got - 1)) > 0)
			got += (size_t)n;
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(1000);
	}
	while (got + 1 < len && (n = read(p[0], out + got, len - got - 1)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	return out;
}

/*
 * control_group: a member (here by its primary group) is let in, by the
 * socket's mode (0660, the group's) and by its credentials; a stranger
 * is kept out.  Membership by /etc/group is not tried: it needs a user
 * made for the test.
 */
START_TEST(test_control_group_admits_its_members_only)
{
	struct control gc;
	struct control_cb cb = { any_peer, NULL };
	struct passwd *pw = getpwnam("nobody");
	struct group *gr;
	uid_t nobody;
	gid_t adm, nog;
	char sock[128], err[256], out[1024];
	struct stat sb;

	/* Needs root, nobody, adm and nogroup; their static storage, copied. */
	if (geteuid() != 0 || pw == NULL)
		return;
	nobody = pw->pw_uid;
	if ((gr = getgrnam("adm")) == NULL)
		return;
	adm = gr->gr_gid;
	if ((gr = getgrnam("nogroup")) == NULL)
		return;
	nog = gr->gr_gid;
	snprintf(sock, sizeof(sock), "%s/group.sock", dir);
	ck_assert_int_eq(control_open(&gc, loop, sock, "", "adm", &cb, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(chmod(dir, 0711), 0);
	ck_assert_int_eq(stat(sock, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0660);
	ck_assert_int_eq((int)sb.st_gid, (int)adm);

	ask_as(sock, nobody, adm, out, sizeof(out));
	ck_assert_msg(strstr(out, "\"ok\":true") != NULL, "member: %s", out);
	ask_as(sock, nobody, nog, out, sizeof(out));
	ck_assert_msg(strstr(out, "connect: Permission denied") != NULL ||
	    strstr(out, "\"code\":\"denied\"") != NULL, "stranger: %s", out);
	/* Past the mode (the group may connect), credentials still decide. */
	ck_assert_int_eq(chmod(sock, 0666), 0);
	ask_as(sock, nobody, nog, out, sizeof(out));
	ck_assert_msg(strstr(out, "\"code\":\"denied\"") != NULL,
	    "stranger past the mode: %s", out);
	ck_assert_uint_eq(gc.denied, 1);
	control_close(&gc);
}
END_TEST

/*
 * A client that sends and never reads: once the socket's buffer is
 * full its answers wait, nothing more of it is read, other clients are
 * served meanwhile, and it is closed after the idle time.
 */
START_TEST(test_a_client_that_never_reads_is_bounded_and_closed)
{
	static char reqs[12 * 20000];
	int hog = client(), fd, eof;
	size_t off = 0;
	char *a;

	for (size_t i = 0; i < sizeof(reqs); i += 12)
		memcpy(reqs + i, "{\"cmd\":\"h\"}\n", 12);
	for (int i = 0; i < 3000 && off < sizeof(reqs); i++) {
		ssize_t n = write(hog, reqs + off, sizeof(reqs) - off);

		if (n > 0)
			off += (size_t)n;
		ev_run(loop, EVRUN_NOWAIT);
	}
	ck_assert_int_lt(calls, 20000);		/* it stopped being read */
	fd = client();
	say(fd, "{\"cmd\":\"other\"}\n");
	a = answers(fd, 1, &eof);
	ck_assert_str_eq(a, "{\"ok\":true,\"echo\":\"other\"}\n");
	close(fd);
	ck_assert_uint_ge(ctl.nclients, 1);
	for (int i = 0; i < 1300 && ctl.nclients > 0; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(10000);
	}
	ck_assert_uint_eq(ctl.nclients, 0);	/* closed at the idle time */
	close(hog);
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
	tcase_add_test(tc, test_control_group_admits_its_members_only);
	tcase_add_test(tc, test_a_client_that_never_reads_is_bounded_and_closed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
