/*
 * Shared-memory transport for ranks on one host.
 *
 * Every rank owns one segment holding a FIFO per local peer: the peer writes,
 * this rank reads (single producer, single consumer). Each slot carries a
 * sequence number written last, so the reader polls the slot itself, and a
 * small message travels inline in the slot header's cache line: one cache
 * line moves per small message. The reader's tail, on its own line, gives
 * the writer room; the writer rereads it only when the FIFO looks full. A
 * message goes either
 *   - eager: copied into FIFO slots by the sender, out of them by the
 *     receiver (small messages, or when single-copy is off), or
 *   - single-copy: the sender publishes only the address of its buffer; the
 *     receiver reads it straight into the destination with process_vm_readv
 *     and bumps a counter that completes the send. One copy instead of two.
 * Single-copy is used per pair only if the receiver proved at connect time
 * that the kernel lets it read the sender's memory (ptrace rules, Yama,
 * containers); otherwise that pair stays eager.
 */
#include "config.h"

#include "transports/shm/peer_watch.h"
#include "transports/shm/segment.h"
#include "transports/shm/shm.h"
#include "util/log.h"
#include "util/random.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define SHM_SEGMENT_MAGIC 0x7475747469736d31ull /* "tuttism1" */
#define SHM_SLOT_FIRST 1u                       /* first slot of a message */
#define SHM_SLOT_RNDV 2u                        /* single-copy descriptor */
#define SHM_PAGE 4096

enum { SHM_CMA_ON, SHM_CMA_OFF };

typedef struct shm_settings {
    size_t slots;
    size_t slot_size;
    int cma;
    size_t cma_threshold;
    int cma_for_reduce;
    size_t cma_piece;
} shm_settings_t;

static const char *const cma_choices[] = {"on", "off", NULL};

static const tt_config_field_t shm_fields[] = {
    {"SHM_SLOTS", "16", "slots in each shared-memory FIFO (one FIFO per pair of local ranks)",
     TT_CFG_SIZE, offsetof(shm_settings_t, slots), NULL},
    {"SHM_SLOT_SIZE", "32K", "payload bytes per FIFO slot", TT_CFG_SIZE,
     offsetof(shm_settings_t, slot_size), NULL},
    {"SHM_CMA", "off",
     "single-copy reads of large messages from the sender's buffer (process_vm_readv): on (where "
     "the kernel allows) or off (two copies through the FIFO, faster on the VMs measured)",
     TT_CFG_ENUM, offsetof(shm_settings_t, cma), cma_choices},
    {"SHM_CMA_THRESHOLD", "64K", "messages of at least this many bytes use single-copy reads",
     TT_CFG_SIZE, offsetof(shm_settings_t, cma_threshold), NULL},
    {"SHM_CMA_FOR_REDUCE", "no",
     "use single-copy reads also for data the receiver combines (else it is reduced straight "
     "out of the FIFO)",
     TT_CFG_BOOL, offsetof(shm_settings_t, cma_for_reduce), NULL},
    {"SHM_CMA_PIECE", "128K",
     "single-copy reads of data to combine go through a bounce buffer of this size", TT_CFG_SIZE,
     offsetof(shm_settings_t, cma_piece), NULL},
};

static const tt_config_table_t shm_config_table = {"shm", shm_fields, TT_ARRAY_SIZE(shm_fields),
                                                   sizeof(shm_settings_t)};

#define SHM_INLINE_MAX 24 /* payload bytes that fit in the header's cache line */

typedef struct shm_slot_header {
    _Atomic uint64_t seq; /* ordinal + 1 once published: written last */
    uint32_t flags;
    uint32_t len;     /* payload bytes in this slot */
    uint64_t msg_len; /* bytes in the whole message */
    uint64_t tag;
    uint64_t rndv_addr; /* SHM_SLOT_RNDV: the sender's buffer */
    unsigned char inline_data[SHM_INLINE_MAX];
} shm_slot_header_t;

#define SHM_SLOT_HEADER_BYTES TT_CACHE_LINE
_Static_assert(sizeof(shm_slot_header_t) == SHM_SLOT_HEADER_BYTES, "one cache line per header");

/* One direction of one pair; lives in the receiver's segment. */
typedef struct shm_fifo {
    _Alignas(TT_CACHE_LINE) _Atomic uint64_t tail;      /* receiver: slots consumed */
    _Alignas(TT_CACHE_LINE) _Atomic uint64_t rndv_done; /* receiver: single-copy reads done */
    _Alignas(TT_CACHE_LINE) int32_t cma_ok;             /* receiver can read the sender's memory */
} shm_fifo_t;

typedef struct shm_segment_header {
    uint64_t magic;
    uint64_t nfifos, slots, slot_size, fifo_bytes;
} shm_segment_header_t;

/* What a rank publishes through the bootstrap. */
typedef struct shm_address {
    char name[TT_SHM_NAME_MAX];
    int32_t pid;
    uint64_t segment_size;
    uint64_t probe_addr; /* a word peers read to test single-copy */
    uint64_t probe_value;
} shm_address_t;

/* A FIFO as one side sees it. */
typedef struct shm_channel {
    shm_fifo_t *fifo;
    unsigned char *slots;
    uint64_t nslots;
    size_t slot_size;
} shm_channel_t;

typedef struct shm_peer {
    int rank;
    pid_t pid;
    int watch;
    void *segment; /* the peer's segment, mapped */
    size_t segment_size;
    shm_channel_t out;                /* we write, the peer reads */
    shm_channel_t in;                 /* the peer writes, we read */
    uint64_t out_head, out_tail_seen; /* our next slot, and the peer's tail when we last looked */
    tt_xfer_queue_t sends, awaiting_reader, recvs;
    uint64_t rndv_posted;
    tutti_status_t failed; /* TUTTI_OK while healthy */
    int reported;
} shm_peer_t;

typedef struct shm_transport {
    tt_transport_t super;
    shm_settings_t settings;
    int rank, npeers, me; /* me: my index among the peers */
    shm_peer_t *peers;
    int *index_of_rank; /* communicator rank -> index in peers, or -1 */
    int nranks;
    char name[TT_SHM_NAME_MAX];
    void *segment;
    size_t segment_size;
    uint64_t probe;
    int unlinked;
    unsigned char *bounce; /* single-copy pieces of data to combine land here */
} shm_transport_t;

static size_t fifo_bytes(size_t slots, size_t slot_size)
{
    return TT_ALIGN_UP(sizeof(shm_fifo_t) + slots * (SHM_SLOT_HEADER_BYTES + slot_size), SHM_PAGE);
}

static shm_channel_t channel_at(void *segment, int index)
{
    shm_segment_header_t *h = segment;
    shm_channel_t ch;
    unsigned char *base = (unsigned char *)segment + SHM_PAGE + (size_t)index * h->fifo_bytes;
    ch.fifo = (shm_fifo_t *)(void *)base;
    ch.slots = base + sizeof(shm_fifo_t);
    ch.nslots = h->slots;
    ch.slot_size = h->slot_size;
    return ch;
}

static unsigned char *slot_at(const shm_channel_t *ch, uint64_t n)
{
    return ch->slots + (n % ch->nslots) * (SHM_SLOT_HEADER_BYTES + ch->slot_size);
}

/* Single-copy read of @p len bytes at @p remote in @p pid into @p local. */
static tutti_status_t cma_read(pid_t pid, void *local, uint64_t remote, size_t len)
{
    char *dst = local;
    while (len > 0) {
        struct iovec l = {dst, len}, r = {(void *)(uintptr_t)remote, len};
        ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return errno == ESRCH ? TUTTI_ERR_PEER_FAILED : TUTTI_ERR_LINK_FAILED;
        dst += n;
        remote += (uint64_t)n;
        len -= (size_t)n;
    }
    return TUTTI_OK;
}

/* ---------------------------------------------------------------- lifecycle */

static int shm_available(char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    return 1;
}

static tutti_status_t shm_create(const tt_transport_params_t *params, void *address,
                                 tt_transport_t **tl_p)
{
    shm_transport_t *tl = calloc(1, sizeof(*tl));
    shm_address_t *addr = address;
    shm_segment_header_t *header;
    tutti_status_t status = TUTTI_ERR_NO_MEMORY;

    if (tl == NULL)
        return TUTTI_ERR_NO_MEMORY;
    tl->super.ops = &tt_shm_transport_ops;
    TT_CHECK_GOTO(tt_config_load(&shm_config_table, params->overrides, &tl->settings), status,
                  err_free);
    if (tl->settings.slots < 2 || tl->settings.slot_size < 64 || tl->settings.cma_piece < 64) {
        tt_error("shm: TUTTI_SHM_SLOTS must be >= 2, TUTTI_SHM_SLOT_SIZE and "
                 "TUTTI_SHM_CMA_PIECE >= 64");
        status = TUTTI_ERR_INVALID_ARG;
        goto err_free;
    }
    /* Pieces handed to consumers must be multiples of 64 bytes (see transport.h). */
    tl->settings.slot_size = TT_ALIGN_UP(tl->settings.slot_size, TT_CACHE_LINE);
    tl->settings.cma_piece = TT_ALIGN_UP(tl->settings.cma_piece, TT_CACHE_LINE);
    tl->bounce = malloc(tl->settings.cma_piece);
    if (tl->bounce == NULL)
        goto err_free;
    tl->rank = params->rank;
    tl->nranks = params->nranks;
    tl->npeers = params->npeers;
    tl->peers = calloc((size_t)params->npeers, sizeof(*tl->peers));
    tl->index_of_rank = tt_peer_index_build(params);
    if (tl->peers == NULL || tl->index_of_rank == NULL)
        goto err_free;
    for (int i = 0; i < params->npeers; i++) {
        tl->peers[i].rank = params->peers[i];
        tl->peers[i].watch = -1;
    }
    tl->me = tl->index_of_rank[params->rank];

    tt_shm_segment_sweep();
    tl->segment_size =
        SHM_PAGE + (size_t)params->npeers * fifo_bytes(tl->settings.slots, tl->settings.slot_size);
    TT_CHECK_GOTO(tt_shm_segment_create(params->comm_ctx, params->rank, tl->segment_size, tl->name,
                                        &tl->segment),
                  status, err_free);
    header = tl->segment;
    header->magic = SHM_SEGMENT_MAGIC;
    header->nfifos = (uint64_t)params->npeers;
    header->slots = tl->settings.slots;
    header->slot_size = tl->settings.slot_size;
    header->fifo_bytes = fifo_bytes(tl->settings.slots, tl->settings.slot_size);
    TT_CHECK_GOTO(tt_random_bytes(&tl->probe, sizeof(tl->probe)), status, err_unlink);

    memset(addr, 0, sizeof(*addr));
    strcpy(addr->name, tl->name);
    addr->pid = (int32_t)getpid();
    addr->segment_size = tl->segment_size;
    addr->probe_addr = (uint64_t)(uintptr_t)&tl->probe;
    addr->probe_value = tl->probe;
    *tl_p = &tl->super;
    return TUTTI_OK;

err_unlink:
    tt_shm_segment_unlink(tl->name);
    tt_shm_segment_unmap(tl->segment, tl->segment_size);
err_free:
    free(tl->bounce);
    free(tl->peers);
    free(tl->index_of_rank);
    free(tl);
    return status;
}

/* Can we read @p peer's memory directly? Try it on the word it published. */
static int cma_works(const shm_transport_t *tl, const shm_address_t *peer)
{
    uint64_t value = 0;
    if (tl->settings.cma == SHM_CMA_OFF)
        return 0;
    return cma_read(peer->pid, &value, peer->probe_addr, sizeof(value)) == TUTTI_OK &&
           value == peer->probe_value;
}

static tutti_status_t shm_connect(tt_transport_t *super, const void *addresses)
{
    shm_transport_t *tl = tt_container_of(super, shm_transport_t, super);
    const shm_address_t *addrs = addresses;
    int cma_pairs = 0;

    for (int i = 0; i < tl->npeers; i++) {
        shm_peer_t *p = &tl->peers[i];
        if (i == tl->me)
            continue;
        p->pid = addrs[i].pid;
        p->segment_size = addrs[i].segment_size;
        TT_CHECK(tt_shm_segment_open(addrs[i].name, p->segment_size, &p->segment));
        if (((shm_segment_header_t *)p->segment)->magic != SHM_SEGMENT_MAGIC) {
            tt_error("shm: segment %s of rank %d is not a tutti segment", addrs[i].name, p->rank);
            return TUTTI_ERR_PROTOCOL;
        }
        p->out = channel_at(p->segment, tl->me);
        p->in = channel_at(tl->segment, i);
        p->in.fifo->cma_ok = cma_works(tl, &addrs[i]);
        cma_pairs += p->in.fifo->cma_ok;
        p->watch = tt_peer_watch_open(p->pid);
    }
    tt_info("shm: connected to %d local peers; single-copy reads from %d of them", tl->npeers - 1,
            cma_pairs);
    return TUTTI_OK;
}

static tutti_status_t shm_ready(tt_transport_t *super)
{
    shm_transport_t *tl = tt_container_of(super, shm_transport_t, super);
    tt_shm_segment_unlink(tl->name);
    tl->unlinked = 1;
    return TUTTI_OK;
}

static void shm_destroy(tt_transport_t *super)
{
    shm_transport_t *tl = tt_container_of(super, shm_transport_t, super);
    for (int i = 0; i < tl->npeers; i++) {
        tt_shm_segment_unmap(tl->peers[i].segment, tl->peers[i].segment_size);
        tt_peer_watch_close(tl->peers[i].watch);
    }
    if (!tl->unlinked)
        tt_shm_segment_unlink(tl->name);
    tt_shm_segment_unmap(tl->segment, tl->segment_size);
    free(tl->bounce);
    free(tl->peers);
    free(tl->index_of_rank);
    free(tl);
}

/* ---------------------------------------------------------------- data path */

static shm_peer_t *peer_of(shm_transport_t *tl, int rank)
{
    int i = tt_peer_index_of(tl->index_of_rank, tl->nranks, rank);
    return i >= 0 && i != tl->me ? &tl->peers[i] : NULL;
}

static tutti_status_t shm_send(tt_transport_t *super, tt_xfer_t *x)
{
    shm_peer_t *p = peer_of(tt_container_of(super, shm_transport_t, super), x->peer);
    if (p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    x->status = TUTTI_IN_PROGRESS;
    x->offset = 0;
    tt_xfer_queue_push(&p->sends, x);
    return TUTTI_OK;
}

static tutti_status_t shm_recv(tt_transport_t *super, tt_xfer_t *x)
{
    shm_peer_t *p = peer_of(tt_container_of(super, shm_transport_t, super), x->peer);
    if (p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    x->status = TUTTI_IN_PROGRESS;
    x->offset = 0;
    tt_xfer_queue_push(&p->recvs, x);
    return TUTTI_OK;
}

/* Where a slot's payload lives: inline in the header line when it is small. */
static inline unsigned char *slot_payload(unsigned char *slot, uint32_t len)
{
    return len <= SHM_INLINE_MAX ? ((shm_slot_header_t *)(void *)slot)->inline_data
                                 : slot + SHM_SLOT_HEADER_BYTES;
}

/* Publish one slot to @p p; returns 0 if its FIFO is full. */
static int publish_slot(shm_peer_t *p, const shm_slot_header_t *h, const void *payload)
{
    shm_channel_t *ch = &p->out;
    shm_slot_header_t *slot;

    if (p->out_head - p->out_tail_seen >= ch->nslots) {
        p->out_tail_seen = atomic_load_explicit(&ch->fifo->tail, memory_order_acquire);
        if (p->out_head - p->out_tail_seen >= ch->nslots)
            return 0;
    }
    slot = (shm_slot_header_t *)(void *)slot_at(ch, p->out_head);
    slot->flags = h->flags;
    slot->len = h->len;
    slot->msg_len = h->msg_len;
    slot->tag = h->tag;
    slot->rndv_addr = h->rndv_addr;
    if (h->len > 0)
        memcpy(slot_payload((unsigned char *)slot, h->len), payload, h->len);
    atomic_store_explicit(&slot->seq, ++p->out_head, memory_order_release);
    return 1;
}

/* Push queued sends into the peer's FIFO as far as it has room. */
static int progress_sends(shm_transport_t *tl, shm_peer_t *p, tt_xfer_t **done)
{
    int events = 0;

    while (p->sends.head != NULL) {
        tt_xfer_t *x = p->sends.head;
        shm_slot_header_t h = {.msg_len = x->len, .tag = x->tag};

        if (x->len >= tl->settings.cma_threshold && p->out.fifo->cma_ok &&
            (tl->settings.cma_for_reduce || !(x->flags & TT_XFER_TO_REDUCE))) {
            h.flags = SHM_SLOT_FIRST | SHM_SLOT_RNDV;
            h.rndv_addr = (uint64_t)(uintptr_t)x->buf;
            if (!publish_slot(p, &h, NULL))
                return events;
            x->ordinal = ++p->rndv_posted;
            tt_xfer_queue_push(&p->awaiting_reader, tt_xfer_queue_pop(&p->sends));
            events++;
            continue;
        }
        do {
            h.flags = x->offset == 0 ? SHM_SLOT_FIRST : 0;
            h.len = (uint32_t)TT_MIN(x->len - x->offset, p->out.slot_size);
            if (!publish_slot(p, &h, (const char *)x->buf + x->offset))
                return events;
            x->offset += h.len;
            events++;
        } while (x->offset < x->len);
        tt_xfer_complete(tt_xfer_queue_pop(&p->sends), TUTTI_OK, done);
    }
    return events;
}

/* Complete single-copy sends that the peer has finished reading. */
static int progress_reads_done(shm_peer_t *p, tt_xfer_t **done)
{
    int events = 0;
    uint64_t finished;

    if (p->awaiting_reader.head == NULL)
        return 0;
    finished = atomic_load_explicit(&p->out.fifo->rndv_done, memory_order_acquire);
    while (p->awaiting_reader.head != NULL && p->awaiting_reader.head->ordinal <= finished) {
        tt_xfer_complete(tt_xfer_queue_pop(&p->awaiting_reader), TUTTI_OK, done);
        events++;
    }
    return events;
}

static void fail_peer(shm_peer_t *p, tutti_status_t status, tt_xfer_t **done)
{
    tt_xfer_queue_t *queues[] = {&p->sends, &p->awaiting_reader, &p->recvs};
    if (p->failed == TUTTI_OK)
        p->failed = status;
    for (size_t q = 0; q < TT_ARRAY_SIZE(queues); q++)
        while (queues[q]->head != NULL)
            tt_xfer_complete(tt_xfer_queue_pop(queues[q]), p->failed, done);
}

/* Single-copy receive: straight into the buffer, or piece by piece to the consumer. */
static tutti_status_t read_rndv(shm_transport_t *tl, shm_peer_t *p, tt_xfer_t *x, uint64_t remote)
{
    if (x->consume == NULL)
        return cma_read(p->pid, x->buf, remote, x->len);
    for (size_t off = 0; off < x->len; off += tl->settings.cma_piece) {
        size_t len = TT_MIN(tl->settings.cma_piece, x->len - off);
        TT_CHECK(cma_read(p->pid, tl->bounce, remote + off, len));
        x->consume(x, tl->bounce, off, len);
    }
    return TUTTI_OK;
}

/* Take arrived slots into posted receives. */
static int progress_recvs(shm_transport_t *tl, shm_peer_t *p, tt_xfer_t **done)
{
    shm_channel_t *ch = &p->in;
    int events = 0;

    while (p->recvs.head != NULL) {
        uint64_t tail = atomic_load_explicit(&ch->fifo->tail, memory_order_relaxed);
        tt_xfer_t *x = p->recvs.head;
        unsigned char *slot = slot_at(ch, tail);
        shm_slot_header_t *hp = (shm_slot_header_t *)(void *)slot, h;

        if (atomic_load_explicit(&hp->seq, memory_order_acquire) != tail + 1)
            return events;
        h.flags = hp->flags;
        h.len = hp->len;
        h.msg_len = hp->msg_len;
        h.tag = hp->tag;
        h.rndv_addr = hp->rndv_addr;
        if (x->offset == 0 &&
            (!(h.flags & SHM_SLOT_FIRST) || h.msg_len != x->len || h.tag != x->tag)) {
            tt_error("shm: rank %d sent a %llu-byte message tagged %#llx where a %zu-byte "
                     "message tagged %#llx was expected",
                     p->rank, (unsigned long long)h.msg_len, (unsigned long long)h.tag, x->len,
                     (unsigned long long)x->tag);
            fail_peer(p, TUTTI_ERR_PROTOCOL, done);
            return events + 1;
        }
        if (h.flags & SHM_SLOT_RNDV) {
            tutti_status_t status = read_rndv(tl, p, x, h.rndv_addr);
            if (status != TUTTI_OK) {
                tt_error("shm: single-copy read of %zu bytes from rank %d (pid %d) failed: %s",
                         x->len, p->rank, (int)p->pid, strerror(errno));
                fail_peer(p, status, done);
                return events + 1;
            }
            x->offset = x->len;
            atomic_fetch_add_explicit(&ch->fifo->rndv_done, 1, memory_order_release);
        } else if (h.len > 0) {
            if (x->consume != NULL)
                x->consume(x, slot_payload(slot, h.len), x->offset, h.len);
            else
                memcpy((char *)x->buf + x->offset, slot_payload(slot, h.len), h.len);
            x->offset += h.len;
        }
        atomic_store_explicit(&ch->fifo->tail, tail + 1, memory_order_release);
        events++;
        if (x->offset >= x->len)
            tt_xfer_complete(tt_xfer_queue_pop(&p->recvs), TUTTI_OK, done);
    }
    return events;
}

static int shm_progress(tt_transport_t *super, tt_xfer_t **done)
{
    shm_transport_t *tl = tt_container_of(super, shm_transport_t, super);
    int events = 0;

    for (int i = 0; i < tl->npeers; i++) {
        shm_peer_t *p = &tl->peers[i];
        if (i == tl->me)
            continue;
        if (p->failed != TUTTI_OK) {
            if (p->sends.head != NULL || p->awaiting_reader.head != NULL || p->recvs.head != NULL) {
                fail_peer(p, p->failed, done);
                events++;
            }
            continue;
        }
        events += progress_sends(tl, p, done);
        events += progress_reads_done(p, done);
        events += progress_recvs(tl, p, done);
    }
    return events;
}

static int shm_check_peers(tt_transport_t *super, tt_link_event_t *events, int max)
{
    shm_transport_t *tl = tt_container_of(super, shm_transport_t, super);
    int n = 0;

    for (int i = 0; i < tl->npeers && n < max; i++) {
        shm_peer_t *p = &tl->peers[i];
        if (i == tl->me || p->reported)
            continue;
        if (p->failed == TUTTI_OK && tt_peer_watch_exited(p->watch, p->pid))
            p->failed = TUTTI_ERR_PEER_FAILED;
        if (p->failed == TUTTI_OK)
            continue;
        p->reported = 1;
        events[n].peer = p->rank;
        events[n].status = p->failed;
        snprintf(events[n].reason, sizeof(events[n].reason),
                 p->failed == TUTTI_ERR_PEER_FAILED ? "process %d on this host exited"
                                                    : "shared-memory link to process %d failed",
                 (int)p->pid);
        n++;
    }
    return n;
}

static void shm_cancel_all(tt_transport_t *super, tutti_status_t status, tt_xfer_t **done)
{
    shm_transport_t *tl = tt_container_of(super, shm_transport_t, super);
    for (int i = 0; i < tl->npeers; i++)
        if (i != tl->me)
            fail_peer(&tl->peers[i], status, done);
}

static size_t shm_address_size(const tt_transport_params_t *params)
{
    (void)params;
    return sizeof(shm_address_t);
}

const tt_transport_ops_t tt_shm_transport_ops = {
    .size = sizeof(tt_transport_ops_t),
    .name = "shm",
    .config = &shm_config_table,
    .address_size = shm_address_size,
    .available = shm_available,
    .create = shm_create,
    .connect = shm_connect,
    .ready = shm_ready,
    .destroy = shm_destroy,
    .send = shm_send,
    .recv = shm_recv,
    .progress = shm_progress,
    .check_peers = shm_check_peers,
    .cancel_all = shm_cancel_all,
};
