/* Building a collective's schedule; see coll.h. Choosing the algorithm is select.c's job. */
#include "config.h"

#include "coll/ring.h"

const char *const tt_coll_kind_names[TT_COLL_KIND_COUNT] = {
    [TT_COLL_ALLREDUCE] = "allreduce",
    [TT_COLL_REDUCE_SCATTER] = "reduce_scatter",
    [TT_COLL_ALLGATHER] = "allgather",
    [TT_COLL_BROADCAST] = "broadcast",
    [TT_COLL_REDUCE] = "reduce",
    [TT_COLL_BARRIER] = "barrier",
    [TT_COLL_ALLTOALL] = "alltoall",
    [TT_COLL_ALLTOALLV] = "alltoallv",
    [TT_COLL_P2P] = "p2p",
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
    [TT_ALGO_PAIRWISE] = "pairwise",
    [TT_ALGO_DIRECT] = "direct",
    [TT_ALGO_BRUCK] = "bruck",
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
    case TT_COLL_ALLTOALL:
        return algo == TT_ALGO_PAIRWISE || algo == TT_ALGO_BRUCK || algo == TT_ALGO_HIER;
    case TT_COLL_ALLTOALLV: return algo == TT_ALGO_PAIRWISE || algo == TT_ALGO_HIER;
    case TT_COLL_P2P: return algo == TT_ALGO_DIRECT;
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

/* The local index of the rank that ends channel @p channel's visit to host @p h. */
static int channel_exit(const tt_cluster_t *c, int h, int channel)
{
    int size = tt_cluster_host_size(c, h), rail = channel % c->rails;
    /* The host's rank on this channel's rail goes last: it sends to the next host. */
    for (int j = 0; j < size; j++)
        if (c->places[tt_cluster_rank(c, h, j)].nic == rail)
            return j;
    return size - 1;
}

/* The host whose ranks hold positions around @p pos of a CHANNEL ring. */
static int host_of_position(const tt_cluster_t *c, int pos)
{
    int lo = 0, hi = c->nhosts - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (c->host_start[mid] <= pos)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* A cluster view @p d can use: one that covers exactly its ranks. */
static const tt_cluster_t *cluster_of(const tt_coll_desc_t *d)
{
    return d->cluster != NULL && d->cluster->nranks == d->nranks ? d->cluster : NULL;
}

void tt_ring_channel(tt_ring_t *g, const tt_coll_desc_t *d, int channel)
{
    *g = (tt_ring_t){TT_RING_CHANNEL, cluster_of(d), d->nranks, 0, channel, 0};
    g->me = tt_ring_position(g, d->rank);
}

void tt_ring_host(tt_ring_t *g, const tt_cluster_t *c, int rank, int channel)
{
    int host = c->places[rank].host;
    *g = (tt_ring_t){TT_RING_HOST,          c,       tt_cluster_host_size(c, host),
                     c->places[rank].local, channel, host};
}

void tt_ring_rail(tt_ring_t *g, const tt_cluster_t *c, int rank, int channel)
{
    *g = (tt_ring_t){TT_RING_RAIL,         c,       c->nhosts,
                     c->places[rank].host, channel, c->places[rank].local};
}

int tt_ring_rank_at(const tt_ring_t *g, int pos)
{
    const tt_cluster_t *c = g->cluster;
    int h, size;

    pos = tt_mod(pos, g->n);
    switch (g->kind) {
    case TT_RING_HOST: return tt_cluster_rank(c, g->which, pos);
    case TT_RING_RAIL: return tt_cluster_rank(c, pos, g->which);
    default:
        if (c == NULL)
            return pos;
        h = host_of_position(c, pos);
        size = tt_cluster_host_size(c, h);
        return tt_cluster_rank(
            c, h, (channel_exit(c, h, g->channel) + 1 + pos - c->host_start[h]) % size);
    }
}

int tt_ring_position(const tt_ring_t *g, int rank)
{
    const tt_cluster_t *c = g->cluster;
    int h, size;

    switch (g->kind) {
    case TT_RING_HOST: return c->places[rank].local;
    case TT_RING_RAIL: return c->places[rank].host;
    default:
        if (c == NULL)
            return rank;
        h = c->places[rank].host;
        size = tt_cluster_host_size(c, h);
        return c->host_start[h] +
               tt_mod(c->places[rank].local - channel_exit(c, h, g->channel) - 1, size);
    }
}

void tt_ring_order(const tt_coll_desc_t *d, int channel, int *order)
{
    tt_ring_t g;
    tt_ring_channel(&g, d, channel);
    for (int pos = 0; pos < d->nranks; pos++)
        order[pos] = tt_ring_rank_at(&g, pos);
}

/* A run of rounds that take the same number of steps each. */
typedef struct stage {
    int rounds;
    uint64_t round_steps;
} stage_t;

/*
 * The stages of @p d's plan, with the most steps a round takes on any rank
 * (bounds from the largest blocks, so that every rank cuts alike).
 */
static int plan_stages(const tt_coll_desc_t *d, stage_t st[3])
{
    int n = d->nranks;
    uint64_t chunk = tt_chunk_elems(d);
    tt_span_t all = {0, d->count};

    if (d->algo == TT_ALGO_RING && d->kind == TT_COLL_ALLREDUCE) {
        int channels = TT_MAX(1, TT_MIN(d->channels, TT_MAX_CHANNELS));
        tt_span_t block = tt_sub_block(tt_block(d->count, channels, 0), n, 0);
        st[0] =
            (stage_t){TT_MAX(1, 2 * (n - 1)), 2 * (uint64_t)channels * tt_nchunks(block, chunk)};
        return 1;
    }
    if (d->algo == TT_ALGO_RING) {
        st[0] = (stage_t){TT_MAX(1, n - 1), 2 * tt_nchunks(all, chunk)};
        return 1;
    }
    if (d->algo == TT_ALGO_HIER && d->kind == TT_COLL_ALLREDUCE) {
        const tt_cluster_t *c = d->cluster;
        int L = c->ranks_per_host, H = c->nhosts;
        tt_span_t shard = tt_block(d->count, L, 0);
        st[0] = (stage_t){L - 1, 2 * tt_nchunks(shard, chunk)};
        st[1] = (stage_t){TT_MAX(2 * (H - 1), L == 1 && H == 1),
                          2 * tt_nchunks(tt_sub_block(shard, H, 0), chunk)};
        st[2] = st[0];
        return 3;
    }
    if (d->algo == TT_ALGO_PAIRWISE) {
        st[0] = (stage_t){n, 2}; /* round 0 copies this rank's own block */
        return 1;
    }

    st[0] = (stage_t){1, 1};
    return 1;
}

/*
 * Cut @p d's rounds into parts, packing rounds while their steps fit in
 * d->part_steps (a part takes at least one round). Returns the number of
 * parts; @p w_p (optional) receives the rounds of part @p want.
 */
static int cut_parts(const tt_coll_desc_t *d, int want, tt_rounds_t *w_p)
{
    stage_t st[3];
    int nstages = plan_stages(d, st), part = 0, first = 0, round = 0;
    uint64_t used = 0, budget = d->part_steps > 0 ? d->part_steps : UINT64_MAX;

    if (d->algo == TT_ALGO_HIER && d->kind == TT_COLL_ALLTOALLV) {
        /* Round 0 swaps counts and round 1 is built from them: a part each. */
        if (w_p != NULL && want >= 0 && want < 2)
            *w_p = (tt_rounds_t){want, want + 1};
        return 2;
    }
    for (int i = 0; i < nstages; i++)
        for (int left = st[i].rounds; left > 0;) {
            uint64_t fit = used < budget ? (budget - used) / TT_MAX(st[i].round_steps, 1) : 0;
            if (fit == 0 && round > first) {
                /* This part is full: close it. */
                if (part++ == want && w_p != NULL)
                    *w_p = (tt_rounds_t){first, round};
                first = round;
                used = 0;
                continue;
            }
            fit = TT_MIN(TT_MAX(fit, 1), (uint64_t)left);
            round += (int)fit;
            left -= (int)fit;
            used += fit * st[i].round_steps;
        }
    if (part == want && w_p != NULL)
        *w_p = (tt_rounds_t){first, round};
    return part + 1;
}

int tt_coll_parts(const tt_coll_desc_t *d)
{
    return cut_parts(d, -1, NULL);
}

static tutti_status_t build_rounds(const tt_coll_desc_t *d, tt_rounds_t w, tt_schedule_t *s)
{
    if (!tt_algo_supports(d->algo, d->kind))
        return TUTTI_ERR_INVALID_ARG;
    switch (d->algo) {
    case TT_ALGO_RING:
        if (d->kind == TT_COLL_ALLREDUCE)
            tt_ring_allreduce(d, w, s);
        else if (d->kind == TT_COLL_REDUCE_SCATTER)
            tt_ring_reduce_scatter(d, w, s);
        else
            tt_ring_allgather(d, w, s);
        break;
    case TT_ALGO_TREE: tt_tree_allreduce(d, s); break;
    case TT_ALGO_HIER:
        if (d->kind == TT_COLL_ALLTOALL || d->kind == TT_COLL_ALLTOALLV)
            tt_hier_alltoall(d, w, s);
        else
            tt_hier_allreduce(d, w, s);
        break;
    case TT_ALGO_RD: tt_rd_allreduce(d, s); break;
    case TT_ALGO_CHAIN:
        (d->kind == TT_COLL_BROADCAST ? tt_chain_broadcast : tt_chain_reduce)(d, s);
        break;
    case TT_ALGO_BINOMIAL:
        (d->kind == TT_COLL_BROADCAST ? tt_binomial_broadcast : tt_binomial_reduce)(d, s);
        break;
    case TT_ALGO_DISSEMINATION: tt_dissemination_barrier(d, s); break;
    case TT_ALGO_PAIRWISE: tt_pairwise_alltoall(d, w, s); break;
    case TT_ALGO_DIRECT: tt_direct_p2p(d, s); break;
    case TT_ALGO_BRUCK: tt_bruck_alltoall(d, s); break;
    default: return TUTTI_ERR_INVALID_ARG;
    }
    return tt_schedule_finalize(s);
}

tutti_status_t tt_coll_build_part(const tt_coll_desc_t *d, int part, tt_schedule_t *s)
{
    tt_rounds_t w = {0, 0};

    if (part < 0 || part >= cut_parts(d, part, &w))
        return TUTTI_ERR_INVALID_ARG;
    return build_rounds(d, w, s);
}

tutti_status_t tt_coll_build(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    tt_rounds_t all = {0, INT32_MAX};
    return build_rounds(d, all, s);
}
