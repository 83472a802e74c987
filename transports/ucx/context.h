/*
 * The process's UCX contexts, shared by every communicator's UCX transport:
 * reading UCX_* settings and opening the devices costs milliseconds, which a
 * process should pay once, not once per communicator (split makes many).
 * There is one context per set of network devices: the default one (UCX
 * picks the devices, UCX_NET_DEVICES as usual) and one per rail.
 */
#ifndef TT_UCX_CONTEXT_H
#define TT_UCX_CONTEXT_H

#include "tutti.h"

#include <ucp/api/ucp.h>

/*
 * Take a reference to the context using the network devices @p net_devices
 * (UCX_NET_DEVICES syntax), or the default one for NULL, creating it with
 * tag matching on first use. Thread safe.
 * @return TUTTI_OK, or TUTTI_ERR_NO_TRANSPORT if UCX cannot start (logged)
 */
tutti_status_t tt_ucx_context_get(const char *net_devices, ucp_context_h *context_p);

/* Drop a reference taken by tt_ucx_context_get; the last one closes it. Thread safe. */
void tt_ucx_context_put(ucp_context_h context);

#endif
