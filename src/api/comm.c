/* Communicator lifecycle: create (wire up transports), destroy, abort, split, queries. */
#include "config.h"

#include "api/comm.h"

#include "api/calibrate.h"
#include "api/links.h"
#include "api/place.h"
#include "api/settings.h"
#include "topo/host.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The process's live communicators, so that a stale handle gets a clear
 * error. Every call checks it, so reading takes no lock: a fixed array of
 * atomic slots that never moves, scanned up to its high-water mark.
 */
#define TT_MAX_COMMS 1024

static struct {
    pthread_mutex_t lock; /* serialises writers */
    _Atomic(tutti_comm_t) live[TT_MAX_COMMS];
    atomic_int used; /* slots ever used */
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

static tutti_status_t registry_add(tutti_comm_t comm)
{
    int used, slot = -1;

    pthread_mutex_lock(&registry.lock);
    used = atomic_load(&registry.used);
    for (int i = 0; i < used && slot < 0; i++)
        if (atomic_load(&registry.live[i]) == NULL)
            slot = i;
    if (slot < 0 && used < TT_MAX_COMMS) {
        slot = used;
        atomic_store(&registry.used, used + 1);
    }
    if (slot >= 0)
        atomic_store(&registry.live[slot], comm);
    pthread_mutex_unlock(&registry.lock);
    if (slot < 0) {
        tt_error("more than %d communicators alive in one process", TT_MAX_COMMS);
        return TUTTI_ERR_NO_MEMORY;
    }
    return TUTTI_OK;
}

/* Remove @p comm; returns 0 if it was not registered. */
static int registry_remove(tutti_comm_t comm)
{
    int found = 0, used;

    pthread_mutex_lock(&registry.lock);
    used = atomic_load(&registry.used);
    for (int i = 0; i < used && !found; i++) {
        if (atomic_load(&registry.live[i]) == comm) {
            atomic_store(&registry.live[i], NULL);
            found = 1;
        }
    }
    pthread_mutex_unlock(&registry.lock);
    return found;
}

int tt_comm_valid(tutti_comm_t comm)
{
    int used = atomic_load_explicit(&registry.used, memory_order_acquire);
    if (comm == NULL)
        return 0;
    for (int i = 0; i < used; i++)
        if (atomic_load_explicit(&registry.live[i], memory_order_acquire) == comm)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------- setup */

static tutti_status_t load_settings(tutti_comm_t comm, const tt_config_overrides_t *overrides)
{
    tt_reduce_isa_t isa;

    TT_CHECK(tt_config_overrides_copy(&comm->overrides, overrides));
    TT_CHECK(tt_settings_validate(&comm->overrides));
    TT_CHECK(tt_log_configure(&comm->overrides));
    TT_CHECK(tt_config_load(&tt_engine_config_table, &comm->overrides, &comm->exec));
    isa = (tt_reduce_isa_t)comm->exec.reduce_isa;
    if (tt_reduce_kernel(isa, TUTTI_FP32, TUTTI_SUM) == NULL) {
        tt_error("TUTTI_REDUCE_ISA=%s: this CPU or build cannot run those kernels",
                 tt_reduce_isa_names[isa]);
        return TUTTI_ERR_UNSUPPORTED;
    }
    for (int t = 0; t < TUTTI_NUM_DATATYPES; t++)
        for (int o = 0; o < TUTTI_NUM_OPS; o++)
            comm->kernels[t][o] = tt_reduce_kernel(isa, (tutti_datatype_t)t, (tutti_op_t)o);
    return TUTTI_OK;
}

/* Where the ranks run, then a transport to each. */
static tutti_status_t connect_transports(tutti_comm_t comm)
{
    int64_t deadline = tt_deadline_after(comm->exec.op_timeout_ns);

    TT_CHECK(tt_comm_place(comm, deadline));
    return tt_comm_connect(comm, deadline);
}

/* Free everything; @p abort skips waiting for the other ranks. */
static void teardown(tutti_comm_t comm, int abort, int engine_started)
{
    int64_t deadline = tt_deadline_after(comm->exec.op_timeout_ns);

    if (engine_started)
        tt_engine_fini(&comm->engine, TUTTI_ERR_ABORTED);
    for (int t = 0; t < comm->ntransports; t++)
        comm->transports[t]->ops->destroy(comm->transports[t]);
    comm->ntransports = 0;
    tt_plan_cache_fini(&comm->plans);
    tt_selector_fini(&comm->selector);
    tt_cluster_fini(&comm->cluster);
    tt_cluster_fini(&comm->hosts);
    tt_bootstrap_release(comm->bs, abort, deadline);
    comm->bs = NULL;
    tt_comm_release(comm);
}

void tt_comm_release(tutti_comm_t comm)
{
    if (atomic_fetch_sub(&comm->refs, 1) != 1)
        return;
    tt_config_overrides_clear(&comm->overrides);
    pthread_mutex_destroy(&comm->group.lock);
    free(comm->group.msgs);
    free(comm->route);
    free(comm->session_ranks);
    free(comm);
}

tutti_status_t tt_comm_create(tt_bootstrap_t *bs, int rank, int nranks, int *session_ranks,
                              uint64_t ctx, const tt_config_overrides_t *overrides,
                              tutti_comm_t *comm_p)
{
    tutti_comm_t comm = calloc(1, sizeof(*comm));
    tutti_status_t status;

    if (comm == NULL) {
        tt_bootstrap_release(bs, 1, tt_time_ns());
        free(session_ranks);
        return TUTTI_ERR_NO_MEMORY;
    }
    comm->rank = rank;
    comm->nranks = nranks;
    comm->ctx = ctx;
    comm->bs = bs;
    comm->session_ranks = session_ranks;
    atomic_init(&comm->refs, 1);
    pthread_mutex_init(&comm->group.lock, NULL);
    tt_log_set_rank(session_ranks[rank]);
    status = load_settings(comm, overrides);
    tt_plan_cache_init(&comm->plans);
    if (status == TUTTI_OK)
        status = connect_transports(comm);
    if (status == TUTTI_OK)
        status = tt_selector_init(&comm->selector, &comm->overrides, &comm->cluster);
    tt_health_init(&comm->health, bs, comm->session_ranks, rank, nranks, comm->transports,
                   comm->ntransports, 0);
    if (status == TUTTI_OK) {
        status = tt_engine_init(&comm->engine, &comm->exec, comm->machine_ranks, comm->transports,
                                comm->ntransports, &comm->health);
        if (status == TUTTI_OK && (status = tt_calibrate(comm)) != TUTTI_OK)
            tt_engine_fini(&comm->engine, TUTTI_ERR_ABORTED);
    }
    if (status == TUTTI_OK) {
        status = registry_add(comm);
        if (status != TUTTI_OK)
            tt_engine_fini(&comm->engine, TUTTI_ERR_ABORTED);
    }
    if (status != TUTTI_OK) {
        /* Tell the others at once rather than let them wait for us until a deadline. */
        tt_bootstrap_report_failure(bs, session_ranks[rank], "its communicator setup failed");
        teardown(comm, 1, 0);
        return status;
    }
    *comm_p = comm;
    return TUTTI_OK;
}

/* ---------------------------------------------------------------- public */

tutti_status_t tutti_comm_destroy(tutti_comm_t comm)
{
    int64_t deadline;

    /*
     * A barrier over the data links first: a rank that finished its last
     * operation keeps serving its transports (a peer may still need its part
     * of a protocol) until every rank has finished too.
     */
    if (tt_comm_valid(comm) && atomic_load(&comm->refs) == 1 &&
        tt_engine_health(&comm->engine) == TUTTI_OK)
        tutti_barrier(comm);
    if (!registry_remove(comm))
        return TUTTI_ERR_INVALID_COMM;
    if (atomic_load(&comm->refs) > 1) {
        tt_error("tutti_comm_destroy: %d requests are still outstanding; complete them first "
                 "(or use tutti_comm_abort)",
                 atomic_load(&comm->refs) - 1);
        registry_add(comm);
        return TUTTI_ERR_INVALID_ARG;
    }
    /* Wait for every rank, so that nobody mistakes our exit for a failure. */
    deadline = tt_deadline_after(comm->exec.op_timeout_ns);
    if (tt_engine_health(&comm->engine) == TUTTI_OK)
        tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, comm->nranks, comm->session_ranks,
                               NULL, 0, NULL, deadline);
    teardown(comm, 0, 1);
    return TUTTI_OK;
}

tutti_status_t tutti_comm_abort(tutti_comm_t comm)
{
    if (!registry_remove(comm))
        return TUTTI_ERR_INVALID_COMM;
    tt_warn("aborting communicator %#llx", (unsigned long long)comm->ctx);
    tt_bootstrap_report_failure(comm->bs, comm->session_ranks[comm->rank],
                                "aborted its communicator");
    teardown(comm, 1, 1);
    return TUTTI_OK;
}

tutti_status_t tutti_comm_get_async_error(tutti_comm_t comm, tutti_status_t *error_p)
{
    if (!tt_comm_valid(comm))
        return TUTTI_ERR_INVALID_COMM;
    if (error_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    *error_p = tt_engine_health(&comm->engine);
    return TUTTI_OK;
}

tutti_status_t tutti_comm_rank(tutti_comm_t comm, int *rank_p)
{
    if (!tt_comm_valid(comm))
        return TUTTI_ERR_INVALID_COMM;
    if (rank_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    *rank_p = comm->rank;
    return TUTTI_OK;
}

tutti_status_t tutti_comm_size(tutti_comm_t comm, int *size_p)
{
    if (!tt_comm_valid(comm))
        return TUTTI_ERR_INVALID_COMM;
    if (size_p == NULL)
        return TUTTI_ERR_INVALID_ARG;
    *size_p = comm->nranks;
    return TUTTI_OK;
}

typedef struct split_card {
    int32_t color, key, rank;
} split_card_t;

static int compare_cards(const void *a, const void *b)
{
    const split_card_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static uint64_t child_ctx(uint64_t parent, uint32_t seq, int color)
{
    unsigned char digest[TT_SHA256_BYTES];
    uint64_t ctx;
    tt_sha256_t hash;
    tt_sha256_init(&hash);
    tt_sha256_update(&hash, &parent, sizeof(parent));
    tt_sha256_update(&hash, &seq, sizeof(seq));
    tt_sha256_update(&hash, &color, sizeof(color));
    tt_sha256_final(&hash, digest);
    memcpy(&ctx, digest, sizeof(ctx));
    return ctx;
}

tutti_status_t tutti_comm_split(tutti_comm_t comm, int color, int key, tutti_config_t config,
                                tutti_comm_t *newcomm_p)
{
    split_card_t mine = {color, key, 0}, *all;
    int *session_ranks, n = 0, newrank = -1;
    uint32_t seq;
    tutti_status_t status;

    if (!tt_comm_valid(comm))
        return TUTTI_ERR_INVALID_COMM;
    if (newcomm_p == NULL || (color < 0 && color != TUTTI_SPLIT_NOCOLOR)) {
        tt_error("tutti_comm_split: color %d is negative (use TUTTI_SPLIT_NOCOLOR to opt out)",
                 color);
        return TUTTI_ERR_INVALID_ARG;
    }
    mine.rank = comm->rank;
    all = malloc((size_t)comm->nranks * sizeof(*all));
    session_ranks = malloc((size_t)comm->nranks * sizeof(int));
    if (all == NULL || session_ranks == NULL) {
        free(all);
        free(session_ranks);
        return TUTTI_ERR_NO_MEMORY;
    }
    seq = atomic_fetch_add(&comm->split_seq, 1);
    status = tt_bootstrap_allgather(comm->bs, comm->ctx, comm->rank, comm->nranks,
                                    comm->session_ranks, &mine, sizeof(mine), all,
                                    tt_deadline_after(comm->exec.op_timeout_ns));
    if (status != TUTTI_OK || color == TUTTI_SPLIT_NOCOLOR) {
        free(all);
        free(session_ranks);
        if (status == TUTTI_OK)
            *newcomm_p = NULL;
        return status;
    }
    for (int r = 0; r < comm->nranks; r++)
        if (all[r].color == color)
            all[n++] = all[r];
    qsort(all, (size_t)n, sizeof(*all), compare_cards);
    for (int i = 0; i < n; i++) {
        session_ranks[i] = comm->session_ranks[all[i].rank];
        if (all[i].rank == comm->rank)
            newrank = i;
    }
    free(all);
    tt_bootstrap_retain(comm->bs);
    return tt_comm_create(comm->bs, newrank, n, session_ranks, child_ctx(comm->ctx, seq, color),
                          config != NULL ? &config->overrides : &comm->overrides, newcomm_p);
}
