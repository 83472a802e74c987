/*
 * RDMA devices: finding one with an active port, opening it, and choosing
 * the GID a RoCE v2 link should use. One opened port is one rail of the
 * RDMA transport.
 */
#ifndef TT_RDMA_DEVICE_H
#define TT_RDMA_DEVICE_H

#include "transports/rdma/verbs.h"
#include "util/compiler.h"

#include <stddef.h>
#include <stdint.h>

#define TT_RDMA_NAME_MAX 64

/* An opened device port, with what peers need to reach it. */
typedef struct tt_rdma_port {
    char name[TT_RDMA_NAME_MAX]; /* "mlx5_0:1" */
    struct ibv_context *context;
    struct ibv_pd *pd;
    uint8_t port;
    uint8_t link_layer; /* IBV_LINK_LAYER_INFINIBAND or _ETHERNET (RoCE) */
    uint16_t lid;       /* InfiniBand */
    int gid_index;      /* -1: no GID (InfiniBand without routing) */
    union ibv_gid gid;
    enum ibv_mtu mtu; /* the port's active MTU */
    uint32_t max_qp_wr, max_cqe, max_qp_rd_atom;
    uint32_t max_msg_size;
} tt_rdma_port_t;

/*
 * Open port @p port (0: the first active one) of device @p device (NULL or
 * "": the first device with an active port). @p gid_index < 0 chooses: on
 * RoCE the first RoCE v2 GID holding an IPv4 address, else the first RoCE
 * v2 one, else the first that is set; on InfiniBand index 0. Logs why on
 * failure: TUTTI_ERR_NO_TRANSPORT when there is no such device or port.
 */
tutti_status_t tt_rdma_port_open(const tt_verbs_t *v, const char *device, int port, int gid_index,
                                 tt_rdma_port_t *p);

void tt_rdma_port_close(const tt_verbs_t *v, tt_rdma_port_t *p);

/*
 * Whether this machine has an RDMA device with an active port; if not,
 * why, in @p why.
 */
int tt_rdma_any_active(const tt_verbs_t *v, char *why, size_t why_size);

#endif
