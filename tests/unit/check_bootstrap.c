/*
 * Bootstrap tests, with real processes and sockets: all-gathers, strangers
 * at the rendezvous port, ranks that never arrive, die, or claim a taken
 * rank, and a job that reaches the previous one's rendezvous on its address.
 */
#include "config.h"

#include "bootstrap/bootstrap.h"
#include "tests/lib/ranks.h"
#include "tests/lib/unit.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static tt_bootstrap_settings_t settings(double timeout_s)
{
    tt_bootstrap_settings_t s = {(int64_t)(timeout_s * TT_NS_PER_S), "127.0.0.1:0"};
    return s;
}

static tt_bootstrap_id_t id_of(const tutti_unique_id_t *uid)
{
    tt_bootstrap_id_t id;
    memcpy(&id, uid->bytes, sizeof(id));
    return id;
}

/* Send everything stderr gets to a file, to check what was logged. */
static void capture_stderr(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static int file_contains(const char *path, const char *needle)
{
    char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Several all-gathers on two contexts, of different sizes, including empty ones. */
static int gather_rank(int rank, int nranks, const tutti_unique_id_t *uid, void *arg)
{
    tt_bootstrap_settings_t s = settings(20);
    tt_bootstrap_id_t id = id_of(uid);
    tt_bootstrap_t *bs;
    int64_t deadline = tt_deadline_after(20 * TT_NS_PER_S);
    tutti_status_t status;

    (void)arg;
    status = tt_bootstrap_open(&id, rank, nranks, &s, 5 * TT_NS_PER_S, &bs);
    if (status != TUTTI_OK)
        return tt_fail(rank, "open: %s", tutti_status_string(status));
    for (int round = 0; round < 5; round++) {
        size_t len = (size_t)round * 1000 + 3;
        char *mine = malloc(len), *all = malloc(len * (size_t)nranks);
        for (size_t i = 0; i < len; i++)
            mine[i] = (char)(rank * 31 + round + (int)i);
        status = tt_bootstrap_allgather(bs, 100 + (uint64_t)(round % 2), rank, nranks, NULL, mine,
                                        len, all, deadline);
        if (status != TUTTI_OK)
            return tt_fail(rank, "allgather round %d: %s", round, tutti_status_string(status));
        for (int r = 0; r < nranks; r++)
            for (size_t i = 0; i < len; i++)
                if (all[(size_t)r * len + i] != (char)(r * 31 + round + (int)i))
                    return tt_fail(rank, "round %d: byte %zu of rank %d is wrong", round, i, r);
        free(mine);
        free(all);
        status = tt_bootstrap_allgather(bs, 7, rank, nranks, NULL, NULL, 0, NULL, deadline);
        if (status != TUTTI_OK)
            return tt_fail(rank, "barrier: %s", tutti_status_string(status));
    }
    if (tt_bootstrap_failed_member(bs, NULL, nranks, NULL) != -1)
        return tt_fail(rank, "a member is reported failed");
    tt_bootstrap_release(bs, 0, deadline);
    return 0;
}

START_TEST(allgather_rounds)
{
    ck_assert_int_eq(tt_run_ranks(_i, gather_rank, NULL, 60), 0);
}
END_TEST

/* A raw TCP connection to the rendezvous that does whatever @p behaviour says. */
static int stranger(const tt_bootstrap_id_t *id, const char *behaviour)
{
    int fd;
    char buf[512];
    if (tt_sock_connect(id->address, tt_deadline_after(5 * TT_NS_PER_S), &fd) != TUTTI_OK)
        return -1;
    if (strcmp(behaviour, "garbage") == 0) {
        memset(buf, 'x', sizeof(buf));
        if (write(fd, buf, sizeof(buf)) < 0)
            return -1;
    }
    if (strcmp(behaviour, "silent") == 0)
        return fd; /* keep it open, say nothing */
    /* The root must hang up on us (after its challenge, maybe a refusal). */
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    close(fd);
    return 0;
}

static int strangers_rank(int rank, int nranks, const tutti_unique_id_t *uid, void *arg)
{
    const char *log = arg;
    tt_bootstrap_settings_t s = settings(20);
    tt_bootstrap_id_t id = id_of(uid), forged = id;
    tt_bootstrap_t *bs;
    int silent = -1, value = rank, all[8];
    tutti_status_t status;

    if (rank == 0)
        capture_stderr(log);
    if (rank == 1) {
        /* Wait until rank 0 listens, then try every trick before joining for real. */
        usleep(100000);
        if (stranger(&id, "garbage") != 0)
            return tt_fail(rank, "the root did not hang up on garbage");
        silent = stranger(&id, "silent");
        forged.secret[0] ^= 0xff;
        status = tt_bootstrap_open(&forged, 1, nranks, &s, 5 * TT_NS_PER_S, &bs);
        if (status != TUTTI_ERR_AUTH)
            return tt_fail(rank, "a wrong secret got %s, not TUTTI_ERR_AUTH",
                           tutti_status_string(status));
    }
    status = tt_bootstrap_open(&id, rank, nranks, &s, 5 * TT_NS_PER_S, &bs);
    if (status != TUTTI_OK)
        return tt_fail(rank, "open: %s", tutti_status_string(status));
    status = tt_bootstrap_allgather(bs, 1, rank, nranks, NULL, &value, sizeof(value), all,
                                    tt_deadline_after(20 * TT_NS_PER_S));
    if (status != TUTTI_OK)
        return tt_fail(rank, "allgather with strangers around: %s", tutti_status_string(status));
    for (int r = 0; r < nranks; r++)
        if (all[r] != r)
            return tt_fail(rank, "rank %d's value is %d", r, all[r]);
    if (silent >= 0)
        close(silent);
    tt_bootstrap_release(bs, 0, tt_deadline_after(20 * TT_NS_PER_S));
    if (rank == 0 &&
        (!file_contains(log, "refused connection") || !file_contains(log, "wrong job secret")))
        return tt_fail(rank, "the refusals were not logged");
    return 0;
}

/* Run @p fn on @p n ranks with a fresh log file path as its argument. */
static int run_with_log(int n, tt_rank_fn_t fn)
{
    char log[] = "/tmp/tutti-test-log-XXXXXX";
    int fd = mkstemp(log), failed;
    close(fd);
    failed = tt_run_ranks(n, fn, log, 60);
    unlink(log);
    return failed;
}

START_TEST(strangers_are_refused)
{
    ck_assert_int_eq(run_with_log(3, strangers_rank), 0);
}
END_TEST

static int missing_rank(int rank, int nranks, const tutti_unique_id_t *uid, void *arg)
{
    const char *log = arg;
    tt_bootstrap_settings_t s = settings(1);
    tt_bootstrap_id_t id = id_of(uid);
    tt_bootstrap_t *bs;
    int64_t start = tt_time_ns();
    tutti_status_t status;

    if (rank == 2)
        return 0; /* never shows up */
    if (rank == 0)
        capture_stderr(log);
    status = tt_bootstrap_open(&id, rank, nranks, &s, 5 * TT_NS_PER_S, &bs);
    if (status != TUTTI_OK)
        return tt_fail(rank, "open: %s", tutti_status_string(status));
    status = tt_bootstrap_allgather(bs, 1, rank, nranks, NULL, NULL, 0, NULL,
                                    tt_deadline_after(30 * TT_NS_PER_S));
    if (status != TUTTI_ERR_TIMEOUT)
        return tt_fail(rank, "got %s, not TUTTI_ERR_TIMEOUT", tutti_status_string(status));
    /* The arrival deadline (1 s), not the all-gather's own (30 s), ended it. */
    if (tt_time_ns() - start > 10 * TT_NS_PER_S)
        return tt_fail(rank, "the missing rank was noticed only after %.1f s",
                       (double)(tt_time_ns() - start) / TT_NS_PER_S);
    tt_bootstrap_release(bs, 0, tt_deadline_after(5 * TT_NS_PER_S));
    if (rank == 0 && !file_contains(log, "never arrived: 2"))
        return tt_fail(rank, "the log does not name the missing rank");
    return 0;
}

START_TEST(missing_rank_is_named)
{
    ck_assert_int_eq(run_with_log(3, missing_rank), 0);
}
END_TEST

static int dying_rank(int rank, int nranks, const tutti_unique_id_t *uid, void *arg)
{
    tt_bootstrap_settings_t s = settings(20);
    tt_bootstrap_id_t id = id_of(uid);
    tt_bootstrap_t *bs;
    const char *reason = NULL;
    int64_t start;
    tutti_status_t status;

    (void)arg;
    status = tt_bootstrap_open(&id, rank, nranks, &s, 5 * TT_NS_PER_S, &bs);
    if (status != TUTTI_OK)
        return tt_fail(rank, "open: %s", tutti_status_string(status));
    status = tt_bootstrap_allgather(bs, 1, rank, nranks, NULL, NULL, 0, NULL,
                                    tt_deadline_after(20 * TT_NS_PER_S));
    if (status != TUTTI_OK)
        return tt_fail(rank, "first barrier: %s", tutti_status_string(status));
    if (rank == nranks - 1)
        _exit(0); /* dies without a word */
    start = tt_time_ns();
    status = tt_bootstrap_allgather(bs, 1, rank, nranks, NULL, NULL, 0, NULL,
                                    tt_deadline_after(20 * TT_NS_PER_S));
    if (status != TUTTI_ERR_PEER_FAILED)
        return tt_fail(rank, "got %s, not TUTTI_ERR_PEER_FAILED", tutti_status_string(status));
    if (tt_time_ns() - start > 5 * TT_NS_PER_S)
        return tt_fail(rank, "the death was noticed only after %.1f s",
                       (double)(tt_time_ns() - start) / TT_NS_PER_S);
    if (tt_bootstrap_failed_member(bs, NULL, nranks, &reason) != nranks - 1 || reason == NULL)
        return tt_fail(rank, "the dead rank is not named");
    /* A group without the dead rank still works. */
    {
        int members[2] = {0, 1};
        if (rank < 2) {
            status = tt_bootstrap_allgather(bs, 2, rank, 2, members, NULL, 0, NULL,
                                            tt_deadline_after(20 * TT_NS_PER_S));
            if (status != TUTTI_OK)
                return tt_fail(rank, "survivors' barrier: %s", tutti_status_string(status));
        }
    }
    tt_bootstrap_release(bs, 0, tt_deadline_after(5 * TT_NS_PER_S));
    return 0;
}

START_TEST(dead_rank_is_reported)
{
    ck_assert_int_eq(tt_run_ranks(4, dying_rank, NULL, 60), 0);
}
END_TEST

/* Wait up to 30 s for @p path to exist. */
static int wait_for_file(const char *path)
{
    for (int i = 0; i < 3000; i++) {
        if (access(path, F_OK) == 0)
            return 1;
        usleep(10000);
    }
    return 0;
}

static int duplicate_rank(int rank, int nranks, const tutti_unique_id_t *uid, void *arg)
{
    const char *joined = arg, *tried = (const char *)arg + 64;
    /* The impostor tries again until its deadline (it might be the next job): keep it short. */
    tt_bootstrap_settings_t s = settings(rank == 2 ? 2 : 20);
    tt_bootstrap_id_t id = id_of(uid);
    tt_bootstrap_t *bs;
    int claimed = rank == 2 ? 1 : rank; /* rank 2 pretends to be rank 1 */
    tutti_status_t status;

    nranks = 2; /* the job has two ranks; the third process is an impostor */
    if (rank == 2 && !wait_for_file(joined))
        return tt_fail(rank, "rank 1 never joined");
    status = tt_bootstrap_open(&id, claimed, nranks, &s, 5 * TT_NS_PER_S, &bs);
    if (rank == 2) {
        close(open(tried, O_CREAT | O_WRONLY, 0600));
        return status == TUTTI_ERR_AUTH
                   ? 0
                   : tt_fail(rank, "a second rank 1 got %s", tutti_status_string(status));
    }
    if (status != TUTTI_OK)
        return tt_fail(rank, "open: %s", tutti_status_string(status));
    if (rank == 1)
        close(open(joined, O_CREAT | O_WRONLY, 0600));
    /* Stay in the job until the impostor has had its go. */
    if (!wait_for_file(tried))
        return tt_fail(rank, "the impostor never tried");
    tt_bootstrap_release(bs, 0, tt_deadline_after(5 * TT_NS_PER_S));
    return 0;
}

START_TEST(duplicate_rank_is_refused)
{
    /* Three processes, a job of two: the third claims a rank already taken. */
    char flags[128];
    snprintf(flags, 64, "/tmp/tutti-test-joined-%d", (int)getpid());
    snprintf(flags + 64, 64, "/tmp/tutti-test-tried-%d", (int)getpid());
    ck_assert_int_eq(tt_run_ranks(3, duplicate_rank, flags, 60), 0);
    unlink(flags);
    unlink(flags + 64);
}
END_TEST

/*
 * Two jobs, one after the other, on one address (given, as launchers do:
 * no reserved socket): processes 0 and 1 are job A's ranks; process 2 is
 * rank 1 of job B and starts while A still runs, so it reaches A's
 * rendezvous, where rank 1 is taken. Process 0 then ends A and starts B as
 * its rank 0 on the same address: process 2 must get in.
 */
static int consecutive_job(int rank, int nranks, const tutti_unique_id_t *uid, void *arg)
{
    const char *a_joined = arg, *b_trying = (const char *)arg + 64, *log = (const char *)arg + 128;
    const char *address = (const char *)arg + 192;
    tt_bootstrap_settings_t s = settings(20);
    tt_bootstrap_id_t id;
    tt_bootstrap_t *a, *b;
    tutti_status_t status;

    (void)nranks;
    (void)uid;
    if (tt_bootstrap_id_init(address, "consecutive", 11, &id) != TUTTI_OK)
        return tt_fail(rank, "cannot make an id for %s", address);
    if (rank == 2) {
        if (!wait_for_file(a_joined))
            return tt_fail(rank, "job A never started");
        close(open(b_trying, O_CREAT | O_WRONLY, 0600));
        status = tt_bootstrap_open(&id, 1, 2, &s, 5 * TT_NS_PER_S, &b);
        if (status != TUTTI_OK)
            return tt_fail(rank, "job B's rank 1: %s", tutti_status_string(status));
    } else {
        if (rank == 0)
            capture_stderr(log); /* what job A's rendezvous said */
        status = tt_bootstrap_open(&id, rank, 2, &s, 5 * TT_NS_PER_S, &a);
        if (status != TUTTI_OK)
            return tt_fail(rank, "job A: %s", tutti_status_string(status));
        if (rank == 1)
            close(open(a_joined, O_CREAT | O_WRONLY, 0600));
        /* Job A runs on a while job B's rank 1 knocks. */
        if (!wait_for_file(b_trying))
            return tt_fail(rank, "job B never started");
        usleep(500 * 1000);
        tt_bootstrap_release(a, 0, tt_deadline_after(5 * TT_NS_PER_S));
        if (rank == 1)
            return 0;
        status = tt_bootstrap_open(&id, 0, 2, &s, 5 * TT_NS_PER_S, &b);
        if (status != TUTTI_OK)
            return tt_fail(rank, "job B's rank 0: %s", tutti_status_string(status));
    }
    /* Job B works: a barrier. */
    status = tt_bootstrap_allgather(b, 1, rank == 0 ? 0 : 1, 2, NULL, NULL, 0, NULL,
                                    tt_deadline_after(20 * TT_NS_PER_S));
    if (status != TUTTI_OK)
        return tt_fail(rank, "job B's barrier: %s", tutti_status_string(status));
    tt_bootstrap_release(b, 0, tt_deadline_after(5 * TT_NS_PER_S));
    return 0;
}

START_TEST(next_job_waits_for_the_previous_one)
{
    char files[256];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sa_len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* A free port for the address the two jobs share. */
    ck_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
              getsockname(fd, (struct sockaddr *)&sa, &sa_len) == 0);
    close(fd);
    snprintf(files + 192, 64, "127.0.0.1:%d", ntohs(sa.sin_port));
    snprintf(files, 64, "/tmp/tutti-test-a-joined-%d", (int)getpid());
    snprintf(files + 64, 64, "/tmp/tutti-test-b-trying-%d", (int)getpid());
    snprintf(files + 128, 64, "/tmp/tutti-test-a-log-%d", (int)getpid());
    ck_assert_int_eq(tt_run_ranks(3, consecutive_job, files, 60), 0);
    /* Job B's rank 1 did reach job A's rendezvous (the case under test). */
    ck_assert_msg(file_contains(files + 128, "this rank has already joined"),
                  "job B's rank 1 never reached job A's rendezvous");
    for (int i = 0; i < 3; i++)
        unlink(files + 64 * i);
}
END_TEST

START_TEST(addresses_parse)
{
    char host[80], port[16];
    ck_assert_int_eq(tt_sock_split_address("10.0.0.1:29500", host, 80, port, 16), TUTTI_OK);
    ck_assert_str_eq(host, "10.0.0.1");
    ck_assert_str_eq(port, "29500");
    ck_assert_int_eq(tt_sock_split_address("[fe80::1]:7", host, 80, port, 16), TUTTI_OK);
    ck_assert_str_eq(host, "fe80::1");
    ck_assert_str_eq(port, "7");
    ck_assert_int_eq(tt_sock_split_address("nohost", host, 80, port, 16), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_sock_split_address(":80", host, 80, port, 16), TUTTI_ERR_INVALID_ARG);
    ck_assert_int_eq(tt_sock_split_address("h:", host, 80, port, 16), TUTTI_ERR_INVALID_ARG);
}
END_TEST

static Suite *bootstrap_suite(void)
{
    Suite *s = suite_create("bootstrap");
    TCase *tc = tcase_create("bootstrap");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, addresses_parse);
    tcase_add_loop_test(tc, allgather_rounds, 1, 6);
    tcase_add_test(tc, strangers_are_refused);
    tcase_add_test(tc, missing_rank_is_named);
    tcase_add_test(tc, dead_rank_is_reported);
    tcase_add_test(tc, duplicate_rank_is_refused);
    tcase_add_test(tc, next_job_waits_for_the_previous_one);
    suite_add_tcase(s, tc);
    return s;
}

TT_UNIT_MAIN(bootstrap_suite)
