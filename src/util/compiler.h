/* Small helpers shared by every module: status propagation and attributes. */
#ifndef TT_UTIL_COMPILER_H
#define TT_UTIL_COMPILER_H

#include "tutti.h"

#include <stddef.h>

/* Return the status of @p expr from the calling function unless it is TUTTI_OK. */
#define TT_CHECK(expr)                       \
    do {                                     \
        tutti_status_t tt_check_s_ = (expr); \
        if (tt_check_s_ != TUTTI_OK)         \
            return tt_check_s_;              \
    } while (0)

/* Store the status of @p expr in @p status and jump to @p label unless it is TUTTI_OK. */
#define TT_CHECK_GOTO(expr, status, label) \
    do {                                   \
        (status) = (expr);                 \
        if ((status) != TUTTI_OK)          \
            goto label;                    \
    } while (0)

#define TT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TT_DIV_ROUND_UP(a, b) (((a) + (b)-1) / (b))
#define TT_ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))
#define TT_CACHE_LINE 64

#define TT_LIKELY(x) __builtin_expect(!!(x), 1)
#define TT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Pointer to the struct that embeds @p ptr as its member @p member. */
#define tt_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
