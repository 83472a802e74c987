/*
 * The collective entry points: check the arguments (nothing starts unless
 * all are good), find the plan, post it, and wait or hand back a request.
 */
#include "config.h"

#include "api/comm.h"
#include "api/request.h"

#include "coll/cost.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/* One call as the user made it. */
typedef struct call {
    tt_coll_kind_t kind;
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    tutti_datatype_t datatype;
    tutti_op_t op;
    int root;
    const tt_a2a_layout_t *layout; /* all-to-all-v only */
} call_t;

static int is_reduction(tt_coll_kind_t kind)
{
    return kind == TT_COLL_ALLREDUCE || kind == TT_COLL_REDUCE_SCATTER || kind == TT_COLL_REDUCE;
}

static int has_root(tt_coll_kind_t kind)
{
    return kind == TT_COLL_BROADCAST || kind == TT_COLL_REDUCE;
}

/* Elements in the send and receive buffers of this rank. */
static void buffer_counts(const call_t *c, int rank, int nranks, size_t *send_p, size_t *recv_p)
{
    size_t n = (size_t)nranks;
    const tt_a2a_layout_t *v = c->layout;
    *send_p = *recv_p = c->count;
    switch (c->kind) {
    case TT_COLL_REDUCE_SCATTER: *send_p = c->count * n; break;
    case TT_COLL_ALLGATHER: *recv_p = c->count * n; break;
    case TT_COLL_ALLTOALL: *send_p = *recv_p = c->count * n; break;
    case TT_COLL_ALLTOALLV:
        *send_p = tt_a2a_extent(v->send_counts, v->send_displs, nranks);
        *recv_p = tt_a2a_extent(v->recv_counts, v->recv_displs, nranks);
        break;
    case TT_COLL_BROADCAST: *send_p = rank == c->root ? c->count : 0; break;
    case TT_COLL_REDUCE: *recv_p = rank == c->root ? c->count : 0; break;
    case TT_COLL_BARRIER: *send_p = *recv_p = 0; break;
    default: break;
    }
}

/* Where the send buffer must start for the call to be in place. */
static const char *in_place_send(const call_t *c, int rank, size_t elem_size)
{
    const char *recv = c->recvbuf;
    switch (c->kind) {
    case TT_COLL_ALLGATHER: return recv + (size_t)rank * c->count * elem_size;
    case TT_COLL_REDUCE_SCATTER: return NULL; /* the other way round; see below */
    default: return recv;
    }
}

static int decide_in_place(const call_t *c, int rank, size_t elem_size)
{
    if (c->kind == TT_COLL_ALLTOALLV)
        return c->sendbuf == c->recvbuf && c->recvbuf != NULL;
    if (c->kind == TT_COLL_BARRIER || c->count == 0 || c->recvbuf == NULL)
        return 0;
    if (has_root(c->kind) && rank != c->root)
        return 0;
    if (c->kind == TT_COLL_REDUCE_SCATTER)
        return (const char *)c->sendbuf + (size_t)rank * c->count * elem_size == c->recvbuf;
    return c->sendbuf == in_place_send(c, rank, elem_size);
}

/*
 * All-to-all-v's arrays: present, offsets within reach, and this rank's
 * block to itself the same size both ways. Sets c->count to the elements
 * this rank sends.
 */
static tutti_status_t check_layout(tutti_comm_t comm, call_t *c, const char *name)
{
    const tt_a2a_layout_t *v = c->layout;
    size_t limit = ((uint64_t)1 << 52) / TT_MAX(tutti_datatype_size(c->datatype), 1);
    int me = comm->rank;

    if (v->send_counts == NULL || v->send_displs == NULL || v->recv_counts == NULL ||
        v->recv_displs == NULL) {
        tt_error("%s: a count or displacement array is NULL", name);
        return TUTTI_ERR_INVALID_ARG;
    }
    c->count = 0;
    for (int i = 0; i < comm->nranks; i++) {
        if (v->send_counts[i] > limit || v->send_displs[i] > limit - v->send_counts[i] ||
            v->recv_counts[i] > limit || v->recv_displs[i] > limit - v->recv_counts[i]) {
            tt_error("%s: the block for rank %d lies too far out (count or displacement too "
                     "large)",
                     name, i);
            return TUTTI_ERR_INVALID_ARG;
        }
        c->count += v->send_counts[i];
    }
    if (v->send_counts[me] != v->recv_counts[me]) {
        tt_error("%s: rank %d sends itself %zu elements but expects %zu", name, me,
                 v->send_counts[me], v->recv_counts[me]);
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

static tutti_status_t check_args(tutti_comm_t comm, call_t *c, const char *name, int *in_place_p)
{
    size_t elem_size = tutti_datatype_size(c->datatype), send_n, recv_n;
    const char *s, *r;

    if (!tt_comm_valid(comm)) {
        tt_error("%s: invalid or destroyed communicator %p", name, (void *)comm);
        return TUTTI_ERR_INVALID_COMM;
    }
    if (c->kind != TT_COLL_BARRIER && elem_size == 0) {
        tt_error("%s: datatype %d is not a tutti_datatype_t", name, (int)c->datatype);
        return TUTTI_ERR_UNSUPPORTED;
    }
    if (is_reduction(c->kind) && (unsigned)c->op >= TUTTI_NUM_OPS) {
        tt_error("%s: operation %d is not a tutti_op_t", name, (int)c->op);
        return TUTTI_ERR_UNSUPPORTED;
    }
    if (has_root(c->kind) && (c->root < 0 || c->root >= comm->nranks)) {
        tt_error("%s: root %d is not a rank of this communicator (0..%d)", name, c->root,
                 comm->nranks - 1);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (c->kind == TT_COLL_ALLTOALLV)
        TT_CHECK(check_layout(comm, c, name));
    /* Byte offsets must fit the schedule's 62 bits with room to spare. */
    else if (c->count > ((uint64_t)1 << 52) / TT_MAX(elem_size, 1) / (size_t)comm->nranks) {
        tt_error("%s: count %zu is too large", name, c->count);
        return TUTTI_ERR_INVALID_ARG;
    }
    buffer_counts(c, comm->rank, comm->nranks, &send_n, &recv_n);
    if ((send_n > 0 && c->sendbuf == NULL) || (recv_n > 0 && c->recvbuf == NULL)) {
        tt_error("%s: %s buffer is NULL but holds %zu elements", name,
                 send_n > 0 && c->sendbuf == NULL ? "send" : "receive",
                 send_n > 0 && c->sendbuf == NULL ? send_n : recv_n);
        return TUTTI_ERR_INVALID_ARG;
    }
    *in_place_p = decide_in_place(c, comm->rank, elem_size);
    s = c->sendbuf;
    r = c->recvbuf;
    if (!*in_place_p && send_n > 0 && recv_n > 0 && s < r + recv_n * elem_size &&
        r < s + send_n * elem_size) {
        tt_error("%s: the send and receive buffers overlap without being in place (see "
                 "tutti.h for each collective's in-place form)",
                 name);
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

/*
 * A 32-bit summary of the call, carried in every message, so mismatched
 * calls are caught. All-to-all-v's count differs from rank to rank: each
 * message's length is checked instead.
 */
static uint32_t call_signature(const call_t *c)
{
    uint64_t h = (uint64_t)c->kind | (uint64_t)c->datatype << 4 | (uint64_t)c->op << 8 |
                 (uint64_t)(uint32_t)c->root << 12;
    if (c->kind != TT_COLL_ALLTOALLV)
        h ^= (uint64_t)c->count * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

/* Everything up to posting: checks, plan, operation. */
static tutti_status_t prepare(tutti_comm_t comm, call_t *c, tt_op_t *op, tt_plan_t **plan_p)
{
    const char *name = tt_coll_kind_names[c->kind], *why;
    tt_coll_desc_t desc;
    int in_place, built = 0;

    TT_CHECK(check_args(comm, c, name, &in_place));
    memset(&desc, 0, sizeof(desc));
    desc.kind = c->kind;
    desc.count = c->count;
    desc.elem_size = c->kind == TT_COLL_BARRIER ? 1 : tutti_datatype_size(c->datatype);
    desc.root = has_root(c->kind) ? c->root : 0;
    desc.in_place = in_place;
    desc.rank = comm->rank;
    desc.nranks = comm->nranks;
    why = tt_select(&comm->selector, &desc);
    /* All-to-all-v's plan depends on its counts: built for each call. */
    desc.layout = c->layout;
    if (c->layout != NULL)
        TT_CHECK(tt_plan_build(&desc, plan_p));
    else
        TT_CHECK(tt_plan_get(&comm->plans, &desc, plan_p, &built));
    if (built)
        tt_info("%s of %llu bytes on %d ranks: %s, %d channel%s, %zu-byte chunks, %d part%s (%s; "
                "model predicts %.1f us)",
                name, (unsigned long long)tt_cost_bytes(&desc), desc.nranks,
                tt_algo_names[desc.algo], desc.channels, desc.channels == 1 ? "" : "s",
                desc.chunk_bytes, (*plan_p)->nparts, (*plan_p)->nparts == 1 ? "" : "s", why,
                tt_cost_predict(&desc, desc.cluster) * 1e6);

    tt_request_op_init(op, *plan_p, comm, name, c->sendbuf, c->recvbuf, call_signature(c));
    if (is_reduction(c->kind)) {
        op->env.reduce = comm->kernels[c->datatype][c->op == TUTTI_AVG ? TUTTI_SUM : c->op];
        op->env.reduce_final = comm->kernels[c->datatype][c->op];
        op->env.divisor = (uint32_t)comm->nranks;
    }
    return TUTTI_OK;
}

static tutti_status_t run_blocking(tutti_comm_t comm, call_t *c)
{
    tt_plan_t *plan;
    tt_op_t op;

    TT_CHECK(prepare(comm, c, &op, &plan));
    return tt_request_submit(comm, &op, plan, NULL);
}

static tutti_status_t run_nonblocking(tutti_comm_t comm, call_t *c, tutti_request_t *request_p)
{
    tt_plan_t *plan;
    tt_op_t op;

    if (request_p == NULL) {
        tt_error("%s: request pointer is NULL", tt_coll_kind_names[c->kind]);
        return TUTTI_ERR_INVALID_ARG;
    }
    TT_CHECK(prepare(comm, c, &op, &plan));
    return tt_request_submit(comm, &op, plan, request_p);
}

/* ---------------------------------------------------------------- entry points */

#define CALL(kind_, send_, recv_, count_, type_, op_, root_) \
    (&(call_t){(kind_), (send_), (recv_), (count_), (type_), (op_), (root_), NULL})

tutti_status_t tutti_allreduce(const void *sendbuf, void *recvbuf, size_t count,
                               tutti_datatype_t datatype, tutti_op_t op, tutti_comm_t comm)
{
    return run_blocking(comm, CALL(TT_COLL_ALLREDUCE, sendbuf, recvbuf, count, datatype, op, 0));
}

tutti_status_t tutti_iallreduce(const void *sendbuf, void *recvbuf, size_t count,
                                tutti_datatype_t datatype, tutti_op_t op, tutti_comm_t comm,
                                tutti_request_t *request_p)
{
    return run_nonblocking(comm, CALL(TT_COLL_ALLREDUCE, sendbuf, recvbuf, count, datatype, op, 0),
                           request_p);
}

tutti_status_t tutti_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                    tutti_datatype_t datatype, tutti_op_t op, tutti_comm_t comm)
{
    return run_blocking(comm,
                        CALL(TT_COLL_REDUCE_SCATTER, sendbuf, recvbuf, recvcount, datatype, op, 0));
}

tutti_status_t tutti_ireduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                                     tutti_datatype_t datatype, tutti_op_t op, tutti_comm_t comm,
                                     tutti_request_t *request_p)
{
    return run_nonblocking(
        comm, CALL(TT_COLL_REDUCE_SCATTER, sendbuf, recvbuf, recvcount, datatype, op, 0),
        request_p);
}

tutti_status_t tutti_allgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                               tutti_datatype_t datatype, tutti_comm_t comm)
{
    return run_blocking(
        comm, CALL(TT_COLL_ALLGATHER, sendbuf, recvbuf, sendcount, datatype, TUTTI_SUM, 0));
}

tutti_status_t tutti_iallgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                                tutti_datatype_t datatype, tutti_comm_t comm,
                                tutti_request_t *request_p)
{
    return run_nonblocking(
        comm, CALL(TT_COLL_ALLGATHER, sendbuf, recvbuf, sendcount, datatype, TUTTI_SUM, 0),
        request_p);
}

tutti_status_t tutti_broadcast(const void *sendbuf, void *recvbuf, size_t count,
                               tutti_datatype_t datatype, int root, tutti_comm_t comm)
{
    return run_blocking(
        comm, CALL(TT_COLL_BROADCAST, sendbuf, recvbuf, count, datatype, TUTTI_SUM, root));
}

tutti_status_t tutti_ibroadcast(const void *sendbuf, void *recvbuf, size_t count,
                                tutti_datatype_t datatype, int root, tutti_comm_t comm,
                                tutti_request_t *request_p)
{
    return run_nonblocking(
        comm, CALL(TT_COLL_BROADCAST, sendbuf, recvbuf, count, datatype, TUTTI_SUM, root),
        request_p);
}

tutti_status_t tutti_reduce(const void *sendbuf, void *recvbuf, size_t count,
                            tutti_datatype_t datatype, tutti_op_t op, int root, tutti_comm_t comm)
{
    return run_blocking(comm, CALL(TT_COLL_REDUCE, sendbuf, recvbuf, count, datatype, op, root));
}

tutti_status_t tutti_ireduce(const void *sendbuf, void *recvbuf, size_t count,
                             tutti_datatype_t datatype, tutti_op_t op, int root, tutti_comm_t comm,
                             tutti_request_t *request_p)
{
    return run_nonblocking(comm, CALL(TT_COLL_REDUCE, sendbuf, recvbuf, count, datatype, op, root),
                           request_p);
}

tutti_status_t tutti_barrier(tutti_comm_t comm)
{
    return run_blocking(comm, CALL(TT_COLL_BARRIER, NULL, NULL, 0, TUTTI_UINT8, TUTTI_SUM, 0));
}

tutti_status_t tutti_ibarrier(tutti_comm_t comm, tutti_request_t *request_p)
{
    return run_nonblocking(comm, CALL(TT_COLL_BARRIER, NULL, NULL, 0, TUTTI_UINT8, TUTTI_SUM, 0),
                           request_p);
}

tutti_status_t tutti_alltoall(const void *sendbuf, void *recvbuf, size_t count,
                              tutti_datatype_t datatype, tutti_comm_t comm)
{
    return run_blocking(comm,
                        CALL(TT_COLL_ALLTOALL, sendbuf, recvbuf, count, datatype, TUTTI_SUM, 0));
}

tutti_status_t tutti_ialltoall(const void *sendbuf, void *recvbuf, size_t count,
                               tutti_datatype_t datatype, tutti_comm_t comm,
                               tutti_request_t *request_p)
{
    return run_nonblocking(
        comm, CALL(TT_COLL_ALLTOALL, sendbuf, recvbuf, count, datatype, TUTTI_SUM, 0), request_p);
}

/* An all-to-all-v call; count is filled in by the checks. */
#define CALL_V(send_, sc_, sd_, recv_, rc_, rd_, type_)                       \
    (&(call_t){TT_COLL_ALLTOALLV, (send_), (recv_), 0, (type_), TUTTI_SUM, 0, \
               &(const tt_a2a_layout_t){(sc_), (sd_), (rc_), (rd_)}})

tutti_status_t tutti_alltoallv(const void *sendbuf, const size_t *sendcounts, const size_t *sdispls,
                               void *recvbuf, const size_t *recvcounts, const size_t *rdispls,
                               tutti_datatype_t datatype, tutti_comm_t comm)
{
    return run_blocking(
        comm, CALL_V(sendbuf, sendcounts, sdispls, recvbuf, recvcounts, rdispls, datatype));
}

tutti_status_t tutti_ialltoallv(const void *sendbuf, const size_t *sendcounts,
                                const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                                const size_t *rdispls, tutti_datatype_t datatype, tutti_comm_t comm,
                                tutti_request_t *request_p)
{
    return run_nonblocking(
        comm, CALL_V(sendbuf, sendcounts, sdispls, recvbuf, recvcounts, rdispls, datatype),
        request_p);
}
