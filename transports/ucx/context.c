/* The process's shared UCX context; see context.h. */
#include "config.h"

#include "transports/ucx/context.h"
#include "util/log.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t context_lock = PTHREAD_MUTEX_INITIALIZER;
static ucp_context_h context;
static int context_refs;

/*
 * UCX up to 1.13 completes a TCP zero-copy send twice when its endpoint
 * fails, and aborts on its own assertion: a peer's death would kill its
 * survivors. Copy sends there, unless the user chose (UCX_ZCOPY_THRESH).
 */
static void avoid_known_bugs(ucp_config_t *config)
{
    unsigned major, minor, release;

    ucp_get_version(&major, &minor, &release);
    if ((major > 1 || minor > 13) || getenv("UCX_ZCOPY_THRESH") != NULL)
        return;
    if (ucp_config_modify(config, "ZCOPY_THRESH", "inf") == UCS_OK)
        tt_info("ucx: UCX %u.%u.%u: zero-copy sends off (UCX_ZCOPY_THRESH=inf); its TCP "
                "transport aborts when a peer fails during one",
                major, minor, release);
}

tutti_status_t tt_ucx_context_get(ucp_context_h *context_p)
{
    tutti_status_t status = TUTTI_OK;

    pthread_mutex_lock(&context_lock);
    if (context_refs == 0) {
        /* Workers of different communicators progress in different threads. */
        ucp_params_t params = {.field_mask =
                                   UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
                               .features = UCP_FEATURE_TAG,
                               .mt_workers_shared = 1};
        ucp_config_t *config;
        ucs_status_t ucs = ucp_config_read(NULL, NULL, &config);

        if (ucs == UCS_OK) {
            avoid_known_bugs(config);
            ucs = ucp_init(&params, config, &context);
            ucp_config_release(config);
        }
        if (ucs != UCS_OK) {
            tt_error("ucx: cannot start UCX: %s (check the UCX_* variables; ucx_info -d lists "
                     "the devices)",
                     ucs_status_string(ucs));
            status = TUTTI_ERR_NO_TRANSPORT;
        }
    }
    if (status == TUTTI_OK) {
        context_refs++;
        *context_p = context;
    }
    pthread_mutex_unlock(&context_lock);
    return status;
}

void tt_ucx_context_put(void)
{
    pthread_mutex_lock(&context_lock);
    if (--context_refs == 0) {
        ucp_cleanup(context);
        context = NULL;
    }
    pthread_mutex_unlock(&context_lock);
}
