/* The process's shared UCX contexts; see context.h. */
#include "config.h"

#include "transports/ucx/context.h"
#include "transports/transport.h"
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shared_context {
    char net_devices[80]; /* "" for the default context */
    ucp_context_h context;
    int refs;
} shared_context_t;

static pthread_mutex_t contexts_lock = PTHREAD_MUTEX_INITIALIZER;
static shared_context_t contexts[1 + TT_TRANSPORT_MAX_RAILS];

/* A UCX setting tutti changes from UCX's default, unless the user set it. */
typedef struct tuned_setting {
    const char *variable; /* what the user would set */
    const char *name;     /* what ucp_config_modify takes (no transport prefix) */
    const char *value;
    int up_to_1_13; /* only for UCX 1.13 and older */
    int tcp;        /* a TCP setting: only where UCX may use TCP */
    const char *why;
} tuned_setting_t;

static const tuned_setting_t tuned_settings[] = {
    /* UCX up to 1.13 completes a TCP zero-copy send twice when its endpoint fails, and
     * aborts on its own assertion: a peer's death would kill its survivors. */
    {"UCX_ZCOPY_THRESH", "ZCOPY_THRESH", "inf", 1, 0,
     "zero-copy sends off: UCX 1.13's TCP transport aborts when a peer "
     "fails during one"},
    /* TCP moves a message in segments of this size, one system call and one copy each; with
     * UCX's 8K and 64K allreduce between two emulated hosts ran at 0.75 GB/s, with 512K at
     * 1.1-1.3 (README). The buffers are per endpoint that is sending or receiving. */
    {"UCX_TCP_TX_SEG_SIZE", "TX_SEG_SIZE", "512k", 0, 1,
     "TCP segments of 512K (UCX's 8K costs bandwidth)"},
    {"UCX_TCP_RX_SEG_SIZE", "RX_SEG_SIZE", "512k", 0, 1,
     "TCP segments of 512K (UCX's 64K costs bandwidth)"},
};

/*
 * Whether a context on @p net_devices may open TCP: not on an RDMA port
 * ("mlx5_0:1"), nor when UCX_TLS lists transports without tcp. (UCX warns
 * about settings that no transport it opened took.)
 */
static int may_use_tcp(const char *net_devices)
{
    const char *tls = getenv("UCX_TLS");

    if (strchr(net_devices, ':') != NULL)
        return 0;
    return tls == NULL || tls[0] == '^' || strstr(tls, "tcp") != NULL || strstr(tls, "all");
}

/* Apply tuned_settings to a context's @p config, each unless the user chose its value. */
static void tune(ucp_config_t *config, const char *net_devices)
{
    static int told;
    unsigned major, minor, release;

    ucp_get_version(&major, &minor, &release);
    for (size_t i = 0; i < TT_ARRAY_SIZE(tuned_settings); i++) {
        const tuned_setting_t *t = &tuned_settings[i];

        if ((t->up_to_1_13 && (major > 1 || minor > 13)) || getenv(t->variable) != NULL ||
            (t->tcp && !may_use_tcp(net_devices)))
            continue;
        if (ucp_config_modify(config, t->name, t->value) == UCS_OK && !told)
            tt_info("ucx: UCX %u.%u.%u: %s=%s unless set: %s", major, minor, release, t->variable,
                    t->value, t->why);
    }
    told = 1;
}

static ucs_status_t create(const char *net_devices, ucp_context_h *context_p)
{
    /* Workers of different communicators progress in different threads. */
    ucp_params_t params = {.field_mask =
                               UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
                           .features = UCP_FEATURE_TAG,
                           .mt_workers_shared = 1};
    ucp_config_t *config;
    ucs_status_t ucs = ucp_config_read(NULL, NULL, &config);

    if (ucs != UCS_OK)
        return ucs;
    tune(config, net_devices);
    if (net_devices[0] != '\0')
        ucs = ucp_config_modify(config, "NET_DEVICES", net_devices);
    if (ucs == UCS_OK)
        ucs = ucp_init(&params, config, context_p);
    ucp_config_release(config);
    return ucs;
}

tutti_status_t tt_ucx_context_get(const char *net_devices, ucp_context_h *context_p)
{
    const char *want = net_devices != NULL ? net_devices : "";
    shared_context_t *slot = NULL;
    tutti_status_t status = TUTTI_OK;

    if (strlen(want) >= sizeof(contexts[0].net_devices)) {
        tt_error("ucx: device list '%s' is too long", want);
        return TUTTI_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&contexts_lock);
    for (size_t i = 0; i < TT_ARRAY_SIZE(contexts) && slot == NULL; i++)
        if (contexts[i].refs > 0 && strcmp(contexts[i].net_devices, want) == 0)
            slot = &contexts[i];
    for (size_t i = 0; i < TT_ARRAY_SIZE(contexts) && slot == NULL; i++)
        if (contexts[i].refs == 0) {
            ucs_status_t ucs = create(want, &contexts[i].context);
            if (ucs != UCS_OK) {
                tt_error("ucx: cannot start UCX%s%s: %s (check the UCX_* variables; ucx_info -d "
                         "lists the devices)",
                         want[0] != '\0' ? " on " : "", want, ucs_status_string(ucs));
                status = TUTTI_ERR_NO_TRANSPORT;
                break;
            }
            slot = &contexts[i];
            snprintf(slot->net_devices, sizeof(slot->net_devices), "%s", want);
        }
    if (slot != NULL) {
        slot->refs++;
        *context_p = slot->context;
    } else if (status == TUTTI_OK) {
        tt_error("ucx: more than %zu device sets at once", TT_ARRAY_SIZE(contexts));
        status = TUTTI_ERR_NO_TRANSPORT;
    }
    pthread_mutex_unlock(&contexts_lock);
    return status;
}

void tt_ucx_context_put(ucp_context_h context)
{
    pthread_mutex_lock(&contexts_lock);
    for (size_t i = 0; i < TT_ARRAY_SIZE(contexts); i++)
        if (contexts[i].refs > 0 && contexts[i].context == context && --contexts[i].refs == 0) {
            ucp_cleanup(context);
            contexts[i].context = NULL;
        }
    pthread_mutex_unlock(&contexts_lock);
}
