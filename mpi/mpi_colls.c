/*
 * The MPI collective entry points. Each collective has one function that
 * decides whether tutti serves the call and translates its arguments into
 * a call_t (shared by the blocking and the nonblocking entry point); served
 * calls then run through one dispatcher, the others go to PMPI_* as they
 * came. Data-movement collectives move bytes (any datatype without gaps);
 * reductions need a predefined datatype and operation tutti has.
 */
#include "tutti_mpi.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A served call, in tutti's terms. */
typedef struct call {
    tm_coll_t coll;
    int nonblocking;
    MPI_Comm mpi_comm;
    tutti_comm_t comm;
    int rank, size;
    const void *send;
    void *recv;
    size_t count;
    tutti_datatype_t type;
    tutti_op_t op;
    int root;
    const size_t *v[4]; /* alltoallv: send counts, send displs, recv counts, recv displs */
    tm_finish_t finish;
} call_t;

/* Start deciding @p c: is there a tutti communicator (blocking calls may create it)? */
static int begin(call_t *c, tm_coll_t coll, MPI_Comm comm, const MPI_Request *request)
{
    memset(c, 0, sizeof(*c));
    c->coll = coll;
    c->nonblocking = request != NULL;
    c->mpi_comm = comm;
    c->type = TUTTI_UINT8;
    if (c->nonblocking && !tm_nonblocking_served)
        return 0;
    c->comm = tm_comm_get(comm, !c->nonblocking);
    return c->comm != NULL && tutti_comm_rank(c->comm, &c->rank) == TUTTI_OK &&
           tutti_comm_size(c->comm, &c->size) == TUTTI_OK;
}

/* Record the decision and return it. */
static int decide(call_t *c, int served)
{
    tm_stats_count(c->coll, c->nonblocking, served);
    if (!served)
        tm_finish_drop(&c->finish);
    return served;
}

/* Post @p c's tutti call: blocking if @p treq is NULL. */
static tutti_status_t post(const call_t *c, tutti_request_t *treq)
{
    const void *s = c->send;
    void *r = c->recv;
    size_t n = c->count;
    tutti_datatype_t t = c->type;
    tutti_comm_t comm = c->comm;

    switch (c->coll) {
    case TM_ALLREDUCE:
        return treq ? tutti_iallreduce(s, r, n, t, c->op, comm, treq)
                    : tutti_allreduce(s, r, n, t, c->op, comm);
    case TM_REDUCE:
        return treq ? tutti_ireduce(s, r, n, t, c->op, c->root, comm, treq)
                    : tutti_reduce(s, r, n, t, c->op, c->root, comm);
    case TM_BCAST:
        return treq ? tutti_ibroadcast(s, r, n, t, c->root, comm, treq)
                    : tutti_broadcast(s, r, n, t, c->root, comm);
    case TM_ALLGATHER:
        return treq ? tutti_iallgather(s, r, n, t, comm, treq) : tutti_allgather(s, r, n, t, comm);
    case TM_REDUCE_SCATTER_BLOCK:
    case TM_REDUCE_SCATTER:
        return treq ? tutti_ireduce_scatter(s, r, n, t, c->op, comm, treq)
                    : tutti_reduce_scatter(s, r, n, t, c->op, comm);
    case TM_ALLTOALL:
        return treq ? tutti_ialltoall(s, r, n, t, comm, treq) : tutti_alltoall(s, r, n, t, comm);
    case TM_ALLTOALLV:
        return treq ? tutti_ialltoallv(s, c->v[0], c->v[1], r, c->v[2], c->v[3], t, comm, treq)
                    : tutti_alltoallv(s, c->v[0], c->v[1], r, c->v[2], c->v[3], t, comm);
    case TM_BARRIER: return treq ? tutti_ibarrier(comm, treq) : tutti_barrier(comm);
    default: return TUTTI_ERR_INTERNAL;
    }
}

/* Run a served call: to completion, or started and handed to MPI as @p request. */
static int run(call_t *c, MPI_Request *request)
{
    tutti_request_t treq;
    tutti_status_t status = post(c, request != NULL ? &treq : NULL);

    if (status == TUTTI_OK && request != NULL)
        return tm_request_start(treq, &c->finish, c->mpi_comm, request);
    if (status == TUTTI_OK)
        tm_finish_run(&c->finish);
    else
        tm_finish_drop(&c->finish);
    return tm_mpi_error(c->mpi_comm, status);
}

void tm_finish_run(tm_finish_t *f)
{
    int position = 0;

    if (f->move_bytes > 0)
        memmove(f->move_dst, f->move_src, f->move_bytes);
    if (f->unpack)
        PMPI_Unpack(f->staged, f->staged_bytes, &position, f->unpack_buf, f->unpack_count,
                    f->unpack_type, f->comm);
    tm_finish_drop(f);
}

void tm_finish_drop(tm_finish_t *f)
{
    if (f->unpack && f->free_type)
        PMPI_Type_free(&f->unpack_type);
    f->unpack = 0;
    free(f->owned);
    free(f->arrays);
    free(f->staged);
    f->owned = f->arrays = f->staged = NULL;
}

int tm_mpi_code(tutti_status_t status)
{
    switch (status) {
    case TUTTI_OK: return MPI_SUCCESS;
    case TUTTI_ERR_INVALID_ARG: return MPI_ERR_ARG;
    case TUTTI_ERR_NO_MEMORY: return MPI_ERR_NO_MEM;
    case TUTTI_ERR_PROTOCOL: return MPI_ERR_TRUNCATE; /* counts the ranks disagree on */
    default: return TUTTI_STATUS_IS_FAILURE(status) ? MPI_ERR_OTHER : MPI_ERR_INTERN;
    }
}

int tm_mpi_error(MPI_Comm comm, tutti_status_t status)
{
    int code = tm_mpi_code(status);
    if (code != MPI_SUCCESS)
        PMPI_Comm_call_errhandler(comm, code);
    return code;
}

/*
 * Data movement is served whatever the datatype, so that ranks passing
 * types of one signature with and without gaps decide alike: a side whose
 * type has gaps travels packed (MPI_Pack into a contiguous copy; receives
 * are unpacked on completion). Packing counts in int, so such a side is
 * limited to INT_MAX bytes.
 */

/* Bytes of @p count elements of @p type (its signature's size); SIZE_MAX if invalid. */
static size_t signature_bytes(int count, MPI_Datatype type)
{
    int size;
    if (count < 0 || type == MPI_DATATYPE_NULL || PMPI_Type_size(type, &size) != MPI_SUCCESS ||
        size < 0)
        return SIZE_MAX;
    return (size_t)count * (size_t)size;
}

/* The extent of @p type. */
static MPI_Aint extent_of(MPI_Datatype type)
{
    MPI_Aint lb, extent;
    PMPI_Type_get_extent(type, &lb, &extent);
    return extent;
}

/* @p count elements of @p type at @p buf packed into @p out (@p bytes long); 1 if done. */
static int pack_into(const void *buf, int count, MPI_Datatype type, void *out, size_t bytes,
                     MPI_Comm comm)
{
    int position = 0;
    return bytes <= INT_MAX &&
           PMPI_Pack(buf, count, type, out, (int)bytes, &position, comm) == MPI_SUCCESS;
}

/* A send side with gaps: a packed copy the call owns; NULL if it cannot be made. */
static const void *packed_send(call_t *c, const void *buf, int count, MPI_Datatype type,
                               size_t bytes)
{
    void *copy = malloc(bytes > 0 ? bytes : 1);
    if (copy == NULL || !pack_into(buf, count, type, copy, bytes, c->mpi_comm)) {
        free(copy);
        return NULL;
    }
    c->finish.owned = copy;
    return copy;
}

/*
 * A receive side with gaps: staging the data arrives in, unpacked into
 * @p count x @p type at @p buf on completion (@p type freed then if
 * @p free_type); NULL if it cannot be made.
 */
static void *staged_recv(call_t *c, void *buf, int count, MPI_Datatype type, size_t bytes,
                         int free_type)
{
    tm_finish_t *f = &c->finish;
    if (bytes > INT_MAX || (f->staged = malloc(bytes > 0 ? bytes : 1)) == NULL)
        return NULL;
    f->unpack = 1;
    f->free_type = free_type;
    f->staged_bytes = (int)bytes;
    f->unpack_buf = buf;
    f->unpack_count = count;
    f->unpack_type = type;
    f->comm = c->mpi_comm;
    return f->staged;
}

/* A reduction's type and operation; 1 if tutti has both. */
static int reduction(call_t *c, int count, MPI_Datatype type, MPI_Op op)
{
    return count >= 0 && tm_reduction_type(type, &c->type) && tm_reduction_op(op, &c->op);
}

/*
 * MPI_IN_PLACE where a receive buffer must be is erroneous: such calls go
 * to MPI, which reports MPI_ERR_BUFFER.
 */

/* ---------------------------------------------------------------- reductions */

static int allreduce(call_t *c, const void *sendbuf, void *recvbuf, int count,
                     MPI_Datatype datatype, MPI_Op op, MPI_Comm comm, MPI_Request *request)
{
    int ok = begin(c, TM_ALLREDUCE, comm, request) && recvbuf != MPI_IN_PLACE &&
             reduction(c, count, datatype, op);
    c->send = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    c->recv = recvbuf;
    c->count = (size_t)count;
    return decide(c, ok);
}

TM_EXPORT int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                            MPI_Op op, MPI_Comm comm)
{
    call_t c;
    return allreduce(&c, sendbuf, recvbuf, count, datatype, op, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
}

TM_EXPORT int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                             MPI_Op op, MPI_Comm comm, MPI_Request *request)
{
    call_t c;
    return allreduce(&c, sendbuf, recvbuf, count, datatype, op, comm, request)
               ? run(&c, request)
               : PMPI_Iallreduce(sendbuf, recvbuf, count, datatype, op, comm, request);
}

static int reduce(call_t *c, const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                  MPI_Op op, int root, MPI_Comm comm, MPI_Request *request)
{
    int ok = begin(c, TM_REDUCE, comm, request) && reduction(c, count, datatype, op) && root >= 0 &&
             root < c->size && (c->rank != root || recvbuf != MPI_IN_PLACE);
    /* In place only on the root; elsewhere the receive buffer is not used. */
    c->send = sendbuf == MPI_IN_PLACE ? recvbuf : sendbuf;
    c->recv = c->rank == root ? recvbuf : NULL;
    c->count = (size_t)count;
    c->root = root;
    return decide(c, ok);
}

TM_EXPORT int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                         MPI_Op op, int root, MPI_Comm comm)
{
    call_t c;
    return reduce(&c, sendbuf, recvbuf, count, datatype, op, root, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Reduce(sendbuf, recvbuf, count, datatype, op, root, comm);
}

TM_EXPORT int MPI_Ireduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
                          MPI_Op op, int root, MPI_Comm comm, MPI_Request *request)
{
    call_t c;
    return reduce(&c, sendbuf, recvbuf, count, datatype, op, root, comm, request)
               ? run(&c, request)
               : PMPI_Ireduce(sendbuf, recvbuf, count, datatype, op, root, comm, request);
}

/*
 * Reduce-scatter with @p count elements per rank. In place (MPI_IN_PLACE),
 * MPI takes the input from recvbuf and leaves the result at its start,
 * while tutti's in-place form leaves it at block rank: moved afterwards.
 */
static int reduce_scatter_common(call_t *c, const void *sendbuf, void *recvbuf, int count,
                                 MPI_Datatype datatype, MPI_Op op)
{
    size_t block;

    if (recvbuf == MPI_IN_PLACE || !reduction(c, count, datatype, op))
        return 0;
    block = (size_t)count * tutti_datatype_size(c->type);
    c->count = (size_t)count;
    c->send = sendbuf;
    c->recv = recvbuf;
    if (sendbuf == MPI_IN_PLACE) {
        c->send = recvbuf;
        c->recv = (char *)recvbuf + (size_t)c->rank * block;
        c->finish.move_dst = recvbuf;
        c->finish.move_src = c->recv;
        c->finish.move_bytes = c->rank > 0 ? block : 0;
    }
    return 1;
}

static int reduce_scatter_block(call_t *c, const void *sendbuf, void *recvbuf, int recvcount,
                                MPI_Datatype datatype, MPI_Op op, MPI_Comm comm,
                                MPI_Request *request)
{
    int ok = begin(c, TM_REDUCE_SCATTER_BLOCK, comm, request) &&
             reduce_scatter_common(c, sendbuf, recvbuf, recvcount, datatype, op);
    return decide(c, ok);
}

TM_EXPORT int MPI_Reduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount,
                                       MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
    call_t c;
    return reduce_scatter_block(&c, sendbuf, recvbuf, recvcount, datatype, op, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Reduce_scatter_block(sendbuf, recvbuf, recvcount, datatype, op, comm);
}

TM_EXPORT int MPI_Ireduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount,
                                        MPI_Datatype datatype, MPI_Op op, MPI_Comm comm,
                                        MPI_Request *request)
{
    call_t c;
    return reduce_scatter_block(&c, sendbuf, recvbuf, recvcount, datatype, op, comm, request)
               ? run(&c, request)
               : PMPI_Ireduce_scatter_block(sendbuf, recvbuf, recvcount, datatype, op, comm,
                                            request);
}

/* MPI_Reduce_scatter is served when every rank gets the same count (the usual case). */
static int reduce_scatter(call_t *c, const void *sendbuf, void *recvbuf, const int recvcounts[],
                          MPI_Datatype datatype, MPI_Op op, MPI_Comm comm, MPI_Request *request)
{
    int ok = begin(c, TM_REDUCE_SCATTER, comm, request) && recvcounts != NULL;
    for (int i = 1; ok && i < c->size; i++)
        ok = recvcounts[i] == recvcounts[0];
    ok = ok && reduce_scatter_common(c, sendbuf, recvbuf, recvcounts[0], datatype, op);
    return decide(c, ok);
}

TM_EXPORT int MPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[],
                                 MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
    call_t c;
    return reduce_scatter(&c, sendbuf, recvbuf, recvcounts, datatype, op, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Reduce_scatter(sendbuf, recvbuf, recvcounts, datatype, op, comm);
}

TM_EXPORT int MPI_Ireduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[],
                                  MPI_Datatype datatype, MPI_Op op, MPI_Comm comm,
                                  MPI_Request *request)
{
    call_t c;
    return reduce_scatter(&c, sendbuf, recvbuf, recvcounts, datatype, op, comm, request)
               ? run(&c, request)
               : PMPI_Ireduce_scatter(sendbuf, recvbuf, recvcounts, datatype, op, comm, request);
}

/* ---------------------------------------------------------------- data movement */

static int bcast(call_t *c, void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
                 MPI_Request *request)
{
    int ok = begin(c, TM_BCAST, comm, request) && buffer != MPI_IN_PLACE && root >= 0 &&
             root < c->size && (c->count = signature_bytes(count, datatype)) != SIZE_MAX;
    void *buf = buffer;

    if (ok && tm_dense_size(datatype) == 0) /* gaps: the root sends a packed copy */
        buf = c->rank == root ? (void *)packed_send(c, buffer, count, datatype, c->count)
                              : staged_recv(c, buffer, count, datatype, c->count, 0);
    c->send = c->recv = buf; /* in place on the root; read only there */
    c->root = root;
    return decide(c, ok && buf != NULL);
}

TM_EXPORT int MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)
{
    call_t c;
    return bcast(&c, buffer, count, datatype, root, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Bcast(buffer, count, datatype, root, comm);
}

TM_EXPORT int MPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
                         MPI_Request *request)
{
    call_t c;
    return bcast(&c, buffer, count, datatype, root, comm, request)
               ? run(&c, request)
               : PMPI_Ibcast(buffer, count, datatype, root, comm, request);
}

/*
 * Bytes per rank of an all-gather or all-to-all block: the receive side's
 * (in place, the only one), which the send side must match.
 */
static size_t block_bytes(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int recvcount,
                          MPI_Datatype recvtype)
{
    size_t recv = signature_bytes(recvcount, recvtype);
    if (sendbuf == MPI_IN_PLACE || recv == SIZE_MAX)
        return recv;
    return signature_bytes(sendcount, sendtype) == recv ? recv : SIZE_MAX;
}

/*
 * The receive side of an all-gather or all-to-all: nranks blocks of
 * @p recvcount x @p recvtype, as bytes (staged if the type has gaps).
 * In place, @p own_only says that only this rank's block is input
 * (all-gather) rather than the whole buffer (all-to-all): it is packed into
 * its place in the staging. Sets c->recv and c->send; 1 if done.
 */
static int blocks_side(call_t *c, const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                       void *recvbuf, int recvcount, MPI_Datatype recvtype, int own_only)
{
    size_t n = (size_t)c->size, total = n * c->count;
    int in_place = sendbuf == MPI_IN_PLACE;

    c->recv = recvbuf;
    if (tm_dense_size(recvtype) == 0) {
        if ((size_t)recvcount * n > INT_MAX ||
            (c->recv = staged_recv(c, recvbuf, recvcount * c->size, recvtype, total, 0)) == NULL)
            return 0;
        if (in_place && own_only &&
            !pack_into((const char *)recvbuf + (size_t)c->rank * recvcount * extent_of(recvtype),
                       recvcount, recvtype, (char *)c->recv + c->rank * c->count, c->count,
                       c->mpi_comm))
            return 0;
        if (in_place && !own_only &&
            !pack_into(recvbuf, recvcount * c->size, recvtype, c->recv, total, c->mpi_comm))
            return 0;
    }
    if (in_place) /* all-gather: this rank's block is at its place */
        c->send = own_only ? (char *)c->recv + (size_t)c->rank * c->count : c->recv;
    else if (tm_dense_size(sendtype) > 0)
        c->send = sendbuf;
    else
        c->send = packed_send(c, sendbuf, own_only ? sendcount : sendcount * c->size, sendtype,
                              own_only ? c->count : total);
    return c->send != NULL;
}

/* All-gather or all-to-all: nranks blocks of one size each way. */
static int blocks_call(call_t *c, tm_coll_t coll, const void *sendbuf, int sendcount,
                       MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype,
                       MPI_Comm comm, MPI_Request *request)
{
    int ok =
        begin(c, coll, comm, request) && recvbuf != MPI_IN_PLACE &&
        (c->count = block_bytes(sendbuf, sendcount, sendtype, recvcount, recvtype)) != SIZE_MAX &&
        blocks_side(c, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                    coll == TM_ALLGATHER);
    return decide(c, ok);
}

static int allgather(call_t *c, const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                     void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm,
                     MPI_Request *request)
{
    return blocks_call(c, TM_ALLGATHER, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                       comm, request);
}

TM_EXPORT int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                            void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm)
{
    call_t c;
    return allgather(&c, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
}

TM_EXPORT int MPI_Iallgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                             void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm,
                             MPI_Request *request)
{
    call_t c;
    return allgather(&c, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, request)
               ? run(&c, request)
               : PMPI_Iallgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm,
                                 request);
}

static int alltoall(call_t *c, const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                    void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm,
                    MPI_Request *request)
{
    return blocks_call(c, TM_ALLTOALL, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                       comm, request);
}

TM_EXPORT int MPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                           int recvcount, MPI_Datatype recvtype, MPI_Comm comm)
{
    call_t c;
    return alltoall(&c, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
}

TM_EXPORT int MPI_Ialltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                            void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm,
                            MPI_Request *request)
{
    call_t c;
    return alltoall(&c, sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, request)
               ? run(&c, request)
               : PMPI_Ialltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm,
                                request);
}

/*
 * One side of an all-to-all-v in bytes: @p counts and @p displs (in
 * elements of @p size bytes) into @p bytes_counts and @p bytes_displs.
 * MPI allows displacements below the buffer's start: the buffer is moved
 * back to the lowest one, which every block then lies above. Returns the
 * buffer to pass, or NULL for counts MPI does not allow.
 */
static char *side_in_bytes(const char *buf, const int counts[], const int displs[], int n,
                           size_t size, size_t *bytes_counts, size_t *bytes_displs)
{
    long lowest = 0;

    for (int i = 0; i < n; i++) {
        if (counts[i] < 0)
            return NULL;
        if (displs[i] < lowest)
            lowest = displs[i];
    }
    for (int i = 0; i < n; i++) {
        bytes_counts[i] = (size_t)counts[i] * size;
        bytes_displs[i] = (size_t)(displs[i] - lowest) * size;
    }
    return (char *)buf + lowest * (long)size;
}

/*
 * One side of an all-to-all-v whose type has gaps: its blocks as one
 * indexed type, packed (send, or the input in place) or staged (receive),
 * with byte counts and displacements of the packed layout. Returns the
 * buffer to pass, or NULL if it cannot be made.
 */
static char *side_packed(call_t *c, void *buf, const int counts[], const int displs[],
                         MPI_Datatype type, int recv, int in_place, size_t *bytes_counts,
                         size_t *bytes_displs)
{
    size_t size = signature_bytes(1, type), total = 0;
    MPI_Datatype blocks;
    char *out;

    for (int i = 0; i < c->size; i++) {
        if (counts[i] < 0)
            return NULL;
        bytes_counts[i] = (size_t)counts[i] * size;
        bytes_displs[i] = total;
        total += bytes_counts[i];
    }
    if (PMPI_Type_indexed(c->size, counts, displs, type, &blocks) != MPI_SUCCESS)
        return NULL;
    PMPI_Type_commit(&blocks);
    if (!recv) {
        out = (char *)packed_send(c, buf, 1, blocks, total);
        PMPI_Type_free(&blocks);
        return out;
    }
    out = staged_recv(c, buf, 1, blocks, total, 1);
    if (out == NULL)
        PMPI_Type_free(&blocks);
    else if (in_place && !pack_into(buf, 1, blocks, out, total, c->mpi_comm))
        return NULL; /* the staging and the type go with the call */
    return out;
}

static int alltoallv(call_t *c, const void *sendbuf, const int sendcounts[], const int sdispls[],
                     MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                     const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm,
                     MPI_Request *request)
{
    int in_place = sendbuf == MPI_IN_PLACE;
    size_t send_size = tm_dense_size(in_place ? recvtype : sendtype);
    size_t recv_size = tm_dense_size(recvtype), n, *v;
    int ok = begin(c, TM_ALLTOALLV, comm, request) && recvbuf != MPI_IN_PLACE &&
             recvcounts != NULL && rdispls != NULL && signature_bytes(1, recvtype) != SIZE_MAX &&
             (in_place ||
              (sendcounts != NULL && sdispls != NULL && signature_bytes(1, sendtype) != SIZE_MAX));

    n = (size_t)c->size;
    if (!ok || (v = c->finish.arrays = malloc(4 * n * sizeof(size_t))) == NULL)
        return decide(c, 0);
    for (int i = 0; i < 4; i++)
        c->v[i] = v + (size_t)i * n;
    c->recv = recv_size > 0 ? side_in_bytes(recvbuf, recvcounts, rdispls, c->size, recv_size,
                                            v + 2 * n, v + 3 * n)
                            : side_packed(c, recvbuf, recvcounts, rdispls, recvtype, 1, in_place,
                                          v + 2 * n, v + 3 * n);
    if (in_place) {
        c->send = c->recv;
        memcpy(v, v + 2 * n, 2 * n * sizeof(size_t));
    } else {
        c->send =
            send_size > 0
                ? side_in_bytes(sendbuf, sendcounts, sdispls, c->size, send_size, v, v + n)
                : side_packed(c, (void *)sendbuf, sendcounts, sdispls, sendtype, 0, 0, v, v + n);
    }
    return decide(c, c->recv != NULL && c->send != NULL);
}

TM_EXPORT int MPI_Alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[],
                            MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                            const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm)
{
    call_t c;
    return alltoallv(&c, sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls,
                     recvtype, comm, NULL)
               ? run(&c, NULL)
               : PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts,
                                rdispls, recvtype, comm);
}

TM_EXPORT int MPI_Ialltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[],
                             MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                             const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm,
                             MPI_Request *request)
{
    call_t c;
    return alltoallv(&c, sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls,
                     recvtype, comm, request)
               ? run(&c, request)
               : PMPI_Ialltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts,
                                 rdispls, recvtype, comm, request);
}

/* ---------------------------------------------------------------- barrier */

TM_EXPORT int MPI_Barrier(MPI_Comm comm)
{
    call_t c;
    return decide(&c, begin(&c, TM_BARRIER, comm, NULL)) ? run(&c, NULL) : PMPI_Barrier(comm);
}

TM_EXPORT int MPI_Ibarrier(MPI_Comm comm, MPI_Request *request)
{
    call_t c;
    return decide(&c, begin(&c, TM_BARRIER, comm, request)) ? run(&c, request)
                                                            : PMPI_Ibarrier(comm, request);
}
