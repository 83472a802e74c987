/* The RDMA transport's data path: slots, credits, reads; see rdma.c. */
#include "config.h"

#include "transports/rdma/link.h"
#include "util/log.h"
#include "util/time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Post receive slot @p index of @p link. */
int tt_rdma_post_slot(rdma_transport_t *tl, rdma_link_t *link, size_t index)
{
    struct ibv_sge sge = {(uintptr_t)(link->recv_slots + index * tl->settings.slot_size),
                          (uint32_t)tl->settings.slot_size, tl->rails[link->rail].slots_mr->lkey};
    struct ibv_recv_wr wr = {.wr_id = WR_ID(link - tl->links, WR_RECV),
                             .sg_list = &sge,
                             .num_sge = 1},
                       *bad;
    return ibv_post_recv(link->qp, &wr, &bad);
}

/* ---------------------------------------------------------------- failure */

/* Fail every transfer of @p link with its status. */
void tt_rdma_drain_link(rdma_link_t *link, tt_xfer_t **done)
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
int tt_rdma_mark_failed(rdma_transport_t *tl, rdma_link_t *link, tutti_status_t status,
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
void tt_rdma_fail_link(rdma_transport_t *tl, rdma_link_t *link, tutti_status_t status,
                       tt_xfer_t **done, const char *why)
{
    if (tt_rdma_mark_failed(tl, link, status, why))
        tt_error("%s", link->reason);
    if (done != NULL)
        tt_rdma_drain_link(link, done);
}

/* ---------------------------------------------------------------- data path */

/* The link that carries @p x: to its peer, on the rail of its channel. */
static rdma_link_t *link_of(rdma_transport_t *tl, const tt_xfer_t *x)
{
    int i = tt_peer_index_of(tl->index_of_rank, tl->nranks, x->peer);

    if (i < 0 || x->peer == tl->rank)
        return NULL;
    return &tl->links[i * tl->nrails + TT_MAX(x->channel, 0) % tl->nrails];
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

tutti_status_t tt_rdma_send(tt_transport_t *super, tt_xfer_t *x)
{
    return post(tt_container_of(super, rdma_transport_t, super), x, 0);
}

tutti_status_t tt_rdma_recv(tt_transport_t *super, tt_xfer_t *x)
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

/*
 * Post one signalled work request of @p kind (WR_SEND, WR_READ, WR_CTRL) on
 * @p link's send queue: @p len bytes at @p local (key @p lkey), and for RDMA
 * operations at @p remote (key @p rkey) on the peer. ibv_post_send's result.
 */
static int post_wr(rdma_transport_t *tl, rdma_link_t *link, int kind, enum ibv_wr_opcode opcode,
                   const void *local, size_t len, uint32_t lkey, uint64_t remote, uint32_t rkey)
{
    struct ibv_sge sge = {(uintptr_t)local, (uint32_t)len, lkey};
    struct ibv_send_wr wr = {.wr_id = WR_ID(link - tl->links, kind),
                             .sg_list = &sge,
                             .num_sge = 1,
                             .opcode = opcode,
                             .send_flags = IBV_SEND_SIGNALED,
                             .wr.rdma = {remote, rkey}},
                       *bad;
    int rc = ibv_post_send(link->qp, &wr, &bad);

    if (rc == 0)
        link->sq_used++;
    return rc;
}

/* Send the next slot, whose header and payload are filled in, of @p len bytes in all. */
static int post_slot_send(rdma_transport_t *tl, rdma_link_t *link, unsigned char *slot, size_t len)
{
    int rc = post_wr(tl, link, WR_SEND, IBV_WR_SEND, slot, len,
                     tl->rails[link->rail].slots_mr->lkey, 0, 0);

    if (rc == 0)
        link->sent++;
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
    tt_rdma_regcache_t *regcache = tl->rails[link->rail].regcache;
    tt_rdma_reg_t reg;
    int rc;

    if (!has_credit(tl, link) || link->announced - link->announced_done >= tl->settings.slots)
        return 0;
    rc = tt_rdma_reg_acquire(regcache, x->buf, x->len, IBV_ACCESS_REMOTE_READ, &reg);
    if (rc != 0) {
        tt_error("rdma: cannot register a %zu-byte send buffer on %s: %s (locked-memory limit? "
                 "see ulimit -l)",
                 x->len, tl->rails[link->rail].port.name, strerror(rc));
        tt_xfer_complete(tt_xfer_queue_pop(&link->sends), TUTTI_ERR_NO_MEMORY, done);
        return 1;
    }
    h.addr = (uintptr_t)x->buf;
    h.rkey = reg.mr->rkey;
    memcpy(slot, &h, sizeof(h));
    if (post_slot_send(tl, link, slot, HEADER_BYTES) != 0) {
        tt_rdma_reg_release(regcache, &reg);
        tt_rdma_fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post a send");
        return 1;
    }
    link->announced_regs[link->announced++ % tl->settings.slots] = reg;
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
                tt_rdma_fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post a send");
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
        tt_rdma_reg_release(tl->rails[link->rail].regcache,
                            &link->announced_regs[link->announced_done++ % tl->settings.slots]);
        tt_xfer_complete(tt_xfer_queue_pop(&link->awaiting_reader), TUTTI_OK, done);
        events++;
    }
    return events;
}

/* Write our word @p field of @p link's control words into the peer's copy; 1 if posted. */
static int write_ctrl(rdma_transport_t *tl, rdma_link_t *link, size_t field)
{
    if (link->sq_used >= tl->sq_depth)
        return 0;
    return post_wr(tl, link, WR_CTRL, IBV_WR_RDMA_WRITE, (const char *)link->ctrl_out + field,
                   sizeof(uint64_t), tl->rails[link->rail].ctrl_out_mr->lkey,
                   link->remote_ctrl + field, link->remote_rkey) == 0;
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
    if (tt_rdma_post_slot(tl, link, link->taken % tl->settings.slots) != 0) {
        tt_rdma_fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post a receive");
        return 0;
    }
    link->taken++;
    return 1;
}

/* Start reading the message announced by @p h into the head receive @p x. */
static int start_read(rdma_transport_t *tl, rdma_link_t *link, tt_xfer_t *x, const rdma_header_t *h,
                      tt_xfer_t **done)
{
    rdma_rail_t *rail = &tl->rails[link->rail];
    int rc = 0;

    if (x->consume != NULL && link->staging == NULL) {
        link->staging = aligned_alloc(4096, tl->read_piece);
        link->staging_mr = link->staging != NULL
                               ? tl->v->reg_mr(rail->port.pd, link->staging, tl->read_piece,
                                               IBV_ACCESS_LOCAL_WRITE)
                               : NULL;
        rc = link->staging_mr == NULL ? errno : 0;
    } else if (x->consume == NULL) {
        rc = tt_rdma_reg_acquire(rail->regcache, x->buf, x->len, IBV_ACCESS_LOCAL_WRITE,
                                 &link->read_reg);
    }
    if (rc != 0) {
        tt_error("rdma: cannot register a %zu-byte receive buffer on %s: %s", x->len,
                 rail->port.name, strerror(rc));
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
        struct ibv_mr *mr = x->consume != NULL ? link->staging_mr : link->read_reg.mr;
        unsigned char *to =
            x->consume != NULL ? link->staging : (unsigned char *)x->buf + link->read_posted;

        if (post_wr(tl, link, WR_READ, IBV_WR_RDMA_READ, to, len, mr->lkey,
                    link->read_addr + link->read_posted, link->read_rkey) != 0) {
            tt_rdma_fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, "cannot post an RDMA read");
            return;
        }
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
    tt_rdma_reg_release(tl->rails[link->rail].regcache, &link->read_reg);
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
            tt_rdma_fail_link(tl, link, TUTTI_ERR_PROTOCOL, done, why);
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

/* Account for one completion, which came at @p now; returns 1. */
static int completed(rdma_transport_t *tl, const struct ibv_wc *wc, int64_t now, tt_xfer_t **done)
{
    rdma_link_t *link = &tl->links[wc->wr_id >> 2];
    int kind = (int)(wc->wr_id & 3);

    link->last_heard = now;
    if (kind != WR_RECV)
        link->sq_used--;
    if (wc->status != IBV_WC_SUCCESS) {
        char why[TT_LINK_REASON_MAX];
        snprintf(why, sizeof(why), "%s (completion status %d)", tl->v->wc_status_str(wc->status),
                 (int)wc->status);
        tt_rdma_fail_link(tl, link, TUTTI_ERR_LINK_FAILED, done, why);
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

/*
 * A receive waits and nothing of ours to this peer is in flight, so a dead
 * path would never show (only senders see retries fail): now and then write
 * the peer a control word it already has. On a dead path that write fails
 * the link within the retry time.
 */
static void probe_if_quiet(rdma_transport_t *tl, rdma_link_t *link, int64_t now)
{
    if (link->recvs.head == NULL || link->sq_used > 0 ||
        now - link->last_heard < tl->settings.probe_interval)
        return;
    link->last_heard = now;
    write_ctrl(tl, link, offsetof(rdma_ctrl_t, consumed));
}

int tt_rdma_progress(tt_transport_t *super, tt_xfer_t **done)
{
    rdma_transport_t *tl = tt_container_of(super, rdma_transport_t, super);
    int64_t now = tt_time_ns();
    int events = 0;

    for (int r = 0; r < tl->nrails; r++) {
        struct ibv_wc wc[16];
        int n;
        while ((n = ibv_poll_cq(tl->rails[r].cq, 16, wc)) > 0)
            for (int i = 0; i < n; i++)
                events += completed(tl, &wc[i], now, done);
    }
    for (int i = 0; i < tl->npeers * tl->nrails; i++) {
        rdma_link_t *link = &tl->links[i];
        if (link->qp == NULL)
            continue;
        if (link->failed != TUTTI_OK) {
            if (link->sends.head != NULL || link->awaiting_reader.head != NULL ||
                link->recvs.head != NULL) {
                tt_rdma_drain_link(link, done);
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
        probe_if_quiet(tl, link, now);
    }
    return events;
}
