/* Requests: a posted operation, its plan and its communicator; see request.h. */
#include "config.h"

#include "api/request.h"

#include <stdlib.h>
#include <string.h>

struct tutti_request {
    tt_op_t op;
    tt_plan_t *plan;
    tutti_comm_t comm;
};

void tt_request_op_init(tt_op_t *op, tt_plan_t *plan, tutti_comm_t comm, const char *name,
                        const void *send, void *recv, uint32_t signature)
{
    memset(op, 0, sizeof(*op));
    op->sched = &plan->sched;
    op->nparts = plan->nparts;
    op->build_part = tt_plan_build_part;
    op->plan = plan;
    op->base[TT_BUF_SEND] = (void *)(uintptr_t)send;
    op->base[TT_BUF_RECV] = recv;
    op->base[TT_BUF_PLAN] = plan->host_counts;
    op->name = name;
    op->env.route = comm->route;
    op->tag = signature;
}

tutti_status_t tt_request_submit(tutti_comm_t comm, const tt_op_t *op, tt_plan_t *plan,
                                 tutti_request_t *request_p)
{
    tutti_request_t req;
    tutti_status_t status;

    if (request_p == NULL) {
        tt_op_t run;
        memcpy(&run, op, sizeof(run));
        status = tt_engine_run(&comm->engine, &run);
        tt_plan_release(plan);
        return status;
    }
    req = calloc(1, sizeof(*req));
    if (req == NULL) {
        tt_plan_release(plan);
        return TUTTI_ERR_NO_MEMORY;
    }
    memcpy(&req->op, op, sizeof(req->op));
    req->plan = plan;
    req->comm = comm;
    atomic_fetch_add(&comm->refs, 1);
    status = tt_engine_post(&comm->engine, &req->op);
    if (status != TUTTI_OK) {
        tt_plan_release(plan);
        tt_comm_release(comm);
        free(req);
        return status;
    }
    *request_p = req;
    return TUTTI_OK;
}

static void request_free(tutti_request_t req)
{
    tt_plan_release(req->plan);
    tt_comm_release(req->comm);
    free(req);
}

tutti_status_t tutti_wait(tutti_request_t request)
{
    tutti_status_t status;
    if (request == NULL)
        return TUTTI_ERR_INVALID_ARG;
    status = (tutti_status_t)atomic_load(&request->op.status);
    /* After an abort the engine is gone, but every operation's status is final. */
    if (status == TUTTI_IN_PROGRESS)
        status = tt_engine_wait(&request->comm->engine, &request->op);
    request_free(request);
    return status;
}

tutti_status_t tutti_test(tutti_request_t request)
{
    tutti_status_t status;
    if (request == NULL)
        return TUTTI_ERR_INVALID_ARG;
    status = (tutti_status_t)atomic_load(&request->op.status);
    if (status == TUTTI_IN_PROGRESS)
        status = tt_engine_test(&request->comm->engine, &request->op);
    if (status != TUTTI_IN_PROGRESS)
        request_free(request);
    return status;
}
