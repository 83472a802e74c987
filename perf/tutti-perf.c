/*
 * tutti-perf: bandwidth and latency of tutti's collectives, checked.
 *
 *   tutti-run -n 4 tutti-perf allreduce -b 8 -e 64M -f 2
 *
 * The measuring, checking and printing are in perf_common.c; this file only
 * connects them to the public API (tutti.h) through a perf_backend_t.
 */
#include "tutti.h"

#include "perf_common.h"

#include <stdio.h>
#include <stdlib.h>

/* perf_dtype_t and perf_op_t are separate enums so mpi-perf needs no tutti.h: map by table. */
static const tutti_datatype_t dtype_map[PERF_NUM_DTYPES] = {
    [PERF_INT8] = TUTTI_INT8,     [PERF_UINT8] = TUTTI_UINT8, [PERF_INT32] = TUTTI_INT32,
    [PERF_UINT32] = TUTTI_UINT32, [PERF_INT64] = TUTTI_INT64, [PERF_UINT64] = TUTTI_UINT64,
    [PERF_FP16] = TUTTI_FP16,     [PERF_BF16] = TUTTI_BF16,   [PERF_FP32] = TUTTI_FP32,
    [PERF_FP64] = TUTTI_FP64,
};

static const tutti_op_t op_map[PERF_NUM_OPS] = {
    [PERF_SUM] = TUTTI_SUM, [PERF_PROD] = TUTTI_PROD, [PERF_MIN] = TUTTI_MIN,
    [PERF_MAX] = TUTTI_MAX, [PERF_AVG] = TUTTI_AVG,
};

static int tp_init(void **ctx_p, int *rank_p, int *nranks_p)
{
    tutti_comm_t comm;
    tutti_status_t s = tutti_comm_init_env(NULL, &comm);

    if (s != TUTTI_OK)
        return s;
    if ((s = tutti_comm_rank(comm, rank_p)) != TUTTI_OK ||
        (s = tutti_comm_size(comm, nranks_p)) != TUTTI_OK) {
        tutti_comm_abort(comm);
        return s;
    }
    *ctx_p = comm;
    return TUTTI_OK;
}

static void tp_describe(void *ctx, char *text, size_t len)
{
    int major = 0, minor = 0, patch = 0;
    (void)ctx;
    tutti_version(&major, &minor, &patch);
    snprintf(text, len, "tutti %d.%d.%d (header %d.%d.%d)", major, minor, patch,
             TUTTI_VERSION_MAJOR, TUTTI_VERSION_MINOR, TUTTI_VERSION_PATCH);
}

static int tp_supports(perf_coll_kind_t kind, perf_dtype_t dtype, perf_op_t op)
{
    (void)kind;
    (void)dtype;
    (void)op;
    return 1;
}

/* Start @p c: with @p req NULL the blocking form, else the nonblocking one. */
static tutti_status_t start(tutti_comm_t comm, const perf_call_t *c, tutti_request_t *req)
{
    tutti_datatype_t t = dtype_map[c->dtype];
    tutti_op_t op = op_map[c->op];

    switch (c->kind) {
    case PERF_ALLREDUCE:
        return req ? tutti_iallreduce(c->sendbuf, c->recvbuf, c->count, t, op, comm, req)
                   : tutti_allreduce(c->sendbuf, c->recvbuf, c->count, t, op, comm);
    case PERF_REDUCE_SCATTER:
        return req ? tutti_ireduce_scatter(c->sendbuf, c->recvbuf, c->count, t, op, comm, req)
                   : tutti_reduce_scatter(c->sendbuf, c->recvbuf, c->count, t, op, comm);
    case PERF_ALLGATHER:
        return req ? tutti_iallgather(c->sendbuf, c->recvbuf, c->count, t, comm, req)
                   : tutti_allgather(c->sendbuf, c->recvbuf, c->count, t, comm);
    case PERF_BROADCAST:
        return req ? tutti_ibroadcast(c->sendbuf, c->recvbuf, c->count, t, c->root, comm, req)
                   : tutti_broadcast(c->sendbuf, c->recvbuf, c->count, t, c->root, comm);
    case PERF_REDUCE:
        return req ? tutti_ireduce(c->sendbuf, c->recvbuf, c->count, t, op, c->root, comm, req)
                   : tutti_reduce(c->sendbuf, c->recvbuf, c->count, t, op, c->root, comm);
    case PERF_BARRIER: return req ? tutti_ibarrier(comm, req) : tutti_barrier(comm);
    case PERF_ALLTOALL:
        return req ? tutti_ialltoall(c->sendbuf, c->recvbuf, c->count, t, comm, req)
                   : tutti_alltoall(c->sendbuf, c->recvbuf, c->count, t, comm);
    case PERF_ALLTOALLV:
        return req ? tutti_ialltoallv(c->sendbuf, c->sendcounts, c->sdispls, c->recvbuf,
                                      c->recvcounts, c->rdispls, t, comm, req)
                   : tutti_alltoallv(c->sendbuf, c->sendcounts, c->sdispls, c->recvbuf,
                                     c->recvcounts, c->rdispls, t, comm);
    default: return TUTTI_ERR_UNSUPPORTED;
    }
}

static int tp_run(void *ctx, const perf_call_t *c)
{
    tutti_request_t req;
    tutti_status_t s;

    if (!c->nonblocking)
        return start((tutti_comm_t)ctx, c, NULL);
    s = start((tutti_comm_t)ctx, c, &req);
    return s == TUTTI_OK ? tutti_wait(req) : s;
}

static int tp_allreduce_doubles(void *ctx, double *values, size_t n, perf_op_t op)
{
    return tutti_allreduce(values, values, n, TUTTI_FP64, op_map[op], (tutti_comm_t)ctx);
}

static int tp_barrier(void *ctx)
{
    return tutti_barrier((tutti_comm_t)ctx);
}

static const char *tp_error_string(int err)
{
    return tutti_status_string((tutti_status_t)err);
}

static void tp_abort(void *ctx)
{
    tutti_comm_abort((tutti_comm_t)ctx);
}

static int tp_fini(void *ctx)
{
    return tutti_comm_destroy((tutti_comm_t)ctx);
}

static const perf_backend_t tutti_backend = {
    .size = sizeof(perf_backend_t),
    .program = "tutti-perf",
    .init = tp_init,
    .describe = tp_describe,
    .supports = tp_supports,
    .run = tp_run,
    .allreduce_doubles = tp_allreduce_doubles,
    .barrier = tp_barrier,
    .error_string = tp_error_string,
    .abort = tp_abort,
    .fini = tp_fini,
};

int main(int argc, char **argv)
{
    return perf_main(argc, argv, &tutti_backend);
}
