/* Choosing and building a collective's schedule; see coll.h. */
#include "config.h"

#include "coll/coll.h"

const char *const tt_coll_kind_names[TT_COLL_KIND_COUNT] = {
    [TT_COLL_ALLREDUCE] = "allreduce", [TT_COLL_REDUCE_SCATTER] = "reduce_scatter",
    [TT_COLL_ALLGATHER] = "allgather", [TT_COLL_BROADCAST] = "broadcast",
    [TT_COLL_REDUCE] = "reduce",       [TT_COLL_BARRIER] = "barrier",
};

static const char *const algo_names[] = {"auto", "bandwidth", "latency", NULL};

static const tt_config_field_t coll_fields[] = {
    {"CHUNK_SIZE", "256K", "bytes per pipeline chunk in ring and chain algorithms", TT_CFG_SIZE,
     offsetof(tt_coll_settings_t, chunk_bytes), NULL},
    {"PIPELINE_SLOTS", "4", "partial-result buffers a chain reduce cycles through (1-16)",
     TT_CFG_SIZE, offsetof(tt_coll_settings_t, pipeline_slots), NULL},
    {"LATENCY_MAX", "64K",
     "messages up to this many bytes use latency algorithms (recursive doubling, binomial trees)",
     TT_CFG_SIZE, offsetof(tt_coll_settings_t, latency_max), NULL},
    {"ALGO", "auto", "algorithm family: auto (by size), bandwidth (rings, chains) or latency",
     TT_CFG_ENUM, offsetof(tt_coll_settings_t, algo), algo_names},
};

const tt_config_table_t tt_coll_config_table = {"coll", coll_fields, TT_ARRAY_SIZE(coll_fields),
                                                sizeof(tt_coll_settings_t)};

tt_span_t tt_block(uint64_t count, int n, int i)
{
    uint64_t base = count / (uint64_t)n, rem = count % (uint64_t)n, ui = (uint64_t)i;
    tt_span_t b = {ui * base + TT_MIN(ui, rem), base + (ui < rem)};
    return b;
}

uint64_t tt_chunk_elems(const tt_coll_desc_t *d, const tt_coll_settings_t *t)
{
    uint64_t chunk = d->elem_size > 0 ? t->chunk_bytes / d->elem_size : 1;
    return chunk > 0 ? chunk : 1;
}

tt_coll_algo_t tt_coll_choose(const tt_coll_desc_t *d, const tt_coll_settings_t *settings)
{
    if (settings->algo != TT_ALGO_AUTO)
        return (tt_coll_algo_t)settings->algo;
    return d->count * d->elem_size <= settings->latency_max ? TT_ALGO_LATENCY : TT_ALGO_BANDWIDTH;
}

tutti_status_t tt_coll_build(const tt_coll_desc_t *d, const tt_coll_settings_t *settings,
                             tt_schedule_t *s)
{
    int latency = tt_coll_choose(d, settings) == TT_ALGO_LATENCY;

    switch (d->kind) {
    case TT_COLL_ALLREDUCE: (latency ? tt_rd_allreduce : tt_ring_allreduce)(d, settings, s); break;
    case TT_COLL_REDUCE_SCATTER: tt_ring_reduce_scatter(d, settings, s); break;
    case TT_COLL_ALLGATHER: tt_ring_allgather(d, settings, s); break;
    case TT_COLL_BROADCAST:
        (latency ? tt_binomial_broadcast : tt_chain_broadcast)(d, settings, s);
        break;
    case TT_COLL_REDUCE: (latency ? tt_binomial_reduce : tt_chain_reduce)(d, settings, s); break;
    case TT_COLL_BARRIER: tt_dissemination_barrier(d, s); break;
    default: return TUTTI_ERR_INVALID_ARG;
    }
    return tt_schedule_finalize(s);
}
