/*
 * The engine of one communicator: a queue of posted operations run one
 * after another by the executor, progress driven either by a thread that
 * waits on a request (blocking calls progress inline, no thread hop) or by
 * the communicator's progress thread while nobody waits. Every operation has
 * a deadline; health is checked while operations run; the first failure
 * fails the active and all queued operations and the communicator.
 */
#ifndef TT_EXEC_ENGINE_H
#define TT_EXEC_ENGINE_H

#include "exec/exec.h"
#include "health/health.h"
#include "util/backoff.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct tt_engine_settings {
    int progress_thread;
    int64_t op_timeout_ns;
    int64_t failure_timeout_ns;
    int64_t poll_spin_ns, poll_yield_ns, poll_sleep_max_ns;
    int reduce_isa;
} tt_engine_settings_t;

extern const tt_config_table_t tt_engine_config_table;

/* Builds part @p part of @p plan's schedule into @p s (see tt_coll_build_part). */
typedef tutti_status_t (*tt_part_builder_t)(const void *plan, int part, tt_schedule_t *s);

/* One posted operation. The poster owns the memory until the status is final. */
typedef struct tt_op {
    const tt_schedule_t *sched;   /* the schedule, or its first part */
    int nparts;                   /* parts run one after another (0 or 1: just sched) */
    tt_part_builder_t build_part; /* builds parts 1.. of plan when they are due */
    const void *plan;
    int part;                 /* the part running */
    void *base[TT_BUF_COUNT]; /* send, receive; scratch is filled in at start */
    tt_exec_env_t env;
    uint64_t tag;      /* low 32 bits from the poster; the engine adds the sequence number */
    int unnumbered;    /* point-to-point: only some ranks post it, so it takes no number */
    const char *name;  /* for logs */
    int64_t deadline;  /* 0 until the engine first looks at it */
    atomic_int status; /* a tutti_status_t: TUTTI_IN_PROGRESS until done */
    struct tt_op *next;
} tt_op_t;

typedef struct tt_engine {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    tt_engine_settings_t settings;
    tt_backoff_params_t backoff;
    tt_transport_t *const *transports;
    int ntransports;
    tt_health_t *health;
    tt_op_t *head, *tail, *active;
    tt_exec_t exec;
    tt_schedule_t part; /* the active operation's current part, after the first */
    void *scratch;
    size_t scratch_cap;
    uint32_t next_seq; /* operations posted so far */
    uint32_t passes;   /* progress passes, to space out clock reads */
    int waiters, shutdown, thread_running;
    pthread_t thread;
} tt_engine_t;

/*
 * Start the engine over @p transports. @p machine_ranks (ranks sharing this
 * machine's cores, whatever host each belongs to) decides how long waiters
 * spin when TUTTI_POLL_SPIN is auto.
 */
tutti_status_t tt_engine_init(tt_engine_t *e, const tt_engine_settings_t *settings,
                              int machine_ranks, tt_transport_t *const *transports, int ntransports,
                              tt_health_t *health);

/* Stop the progress thread; queued and active operations fail with @p status. */
void tt_engine_fini(tt_engine_t *e, tutti_status_t status);

/* The sequence number in the tags of unnumbered (point-to-point) operations. */
#define TT_UNNUMBERED_SEQ UINT32_MAX

/*
 * Queue @p op, numbering it: the n-th operation of a communicator carries n
 * in its messages' tags on every rank (unnumbered ones carry TT_UNNUMBERED_SEQ
 * and do not count). Returns the communicator's failure status instead (and does
 * not queue) if it has failed.
 */
tutti_status_t tt_engine_post(tt_engine_t *e, tt_op_t *op);

/* Drive progress until @p op is done; returns its status. */
tutti_status_t tt_engine_wait(tt_engine_t *e, tt_op_t *op);

/* Post and wait, without waking the progress thread. */
tutti_status_t tt_engine_run(tt_engine_t *e, tt_op_t *op);

/* Make progress once; TUTTI_IN_PROGRESS or @p op's final status. */
tutti_status_t tt_engine_test(tt_engine_t *e, tt_op_t *op);

/* TUTTI_OK or the communicator's failure, after looking for news. */
tutti_status_t tt_engine_health(tt_engine_t *e);

#endif
