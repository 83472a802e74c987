/* The list of settings tables and the public config object; see settings.h. */
#include "config.h"

#include "api/settings.h"

#include "api/calibrate.h"
#include "api/launch.h"
#include "api/links.h"
#include "api/place.h"
#include "bootstrap/bootstrap.h"
#include "coll/select.h"
#include "exec/engine.h"
#include "topo/topo.h"
#include "transports/transport.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tt_config_table_t *const core_tables[] = {
    &tt_log_config_table,   &tt_launch_config_table,    &tt_bootstrap_config_table,
    &tt_coll_config_table,  &tt_engine_config_table,    &tt_topo_config_table,
    &tt_place_config_table, &tt_calibrate_config_table, &tt_links_config_table,
};

/* Table number @p i: the core ones, then one per registered transport. */
static const tt_config_table_t *table_at(size_t i)
{
    if (i < TT_ARRAY_SIZE(core_tables))
        return core_tables[i];
    i -= TT_ARRAY_SIZE(core_tables);
    for (size_t t = 0; tt_transports[t] != NULL; t++)
        if (t == i)
            return tt_transports[t]->config;
    return NULL;
}

const tt_config_field_t *tt_settings_field(size_t index)
{
    const tt_config_table_t *table;
    for (size_t t = 0; (table = table_at(t)) != NULL; t++) {
        if (index < table->nfields)
            return &table->fields[index];
        index -= table->nfields;
    }
    return NULL;
}

const tt_config_field_t *tt_settings_find(const char *name)
{
    const tt_config_field_t *field;
    const char *short_name = tt_config_short_name(name);
    for (size_t i = 0; (field = tt_settings_field(i)) != NULL; i++)
        if (strcmp(field->name, short_name) == 0)
            return field;
    return NULL;
}

tutti_status_t tt_settings_validate(const tt_config_overrides_t *overrides)
{
    const tt_config_table_t *table;
    for (size_t t = 0; (table = table_at(t)) != NULL; t++) {
        void *scratch = malloc(table->settings_size);
        tutti_status_t status;
        if (scratch == NULL)
            return TUTTI_ERR_NO_MEMORY;
        status = tt_config_load(table, overrides, scratch);
        free(scratch);
        TT_CHECK(status);
    }
    return TUTTI_OK;
}

tutti_status_t tutti_config_create(tutti_config_t *config_p)
{
    tutti_config_t config;
    if (config_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    config = calloc(1, sizeof(*config));
    if (config == NULL)
        return TUTTI_ERR_NO_MEMORY;
    *config_p = config;
    return TUTTI_OK;
}

tutti_status_t tutti_config_set(tutti_config_t config, const char *name, const char *value)
{
    const tt_config_field_t *field;
    void *scratch;
    tutti_status_t status;

    if (config == NULL || name == NULL || value == NULL)
        return TUTTI_ERR_INVALID_ARG;
    field = tt_settings_find(name);
    if (field == NULL) {
        tt_error("config: no setting called %s (tutti-info lists them)", name);
        return TUTTI_ERR_NOT_FOUND;
    }
    /* Parse into a throwaway struct: big enough for any field's value. */
    scratch = calloc(1, field->offset + TT_CONFIG_STRING_MAX);
    if (scratch == NULL)
        return TUTTI_ERR_NO_MEMORY;
    status = tt_config_parse_field(field, value, scratch);
    free(scratch);
    TT_CHECK(status);
    return tt_config_overrides_set(&config->overrides, field->name, value);
}

tutti_status_t tutti_config_setting(tutti_config_t config, size_t index, tutti_setting_t *setting_p)
{
    const tt_config_field_t *field;

    if (config == NULL || setting_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    field = tt_settings_field(index);
    if (field == NULL)
        return TUTTI_ERR_NOT_FOUND;
    snprintf(config->name, sizeof(config->name), "TUTTI_%s", field->name);
    setting_p->name = config->name;
    setting_p->value = tt_config_effective(field, &config->overrides);
    if (field->secret) {
        snprintf(config->value, sizeof(config->value), "%s",
                 setting_p->value[0] != '\0' ? "(set)" : "");
        setting_p->value = config->value;
    }
    setting_p->default_value = field->default_value;
    setting_p->help = field->help;
    return TUTTI_OK;
}

tutti_status_t tutti_config_destroy(tutti_config_t config)
{
    if (config == NULL)
        return TUTTI_ERR_INVALID_ARG;
    tt_config_overrides_clear(&config->overrides);
    free(config);
    return TUTTI_OK;
}
