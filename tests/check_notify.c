/*
 * check_notify: the sd_notify datagram reaches the socket systemd names.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "notify.h"

static int
listen_on(struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, len), 0);
	return fd;
}

static void
expect(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

START_TEST(test_path_socket)
{
	char dir[] = "/tmp/mandrill-notify.XXXXXX";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	fd = listen_on(&sa, sizeof(sa));
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	ck_assert_int_eq(notify_send("READY=1"), 0);
	expect(fd, "READY=1");
	ck_assert_int_eq(notify_send("STOPPING=1"), 0);
	expect(fd, "STOPPING=1");
	close(fd);
	unlink(sa.sun_path);
	rmdir(dir);
}
END_TEST

START_TEST(test_abstract_socket)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64];
	size_t len;
	int fd;

	snprintf(name, sizeof(name), "@mandrill-notify-%d", (int)getpid());
	len = strlen(name);
	memcpy(sa.sun_path, name, len);
	sa.sun_path[0] = '\0';
	fd = listen_on(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    len));
	setenv("NOTIFY_SOCKET", name, 1);
	ck_assert_int_eq(notify_send("RELOADING=1"), 0);
	expect(fd, "RELOADING=1");
	close(fd);
}
END_TEST

START_TEST(test_without_systemd)
{
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	ck_assert_int_eq(notify_send("READY=1"), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_path_socket);
	tcase_add_test(tc, test_abstract_socket);
	tcase_add_test(tc, test_without_systemd);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
