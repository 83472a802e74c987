/* The per-communicator plan cache; see plan_cache.h. */
#include "config.h"

#include "coll/plan_cache.h"

#include <stdlib.h>
#include <string.h>

void tt_plan_cache_init(tt_plan_cache_t *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
}

void tt_plan_release(tt_plan_t *plan)
{
    if (plan != NULL && atomic_fetch_sub(&plan->refs, 1) == 1) {
        tt_schedule_fini(&plan->sched);
        free(plan->host_counts);
        free(plan);
    }
}

void tt_plan_cache_fini(tt_plan_cache_t *c)
{
    for (int i = 0; i < TT_PLAN_CACHE_SIZE; i++)
        tt_plan_release(c->plans[i]);
    pthread_mutex_destroy(&c->lock);
}

static int same_desc(const tt_coll_desc_t *a, const tt_coll_desc_t *b)
{
    return a->kind == b->kind && a->count == b->count && a->elem_size == b->elem_size &&
           a->root == b->root && a->in_place == b->in_place && a->rank == b->rank &&
           a->nranks == b->nranks && a->algo == b->algo && a->channels == b->channels &&
           a->chunk_bytes == b->chunk_bytes && a->pipeline_slots == b->pipeline_slots &&
           a->part_steps == b->part_steps && a->cluster == b->cluster;
}

tutti_status_t tt_plan_build(const tt_coll_desc_t *d, tt_plan_t **plan_p)
{
    tt_plan_t *plan = calloc(1, sizeof(*plan));
    tutti_status_t status;

    if (plan == NULL)
        return TUTTI_ERR_NO_MEMORY;
    plan->desc = *d;
    atomic_init(&plan->refs, 1);
    if (d->layout != NULL) {
        size_t rows = tt_a2a_host_counts_len(d);
        plan->layout = *d->layout;
        plan->desc.layout = &plan->layout;
        if (rows > 0 && (plan->host_counts = calloc(rows, sizeof(uint64_t))) == NULL) {
            tt_plan_release(plan);
            return TUTTI_ERR_NO_MEMORY;
        }
        if (rows > 0)
            tt_a2a_host_counts_init(d, plan->host_counts);
        plan->desc.host_counts = plan->host_counts;
    }
    plan->nparts = tt_coll_parts(d);
    tt_schedule_init(&plan->sched, d->elem_size);
    status = tt_coll_build_part(&plan->desc, 0, &plan->sched);
    if (status != TUTTI_OK) {
        tt_plan_release(plan);
        return status;
    }
    *plan_p = plan;
    return TUTTI_OK;
}

tutti_status_t tt_plan_build_part(const void *plan, int part, tt_schedule_t *s)
{
    return tt_coll_build_part(&((const tt_plan_t *)plan)->desc, part, s);
}

tutti_status_t tt_plan_get(tt_plan_cache_t *c, const tt_coll_desc_t *d, tt_plan_t **plan_p,
                           int *built_p)
{
    int victim = 0;
    tt_plan_t *plan;

    pthread_mutex_lock(&c->lock);
    c->clock++;
    /* Training repeats the same call: try the last hit first. */
    if (c->plans[c->mru] != NULL && same_desc(&c->plans[c->mru]->desc, d)) {
        plan = c->plans[c->mru];
        c->last_used[c->mru] = c->clock;
        atomic_fetch_add(&plan->refs, 1);
        pthread_mutex_unlock(&c->lock);
        *plan_p = plan;
        if (built_p != NULL)
            *built_p = 0;
        return TUTTI_OK;
    }
    for (int i = 0; i < TT_PLAN_CACHE_SIZE; i++) {
        if (c->plans[i] != NULL && same_desc(&c->plans[i]->desc, d)) {
            c->mru = i;
            c->last_used[i] = c->clock;
            atomic_fetch_add(&c->plans[i]->refs, 1);
            *plan_p = c->plans[i];
            pthread_mutex_unlock(&c->lock);
            if (built_p != NULL)
                *built_p = 0;
            return TUTTI_OK;
        }
        if (c->last_used[i] < c->last_used[victim])
            victim = i;
    }
    pthread_mutex_unlock(&c->lock);

    /* Build outside the lock: big schedules take a while. */
    TT_CHECK(tt_plan_build(d, &plan));
    pthread_mutex_lock(&c->lock);
    tt_plan_release(c->plans[victim]);
    c->plans[victim] = plan;
    c->mru = victim;
    c->last_used[victim] = ++c->clock;
    atomic_fetch_add(&plan->refs, 1);
    pthread_mutex_unlock(&c->lock);
    *plan_p = plan;
    if (built_p != NULL)
        *built_p = 1;
    return TUTTI_OK;
}
