/*
 * mpi-perf: the tutti-perf measurement on MPI's collectives, for
 * comparisons run the same way (same loop, sizes, checks and table).
 *
 *   mpirun -np 4 mpi-perf allreduce -b 8 -e 64M -f 2
 *
 * MPI has no fp16, bf16 or avg: those rows print as unsupported.
 * In place is MPI_IN_PLACE as the send buffer. Where tutti's forms differ
 * from MPI's, the call does what a program porting between them would:
 *   - reduce-scatter in place: MPI leaves the result at the start of the
 *     buffer, tutti in block r; the result is moved there (counted in the
 *     time, a copy of one block);
 *   - broadcast out of place: MPI's broadcast has one buffer, so the root
 *     copies its input to the receive buffer first (counted too);
 *   - all-to-all-v in place: MPI's sends each block from where the block
 *     from that rank lands, so it takes only patterns where every rank
 *     sends each other rank what it receives from it (same_layout: the
 *     uniform one). Otherwise the send blocks are copied to scratch memory
 *     and the call runs out of place from there (counted too).
 * MPI's counts and displacements are ints: a call with one above INT_MAX
 * elements is refused with a message saying so, before MPI sees it.
 */
#include "perf_common.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not an MPI error code (those are >= 0): a count that does not fit an int. */
#define MP_ERR_INT_COUNT (-1)
/* Not an MPI error code either: out of memory for the scratch buffers. */
#define MP_ERR_NOMEM (-2)

/* Per process: all-to-all-v's int arrays and scratch memory, kept from call to call. */
typedef struct mpi_perf {
    int nranks;
    int *vectors; /* 4 x nranks: sendcounts, sdispls, recvcounts, rdispls */
    void *scratch;
    size_t scratch_bytes;
} mpi_perf_t;

static MPI_Datatype mpi_dtype(perf_dtype_t dtype)
{
    switch (dtype) {
    case PERF_INT8: return MPI_INT8_T;
    case PERF_UINT8: return MPI_UINT8_T;
    case PERF_INT32: return MPI_INT32_T;
    case PERF_UINT32: return MPI_UINT32_T;
    case PERF_INT64: return MPI_INT64_T;
    case PERF_UINT64: return MPI_UINT64_T;
    case PERF_FP32: return MPI_FLOAT;
    case PERF_FP64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;
    }
}

static MPI_Op mpi_op(perf_op_t op)
{
    switch (op) {
    case PERF_SUM: return MPI_SUM;
    case PERF_PROD: return MPI_PROD;
    case PERF_MIN: return MPI_MIN;
    case PERF_MAX: return MPI_MAX;
    default: return MPI_OP_NULL;
    }
}

static int mp_init(void **ctx_p, int *rank_p, int *nranks_p)
{
    int err = MPI_Init(NULL, NULL);
    mpi_perf_t *m;

    if (err != MPI_SUCCESS)
        return err;
    /* Errors come back as codes, so a failed call is reported like tutti's. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank_p);
    MPI_Comm_size(MPI_COMM_WORLD, nranks_p);
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->vectors = malloc(4 * (size_t)*nranks_p * sizeof(int))) == NULL) {
        free(m);
        MPI_Finalize();
        return MP_ERR_NOMEM;
    }
    m->nranks = *nranks_p;
    *ctx_p = m;
    return MPI_SUCCESS;
}

static void mp_describe(void *ctx, char *text, size_t len)
{
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;

    (void)ctx;
    MPI_Get_library_version(version, &n);
    version[strcspn(version, ",\n")] = '\0'; /* its first clause is enough */
    snprintf(text, len, "%s", version);
}

static int mp_supports(perf_coll_kind_t kind, perf_dtype_t dtype, perf_op_t op)
{
    return kind < PERF_NUM_COLLS && mpi_dtype(dtype) != MPI_DATATYPE_NULL &&
           mpi_op(op) != MPI_OP_NULL;
}

/* @p n values as ints into @p out; returns MP_ERR_INT_COUNT if one does not fit. */
static int int_vector(const size_t *v, int n, int *out)
{
    for (int k = 0; k < n; k++) {
        if (v[k] > INT_MAX)
            return MP_ERR_INT_COUNT;
        out[k] = (int)v[k];
    }
    return MPI_SUCCESS;
}

/* At least @p bytes of scratch memory, kept for the next call; NULL if out of memory. */
static void *scratch(mpi_perf_t *m, size_t bytes)
{
    if (m->scratch_bytes < bytes) {
        void *p = realloc(m->scratch, bytes);
        if (p == NULL)
            return NULL;
        m->scratch = p;
        m->scratch_bytes = bytes;
    }
    return m->scratch;
}

/* All-to-all-v, its sizes as ints (see the top of the file for in place). */
static int alltoallv(mpi_perf_t *m, const perf_call_t *c, MPI_Request *req)
{
    int n = m->nranks, *sc = m->vectors, *sd = sc + n, *rc = sd + n, *rd = rc + n;
    MPI_Datatype t = mpi_dtype(c->dtype);
    const void *in = c->sendbuf;
    int err;

    if ((err = int_vector(c->sendcounts, n, sc)) != MPI_SUCCESS ||
        (err = int_vector(c->sdispls, n, sd)) != MPI_SUCCESS ||
        (err = int_vector(c->recvcounts, n, rc)) != MPI_SUCCESS ||
        (err = int_vector(c->rdispls, n, rd)) != MPI_SUCCESS)
        return err;
    if (c->in_place && c->same_layout) {
        in = MPI_IN_PLACE;
    } else if (c->in_place) {
        /* The blocks are packed: the last one ends where this rank's data ends. */
        size_t bytes = (c->sdispls[n - 1] + c->sendcounts[n - 1]) * perf_dtype_size(c->dtype);
        void *copy = scratch(m, bytes > 0 ? bytes : 1);
        if (copy == NULL)
            return MP_ERR_NOMEM;
        memcpy(copy, c->sendbuf, bytes);
        in = copy;
    }
    return req ? MPI_Ialltoallv(in, sc, sd, t, c->recvbuf, rc, rd, t, MPI_COMM_WORLD, req)
               : MPI_Alltoallv(in, sc, sd, t, c->recvbuf, rc, rd, t, MPI_COMM_WORLD);
}

/* Start @p c: with @p req NULL the blocking form, else the nonblocking one. */
static int start(mpi_perf_t *m, const perf_call_t *c, MPI_Request *req)
{
    const void *in = c->in_place ? MPI_IN_PLACE : c->sendbuf;
    MPI_Datatype t = mpi_dtype(c->dtype);
    MPI_Op op = mpi_op(c->op);
    MPI_Comm w = MPI_COMM_WORLD;
    int n = (int)c->count, rank;

    switch (c->kind) {
    case PERF_ALLREDUCE:
        return req ? MPI_Iallreduce(in, c->recvbuf, n, t, op, w, req)
                   : MPI_Allreduce(in, c->recvbuf, n, t, op, w);
    case PERF_REDUCE_SCATTER: {
        /* In place, MPI's buffer is the whole input (sendbuf here). */
        void *out = c->in_place ? (void *)c->sendbuf : c->recvbuf;
        return req ? MPI_Ireduce_scatter_block(in, out, n, t, op, w, req)
                   : MPI_Reduce_scatter_block(in, out, n, t, op, w);
    }
    case PERF_ALLGATHER:
        return req ? MPI_Iallgather(in, n, t, c->recvbuf, n, t, w, req)
                   : MPI_Allgather(in, n, t, c->recvbuf, n, t, w);
    case PERF_BROADCAST:
        MPI_Comm_rank(w, &rank);
        if (rank == c->root && !c->in_place)
            memcpy(c->recvbuf, c->sendbuf, c->count * perf_dtype_size(c->dtype));
        return req ? MPI_Ibcast(c->recvbuf, n, t, c->root, w, req)
                   : MPI_Bcast(c->recvbuf, n, t, c->root, w);
    case PERF_REDUCE:
        /* MPI_IN_PLACE only on the root; the others' input stays where it is. */
        MPI_Comm_rank(w, &rank);
        in = c->in_place && rank == c->root ? MPI_IN_PLACE : c->sendbuf;
        return req ? MPI_Ireduce(in, c->recvbuf, n, t, op, c->root, w, req)
                   : MPI_Reduce(in, c->recvbuf, n, t, op, c->root, w);
    case PERF_BARRIER: return req ? MPI_Ibarrier(w, req) : MPI_Barrier(w);
    case PERF_ALLTOALL:
        return req ? MPI_Ialltoall(in, n, t, c->recvbuf, n, t, w, req)
                   : MPI_Alltoall(in, n, t, c->recvbuf, n, t, w);
    case PERF_ALLTOALLV: return alltoallv(m, c, req);
    default: return MPI_ERR_OTHER;
    }
}

static int mp_run(void *ctx, const perf_call_t *c)
{
    MPI_Request req;
    int err;

    if (c->count > INT_MAX)
        return MP_ERR_INT_COUNT;
    err = start((mpi_perf_t *)ctx, c, c->nonblocking ? &req : NULL);
    if (err == MPI_SUCCESS && c->nonblocking)
        err = MPI_Wait(&req, MPI_STATUS_IGNORE);
    if (err == MPI_SUCCESS && c->kind == PERF_REDUCE_SCATTER && c->in_place &&
        c->recvbuf != c->sendbuf)
        memmove(c->recvbuf, c->sendbuf, c->count * perf_dtype_size(c->dtype));
    return err;
}

static int mp_allreduce_doubles(void *ctx, double *values, size_t n, perf_op_t op)
{
    (void)ctx;
    return MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_DOUBLE, mpi_op(op), MPI_COMM_WORLD);
}

static int mp_barrier(void *ctx)
{
    (void)ctx;
    return MPI_Barrier(MPI_COMM_WORLD);
}

static const char *mp_error_string(int err)
{
    static char text[MPI_MAX_ERROR_STRING];
    int n = 0;

    if (err == MP_ERR_INT_COUNT)
        return "a count or displacement above INT_MAX elements: MPI takes them as int "
               "(use a smaller -e)";
    if (err == MP_ERR_NOMEM)
        return "out of memory";
    if (MPI_Error_string(err, text, &n) != MPI_SUCCESS)
        snprintf(text, sizeof(text), "MPI error %d", err);
    return text;
}

static void mp_abort(void *ctx)
{
    (void)ctx;
    MPI_Abort(MPI_COMM_WORLD, PERF_EXIT_FAILED);
}

static int mp_fini(void *ctx)
{
    mpi_perf_t *m = ctx;

    free(m->vectors);
    free(m->scratch);
    free(m);
    return MPI_Finalize();
}

static const perf_backend_t mpi_backend = {
    .size = sizeof(perf_backend_t),
    .program = "mpi-perf",
    .init = mp_init,
    .describe = mp_describe,
    .supports = mp_supports,
    .run = mp_run,
    .allreduce_doubles = mp_allreduce_doubles,
    .barrier = mp_barrier,
    .error_string = mp_error_string,
    .abort = mp_abort,
    .fini = mp_fini,
};

int main(int argc, char **argv)
{
    return perf_main(argc, argv, &mpi_backend);
}
