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
