/*
 * Settings. Each module declares one table: for every setting its name, its
 * default, a line of help, its type and where the parsed value lands in the
 * module's settings struct. A value comes from, in order: an override (a
 * tutti_config_t), the environment (TUTTI_<NAME>), the default.
 */
#ifndef TT_UTIL_CONFIG_H
#define TT_UTIL_CONFIG_H

#include "util/compiler.h"

#include <stddef.h>
#include <stdint.h>

#define TT_CONFIG_STRING_MAX 256
#define TT_CFG_AUTO (-1) /* a duration left for the module to choose */

typedef enum tt_cfg_type {
    TT_CFG_UINT,     /* uint64_t */
    TT_CFG_SIZE,     /* size_t; accepts K, M, G suffixes (powers of 1024);
                        "auto" (0) too when that is the default */
    TT_CFG_BOOL,     /* int 0/1; accepts 1/0, yes/no, on/off, true/false */
    TT_CFG_DURATION, /* int64_t nanoseconds; accepts 5s, 250ms, 10us, 2m, or seconds;
                        "auto" (TT_CFG_AUTO) too when that is the default */
    TT_CFG_ENUM,     /* int index into choices */
    TT_CFG_STRING,   /* char[TT_CONFIG_STRING_MAX] */
} tt_cfg_type_t;

typedef struct tt_config_field {
    const char *name; /* without the TUTTI_ prefix, e.g. "SHM_SLOT_SIZE" */
    const char *default_value;
    const char *help;
    tt_cfg_type_t type;
    size_t offset;              /* where the value lands in the settings struct */
    const char *const *choices; /* TT_CFG_ENUM: NULL-terminated names */
    int secret;                 /* never shown (tutti-info prints "(set)") */
} tt_config_field_t;

typedef struct tt_config_table {
    const char *module;
    const tt_config_field_t *fields;
    size_t nfields;
    size_t settings_size; /* sizeof the struct the fields land in */
} tt_config_table_t;

/* Values set explicitly (tutti_config_set), by name without the prefix. */
typedef struct tt_config_overrides {
    size_t count;
    struct tt_config_override {
        char *name;
        char *value;
    } * items;
} tt_config_overrides_t;

/* Parse @p text for @p field into @p settings; logs and fails on a bad value. */
tutti_status_t tt_config_parse_field(const tt_config_field_t *field, const char *text,
                                     void *settings);

/* Fill @p settings from overrides (may be NULL), environment and defaults. */
tutti_status_t tt_config_load(const tt_config_table_t *table,
                              const tt_config_overrides_t *overrides, void *settings);

/* The text a field takes: the override, else the environment, else the default. */
const char *tt_config_effective(const tt_config_field_t *field,
                                const tt_config_overrides_t *overrides);

/* Strip an optional "TUTTI_" prefix from a setting name. */
const char *tt_config_short_name(const char *name);

/* Set (or replace) an override. Does not validate. */
tutti_status_t tt_config_overrides_set(tt_config_overrides_t *overrides, const char *name,
                                       const char *value);

/* Deep-copy @p src into @p dst (which must be empty); src may be NULL. */
tutti_status_t tt_config_overrides_copy(tt_config_overrides_t *dst,
                                        const tt_config_overrides_t *src);

/* Free what an overrides list holds and leave it empty. */
void tt_config_overrides_clear(tt_config_overrides_t *overrides);

/* Parse a byte size with an optional K/M/G suffix ("64K", "1M"). */
tutti_status_t tt_parse_size(const char *text, size_t *size_p);

/* Parse a duration ("5s", "250ms", "10us", "2m", or plain seconds) into nanoseconds. */
tutti_status_t tt_parse_duration(const char *text, int64_t *ns_p);

#endif
