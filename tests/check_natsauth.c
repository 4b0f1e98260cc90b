/*
 * check_natsauth: the secret files of [source] and nkey seeds, without a
 * server.  Secret files open to others are refused and no error quotes
 * a secret; tokens and passwords are taken trimmed, on one line; a
 * changed file is noticed; a seed that is not a user seed is refused.
 * tests/test_nats_auth.sh tests each method against a real nats-server.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <nats/nats.h>
#include <openssl/evp.h>

#include "conf.h"
#include "natsauth.h"
#include "nkey.h"

static char dir[] = "/tmp/check_natsauth.XXXXXX";
static char err[CONF_ERR_MAX];
static struct conf conf;

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	conf_defaults(&conf);
	conf.source = SOURCE_NATS;
	err[0] = '\0';
}

static void
teardown(void)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A file in dir with text and mode; its path in path. */
static void
put(char *path, size_t len, const char *name, const char *text, int mode)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, (mode_t)mode), 0);
}

static void
assert_has(const char *s, const char *want)
{
	ck_assert_msg(strstr(s, want) != NULL, "\"%s\" lacks \"%s\"", s, want);
}

START_TEST(test_token_trimmed)
{
	struct natsauth a;

	put(conf.token_file, sizeof(conf.token_file), "token",
	    "  s3cret-token \n\n", 0600);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), 0);
	ck_assert_str_eq(a.token, "s3cret-token");
	natsauth_free(&a);
	ck_assert_ptr_null(a.token);
}
END_TEST

START_TEST(test_secret_open_to_others)
{
	static const int modes[] = { 0640, 0604, 0620, 0602, 0644 };
	struct natsauth a;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		put(conf.password_file, sizeof(conf.password_file), "pw",
		    "hunter2\n", modes[i]);
		snprintf(conf.source_user, sizeof(conf.source_user), "u");
		ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), -1);
		assert_has(err, "[source] password_file");
		assert_has(err, "others may read or write it");
		ck_assert_msg(strstr(err, "hunter2") == NULL, "%s", err);
	}
}
END_TEST

START_TEST(test_secret_two_lines_or_empty)
{
	struct natsauth a;

	put(conf.token_file, sizeof(conf.token_file), "t", "Xfirst\nXsecond\n",
	    0600);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), -1);
	assert_has(err, "on one line");
	ck_assert_msg(strstr(err, "Xfirst") == NULL, "%s", err);
	put(conf.token_file, sizeof(conf.token_file), "t", " \n", 0600);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), -1);
	put(conf.token_file, sizeof(conf.token_file), "t", "", 0600);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), -1);
	assert_has(err, "not a regular file of 1 byte");
	snprintf(conf.token_file, sizeof(conf.token_file), "%s", dir);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), -1);
	assert_has(err, "not a regular file");
}
END_TEST

START_TEST(test_changed)
{
	struct natsauth a, b;

	put(conf.token_file, sizeof(conf.token_file), "t", "first\n", 0600);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), 0);
	ck_assert_int_eq(natsauth_load(&b, &conf, err, sizeof(err)), 0);
	ck_assert_ptr_null(natsauth_changed(&a, &b));
	natsauth_free(&b);
	put(conf.token_file, sizeof(conf.token_file), "t", "second\n", 0600);
	ck_assert_int_eq(natsauth_load(&b, &conf, err, sizeof(err)), 0);
	ck_assert_str_eq(natsauth_changed(&a, &b), "token_file");
	natsauth_free(&b);
	snprintf(conf.url, sizeof(conf.url), "nats://other:4222");
	ck_assert_int_eq(natsauth_load(&b, &conf, err, sizeof(err)), 0);
	ck_assert_str_eq(natsauth_changed(&a, &b), "url");
	natsauth_free(&a);
	natsauth_free(&b);
}
END_TEST

START_TEST(test_conf_with_url_secret)
{
	char path[CONF_PATH_MAX];

	put(path, sizeof(path), "mandrill.conf", "", 0644);
	/* No secret in the url: the file's mode is not ours to judge here. */
	ck_assert_int_eq(natsauth_check_conf(&conf, path, err, sizeof(err)), 0);
	snprintf(conf.url, sizeof(conf.url), "nats://a:1, nats://u:pw@b:2");
	ck_assert_int_eq(natsauth_check_conf(&conf, path, err, sizeof(err)), -1);
	assert_has(err, "url holds a password or token");
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(natsauth_check_conf(&conf, path, err, sizeof(err)), -1);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(natsauth_check_conf(&conf, path, err, sizeof(err)), 0);
	snprintf(conf.url, sizeof(conf.url), "tls://tok3n@b:2");
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(natsauth_check_conf(&conf, path, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_servers_and_tls)
{
	struct natsauth a;

	snprintf(conf.url, sizeof(conf.url), "nats://a:1, nats://u:p@b:2");
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), 0);
	ck_assert_int_eq(a.n, 2);
	ck_assert_str_eq(a.v[1], "nats://u:p@b:2");
	ck_assert_str_eq(a.shown, "nats://a:1, nats://u:***@b:2");
	ck_assert_int_eq(a.tls, 0);
	natsauth_free(&a);
	snprintf(conf.url, sizeof(conf.url), "nats://a:1");
	put(conf.tls_ca, sizeof(conf.tls_ca), "ca.pem", "PEM\n", 0644);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), 0);
	ck_assert_int_eq(a.tls, 1);	/* tls_ca alone asks for TLS */
	natsauth_free(&a);
}
END_TEST

START_TEST(test_nkey_round_trip)
{
	uint8_t raw[32];
	char seed[NKEY_SEED_LEN + 1], pub[NKEY_PUB_LEN + 1], pub2[64];

	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)(i * 7 + 1);
	nkey_user_seed(raw, seed);
	ck_assert_uint_eq(strlen(seed), NKEY_SEED_LEN);
	ck_assert_int_eq(strncmp(seed, "SU", 2), 0);
	ck_assert_ptr_null(nkey_user_public(seed, pub));
	ck_assert_uint_eq(strlen(pub), NKEY_PUB_LEN);
	ck_assert_int_eq(pub[0], 'U');
	ck_assert_ptr_null(nkey_user_public(seed, pub2));
	ck_assert_str_eq(pub, pub2);
	raw[0] ^= 1;
	nkey_user_seed(raw, seed);
	ck_assert_ptr_null(nkey_user_public(seed, pub2));
	ck_assert_str_ne(pub, pub2);
}
END_TEST

/*
 * The server's nonce signed by us, as nats_Sign signs it where that
 * works, and where cnats 3.4.1's does not: the nonce and seed of a run of
 * test_nats_auth.sh that the server refused.
 */
START_TEST(test_nkey_sign)
{
	static const char seed[] =
	    "SUADNJOPGMH6EBA64NQAHPV24J74BWLPQ6MI3Z7IQYVFEKPS5QFW4P467M";
	static const char *const nonces[] = {
		"nGpzR_KspN6ry7jG8CU4bo", "abcdefghijklmnopqrstuv", "x",
	};
	char pub[NKEY_PUB_LEN + 1];

	ck_assert_ptr_null(nkey_user_public(seed, pub));
	ck_assert_str_eq(pub,
	    "UCXKBXVFJLDFCAMG6IXAHTIUFHCNE7BV6F3EPIJ5MMKEBBOFD44SKFJY");
	for (size_t i = 0; i < sizeof(nonces) / sizeof(nonces[0]); i++) {
		unsigned char *ours, *theirs = NULL;
		int len, tlen = 0;

		ck_assert_int_eq(nkey_sign(seed, nonces[i], strlen(nonces[i]),
		    &ours, &len), 0);
		ck_assert_int_eq(len, 64);
		if (nats_Sign(seed, nonces[i], &theirs, &tlen) == NATS_OK) {
			ck_assert_int_eq(tlen, 64);
			ck_assert_mem_eq(ours, theirs, 64);
		} else
			ck_assert_int_eq(i, 0);	/* the one cnats cannot sign */
		free(theirs);
		free(ours);
	}
	{
		unsigned char *sig;
		int len;

		ck_assert_int_eq(nkey_sign("SUAAAA", "x", 1, &sig, &len), -1);
		ck_assert_ptr_null(sig);
	}
}
END_TEST

START_TEST(test_nkey_bad_seeds)
{
	uint8_t raw[32] = { 0 };
	char seed[NKEY_SEED_LEN + 1], pub[NKEY_PUB_LEN + 1];

	nkey_user_seed(raw, seed);
	seed[20] = seed[20] == 'A' ? 'B' : 'A';
	assert_has(nkey_user_public(seed, pub), "checksum");
	ck_assert_ptr_nonnull(nkey_user_public("SUAAAA", pub));
	ck_assert_ptr_nonnull(nkey_user_public("", pub));
	nkey_user_seed(raw, seed);
	seed[5] = 'a';			/* lower case is not base32 here */
	assert_has(nkey_user_public(seed, pub), "not an encoded nkey seed");
	/* A public key is no seed. */
	nkey_user_seed(raw, seed);
	ck_assert_ptr_null(nkey_user_public(seed, pub));
	ck_assert_ptr_nonnull(nkey_user_public(pub, seed));
}
END_TEST

START_TEST(test_nkey_seed_file)
{
	uint8_t raw[32] = { 9 };
	char seed[NKEY_SEED_LEN + 2], pub[NKEY_PUB_LEN + 1];
	struct natsauth a;

	nkey_user_seed(raw, seed);
	ck_assert_ptr_null(nkey_user_public(seed, pub));
	strcat(seed, "\n");
	put(conf.nkey_seed, sizeof(conf.nkey_seed), "seed", seed, 0600);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), 0);
	ck_assert_str_eq(a.nkey, pub);
	natsauth_free(&a);
	put(conf.nkey_seed, sizeof(conf.nkey_seed), "seed", "SUAAAA\n", 0600);
	ck_assert_int_eq(natsauth_load(&a, &conf, err, sizeof(err)), -1);
	assert_has(err, "[source] nkey_seed");
	ck_assert_msg(strstr(err, "SUAAAA") == NULL, "%s", err);
}
END_TEST

static Suite *
natsauth_suite(void)
{
	Suite *s = suite_create("natsauth");
	TCase *tc = tcase_create("files");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_token_trimmed);
	tcase_add_test(tc, test_secret_open_to_others);
	tcase_add_test(tc, test_secret_two_lines_or_empty);
	tcase_add_test(tc, test_changed);
	tcase_add_test(tc, test_conf_with_url_secret);
	tcase_add_test(tc, test_servers_and_tls);
	tcase_add_test(tc, test_nkey_seed_file);
	suite_add_tcase(s, tc);
	tc = tcase_create("nkey");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_nkey_round_trip);
	tcase_add_test(tc, test_nkey_bad_seeds);
	tcase_add_test(tc, test_nkey_sign);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(natsauth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
