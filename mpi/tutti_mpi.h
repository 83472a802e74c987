/*
 * The MPI collective backend: an interposition library (libtutti_mpi.so for
 * Open MPI, libtutti_mpi_mpich.so for MPICH, built from these sources with
 * each MPI's headers) that defines MPI's collective entry points, serves the
 * calls tutti can serve, and hands every other call to the MPI library
 * through the profiling interface (PMPI_*), untouched.
 *
 *   mpi_colls.c     the entry points: decide, translate, run or fall back;
 *   mpi_types.c     predefined datatypes and operations as tutti's;
 *   mpi_comms.c     one tutti communicator per MPI communicator, cached as
 *                   an attribute; MPI_Init and MPI_Finalize;
 *   mpi_requests.c  nonblocking calls as MPI generalized requests, completed
 *                   from MPI's own progress;
 *   mpi_stats.c     TUTTI_MPI_STATS: served and fallen-back calls.
 *
 * A served call and its fallback must be chosen alike on every rank (the
 * ranks would otherwise wait in different libraries). Every decision here
 * depends only on what MPI requires to match across ranks: the collective,
 * the communicator, the type signature (predefined types and dense layouts
 * of the same signature decide alike), the operation, the root and, for
 * MPI_Reduce_scatter, the counts array every rank passes.
 */
#ifndef TUTTI_MPI_H
#define TUTTI_MPI_H

#include <mpi.h>
#include <stddef.h>
#include <tutti.h>

/* Marks the MPI_* definitions: the library is built with hidden visibility. */
#define TM_EXPORT __attribute__((visibility("default")))

/* The collectives served, each with a blocking and a nonblocking entry point. */
typedef enum tm_coll {
    TM_ALLREDUCE,
    TM_REDUCE,
    TM_BCAST,
    TM_ALLGATHER,
    TM_REDUCE_SCATTER_BLOCK,
    TM_REDUCE_SCATTER,
    TM_ALLTOALL,
    TM_ALLTOALLV,
    TM_BARRIER,
    TM_NUM_COLLS
} tm_coll_t;

/* ---------------------------------------------------------------- types */

/* The tutti type of predefined MPI datatype @p type for reductions; 0 if none. */
int tm_reduction_type(MPI_Datatype type, tutti_datatype_t *type_p);

/* The tutti operation of predefined MPI operation @p op; 0 if none. */
int tm_reduction_op(MPI_Op op, tutti_op_t *op_p);

/*
 * Bytes of one element of @p type if its data has no gaps (it can move as
 * bytes: every predefined type, and derived ones such as contiguous); 0
 * otherwise.
 */
size_t tm_dense_size(MPI_Datatype type);

/* ---------------------------------------------------------------- communicators */

/*
 * The tutti communicator serving @p comm, or NULL to fall back. Without one
 * yet, and when @p may_create, creates it (collective over @p comm: all
 * ranks get here at the same call, the same way).
 */
tutti_comm_t tm_comm_get(MPI_Comm comm, int may_create);

/* After PMPI_Init: settings, and MPI_COMM_WORLD's tutti communicator. */
void tm_comm_start(void);

/* Before PMPI_Finalize: destroy every tutti communicator still alive. */
void tm_comm_stop(void);

/* ---------------------------------------------------------------- calls */

/* What to do once a served call has completed. */
typedef struct tm_finish {
    void *owned;    /* freed: a packed send side */
    void *arrays;   /* freed: alltoallv's counts and displacements in bytes */
    char *move_dst; /* then move_bytes from move_src to move_dst (in-place reduce-scatter) */
    const char *move_src;
    size_t move_bytes;
    /* A receive side in a datatype with gaps arrives packed in @p staged
     * (staged_bytes) and is unpacked into unpack_count x unpack_type at
     * unpack_buf; unpack_type is freed if free_type. */
    int unpack, free_type;
    void *staged, *unpack_buf;
    int staged_bytes, unpack_count;
    MPI_Datatype unpack_type;
    MPI_Comm comm;
} tm_finish_t;

/* Do @p f's work and free what it owns. */
void tm_finish_run(tm_finish_t *f);

/* Free what @p f owns without doing its work (the call failed). */
void tm_finish_drop(tm_finish_t *f);

/* The MPI error code for a tutti status (MPI_SUCCESS for TUTTI_OK). */
int tm_mpi_code(tutti_status_t status);

/*
 * The MPI result of a tutti status on @p comm: MPI_SUCCESS, or an error
 * code after the communicator's error handler has been called.
 */
int tm_mpi_error(MPI_Comm comm, tutti_status_t status);

/* Complete every served nonblocking call on @p comm (before its tutti communicator goes). */
void tm_requests_drain(MPI_Comm comm);

/* 1 if this MPI lets nonblocking calls be served (see mpi_requests.c), else 0. */
extern const int tm_nonblocking_served;

/*
 * Hand a started tutti request to MPI as @p request_p: a generalized
 * request that completes, with @p finish done, when the tutti request does.
 * Returns an MPI code.
 */
int tm_request_start(tutti_request_t treq, const tm_finish_t *finish, MPI_Comm comm,
                     MPI_Request *request_p);

/* ---------------------------------------------------------------- stats */

/* Count one call of @p coll (nonblocking or not), served or fallen back. */
void tm_stats_count(tm_coll_t coll, int nonblocking, int served);

/* If TUTTI_MPI_STATS is set: rank 0 prints the counts summed over ranks. Collective. */
void tm_stats_report(void);

#endif
