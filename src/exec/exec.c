/* Running a schedule; see exec.h. */
#include "config.h"

#include "exec/exec.h"

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tt_exec_init(tt_exec_t *e)
{
    memset(e, 0, sizeof(*e));
    e->status = TUTTI_OK;
}

void tt_exec_fini(tt_exec_t *e)
{
    free(e->pending);
    free(e->ready);
    free(e->xfers);
    tt_exec_init(e);
}

static tutti_status_t reserve(tt_exec_t *e, int32_t nsteps)
{
    int32_t *pending, *ready;
    tt_xfer_t *xfers;

    if (nsteps <= e->capacity)
        return TUTTI_OK;
    pending = realloc(e->pending, (size_t)nsteps * sizeof(*pending));
    if (pending != NULL)
        e->pending = pending;
    ready = realloc(e->ready, (size_t)nsteps * sizeof(*ready));
    if (ready != NULL)
        e->ready = ready;
    xfers = realloc(e->xfers, (size_t)nsteps * sizeof(*xfers));
    if (xfers != NULL)
        e->xfers = xfers;
    if (pending == NULL || ready == NULL || xfers == NULL)
        return TUTTI_ERR_NO_MEMORY;
    e->capacity = nsteps;
    return TUTTI_OK;
}

static inline void *at(const tt_exec_t *e, tt_ref_t r)
{
    /* Zero-length transfers (barriers) may name buffers the caller left NULL. */
    return e->base[r.buf] != NULL ? e->base[r.buf] + r.offset : NULL;
}

static void fail(tt_exec_t *e, tutti_status_t status, int peer)
{
    if (e->status == TUTTI_IN_PROGRESS) {
        e->status = status;
        e->failed_peer = peer;
    }
}

static inline void make_ready(tt_exec_t *e, int32_t i)
{
    e->ready[e->nready++] = i;
}

/* One more condition of step @p i is met. */
static inline void release(tt_exec_t *e, int32_t i)
{
    if (--e->pending[i] == 0)
        make_ready(e, i);
}

static void step_complete(tt_exec_t *e, int32_t i)
{
    const tt_schedule_t *s = e->sched;
    for (int32_t k = s->succ_start[i]; k < s->succ_start[i + 1]; k++)
        release(e, s->succ[k]);
    if (--e->remaining == 0 && e->status == TUTTI_IN_PROGRESS)
        e->status = TUTTI_OK;
}

static inline tt_reduce_fn_t kernel_for(const tt_exec_t *e, const tt_step_t *st)
{
    return (st->flags & TT_STEP_FINAL) ? e->env->reduce_final : e->env->reduce;
}

/* A piece of a RECV_REDUCE arrived: combine it into place while it is hot in cache. */
static void consume_reduce(tt_xfer_t *x, const void *data, size_t offset, size_t len)
{
    tt_exec_t *e = x->owner;
    const tt_step_t *st = &e->sched->steps[x->user];
    char *dst = (char *)at(e, st->dst) + offset;
    const char *local = (const char *)at(e, st->src) + offset;
    uint64_t count = len / e->sched->elem_size;

    if (st->flags & TT_STEP_INCOMING_FIRST)
        kernel_for(e, st)(dst, data, local, count, e->env->divisor);
    else
        kernel_for(e, st)(dst, local, data, count, e->env->divisor);
}

static void post(tt_exec_t *e, int32_t i, const tt_step_t *st)
{
    tt_xfer_t *x = &e->xfers[i];
    tt_transport_t *tl = e->env->route[st->peer];
    tutti_status_t status;

    x->buf = at(e, st->kind == TT_STEP_SEND ? st->src : st->dst);
    x->len = st->count * e->sched->elem_size;
    x->peer = st->peer;
    x->channel = st->channel;
    x->flags = (st->flags & TT_STEP_TO_REDUCE) ? TT_XFER_TO_REDUCE : 0;
    x->tag = e->tag;
    x->consume = st->kind == TT_STEP_RECV_REDUCE ? consume_reduce : NULL;
    x->owner = e;
    x->user = (uint64_t)i;
    status = st->kind == TT_STEP_SEND ? tl->ops->send(tl, x) : tl->ops->recv(tl, x);
    if (status != TUTTI_OK) {
        tt_error("exec: cannot post a transfer to rank %d: %s", st->peer,
                 tutti_status_string(status));
        fail(e, status, st->peer);
        return;
    }
    /* The next transfer on this link may now be posted behind this one. */
    if (e->sched->link_next[i] != TT_NO_STEP)
        release(e, e->sched->link_next[i]);
}

static void run_ready(tt_exec_t *e)
{
    while (e->nready > 0 && e->status == TUTTI_IN_PROGRESS) {
        int32_t i = e->ready[--e->nready];
        const tt_step_t *st = &e->sched->steps[i];

        switch (st->kind) {
        case TT_STEP_SEND:
        case TT_STEP_RECV:
        case TT_STEP_RECV_REDUCE: post(e, i, st); break;
        case TT_STEP_REDUCE:
            kernel_for(e, st)(at(e, st->dst), at(e, st->src), at(e, st->src2), st->count,
                              e->env->divisor);
            step_complete(e, i);
            break;
        case TT_STEP_COPY:
            if (at(e, st->dst) != at(e, st->src))
                memcpy(at(e, st->dst), at(e, st->src), st->count * e->sched->elem_size);
            step_complete(e, i);
            break;
        case TT_STEP_JOIN: step_complete(e, i); break;
        }
    }
}

tutti_status_t tt_exec_start(tt_exec_t *e, const tt_schedule_t *s, void *const base[TT_BUF_COUNT],
                             const tt_exec_env_t *env, uint64_t tag)
{
    TT_CHECK(reserve(e, s->nsteps));
    e->sched = s;
    e->env = env;
    for (int b = 0; b < TT_BUF_COUNT; b++)
        e->base[b] = base[b];
    e->tag = tag;
    e->remaining = s->nsteps;
    e->status = s->nsteps > 0 ? TUTTI_IN_PROGRESS : TUTTI_OK;
    e->nready = 0;
    e->failed_peer = -1;
    if (s->nsteps > 0)
        memcpy(e->pending, s->initial_pending, (size_t)s->nsteps * sizeof(int32_t));
    /* Push in reverse so that the stack pops steps in schedule order. */
    for (int32_t i = s->nsteps - 1; i >= 0; i--)
        if (e->pending[i] == 0)
            make_ready(e, i);
    run_ready(e);
    return TUTTI_OK;
}

void tt_exec_xfer_done(tt_exec_t *e, tt_xfer_t *x)
{
    if (x->status != TUTTI_OK) {
        fail(e, x->status, x->peer);
        return;
    }
    if (e->status != TUTTI_IN_PROGRESS)
        return;
    step_complete(e, (int32_t)x->user);
    run_ready(e);
}

void tt_exec_describe(const tt_exec_t *e, char *out, size_t out_len)
{
    const tt_schedule_t *s = e->sched;
    size_t used = 0;
    int shown = 0, in_flight = 0, waiting = 0;

    out[0] = '\0';
    for (int32_t i = 0; s != NULL && i < s->nsteps; i++) {
        const tt_step_t *st = &s->steps[i];
        int transfer =
            st->kind == TT_STEP_SEND || st->kind == TT_STEP_RECV || st->kind == TT_STEP_RECV_REDUCE;
        if (e->pending[i] > 0) {
            waiting++;
            continue;
        }
        /* Ready transfers are posted at once, so their xfer is this run's. */
        if (!transfer || e->xfers[i].status != TUTTI_IN_PROGRESS)
            continue;
        in_flight++;
        if (shown++ < 4 && used < out_len)
            used += (size_t)snprintf(
                out + used, out_len - used, "%s%s rank %d (%zu B)", shown > 1 ? ", " : "",
                st->kind == TT_STEP_SEND ? "send to" : "recv from", st->peer, e->xfers[i].len);
    }
    if (used < out_len)
        snprintf(out + used, out_len - used, "%s%d transfer%s in flight, %d step%s not started",
                 used > 0 ? "; " : "", in_flight, in_flight == 1 ? "" : "s", waiting,
                 waiting == 1 ? "" : "s");
}
