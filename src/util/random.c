/* Random bytes from getrandom(2); see random.h. */
#include <config.h> /* the build's: "config.h" would find util/config.h */

#include "util/random.h"

#include "util/log.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

tutti_status_t tt_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            tt_error("getrandom failed: %s", strerror(errno));
            return TUTTI_ERR_SYSTEM;
        }
        p += n;
        len -= (size_t)n;
    }
    return TUTTI_OK;
}

void tt_hex_encode(const void *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = bytes;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * len] = '\0';
}
