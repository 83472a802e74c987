/* Authentication codes of the rendezvous protocol; see wire.h. */
#include "config.h"

#include "bootstrap/wire.h"

static void mac_over(const unsigned char secret[TT_WIRE_SECRET_BYTES], const char *role,
                     const unsigned char nonce_root[TT_WIRE_NONCE_BYTES],
                     const unsigned char nonce_client[TT_WIRE_NONCE_BYTES], int32_t rank,
                     int32_t nranks, unsigned char mac[TT_SHA256_BYTES])
{
    tt_hmac_t hmac;
    /* The role label keeps a client's MAC from being replayed as the root's. */
    tt_hmac_init(&hmac, secret, TT_WIRE_SECRET_BYTES);
    tt_hmac_update(&hmac, role, 8);
    tt_hmac_update(&hmac, nonce_root, TT_WIRE_NONCE_BYTES);
    tt_hmac_update(&hmac, nonce_client, TT_WIRE_NONCE_BYTES);
    tt_hmac_update(&hmac, &rank, sizeof(rank));
    tt_hmac_update(&hmac, &nranks, sizeof(nranks));
    tt_hmac_final(&hmac, mac);
}

void tt_wire_client_mac(const unsigned char secret[TT_WIRE_SECRET_BYTES],
                        const unsigned char nonce_root[TT_WIRE_NONCE_BYTES],
                        const unsigned char nonce_client[TT_WIRE_NONCE_BYTES], int32_t rank,
                        int32_t nranks, unsigned char mac[TT_SHA256_BYTES])
{
    mac_over(secret, "client..", nonce_root, nonce_client, rank, nranks, mac);
}

void tt_wire_root_mac(const unsigned char secret[TT_WIRE_SECRET_BYTES],
                      const unsigned char nonce_root[TT_WIRE_NONCE_BYTES],
                      const unsigned char nonce_client[TT_WIRE_NONCE_BYTES],
                      unsigned char mac[TT_SHA256_BYTES])
{
    mac_over(secret, "root....", nonce_root, nonce_client, -1, -1, mac);
}
