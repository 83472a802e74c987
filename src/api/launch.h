/* Creating the first communicator: unique ids, explicit ranks, or the launcher's environment. */
#ifndef TT_API_LAUNCH_H
#define TT_API_LAUNCH_H

#include "util/config.h"

typedef struct tt_launch_settings {
    char rank[TT_CONFIG_STRING_MAX];
    char nranks[TT_CONFIG_STRING_MAX];
    char address[TT_CONFIG_STRING_MAX];
    char secret[TT_CONFIG_STRING_MAX];
} tt_launch_settings_t;

extern const tt_config_table_t tt_launch_config_table;

#endif
