/*
 * The public API's contract, on real forked ranks: argument checking (bad
 * input gets a clear status and changes nothing), communicator lifecycle,
 * split, nonblocking requests, launch from the environment, deadlines,
 * abort, and ranks that disagree about a call.
 */
#include "config.h"

#include "tests/lib/ranks.h"
#include "tests/lib/unit.h"

/* The transport that needs this rank's progress after a send completed, where built. */
#ifdef HAVE_UCX
#define SERVE_TRANSPORT "ucx"
#else
#define SERVE_TRANSPORT "shm"
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EXPECT(rank, call, want)                                                                  \
    do {                                                                                          \
        tutti_status_t got_ = (call);                                                             \
        if (got_ != (want))                                                                       \
            return tt_fail(rank, "%s:%d: %s returned %s, expected %s", __FILE__, __LINE__, #call, \
                           tutti_status_string(got_), tutti_status_string(want));                 \
    } while (0)

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static tutti_config_t config_with(const char *name, const char *value)
{
    tutti_config_t config;
    tutti_config_create(&config);
    tutti_config_set(config, name, value);
    return config;
}

/* ---------------------------------------------------------------- bad input */

static int bad_input_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(rank, n, id, NULL), gone;
    int32_t in[16], out[16], untouched[16];
    size_t ones[8], zeros[8] = {0}, self_two[8], far[8];
    tutti_request_t req;

    (void)arg;
    for (int i = 0; i < 8; i++)
        ones[i] = self_two[i] = far[i] = 1;
    for (int i = 0; i < 16; i++)
        in[i] = rank + i;
    memset(out, 0x5a, sizeof(out));
    memcpy(untouched, out, sizeof(out));

    EXPECT(rank, tutti_allreduce(NULL, out, 4, TUTTI_INT32, TUTTI_SUM, comm),
           TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_allreduce(in, NULL, 4, TUTTI_INT32, TUTTI_SUM, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_allreduce(in, out, 4, (tutti_datatype_t)42, TUTTI_SUM, comm),
           TUTTI_ERR_UNSUPPORTED);
    EXPECT(rank, tutti_allreduce(in, out, 4, TUTTI_INT32, (tutti_op_t)9, comm),
           TUTTI_ERR_UNSUPPORTED);
    EXPECT(rank, tutti_allreduce(in, in + 1, 4, TUTTI_INT32, TUTTI_SUM, comm),
           TUTTI_ERR_INVALID_ARG); /* overlapping, not in place */
    EXPECT(rank, tutti_reduce_scatter(NULL, out, 1, TUTTI_INT32, TUTTI_SUM, comm),
           TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_allgather(in, NULL, 1, TUTTI_INT32, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_broadcast(in, out, 4, TUTTI_INT32, n, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_broadcast(in, out, 4, TUTTI_INT32, -1, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_reduce(in, out, 4, TUTTI_INT32, TUTTI_MAX, n + 3, comm),
           TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_iallreduce(in, out, 4, TUTTI_INT32, TUTTI_SUM, comm, NULL),
           TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_alltoall(NULL, out, 1, TUTTI_INT32, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_alltoall(in, in + 1, 2, TUTTI_INT32, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_alltoall(in, out, 1, (tutti_datatype_t)-1, comm), TUTTI_ERR_UNSUPPORTED);
    EXPECT(rank, tutti_alltoallv(in, NULL, ones, out, ones, ones, TUTTI_INT32, comm),
           TUTTI_ERR_INVALID_ARG);
    self_two[rank] = 2;
    EXPECT(rank, tutti_alltoallv(in, self_two, zeros, out, ones, zeros, TUTTI_INT32, comm),
           TUTTI_ERR_INVALID_ARG); /* sends itself 2, expects 1 */
    far[rank] = SIZE_MAX - 1;
    EXPECT(rank, tutti_alltoallv(in, ones, far, out, ones, zeros, TUTTI_INT32, comm),
           TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_alltoallv(in, ones, ones, in + 1, ones, zeros, TUTTI_INT32, comm),
           TUTTI_ERR_INVALID_ARG); /* overlapping, not in place */
    EXPECT(rank, tutti_ialltoallv(in, ones, zeros, out, ones, zeros, TUTTI_INT32, comm, NULL),
           TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_allreduce(in, out, 4, TUTTI_INT32, TUTTI_SUM, NULL), TUTTI_ERR_INVALID_COMM);
    EXPECT(rank, tutti_barrier(NULL), TUTTI_ERR_INVALID_COMM);
    EXPECT(rank, tutti_comm_rank(comm, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_comm_size(NULL, &rank), TUTTI_ERR_INVALID_COMM);
    EXPECT(rank, tutti_wait(NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_test(NULL), TUTTI_ERR_INVALID_ARG);
    if (memcmp(out, untouched, sizeof(out)) != 0)
        return tt_fail(rank, "a rejected call wrote to the receive buffer");

    /* Nothing was half-done: the communicator works, count 0 with NULL buffers too. */
    EXPECT(rank, tutti_allreduce(NULL, NULL, 0, TUTTI_INT32, TUTTI_SUM, comm), TUTTI_OK);
    EXPECT(rank, tutti_allreduce(in, out, 16, TUTTI_INT32, TUTTI_SUM, comm), TUTTI_OK);
    for (int i = 0; i < 16; i++)
        if (out[i] != n * (n - 1) / 2 + n * i)
            return tt_fail(rank, "element %d is %d after the rejected calls", i, out[i]);
    /* Non-roots may pass NULL where the API says the buffer is unused. */
    EXPECT(rank, tutti_reduce(in, rank == 0 ? out : NULL, 16, TUTTI_INT32, TUTTI_SUM, 0, comm),
           TUTTI_OK);
    EXPECT(rank, tutti_broadcast(rank == 0 ? in : NULL, out, 16, TUTTI_INT32, 0, comm), TUTTI_OK);
    EXPECT(rank, tutti_iallreduce(in, out, 16, TUTTI_INT32, TUTTI_SUM, comm, &req), TUTTI_OK);
    EXPECT(rank, tutti_wait(req), TUTTI_OK);
    /* One element to each rank, the blocks in rank order. */
    for (int i = 0; i < n; i++)
        far[i] = (size_t)i;
    EXPECT(rank, tutti_alltoallv(in, ones, far, out, ones, far, TUTTI_INT32, comm), TUTTI_OK);
    for (int i = 0; i < n; i++)
        if (out[i] != i + rank)
            return tt_fail(rank, "alltoallv: element %d is %d, expected %d", i, out[i], i + rank);

    gone = comm;
    EXPECT(rank, tutti_comm_destroy(comm), TUTTI_OK);
    EXPECT(rank, tutti_allreduce(in, out, 4, TUTTI_INT32, TUTTI_SUM, gone), TUTTI_ERR_INVALID_COMM);
    EXPECT(rank, tutti_barrier(gone), TUTTI_ERR_INVALID_COMM);
    EXPECT(rank, tutti_comm_destroy(gone), TUTTI_ERR_INVALID_COMM);
    EXPECT(rank, tutti_comm_abort(gone), TUTTI_ERR_INVALID_COMM);
    return 0;
}

START_TEST(bad_input_changes_nothing)
{
    ck_assert_int_eq(tt_run_ranks(_i, bad_input_rank, NULL, 60), 0);
}
END_TEST

START_TEST(init_arguments)
{
    tutti_unique_id_t id, junk;
    tutti_comm_t comm;
    ck_assert_int_eq(tutti_get_unique_id(&id), TUTTI_OK);
    ck_assert_int_eq(tutti_get_unique_id(NULL), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tutti_comm_init(0, 0, &id, NULL, &comm), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tutti_comm_init(2, 2, &id, NULL, &comm), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tutti_comm_init(2, -1, &id, NULL, &comm), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tutti_comm_init(2, 0, NULL, NULL, &comm), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tutti_comm_init(2, 0, &id, NULL, NULL), TUTTI_ERR_INVALID_ARG);
    memset(&junk, 0x42, sizeof(junk));
    ck_assert_int_eq(tutti_comm_init(2, 1, &junk, NULL, &comm), TUTTI_ERR_INVALID_ARG);
    {
        tutti_config_t bad = config_with("TUTTI_PIPELINE_SLOTS", "99");
        ck_assert_int_eq(tutti_comm_init(1, 0, &id, bad, &comm), TUTTI_ERR_INVALID_ARG);
        tutti_config_destroy(bad);
    }
}
END_TEST

/* ---------------------------------------------------------------- lifecycle */

static int missing_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_config_t config;
    tutti_comm_t comm;
    (void)arg;
    if (rank == n - 1)
        return 0; /* never calls init */
    config = config_with("TUTTI_BOOTSTRAP_TIMEOUT", "1s");
    EXPECT(rank, tutti_comm_init(n, rank, id, config, &comm), TUTTI_ERR_TIMEOUT);
    tutti_config_destroy(config);
    return 0;
}

START_TEST(init_fails_everywhere_when_a_rank_is_missing)
{
    ck_assert_int_eq(tt_run_ranks(4, missing_rank, NULL, 60), 0);
}
END_TEST

static int split_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(rank, n, id, NULL), sub, subsub, none;
    int sub_rank, sub_size, parity = rank % 2, expect_size = (n + 1 - parity) / 2;
    int64_t value = rank, sum;

    (void)arg;
    EXPECT(rank, tutti_comm_split(comm, -5, 0, NULL, &sub), TUTTI_ERR_INVALID_ARG);
    /* Same parity together; key -rank reverses the order. */
    EXPECT(rank, tutti_comm_split(comm, parity, -rank, NULL, &sub), TUTTI_OK);
    tutti_comm_rank(sub, &sub_rank);
    tutti_comm_size(sub, &sub_size);
    if (sub_size != expect_size || sub_rank != expect_size - 1 - rank / 2)
        return tt_fail(rank, "sub-communicator rank %d of %d", sub_rank, sub_size);
    EXPECT(rank, tutti_allreduce(&value, &sum, 1, TUTTI_INT64, TUTTI_SUM, sub), TUTTI_OK);
    {
        int64_t want = 0;
        for (int r = parity; r < n; r += 2)
            want += r;
        if (sum != want)
            return tt_fail(rank, "sum over the sub-communicator is %lld, not %lld", (long long)sum,
                           (long long)want);
    }
    /* Split again; the parent keeps working alongside its children. */
    EXPECT(rank, tutti_comm_split(sub, sub_rank == 0 ? TUTTI_SPLIT_NOCOLOR : 0, 0, NULL, &subsub),
           TUTTI_OK);
    if ((sub_rank == 0) != (subsub == NULL))
        return tt_fail(rank, "NOCOLOR did not give NULL (or a member got NULL)");
    EXPECT(rank, tutti_comm_split(comm, TUTTI_SPLIT_NOCOLOR, 0, NULL, &none), TUTTI_OK);
    if (none != NULL)
        return tt_fail(rank, "NOCOLOR for everyone did not give NULL");
    EXPECT(rank, tutti_allreduce(&value, &sum, 1, TUTTI_INT64, TUTTI_SUM, comm), TUTTI_OK);
    if (sum != (int64_t)n * (n - 1) / 2)
        return tt_fail(rank, "parent sum %lld", (long long)sum);
    if (subsub != NULL) {
        EXPECT(rank, tutti_barrier(subsub), TUTTI_OK);
        EXPECT(rank, tutti_comm_destroy(subsub), TUTTI_OK);
    }
    EXPECT(rank, tutti_comm_destroy(sub), TUTTI_OK);
    EXPECT(rank, tutti_comm_destroy(comm), TUTTI_OK);
    return 0;
}

START_TEST(split_by_color_and_key)
{
    ck_assert_int_eq(tt_run_ranks(_i, split_rank, NULL, 60), 0);
}
END_TEST

static int nonblocking_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(rank, n, id, NULL);
    enum { COUNT = 300000 };
    float *a = malloc(COUNT * sizeof(float)), *b = malloc(COUNT * sizeof(float));
    int32_t x = rank + 1, y = 0, gathered[64];
    tutti_request_t r1, r2, r3;
    tutti_status_t status;
    tutti_status_t async;

    (void)arg;
    for (int i = 0; i < COUNT; i++)
        a[i] = 1.0f;
    EXPECT(rank, tutti_iallreduce(a, b, COUNT, TUTTI_FP32, TUTTI_SUM, comm, &r1), TUTTI_OK);
    EXPECT(rank, tutti_iallreduce(&x, &y, 1, TUTTI_INT32, TUTTI_MAX, comm, &r2), TUTTI_OK);
    EXPECT(rank, tutti_iallgather(&x, gathered, 1, TUTTI_INT32, comm, &r3), TUTTI_OK);
    /* Destroying with work outstanding is refused and changes nothing. */
    EXPECT(rank, tutti_comm_destroy(comm), TUTTI_ERR_INVALID_ARG);
    /* Complete in the reverse order, the first by polling. */
    EXPECT(rank, tutti_wait(r3), TUTTI_OK);
    EXPECT(rank, tutti_wait(r2), TUTTI_OK);
    while ((status = tutti_test(r1)) == TUTTI_IN_PROGRESS)
        usleep(100);
    EXPECT(rank, status, TUTTI_OK);
    if (y != n || b[0] != (float)n || b[COUNT - 1] != (float)n)
        return tt_fail(rank, "results: max %d, sum %f", y, b[0]);
    for (int r = 0; r < n; r++)
        if (gathered[r] != r + 1)
            return tt_fail(rank, "gathered[%d] = %d", r, gathered[r]);
    EXPECT(rank, tutti_comm_get_async_error(comm, &async), TUTTI_OK);
    EXPECT(rank, async, TUTTI_OK);
    EXPECT(rank, tutti_comm_destroy(comm), TUTTI_OK);
    free(a);
    free(b);
    return 0;
}

START_TEST(nonblocking_requests)
{
    ck_assert_int_eq(tt_run_ranks(_i, nonblocking_rank, NULL, 60), 0);
}
END_TEST

static int env_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    const char *port = arg;
    char text[64];
    tutti_comm_t comm;
    int got_rank, got_size;

    (void)id;
    unsetenv("TUTTI_RANK");
    unsetenv("TUTTI_NRANKS");
    unsetenv("TUTTI_ADDR");
    unsetenv("RANK");
    unsetenv("WORLD_SIZE");
    EXPECT(rank, tutti_comm_init_env(NULL, &comm), TUTTI_ERR_INVALID_ARG);
    /* torchrun's variables, no secret: one is derived. */
    snprintf(text, sizeof(text), "%d", rank);
    setenv("RANK", text, 1);
    snprintf(text, sizeof(text), "%d", n);
    setenv("WORLD_SIZE", text, 1);
    EXPECT(rank, tutti_comm_init_env(NULL, &comm), TUTTI_ERR_INVALID_ARG); /* no address yet */
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", port, 1);
    EXPECT(rank, tutti_comm_init_env(NULL, &comm), TUTTI_OK);
    tutti_comm_rank(comm, &got_rank);
    tutti_comm_size(comm, &got_size);
    if (got_rank != rank || got_size != n)
        return tt_fail(rank, "rank %d of %d from the environment", got_rank, got_size);
    EXPECT(rank, tutti_barrier(comm), TUTTI_OK);
    EXPECT(rank, tutti_comm_destroy(comm), TUTTI_OK);
    setenv("RANK", "x1", 1);
    EXPECT(rank, tutti_comm_init_env(NULL, &comm), TUTTI_ERR_INVALID_ARG);
    return 0;
}

/* A port nobody listens on right now. */
static int free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    getsockname(fd, (struct sockaddr *)&addr, &len);
    port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

START_TEST(init_from_environment)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", free_port());
    ck_assert_int_eq(tt_run_ranks(3, env_rank, port, 60), 0);
}
END_TEST

/* ---------------------------------------------------------------- failures */

static int timeout_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_config_t config = config_with("TUTTI_OP_TIMEOUT", "1s");
    tutti_comm_t comm = tt_test_comm(rank, n, id, config);
    struct timespec t0;
    int64_t x = 1, y;
    tutti_status_t status;

    (void)arg;
    if (rank == 1) {
        tutti_status_t async;
        /* Late: arrives after the others gave up on it. Their contributions may
         * already sit in its queues, so its own call may still succeed (with the
         * right sum); either way it must not hang, and it must learn of the
         * failure when it next looks. */
        sleep(3);
        status = tutti_allreduce(&x, &y, 1, TUTTI_INT64, TUTTI_SUM, comm);
        if (status == TUTTI_OK && y != n)
            return tt_fail(rank, "the late rank's allreduce gave %lld", (long long)y);
        if (status != TUTTI_OK && !TUTTI_STATUS_IS_FAILURE(status))
            return tt_fail(rank, "the late rank got %s", tutti_status_string(status));
        EXPECT(rank, tutti_comm_get_async_error(comm, &async), TUTTI_OK);
        if (!TUTTI_STATUS_IS_FAILURE(async))
            return tt_fail(rank, "the late rank never heard of the failure (%s)",
                           tutti_status_string(async));
        tutti_config_destroy(config);
        return tutti_comm_abort(comm) == TUTTI_OK ? 0 : 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    status = tutti_allreduce(&x, &y, 1, TUTTI_INT64, TUTTI_SUM, comm);
    if (!TUTTI_STATUS_IS_FAILURE(status))
        return tt_fail(rank, "got %s instead of a failure", tutti_status_string(status));
    if (seconds_since(&t0) > 2.9)
        return tt_fail(rank, "returned only after %.1f s", seconds_since(&t0));
    /* The failure sticks and new calls say so at once. */
    if (!TUTTI_STATUS_IS_FAILURE(tutti_barrier(comm)))
        return tt_fail(rank, "a call after the failure did not fail");
    {
        tutti_status_t async;
        EXPECT(rank, tutti_comm_get_async_error(comm, &async), TUTTI_OK);
        if (!TUTTI_STATUS_IS_FAILURE(async))
            return tt_fail(rank, "async error is %s", tutti_status_string(async));
    }
    tutti_config_destroy(config);
    return tutti_comm_abort(comm) == TUTTI_OK ? 0 : 1;
}

START_TEST(deadline_ends_a_stuck_collective)
{
    ck_assert_int_eq(tt_run_ranks(3, timeout_rank, NULL, 60), 0);
}
END_TEST

static int abort_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(rank, n, id, NULL);
    double x = 1, y;
    tutti_status_t status;
    struct timespec t0;

    (void)arg;
    if (rank == 1) {
        usleep(200000);
        return tutti_comm_abort(comm) == TUTTI_OK ? 0 : 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    status = tutti_allreduce(&x, &y, 1, TUTTI_FP64, TUTTI_SUM, comm);
    if (status != TUTTI_ERR_PEER_FAILED)
        return tt_fail(rank, "got %s after a peer aborted", tutti_status_string(status));
    if (seconds_since(&t0) > 5.0) /* the default TUTTI_FAILURE_TIMEOUT */
        return tt_fail(rank, "noticed the abort only after %.1f s", seconds_since(&t0));
    return tutti_comm_abort(comm) == TUTTI_OK ? 0 : 1;
}

START_TEST(abort_reaches_the_others)
{
    ck_assert_int_eq(tt_run_ranks(4, abort_rank, NULL, 60), 0);
}
END_TEST

static int mismatch_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_config_t config = config_with("TUTTI_OP_TIMEOUT", "20s");
    tutti_comm_t comm = tt_test_comm(rank, n, id, config);
    size_t count = rank == 1 ? 200 : 100; /* rank 1 disagrees */
    int32_t in[200] = {0}, out[200];
    tutti_status_t status;
    struct timespec t0;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    status = tutti_allreduce(in, out, count, TUTTI_INT32, TUTTI_SUM, comm);
    if (status == TUTTI_OK)
        return tt_fail(rank, "a mismatched allreduce succeeded");
    if (seconds_since(&t0) > 10.0)
        return tt_fail(rank, "the mismatch took %.1f s to surface", seconds_since(&t0));
    tutti_config_destroy(config);
    return tutti_comm_abort(comm) == TUTTI_OK ? 0 : 1;
}

START_TEST(mismatched_calls_fail_instead_of_hanging)
{
    ck_assert_int_eq(tt_run_ranks(3, mismatch_rank, NULL, 60), 0);
}
END_TEST

/* ---------------------------------------------------------------- point-to-point */

static int p2p_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm = tt_test_comm(rank, n, id, NULL);
    int right = (rank + 1) % n, left = (rank + n - 1) % n;
    int32_t out[1000], in[1000], self_in[3], sum = 0, total;
    tutti_request_t req;

    (void)arg;
    for (int i = 0; i < 1000; i++)
        out[i] = rank * 100000 + i;
    /* A ring in one group: everyone sends before anyone receives. */
    EXPECT(rank, tutti_group_start(comm), TUTTI_OK);
    EXPECT(rank, tutti_send(out, 1000, TUTTI_INT32, right, comm), TUTTI_OK);
    EXPECT(rank, tutti_recv(in, 1000, TUTTI_INT32, left, comm), TUTTI_OK);
    EXPECT(rank, tutti_send(out, 3, TUTTI_INT32, rank, comm), TUTTI_OK); /* to itself */
    EXPECT(rank, tutti_recv(self_in, 3, TUTTI_INT32, rank, comm), TUTTI_OK);
    EXPECT(rank, tutti_group_end(comm, &req), TUTTI_OK);
    EXPECT(rank, tutti_wait(req), TUTTI_OK);
    for (int i = 0; i < 1000; i++)
        if (in[i] != left * 100000 + i)
            return tt_fail(rank, "ring: element %d is %d, expected %d", i, in[i],
                           left * 100000 + i);
    if (self_in[2] != out[2])
        return tt_fail(rank, "the message to itself did not arrive");
    /* Outside a group, between two ranks only: the others' collectives keep their numbers. */
    if (n > 1 && rank == 0)
        EXPECT(rank, tutti_send(out, 7, TUTTI_INT32, n - 1, comm), TUTTI_OK);
    if (n > 1 && rank == n - 1) {
        EXPECT(rank, tutti_recv(in, 7, TUTTI_INT32, 0, comm), TUTTI_OK);
        if (in[6] != 6)
            return tt_fail(rank, "blocking receive: element 6 is %d", in[6]);
    }
    sum = rank;
    EXPECT(rank, tutti_allreduce(&sum, &total, 1, TUTTI_INT32, TUTTI_SUM, comm), TUTTI_OK);
    if (total != n * (n - 1) / 2)
        return tt_fail(rank, "allreduce after point-to-point: %d", total);
    /* Bad input: a clear error, nothing posted. */
    EXPECT(rank, tutti_send(out, 1, TUTTI_INT32, n, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_recv(NULL, 1, TUTTI_INT32, left, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_send(out, 1, (tutti_datatype_t)77, left, comm), TUTTI_ERR_UNSUPPORTED);
    EXPECT(rank, tutti_send(out, 1, TUTTI_INT32, rank, comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_group_end(comm, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_group_start(comm), TUTTI_OK);
    EXPECT(rank, tutti_group_start(comm), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_group_end(comm, NULL), TUTTI_OK); /* empty */
    /* Messages to itself that do not pair up, in size or at all: nothing is posted. */
    EXPECT(rank, tutti_group_start(comm), TUTTI_OK);
    EXPECT(rank, tutti_send(out, 3, TUTTI_INT32, rank, comm), TUTTI_OK);
    EXPECT(rank, tutti_recv(self_in, 2, TUTTI_INT32, rank, comm), TUTTI_OK);
    EXPECT(rank, tutti_group_end(comm, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_group_start(comm), TUTTI_OK);
    EXPECT(rank, tutti_send(out, 1, TUTTI_INT32, rank, comm), TUTTI_OK);
    EXPECT(rank, tutti_group_end(comm, NULL), TUTTI_ERR_INVALID_ARG);
    EXPECT(rank, tutti_group_start(comm), TUTTI_OK);
    EXPECT(rank, tutti_send(out, 1, TUTTI_INT32, rank, comm), TUTTI_OK);
    EXPECT(rank, tutti_recv(self_in, 1, TUTTI_INT32, rank, comm), TUTTI_OK);
    EXPECT(rank, tutti_recv(self_in, 1, TUTTI_INT32, rank, comm), TUTTI_OK);
    EXPECT(rank, tutti_group_end(comm, NULL), TUTTI_ERR_INVALID_ARG);
    /* Empty messages, NULL buffers. */
    EXPECT(rank, tutti_group_start(comm), TUTTI_OK);
    EXPECT(rank, tutti_send(NULL, 0, TUTTI_INT32, right, comm), TUTTI_OK);
    EXPECT(rank, tutti_recv(NULL, 0, TUTTI_INT32, left, comm), TUTTI_OK);
    EXPECT(rank, tutti_group_end(comm, NULL), TUTTI_OK);
    EXPECT(rank, tutti_comm_destroy(comm), TUTTI_OK);
    return 0;
}

START_TEST(point_to_point)
{
    ck_assert_int_eq(tt_run_ranks(_i, p2p_rank, NULL, 60), 0);
}
END_TEST

/*
 * A rank that returned from its last call still serves its peers: rank 0
 * sends a burst of messages over UCX before rank 1 receives any, then stays
 * away from tutti until rank 1 has them all. With small socket buffers the
 * last sends complete while their data still waits in rank 0's TCP queue,
 * which only rank 0's progress thread can flush between calls; if that
 * thread slept after the blocking calls, rank 1 would wait for ever.
 */
#define SERVE_BYTES ((size_t)20000) /* below UCX's rendezvous threshold: sent eagerly */
#define SERVE_MESSAGES 50

static int serve_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    _Atomic int *received = arg;
    tutti_config_t config = config_with("TUTTI_TRANSPORTS", SERVE_TRANSPORT);
    tutti_comm_t comm;
    unsigned char *buf = malloc(SERVE_BYTES);
    struct timespec t0;

    setenv("UCX_TCP_SNDBUF", "16k", 1);
    setenv("UCX_TCP_RCVBUF", "16k", 1);
    comm = tt_test_comm(rank, n, id, config);
    if (comm == NULL || buf == NULL)
        return tt_fail(rank, "set-up failed");
    EXPECT(rank, tutti_barrier(comm), TUTTI_OK);
    if (rank == 1) {
        usleep(200 * 1000); /* let rank 0's burst fill the sockets first */
        for (int m = 0; m < SERVE_MESSAGES; m++) {
            EXPECT(rank, tutti_recv(buf, SERVE_BYTES, TUTTI_UINT8, 0, comm), TUTTI_OK);
            if (buf[0] != m || buf[SERVE_BYTES - 1] != m)
                return tt_fail(rank, "message %d: wrong data", m);
        }
        atomic_store(received, 1);
    } else {
        for (int m = 0; m < SERVE_MESSAGES; m++) {
            memset(buf, m, SERVE_BYTES);
            EXPECT(rank, tutti_send(buf, SERVE_BYTES, TUTTI_UINT8, 1, comm), TUTTI_OK);
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (!atomic_load(received)) {
            if (seconds_since(&t0) > 30.0)
                return tt_fail(rank, "rank 1 did not get the messages while this rank stayed "
                                     "away from tutti");
            usleep(1000);
        }
    }
    free(buf);
    tutti_config_destroy(config);
    EXPECT(rank, tutti_comm_destroy(comm), TUTTI_OK);
    return 0;
}

START_TEST(a_finished_rank_keeps_serving_its_peers)
{
    _Atomic int *received =
        mmap(NULL, sizeof(*received), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(received != MAP_FAILED);
    atomic_store(received, 0);
    ck_assert_int_eq(tt_run_ranks(2, serve_rank, (void *)received, 120), 0);
    munmap((void *)received, sizeof(*received));
}
END_TEST

/*
 * All-to-all-v where rank 1 expects one element more from rank 0 than rank
 * 0 sends: rank 1 must get TUTTI_ERR_PROTOCOL (the length mismatch), not
 * truncated data, and nobody may hang.
 */
static int a2av_mismatch_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    tutti_config_t config = config_with("TUTTI_OP_TIMEOUT", "20s");
    tutti_comm_t comm = tt_test_comm(rank, n, id, config);
    size_t counts[3] = {4, 4, 4}, displs[3] = {0, 4, 8}, recv_counts[3] = {4, 4, 4};
    int32_t in[12] = {0}, out[13];
    tutti_status_t status;
    struct timespec t0;

    (void)arg;
    if (rank == 1) {
        recv_counts[0] = 5;
        displs[1] = 5;
        displs[2] = 9;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    status = tutti_alltoallv(in, counts, (const size_t[]){0, 4, 8}, out, recv_counts, displs,
                             TUTTI_INT32, comm);
    if (rank == 1 && status != TUTTI_ERR_PROTOCOL)
        return tt_fail(rank, "a mismatched alltoallv returned %s, expected %s",
                       tutti_status_string(status), tutti_status_string(TUTTI_ERR_PROTOCOL));
    if (seconds_since(&t0) > 10.0)
        return tt_fail(rank, "the mismatch took %.1f s to surface", seconds_since(&t0));
    tutti_config_destroy(config);
    return tutti_comm_abort(comm) == TUTTI_OK ? 0 : 1;
}

START_TEST(mismatched_alltoallv_counts_are_a_protocol_error)
{
    ck_assert_int_eq(tt_run_ranks(3, a2av_mismatch_rank, NULL, 60), 0);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *args = tcase_create("arguments"), *life = tcase_create("lifecycle"),
          *fail = tcase_create("failures");
    tcase_set_timeout(args, 120);
    tcase_set_timeout(life, 120);
    tcase_set_timeout(fail, 120);
    tcase_add_loop_test(args, bad_input_changes_nothing, 1, 4);
    tcase_add_test(args, init_arguments);
    tcase_add_test(life, init_fails_everywhere_when_a_rank_is_missing);
    tcase_add_loop_test(life, split_by_color_and_key, 1, 7);
    tcase_add_loop_test(life, nonblocking_requests, 1, 5);
    tcase_add_loop_test(life, point_to_point, 1, 5);
    tcase_add_test(life, init_from_environment);
    tcase_add_test(fail, deadline_ends_a_stuck_collective);
    tcase_add_test(fail, abort_reaches_the_others);
    tcase_add_test(fail, mismatched_calls_fail_instead_of_hanging);
    tcase_add_test(fail, mismatched_alltoallv_counts_are_a_protocol_error);
    tcase_add_test(fail, a_finished_rank_keeps_serving_its_peers);
    suite_add_tcase(s, args);
    suite_add_tcase(s, life);
    suite_add_tcase(s, fail);
    return s;
}

TT_UNIT_MAIN(api_suite)
