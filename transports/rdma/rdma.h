/* The RDMA (libibverbs) transport's ops table (see rdma.c). */
#ifndef TT_RDMA_RDMA_H
#define TT_RDMA_RDMA_H

#include "transports/transport.h"

extern const tt_transport_ops_t tt_rdma_transport_ops;

#endif
