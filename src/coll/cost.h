/*
 * The cost model: predicted time of a collective under an algorithm, from
 * the textbook alpha-beta-gamma formulas and the cluster view (link classes,
 * rails, hosts). It is what selection compares, what tutti-topo prints, and
 * what the schedule simulator (src/plan/simulate.h) is checked against.
 */
#ifndef TT_COLL_COST_H
#define TT_COLL_COST_H

#include "coll/coll.h"

/*
 * Predicted seconds for @p d (algorithm, channels and chunk resolved) on
 * @p cluster (NULL: one host with the default costs).
 */
double tt_cost_predict(const tt_coll_desc_t *d, const tt_cluster_t *cluster);

/* Bytes one rank contributes (the "size" of the call for bandwidth figures). */
uint64_t tt_cost_bytes(const tt_coll_desc_t *d);

/* A pipeline chunk for @p d that balances per-chunk latency against fill time. */
size_t tt_cost_chunk(const tt_coll_desc_t *d, const tt_cluster_t *cluster);

#endif
