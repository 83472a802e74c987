/*
 * The part of the benchmarks every backend shares: flags, the size sweep,
 * the timing loop, building inputs and checking results, and the table.
 *
 * A program (tutti-perf, mpi-perf) describes its library as one
 * perf_backend_t and calls perf_main(). The backend only moves data; what a
 * collective means (buffer sizes, in-place layout, the expected result, the
 * bus-bandwidth factor) lives in the collective table in perf_colls.c, so
 * a new collective is one row there plus one case in each backend's run().
 *
 * This header and the perf_*.c files use standard C and POSIX only:
 * mpi-perf is built without the tutti library.
 */
#ifndef PERF_COMMON_H
#define PERF_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Element types, in the order of tutti_datatype_t (backends map them by table). */
typedef enum perf_dtype {
    PERF_INT8,
    PERF_UINT8,
    PERF_INT32,
    PERF_UINT32,
    PERF_INT64,
    PERF_UINT64,
    PERF_FP16,
    PERF_BF16,
    PERF_FP32,
    PERF_FP64,
    PERF_NUM_DTYPES
} perf_dtype_t;

/* Reduction operations, in the order of tutti_op_t. */
typedef enum perf_op { PERF_SUM, PERF_PROD, PERF_MIN, PERF_MAX, PERF_AVG, PERF_NUM_OPS } perf_op_t;

/* Collectives the benchmark knows. */
typedef enum perf_coll_kind {
    PERF_ALLREDUCE,
    PERF_REDUCE_SCATTER,
    PERF_ALLGATHER,
    PERF_BROADCAST,
    PERF_REDUCE,
    PERF_BARRIER,
    PERF_ALLTOALL,
    PERF_ALLTOALLV,
    PERF_NUM_COLLS
} perf_coll_kind_t;

/*
 * One call as the benchmark makes it, with counts and in-place layouts as
 * tutti's API takes them (tutti.h): allreduce, broadcast, reduce,
 * all-to-all and all-to-all-v sendbuf == recvbuf; all-gather
 * sendbuf == recvbuf + rank * count; reduce-scatter
 * recvbuf == sendbuf + rank * count. A backend whose API spells in place
 * differently (MPI_IN_PLACE) translates.
 *
 * All-to-all sends count elements to each rank. All-to-all-v takes its
 * sizes from the four arrays instead (count is then the average per pair,
 * for messages only); the benchmark packs the blocks in rank order, so
 * sdispls and rdispls are the running sums of their counts.
 */
typedef struct perf_call {
    perf_coll_kind_t kind;
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    perf_dtype_t dtype;
    perf_op_t op; /* reductions only */
    int root;     /* rooted collectives only */
    int in_place;
    int nonblocking; /* use the nonblocking form, then wait for it */
    /* All-to-all-v only: this rank's nranks counts and displacements, in elements. */
    const size_t *sendcounts, *sdispls, *recvcounts, *rdispls;
    /*
     * All-to-all-v only: on every rank the send blocks sit where the receive
     * blocks go (the count matrix is symmetric), so an in-place call can be
     * MPI's, which sends each block from where its answer lands.
     */
    int same_layout;
} perf_call_t;

/*
 * A library under test. Every function that can fail returns 0 on success
 * or a backend error code, which error_string() describes. Only init() and
 * supports() may be called before the others; all but error_string() take
 * the context init() returned.
 */
typedef struct perf_backend {
    size_t size;         /* sizeof(perf_backend_t), a version check */
    const char *program; /* "tutti-perf", for messages */
    /* Join the job; fill rank and size. Called after the flags parse. */
    int (*init)(void **ctx_p, int *rank_p, int *nranks_p);
    /* One line naming the library and its version, for the header. */
    void (*describe)(void *ctx, char *text, size_t len);
    /* 1 if the library can run this collective on this type and op, else 0. */
    int (*supports)(perf_coll_kind_t kind, perf_dtype_t dtype, perf_op_t op);
    /* Run one collective; return when it is complete. */
    int (*run)(void *ctx, const perf_call_t *call);
    /* Combine @p n doubles over all ranks with @p op (sum, min or max), in place, on every rank. */
    int (*allreduce_doubles)(void *ctx, double *values, size_t n, perf_op_t op);
    /* Return once every rank has entered. */
    int (*barrier)(void *ctx);
    const char *(*error_string)(int err);
    /* After a failed call: tell the peers and give up, without waiting for them. */
    void (*abort)(void *ctx);
    /* Leave the job and free everything; collective. */
    int (*fini)(void *ctx);
} perf_backend_t;

/* Exit statuses of perf_main(). */
enum {
    PERF_EXIT_OK = 0,
    PERF_EXIT_WRONG = 1,  /* some result element was wrong */
    PERF_EXIT_USAGE = 2,  /* bad flags */
    PERF_EXIT_FAILED = 3, /* a library call failed */
};

/*
 * Run the benchmark: argv[1] names the collective, the rest are flags (see
 * the usage text). Prints on rank 0 only.
 * @return a PERF_EXIT_* status for main() to return.
 */
int perf_main(int argc, char **argv, const perf_backend_t *backend);

/* Name of a type or op as the table prints it ("fp32", "sum"). */
const char *perf_dtype_name(perf_dtype_t dtype);
/* Bytes of one element of @p dtype. */
size_t perf_dtype_size(perf_dtype_t dtype);
const char *perf_op_name(perf_op_t op);

#endif /* PERF_COMMON_H */
