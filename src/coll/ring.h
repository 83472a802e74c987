/*
 * Building blocks for ring algorithms over a group of ranks (the whole
 * communicator in a channel's order, or one stage of a hierarchical plan).
 */
#ifndef TT_COLL_RING_H
#define TT_COLL_RING_H

#include "coll/coll.h"

#define TT_MAX_CHANNELS 16

/*
 * A ring over some of the ranks, computed on demand (no O(n) arrays, so that
 * plans for huge communicators cost little to build):
 *   CHANNEL: every rank, in channel c's host-contiguous order (rank order
 *            without a cluster view);
 *   HOST:    the ranks of one host, in local order;
 *   RAIL:    the ranks with one local index, one per host, in host order.
 */
typedef enum tt_ring_kind {
    TT_RING_CHANNEL,
    TT_RING_HOST,
    TT_RING_RAIL,
} tt_ring_kind_t;

typedef struct tt_ring {
    tt_ring_kind_t kind;
    const tt_cluster_t *cluster; /* NULL: a CHANNEL ring in rank order */
    int n, me;                   /* size; this rank's position */
    int channel;                 /* rotation (CHANNEL) and the channel transfers use */
    int which;                   /* HOST: the host; RAIL: the local index */
} tt_ring_t;

/* The CHANNEL ring of @p channel over all of @p d's ranks, seen from d->rank. */
void tt_ring_channel(tt_ring_t *g, const tt_coll_desc_t *d, int channel);

/* The HOST ring of @p rank's host, or the RAIL ring of its local index. */
void tt_ring_host(tt_ring_t *g, const tt_cluster_t *c, int rank, int channel);
void tt_ring_rail(tt_ring_t *g, const tt_cluster_t *c, int rank, int channel);

/* The rank at position @p pos (taken modulo n). */
int tt_ring_rank_at(const tt_ring_t *g, int pos);

/* The position of @p rank (which must be in the ring). */
int tt_ring_position(const tt_ring_t *g, int rank);

/* The rank @p delta positions after this one. */
static inline int tt_ring_peer(const tt_ring_t *g, int delta)
{
    return tt_ring_rank_at(g, g->me + delta);
}

/* Per-chunk step indices carried from one ring step to the next. */
typedef struct tt_chunk_steps {
    int32_t *last;
    uint64_t n;
} tt_chunk_steps_t;

/* @p n chunks, none done yet; 0 (and s->status set) if memory ran out. */
int tt_chunk_steps_init(tt_chunk_steps_t *c, uint64_t n, tt_schedule_t *s);
void tt_chunk_steps_fini(tt_chunk_steps_t *c);

/* One step that completes when every chunk's last step has. */
int32_t tt_chunk_steps_join(const tt_chunk_steps_t *c, tt_schedule_t *s);

/*
 * Step @p k of a ring reduce-scatter of @p span (split into ring-size blocks,
 * block p owned by position p): send block me-k-1, fold block me-k-2 into
 * @p dst. Own contributions come from @p src, which the combinations read
 * only after @p src_ready (TT_NO_STEP: at once); partial sums accumulate in
 * @p dst (same offsets), and the last step's combination gets @p final.
 * @p last carries, per chunk, the step that produced what is sent next.
 */
void tt_ring_rs_step(const tt_coll_desc_t *d, tt_schedule_t *s, const tt_ring_t *g, int k,
                     tt_span_t span, tt_buf_t src, tt_buf_t dst, unsigned final, int32_t src_ready,
                     tt_chunk_steps_t *last);

/*
 * Step @p k of a ring all-gather of @p span into @p dst: send block me-k (at
 * step 0 this rank's own, from @p own), receive block me-k-1. @p ready holds,
 * per chunk, the step after which the block to send is in place.
 */
void tt_ring_ag_step(const tt_coll_desc_t *d, tt_schedule_t *s, const tt_ring_t *g, int k,
                     tt_span_t span, tt_ref_t own, tt_buf_t dst, tt_chunk_steps_t *ready);

#endif
