/*
 * Bandwidth algorithms: rings and chains, cut into chunks so that every
 * link stays busy (chunk c of step k moves while chunk c+1 of step k-1 is
 * still being reduced).
 *
 * Ring reduce-scatter: in step k (0..n-2) rank r sends block r-k-1 to its
 * right neighbour and receives block r-k-2 from its left, folding it into
 * its own contribution; after n-1 steps it holds block r fully reduced.
 * Each block is folded left to right around the ring starting at the rank
 * after its owner, the same way on every run: results are reproducible.
 * Ring all-gather then passes each finished block n-1 steps around.
 */
#include "config.h"

#include "coll/coll.h"

#include <stdlib.h>

/* Per-chunk step indices of the previous ring step. */
typedef struct chunk_steps {
    int32_t *last;
    uint64_t n;
} chunk_steps_t;

static int chunk_steps_init(chunk_steps_t *c, uint64_t n, tt_schedule_t *s)
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

static inline int mod(int a, int n)
{
    return ((a % n) + n) % n;
}

static tt_ref_t elem_ref(tt_buf_t buf, uint64_t elem, size_t elem_size)
{
    return tt_ref(buf, elem * elem_size);
}

/* recvbuf = sendbuf for one rank (unless in place). */
static void copy_whole(const tt_coll_desc_t *d, tt_schedule_t *s, uint64_t src_elem,
                       uint64_t dst_elem, uint64_t count)
{
    if (!d->in_place && count > 0)
        tt_sched_copy(s, elem_ref(TT_BUF_RECV, dst_elem, d->elem_size),
                      elem_ref(TT_BUF_SEND, src_elem, d->elem_size), count, TT_NO_STEP, TT_NO_STEP);
}

/*
 * The ring all-gather of blocks that are already in place in the receive
 * buffer (or, for own block at step 0, at @p own_src). @p ready[c] is the
 * step that finished chunk c of this rank's own block.
 */
static void ring_pass_blocks(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s,
                             tt_span_t (*block_of)(const tt_coll_desc_t *, int), tt_ref_t own_src,
                             chunk_steps_t *ready)
{
    int n = d->nranks, r = d->rank, right = mod(r + 1, n), left = mod(r - 1, n);
    uint64_t chunk = tt_chunk_elems(d, t);

    for (int k = 0; k < n - 1; k++) {
        tt_span_t out = block_of(d, mod(r - k, n)), in = block_of(d, mod(r - k - 1, n));
        for (uint64_t c = 0; c < tt_nchunks(out, chunk); c++) {
            tt_span_t ch = tt_chunk(out, chunk, c);
            tt_ref_t src = k == 0 ? tt_ref_add(own_src, (ch.offset - out.offset) * d->elem_size)
                                  : elem_ref(TT_BUF_RECV, ch.offset, d->elem_size);
            tt_sched_send(s, right, src, ch.count, 0, ready->last[c], TT_NO_STEP);
        }
        for (uint64_t c = 0; c < tt_nchunks(in, chunk); c++) {
            tt_span_t ch = tt_chunk(in, chunk, c);
            ready->last[c] = tt_sched_recv(s, left, elem_ref(TT_BUF_RECV, ch.offset, d->elem_size),
                                           ch.count, TT_NO_STEP, TT_NO_STEP);
        }
    }
}

static tt_span_t allreduce_block(const tt_coll_desc_t *d, int i)
{
    return tt_block(d->count, d->nranks, i);
}

static tt_span_t gather_block(const tt_coll_desc_t *d, int i)
{
    tt_span_t b = {(uint64_t)i * d->count, d->count};
    return b;
}

void tt_ring_allreduce(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s)
{
    int n = d->nranks, r = d->rank, right = mod(r + 1, n), left = mod(r - 1, n);
    uint64_t chunk = tt_chunk_elems(d, t);
    chunk_steps_t prev;

    if (n == 1) {
        copy_whole(d, s, 0, 0, d->count);
        return;
    }
    if (!chunk_steps_init(&prev, tt_nchunks(tt_block(d->count, n, 0), chunk), s))
        return;
    for (int k = 0; k < n - 1; k++) {
        tt_span_t out = tt_block(d->count, n, mod(r - k - 1, n));
        tt_span_t in = tt_block(d->count, n, mod(r - k - 2, n));
        for (uint64_t c = 0; c < tt_nchunks(out, chunk); c++) {
            tt_span_t ch = tt_chunk(out, chunk, c);
            tt_sched_send(s, right,
                          elem_ref(k == 0 ? TT_BUF_SEND : TT_BUF_RECV, ch.offset, d->elem_size),
                          ch.count, TT_STEP_TO_REDUCE, prev.last[c], TT_NO_STEP);
        }
        for (uint64_t c = 0; c < tt_nchunks(in, chunk); c++) {
            tt_span_t ch = tt_chunk(in, chunk, c);
            prev.last[c] = tt_sched_recv_reduce(
                s, left, elem_ref(TT_BUF_RECV, ch.offset, d->elem_size),
                elem_ref(TT_BUF_SEND, ch.offset, d->elem_size), ch.count,
                TT_STEP_INCOMING_FIRST | (k == n - 2 ? TT_STEP_FINAL : 0), TT_NO_STEP, TT_NO_STEP);
        }
    }
    /* Own block r is final in the receive buffer; pass every block around. */
    ring_pass_blocks(d, t, s, allreduce_block,
                     elem_ref(TT_BUF_RECV, tt_block(d->count, n, r).offset, d->elem_size), &prev);
    free(prev.last);
}

void tt_ring_reduce_scatter(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s)
{
    int n = d->nranks, r = d->rank, right = mod(r + 1, n), left = mod(r - 1, n);
    uint64_t chunk = tt_chunk_elems(d, t), nchunks = TT_DIV_ROUND_UP(d->count, chunk);
    tt_span_t mine = {0, d->count};
    tt_ref_t partial[2];
    chunk_steps_t reduced = {NULL, 0}, sent = {NULL, 0}, sent_before = {NULL, 0};

    if (n == 1) {
        copy_whole(d, s, 0, 0, d->count);
        return;
    }
    if (!chunk_steps_init(&reduced, nchunks, s) || !chunk_steps_init(&sent, nchunks, s) ||
        !chunk_steps_init(&sent_before, nchunks, s))
        goto out;
    /* Partial sums alternate between two scratch blocks: one being sent, one being filled. */
    partial[0] = tt_sched_scratch(s, d->count * d->elem_size);
    partial[1] = tt_sched_scratch(s, d->count * d->elem_size);
    for (int k = 0; k < n - 1; k++) {
        uint64_t out_block = (uint64_t)mod(r - k - 1, n), in_block = (uint64_t)mod(r - k - 2, n);
        int last = k == n - 2;
        for (uint64_t c = 0; c < nchunks; c++) {
            tt_span_t ch = tt_chunk(mine, chunk, c);
            tt_ref_t src =
                k == 0 ? elem_ref(TT_BUF_SEND, out_block * d->count + ch.offset, d->elem_size)
                       : tt_ref_add(partial[(k - 1) % 2], ch.offset * d->elem_size);
            sent_before.last[c] = sent.last[c];
            sent.last[c] = tt_sched_send(s, right, src, ch.count, TT_STEP_TO_REDUCE,
                                         reduced.last[c], TT_NO_STEP);
        }
        for (uint64_t c = 0; c < nchunks; c++) {
            tt_span_t ch = tt_chunk(mine, chunk, c);
            tt_ref_t dst = last ? elem_ref(TT_BUF_RECV, ch.offset, d->elem_size)
                                : tt_ref_add(partial[k % 2], ch.offset * d->elem_size);
            /* partial[k % 2] was last read by the send of step k-1 (sent_before). */
            reduced.last[c] = tt_sched_recv_reduce(
                s, left, dst, elem_ref(TT_BUF_SEND, in_block * d->count + ch.offset, d->elem_size),
                ch.count, TT_STEP_INCOMING_FIRST | (last ? TT_STEP_FINAL : 0), sent_before.last[c],
                TT_NO_STEP);
        }
    }
out:
    free(reduced.last);
    free(sent.last);
    free(sent_before.last);
}

void tt_ring_allgather(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s)
{
    chunk_steps_t ready;

    copy_whole(d, s, 0, (uint64_t)d->rank * d->count, d->count);
    if (d->nranks == 1 ||
        !chunk_steps_init(&ready, tt_nchunks(gather_block(d, 0), tt_chunk_elems(d, t)), s))
        return;
    /* Send our block from the send buffer: no need to wait for the local copy. */
    ring_pass_blocks(d, t, s, gather_block, tt_ref(TT_BUF_SEND, 0), &ready);
    free(ready.last);
}

/*
 * Chains for broadcast and reduce: ranks in a line starting after the root
 * (reduce) or at it (broadcast), chunks flowing down the line.
 */
void tt_chain_broadcast(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s)
{
    int n = d->nranks, r = d->rank, pos = mod(r - d->root, n);
    uint64_t chunk = tt_chunk_elems(d, t);
    tt_span_t all = {0, d->count};

    if (pos == 0)
        copy_whole(d, s, 0, 0, d->count);
    for (uint64_t c = 0; c < tt_nchunks(all, chunk); c++) {
        tt_span_t ch = tt_chunk(all, chunk, c);
        int32_t got = TT_NO_STEP;
        if (pos > 0)
            got = tt_sched_recv(s, mod(r - 1, n), elem_ref(TT_BUF_RECV, ch.offset, d->elem_size),
                                ch.count, TT_NO_STEP, TT_NO_STEP);
        if (pos < n - 1)
            tt_sched_send(s, mod(r + 1, n),
                          elem_ref(pos == 0 ? TT_BUF_SEND : TT_BUF_RECV, ch.offset, d->elem_size),
                          ch.count, 0, got, TT_NO_STEP);
    }
}

void tt_chain_reduce(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s)
{
    int n = d->nranks, r = d->rank, pos = mod(r - d->root - 1, n); /* root is last */
    uint64_t chunk = tt_chunk_elems(d, t);
    tt_span_t all = {0, d->count};
    tt_slot_ring_t partials;

    if (n == 1) {
        copy_whole(d, s, 0, 0, d->count);
        return;
    }
    if (pos > 0 && pos < n - 1)
        tt_slot_ring_init(&partials, s, (int)t->pipeline_slots, chunk * d->elem_size);
    for (uint64_t c = 0; c < tt_nchunks(all, chunk); c++) {
        tt_span_t ch = tt_chunk(all, chunk, c);
        tt_ref_t mine = elem_ref(TT_BUF_SEND, ch.offset, d->elem_size), partial;
        int32_t wait, reduced;
        int slot;

        if (pos == 0) {
            tt_sched_send(s, mod(r + 1, n), mine, ch.count, TT_STEP_TO_REDUCE, TT_NO_STEP,
                          TT_NO_STEP);
        } else if (pos == n - 1) {
            tt_sched_recv_reduce(s, mod(r - 1, n), elem_ref(TT_BUF_RECV, ch.offset, d->elem_size),
                                 mine, ch.count, TT_STEP_INCOMING_FIRST | TT_STEP_FINAL, TT_NO_STEP,
                                 TT_NO_STEP);
        } else {
            /* The partial slot is free once the send that last read it has completed. */
            slot = tt_slot_ring_take(&partials, &partial, &wait);
            reduced = tt_sched_recv_reduce(s, mod(r - 1, n), partial, mine, ch.count,
                                           TT_STEP_INCOMING_FIRST, wait, TT_NO_STEP);
            partials.last_use[slot] = tt_sched_send(s, mod(r + 1, n), partial, ch.count,
                                                    TT_STEP_TO_REDUCE, reduced, TT_NO_STEP);
        }
    }
}
