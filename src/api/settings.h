/* Every settings table of the library, for tutti-info and tutti_config_set. */
#ifndef TT_API_SETTINGS_H
#define TT_API_SETTINGS_H

#include "util/config.h"

/* The definition behind the public handle. */
struct tutti_config {
    tt_config_overrides_t overrides;
    char value[TT_CONFIG_STRING_MAX]; /* tutti_config_setting's answer for secrets */
    char name[TT_CONFIG_STRING_MAX];
};

/* Field number @p index over all tables, or NULL past the end. */
const tt_config_field_t *tt_settings_field(size_t index);

/* The field called @p name (with or without the TUTTI_ prefix), or NULL. */
const tt_config_field_t *tt_settings_find(const char *name);

/* Check every setting's effective value once, so a bad one fails early and clearly. */
tutti_status_t tt_settings_validate(const tt_config_overrides_t *overrides);

#endif
