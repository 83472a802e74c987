/*
 * Shared benchmark driver; see perf_common.h.
 *
 * How results are made checkable: element i of rank r's input is a small
 * integer v(r, i) drawn from a hash of (r, i), in a range chosen per
 * operation so that every partial result any algorithm can form is exact in
 * every type, fp16 and bf16 included:
 *   sum, avg  0 <= v <= 127 / nranks, so any partial sum stays <= 127 (exact
 *             in int8 and in bf16's 8-bit significand, whatever the order);
 *   prod      v is 1 or 2, and at most 6 ranks hold a 2 for one element, so
 *             every product is a power of two <= 64;
 *   min, max  -50 <= v <= 49 for signed types and floats, 0..99 for unsigned;
 *             collectives that only move data (all-gather, broadcast,
 *             all-to-all, all-to-all-v) use these too.
 * Data that moves keeps its input's value: element j of what rank s sends
 * rank r under all-to-all(-v) is v(s, p) for its place p in rank s's send
 * buffer, so a block that lands in the wrong place, or a wrong block,
 * shows (a 1-element block with a chance of 1 in 100).
 * The expected value of an element is then computed directly in 64-bit
 * integers. Integer results are compared exactly (after wrapping to the
 * type, which matters only past 127 ranks). Float results are compared
 * exactly, except avg, whose division rounds: the result may differ from
 * the exact quotient by 2 epsilon of the type, relative (epsilon = 2^-10
 * for fp16, 2^-7 bf16, 2^-23 fp32, 2^-52 fp64). One rounding of the
 * quotient errs by at most epsilon / 2; the rest is room for the double
 * rounding of fp16 and bf16 through fp32, not for an algorithm that divides
 * before it sums.
 *
 * Beyond the elements themselves the check counts as wrong: bytes written
 * in a guard zone just past the receive buffer (past the whole in-place
 * buffer), send-buffer elements changed by an out-of-place call, and, on a
 * rank that receives nothing (reduce away from the root), any byte written
 * to its receive buffer.
 *
 * The parts: perf_internal.h lists them; this file measures and checks.
 */
#include "perf_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUARD_BYTES 64
#define POISON 0xA5
#define BUFFER_ALIGN 4096

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A library call failed: nothing after it can be trusted. Tell the peers and leave. */
static void fail(const perf_run_t *run, const char *what, int err)
{
    fprintf(stderr, "%s: rank %d: %s failed: %s\n", run->be->program, run->rank, what,
            run->be->error_string(err));
    fflush(stderr);
    run->be->abort(run->ctx);
    exit(PERF_EXIT_FAILED);
}

static void run_call(const perf_run_t *run, const perf_call_t *call)
{
    const perf_coll_t *coll = run->opts->coll;
    int err = run->be->run(run->ctx, call);

    if (err != 0) {
        char what[128];
        snprintf(what, sizeof(what), "%s%s of %zu %s%s%s", call->in_place ? "in-place " : "",
                 coll->name, call->count, perf_dtype_name(call->dtype), coll->has_op ? " " : "",
                 coll->has_op ? perf_op_name(call->op) : "");
        fail(run, what, err);
    }
}

/* Mean time of one call on this rank, in microseconds. */
static double time_calls(const perf_run_t *run, const perf_call_t *call)
{
    double start;
    int err;

    for (long k = 0; k < run->opts->warmup; k++)
        run_call(run, call);
    err = run->be->barrier(run->ctx);
    if (err != 0)
        fail(run, "barrier", err);
    start = now_seconds();
    for (long k = 0; k < run->opts->iters; k++)
        run_call(run, call);
    return (now_seconds() - start) * 1e6 / (double)run->opts->iters;
}

static void fill_inputs(const perf_run_t *run, void *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        perf_store_value(run->dtype, buf, i, perf_input_value(run, run->rank, i));
}

/* Elements of the receive buffer a call of @p l may use: the in-place extent, or the result. */
static size_t recv_extent(const perf_layout_t *l, int in_place)
{
    size_t send_end = l->in_place_send + l->send_n, recv_end = l->in_place_recv + l->recv_n;
    if (!in_place)
        return l->recv_n;
    return send_end > recv_end ? send_end : recv_end;
}

/* Wrong elements among @p n of @p buf, which must hold this rank's inputs. */
static uint64_t inputs_changed(const perf_run_t *run, const unsigned char *buf, size_t n)
{
    uint64_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        perf_expect_t e = {perf_input_value(run, run->rank, i), 1};
        wrong += !perf_element_ok(run->dtype, buf, i, e);
    }
    return wrong;
}

/*
 * The rank whose result --corrupt changes: the root of rooted collectives,
 * else the last (under a traffic pattern the last that receives anything).
 */
static int corrupt_rank(const perf_run_t *run)
{
    if (run->opts->coll->has_root)
        return run->opts->root;
    return run->traffic != NULL ? run->traffic->last_receiver : run->nranks - 1;
}

/* The traffic matrix for a row of @p count; sizes beyond its arithmetic end the run. */
static void scale_traffic(const perf_run_t *run, size_t count)
{
    if (run->traffic == NULL || perf_traffic_scale(run->traffic, count) == 0)
        return;
    fprintf(stderr, "%s: rank %d: %zu elements per pair on average is too large for the pattern\n",
            run->be->program, run->rank, count);
    fflush(stderr);
    run->be->abort(run->ctx);
    exit(PERF_EXIT_FAILED);
}

/* The out-of-place call for a row of @p count, and where its data sits on this rank. */
static void setup_call(const perf_run_t *run, size_t count, perf_call_t *call, perf_layout_t *l)
{
    const perf_opts_t *o = run->opts;
    const perf_traffic_t *t = run->traffic;
    size_t mine = (size_t)run->rank * (size_t)run->nranks;

    scale_traffic(run, count);
    o->coll->layout(run, count, l);
    *call = (perf_call_t){.kind = o->coll->kind,
                          .sendbuf = run->send,
                          .recvbuf = run->recv,
                          .count = count,
                          .dtype = run->dtype,
                          .op = run->op,
                          .root = o->root,
                          .nonblocking = !o->blocking};
    if (t != NULL) {
        call->sendcounts = t->counts + mine;
        call->sdispls = t->sdispls + mine;
        call->recvcounts = t->recvcounts;
        call->rdispls = t->rdispls;
        call->same_layout = t->symmetric;
    }
}

/*
 * One checked call, its buffers set up here: out of place the send buffer
 * holds the inputs already and the receive buffer is poisoned; in place the
 * receive buffer is poisoned and the inputs written where the layout puts
 * them. Returns the number of wrong elements and clobbered bytes.
 */
static uint64_t checked_call(const perf_run_t *run, const perf_call_t *call, const perf_layout_t *l)
{
    const perf_coll_t *coll = run->opts->coll;
    size_t es = perf_dtypes[run->dtype].size, extent = recv_extent(l, call->in_place);
    size_t result_at = call->in_place ? l->in_place_recv : 0;
    unsigned char *result = run->recv + result_at * es;
    uint64_t wrong = 0;

    memset(run->recv, POISON, extent * es + GUARD_BYTES);
    if (call->in_place)
        fill_inputs(run, run->recv + l->in_place_send * es, l->send_n);
    run_call(run, call);
    if (run->opts->corrupt && run->rank == corrupt_rank(run) && l->recv_n > 0)
        perf_perturb(run->dtype, result, l->recv_n / 2);

    for (size_t i = 0; i < l->recv_n; i++)
        wrong += !perf_element_ok(run->dtype, result, i, coll->expected(run, call->count, i));
    /* Nothing written past the buffer (with no result: nothing at its start). */
    for (size_t b = extent * es; b < extent * es + GUARD_BYTES; b++)
        wrong += run->recv[b] != POISON;
    if (!call->in_place)
        wrong += inputs_changed(run, run->send, l->send_n);
    return wrong;
}

/* Combine this rank's figures with the others': times as -a says, wrong counts summed. */
static void combine_over_ranks(perf_run_t *run, double times[2], double wrong[2])
{
    static const perf_op_t time_ops[] = {[PERF_AGG_RANK0] = PERF_SUM,
                                         [PERF_AGG_AVG] = PERF_SUM,
                                         [PERF_AGG_MIN] = PERF_MIN,
                                         [PERF_AGG_MAX] = PERF_MAX};
    perf_aggregate_t agg = run->opts->aggregate;
    int err;

    if (agg == PERF_AGG_RANK0 && run->rank != 0)
        times[0] = times[1] = 0;
    err = run->be->allreduce_doubles(run->ctx, times, 2, time_ops[agg]);
    if (err == 0)
        err = run->be->allreduce_doubles(run->ctx, wrong, 2, PERF_SUM);
    if (err != 0)
        fail(run, "combining the figures", err);
    if (agg == PERF_AGG_AVG)
        for (int p = 0; p < 2; p++)
            times[p] /= run->nranks;
}

/* One size: out of place, then in place; print the row on rank 0. */
static void run_row(perf_run_t *run, size_t count)
{
    const perf_opts_t *o = run->opts;
    const perf_coll_t *coll = o->coll;
    size_t es = perf_dtypes[run->dtype].size;
    perf_row_t row = {.bytes = coll->bytes_of(count, es, run->nranks), .count = count};
    perf_call_t call;
    perf_layout_t l;

    if (!run->be->supports(coll->kind, run->dtype, coll->has_op ? run->op : PERF_SUM)) {
        if (run->rank == 0)
            perf_report_unsupported(run, row.bytes, count);
        return;
    }
    setup_call(run, count, &call, &l);
    if (run->traffic != NULL)
        row.busiest_bytes = run->traffic->busiest * es;

    row.time_us[0] = time_calls(run, &call);
    if (o->check)
        row.wrong[0] = (double)checked_call(run, &call, &l);

    /* In place: the input moves into the receive buffer, filled again before the check. */
    call.sendbuf = run->recv + l.in_place_send * es;
    call.recvbuf = run->recv + l.in_place_recv * es;
    call.in_place = 1;
    fill_inputs(run, run->recv + l.in_place_send * es, l.send_n);
    row.time_us[1] = time_calls(run, &call);
    if (o->check)
        row.wrong[1] = (double)checked_call(run, &call, &l);

    combine_over_ranks(run, row.time_us, row.wrong);
    run->wrong_total += row.wrong[0] + row.wrong[1];
    if (run->rank == 0)
        perf_report_row(run, &row);
}

/*
 * Before the first row, as nccl-tests does: the warm-up calls at the largest
 * size, then at the smallest, so that what a library sets up lazily (UCX
 * finishes wiring its endpoints over the first messages) is done before
 * anything is timed. Nothing is checked, so the buffers hold whatever they
 * hold (zeros at first).
 */
static void warm_up(perf_run_t *run)
{
    const perf_opts_t *o = run->opts;
    const perf_coll_t *coll = o->coll;
    size_t es, counts[2];

    run->dtype = o->dtype_list[0];
    run->op = o->op_list[0];
    if (!run->be->supports(coll->kind, run->dtype, coll->has_op ? run->op : PERF_SUM))
        return;
    es = perf_dtypes[run->dtype].size;
    counts[0] = coll->count_of(o->max_bytes, es, run->nranks);
    counts[1] = coll->count_of(o->min_bytes, es, run->nranks);
    for (int k = 0; k < 2; k++) {
        perf_call_t call;
        perf_layout_t l;
        setup_call(run, counts[k], &call, &l);
        for (long i = 0; i < o->warmup; i++)
            run_call(run, &call);
    }
}

/* Every row of one type and op. */
static void run_block(perf_run_t *run)
{
    const perf_opts_t *o = run->opts;
    size_t es = perf_dtypes[run->dtype].size, prev = SIZE_MAX;

    /* Inputs do not depend on the count: fill the send buffer once, at its largest. */
    run->sum_max = 127 / run->nranks > 0 ? 127 / run->nranks : 1;
    fill_inputs(run, run->send, run->send_bytes / es);

    for (size_t bytes = o->min_bytes; bytes <= o->max_bytes;) {
        size_t count = o->coll->count_of(bytes, es, run->nranks);
        if (count != prev)
            run_row(run, count);
        prev = count;
        if (o->step_bytes > 0) {
            if (bytes > SIZE_MAX - o->step_bytes)
                break;
            bytes += o->step_bytes;
        } else {
            if (bytes > SIZE_MAX / o->factor)
                break;
            bytes = bytes > 0 ? bytes * o->factor : 1;
        }
    }
}

/* Buffers for the largest row of any type in the list, allocated once. */
static int allocate_buffers(perf_run_t *run)
{
    const perf_opts_t *o = run->opts;
    size_t send_max = 0, recv_max = 0;

    /* Under a traffic pattern no pair gets less in a larger row (perf_traffic.c). */
    for (int k = 0; k < o->ndtypes; k++) {
        size_t es = perf_dtypes[o->dtype_list[k]].size, r;
        perf_call_t call;
        perf_layout_t l;
        run->dtype = o->dtype_list[k];
        setup_call(run, o->coll->count_of(o->max_bytes, es, run->nranks), &call, &l);
        r = recv_extent(&l, 1) > l.recv_n ? recv_extent(&l, 1) : l.recv_n;
        send_max = l.send_n * es > send_max ? l.send_n * es : send_max;
        recv_max = r * es > recv_max ? r * es : recv_max;
    }
    run->send_bytes = send_max;
    run->recv_bytes = recv_max;
    /* Round up to the alignment; the receive side keeps room for the guard. */
    send_max = (send_max + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN;
    recv_max = (recv_max + GUARD_BYTES + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN;
    if (posix_memalign((void **)&run->send, BUFFER_ALIGN, send_max > 0 ? send_max : 1) != 0)
        return -1;
    if (posix_memalign((void **)&run->recv, BUFFER_ALIGN, recv_max) != 0) {
        free(run->send);
        return -1;
    }
    /* Touch every page now, so that no timed call pays for first faults. */
    memset(run->send, 0, send_max);
    memset(run->recv, POISON, recv_max);
    return 0;
}

/* Rank 0 prints the header; every rank learns whether it could (the JSON file). */
static int report_begin(perf_run_t *run)
{
    char library[256] = "";
    double failed = 0;
    int err;

    if (run->rank == 0) {
        run->be->describe(run->ctx, library, sizeof(library));
        failed = perf_report_begin(run, library) != 0;
    }
    err = run->be->allreduce_doubles(run->ctx, &failed, 1, PERF_MAX);
    if (err != 0)
        fail(run, "starting", err);
    return failed > 0 ? -1 : 0;
}

/* Every block of types and ops, between the header and the footer. */
static int run_all(perf_run_t *run)
{
    const perf_opts_t *o = run->opts;

    if (report_begin(run) != 0)
        return -1;
    warm_up(run);
    /* A collective without data (barrier) runs once, whatever the types. */
    for (int d = 0; d < (o->coll->has_size ? o->ndtypes : 1); d++) {
        for (int p = 0; p < (o->coll->has_op ? o->nops : 1); p++) {
            run->dtype = o->dtype_list[d];
            run->op = o->op_list[p];
            run_block(run);
        }
    }
    return run->rank == 0 ? perf_report_end(run) : 0;
}

int perf_main(int argc, char **argv, const perf_backend_t *be)
{
    perf_opts_t opts;
    perf_run_t run;
    int err, status;

    if (be->size != sizeof(perf_backend_t)) {
        fprintf(stderr, "%s: backend built against another perf_common.h\n", be->program);
        return PERF_EXIT_USAGE;
    }
    status = perf_parse_flags(argc, argv, be->program, &opts);
    if (status != 0)
        return status > 0 ? PERF_EXIT_OK : PERF_EXIT_USAGE;

    memset(&run, 0, sizeof(run));
    run.be = be;
    run.opts = &opts;
    err = be->init(&run.ctx, &run.rank, &run.nranks);
    if (err != 0) {
        fprintf(stderr, "%s: cannot join the job: %s\n", be->program, be->error_string(err));
        return PERF_EXIT_FAILED;
    }
    if (opts.coll->has_root && opts.root >= run.nranks) {
        if (run.rank == 0)
            fprintf(stderr, "%s: root %d is not a rank (0..%d)\n", be->program, opts.root,
                    run.nranks - 1);
        be->fini(run.ctx);
        return PERF_EXIT_USAGE;
    }
    if (opts.coll->has_pattern) {
        run.traffic = perf_traffic_create(&opts.pattern, run.nranks, run.rank);
        if (run.traffic == NULL) {
            fprintf(stderr, "%s: rank %d: out of memory for the traffic pattern\n", be->program,
                    run.rank);
            be->abort(run.ctx);
            return PERF_EXIT_FAILED;
        }
    }
    if (allocate_buffers(&run) != 0) {
        fprintf(stderr, "%s: rank %d: cannot allocate buffers for %zu bytes\n", be->program,
                run.rank, opts.max_bytes);
        be->abort(run.ctx);
        return PERF_EXIT_FAILED;
    }
    status = run_all(&run);
    free(run.send);
    free(run.recv);
    perf_traffic_destroy(run.traffic);
    err = be->fini(run.ctx);
    if (err != 0) {
        fprintf(stderr, "%s: rank %d: leaving the job failed: %s\n", be->program, run.rank,
                be->error_string(err));
        return PERF_EXIT_FAILED;
    }
    if (status != 0)
        return PERF_EXIT_FAILED;
    return run.wrong_total > 0 ? PERF_EXIT_WRONG : PERF_EXIT_OK;
}
