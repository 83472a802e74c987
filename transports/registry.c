/* The one list of transports, in order of preference. Optional ones go in #ifdef HAVE_... */
#include "config.h"

#include "transports/shm/shm.h"
#ifdef HAVE_UCX
#include "transports/ucx/ucx.h"
#endif
#ifdef HAVE_IBVERBS
#include "transports/rdma/rdma.h"
#endif
#include "transports/transport.h"

#include <stdio.h>
#include <string.h>

const tt_transport_ops_t *const tt_transports[] = {
    &tt_shm_transport_ops,
#ifdef HAVE_UCX
    &tt_ucx_transport_ops,
#endif
#ifdef HAVE_IBVERBS
    &tt_rdma_transport_ops,
#endif
    NULL,
};

const tt_transport_ops_t *tt_transport_find(const char *name)
{
    for (size_t t = 0; tt_transports[t] != NULL; t++)
        if (strcmp(tt_transports[t]->name, name) == 0)
            return tt_transports[t];
    return NULL;
}

const tt_transport_ops_t *tt_transport_runnable(const char *name, char *why, size_t why_size)
{
    const tt_transport_ops_t *ops = tt_transport_find(name);

    if (ops == NULL) {
        snprintf(why, why_size, "not built in (configure found no %s)", name);
        return NULL;
    }
    if (ops->size != sizeof(tt_transport_ops_t)) {
        snprintf(why, why_size, "built for another transport interface");
        return NULL;
    }
    return ops->available(why, why_size) ? ops : NULL;
}
