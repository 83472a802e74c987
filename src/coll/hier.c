/*
 * Hierarchical allreduce, for hosts with the same number of ranks (L) each:
 *   1. reduce-scatter inside each host (shared memory): local rank l ends
 *      with shard l of the vector, summed over its host;
 *   2. allreduce of shard l across hosts, over a ring of the H ranks with
 *      local index l, one per host: every local rank drives its own NIC, so
 *      all rails carry 1/L of the data at once;
 *   3. all-gather inside each host.
 * Each stage starts on a shard once the previous one has finished it. The
 * network sees each byte once per direction per host instead of once per
 * rank, which is what makes it win on many hosts with many ranks.
 */
#include "config.h"

#include "coll/ring.h"

#include <stdlib.h>

/* Every step that writes part of a region, to wait for all of them at once. */
typedef struct step_list {
    int32_t *steps;
    size_t n, cap;
} step_list_t;

static void remember(step_list_t *l, tt_schedule_t *s, int32_t step)
{
    if (step == TT_NO_STEP)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int32_t *grown = realloc(l->steps, cap * sizeof(*grown));
        if (grown == NULL) {
            s->status = TUTTI_ERR_NO_MEMORY;
            return;
        }
        l->steps = grown;
        l->cap = cap;
    }
    l->steps[l->n++] = step;
}

/* Remember every chunk's last step of @p c. */
static void remember_chunks(step_list_t *l, tt_schedule_t *s, const tt_chunk_steps_t *c)
{
    for (uint64_t i = 0; i < c->n; i++)
        remember(l, s, c->last[i]);
}

/* Make every chunk of @p c wait for @p step. */
static void wait_all(tt_chunk_steps_t *c, int32_t step)
{
    for (uint64_t i = 0; i < c->n; i++)
        c->last[i] = step;
}

/* The rounds of [first, first + n) that @p w holds: [*lo_p, *hi_p), maybe empty. */
static int stage_rounds(tt_rounds_t w, int first, int n, int *lo_p, int *hi_p)
{
    *lo_p = TT_MAX(w.first, first) - first;
    *hi_p = TT_MIN(w.end, first + n) - first;
    return *lo_p < *hi_p;
}

void tt_hier_allreduce(const tt_coll_desc_t *d, tt_rounds_t w, tt_schedule_t *s)
{
    const tt_cluster_t *cl = d->cluster;
    int L = cl->ranks_per_host, H = cl->nhosts;
    int local = cl->places[d->rank].local;
    uint64_t chunk = tt_chunk_elems(d);
    tt_span_t all = {0, d->count}, shard = tt_sub_block(all, L, local);
    tt_buf_t shard_src = L > 1 ? TT_BUF_RECV : TT_BUF_SEND;
    tt_chunk_steps_t p1 = {0}, p2 = {0}, p3 = {0};
    step_list_t writes = {0};
    int32_t ready = TT_NO_STEP;
    tt_ring_t in_host, across;
    int lo, hi;

    tt_ring_host(&in_host, cl, d->rank, 0);
    tt_ring_rail(&across, cl, d->rank, local % TT_MAX(1, d->channels));

    /* Rounds: L-1 in the host, H-1 + H-1 across hosts, L-1 in the host. A stage
     * finished in an earlier part needs no waiting for (ready stays TT_NO_STEP). */
    if (stage_rounds(w, 0, L - 1, &lo, &hi) &&
        tt_chunk_steps_init(&p1, tt_nchunks(tt_sub_block(all, L, 0), chunk), s)) {
        /* With one host the shard is final here (avg divides now). */
        for (int k = lo; k < hi; k++)
            tt_ring_rs_step(d, s, &in_host, k, all, TT_BUF_SEND, TT_BUF_RECV,
                            H == 1 ? TT_STEP_FINAL : 0, TT_NO_STEP, &p1);
        ready = tt_chunk_steps_join(&p1, s);
    }
    if (stage_rounds(w, L - 1, 2 * (H - 1), &lo, &hi) &&
        tt_chunk_steps_init(&p2, tt_nchunks(tt_sub_block(shard, H, 0), chunk), s)) {
        wait_all(&p2, ready);
        for (int k = lo; k < hi; k++) {
            tt_span_t own = tt_sub_block(shard, H, across.me);
            /* The host's partial sums (stage 1) must be complete before they are read. */
            if (k < H - 1)
                tt_ring_rs_step(d, s, &across, k, shard, shard_src, TT_BUF_RECV, TT_STEP_FINAL,
                                ready, &p2);
            else
                tt_ring_ag_step(d, s, &across, k - (H - 1), shard,
                                tt_elem_ref(TT_BUF_RECV, own.offset, d->elem_size), TT_BUF_RECV,
                                &p2);
            /* From the last reduce-scatter round on, each round finishes a block. */
            if (k >= H - 2)
                remember_chunks(&writes, s, &p2);
        }
        ready = tt_sched_join(s, writes.steps, writes.n);
    } else if (L == 1 && H == 1 && w.first == 0 && !d->in_place && d->count > 0) {
        /* One rank on one host: nothing to exchange. */
        ready = tt_sched_copy(s, tt_elem_ref(TT_BUF_RECV, 0, d->elem_size),
                              tt_elem_ref(TT_BUF_SEND, 0, d->elem_size), d->count, TT_NO_STEP,
                              TT_NO_STEP);
    }
    if (stage_rounds(w, L - 1 + 2 * (H - 1), L - 1, &lo, &hi) &&
        tt_chunk_steps_init(&p3, tt_nchunks(tt_sub_block(all, L, 0), chunk), s)) {
        wait_all(&p3, ready);
        for (int k = lo; k < hi; k++)
            tt_ring_ag_step(d, s, &in_host, k, all,
                            tt_elem_ref(TT_BUF_RECV, shard.offset, d->elem_size), TT_BUF_RECV, &p3);
    }
    tt_sched_set_channel(s, 0);
    tt_chunk_steps_fini(&p1);
    tt_chunk_steps_fini(&p2);
    tt_chunk_steps_fini(&p3);
    free(writes.steps);
}
