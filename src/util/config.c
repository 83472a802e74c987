/* Settings tables: parsing values and layering override > environment > default. */
#include <config.h> /* the build's: "config.h" would find util/config.h */

#include "util/config.h"

#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TT_ENV_PREFIX "TUTTI_"

const char *tt_config_short_name(const char *name)
{
    size_t n = strlen(TT_ENV_PREFIX);
    return strncmp(name, TT_ENV_PREFIX, n) == 0 ? name + n : name;
}

tutti_status_t tt_parse_size(const char *text, size_t *size_p)
{
    char *end;
    unsigned long long value, scale = 1;

    errno = 0;
    if (!isdigit((unsigned char)text[0]))
        return TUTTI_ERR_INVALID_ARG;
    value = strtoull(text, &end, 10);
    if (errno != 0)
        return TUTTI_ERR_INVALID_ARG;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        scale = 1ULL << 10;
        end++;
        break;
    case 'M':
        scale = 1ULL << 20;
        end++;
        break;
    case 'G':
        scale = 1ULL << 30;
        end++;
        break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0' || value > SIZE_MAX / scale)
        return TUTTI_ERR_INVALID_ARG;
    *size_p = (size_t)(value * scale);
    return TUTTI_OK;
}

static tutti_status_t parse_uint(const char *text, uint64_t *value_p)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)text[0]))
        return TUTTI_ERR_INVALID_ARG;
    *value_p = strtoull(text, &end, 10);
    return errno == 0 && *end == '\0' ? TUTTI_OK : TUTTI_ERR_INVALID_ARG;
}

static tutti_status_t parse_bool(const char *text, int *value_p)
{
    static const char *const yes[] = {"1", "yes", "on", "true"};
    static const char *const no[] = {"0", "no", "off", "false"};
    for (size_t i = 0; i < TT_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *value_p = 1;
            return TUTTI_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *value_p = 0;
            return TUTTI_OK;
        }
    }
    return TUTTI_ERR_INVALID_ARG;
}

tutti_status_t tt_parse_duration(const char *text, int64_t *ns_p)
{
    static const struct {
        const char *suffix;
        double ns;
    } units[] = {{"", 1e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}, {"m", 60e9}};
    char *end;
    double value;

    errno = 0;
    if (!isdigit((unsigned char)text[0]) && text[0] != '.')
        return TUTTI_ERR_INVALID_ARG;
    value = strtod(text, &end);
    if (errno != 0 || value < 0)
        return TUTTI_ERR_INVALID_ARG;
    for (size_t i = 0; i < TT_ARRAY_SIZE(units); i++) {
        if (strcmp(end, units[i].suffix) == 0 && value * units[i].ns < 9e18) {
            *ns_p = (int64_t)(value * units[i].ns);
            return TUTTI_OK;
        }
    }
    return TUTTI_ERR_INVALID_ARG;
}

static tutti_status_t parse_enum(const char *text, const char *const *choices, int *value_p)
{
    for (int i = 0; choices[i] != NULL; i++) {
        if (strcasecmp(text, choices[i]) == 0) {
            *value_p = i;
            return TUTTI_OK;
        }
    }
    return TUTTI_ERR_INVALID_ARG;
}

tutti_status_t tt_config_parse_field(const tt_config_field_t *field, const char *text,
                                     void *settings)
{
    static const char *const type_words[] = {
        [TT_CFG_UINT] = "a whole number",     [TT_CFG_SIZE] = "a size such as 64K or 1M",
        [TT_CFG_BOOL] = "yes or no",          [TT_CFG_DURATION] = "a duration such as 5s or 250ms",
        [TT_CFG_ENUM] = "one of the choices", [TT_CFG_STRING] = "shorter than 256 bytes",
    };
    char *slot = (char *)settings + field->offset;
    tutti_status_t status;

    switch (field->type) {
    case TT_CFG_UINT: status = parse_uint(text, (uint64_t *)(void *)slot); break;
    case TT_CFG_SIZE:
        /* A size whose default is "auto" also takes "auto", stored as 0. */
        if (strcmp(field->default_value, "auto") == 0 && strcmp(text, "auto") == 0) {
            *(size_t *)(void *)slot = 0;
            status = TUTTI_OK;
        } else {
            status = tt_parse_size(text, (size_t *)(void *)slot);
        }
        break;
    case TT_CFG_BOOL: status = parse_bool(text, (int *)(void *)slot); break;
    case TT_CFG_DURATION:
        /* A duration whose default is "auto" also takes "auto", stored as -1. */
        if (strcmp(field->default_value, "auto") == 0 && strcmp(text, "auto") == 0) {
            *(int64_t *)(void *)slot = TT_CFG_AUTO;
            status = TUTTI_OK;
        } else {
            status = tt_parse_duration(text, (int64_t *)(void *)slot);
        }
        break;
    case TT_CFG_ENUM: status = parse_enum(text, field->choices, (int *)(void *)slot); break;
    case TT_CFG_STRING:
        status = strlen(text) < TT_CONFIG_STRING_MAX ? TUTTI_OK : TUTTI_ERR_INVALID_ARG;
        if (status == TUTTI_OK)
            strcpy(slot, text);
        break;
    default: status = TUTTI_ERR_INTERNAL; break;
    }
    if (status != TUTTI_OK && field->type == TT_CFG_ENUM) {
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; field->choices[i] != NULL && used < sizeof(list); i++)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                     field->choices[i]);
        tt_error("setting %s%s='%s' is not one of: %s", TT_ENV_PREFIX, field->name, text, list);
    } else if (status != TUTTI_OK) {
        tt_error("setting %s%s='%s' is not %s (%s)", TT_ENV_PREFIX, field->name, text,
                 type_words[field->type], field->help);
    }
    return status;
}

static const char *override_value(const tt_config_overrides_t *overrides, const char *name)
{
    if (overrides == NULL)
        return NULL;
    for (size_t i = 0; i < overrides->count; i++)
        if (strcmp(overrides->items[i].name, name) == 0)
            return overrides->items[i].value;
    return NULL;
}

const char *tt_config_effective(const tt_config_field_t *field,
                                const tt_config_overrides_t *overrides)
{
    char env_name[128];
    const char *value = override_value(overrides, field->name);

    if (value != NULL)
        return value;
    snprintf(env_name, sizeof(env_name), TT_ENV_PREFIX "%s", field->name);
    value = getenv(env_name);
    return value != NULL ? value : field->default_value;
}

tutti_status_t tt_config_load(const tt_config_table_t *table,
                              const tt_config_overrides_t *overrides, void *settings)
{
    memset(settings, 0, table->settings_size);
    for (size_t i = 0; i < table->nfields; i++)
        TT_CHECK(tt_config_parse_field(
            &table->fields[i], tt_config_effective(&table->fields[i], overrides), settings));
    return TUTTI_OK;
}

tutti_status_t tt_config_overrides_set(tt_config_overrides_t *overrides, const char *name,
                                       const char *value)
{
    char *copy = strdup(value);
    struct tt_config_override *items;

    if (copy == NULL)
        return TUTTI_ERR_NO_MEMORY;
    for (size_t i = 0; i < overrides->count; i++) {
        if (strcmp(overrides->items[i].name, name) == 0) {
            free(overrides->items[i].value);
            overrides->items[i].value = copy;
            return TUTTI_OK;
        }
    }
    items = realloc(overrides->items, (overrides->count + 1) * sizeof(*items));
    if (items == NULL)
        goto err_free_copy;
    overrides->items = items;
    items[overrides->count].name = strdup(name);
    if (items[overrides->count].name == NULL)
        goto err_free_copy;
    items[overrides->count++].value = copy;
    return TUTTI_OK;

err_free_copy:
    free(copy);
    return TUTTI_ERR_NO_MEMORY;
}

tutti_status_t tt_config_overrides_copy(tt_config_overrides_t *dst,
                                        const tt_config_overrides_t *src)
{
    if (src == NULL)
        return TUTTI_OK;
    for (size_t i = 0; i < src->count; i++) {
        tutti_status_t status =
            tt_config_overrides_set(dst, src->items[i].name, src->items[i].value);
        if (status != TUTTI_OK) {
            tt_config_overrides_clear(dst);
            return status;
        }
    }
    return TUTTI_OK;
}

void tt_config_overrides_clear(tt_config_overrides_t *overrides)
{
    for (size_t i = 0; i < overrides->count; i++) {
        free(overrides->items[i].name);
        free(overrides->items[i].value);
    }
    free(overrides->items);
    overrides->items = NULL;
    overrides->count = 0;
}
