/*
 * A schedule is one rank's part of a collective, as data: an array of steps
 * (send, receive, reduce, copy) over three buffers (the user's send and
 * receive buffers and a scratch area the schedule sizes itself), each step
 * naming up to two steps that must complete before it starts.
 *
 * Algorithms (src/coll) build schedules; one executor (src/exec) runs them
 * all; tests and the simulator run every rank's schedule in memory. A step
 * names a logical peer (a communicator rank); which link carries it is the
 * executor's route table's business.
 *
 * Ordering rule: transfers to one peer are posted in schedule order, and so
 * are receives from one peer. Algorithms rely on it for message matching,
 * and it is why a schedule must list a rank's transfers to each peer in the
 * same order as that peer lists the matching ones.
 */
#ifndef TT_PLAN_SCHEDULE_H
#define TT_PLAN_SCHEDULE_H

#include "util/compiler.h"

#include <stddef.h>
#include <stdint.h>

typedef enum tt_step_kind {
    TT_STEP_SEND,        /* send count elements at src to peer */
    TT_STEP_RECV,        /* receive count elements from peer into dst */
    TT_STEP_RECV_REDUCE, /* receive from peer, combining as it arrives: dst = src op incoming */
    TT_STEP_REDUCE,      /* dst = src op src2, element-wise */
    TT_STEP_COPY,        /* dst = src */
    TT_STEP_JOIN,        /* nothing: done once all its dependencies are (joins many into one) */
} tt_step_kind_t;

typedef enum tt_buf {
    TT_BUF_SEND,    /* the user's input */
    TT_BUF_RECV,    /* the user's output */
    TT_BUF_SCRATCH, /* the schedule's own scratch area */
    TT_BUF_PLAN,    /* memory the plan owns (hierarchical all-to-all-v's count rows) */
    TT_BUF_COUNT,
} tt_buf_t;

/* Step flag: this reduction produces a final value (TUTTI_AVG divides here). */
#define TT_STEP_FINAL 1u
/* Step flag (RECV_REDUCE): the incoming data is the left operand: dst = incoming op src. */
#define TT_STEP_INCOMING_FIRST 2u
/* Step flag (SEND): the receiver combines this data (a protocol hint for transports). */
#define TT_STEP_TO_REDUCE 4u

/* A place in one of the buffers, in bytes. */
typedef struct tt_ref {
    uint64_t offset : 62;
    uint64_t buf : 2;
} tt_ref_t;

static inline tt_ref_t tt_ref(tt_buf_t buf, uint64_t offset)
{
    tt_ref_t r = {offset, buf};
    return r;
}

/* @p r moved on by @p bytes. */
static inline tt_ref_t tt_ref_add(tt_ref_t r, uint64_t bytes)
{
    return tt_ref((tt_buf_t)r.buf, r.offset + bytes);
}

#define TT_NO_STEP (-1)

typedef struct tt_step {
    uint8_t kind;
    uint8_t flags;
    uint8_t channel; /* transfers: which of the plan's parallel channels (rails) carries it */
    int32_t peer;
    uint64_t count; /* elements */
    tt_ref_t dst, src, src2;
    uint32_t dep_start, ndeps; /* earlier steps that must complete first: deps[dep_start..+ndeps) */
} tt_step_t;

typedef struct tt_schedule {
    tt_step_t *steps;
    int32_t nsteps, cap;
    int32_t *deps; /* every step's dependencies, one run per step */
    uint32_t ndeps, deps_cap;
    size_t elem_size;
    size_t scratch_bytes;
    uint8_t channel;       /* channel of transfers being appended */
    tutti_status_t status; /* sticky: the first allocation failure while building */
    /* Filled by tt_schedule_finalize(): */
    int32_t *succ_start; /* successors of step i: succ[succ_start[i] .. succ_start[i+1]) */
    int32_t *succ;
    int32_t *link_next;       /* next transfer of the same kind to the same peer, or TT_NO_STEP */
    int32_t *initial_pending; /* deps + 1 if an earlier transfer on the same link exists */
} tt_schedule_t;

/* Start an empty schedule for elements of @p elem_size bytes. */
void tt_schedule_init(tt_schedule_t *s, size_t elem_size);

/* Free everything the schedule holds. */
void tt_schedule_fini(tt_schedule_t *s);

/*
 * Append steps. Each returns the new step's index, or TT_NO_STEP if memory
 * ran out (then s->status says so and later appends do nothing).
 */
int32_t tt_sched_send(tt_schedule_t *s, int peer, tt_ref_t src, uint64_t count, unsigned flags,
                      int32_t dep0, int32_t dep1);

/* Transfers appended from now on travel on channel @p channel (0 at first). */
static inline void tt_sched_set_channel(tt_schedule_t *s, int channel)
{
    s->channel = (uint8_t)channel;
}
int32_t tt_sched_recv(tt_schedule_t *s, int peer, tt_ref_t dst, uint64_t count, int32_t dep0,
                      int32_t dep1);
/*
 * Receive @p count elements from @p peer and combine them with @p src into
 * @p dst as they arrive. The order of operands is fixed by
 * TT_STEP_INCOMING_FIRST (it matters for bitwise reproducibility when an
 * algorithm must combine in a fixed order). The matching send should carry
 * TT_STEP_TO_REDUCE.
 */
int32_t tt_sched_recv_reduce(tt_schedule_t *s, int peer, tt_ref_t dst, tt_ref_t src, uint64_t count,
                             unsigned flags, int32_t dep0, int32_t dep1);
int32_t tt_sched_reduce(tt_schedule_t *s, tt_ref_t dst, tt_ref_t a, tt_ref_t b, uint64_t count,
                        unsigned flags, int32_t dep0, int32_t dep1);
int32_t tt_sched_copy(tt_schedule_t *s, tt_ref_t dst, tt_ref_t src, uint64_t count, int32_t dep0,
                      int32_t dep1);

/* A step that completes once all @p n steps in @p deps (TT_NO_STEP entries ignored) have. */
int32_t tt_sched_join(tt_schedule_t *s, const int32_t *deps, size_t n);

/* Reserve @p bytes of scratch (64-byte aligned); returns where they start. */
tt_ref_t tt_sched_scratch(tt_schedule_t *s, size_t bytes);

/*
 * A ring of equally sized scratch slots for partial results, taken in turn.
 * Taking a slot hands back the step that last used it, which the new user
 * must wait for, so that pipelining never overwrites data still being sent.
 */
#define TT_SLOT_RING_MAX 16

typedef struct tt_slot_ring {
    tt_ref_t base;
    size_t slot_bytes;
    int nslots, next;
    int32_t last_use[TT_SLOT_RING_MAX];
} tt_slot_ring_t;

/* Reserve @p nslots (at most TT_SLOT_RING_MAX) slots of @p slot_bytes in the scratch. */
void tt_slot_ring_init(tt_slot_ring_t *ring, tt_schedule_t *s, int nslots, size_t slot_bytes);

/*
 * Take the next slot: returns its index, where it is, and the step the new
 * user must wait for. Record the new user's last step in ring->last_use[slot].
 */
int tt_slot_ring_take(tt_slot_ring_t *ring, tt_ref_t *ref_p, int32_t *wait_p);

/* Bytes the schedule holds (steps, dependencies and what finalize adds). */
size_t tt_schedule_bytes(const tt_schedule_t *s);

/* Compute what the executor needs (successors, link order). */
tutti_status_t tt_schedule_finalize(tt_schedule_t *s);

#endif
