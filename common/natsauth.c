/*
 * natsauth: the server list, credentials and TLS of [source], for cnats.
 *
 * The list goes to natsOptions_SetServers element by element (handed to
 * natsOptions_SetURL whole, a list is one bad URL and no server is ever
 * available).  Every file is read here, once, by the program that
 * connects: cnats gets the contents (a token, a user and password, the
 * nkey public key with a signing callback over the seed, a JWT callback,
 * PEM text), so what was checked is what is used, and a reload can tell
 * whether anything changed.  A file holding a secret must be a regular
 * file that neither group nor others may read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "natsauth.h"
#include "nkey.h"

#define FILE_MAX	(256 * 1024)	/* bytes in one file, at most */

/* A whole file, NUL-terminated, into *out; -1 and err naming key, path. */
static int
read_file(const char *key, const char *path, int secret, char **out,
    char *err, size_t len)
{
	struct stat sb;
	ssize_t got;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, len, "[source] %s %s: %s", key, path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size == 0 || sb.st_size > FILE_MAX) {
		snprintf(err, len, "[source] %s %s: not a regular file of 1 byte "
		    "to %d KiB", key, path, FILE_MAX / 1024);
		close(fd);
		return -1;
	}
	if (secret && (sb.st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, len, "[source] %s %s: holds a secret and others "
		    "may read or write it (mode %03o); refusing it (chmod 600)",
		    key, path, (unsigned)(sb.st_mode & 0777));
		close(fd);
		return -1;
	}
	if ((*out = malloc((size_t)sb.st_size + 1)) == NULL) {
		snprintf(err, len, "[source] %s %s: out of memory", key, path);
		close(fd);
		return -1;
	}
	got = read(fd, *out, (size_t)sb.st_size);
	close(fd);
	if (got != sb.st_size || memchr(*out, '\0', (size_t)got) != NULL) {
		snprintf(err, len, "[source] %s %s: %s", key, path, got < 0 ?
		    strerror(errno) : "short read or a NUL byte");
		explicit_bzero(*out, (size_t)sb.st_size);
		free(*out);
		*out = NULL;
		return -1;
	}
	(*out)[got] = '\0';
	return 0;
}

/* A secret of one line (a token, a password), its spaces trimmed. */
static int
read_line(const char *key, const char *path, char **out, char *err,
    size_t len)
{
	char *s, *e;

	if (read_file(key, path, 1, out, err, len) < 0)
		return -1;
	s = *out + strspn(*out, " \t\r\n");
	for (e = s + strlen(s); e > s && strchr(" \t\r\n", e[-1]) != NULL;)
		*--e = '\0';
	memmove(*out, s, strlen(s) + 1);
	if (**out == '\0' || strpbrk(*out, "\r\n") != NULL) {
		snprintf(err, len, "[source] %s %s: want the secret alone, on "
		    "one line", key, path);
		return -1;
	}
	return 0;
}

/* The first line after the line that contains marker, trimmed; copied. */
static char *
after_marker(const char *text, const char *marker)
{
	const char *p = strstr(text, marker), *e;
	char *out;
	size_t n;

	if (p == NULL || (p = strchr(p, '\n')) == NULL)
		return NULL;
	p += strspn(p, " \t\r\n");
	e = p + strcspn(p, " \t\r\n");
	if ((n = (size_t)(e - p)) == 0 || (out = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static int
load_seed(struct natsauth *a, const char *key, const char *path, char *err,
    size_t len)
{
	const char *why;

	if ((why = nkey_user_public(a->seed, a->nkey)) != NULL) {
		snprintf(err, len, "[source] %s %s: the seed %s", key, path, why);
		return -1;
	}
	return 0;
}

/* A credentials file: the user JWT and the user's nkey seed. */
static int
load_creds(struct natsauth *a, const char *path, char *err, size_t len)
{
	char *text;
	int rc = 0;

	if (read_file("creds", path, 1, &text, err, len) < 0)
		return -1;
	a->jwt = after_marker(text, "BEGIN NATS USER JWT");
	a->seed = after_marker(text, "BEGIN USER NKEY SEED");
	explicit_bzero(text, strlen(text));
	free(text);
	if (a->jwt == NULL || a->seed == NULL) {
		snprintf(err, len, "[source] creds %s: want a user JWT and an "
		    "nkey seed, each after its -----BEGIN line", path);
		return -1;
	}
	rc = load_seed(a, "creds", path, err, len);
	return rc;
}

static int
load_secrets(struct natsauth *a, const struct conf *c, char *err,
    size_t len)
{
	if (c->creds[0] != '\0' && load_creds(a, c->creds, err, len) < 0)
		return -1;
	if (c->nkey_seed[0] != '\0' && (read_line("nkey_seed", c->nkey_seed,
	    &a->seed, err, len) < 0 || load_seed(a, "nkey_seed", c->nkey_seed,
	    err, len) < 0))
		return -1;
	if (c->token_file[0] != '\0' && read_line("token_file", c->token_file,
	    &a->token, err, len) < 0)
		return -1;
	if (c->password_file[0] != '\0' && read_line("password_file",
	    c->password_file, &a->password, err, len) < 0)
		return -1;
	if (c->tls_ca[0] != '\0' &&
	    read_file("tls_ca", c->tls_ca, 0, &a->ca, err, len) < 0)
		return -1;
	if (c->tls_cert[0] != '\0' &&
	    read_file("tls_cert", c->tls_cert, 0, &a->cert, err, len) < 0)
		return -1;
	if (c->tls_key[0] != '\0' &&
	    read_file("tls_key", c->tls_key, 1, &a->key, err, len) < 0)
		return -1;
	return 0;
}

int
natsauth_load(struct natsauth *a, const struct conf *c, char *err,
    size_t len)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->servers, sizeof(a->servers), "%s", c->url);
	natsurl_redact(c->url, a->shown, sizeof(a->shown));
	a->n = natsurl_split(a->servers, a->buf, sizeof(a->buf), a->v,
	    NATSURL_MAX);
	if (a->n < 0) {
		snprintf(err, len, "[source] url \"%s\": not a list of servers",
		    a->shown);
		return -1;
	}
	a->tls = natsurl_has_tls(c->url) || c->tls_ca[0] != '\0';
	snprintf(a->user, sizeof(a->user), "%s", c->source_user);
	if (load_secrets(a, c, err, len) < 0) {
		natsauth_free(a);
		return -1;
	}
	return 0;
}

/* cnats threads, at every (re)connection: a holds still meanwhile. */
static natsStatus
sign_nonce(char **why, unsigned char **sig, int *siglen, const char *nonce,
    void *arg)
{
	const struct natsauth *a = arg;

	if (nkey_sign(a->seed, nonce, strlen(nonce), sig, siglen) < 0) {
		if (why != NULL)
			*why = strdup("cannot sign the server's nonce");
		return NATS_ERR;
	}
	return NATS_OK;
}

static natsStatus
user_jwt(char **jwt, char **why, void *arg)
{
	const struct natsauth *a = arg;

	return (*jwt = strdup(a->jwt)) != NULL ? NATS_OK : NATS_NO_MEMORY;
}

static int
failed(char *err, size_t len, const char *what, natsStatus st)
{
	const char *last = nats_GetLastError(NULL);

	snprintf(err, len, "%s: %s", what, last != NULL && *last != '\0' ?
	    last : natsStatus_GetText(st));
	return -1;
}

static int
apply_tls(struct natsauth *a, natsOptions *o, char *err, size_t len)
{
	natsStatus st;

	if (!a->tls && a->cert == NULL)
		return 0;
	if ((st = natsOptions_SetSecure(o, true)) != NATS_OK)
		return failed(err, len, "TLS", st);
	if (a->ca != NULL &&
	    (st = natsOptions_SetCATrustedCertificates(o, a->ca)) != NATS_OK)
		return failed(err, len, "[source] tls_ca", st);
	if (a->cert != NULL && (st = natsOptions_SetCertificatesChain(o,
	    a->cert, a->key)) != NATS_OK)
		return failed(err, len, "[source] tls_cert and tls_key", st);
	return 0;
}

int
natsauth_apply(struct natsauth *a, natsOptions *o, char *err, size_t len)
{
	natsStatus st = NATS_OK;

	if ((st = natsOptions_SetServers(o, a->v, a->n)) != NATS_OK)
		return failed(err, len, "[source] url", st);
	if (a->jwt != NULL)
		st = natsOptions_SetUserCredentialsCallbacks(o, user_jwt, a,
		    sign_nonce, a);
	else if (a->seed != NULL)
		st = natsOptions_SetNKey(o, a->nkey, sign_nonce, a);
	else if (a->token != NULL)
		st = natsOptions_SetToken(o, a->token);
	else if (a->password != NULL)
		st = natsOptions_SetUserInfo(o, a->user, a->password);
	if (st != NATS_OK)
		return failed(err, len, "[source] credentials", st);
	return apply_tls(a, o, err, len);
}

static int
differ(const char *x, const char *y)
{
	return (x == NULL) != (y == NULL) || (x != NULL && strcmp(x, y) != 0);
}

const char *
natsauth_changed(const struct natsauth *a, const struct natsauth *b)
{
	if (strcmp(a->servers, b->servers) != 0)
		return "url";
	if (differ(a->jwt, b->jwt))
		return "creds";
	if (differ(a->seed, b->seed))
		return a->jwt != NULL || b->jwt != NULL ? "creds" : "nkey_seed";
	if (differ(a->token, b->token))
		return "token_file";
	if (strcmp(a->user, b->user) != 0)
		return "user";
	if (differ(a->password, b->password))
		return "password_file";
	if (differ(a->ca, b->ca) || a->tls != b->tls)
		return "tls_ca";
	if (differ(a->cert, b->cert))
		return "tls_cert";
	if (differ(a->key, b->key))
		return "tls_key";
	return NULL;
}

static void
wipe(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void
natsauth_free(struct natsauth *a)
{
	wipe(&a->password);
	wipe(&a->token);
	wipe(&a->seed);
	wipe(&a->jwt);
	wipe(&a->ca);
	wipe(&a->cert);
	wipe(&a->key);
	explicit_bzero(a->servers, sizeof(a->servers));
	explicit_bzero(a->buf, sizeof(a->buf));
}

int
natsauth_check_conf(const struct conf *c, const char *path, char *err,
    size_t len)
{
	struct stat sb;

	if (!natsurl_has_secret(c->url))
		return 0;
	if (stat(path, &sb) < 0) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (sb.st_mode & (S_IRGRP | S_IROTH)) {
		snprintf(err, len, "%s: [source] url holds a password or token "
		    "and others may read the file (mode %03o); refusing it "
		    "(chmod 600, or move the secret to token_file or "
		    "password_file)", path, (unsigned)(sb.st_mode & 0777));
		return -1;
	}
	return 0;
}
