/*
 * Collective algorithms: pure functions from a collective's description to
 * one rank's schedule. No I/O, no communicator: the same code builds plans
 * for the executor, for the in-memory simulator in the tests, and later for
 * the cost model.
 */
#ifndef TT_COLL_COLL_H
#define TT_COLL_COLL_H

#include "plan/schedule.h"
#include "util/config.h"

typedef enum tt_coll_kind {
    TT_COLL_ALLREDUCE,
    TT_COLL_REDUCE_SCATTER,
    TT_COLL_ALLGATHER,
    TT_COLL_BROADCAST,
    TT_COLL_REDUCE,
    TT_COLL_BARRIER,
    TT_COLL_KIND_COUNT,
} tt_coll_kind_t;

/* Names of the collectives ("allreduce", ...). */
extern const char *const tt_coll_kind_names[TT_COLL_KIND_COUNT];

/* Which family of algorithm to use. */
typedef enum tt_coll_algo {
    TT_ALGO_AUTO,      /* by message size (TUTTI_LATENCY_MAX) */
    TT_ALGO_BANDWIDTH, /* pipelined rings and chains */
    TT_ALGO_LATENCY,   /* recursive doubling, binomial trees */
} tt_coll_algo_t;

typedef struct tt_coll_desc {
    tt_coll_kind_t kind;
    uint64_t count; /* elements: per rank for reduce-scatter (recv) and all-gather (send) */
    size_t elem_size;
    int root;     /* broadcast, reduce */
    int in_place; /* as the API defines it per collective */
    int rank, nranks;
} tt_coll_desc_t;

typedef struct tt_coll_settings {
    size_t chunk_bytes;
    size_t pipeline_slots;
    size_t latency_max;
    int algo;
} tt_coll_settings_t;

extern const tt_config_table_t tt_coll_config_table;

/*
 * Build rank d->rank's schedule into @p s (initialised by the caller with
 * tt_schedule_init) and finalize it.
 */
tutti_status_t tt_coll_build(const tt_coll_desc_t *d, const tt_coll_settings_t *settings,
                             tt_schedule_t *s);

/* The algorithm family AUTO resolves to for @p d. */
tt_coll_algo_t tt_coll_choose(const tt_coll_desc_t *d, const tt_coll_settings_t *settings);

/* Algorithms, for tt_coll_build and tests. Each appends to @p s. */
void tt_ring_allreduce(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_ring_reduce_scatter(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_ring_allgather(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_chain_broadcast(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_chain_reduce(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_rd_allreduce(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_binomial_broadcast(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_binomial_reduce(const tt_coll_desc_t *d, const tt_coll_settings_t *t, tt_schedule_t *s);
void tt_dissemination_barrier(const tt_coll_desc_t *d, tt_schedule_t *s);

/* A contiguous run of elements. */
typedef struct tt_span {
    uint64_t offset, count;
} tt_span_t;

/* Block @p i of @p count elements split as evenly as possible into @p n blocks. */
tt_span_t tt_block(uint64_t count, int n, int i);

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

/* Elements per chunk for these settings (at least one). */
uint64_t tt_chunk_elems(const tt_coll_desc_t *d, const tt_coll_settings_t *t);

#endif
