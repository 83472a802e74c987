/*
 * Hierarchical all-to-all, for hosts with the same number of ranks (L)
 * each: messages between a pair of hosts are aggregated so that each pair
 * exchanges one message each way over the network instead of L x L.
 *
 * The exchange between hosts a and b is carried by local rank
 * (a + b) mod L on both, so every local rank (and the NIC nearest to it)
 * carries its share of the host pairs:
 *   A. blocks for this host's own ranks go straight to them;
 *   B. for every other host b, a rank packs its L blocks for b's ranks and
 *      sends them to the host pair's carrier, which gathers the host's L
 *      packs (source-major);
 *   C. the carrier sends the gathered L x L blocks to its counterpart on b
 *      and receives b's;
 *   D. the carrier regroups what came by destination and sends each local
 *      rank its L blocks, which it unpacks into place.
 * Every rank lists its transfers in the order A, B, C, D, and within a
 * stage by host: a pair of ranks posts the messages between them in the
 * same order on both sides, as message matching requires.
 *
 * It moves each byte over the network once, like pairwise exchange, but in
 * H-1 messages per host instead of L(H-1) per rank, and pays with copies:
 * the cost model takes it for small and medium blocks between many ranks.
 * In place, the send buffer is first copied to scratch.
 */
#include "config.h"

#include "coll/ring.h"

#include <stdlib.h>

/* The places of one rank's plan. */
typedef struct hier_a2a {
    const tt_coll_desc_t *d;
    const tt_cluster_t *c;
    tt_schedule_t *s;
    int H, L, host, local;
    uint64_t block; /* bytes */
    tt_buf_t from;  /* where the blocks to send are: the send buffer, or its copy */
    int32_t input;  /* the copy to scratch (in place), or none */
    /* Scratch: per remote host (H-1 slots of L blocks): pack, landed; per
     * host pair this rank carries (slots of L x L blocks): gathered,
     * arrived, regrouped. */
    tt_ref_t pack, landed, gathered, arrived, regrouped;
    int *carried;   /* per remote host index: its slot among those carried here, or -1 */
    int32_t *joins; /* L steps to join, reused */
} hier_a2a_t;

/* The local rank that carries the exchange between hosts @p a and @p b. */
static int carrier(const hier_a2a_t *x, int a, int b)
{
    return (a + b) % x->L;
}

/* The @p r-th remote host seen from this one (r = 0 .. H-2). */
static int remote_host(const hier_a2a_t *x, int r)
{
    return (x->host + 1 + r) % x->H;
}

/* Block @p k of slot @p i of a scratch area whose slots hold @p per_slot blocks. */
static tt_ref_t slot(const hier_a2a_t *x, tt_ref_t area, int i, uint64_t per_slot, uint64_t k)
{
    return tt_ref_add(area, ((uint64_t)i * per_slot + k) * x->block);
}

/* This rank's block for rank @p dest. */
static tt_ref_t input_block(const hier_a2a_t *x, int dest)
{
    return tt_ref(x->from, (uint64_t)dest * x->block);
}

/* The output's block from rank @p src. */
static tt_ref_t output_block(const hier_a2a_t *x, int src)
{
    return tt_ref(TT_BUF_RECV, (uint64_t)src * x->block);
}

/* Send @p blocks blocks to local rank @p local, or copy them to @p self_dst if that is this rank.
 */
static int32_t hand_over(hier_a2a_t *x, int local, tt_ref_t src, tt_ref_t self_dst, uint64_t blocks,
                         int32_t dep)
{
    uint64_t count = blocks * x->d->count;
    if (local == x->local)
        return tt_sched_copy(x->s, self_dst, src, count, dep, TT_NO_STEP);
    return tt_sched_send(x->s, tt_cluster_rank(x->c, x->host, local), src, count, 0, dep,
                         TT_NO_STEP);
}

/* A. This host's ranks: straight from the input to their outputs. */
static void stage_local(hier_a2a_t *x)
{
    for (int k = 0; k < x->L; k++) {
        int peer = tt_cluster_rank(x->c, x->host, k);
        if (k == x->local) {
            tt_sched_copy(x->s, output_block(x, peer), input_block(x, peer), x->d->count, x->input,
                          TT_NO_STEP);
            continue;
        }
        tt_sched_send(x->s, peer, input_block(x, peer), x->d->count, 0, x->input, TT_NO_STEP);
        tt_sched_recv(x->s, peer, output_block(x, peer), x->d->count, x->input, TT_NO_STEP);
    }
}

/* B. Pack each remote host's blocks and hand them to the pair's carrier, which gathers. */
static void stage_gather(hier_a2a_t *x, int32_t *gathered)
{
    uint64_t L = (uint64_t)x->L;

    for (int r = 0; r < x->H - 1; r++) {
        int b = remote_host(x, r), j = carrier(x, x->host, b), q = x->carried[r];
        int32_t own;
        for (int k = 0; k < x->L; k++)
            x->joins[k] = tt_sched_copy(x->s, slot(x, x->pack, r, L, (uint64_t)k),
                                        input_block(x, tt_cluster_rank(x->c, b, k)), x->d->count,
                                        x->input, TT_NO_STEP);
        own = hand_over(x, j, slot(x, x->pack, r, L, 0),
                        q >= 0 ? slot(x, x->gathered, q, L * L, (uint64_t)x->local * L) : x->pack,
                        L, tt_sched_join(x->s, x->joins, L));
        if (q < 0)
            continue;
        /* Carrier: the host's L packs for host b, source-major. */
        for (int i = 0; i < x->L; i++)
            x->joins[i] = i == x->local
                              ? own
                              : tt_sched_recv(x->s, tt_cluster_rank(x->c, x->host, i),
                                              slot(x, x->gathered, q, L * L, (uint64_t)i * L),
                                              L * x->d->count, TT_NO_STEP, TT_NO_STEP);
        gathered[q] = tt_sched_join(x->s, x->joins, L);
    }
}

/* C. Carriers swap the gathered blocks with their counterparts on the other hosts. */
static void stage_network(hier_a2a_t *x, const int32_t *gathered, int32_t *arrived)
{
    uint64_t L = (uint64_t)x->L;
    int channels = TT_MAX(1, TT_MIN(x->d->channels, TT_MAX_CHANNELS));

    /* Both ends of a pair are local rank carrier(a, b): they agree on the channel. */
    tt_sched_set_channel(x->s, x->local % channels);
    for (int r = 0; r < x->H - 1; r++) {
        int q = x->carried[r], peer = tt_cluster_rank(x->c, remote_host(x, r), x->local);
        if (q < 0)
            continue;
        tt_sched_send(x->s, peer, slot(x, x->gathered, q, L * L, 0), L * L * x->d->count, 0,
                      gathered[q], TT_NO_STEP);
        arrived[q] = tt_sched_recv(x->s, peer, slot(x, x->arrived, q, L * L, 0),
                                   L * L * x->d->count, TT_NO_STEP, TT_NO_STEP);
    }
    tt_sched_set_channel(x->s, 0);
}

/* D. Carriers regroup by destination and deliver; every rank unpacks what it gets. */
static void stage_scatter(hier_a2a_t *x, const int32_t *arrived)
{
    uint64_t L = (uint64_t)x->L;

    for (int r = 0; r < x->H - 1; r++) {
        int b = remote_host(x, r), j = carrier(x, x->host, b), q = x->carried[r];
        int32_t landed = TT_NO_STEP;
        for (int k = 0; q >= 0 && k < x->L; k++) {
            int32_t delivered;
            /* Destination k's blocks from b's ranks: block (i, k) of the arrived L x L. */
            for (int i = 0; i < x->L; i++)
                x->joins[i] = tt_sched_copy(
                    x->s, slot(x, x->regrouped, q, L * L, (uint64_t)k * L + (uint64_t)i),
                    slot(x, x->arrived, q, L * L, (uint64_t)i * L + (uint64_t)k), x->d->count,
                    arrived[q], TT_NO_STEP);
            delivered = hand_over(x, k, slot(x, x->regrouped, q, L * L, (uint64_t)k * L),
                                  slot(x, x->landed, r, L, 0), L, tt_sched_join(x->s, x->joins, L));
            if (k == x->local)
                landed = delivered;
        }
        if (q < 0)
            landed =
                tt_sched_recv(x->s, tt_cluster_rank(x->c, x->host, j), slot(x, x->landed, r, L, 0),
                              L * x->d->count, TT_NO_STEP, TT_NO_STEP);
        for (int i = 0; i < x->L; i++)
            tt_sched_copy(x->s, output_block(x, tt_cluster_rank(x->c, b, i)),
                          slot(x, x->landed, r, L, (uint64_t)i), x->d->count, landed, x->input);
    }
}

void tt_hier_alltoall(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    const tt_cluster_t *c = d->cluster;
    hier_a2a_t x = {.d = d, .c = c, .s = s, .H = c->nhosts, .L = c->ranks_per_host};
    uint64_t L, m = 0;
    int32_t *gathered, *arrived;

    if (d->count == 0)
        return;
    x.host = c->places[d->rank].host;
    x.local = c->places[d->rank].local;
    x.block = d->count * d->elem_size;
    x.from = d->in_place ? TT_BUF_SCRATCH : TT_BUF_SEND;
    x.input = TT_NO_STEP;
    L = (uint64_t)x.L;
    x.carried = malloc((size_t)x.H * sizeof(int));
    x.joins = malloc((size_t)x.L * sizeof(int32_t));
    gathered = malloc((size_t)x.H * sizeof(int32_t));
    arrived = malloc((size_t)x.H * sizeof(int32_t));
    if (x.carried == NULL || x.joins == NULL || gathered == NULL || arrived == NULL) {
        s->status = TUTTI_ERR_NO_MEMORY;
        goto out;
    }
    for (int r = 0; r < x.H - 1; r++)
        x.carried[r] = carrier(&x, x.host, remote_host(&x, r)) == x.local ? (int)m++ : -1;
    if (d->in_place) { /* the input's copy comes first in the scratch: offset 0 */
        tt_ref_t copy = tt_sched_scratch(s, (uint64_t)d->nranks * x.block);
        x.input = tt_sched_copy(s, copy, tt_ref(TT_BUF_SEND, 0), (uint64_t)d->nranks * d->count,
                                TT_NO_STEP, TT_NO_STEP);
    }
    x.pack = tt_sched_scratch(s, (uint64_t)(x.H - 1) * L * x.block);
    x.landed = tt_sched_scratch(s, (uint64_t)(x.H - 1) * L * x.block);
    x.gathered = tt_sched_scratch(s, m * L * L * x.block);
    x.arrived = tt_sched_scratch(s, m * L * L * x.block);
    x.regrouped = tt_sched_scratch(s, m * L * L * x.block);
    stage_local(&x);
    stage_gather(&x, gathered);
    stage_network(&x, gathered, arrived);
    stage_scatter(&x, arrived);
out:
    free(x.carried);
    free(x.joins);
    free(gathered);
    free(arrived);
}
