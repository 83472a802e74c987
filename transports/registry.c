/* The one list of transports, in order of preference. Optional ones go in #ifdef HAVE_... */
#include "config.h"

#include "transports/shm/shm.h"
#include "transports/transport.h"

const tt_transport_ops_t *const tt_transports[] = {
    &tt_shm_transport_ops,
    NULL,
};
