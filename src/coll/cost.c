/*
 * Alpha-beta-gamma formulas; see cost.h. Notation: n ranks, S bytes per
 * rank, alpha seconds per message, beta bytes/s per link, gamma bytes/s of
 * combining. A host-contiguous ring over several hosts is as fast as its
 * slowest link: a rank's memory (shared by all its channels) or one rail of
 * the NIC (each channel has its own rail while there are enough rails).
 */
#include "config.h"

#include "coll/cost.h"

#include <math.h>

static const tt_cluster_t *or_default(const tt_cluster_t *c, tt_cluster_t *single, int n)
{
    if (c != NULL)
        return c;
    *single = (tt_cluster_t){
        .nranks = n, .nhosts = 1, .ranks_per_host = n, .rails = 1, .cost = tt_cost_model_default};
    return single;
}

uint64_t tt_cost_bytes(const tt_coll_desc_t *d)
{
    uint64_t bytes = d->count * d->elem_size;
    /* Reduce-scatter and all-gather move n blocks of count elements each. */
    if (d->kind == TT_COLL_REDUCE_SCATTER || d->kind == TT_COLL_ALLGATHER)
        bytes *= (uint64_t)d->nranks;
    return bytes;
}

static double log2_ceil(int n)
{
    int bits = 0;
    while ((1 << bits) < n)
        bits++;
    return bits;
}

/* Per-step time of a ring moving @p block bytes per rank per channel over @p c. */
static double ring_step(const tt_cluster_t *c, double block, int channels)
{
    const tt_cost_model_t *m = &c->cost;
    double shm = block * channels / m->beta[TT_LINK_SHM], t = shm;

    if (c->nhosts > 1) {
        /* Channels spread over the rails; more channels than rails share them. */
        double per_rail = ceil((double)channels / c->rails);
        double net = block * per_rail / m->beta[TT_LINK_NET];
        t = TT_MAX(t, net) + m->alpha[TT_LINK_NET];
    } else {
        t += m->alpha[TT_LINK_SHM];
    }
    return t;
}

/* A ring over @p n ranks: @p phases of n-1 steps over blocks of bytes/n per channel. */
static double ring_time(const tt_cluster_t *c, int n, double bytes, int channels, int phases,
                        int reduce)
{
    double block = bytes / n / channels;
    double t = phases * (n - 1) * ring_step(c, block, channels);
    if (reduce)
        t += (n - 1) * bytes / n / c->cost.gamma;
    return t;
}

/* A pipeline @p depth links deep moving @p bytes in chunks of @p chunk. */
static double pipeline_time(double alpha, double beta, int depth, double bytes, double chunk)
{
    double nchunks = ceil(bytes / chunk);
    if (nchunks < 1)
        nchunks = 1;
    return (depth + nchunks - 1) * (alpha + TT_MIN(chunk, bytes) / beta);
}

/* The link class a flat algorithm's slowest hop uses. */
static tt_link_class_t flat_class(const tt_cluster_t *c)
{
    return c->nhosts > 1 ? TT_LINK_NET : TT_LINK_SHM;
}

static double hier_time(const tt_cluster_t *c, double bytes)
{
    int L = c->ranks_per_host, H = c->nhosts;
    const tt_cost_model_t *m = &c->cost;
    double t = 0, shard = bytes / L;

    if (L > 1) {
        tt_cluster_t host = *c;
        host.nhosts = 1;
        /* Reduce-scatter then all-gather inside the host, over shared memory. */
        t += ring_time(&host, L, bytes, 1, 1, 1) + ring_time(&host, L, bytes, 1, 1, 0);
    }
    if (H > 1) {
        /* L rings across hosts at once, one per local rank, sharing the host's rails. */
        double rails_each = (double)c->rails / L;
        double beta = m->beta[TT_LINK_NET] * TT_MIN(1.0, rails_each);
        double block = shard / H;
        t +=
            2.0 * (H - 1) * (m->alpha[TT_LINK_NET] + block / beta) + (H - 1) * shard / H / m->gamma;
    }
    return t;
}

double tt_cost_predict(const tt_coll_desc_t *d, const tt_cluster_t *cluster)
{
    tt_cluster_t single;
    const tt_cluster_t *c = or_default(cluster, &single, d->nranks);
    const tt_cost_model_t *m = &c->cost;
    int n = d->nranks, channels = TT_MAX(1, d->channels);
    tt_link_class_t cls = flat_class(c);
    double bytes = (double)tt_cost_bytes(d), alpha = m->alpha[cls], beta = m->beta[cls];
    double chunk = (double)TT_MAX(d->chunk_bytes, (size_t)1), depth = log2_ceil(n);

    if (n == 1)
        return bytes / m->beta[TT_LINK_SHM]; /* a local copy at most */
    switch (d->algo) {
    case TT_ALGO_RING:
        if (d->kind == TT_COLL_ALLREDUCE)
            return ring_time(c, n, bytes, channels, 2, 1);
        return ring_time(c, n, bytes, 1, 1, d->kind == TT_COLL_REDUCE_SCATTER);
    case TT_ALGO_TREE: {
        /* Two trees of half the data each, chunk by chunk, up and then down: per
         * pipeline stage a rank sends one chunk up and two down in the tree where it
         * is interior, and one up in the other: four chunks' worth of its link. */
        double half = bytes / 2, k = TT_MIN(chunk, half), stages = 2 * depth + ceil(half / k) - 1;
        return stages * (alpha + 4 * k / beta) + bytes / m->gamma;
    }
    case TT_ALGO_HIER: return hier_time(c, bytes);
    case TT_ALGO_RD: {
        int rounds = (int)depth + ((n & (n - 1)) != 0 ? 2 : 0);
        return rounds * (alpha + bytes / beta + bytes / m->gamma);
    }
    case TT_ALGO_CHAIN:
        return pipeline_time(alpha, beta, n - 1, bytes, chunk) +
               (d->kind == TT_COLL_REDUCE ? bytes / m->gamma : 0);
    case TT_ALGO_BINOMIAL:
        return depth * (alpha + bytes / beta + (d->kind == TT_COLL_REDUCE ? bytes / m->gamma : 0));
    case TT_ALGO_DISSEMINATION: return depth * alpha;
    default: return INFINITY;
    }
}

size_t tt_cost_chunk(const tt_coll_desc_t *d, const tt_cluster_t *cluster)
{
    tt_cluster_t single;
    const tt_cluster_t *c = or_default(cluster, &single, d->nranks);
    tt_link_class_t cls = flat_class(c);
    double bytes = (double)tt_cost_bytes(d), depth = d->nranks - 1, best;
    size_t chunk = 256 * 1024;

    if (d->algo == TT_ALGO_TREE)
        depth = 2 * log2_ceil(d->nranks);
    if (d->algo != TT_ALGO_CHAIN && d->algo != TT_ALGO_TREE)
        return chunk;
    /* The pipeline optimum: alpha * (depth + S/k) + k * depth / beta is least at k = sqrt(S alpha
     * beta / depth). */
    best = sqrt(bytes * c->cost.alpha[cls] * c->cost.beta[cls] / TT_MAX(depth, 1.0));
    for (chunk = 4096; chunk < (4u << 20) && (double)chunk * 1.5 < best; chunk *= 2)
        ;
    return chunk;
}
