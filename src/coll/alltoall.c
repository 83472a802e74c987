/*
 * All-to-all and all-to-all-v by pairwise exchange. Round 0 copies this
 * rank's own block; in round k (1..n-1) the rank at position p of the
 * host-contiguous order (channel 0's ring) sends its block for position p+k
 * and receives the block of position p-k. Early rounds pair near positions,
 * inside a host. Round k travels on channel k mod channels, so that the
 * peers of one rank spread over the rails; both ends of a pair meet in the
 * same round, so they agree on the channel.
 *
 * Rounds overlap: round k's transfers wait only for round k - A2A_WINDOW's,
 * which bounds the messages a rank has in flight without serialising them.
 *
 * In all-to-all-v every pair exchanges a message, zero-length ones too: a
 * count the two ends disagree on then shows as a length mismatch (the
 * transport contract makes it TUTTI_ERR_PROTOCOL), never as messages that
 * match the wrong receives.
 *
 * In place, the blocks to send are first copied to the scratch area (every
 * part reserves the same area, so the copy made in part 0 lasts).
 */
#include "config.h"

#include "coll/ring.h"

/* Rounds in flight at once. */
#define A2A_WINDOW 8

uint64_t tt_a2a_extent(const size_t *counts, const size_t *displs, int n)
{
    uint64_t end = 0;
    for (int i = 0; i < n; i++)
        if (counts[i] > 0)
            end = TT_MAX(end, (uint64_t)displs[i] + counts[i]);
    return end;
}

/* The block this rank sends to @p peer. */
static tt_span_t send_block(const tt_coll_desc_t *d, int peer)
{
    const tt_a2a_layout_t *v = d->layout;
    tt_span_t b = {(uint64_t)peer * d->count, d->count};
    if (v != NULL)
        b = (tt_span_t){v->send_displs[peer], v->send_counts[peer]};
    return b;
}

/* The block this rank receives from @p peer. */
static tt_span_t recv_block(const tt_coll_desc_t *d, int peer)
{
    const tt_a2a_layout_t *v = d->layout;
    tt_span_t b = {(uint64_t)peer * d->count, d->count};
    if (v != NULL)
        b = (tt_span_t){v->recv_displs[peer], v->recv_counts[peer]};
    return b;
}

/* Elements from the start of the send buffer that the sends read. */
static uint64_t send_extent(const tt_coll_desc_t *d)
{
    const tt_a2a_layout_t *v = d->layout;
    if (v == NULL)
        return d->count * (uint64_t)d->nranks;
    return tt_a2a_extent(v->send_counts, v->send_displs, d->nranks);
}

void tt_pairwise_alltoall(const tt_coll_desc_t *d, tt_rounds_t w, tt_schedule_t *s)
{
    int n = d->nranks, channels = TT_MAX(1, TT_MIN(d->channels, TT_MAX_CHANNELS));
    tt_buf_t from = d->in_place ? TT_BUF_SCRATCH : TT_BUF_SEND;
    int32_t sent[A2A_WINDOW], got[A2A_WINDOW], snapshot = TT_NO_STEP;
    size_t es = d->elem_size;
    tt_ring_t g;

    if (d->layout == NULL && d->count == 0)
        return; /* every rank knows there is nothing to move */
    if (d->in_place) {
        uint64_t extent = send_extent(d);
        tt_ref_t copy = tt_sched_scratch(s, extent * es);
        if (w.first == 0 && extent > 0)
            snapshot =
                tt_sched_copy(s, copy, tt_ref(TT_BUF_SEND, 0), extent, TT_NO_STEP, TT_NO_STEP);
    }
    for (int i = 0; i < A2A_WINDOW; i++)
        sent[i] = got[i] = snapshot;
    tt_ring_channel(&g, d, 0);
    for (int k = w.first; k < TT_MIN(w.end, n); k++) {
        int to = tt_ring_rank_at(&g, g.me + k), source = tt_ring_rank_at(&g, g.me - k);
        tt_span_t out = send_block(d, to), in = recv_block(d, source);
        int slot = k % A2A_WINDOW;

        if (k == 0) {
            /* In place, a block that stays where it is needs no copy. */
            if (out.count > 0 && !(d->in_place && out.offset == in.offset))
                tt_sched_copy(s, tt_elem_ref(TT_BUF_RECV, in.offset, es),
                              tt_elem_ref(from, out.offset, es), out.count, snapshot, TT_NO_STEP);
            continue;
        }
        tt_sched_set_channel(s, k % channels);
        int32_t send = tt_sched_send(s, to, tt_elem_ref(from, out.offset, es), out.count, 0,
                                     sent[slot], got[slot]);
        got[slot] = tt_sched_recv(s, source, tt_elem_ref(TT_BUF_RECV, in.offset, es), in.count,
                                  sent[slot], got[slot]);
        sent[slot] = send;
    }
}
