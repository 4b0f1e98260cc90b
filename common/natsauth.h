/*
 * natsauth: how mandrilld and mandrill-publish reach a NATS server: the
 * server list, the credentials and TLS of [source], applied to cnats
 * options in one place.
 *
 * natsauth_load reads every secret file of the configuration (creds,
 * nkey_seed, token_file, password_file, tls_key) and refuses one that
 * is missing, empty, malformed or readable by others; natsauth_apply
 * hands the result to cnats.  Secrets are held only here, wiped by
 * natsauth_free, and never printed: errors name the key and the file,
 * and `shown` is the url list with every password replaced.
 */
#ifndef MANDRILL_NATSAUTH_H
#define MANDRILL_NATSAUTH_H

#include <stddef.h>

#include <nats/nats.h>

#include "conf.h"
#include "natsurl.h"

struct natsauth {
	char		 servers[CONF_PATH_MAX];	/* the list, secrets and all */
	char		 shown[CONF_PATH_MAX];		/* the list, redacted */
	char		 buf[CONF_PATH_MAX];		/* split servers */
	const char	*v[NATSURL_MAX];
	int		 n;
	int		 tls;		/* tls:// or tls_ca */
	char		 user[CONF_NAME_MAX];
	char		 nkey[64];	/* public key of seed (nkey_seed) */
	/* Read from the files of [source], malloc'd, wiped on free. */
	char		*password;
	char		*token;
	char		*seed;		/* nkey_seed, or the seed of creds */
	char		*jwt;		/* creds */
	char		*ca, *cert, *key;
};

/*
 * Fill a from c: the servers, and every file that c names, read now and
 * checked.  0, or -1 with a one-line err naming the key and the file.
 */
int natsauth_load(struct natsauth *a, const struct conf *c, char *err,
    size_t len);
/* Servers, credentials and TLS into o; a must outlive o's connection. */
int natsauth_apply(struct natsauth *a, natsOptions *o, char *err,
    size_t len);
/*
 * NULL when a and b connect alike, else the first [source] key whose
 * value or file content differs.
 */
const char *natsauth_changed(const struct natsauth *a,
    const struct natsauth *b);
/* Wipe and free the secrets. */
void natsauth_free(struct natsauth *a);
/*
 * The configuration file itself: refused when it holds a secret (a url
 * with a password or token) and others may read it.
 */
int natsauth_check_conf(const struct conf *c, const char *path, char *err,
    size_t len);

#endif
