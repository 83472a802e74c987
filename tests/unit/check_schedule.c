/*
 * Algorithms tested as data: build every rank's schedule for many (ranks,
 * count, chunk size, algorithm, root, in-place) and run them all in memory
 * on the real executor (tests/lib/sim.h), then check every element against
 * a reference computed directly, and the bytes each algorithm moves.
 */
#include "config.h"

#include "coll/coll.h"
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

typedef struct world {
    int n;
    tt_coll_desc_t desc;
    tt_coll_settings_t settings;
    tt_schedule_t *scheds;
    const tt_schedule_t **sched_ptrs;
    void *(*bases)[TT_BUF_COUNT];
    tt_exec_env_t *envs;
    uint64_t **send, **recv;
    uint64_t **owned;         /* [2 * rank + k]: the allocations behind send and recv */
    tt_transport_t ***routes; /* [rank][peer] */
    tt_sim_t *sim;
} world_t;

static size_t send_elems(const tt_coll_desc_t *d)
{
    return d->kind == TT_COLL_REDUCE_SCATTER ? d->count * (size_t)d->nranks : d->count;
}

static size_t recv_elems(const tt_coll_desc_t *d)
{
    return d->kind == TT_COLL_ALLGATHER ? d->count * (size_t)d->nranks : d->count;
}

/* Build, lay out buffers (in place where asked) and fill inputs for every rank. */
static void world_init(world_t *w, tt_coll_kind_t kind, int n, uint64_t count, size_t chunk,
                       int algo, int root, int in_place, tutti_op_t op)
{
    memset(w, 0, sizeof(*w));
    w->n = n;
    w->settings = (tt_coll_settings_t){chunk, 3, 4096, algo};
    w->scheds = calloc((size_t)n, sizeof(*w->scheds));
    w->sched_ptrs = calloc((size_t)n, sizeof(*w->sched_ptrs));
    w->bases = calloc((size_t)n, sizeof(*w->bases));
    w->envs = calloc((size_t)n, sizeof(*w->envs));
    w->send = calloc((size_t)n, sizeof(*w->send));
    w->recv = calloc((size_t)n, sizeof(*w->recv));
    w->owned = calloc(2 * (size_t)n, sizeof(*w->owned));
    w->routes = calloc((size_t)n, sizeof(*w->routes));
    w->sim = tt_sim_create(n, 192);
    for (int r = 0; r < n; r++) {
        tt_coll_desc_t d = {kind, count, sizeof(uint64_t), root, 0, r, n};
        size_t sn = send_elems(&d), rn = recv_elems(&d);
        int rooted = kind == TT_COLL_BROADCAST || kind == TT_COLL_REDUCE;

        d.in_place = in_place && (!rooted || r == root) && kind != TT_COLL_BARRIER;
        w->desc = d;
        /* The in-place layouts of tutti.h. */
        if (!d.in_place) {
            w->send[r] = w->owned[2 * r] = calloc(sn + 1, sizeof(uint64_t));
            w->recv[r] = w->owned[2 * r + 1] = calloc(rn + 1, sizeof(uint64_t));
        } else if (kind == TT_COLL_REDUCE_SCATTER) {
            w->send[r] = w->owned[2 * r] = calloc(sn + 1, sizeof(uint64_t));
            w->recv[r] = w->send[r] + (size_t)r * count;
        } else {
            w->recv[r] = w->owned[2 * r] = calloc(rn + 1, sizeof(uint64_t));
            w->send[r] = kind == TT_COLL_ALLGATHER ? w->recv[r] + (size_t)r * count : w->recv[r];
        }
        for (size_t i = 0; i < sn; i++)
            w->send[r][i] = value(r, i);
        tt_schedule_init(&w->scheds[r], sizeof(uint64_t));
        if (tt_coll_build(&d, &w->settings, &w->scheds[r]) != TUTTI_OK)
            ck_abort_msg("building %s for rank %d of %d failed", tt_coll_kind_names[kind], r, n);
        w->sched_ptrs[r] = &w->scheds[r];
        w->routes[r] = calloc((size_t)n, sizeof(tt_transport_t *));
        for (int p = 0; p < n; p++)
            w->routes[r][p] = tt_sim_transport(w->sim, r);
        w->bases[r][TT_BUF_SEND] = w->send[r];
        w->bases[r][TT_BUF_RECV] = w->recv[r];
        w->bases[r][TT_BUF_SCRATCH] = malloc(w->scheds[r].scratch_bytes + 1);
        w->envs[r].route = w->routes[r];
        w->envs[r].reduce =
            tt_reduce_kernel(TT_REDUCE_ISA_AUTO, TUTTI_UINT64, op == TUTTI_AVG ? TUTTI_SUM : op);
        w->envs[r].reduce_final = tt_reduce_kernel(TT_REDUCE_ISA_AUTO, TUTTI_UINT64, op);
        w->envs[r].divisor = (uint32_t)n;
    }
}

static void world_fini(world_t *w)
{
    for (int r = 0; r < w->n; r++) {
        free(w->owned[2 * r]);
        free(w->owned[2 * r + 1]);
        free(w->bases[r][TT_BUF_SCRATCH]);
        free(w->routes[r]);
        tt_schedule_fini(&w->scheds[r]);
    }
    tt_sim_destroy(w->sim);
    free(w->scheds);
    free(w->sched_ptrs);
    free(w->bases);
    free(w->envs);
    free(w->send);
    free(w->recv);
    free(w->owned);
    free(w->routes);
}

/* The reduction of element i of every rank's input block @p block (sum, wrapping). */
static uint64_t sum_of(int n, uint64_t block_offset, uint64_t i)
{
    uint64_t s = 0;
    for (int r = 0; r < n; r++)
        s += value(r, block_offset + i);
    return s;
}

static void check_results(const world_t *w, int root, const char *what)
{
    const tt_coll_desc_t *d = &w->desc;
    for (int r = 0; r < w->n; r++) {
        for (uint64_t i = 0; i < recv_elems(d); i++) {
            uint64_t want;
            switch (d->kind) {
            case TT_COLL_ALLREDUCE: want = sum_of(w->n, 0, i); break;
            case TT_COLL_REDUCE_SCATTER: want = sum_of(w->n, (uint64_t)r * d->count, i); break;
            case TT_COLL_ALLGATHER: want = value((int)(i / d->count), i % d->count); break;
            case TT_COLL_BROADCAST: want = value(root, i); break;
            case TT_COLL_REDUCE:
                if (r != root)
                    continue;
                want = sum_of(w->n, 0, i);
                break;
            default: continue;
            }
            /* Check logs every assertion it evaluates: only call it on a mismatch. */
            if (w->recv[r][i] != want)
                ck_abort_msg("%s: rank %d element %llu is %#llx, expected %#llx", what, r,
                             (unsigned long long)i, (unsigned long long)w->recv[r][i],
                             (unsigned long long)want);
        }
    }
}

static void run_case(tt_coll_kind_t kind, int n, uint64_t count, size_t chunk, int algo, int root,
                     int in_place, unsigned seed)
{
    char what[160];
    world_t w;
    tutti_status_t status;

    snprintf(what, sizeof(what), "%s n=%d count=%llu chunk=%zu algo=%d root=%d in_place=%d",
             tt_coll_kind_names[kind], n, (unsigned long long)count, chunk, algo, root, in_place);
    world_init(&w, kind, n, count, chunk, algo, root, in_place, TUTTI_SUM);
    status = tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, seed);
    if (status != TUTTI_OK)
        ck_abort_msg("%s: %s", what, tutti_status_string(status));
    check_results(&w, root, what);
    world_fini(&w);
}

static const tt_coll_kind_t kinds[] = {TT_COLL_ALLREDUCE, TT_COLL_REDUCE_SCATTER, TT_COLL_ALLGATHER,
                                       TT_COLL_BROADCAST, TT_COLL_REDUCE,         TT_COLL_BARRIER};

/* Every collective, both algorithm families, many sizes and shapes; _i is the rank count. */
START_TEST(every_algorithm_every_shape)
{
    int n = _i;
    uint64_t counts[] = {0, 1, 2, 3, (uint64_t)n - 1, (uint64_t)n, (uint64_t)n + 1, 1000, 4099};
    size_t chunks[] = {64, 1024, 256 * 1024};
    unsigned seed = (unsigned)n * 7919u;

    for (size_t k = 0; k < TT_ARRAY_SIZE(kinds); k++)
        for (int algo = TT_ALGO_BANDWIDTH; algo <= TT_ALGO_LATENCY; algo++)
            for (size_t c = 0; c < TT_ARRAY_SIZE(counts); c++)
                for (size_t ch = 0; ch < TT_ARRAY_SIZE(chunks); ch++) {
                    int roots[] = {0, n - 1, n / 2};
                    if (chunks[ch] == 64 && counts[c] > 1000)
                        continue;
                    for (int in_place = 0; in_place <= 1; in_place++)
                        for (size_t ro = 0; ro < 3; ro++) {
                            if (ro > 0 && kinds[k] != TT_COLL_BROADCAST &&
                                kinds[k] != TT_COLL_REDUCE)
                                break;
                            run_case(kinds[k], n, counts[c], chunks[ch], algo, roots[ro], in_place,
                                     seed++);
                        }
                }
}
END_TEST

/* The bandwidth algorithms move exactly what theory says, per rank. */
START_TEST(bandwidth_optimal_bytes)
{
    int n = _i;
    uint64_t count = 1000003;
    size_t es = sizeof(uint64_t);
    world_t w;

    world_init(&w, TT_COLL_ALLREDUCE, n, count, 64 * 1024, TT_ALGO_BANDWIDTH, 0, 0, TUTTI_SUM);
    ck_assert_int_eq(tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, 1), TUTTI_OK);
    for (int r = 0; r < n; r++) {
        /* A ring rank sends every block but its own (reduce-scatter) and every block but
         * its right neighbour's (all-gather), each exactly once, all to its right. */
        int right = (r + 1) % n;
        uint64_t own = tt_block(count, n, r).count, next = tt_block(count, n, right).count;
        uint64_t want = (2 * count - own - next) * es;
        ck_assert_uint_eq(tt_sim_bytes(w.sim, r, right), want);
        for (int p = 0; p < n; p++)
            if (p != right)
                ck_assert_uint_eq(tt_sim_bytes(w.sim, r, p), 0);
    }
    check_results(&w, 0, "ring allreduce bytes");
    world_fini(&w);

    world_init(&w, TT_COLL_ALLGATHER, n, 1001, 4096, TT_ALGO_BANDWIDTH, 0, 0, TUTTI_SUM);
    ck_assert_int_eq(tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, 2), TUTTI_OK);
    for (int r = 0; r < n; r++)
        ck_assert_uint_eq(tt_sim_bytes(w.sim, r, (r + 1) % n), (uint64_t)(n - 1) * 1001 * es);
    world_fini(&w);

    world_init(&w, TT_COLL_BROADCAST, n, 5000, 4096, TT_ALGO_BANDWIDTH, n - 1, 0, TUTTI_SUM);
    ck_assert_int_eq(tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, 3), TUTTI_OK);
    for (int r = 0; r < n; r++) {
        /* A chain: every rank but the last one (just before the root) forwards everything. */
        uint64_t want = r == (n - 2 + n) % n || n == 1 ? 0 : 5000 * es;
        ck_assert_uint_eq(tt_sim_bytes(w.sim, r, (r + 1) % n), want);
    }
    world_fini(&w);
}
END_TEST

/* avg divides exactly once, whatever the algorithm. */
START_TEST(average_divides_once)
{
    for (int n = 1; n <= 9; n++)
        for (int algo = TT_ALGO_BANDWIDTH; algo <= TT_ALGO_LATENCY; algo++)
            for (int k = 0; k < 3; k++) {
                static const tt_coll_kind_t avg_kinds[] = {TT_COLL_ALLREDUCE,
                                                           TT_COLL_REDUCE_SCATTER, TT_COLL_REDUCE};
                world_t w;
                world_init(&w, avg_kinds[k], n, 37, 64, algo, 0, 0, TUTTI_AVG);
                if (tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, 5) != TUTTI_OK)
                    ck_abort_msg("avg of %s on %d ranks did not complete",
                                 tt_coll_kind_names[avg_kinds[k]], n);
                for (int r = 0; r < n; r++)
                    for (uint64_t i = 0; i < recv_elems(&w.desc); i++) {
                        uint64_t off =
                            avg_kinds[k] == TT_COLL_REDUCE_SCATTER ? (uint64_t)r * 37 : 0;
                        if (avg_kinds[k] == TT_COLL_REDUCE && r != 0)
                            continue;
                        if (w.recv[r][i] != sum_of(n, off, i) / (uint64_t)n)
                            ck_abort_msg("avg of %s on %d ranks: rank %d element %llu is wrong",
                                         tt_coll_kind_names[avg_kinds[k]], n, r,
                                         (unsigned long long)i);
                    }
                world_fini(&w);
            }
}
END_TEST

/*
 * Floats: every rank ends with the same bits, also for min/max with NaNs,
 * whose result depends on operand order (recursive doubling and trees must
 * combine in one canonical order on all ranks).
 */
START_TEST(floats_bitwise_identical_on_all_ranks)
{
    for (int n = 2; n <= 11; n++)
        for (int algo = TT_ALGO_BANDWIDTH; algo <= TT_ALGO_LATENCY; algo++)
            for (int op = TUTTI_SUM; op <= TUTTI_AVG; op++) {
                tt_coll_desc_t d = {TT_COLL_ALLREDUCE, 257, sizeof(double), 0, 0, 0, n};
                tt_coll_settings_t t = {512, 3, 4096, algo};
                tt_sim_t *sim = tt_sim_create(n, 128);
                tt_schedule_t *scheds = calloc((size_t)n, sizeof(*scheds));
                const tt_schedule_t **ptrs = calloc((size_t)n, sizeof(*ptrs));
                void *(*bases)[TT_BUF_COUNT] = calloc((size_t)n, sizeof(*bases));
                tt_exec_env_t *envs = calloc((size_t)n, sizeof(*envs));
                tt_transport_t ***routes = calloc((size_t)n, sizeof(*routes));
                double **in = calloc((size_t)n, sizeof(*in)),
                       **out = calloc((size_t)n, sizeof(*out));

                for (int r = 0; r < n; r++) {
                    d.rank = r;
                    in[r] = malloc(257 * sizeof(double));
                    out[r] = malloc(257 * sizeof(double));
                    for (int i = 0; i < 257; i++)
                        in[r][i] = (i + r) % 13 == 0 ? NAN : (double)value(r, (uint64_t)i) * 1e-19;
                    tt_schedule_init(&scheds[r], sizeof(double));
                    ck_assert_int_eq(tt_coll_build(&d, &t, &scheds[r]), TUTTI_OK);
                    ptrs[r] = &scheds[r];
                    routes[r] = calloc((size_t)n, sizeof(tt_transport_t *));
                    for (int p = 0; p < n; p++)
                        routes[r][p] = tt_sim_transport(sim, r);
                    bases[r][TT_BUF_SEND] = in[r];
                    bases[r][TT_BUF_RECV] = out[r];
                    bases[r][TT_BUF_SCRATCH] = malloc(scheds[r].scratch_bytes + 1);
                    envs[r].route = routes[r];
                    envs[r].reduce = tt_reduce_kernel(TT_REDUCE_ISA_AUTO, TUTTI_FP64,
                                                      op == TUTTI_AVG ? TUTTI_SUM : (tutti_op_t)op);
                    envs[r].reduce_final =
                        tt_reduce_kernel(TT_REDUCE_ISA_AUTO, TUTTI_FP64, (tutti_op_t)op);
                    envs[r].divisor = (uint32_t)n;
                }
                ck_assert_int_eq(tt_sim_run(sim, ptrs, bases, envs, (unsigned)(n * 31 + op)),
                                 TUTTI_OK);
                for (int r = 1; r < n; r++)
                    ck_assert_msg(memcmp(out[0], out[r], 257 * sizeof(double)) == 0,
                                  "n=%d algo=%d op=%d: rank %d differs from rank 0", n, algo, op,
                                  r);
                for (int r = 0; r < n; r++) {
                    free(in[r]);
                    free(out[r]);
                    free(bases[r][TT_BUF_SCRATCH]);
                    free(routes[r]);
                    tt_schedule_fini(&scheds[r]);
                }
                free(in);
                free(out);
                free(routes);
                free(envs);
                free(bases);
                free(ptrs);
                free(scheds);
                tt_sim_destroy(sim);
            }
}
END_TEST

/* Ranks that disagree about the call get an error, not a hang or corrupt data. */
START_TEST(mismatched_counts_are_caught)
{
    int n = 4;
    world_t w;
    world_init(&w, TT_COLL_ALLREDUCE, n, 100, 256, TT_ALGO_BANDWIDTH, 0, 0, TUTTI_SUM);
    /* Rebuild rank 2's schedule for a different count. */
    tt_schedule_fini(&w.scheds[2]);
    tt_schedule_init(&w.scheds[2], sizeof(uint64_t));
    {
        tt_coll_desc_t d = {TT_COLL_ALLREDUCE, 60, sizeof(uint64_t), 0, 0, 2, n};
        ck_assert_int_eq(tt_coll_build(&d, &w.settings, &w.scheds[2]), TUTTI_OK);
    }
    ck_assert_int_ne(tt_sim_run(w.sim, w.sched_ptrs, w.bases, w.envs, 9), TUTTI_OK);
    world_fini(&w);
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
    TCase *shapes = tcase_create("shapes"), *props = tcase_create("properties");
    tcase_set_timeout(shapes, 600);
    tcase_set_timeout(props, 300);
    tcase_add_loop_test(shapes, every_algorithm_every_shape, 1, 10);
    tcase_add_loop_test(shapes, every_algorithm_every_shape, 12, 13);
    tcase_add_loop_test(shapes, every_algorithm_every_shape, 16, 18);
    tcase_add_loop_test(props, bandwidth_optimal_bytes, 1, 10);
    tcase_add_test(props, average_divides_once);
    tcase_add_test(props, floats_bitwise_identical_on_all_ranks);
    tcase_add_test(props, mismatched_counts_are_caught);
    tcase_add_test(props, block_and_chunk_arithmetic);
    suite_add_tcase(s, shapes);
    suite_add_tcase(s, props);
    return s;
}

TT_UNIT_MAIN(schedule_suite)
