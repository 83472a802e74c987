/*
 * A call's description as a communicator would make and resolve it, and how
 * large all ranks' plans of it are: what plan, draw and simulate share.
 */
#include "config.h"

#include "topo_cmd.h"

#include "coll/cost.h"
#include "coll/ring.h"
#include "coll/select.h"

#include <stdio.h>
#include <string.h>

#define SAMPLE_RANKS 8 /* plans built to estimate a plan's total size */

double busbw_factor(tt_coll_kind_t kind, int n)
{
    switch (kind) {
    case TT_COLL_ALLREDUCE: return 2.0 * (n - 1) / n;
    case TT_COLL_REDUCE_SCATTER:
    case TT_COLL_ALLGATHER:
    case TT_COLL_ALLTOALL:
    case TT_COLL_ALLTOALLV: return (double)(n - 1) / n;
    case TT_COLL_BROADCAST:
    case TT_COLL_REDUCE: return 1.0;
    default: return 0;
    }
}

tt_coll_desc_t make_desc(tt_coll_kind_t kind, uint64_t bytes, size_t elem, int root,
                         const tt_cluster_t *c)
{
    tt_coll_desc_t d;
    memset(&d, 0, sizeof(d));
    d.kind = kind;
    d.elem_size = elem;
    d.nranks = c->nranks;
    d.root = root;
    d.count = kind == TT_COLL_BARRIER ? 0 : bytes / elem;
    /* Reduce-scatter, all-gather and all-to-all take a count per rank. */
    if (kind == TT_COLL_REDUCE_SCATTER || kind == TT_COLL_ALLGATHER || kind == TT_COLL_ALLTOALL)
        d.count /= (uint64_t)c->nranks;
    d.cluster = c;
    return d;
}

int algo_usable(tt_algo_t algo, tt_coll_kind_t kind, const tt_cluster_t *c)
{
    if (!tt_algo_supports(algo, kind)) {
        fprintf(stderr, "tutti-topo: %s has no %s algorithm\n", tt_coll_kind_names[kind],
                tt_algo_names[algo]);
        return 0;
    }
    if (algo == TT_ALGO_HIER && c->ranks_per_host == 0) {
        fprintf(stderr, "tutti-topo: hier needs hosts with the same number of ranks\n");
        return 0;
    }
    return 1;
}

const char *resolve(tt_coll_desc_t *d, const tt_cluster_t *c, tt_algo_t algo, size_t chunk,
                    int channels)
{
    tt_selector_t sel;
    const char *why;

    if (tt_selector_init(&sel, NULL, c) != TUTTI_OK) {
        fprintf(stderr, "tutti-topo: bad TUTTI_* collective settings (see above)\n");
        return NULL;
    }
    why = tt_select(&sel, d);
    if (algo != TT_ALGO_AUTO) {
        if (algo != d->algo) {
            d->algo = algo;
            d->chunk_bytes =
                sel.settings.chunk_bytes > 0 ? sel.settings.chunk_bytes : tt_cost_chunk(d, c);
        }
        why = "--algo";
    }
    if (channels > 0)
        d->channels = TT_MIN(channels, TT_MAX_CHANNELS);
    if (chunk > 0)
        d->chunk_bytes = chunk;
    d->cluster = c;
    tt_selector_fini(&sel);
    return why;
}

int estimate_steps(tt_coll_desc_t d, uint64_t *total_p, uint64_t *max_p, uint64_t *part_max_p)
{
    uint64_t most = 0, part_most = 0;
    int n = d.nranks, samples = TT_MIN(n, SAMPLE_RANKS), nparts = tt_coll_parts(&d);

    for (int k = 0; k < samples; k++) {
        uint64_t steps = 0;
        d.rank = (int)((int64_t)k * (n - 1) / TT_MAX(samples - 1, 1));
        for (int part = 0; part < nparts; part++) {
            tt_schedule_t s;
            tutti_status_t status;
            tt_schedule_init(&s, d.elem_size);
            status = tt_coll_build_part(&d, part, &s);
            steps += (uint64_t)s.nsteps;
            part_most = TT_MAX(part_most, (uint64_t)s.nsteps);
            tt_schedule_fini(&s);
            if (status != TUTTI_OK) {
                fprintf(stderr, "tutti-topo: cannot build rank %d's plan: %s\n", d.rank,
                        tutti_status_string(status));
                return 1;
            }
        }
        most = TT_MAX(most, steps);
    }
    *max_p = most;
    *total_p = most * (uint64_t)n;
    if (part_max_p != NULL)
        *part_max_p = part_most;
    return 0;
}
