/*
 * Double binary tree allreduce. Positions (host-contiguous ring order) are
 * numbered 1..n and arranged as an in-order binary tree: node p's level is
 * its lowest set bit, so odd positions are leaves and even ones interior,
 * and every subtree is a contiguous run of positions (mostly inside a host).
 * The second tree numbers positions shifted by one, which makes the first
 * tree's leaves its interior nodes: every rank is interior in at most one
 * tree, so no rank carries more than one tree's worth of forwarding.
 *
 * Each tree reduces half of the data up to its root and broadcasts the
 * result back down, chunk by chunk so that the levels work in parallel. The
 * root combines each chunk exactly once, so every rank gets the same bits.
 */
#include "config.h"

#include "coll/ring.h"
#include "coll/tree.h"

#include <stdlib.h>

static int lowest_bit(int p)
{
    return p & -p;
}

static int largest_power_of_two_at_most(int n)
{
    int p = 1;
    while (p * 2 <= n)
        p *= 2;
    return p;
}

/* The in-order parent of @p p when every position up to 2*low exists. */
static int full_parent(int p)
{
    int low = lowest_bit(p), up = p - low;
    return (up & (2 * low)) ? up : p + low;
}

void tt_btree_links(int n, int p, int *parent_p, int *left_p, int *right_p)
{
    int low = lowest_bit(p), up, right = -1;

    /* A missing ancestor (beyond n) hands its children to its own parent. */
    up = p == largest_power_of_two_at_most(n) ? 0 : full_parent(p);
    while (up > n)
        up = full_parent(up);
    *parent_p = up;
    *left_p = low > 1 ? p - low / 2 : 0;
    /* A missing right child is replaced by its own left descendant. */
    for (int half = low / 2; half >= 1; half /= 2)
        if (p + half <= n) {
            right = p + half;
            break;
        }
    *right_p = right > 0 ? right : 0;
}

int tt_btree_position(int n, int tree, int index)
{
    return tree == 0 ? index + 1 : (index + 1) % n + 1;
}

/* The ring index of tree position @p pos (the inverse of tt_btree_position). */
static int index_of(int n, int tree, int pos)
{
    return tree == 0 ? pos - 1 : tt_mod(pos - 2, n);
}

typedef struct tree_node {
    int parent, child[2]; /* ranks, -1 if none */
} tree_node_t;

static tree_node_t node_in(const tt_ring_t *g, int tree)
{
    int n = g->n, pos = tt_btree_position(n, tree, g->me), links[3];
    tree_node_t node;

    tt_btree_links(n, pos, &links[0], &links[1], &links[2]);
    node.parent = links[0] ? tt_ring_rank_at(g, index_of(n, tree, links[0])) : -1;
    for (int c = 0; c < 2; c++)
        node.child[c] = links[c + 1] ? tt_ring_rank_at(g, index_of(n, tree, links[c + 1])) : -1;
    return node;
}

/*
 * Reduce chunk @p ch up the tree: combine the children's partial sums into
 * the output and send that to the parent. Returns the last step (at the
 * root: the one after which the result is in place).
 */
static int32_t tree_up(const tt_coll_desc_t *d, tt_schedule_t *s, const tree_node_t *node,
                       tt_span_t ch)
{
    tt_ref_t in = tt_elem_ref(TT_BUF_SEND, ch.offset, d->elem_size);
    tt_ref_t out = tt_elem_ref(TT_BUF_RECV, ch.offset, d->elem_size), acc = in;
    int32_t last = TT_NO_STEP;
    int root = node->parent < 0;

    for (int c = 0; c < 2; c++) {
        int final_child = root && (c == 1 || node->child[1] < 0);
        if (node->child[c] < 0)
            continue;
        last = tt_sched_recv_reduce(s, node->child[c], out, acc, ch.count,
                                    final_child ? TT_STEP_FINAL : 0, last, TT_NO_STEP);
        acc = out;
    }
    if (!root)
        return tt_sched_send(s, node->parent, acc, ch.count, TT_STEP_TO_REDUCE, last, TT_NO_STEP);
    if (last == TT_NO_STEP && !d->in_place) /* a root without children: one rank */
        last = tt_sched_copy(s, out, in, ch.count, TT_NO_STEP, TT_NO_STEP);
    return last;
}

/*
 * Broadcast chunk @p ch's result down: receive it from the parent (into the
 * output, once @p up, what went up from there, has gone) and send it on to
 * the children.
 */
static void tree_down(const tt_coll_desc_t *d, tt_schedule_t *s, const tree_node_t *node,
                      tt_span_t ch, int32_t up)
{
    tt_ref_t out = tt_elem_ref(TT_BUF_RECV, ch.offset, d->elem_size);
    int32_t got =
        node->parent < 0 ? up : tt_sched_recv(s, node->parent, out, ch.count, up, TT_NO_STEP);

    for (int c = 0; c < 2; c++)
        if (node->child[c] >= 0)
            tt_sched_send(s, node->child[c], out, ch.count, 0, got, TT_NO_STEP);
}

/*
 * How many chunks the broadcast of a chunk (receiving it from the parent and
 * passing it on) trails its reduction in the schedule. Two ranks linked in both trees send each
 * other reductions of one tree and broadcasts of the other, and transfers to one peer are posted in
 * schedule order: were chunk c's broadcast listed right after its reduction, chunk c+1 could not go
 * up before chunk c had made the round trip through the other tree. Listing a chunk's broadcast
 * after the reductions of the chunks that fit in a round trip (up and down the tree's depth) keeps
 * both flowing.
 */
#define TREE_LAG_MAX 64

static int broadcast_lag(int n)
{
    int depth = 0;
    while ((1 << depth) < n)
        depth++;
    return TT_MIN(2 * depth + 2, TREE_LAG_MAX - 1);
}

void tt_tree_allreduce(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    uint64_t chunk = tt_chunk_elems(d), nchunks[2], lag = (uint64_t)broadcast_lag(d->nranks);
    tt_span_t all = {0, d->count}, half[2];
    tree_node_t node[2];
    int32_t up[2][TREE_LAG_MAX]; /* per tree: the last reduction step of the chunks in flight */
    tt_ring_t g;

    tt_ring_channel(&g, d, 0);
    for (int t = 0; t < 2; t++) {
        node[t] = node_in(&g, t);
        half[t] = tt_sub_block(all, 2, t);
        nchunks[t] = tt_nchunks(half[t], chunk);
    }
    /* Round r: both trees reduce chunk r and broadcast chunk r - lag, each on its own channel. */
    for (uint64_t r = 0; r < TT_MAX(nchunks[0], nchunks[1]) + lag; r++)
        for (int t = 0; t < 2; t++) {
            tt_sched_set_channel(s, t % TT_MAX(1, d->channels));
            if (r < nchunks[t])
                up[t][r % TREE_LAG_MAX] = tree_up(d, s, &node[t], tt_chunk(half[t], chunk, r));
            if (r >= lag && r - lag < nchunks[t])
                tree_down(d, s, &node[t], tt_chunk(half[t], chunk, r - lag),
                          up[t][(r - lag) % TREE_LAG_MAX]);
        }
    tt_sched_set_channel(s, 0);
}
