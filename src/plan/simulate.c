/*
 * The timing simulator; see simulate.h for the model.
 *
 * Data. Each part of each rank's plan is copied into a compact array (32
 * bytes a step) plus its successor lists, so that the schedules themselves
 * (several times larger) can be freed as soon as they are added. Whole
 * plans keep every part; streamed plans keep a window of parts per rank in
 * slots that each part reuses in turn. Directed links exist only where some
 * rank sends to another (found when transfers are matched, part by part),
 * so memory never grows with the square of the ranks; a link counts the
 * transfers posted at each end, so that posting one need not look at its
 * partner (another rank's memory, a cache miss).
 *
 * A rank runs one part at a time (its open part), and everything in flight
 * for it (ready steps, events, the partners of its posted transfers) lies in
 * that part: steps are named by their index in it.
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
    int32_t partner;   /* transfers: the matching transfer in the peer's same part, -1 if none */
    int32_t link_next; /* the next transfer in the same direction with the same peer, or -1 */
    int32_t pending;   /* unmet conditions, or STEP_RUNNING / STEP_DONE */
    uint32_t succ;     /* successors: the part's succ[succ .. the next step's succ) */
    uint8_t kind;
    uint8_t channel; /* a matched receive takes its send's (the route follows the sender) */
    uint8_t flags;   /* STEP_MISMATCH, STEP_GATED */
} sim_step_t;

/* A matched receive whose size differs from its send's. */
#define STEP_MISMATCH 1u
/* Ready as soon as its part opens (its pending count holds the part's gate). */
#define STEP_GATED 2u

/* One part of one rank's plan. */
typedef struct sim_part {
    sim_step_t *steps;
    int32_t *succ;
    int32_t nsteps;
    uint32_t nsucc;
    size_t steps_cap, succ_cap; /* room held (a streamed slot keeps it for its next part) */
} sim_part_t;

typedef struct sim_rank {
    /* The open part's successors and size, copied from its sim_part_t for the hot paths
     * (its steps: tt_simulator.steps). */
    const int32_t *succ;
    int32_t nsteps;
    uint32_t nsucc;
    sim_part_t *parts;   /* part p is parts[p], or parts[p % window] when streamed */
    int nparts, open;    /* parts in its plan; the part running (the ones after it wait) */
    int waiting;         /* streamed: its open part is complete, the next one not built yet */
    int32_t ndone;       /* steps completed, in all parts */
    int32_t end;         /* steps in the parts up to the open one */
    int32_t total;       /* steps in the parts added or built so far */
    int32_t first_link;  /* the links from this rank, through sim_link_t.next_out (-1: none) */
    double finish;       /* when the last step so far completed */
    double compute_free; /* when its compute is next free */
    double wait_start;   /* streamed: when it started waiting */
} sim_rank_t;

typedef struct sim_link {
    int32_t from, to, channel;
    int32_t next_out; /* the next link from the same rank, or -1 */
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
    sim_step_t **steps; /* per rank: its open part's steps (the hottest pointer, kept dense) */
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
    /* Parts [retired, built) are held (whole plans: all of them, retired 0). */
    int retired, built;
    int window;                /* streamed: slots per rank; 0 for whole plans */
    tt_simulator_source_t src; /* streamed: where parts come from */
    int *ranks_done;           /* streamed, per slot: ranks that completed its part */
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

/* Make room for exactly @p need elements of @p elem bytes in *@p array (no more: parts do not
 * grow). */
static tutti_status_t reserve(tt_simulator_t *sim, void **array, size_t *cap, size_t need,
                              size_t elem)
{
    void *grown;

    if (need <= *cap)
        return TUTTI_OK;
    grown = realloc(*array, need * elem);
    if (grown == NULL)
        return TUTTI_ERR_NO_MEMORY;
    account(sim, *cap * elem, need * elem);
    *array = grown;
    *cap = need;
    return TUTTI_OK;
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
        /* A rank's copies in and out of shared memory: its own ports, after the NICs'. */
        int base = 2 * h->nhosts * TT_MAX(h->rails, 1);
        route->cls = 0;
        route->nports = 2;
        route->port[0] = base + 2 * from;
        route->port[1] = base + 2 * to + 1;
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
    net->nports = 2 * hosts->nhosts * TT_MAX(hosts->rails, 1) + 2 * hosts->nranks;
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
    sim->steps = calloc((size_t)nranks, sizeof(*sim->steps));
    sim->ports = calloc((size_t)net->nports + 1, sizeof(*sim->ports));
    if (sim->ranks == NULL || sim->steps == NULL || sim->ports == NULL) {
        tt_simulator_destroy(sim);
        return TUTTI_ERR_NO_MEMORY;
    }
    for (int r = 0; r < nranks; r++)
        sim->ranks[r].first_link = -1;
    account(sim, 0,
            sizeof(*sim) + (size_t)nranks * (sizeof(*sim->ranks) + sizeof(*sim->steps)) +
                ((size_t)net->nports + 1) * sizeof(*sim->ports));
    *sim_p = sim;
    return TUTTI_OK;
}

/* Free rank @p R's parts (slots when streamed). */
static void free_parts(const tt_simulator_t *sim, sim_rank_t *R)
{
    int nslots = sim->window > 0 ? sim->window : R->nparts;

    if (R->parts == NULL)
        return;
    for (int k = 0; k < nslots; k++) {
        free(R->parts[k].steps);
        free(R->parts[k].succ);
    }
    free(R->parts);
}

void tt_simulator_destroy(tt_simulator_t *sim)
{
    if (sim == NULL)
        return;
    if (sim->ranks != NULL)
        for (int r = 0; r < sim->nranks; r++)
            free_parts(sim, &sim->ranks[r]);
    free(sim->ranks);
    free(sim->steps);
    free(sim->links);
    free(sim->ports);
    free(sim->heap);
    free(sim->ready);
    free(sim->ranks_done);
    free(sim);
}

static int is_transfer(int kind)
{
    return kind == TT_STEP_SEND || kind == TT_STEP_RECV || kind == TT_STEP_RECV_REDUCE;
}

/* Where rank @p R's part @p part is held. */
static inline sim_part_t *part_of(const tt_simulator_t *sim, const sim_rank_t *R, int part)
{
    return &R->parts[sim->window > 0 ? part % sim->window : part];
}

/* Check that @p s can be rank @p rank's (finalized, transfers to other ranks); logs why not. */
static tutti_status_t check_schedule(const tt_simulator_t *sim, int rank, const tt_schedule_t *s)
{
    int32_t n = s->nsteps;

    if (s->status != TUTTI_OK ||
        (n > 0 && (s->succ_start == NULL || s->link_next == NULL || s->initial_pending == NULL))) {
        tt_error("simulator: rank %d's schedule is not finalized", rank);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (n > INT32_MAX - sim->ranks[rank].total) {
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
    return TUTTI_OK;
}

/* Copy what timing needs of @p s (checked) into rank @p rank's part @p part. */
static tutti_status_t copy_part(tt_simulator_t *sim, int rank, int part, const tt_schedule_t *s)
{
    sim_rank_t *R = &sim->ranks[rank];
    sim_part_t *P = part_of(sim, R, part);
    int32_t n = s->nsteps;
    uint32_t nsucc = n > 0 ? (uint32_t)s->succ_start[n] : 0;

    TT_CHECK(reserve(sim, (void **)&P->steps, &P->steps_cap, (size_t)n, sizeof(sim_step_t)));
    TT_CHECK(reserve(sim, (void **)&P->succ, &P->succ_cap, nsucc, sizeof(int32_t)));
    for (int32_t i = 0; i < n; i++) {
        const tt_step_t *st = &s->steps[i];
        sim_step_t *c = &P->steps[i];

        c->bytes = st->count * s->elem_size;
        c->who = is_transfer(st->kind) ? st->peer : -1;
        c->partner = -1;
        c->link_next = s->link_next[i];
        c->pending = s->initial_pending[i];
        c->succ = (uint32_t)s->succ_start[i];
        c->kind = st->kind;
        c->channel = st->channel;
        c->flags = 0;
        /* A later part waits until every step of the earlier ones has completed. */
        if (part > 0 && c->pending == 0) {
            c->pending = 1;
            c->flags = STEP_GATED;
        }
    }
    if (nsucc > 0)
        memcpy(P->succ, s->succ, nsucc * sizeof(int32_t));
    P->nsteps = n;
    P->nsucc = nsucc;
    R->total += n;
    return TUTTI_OK;
}

tutti_status_t tt_simulator_add(tt_simulator_t *sim, int rank, const tt_schedule_t *s)
{
    sim_part_t *parts;
    sim_rank_t *R;

    if (rank < 0 || rank >= sim->nranks || sim->ran) {
        tt_error("simulator: rank %d is out of range (0..%d), or the simulation ran", rank,
                 sim->nranks - 1);
        return TUTTI_ERR_INVALID_ARG;
    }
    TT_CHECK(check_schedule(sim, rank, s));
    R = &sim->ranks[rank];
    parts = realloc(R->parts, ((size_t)R->nparts + 1) * sizeof(*parts));
    if (parts == NULL)
        return TUTTI_ERR_NO_MEMORY;
    R->parts = parts;
    memset(&parts[R->nparts], 0, sizeof(*parts));
    account(sim, 0, sizeof(*parts));
    TT_CHECK(copy_part(sim, rank, R->nparts, s));
    R->nparts++;
    return TUTTI_OK;
}

/* ------------------------------------------------------------ matching */

/* The first transfer of a chain: one rank's transfers in one direction with one peer in a part. */
typedef struct chain {
    int32_t from, to; /* the message's sender and receiver */
    int32_t channel;  /* the first transfer's (should link order ever be kept per channel) */
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
    return x->dir - y->dir;
}

/* The link from @p from to @p to on @p channel (made at first use); -1 if memory ran out. */
static int32_t find_link(tt_simulator_t *sim, int32_t from, int32_t to, int32_t channel)
{
    sim_rank_t *R = &sim->ranks[from];
    sim_link_t *link;

    for (int32_t l = R->first_link; l >= 0; l = sim->links[l].next_out)
        if (sim->links[l].to == to && sim->links[l].channel == channel)
            return l;
    if (!grow(sim, (void **)&sim->links, &sim->links_cap, sim->nlinks + 1, sizeof(sim_link_t)))
        return -1;
    link = &sim->links[sim->nlinks];
    memset(link, 0, sizeof(*link));
    link->from = from;
    link->to = to;
    link->channel = channel;
    link->next_out = R->first_link;
    R->first_link = (int32_t)sim->nlinks;
    return (int32_t)sim->nlinks++;
}

/* Collect the chains of part @p part of every rank into *@p chains_p (@p n_p, @p cap_p). */
static int collect_chains(tt_simulator_t *sim, int part, chain_t **chains_p, size_t *n_p,
                          size_t *cap_p)
{
    uint8_t *mark = NULL;
    size_t mark_cap = 0;
    int ok = 1;

    for (int r = 0; r < sim->nranks && ok; r++) {
        const sim_rank_t *R = &sim->ranks[r];
        const sim_part_t *P;
        if (part >= R->nparts)
            continue;
        P = part_of(sim, R, part);
        if (!grow(sim, (void **)&mark, &mark_cap, (size_t)P->nsteps + 1, 1))
            break;
        memset(mark, 0, (size_t)P->nsteps);
        for (int32_t i = 0; i < P->nsteps; i++)
            if (P->steps[i].link_next >= 0)
                mark[P->steps[i].link_next] = 1;
        for (int32_t i = 0; i < P->nsteps && ok; i++) {
            const sim_step_t *st = &P->steps[i];
            chain_t *c;
            if (!is_transfer(st->kind) || mark[i])
                continue;
            ok = grow(sim, (void **)chains_p, cap_p, *n_p + 1, sizeof(chain_t));
            if (!ok)
                break;
            c = &(*chains_p)[(*n_p)++];
            c->dir = st->kind != TT_STEP_SEND;
            c->from = c->dir ? st->who : r;
            c->to = c->dir ? r : st->who;
            c->channel = st->channel;
            c->head = i;
        }
    }
    account(sim, mark_cap, 0);
    free(mark);
    return ok && sim->status == TUTTI_OK;
}

/* Pair the transfers of the chains @p snd and @p rcv of part @p part, on their link. */
static void pair_chains(tt_simulator_t *sim, int part, const chain_t *snd, const chain_t *rcv,
                        int32_t link)
{
    sim_step_t *S = part_of(sim, &sim->ranks[snd->from], part)->steps;
    sim_step_t *Rv = part_of(sim, &sim->ranks[snd->to], part)->steps;

    for (int32_t a = snd->head, b = rcv->head; a >= 0 && b >= 0;
         a = S[a].link_next, b = Rv[b].link_next) {
        S[a].partner = b;
        S[a].who = link;
        Rv[b].partner = a;
        Rv[b].who = link;
        Rv[b].channel = S[a].channel;
        if (Rv[b].bytes != S[a].bytes) {
            Rv[b].flags |= STEP_MISMATCH;
            sim->result->size_mismatch++;
        }
    }
}

/*
 * Pair the k-th send from a to b with the k-th receive at b from a, within
 * part @p part (every rank cuts its plan alike); make the links (one per
 * sender, receiver and channel, across parts).
 */
static tutti_status_t match_part(tt_simulator_t *sim, int part)
{
    chain_t *chains = NULL;
    size_t nchains = 0, chains_cap = 0;

    if (!collect_chains(sim, part, &chains, &nchains, &chains_cap))
        goto out;
    if (nchains > 1)
        qsort(chains, nchains, sizeof(chain_t), chain_cmp);
    for (size_t k = 0; k + 1 < nchains; k++) {
        const chain_t *snd = &chains[k], *rcv = &chains[k + 1];
        int32_t link;

        if (snd->dir != 0 || rcv->dir != 1 || rcv->from != snd->from || rcv->to != snd->to ||
            rcv->channel != snd->channel)
            continue;
        link = find_link(sim, snd->from, snd->to, snd->channel);
        if (link < 0)
            goto out;
        pair_chains(sim, part, snd, rcv, link);
    }
    /* What found no partner will never move. */
    for (int r = 0; r < sim->nranks; r++) {
        const sim_rank_t *R = &sim->ranks[r];
        sim_part_t *P;
        if (part >= R->nparts)
            continue;
        P = part_of(sim, R, part);
        for (int32_t i = 0; i < P->nsteps; i++)
            if (is_transfer(P->steps[i].kind) && P->steps[i].partner < 0) {
                P->steps[i].who = -1;
                sim->result->unmatched++;
            }
    }
out:
    account(sim, chains_cap * sizeof(chain_t), 0);
    free(chains);
    return sim->status;
}

/* ------------------------------------------------------------ running */

static void push_ready(tt_simulator_t *sim, int rank, int32_t step)
{
    if (grow(sim, (void **)&sim->ready, &sim->ready_cap, sim->nready + 1, sizeof(uint64_t)))
        sim->ready[sim->nready++] = (uint64_t)rank << 32 | (uint32_t)step;
}

static inline void release(tt_simulator_t *sim, int rank, int32_t step)
{
    if (--sim->steps[rank][step].pending == 0)
        push_ready(sim, rank, step);
}

/* Make part @p part rank @p rank's open part and release the steps it gated. */
static void open_part(tt_simulator_t *sim, int rank, int part)
{
    sim_rank_t *R = &sim->ranks[rank];
    const sim_part_t *P = part_of(sim, R, part);

    R->open = part;
    sim->steps[rank] = P->steps;
    R->succ = P->succ;
    R->nsteps = P->nsteps;
    R->nsucc = P->nsucc;
    R->end += P->nsteps;
    for (int32_t i = 0; i < P->nsteps; i++)
        if (P->steps[i].flags & STEP_GATED)
            release(sim, rank, i);
}

/*
 * Rank @p rank has completed its open part at @p t: open the next one (and
 * past empty ones), or, streamed, wait if it is not built yet.
 */
static void next_part(tt_simulator_t *sim, int rank, double t)
{
    sim_rank_t *R = &sim->ranks[rank];

    do {
        if (sim->window > 0)
            sim->ranks_done[R->open % sim->window]++;
        if (R->open + 1 == R->nparts)
            return;
        if (R->open + 1 >= sim->built) {
            R->waiting = 1;
            R->wait_start = t;
            sim->result->waits++;
            return;
        }
        open_part(sim, rank, R->open + 1);
    } while (R->ndone == R->end);
}

static void complete(tt_simulator_t *sim, int rank, int32_t step, double t)
{
    sim_rank_t *R = &sim->ranks[rank];
    sim_step_t *st = &sim->steps[rank][step];
    uint32_t end = step + 1 < R->nsteps ? st[1].succ : R->nsucc;

    st->pending = STEP_DONE;
    R->ndone++;
    if (t > R->finish)
        R->finish = t;
    for (uint32_t k = st->succ; k < end; k++)
        release(sim, rank, R->succ[k]);
    if (R->ndone == R->end)
        next_part(sim, rank, t);
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
    sim->steps[rank][step].pending = STEP_RUNNING;
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
    sim_step_t *st = &sim->steps[rank][step];
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
                             ? part_of(sim, &sim->ranks[link->from], sim->ranks[rank].open)
                                   ->steps[st->partner]
                                   .bytes
                             : st->bytes;
        if (++link->recvs_posted <= link->sends_posted)
            start_message(sim, st->who, bytes, st->channel, step, t);
    }
}

static void handle(tt_simulator_t *sim, const sim_event_t *ev)
{
    int rank = (int)(ev->key >> 33);
    int32_t step = (int32_t)((ev->key >> 2) & 0x7fffffffu);
    const sim_step_t *st = &sim->steps[rank][step];

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

/* Run everything that is ready at @p t (and what that makes ready). */
static void drain(tt_simulator_t *sim, double t)
{
    while (sim->nready > 0 && sim->status == TUTTI_OK) {
        uint64_t item = sim->ready[--sim->nready];
        int rank = (int)(item >> 32);
        int32_t step = (int32_t)(uint32_t)item;
        const sim_step_t *st = &sim->steps[rank][step];

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

/* ------------------------------------------------------------ results */

/* The port with the most bytes (then the longest busy time). */
static int busier(uint64_t bytes, double busy, const tt_simulator_busiest_t *best)
{
    return bytes > best->bytes || (bytes == best->bytes && busy > best->busy);
}

/* Link @p a carried more bytes than @p b (then was busy longer, then comes first by its ranks). */
static int link_busier(const sim_link_t *a, const sim_link_t *b)
{
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes;
    if (a->busy != b->busy)
        return a->busy > b->busy;
    if (a->from != b->from)
        return a->from < b->from;
    if (a->to != b->to)
        return a->to < b->to;
    return a->channel < b->channel;
}

static void summarise_links(const tt_simulator_t *sim, tt_simulator_result_t *res)
{
    const sim_link_t *best = NULL;

    res->busiest_link = (tt_simulator_busiest_t){.from = -1, .to = -1, .port = -1};
    res->busiest_port = (tt_simulator_busiest_t){.from = -1, .to = -1, .port = -1};
    for (size_t l = 0; l < sim->nlinks; l++) {
        const sim_link_t *link = &sim->links[l];
        if (link->messages == 0)
            continue;
        res->links++;
        if (best == NULL || link_busier(link, best))
            best = link;
    }
    if (best != NULL)
        res->busiest_link = (tt_simulator_busiest_t){best->from,  best->to,       -1,
                                                     best->bytes, best->messages, best->busy};
    for (int32_t p = 0; p < sim->net.nports; p++) {
        const sim_port_t *port = &sim->ports[p];
        if (port->messages == 0)
            continue;
        if (res->busiest_port.port < 0 || busier(port->bytes, port->busy, &res->busiest_port))
            res->busiest_port =
                (tt_simulator_busiest_t){-1, -1, p, port->bytes, port->messages, port->busy};
    }
}

/* The first step of rank @p rank's open part that never ran (one did not), as its plan numbers it.
 */
static int32_t first_not_run(const tt_simulator_t *sim, int rank)
{
    const sim_rank_t *R = &sim->ranks[rank];
    int32_t i = 0;

    while (sim->steps[rank][i].pending == STEP_DONE)
        i++;
    return R->end - R->nsteps + i;
}

/* Every rank's finish, and the first rank with a step that never ran (among the parts held). */
static void summarise_ranks(const tt_simulator_t *sim, tt_simulator_result_t *res)
{
    res->stuck_rank = -1;
    res->stuck_step = TT_NO_STEP;
    for (int r = 0; r < sim->nranks; r++) {
        const sim_rank_t *R = &sim->ranks[r];
        res->rank_finish[r] = R->finish;
        res->time = TT_MAX(res->time, R->finish);
        res->steps_run += (uint64_t)R->ndone;
        if (res->stuck_rank < 0 && R->ndone < R->end) {
            res->stuck_rank = r;
            res->stuck_step = first_not_run(sim, r);
        }
    }
}

/*
 * Count every rank's steps, once all parts were held at some time (a
 * streamed run that deadlocked has built the rest since summarise_ranks).
 * A rank waiting for a part that was never run may come before the stuck
 * rank found among the parts held: its first step not run is its next one.
 */
static void count_steps(const tt_simulator_t *sim, tt_simulator_result_t *res)
{
    for (int r = 0; r < sim->nranks; r++) {
        const sim_rank_t *R = &sim->ranks[r];
        res->steps += (uint64_t)R->total;
        if (R->ndone < R->total && (res->stuck_rank < 0 || r < res->stuck_rank)) {
            res->stuck_rank = r;
            res->stuck_step = R->end;
        }
    }
    res->deadlock = res->steps_run < res->steps;
}

/* ------------------------------------------------------------ streaming */

/* Build part @p part of every rank's plan into its slot, and match it. */
static tutti_status_t build_part(tt_simulator_t *sim, int part)
{
    for (int r = 0; r < sim->nranks; r++) {
        tt_schedule_t s;
        tutti_status_t status;

        tt_schedule_init(&s, sim->src.elem_size);
        status = sim->src.build(sim->src.ctx, r, part, &s);
        if (status != TUTTI_OK)
            tt_error("simulator: cannot build part %d of rank %d's plan (%s)", part, r,
                     tutti_status_string(status));
        if (status == TUTTI_OK)
            status = check_schedule(sim, r, &s);
        if (status == TUTTI_OK)
            status = copy_part(sim, r, part, &s);
        tt_schedule_fini(&s);
        if (status != TUTTI_OK)
            return status;
    }
    sim->built++;
    return match_part(sim, part);
}

/* The ranks that waited for the part just built start it at @p t. */
static void wake(tt_simulator_t *sim, double t)
{
    for (int r = 0; r < sim->nranks; r++) {
        sim_rank_t *R = &sim->ranks[r];
        if (!R->waiting || R->open + 1 >= sim->built)
            continue;
        R->waiting = 0;
        sim->result->wait_seconds += t - R->wait_start;
        open_part(sim, r, R->open + 1);
        if (R->ndone == R->end)
            next_part(sim, r, t);
    }
}

/*
 * Streamed, at @p t: every rank has completed the oldest part held? Its
 * slots take the next part (built now), and the ranks waiting for it start.
 */
static void slide(tt_simulator_t *sim, double t)
{
    while (sim->window > 0 && sim->status == TUTTI_OK && sim->retired < sim->built &&
           sim->ranks_done[sim->retired % sim->window] == sim->nranks) {
        sim->ranks_done[sim->retired++ % sim->window] = 0;
        if (sim->built == sim->src.nparts)
            continue;
        sim->status = build_part(sim, sim->built);
        if (sim->status != TUTTI_OK)
            return;
        wake(sim, t);
        drain(sim, t);
    }
}

/* ------------------------------------------------------------ starting and ending */

/* Rank @p rank starts its first part at time 0. */
static void start(tt_simulator_t *sim, int rank)
{
    const sim_rank_t *R = &sim->ranks[rank];

    open_part(sim, rank, 0);
    /* Its ready steps in schedule order, as the executor starts them. */
    for (int32_t i = R->nsteps - 1; i >= 0; i--)
        if (sim->steps[rank][i].pending == 0)
            push_ready(sim, rank, i);
    if (R->ndone == R->end)
        next_part(sim, rank, 0.0); /* past empty parts */
    drain(sim, 0.0);
    slide(sim, 0.0);
}

/* Run the parts held (and, streamed, those built as the ranks come to them) to the end. */
static tutti_status_t play(tt_simulator_t *sim)
{
    for (int r = 0; r < sim->nranks && sim->status == TUTTI_OK; r++)
        start(sim, r);
    while (sim->status == TUTTI_OK && sim->nheap > 0) {
        sim_event_t ev = heap_pop(sim);
        /* The next event's step and rank are almost surely not in cache: load them now. */
        if (sim->nheap > 0) {
            const sim_event_t *next = &sim->heap[0];
            __builtin_prefetch(&sim->steps[next->key >> 33][(next->key >> 2) & 0x7fffffffu]);
            __builtin_prefetch(&sim->ranks[next->key >> 33]);
        }
        handle(sim, &ev);
        drain(sim, ev.t);
        slide(sim, ev.t);
    }
    return sim->status;
}

/* Check that the simulator can run and set up @p res for the run's tallies. */
static tutti_status_t begin(tt_simulator_t *sim, tt_simulator_result_t *res)
{
    if (sim->ran) {
        tt_error("simulator: already ran");
        return TUTTI_ERR_INVALID_ARG;
    }
    memset(res, 0, sizeof(*res));
    res->nranks = sim->nranks;
    res->nclasses = sim->net.nclasses;
    res->rank_finish = calloc((size_t)sim->nranks, sizeof(double));
    if (res->rank_finish == NULL)
        return TUTTI_ERR_NO_MEMORY;
    sim->ran = 1;
    sim->result = res;
    return TUTTI_OK;
}

/* After a run that ended with @p status: tally @p res and hand it over in @p result. */
static tutti_status_t conclude(tt_simulator_t *sim, tt_simulator_result_t *res,
                               tutti_status_t status, tt_simulator_result_t *result)
{
    if (status == TUTTI_OK) {
        summarise_links(sim, res);
        summarise_ranks(sim, res);
        /* A streamed run that deadlocked: build the parts never reached, to count their steps. */
        while (status == TUTTI_OK && sim->built < sim->src.nparts)
            status = build_part(sim, sim->built);
        count_steps(sim, res);
    }
    sim->result = NULL;
    if (status != TUTTI_OK) {
        free(res->rank_finish);
        return status;
    }
    res->memory_bytes = sim->peak + (size_t)sim->nranks * sizeof(double);
    *result = *res;
    return TUTTI_OK;
}

tutti_status_t tt_simulator_run(tt_simulator_t *sim, tt_simulator_result_t *result)
{
    tt_simulator_result_t res;
    tutti_status_t status;

    for (int r = 0; r < sim->nranks && !sim->ran; r++)
        if (sim->ranks[r].nparts == 0) {
            tt_error("simulator: rank %d has no schedule", r);
            return TUTTI_ERR_INVALID_ARG;
        }
    TT_CHECK(begin(sim, &res));
    for (int r = 0; r < sim->nranks; r++)
        sim->built = TT_MAX(sim->built, sim->ranks[r].nparts);
    status = TUTTI_OK;
    for (int part = 0; part < sim->built && status == TUTTI_OK; part++)
        status = match_part(sim, part);
    if (status == TUTTI_OK)
        status = play(sim);
    return conclude(sim, &res, status, result);
}

/* Give every rank @p window slots for the parts of a streamed plan. */
static tutti_status_t make_slots(tt_simulator_t *sim, int window, int nparts)
{
    sim->ranks_done = calloc((size_t)window, sizeof(int));
    if (sim->ranks_done == NULL)
        return TUTTI_ERR_NO_MEMORY;
    sim->window = window;
    for (int r = 0; r < sim->nranks; r++) {
        sim_rank_t *R = &sim->ranks[r];
        R->parts = calloc((size_t)window, sizeof(sim_part_t));
        if (R->parts == NULL)
            return TUTTI_ERR_NO_MEMORY;
        R->nparts = nparts;
    }
    account(sim, 0, (size_t)window * (sizeof(int) + (size_t)sim->nranks * sizeof(sim_part_t)));
    return TUTTI_OK;
}

tutti_status_t tt_simulator_stream(tt_simulator_t *sim, const tt_simulator_source_t *src,
                                   tt_simulator_result_t *result)
{
    tt_simulator_result_t res;
    tutti_status_t status;

    if (src == NULL || src->build == NULL || src->nparts < 1 || src->window < 0) {
        tt_error("simulator: a streamed plan needs a build function, parts and a window >= 0");
        return TUTTI_ERR_INVALID_ARG;
    }
    for (int r = 0; r < sim->nranks && !sim->ran; r++)
        if (sim->ranks[r].nparts > 0) {
            tt_error("simulator: rank %d has schedules: a streamed plan needs a fresh simulator",
                     r);
            return TUTTI_ERR_INVALID_ARG;
        }
    TT_CHECK(begin(sim, &res));
    sim->src = *src;
    status = make_slots(
        sim, TT_MIN(src->window > 0 ? src->window : TT_SIMULATOR_WINDOW, src->nparts), src->nparts);
    while (status == TUTTI_OK && sim->built < sim->window)
        status = build_part(sim, sim->built);
    if (status == TUTTI_OK)
        status = play(sim);
    return conclude(sim, &res, status, result);
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
