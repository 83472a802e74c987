/*
 * The timing simulator; see simulate.h for the model.
 *
 * Data. Each rank's steps are copied into a compact array (32 bytes a step,
 * parts one after another) plus its successor lists, so that the schedules
 * themselves (several times larger) can be freed as soon as they are added.
 * Directed links exist only where some rank sends to another (found when
 * transfers are matched), so memory never grows with the square of the
 * ranks; a link counts the transfers posted at each end, so that posting
 * one need not look at its partner (another rank's memory, a cache miss).
 *
 * Time. Steps that become ready run at the current time from a stack, as in
 * the executor; only what takes time goes through a heap of events keyed by
 * (time, rank, step, kind): a message's arrival and the end of a
 * computation. Equal times are broken by that key, so a run is a pure
 * function of its input. With many ranks nearly every step lives in memory
 * no cache holds: the simulator is bound by memory latency, a few hundred
 * ns a step.
 */
#include "config.h"

#include "plan/simulate.h"

#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/* What sim_step_t.pending holds besides a count of unmet conditions. */
#define STEP_RUNNING (-1) /* a transfer posted, its message on the way; a computation going on */
#define STEP_DONE (-2)

#define MAX_RANKS (1 << 24) /* ranks fit in 24 bits of an event key */

typedef struct sim_step {
    uint64_t bytes;
    int32_t who;       /* transfers: the peer; once matched, the index of their link (-1 none) */
    int32_t partner;   /* transfers: the matching transfer in the peer's steps, -1 if none */
    int32_t link_next; /* the next transfer in the same direction with the same peer, or -1 */
    int32_t pending;   /* unmet conditions, or STEP_RUNNING / STEP_DONE */
    uint32_t succ;     /* successors: rank's succ[succ .. the next step's succ) */
    uint8_t kind;
    uint8_t channel; /* a matched receive takes its send's (the route follows the sender) */
    uint8_t flags;   /* STEP_MISMATCH, STEP_GATED */
} sim_step_t;

/* A matched receive whose size differs from its send's. */
#define STEP_MISMATCH 1u
/* Ready as soon as its part opens (its pending count holds the part's gate). */
#define STEP_GATED 2u

typedef struct sim_rank {
    sim_step_t *steps; /* every part's, one after another */
    int32_t *succ;
    int32_t nsteps;
    uint32_t nsucc;
    int32_t ndone;
    int32_t *part_end;   /* part p holds steps [part_end[p - 1], part_end[p]) */
    int nparts, open;    /* parts added; the part running (the ones after it wait) */
    double finish;       /* when the last step so far completed */
    double compute_free; /* when its compute is next free */
} sim_rank_t;

typedef struct sim_link {
    int32_t from, to;
    /* Transfers posted so far at each end: the k-th send meets the k-th receive, so a
     * transfer knows whether its partner is posted without looking at it. */
    uint32_t sends_posted, recvs_posted;
    double free, busy;
    uint64_t bytes, messages;
} sim_link_t;

typedef struct sim_port {
    double free, busy;
    uint64_t bytes, messages;
} sim_port_t;

enum { EV_ARRIVAL, EV_COMPUTED };

typedef struct sim_event {
    double t;
    uint64_t key; /* rank << 33 | step << 2 | kind */
} sim_event_t;

struct tt_simulator {
    int nranks;
    tt_simulator_net_t net;
    sim_rank_t *ranks;
    sim_link_t *links;
    size_t nlinks, links_cap;
    sim_port_t *ports;
    sim_event_t *heap;
    size_t nheap, heap_cap;
    uint64_t *ready; /* rank << 32 | step */
    size_t nready, ready_cap;
    size_t memory, peak;
    tutti_status_t status; /* sticky: the first failure during the run */
    int ran;
    tt_simulator_result_t *result; /* the run's tallies */
};

/* ------------------------------------------------------------ memory */

static void account(tt_simulator_t *sim, size_t old_bytes, size_t new_bytes)
{
    sim->memory = sim->memory - old_bytes + new_bytes;
    if (sim->memory > sim->peak)
        sim->peak = sim->memory;
}

/* Grow *@p array (of @p elem bytes each, @p *cap of them) to hold at least @p need. */
static int grow(tt_simulator_t *sim, void **array, size_t *cap, size_t need, size_t elem)
{
    size_t cap2 = *cap ? *cap : 64;
    void *grown;

    if (need <= *cap)
        return 1;
    while (cap2 < need)
        cap2 *= 2;
    grown = realloc(*array, cap2 * elem);
    if (grown == NULL) {
        sim->status = TUTTI_ERR_NO_MEMORY;
        return 0;
    }
    account(sim, *cap * elem, cap2 * elem);
    *array = grown;
    *cap = cap2;
    return 1;
}

/* ------------------------------------------------------------ events */

static inline int earlier(const sim_event_t *a, const sim_event_t *b)
{
    return a->t < b->t || (a->t == b->t && a->key < b->key);
}

/*
 * The events form a 4-ary heap: half the levels of a binary one, and the
 * four children of a node share a cache line.
 */
#define HEAP_ARITY 4

static void heap_push(tt_simulator_t *sim, double t, int rank, int32_t step, int kind)
{
    sim_event_t ev = {t, (uint64_t)rank << 33 | (uint64_t)step << 2 | (uint64_t)kind};
    size_t i;

    if (!grow(sim, (void **)&sim->heap, &sim->heap_cap, sim->nheap + 1, sizeof(sim_event_t)))
        return;
    for (i = sim->nheap++; i > 0; i = (i - 1) / HEAP_ARITY) {
        sim_event_t *parent = &sim->heap[(i - 1) / HEAP_ARITY];
        if (!earlier(&ev, parent))
            break;
        sim->heap[i] = *parent;
    }
    sim->heap[i] = ev;
}

static sim_event_t heap_pop(tt_simulator_t *sim)
{
    sim_event_t top = sim->heap[0], last = sim->heap[--sim->nheap];
    size_t i = 0, n = sim->nheap;

    for (;;) {
        size_t first = HEAP_ARITY * i + 1, best = first, end = TT_MIN(first + HEAP_ARITY, n);
        if (first >= n)
            break;
        for (size_t c = first + 1; c < end; c++)
            if (earlier(&sim->heap[c], &sim->heap[best]))
                best = c;
        if (!earlier(&sim->heap[best], &last))
            break;
        sim->heap[i] = sim->heap[best];
        i = best;
    }
    if (n > 0)
        sim->heap[i] = last;
    return top;
}

/* ------------------------------------------------------------ set-up */

/* The rail rank @p rank uses for a message on @p channel. */
static inline int hosts_rail(const tt_simulator_hosts_t *h, int rank, int channel)
{
    int rails = TT_MAX(h->rails, 1);
    if (h->nic != NULL && h->nic[rank] >= 0)
        return h->nic[rank] % rails;
    return channel % rails;
}

static void hosts_route(void *ctx, int from, int to, int channel, tt_simulator_route_t *route)
{
    const tt_simulator_hosts_t *h = ctx;
    int hf = h->host[from], ht = h->host[to];

    if (hf == ht) {
        route->cls = 0;
        route->nports = 0;
    } else {
        route->cls = 1;
        route->nports = 2;
        route->port[0] = 2 * (hf * TT_MAX(h->rails, 1) + hosts_rail(h, from, channel));
        route->port[1] = 2 * (ht * TT_MAX(h->rails, 1) + hosts_rail(h, to, channel)) + 1;
    }
    route->alpha = h->alpha[route->cls];
    route->beta = h->beta[route->cls];
}

void tt_simulator_hosts_net(const tt_simulator_hosts_t *hosts, double gamma,
                            tt_simulator_net_t *net)
{
    static const char *const names[2] = {"shm", "net"};

    memset(net, 0, sizeof(*net));
    net->ctx = (void *)hosts;
    net->route = hosts_route;
    net->nclasses = 2;
    net->class_names = names;
    net->nports = 2 * hosts->nhosts * TT_MAX(hosts->rails, 1);
    net->reduce_bps = gamma;
    net->copy_bps = hosts->beta[0];
}

tutti_status_t tt_simulator_create(int nranks, const tt_simulator_net_t *net,
                                   tt_simulator_t **sim_p)
{
    tt_simulator_t *sim;

    if (nranks < 1 || nranks > MAX_RANKS || net == NULL || net->route == NULL ||
        net->nclasses < 1 || net->nclasses > TT_SIMULATOR_MAX_CLASSES || net->nports < 0 ||
        !(net->reduce_bps > 0) || net->copy_bps < 0) {
        tt_error("simulator: bad arguments (%d ranks, a network without a route, a class count "
                 "outside 1..%d or a reduce rate that is not positive)",
                 nranks, TT_SIMULATOR_MAX_CLASSES);
        return TUTTI_ERR_INVALID_ARG;
    }
    sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return TUTTI_ERR_NO_MEMORY;
    sim->nranks = nranks;
    sim->net = *net;
    if (sim->net.copy_bps == 0)
        sim->net.copy_bps = net->reduce_bps;
    sim->ranks = calloc((size_t)nranks, sizeof(*sim->ranks));
    sim->ports = calloc((size_t)net->nports + 1, sizeof(*sim->ports));
    if (sim->ranks == NULL || sim->ports == NULL) {
        tt_simulator_destroy(sim);
        return TUTTI_ERR_NO_MEMORY;
    }
    account(sim, 0,
            sizeof(*sim) + (size_t)nranks * sizeof(*sim->ranks) +
                ((size_t)net->nports + 1) * sizeof(*sim->ports));
    *sim_p = sim;
    return TUTTI_OK;
}

void tt_simulator_destroy(tt_simulator_t *sim)
{
    if (sim == NULL)
        return;
    if (sim->ranks != NULL)
        for (int r = 0; r < sim->nranks; r++) {
            free(sim->ranks[r].steps);
            free(sim->ranks[r].succ);
            free(sim->ranks[r].part_end);
        }
    free(sim->ranks);
    free(sim->links);
    free(sim->ports);
    free(sim->heap);
    free(sim->ready);
    free(sim);
}

static int is_transfer(int kind)
{
    return kind == TT_STEP_SEND || kind == TT_STEP_RECV || kind == TT_STEP_RECV_REDUCE;
}

tutti_status_t tt_simulator_add(tt_simulator_t *sim, int rank, const tt_schedule_t *s)
{
    int32_t n = s->nsteps, base;
    uint32_t nsucc, succ_base;
    sim_step_t *steps;
    int32_t *succ, *part_end;
    sim_rank_t *R;

    if (rank < 0 || rank >= sim->nranks || sim->ran) {
        tt_error("simulator: rank %d is out of range (0..%d), or the simulation ran", rank,
                 sim->nranks - 1);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (s->status != TUTTI_OK ||
        (n > 0 && (s->succ_start == NULL || s->link_next == NULL || s->initial_pending == NULL))) {
        tt_error("simulator: rank %d's schedule is not finalized", rank);
        return TUTTI_ERR_INVALID_ARG;
    }
    R = &sim->ranks[rank];
    if (n > INT32_MAX - R->nsteps) {
        tt_error("simulator: rank %d's plan has more than 2^31 steps", rank);
        return TUTTI_ERR_INVALID_ARG;
    }
    for (int32_t i = 0; i < n; i++) {
        const tt_step_t *st = &s->steps[i];
        if (is_transfer(st->kind) &&
            (st->peer < 0 || st->peer >= sim->nranks || st->peer == rank)) {
            tt_error("simulator: rank %d step %d names peer %d (ranks 0..%d, not itself)", rank,
                     (int)i, (int)st->peer, sim->nranks - 1);
            return TUTTI_ERR_INVALID_ARG;
        }
    }
    base = R->nsteps;
    succ_base = R->nsucc;
    nsucc = n > 0 ? (uint32_t)s->succ_start[n] : 0;
    /* Grow to exactly what the parts so far need: plans are added once, never shrink. */
    steps = realloc(R->steps, ((size_t)base + (size_t)n) * sizeof(*steps) + 1);
    if (steps == NULL)
        return TUTTI_ERR_NO_MEMORY;
    R->steps = steps;
    succ = realloc(R->succ, ((size_t)succ_base + nsucc) * sizeof(int32_t) + 1);
    if (succ == NULL)
        return TUTTI_ERR_NO_MEMORY;
    R->succ = succ;
    part_end = realloc(R->part_end, ((size_t)R->nparts + 1) * sizeof(int32_t));
    if (part_end == NULL)
        return TUTTI_ERR_NO_MEMORY;
    R->part_end = part_end;

    for (int32_t i = 0; i < n; i++) {
        const tt_step_t *st = &s->steps[i];
        sim_step_t *c = &R->steps[base + i];

        c->bytes = st->count * s->elem_size;
        c->who = is_transfer(st->kind) ? st->peer : -1;
        c->partner = -1;
        c->link_next = s->link_next[i] >= 0 ? base + s->link_next[i] : -1;
        c->pending = s->initial_pending[i];
        c->succ = succ_base + (uint32_t)s->succ_start[i];
        c->kind = st->kind;
        c->channel = st->channel;
        c->flags = 0;
        /* A later part waits until every step of the earlier ones has completed. */
        if (R->nparts > 0 && c->pending == 0) {
            c->pending = 1;
            c->flags = STEP_GATED;
        }
    }
    for (uint32_t k = 0; k < nsucc; k++)
        R->succ[succ_base + k] = base + s->succ[k];
    R->nsteps = base + n;
    R->nsucc = succ_base + nsucc;
    R->part_end[R->nparts++] = R->nsteps;
    account(sim, 0,
            (size_t)n * sizeof(*R->steps) + (size_t)nsucc * sizeof(int32_t) + sizeof(int32_t));
    return TUTTI_OK;
}

/* ------------------------------------------------------------ matching */

/* The first transfer of one rank in one direction with one peer. */
typedef struct chain {
    int32_t from, to; /* the message's sender and receiver */
    int32_t channel;  /* the first transfer's (should link order ever be kept per channel) */
    int32_t part;     /* parts match part for part: every rank cuts its plan alike */
    int32_t dir;      /* 0: the sender's chain of sends, 1: the receiver's chain of receives */
    int32_t head;
} chain_t;

static int chain_cmp(const void *a, const void *b)
{
    const chain_t *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    if (x->to != y->to)
        return x->to < y->to ? -1 : 1;
    if (x->channel != y->channel)
        return x->channel - y->channel;
    if (x->part != y->part)
        return x->part - y->part;
    return x->dir - y->dir;
}

/*
 * Pair the k-th send from a to b with the k-th receive at b from a, part by
 * part; make the links (one per sender, receiver and channel, across parts).
 */
static tutti_status_t match(tt_simulator_t *sim)
{
    chain_t *chains = NULL;
    size_t nchains = 0, chains_cap = 0, mark_cap = 0;
    int32_t link_from = -1, link_to = -1, link_channel = -1;
    uint8_t *mark = NULL;
    tutti_status_t status = TUTTI_OK;

    for (int r = 0; r < sim->nranks; r++) {
        sim_rank_t *R = &sim->ranks[r];
        if (!grow(sim, (void **)&mark, &mark_cap, (size_t)R->nsteps + 1, 1))
            goto out;
        memset(mark, 0, (size_t)R->nsteps);
        for (int32_t i = 0; i < R->nsteps; i++)
            if (R->steps[i].link_next >= 0)
                mark[R->steps[i].link_next] = 1;
        for (int32_t i = 0, part = 0; i < R->nsteps; i++) {
            const sim_step_t *st = &R->steps[i];
            chain_t *c;
            while (i >= R->part_end[part])
                part++;
            if (!is_transfer(st->kind) || mark[i])
                continue;
            if (!grow(sim, (void **)&chains, &chains_cap, nchains + 1, sizeof(chain_t)))
                goto out;
            c = &chains[nchains++];
            c->dir = st->kind != TT_STEP_SEND;
            c->from = c->dir ? st->who : r;
            c->to = c->dir ? r : st->who;
            c->channel = st->channel;
            c->part = part;
            c->head = i;
        }
    }
    qsort(chains, nchains, sizeof(chain_t), chain_cmp);
    for (size_t k = 0; k < nchains; k++) {
        const chain_t *snd = &chains[k], *rcv;
        sim_step_t *S, *Rv;
        sim_link_t *link;
        int32_t a, b;

        if (snd->dir != 0 || k + 1 == nchains)
            continue;
        rcv = &chains[k + 1];
        if (rcv->dir != 1 || rcv->from != snd->from || rcv->to != snd->to ||
            rcv->channel != snd->channel || rcv->part != snd->part)
            continue;
        /* A later part's chains between the same ranks on the same channel: the same link. */
        if (sim->nlinks == 0 || link_from != snd->from || link_to != snd->to ||
            link_channel != snd->channel) {
            if (!grow(sim, (void **)&sim->links, &sim->links_cap, sim->nlinks + 1,
                      sizeof(sim_link_t)))
                goto out;
            link = &sim->links[sim->nlinks++];
            memset(link, 0, sizeof(*link));
            link->from = link_from = snd->from;
            link->to = link_to = snd->to;
            link_channel = snd->channel;
        }
        S = sim->ranks[snd->from].steps;
        Rv = sim->ranks[snd->to].steps;
        for (a = snd->head, b = rcv->head; a >= 0 && b >= 0;
             a = S[a].link_next, b = Rv[b].link_next) {
            S[a].partner = b;
            S[a].who = (int32_t)sim->nlinks - 1;
            Rv[b].partner = a;
            Rv[b].who = (int32_t)sim->nlinks - 1;
            Rv[b].channel = S[a].channel;
            if (Rv[b].bytes != S[a].bytes) {
                Rv[b].flags |= STEP_MISMATCH;
                sim->result->size_mismatch++;
            }
        }
    }
    /* What found no partner will never move. */
    for (int r = 0; r < sim->nranks; r++)
        for (int32_t i = 0; i < sim->ranks[r].nsteps; i++)
            if (sim->ranks[r].steps[i].partner < 0)
                sim->ranks[r].steps[i].who = -1;
out:
    status = sim->status;
    account(sim, mark_cap + chains_cap * sizeof(chain_t), 0);
    free(mark);
    free(chains);
    return status;
}

/* ------------------------------------------------------------ running */

static void push_ready(tt_simulator_t *sim, int rank, int32_t step)
{
    if (grow(sim, (void **)&sim->ready, &sim->ready_cap, sim->nready + 1, sizeof(uint64_t)))
        sim->ready[sim->nready++] = (uint64_t)rank << 32 | (uint32_t)step;
}

static inline void release(tt_simulator_t *sim, int rank, int32_t step)
{
    if (--sim->ranks[rank].steps[step].pending == 0)
        push_ready(sim, rank, step);
}

/* Open the parts of rank @p rank whose predecessors have all completed. */
static void open_parts(tt_simulator_t *sim, int rank)
{
    sim_rank_t *R = &sim->ranks[rank];

    while (R->open + 1 < R->nparts && R->ndone == R->part_end[R->open]) {
        int32_t end = R->part_end[++R->open];
        for (int32_t i = R->part_end[R->open - 1]; i < end; i++)
            if (R->steps[i].flags & STEP_GATED)
                release(sim, rank, i);
    }
}

static void complete(tt_simulator_t *sim, int rank, int32_t step, double t)
{
    sim_rank_t *R = &sim->ranks[rank];
    sim_step_t *st = &R->steps[step];
    uint32_t end = step + 1 < R->nsteps ? R->steps[step + 1].succ : R->nsucc;

    st->pending = STEP_DONE;
    R->ndone++;
    if (t > R->finish)
        R->finish = t;
    for (uint32_t k = st->succ; k < end; k++)
        release(sim, rank, R->succ[k]);
    if (R->ndone == R->part_end[R->open])
        open_parts(sim, rank);
}

/* Occupy rank @p rank's compute for @p seconds from @p t on, then complete the step. */
static void compute(tt_simulator_t *sim, int rank, int32_t step, double t, double seconds)
{
    sim_rank_t *R = &sim->ranks[rank];
    double start;

    if (!(seconds > 0)) {
        complete(sim, rank, step, t);
        return;
    }
    R->steps[step].pending = STEP_RUNNING;
    start = TT_MAX(t, R->compute_free);
    R->compute_free = start + seconds;
    heap_push(sim, R->compute_free, rank, step, EV_COMPUTED);
}

/*
 * Both ends of a message on @p link are posted at @p t: it waits for its
 * link and ports, then moves; its arrival completes receive @p recv of rank
 * link->to. @p bytes and @p channel are the send's (the receive has copies).
 */
static void start_message(tt_simulator_t *sim, int32_t link_index, uint64_t bytes, int channel,
                          int32_t recv, double t)
{
    sim_link_t *link = &sim->links[link_index];
    tt_simulator_result_t *res = sim->result;
    tt_simulator_route_t route;
    double start, occupy, duration;

    memset(&route, 0, sizeof(route));
    sim->net.route(sim->net.ctx, link->from, link->to, channel, &route);
    if (route.cls < 0 || route.cls >= sim->net.nclasses || !(route.beta > 0) ||
        !(route.alpha >= 0) || route.nports < 0 || route.nports > TT_SIMULATOR_MAX_PORTS) {
        if (sim->status == TUTTI_OK)
            tt_error("simulator: the route from rank %d to rank %d is invalid (class %d, "
                     "alpha %g, beta %g, %d ports)",
                     (int)link->from, (int)link->to, route.cls, route.alpha, route.beta,
                     route.nports);
        sim->status = TUTTI_ERR_INVALID_ARG;
        return;
    }
    for (int p = 0; p < route.nports; p++)
        if (route.port[p] < 0 || route.port[p] >= sim->net.nports) {
            if (sim->status == TUTTI_OK)
                tt_error("simulator: the route from rank %d to rank %d names port %d (of %d)",
                         (int)link->from, (int)link->to, (int)route.port[p], (int)sim->net.nports);
            sim->status = TUTTI_ERR_INVALID_ARG;
            return;
        }
    occupy = (double)bytes / route.beta;
    duration = route.alpha + occupy;
    start = TT_MAX(t, link->free);
    for (int p = 0; p < route.nports; p++)
        start = TT_MAX(start, sim->ports[route.port[p]].free);
    link->free = start + duration;
    link->busy += duration;
    link->bytes += bytes;
    link->messages++;
    for (int p = 0; p < route.nports; p++) {
        sim_port_t *port = &sim->ports[route.port[p]];
        port->free = start + occupy;
        port->busy += occupy;
        port->bytes += bytes;
        port->messages++;
    }
    res->class_bytes[route.cls] += bytes;
    res->class_messages[route.cls]++;
    res->bytes += bytes;
    res->messages++;
    heap_push(sim, start + duration, link->to, recv, EV_ARRIVAL);
}

/* Post the transfer @p step of @p rank at @p t. */
static void post(tt_simulator_t *sim, int rank, int32_t step, double t)
{
    sim_step_t *st = &sim->ranks[rank].steps[step];
    sim_link_t *link;

    st->pending = STEP_RUNNING;
    if (st->link_next >= 0)
        release(sim, rank, st->link_next);
    if (st->who < 0)
        return; /* never matched: it will never complete */
    link = &sim->links[st->who];
    /* The second end to be posted starts the message. */
    if (st->kind == TT_STEP_SEND) {
        if (++link->sends_posted <= link->recvs_posted)
            start_message(sim, st->who, st->bytes, st->channel, st->partner, t);
    } else {
        /* The message has the send's size (which the receive has, unless they differ). */
        uint64_t bytes = (st->flags & STEP_MISMATCH)
                             ? sim->ranks[link->from].steps[st->partner].bytes
                             : st->bytes;
        if (++link->recvs_posted <= link->sends_posted)
            start_message(sim, st->who, bytes, st->channel, step, t);
    }
}

/* Run everything that is ready at @p t (and what that makes ready). */
static void drain(tt_simulator_t *sim, double t)
{
    while (sim->nready > 0 && sim->status == TUTTI_OK) {
        uint64_t item = sim->ready[--sim->nready];
        int rank = (int)(item >> 32);
        int32_t step = (int32_t)(uint32_t)item;
        const sim_step_t *st = &sim->ranks[rank].steps[step];

        switch (st->kind) {
        case TT_STEP_SEND:
        case TT_STEP_RECV:
        case TT_STEP_RECV_REDUCE: post(sim, rank, step, t); break;
        case TT_STEP_REDUCE:
            compute(sim, rank, step, t, (double)st->bytes / sim->net.reduce_bps);
            break;
        case TT_STEP_COPY:
            compute(sim, rank, step, t, (double)st->bytes / sim->net.copy_bps);
            break;
        default: complete(sim, rank, step, t); break;
        }
    }
}

static void handle(tt_simulator_t *sim, const sim_event_t *ev)
{
    int rank = (int)(ev->key >> 33);
    int32_t step = (int32_t)((ev->key >> 2) & 0x7fffffffu);
    const sim_step_t *st = &sim->ranks[rank].steps[step];

    if ((ev->key & 3) == EV_COMPUTED) {
        complete(sim, rank, step, ev->t);
        return;
    }
    /* A message arrived at receive @p step: its send is done, the receive (nearly). */
    complete(sim, sim->links[st->who].from, st->partner, ev->t);
    if (st->kind == TT_STEP_RECV_REDUCE)
        compute(sim, rank, step, ev->t, (double)st->bytes / sim->net.reduce_bps);
    else
        complete(sim, rank, step, ev->t);
}

/* The link or port with the most bytes (then the longest busy time, then the first). */
static int busier(uint64_t bytes, double busy, const tt_simulator_busiest_t *best)
{
    return bytes > best->bytes || (bytes == best->bytes && busy > best->busy);
}

static void summarise(tt_simulator_t *sim, tt_simulator_result_t *res)
{
    res->busiest_link = (tt_simulator_busiest_t){.from = -1, .to = -1, .port = -1};
    res->busiest_port = (tt_simulator_busiest_t){.from = -1, .to = -1, .port = -1};
    for (size_t l = 0; l < sim->nlinks; l++) {
        const sim_link_t *link = &sim->links[l];
        if (link->messages == 0)
            continue;
        res->links++;
        if (res->busiest_link.from < 0 || busier(link->bytes, link->busy, &res->busiest_link))
            res->busiest_link = (tt_simulator_busiest_t){link->from,  link->to,       -1,
                                                         link->bytes, link->messages, link->busy};
    }
    for (int32_t p = 0; p < sim->net.nports; p++) {
        const sim_port_t *port = &sim->ports[p];
        if (port->messages == 0)
            continue;
        if (res->busiest_port.port < 0 || busier(port->bytes, port->busy, &res->busiest_port))
            res->busiest_port =
                (tt_simulator_busiest_t){-1, -1, p, port->bytes, port->messages, port->busy};
    }
    res->stuck_rank = -1;
    res->stuck_step = TT_NO_STEP;
    for (int r = 0; r < sim->nranks; r++) {
        const sim_rank_t *R = &sim->ranks[r];
        res->rank_finish[r] = R->finish;
        res->time = TT_MAX(res->time, R->finish);
        res->steps += (uint64_t)R->nsteps;
        res->steps_run += (uint64_t)R->ndone;
        for (int32_t i = 0; i < R->nsteps; i++)
            if (is_transfer(R->steps[i].kind) && R->steps[i].partner < 0)
                res->unmatched++;
        if (R->ndone < R->nsteps && res->stuck_rank < 0) {
            res->stuck_rank = r;
            for (int32_t i = 0; i < R->nsteps && res->stuck_step == TT_NO_STEP; i++)
                if (R->steps[i].pending != STEP_DONE)
                    res->stuck_step = i;
        }
    }
    res->deadlock = res->steps_run < res->steps;
}

tutti_status_t tt_simulator_run(tt_simulator_t *sim, tt_simulator_result_t *result)
{
    tt_simulator_result_t res;
    tutti_status_t status;

    if (sim->ran) {
        tt_error("simulator: already ran");
        return TUTTI_ERR_INVALID_ARG;
    }
    for (int r = 0; r < sim->nranks; r++)
        if (sim->ranks[r].nparts == 0) {
            tt_error("simulator: rank %d has no schedule", r);
            return TUTTI_ERR_INVALID_ARG;
        }
    sim->ran = 1;
    memset(&res, 0, sizeof(res));
    res.nranks = sim->nranks;
    res.nclasses = sim->net.nclasses;
    res.rank_finish = calloc((size_t)sim->nranks, sizeof(double));
    if (res.rank_finish == NULL)
        return TUTTI_ERR_NO_MEMORY;
    sim->result = &res;
    status = match(sim);
    /* Each rank starts its ready steps in schedule order, as the executor does. */
    for (int r = 0; r < sim->nranks && status == TUTTI_OK; r++) {
        const sim_rank_t *R = &sim->ranks[r];
        for (int32_t i = R->nsteps - 1; i >= 0; i--)
            if (R->steps[i].pending == 0)
                push_ready(sim, r, i);
        open_parts(sim, r); /* past empty parts */
        drain(sim, 0.0);
        status = sim->status;
    }
    while (status == TUTTI_OK && sim->nheap > 0) {
        sim_event_t ev = heap_pop(sim);
        /* The next event's step is almost surely not in cache: start loading it now. */
        if (sim->nheap > 0) {
            const sim_event_t *next = &sim->heap[0];
            __builtin_prefetch(&sim->ranks[next->key >> 33].steps[(next->key >> 2) & 0x7fffffffu]);
        }
        handle(sim, &ev);
        drain(sim, ev.t);
        status = sim->status;
    }
    sim->result = NULL;
    if (status != TUTTI_OK) {
        free(res.rank_finish);
        return status;
    }
    summarise(sim, &res);
    res.memory_bytes = sim->peak + (size_t)sim->nranks * sizeof(double);
    *result = res;
    return TUTTI_OK;
}

void tt_simulator_result_fini(tt_simulator_result_t *result)
{
    free(result->rank_finish);
    result->rank_finish = NULL;
}

tutti_status_t tt_simulate(const tt_schedule_t *const *scheds, int nranks,
                           const tt_simulator_net_t *net, tt_simulator_result_t *result)
{
    tt_simulator_t *sim;
    tutti_status_t status;

    TT_CHECK(tt_simulator_create(nranks, net, &sim));
    for (int r = 0; r < nranks; r++)
        TT_CHECK_GOTO(tt_simulator_add(sim, r, scheds[r]), status, err_destroy);
    status = tt_simulator_run(sim, result);
err_destroy:
    tt_simulator_destroy(sim);
    return status;
}

uint64_t tt_simulator_footprint(uint64_t steps)
{
    /* A compact step, about 1.5 successor entries, and room for events in flight. */
    return steps * (sizeof(sim_step_t) + 6 + 2);
}
