/*
 * UCX transport: the network path between hosts (InfiniBand, RoCE, TCP, or
 * whatever UCX finds; UCX_* variables choose as usual), and, when forced
 * with TUTTI_TRANSPORTS=ucx, inside a host too.
 *
 * One UCP worker per communicator and rail, and one endpoint per peer and
 * rail, created with peer error handling: a peer that dies or a link that
 * breaks fails the endpoint, its transfers complete with
 * TUTTI_ERR_LINK_FAILED and check_peers reports it, instead of anything
 * hanging. TUTTI_UCX_ERROR_HANDLING=none gives that up (UCX then treats
 * transport errors as fatal and may abort the process when a peer dies) and
 * lets UCX use transports that cannot report a dead peer, such as its own
 * shared memory.
 *
 * Messages are UCP tagged messages. The worker belongs to one communicator,
 * so the tag only needs to say who sent it: the top TAG_RANK_BITS bits hold
 * the sender's rank, receives match on them alone, and UCP matches the
 * messages of one sender in the order they were sent, which is the ordering
 * transport.h promises. The low bits carry the caller's check tag (the call
 * it belongs to), compared by the receiver once the message matched. Large
 * messages travel by UCP's rendezvous protocol: zero-copy, with UCP's own
 * registration cache.
 *
 * Rails: when every host has several (tt_transport_params_t), each rail
 * gets its own worker, from a UCX context limited to that rail's device
 * (UCX_NET_DEVICES), and a plan's channel c travels on rail c mod rails, so
 * a plan's channels spread over the host's NICs. Messages of one channel
 * stay on one worker, which keeps them in order. With one rail, or when the
 * user set UCX_NET_DEVICES, there is one worker on UCX's own choice.
 *
 * A receive whose data the caller combines (consume set) lands in a staging
 * buffer, handed over whole on arrival: the destination may be the other
 * operand. Staging buffers are kept for reuse (up to 64 MiB, by size
 * class), so their pages and registrations stay.
 */
#include "config.h"

#include "transports/ucx/context.h"
#include "transports/ucx/ucx.h"
#include "util/log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_RANK_BITS 24
#define TAG_CHECK_MASK ((UINT64_C(1) << (64 - TAG_RANK_BITS)) - 1)
#define UCX_ADDRESS_MAX 1024 /* bytes of a worker address we can exchange (TCP + shm: 250) */
#define STAGING_CLASSES 40   /* staging buffers come in sizes 64 B << class */
#define STAGING_KEPT_BYTES ((size_t)64 << 20) /* at most this much kept for reuse */

typedef struct ucx_address {
    uint32_t nrails;
    uint32_t len[TT_TRANSPORT_MAX_RAILS];
    unsigned char bytes[TT_TRANSPORT_MAX_RAILS][UCX_ADDRESS_MAX]; /* a worker's per rail */
} ucx_address_t;

/* One rail: a worker on the context of the rail's device. */
typedef struct ucx_rail {
    ucp_context_h context;
    ucp_worker_h worker;
} ucx_rail_t;

/*
 * One transfer handed to UCX, ours (UCP's own request is opaque): what its
 * callback needs. Kept on a free list for reuse.
 */
typedef struct ucx_op {
    struct ucx_transport *tl;
    tt_xfer_t *x;  /* NULL once the transfer was failed without it (cancel_all) */
    void *request; /* UCP's request while UCX holds the transfer */
    void *staging; /* receives with a consumer: where the data lands */
    size_t staging_len;
    size_t slot; /* index in the transport's in-flight array */
    int rail;
    int is_recv; /* receives can be canceled; sends end when their endpoint closes */
    int tracked; /* in that array (the callback may come before: see posted) */
    int ended;   /* the callback came while posting */
    tutti_status_t status;
    struct ucx_op *next_free;
} ucx_op_t;

typedef struct ucx_peer {
    int rank;
    ucp_ep_h ep[TT_TRANSPORT_MAX_RAILS];
    tutti_status_t failed; /* TUTTI_OK while the endpoint works */
    int reported;
    char reason[96];
} ucx_peer_t;

enum { UCX_ERRORS_PEER, UCX_ERRORS_NONE };

static const char *const error_choices[] = {"peer", "none", NULL};

typedef struct ucx_settings {
    int error_handling;
} ucx_settings_t;

static const tt_config_field_t ucx_fields[] = {
    {"UCX_ERROR_HANDLING", "peer",
     "peer: UCX watches every endpoint (UCP_ERR_HANDLING_MODE_PEER): a dead peer or a broken link "
     "fails the transfers on it and is reported; none: UCX does not, and may then use transports "
     "that cannot report a dead peer (its shared memory inside a host), but treats a transport "
     "error as fatal and may abort this process when a peer dies: only for jobs that are "
     "restarted as a whole anyway",
     TT_CFG_ENUM, offsetof(ucx_settings_t, error_handling), error_choices},
};

static const tt_config_table_t ucx_config_table = {"ucx", ucx_fields, TT_ARRAY_SIZE(ucx_fields),
                                                   sizeof(ucx_settings_t)};

typedef struct ucx_transport {
    tt_transport_t super;
    ucx_settings_t settings;
    ucx_rail_t rails[TT_TRANSPORT_MAX_RAILS];
    int nrails;
    size_t rail_ops[TT_TRANSPORT_MAX_RAILS]; /* operations in flight per rail */
    int rank, nranks, npeers;
    ucx_peer_t *peers;
    int *index_of_rank; /* communicator rank -> index in peers, or -1 */
    ucx_op_t **inflight;
    size_t ninflight, inflight_cap;
    ucx_op_t *free_ops;
    tt_xfer_queue_t completed;           /* completed at posting: handed over by progress */
    void *staging_free[STAGING_CLASSES]; /* kept buffers per size class, linked through
                                            their first bytes */
    size_t staging_kept;                 /* bytes kept */
} ucx_transport_t;

static int ucx_available(char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    return 1;
}

/* ---------------------------------------------------------------- set-up */

/* How many rails to spread over: the hosts' rails, unless the user chose the devices. */
static int rails_to_use(const tt_transport_params_t *params)
{
    if (params->nrails < 2)
        return 1;
    if (getenv("UCX_NET_DEVICES") != NULL) {
        tt_info("ucx: UCX_NET_DEVICES is set: one worker on those devices, not one per rail "
                "(the hosts have %d)",
                params->nrails);
        return 1;
    }
    return params->nrails;
}

/*
 * Start rail @p r's worker, on @p rail's device (its RDMA device's port 1,
 * else its interface) or, for NULL, on UCX's choice, and write its address.
 */
static tutti_status_t rail_open(ucx_transport_t *tl, int r, const tt_rail_t *rail,
                                ucx_address_t *addr)
{
    ucp_worker_params_t wparams = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                                   .thread_mode = UCS_THREAD_MODE_SERIALIZED};
    ucx_rail_t *mine = &tl->rails[r];
    char devices[80];
    ucp_address_t *address;
    size_t len;
    ucs_status_t ucs;

    if (rail != NULL && rail->device[0] != '\0')
        snprintf(devices, sizeof(devices), "%s:1", rail->device);
    else if (rail != NULL)
        snprintf(devices, sizeof(devices), "%s", rail->netdev);
    TT_CHECK(tt_ucx_context_get(rail != NULL ? devices : NULL, &mine->context));
    ucs = ucp_worker_create(mine->context, &wparams, &mine->worker);
    if (ucs != UCS_OK) {
        mine->worker = NULL;
        tt_error("ucx: cannot create a worker: %s", ucs_status_string(ucs));
        return TUTTI_ERR_NO_TRANSPORT;
    }
    ucs = ucp_worker_get_address(mine->worker, &address, &len);
    if (ucs != UCS_OK || len > UCX_ADDRESS_MAX) {
        tt_error("ucx: worker address: %s",
                 ucs != UCS_OK ? ucs_status_string(ucs) : "longer than 1024 bytes");
        if (ucs == UCS_OK)
            ucp_worker_release_address(mine->worker, address);
        return TUTTI_ERR_NO_TRANSPORT;
    }
    addr->len[r] = (uint32_t)len;
    memcpy(addr->bytes[r], address, len);
    ucp_worker_release_address(mine->worker, address);
    if (rail != NULL)
        tt_info("ucx: rail %d on %s", r, devices);
    return TUTTI_OK;
}

/* Stop the workers and drop the contexts that rail_open started. */
static void rails_close(ucx_transport_t *tl)
{
    for (int r = 0; r < tl->nrails; r++) {
        if (tl->rails[r].worker != NULL)
            ucp_worker_destroy(tl->rails[r].worker);
        if (tl->rails[r].context != NULL)
            tt_ucx_context_put(tl->rails[r].context);
    }
}

static void ucx_free(ucx_transport_t *tl)
{
    free(tl->peers);
    free(tl->index_of_rank);
    free(tl);
}

static tutti_status_t ucx_create(const tt_transport_params_t *params, void *address,
                                 tt_transport_t **tl_p)
{
    ucx_transport_t *tl;
    ucx_address_t *addr = address;
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    if (params->nranks > (1 << TAG_RANK_BITS)) {
        tt_error("ucx: at most %d ranks per communicator", 1 << TAG_RANK_BITS);
        return TUTTI_ERR_UNSUPPORTED;
    }
    tl = calloc(1, sizeof(*tl));
    if (tl == NULL)
        return TUTTI_ERR_NO_MEMORY;
    tl->super.ops = &tt_ucx_transport_ops;
    if (tt_config_load(&ucx_config_table, params->overrides, &tl->settings) != TUTTI_OK) {
        free(tl);
        return TUTTI_ERR_INVALID_ARG;
    }
    tl->rank = params->rank;
    tl->nranks = params->nranks;
    tl->npeers = params->npeers;
    tl->peers = calloc((size_t)params->npeers, sizeof(*tl->peers));
    tl->index_of_rank = tt_peer_index_build(params);
    if (tl->peers == NULL || tl->index_of_rank == NULL) {
        ucx_free(tl);
        return status;
    }
    for (int i = 0; i < params->npeers; i++)
        tl->peers[i].rank = params->peers[i];
    memset(addr, 0, sizeof(*addr));
    tl->nrails = rails_to_use(params);
    addr->nrails = (uint32_t)tl->nrails;
    for (int r = 0; r < tl->nrails; r++) {
        status = rail_open(tl, r, tl->nrails > 1 ? &params->rails[r] : NULL, addr);
        if (status != TUTTI_OK) {
            rails_close(tl);
            ucx_free(tl);
            return status;
        }
    }
    *tl_p = &tl->super;
    return TUTTI_OK;
}

/* UCX says an endpoint failed: the peer died or the link broke; we cannot tell which. */
static void endpoint_failed(void *arg, ucp_ep_h ep, ucs_status_t ucs)
{
    ucx_peer_t *p = arg;

    (void)ep;
    if (p->failed != TUTTI_OK)
        return;
    p->failed = TUTTI_ERR_LINK_FAILED;
    snprintf(p->reason, sizeof(p->reason), "UCX endpoint failed: %s", ucs_status_string(ucs));
}

/* Open the endpoint on rail @p r to peer @p p, whose address is @p addr. */
static tutti_status_t endpoint_open(ucx_transport_t *tl, ucx_peer_t *p, int r,
                                    const ucx_address_t *addr)
{
    int watch = tl->settings.error_handling == UCX_ERRORS_PEER;
    ucp_ep_params_t params = {
        .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      (watch ? UCP_EP_PARAM_FIELD_ERR_HANDLER : 0),
        .address = (const ucp_address_t *)addr->bytes[r],
        .err_mode = watch ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE,
        .err_handler = {.cb = endpoint_failed, .arg = p}};
    ucs_status_t ucs;

    if (addr->len[r] == 0 || addr->len[r] > UCX_ADDRESS_MAX) {
        tt_error("ucx: rank %d sent no usable address", p->rank);
        return TUTTI_ERR_PROTOCOL;
    }
    ucs = ucp_ep_create(tl->rails[r].worker, &params, &p->ep[r]);
    if (ucs != UCS_OK) {
        p->ep[r] = NULL;
        tt_error("ucx: cannot reach rank %d: %s", p->rank, ucs_status_string(ucs));
        return TUTTI_ERR_LINK_FAILED;
    }
    return TUTTI_OK;
}

static tutti_status_t ucx_connect(tt_transport_t *super, const void *addresses)
{
    ucx_transport_t *tl = tt_container_of(super, ucx_transport_t, super);
    const ucx_address_t *addrs = addresses;

    for (int i = 0; i < tl->npeers; i++) {
        ucx_peer_t *p = &tl->peers[i];
        if (p->rank == tl->rank)
            continue;
        if (addrs[i].nrails != (uint32_t)tl->nrails) {
            tt_error("ucx: rank %d spreads over %u rails, this rank over %d (UCX_NET_DEVICES "
                     "set on some ranks only?)",
                     p->rank, addrs[i].nrails, tl->nrails);
            return TUTTI_ERR_PROTOCOL;
        }
        for (int r = 0; r < tl->nrails; r++)
            TT_CHECK(endpoint_open(tl, p, r, &addrs[i]));
    }
    tt_info("ucx: endpoints to %d peers on %d rail%s", tl->npeers - 1, tl->nrails,
            tl->nrails == 1 ? "" : "s");
    return TUTTI_OK;
}

static tutti_status_t ucx_ready(tt_transport_t *super)
{
    (void)super;
    return TUTTI_OK;
}

/*
 * One round of progress on the rails' workers; how many events they had.
 * With @p idle_too unset, a rail with nothing in flight is skipped: what
 * arrives there waits (in the kernel, or as UCX's unexpected messages) for
 * the receive that will progress it, and small messages, which keep to
 * channel 0, do not pay for polling the other rails.
 */
static unsigned progress_rails(ucx_transport_t *tl, int idle_too)
{
    unsigned events = 0;

    for (int r = 0; r < tl->nrails; r++)
        if (idle_too || tl->nrails == 1 || tl->rail_ops[r] > 0)
            events += ucp_worker_progress(tl->rails[r].worker);
    return events;
}

/* Progress @p request (from ucp_ep_close_nbx) until it is done. */
static void wait_request(ucx_transport_t *tl, ucs_status_ptr_t request)
{
    if (!UCS_PTR_IS_PTR(request))
        return;
    while (ucp_request_check_status(request) == UCS_INPROGRESS)
        progress_rails(tl, 1);
    ucp_request_free(request);
}

static void ucx_destroy(tt_transport_t *super)
{
    ucx_transport_t *tl = tt_container_of(super, ucx_transport_t, super);
    /* Every rank passed a barrier after its last transfer, or the communicator is being
     * abandoned: nothing left to flush, so close without waiting for peers. */
    ucp_request_param_t close = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                                 .flags = UCP_EP_CLOSE_FLAG_FORCE};

    /* Closing fails the requests on the endpoints; what is left are posted receives. */
    for (int i = 0; i < tl->npeers; i++)
        for (int r = 0; r < tl->nrails; r++)
            if (tl->peers[i].ep[r] != NULL)
                wait_request(tl, ucp_ep_close_nbx(tl->peers[i].ep[r], &close));
    for (size_t i = tl->ninflight; i-- > 0;) /* downwards: a cancel may end a request */
        if (i < tl->ninflight && tl->inflight[i]->is_recv)
            ucp_request_cancel(tl->rails[tl->inflight[i]->rail].worker, tl->inflight[i]->request);
    for (int spins = 0; tl->ninflight > 0 && spins < 1000; spins++)
        progress_rails(tl, 1);
    for (size_t i = 0; i < tl->ninflight; i++) { /* no callback comes for these any more */
        ucp_request_free(tl->inflight[i]->request);
        free(tl->inflight[i]->staging);
        free(tl->inflight[i]);
    }
    rails_close(tl);
    for (int k = 0; k < STAGING_CLASSES; k++)
        while (tl->staging_free[k] != NULL) {
            void *buf = tl->staging_free[k];
            tl->staging_free[k] = *(void **)buf;
            free(buf);
        }
    while (tl->free_ops != NULL) {
        ucx_op_t *op = tl->free_ops;
        tl->free_ops = op->next_free;
        free(op);
    }
    free(tl->inflight);
    ucx_free(tl);
}

/* ---------------------------------------------------------------- staging buffers */

/* The size class of a staging buffer for @p len bytes: capacity 64 B << class. */
static int staging_class(size_t len)
{
    int k = 0;

    while (k < STAGING_CLASSES - 1 && ((size_t)TT_CACHE_LINE << k) < len)
        k++;
    return k;
}

/*
 * A buffer for a message of @p len bytes: a kept one of its size class, so
 * that receives of one size (a plan's chunks) reuse the same few buffers
 * and their pages (and UCX's registrations) instead of faulting new ones.
 */
static void *staging_take(ucx_transport_t *tl, size_t len)
{
    int k = staging_class(len);
    void *buf = tl->staging_free[k];

    if (buf == NULL)
        return aligned_alloc(TT_CACHE_LINE, (size_t)TT_CACHE_LINE << k);
    tl->staging_free[k] = *(void **)buf;
    tl->staging_kept -= (size_t)TT_CACHE_LINE << k;
    return buf;
}

/* Keep @p buf, taken for @p len bytes, for reuse, unless the kept ones reach the limit. */
static void staging_give(ucx_transport_t *tl, void *buf, size_t len)
{
    int k = staging_class(len);
    size_t cap = (size_t)TT_CACHE_LINE << k;

    if (tl->staging_kept + cap > STAGING_KEPT_BYTES) {
        free(buf);
        return;
    }
    *(void **)buf = tl->staging_free[k];
    tl->staging_free[k] = buf;
    tl->staging_kept += cap;
}

/* ---------------------------------------------------------------- data path */

static ucx_peer_t *peer_of(ucx_transport_t *tl, int rank)
{
    int i = tt_peer_index_of(tl->index_of_rank, tl->nranks, rank);
    return i >= 0 && rank != tl->rank ? &tl->peers[i] : NULL;
}

static ucx_op_t *op_take(ucx_transport_t *tl, tt_xfer_t *x)
{
    ucx_op_t *op = tl->free_ops;

    if (op != NULL)
        tl->free_ops = op->next_free;
    else if ((op = malloc(sizeof(*op))) == NULL)
        return NULL;
    /* A channel keeps to one rail, so its messages keep their order. */
    *op = (ucx_op_t){.tl = tl, .x = x, .rail = TT_MAX(x->channel, 0) % tl->nrails};
    return op;
}

/* UCX is done with @p op's buffers: keep its staging buffer and the record for reuse. */
static void op_give(ucx_transport_t *tl, ucx_op_t *op)
{
    if (op->staging != NULL)
        staging_give(tl, op->staging, op->staging_len);
    op->next_free = tl->free_ops;
    tl->free_ops = op;
}

static tutti_status_t track(ucx_transport_t *tl, ucx_op_t *op)
{
    if (tl->ninflight == tl->inflight_cap) {
        size_t cap = tl->inflight_cap ? 2 * tl->inflight_cap : 64;
        ucx_op_t **grown = realloc(tl->inflight, cap * sizeof(*grown));
        if (grown == NULL)
            return TUTTI_ERR_NO_MEMORY;
        tl->inflight = grown;
        tl->inflight_cap = cap;
    }
    op->slot = tl->ninflight;
    op->tracked = 1;
    tl->inflight[tl->ninflight++] = op;
    tl->rail_ops[op->rail]++;
    return TUTTI_OK;
}

static void untrack(ucx_transport_t *tl, ucx_op_t *op)
{
    ucx_op_t *last = tl->inflight[--tl->ninflight];
    tl->inflight[op->slot] = last;
    last->slot = op->slot;
    op->tracked = 0;
    tl->rail_ops[op->rail]--;
}

/* Failures of a UCX operation, as the caller sees them. */
static tutti_status_t status_of(ucs_status_t ucs)
{
    switch (ucs) {
    case UCS_OK: return TUTTI_OK;
    case UCS_ERR_MESSAGE_TRUNCATED: return TUTTI_ERR_PROTOCOL;
    case UCS_ERR_NO_MEMORY: return TUTTI_ERR_NO_MEMORY;
    default: return TUTTI_ERR_LINK_FAILED;
    }
}

/* A receive finished: check what arrived against what was expected, hand staged data over. */
static tutti_status_t finish_recv(tt_xfer_t *x, ucs_status_t ucs, const ucp_tag_recv_info_t *info,
                                  const void *staging)
{
    if (ucs != UCS_OK)
        return status_of(ucs);
    if (info->length != x->len ||
        (info->sender_tag & TAG_CHECK_MASK) != (x->tag & TAG_CHECK_MASK)) {
        tt_error("ucx: rank %d sent %zu bytes for call %#llx; expected %zu bytes for call %#llx",
                 x->peer, info->length, (unsigned long long)(info->sender_tag & TAG_CHECK_MASK),
                 x->len, (unsigned long long)(x->tag & TAG_CHECK_MASK));
        return TUTTI_ERR_PROTOCOL;
    }
    if (staging != NULL && x->len > 0)
        x->consume(x, staging, 0, x->len);
    return TUTTI_OK;
}

/* Complete @p x from progress, which hands completions over. */
static void complete_soon(ucx_transport_t *tl, tt_xfer_t *x, tutti_status_t status)
{
    x->status = status;
    tt_xfer_queue_push(&tl->completed, x);
}

/*
 * UCX ended @p op's request with @p status. Called from progress, or from
 * inside the posting call itself, before posted() has seen the request.
 */
static void op_ended(ucx_op_t *op, void *request, tutti_status_t status)
{
    ucx_transport_t *tl = op->tl;

    ucp_request_free(request);
    if (!op->tracked) {
        op->ended = 1;
        op->status = status;
        return;
    }
    untrack(tl, op);
    if (op->x != NULL)
        complete_soon(tl, op->x, status);
    op_give(tl, op);
}

static void send_done(void *request, ucs_status_t ucs, void *user_data)
{
    op_ended(user_data, request, status_of(ucs));
}

static void recv_done(void *request, ucs_status_t ucs, const ucp_tag_recv_info_t *info,
                      void *user_data)
{
    ucx_op_t *op = user_data;
    op_ended(op, request, op->x != NULL ? finish_recv(op->x, ucs, info, op->staging) : TUTTI_OK);
}

/*
 * @p op was handed to UCX, which returned @p request: track it, or complete
 * the transfer now if UCX ended it already or refused it.
 */
static void posted(ucx_transport_t *tl, ucx_op_t *op, ucs_status_ptr_t request)
{
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    if (UCS_PTR_IS_PTR(request) && !op->ended) {
        op->request = request;
        if (track(tl, op) == TUTTI_OK)
            return;
        if (op->is_recv) /* its callback finds op untracked; a send just runs its course */
            ucp_request_cancel(tl->rails[op->rail].worker, request);
        while (!op->ended)
            ucp_worker_progress(tl->rails[op->rail].worker);
    } else if (UCS_PTR_IS_ERR(request)) {
        status = status_of(UCS_PTR_STATUS(request));
    } else if (op->ended) {
        status = op->status;
    }
    complete_soon(tl, op->x, status);
    op_give(tl, op);
}

/* Common to send and receive: the peer, or the reason not to post to it. */
static tutti_status_t start(ucx_transport_t *tl, tt_xfer_t *x, ucx_op_t **op_p)
{
    ucx_peer_t *p = peer_of(tl, x->peer);

    if (p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    x->status = TUTTI_IN_PROGRESS;
    *op_p = NULL;
    if (p->failed != TUTTI_OK) {
        complete_soon(tl, x, p->failed);
        return TUTTI_OK;
    }
    *op_p = op_take(tl, x);
    return *op_p != NULL ? TUTTI_OK : TUTTI_ERR_NO_MEMORY;
}

/*
 * Every operation asks for a callback, never for immediate completion: UCX
 * 1.13 leaves the receive information unset when a receive completes at
 * once, and one path for both is simpler anyway.
 */
#define OP_ATTRS \
    (UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FLAG_NO_IMM_CMPL)

static tutti_status_t ucx_send(tt_transport_t *super, tt_xfer_t *x)
{
    ucx_transport_t *tl = tt_container_of(super, ucx_transport_t, super);
    uint64_t tag = (uint64_t)tl->rank << (64 - TAG_RANK_BITS) | (x->tag & TAG_CHECK_MASK);
    ucx_op_t *op;

    TT_CHECK(start(tl, x, &op));
    if (op != NULL) {
        ucp_request_param_t param = {
            .op_attr_mask = OP_ATTRS, .cb.send = send_done, .user_data = op};
        ucp_ep_h ep = peer_of(tl, x->peer)->ep[op->rail];
        posted(tl, op, ucp_tag_send_nbx(ep, x->buf, x->len, tag, &param));
    }
    return TUTTI_OK;
}

static tutti_status_t ucx_recv(tt_transport_t *super, tt_xfer_t *x)
{
    ucx_transport_t *tl = tt_container_of(super, ucx_transport_t, super);
    uint64_t tag = (uint64_t)x->peer << (64 - TAG_RANK_BITS);
    ucx_op_t *op;

    TT_CHECK(start(tl, x, &op));
    if (op != NULL) {
        ucp_request_param_t param = {
            .op_attr_mask = OP_ATTRS, .cb.recv = recv_done, .user_data = op};
        void *dst = x->buf;
        op->is_recv = 1;
        if (x->consume != NULL) {
            op->staging = staging_take(tl, x->len);
            if (op->staging == NULL) {
                op_give(tl, op);
                return TUTTI_ERR_NO_MEMORY;
            }
            op->staging_len = x->len;
            dst = op->staging;
        }
        posted(tl, op,
               ucp_tag_recv_nbx(tl->rails[op->rail].worker, dst, x->len, tag, ~TAG_CHECK_MASK,
                                &param));
    }
    return TUTTI_OK;
}

static int ucx_progress(tt_transport_t *super, tt_xfer_t **done)
{
    ucx_transport_t *tl = tt_container_of(super, ucx_transport_t, super);
    int events = 0, idle = 1;

    /* With nothing in flight, poll every rail: peers may need our part of a protocol. */
    for (int r = 0; r < tl->nrails; r++)
        idle &= tl->rail_ops[r] == 0;
    while (progress_rails(tl, idle) != 0)
        events++;
    while (tl->completed.head != NULL) {
        tt_xfer_t *x = tt_xfer_queue_pop(&tl->completed);
        tt_xfer_complete(x, x->status, done);
        events++;
    }
    return events;
}

static int ucx_check_peers(tt_transport_t *super, tt_link_event_t *events, int max)
{
    ucx_transport_t *tl = tt_container_of(super, ucx_transport_t, super);
    int n = 0;

    progress_rails(tl, 1); /* error callbacks run from progress */
    for (int i = 0; i < tl->npeers && n < max; i++) {
        ucx_peer_t *p = &tl->peers[i];
        if (p->failed == TUTTI_OK || p->reported)
            continue;
        p->reported = 1;
        events[n].peer = p->rank;
        events[n].status = p->failed;
        snprintf(events[n].reason, sizeof(events[n].reason), "%s", p->reason);
        n++;
    }
    return n;
}

static void ucx_cancel_all(tt_transport_t *super, tutti_status_t status, tt_xfer_t **done)
{
    ucx_transport_t *tl = tt_container_of(super, ucx_transport_t, super);

    /*
     * The transfers fail now; their requests stay with UCX, which may still
     * touch their buffers (a rendezvous under way) until they end or the
     * endpoints close at destroy. Canceled receives end at the next progress.
     */
    for (size_t i = tl->ninflight; i-- > 0;) { /* downwards: a cancel may end a request */
        ucx_op_t *op;
        if (i >= tl->ninflight)
            continue;
        op = tl->inflight[i];
        if (op->x == NULL)
            continue;
        tt_xfer_complete(op->x, status, done);
        op->x = NULL;
        if (op->is_recv)
            ucp_request_cancel(tl->rails[op->rail].worker, op->request);
    }
    while (tl->completed.head != NULL)
        tt_xfer_complete(tt_xfer_queue_pop(&tl->completed), status, done);
}

static size_t ucx_address_size(const tt_transport_params_t *params)
{
    (void)params;
    return sizeof(ucx_address_t);
}

const tt_transport_ops_t tt_ucx_transport_ops = {
    .size = sizeof(tt_transport_ops_t),
    .name = "ucx",
    .config = &ucx_config_table,
    .address_size = ucx_address_size,
    .available = ucx_available,
    .create = ucx_create,
    .connect = ucx_connect,
    .ready = ucx_ready,
    .destroy = ucx_destroy,
    .send = ucx_send,
    .recv = ucx_recv,
    .progress = ucx_progress,
    .check_peers = ucx_check_peers,
    .cancel_all = ucx_cancel_all,
};
