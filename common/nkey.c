/*
 * nkey: decode a user nkey seed and derive its public key.
 *
 * The prefix of a seed is two bytes: the seed prefix (18 << 3) with the
 * top three bits of the key type, then the type's other five bits; the
 * user type is 20 << 3.  A public key has the type alone as its prefix.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "nkey.h"

#define PREFIX_SEED	(18 << 3)
#define PREFIX_USER	(20 << 3)

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static uint16_t
crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0;

	while (n-- > 0) {
		crc ^= (uint16_t)(*p++ << 8);
		for (int i = 0; i < 8; i++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1) ^ 0x1021 :
			    (uint16_t)(crc << 1);
	}
	return crc;
}

static void
base32_encode(const uint8_t *p, size_t n, char *out)
{
	unsigned bits = 0, acc = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 5) {
			*out++ = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		*out++ = b32[(acc << (5 - bits)) & 31];
	*out = '\0';
}

/* Bytes decoded into out (at most max), or -1 on a foreign character. */
static int
base32_decode(const char *s, uint8_t *out, size_t max)
{
	unsigned bits = 0, acc = 0;
	size_t n = 0;
	const char *c;

	for (; *s; s++) {
		if ((c = strchr(b32, *s)) == NULL)
			return -1;
		acc = ((acc << 5) | (unsigned)(c - b32)) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			if (n == max)
				return -1;
			out[n++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return (int)n;
}

static void
put_crc(uint8_t *p, size_t n)
{
	uint16_t crc = crc16(p, n);

	p[n] = (uint8_t)(crc & 0xff);
	p[n + 1] = (uint8_t)(crc >> 8);
}

void
nkey_user_seed(const uint8_t raw[32], char seed[NKEY_SEED_LEN + 1])
{
	uint8_t b[36];

	b[0] = PREFIX_SEED | (PREFIX_USER >> 5);
	b[1] = (PREFIX_USER & 31) << 3;
	memcpy(b + 2, raw, 32);
	put_crc(b, 34);
	base32_encode(b, sizeof(b), seed);
	OPENSSL_cleanse(b, sizeof(b));
}

/* The 32-byte public key of an Ed25519 seed, by libcrypto. */
static int
derive(const uint8_t *raw, uint8_t pub[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw,
	    32);
	size_t n = 32;
	int rc;

	if (k == NULL)
		return -1;
	rc = EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32 ? 0 : -1;
	EVP_PKEY_free(k);
	return rc;
}

static const char *
decode_seed(const char *seed, uint8_t b[36])
{
	uint16_t crc;

	if (strlen(seed) != NKEY_SEED_LEN ||
	    base32_decode(seed, b, 36) != 36)
		return "is not an encoded nkey seed (58 characters A-Z, 2-7)";
	crc = (uint16_t)(b[34] | (b[35] << 8));
	if (crc16(b, 34) != crc)
		return "fails its checksum";
	if ((b[0] & 0xf8) != PREFIX_SEED)
		return "is not a seed (it should start with S)";
	if ((((b[0] & 7) << 5) | ((b[1] & 0xf8) >> 3)) != PREFIX_USER)
		return "is not a user seed (it should start with SU)";
	return NULL;
}

const char *
nkey_user_public(const char *seed, char pub[NKEY_PUB_LEN + 1])
{
	uint8_t b[36], p[35];
	const char *why;

	if ((why = decode_seed(seed, b)) == NULL && derive(b + 2, p + 1) < 0)
		why = "cannot be turned into a public key";
	OPENSSL_cleanse(b, sizeof(b));
	if (why != NULL)
		return why;
	p[0] = PREFIX_USER;
	put_crc(p, 33);
	base32_encode(p, sizeof(p), pub);
	return NULL;
}

/*
 * The Ed25519 signature of msg by the seed's key, 64 bytes malloc'd into
 * *sig, as cnats wants it from a signing callback.  Signed here, by
 * libcrypto, not by cnats' nats_Sign: cnats 3.4.1's fails on some nonces
 * (about 1 in 20 000 random ones, NATS_ERR with no signature), and the
 * server then refuses the connection.
 */
int
nkey_sign(const char *seed, const char *msg, size_t len, unsigned char **sig,
    int *siglen)
{
	uint8_t b[36];
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *ctx = NULL;
	size_t n = 64;
	int rc = -1;

	*sig = NULL;
	*siglen = 0;
	if (decode_seed(seed, b) != NULL ||
	    (k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, b + 2,
	    32)) == NULL || (ctx = EVP_MD_CTX_new()) == NULL ||
	    (*sig = malloc(64)) == NULL)
		goto out;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(ctx, *sig, &n, (const unsigned char *)msg, len) == 1 &&
	    n == 64) {
		*siglen = 64;
		rc = 0;
	}
out:
	OPENSSL_cleanse(b, sizeof(b));
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	if (rc < 0) {
		free(*sig);
		*sig = NULL;
	}
	return rc;
}
