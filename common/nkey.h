/*
 * nkey: NATS user nkeys, as the nkeys specification encodes them:
 * base32 (RFC 4648, no padding) of a prefix, the 32-byte Ed25519 seed or
 * public key, and a CRC-16/XMODEM, little-endian.  A user seed reads
 * "SU...", its public key "U...".
 *
 * cnats signs with a seed but cannot tell its public key, which the
 * server's CONNECT needs; libcrypto derives it here.  Seeds are secrets:
 * every buffer that held one is wiped before it is given back.
 */
#ifndef MANDRILL_NKEY_H
#define MANDRILL_NKEY_H

#include <stddef.h>
#include <stdint.h>

#define NKEY_SEED_LEN	58	/* characters of an encoded seed */
#define NKEY_PUB_LEN	56	/* characters of an encoded public key */

/*
 * The public key ("U...", NUL-terminated in pub) of a user seed; NULL,
 * or why the seed is not one (without quoting it).
 */
const char *nkey_user_public(const char *seed, char pub[NKEY_PUB_LEN + 1]);
/* Encode 32 raw bytes as a user seed, NUL-terminated (for tests). */
void nkey_user_seed(const uint8_t raw[32], char seed[NKEY_SEED_LEN + 1]);
/* Sign msg with the seed's key: 64 bytes malloc'd into *sig; 0 or -1. */
int nkey_sign(const char *seed, const char *msg, size_t len,
    unsigned char **sig, int *siglen);

#endif
