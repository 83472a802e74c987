/*
 * Collective algorithms: pure functions from a collective's description to
 * one rank's schedule. No I/O, no communicator: the same code builds plans
 * for the executor, for the in-memory simulator in the tests, and for the
 * cost model and tutti-topo.
 */
#ifndef TT_COLL_COLL_H
#define TT_COLL_COLL_H

#include "plan/schedule.h"
#include "topo/cluster.h"
#include "util/config.h"

typedef enum tt_coll_kind {
    TT_COLL_ALLREDUCE,
    TT_COLL_REDUCE_SCATTER,
    TT_COLL_ALLGATHER,
    TT_COLL_BROADCAST,
    TT_COLL_REDUCE,
    TT_COLL_BARRIER,
    TT_COLL_ALLTOALL,
    TT_COLL_ALLTOALLV,
    TT_COLL_P2P, /* a group of sends and receives (only the ranks involved take part) */
    TT_COLL_KIND_COUNT,
} tt_coll_kind_t;

/* Names of the collectives ("allreduce", ...). */
extern const char *const tt_coll_kind_names[TT_COLL_KIND_COUNT];

typedef enum tt_algo {
    TT_ALGO_AUTO,          /* let the cost model choose */
    TT_ALGO_RING,          /* rings, host-contiguous, one per channel (allreduce, RS, AG) */
    TT_ALGO_TREE,          /* double binary tree (allreduce) */
    TT_ALGO_HIER,          /* allreduce: reduce-scatter in the host, ring across hosts, all-gather;
                              all-to-all: aggregated per host pair */
    TT_ALGO_RD,            /* recursive doubling (allreduce) */
    TT_ALGO_CHAIN,         /* pipelined chain (broadcast, reduce) */
    TT_ALGO_BINOMIAL,      /* binomial tree (broadcast, reduce) */
    TT_ALGO_DISSEMINATION, /* barrier */
    TT_ALGO_PAIRWISE,      /* pairwise exchange (all-to-all, all-to-all-v) */
    TT_ALGO_DIRECT,        /* each message as it is (point-to-point) */
    TT_ALGO_BRUCK,         /* log-step all-to-all for small blocks */
    TT_ALGO_COUNT,
} tt_algo_t;

/* Names of the algorithms ("ring", ...), NULL-terminated. */
extern const char *const tt_algo_names[TT_ALGO_COUNT + 1];

/* 1 if @p algo implements @p kind. */
int tt_algo_supports(tt_algo_t algo, tt_coll_kind_t kind);

/*
 * All-to-all-v: elements this rank sends to and receives from each rank,
 * and where they start in its buffers (arrays of nranks entries, in
 * elements). Not owned: the caller keeps them alive while the plan runs.
 */
typedef struct tt_a2a_layout {
    const size_t *send_counts, *send_displs;
    const size_t *recv_counts, *recv_displs;
} tt_a2a_layout_t;

/* One message of a point-to-point group, in bytes. */
typedef struct tt_p2p_msg {
    int send;        /* 1: to peer; 0: from peer */
    int peer;        /* may be this rank: its sends and receives pair up in order */
    uint64_t offset; /* from the send buffer's base (sends) or the receive buffer's */
    uint64_t bytes;
} tt_p2p_msg_t;

/* A point-to-point group: its messages in the order they were posted. */
typedef struct tt_p2p_list {
    const tt_p2p_msg_t *msgs;
    size_t n;
} tt_p2p_list_t;

/* One rank's part of one collective, everything the schedule depends on. */
typedef struct tt_coll_desc {
    tt_coll_kind_t kind;
    /* elements: per rank for reduce-scatter (recv) and all-gather (send), per
     * peer for all-to-all; all it sends (informational) for all-to-all-v */
    uint64_t count;
    size_t elem_size;
    int root;     /* broadcast, reduce */
    int in_place; /* as the API defines it per collective */
    int rank, nranks;
    tt_algo_t algo;              /* resolved: never AUTO */
    int channels;                /* rings: parallel channels, >= 1 */
    size_t chunk_bytes;          /* pipeline chunk */
    int pipeline_slots;          /* chain reduce: partial buffers it cycles through */
    uint32_t part_steps;         /* build and run in parts of about this many steps (0: whole) */
    const tt_cluster_t *cluster; /* NULL: all ranks on one host, in rank order */
    /* hierarchical all-to-all-v: host pairs whose blocks average at most this many bytes
     * are aggregated, the others exchange rank to rank */
    uint64_t aggregate_bytes;
    /* all-to-all-v: the counts; NULL means count elements to and from every rank */
    const tt_a2a_layout_t *layout;
    /* point-to-point: the messages (read while building; plans come in one part) */
    const tt_p2p_list_t *p2p;
    /* hierarchical all-to-all-v: the count rows its part 0 swaps within the host
     * (see tt_a2a_host_counts_len); part 1 is built from them */
    const uint64_t *host_counts;
} tt_coll_desc_t;

/* A contiguous run of elements. */
typedef struct tt_span {
    uint64_t offset, count;
} tt_span_t;

/*
 * Plans in parts. Ring-like algorithms take a round (one ring step) per
 * rank, so a whole plan for a huge communicator holds O(n) steps. Built in
 * parts instead, a plan costs the same memory at any n: part p holds rounds
 * [first, end), this rank runs each part to completion before building the
 * next, and every rank cuts at the same rounds (the cut depends on the
 * description only, not the rank), so a part's messages all match within
 * it. Other algorithms have O(log n) steps and come in one part.
 */
typedef struct tt_rounds {
    int first, end;
} tt_rounds_t;

/* How many parts @p d's plan comes in (1 when d->part_steps is 0 or the plan is small). */
int tt_coll_parts(const tt_coll_desc_t *d);

/* Build part @p part of rank d->rank's plan into @p s (initialised by the caller), finalized. */
tutti_status_t tt_coll_build_part(const tt_coll_desc_t *d, int part, tt_schedule_t *s);

/* Build the whole plan as one schedule, whatever d->part_steps says. */
tutti_status_t tt_coll_build(const tt_coll_desc_t *d, tt_schedule_t *s);

/*
 * The algorithms, for tt_coll_build and tests. Each appends to @p s; those
 * taking @p rounds append only the steps of those rounds.
 */
void tt_ring_allreduce(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s);
void tt_ring_reduce_scatter(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s);
void tt_ring_allgather(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s);
void tt_tree_allreduce(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_hier_allreduce(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s);
void tt_chain_broadcast(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_chain_reduce(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_rd_allreduce(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_binomial_broadcast(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_binomial_reduce(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_dissemination_barrier(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_pairwise_alltoall(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s);
void tt_direct_p2p(const tt_coll_desc_t *d, tt_schedule_t *s);

/*
 * A point-to-point group's messages from rank @p rank to itself pair up in
 * order, the k-th send with the k-th receive. Returns the index of the
 * first receive from itself at or after *at and moves *at past it, or
 * l->n if there is none.
 */
size_t tt_p2p_next_self_recv(const tt_p2p_list_t *l, int rank, size_t *at);
void tt_bruck_alltoall(const tt_coll_desc_t *d, tt_schedule_t *s);
void tt_hier_alltoall(const tt_coll_desc_t *d, tt_rounds_t rounds, tt_schedule_t *s);

/* Elements from a buffer's start that @p n blocks (counts, displacements) reach. */
uint64_t tt_a2a_extent(const size_t *counts, const size_t *displs, int n);

/* All-to-all(-v): the block this rank sends to @p peer, and the one it receives from @p peer. */
tt_span_t tt_a2a_send_block(const tt_coll_desc_t *d, int peer);
tt_span_t tt_a2a_recv_block(const tt_coll_desc_t *d, int peer);

/* All-to-all(-v): elements from the start of the send buffer that the sends read. */
uint64_t tt_a2a_send_extent(const tt_coll_desc_t *d);

/*
 * Hierarchical all-to-all-v's count rows: the plan owns them (the schedule
 * reaches them as TT_BUF_PLAN) and points d->host_counts at them. There is
 * a row of 2n counts per local rank: what it sends to each rank, then what
 * it receives from each. tt_a2a_host_counts_len is how many counts (0 when
 * @p d's plan needs none); tt_a2a_host_counts_init fills this rank's row,
 * and part 0 of the plan fetches the others.
 */
size_t tt_a2a_host_counts_len(const tt_coll_desc_t *d);
void tt_a2a_host_counts_init(const tt_coll_desc_t *d, uint64_t *rows);

/* ------------------------------------------------------------------------ */
/* Helpers shared by the algorithms                                         */
/* ------------------------------------------------------------------------ */

/* Block @p i of @p count elements split as evenly as possible into @p n blocks. */
tt_span_t tt_block(uint64_t count, int n, int i);

/* Block @p i of @p span split @p n ways. */
static inline tt_span_t tt_sub_block(tt_span_t span, int n, int i)
{
    tt_span_t b = tt_block(span.count, n, i);
    b.offset += span.offset;
    return b;
}

/* Number of chunks of at most @p chunk elements in @p span (0 for an empty span). */
static inline uint64_t tt_nchunks(tt_span_t span, uint64_t chunk)
{
    return TT_DIV_ROUND_UP(span.count, chunk);
}

/* Chunk @p c of @p span. */
static inline tt_span_t tt_chunk(tt_span_t span, uint64_t chunk, uint64_t c)
{
    tt_span_t out = {span.offset + c * chunk, TT_MIN(chunk, span.count - c * chunk)};
    return out;
}

/* Elements per chunk for @p d (at least one). */
uint64_t tt_chunk_elems(const tt_coll_desc_t *d);

/* Where element @p elem of buffer @p buf is. */
static inline tt_ref_t tt_elem_ref(tt_buf_t buf, uint64_t elem, size_t elem_size)
{
    return tt_ref(buf, elem * elem_size);
}

static inline int tt_mod(int a, int n)
{
    return ((a % n) + n) % n;
}

/*
 * The order ranks take in ring @p channel: host after host (hosts in order),
 * each host's ranks rotated so that the one on rail (channel mod rails) comes
 * last and carries the channel's traffic to the next host. Without a
 * cluster, rank order. @p order receives nranks ranks.
 */
void tt_ring_order(const tt_coll_desc_t *d, int channel, int *order);

#endif
