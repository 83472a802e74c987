/*
 * Real faults on real processes: a rank killed with SIGKILL in the middle of
 * an allreduce. Every survivor must return a failure-range status within
 * the failure deadline (no hang), name a culprit in its log, be able to
 * abort cleanly, and no shared-memory segment of the job may be left.
 *
 * On emulated hosts (TT_TEST_NETNS, see tests/lib/netns.h) the same tests
 * run across hosts, and with TT_TEST_CUT_LINK and TT_TEST_RESTORE_LINK
 * (shell commands that cut and restore the second host's link, such as
 * "scripts/cluster.sh link 1 0 down") a host is cut off mid-allreduce:
 * every rank, on either side, must fail within the deadlines instead of
 * hanging.
 */
#include "config.h"

#include "tests/lib/ranks.h"
#include "tests/lib/unit.h"

#include <dirent.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAILURE_DEADLINE_S 5.0 /* TUTTI_FAILURE_TIMEOUT's default */

/* Shared between the test and its ranks. */
typedef struct fault_board {
    int victim;
    pid_t pids[16];
    double killed_at;         /* monotonic seconds, written by the victim just before dying */
    double noticed_after[16]; /* per survivor: seconds from the kill to its failed call */
} fault_board_t;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int kill_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    fault_board_t *board = arg;
    tutti_comm_t comm = tt_test_comm(rank, n, id, NULL);
    size_t count = 4u << 20; /* 16 MiB of fp32: long enough to be killed in the middle */
    float *in = malloc(count * sizeof(float)), *out = malloc(count * sizeof(float));
    tutti_status_t status = TUTTI_OK;

    board->pids[rank] = getpid();
    for (size_t i = 0; i < count; i++)
        in[i] = 1.0f;
    for (int iter = 0; iter < 1000; iter++) {
        if (rank == board->victim && iter == 3) {
            tutti_request_t req;
            if (tutti_iallreduce(in, out, count, TUTTI_FP32, TUTTI_SUM, comm, &req) != TUTTI_OK)
                return tt_fail(rank, "the victim could not post its allreduce");
            usleep(2000); /* let the progress thread get going, then die mid-flight */
            board->killed_at = now_s();
            raise(SIGKILL);
        }
        status = tutti_allreduce(in, out, count, TUTTI_FP32, TUTTI_SUM, comm);
        if (status != TUTTI_OK)
            break;
    }
    if (status == TUTTI_OK)
        return tt_fail(rank, "1000 allreduces succeeded although rank %d was killed",
                       board->victim);
    board->noticed_after[rank] = now_s() - board->killed_at;
    if (!TUTTI_STATUS_IS_FAILURE(status))
        return tt_fail(rank, "got %s, not a failure-range status", tutti_status_string(status));
    if (tutti_comm_abort(comm) != TUTTI_OK)
        return tt_fail(rank, "abort after the failure did not succeed");
    free(in);
    free(out);
    return 0;
}

/* Segments in /dev/shm created by any of the job's processes. */
static int leftover_segments(const fault_board_t *board, int n)
{
    DIR *dir = opendir("/dev/shm");
    struct dirent *e;
    int found = 0;
    if (dir == NULL)
        return 0;
    while ((e = readdir(dir)) != NULL)
        for (int r = 0; r < n; r++) {
            char prefix[48];
            snprintf(prefix, sizeof(prefix), "tutti-shm-%d-", (int)board->pids[r]);
            if (board->pids[r] > 0 && strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
                fprintf(stderr, "left behind: /dev/shm/%s\n", e->d_name);
                found++;
            }
        }
    closedir(dir);
    return found;
}

static void kill_one_of(int n, int victim)
{
    fault_board_t *board =
        mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int statuses[256];

    memset(board, 0, sizeof(*board));
    board->victim = victim;
    tt_run_ranks_status(n, kill_rank, board, 120, statuses);
    for (int r = 0; r < n; r++) {
        if (r == victim) {
            ck_assert_msg(WIFSIGNALED(statuses[r]) && WTERMSIG(statuses[r]) == SIGKILL,
                          "the victim did not die of SIGKILL");
            continue;
        }
        ck_assert_msg(WIFEXITED(statuses[r]) && WEXITSTATUS(statuses[r]) == 0,
                      "survivor %d failed (status %#x)", r, statuses[r]);
        ck_assert_msg(board->noticed_after[r] < FAILURE_DEADLINE_S,
                      "survivor %d noticed the death after %.2f s", r, board->noticed_after[r]);
        fprintf(stderr, "rank %d of %d killed: survivor %d returned after %.3f s\n", victim, n, r,
                board->noticed_after[r]);
    }
    ck_assert_int_eq(leftover_segments(board, n), 0);
    munmap(board, sizeof(*board));
}

START_TEST(sigkill_mid_allreduce)
{
    kill_one_of(4, 2);
}
END_TEST

START_TEST(sigkill_of_rank_zero)
{
    /* Rank 0 also hosts the rendezvous: its death must be reported all the same. */
    kill_one_of(3, 0);
}
END_TEST

START_TEST(sigkill_in_a_pair)
{
    kill_one_of(2, 1);
}
END_TEST

/* Seconds a rank may take to fail once its host is cut off: the keep-alive deadline, plus
 * the report's way to every survivor. */
#define CUT_DEADLINE_S (FAILURE_DEADLINE_S + 3.0)

/* Shared between the link cutter and the ranks. */
typedef struct cut_board {
    atomic_int started; /* ranks that finished one allreduce */
    double cut_at;
    double failed_after[16];
    int status[16];
} cut_board_t;

static int cut_rank(int rank, int n, const tutti_unique_id_t *id, void *arg)
{
    cut_board_t *board = arg;
    tutti_comm_t comm = tt_test_comm(rank, n, id, NULL);
    size_t count = 1u << 20;
    float *in = calloc(count, sizeof(float)), *out = malloc(count * sizeof(float));
    tutti_status_t status = TUTTI_OK;

    for (int iter = 0; iter < 100000 && status == TUTTI_OK; iter++) {
        status = tutti_allreduce(in, out, count, TUTTI_FP32, TUTTI_SUM, comm);
        if (iter == 0)
            atomic_fetch_add(&board->started, 1);
    }
    board->failed_after[rank] = now_s() - board->cut_at;
    board->status[rank] = status;
    tutti_comm_abort(comm);
    free(in);
    free(out);
    if (!TUTTI_STATUS_IS_FAILURE(status))
        return tt_fail(rank, "got %s, not a failure-range status", tutti_status_string(status));
    return 0;
}

/* 3 hosts x 2 ranks allreducing; the second host's link is cut once all have started. */
START_TEST(link_cut_mid_allreduce)
{
    int n = 6, statuses[256];
    cut_board_t *board =
        mmap(NULL, sizeof(*board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t cutter;

    memset(board, 0, sizeof(*board));
    cutter = fork();
    if (cutter == 0) {
        while (atomic_load(&board->started) < n)
            usleep(1000);
        usleep(20000);
        board->cut_at = now_s();
        _exit(system(getenv("TT_TEST_CUT_LINK")) == 0 ? 0 : 1);
    }
    tt_run_ranks_status(n, cut_rank, board, 120, statuses);
    waitpid(cutter, &statuses[n], 0);
    ck_assert_msg(system(getenv("TT_TEST_RESTORE_LINK")) == 0, "restoring the link failed");
    ck_assert_msg(WIFEXITED(statuses[n]) && WEXITSTATUS(statuses[n]) == 0,
                  "cutting the link failed");
    for (int r = 0; r < n; r++) {
        ck_assert_msg(WIFEXITED(statuses[r]) && WEXITSTATUS(statuses[r]) == 0,
                      "rank %d did not fail cleanly (status %#x)", r, statuses[r]);
        ck_assert_msg(board->failed_after[r] < CUT_DEADLINE_S,
                      "rank %d failed %.2f s after the cut", r, board->failed_after[r]);
        fprintf(stderr, "host 1 cut off: rank %d failed after %.3f s with %s\n", r,
                board->failed_after[r], tutti_status_string((tutti_status_t)board->status[r]));
    }
    munmap(board, sizeof(*board));
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("sigkill");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, sigkill_mid_allreduce);
    tcase_add_test(tc, sigkill_of_rank_zero);
    tcase_add_test(tc, sigkill_in_a_pair);
    suite_add_tcase(s, tc);
    if (getenv("TT_TEST_CUT_LINK") != NULL && getenv("TT_TEST_RESTORE_LINK") != NULL) {
        TCase *cut = tcase_create("link");
        tcase_set_timeout(cut, 180);
        tcase_add_test(cut, link_cut_mid_allreduce);
        suite_add_tcase(s, cut);
    }
    return s;
}

TT_UNIT_MAIN(faults_suite)
