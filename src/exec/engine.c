/* Queueing, progress, deadlines and failure for one communicator; see engine.h. */
#include "config.h"

#include "exec/engine.h"

#include "reduce/reduce.h"
#include "util/log.h"
#include "util/time.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

static const tt_config_field_t engine_fields[] = {
    {"PROGRESS_THREAD", "yes",
     "run a progress thread per communicator: it moves nonblocking calls, and between calls "
     "keeps serving the transports' protocols for peers (without it, a peer can stall until "
     "this rank calls tutti again)",
     TT_CFG_BOOL, offsetof(tt_engine_settings_t, progress_thread), NULL},
    {"OP_TIMEOUT", "600s",
     "deadline for one collective, from when it starts running; when it passes the "
     "communicator fails with TUTTI_ERR_TIMEOUT",
     TT_CFG_DURATION, offsetof(tt_engine_settings_t, op_timeout_ns), NULL},
    {"FAILURE_TIMEOUT", "5s",
     "a peer that shows no sign of life for this long is declared failed (keep-alive probes on "
     "the control connection)",
     TT_CFG_DURATION, offsetof(tt_engine_settings_t, failure_timeout_ns), NULL},
    {"POLL_SPIN", "auto",
     "busy-poll this long after the last progress before yielding; auto: 20us when this host's "
     "ranks fit its cores, else 0 (spinning only delays the rank that would answer)",
     TT_CFG_DURATION, offsetof(tt_engine_settings_t, poll_spin_ns), NULL},
    {"POLL_YIELD", "1ms", "then yield the CPU until this long after the last progress",
     TT_CFG_DURATION, offsetof(tt_engine_settings_t, poll_yield_ns), NULL},
    {"POLL_SLEEP_MAX", "100us", "then sleep, doubling the period up to this", TT_CFG_DURATION,
     offsetof(tt_engine_settings_t, poll_sleep_max_ns), NULL},
    {"REDUCE_ISA", "auto", "reduction kernels: auto, generic, avx2 or avx512", TT_CFG_ENUM,
     offsetof(tt_engine_settings_t, reduce_isa), tt_reduce_isa_names},
};

const tt_config_table_t tt_engine_config_table = {
    "exec", engine_fields, TT_ARRAY_SIZE(engine_fields), sizeof(tt_engine_settings_t)};

/* How long a waiter spins when the cores are not oversubscribed. */
#define ENGINE_DEFAULT_SPIN_NS (20 * TT_NS_PER_US)

/* While an operation runs, look for failed peers this often. */
#define ENGINE_HEALTH_INTERVAL_NS (2 * TT_NS_PER_MS)

/*
 * With nothing posted, the progress thread still polls the transports now
 * and then: a peer may still need this rank's part of a protocol for an
 * operation this rank has finished (UCX's rendezvous acknowledgements, data
 * a socket could not take yet). Without it such a peer waits until this
 * rank posts again, for ever if this rank waits for that peer elsewhere (in
 * the bootstrap barrier of tutti_comm_destroy, or on another communicator).
 * Soon after an operation, then less and less often.
 */
#define ENGINE_IDLE_POLL_FIRST_NS (50 * TT_NS_PER_US)
#define ENGINE_IDLE_POLL_MAX_NS (1 * TT_NS_PER_MS)

static void finish(tt_engine_t *e, tt_op_t *op, tutti_status_t status)
{
    atomic_store(&op->status, status);
    if (e->active == op)
        e->active = NULL;
}

/* The communicator failed: nothing queued or running can complete any more. */
static void fail_everything(tt_engine_t *e, tutti_status_t status)
{
    tt_xfer_t *done = NULL;

    for (int t = 0; t < e->ntransports; t++)
        e->transports[t]->ops->cancel_all(e->transports[t], status, &done);
    if (e->active != NULL)
        finish(e, e->active, status);
    while (e->head != NULL) {
        tt_op_t *op = e->head;
        e->head = op->next;
        finish(e, op, status);
    }
    e->tail = NULL;
}

/*
 * This rank cannot go on with the active operation, which may be halfway
 * through: the failure is reported so that peers stop waiting for it.
 */
static void fail_active(tt_engine_t *e, tutti_status_t status, const char *what)
{
    tt_health_fail(e->health, status, -1, "%s: %s: %s", e->active->name, what,
                   tutti_status_string(status));
    fail_everything(e, e->health->status);
}

/* Run @p s, one part of the active operation (its scratch carries over between parts). */
static tutti_status_t start_part(tt_engine_t *e, tt_op_t *op, const tt_schedule_t *s)
{
    if (s->scratch_bytes > e->scratch_cap) {
        void *grown = realloc(e->scratch, s->scratch_bytes);
        if (grown == NULL)
            return TUTTI_ERR_NO_MEMORY;
        e->scratch = grown;
        e->scratch_cap = s->scratch_bytes;
    }
    op->base[TT_BUF_SCRATCH] = e->scratch;
    return tt_exec_start(&e->exec, s, op->base, &op->env, op->tag);
}

static void start_next(tt_engine_t *e)
{
    tt_op_t *op = e->head;
    tutti_status_t status;

    e->head = op->next;
    if (e->head == NULL)
        e->tail = NULL;
    e->active = op;
    op->part = 0;
    status = start_part(e, op, op->sched);
    if (status != TUTTI_OK)
        fail_active(e, status, "cannot start");
}

/* The active operation finished a part: build and start the next one. */
static tutti_status_t start_next_part(tt_engine_t *e, tt_op_t *op)
{
    tt_schedule_fini(&e->part);
    tt_schedule_init(&e->part, op->sched->elem_size);
    TT_CHECK(op->build_part(op->plan, ++op->part, &e->part));
    return start_part(e, op, &e->part);
}

/* The active operation's executor stopped: success, or a failed transfer. */
static void conclude_active(tt_engine_t *e)
{
    tutti_status_t status = tt_exec_status(&e->exec);
    int peer = e->exec.failed_peer;

    if (status == TUTTI_OK && e->active->part + 1 < e->active->nparts) {
        status = start_next_part(e, e->active);
        if (status != TUTTI_OK)
            fail_active(e, status, "cannot start the next part of its plan");
        return;
    }
    if (status == TUTTI_OK) {
        finish(e, e->active, TUTTI_OK);
        return;
    }
    /* A mismatched message says the ranks disagree, not that this peer died. */
    if (status == TUTTI_ERR_PROTOCOL)
        tt_health_fail(e->health, status, -1,
                       "%s: rank %d's message does not match this call: the ranks disagree "
                       "about count, datatype, op or root, or call collectives in different "
                       "orders",
                       e->active->name, peer);
    else
        tt_health_fail(e->health, status, peer, "%s: transfer with rank %d failed", e->active->name,
                       peer);
    fail_everything(e, e->health->status);
}

/* One pass; returns how much happened (0: nothing). Called with the lock held. */
static int progress_once(tt_engine_t *e)
{
    int events = 0, timed_out = 0;
    tutti_status_t health;
    char waiting[256];

    for (int t = 0; t < e->ntransports; t++) {
        tt_xfer_t *done = NULL;
        events += e->transports[t]->ops->progress(e->transports[t], &done);
        while (done != NULL) {
            tt_xfer_t *x = done;
            done = x->next;
            if (e->active != NULL)
                tt_exec_xfer_done(&e->exec, x);
        }
    }
    for (;;) {
        if (e->active != NULL && tt_exec_status(&e->exec) != TUTTI_IN_PROGRESS) {
            conclude_active(e);
            events++;
        }
        if (e->active != NULL || e->head == NULL)
            break;
        start_next(e);
        events++;
    }
    /* Clock reads cost as much as a poll: look at deadlines every 64 passes. */
    if (e->active == NULL || (++e->passes & 63) != 0)
        return events;
    health = tt_health_check(e->health, 0);
    /* The deadline starts at the first look: most operations end before one. */
    if (e->active->deadline == 0)
        e->active->deadline = tt_deadline_after(e->settings.op_timeout_ns);
    else
        timed_out = health == TUTTI_OK && tt_time_ns() > e->active->deadline;
    if (health == TUTTI_OK && !timed_out)
        return events;
    tt_exec_describe(&e->exec, waiting, sizeof(waiting));
    if (timed_out)
        tt_health_fail(e->health, TUTTI_ERR_TIMEOUT, -1,
                       "%s did not complete within TUTTI_OP_TIMEOUT (%.3g s): %s", e->active->name,
                       (double)e->settings.op_timeout_ns / TT_NS_PER_S, waiting);
    else /* another rank's failure: what this call still waited for shows a hang's cycle */
        tt_warn("%s stopped by the failure, unfinished: %s", e->active->name, waiting);
    fail_everything(e, e->health->status);
    return events;
}

/* Wait on e->wake for at most @p ns; the lock is held. */
static void wait_wake(tt_engine_t *e, int64_t ns)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* the condition variable's clock */
    until.tv_sec += (time_t)(ns / TT_NS_PER_S);
    until.tv_nsec += (long)(ns % TT_NS_PER_S);
    if (until.tv_nsec >= TT_NS_PER_S) {
        until.tv_sec++;
        until.tv_nsec -= TT_NS_PER_S;
    }
    pthread_cond_timedwait(&e->wake, &e->lock, &until);
}

static void *progress_thread(void *arg)
{
    tt_engine_t *e = arg;
    tt_backoff_t backoff;
    int64_t idle_poll_ns = ENGINE_IDLE_POLL_FIRST_NS;

    tt_backoff_init(&backoff, &e->backoff);
    pthread_mutex_lock(&e->lock);
    while (!e->shutdown) {
        /*
         * Stand aside while a caller drives progress itself, but look again
         * now and then: when the caller returns with nothing queued nobody
         * signals, and between calls the transports must still be served
         * (a send that completed here may have data queued for its
         * receiver). Signalling at every return instead cost back-to-back
         * calls a thread switch each (3x at 32K on shared memory).
         */
        if (e->waiters > 0) {
            wait_wake(e, ENGINE_IDLE_POLL_MAX_NS);
            tt_backoff_reset(&backoff);
            continue;
        }
        if (e->active == NULL && e->head == NULL) {
            progress_once(e);
            wait_wake(e, idle_poll_ns);
            idle_poll_ns = TT_MIN(2 * idle_poll_ns, ENGINE_IDLE_POLL_MAX_NS);
            tt_backoff_reset(&backoff);
            continue;
        }
        idle_poll_ns = ENGINE_IDLE_POLL_FIRST_NS;
        if (progress_once(e)) {
            tt_backoff_reset(&backoff);
            continue;
        }
        pthread_mutex_unlock(&e->lock);
        tt_backoff_idle(&backoff);
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* The spin that pays off: none when ranks outnumber the cores they share. */
static int64_t choose_spin(int64_t setting, int machine_ranks)
{
    cpu_set_t cpus;
    int ncpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;

    if (setting != TT_CFG_AUTO)
        return setting;
    if (machine_ranks > ncpus) {
        tt_info("%d ranks on %d cores: waiting threads yield at once instead of spinning",
                machine_ranks, ncpus);
        return 0;
    }
    return ENGINE_DEFAULT_SPIN_NS;
}

tutti_status_t tt_engine_init(tt_engine_t *e, const tt_engine_settings_t *settings,
                              int machine_ranks, tt_transport_t *const *transports, int ntransports,
                              tt_health_t *health)
{
    memset(e, 0, sizeof(*e));
    e->settings = *settings;
    e->backoff.spin_ns = choose_spin(settings->poll_spin_ns, machine_ranks);
    e->backoff.yield_ns = settings->poll_yield_ns;
    e->backoff.max_sleep_ns = TT_MAX(settings->poll_sleep_max_ns, 1000);
    e->transports = transports;
    e->ntransports = ntransports;
    e->health = health;
    health->interval_ns = ENGINE_HEALTH_INTERVAL_NS;
    tt_exec_init(&e->exec);
    tt_schedule_init(&e->part, 1);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    if (settings->progress_thread) {
        if (pthread_create(&e->thread, NULL, progress_thread, e) != 0) {
            tt_error("cannot start the progress thread");
            pthread_cond_destroy(&e->wake);
            pthread_mutex_destroy(&e->lock);
            return TUTTI_ERR_SYSTEM;
        }
        e->thread_running = 1;
    }
    return TUTTI_OK;
}

void tt_engine_fini(tt_engine_t *e, tutti_status_t status)
{
    pthread_mutex_lock(&e->lock);
    e->shutdown = 1;
    if (e->active != NULL || e->head != NULL)
        fail_everything(e, status);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    if (e->thread_running)
        pthread_join(e->thread, NULL);
    tt_exec_fini(&e->exec);
    tt_schedule_fini(&e->part);
    free(e->scratch);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
}

/* Queue @p op; the lock is held. */
static tutti_status_t enqueue(tt_engine_t *e, tt_op_t *op)
{
    tutti_status_t failed = e->health->status;
    if (failed != TUTTI_OK)
        return failed;
    atomic_store(&op->status, TUTTI_IN_PROGRESS);
    op->tag = (uint32_t)op->tag | (uint64_t)(op->unnumbered ? TT_UNNUMBERED_SEQ : e->next_seq++)
                                      << 32;
    op->deadline = 0;
    op->next = NULL;
    if (e->tail != NULL)
        e->tail->next = op;
    else
        e->head = op;
    e->tail = op;
    return TUTTI_OK;
}

tutti_status_t tt_engine_post(tt_engine_t *e, tt_op_t *op)
{
    tutti_status_t status;
    pthread_mutex_lock(&e->lock);
    status = enqueue(e, op);
    if (status == TUTTI_OK) {
        progress_once(e);
        if (e->waiters == 0)
            pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->lock);
    return status;
}

/* Progress until @p op is done; the lock is held and waiters counts us. */
static tutti_status_t wait_locked(tt_engine_t *e, tt_op_t *op)
{
    tt_backoff_t backoff;

    tt_backoff_init(&backoff, &e->backoff);
    while (atomic_load(&op->status) == TUTTI_IN_PROGRESS) {
        if (progress_once(e)) {
            tt_backoff_reset(&backoff);
            continue;
        }
        /* A short spin keeps the lock: the answer usually comes within microseconds. */
        if (tt_backoff_spinning(&backoff)) {
            tt_backoff_idle(&backoff);
            continue;
        }
        pthread_mutex_unlock(&e->lock);
        tt_backoff_idle(&backoff);
        pthread_mutex_lock(&e->lock);
    }
    /* Work is queued: the progress thread takes over at once (else it looks by itself). */
    if (--e->waiters == 0 && (e->active != NULL || e->head != NULL))
        pthread_cond_signal(&e->wake);
    return (tutti_status_t)atomic_load(&op->status);
}

tutti_status_t tt_engine_wait(tt_engine_t *e, tt_op_t *op)
{
    tutti_status_t status;
    pthread_mutex_lock(&e->lock);
    e->waiters++;
    status = wait_locked(e, op);
    pthread_mutex_unlock(&e->lock);
    return status;
}

tutti_status_t tt_engine_run(tt_engine_t *e, tt_op_t *op)
{
    tutti_status_t status;
    pthread_mutex_lock(&e->lock);
    e->waiters++;
    status = enqueue(e, op);
    if (status == TUTTI_OK)
        status = wait_locked(e, op);
    else
        e->waiters--;
    pthread_mutex_unlock(&e->lock);
    return status;
}

tutti_status_t tt_engine_test(tt_engine_t *e, tt_op_t *op)
{
    tutti_status_t status;
    pthread_mutex_lock(&e->lock);
    if (atomic_load(&op->status) == TUTTI_IN_PROGRESS)
        progress_once(e);
    status = (tutti_status_t)atomic_load(&op->status);
    pthread_mutex_unlock(&e->lock);
    return status;
}

tutti_status_t tt_engine_health(tt_engine_t *e)
{
    tutti_status_t status;
    pthread_mutex_lock(&e->lock);
    status = tt_health_check(e->health, 1);
    if (status != TUTTI_OK)
        fail_everything(e, status);
    pthread_mutex_unlock(&e->lock);
    return status;
}
