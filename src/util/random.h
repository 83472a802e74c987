/* Cryptographically strong random bytes (secrets, nonces, unique names). */
#ifndef TT_UTIL_RANDOM_H
#define TT_UTIL_RANDOM_H

#include "util/compiler.h"

/* Fill @p buf with @p len random bytes from the kernel. */
tutti_status_t tt_random_bytes(void *buf, size_t len);

/* Write @p len bytes as lower-case hex into @p out (2 * len + 1 bytes). */
void tt_hex_encode(const void *bytes, size_t len, char *out);

#endif
