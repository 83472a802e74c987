/* The UCX transport's ops table (see ucx.c). */
#ifndef TT_UCX_UCX_H
#define TT_UCX_UCX_H

#include "transports/transport.h"

extern const tt_transport_ops_t tt_ucx_transport_ops;

#endif
