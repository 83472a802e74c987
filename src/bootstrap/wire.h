/*
 * The rendezvous wire protocol. Every message is a fixed header followed by
 * `len` payload bytes. A connection starts with a mutual challenge-response
 * proving both ends know the job secret (HMAC-SHA-256 over both nonces), so
 * a stranger is refused before it can send anything else, and a rank that
 * reached the wrong job's rendezvous notices too.
 *
 *   root   -> client  CHALLENGE  {version, nonce_root}
 *   client -> root    HELLO      a=rank b=nranks {nonce_client, mac_client}
 *   root   -> client  WELCOME    {mac_root}          or REFUSE {reason}
 *   client -> root    GATHER     ctx, a=member, b=members {data}
 *   root   -> client  GATHERED   ctx {data of every member, in member order}
 *   root   -> client  FAILED     a=rank {reason}       (a rank died or aborted)
 *   root   -> client  MISSING    {int32 ranks...}     (arrival deadline passed)
 *   client -> root    REPORT     a=rank {reason}       (I saw rank a die)
 *   client -> root    ABORT      (I am abandoning the job)
 *   client -> root    BYE        (clean exit; the connection closes next)
 */
#ifndef TT_BOOTSTRAP_WIRE_H
#define TT_BOOTSTRAP_WIRE_H

#include "util/sha256.h"

#include <stdint.h>

#define TT_WIRE_VERSION 1
#define TT_WIRE_NONCE_BYTES 16
#define TT_WIRE_SECRET_BYTES 32
/* Largest payload accepted from an authenticated rank (setup data is small). */
#define TT_WIRE_MAX_PAYLOAD (64u << 20)
#define TT_WIRE_REASON_MAX 200
/*
 * REFUSE's field a: the rank asked for has joined this rendezvous already.
 * That is a duplicate rank, or the next job on this address reaching the
 * previous one while it ends: the client tries again until its deadline.
 */
#define TT_WIRE_REFUSE_TAKEN 1

typedef enum tt_wire_type {
    TT_WIRE_CHALLENGE = 0x54540001,
    TT_WIRE_HELLO,
    TT_WIRE_WELCOME,
    TT_WIRE_REFUSE,
    TT_WIRE_GATHER,
    TT_WIRE_GATHERED,
    TT_WIRE_FAILED,
    TT_WIRE_MISSING,
    TT_WIRE_REPORT,
    TT_WIRE_ABORT,
    TT_WIRE_BYE,
} tt_wire_type_t;

typedef struct tt_wire_header {
    uint32_t type;
    uint32_t len; /* payload bytes */
    uint64_t ctx;
    int32_t a;
    int32_t b;
} tt_wire_header_t;

typedef struct tt_wire_challenge {
    uint32_t version;
    unsigned char nonce[TT_WIRE_NONCE_BYTES];
} tt_wire_challenge_t;

typedef struct tt_wire_hello {
    unsigned char nonce[TT_WIRE_NONCE_BYTES];
    unsigned char mac[TT_SHA256_BYTES];
} tt_wire_hello_t;

/* MAC a client sends: proves it knows the secret, bound to both nonces, rank and size. */
void tt_wire_client_mac(const unsigned char secret[TT_WIRE_SECRET_BYTES],
                        const unsigned char nonce_root[TT_WIRE_NONCE_BYTES],
                        const unsigned char nonce_client[TT_WIRE_NONCE_BYTES], int32_t rank,
                        int32_t nranks, unsigned char mac[TT_SHA256_BYTES]);

/* MAC the root answers with: proves the root knows the secret too. */
void tt_wire_root_mac(const unsigned char secret[TT_WIRE_SECRET_BYTES],
                      const unsigned char nonce_root[TT_WIRE_NONCE_BYTES],
                      const unsigned char nonce_client[TT_WIRE_NONCE_BYTES],
                      unsigned char mac[TT_SHA256_BYTES]);

#endif
