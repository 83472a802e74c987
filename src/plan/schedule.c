/* Building schedules; see schedule.h. */
#include "config.h"

#include "plan/schedule.h"

#include <stdlib.h>
#include <string.h>

void tt_schedule_init(tt_schedule_t *s, size_t elem_size)
{
    memset(s, 0, sizeof(*s));
    s->elem_size = elem_size;
    s->status = TUTTI_OK;
}

void tt_schedule_fini(tt_schedule_t *s)
{
    free(s->steps);
    free(s->deps);
    free(s->succ_start);
    free(s->succ);
    free(s->link_next);
    free(s->initial_pending);
    memset(s, 0, sizeof(*s));
}

static int add_dep(tt_schedule_t *s, int32_t dep)
{
    if (dep == TT_NO_STEP)
        return 1;
    if (s->ndeps == s->deps_cap) {
        uint32_t cap = s->deps_cap ? s->deps_cap * 2 : 32;
        int32_t *grown = realloc(s->deps, cap * sizeof(*grown));
        if (grown == NULL) {
            s->status = TUTTI_ERR_NO_MEMORY;
            return 0;
        }
        s->deps = grown;
        s->deps_cap = cap;
    }
    s->deps[s->ndeps++] = dep;
    return 1;
}

/* Append @p step depending on @p deps; its dependency run starts where the array ends. */
static int32_t append_with(tt_schedule_t *s, tt_step_t *step, const int32_t *deps, size_t n)
{
    step->channel = s->channel;
    step->dep_start = s->ndeps;
    for (size_t i = 0; i < n; i++)
        if (!add_dep(s, deps[i]))
            return TT_NO_STEP;
    step->ndeps = s->ndeps - step->dep_start;
    if (s->status != TUTTI_OK)
        return TT_NO_STEP;
    if (s->nsteps == s->cap) {
        int32_t cap = s->cap ? s->cap * 2 : 16;
        tt_step_t *grown = realloc(s->steps, (size_t)cap * sizeof(*grown));
        if (grown == NULL) {
            s->status = TUTTI_ERR_NO_MEMORY;
            return TT_NO_STEP;
        }
        s->steps = grown;
        s->cap = cap;
    }
    s->steps[s->nsteps] = *step;
    return s->nsteps++;
}

static int32_t append(tt_schedule_t *s, tt_step_t *step, int32_t dep0, int32_t dep1)
{
    int32_t deps[2] = {dep0, dep1};
    return append_with(s, step, deps, 2);
}

static tt_step_t make_step(tt_step_kind_t kind, uint64_t count)
{
    tt_step_t step;
    memset(&step, 0, sizeof(step));
    step.kind = (uint8_t)kind;
    step.peer = -1;
    step.count = count;
    return step;
}

int32_t tt_sched_send(tt_schedule_t *s, int peer, tt_ref_t src, uint64_t count, unsigned flags,
                      int32_t dep0, int32_t dep1)
{
    tt_step_t step = make_step(TT_STEP_SEND, count);
    step.flags = (uint8_t)flags;
    step.peer = peer;
    step.src = src;
    return append(s, &step, dep0, dep1);
}

int32_t tt_sched_recv(tt_schedule_t *s, int peer, tt_ref_t dst, uint64_t count, int32_t dep0,
                      int32_t dep1)
{
    tt_step_t step = make_step(TT_STEP_RECV, count);
    step.peer = peer;
    step.dst = dst;
    return append(s, &step, dep0, dep1);
}

int32_t tt_sched_recv_reduce(tt_schedule_t *s, int peer, tt_ref_t dst, tt_ref_t src, uint64_t count,
                             unsigned flags, int32_t dep0, int32_t dep1)
{
    tt_step_t step = make_step(TT_STEP_RECV_REDUCE, count);
    step.flags = (uint8_t)flags;
    step.peer = peer;
    step.dst = dst;
    step.src = src;
    return append(s, &step, dep0, dep1);
}

int32_t tt_sched_reduce(tt_schedule_t *s, tt_ref_t dst, tt_ref_t a, tt_ref_t b, uint64_t count,
                        unsigned flags, int32_t dep0, int32_t dep1)
{
    tt_step_t step = make_step(TT_STEP_REDUCE, count);
    step.flags = (uint8_t)flags;
    step.dst = dst;
    step.src = a;
    step.src2 = b;
    return append(s, &step, dep0, dep1);
}

int32_t tt_sched_copy(tt_schedule_t *s, tt_ref_t dst, tt_ref_t src, uint64_t count, int32_t dep0,
                      int32_t dep1)
{
    tt_step_t step = make_step(TT_STEP_COPY, count);
    step.dst = dst;
    step.src = src;
    return append(s, &step, dep0, dep1);
}

int32_t tt_sched_join(tt_schedule_t *s, const int32_t *deps, size_t n)
{
    tt_step_t step = make_step(TT_STEP_JOIN, 0);
    return append_with(s, &step, deps, n);
}

tt_ref_t tt_sched_scratch(tt_schedule_t *s, size_t bytes)
{
    tt_ref_t where = tt_ref(TT_BUF_SCRATCH, s->scratch_bytes);
    s->scratch_bytes += TT_ALIGN_UP(bytes, TT_CACHE_LINE);
    return where;
}

void tt_slot_ring_init(tt_slot_ring_t *ring, tt_schedule_t *s, int nslots, size_t slot_bytes)
{
    if (nslots > TT_SLOT_RING_MAX)
        nslots = TT_SLOT_RING_MAX;
    ring->slot_bytes = TT_ALIGN_UP(slot_bytes, TT_CACHE_LINE);
    ring->nslots = nslots;
    ring->next = 0;
    ring->base = tt_sched_scratch(s, ring->slot_bytes * (size_t)nslots);
    for (int i = 0; i < nslots; i++)
        ring->last_use[i] = TT_NO_STEP;
}

int tt_slot_ring_take(tt_slot_ring_t *ring, tt_ref_t *ref_p, int32_t *wait_p)
{
    int slot = ring->next;
    ring->next = (ring->next + 1) % ring->nslots;
    *ref_p = tt_ref_add(ring->base, (uint64_t)slot * ring->slot_bytes);
    *wait_p = ring->last_use[slot];
    return slot;
}

/* Link order: a transfer waits for the previous one of the same kind to the same peer. */
static tutti_status_t link_order(tt_schedule_t *s)
{
    /* Walk backwards remembering, per (kind, peer), the next transfer seen. */
    int32_t maxpeer = -1;
    int32_t *next_of;

    for (int32_t i = 0; i < s->nsteps; i++)
        if (s->steps[i].peer > maxpeer)
            maxpeer = s->steps[i].peer;
    next_of = malloc(2 * (size_t)(maxpeer + 1) * sizeof(int32_t) + 1);
    if (next_of == NULL)
        return TUTTI_ERR_NO_MEMORY;
    for (int32_t p = 0; p < 2 * (maxpeer + 1); p++)
        next_of[p] = TT_NO_STEP;
    for (int32_t i = s->nsteps - 1; i >= 0; i--) {
        const tt_step_t *st = &s->steps[i];
        int32_t *slot;
        s->link_next[i] = TT_NO_STEP;
        if (st->kind != TT_STEP_SEND && st->kind != TT_STEP_RECV && st->kind != TT_STEP_RECV_REDUCE)
            continue;
        slot = &next_of[2 * st->peer + (st->kind != TT_STEP_SEND)];
        s->link_next[i] = *slot;
        if (*slot != TT_NO_STEP)
            s->initial_pending[*slot]++;
        *slot = i;
    }
    free(next_of);
    return TUTTI_OK;
}

size_t tt_schedule_bytes(const tt_schedule_t *s)
{
    size_t n = (size_t)s->nsteps, bytes = (size_t)s->cap * sizeof(tt_step_t);
    bytes += (size_t)s->deps_cap * sizeof(int32_t);
    if (s->succ_start != NULL) /* successors, link order, pending counts */
        bytes += (3 * (n + 1) + (size_t)s->succ_start[n]) * sizeof(int32_t);
    return bytes;
}

tutti_status_t tt_schedule_finalize(tt_schedule_t *s)
{
    size_t n = (size_t)s->nsteps;
    int32_t *fill;

    if (s->status != TUTTI_OK)
        return s->status;
    s->succ_start = calloc(n + 1, sizeof(int32_t));
    s->link_next = malloc(n * sizeof(int32_t) + 1);
    s->initial_pending = calloc(n + 1, sizeof(int32_t));
    fill = calloc(n + 1, sizeof(int32_t));
    if (s->succ_start == NULL || s->link_next == NULL || s->initial_pending == NULL || fill == NULL)
        goto err_nomem;
    /* Count successors, then lay them out (CSR). */
    for (size_t i = 0; i < n; i++) {
        const tt_step_t *st = &s->steps[i];
        for (uint32_t d = 0; d < st->ndeps; d++) {
            s->succ_start[s->deps[st->dep_start + d] + 1]++;
            s->initial_pending[i]++;
        }
    }
    for (size_t i = 0; i < n; i++)
        s->succ_start[i + 1] += s->succ_start[i];
    s->succ = malloc((size_t)s->succ_start[n] * sizeof(int32_t) + 1);
    if (s->succ == NULL)
        goto err_nomem;
    for (size_t i = 0; i < n; i++) {
        const tt_step_t *st = &s->steps[i];
        for (uint32_t d = 0; d < st->ndeps; d++) {
            int32_t dep = s->deps[st->dep_start + d];
            s->succ[s->succ_start[dep] + fill[dep]++] = (int32_t)i;
        }
    }
    free(fill);
    return link_order(s);

err_nomem:
    free(fill);
    s->status = TUTTI_ERR_NO_MEMORY;
    return s->status;
}
