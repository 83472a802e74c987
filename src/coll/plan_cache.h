/*
 * Plans (built schedules) cached per communicator, keyed by everything the
 * schedule depends on, so that repeated calls (the common case in training:
 * the same buckets every step) skip building. Plans are reference-counted:
 * an operation keeps its plan alive even if the cache evicts it meanwhile.
 */
#ifndef TT_COLL_PLAN_CACHE_H
#define TT_COLL_PLAN_CACHE_H

#include "coll/coll.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct tt_plan {
    tt_coll_desc_t desc;
    tt_schedule_t sched;    /* the whole schedule, or its first part */
    int nparts;             /* see tt_coll_parts() */
    tt_a2a_layout_t layout; /* desc.layout points here when the call has one */
    uint64_t *host_counts;  /* desc.host_counts: TT_BUF_PLAN (per-call plans only) */
    atomic_int refs;
} tt_plan_t;

#define TT_PLAN_CACHE_SIZE 32

typedef struct tt_plan_cache {
    pthread_mutex_t lock;
    tt_plan_t *plans[TT_PLAN_CACHE_SIZE];
    uint64_t last_used[TT_PLAN_CACHE_SIZE];
    uint64_t clock;
    int mru; /* the slot of the last hit */
} tt_plan_cache_t;

void tt_plan_cache_init(tt_plan_cache_t *c);
void tt_plan_cache_fini(tt_plan_cache_t *c);

/*
 * The plan for @p d (fully resolved by tt_select), built if not cached;
 * @p built_p (optional) says whether it had to be. Release it with
 * tt_plan_release().
 */
tutti_status_t tt_plan_get(tt_plan_cache_t *c, const tt_coll_desc_t *d, tt_plan_t **plan_p,
                           int *built_p);

/*
 * Build a plan for @p d outside any cache (for calls whose plan depends on
 * more than the description's fields, such as all-to-all-v's counts).
 * Release it with tt_plan_release().
 */
tutti_status_t tt_plan_build(const tt_coll_desc_t *d, tt_plan_t **plan_p);

void tt_plan_release(tt_plan_t *plan);

/* Build part @p part (1..nparts-1) of @p plan (a tt_plan_t) into @p s, for the engine. */
tutti_status_t tt_plan_build_part(const void *plan, int part, tt_schedule_t *s);

#endif
