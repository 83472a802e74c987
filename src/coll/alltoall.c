/*
 * All-to-all and all-to-all-v by pairwise exchange. Round 0 copies this
 * rank's own block; in round k (1..n-1) the rank at position p of the
 * host-contiguous order (channel 0's ring) sends its block for position p+k
 * and receives the block of position p-k. Early rounds pair near positions,
 * inside a host. Round k travels on channel k mod channels, so that the
 * peers of one rank spread over the rails; both ends of a pair meet in the
 * same round, so they agree on the channel. A large block between two hosts
 * is cut into one piece per channel, piece j on channel k + j, so that even
 * a pair alone (two ranks, or the last rounds) uses every rail; both ends
 * cut by the same rule (the block's size and whether the pair spans hosts).
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
 *
 * Bruck's algorithm (small all-to-alls): ceil(log2 n) rounds instead of
 * n-1, each moving about half of the data. The blocks are rotated into a
 * scratch array so that slot i holds the block for the rank i positions
 * on; round b sends every slot whose index has bit b set to the rank 2^b
 * positions on, which stores it in the same slot. After the last round
 * slot i holds the block from the rank i positions back, and a last pass
 * puts each block where the receive buffer wants it. Slots with bit b set
 * come in runs of 2^b, so packing a round's slots into one message takes
 * n/2^(b+1) copies: O(n) steps in all.
 */
#include "config.h"

#include "coll/ring.h"

#include <stdlib.h>

/* Rounds in flight at once. */
#define A2A_WINDOW 8

/* Smallest piece when a block between hosts is cut over the channels. */
#define A2A_PIECE_MIN ((uint64_t)128 << 10)

uint64_t tt_a2a_extent(const size_t *counts, const size_t *displs, int n)
{
    uint64_t end = 0;
    for (int i = 0; i < n; i++)
        if (counts[i] > 0)
            end = TT_MAX(end, (uint64_t)displs[i] + counts[i]);
    return end;
}

tt_span_t tt_a2a_send_block(const tt_coll_desc_t *d, int peer)
{
    const tt_a2a_layout_t *v = d->layout;
    tt_span_t b = {(uint64_t)peer * d->count, d->count};
    if (v != NULL)
        b = (tt_span_t){v->send_displs[peer], v->send_counts[peer]};
    return b;
}

tt_span_t tt_a2a_recv_block(const tt_coll_desc_t *d, int peer)
{
    const tt_a2a_layout_t *v = d->layout;
    tt_span_t b = {(uint64_t)peer * d->count, d->count};
    if (v != NULL)
        b = (tt_span_t){v->recv_displs[peer], v->recv_counts[peer]};
    return b;
}

uint64_t tt_a2a_send_extent(const tt_coll_desc_t *d)
{
    const tt_a2a_layout_t *v = d->layout;
    if (v == NULL)
        return d->count * (uint64_t)d->nranks;
    return tt_a2a_extent(v->send_counts, v->send_displs, d->nranks);
}

/*
 * Into how many pieces, one per channel, the block of @p count elements
 * between @p a and @p b is cut: all the channels for a large block between
 * hosts, else 1. The same answer at both ends of the pair.
 */
static int a2a_pieces(const tt_coll_desc_t *d, int channels, int a, int b, uint64_t count)
{
    const tt_cluster_t *c = d->cluster;

    if (channels < 2 || c == NULL || c->nranks != d->nranks ||
        tt_cluster_link(c, a, b) != TT_LINK_NET ||
        count * d->elem_size < (uint64_t)channels * A2A_PIECE_MIN)
        return 1;
    return channels;
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
        uint64_t extent = tt_a2a_send_extent(d);
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
        tt_span_t out = tt_a2a_send_block(d, to), in = tt_a2a_recv_block(d, source);
        int slot = k % A2A_WINDOW;

        if (k == 0) {
            /* In place, a block that stays where it is needs no copy. */
            if (out.count > 0 && !(d->in_place && out.offset == in.offset))
                tt_sched_copy(s, tt_elem_ref(TT_BUF_RECV, in.offset, es),
                              tt_elem_ref(from, out.offset, es), out.count, snapshot, TT_NO_STEP);
            continue;
        }
        int nout = a2a_pieces(d, channels, d->rank, to, out.count);
        int nin = a2a_pieces(d, channels, source, d->rank, in.count);
        int32_t sends[TT_MAX_CHANNELS], recvs[TT_MAX_CHANNELS];
        for (int j = 0; j < TT_MAX(nout, nin); j++) {
            tt_span_t po = tt_sub_block(out, nout, j);
            tt_span_t pi = tt_sub_block(in, nin, j);
            sends[j] = recvs[j] = TT_NO_STEP;
            tt_sched_set_channel(s, (k + j) % channels);
            if (j < nout)
                sends[j] = tt_sched_send(s, to, tt_elem_ref(from, po.offset, es), po.count, 0,
                                         sent[slot], got[slot]);
            if (j < nin)
                recvs[j] = tt_sched_recv(s, source, tt_elem_ref(TT_BUF_RECV, pi.offset, es),
                                         pi.count, sent[slot], got[slot]);
        }
        sent[slot] = nout == 1 ? sends[0] : tt_sched_join(s, sends, (size_t)nout);
        got[slot] = nin == 1 ? recvs[0] : tt_sched_join(s, recvs, (size_t)nin);
    }
}

/* Bruck round for bit @p bit: pack, exchange, unpack; returns the step that ends it. */
static int32_t bruck_round(const tt_coll_desc_t *d, tt_schedule_t *s, const tt_ring_t *g, int bit,
                           tt_ref_t slots, tt_ref_t packed, tt_ref_t arrived, int32_t ready,
                           int32_t *copies)
{
    int n = d->nranks, step = 1 << bit, nruns = 0;
    size_t es = d->elem_size;
    uint64_t moved = 0;
    int32_t sent, got, both[2];

    /* Pack: the runs of slots with this bit set, one after another. */
    for (int i = step; i < n; i += 2 * step) {
        uint64_t len = (uint64_t)TT_MIN(step, n - i) * d->count;
        copies[nruns++] =
            tt_sched_copy(s, tt_ref_add(packed, moved * es),
                          tt_ref_add(slots, (uint64_t)i * d->count * es), len, ready, TT_NO_STEP);
        moved += len;
    }
    tt_sched_set_channel(s, bit % TT_MAX(1, TT_MIN(d->channels, TT_MAX_CHANNELS)));
    sent = tt_sched_send(s, tt_ring_peer(g, step), packed, moved, 0,
                         tt_sched_join(s, copies, (size_t)nruns), TT_NO_STEP);
    got = tt_sched_recv(s, tt_ring_peer(g, -step), arrived, moved, ready, TT_NO_STEP);
    /* Unpack into the same slots, once the packing has read them (the send waited for it). */
    both[0] = got;
    both[1] = sent;
    got = tt_sched_join(s, both, 2);
    nruns = 0;
    moved = 0;
    for (int i = step; i < n; i += 2 * step) {
        uint64_t len = (uint64_t)TT_MIN(step, n - i) * d->count;
        copies[nruns++] = tt_sched_copy(s, tt_ref_add(slots, (uint64_t)i * d->count * es),
                                        tt_ref_add(arrived, moved * es), len, got, TT_NO_STEP);
        moved += len;
    }
    return tt_sched_join(s, copies, (size_t)nruns);
}

void tt_bruck_alltoall(const tt_coll_desc_t *d, tt_schedule_t *s)
{
    int n = d->nranks;
    size_t es = d->elem_size;
    uint64_t block = d->count * es, half = (uint64_t)(n / 2 + 1) * block;
    tt_ref_t slots, packed, arrived;
    int32_t ready, *copies;
    tt_ring_t g;

    if (d->count == 0)
        return;
    copies = malloc((size_t)n * sizeof(*copies));
    if (copies == NULL) {
        s->status = TUTTI_ERR_NO_MEMORY;
        return;
    }
    tt_ring_channel(&g, d, 0);
    slots = tt_sched_scratch(s, (uint64_t)n * block);
    packed = tt_sched_scratch(s, half);
    arrived = tt_sched_scratch(s, half);
    /* Slot i: the block for the rank i positions on. */
    for (int i = 0; i < n; i++)
        copies[i] = tt_sched_copy(
            s, tt_ref_add(slots, (uint64_t)i * block),
            tt_elem_ref(TT_BUF_SEND, (uint64_t)tt_ring_rank_at(&g, g.me + i) * d->count, es),
            d->count, TT_NO_STEP, TT_NO_STEP);
    ready = tt_sched_join(s, copies, (size_t)n);
    for (int bit = 0; (1 << bit) < n; bit++)
        ready = bruck_round(d, s, &g, bit, slots, packed, arrived, ready, copies);
    /* Slot i came from the rank i positions back. */
    for (int i = 0; i < n; i++)
        tt_sched_copy(
            s, tt_elem_ref(TT_BUF_RECV, (uint64_t)tt_ring_rank_at(&g, g.me - i) * d->count, es),
            tt_ref_add(slots, (uint64_t)i * block), d->count, ready, TT_NO_STEP);
    free(copies);
}
