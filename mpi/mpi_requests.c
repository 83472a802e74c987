/*
 * Nonblocking calls: a served call's tutti request travels as an MPI
 * generalized request, so MPI_Wait, MPI_Test, MPI_Waitall and the rest work
 * unchanged and mix with MPI's own requests. tutti's progress thread moves
 * the operation; what MPI needs is a call of MPI_Grequest_complete once it
 * is done, from a thread that is inside MPI anyway. Each MPI offers a hook
 * for that in its progress loop:
 *   MPICH:    MPIX_Grequest_start's poll function, per request (and
 *             MPI_Request_get_status, which does not call it);
 *   Open MPI: opal_progress_register (Open MPI 4 does not export its
 *             extended generalized requests), one poll of all requests.
 * With neither, nonblocking calls fall back (tm_nonblocking_served is 0).
 *
 * Every request stays on one list until it is both complete and freed by
 * MPI (in either order: MPI_Request_free may come first, and MPI may call
 * the free function from inside MPI_Grequest_complete, which therefore runs
 * without the lock held).
 */
#include "tutti_mpi.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

/* One served nonblocking call. */
typedef struct pending {
    tutti_request_t treq;
    tm_finish_t finish;
    MPI_Comm comm;
    MPI_Request mpi;
    tutti_status_t status; /* the tutti result, once done */
    int done;              /* the tutti request is complete (and freed) */
    int completed;         /* MPI_Grequest_complete has returned */
    int freed;             /* MPI has let go of it (its free function ran) */
    struct pending *next, *next_done;
} pending_t;

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static pending_t *pending;

/* Free the requests that are complete and that MPI has let go of. Lock held. */
static void reap(void)
{
    for (pending_t **at = &pending; *at != NULL;) {
        pending_t *p = *at;
        if (p->completed && p->freed) {
            *at = p->next;
            free(p);
        } else {
            at = &p->next;
        }
    }
}

/* Move @p p along; if it is done now, push it on @p done_list. Lock held. */
static void poll_one(pending_t *p, pending_t **done_list)
{
    if (p->done || (p->status = tutti_test(p->treq)) == TUTTI_IN_PROGRESS)
        return;
    p->done = 1;
    if (p->status == TUTTI_OK)
        tm_finish_run(&p->finish);
    else
        tm_finish_drop(&p->finish);
    p->next_done = *done_list;
    *done_list = p;
}

/* Tell MPI about the requests on @p done_list (lock not held). Returns how many. */
static int complete_all(pending_t *done_list)
{
    int n = 0;
    for (pending_t *p = done_list, *next; p != NULL; p = next, n++) {
        next = p->next_done;
        if (p->status != TUTTI_OK)
            tm_mpi_error(p->comm, p->status);
        PMPI_Grequest_complete(p->mpi);
        pthread_mutex_lock(&pending_lock);
        p->completed = 1;
        reap();
        pthread_mutex_unlock(&pending_lock);
    }
    return n;
}

/* Poll @p only, or every request of @p comm (MPI_COMM_NULL: every request). */
static int poll_requests(pending_t *only, MPI_Comm comm)
{
    pending_t *done_list = NULL;

    pthread_mutex_lock(&pending_lock);
    if (only != NULL)
        poll_one(only, &done_list);
    for (pending_t *p = pending; p != NULL && only == NULL; p = p->next)
        if (comm == MPI_COMM_NULL || p->comm == comm)
            poll_one(p, &done_list);
    pthread_mutex_unlock(&pending_lock);
    return complete_all(done_list);
}

/*
 * Between polls while waiting: a few yields, then short sleeps. Polling on
 * sched_yield alone with more ranks than cores went with minute-long stalls
 * on Linux 6.18 (see the README, "Polling for completion").
 */
static void poll_pause(int *idle_polls)
{
    if ((*idle_polls)++ < 64)
        sched_yield();
    else
        nanosleep(&(struct timespec){0, 50000}, NULL);
}

void tm_requests_drain(MPI_Comm comm)
{
    int busy, idle_polls = 0;
    do {
        poll_requests(NULL, comm);
        busy = 0;
        pthread_mutex_lock(&pending_lock);
        for (pending_t *p = pending; p != NULL; p = p->next)
            busy |= p->comm == comm && !p->done;
        pthread_mutex_unlock(&pending_lock);
        if (busy)
            poll_pause(&idle_polls);
    } while (busy);
}

static int query(void *state, MPI_Status *status)
{
    pending_t *p = state;
    PMPI_Status_set_elements(status, MPI_BYTE, 0);
    PMPI_Status_set_cancelled(status, 0);
    status->MPI_SOURCE = MPI_ANY_SOURCE;
    status->MPI_TAG = MPI_ANY_TAG;
    status->MPI_ERROR = tm_mpi_code(p->status);
    return status->MPI_ERROR;
}

static int free_state(void *state)
{
    pending_t *p = state;
    pthread_mutex_lock(&pending_lock);
    p->freed = 1;
    reap();
    pthread_mutex_unlock(&pending_lock);
    return MPI_SUCCESS;
}

/* Collectives cannot be cancelled (MPI leaves cancelling them erroneous): ignore it. */
static int cancel(void *state, int complete)
{
    (void)state, (void)complete;
    return MPI_SUCCESS;
}

#if defined(MPICH_VERSION)

const int tm_nonblocking_served = 1;

static int poll(void *state, MPI_Status *status)
{
    (void)status;
    poll_requests(state, MPI_COMM_NULL);
    return MPI_SUCCESS;
}

/* Wait for @p count requests: poll until all are done (one pass when @p timeout is 0). */
static int wait_all(int count, void **states, double timeout, MPI_Status *status)
{
    int left, idle_polls = 0;
    do {
        left = 0;
        for (int i = 0; i < count; i++) {
            poll(states[i], status);
            left += !((pending_t *)states[i])->completed;
        }
        if (left > 0 && timeout != 0)
            poll_pause(&idle_polls);
    } while (left > 0 && timeout != 0);
    return MPI_SUCCESS;
}

static int start(pending_t *p)
{
    return MPIX_Grequest_start(query, free_state, cancel, poll, wait_all, p, &p->mpi);
}

/*
 * MPICH calls the poll functions only from the MPI_Test and MPI_Wait
 * families; MPI_Request_get_status just runs its progress engine, so a
 * loop of it would never see a served request complete. Poll them first.
 */
TM_EXPORT int MPI_Request_get_status(MPI_Request request, int *flag, MPI_Status *status)
{
    poll_requests(NULL, MPI_COMM_NULL);
    return PMPI_Request_get_status(request, flag, status);
}

#elif defined(OPEN_MPI)

const int tm_nonblocking_served = 1;

/* Open MPI's progress hook (libopen-pal; declared in headers Debian does not ship). */
int opal_progress_register(int (*callback)(void));

/* Called in every pass of Open MPI's progress loop. */
static int poll_all(void)
{
    return poll_requests(NULL, MPI_COMM_NULL);
}

static void register_hook(void)
{
    opal_progress_register(poll_all);
}

static int start(pending_t *p)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_hook);
    return PMPI_Grequest_start(query, free_state, cancel, p, &p->mpi);
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
        tm_finish_drop(finish);
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
    p->status = TUTTI_IN_PROGRESS;
    if (start(p) != MPI_SUCCESS) {
        int rc = complete_now(treq, &p->finish, comm, request_p);
        free(p);
        return rc;
    }
    pthread_mutex_lock(&pending_lock);
    p->next = pending;
    pending = p;
    pthread_mutex_unlock(&pending_lock);
    *request_p = p->mpi;
    return MPI_SUCCESS;
}
