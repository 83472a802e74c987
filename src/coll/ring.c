/*
 * Bandwidth algorithms: rings and chains, cut into chunks so that every
 * link stays busy (one chunk moves on while the next is being combined).
 *
 * Ring reduce-scatter over n positions: in step k (0..n-2) the rank at
 * position p sends block p-k-1 to its right neighbour and receives block
 * p-k-2 from its left, folding it into its own contribution; after n-1 steps
 * it holds block p fully reduced. Each block is folded left to right around
 * the ring starting after its owner, the same way on every run: results are
 * reproducible. Ring all-gather then passes each finished block around.
 *
 * A ring is a group of ranks in ring order: the whole communicator in the
 * channel's host-contiguous order (tt_ring_order), or a part of it (the
 * stages of the hierarchical allreduce, hier.c). Several channels split the
 * data and run side by side, each on its own rail between hosts.
 */
#include "config.h"

#include "coll/ring.h"

#include <stdlib.h>

int tt_chunk_steps_init(tt_chunk_steps_t *c, uint64_t n, tt_schedule_t *s)
{
    c->n = n;
    c->last = malloc((n + 1) * sizeof(int32_t));
    if (c->last == NULL) {
        s->status = TUTTI_ERR_NO_MEMORY;
        return 0;
    }
    for (uint64_t i = 0; i <= n; i++)
        c->last[i] = TT_NO_STEP;
    return 1;
}

void tt_chunk_steps_fini(tt_chunk_steps_t *c)
{
    free(c->last);
    c->last = NULL;
}

int32_t tt_chunk_steps_join(const tt_chunk_steps_t *c, tt_schedule_t *s)
{
    return c->n == 1 ? c->last[0] : tt_sched_join(s, c->last, c->n);
}

void tt_ring_rs_step(const tt_coll_desc_t *d, tt_schedule_t *s, const tt_ring_t *g, int k,
                     tt_span_t span, tt_buf_t src, tt_buf_t dst, unsigned final, int32_t src_ready,
                     tt_chunk_steps_t *last)
{
    int n = g->n;
    uint64_t chunk = tt_chunk_elems(d);
    tt_span_t out = tt_sub_block(span, n, tt_mod(g->me - k - 1, n));
    tt_span_t in = tt_sub_block(span, n, tt_mod(g->me - k - 2, n));

    tt_sched_set_channel(s, g->channel);
    for (uint64_t c = 0; c < tt_nchunks(out, chunk); c++) {
        tt_span_t ch = tt_chunk(out, chunk, c);
        tt_sched_send(s, tt_ring_peer(g, 1),
                      tt_elem_ref(k == 0 ? src : dst, ch.offset, d->elem_size), ch.count,
                      TT_STEP_TO_REDUCE, last->last[c], TT_NO_STEP);
    }
    for (uint64_t c = 0; c < tt_nchunks(in, chunk); c++) {
        tt_span_t ch = tt_chunk(in, chunk, c);
        last->last[c] = tt_sched_recv_reduce(
            s, tt_ring_peer(g, -1), tt_elem_ref(dst, ch.offset, d->elem_size),
            tt_elem_ref(src, ch.offset, d->elem_size), ch.count,
            TT_STEP_INCOMING_FIRST | (k == n - 2 ? final : 0), src_ready, TT_NO_STEP);
    }
}

void tt_ring_ag_step(const tt_coll_desc_t *d, tt_schedule_t *s, const tt_ring_t *g, int k,
                     tt_span_t span, tt_ref_t own, tt_buf_t dst, tt_chunk_steps_t *ready)
{
    int n = g->n;
    uint64_t chunk = tt_chunk_elems(d);
    tt_span_t out = tt_sub_block(span, n, tt_mod(g->me - k, n));
    tt_span_t in = tt_sub_block(span, n, tt_mod(g->me - k - 1, n));

    tt_sched_set_channel(s, g->channel);
    for (uint64_t c = 0; c < tt_nchunks(out, chunk); c++) {
        tt_span_t ch = tt_chunk(out, chunk, c);
        tt_ref_t src = k == 0 ? tt_ref_add(own, (ch.offset - out.offset) * d->elem_size)
                              : tt_elem_ref(dst, ch.offset, d->elem_size);
        tt_sched_send(s, tt_ring_peer(g, 1), src, ch.count, 0, ready->last[c], TT_NO_STEP);
    }
    for (uint64_t c = 0; c < tt_nchunks(in, chunk); c++) {
        tt_span_t ch = tt_chunk(in, chunk, c);
        ready->last[c] =
            tt_sched_recv(s, tt_ring_peer(g, -1), tt_elem_ref(dst, ch.offset, d->elem_size),
                          ch.count, TT_NO_STEP, TT_NO_STEP);
    }
}

/* recvbuf = sendbuf for one rank (unless in place). */
static void copy_whole(const tt_coll_desc_t *d, tt_schedule_t *s, uint64_t src_elem,
                       uint64_t dst_elem, uint64_t count)
{
    if (!d->in_place && count > 0)
        tt_sched_copy(s, tt_elem_ref(TT_BUF_RECV, dst_elem, d->elem_size),
                      tt_elem_ref(TT_BUF_SEND, src_elem, d->elem_size), count, TT_NO_STEP,
                      TT_NO_STEP);
}

/* The rings of @p d's channels, each with its slice of @p count elements. */
typedef struct channel_set {
    int n;
    tt_ring_t ring[TT_MAX_CHANNELS];
    tt_span_t span[TT_MAX_CHANNELS];
    tt_chunk_steps_t steps[TT_MAX_CHANNELS];
} channel_set_t;

static int channels_init(channel_set_t *cs, const tt_coll_desc_t *d, tt_schedule_t *s,
                         uint64_t count)
{
    uint64_t chunk = tt_chunk_elems(d);
    cs->n = TT_MAX(1, TT_MIN(d->channels, TT_MAX_CHANNELS));
    for (int c = 0; c < cs->n; c++) {
        tt_ring_channel(&cs->ring[c], d, c);
        cs->span[c] = tt_block(count, cs->n, c);
        if (!tt_chunk_steps_init(&cs->steps[c],
                                 tt_nchunks(tt_sub_block(cs->span[c], d->nranks, 0), chunk), s))
            return 0;
    }
    return 1;
}

static void channels_fini(channel_set_t *cs)
{
    for (int c = 0; c < cs->n; c++)
        tt_chunk_steps_fini(&cs->steps[c]);
}

void tt_ring_allreduce(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s)
{
    int n = d->nranks;
    channel_set_t cs = {0};

    if (n == 1) {
        if (rounds.first == 0)
            copy_whole(d, s, 0, 0, d->count);
        return;
    }
    if (channels_init(&cs, d, s, d->count)) {
        /* Rounds 0..n-2 reduce-scatter, the next n-1 all-gather; channels interleave
         * step by step, so that all of them move at once. */
        for (int k = rounds.first; k < TT_MIN(rounds.end, 2 * (n - 1)); k++)
            for (int c = 0; c < cs.n; c++) {
                tt_span_t own = tt_sub_block(cs.span[c], n, cs.ring[c].me);
                if (k < n - 1)
                    tt_ring_rs_step(d, s, &cs.ring[c], k, cs.span[c], TT_BUF_SEND, TT_BUF_RECV,
                                    TT_STEP_FINAL, TT_NO_STEP, &cs.steps[c]);
                else
                    tt_ring_ag_step(d, s, &cs.ring[c], k - (n - 1), cs.span[c],
                                    tt_elem_ref(TT_BUF_RECV, own.offset, d->elem_size), TT_BUF_RECV,
                                    &cs.steps[c]);
            }
    }
    channels_fini(&cs);
    tt_sched_set_channel(s, 0);
}

void tt_ring_allgather(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s)
{
    int n = d->nranks;
    uint64_t chunk = tt_chunk_elems(d);
    tt_span_t mine = {0, d->count};
    tt_chunk_steps_t ready;
    tt_ring_t g;

    if (rounds.first == 0)
        copy_whole(d, s, 0, (uint64_t)d->rank * d->count, d->count);
    tt_ring_channel(&g, d, 0);
    if (n > 1 && tt_chunk_steps_init(&ready, tt_nchunks(mine, chunk), s)) {
        /* Block i (rank i's contribution) lives at i * count; positions name ranks. */
        for (int k = rounds.first; k < TT_MIN(rounds.end, n - 1); k++) {
            int out_rank = tt_ring_rank_at(&g, g.me - k),
                in_rank = tt_ring_rank_at(&g, g.me - k - 1);
            for (uint64_t c = 0; c < ready.n; c++) {
                tt_span_t ch = tt_chunk(mine, chunk, c);
                tt_ref_t src =
                    k == 0 ? tt_elem_ref(TT_BUF_SEND, ch.offset, d->elem_size)
                           : tt_elem_ref(TT_BUF_RECV, (uint64_t)out_rank * d->count + ch.offset,
                                         d->elem_size);
                tt_sched_send(s, tt_ring_peer(&g, 1), src, ch.count, 0, ready.last[c], TT_NO_STEP);
            }
            for (uint64_t c = 0; c < ready.n; c++) {
                tt_span_t ch = tt_chunk(mine, chunk, c);
                ready.last[c] =
                    tt_sched_recv(s, tt_ring_peer(&g, -1),
                                  tt_elem_ref(TT_BUF_RECV, (uint64_t)in_rank * d->count + ch.offset,
                                              d->elem_size),
                                  ch.count, TT_NO_STEP, TT_NO_STEP);
            }
        }
        tt_chunk_steps_fini(&ready);
    }
}

void tt_ring_reduce_scatter(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s)
{
    int n = d->nranks;
    uint64_t chunk = tt_chunk_elems(d), nchunks = TT_DIV_ROUND_UP(d->count, chunk);
    tt_span_t mine = {0, d->count};
    tt_ref_t partial[2];
    tt_chunk_steps_t reduced = {0}, sent = {0}, sent_before = {0};
    tt_ring_t g;

    if (n == 1) {
        if (rounds.first == 0)
            copy_whole(d, s, 0, 0, d->count);
        return;
    }
    tt_ring_channel(&g, d, 0);
    if (!tt_chunk_steps_init(&reduced, nchunks, s) || !tt_chunk_steps_init(&sent, nchunks, s) ||
        !tt_chunk_steps_init(&sent_before, nchunks, s))
        goto out;
    /* Partial sums alternate between two scratch blocks: one being sent, one being filled.
     * Every part reserves them alike, so they carry over from one part to the next. */
    partial[0] = tt_sched_scratch(s, d->count * d->elem_size);
    partial[1] = tt_sched_scratch(s, d->count * d->elem_size);
    for (int k = rounds.first; k < TT_MIN(rounds.end, n - 1); k++) {
        /* Block b of the input belongs to rank b; ring positions name ranks. */
        uint64_t out_block = (uint64_t)tt_ring_rank_at(&g, g.me - k - 1);
        uint64_t in_block = (uint64_t)tt_ring_rank_at(&g, g.me - k - 2);
        int last = k == n - 2;
        for (uint64_t c = 0; c < nchunks; c++) {
            tt_span_t ch = tt_chunk(mine, chunk, c);
            tt_ref_t src =
                k == 0 ? tt_elem_ref(TT_BUF_SEND, out_block * d->count + ch.offset, d->elem_size)
                       : tt_ref_add(partial[(k - 1) % 2], ch.offset * d->elem_size);
            sent_before.last[c] = sent.last[c];
            sent.last[c] = tt_sched_send(s, tt_ring_peer(&g, 1), src, ch.count, TT_STEP_TO_REDUCE,
                                         reduced.last[c], TT_NO_STEP);
        }
        for (uint64_t c = 0; c < nchunks; c++) {
            tt_span_t ch = tt_chunk(mine, chunk, c);
            tt_ref_t dst = last ? tt_elem_ref(TT_BUF_RECV, ch.offset, d->elem_size)
                                : tt_ref_add(partial[k % 2], ch.offset * d->elem_size);
            /* partial[k % 2] was last read by the send of step k-1 (sent_before). */
            reduced.last[c] = tt_sched_recv_reduce(
                s, tt_ring_peer(&g, -1), dst,
                tt_elem_ref(TT_BUF_SEND, in_block * d->count + ch.offset, d->elem_size), ch.count,
                TT_STEP_INCOMING_FIRST | (last ? TT_STEP_FINAL : 0), sent_before.last[c],
                TT_NO_STEP);
        }
    }
out:
    tt_chunk_steps_fini(&reduced);
    tt_chunk_steps_fini(&sent);
    tt_chunk_steps_fini(&sent_before);
}

/*
 * Chains for broadcast and reduce: ranks in a line, in the host-contiguous
 * ring order, starting at the root (broadcast) or right after it (reduce),
 * chunks flowing down the line.
 */
void tt_chain_broadcast(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    int n = d->nranks, pos;
    uint64_t chunk = tt_chunk_elems(d);
    tt_span_t all = {0, d->count};
    tt_ring_t g;

    tt_ring_channel(&g, d, 0);
    pos = tt_mod(g.me - tt_ring_position(&g, d->root), n);
    if (pos == 0)
        copy_whole(d, s, 0, 0, d->count);
    for (uint64_t c = 0; c < tt_nchunks(all, chunk); c++) {
        tt_span_t ch = tt_chunk(all, chunk, c);
        int32_t got = TT_NO_STEP;
        if (pos > 0)
            got = tt_sched_recv(s, tt_ring_peer(&g, -1),
                                tt_elem_ref(TT_BUF_RECV, ch.offset, d->elem_size), ch.count,
                                TT_NO_STEP, TT_NO_STEP);
        if (pos < n - 1)
            tt_sched_send(
                s, tt_ring_peer(&g, 1),
                tt_elem_ref(pos == 0 ? TT_BUF_SEND : TT_BUF_RECV, ch.offset, d->elem_size),
                ch.count, 0, got, TT_NO_STEP);
    }
}

void tt_chain_reduce(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    int n = d->nranks, pos;
    uint64_t chunk = tt_chunk_elems(d);
    tt_span_t all = {0, d->count};
    tt_slot_ring_t partials;
    tt_ring_t g;

    if (n == 1) {
        copy_whole(d, s, 0, 0, d->count);
        return;
    }
    tt_ring_channel(&g, d, 0);
    pos = tt_mod(g.me - tt_ring_position(&g, d->root) - 1, n); /* the root is last */
    if (pos > 0 && pos < n - 1)
        tt_slot_ring_init(&partials, s, d->pipeline_slots, chunk * d->elem_size);
    for (uint64_t c = 0; c < tt_nchunks(all, chunk); c++) {
        tt_span_t ch = tt_chunk(all, chunk, c);
        tt_ref_t mine = tt_elem_ref(TT_BUF_SEND, ch.offset, d->elem_size), partial;
        int32_t wait, reduced;
        int slot;

        if (pos == 0) {
            tt_sched_send(s, tt_ring_peer(&g, 1), mine, ch.count, TT_STEP_TO_REDUCE, TT_NO_STEP,
                          TT_NO_STEP);
        } else if (pos == n - 1) {
            tt_sched_recv_reduce(s, tt_ring_peer(&g, -1),
                                 tt_elem_ref(TT_BUF_RECV, ch.offset, d->elem_size), mine, ch.count,
                                 TT_STEP_INCOMING_FIRST | TT_STEP_FINAL, TT_NO_STEP, TT_NO_STEP);
        } else {
            /* The partial slot is free once the send that last read it has completed. */
            slot = tt_slot_ring_take(&partials, &partial, &wait);
            reduced = tt_sched_recv_reduce(s, tt_ring_peer(&g, -1), partial, mine, ch.count,
                                           TT_STEP_INCOMING_FIRST, wait, TT_NO_STEP);
            partials.last_use[slot] = tt_sched_send(s, tt_ring_peer(&g, 1), partial, ch.count,
                                                    TT_STEP_TO_REDUCE, reduced, TT_NO_STEP);
        }
    }
}
