/*
 * Logging. One process-wide level (TUTTI_LOG) and a prefix naming the rank,
 * so that the interleaved output of many ranks stays readable:
 *   tutti[r3] WARN  bootstrap: ...
 */
#ifndef TT_UTIL_LOG_H
#define TT_UTIL_LOG_H

#include "util/config.h"

typedef enum tt_log_level {
    TT_LOG_ERROR,
    TT_LOG_WARN,
    TT_LOG_INFO,
    TT_LOG_DEBUG,
    TT_LOG_TRACE,
} tt_log_level_t;

/* The log module's settings (TUTTI_LOG). */
extern const tt_config_table_t tt_log_config_table;

/* Apply settings loaded from tt_log_config_table (the level). */
tutti_status_t tt_log_configure(const tt_config_overrides_t *overrides);

/* Name this process in the prefix as rank @p rank (the first communicator's). */
void tt_log_set_rank(int rank);

/* True if messages of @p level are printed. */
int tt_log_enabled(tt_log_level_t level);

/* Print one line to stderr if @p level is enabled. Thread safe. */
void tt_log(tt_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tt_error(...) tt_log(TT_LOG_ERROR, __VA_ARGS__)
#define tt_warn(...) tt_log(TT_LOG_WARN, __VA_ARGS__)
#define tt_info(...)                          \
    do {                                      \
        if (tt_log_enabled(TT_LOG_INFO))      \
            tt_log(TT_LOG_INFO, __VA_ARGS__); \
    } while (0)
#define tt_debug(...)                          \
    do {                                       \
        if (tt_log_enabled(TT_LOG_DEBUG))      \
            tt_log(TT_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
