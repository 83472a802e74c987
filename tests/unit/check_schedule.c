/*
 * Algorithms tested as data: build every rank's schedule for many (ranks,
 * cluster shape, count, chunk, algorithm, channels, root, in-place) and run
 * them all in memory on the real executor (tests/lib/sim.h), then check
 * every element against a reference computed directly, the bytes each
 * algorithm moves against the textbook figures, and that nothing deadlocks
 * (every send meets its receive).
 */
#include "config.h"

#include "coll/coll.h"
#include "coll/select.h"
#include "coll/ring.h"
#include "coll/tree.h"
#include "reduce/reduce.h"
#include "tests/lib/sim.h"
#include "tests/lib/unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A distinct, well-mixed value for element @p i of rank @p r's input. */
static uint64_t value(int r, uint64_t i)
{
    uint64_t x = ((uint64_t)r + 1) * 0x9e3779b97f4a7c15ull ^ (i + 1) * 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 31);
}

/* A double near 1 with NaNs sprinkled in: combining it is order-sensitive. */
static uint64_t float_value(int r, uint64_t i)
{
    double d = (i + (uint64_t)r) % 13 == 0 ? NAN : (double)value(r, i) * 1e-19;
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

typedef uint64_t (*fill_fn_t)(int rank, uint64_t i);

/* Every rank's schedule, buffers and executor environment. */
typedef struct world {
    int n;
    tt_coll_desc_t desc;   /* the last rank's; the rest differ only in rank and in_place */
    tt_coll_desc_t *descs; /* every rank's */
    tt_schedule_t *scheds; /* every rank's current part */
    const tt_schedule_t **sched_ptrs;
    void *(*bases)[TT_BUF_COUNT];
    tt_exec_env_t *envs;
    uint64_t **send, **recv;
    uint64_t **owned;         /* [2 * rank + k]: the allocations behind send and recv */
    uint64_t **host_counts;   /* hierarchical all-to-all-v: every rank's plan memory */
    tt_transport_t ***routes; /* [rank][peer] */
    tt_sim_t *sim;
} world_t;

static size_t send_elems(const tt_coll_desc_t *d)
{
    if (d->kind == TT_COLL_ALLTOALLV)
        return tt_a2a_extent(d->layout->send_counts, d->layout->send_displs, d->nranks);
    return d->kind == TT_COLL_REDUCE_SCATTER || d->kind == TT_COLL_ALLTOALL
               ? d->count * (size_t)d->nranks
               : d->count;
}

static size_t recv_elems(const tt_coll_desc_t *d)
{
    if (d->kind == TT_COLL_ALLTOALLV)
        return tt_a2a_extent(d->layout->recv_counts, d->layout->recv_displs, d->nranks);
    return d->kind == TT_COLL_ALLGATHER || d->kind == TT_COLL_ALLTOALL
               ? d->count * (size_t)d->nranks
               : d->count;
}

static int rooted(tt_coll_kind_t kind)
{
    return kind == TT_COLL_BROADCAST || kind == TT_COLL_REDUCE;
}

/* Build part @p part of rank @p r's plan; the scratch carries over from part to part. */
static void world_build(world_t *w, int r, int part)
{
    const tt_coll_desc_t *d = &w->descs[r];

    tt_schedule_fini(&w->scheds[r]);
    tt_schedule_init(&w->scheds[r], d->elem_size);
    if (tt_coll_build_part(d, part, &w->scheds[r]) != TUTTI_OK)
        ck_abort_msg("building part %d of %s/%s for rank %d of %d failed", part,
                     tt_coll_kind_names[d->kind], tt_algo_names[d->algo], r, d->nranks);
    w->bases[r][TT_BUF_SCRATCH] =
        realloc(w->bases[r][TT_BUF_SCRATCH], w->scheds[r].scratch_bytes + 1);
}

/*
 * Build every rank's schedule (its first part) for @p tmpl (rank ignored) with elements of
 * @p type combined by @p op, lay out the buffers (in place where asked) and
 * fill the inputs with @p fill. All-to-all-v: tmpl->layout is an array of
 * every rank's layout.
 */
static void world_init(world_t *w, const tt_coll_desc_t *tmpl, tutti_datatype_t type, tutti_op_t op,
                       fill_fn_t fill)
{
    int n = tmpl->nranks;

    memset(w, 0, sizeof(*w));
    w->n = n;
    w->descs = calloc((size_t)n, sizeof(*w->descs));
    w->scheds = calloc((size_t)n, sizeof(*w->scheds));
    w->sched_ptrs = calloc((size_t)n, sizeof(*w->sched_ptrs));
    w->bases = calloc((size_t)n, sizeof(*w->bases));
    w->envs = calloc((size_t)n, sizeof(*w->envs));
    w->send = calloc((size_t)n, sizeof(*w->send));
    w->recv = calloc((size_t)n, sizeof(*w->recv));
    w->owned = calloc(2 * (size_t)n, sizeof(*w->owned));
    w->host_counts = calloc((size_t)n, sizeof(*w->host_counts));
    w->routes = calloc((size_t)n, sizeof(*w->routes));
    w->sim = tt_sim_create(n, 192);
    for (int r = 0; r < n; r++) {
        tt_coll_desc_t d = *tmpl;
        size_t sn = send_elems(&d), rn = recv_elems(&d);

        d.rank = r;
        d.elem_size = sizeof(uint64_t);
        if (d.kind == TT_COLL_ALLTOALLV) {
            d.layout = &tmpl->layout[r];
            sn = send_elems(&d);
            rn = recv_elems(&d);
        }
        d.in_place =
            tmpl->in_place && (!rooted(d.kind) || r == d.root) && d.kind != TT_COLL_BARRIER;
        if (tt_a2a_host_counts_len(&d) > 0) { /* what tt_plan_build does */
            w->host_counts[r] = calloc(tt_a2a_host_counts_len(&d), sizeof(uint64_t));
            tt_a2a_host_counts_init(&d, w->host_counts[r]);
            d.host_counts = w->host_counts[r];
        }
        w->desc = w->descs[r] = d;
        /* The in-place layouts of tutti.h. */
        if (!d.in_place) {
            w->send[r] = w->owned[2 * r] = calloc(sn + 1, sizeof(uint64_t));
            w->recv[r] = w->owned[2 * r + 1] = calloc(rn + 1, sizeof(uint64_t));
        } else if (d.kind == TT_COLL_REDUCE_SCATTER) {
            w->send[r] = w->owned[2 * r] = calloc(sn + 1, sizeof(uint64_t));
            w->recv[r] = w->send[r] + (size_t)r * d.count;
        } else {
            w->recv[r] = w->owned[2 * r] = calloc(TT_MAX(rn, sn) + 1, sizeof(uint64_t));
            w->send[r] =
                d.kind == TT_COLL_ALLGATHER ? w->recv[r] + (size_t)r * d.count : w->recv[r];
        }
        for (size_t i = 0; i < sn; i++)
            w->send[r][i] = fill(r, i);
        tt_schedule_init(&w->scheds[r], sizeof(uint64_t));
        world_build(w, r, 0);
        w->sched_ptrs[r] = &w->scheds[r];
        w->routes[r] = calloc((size_t)n, sizeof(tt_transport_t *));
        for (int p = 0; p < n; p++)
            w->routes[r][p] = tt_sim_transport(w->sim, r);
        w->bases[r][TT_BUF_SEND] = w->send[r];
        w->bases[r][TT_BUF_RECV] = w->recv[r];
        w->bases[r][TT_BUF_PLAN] = w->host_counts[r];
        w->envs[r].route = w->routes[r];
        w->envs[r].reduce =
            tt_reduce_kernel(TT_REDUCE_ISA_AUTO, type, op == TUTTI_AVG ? TUTTI_SUM : op);
        w->envs[r].reduce_final = tt_reduce_kernel(TT_REDUCE_ISA_AUTO, type, op);
        w->envs[r].divisor = (uint32_t)n;
    }
}

static void world_fini(world_t *w)
{
    for (int r = 0; r < w->n; r++) {
        free(w->owned[2 * r]);
        free(w->owned[2 * r + 1]);
        free(w->host_counts[r]);
        free(w->bases[r][TT_BUF_SCRATCH]);
        free(w->routes[r]);
        tt_schedule_fini(&w->scheds[r]);
    }
    tt_sim_destroy(w->sim);
    free(w->descs);
    free(w->scheds);
    free(w->sched_ptrs);
    free(w->bases);
    free(w->envs);
    free(w->send);
    free(w->recv);
    free(w->owned);
    free(w->host_counts);
    free(w->routes);
}

/* Run every part of every rank's plan, each part on all ranks before the next. */
static void world_run(world_t *w, unsigned seed, const char *what)
{
    int parts = tt_coll_parts(&w->desc);

    for (int part = 0; part < parts; part++) {
        tutti_status_t status;
        for (int r = 0; r < w->n && part > 0; r++)
            world_build(w, r, part);
        status = tt_sim_run(w->sim, w->sched_ptrs, w->bases, w->envs, seed + (unsigned)part);
        if (status != TUTTI_OK)
            ck_abort_msg("%s: part %d of %d: %s", what, part, parts,
                         status == TUTTI_ERR_INTERNAL ? "deadlock" : tutti_status_string(status));
    }
}

/* The reduction (wrapping sum) of element i of every rank's input block at @p offset. */
static uint64_t sum_of(int n, uint64_t offset, uint64_t i)
{
    uint64_t s = 0;
    for (int r = 0; r < n; r++)
        s += value(r, offset + i);
    return s;
}

/* What every rank should end with: one vector, computed once (rank r's block of it for RS). */
static uint64_t *expected_vector(const world_t *w, size_t *len_p)
{
    const tt_coll_desc_t *d = &w->desc;
    size_t len = d->kind == TT_COLL_REDUCE_SCATTER || d->kind == TT_COLL_ALLGATHER
                     ? d->count * (size_t)w->n
                     : d->count;
    uint64_t *want = calloc(len + 1, sizeof(uint64_t));

    for (size_t i = 0; i < len; i++) {
        switch (d->kind) {
        case TT_COLL_ALLREDUCE:
        case TT_COLL_REDUCE:
        case TT_COLL_REDUCE_SCATTER: want[i] = sum_of(w->n, 0, i); break;
        case TT_COLL_ALLGATHER: want[i] = value((int)(i / d->count), i % d->count); break;
        case TT_COLL_BROADCAST: want[i] = value(d->root, i); break;
        default: break;
        }
    }
    *len_p = len;
    return want;
}

/*
 * All-to-all(-v): every element of rank @p r's receive buffer must hold what
 * its sender sent, and an element no block covers what it held before (the
 * input in place, else zero).
 */
static void check_alltoall(const world_t *w, int r, const char *what)
{
    const tt_coll_desc_t *d = &w->descs[r];
    size_t len = TT_MAX(recv_elems(d), d->in_place ? send_elems(d) : 0);
    uint64_t *want = calloc(len + 1, sizeof(uint64_t));

    for (size_t i = 0; d->in_place && i < send_elems(d); i++)
        want[i] = value(r, i);
    for (int q = 0; q < w->n; q++) {
        const tt_coll_desc_t *dq = &w->descs[q];
        uint64_t from = dq->layout ? dq->layout->send_displs[r] : (uint64_t)r * d->count;
        uint64_t to = d->layout ? d->layout->recv_displs[q] : (uint64_t)q * d->count;
        uint64_t count = d->layout ? d->layout->recv_counts[q] : d->count;
        for (uint64_t e = 0; e < count; e++)
            want[to + e] = value(q, from + e);
    }
    for (size_t i = 0; i < len; i++)
        if (w->recv[r][i] != want[i])
            ck_abort_msg("%s: rank %d element %zu is %#llx, expected %#llx", what, r, i,
                         (unsigned long long)w->recv[r][i], (unsigned long long)want[i]);
    free(want);
}

static void check_results(const world_t *w, const char *what)
{
    const tt_coll_desc_t *d = &w->desc;
    size_t len;
    uint64_t *want;

    if (d->kind == TT_COLL_ALLTOALL || d->kind == TT_COLL_ALLTOALLV) {
        for (int r = 0; r < w->n; r++)
            check_alltoall(w, r, what);
        return;
    }
    want = expected_vector(w, &len);
    for (int r = 0; r < w->n && d->kind != TT_COLL_BARRIER; r++) {
        /* Reduce-scatter: rank r holds block r of the reduced vector. */
        const uint64_t *mine =
            d->kind == TT_COLL_REDUCE_SCATTER ? want + (size_t)r * d->count : want;
        if (d->kind == TT_COLL_REDUCE && r != d->root)
            continue;
        for (uint64_t i = 0; i < recv_elems(d); i++)
            /* Check logs every assertion it evaluates: only call it on a mismatch. */
            if (w->recv[r][i] != mine[i])
                ck_abort_msg("%s: rank %d element %llu is %#llx, expected %#llx", what, r,
                             (unsigned long long)i, (unsigned long long)w->recv[r][i],
                             (unsigned long long)mine[i]);
    }
    free(want);
}

static tt_coll_desc_t desc_of(tt_coll_kind_t kind, tt_algo_t algo, int n, uint64_t count,
                              size_t chunk, int channels, const tt_cluster_t *cluster)
{
    tt_coll_desc_t d = {.kind = kind,
                        .count = count,
                        .elem_size = sizeof(uint64_t),
                        .nranks = n,
                        .algo = algo,
                        .channels = channels,
                        .chunk_bytes = chunk,
                        .pipeline_slots = 3,
                        .cluster = cluster};
    return d;
}

static void run_case(const tt_coll_desc_t *d, unsigned seed)
{
    char what[200];
    world_t w;

    snprintf(what, sizeof(what),
             "%s/%s n=%d count=%llu chunk=%zu channels=%d root=%d in_place=%d%s",
             tt_coll_kind_names[d->kind], tt_algo_names[d->algo], d->nranks,
             (unsigned long long)d->count, d->chunk_bytes, d->channels, d->root, d->in_place,
             d->cluster ? " (cluster)" : "");
    world_init(&w, d, TUTTI_UINT64, TUTTI_SUM, value);
    world_run(&w, seed, what);
    check_results(&w, what);
    world_fini(&w);
}

static const tt_coll_kind_t kinds[] = {TT_COLL_ALLREDUCE, TT_COLL_REDUCE_SCATTER, TT_COLL_ALLGATHER,
                                       TT_COLL_BROADCAST, TT_COLL_REDUCE,         TT_COLL_BARRIER,
                                       TT_COLL_ALLTOALL};

/* Every collective with every algorithm it has that runs without a cluster view; _i ranks. */
START_TEST(every_algorithm_every_shape)
{
    int n = _i;
    uint64_t counts[] = {0, 1, 2, 3, (uint64_t)n - 1, (uint64_t)n, (uint64_t)n + 1, 1000, 4099};
    size_t chunks[] = {64, 1024, 256 * 1024};
    unsigned seed = (unsigned)n * 7919u;

    for (size_t k = 0; k < TT_ARRAY_SIZE(kinds); k++)
        for (int a = TT_ALGO_AUTO + 1; a < TT_ALGO_COUNT; a++) {
            if (!tt_algo_supports((tt_algo_t)a, kinds[k]) || a == TT_ALGO_HIER)
                continue;
            for (size_t c = 0; c < TT_ARRAY_SIZE(counts); c++)
                for (size_t ch = 0; ch < TT_ARRAY_SIZE(chunks); ch++) {
                    int roots[] = {0, n - 1, n / 2};
                    if (chunks[ch] == 64 && counts[c] > 1000)
                        continue;
                    for (int in_place = 0; in_place <= 1; in_place++)
                        for (size_t ro = 0; ro < 3; ro++) {
                            tt_coll_desc_t d = desc_of(kinds[k], (tt_algo_t)a, n, counts[c],
                                                       chunks[ch], 1 + (int)(c % 3), NULL);
                            if (ro > 0 && !rooted(kinds[k]))
                                break;
                            d.root = roots[ro];
                            d.in_place = in_place;
                            run_case(&d, seed++);
                        }
                }
        }
}
END_TEST

/* Cluster shapes: hosts x ranks per host x NICs. */
static const int shapes[][3] = {{2, 4, 2}, {3, 2, 1}, {4, 3, 4}, {5, 1, 0},
                                {2, 8, 8}, {3, 5, 2}, {7, 2, 2}, {1, 6, 2}};

/* Every algorithm on clusters of several hosts, with the topology-aware orders. */
START_TEST(algorithms_on_clusters)
{
    const int *shape = shapes[_i];
    tt_cluster_t cluster;
    int n = shape[0] * shape[1];
    uint64_t counts[] = {0, 1, (uint64_t)n + 1, 1001, 5003};
    unsigned seed = (unsigned)_i * 104729u;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, shape[0], shape[1], shape[2], NULL), TUTTI_OK);
    for (size_t k = 0; k < TT_ARRAY_SIZE(kinds); k++)
        for (int a = TT_ALGO_AUTO + 1; a < TT_ALGO_COUNT; a++) {
            if (!tt_algo_supports((tt_algo_t)a, kinds[k]))
                continue;
            for (size_t c = 0; c < TT_ARRAY_SIZE(counts); c++)
                for (int channels = 1; channels <= 4; channels *= 2)
                    for (int in_place = 0; in_place <= 1; in_place++) {
                        tt_coll_desc_t d = desc_of(kinds[k], (tt_algo_t)a, n, counts[c],
                                                   c % 2 ? 512 : 64 * 1024, channels, &cluster);
                        d.root = (int)(c % (uint64_t)n);
                        d.in_place = in_place;
                        run_case(&d, seed++);
                    }
        }
    tt_cluster_fini(&cluster);
}
END_TEST

/* Large rank counts: the plans stay correct and deadlock-free up to 1024 ranks. */
START_TEST(large_rank_counts)
{
    static const struct {
        int hosts, per_host;
        tt_algo_t algo;
    } cases[] = {
        {1024, 1, TT_ALGO_RING}, {128, 8, TT_ALGO_RING}, {128, 8, TT_ALGO_HIER},
        {1024, 1, TT_ALGO_TREE}, {64, 16, TT_ALGO_TREE}, {1000, 1, TT_ALGO_RD},
        {256, 4, TT_ALGO_HIER},
    };
    tt_cluster_t cluster;
    int i = _i, n = cases[i].hosts * cases[i].per_host;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, cases[i].hosts, cases[i].per_host, 4, NULL),
                     TUTTI_OK);
    {
        tt_coll_desc_t d =
            desc_of(TT_COLL_ALLREDUCE, cases[i].algo, n, 3 * (uint64_t)n + 7, 1 << 20, 2, &cluster);
        run_case(&d, 77u + (unsigned)i);
    }
    tt_cluster_fini(&cluster);
}
END_TEST

static uint64_t bytes_from(const world_t *w, int rank)
{
    uint64_t total = 0;
    for (int p = 0; p < w->n; p++)
        total += tt_sim_bytes(w->sim, rank, p);
    return total;
}

/* Rings move exactly what the textbook says: every rank sends 2(n-1)/n of the data (per channel).
 */
START_TEST(ring_bytes_are_textbook)
{
    int n = _i;
    uint64_t count = 100003;
    size_t es = sizeof(uint64_t);
    tt_cluster_t cluster;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, n, 1, 4, NULL), TUTTI_OK);
    for (int channels = 1; channels <= 4; channels++) {
        tt_coll_desc_t d =
            desc_of(TT_COLL_ALLREDUCE, TT_ALGO_RING, n, count, 4096, channels, &cluster);
        world_t w;

        d.part_steps = channels % 2 ? 0 : 100; /* in parts or whole: the same bytes */
        world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
        world_run(&w, 1, "ring bytes");
        check_results(&w, "ring bytes");
        for (int r = 0; r < n; r++) {
            uint64_t want = 0;
            for (int c = 0; c < channels; c++) {
                tt_span_t span = tt_block(count, channels, c);
                tt_ring_t g;
                d.rank = r;
                tt_ring_channel(&g, &d, c);
                /* Every block but its own (reduce-scatter) and the next one (all-gather). */
                want += 2 * span.count - tt_sub_block(span, n, g.me).count -
                        tt_sub_block(span, n, tt_mod(g.me + 1, n)).count;
            }
            ck_assert_uint_eq(bytes_from(&w, r), want * es);
            /* ... which is 2(n-1)/n of the buffer, give or take the rounding of blocks. */
            ck_assert(fabs((double)bytes_from(&w, r) - 2.0 * (n - 1) / n * (double)(count * es)) <=
                      (double)(4 * channels * es));
        }
        world_fini(&w);
    }
    tt_cluster_fini(&cluster);
}
END_TEST

/* The double binary tree: each edge carries its tree's half once up and once down. */
START_TEST(tree_bytes_are_per_edge)
{
    int n = _i;
    uint64_t count = 20001;
    tt_coll_desc_t d = desc_of(TT_COLL_ALLREDUCE, TT_ALGO_TREE, n, count, 8192, 2, NULL);
    world_t w;

    world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
    world_run(&w, 3, "tree bytes");
    check_results(&w, "tree bytes");
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            uint64_t want = 0;
            for (int t = 0; t < 2; t++) {
                int pa = tt_btree_position(n, t, a), pb = tt_btree_position(n, t, b), links[3];
                uint64_t half = tt_block(count, 2, t).count * sizeof(uint64_t);
                tt_btree_links(n, pa, &links[0], &links[1], &links[2]);
                if (links[0] == pb || links[1] == pb || links[2] == pb)
                    want += half; /* up to the parent, or down to a child */
            }
            if (tt_sim_bytes(w.sim, a, b) != want)
                ck_abort_msg("n=%d: %d -> %d moved %llu bytes, expected %llu", n, a, b,
                             (unsigned long long)tt_sim_bytes(w.sim, a, b),
                             (unsigned long long)want);
        }
    world_fini(&w);
}
END_TEST

/* Hierarchical: the network carries each byte of a host's data 2(H-1)/H times, no more. */
START_TEST(hier_bytes_cross_hosts_once)
{
    const int *shape = shapes[_i];
    int H = shape[0], L = shape[1], n = H * L;
    uint64_t count = 30011, across = 0, expect;
    tt_cluster_t cluster;
    world_t w;

    if (H < 2)
        return;
    ck_assert_int_eq(tt_cluster_uniform(&cluster, H, L, shape[2], NULL), TUTTI_OK);
    {
        tt_coll_desc_t d = desc_of(TT_COLL_ALLREDUCE, TT_ALGO_HIER, n, count, 4096, 1, &cluster);
        d.part_steps = _i % 2 ? 0 : 20; /* in parts or whole: the same bytes */
        world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
    }
    world_run(&w, 5, "hier bytes");
    check_results(&w, "hier bytes");
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            if (tt_cluster_link(&cluster, a, b) == TT_LINK_NET)
                across += tt_sim_bytes(w.sim, a, b);
    /* Each host sends 2(H-1)/H of the vector: L shards, each a ring over H hosts. */
    expect = (uint64_t)(2 * (H - 1)) * count * sizeof(uint64_t);
    ck_assert_msg(fabs((double)across - (double)expect) <= (double)(4 * n * L * sizeof(uint64_t)),
                  "%d hosts x %d: %llu bytes crossed hosts, expected about %llu", H, L,
                  (unsigned long long)across, (unsigned long long)expect);
    world_fini(&w);
    tt_cluster_fini(&cluster);
}
END_TEST

/*
 * Plans in parts (tt_coll_parts): every algorithm that has rounds gives the
 * same results when cut into parts as small as one round, on clusters of
 * every shape, in place or not.
 */
START_TEST(plans_in_parts)
{
    const int *shape = shapes[_i];
    static const uint32_t part_steps[] = {1, 7, 60};
    tt_cluster_t cluster;
    int n = shape[0] * shape[1];
    uint64_t counts[] = {0, 1, (uint64_t)n + 1, 3001};
    unsigned seed = (unsigned)_i * 7717u;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, shape[0], shape[1], shape[2], NULL), TUTTI_OK);
    for (size_t k = 0; k < 3; k++)
        for (int a = TT_ALGO_RING; a <= TT_ALGO_HIER; a++) {
            if (!tt_algo_supports((tt_algo_t)a, kinds[k]) || a == TT_ALGO_TREE)
                continue;
            for (size_t c = 0; c < TT_ARRAY_SIZE(counts); c++)
                for (size_t p = 0; p < TT_ARRAY_SIZE(part_steps); p++) {
                    tt_coll_desc_t d = desc_of(kinds[k], (tt_algo_t)a, n, counts[c], 1024,
                                               1 + (int)(c % 2), &cluster);
                    d.part_steps = part_steps[p];
                    d.in_place = (int)(p % 2);
                    run_case(&d, seed++);
                }
        }
    tt_cluster_fini(&cluster);
}
END_TEST

/* Every rank's all-to-all-v layout, with the arrays behind it. */
typedef struct a2a_layouts {
    int n;
    tt_a2a_layout_t *layout;
    size_t *arrays; /* 4 n x n blocks: send counts, send displs, recv counts, recv displs */
} a2a_layouts_t;

/* Place @p n blocks of @p counts in a shuffled order with random gaps. */
static void scatter_blocks(const size_t *counts, size_t *displs, int n, unsigned *seed)
{
    int *order = malloc((size_t)n * sizeof(int));
    size_t at = 0;

    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = rand_r(seed) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < n; i++) {
        at += (size_t)(rand_r(seed) % 3); /* a gap of 0-2 elements */
        displs[order[i]] = at;
        at += counts[order[i]];
    }
    free(order);
}

/*
 * Random counts for @p n ranks: zeros everywhere, one rank that sends
 * nothing, one that receives nothing, one hot receiver (the skew of MoE
 * routing), blocks shuffled in the buffers.
 */
static void a2a_layouts_init(a2a_layouts_t *l, int n, uint64_t scale, unsigned seed)
{
    size_t nn = (size_t)n * (size_t)n, *sc, *sd, *rc, *rd;

    l->n = n;
    l->layout = calloc((size_t)n, sizeof(*l->layout));
    l->arrays = calloc(4 * nn, sizeof(size_t));
    sc = l->arrays, sd = sc + nn, rc = sd + nn, rd = rc + nn;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            uint64_t c = rand_r(&seed) % 4 == 0 ? 0 : (uint64_t)rand_r(&seed) % (scale + 1);
            if (n > 2 && i == 1)
                c = 0; /* sends nothing */
            if (n > 3 && j == 2)
                c = 0; /* receives nothing */
            if (n > 1 && j == n - 1 && i != 1)
                c = c * 16 + 1; /* the hot expert */
            sc[(size_t)i * n + j] = rc[(size_t)j * n + i] = c;
        }
    for (int r = 0; r < n; r++) {
        size_t row = (size_t)r * n;
        scatter_blocks(sc + row, sd + row, n, &seed);
        scatter_blocks(rc + row, rd + row, n, &seed);
        l->layout[r] = (tt_a2a_layout_t){sc + row, sd + row, rc + row, rd + row};
    }
}

static void a2a_layouts_fini(a2a_layouts_t *l)
{
    free(l->layout);
    free(l->arrays);
}

/*
 * All-to-all-v with random, skewed counts (zeros, ranks that send or
 * receive nothing), blocks in any order with gaps, in place or not, on one
 * host and on clusters (pairwise and hierarchical), whole and in parts.
 * Every pair exchanges exactly its block, and nothing else in the buffers
 * changes.
 */
START_TEST(alltoallv_random_counts)
{
    static const int sizes[] = {1, 2, 3, 4, 5, 6, 8, 9, 13};
    static const uint64_t scales[] = {0, 1, 7, 300};

    for (size_t i = 0; i < TT_ARRAY_SIZE(sizes); i++)
        for (size_t sc = 0; sc < TT_ARRAY_SIZE(scales); sc++)
            for (int variant = 0; variant < 6; variant++) {
                int n = sizes[i], hosts = n % 2 == 0 ? 2 : n % 3 == 0 ? 3 : 0;
                unsigned seed = (unsigned)(n * 131 + (int)sc * 17 + variant);
                tt_cluster_t cluster;
                a2a_layouts_t l;
                tt_coll_desc_t d;
                int clustered = variant >= 2 && hosts > 0;
                tt_algo_t algo = clustered && variant >= 4 ? TT_ALGO_HIER : TT_ALGO_PAIRWISE;

                if (clustered)
                    ck_assert_int_eq(tt_cluster_uniform(&cluster, hosts, n / hosts, 2, NULL),
                                     TUTTI_OK);
                a2a_layouts_init(&l, n, scales[sc], seed);
                d = desc_of(TT_COLL_ALLTOALLV, algo, n, 0, 1024, 1 + variant % 2,
                            clustered ? &cluster : NULL);
                d.layout = l.layout;
                d.in_place = variant % 2;
                d.part_steps = variant == 3 || variant == 5 ? 3 : 0;
                /* Hierarchical: some host pairs aggregated and some direct, or all aggregated. */
                d.aggregate_bytes = variant == 4 ? 64 * sizeof(uint64_t) : UINT64_MAX;
                run_case(&d, seed);
                a2a_layouts_fini(&l);
                if (clustered)
                    tt_cluster_fini(&cluster);
            }
}
END_TEST

/* All-to-all in parts as small as one round gives the same results, in place too. */
START_TEST(alltoall_in_parts)
{
    const int *shape = shapes[_i];
    static const uint32_t part_steps[] = {1, 7, 60};
    tt_cluster_t cluster;
    int n = shape[0] * shape[1];

    ck_assert_int_eq(tt_cluster_uniform(&cluster, shape[0], shape[1], shape[2], NULL), TUTTI_OK);
    for (size_t p = 0; p < TT_ARRAY_SIZE(part_steps); p++)
        for (int in_place = 0; in_place <= 1; in_place++) {
            tt_coll_desc_t d =
                desc_of(TT_COLL_ALLTOALL, TT_ALGO_PAIRWISE, n, 37, 1024, 2, &cluster);
            d.part_steps = part_steps[p];
            d.in_place = in_place;
            ck_assert_int_gt(tt_coll_parts(&d), (p < 2 ? 1 : 0));
            run_case(&d, (unsigned)(_i * 31 + (int)p));
        }
    tt_cluster_fini(&cluster);
}
END_TEST

/* Pairwise all-to-all moves each block once, straight to its owner, and none to itself. */
START_TEST(alltoall_bytes_are_one_block_per_pair)
{
    int n = _i;
    uint64_t count = 1001;
    tt_coll_desc_t d = desc_of(TT_COLL_ALLTOALL, TT_ALGO_PAIRWISE, n, count, 4096, 3, NULL);
    world_t w;

    world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
    world_run(&w, 11, "alltoall bytes");
    check_results(&w, "alltoall bytes");
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            ck_assert_uint_eq(tt_sim_bytes(w.sim, a, b), a == b ? 0 : count * sizeof(uint64_t));
    world_fini(&w);
}
END_TEST

/*
 * Pairwise all-to-all cuts a large block between hosts into a piece per
 * channel, so a pair alone uses every rail: results right, in place and in
 * parts too, each block sent once in all, and every channel carrying part
 * of each large block between hosts (blocks inside a host, and small ones,
 * stay whole on one channel).
 */
START_TEST(alltoall_cuts_large_blocks_between_hosts)
{
    /* 320 KB blocks: cut over 2 channels, not over 3 (pieces of 128K at least) */
    static const uint64_t counts[] = {40001, 60001};
    tt_cluster_t cluster;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, 2, 2, 2, NULL), TUTTI_OK);
    for (size_t c = 0; c < TT_ARRAY_SIZE(counts); c++)
        for (int channels = 2; channels <= 3; channels++)
            for (int variant = 0; variant < 4; variant++) {
                tt_coll_desc_t d = desc_of(TT_COLL_ALLTOALL, TT_ALGO_PAIRWISE, 4, counts[c],
                                           1 << 20, channels, &cluster);
                uint64_t block = counts[c] * sizeof(uint64_t);
                int cut = block >= (uint64_t)channels * (128u << 10);
                world_t w;

                d.in_place = variant % 2;
                d.part_steps = variant >= 2 ? 3 : 0;
                if (d.part_steps > 0) {
                    run_case(&d, (unsigned)(c * 7 + (size_t)channels));
                    continue;
                }
                world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
                world_run(&w, 5, "alltoall cut");
                check_results(&w, "alltoall cut");
                for (int r = 0; r < 4; r++) {
                    const tt_schedule_t *s = &w.scheds[r];
                    for (int peer = 0; peer < 4; peer++) {
                        uint64_t on[TT_MAX_CHANNELS] = {0};
                        int used = 0, remote = peer / 2 != r / 2;

                        if (peer == r)
                            continue;
                        ck_assert_uint_eq(tt_sim_bytes(w.sim, r, peer), block);
                        for (int32_t i = 0; i < s->nsteps; i++)
                            if (s->steps[i].kind == TT_STEP_SEND && s->steps[i].peer == peer)
                                on[s->steps[i].channel] += s->steps[i].count;
                        for (int ch = 0; ch < channels; ch++)
                            used += on[ch] > 0;
                        ck_assert_msg(used == (remote && cut ? channels : 1),
                                      "rank %d to %d, %d channels, %llu-byte block: %d used", r,
                                      peer, channels, (unsigned long long)block, used);
                    }
                }
                world_fini(&w);
            }
    tt_cluster_fini(&cluster);
}
END_TEST

/* The bytes rank @p from's all-to-all(-v) sends rank @p to. */
static uint64_t a2a_bytes(const tt_coll_desc_t *d, int from, int to)
{
    uint64_t count = d->layout != NULL ? d->layout[from].send_counts[to] : d->count;
    return count * sizeof(uint64_t);
}

/*
 * Hierarchical all-to-all and all-to-all-v: between two hosts the network
 * carries exactly their blocks each way, all between one pair of ranks
 * (the pair's carriers), and the carriers of a host's pairs spread over
 * its ranks. All-to-all-v's count rows stay within the host. With blocks
 * above TUTTI_A2A_AGGREGATE (here: any), all-to-all-v's host pairs
 * exchange rank to rank instead: each rank pair exactly its block.
 */
START_TEST(hier_alltoall_aggregates_per_host_pair)
{
    const int *shape = shapes[_i];
    int H = shape[0], L = shape[1], n = H * L;
    tt_cluster_t cluster;

    if (H < 2)
        return;
    ck_assert_int_eq(tt_cluster_uniform(&cluster, H, L, shape[2], NULL), TUTTI_OK);
    for (int v = 0; v <= 2; v++) {
        tt_coll_desc_t d = desc_of(v ? TT_COLL_ALLTOALLV : TT_COLL_ALLTOALL, TT_ALGO_HIER, n,
                                   v ? 0 : 13, 4096, 1, &cluster);
        int direct = v == 2;
        a2a_layouts_t l;
        world_t w;

        if (v) {
            a2a_layouts_init(&l, n, 50, (unsigned)_i);
            d.layout = l.layout;
            d.aggregate_bytes = direct ? 0 : UINT64_MAX;
        }
        world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
        world_run(&w, 17, "hier alltoall bytes");
        check_results(&w, "hier alltoall bytes");
        for (int a = 0; a < H; a++)
            for (int b = 0; b < H; b++) {
                int pairs = 0;
                uint64_t total = 0, want = 0;
                if (a == b)
                    continue;
                for (int i = 0; i < L; i++)
                    for (int j = 0; j < L; j++) {
                        int from = tt_cluster_rank(&cluster, a, i);
                        int to = tt_cluster_rank(&cluster, b, j);
                        uint64_t bytes = tt_sim_bytes(w.sim, from, to);
                        pairs += bytes > 0;
                        total += bytes;
                        want += a2a_bytes(&d, from, to);
                        if (direct)
                            ck_assert_uint_eq(bytes, a2a_bytes(&d, from, to));
                        /* The pair's carrier is local rank (a + b) mod L on both hosts. */
                        else if (bytes > 0)
                            ck_assert(i == (a + b) % L && j == i);
                    }
                if (!direct)
                    ck_assert_int_eq(pairs, want > 0);
                ck_assert_uint_eq(total, want);
            }
        world_fini(&w);
        if (v)
            a2a_layouts_fini(&l);
    }
    tt_cluster_fini(&cluster);
}
END_TEST

/* Bruck sends one message per bit of n-1: ceil(log2 n) of them, about half the data each. */
START_TEST(bruck_takes_log_rounds)
{
    for (int n = 1; n <= 40; n++) {
        tt_coll_desc_t d = desc_of(TT_COLL_ALLTOALL, TT_ALGO_BRUCK, n, 5, 4096, 1, NULL);
        tt_schedule_t s;
        int sends = 0, rounds = 0;
        uint64_t bytes = 0;

        for (int step = 1; step < n; step *= 2)
            rounds++;
        d.rank = n / 2;
        tt_schedule_init(&s, d.elem_size);
        ck_assert_int_eq(tt_coll_build(&d, &s), TUTTI_OK);
        for (int32_t i = 0; i < s.nsteps; i++)
            if (s.steps[i].kind == TT_STEP_SEND) {
                sends++;
                bytes += s.steps[i].count;
            }
        ck_assert_int_eq(sends, rounds);
        /* Each round moves at most half the slots, rounded up. */
        ck_assert_uint_le(bytes, (uint64_t)rounds * (uint64_t)(n / 2 + 1) * 5);
        tt_schedule_fini(&s);
    }
}
END_TEST

/*
 * An all-to-all-v whose two ends disagree on a count fails; it never
 * truncates. Pairwise, and hierarchical (2 hosts of 2 ranks) both within a
 * host and between hosts (there it fails in part 1, the data's).
 */
START_TEST(alltoallv_mismatched_counts_are_caught)
{
    int n = 4;
    tt_cluster_t cluster;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, 2, 2, 2, NULL), TUTTI_OK);
    for (int c = 0; c < 3; c++) {
        tt_coll_desc_t d = desc_of(TT_COLL_ALLTOALLV, c ? TT_ALGO_HIER : TT_ALGO_PAIRWISE, n, 0,
                                   1024, 1, c ? &cluster : NULL);
        int parts = tt_coll_parts(&d);
        tutti_status_t status = TUTTI_OK;
        a2a_layouts_t l;
        world_t w;

        a2a_layouts_init(&l, n, 50, 5);
        d.aggregate_bytes = UINT64_MAX; /* through the carriers */
        /* Rank 3 expects one element more from rank 2 (its host) or 0 than it sends it. */
        ((size_t *)l.layout[3].recv_counts)[c == 1 ? 2 : 0]++;
        d.layout = l.layout;
        world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
        for (int part = 0; part < parts && status == TUTTI_OK; part++) {
            for (int r = 0; r < n && part > 0; r++)
                world_build(&w, r, part);
            status = tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, 9);
        }
        ck_assert_int_eq(status, TUTTI_ERR_PROTOCOL);
        world_fini(&w);
        a2a_layouts_fini(&l);
    }
    tt_cluster_fini(&cluster);
}
END_TEST

/*
 * Point-to-point groups: random messages of random sizes (zero included)
 * between random pairs of ranks (a rank and itself included); each rank
 * posts its sends and receives in the order the messages were made, sends
 * and receives interleaved. Every message must land whole where its
 * receive says, with no deadlock under rendezvous sends.
 */
START_TEST(p2p_groups_match_in_order)
{
    enum { N = 6, MSGS = 40 };
    unsigned seed = 4242u + (unsigned)_i;
    struct {
        int from, to;
        uint64_t bytes, send_at, recv_at;
    } m[MSGS];
    tt_p2p_msg_t lists[N][2 * MSGS];
    size_t nlist[N] = {0}, send_len[N] = {0}, recv_len[N] = {0};
    unsigned char *bufs[N][2];
    tt_schedule_t scheds[N];
    const tt_schedule_t *ptrs[N];
    void *bases[N][TT_BUF_COUNT];
    tt_exec_env_t envs[N];
    tt_transport_t *routes[N][N];
    tt_sim_t *sim = tt_sim_create(N, 64);

    for (int i = 0; i < MSGS; i++) {
        m[i].from = rand_r(&seed) % N;
        m[i].to = rand_r(&seed) % N;
        m[i].bytes = rand_r(&seed) % 4 == 0 ? 0 : (uint64_t)(rand_r(&seed) % 3000);
        m[i].send_at = send_len[m[i].from];
        m[i].recv_at = recv_len[m[i].to];
        send_len[m[i].from] += m[i].bytes;
        recv_len[m[i].to] += m[i].bytes;
    }
    /* Each rank lists its sends and receives as the messages come: interleaved, in order. */
    for (int i = 0; i < MSGS; i++) {
        int r = m[i].from, q = m[i].to;
        lists[r][nlist[r]++] = (tt_p2p_msg_t){1, q, m[i].send_at, m[i].bytes};
        lists[q][nlist[q]++] = (tt_p2p_msg_t){0, r, m[i].recv_at, m[i].bytes};
    }
    for (int r = 0; r < N; r++) {
        tt_p2p_list_t list = {lists[r], nlist[r]};
        tt_coll_desc_t d = {.kind = TT_COLL_P2P,
                            .algo = TT_ALGO_DIRECT,
                            .elem_size = 1,
                            .rank = r,
                            .nranks = N,
                            .channels = 1,
                            .p2p = &list};
        bufs[r][0] = malloc(send_len[r] + 1);
        bufs[r][1] = calloc(recv_len[r] + 1, 1);
        for (size_t b = 0; b < send_len[r]; b++)
            bufs[r][0][b] = (unsigned char)(r * 37 + (int)b * 11);
        tt_schedule_init(&scheds[r], 1);
        ck_assert_int_eq(tt_coll_build(&d, &scheds[r]), TUTTI_OK);
        ptrs[r] = &scheds[r];
        bases[r][TT_BUF_SEND] = bufs[r][0];
        bases[r][TT_BUF_RECV] = bufs[r][1];
        bases[r][TT_BUF_SCRATCH] = NULL;
        for (int p = 0; p < N; p++)
            routes[r][p] = tt_sim_transport(sim, r);
        envs[r] = (tt_exec_env_t){.route = routes[r]};
    }
    ck_assert_int_eq(tt_sim_run(sim, ptrs, bases, envs, seed), TUTTI_OK);
    for (int i = 0; i < MSGS; i++)
        for (uint64_t b = 0; b < m[i].bytes; b++)
            ck_assert_uint_eq(bufs[m[i].to][1][m[i].recv_at + b],
                              (unsigned char)(m[i].from * 37 + (int)(m[i].send_at + b) * 11));
    for (int r = 0; r < N; r++) {
        tt_schedule_fini(&scheds[r]);
        free(bufs[r][0]);
        free(bufs[r][1]);
    }
    tt_sim_destroy(sim);
}
END_TEST

/* One part of a ring plan holds about part_steps steps however many ranks there are. */
START_TEST(part_size_does_not_grow_with_ranks)
{
    static const int sizes[] = {1024, 16384, 65536};
    static const tt_algo_t algos[] = {TT_ALGO_RING, TT_ALGO_HIER};

    for (size_t i = 0; i < TT_ARRAY_SIZE(sizes); i++)
        for (size_t a = 0; a < TT_ARRAY_SIZE(algos); a++) {
            int n = sizes[i];
            tt_cluster_t cluster;
            tt_coll_desc_t d;
            int parts;

            ck_assert_int_eq(tt_cluster_uniform(&cluster, n / 8, 8, 8, NULL), TUTTI_OK);
            d = desc_of(TT_COLL_ALLREDUCE, algos[a], n, (64u << 20) / 8, 256 * 1024, 1, &cluster);
            d.part_steps = 4096;
            d.rank = n / 2 + 3;
            parts = tt_coll_parts(&d);
            ck_assert_int_ge(parts, 1);
            for (int part = 0; part < parts; part += TT_MAX(1, parts / 3)) {
                tt_schedule_t s;
                tt_schedule_init(&s, d.elem_size);
                ck_assert_int_eq(tt_coll_build_part(&d, part, &s), TUTTI_OK);
                /* A round's steps, a join or two: never the whole ring. */
                ck_assert_msg(s.nsteps <= 4096 + 8, "n=%d %s part %d: %d steps", n,
                              tt_algo_names[d.algo], part, (int)s.nsteps);
                tt_schedule_fini(&s);
            }
            {
                tt_schedule_t s;
                tt_schedule_init(&s, d.elem_size);
                ck_assert_int_eq(tt_coll_build_part(&d, parts, &s), TUTTI_ERR_INVALID_ARG);
                tt_schedule_fini(&s);
            }
            tt_cluster_fini(&cluster);
        }
}
END_TEST

/* Tree shape: every node's parent lists it as a child; each rank is interior in at most one tree.
 */
START_TEST(double_binary_tree_shape)
{
    for (int n = 1; n <= 1024; n++) {
        int *interior = calloc((size_t)n, sizeof(int));
        for (int t = 0; t < 2; t++) {
            int roots = 0;
            for (int i = 0; i < n; i++) {
                int p = tt_btree_position(n, t, i), l[3], up[3];
                tt_btree_links(n, p, &l[0], &l[1], &l[2]);
                if (l[0] == 0)
                    roots++;
                else {
                    tt_btree_links(n, l[0], &up[0], &up[1], &up[2]);
                    if (up[1] != p && up[2] != p)
                        ck_abort_msg("n=%d tree %d: %d's parent %d does not list it", n, t, p,
                                     l[0]);
                }
                if (l[1] || l[2])
                    interior[i]++;
            }
            if (roots != 1)
                ck_abort_msg("n=%d tree %d has %d roots", n, t, roots);
        }
        for (int i = 0; i < n; i++)
            if (interior[i] > 1)
                ck_abort_msg("n=%d: rank %d is interior in both trees", n, i);
        free(interior);
    }
}
END_TEST

/* Ring orders keep hosts contiguous, and each channel leaves a host through its own rail. */
START_TEST(ring_orders_follow_rails)
{
    const int *shape = shapes[_i];
    int H = shape[0], L = shape[1], nics = shape[2], n = H * L,
        *order = malloc((size_t)n * sizeof(int));
    tt_cluster_t cluster;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, H, L, nics, NULL), TUTTI_OK);
    for (int c = 0; c < 4; c++) {
        tt_coll_desc_t d = desc_of(TT_COLL_ALLREDUCE, TT_ALGO_RING, n, 1, 4096, 4, &cluster);
        tt_ring_order(&d, c, order);
        for (int pos = 0; pos < n; pos++) {
            int host = cluster.places[order[pos]].host;
            ck_assert_int_eq(host, pos / L); /* contiguous, hosts in order */
            if (pos % L == L - 1 && nics > 0 && cluster.places[order[pos]].nic >= 0 &&
                L >= TT_MIN(nics, 4))
                ck_assert_int_eq(cluster.places[order[pos]].nic, c % cluster.rails);
        }
    }
    /* With as many channels as rails, the ranks that send to the next host all differ. */
    if (nics > 1 && L >= nics) {
        int *senders = calloc((size_t)L, sizeof(int));
        for (int c = 0; c < nics; c++) {
            tt_coll_desc_t d = desc_of(TT_COLL_ALLREDUCE, TT_ALGO_RING, n, 1, 4096, nics, &cluster);
            tt_ring_order(&d, c, order);
            senders[cluster.places[order[L - 1]].local]++;
        }
        for (int j = 0; j < L; j++)
            ck_assert_int_le(senders[j], 1);
        free(senders);
    }
    tt_cluster_fini(&cluster);
    free(order);
}
END_TEST

/* avg divides exactly once, whatever the algorithm. */
START_TEST(average_divides_once)
{
    tt_cluster_t cluster;
    ck_assert_int_eq(tt_cluster_uniform(&cluster, 3, 3, 2, NULL), TUTTI_OK);
    for (int n = 1; n <= 9; n++)
        for (size_t k = 0; k < 3; k++) {
            static const tt_coll_kind_t avg_kinds[] = {TT_COLL_ALLREDUCE, TT_COLL_REDUCE_SCATTER,
                                                       TT_COLL_REDUCE};
            for (int a = TT_ALGO_AUTO + 1; a < TT_ALGO_COUNT; a++) {
                tt_coll_desc_t d =
                    desc_of(avg_kinds[k], (tt_algo_t)a, n, 37, 64, 2, n == 9 ? &cluster : NULL);
                world_t w;
                if (!tt_algo_supports((tt_algo_t)a, avg_kinds[k]) || (a == TT_ALGO_HIER && n != 9))
                    continue;
                world_init(&w, &d, TUTTI_UINT64, TUTTI_AVG, value);
                world_run(&w, 5, "avg");
                for (int r = 0; r < n; r++)
                    for (uint64_t i = 0; i < recv_elems(&w.desc); i++) {
                        uint64_t off =
                            avg_kinds[k] == TT_COLL_REDUCE_SCATTER ? (uint64_t)r * 37 : 0;
                        if (avg_kinds[k] == TT_COLL_REDUCE && r != 0)
                            continue;
                        if (w.recv[r][i] != sum_of(n, off, i) / (uint64_t)n)
                            ck_abort_msg("avg of %s/%s on %d ranks: rank %d element %llu is wrong",
                                         tt_coll_kind_names[avg_kinds[k]], tt_algo_names[a], n, r,
                                         (unsigned long long)i);
                    }
                world_fini(&w);
            }
        }
    tt_cluster_fini(&cluster);
}
END_TEST

/*
 * Floats: every rank ends with the same bits, also for min/max with NaNs,
 * whose result depends on operand order (every algorithm must combine in one
 * canonical order for all ranks).
 */
START_TEST(floats_bitwise_identical_on_all_ranks)
{
    tt_cluster_t cluster;
    ck_assert_int_eq(tt_cluster_uniform(&cluster, 2, 5, 2, NULL), TUTTI_OK);
    for (int n = 2; n <= 11; n++)
        for (int a = TT_ALGO_AUTO + 1; a < TT_ALGO_COUNT; a++)
            for (int op = TUTTI_SUM; op <= TUTTI_AVG; op++) {
                tt_coll_desc_t d = desc_of(TT_COLL_ALLREDUCE, (tt_algo_t)a, n, 257, 512, 2,
                                           n == 10 ? &cluster : NULL);
                world_t w;
                if (!tt_algo_supports((tt_algo_t)a, TT_COLL_ALLREDUCE) ||
                    (a == TT_ALGO_HIER && n != 10))
                    continue;
                world_init(&w, &d, TUTTI_FP64, (tutti_op_t)op, float_value);
                world_run(&w, (unsigned)(n * 31 + op), "floats");
                for (int r = 1; r < n; r++)
                    if (memcmp(w.recv[0], w.recv[r], 257 * sizeof(double)) != 0)
                        ck_abort_msg("n=%d %s op=%d: rank %d differs from rank 0", n,
                                     tt_algo_names[a], op, r);
                world_fini(&w);
            }
    tt_cluster_fini(&cluster);
}
END_TEST

/* Ranks that disagree about the call get an error, not a hang or corrupt data. */
START_TEST(mismatched_counts_are_caught)
{
    int n = 4;
    tt_coll_desc_t d = desc_of(TT_COLL_ALLREDUCE, TT_ALGO_RING, n, 100, 256, 1, NULL);
    world_t w;

    world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
    /* Rebuild rank 2's schedule for a different count. */
    tt_schedule_fini(&w.scheds[2]);
    tt_schedule_init(&w.scheds[2], sizeof(uint64_t));
    d.rank = 2;
    d.count = 60;
    ck_assert_int_eq(tt_coll_build(&d, &w.scheds[2]), TUTTI_OK);
    ck_assert_int_ne(tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, 9), TUTTI_OK);
    world_fini(&w);
}
END_TEST

/* Index of the @p k-th send to rank @p to in @p s, or TT_NO_STEP. */
static int32_t kth_send(const tt_schedule_t *s, int to, int k)
{
    for (int32_t i = 0; i < s->nsteps; i++)
        if (s->steps[i].kind == TT_STEP_SEND && s->steps[i].peer == to && k-- == 0)
            return i;
    return TT_NO_STEP;
}

/*
 * Which ranks rank r can be sure have arrived once all its steps are
 * complete (a bit per rank, in known[r]). A send carries what its sender
 * knew when it left: its own arrival and what its dependencies brought; a
 * receive adds what the matching send carried. Steps that merely complete
 * in some order (receives from different peers) prove nothing about each
 * other, which is exactly what a barrier must not rely on.
 */
static void arrivals_known(const world_t *w, uint64_t *known)
{
    uint64_t **k = calloc((size_t)w->n, sizeof(*k));
    int32_t **match = calloc((size_t)w->n, sizeof(*match));
    int changed;

    for (int r = 0; r < w->n; r++) {
        const tt_schedule_t *s = &w->scheds[r];
        int *seen = calloc((size_t)w->n, sizeof(int));
        k[r] = calloc((size_t)s->nsteps + 1, sizeof(uint64_t));
        match[r] = calloc((size_t)s->nsteps + 1, sizeof(int32_t));
        for (int32_t i = 0; i < s->nsteps; i++) {
            int q = s->steps[i].peer;
            match[r][i] =
                s->steps[i].kind == TT_STEP_RECV || s->steps[i].kind == TT_STEP_RECV_REDUCE
                    ? kth_send(&w->scheds[q], r, seen[q]++)
                    : TT_NO_STEP;
        }
        free(seen);
    }
    do { /* knowledge only grows: a fixpoint, reached within the longest chain of steps */
        changed = 0;
        for (int r = 0; r < w->n; r++) {
            const tt_schedule_t *s = &w->scheds[r];
            for (int32_t i = 0; i < s->nsteps; i++) {
                uint64_t v = k[r][i] | 1ull << r;
                for (uint32_t j = 0; j < s->steps[i].ndeps; j++)
                    v |= k[r][s->deps[s->steps[i].dep_start + j]];
                if (match[r][i] != TT_NO_STEP)
                    v |= k[s->steps[i].peer][match[r][i]];
                changed |= v != k[r][i];
                k[r][i] = v;
            }
        }
    } while (changed);
    for (int r = 0; r < w->n; r++) {
        known[r] = 1ull << r;
        for (int32_t i = 0; i < w->scheds[r].nsteps; i++)
            known[r] |= k[r][i];
        free(k[r]);
        free(match[r]);
    }
    free(k);
    free(match);
}

/*
 * A barrier lets no rank leave before every rank has arrived, whatever order
 * its messages complete in: each rank must have a chain of messages from
 * every other rank's arrival to its own last step. (A dissemination barrier
 * that forwarded only its latest round's news once let a rank out early.)
 */
START_TEST(barrier_waits_for_every_rank)
{
    for (int n = 1; n <= 40; n++)
        for (int a = TT_ALGO_AUTO + 1; a < TT_ALGO_COUNT; a++) {
            tt_coll_desc_t d = desc_of(TT_COLL_BARRIER, (tt_algo_t)a, n, 0, 1024, 1, NULL);
            uint64_t known[40], all = (1ull << n) - 1;
            world_t w;

            if (!tt_algo_supports((tt_algo_t)a, TT_COLL_BARRIER) || a == TT_ALGO_HIER)
                continue;
            world_init(&w, &d, TUTTI_UINT64, TUTTI_SUM, value);
            arrivals_known(&w, known);
            for (int r = 0; r < n; r++)
                if (known[r] != all)
                    ck_abort_msg("barrier/%s n=%d: rank %d may leave before ranks %#llx arrive",
                                 tt_algo_names[a], n, r, (unsigned long long)(all & ~known[r]));
            world_fini(&w);
        }
}
END_TEST

/* Resolve @p d (rank 0 of @p n on @p c) with a selector made for it alone. */
static tt_coll_desc_t select_fresh(tt_coll_desc_t d, const tt_cluster_t *c)
{
    tt_selector_t sel;
    ck_assert_int_eq(tt_selector_init(&sel, NULL, c), TUTTI_OK);
    tt_select(&sel, &d);
    tt_selector_fini(&sel);
    return d;
}

/*
 * A selector remembers its last decisions; what it hands back must be what
 * it would decide afresh, for calls it remembers and for calls it forgot
 * (more distinct calls than it keeps), whatever the order.
 */
START_TEST(selection_is_remembered_faithfully)
{
    tt_cluster_t cluster;
    tt_selector_t sel;
    const int ncalls = 3 * TT_SELECT_MEMO;

    ck_assert_int_eq(tt_cluster_uniform(&cluster, 4, 4, 2, NULL), TUTTI_OK);
    ck_assert_int_eq(tt_selector_init(&sel, NULL, &cluster), TUTTI_OK);
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < ncalls; i++) {
            int k = pass == 1 ? ncalls - 1 - i : i;
            tt_coll_desc_t d = {.kind = (tt_coll_kind_t)(k % TT_COLL_KIND_COUNT),
                                .count = (uint64_t)1 << (k % 24),
                                .elem_size = 4,
                                .root = k % 3,
                                .nranks = cluster.nranks};
            tt_coll_desc_t want = select_fresh(d, &cluster);
            tt_select(&sel, &d);
            ck_assert_int_eq(d.algo, want.algo);
            ck_assert_int_eq(d.channels, want.channels);
            ck_assert_uint_eq(d.chunk_bytes, want.chunk_bytes);
            ck_assert_uint_eq(d.pipeline_slots, want.pipeline_slots);
            ck_assert_uint_eq(d.part_steps, want.part_steps);
            ck_assert_ptr_eq(d.cluster, want.cluster);
        }
    tt_selector_fini(&sel);
    tt_cluster_fini(&cluster);
}
END_TEST

START_TEST(block_and_chunk_arithmetic)
{
    for (int n = 1; n <= 13; n++)
        for (uint64_t count = 0; count < 40; count++) {
            uint64_t next = 0;
            for (int i = 0; i < n; i++) {
                tt_span_t b = tt_block(count, n, i);
                ck_assert_uint_eq(b.offset, next);
                ck_assert(b.count == count / (uint64_t)n || b.count == count / (uint64_t)n + 1);
                next += b.count;
            }
            ck_assert_uint_eq(next, count);
        }
    {
        tt_span_t s = {10, 25};
        ck_assert_uint_eq(tt_nchunks(s, 8), 4);
        ck_assert_uint_eq(tt_chunk(s, 8, 3).offset, 34);
        ck_assert_uint_eq(tt_chunk(s, 8, 3).count, 1);
    }
}
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *shapes_tc = tcase_create("shapes"), *props = tcase_create("properties"),
          *large = tcase_create("large");
    tcase_set_timeout(shapes_tc, 600);
    tcase_set_timeout(props, 300);
    tcase_set_timeout(large, 600);
    tcase_set_tags(large, "large"); /* too slow under valgrind: run-tests.sh excludes it there */
    tcase_add_loop_test(shapes_tc, every_algorithm_every_shape, 1, 10);
    tcase_add_loop_test(shapes_tc, every_algorithm_every_shape, 12, 13);
    tcase_add_loop_test(shapes_tc, every_algorithm_every_shape, 16, 18);
    tcase_add_loop_test(shapes_tc, algorithms_on_clusters, 0, (int)TT_ARRAY_SIZE(shapes));
    tcase_add_loop_test(large, large_rank_counts, 0, 7);
    tcase_add_loop_test(props, ring_bytes_are_textbook, 2, 10);
    tcase_add_loop_test(props, tree_bytes_are_per_edge, 1, 40);
    tcase_add_loop_test(props, hier_bytes_cross_hosts_once, 0, (int)TT_ARRAY_SIZE(shapes));
    tcase_add_loop_test(props, ring_orders_follow_rails, 0, (int)TT_ARRAY_SIZE(shapes));
    tcase_add_loop_test(shapes_tc, plans_in_parts, 0, (int)TT_ARRAY_SIZE(shapes));
    tcase_add_test(props, part_size_does_not_grow_with_ranks);
    tcase_add_test(props, double_binary_tree_shape);
    tcase_add_test(props, average_divides_once);
    tcase_add_test(props, floats_bitwise_identical_on_all_ranks);
    tcase_add_test(props, mismatched_counts_are_caught);
    tcase_add_test(props, alltoallv_mismatched_counts_are_caught);
    tcase_add_test(props, bruck_takes_log_rounds);
    tcase_add_loop_test(props, hier_alltoall_aggregates_per_host_pair, 0,
                        (int)TT_ARRAY_SIZE(shapes));
    tcase_add_loop_test(props, p2p_groups_match_in_order, 0, 8);
    tcase_add_test(shapes_tc, alltoallv_random_counts);
    tcase_add_loop_test(shapes_tc, alltoall_in_parts, 0, (int)TT_ARRAY_SIZE(shapes));
    tcase_add_loop_test(props, alltoall_bytes_are_one_block_per_pair, 1, 10);
    tcase_add_test(props, alltoall_cuts_large_blocks_between_hosts);
    tcase_add_test(props, barrier_waits_for_every_rank);
    tcase_add_test(props, selection_is_remembered_faithfully);
    tcase_add_test(props, block_and_chunk_arithmetic);
    suite_add_tcase(s, shapes_tc);
    suite_add_tcase(s, props);
    suite_add_tcase(s, large);
    return s;
}

TT_UNIT_MAIN(schedule_suite)
