/*
 * Nonblocking calls: a served call's tutti request travels as an MPI
 * generalized request, so MPI_Wait, MPI_Test, MPI_Waitall and the rest work
 * unchanged and mix with MPI's own requests. tutti's progress thread moves
 * the operation; what MPI needs is a call of MPI_Grequest_complete once it
 * is done, from a thread that is inside MPI anyway. Each MPI offers a hook
 * for that in its progress loop:
 *   MPICH:    MPIX_Grequest_start's poll function, per request;
 *   Open MPI: opal_progress_register (Open MPI 4 does not export its
 *             extended generalized requests), one poll of all requests.
 * With neither, nonblocking calls fall back (tm_nonblocking_served is 0).
 */
#include "tutti_mpi.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

/* One served nonblocking call. */
typedef struct pending {
    tutti_request_t treq;
    tm_finish_t finish;
    MPI_Comm comm;
    MPI_Request mpi;
    int mpi_code; /* the result, once done */
    int done;     /* the tutti request is complete and MPI knows */
    int freed;    /* MPI has let go of it (free_fn ran) */
    struct pending *next;
} pending_t;

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;

/* Move @p p along; once done, tell MPI. Returns 1 if it completed now. Lock held. */
static int poll_one(pending_t *p)
{
    tutti_status_t status;

    if (p->done)
        return 0;
    status = tutti_test(p->treq);
    if (status == TUTTI_IN_PROGRESS)
        return 0;
    p->done = 1;
    if (status == TUTTI_OK)
        tm_finish_run(&p->finish);
    else
        free(p->finish.owned);
    p->mpi_code = tm_mpi_error(p->comm, status);
    PMPI_Grequest_complete(p->mpi);
    return 1;
}

static int query(void *state, MPI_Status *status)
{
    pending_t *p = state;
    PMPI_Status_set_elements(status, MPI_BYTE, 0);
    PMPI_Status_set_cancelled(status, 0);
    status->MPI_SOURCE = MPI_ANY_SOURCE;
    status->MPI_TAG = MPI_ANY_TAG;
    status->MPI_ERROR = p->mpi_code;
    return p->mpi_code;
}

/* Collectives cannot be cancelled (MPI leaves cancelling them erroneous): ignore it. */
static int cancel(void *state, int complete)
{
    (void)state, (void)complete;
    return MPI_SUCCESS;
}

#if defined(MPICH_VERSION)

const int tm_nonblocking_served = 1;

static int free_state(void *state)
{
    free(state);
    return MPI_SUCCESS;
}

static int poll(void *state, MPI_Status *status)
{
    (void)status;
    pthread_mutex_lock(&pending_lock);
    poll_one(state);
    pthread_mutex_unlock(&pending_lock);
    return MPI_SUCCESS;
}

/* Wait for @p count requests: poll until all are done (one pass when @p timeout is 0). */
static int wait_all(int count, void **states, double timeout, MPI_Status *status)
{
    int left;
    do {
        left = 0;
        for (int i = 0; i < count; i++) {
            poll(states[i], status);
            left += !((pending_t *)states[i])->done;
        }
        if (left > 0)
            sched_yield();
    } while (left > 0 && timeout != 0);
    return MPI_SUCCESS;
}

static int start(pending_t *p)
{
    return MPIX_Grequest_start(query, free_state, cancel, poll, wait_all, p, &p->mpi);
}

#elif defined(OPEN_MPI)

const int tm_nonblocking_served = 1;

/* Open MPI's progress hook (libopen-pal; declared in headers Debian does not ship). */
int opal_progress_register(int (*callback)(void));

static pending_t *pending; /* requests not yet complete or not yet freed */

/* MPI lets go of a request only once it is complete; free it when both are true. */
static int free_state(void *state)
{
    pending_t *p = state;
    pthread_mutex_lock(&pending_lock);
    p->freed = 1;
    pthread_mutex_unlock(&pending_lock);
    return MPI_SUCCESS;
}

/* Called in every pass of Open MPI's progress loop. */
static int poll_all(void)
{
    int completed = 0;

    if (pthread_mutex_trylock(&pending_lock) != 0)
        return 0; /* another thread is polling */
    for (pending_t **at = &pending; *at != NULL;) {
        pending_t *p = *at;
        completed += poll_one(p);
        if (p->done && p->freed) {
            *at = p->next;
            free(p);
        } else {
            at = &p->next;
        }
    }
    pthread_mutex_unlock(&pending_lock);
    return completed;
}

static void register_hook(void)
{
    opal_progress_register(poll_all);
}

static int start(pending_t *p)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    int rc;

    pthread_once(&once, register_hook);
    rc = PMPI_Grequest_start(query, free_state, cancel, p, &p->mpi);
    if (rc == MPI_SUCCESS) {
        pthread_mutex_lock(&pending_lock);
        p->next = pending;
        pending = p;
        pthread_mutex_unlock(&pending_lock);
    }
    return rc;
}

#else

const int tm_nonblocking_served = 0;

static int start(pending_t *p)
{
    (void)p;
    return MPI_ERR_INTERN;
}

#endif

/* Without a generalized request: finish @p treq here and hand back MPI_REQUEST_NULL. */
static int complete_now(tutti_request_t treq, tm_finish_t *finish, MPI_Comm comm,
                        MPI_Request *request_p)
{
    tutti_status_t status = tutti_wait(treq);

    if (status == TUTTI_OK)
        tm_finish_run(finish);
    else
        free(finish->owned);
    *request_p = MPI_REQUEST_NULL;
    return tm_mpi_error(comm, status);
}

int tm_request_start(tutti_request_t treq, const tm_finish_t *finish, MPI_Comm comm,
                     MPI_Request *request_p)
{
    pending_t *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        tm_finish_t copy = *finish;
        return complete_now(treq, &copy, comm, request_p);
    }
    p->treq = treq;
    p->finish = *finish;
    p->comm = comm;
    if (start(p) != MPI_SUCCESS) {
        int rc = complete_now(treq, &p->finish, comm, request_p);
        free(p);
        return rc;
    }
    *request_p = p->mpi;
    return MPI_SUCCESS;
}
