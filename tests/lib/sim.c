/* The in-memory world; see sim.h. */
#include "config.h"

#include "tests/lib/sim.h"

#include <stdlib.h>
#include <string.h>

typedef struct sim_tl {
    tt_transport_t super;
    tt_sim_t *sim;
    int rank;
} sim_tl_t;

struct tt_sim {
    int n;
    size_t piece;
    sim_tl_t *tls;
    tt_xfer_queue_t *sends;     /* [from * n + to]: posted by from, no receive yet */
    tt_xfer_queue_t *recvs;     /* [from * n + to]: posted by to, no send yet */
    tt_xfer_queue_t *completed; /* [rank]: matched transfers to report to their rank */
    uint64_t *bytes;            /* [from * n + to] */
};

static sim_tl_t *of(tt_transport_t *tl)
{
    return (sim_tl_t *)(void *)tl;
}

static void deliver(tt_sim_t *sim, tt_xfer_t *s, tt_xfer_t *r)
{
    if (r->consume == NULL) {
        if (r->len > 0)
            memcpy(r->buf, s->buf, r->len);
        return;
    }
    for (size_t off = 0; off < r->len; off += sim->piece)
        r->consume(r, (const char *)s->buf + off, off,
                   r->len - off < sim->piece ? r->len - off : sim->piece);
}

/*
 * Match send @p s (from @p from) with receive @p r (at @p to): move the data
 * (a pair that disagrees on length, tag or channel fails with
 * TUTTI_ERR_PROTOCOL: transports may give each channel its own link)
 * and queue both completions for their ranks' next progress call. Matching
 * happens when the second of the pair is posted, so a send completes only
 * once its receiver has taken it, and nothing scans idle links.
 */
static void match(tt_sim_t *sim, int from, int to, tt_xfer_t *s, tt_xfer_t *r)
{
    tutti_status_t status = TUTTI_OK;
    if (s->len != r->len || s->tag != r->tag || s->channel != r->channel)
        status = TUTTI_ERR_PROTOCOL;
    else
        deliver(sim, s, r);
    sim->bytes[from * sim->n + to] += r->len;
    s->status = r->status = status;
    tt_xfer_queue_push(&sim->completed[from], s);
    tt_xfer_queue_push(&sim->completed[to], r);
}

static tutti_status_t sim_send(tt_transport_t *tl, tt_xfer_t *x)
{
    tt_sim_t *sim = of(tl)->sim;
    int me = of(tl)->rank;
    tt_xfer_queue_t *waiting;

    if (x->peer < 0 || x->peer >= sim->n || x->peer == me)
        return TUTTI_ERR_INVALID_ARG;
    x->status = TUTTI_IN_PROGRESS;
    waiting = &sim->recvs[me * sim->n + x->peer];
    if (waiting->head != NULL)
        match(sim, me, x->peer, x, tt_xfer_queue_pop(waiting));
    else
        tt_xfer_queue_push(&sim->sends[me * sim->n + x->peer], x);
    return TUTTI_OK;
}

static tutti_status_t sim_recv(tt_transport_t *tl, tt_xfer_t *x)
{
    tt_sim_t *sim = of(tl)->sim;
    int me = of(tl)->rank;
    tt_xfer_queue_t *waiting;

    if (x->peer < 0 || x->peer >= sim->n || x->peer == me)
        return TUTTI_ERR_INVALID_ARG;
    x->status = TUTTI_IN_PROGRESS;
    waiting = &sim->sends[x->peer * sim->n + me];
    if (waiting->head != NULL)
        match(sim, x->peer, me, tt_xfer_queue_pop(waiting), x);
    else
        tt_xfer_queue_push(&sim->recvs[x->peer * sim->n + me], x);
    return TUTTI_OK;
}

static int sim_progress(tt_transport_t *tl, tt_xfer_t **done)
{
    tt_sim_t *sim = of(tl)->sim;
    int me = of(tl)->rank, events = 0;

    while (sim->completed[me].head) {
        tt_xfer_t *x = tt_xfer_queue_pop(&sim->completed[me]);
        tt_xfer_complete(x, x->status, done);
        events++;
    }
    return events;
}

static int sim_check_peers(tt_transport_t *tl, tt_link_event_t *events, int max)
{
    (void)tl;
    (void)events;
    (void)max;
    return 0;
}

static void sim_cancel_all(tt_transport_t *tl, tutti_status_t status, tt_xfer_t **done)
{
    tt_sim_t *sim = of(tl)->sim;
    int me = of(tl)->rank;
    for (int p = 0; p < sim->n; p++) {
        while (sim->sends[me * sim->n + p].head)
            tt_xfer_complete(tt_xfer_queue_pop(&sim->sends[me * sim->n + p]), status, done);
        while (sim->recvs[p * sim->n + me].head)
            tt_xfer_complete(tt_xfer_queue_pop(&sim->recvs[p * sim->n + me]), status, done);
    }
}

static const tt_transport_ops_t sim_ops = {
    .size = sizeof(tt_transport_ops_t),
    .name = "sim",
    .send = sim_send,
    .recv = sim_recv,
    .progress = sim_progress,
    .check_peers = sim_check_peers,
    .cancel_all = sim_cancel_all,
};

tt_sim_t *tt_sim_create(int nranks, size_t piece)
{
    tt_sim_t *sim = calloc(1, sizeof(*sim));
    size_t links = (size_t)nranks * (size_t)nranks;
    sim->n = nranks;
    sim->piece = piece;
    sim->tls = calloc((size_t)nranks, sizeof(*sim->tls));
    sim->sends = calloc(links, sizeof(tt_xfer_queue_t));
    sim->recvs = calloc(links, sizeof(tt_xfer_queue_t));
    sim->completed = calloc((size_t)nranks, sizeof(tt_xfer_queue_t));
    sim->bytes = calloc(links, sizeof(uint64_t));
    for (int r = 0; r < nranks; r++) {
        sim->tls[r].super.ops = &sim_ops;
        sim->tls[r].sim = sim;
        sim->tls[r].rank = r;
    }
    return sim;
}

void tt_sim_destroy(tt_sim_t *sim)
{
    free(sim->tls);
    free(sim->sends);
    free(sim->recvs);
    free(sim->completed);
    free(sim->bytes);
    free(sim);
}

tt_transport_t *tt_sim_transport(tt_sim_t *sim, int rank)
{
    return &sim->tls[rank].super;
}

uint64_t tt_sim_bytes(const tt_sim_t *sim, int from, int to)
{
    return sim->bytes[from * sim->n + to];
}

tutti_status_t tt_sim_run(tt_sim_t *sim, const tt_schedule_t *const *scheds,
                          void *(*bases)[TT_BUF_COUNT], const tt_exec_env_t *envs, unsigned seed)
{
    int n = sim->n, *order = malloc((size_t)n * sizeof(int));
    tt_exec_t *execs = calloc((size_t)n, sizeof(*execs));
    tutti_status_t result = TUTTI_OK;

    for (int r = 0; r < n; r++) {
        order[r] = r;
        tt_exec_init(&execs[r]);
    }
    /* A fixed shuffle per seed: ranks visited in the same scrambled order each round. */
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int r = 0; r < n; r++)
        tt_exec_start(&execs[order[r]], scheds[order[r]], bases[order[r]], &envs[order[r]], 1);
    for (;;) {
        int events = 0, running = 0;
        for (int k = 0; k < n; k++) {
            int r = order[k];
            tt_xfer_t *done = NULL;
            events += sim_progress(&sim->tls[r].super, &done);
            while (done) {
                tt_xfer_t *x = done;
                done = x->next;
                tt_exec_xfer_done(&execs[r], x);
            }
        }
        for (int r = 0; r < n; r++) {
            tutti_status_t st = tt_exec_status(&execs[r]);
            running += st == TUTTI_IN_PROGRESS;
            if (st != TUTTI_OK && st != TUTTI_IN_PROGRESS && result == TUTTI_OK)
                result = st;
        }
        if (running == 0 || result != TUTTI_OK)
            break;
        if (events == 0) {
            result = TUTTI_ERR_INTERNAL;
            break;
        }
    }
    if (result != TUTTI_OK)
        for (int r = 0; r < n; r++) {
            tt_xfer_t *done = NULL;
            sim_cancel_all(&sim->tls[r].super, result, &done);
        }
    for (int r = 0; r < n; r++)
        tt_exec_fini(&execs[r]);
    free(execs);
    free(order);
    return result;
}
