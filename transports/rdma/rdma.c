/*
 * RDMA transport over libibverbs (InfiniBand, RoCE): one reliable-connected
 * queue pair per peer and rail ("link").
 *
 * Messages of one link travel in order, as transport.h asks, in slots: the
 * receiver pre-posts SLOTS receive buffers of SLOT_SIZE bytes per link, and
 * every message the sender puts in one costs one credit. The receiver hands
 * credits back by writing how many slots it has taken into the sender's
 * memory (an RDMA write into the sender's control word for that link: no
 * receive buffer needed, so credits never wait for credits).
 *   - Small messages are copied into send slots, a slot's worth at a time
 *     (a header and up to SLOT_SIZE - 64 bytes), and out of the receive
 *     slots on the other side.
 *   - Messages of at least RNDV_THRESHOLD bytes are read by the receiver
 *     straight from the sender's buffer: the sender registers it and sends
 *     only its address and key in a slot; once the receive is posted, the
 *     receiver registers its buffer, reads the message into it with RDMA
 *     reads, and writes the count of messages it has finished reading into
 *     the sender's control word, which completes the send. Zero-copy on
 *     both ends. (A receive whose data is combined reads piece by piece
 *     into a staging buffer and hands the pieces over.)
 * User buffers are registered for the one message and deregistered when it
 * completes, so memory the user frees or reuses can never be reached
 * through a stale registration.
 *
 * Failures: a completion with an error (retry count exceeded when the peer
 * or the wire is gone, flushes after that), and the device's asynchronous
 * events (port down, device fatal, a queue pair in error) fail the link:
 * its transfers complete with TUTTI_ERR_LINK_FAILED and check_peers
 * reports rank, peer and device. How soon a silent peer counts as gone is
 * RDMA_TIMEOUT and RDMA_RETRY_COUNT: the defaults give up after about 0.3 s
 * (NCCL's take about 30 s).
 *
 * libibverbs is loaded at run time (verbs.h), so libtutti runs where it is
 * missing; available() then says why the transport is off.
 */
#include "config.h"

#include "transports/rdma/device.h"
#include "transports/rdma/rdma.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES 64u             /* a slot's header; the payload follows */
#define MSG_FIRST 1u                 /* the slot starts a message */
#define MSG_RTS 2u                   /* the slot announces a message to read */
#define READS_MAX 8                  /* RDMA reads in flight per link */
#define READ_PIECE ((size_t)1 << 20) /* bytes per RDMA read */
#define CTRL_ENTRIES 4               /* send-queue entries kept for control writes */
#define WR_ID(link, kind) ((uint64_t)(link) << 2 | (kind))

enum { WR_RECV, WR_SEND, WR_READ, WR_CTRL };

typedef struct rdma_settings {
    char devices[TT_CONFIG_STRING_MAX];
    char gid_index[TT_CONFIG_STRING_MAX];
    uint64_t timeout;
    uint64_t retry_count;
    size_t slots;
    size_t slot_size;
    size_t rndv_threshold;
} rdma_settings_t;

static const tt_config_field_t rdma_fields[] = {
    {"RDMA_DEVICES", "",
     "RDMA devices to use, one rail each, as name[:port] separated by commas (default: the "
     "host's RDMA NICs as the topology lists them, else the first device with an active port)",
     TT_CFG_STRING, offsetof(rdma_settings_t, devices), NULL},
    {"RDMA_GID_INDEX", "auto",
     "GID index on RoCE ports: auto takes the first RoCE v2 GID holding an IPv4 address",
     TT_CFG_STRING, offsetof(rdma_settings_t, gid_index), NULL},
    {"RDMA_TIMEOUT", "14",
     "ack timeout of a try, as the exponent N of 4.096 us * 2^N (14: 67 ms; 0 waits forever)",
     TT_CFG_UINT, offsetof(rdma_settings_t, timeout), NULL},
    {"RDMA_RETRY_COUNT", "3",
     "tries after the first before a silent peer fails the link (0-6; 7 would mean forever on "
     "some devices)",
     TT_CFG_UINT, offsetof(rdma_settings_t, retry_count), NULL},
    {"RDMA_SLOTS", "32", "receive slots per link: messages a sender may have in flight",
     TT_CFG_SIZE, offsetof(rdma_settings_t, slots), NULL},
    {"RDMA_SLOT_SIZE", "8K", "bytes per slot (a 64-byte header, then the message's data)",
     TT_CFG_SIZE, offsetof(rdma_settings_t, slot_size), NULL},
    {"RDMA_RNDV_THRESHOLD", "32K",
     "messages of at least this many bytes are read by the receiver straight from the "
     "sender's buffer (zero-copy); smaller ones go through the slots",
     TT_CFG_SIZE, offsetof(rdma_settings_t, rndv_threshold), NULL},
};

static const tt_config_table_t rdma_config_table = {"rdma", rdma_fields, TT_ARRAY_SIZE(rdma_fields),
                                                    sizeof(rdma_settings_t)};

/* The header at the start of every slot. */
typedef struct rdma_header {
    uint32_t flags;
    uint32_t len;     /* payload bytes in this slot */
    uint64_t msg_len; /* bytes of the whole message */
    uint64_t tag;
    uint64_t addr; /* MSG_RTS: the sender's buffer */
    uint32_t rkey;
} rdma_header_t;

/* What a peer writes into this rank's memory, per link. */
typedef struct rdma_ctrl {
    _Atomic uint64_t consumed;   /* slots of ours it has taken: credits back */
    _Atomic uint64_t reads_done; /* announced messages of ours it has finished reading */
} rdma_ctrl_t;

/* How peers reach one rail of this rank. */
typedef struct rdma_rail_address {
    uint8_t gid[16];
    uint16_t lid;
    uint8_t link_layer;
    uint8_t mtu;
    uint32_t ctrl_rkey;
    uint64_t ctrl_addr; /* this rank's control words, one per communicator rank */
} rdma_rail_address_t;

/* The address blob: the rails, then the queue pair made for each rank on each rail. */
typedef struct rdma_address {
    uint32_t nrails;
    uint32_t nranks;
    rdma_rail_address_t rails[TT_TRANSPORT_MAX_RAILS];
    uint32_t qpn[]; /* [rank * nrails + rail]; 0 for none */
} rdma_address_t;

/* One device port and what its links share. */
typedef struct rdma_rail {
    tt_rdma_port_t port;
    struct ibv_cq *cq;
    rdma_ctrl_t *ctrl_in;  /* nranks words peers write */
    rdma_ctrl_t *ctrl_out; /* nranks words we write from */
    unsigned char *slots;  /* every link's send and receive slots */
    struct ibv_mr *ctrl_in_mr, *ctrl_out_mr, *slots_mr;
} rdma_rail_t;

/* One queue pair: to one peer, on one rail. */
typedef struct rdma_link {
    struct ibv_qp *qp; /* NULL for this rank itself */
    int peer, rail;
    tutti_status_t failed;
    int reported;
    char reason[TT_LINK_REASON_MAX];
    unsigned char *send_slots, *recv_slots;
    rdma_ctrl_t *ctrl_in, *ctrl_out;
    uint64_t remote_ctrl;
    uint32_t remote_rkey;
    uint32_t sq_used; /* send-queue entries posted, not yet completed */
    /* sending */
    tt_xfer_queue_t sends;           /* not wholly posted yet */
    tt_xfer_queue_t awaiting_reader; /* announced, the peer reads them */
    struct ibv_mr **announced_mrs;   /* their registrations, a ring of SLOTS */
    uint64_t sent, announced, announced_done;
    /* receiving */
    tt_xfer_queue_t recvs; /* posted; the head is being filled */
    uint64_t arrived, taken;
    int reading; /* the head receive's message is being read */
    uint64_t read_addr;
    uint32_t read_rkey;
    struct ibv_mr *read_mr;
    size_t read_posted, read_done;
    int reads_out;
    unsigned char *staging; /* for reads that the receiver combines */
    struct ibv_mr *staging_mr;
    uint64_t reads_finished;
} rdma_link_t;

typedef struct rdma_transport {
    tt_transport_t super;
    const tt_verbs_t *v;
    rdma_settings_t settings;
    int rank, nranks, npeers, nrails;
    int *index_of_rank;
    rdma_rail_t rails[TT_TRANSPORT_MAX_RAILS];
    rdma_link_t *links; /* [peer index * nrails + rail] */
    size_t payload_max; /* slot_size - HEADER_BYTES */
    uint32_t sq_depth;
    size_t read_piece;
} rdma_transport_t;

/* ---------------------------------------------------------------- availability */

static int rdma_available(char *why, size_t why_size)
{
    const tt_verbs_t *v = tt_verbs_load(why, why_size);
    return v != NULL && tt_rdma_any_active(v, why, why_size);
}

/* ---------------------------------------------------------------- set-up */

/*
 * The devices to open, one per rail: TUTTI_RDMA_DEVICES, else the rails'
 * RDMA devices, else "" (the first active device). Returns how many.
 */
static int choose_devices(const rdma_settings_t *s, const tt_transport_params_t *params,
                          char names[][TT_RDMA_NAME_MAX])
{
    int n = 0;

    if (s->devices[0] != '\0') {
        char list[TT_CONFIG_STRING_MAX], *save = NULL;
        snprintf(list, sizeof(list), "%s", s->devices);
        for (char *tok = strtok_r(list, ", ", &save); tok != NULL && n < TT_TRANSPORT_MAX_RAILS;
             tok = strtok_r(NULL, ", ", &save))
            snprintf(names[n++], TT_RDMA_NAME_MAX, "%s", tok);
        return n;
    }
    for (int r = 0; r < params->nrails; r++)
        if (params->rails[r].device[0] != '\0')
            snprintf(names[n++], TT_RDMA_NAME_MAX, "%s", params->rails[r].device);
    if (n == 0)
        names[n++][0] = '\0';
    return n;
}

static size_t address_bytes(int nranks, int nrails)
{
    return sizeof(rdma_address_t) + (size_t)nranks * (size_t)nrails * sizeof(uint32_t);
}

static size_t rdma_address_size(const tt_transport_params_t *params)
{
    char names[TT_TRANSPORT_MAX_RAILS][TT_RDMA_NAME_MAX];
    rdma_settings_t s;

    if (tt_config_load(&rdma_config_table, params->overrides, &s) != TUTTI_OK)
        return address_bytes(params->nranks, TT_TRANSPORT_MAX_RAILS);
    return address_bytes(params->nranks, choose_devices(&s, params, names));
}

/* Open rail @p r on "name[:port]", with its completion queue and memory for @p nlinks links. */
static tutti_status_t rail_open(rdma_transport_t *tl, int r, const char *device, int nlinks)
{
    rdma_rail_t *rail = &tl->rails[r];
    char name[TT_RDMA_NAME_MAX], *colon;
    int port = 0, gid_index = -1, cqe;
    size_t ctrl_bytes = (size_t)tl->nranks * sizeof(rdma_ctrl_t);
    size_t slot_bytes = (size_t)nlinks * 2 * tl->settings.slots * tl->settings.slot_size;
    const tt_verbs_t *v = tl->v;

    snprintf(name, sizeof(name), "%s", device);
    if ((colon = strchr(name, ':')) != NULL) {
        *colon = '\0';
        port = atoi(colon + 1);
    }
    if (strcmp(tl->settings.gid_index, "auto") != 0)
        gid_index = atoi(tl->settings.gid_index);
    TT_CHECK(tt_rdma_port_open(v, name, port, gid_index, &rail->port));
    /* Async events are read from progress: never block on them. */
    fcntl(rail->port.context->async_fd, F_SETFL,
          fcntl(rail->port.context->async_fd, F_GETFL) | O_NONBLOCK);
    cqe = (int)TT_MIN((size_t)rail->port.max_cqe,
                      (size_t)TT_MAX(nlinks, 1) * (tl->settings.slots + tl->sq_depth));
    rail->cq = v->create_cq(rail->port.context, cqe, NULL, NULL, 0);
    rail->ctrl_in = aligned_alloc(TT_CACHE_LINE, TT_ALIGN_UP(ctrl_bytes, TT_CACHE_LINE));
    rail->ctrl_out = aligned_alloc(TT_CACHE_LINE, TT_ALIGN_UP(ctrl_bytes, TT_CACHE_LINE));
    rail->slots = slot_bytes > 0 ? aligned_alloc(4096, TT_ALIGN_UP(slot_bytes, 4096)) : NULL;
    if (rail->cq == NULL || rail->ctrl_in == NULL || rail->ctrl_out == NULL ||
        (slot_bytes > 0 && rail->slots == NULL)) {
        tt_error("rdma: cannot make the completion queue or buffers of %s", rail->port.name);
        return TUTTI_ERR_NO_MEMORY;
    }
    memset(rail->ctrl_in, 0, ctrl_bytes);
    memset(rail->ctrl_out, 0, ctrl_bytes);
    rail->ctrl_in_mr = v->reg_mr(rail->port.pd, rail->ctrl_in, ctrl_bytes,
                                 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    rail->ctrl_out_mr = v->reg_mr(rail->port.pd, rail->ctrl_out, ctrl_bytes, 0);
    rail->slots_mr = slot_bytes > 0
                         ? v->reg_mr(rail->port.pd, rail->slots, slot_bytes, IBV_ACCESS_LOCAL_WRITE)
                         : NULL;
    if (rail->ctrl_in_mr == NULL || rail->ctrl_out_mr == NULL ||
        (slot_bytes > 0 && rail->slots_mr == NULL)) {
        tt_error("rdma: cannot register %zu bytes of buffers on %s: %s (locked-memory limit? "
                 "see ulimit -l)",
                 slot_bytes + 2 * ctrl_bytes, rail->port.name, strerror(errno));
        return TUTTI_ERR_NO_MEMORY;
    }
    return TUTTI_OK;
}

static void rail_close(const tt_verbs_t *v, rdma_rail_t *rail)
{
    struct ibv_mr *mrs[] = {rail->ctrl_in_mr, rail->ctrl_out_mr, rail->slots_mr};

    for (size_t i = 0; i < TT_ARRAY_SIZE(mrs); i++)
        if (mrs[i] != NULL)
            v->dereg_mr(mrs[i]);
    if (rail->cq != NULL)
        v->destroy_cq(rail->cq);
    free(rail->ctrl_in);
    free(rail->ctrl_out);
    free(rail->slots);
    if (rail->port.context != NULL)
        tt_rdma_port_close(v, &rail->port);
    memset(rail, 0, sizeof(*rail));
}

/* Post receive slot @p index of @p link. */
static int post_slot(rdma_transport_t *tl, rdma_link_t *link, size_t index)
{
    struct ibv_sge sge = {(uintptr_t)(link->recv_slots + index * tl->settings.slot_size),
                          (uint32_t)tl->settings.slot_size, tl->rails[link->rail].slots_mr->lkey};
    struct ibv_recv_wr wr = {.wr_id = WR_ID(link - tl->links, WR_RECV),
                             .sg_list = &sge,
                             .num_sge = 1},
                       *bad;
    return ibv_post_recv(link->qp, &wr, &bad);
}

/* Make @p link's queue pair, take it to INIT and post its receive slots. */
static tutti_status_t link_open(rdma_transport_t *tl, rdma_link_t *link, unsigned char *slots)
{
    rdma_rail_t *rail = &tl->rails[link->rail];
    struct ibv_qp_init_attr init = {
        .send_cq = rail->cq,
        .recv_cq = rail->cq,
        .cap = {.max_send_wr = tl->sq_depth,
                .max_recv_wr = (uint32_t)tl->settings.slots,
                .max_send_sge = 1,
                .max_recv_sge = 1},
        .qp_type = IBV_QPT_RC,
    };
    struct ibv_qp_attr attr = {.qp_state = IBV_QPS_INIT,
                               .port_num = rail->port.port,
                               .qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
                                                  IBV_ACCESS_REMOTE_WRITE};

    link->send_slots = slots;
    link->recv_slots = slots + tl->settings.slots * tl->settings.slot_size;
    link->ctrl_in = &rail->ctrl_in[link->peer];
    link->ctrl_out = &rail->ctrl_out[link->peer];
    link->announced_mrs = calloc(tl->settings.slots, sizeof(*link->announced_mrs));
    link->qp = link->announced_mrs != NULL ? tl->v->create_qp(rail->port.pd, &init) : NULL;
    if (link->qp == NULL) {
        tt_error("rdma: cannot make a queue pair on %s for rank %d: %s", rail->port.name,
                 link->peer, strerror(errno));
        return TUTTI_ERR_NO_TRANSPORT;
    }
    if (tl->v->modify_qp(link->qp, &attr,
                         IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS)) {
        tt_error("rdma: queue pair to rank %d on %s: cannot enter INIT: %s", link->peer,
                 rail->port.name, strerror(errno));
        return TUTTI_ERR_NO_TRANSPORT;
    }
    for (size_t i = 0; i < tl->settings.slots; i++)
        if (post_slot(tl, link, i) != 0) {
            tt_error("rdma: cannot post receives on %s", rail->port.name);
            return TUTTI_ERR_NO_TRANSPORT;
        }
    return TUTTI_OK;
}

static void link_close(rdma_transport_t *tl, rdma_link_t *link)
{
    if (link->qp != NULL)
        tl->v->destroy_qp(link->qp);
    for (uint64_t i = link->announced_done; i < link->announced; i++)
        tl->v->dereg_mr(link->announced_mrs[i % tl->settings.slots]);
    if (link->read_mr != NULL)
        tl->v->dereg_mr(link->read_mr);
    if (link->staging_mr != NULL)
        tl->v->dereg_mr(link->staging_mr);
    free(link->staging);
    free(link->announced_mrs);
}

static void rdma_destroy(tt_transport_t *super)
{
    rdma_transport_t *tl = tt_container_of(super, rdma_transport_t, super);

    for (int i = 0; tl->links != NULL && i < tl->npeers * tl->nrails; i++)
        link_close(tl, &tl->links[i]);
    for (int r = 0; r < tl->nrails; r++)
        rail_close(tl->v, &tl->rails[r]);
    free(tl->links);
    free(tl->index_of_rank);
    free(tl);
}

/* Check the settings that would otherwise fail obscurely later. */
static tutti_status_t check_settings(const rdma_settings_t *s)
{
    if (s->retry_count > 6 || s->timeout > 31) {
        tt_error("rdma: TUTTI_RDMA_RETRY_COUNT must be 0-6 and TUTTI_RDMA_TIMEOUT 0-31");
        return TUTTI_ERR_INVALID_ARG;
    }
    if (s->slots < 4 || s->slots > 4096 || s->slot_size < 2 * HEADER_BYTES ||
        s->slot_size % TT_CACHE_LINE != 0 || s->slot_size > ((size_t)1 << 30)) {
        tt_error("rdma: TUTTI_RDMA_SLOTS must be 4-4096 and TUTTI_RDMA_SLOT_SIZE a multiple "
                 "of 64 of at least 128 bytes");
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

static tutti_status_t rdma_create(const tt_transport_params_t *params, void *address,
                                  tt_transport_t **tl_p)
{
    char names[TT_TRANSPORT_MAX_RAILS][TT_RDMA_NAME_MAX], why[160];
    rdma_address_t *addr = address;
    rdma_transport_t *tl = calloc(1, sizeof(*tl));
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;
    int nlinks;

    if (tl == NULL)
        return TUTTI_ERR_NO_MEMORY;
    tl->super.ops = &tt_rdma_transport_ops;
    tl->rank = params->rank;
    tl->nranks = params->nranks;
    tl->npeers = params->npeers;
    if ((tl->v = tt_verbs_load(why, sizeof(why))) == NULL) {
        tt_error("rdma: %s", why);
        free(tl);
        return TUTTI_ERR_NO_TRANSPORT;
    }
    if (tt_config_load(&rdma_config_table, params->overrides, &tl->settings) != TUTTI_OK ||
        check_settings(&tl->settings) != TUTTI_OK) {
        free(tl);
        return TUTTI_ERR_INVALID_ARG;
    }
    tl->nrails = choose_devices(&tl->settings, params, names);
    tl->payload_max = tl->settings.slot_size - HEADER_BYTES;
    tl->sq_depth = (uint32_t)tl->settings.slots + READS_MAX + CTRL_ENTRIES;
    nlinks = params->npeers - 1;
    tl->index_of_rank = tt_peer_index_build(params);
    tl->links = calloc((size_t)params->npeers * (size_t)tl->nrails, sizeof(*tl->links));
    if (tl->index_of_rank == NULL || tl->links == NULL)
        goto err;
    memset(addr, 0, address_bytes(tl->nranks, tl->nrails));
    addr->nrails = (uint32_t)tl->nrails;
    addr->nranks = (uint32_t)tl->nranks;
    for (int r = 0; r < tl->nrails; r++) {
        rdma_rail_t *rail = &tl->rails[r];
        size_t next = 0;

        TT_CHECK_GOTO(rail_open(tl, r, names[r], nlinks), status, err);
        tl->read_piece = TT_MIN(READ_PIECE, (size_t)rail->port.max_msg_size);
        memcpy(addr->rails[r].gid, rail->port.gid.raw, 16);
        addr->rails[r].lid = rail->port.lid;
        addr->rails[r].link_layer = rail->port.link_layer;
        addr->rails[r].mtu = (uint8_t)rail->port.mtu;
        addr->rails[r].ctrl_rkey = rail->ctrl_in_mr->rkey;
        addr->rails[r].ctrl_addr = (uintptr_t)rail->ctrl_in;
        for (int i = 0; i < tl->npeers; i++) {
            rdma_link_t *link = &tl->links[i * tl->nrails + r];
            link->peer = params->peers[i];
            link->rail = r;
            if (link->peer == tl->rank)
                continue;
            TT_CHECK_GOTO(link_open(tl, link, rail->slots + next), status, err);
            next += 2 * tl->settings.slots * tl->settings.slot_size;
            addr->qpn[link->peer * tl->nrails + r] = link->qp->qp_num;
        }
        tt_info("rdma: rail %d on %s (%s, GID index %d)", r, rail->port.name,
                rail->port.link_layer == IBV_LINK_LAYER_ETHERNET ? "RoCE" : "InfiniBand",
                rail->port.gid_index);
    }
    *tl_p = &tl->super;
    return TUTTI_OK;
err:
    rdma_destroy(&tl->super);
    return status;
}

/* The first packet sequence number of the queue pair numbered @p qpn: both ends derive it. */
static uint32_t first_psn(uint32_t qpn)
{
    return (qpn * 2654435761u) & 0xffffff;
}

/* Take @p link to RTS, connected to queue pair @p qpn at @p remote. */
static tutti_status_t link_connect(rdma_transport_t *tl, rdma_link_t *link,
                                   const rdma_rail_address_t *remote, uint32_t qpn)
{
    const tt_rdma_port_t *port = &tl->rails[link->rail].port;
    uint8_t rd_atomic = (uint8_t)TT_MIN(READS_MAX, TT_MAX(port->max_qp_rd_atom, 1));
    struct ibv_qp_attr attr = {
        .qp_state = IBV_QPS_RTR,
        .path_mtu = (enum ibv_mtu)TT_MIN((int)port->mtu, (int)remote->mtu),
        .dest_qp_num = qpn,
        .rq_psn = first_psn(qpn),
        .max_dest_rd_atomic = rd_atomic,
        .min_rnr_timer = 12,
        .ah_attr = {.dlid = remote->lid, .port_num = port->port},
    };

    if (remote->link_layer != port->link_layer) {
        tt_error("rdma: rank %d's rail %d is %s, ours (%s) is not", link->peer, link->rail,
                 remote->link_layer == IBV_LINK_LAYER_ETHERNET ? "RoCE" : "InfiniBand", port->name);
        return TUTTI_ERR_PROTOCOL;
    }
    if (port->link_layer == IBV_LINK_LAYER_ETHERNET) {
        attr.ah_attr.is_global = 1;
        memcpy(attr.ah_attr.grh.dgid.raw, remote->gid, 16);
        attr.ah_attr.grh.sgid_index = (uint8_t)port->gid_index;
        attr.ah_attr.grh.hop_limit = 64;
    }
    if (tl->v->modify_qp(link->qp, &attr,
                         IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                             IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER)) {
        tt_error("rdma: queue pair to rank %d on %s: cannot enter RTR: %s", link->peer, port->name,
                 strerror(errno));
        return TUTTI_ERR_LINK_FAILED;
    }
    memset(&attr, 0, sizeof(attr));
    attr.qp_state = IBV_QPS_RTS;
    attr.timeout = (uint8_t)tl->settings.timeout;
    attr.retry_cnt = (uint8_t)tl->settings.retry_count;
    attr.rnr_retry = (uint8_t)tl->settings.retry_count; /* credits make RNR impossible */
    attr.sq_psn = first_psn(link->qp->qp_num);
    attr.max_rd_atomic = rd_atomic;
    if (tl->v->modify_qp(link->qp, &attr,
                         IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                             IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC)) {
        tt_error("rdma: queue pair to rank %d on %s: cannot enter RTS: %s", link->peer, port->name,
                 strerror(errno));
        return TUTTI_ERR_LINK_FAILED;
    }
    link->remote_ctrl = remote->ctrl_addr + (uint64_t)tl->rank * sizeof(rdma_ctrl_t);
    link->remote_rkey = remote->ctrl_rkey;
    return TUTTI_OK;
}

static tutti_status_t rdma_connect(tt_transport_t *super, const void *addresses)
{
    rdma_transport_t *tl = tt_container_of(super, rdma_transport_t, super);
    size_t size = address_bytes(tl->nranks, tl->nrails);

    for (int i = 0; i < tl->npeers; i++) {
        const rdma_address_t *a =
            (const rdma_address_t *)(const void *)((const char *)addresses + (size_t)i * size);
        int peer = tl->links[i * tl->nrails].peer;

        if (peer == tl->rank)
            continue;
        if (a->nrails != (uint32_t)tl->nrails || a->nranks != (uint32_t)tl->nranks) {
            tt_error("rdma: rank %d uses %u rails, this rank %d (TUTTI_RDMA_DEVICES set on "
                     "some ranks only, or hosts with different RDMA NICs?)",
                     peer, a->nrails, tl->nrails);
            return TUTTI_ERR_PROTOCOL;
        }
        for (int r = 0; r < tl->nrails; r++)
            TT_CHECK(link_connect(tl, &tl->links[i * tl->nrails + r], &a->rails[r],
                                  a->qpn[tl->rank * tl->nrails + r]));
    }
    tt_info("rdma: queue pairs to %d peers on %d rail%s", tl->npeers - 1, tl->nrails,
            tl->nrails == 1 ? "" : "s");
    return TUTTI_OK;
}

static tutti_status_t rdma_ready(tt_transport_t *super)
{
    (void)super;
    return TUTTI_OK;
}

/* ---------------------------------------------------------------- failure */

/* Fail every transfer of @p link with its status. */
static void drain_link(rdma_link_t *link, tt_xfer_t **done)
{
    tt_xfer_queue_t *queues[] = {&link->sends, &link->awaiting_reader, &link->recvs};

    for (size_t q = 0; q < TT_ARRAY_SIZE(queues); q++)
        while (queues[q]->head != NULL)
            tt_xfer_complete(tt_xfer_queue_pop(queues[q]), link->failed, done);
}

/*
 * Mark @p link failed with @p status for @p why, unless it already is, and
 * put its queue pair in the error state: the device then touches none of
 * its buffers. Returns whether it was working until now.
 */
static int mark_failed(rdma_transport_t *tl, rdma_link_t *link, tutti_status_t status,
                       const char *why)
{
    struct ibv_qp_attr attr = {.qp_state = IBV_QPS_ERR};

    if (link->failed != TUTTI_OK)
        return 0;
    link->failed = status;
    snprintf(link->reason, sizeof(link->reason), "rdma link to rank %d on %s: %s", link->peer,
             tl->rails[link->rail].port.name, why);
    tl->v->modify_qp(link->qp, &attr, IBV_QP_STATE);
    return 1;
}

/*
 * @p link failed: say so once and fail its transfers onto @p done (with
 * NULL, at the next progress).
 */
static void fail_link(rdma_transport_t *tl, rdma_link_t *link, tutti_status_t status,
                      tt_xfer_t **done, const char *why)
{
    if (mark_failed(tl, link, status, why))
        tt_error("%s", link->reason);
    if (done != NULL)
        drain_link(link, done);
}

/* ---------------------------------------------------------------- data path */

static rdma_link_t *link_of(rdma_transport_t *tl, const tt_xfer_t *x)
{
    int i = tt_peer_index_of(tl->index_of_rank, tl->nranks, x->peer);
    rdma_link_t *link;

    if (i < 0 || x->peer == tl->rank)
        return NULL;
    link = &tl->links[i * tl->nrails + TT_MAX(x->channel, 0) % tl->nrails];
    return link;
}

static tutti_status_t post(rdma_transport_t *tl, tt_xfer_t *x, int is_recv)
{
    rdma_link_t *link = link_of(tl, x);

    if (link == NULL)
        return TUTTI_ERR_INVALID_ARG;
    x->status = TUTTI_IN_PROGRESS;
    x->offset = 0;
    tt_xfer_queue_push(is_recv ? &link->recvs : &link->sends, x);
    return TUTTI_OK;
}

static tutti_status_t rdma_send(tt_transport_t *super, tt_xfer_t *x)
{
    return post(tt_container_of(super, rdma_transport_t, super), x, 0);
}

static tutti_status_t rdma_recv(tt_transport_t *super, tt_xfer_t *x)
{
    return post(tt_container_of(super, rdma_transport_t, super), x, 1);
}

/* Send-queue entries @p link may still use for data (some are kept for control writes). */
static int sq_room(const rdma_transport_t *tl, const rdma_link_t *link)
{
    return link->sq_used + CTRL_ENTRIES < tl->sq_depth;
}

static int has_credit(const rdma_transport_t *tl, const rdma_link_t *link)
{
    uint64_t consumed = atomic_load_explicit(&link->ctrl_in->consumed, memory_order_acquire);
    return link->sent - consumed < tl->settings.slots && sq_room(tl, link);
}

/* Send the next slot, whose header and payload are filled in, of @p len bytes in all. */
static int post_slot_send(rdma_transport_t *tl, rdma_link_t *link, unsigned char *slot, size_t len)
{
    struct ibv_sge sge = {(uintptr_t)slot, (uint32_t)len, tl->rails[link->rail].slots_mr->lkey};
    struct ibv_send_wr wr = {.wr_id = WR_ID(link - tl->links, WR_SEND),
                             .sg_list = &sge,
                             .num_sge = 1,
                             .opcode = IBV_WR_SEND,
                             .send_flags = IBV_SEND_SIGNALED},
                       *bad;
    int rc = ibv_post_send(link->qp, &wr, &bad);

    if (rc == 0) {
        link->sent++;
        link->sq_used++;
    }
    return rc;
}

static unsigned char *next_send_slot(const rdma_transport_t *tl, const rdma_link_t *link)
{
    return link->send_slots + (link->sent % tl->settings.slots) * tl->settings.slot_size;
}

/* Announce @p x for the peer to read; 0 if it must wait (no credit, no room). */
static int announce(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t *x, tt_xfer_t **done)
{
    unsigned char *slot = next_send_slot(tl, link);
    rdma_header_t h = {.flags = MSG_FIRST | MSG_RTS, .msg_len = x->len, .tag = x->tag};
    struct ibv_mr *mr;

    if (!has_credit(tl, link) || link->announced - link->announced_done >= tl->settings.slots)
        return 0;
    mr = tl->v->reg_mr(tl->rails[link->rail].port.pd, x->buf, x->len, IBV_ACCESS_REMOTE_READ);
    if (mr == NULL) {
        tt_error("rdma: cannot register a %zu-byte send buffer on %s: %s (locked-memory limit? "
                 "see ulimit -l)",
                 x->len, tl->rails[link->rail].port.name, strerror(errno));
        tt_xfer_complete(tt_xfer_queue_pop(&link->sends), TUTTI_ERR_NO_MEMORY, done);
        return 1;
    }
    h.addr = (uintptr_t)x->buf;
    h.rkey = mr->rkey;
    memcpy(slot, &h, sizeof(h));
    if (post_slot_send(tl, link, slot, HEADER_BYTES) != 0) {
        tl->v->dereg_mr(mr);
        fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post a send");
        return 1;
    }
    link->announced_mrs[link->announced++ % tl->settings.slots] = mr;
    tt_xfer_queue_push(&link->awaiting_reader, tt_xfer_queue_pop(&link->sends));
    return 1;
}

/* Post queued sends as far as credits allow. */
static int pump_sends(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t **done)
{
    int events = 0;

    while (link->sends.head != NULL && link->failed == TUTTI_OK) {
        tt_xfer_t *x = link->sends.head;

        if (x->len > 0 && x->len >= tl->settings.rndv_threshold) {
            if (!announce(tl, link, x, done))
                return events;
            events++;
            continue;
        }
        do {
            unsigned char *slot = next_send_slot(tl, link);
            rdma_header_t h = {.flags = x->offset == 0 ? MSG_FIRST : 0,
                               .len = (uint32_t)TT_MIN(x->len - x->offset, tl->payload_max),
                               .msg_len = x->len,
                               .tag = x->tag};

            if (!has_credit(tl, link))
                return events;
            memcpy(slot, &h, sizeof(h));
            memcpy(slot + HEADER_BYTES, (const char *)x->buf + x->offset, h.len);
            if (post_slot_send(tl, link, slot, HEADER_BYTES + h.len) != 0) {
                fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post a send");
                return events + 1;
            }
            x->offset += h.len;
            events++;
        } while (x->offset < x->len);
        /* Copied out: the buffer is the caller's again. */
        tt_xfer_complete(tt_xfer_queue_pop(&link->sends), TUTTI_OK, done);
    }
    return events;
}

/* Complete the announced sends the peer has finished reading. */
static int finish_announced(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t **done)
{
    uint64_t read = atomic_load_explicit(&link->ctrl_in->reads_done, memory_order_acquire);
    int events = 0;

    while (link->announced_done < read && link->awaiting_reader.head != NULL) {
        tl->v->dereg_mr(link->announced_mrs[link->announced_done++ % tl->settings.slots]);
        tt_xfer_complete(tt_xfer_queue_pop(&link->awaiting_reader), TUTTI_OK, done);
        events++;
    }
    return events;
}

/* Write our word @p field of @p link's control words into the peer's copy. */
static int write_ctrl(rdma_transport_t *tl, rdma_link_t *link, size_t field)
{
    rdma_rail_t *rail = &tl->rails[link->rail];
    struct ibv_sge sge = {(uintptr_t)link->ctrl_out + field, sizeof(uint64_t),
                          rail->ctrl_out_mr->lkey};
    struct ibv_send_wr wr = {.wr_id = WR_ID(link - tl->links, WR_CTRL),
                             .sg_list = &sge,
                             .num_sge = 1,
                             .opcode = IBV_WR_RDMA_WRITE,
                             .send_flags = IBV_SEND_SIGNALED,
                             .wr.rdma = {link->remote_ctrl + field, link->remote_rkey}},
                       *bad;
    int rc;

    if (link->sq_used >= tl->sq_depth)
        return 0;
    rc = ibv_post_send(link->qp, &wr, &bad);
    if (rc == 0)
        link->sq_used++;
    return rc == 0;
}

/*
 * Tell the peer what changed: slots taken (every quarter of them: a sender
 * out of credits has a whole window outstanding, so it always hears), and
 * messages read (at once: their senders wait for it).
 */
static void tell_peer(rdma_transport_t *tl, rdma_link_t *link)
{
    uint64_t told = atomic_load_explicit(&link->ctrl_out->consumed, memory_order_relaxed);

    if (link->taken - told >= TT_MAX(tl->settings.slots / 4, 1)) {
        atomic_store_explicit(&link->ctrl_out->consumed, link->taken, memory_order_relaxed);
        if (!write_ctrl(tl, link, offsetof(rdma_ctrl_t, consumed)))
            atomic_store_explicit(&link->ctrl_out->consumed, told, memory_order_relaxed);
    }
    told = atomic_load_explicit(&link->ctrl_out->reads_done, memory_order_relaxed);
    if (link->reads_finished != told) {
        atomic_store_explicit(&link->ctrl_out->reads_done, link->reads_finished,
                              memory_order_relaxed);
        if (!write_ctrl(tl, link, offsetof(rdma_ctrl_t, reads_done)))
            atomic_store_explicit(&link->ctrl_out->reads_done, told, memory_order_relaxed);
    }
}

/* Give the oldest arrived slot back to the device for the next message. */
static int take_slot(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t **done)
{
    if (post_slot(tl, link, link->taken % tl->settings.slots) != 0) {
        fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post a receive");
        return 0;
    }
    link->taken++;
    return 1;
}

/* Start reading the message announced by @p h into the head receive @p x. */
static int start_read(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t *x, const rdma_header_t *h,
                      tt_xfer_t **done)
{
    struct ibv_pd *pd = tl->rails[link->rail].port.pd;

    if (x->consume != NULL && link->staging == NULL) {
        link->staging = aligned_alloc(4096, tl->read_piece);
        link->staging_mr = link->staging != NULL ? tl->v->reg_mr(pd, link->staging, tl->read_piece,
                                                                 IBV_ACCESS_LOCAL_WRITE)
                                                 : NULL;
    } else if (x->consume == NULL) {
        link->read_mr = tl->v->reg_mr(pd, x->buf, x->len, IBV_ACCESS_LOCAL_WRITE);
    }
    if (x->consume != NULL ? link->staging_mr == NULL : link->read_mr == NULL) {
        tt_error("rdma: cannot register a %zu-byte receive buffer on %s: %s", x->len,
                 tl->rails[link->rail].port.name, strerror(errno));
        tt_xfer_complete(tt_xfer_queue_pop(&link->recvs), TUTTI_ERR_NO_MEMORY, done);
        return 0;
    }
    link->reading = 1;
    link->read_addr = h->addr;
    link->read_rkey = h->rkey;
    link->read_posted = link->read_done = 0;
    return 1;
}

/* Bytes of the next read of @p x's message, from @p offset. */
static size_t read_len(const rdma_transport_t *tl, const tt_xfer_t *x, size_t offset)
{
    return TT_MIN(tl->read_piece, x->len - offset);
}

/* Post reads of the head receive's message as far as allowed. */
static void pump_reads(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t **done)
{
    tt_xfer_t *x = link->recvs.head;
    /* Pieces to combine share one staging buffer: one at a time. */
    int limit = x->consume != NULL ? 1 : READS_MAX;

    while (link->reads_out < limit && link->read_posted < x->len && sq_room(tl, link)) {
        size_t len = read_len(tl, x, link->read_posted);
        struct ibv_mr *mr = x->consume != NULL ? link->staging_mr : link->read_mr;
        unsigned char *to =
            x->consume != NULL ? link->staging : (unsigned char *)x->buf + link->read_posted;
        struct ibv_sge sge = {(uintptr_t)to, (uint32_t)len, mr->lkey};
        struct ibv_send_wr wr = {.wr_id = WR_ID(link - tl->links, WR_READ),
                                 .sg_list = &sge,
                                 .num_sge = 1,
                                 .opcode = IBV_WR_RDMA_READ,
                                 .send_flags = IBV_SEND_SIGNALED,
                                 .wr.rdma = {link->read_addr + link->read_posted, link->read_rkey}},
                           *bad;

        if (ibv_post_send(link->qp, &wr, &bad) != 0) {
            fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post an RDMA read");
            return;
        }
        link->sq_used++;
        link->reads_out++;
        link->read_posted += len;
    }
}

/* One read of the head receive finished (they finish in order). */
static void read_finished(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t **done)
{
    tt_xfer_t *x = link->recvs.head;
    size_t len = read_len(tl, x, link->read_done);

    if (x->consume != NULL)
        x->consume(x, link->staging, link->read_done, len);
    link->read_done += len;
    link->reads_out--;
    if (link->read_done < x->len)
        return;
    if (link->read_mr != NULL) {
        tl->v->dereg_mr(link->read_mr);
        link->read_mr = NULL;
    }
    link->reading = 0;
    link->reads_finished++;
    tt_xfer_complete(tt_xfer_queue_pop(&link->recvs), TUTTI_OK, done);
}

/* Match arrived slots to posted receives, in order. */
static int take_arrivals(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t **done)
{
    int events = 0;

    while (link->recvs.head != NULL && !link->reading && link->taken < link->arrived &&
           link->failed == TUTTI_OK) {
        tt_xfer_t *x = link->recvs.head;
        unsigned char *slot =
            link->recv_slots + (link->taken % tl->settings.slots) * tl->settings.slot_size;
        rdma_header_t h;

        memcpy(&h, slot, sizeof(h));
        events++;
        if (x->offset == 0 && (!(h.flags & MSG_FIRST) || h.msg_len != x->len || h.tag != x->tag)) {
            char why[TT_LINK_REASON_MAX];
            snprintf(why, sizeof(why),
                     "a %llu-byte message tagged %#llx came where a %zu-byte one tagged %#llx "
                     "was expected",
                     (unsigned long long)h.msg_len, (unsigned long long)h.tag, x->len,
                     (unsigned long long)x->tag);
            fail_link(tl, link, TUTTI_ERR_PROTOCOL, done, why);
            break;
        }
        if (h.flags & MSG_RTS) {
            if (start_read(tl, link, x, &h, done))
                pump_reads(tl, link, done);
            take_slot(tl, link, done);
            continue;
        }
        if (h.len > 0 && x->consume != NULL)
            x->consume(x, slot + HEADER_BYTES, x->offset, h.len);
        else if (h.len > 0)
            memcpy((char *)x->buf + x->offset, slot + HEADER_BYTES, h.len);
        x->offset += h.len;
        if (!take_slot(tl, link, done))
            break;
        if (x->offset >= x->len)
            tt_xfer_complete(tt_xfer_queue_pop(&link->recvs), TUTTI_OK, done);
    }
    return events;
}

/* Account for one completion; returns 1. */
static int completed(rdma_transport_t *tl, const struct ibv_wc *wc, tt_xfer_t **done)
{
    rdma_link_t *link = &tl->links[wc->wr_id >> 2];
    int kind = (int)(wc->wr_id & 3);

    if (kind != WR_RECV)
        link->sq_used--;
    if (wc->status != IBV_WC_SUCCESS) {
        char why[TT_LINK_REASON_MAX];
        snprintf(why, sizeof(why), "%s (completion status %d)", tl->v->wc_status_str(wc->status),
                 (int)wc->status);
        fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, why);
        return 1;
    }
    if (link->failed != TUTTI_OK)
        return 1; /* its transfers are gone */
    if (kind == WR_RECV)
        link->arrived++;
    else if (kind == WR_READ && link->reading)
        read_finished(tl, link, done);
    return 1;
}

static int rdma_progress(tt_transport_t *super, tt_xfer_t **done)
{
    rdma_transport_t *tl = tt_container_of(super, rdma_transport_t, super);
    int events = 0;

    for (int r = 0; r < tl->nrails; r++) {
        struct ibv_wc wc[16];
        int n;
        while ((n = ibv_poll_cq(tl->rails[r].cq, 16, wc)) > 0)
            for (int i = 0; i < n; i++)
                events += completed(tl, &wc[i], done);
    }
    for (int i = 0; i < tl->npeers * tl->nrails; i++) {
        rdma_link_t *link = &tl->links[i];
        if (link->qp == NULL)
            continue;
        if (link->failed != TUTTI_OK) {
            if (link->sends.head != NULL || link->awaiting_reader.head != NULL ||
                link->recvs.head != NULL) {
                drain_link(link, done);
                events++;
            }
            continue;
        }
        events += pump_sends(tl, link, done);
        events += finish_announced(tl, link, done);
        if (link->reading)
            pump_reads(tl, link, done);
        events += take_arrivals(tl, link, done);
        tell_peer(tl, link);
    }
    return events;
}

/* ---------------------------------------------------------------- events */

/* Fail every link on rail @p r for @p why (the port or device went bad). */
static void fail_rail(rdma_transport_t *tl, int r, const char *why)
{
    for (int i = 0; i < tl->npeers; i++) {
        rdma_link_t *link = &tl->links[i * tl->nrails + r];
        if (link->qp != NULL)
            fail_link(tl, link, TUTTI_ERR_LINK_FAILED, NULL, why);
    }
}

/* Read the devices' asynchronous events and fail what they concern. */
static void read_async_events(rdma_transport_t *tl)
{
    for (int r = 0; r < tl->nrails; r++) {
        struct ibv_async_event ev;
        while (tl->v->get_async_event(tl->rails[r].port.context, &ev) == 0) {
            char why[TT_LINK_REASON_MAX];
            snprintf(why, sizeof(why), "%s", tl->v->event_type_str(ev.event_type));
            switch (ev.event_type) {
            case IBV_EVENT_PORT_ERR:
            case IBV_EVENT_DEVICE_FATAL: fail_rail(tl, r, why); break;
            case IBV_EVENT_QP_FATAL:
            case IBV_EVENT_QP_REQ_ERR:
            case IBV_EVENT_QP_ACCESS_ERR:
                for (int i = 0; i < tl->npeers * tl->nrails; i++)
                    if (tl->links[i].qp == ev.element.qp)
                        fail_link(tl, &tl->links[i], TUTTI_ERR_LINK_FAILED, NULL, why);
                break;
            default: break;
            }
            tl->v->ack_async_event(&ev);
        }
    }
}

static int rdma_check_peers(tt_transport_t *super, tt_link_event_t *events, int max)
{
    rdma_transport_t *tl = tt_container_of(super, rdma_transport_t, super);
    int n = 0;

    read_async_events(tl);
    for (int i = 0; i < tl->npeers * tl->nrails && n < max; i++) {
        rdma_link_t *link = &tl->links[i];
        if (link->failed == TUTTI_OK || link->reported)
            continue;
        link->reported = 1;
        events[n].peer = link->peer;
        events[n].status = TUTTI_ERR_LINK_FAILED;
        snprintf(events[n].reason, sizeof(events[n].reason), "%s", link->reason);
        n++;
    }
    return n;
}

static void rdma_cancel_all(tt_transport_t *super, tutti_status_t status, tt_xfer_t **done)
{
    rdma_transport_t *tl = tt_container_of(super, rdma_transport_t, super);

    for (int i = 0; i < tl->npeers * tl->nrails; i++) {
        rdma_link_t *link = &tl->links[i];
        if (link->qp == NULL)
            continue;
        if (mark_failed(tl, link, status, "the communicator gave up"))
            link->reported = 1; /* not news to anyone */
        drain_link(link, done);
    }
}

const tt_transport_ops_t tt_rdma_transport_ops = {
    .size = sizeof(tt_transport_ops_t),
    .name = "rdma",
    .config = &rdma_config_table,
    .address_size = rdma_address_size,
    .available = rdma_available,
    .create = rdma_create,
    .connect = rdma_connect,
    .ready = rdma_ready,
    .destroy = rdma_destroy,
    .send = rdma_send,
    .recv = rdma_recv,
    .progress = rdma_progress,
    .check_peers = rdma_check_peers,
    .cancel_all = rdma_cancel_all,
};
