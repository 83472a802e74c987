/*
 * Alpha-beta-gamma formulas; see cost.h. Notation: n ranks, L per host, S
 * bytes per rank, alpha seconds per message, beta bytes/s per link (a NIC
 * between hosts), gamma bytes/s of combining. The machine they describe is
 * the one the simulator (src/plan/simulate.h) runs plans on: a message
 * occupies its link for alpha + bytes/beta, messages between hosts also
 * share the bandwidth of the NICs at both ends, and a rank combines one
 * thing at a time. Pipelined algorithms go at the pace of their busiest
 * resource; tests/unit/check_simulate.c holds each formula to the
 * simulated plans.
 */
#include "config.h"

#include "coll/cost.h"

#include "coll/ring.h"
#include "coll/tree.h"

#include <math.h>
#include <stdlib.h>

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
    /* Reduce-scatter, all-gather and all-to-all move n blocks of count elements each. */
    if (d->kind == TT_COLL_REDUCE_SCATTER || d->kind == TT_COLL_ALLGATHER ||
        d->kind == TT_COLL_ALLTOALL)
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

/* One message of @p bytes on a link of class @p cls. */
static double message(const tt_cost_model_t *m, tt_link_class_t cls, double bytes)
{
    return m->alpha[cls] + bytes / m->beta[cls];
}

/* Ranks per host for formulas: all of them on one host. */
static int per_host(const tt_cluster_t *c)
{
    return c->nhosts > 1 ? TT_MAX(c->ranks_per_host, 1) : c->nranks;
}

/*
 * A ring (or several side by side) is a pipeline: every step each rank
 * sends a block of @p block bytes per channel, in messages of at most
 * @p chunk bytes, and (reduce-scatter) combines what it receives. A step
 * takes as long as its busiest resource needs, or as one message's trip
 * over a hop plus its combination, whichever is longer:
 *   - an intra-host link carries every channel that does not leave the
 *     host there (each channel leaves through the rank on its rail);
 *   - an inter-host link carries the channels leaving through its rank;
 *   - a rank combines all its channels' blocks (@p reduce).
 */
static double ring_step(const tt_cluster_t *c, double block, double chunk, int channels, int reduce)
{
    const tt_cost_model_t *m = &c->cost;
    int L = per_host(c), exits = TT_MAX(1, TT_MIN(c->rails, L));
    double msgs = TT_MAX(1.0, ceil(block / chunk)), largest = TT_MIN(block, chunk);
    double shm = msgs * m->alpha[TT_LINK_SHM] + block / m->beta[TT_LINK_SHM];
    double net = msgs * m->alpha[TT_LINK_NET] + block / m->beta[TT_LINK_NET];
    double busiest = 0, combine = reduce ? block * channels / m->gamma : 0;
    double trip = message(m, TT_LINK_SHM, largest); /* the largest message, an average hop */

    if (L > 1) {
        int leaving = c->nhosts > 1 && c->rails >= L ? channels / L : 0;
        busiest = (channels - leaving) * shm;
    }
    if (c->nhosts > 1) {
        busiest = TT_MAX(busiest, ceil((double)channels / exits) * net);
        trip = ((L - 1) * trip + message(m, TT_LINK_NET, largest)) / L;
    }
    if (reduce)
        trip += largest / m->gamma;
    return TT_MAX(TT_MAX(busiest, combine), trip);
}

/* A ring allreduce (@p phases 2), reduce-scatter or all-gather of @p bytes over @p n ranks. */
static double ring_time(const tt_cluster_t *c, int n, double bytes, int channels, double chunk,
                        int phases, int reduce)
{
    double block = bytes / n / channels;
    double first = ring_step(c, block, chunk, channels, reduce);
    double then = ring_step(c, block, chunk, channels, 0);
    return (n - 1) * (first + (phases - 1) * then);
}

/*
 * Hierarchical allreduce: a ring reduce-scatter inside each host, then L
 * rings across hosts at once (one per local rank, each through its own NIC:
 * ranks sharing a NIC share its bandwidth), then a ring all-gather inside.
 */
static double hier_time(const tt_cluster_t *c, double bytes, double chunk)
{
    const tt_cost_model_t *m = &c->cost;
    int L = c->ranks_per_host, H = c->nhosts;
    double t = 0, shard = bytes / L;

    if (L > 1) {
        tt_cluster_t host = *c;
        host.nhosts = 1;
        host.nranks = L;
        t +=
            ring_time(&host, L, bytes, 1, chunk, 1, 1) + ring_time(&host, L, bytes, 1, chunk, 1, 0);
    }
    if (H > 1) {
        double block = shard / H, msgs = TT_MAX(1.0, ceil(block / chunk));
        double link = msgs * m->alpha[TT_LINK_NET] + block / m->beta[TT_LINK_NET];
        double nic = ceil((double)L / c->rails) * block / m->beta[TT_LINK_NET];
        double hop = TT_MAX(link, nic), combine = block / m->gamma;
        double reduce_step = TT_MAX(TT_MAX(hop, combine), (link + combine) / msgs);
        t += (H - 1) * (reduce_step + hop);
    }
    return t;
}

/*
 * The class of a hop between ring positions @p distance apart: algorithms
 * over host-contiguous positions (trees, recursive doubling, binomial,
 * dissemination) stay inside a host while the distance is below its size.
 */
static tt_link_class_t hop_class(const tt_cluster_t *c, int distance)
{
    return c->nhosts > 1 && distance >= per_host(c) ? TT_LINK_NET : TT_LINK_SHM;
}

/* Ranks sharing one NIC, when a hop leaves the host. */
static double nic_sharing(const tt_cluster_t *c)
{
    return c->nhosts > 1 ? ceil((double)per_host(c) / c->rails) : 1;
}

/* The busiest resources of a double binary tree, in chunks per pipeline stage. */
typedef struct tree_load {
    int link[TT_LINK_CLASSES]; /* most chunks one directed link of each class carries */
    int copies;                /* most chunks one rank copies to others on its host, each way */
    int nic;                   /* most chunks one NIC carries each way */
} tree_load_t;

/* The ring index of tree position @p pos (see tt_btree_position). */
static int tree_index(int n, int tree, int pos)
{
    return tree == 0 ? pos - 1 : tt_mod(pos - 2, n);
}

/*
 * Walk both trees once: every pipeline stage moves a chunk across each tree
 * edge, each way (up, then the result down), so a directed link carries one
 * chunk per tree in which its ranks are neighbours, a rank copies the
 * chunks of its edges inside the host, and a NIC carries the chunks of its
 * ranks' edges that leave the host.
 */
static tree_load_t tree_loads(const tt_coll_desc_t *d, const tt_cluster_t *c)
{
    int n = d->nranks, *per_nic = calloc((size_t)c->nhosts * (size_t)c->rails, sizeof(int));
    tree_load_t load = {{0, 0}, 0, 0};
    tt_ring_t g;

    tt_ring_channel(&g, d, 0);
    for (int i = 0; i < n; i++) {
        int rank = tt_ring_rank_at(&g, i), host = c->places[rank].host, crossing = 0, inside = 0;
        int nbr[2][3];
        for (int t = 0; t < 2; t++) {
            tt_btree_links(n, tt_btree_position(n, t, i), &nbr[t][0], &nbr[t][1], &nbr[t][2]);
            for (int k = 0; k < 3; k++)
                nbr[t][k] = nbr[t][k] > 0 ? tree_index(n, t, nbr[t][k]) : -1;
        }
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 3; k++) {
                int j = nbr[t][k], both = 0, other;
                if (j < 0)
                    continue;
                other = tt_ring_rank_at(&g, j);
                for (int m = 0; m < 3; m++)
                    both += nbr[1 - t][m] == j;
                tt_link_class_t cls = c->places[other].host == host ? TT_LINK_SHM : TT_LINK_NET;
                load.link[cls] = TT_MAX(load.link[cls], 1 + both);
                crossing += cls == TT_LINK_NET;
                inside += cls == TT_LINK_SHM;
            }
        load.copies = TT_MAX(load.copies, inside);
        if (per_nic != NULL && crossing > 0) {
            int *slot = &per_nic[host * c->rails + TT_MAX(c->places[rank].nic, 0) % c->rails];
            *slot += crossing;
            load.nic = TT_MAX(load.nic, *slot);
        }
    }
    free(per_nic);
    return load;
}

/*
 * Double binary tree: both trees pipeline chunks of k bytes up to their
 * roots and back down. Filling the pipeline takes a hop per level each way
 * (levels far enough apart cross hosts), with a rank combining its two
 * children's chunks at each level on the way up; every further chunk adds
 * one stage, as long as the busiest resource needs (tree_loads): a link, an
 * interior rank combining two chunks, or the busiest rank's ports (its
 * copies in the host, its NIC across hosts). A rank of a tree talks to up
 * to four peers each way per stage, and a message needs the ports at both
 * of its ends at once, so the ports seldom all stay busy: a stage costs
 * about the rank's transfers in and out, one after the other (as in shared
 * memory, where one core copies both ways; the simulator agrees).
 */
static double tree_time(const tt_coll_desc_t *d, const tt_cluster_t *c, double bytes, double chunk)
{
    const tt_cost_model_t *m = &c->cost;
    double half = bytes / 2, k = TT_MIN(chunk, half), chunks = TT_MAX(1.0, ceil(half / k));
    double fill = 0, stage = 2 * k / m->gamma;
    int height = (int)log2_ceil(d->nranks + 1) - 1;
    tree_load_t load = tree_loads(d, c);

    for (int level = 1; level <= height; level++)
        fill += 2 * message(m, hop_class(c, 1 << (level - 1)), k) + 2 * k / m->gamma;
    for (int cls = 0; cls < TT_LINK_CLASSES; cls++)
        stage = TT_MAX(stage, load.link[cls] * message(m, (tt_link_class_t)cls, k));
    stage = TT_MAX(stage, 2 * load.copies * k / m->beta[TT_LINK_SHM]);
    stage = TT_MAX(stage, 2 * load.nic * k / m->beta[TT_LINK_NET]);
    return fill + (chunks - 1) * stage;
}

/* Recursive doubling: a round per bit, partners ever farther apart, and two more for the rest. */
static double rd_time(const tt_cluster_t *c, int n, double bytes)
{
    const tt_cost_model_t *m = &c->cost;
    int pow2 = 1;
    double t = 0, combine = bytes / m->gamma;

    while (pow2 * 2 <= n)
        pow2 *= 2;
    for (int distance = 1; distance < pow2; distance *= 2) {
        tt_link_class_t cls = hop_class(c, distance);
        /* Across hosts, the ranks sharing a NIC share its bandwidth (not its latency). */
        t += message(m, cls, bytes * (cls == TT_LINK_NET ? nic_sharing(c) : 1)) + combine;
    }
    /* The ranks beyond the power of two fold in first (combined) and get the result last. */
    if (pow2 < n)
        t += 2 * message(m, hop_class(c, 1), bytes) + combine;
    return t;
}

/* A pipelined chain along the ring order: one hop per neighbour, then a chunk per slowest hop. */
static double chain_time(const tt_cluster_t *c, int n, double bytes, double chunk)
{
    const tt_cost_model_t *m = &c->cost;
    double k = TT_MIN(chunk, bytes), chunks = TT_MAX(1.0, ceil(bytes / chunk));
    int net_hops = c->nhosts - 1, shm_hops = n - 1 - net_hops;
    double shm = message(m, TT_LINK_SHM, k), net = message(m, TT_LINK_NET, k);
    double slowest = net_hops > 0 ? TT_MAX(net, shm_hops > 0 ? shm : 0) : shm;

    return net_hops * net + shm_hops * shm + (chunks - 1) * slowest;
}

/* A binomial tree or dissemination: a round per bit, partners ever farther apart. */
static double rounds_time(const tt_cluster_t *c, int n, double bytes, double combine)
{
    double t = 0;
    for (int distance = 1; distance < n; distance *= 2)
        t += message(&c->cost, hop_class(c, distance), bytes) + combine;
    return t;
}

/*
 * Pairwise all-to-all of @p bytes per rank (a block of bytes/n per peer):
 * the L-1 blocks for the host's other ranks go over shared memory, while the
 * host's L ranks send L(n-L) blocks out through its NICs, side by side.
 */
static double pairwise_time(const tt_cluster_t *c, int n, double bytes)
{
    const tt_cost_model_t *m = &c->cost;
    int L = per_host(c), rails = TT_MAX(1, c->rails);
    double block = bytes / n, local = (L - 1) * message(m, TT_LINK_SHM, block);
    double remote = (n - L) * m->alpha[TT_LINK_NET] +
                    (double)L * (n - L) * block / (rails * m->beta[TT_LINK_NET]);
    return TT_MAX(local, remote);
}

/*
 * Bruck all-to-all of @p bytes per rank: a rotation and a final pass that
 * copy everything, and a round per bit, each sending the slots with that
 * bit set (about half) to the rank 2^b positions on, packed and unpacked;
 * between hosts the host's ranks share its NICs.
 */
static double bruck_time(const tt_cluster_t *c, int n, double bytes)
{
    const tt_cost_model_t *m = &c->cost;
    double t = 2 * bytes / m->gamma;

    for (int step = 1; step < n; step *= 2) {
        tt_link_class_t cls = hop_class(c, step);
        double slots = 0, moved;
        for (int i = step; i < n; i += 2 * step)
            slots += TT_MIN(step, n - i);
        moved = bytes / n * slots;
        t += message(m, cls, moved * (cls == TT_LINK_NET ? nic_sharing(c) : 1)) +
             2 * moved / m->gamma;
    }
    return t;
}

/*
 * Hierarchical all-to-all of @p bytes per rank: each rank packs and hands
 * over, then receives and unpacks, a pack per remote host over shared
 * memory; a carrier regroups its host pairs; the network carries the same
 * bytes as pairwise exchange, in H-1 messages per host.
 */
static double hier_alltoall_time(const tt_cluster_t *c, int n, double bytes)
{
    const tt_cost_model_t *m = &c->cost;
    int L = per_host(c), H = c->nhosts, rails = TT_MAX(1, c->rails);
    double block = bytes / n, pack = L * block;
    double carried = ceil((double)(H - 1) / L); /* host pairs per carrier */
    double local =
        2 * (H - 1) * message(m, TT_LINK_SHM, pack) + (L - 1) * message(m, TT_LINK_SHM, block);
    double remote = carried * m->alpha[TT_LINK_NET] +
                    (double)L * (n - L) * block / (rails * m->beta[TT_LINK_NET]);
    return local + remote + 5 * bytes / m->gamma; /* pack, regroup, unpack, and the copies' reads */
}

/* Hierarchical all-to-all-v: the same, after a part that swaps count rows within the host. */
static double hier_alltoallv_time(const tt_cluster_t *c, int n, double bytes)
{
    double rows = 2.0 * n * sizeof(uint64_t);
    return (per_host(c) - 1) * message(&c->cost, TT_LINK_SHM, rows) +
           hier_alltoall_time(c, n, bytes);
}

double tt_cost_predict(const tt_coll_desc_t *d, const tt_cluster_t *cluster)
{
    tt_cluster_t single;
    const tt_cluster_t *c = or_default(cluster, &single, d->nranks);
    const tt_cost_model_t *m = &c->cost;
    int n = d->nranks, channels = TT_MAX(1, d->channels), reduce = d->kind == TT_COLL_REDUCE;
    double bytes = (double)tt_cost_bytes(d), chunk = (double)TT_MAX(d->chunk_bytes, (size_t)1);

    if (n == 1)
        return bytes / m->beta[TT_LINK_SHM]; /* a local copy at most */
    switch (d->algo) {
    case TT_ALGO_RING:
        if (d->kind == TT_COLL_ALLREDUCE)
            return ring_time(c, n, bytes, channels, chunk, 2, 1);
        return ring_time(c, n, bytes, 1, chunk, 1, d->kind == TT_COLL_REDUCE_SCATTER);
    case TT_ALGO_TREE: return tree_time(d, c, bytes, chunk);
    case TT_ALGO_HIER:
        return d->kind == TT_COLL_ALLTOALL    ? hier_alltoall_time(c, n, bytes)
               : d->kind == TT_COLL_ALLTOALLV ? hier_alltoallv_time(c, n, bytes)
                                              : hier_time(c, bytes, chunk);
    case TT_ALGO_RD: return rd_time(c, n, bytes);
    case TT_ALGO_CHAIN: return chain_time(c, n, bytes, chunk) + (reduce ? bytes / m->gamma : 0);
    case TT_ALGO_BINOMIAL: return rounds_time(c, n, bytes, reduce ? bytes / m->gamma : 0);
    case TT_ALGO_DISSEMINATION: return rounds_time(c, n, 0, 0);
    case TT_ALGO_PAIRWISE: return pairwise_time(c, n, bytes);
    case TT_ALGO_BRUCK: return bruck_time(c, n, bytes);
    default: return INFINITY;
    }
}

size_t tt_cost_chunk(const tt_coll_desc_t *d, const tt_cluster_t *cluster)
{
    tt_cluster_t single;
    const tt_cluster_t *c = or_default(cluster, &single, d->nranks);
    tt_link_class_t cls = c->nhosts > 1 ? TT_LINK_NET : TT_LINK_SHM;
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
