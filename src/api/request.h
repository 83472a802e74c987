/* Running a prepared operation: blocking, or posted behind a request. */
#ifndef TT_API_REQUEST_H
#define TT_API_REQUEST_H

#include "api/comm.h"

/*
 * Prepare @p op to run @p plan on @p comm over the buffers @p send and
 * @p recv, its messages checked against @p signature (reductions also set
 * op->env's kernels).
 */
void tt_request_op_init(tt_op_t *op, tt_plan_t *plan, tutti_comm_t comm, const char *name,
                        const void *send, void *recv, uint32_t signature);

/*
 * Run @p op (prepared over @p plan, whose reference this takes) on @p comm:
 * to completion when @p request_p is NULL, else posted, with a request in
 * *request_p that tutti_wait() or tutti_test() completes.
 */
tutti_status_t tt_request_submit(tutti_comm_t comm, const tt_op_t *op, tt_plan_t *plan,
                                 tutti_request_t *request_p);

#endif
