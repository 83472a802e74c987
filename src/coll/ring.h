/*
 * Building blocks for ring algorithms over a group of ranks (the whole
 * communicator in a channel's order, or one stage of a hierarchical plan).
 */
#ifndef TT_COLL_RING_H
#define TT_COLL_RING_H

#include "coll/coll.h"

#define TT_MAX_CHANNELS 16

/* Ranks in ring order; this rank at position me. */
typedef struct tt_ring {
    const int *ranks;
    int n, me;
    int channel;
} tt_ring_t;

/* A ring over @p n ranks in @p order, of which @p rank is one. */
static inline void tt_ring_init(tt_ring_t *g, const int *order, int n, int rank, int channel)
{
    g->ranks = order;
    g->n = n;
    g->me = 0;
    g->channel = channel;
    for (int p = 0; p < n; p++)
        if (order[p] == rank)
            g->me = p;
}

/* The rank at position @p pos (taken modulo n). */
static inline int tt_ring_rank_at(const tt_ring_t *g, int pos)
{
    return g->ranks[tt_mod(pos, g->n)];
}

/* The rank @p delta positions after this one. */
static inline int tt_ring_peer(const tt_ring_t *g, int delta)
{
    return tt_ring_rank_at(g, g->me + delta);
}

/* The position of @p rank (it must be in the ring). */
static inline int tt_ring_position(const tt_ring_t *g, int rank)
{
    for (int p = 0; p < g->n; p++)
        if (g->ranks[p] == rank)
            return p;
    return -1;
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
