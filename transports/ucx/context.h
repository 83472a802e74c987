/*
 * The process's UCX context, shared by every communicator's UCX transport:
 * reading UCX_* settings and opening the devices costs milliseconds, which a
 * process should pay once, not once per communicator (split makes many).
 */
#ifndef TT_UCX_CONTEXT_H
#define TT_UCX_CONTEXT_H

#include "tutti.h"

#include <ucp/api/ucp.h>

/*
 * Take a reference to the context, creating it with tag matching on first
 * use. Thread safe.
 * @return TUTTI_OK, or TUTTI_ERR_NO_TRANSPORT if UCX cannot start (logged)
 */
tutti_status_t tt_ucx_context_get(ucp_context_h *context_p);

/* Drop a reference taken by tt_ucx_context_get; the last one closes UCX. Thread safe. */
void tt_ucx_context_put(void);

#endif
