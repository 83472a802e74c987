/*
 * Latency algorithms for small messages: log2(n) rounds instead of n-1.
 * Operands are always combined lower-rank group first, so that the two
 * partners of an exchange compute bitwise the same value even for
 * operations that are not commutative bit for bit (min/max with NaN).
 */
#include "config.h"

#include "coll/ring.h"

#include <stdlib.h>

/*
 * Latency algorithms pair positions of the host-contiguous order (channel
 * 0's ring), so that their first rounds, between near positions, stay inside
 * a host where messages are cheapest.
 */
static int largest_power_of_two_at_most(int n)
{
    int p = 1;
    while (p * 2 <= n)
        p *= 2;
    return p;
}

/*
 * Recursive doubling. For n not a power of two, the first 2*extra ranks
 * pair up: even ones hand their data to the odd neighbour and get the
 * result back at the end.
 *
 * Each combining step writes into one of two buffers, taking turns, never
 * into the one being sent in the same round, so a round's receive does not
 * wait for its own send and partners cannot wait on each other. The turns
 * are arranged so that the last step lands in the output; in place, the
 * output is also the input, so two scratch buffers take turns and the
 * result is copied out once nothing reads the input any more.
 */
void tt_rd_allreduce(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    int n = d->nranks, p = largest_power_of_two_at_most(n), extra = n - p, r;
    int pre, rounds = 0, steps, step = 0;
    tt_ring_t g;
    size_t bytes = d->count * d->elem_size;
    tt_ref_t in = tt_ref(TT_BUF_SEND, 0), out = tt_ref(TT_BUF_RECV, 0), turn[2], cur = in;
    int32_t produced = TT_NO_STEP, sent = TT_NO_STEP, first_sent = TT_NO_STEP;
    int vrank;

    if (n == 1 || d->count == 0) {
        if (!d->in_place && d->count > 0)
            tt_sched_copy(s, out, in, d->count, TT_NO_STEP, TT_NO_STEP);
        return;
    }
    tt_ring_channel(&g, d, 0);
    /* From here on r is this rank's position; peers are named by their positions. */
    r = g.me;
    pre = r < 2 * extra;
    if (pre && r % 2 == 0) {
        sent = tt_sched_send(s, tt_ring_rank_at(&g, r + 1), in, d->count, TT_STEP_TO_REDUCE,
                             TT_NO_STEP, TT_NO_STEP);
        tt_sched_recv(s, tt_ring_rank_at(&g, r + 1), out, d->count, sent, TT_NO_STEP);
        return;
    }
    for (int mask = 1; mask < p; mask <<= 1)
        rounds++;
    steps = rounds + pre;
    turn[0] = tt_sched_scratch(s, bytes);
    turn[1] = d->in_place ? tt_sched_scratch(s, bytes) : out;
    /* Step j writes turn[1] when (steps - 1 - j) is even: the last step writes turn[1]. */
#define NEXT_DST() turn[(steps - 1 - step++) % 2 == 0]
    if (pre) {
        tt_ref_t dst = NEXT_DST();
        produced = tt_sched_recv_reduce(s, tt_ring_rank_at(&g, r - 1), dst, in, d->count,
                                        TT_STEP_INCOMING_FIRST, TT_NO_STEP, TT_NO_STEP);
        cur = dst;
        vrank = r / 2;
    } else {
        vrank = r - extra;
    }
    for (int mask = 1; mask < p; mask <<= 1) {
        int vpartner = vrank ^ mask;
        int partner = vpartner < extra ? vpartner * 2 + 1 : vpartner + extra;
        tt_ref_t dst = NEXT_DST();
        unsigned flags =
            (partner < r ? TT_STEP_INCOMING_FIRST : 0) | (mask * 2 >= p ? TT_STEP_FINAL : 0);
        int32_t sent_before = sent;

        sent = tt_sched_send(s, tt_ring_rank_at(&g, partner), cur, d->count, TT_STEP_TO_REDUCE,
                             produced, TT_NO_STEP);
        if (first_sent == TT_NO_STEP)
            first_sent = sent;
        /* dst is what the previous round sent: that send must be done before we overwrite it. */
        produced = tt_sched_recv_reduce(s, tt_ring_rank_at(&g, partner), dst, cur, d->count, flags,
                                        produced, sent_before);
        cur = dst;
    }
#undef NEXT_DST
    if (d->in_place) /* the output is the input: write it once the first send has read it */
        produced = tt_sched_copy(s, out, cur, d->count, produced, first_sent);
    if (pre)
        tt_sched_send(s, tt_ring_rank_at(&g, r - 1), out, d->count, 0, produced, TT_NO_STEP);
}

void tt_binomial_broadcast(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    int n = d->nranks, vrank, mask = 1;
    tt_ref_t data;
    int32_t got = TT_NO_STEP;
    tt_ring_t g;

    if (d->count == 0)
        return;
    tt_ring_channel(&g, d, 0);
    vrank = tt_mod(g.me - tt_ring_position(&g, d->root), n);
    data = tt_ref(vrank == 0 ? TT_BUF_SEND : TT_BUF_RECV, 0);
    if (vrank == 0 && !d->in_place)
        tt_sched_copy(s, tt_ref(TT_BUF_RECV, 0), data, d->count, TT_NO_STEP, TT_NO_STEP);
    for (; mask < n; mask <<= 1) {
        if (vrank & mask) {
            got = tt_sched_recv(s, tt_ring_peer(&g, -mask), data, d->count, TT_NO_STEP, TT_NO_STEP);
            break;
        }
    }
    for (mask >>= 1; mask > 0; mask >>= 1)
        if (vrank + mask < n)
            tt_sched_send(s, tt_ring_peer(&g, mask), data, d->count, 0, got, TT_NO_STEP);
}

/*
 * Binomial reduce: a rank folds in its children's subtrees (in increasing
 * distance) and passes the result to its parent. Children always come after
 * their parent in rank order relative to the root, so "local first".
 */
void tt_binomial_reduce(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    int n = d->nranks, vrank;
    tt_ref_t acc = tt_ref(TT_BUF_SEND, 0), dst;
    int32_t last = TT_NO_STEP;
    int last_child = 0;
    tt_ring_t g;

    if (n == 1 || d->count == 0) {
        if (n == 1 && !d->in_place && d->count > 0)
            tt_sched_copy(s, tt_ref(TT_BUF_RECV, 0), acc, d->count, TT_NO_STEP, TT_NO_STEP);
        return;
    }
    tt_ring_channel(&g, d, 0);
    vrank = tt_mod(g.me - tt_ring_position(&g, d->root), n);
    /* The children are vrank + mask for the masks below vrank's lowest set bit. */
    for (int mask = 1; mask < n && !(vrank & mask); mask <<= 1)
        if (vrank + mask < n)
            last_child = mask;
    dst = vrank == 0 ? tt_ref(TT_BUF_RECV, 0) : tt_sched_scratch(s, d->count * d->elem_size);
    for (int mask = 1; mask <= last_child; mask <<= 1) {
        if (vrank + mask >= n)
            continue;
        last = tt_sched_recv_reduce(s, tt_ring_peer(&g, mask), dst, acc, d->count,
                                    vrank == 0 && mask == last_child ? TT_STEP_FINAL : 0, last,
                                    TT_NO_STEP);
        acc = dst;
    }
    if (vrank != 0) {
        int parent_mask = vrank & -vrank;
        tt_sched_send(s, tt_ring_peer(&g, -parent_mask), acc, d->count, TT_STEP_TO_REDUCE, last,
                      TT_NO_STEP);
    }
}

/*
 * Dissemination: in round k, tell the rank 2^k positions on that we (and all
 * we heard from) arrived. What a round passes on must include every earlier
 * round's news, so each receive waits for the one before it: the send of
 * round k then follows the receives of all rounds before k, not only the
 * latest (receives from different peers may complete in any order).
 */
void tt_dissemination_barrier(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    int n = d->nranks;
    int32_t heard = TT_NO_STEP;
    tt_ring_t g;

    tt_ring_channel(&g, d, 0);
    for (int dist = 1; dist < n; dist <<= 1) {
        tt_sched_send(s, tt_ring_peer(&g, dist), tt_ref(TT_BUF_SEND, 0), 0, 0, heard, TT_NO_STEP);
        heard =
            tt_sched_recv(s, tt_ring_peer(&g, -dist), tt_ref(TT_BUF_RECV, 0), 0, heard, TT_NO_STEP);
    }
}
