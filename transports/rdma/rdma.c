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
 * User buffers stay registered between messages in a bounded cache per
 * device (regcache.h), which hears from the kernel when their memory goes
 * away, so memory the user frees or reuses is never reached through a
 * stale registration.
 *
 * Failures: a completion with an error (retry count exceeded when the peer
 * or the wire is gone, flushes after that), and the device's asynchronous
 * events (port down, device fatal, a queue pair in error) fail the link:
 * its transfers complete with TUTTI_ERR_LINK_FAILED and check_peers
 * reports rank, peer and device. How soon a silent peer counts as gone is
 * RDMA_TIMEOUT and RDMA_RETRY_COUNT: the defaults give up after about 0.3 s
 * (NCCL's take about 30 s). Only a sender sees its retries fail, so a link
 * that only waits to receive writes a probe every RDMA_PROBE_INTERVAL.
 *
 * libibverbs is loaded at run time (verbs.h), so libtutti runs where it is
 * missing; available() then says why the transport is off.
 */
#include "config.h"

#include "transports/rdma/link.h"
#include "transports/rdma/rdma.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    {"RDMA_REG_CACHE", "1G",
     "user-buffer bytes each device keeps registered (pinned) between messages, so that buffers "
     "used again are not registered again; 0 registers every large message's buffers afresh",
     TT_CFG_SIZE, offsetof(rdma_settings_t, reg_cache_bytes), NULL},
    {"RDMA_REG_CACHE_ENTRIES", "64", "buffers each device keeps registered at most", TT_CFG_SIZE,
     offsetof(rdma_settings_t, reg_cache_entries), NULL},
    {"RDMA_PROBE_INTERVAL", "100ms",
     "a link that waits for its peer with nothing of ours in flight writes a probe this often, so "
     "that a dead path fails its receives too (within about this plus the retry time)",
     TT_CFG_DURATION, offsetof(rdma_settings_t, probe_interval), NULL},
};

static const tt_config_table_t rdma_config_table = {"rdma", rdma_fields, TT_ARRAY_SIZE(rdma_fields),
                                                    sizeof(rdma_settings_t)};

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
    rail->regcache =
        tt_rdma_regcache_create(v, rail->port.pd, rail->port.name, tl->settings.reg_cache_entries,
                                tl->settings.reg_cache_bytes);
    if (rail->cq == NULL || rail->ctrl_in == NULL || rail->ctrl_out == NULL ||
        (slot_bytes > 0 && rail->slots == NULL) || rail->regcache == NULL) {
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

    tt_rdma_regcache_destroy(rail->regcache);
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
    link->read_reg = (tt_rdma_reg_t){NULL, -1};
    link->announced_regs = calloc(tl->settings.slots, sizeof(*link->announced_regs));
    link->qp = link->announced_regs != NULL ? tl->v->create_qp(rail->port.pd, &init) : NULL;
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
        if (tt_rdma_post_slot(tl, link, i) != 0) {
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
        tt_rdma_reg_release(tl->rails[link->rail].regcache,
                            &link->announced_regs[i % tl->settings.slots]);
    tt_rdma_reg_release(tl->rails[link->rail].regcache, &link->read_reg);
    if (link->staging_mr != NULL)
        tl->v->dereg_mr(link->staging_mr);
    free(link->staging);
    free(link->announced_regs);
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
    link->last_heard = tt_time_ns();
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

/* ---------------------------------------------------------------- events */

/* Fail every link on rail @p r for @p why (the port or device went bad). */
static void fail_rail(rdma_transport_t *tl, int r, const char *why)
{
    for (int i = 0; i < tl->npeers; i++) {
        rdma_link_t *link = &tl->links[i * tl->nrails + r];
        if (link->qp != NULL)
            tt_rdma_fail_link(tl, link, TUTTI_ERR_LINK_FAILED, NULL, why);
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
                        tt_rdma_fail_link(tl, &tl->links[i], TUTTI_ERR_LINK_FAILED, NULL, why);
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
        if (tt_rdma_mark_failed(tl, link, status, "the communicator gave up"))
            link->reported = 1; /* not news to anyone */
        tt_rdma_drain_link(link, done);
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
    .send = tt_rdma_send,
    .recv = tt_rdma_recv,
    .progress = tt_rdma_progress,
    .check_peers = rdma_check_peers,
    .cancel_all = rdma_cancel_all,
};
