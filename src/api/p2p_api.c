/*
 * Point-to-point: tutti_send and tutti_recv, alone or collected between
 * tutti_group_start and tutti_group_end and posted as one operation, so
 * that a batch of sends and receives progresses together (two ranks may
 * send to each other in one group without waiting on each other).
 *
 * A group is an operation in the communicator's order, like a collective,
 * but only the ranks it names take part: it takes no operation number
 * (tt_op_t.unnumbered), so the collectives' numbering stays the same on
 * every rank. Its messages match the peer's in the order both posted them.
 */
#include "config.h"

#include "api/comm.h"
#include "api/request.h"

#include "util/log.h"

#include <stdlib.h>
#include <string.h>

/* The check tag of point-to-point messages (a collective's carries its call's signature). */
#define P2P_SIGNATURE 0x70327030u

/* Check one message's arguments; its size in bytes into @p bytes_p. */
static tutti_status_t check_message(tutti_comm_t comm, const void *buf, size_t count,
                                    tutti_datatype_t datatype, int peer, const char *name,
                                    uint64_t *bytes_p)
{
    size_t elem_size = tutti_datatype_size(datatype);

    if (!tt_comm_valid(comm)) {
        tt_error("%s: invalid or destroyed communicator %p", name, (void *)comm);
        return TUTTI_ERR_INVALID_COMM;
    }
    if (elem_size == 0) {
        tt_error("%s: datatype %d is not a tutti_datatype_t", name, (int)datatype);
        return TUTTI_ERR_UNSUPPORTED;
    }
    if (peer < 0 || peer >= comm->nranks) {
        tt_error("%s: peer %d is not a rank of this communicator (0..%d)", name, peer,
                 comm->nranks - 1);
        return TUTTI_ERR_INVALID_ARG;
    }
    if (count > ((uint64_t)1 << 52) / elem_size || (count > 0 && buf == NULL)) {
        tt_error("%s: %s", name, buf == NULL ? "NULL buffer with count > 0" : "count too large");
        return TUTTI_ERR_INVALID_ARG;
    }
    *bytes_p = count * elem_size;
    return TUTTI_OK;
}

/* Sends to itself and receives from itself must pair up, in order and in size. */
static tutti_status_t check_self(const tt_p2p_list_t *l, int rank)
{
    size_t at = 0;

    for (size_t s = 0; s < l->n; s++) {
        size_t r;
        if (!l->msgs[s].send || l->msgs[s].peer != rank)
            continue;
        r = tt_p2p_next_self_recv(l, rank, &at);
        if (r == l->n || l->msgs[r].bytes != l->msgs[s].bytes) {
            tt_error("tutti_group_end: a send of %llu bytes to this rank itself has no receive "
                     "of that size from itself in the same group",
                     (unsigned long long)l->msgs[s].bytes);
            return TUTTI_ERR_INVALID_ARG;
        }
    }
    if (tt_p2p_next_self_recv(l, rank, &at) < l->n) {
        tt_error("tutti_group_end: a receive from this rank itself has no send to match");
        return TUTTI_ERR_INVALID_ARG;
    }
    return TUTTI_OK;
}

/*
 * Turn the messages' addresses into offsets from the lowest send and the
 * lowest receive address, the bases the schedule's buffers start from.
 */
static void rebase(tt_p2p_msg_t *msgs, size_t n, uintptr_t base[2])
{
    base[0] = base[1] = UINTPTR_MAX;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].bytes > 0 && msgs[i].offset < base[msgs[i].send])
            base[msgs[i].send] = (uintptr_t)msgs[i].offset;
    for (size_t i = 0; i < n; i++)
        msgs[i].offset = msgs[i].bytes > 0 ? msgs[i].offset - base[msgs[i].send] : 0;
    for (int k = 0; k < 2; k++)
        base[k] = base[k] == UINTPTR_MAX ? 0 : base[k];
}

/* Post @p n messages as one operation; blocking when @p request_p is NULL. */
static tutti_status_t post_group(tutti_comm_t comm, tt_p2p_msg_t *msgs, size_t n,
                                 tutti_request_t *request_p)
{
    tt_p2p_list_t list = {msgs, n};
    tt_coll_desc_t desc;
    uintptr_t base[2];
    tt_plan_t *plan;
    tt_op_t op;

    TT_CHECK(check_self(&list, comm->rank));
    rebase(msgs, n, base);
    memset(&desc, 0, sizeof(desc));
    desc.kind = TT_COLL_P2P;
    desc.algo = TT_ALGO_DIRECT;
    desc.elem_size = 1;
    desc.rank = comm->rank;
    desc.nranks = comm->nranks;
    desc.channels = 1;
    desc.p2p = &list;
    for (size_t i = 0; i < n; i++)
        desc.count += msgs[i].bytes;
    TT_CHECK(tt_plan_build(&desc, &plan));
    plan->desc.p2p = NULL; /* built: the messages are not needed again */
    tt_request_op_init(&op, plan, comm, "p2p", (const void *)base[1], (void *)base[0],
                       P2P_SIGNATURE);
    op.unnumbered = 1;
    return tt_request_submit(comm, &op, plan, request_p);
}

/* Add a message to the open group, or post it alone (blocking) if none is open. */
static tutti_status_t add_message(tutti_comm_t comm, int send, const void *buf, size_t count,
                                  tutti_datatype_t datatype, int peer, const char *name)
{
    tt_p2p_msg_t msg = {send, peer, (uintptr_t)buf, 0};
    tt_p2p_group_t *g;

    TT_CHECK(check_message(comm, buf, count, datatype, peer, name, &msg.bytes));
    g = &comm->group;
    pthread_mutex_lock(&g->lock);
    if (!g->open) {
        pthread_mutex_unlock(&g->lock);
        return post_group(comm, &msg, 1, NULL);
    }
    if (g->n == g->cap) {
        size_t cap = g->cap > 0 ? 2 * g->cap : 16;
        tt_p2p_msg_t *grown = realloc(g->msgs, cap * sizeof(*grown));
        if (grown == NULL) {
            pthread_mutex_unlock(&g->lock);
            return TUTTI_ERR_NO_MEMORY;
        }
        g->msgs = grown;
        g->cap = cap;
    }
    g->msgs[g->n++] = msg;
    pthread_mutex_unlock(&g->lock);
    return TUTTI_OK;
}

tutti_status_t tutti_send(const void *buf, size_t count, tutti_datatype_t datatype, int peer,
                          tutti_comm_t comm)
{
    return add_message(comm, 1, buf, count, datatype, peer, "tutti_send");
}

tutti_status_t tutti_recv(void *buf, size_t count, tutti_datatype_t datatype, int peer,
                          tutti_comm_t comm)
{
    return add_message(comm, 0, buf, count, datatype, peer, "tutti_recv");
}

tutti_status_t tutti_group_start(tutti_comm_t comm)
{
    tutti_status_t status = TUTTI_OK;

    if (!tt_comm_valid(comm))
        return TUTTI_ERR_INVALID_COMM;
    pthread_mutex_lock(&comm->group.lock);
    if (comm->group.open) {
        tt_error("tutti_group_start: a group is already open on this communicator");
        status = TUTTI_ERR_INVALID_ARG;
    }
    comm->group.open = 1;
    pthread_mutex_unlock(&comm->group.lock);
    return status;
}

tutti_status_t tutti_group_end(tutti_comm_t comm, tutti_request_t *request_p)
{
    tt_p2p_group_t *g;
    tt_p2p_msg_t *msgs;
    size_t n;
    tutti_status_t status;

    if (!tt_comm_valid(comm))
        return TUTTI_ERR_INVALID_COMM;
    g = &comm->group;
    pthread_mutex_lock(&g->lock);
    if (!g->open) {
        pthread_mutex_unlock(&g->lock);
        tt_error("tutti_group_end: no group is open on this communicator");
        return TUTTI_ERR_INVALID_ARG;
    }
    /* The group's messages are ours now: the next group starts empty. */
    msgs = g->msgs;
    n = g->n;
    g->msgs = NULL;
    g->n = g->cap = 0;
    g->open = 0;
    pthread_mutex_unlock(&g->lock);
    status = post_group(comm, msgs, n, request_p);
    free(msgs);
    return status;
}
