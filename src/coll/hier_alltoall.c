/*
 * Hierarchical all-to-all and all-to-all-v, for hosts with the same number
 * of ranks (L) each: messages between a pair of hosts are aggregated so
 * that each pair exchanges one message each way over the network instead
 * of L x L.
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
 * All-to-all-v's blocks differ in size, and a rank knows only its own
 * counts, while a carrier must size the packs its host's ranks hand it and
 * what comes from the other host. So its plan comes in two parts: part 0
 * swaps the counts of the host's ranks through the plan's own memory
 * (TT_BUF_PLAN: L rows of 2n counts, row i local rank i's sends to each
 * rank, then its receives from each), and part 1, built from those rows
 * (d->host_counts), moves the data. Both ends of a host pair size its
 * message from their own host's rows (the sender from its ranks' send
 * counts, the receiver from its ranks' receive counts), so counts that
 * disagree show as a length mismatch when they change the pair's total.
 * Aggregating pays for fewer messages with copies through the carriers, a
 * good trade for small blocks only, and all-to-all-v cannot be chosen by
 * size (its size differs from rank to rank). So it decides per host pair:
 * a pair whose blocks average more than d->aggregate_bytes (in the larger
 * direction: both hosts see the same two totals) exchanges its blocks
 * rank to rank instead, as pairwise exchange would.
 *
 * It moves each byte over the network once, like pairwise exchange, but in
 * H-1 messages per host instead of L(H-1) per rank, and pays with copies.
 * In place, the send buffer is first copied to scratch.
 */
#include "config.h"

#include "coll/ring.h"

#include <stdlib.h>

/* The places of one rank's plan. Sizes and offsets are in elements. */
typedef struct hier_a2a {
    const tt_coll_desc_t *d;
    const tt_cluster_t *c;
    tt_schedule_t *s;
    int n, H, L, host, local;
    size_t es;
    tt_buf_t from; /* where the blocks to send are: the send buffer, or its copy */
    int32_t input; /* the copy to scratch (in place), or none */
    /* Scratch: per remote host r, a slot in pack and in landed; per host
     * pair this rank carries (slot q), a slot in gathered, arrived and
     * regrouped (arrived and regrouped slots have the same sizes). */
    tt_ref_t pack, landed, gathered, arrived, regrouped;
    uint64_t *pack_at, *landed_at, *gathered_at, *arrived_at; /* slot starts */
    uint64_t *pair_out, *pair_in; /* per remote host index: the pair's elements each way */
    uint64_t *block_at; /* L x L: where block (source i, destination k) starts in an arrived slot */
    int *carried;       /* per remote host index: its slot among those carried here, or -1 */
    int *direct;        /* per remote host index: 1 if the pair exchanges rank to rank */
    int32_t *joins;     /* L steps to join, reused */
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

/* Rank @p local of host @p h. */
static int rank_of(const hier_a2a_t *x, int h, int local)
{
    return tt_cluster_rank(x->c, h, local);
}

/* Elements local rank @p i of this host sends to rank @p dest. */
static uint64_t sends(const hier_a2a_t *x, int i, int dest)
{
    const uint64_t *rows = x->d->host_counts;
    return rows != NULL ? rows[(size_t)i * 2 * (size_t)x->n + (size_t)dest] : x->d->count;
}

/* Elements local rank @p k of this host receives from rank @p src. */
static uint64_t receives(const hier_a2a_t *x, int k, int src)
{
    const uint64_t *rows = x->d->host_counts;
    return rows != NULL ? rows[((size_t)k * 2 + 1) * (size_t)x->n + (size_t)src] : x->d->count;
}

/* Local rank @p i's pack for host @p b: its blocks for b's ranks. */
static uint64_t pack_size(const hier_a2a_t *x, int i, int b)
{
    uint64_t sum = 0;
    for (int k = 0; k < x->L; k++)
        sum += sends(x, i, rank_of(x, b, k));
    return sum;
}

/* What local rank @p k receives from host @p b's ranks. */
static uint64_t delivery_size(const hier_a2a_t *x, int k, int b)
{
    uint64_t sum = 0;
    for (int i = 0; i < x->L; i++)
        sum += receives(x, k, rank_of(x, b, i));
    return sum;
}

/* Where element @p at of scratch area @p area is. */
static tt_ref_t at(const hier_a2a_t *x, tt_ref_t area, uint64_t elem)
{
    return tt_ref_add(area, elem * x->es);
}

/* Copy @p count elements, unless there are none (then no step: TT_NO_STEP). */
static int32_t copy(hier_a2a_t *x, tt_ref_t dst, tt_ref_t src, uint64_t count, int32_t dep0,
                    int32_t dep1)
{
    return count > 0 ? tt_sched_copy(x->s, dst, src, count, dep0, dep1) : TT_NO_STEP;
}

/* Send @p count elements to local rank @p local, or copy them to @p self_dst if that is this rank.
 */
static int32_t hand_over(hier_a2a_t *x, int local, tt_ref_t src, tt_ref_t self_dst, uint64_t count,
                         int32_t dep)
{
    if (local == x->local)
        return copy(x, self_dst, src, count, dep, TT_NO_STEP);
    return tt_sched_send(x->s, rank_of(x, x->host, local), src, count, 0, dep, TT_NO_STEP);
}

/* All-to-all-v, part 0: swap count rows with the host's other ranks. */
static void swap_counts(hier_a2a_t *x)
{
    uint64_t row = 2 * (uint64_t)x->n * sizeof(uint64_t), elems = row / x->es;

    for (int k = 0; k < x->L; k++) {
        int peer = rank_of(x, x->host, k);
        if (k == x->local)
            continue;
        tt_sched_send(x->s, peer, tt_ref(TT_BUF_PLAN, (uint64_t)x->local * row), elems, 0,
                      TT_NO_STEP, TT_NO_STEP);
        tt_sched_recv(x->s, peer, tt_ref(TT_BUF_PLAN, (uint64_t)k * row), elems, TT_NO_STEP,
                      TT_NO_STEP);
    }
}

/* A. This host's ranks: straight from the input to their outputs. */
static void stage_local(hier_a2a_t *x)
{
    for (int k = 0; k < x->L; k++) {
        int peer = rank_of(x, x->host, k);
        tt_span_t out = tt_a2a_send_block(x->d, peer), in = tt_a2a_recv_block(x->d, peer);
        tt_ref_t src = tt_elem_ref(x->from, out.offset, x->es);
        tt_ref_t dst = tt_elem_ref(TT_BUF_RECV, in.offset, x->es);
        if (k == x->local) {
            copy(x, dst, src, out.count, x->input, TT_NO_STEP);
            continue;
        }
        tt_sched_send(x->s, peer, src, out.count, 0, x->input, TT_NO_STEP);
        tt_sched_recv(x->s, peer, dst, in.count, x->input, TT_NO_STEP);
    }
}

/* Host pairs that exchange rank to rank: in round k, to the rank k on and from the rank k back. */
static void stage_direct(hier_a2a_t *x)
{
    int channels = TT_MAX(1, TT_MIN(x->d->channels, TT_MAX_CHANNELS));

    for (int r = 0; r < x->H - 1; r++) {
        int b = remote_host(x, r);
        for (int k = 0; x->direct[r] && k < x->L; k++) {
            int to = rank_of(x, b, (x->local + k) % x->L);
            int from = rank_of(x, b, (x->local - k + x->L) % x->L);
            tt_span_t out = tt_a2a_send_block(x->d, to), in = tt_a2a_recv_block(x->d, from);
            /* Both ends of a message are in the same round: they agree on the channel. */
            tt_sched_set_channel(x->s, k % channels);
            tt_sched_send(x->s, to, tt_elem_ref(x->from, out.offset, x->es), out.count, 0,
                          x->input, TT_NO_STEP);
            tt_sched_recv(x->s, from, tt_elem_ref(TT_BUF_RECV, in.offset, x->es), in.count,
                          x->input, TT_NO_STEP);
        }
    }
    tt_sched_set_channel(x->s, 0);
}

/* B. Pack each remote host's blocks and hand them to the pair's carrier, which gathers. */
static void stage_gather(hier_a2a_t *x, int32_t *gathered)
{
    for (int r = 0; r < x->H - 1; r++) {
        int b = remote_host(x, r), j = carrier(x, x->host, b), q = x->carried[r];
        uint64_t packed = 0, mine = q >= 0 ? x->gathered_at[q] : 0;
        tt_ref_t pack = at(x, x->pack, x->pack_at[r]);
        int32_t own;

        if (x->direct[r])
            continue;
        for (int k = 0; k < x->L; k++) {
            tt_span_t out = tt_a2a_send_block(x->d, rank_of(x, b, k));
            x->joins[k] = copy(x, at(x, pack, packed), tt_elem_ref(x->from, out.offset, x->es),
                               out.count, x->input, TT_NO_STEP);
            packed += out.count;
        }
        for (int i = 0; q >= 0 && i < x->local; i++)
            mine += pack_size(x, i, b);
        own = hand_over(x, j, pack, at(x, x->gathered, mine), packed,
                        tt_sched_join(x->s, x->joins, (size_t)x->L));
        if (q < 0)
            continue;
        /* Carrier: the host's L packs for host b, source-major. */
        uint64_t to = x->gathered_at[q];
        for (int i = 0; i < x->L; i++) {
            uint64_t size = pack_size(x, i, b);
            x->joins[i] = i == x->local ? own
                                        : tt_sched_recv(x->s, rank_of(x, x->host, i),
                                                        at(x, x->gathered, to), size, TT_NO_STEP,
                                                        TT_NO_STEP);
            to += size;
        }
        gathered[q] = tt_sched_join(x->s, x->joins, (size_t)x->L);
    }
}

/* C. Carriers swap the gathered blocks with their counterparts on the other hosts. */
static void stage_network(hier_a2a_t *x, const int32_t *gathered, int32_t *arrived)
{
    int channels = TT_MAX(1, TT_MIN(x->d->channels, TT_MAX_CHANNELS));

    /* Both ends of a pair are local rank carrier(a, b): they agree on the channel. */
    tt_sched_set_channel(x->s, x->local % channels);
    for (int r = 0; r < x->H - 1; r++) {
        int b = remote_host(x, r), q = x->carried[r], peer = rank_of(x, b, x->local);
        if (q < 0)
            continue;
        tt_sched_send(x->s, peer, at(x, x->gathered, x->gathered_at[q]), x->pair_out[r], 0,
                      gathered[q], TT_NO_STEP);
        arrived[q] = tt_sched_recv(x->s, peer, at(x, x->arrived, x->arrived_at[q]),
                                   x->pair_in[r], TT_NO_STEP, TT_NO_STEP);
    }
    tt_sched_set_channel(x->s, 0);
}

/* Where each block of host @p b's gathered message starts (source-major: source i, then k). */
static void locate_blocks(hier_a2a_t *x, int b, uint64_t start)
{
    for (int i = 0; i < x->L; i++)
        for (int k = 0; k < x->L; k++) {
            x->block_at[i * x->L + k] = start;
            start += receives(x, k, rank_of(x, b, i));
        }
}

/* D, carrier of the pair with host @p b: regroup by destination and deliver. */
static int32_t regroup_and_deliver(hier_a2a_t *x, int r, int b, int32_t arrived)
{
    int q = x->carried[r];
    uint64_t to = x->arrived_at[q];
    int32_t landed = TT_NO_STEP;

    locate_blocks(x, b, x->arrived_at[q]);
    for (int k = 0; k < x->L; k++) {
        uint64_t start = to;
        int32_t delivered;
        for (int i = 0; i < x->L; i++) {
            uint64_t size = receives(x, k, rank_of(x, b, i));
            x->joins[i] = copy(x, at(x, x->regrouped, to),
                               at(x, x->arrived, x->block_at[i * x->L + k]), size, arrived,
                               TT_NO_STEP);
            to += size;
        }
        delivered = hand_over(x, k, at(x, x->regrouped, start), at(x, x->landed, x->landed_at[r]),
                              to - start, tt_sched_join(x->s, x->joins, (size_t)x->L));
        if (k == x->local)
            landed = delivered;
    }
    return landed;
}

/* D. Carriers regroup by destination and deliver; every rank unpacks what it gets. */
static void stage_scatter(hier_a2a_t *x, const int32_t *arrived)
{
    for (int r = 0; r < x->H - 1; r++) {
        int b = remote_host(x, r), j = carrier(x, x->host, b), q = x->carried[r];
        uint64_t from = x->landed_at[r];
        int32_t landed;

        if (x->direct[r])
            continue;
        landed = q >= 0 ? regroup_and_deliver(x, r, b, arrived[q])
                        : tt_sched_recv(x->s, rank_of(x, x->host, j), at(x, x->landed, from),
                                        delivery_size(x, x->local, b), TT_NO_STEP, TT_NO_STEP);
        for (int i = 0; i < x->L; i++) {
            tt_span_t in = tt_a2a_recv_block(x->d, rank_of(x, b, i));
            copy(x, tt_elem_ref(TT_BUF_RECV, in.offset, x->es), at(x, x->landed, from), in.count,
                 landed, x->input);
            from += in.count;
        }
    }
}

/* Lay out the scratch areas' slots. */
static void reserve_scratch(hier_a2a_t *x)
{
    uint64_t pack = 0, landed = 0, gathered = 0, arrived = 0;

    for (int r = 0, q = 0; r < x->H - 1; r++) {
        int b = remote_host(x, r);
        x->pack_at[r] = pack;
        x->landed_at[r] = landed;
        if (x->direct[r])
            continue;
        pack += pack_size(x, x->local, b);
        landed += delivery_size(x, x->local, b);
        if (x->carried[r] < 0)
            continue;
        x->gathered_at[q] = gathered;
        x->arrived_at[q++] = arrived;
        gathered += x->pair_out[r];
        arrived += x->pair_in[r];
    }
    x->pack = tt_sched_scratch(x->s, pack * x->es);
    x->landed = tt_sched_scratch(x->s, landed * x->es);
    x->gathered = tt_sched_scratch(x->s, gathered * x->es);
    x->arrived = tt_sched_scratch(x->s, arrived * x->es);
    x->regrouped = tt_sched_scratch(x->s, arrived * x->es);
}

/* The elements the pair with the @p r-th remote host moves each way. */
static void size_pair(hier_a2a_t *x, int r)
{
    int b = remote_host(x, r);

    x->pair_out[r] = x->pair_in[r] = 0;
    for (int i = 0; i < x->L; i++) {
        x->pair_out[r] += pack_size(x, i, b);
        x->pair_in[r] += delivery_size(x, i, b);
    }
}

/* Does the pair with the @p r-th remote host exchange rank to rank (all-to-all-v, large blocks)? */
static int goes_direct(const hier_a2a_t *x, int r)
{
    uint64_t blocks = (uint64_t)x->L * (uint64_t)x->L;

    if (x->d->host_counts == NULL)
        return 0; /* all-to-all: chosen by its size already */
    return TT_MAX(x->pair_out[r], x->pair_in[r]) * x->es / blocks > x->d->aggregate_bytes;
}

/* Part 1 (all-to-all: the whole plan): move the data. */
static void move_data(hier_a2a_t *x)
{
    int32_t *gathered = malloc((size_t)x->H * sizeof(int32_t));
    int32_t *arrived = malloc((size_t)x->H * sizeof(int32_t));
    uint64_t carried = 0;

    if (gathered == NULL || arrived == NULL) {
        x->s->status = TUTTI_ERR_NO_MEMORY;
        goto out;
    }
    for (int r = 0; r < x->H - 1; r++) {
        size_pair(x, r);
        x->direct[r] = goes_direct(x, r);
        x->carried[r] = !x->direct[r] && carrier(x, x->host, remote_host(x, r)) == x->local
                            ? (int)carried++
                            : -1;
    }
    if (x->d->in_place) { /* the input's copy comes first in the scratch: offset 0 */
        uint64_t extent = tt_a2a_send_extent(x->d);
        tt_ref_t copy_ref = tt_sched_scratch(x->s, extent * x->es);
        x->input = copy(x, copy_ref, tt_ref(TT_BUF_SEND, 0), extent, TT_NO_STEP, TT_NO_STEP);
    }
    reserve_scratch(x);
    stage_local(x);
    stage_direct(x);
    stage_gather(x, gathered);
    stage_network(x, gathered, arrived);
    stage_scatter(x, arrived);
out:
    free(gathered);
    free(arrived);
}

void tt_hier_alltoall(const tt_coll_desc_t *d, tt_rounds_t w, tt_schedule_t *s)
{
    const tt_cluster_t *c = d->cluster;
    hier_a2a_t x = {.d = d, .c = c, .s = s, .n = d->nranks, .H = c->nhosts, .L = c->ranks_per_host};
    int v = d->kind == TT_COLL_ALLTOALLV, data_round = v;
    size_t H = (size_t)x.H, L = (size_t)x.L;

    if (!v && d->count == 0)
        return; /* every rank knows there is nothing to move */
    if (v && w.first <= data_round && data_round < w.end && d->host_counts == NULL) {
        s->status = TUTTI_ERR_INVALID_ARG; /* part 1 is built from what part 0 swapped */
        return;
    }
    x.host = c->places[d->rank].host;
    x.local = c->places[d->rank].local;
    x.es = d->elem_size;
    x.from = d->in_place ? TT_BUF_SCRATCH : TT_BUF_SEND;
    x.input = TT_NO_STEP;
    if (v && w.first <= 0 && 0 < w.end)
        swap_counts(&x);
    if (w.first > data_round || data_round >= w.end)
        return;
    x.carried = malloc(2 * H * sizeof(int));
    x.joins = malloc(L * sizeof(int32_t));
    x.pack_at = malloc(6 * H * sizeof(uint64_t));
    x.block_at = malloc(L * L * sizeof(uint64_t));
    if (x.carried == NULL || x.joins == NULL || x.pack_at == NULL || x.block_at == NULL) {
        s->status = TUTTI_ERR_NO_MEMORY;
    } else {
        x.direct = x.carried + H;
        x.landed_at = x.pack_at + H;
        x.gathered_at = x.pack_at + 2 * H;
        x.arrived_at = x.pack_at + 3 * H;
        x.pair_out = x.pack_at + 4 * H;
        x.pair_in = x.pack_at + 5 * H;
        move_data(&x);
    }
    free(x.carried);
    free(x.joins);
    free(x.pack_at);
    free(x.block_at);
}

size_t tt_a2a_host_counts_len(const tt_coll_desc_t *d)
{
    if (d->kind != TT_COLL_ALLTOALLV || d->algo != TT_ALGO_HIER || d->cluster == NULL)
        return 0;
    return (size_t)d->cluster->ranks_per_host * 2 * (size_t)d->nranks;
}

void tt_a2a_host_counts_init(const tt_coll_desc_t *d, uint64_t *rows)
{
    size_t n = (size_t)d->nranks;
    uint64_t *row = rows + (size_t)d->cluster->places[d->rank].local * 2 * n;

    for (size_t p = 0; p < n; p++) {
        row[p] = d->layout->send_counts[p];
        row[n + p] = d->layout->recv_counts[p];
    }
}
