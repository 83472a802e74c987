/*
 * The executor: runs one rank's schedule. Steps start when the steps they
 * depend on have completed and (for transfers) when the previous transfer on
 * the same link has been posted; local steps run at once, transfers are
 * posted to the transport the route table names for the peer. Completions
 * come back through tt_exec_xfer_done(). It never blocks and never polls:
 * the engine (engine.h) drives it.
 */
#ifndef TT_EXEC_EXEC_H
#define TT_EXEC_EXEC_H

#include "plan/schedule.h"
#include "reduce/reduce.h"
#include "transports/transport.h"

/* What the executor needs besides the schedule. */
typedef struct tt_exec_env {
    tt_transport_t *const *route; /* per communicator rank: the link's transport */
    tt_reduce_fn_t reduce;        /* combining step */
    tt_reduce_fn_t reduce_final;  /* step flagged TT_STEP_FINAL (avg divides) */
    uint32_t divisor;             /* for reduce_final */
} tt_exec_env_t;

typedef struct tt_exec {
    const tt_schedule_t *sched;
    const tt_exec_env_t *env;
    char *base[TT_BUF_COUNT];
    uint64_t tag;
    int32_t remaining;
    tutti_status_t status;
    int failed_peer; /* peer of the transfer that failed, or -1 */
    /* workspace, grown as needed and kept between runs */
    int32_t *pending, *ready;
    int32_t nready;
    tt_xfer_t *xfers;
    int32_t capacity;
} tt_exec_t;

/* An idle executor with no workspace. */
void tt_exec_init(tt_exec_t *e);

/* Free the workspace. */
void tt_exec_fini(tt_exec_t *e);

/*
 * Start running @p s over buffers @p base (send, receive, scratch), posting
 * every transfer that can go and running every local step that can run.
 * Messages carry @p tag. Check tt_exec_status() afterwards: tiny schedules
 * may already be complete.
 */
tutti_status_t tt_exec_start(tt_exec_t *e, const tt_schedule_t *s, void *const base[TT_BUF_COUNT],
                             const tt_exec_env_t *env, uint64_t tag);

/* A transfer this executor posted has completed (x->status says how). */
void tt_exec_xfer_done(tt_exec_t *e, tt_xfer_t *x);

/*
 * What a running executor waits for, in @p out (for deadline messages): the
 * first few transfers in flight ("recv from rank 2 (8388608 B)") and how
 * many steps have not started yet.
 */
void tt_exec_describe(const tt_exec_t *e, char *out, size_t out_len);

/* TUTTI_IN_PROGRESS while running, then TUTTI_OK or the first error. */
static inline tutti_status_t tt_exec_status(const tt_exec_t *e)
{
    return e->status;
}

#endif
