/* Building a collective's schedule; see coll.h. Choosing the algorithm is select.c's job. */
#include "config.h"

#include "coll/coll.h"

const char *const tt_coll_kind_names[TT_COLL_KIND_COUNT] = {
    [TT_COLL_ALLREDUCE] = "allreduce", [TT_COLL_REDUCE_SCATTER] = "reduce_scatter",
    [TT_COLL_ALLGATHER] = "allgather", [TT_COLL_BROADCAST] = "broadcast",
    [TT_COLL_REDUCE] = "reduce",       [TT_COLL_BARRIER] = "barrier",
};

const char *const tt_algo_names[TT_ALGO_COUNT + 1] = {
    [TT_ALGO_AUTO] = "auto",
    [TT_ALGO_RING] = "ring",
    [TT_ALGO_TREE] = "tree",
    [TT_ALGO_HIER] = "hier",
    [TT_ALGO_RD] = "rd",
    [TT_ALGO_CHAIN] = "chain",
    [TT_ALGO_BINOMIAL] = "binomial",
    [TT_ALGO_DISSEMINATION] = "dissemination",
    [TT_ALGO_COUNT] = NULL,
};

int tt_algo_supports(tt_algo_t algo, tt_coll_kind_t kind)
{
    switch (kind) {
    case TT_COLL_ALLREDUCE:
        return algo == TT_ALGO_RING || algo == TT_ALGO_TREE || algo == TT_ALGO_HIER ||
               algo == TT_ALGO_RD;
    case TT_COLL_REDUCE_SCATTER:
    case TT_COLL_ALLGATHER: return algo == TT_ALGO_RING;
    case TT_COLL_BROADCAST:
    case TT_COLL_REDUCE: return algo == TT_ALGO_CHAIN || algo == TT_ALGO_BINOMIAL;
    case TT_COLL_BARRIER: return algo == TT_ALGO_DISSEMINATION;
    default: return 0;
    }
}

tt_span_t tt_block(uint64_t count, int n, int i)
{
    uint64_t base = count / (uint64_t)n, rem = count % (uint64_t)n, ui = (uint64_t)i;
    tt_span_t b = {ui * base + TT_MIN(ui, rem), base + (ui < rem)};
    return b;
}

uint64_t tt_chunk_elems(const tt_coll_desc_t *d)
{
    uint64_t chunk = d->elem_size > 0 ? d->chunk_bytes / d->elem_size : 1;
    return chunk > 0 ? chunk : 1;
}

void tt_ring_order(const tt_coll_desc_t *d, int channel, int *order)
{
    const tt_cluster_t *c = d->cluster;
    int pos = 0;

    if (c == NULL || c->nranks != d->nranks) {
        for (int r = 0; r < d->nranks; r++)
            order[r] = r;
        return;
    }
    for (int h = 0; h < c->nhosts; h++) {
        int size = tt_cluster_host_size(c, h), rail = channel % c->rails, last = size - 1;
        /* The host's rank on this channel's rail goes last: it sends to the next host. */
        for (int j = 0; j < size; j++)
            if (c->places[tt_cluster_rank(c, h, j)].nic == rail) {
                last = j;
                break;
            }
        for (int j = 1; j <= size; j++)
            order[pos++] = tt_cluster_rank(c, h, (last + j) % size);
    }
}

tutti_status_t tt_coll_build(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    if (!tt_algo_supports(d->algo, d->kind))
        return TUTTI_ERR_INVALID_ARG;
    switch (d->algo) {
    case TT_ALGO_RING:
        if (d->kind == TT_COLL_ALLREDUCE)
            tt_ring_allreduce(d, s);
        else if (d->kind == TT_COLL_REDUCE_SCATTER)
            tt_ring_reduce_scatter(d, s);
        else
            tt_ring_allgather(d, s);
        break;
    case TT_ALGO_TREE: tt_tree_allreduce(d, s); break;
    case TT_ALGO_HIER: tt_hier_allreduce(d, s); break;
    case TT_ALGO_RD: tt_rd_allreduce(d, s); break;
    case TT_ALGO_CHAIN:
        (d->kind == TT_COLL_BROADCAST ? tt_chain_broadcast : tt_chain_reduce)(d, s);
        break;
    case TT_ALGO_BINOMIAL:
        (d->kind == TT_COLL_BROADCAST ? tt_binomial_broadcast : tt_binomial_reduce)(d, s);
        break;
    case TT_ALGO_DISSEMINATION: tt_dissemination_barrier(d, s); break;
    default: return TUTTI_ERR_INVALID_ARG;
    }
    return tt_schedule_finalize(s);
}
