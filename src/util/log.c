/* Logging to stderr with a rank prefix; see log.h. */
#include <config.h> /* the build's: "config.h" would find util/config.h */

#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct tt_log_settings {
    int level;
} tt_log_settings_t;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace", NULL};

static const tt_config_field_t log_fields[] = {
    {"LOG", "warn", "log level: error, warn, info, debug or trace", TT_CFG_ENUM,
     offsetof(tt_log_settings_t, level), level_names},
};

const tt_config_table_t tt_log_config_table = {"log", log_fields, TT_ARRAY_SIZE(log_fields),
                                               sizeof(tt_log_settings_t)};

/* The process's logging state: part of the per-process context. */
static struct {
    pthread_once_t once;
    atomic_int level;
    atomic_int rank;
} log_state = {PTHREAD_ONCE_INIT, TT_LOG_WARN, -1};

static void log_load_from_env(void)
{
    tt_log_settings_t settings;
    /* A bad TUTTI_LOG is reported when a communicator loads its settings. */
    if (tt_config_load(&tt_log_config_table, NULL, &settings) == TUTTI_OK)
        atomic_store(&log_state.level, settings.level);
}

tutti_status_t tt_log_configure(const tt_config_overrides_t *overrides)
{
    tt_log_settings_t settings;
    pthread_once(&log_state.once, log_load_from_env);
    TT_CHECK(tt_config_load(&tt_log_config_table, overrides, &settings));
    atomic_store(&log_state.level, settings.level);
    return TUTTI_OK;
}

void tt_log_set_rank(int rank)
{
    int unset = -1;
    atomic_compare_exchange_strong(&log_state.rank, &unset, rank);
}

int tt_log_enabled(tt_log_level_t level)
{
    pthread_once(&log_state.once, log_load_from_env);
    return (int)level <= atomic_load(&log_state.level);
}

void tt_log(tt_log_level_t level, const char *fmt, ...)
{
    static const char *const tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"};
    char line[1024];
    int n, rank;
    va_list ap;

    if (!tt_log_enabled(level))
        return;
    rank = atomic_load(&log_state.rank);
    if (rank >= 0)
        n = snprintf(line, sizeof(line), "tutti[r%d] %s ", rank, tags[level]);
    else
        n = snprintf(line, sizeof(line), "tutti[pid %d] %s ", (int)getpid(), tags[level]);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
