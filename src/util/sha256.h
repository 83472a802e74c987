/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the bootstrap's
 * challenge-response authentication. Small and dependency-free on purpose.
 */
#ifndef TT_UTIL_SHA256_H
#define TT_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TT_SHA256_BYTES 32
#define TT_SHA256_BLOCK 64

typedef struct tt_sha256 {
    uint32_t state[8];
    uint64_t length; /* bytes hashed so far */
    unsigned char block[TT_SHA256_BLOCK];
    size_t fill;
} tt_sha256_t;

void tt_sha256_init(tt_sha256_t *ctx);
void tt_sha256_update(tt_sha256_t *ctx, const void *data, size_t len);
void tt_sha256_final(tt_sha256_t *ctx, unsigned char digest[TT_SHA256_BYTES]);

typedef struct tt_hmac {
    tt_sha256_t inner;
    unsigned char outer_key[TT_SHA256_BLOCK];
} tt_hmac_t;

/* Start an HMAC-SHA-256 with @p key; feed it with tt_hmac_update(). */
void tt_hmac_init(tt_hmac_t *ctx, const void *key, size_t key_len);
void tt_hmac_update(tt_hmac_t *ctx, const void *data, size_t len);
void tt_hmac_final(tt_hmac_t *ctx, unsigned char mac[TT_SHA256_BYTES]);

/* Compare two digests in constant time; returns 1 when equal. */
int tt_digest_equal(const unsigned char *a, const unsigned char *b, size_t len);

#endif
